// @ts-check
// The live stream: Server-Sent Events from /api/live. The last seq seen is kept
// (also in sessionStorage), so a reconnect, also after a gateway restart,
// resumes where the page left off; a `gap` (away longer than the gateway keeps)
// makes the page reload its lists instead.

import { $, toast } from './dom.js';
import { api, ApiError } from './api.js';
import { t } from './i18n.js';
import { state } from './store.js';

/** @typedef {import('./types.js').AlarmRecord} AlarmRecord */
/** @typedef {import('./types.js').EventRecord} EventRecord */
/** @typedef {import('./types.js').Me} Me */

/**
 * What the stream's records do to the page.
 * @typedef {object} LiveHandlers
 * @property {(rec: AlarmRecord) => void} alarm
 * @property {(rec: EventRecord) => void} event
 * @property {() => void} reconnected  connected again: refresh the lists (the replay follows)
 * @property {() => void} gap  records were missed: reload the lists
 */

/** @type {LiveHandlers} */
let handlers = {
  alarm: () => {},
  event: () => {},
  reconnected: () => {},
  gap: () => {},
};

/** @type {EventSource | null} */
let es = null;
/** @type {number | null} */
let lastSeq = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let reconnectTimer;

/**
 * Says what the stream's records do (once, before connecting).
 * @param {LiveHandlers} h
 */
export function onLive(h) {
  handlers = h;
}

/**
 * Shows the connection's state in the header (#conn, data-state).
 * @param {string} s  live, lost or connecting
 */
export function setConn(s) {
  const c = $('#conn');
  c.dataset.state = s;
  c.textContent = t(s === 'live' ? 'conn_live' : s === 'lost' ? 'conn_lost' : 'conn_connecting');
}

/**
 * Keeps the highest seq seen.
 * @param {string} seq  an SSE event id
 */
function remember(seq) {
  const n = Number(seq);
  if (!Number.isFinite(n)) return;
  if (lastSeq === null || n > lastSeq) {
    lastSeq = n;
    sessionStorage.setItem('gw.lastSeq', String(n));
  }
}

/** Closes the stream (logout, before a reconnect). */
export function closeLive() {
  if (es) { es.close(); es = null; }
  clearTimeout(reconnectTimer);
}

/**
 * Listens to one kind of the stream's events (they carry their seq as id).
 * @param {EventSource} source
 * @param {string} kind
 * @param {(e: MessageEvent<string>) => void} fn
 */
function on(source, kind, fn) {
  source.addEventListener(kind, (e) => fn(/** @type {MessageEvent<string>} */ (e)));
}

/** Opens the stream, after the last seq seen if any. */
export function connectLive() {
  closeLive();
  if (lastSeq === null) {
    const saved = Number(sessionStorage.getItem('gw.lastSeq'));
    if (sessionStorage.getItem('gw.lastSeq') !== null && Number.isFinite(saved)) lastSeq = saved;
  }
  const url = '/api/live' + (lastSeq !== null ? `?since=${lastSeq}` : '');
  setConn('connecting');
  const source = new EventSource(url);
  es = source;
  let first = true;
  on(source, 'hello', (e) => {
    remember(e.lastEventId);
    setConn('live');
    // After a reconnect the lists are refreshed; the replayed records follow.
    if (!first) handlers.reconnected();
    first = false;
  });
  on(source, 'gap', (e) => {
    lastSeq = null;
    remember(e.lastEventId);
    setConn('live');
    toast(t('gap'));
    handlers.gap();
  });
  on(source, 'alarm', (e) => {
    remember(e.lastEventId);
    try { handlers.alarm(JSON.parse(e.data)); } catch (err) { console.error(err); }
  });
  on(source, 'event', (e) => {
    remember(e.lastEventId);
    try { handlers.event(JSON.parse(e.data)); } catch (err) { console.error(err); }
  });
  source.onerror = () => {
    setConn('lost');
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (the gateway answered with an error while
      // restarting, or the session ended): check the session, then reconnect.
      reconnectTimer = setTimeout(async () => {
        try {
          state.me = /** @type {Me} */ (await api('GET', '/api/me'));
          connectLive();
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 401) reconnectTimer = setTimeout(connectLive, 2000);
        }
      }, 1500);
    }
  };
}
