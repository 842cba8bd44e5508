// @ts-check
// The doors tab: each door's state and link, a remote-open button that asks
// first, and for elevators releasing an e-bike hold. Polled every 5 s while
// shown; live events at a door refresh it too.

import { api } from '../api.js';
import { $, el, errorMessage, modal, toast } from '../dom.js';
import { getLang, name, t } from '../i18n.js';
import { publish, state, subscribe } from '../store.js';

/** @typedef {import('../types.js').Door} Door */

/** Redraws on a change of the doors or the language; polls while shown. */
export function mount() {
  subscribe('doors', renderDoors);
  subscribe('lang', renderDoors);
  setInterval(() => { if (state.me && state.tab === 'doors') loadDoors(); }, 5000);
}

/** The tab is shown. */
export function show() {
  loadDoors();
}

/** Loads the doors (their names are used everywhere). */
export async function loadDoors() {
  try {
    const r = /** @type {{ doors: Door[] }} */ (await api('GET', '/api/doors'));
    state.doors = new Map(r.doors.map((d) => [d.id, d]));
    publish('doors');
  } catch (e) { /* shown by the connection state */ }
}

/** @type {ReturnType<typeof setTimeout> | null} */
let doorRefresh = null;

/** Loads the doors in a moment (many events may come at once). */
export function refreshDoorsSoon() {
  if (doorRefresh) return;
  doorRefresh = setTimeout(() => { doorRefresh = null; loadDoors(); }, 300);
}

let doorsShown = '';
function renderDoors() {
  const grid = $('#door-grid');
  if (!grid) return;
  // Redraw only on a change, so that a button is not replaced under a finger.
  const key = getLang() + JSON.stringify([...state.doors.values()]);
  if (key === doorsShown) return;
  doorsShown = key;
  grid.replaceChildren();
  for (const d of state.doors.values()) {
    const link = d.online === true ? 'online' : d.online === false ? 'offline' : 'unknown';
    grid.append(el('div', { class: `door-card door-${d.status}`, dataset: { door: d.id } },
      el('div', { class: 'door-head' },
        el('strong', { text: d.name }),
        el('span', { class: `pill link-${link}`, text: t(link) })),
      el('div', { class: 'muted', text: `${d.zone} · ${name('doorkind', d.kind)}` }),
      el('div', { class: 'door-status', text: name('door', d.status) }),
      el('div', { class: 'row' },
        el('button', { class: 'primary open-door', type: 'button', text: t('open_door'), onclick: () => confirmOpen(d) }),
        d.kind === 'elevator'
          ? el('button', { type: 'button', class: 'link', text: t('release_hold'), onclick: () => releaseHold(d) })
          : null)));
  }
}

/**
 * Asks, then opens the door (journaled with the user's name).
 * @param {Door} d
 */
function confirmOpen(d) {
  modal({
    title: t('open_title'),
    body: [el('p', { text: t('open_confirm', { door: d.name }) })],
    ok: t('open_door'),
    danger: true,
    onOk: async () => {
      await api('POST', `/api/doors/${encodeURIComponent(d.id)}/open`);
      toast(t('opened', { door: d.name }));
      refreshDoorsSoon();
    },
  });
}

/**
 * Releases an elevator's e-bike hold.
 * @param {Door} d
 */
async function releaseHold(d) {
  try {
    await api('POST', `/api/doors/${encodeURIComponent(d.id)}/release-hold`);
    toast(t('released', { door: d.name }));
  } catch (e) { toast(errorMessage(e), true); }
}
