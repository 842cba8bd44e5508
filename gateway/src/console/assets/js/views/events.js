// @ts-check
// The events tab: search the journal by time, kind, door, person and plate,
// 50 at a time, newest first.

import { api } from '../api.js';
import { $, el, errorMessage, fieldValue } from '../dom.js';
import { fmtTime, localInputToIso } from '../format.js';
import { name, t, tableKeys } from '../i18n.js';
import { doorName, resultOf, thumb, whoOf } from '../records.js';
import { state, subscribe } from '../store.js';

/** @typedef {import('../types.js').EventRecord} EventRecord */
/** @typedef {import('../types.js').EventsPage} EventsPage */

/** @type {EventsPage['next']} */
let eventsNext = null;
let searchSeq = 0;

/** Binds the search form; refills its lists when the doors or the language change. */
export function mount() {
  subscribe('doors', fillSearchSelects);
  subscribe('lang', fillSearchSelects);
  const form = $('#search-form');
  form.addEventListener('submit', (ev) => { ev.preventDefault(); searchEvents(false); });
  form.addEventListener('reset', () => setTimeout(() => searchEvents(false), 0));
  $('#events-more').addEventListener('click', () => searchEvents(true));
}

/** The tab is shown: the first time, the latest events. */
export function show() {
  if (!$('#event-rows').children.length) searchEvents(false);
}

function fillSearchSelects() {
  const kind = /** @type {HTMLSelectElement | null} */ ($('#search-kind'));
  if (kind) {
    const v = kind.value;
    kind.replaceChildren(el('option', { value: '', text: t('all') }),
      ...tableKeys('kind').map((k) => el('option', { value: k, text: name('kind', k) })));
    kind.value = v;
  }
  const door = /** @type {HTMLSelectElement | null} */ ($('#search-door'));
  if (door) {
    const v = door.value;
    door.replaceChildren(el('option', { value: '', text: t('any_door') }),
      ...[...state.doors.values()].map((d) => el('option', { value: d.id, text: d.name })));
    door.value = v;
  }
}

/**
 * @param {EventRecord} rec
 * @returns {HTMLTableRowElement}
 */
function eventRow(rec) {
  return el('tr', { dataset: { seq: rec.seq } },
    el('td', { text: fmtTime(rec.ts) }),
    el('td', {}, name('kind', rec.kind), rec.action !== 'decision' && name('action', rec.action) ? el('div', { class: 'muted', text: name('action', rec.action) }) : null),
    el('td', { text: rec.door ? doorName(rec.door) + (rec.direction ? ` (${t('direction_' + rec.direction)})` : '') : rec.device }),
    el('td', { text: whoOf(rec) }),
    el('td', {}, resultOf(rec), rec.by ? el('div', { class: 'muted', text: `${t('by')}: ${rec.by}` }) : null),
    el('td', {}, thumb(rec.snapshot)));
}

/**
 * Runs the form's search; `more` appends the next page.
 * @param {boolean} more
 */
async function searchEvents(more) {
  const mine = ++searchSeq;
  const f = /** @type {HTMLFormElement} */ ($('#search-form'));
  const q = new URLSearchParams();
  const from = localInputToIso(fieldValue(f, 'from'));
  const to = localInputToIso(fieldValue(f, 'to'));
  if (from) q.set('from', from);
  if (to) q.set('to', to);
  for (const k of ['kind', 'door', 'person', 'plate']) if (fieldValue(f, k).trim()) q.set(k, fieldValue(f, k).trim());
  q.set('limit', '50');
  if (more && eventsNext) q.set('before', String(eventsNext.before));
  $('#search-error').textContent = '';
  try {
    const r = /** @type {EventsPage} */ (await api('GET', '/api/events?' + q.toString()));
    if (mine !== searchSeq) return; // a newer search has started
    const rows = r.records.map(eventRow);
    if (more) $('#event-rows').append(...rows);
    else $('#event-rows').replaceChildren(...rows);
    eventsNext = r.next;
    $('#events-more').hidden = !r.next;
    $('#events-empty').hidden = $('#event-rows').children.length > 0;
  } catch (e) {
    $('#search-error').textContent = errorMessage(e);
  }
}
