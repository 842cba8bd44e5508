// @ts-check
// The alarms tab: open alarms, most severe first (a new one beeps), the
// acknowledge dialog, and beside them the live passes.

import { api } from '../api.js';
import { $, el, modal, toast } from '../dom.js';
import { fmtTime } from '../format.js';
import { name, t } from '../i18n.js';
import { doorName, isPass, PASS_KINDS, resultOf, thumb, whoOf } from '../records.js';
import { beep } from '../sound.js';
import { publish, state, subscribe } from '../store.js';

/** @typedef {import('../types.js').AlarmRecord} AlarmRecord */
/** @typedef {import('../types.js').AlarmEntry} AlarmEntry */
/** @typedef {import('../types.js').EventRecord} EventRecord */
/** @typedef {import('../types.js').EventsPage} EventsPage */

/** @type {Record<string, number>} */
const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, info: 3 };

/** Redraws the alarms and the passes when they or the language change. */
export function mount() {
  subscribe('alarms', renderAlarms);
  subscribe('feed', renderFeed);
  subscribe('lang', renderAlarms);
  subscribe('lang', renderFeed);
}

// ---------------------------------------------------------------- alarms
/** Loads the open alarms (at the start, after a reconnect or a gap). */
export async function loadOpenAlarms() {
  try {
    const r = /** @type {{ alarms: AlarmRecord[] }} */ (await api('GET', '/api/alarms?state=open'));
    const open = new Set();
    for (const a of r.alarms) {
      open.add(a.alarm);
      const known = state.alarms.get(a.alarm);
      state.alarms.set(a.alarm, { rec: a, cleared: false, via: known ? known.via : 'load' });
    }
    // Open ones the server no longer has were cleared while away: keep those
    // never acknowledged, so that a guard still sees them.
    for (const [id, a] of state.alarms) {
      if (!open.has(id)) {
        if (a.rec.state === 'acked' || a.cleared) state.alarms.delete(id);
        else a.cleared = true;
      }
    }
    publish('alarms');
  } catch (e) { /* retried on the next connect */ }
}

/**
 * An alarm record from the live stream.
 * @param {AlarmRecord} rec
 */
export function applyAlarm(rec) {
  const known = state.alarms.get(rec.alarm);
  if (rec.state === 'cleared') {
    if (!known) return;
    if (known.rec.state === 'acked' || known.rec.ack) state.alarms.delete(rec.alarm);
    else { known.cleared = true; known.rec = Object.assign({}, known.rec, { count: rec.count }); }
  } else {
    state.alarms.set(rec.alarm, { rec, cleared: false, via: known ? known.via : 'live' });
    const isNew = !known || (rec.state === 'escalated' && known.rec.state !== 'escalated');
    if (isNew && rec.state !== 'acked') {
      if (rec.severity === 'critical') beep(3);
      else if (rec.severity === 'major') beep(1);
    }
  }
  publish('alarms');
}

/** @returns {AlarmEntry[]} */
function sortedAlarms() {
  return [...state.alarms.values()].sort((a, b) => {
    // Not yet handled first; then by severity, then oldest first.
    const ha = a.rec.state === 'acked' || a.cleared ? 1 : 0;
    const hb = b.rec.state === 'acked' || b.cleared ? 1 : 0;
    if (ha !== hb) return ha - hb;
    const s = SEVERITY_RANK[a.rec.severity] - SEVERITY_RANK[b.rec.severity];
    if (s) return s;
    return String(a.rec.raised_at).localeCompare(String(b.rec.raised_at));
  });
}

