// @ts-check
// What the views share about records: the door's name, the snapshot thumbnail,
// who passed and what came of it.

import { el, modal } from './dom.js';
import { name, t, words } from './i18n.js';
import { state } from './store.js';

/** @typedef {import('./types.js').EventRecord} EventRecord */
/** @typedef {import('./types.js').Snapshot} Snapshot */

/** The kinds of event shown as passes. */
export const PASS_KINDS = ['access', 'vehicle', 'tag', 'face'];

/**
 * A pass: a decision or a door release at a door.
 * @param {EventRecord} rec
 */
export function isPass(rec) {
  return PASS_KINDS.includes(rec.kind) && (rec.action === 'decision' || rec.action === 'door_release');
}

/**
 * A door's name, else its id.
 * @param {string} id
 */
export function doorName(id) {
  const d = state.doors.get(id);
  return d ? d.name : id;
}

/**
 * A snapshot's thumbnail that opens large, or null.
 * @param {Snapshot | undefined} snap
 * @returns {HTMLImageElement | null}
 */
export function thumb(snap) {
  if (!snap || !snap.sha256) return null;
  const src = `/api/snapshots/${snap.sha256}`;
  return el('img', {
    class: 'thumb', src, alt: t('snapshot'), loading: 'lazy',
    onclick: () => modal({ title: t('snapshot'), body: [el('img', { class: 'big', src, alt: '' })], ok: 'OK', noCancel: true }),
  });
}

/**
 * The person and the credential, in words.
 * @param {EventRecord} rec
 * @returns {string}
 */
export function whoOf(rec) {
  const parts = [];
  if (rec.person) parts.push(rec.person.name || rec.person.id);
  if (rec.credential) {
    const c = rec.credential;
    if (c.type === 'remote') parts.push(`${name('cred', 'remote')} ${c.value.replace(/^console\//, '')}`);
    else if (c.type === 'face' && rec.person) {
      if (rec.similarity !== undefined) parts.push(`${name('cred', 'face')} ${Math.round(rec.similarity * 100)}%`);
    } else parts.push(`${name('cred', c.type)} ${c.value}`);
  }
  if (!parts.length && rec.by) parts.push(rec.by);
  return parts.join(' · ');
}

/**
 * What came of it: granted or the refusal's reason, else what happened.
 * @param {EventRecord} rec
 * @returns {HTMLSpanElement}
 */
export function resultOf(rec) {
  if (rec.decision) {
    const ok = rec.decision.granted;
    return el('span', { class: ok ? 'granted' : 'refused', text: ok ? `✔ ${t('granted')}` : `✘ ${name('reason', rec.decision.reason)}` });
  }
  const bits = [name('action', rec.action)];
  const w = words();
  if (rec.input) {
    const [what, on, off] = (w.input && w.input[rec.input.input]) || [rec.input.input, 'on', 'off'];
    bits.push(`${what} ${rec.input.active ? on : off}`);
  }
  if (rec.sensor) {
    const active = w.active || ['', ''];
    bits.push(`${(w.sensor && w.sensor[rec.sensor.sensor]) || rec.sensor.sensor} ${rec.sensor.active ? active[0] : active[1]}`);
  }
  if (rec.tag) bits.push((w.presence && w.presence[rec.tag.presence]) || rec.tag.presence);
  if (rec.count !== undefined) bits.push(String(rec.count));
  if (rec.detail) bits.push(rec.detail);
  return el('span', { class: 'muted', text: bits.filter(Boolean).join(': ') });
}