function renderAlarms() {
  const list = $('#alarm-list');
  if (!list) return;
  list.replaceChildren();
  const items = sortedAlarms();
  let pending = 0;
  for (const a of items) {
    const r = a.rec;
    const handled = r.state === 'acked' || a.cleared;
    if (!handled) pending++;
    const place = [r.door ? doorName(r.door) : null, r.zone].filter(Boolean).join(' · ');
    const who = r.person ? (r.person.name || r.person.id) : null;
    const tags = [];
    if (r.state === 'escalated') tags.push(el('span', { class: 'pill warn', text: `${t('escalated')} ×${r.escalations}` }));
    if ((r.count || 0) > 1) tags.push(el('span', { class: 'pill', text: `${t('count')} ${r.count}` }));
    if (a.cleared) tags.push(el('span', { class: 'pill ok', text: t('cleared_unacked') }));
    if (r.ack) tags.push(el('span', { class: 'pill ok', text: t('acked_by', { by: r.ack.by.replace(/^console\//, '') }) }));
    list.append(el('li', {
      class: `alarm sev-${r.severity}${handled ? ' handled' : ''}`,
      // `via` says whether it came over the live feed or with the initial list.
      dataset: { alarm: r.alarm, type: r.type, state: a.cleared ? 'cleared' : r.state, via: a.via },
    },
      thumb(r.snapshot),
      el('div', { class: 'alarm-main' },
        el('div', { class: 'alarm-head' },
          el('span', { class: `sev sev-${r.severity}`, text: name('severity', r.severity) }),
          el('strong', { class: 'alarm-type', text: name('alarm', r.type) }),
          ...tags),
        el('div', { class: 'alarm-msg', text: r.message }),
        el('div', { class: 'muted' },
          [place, who, r.device].filter(Boolean).join(' · '),
          ' · ', `${t('raised_at')} ${fmtTime(r.raised_at)}`),
        r.ack && r.ack.note ? el('div', { class: 'muted note', text: `“${r.ack.note}”` }) : null),
      el('div', { class: 'alarm-actions' },
        a.cleared
          ? el('button', { type: 'button', class: 'dismiss', text: t('dismiss'), onclick: () => { state.alarms.delete(r.alarm); publish('alarms'); } })
          : r.state !== 'acked'
            ? el('button', { type: 'button', class: 'primary ack', text: t('ack'), onclick: () => ackAlarm(r) })
            : null)));
  }
  $('#no-alarms').hidden = items.length > 0;
  const badge = $('#alarm-count');
  badge.textContent = String(pending);
  badge.hidden = pending === 0;
}

/**
 * The acknowledge dialog (a note is required).
 * @param {AlarmRecord} r
 */
function ackAlarm(r) {
  const note = el('textarea', { id: 'ack-note', rows: 3, maxlength: 1000, placeholder: t('ack_note_ph') });
  modal({
    title: `${t('ack_title')}: ${name('alarm', r.type)}`,
    body: [el('p', { text: r.message }), el('label', {}, el('span', { text: t('ack_note') }), note)],
    ok: t('ack'),
    focus: note,
    onOk: async () => {
      if (!note.value.trim()) throw new Error(t('note_required'));
      await api('POST', `/api/alarms/${r.alarm}/ack`, { note: note.value.trim() });
      toast(t('acked'));
    },
  });
}

// ---------------------------------------------------------------- live passes
/** Loads the latest passes (at the start, after a gap). */
export async function loadFeed() {
  try {
    const r = /** @type {EventsPage} */ (await api('GET', '/api/events?limit=30&kind=' + PASS_KINDS.join(',')));
    state.feed = r.records.filter(isPass);
    publish('feed');
  } catch (e) { /* empty feed */ }
}

/**
 * An event from the live stream: a pass goes on top of the list.
 * @param {EventRecord} rec
 */
export function applyEvent(rec) {
  if (!isPass(rec)) return;
  // A replay after a reconnect may bring records the list already has.
  if (state.feed.some((f) => f.seq === rec.seq)) return;
  state.feed.unshift(rec);
  state.feed.sort((a, b) => b.seq - a.seq);
  state.feed.length = Math.min(state.feed.length, 50);
  publish('feed');
}

function renderFeed() {
  const list = $('#live-feed');
  if (!list) return;
  list.replaceChildren(...state.feed.map((rec) => el('li', { class: 'feed-item', dataset: { seq: rec.seq } },
    thumb(rec.snapshot),
    el('div', {},
      el('div', {}, el('span', { class: 'muted', text: fmtTime(rec.ts) }), ' ',
        el('strong', { text: rec.door ? doorName(rec.door) : rec.device }),
        rec.direction ? ` (${t('direction_' + rec.direction)})` : ''),
      el('div', { text: whoOf(rec) }),
      resultOf(rec)))));
}
