// @ts-check
// The page's state, in one place, and a small publish/subscribe: a module that
// changes part of the state publishes its topic, and the views that show that
// part redraw.

/** @typedef {import('./types.js').Me} Me */
/** @typedef {import('./types.js').Door} Door */
/** @typedef {import('./types.js').AlarmEntry} AlarmEntry */
/** @typedef {import('./types.js').EventRecord} EventRecord */

/**
 * What changed:
 * - `lang`: the language (everything shown in words redraws),
 * - `doors`: the door list,
 * - `alarms`: the alarm list,
 * - `feed`: the live passes.
 * @typedef {'lang' | 'doors' | 'alarms' | 'feed'} Topic
 */

/**
 * @typedef {object} State
 * @property {Me | null} me  the session (null: logged out)
 * @property {Map<string, Door>} doors  by id
 * @property {Map<string, AlarmEntry>} alarms  by alarm id
 * @property {EventRecord[]} feed  the latest passes, newest first
 * @property {boolean} sound  beep on new alarms
 * @property {string} tab  the tab shown
 */

/** @type {State} */
export const state = {
  me: null,
  doors: new Map(),
  alarms: new Map(),
  feed: [],
  sound: savedSound(),
  tab: 'alarms',
};

/** @returns {boolean} */
function savedSound() {
  try {
    return localStorage.getItem('gw.sound') !== 'off';
  } catch (e) {
    return true; // no storage (outside a browser)
  }
}

/** @type {Map<Topic, Array<() => void>>} */
const listeners = new Map();

/**
 * Calls `fn` whenever `topic` is published, in the order subscribed.
 * @param {Topic} topic
 * @param {() => void} fn
 * @returns {() => void}  unsubscribes
 */
export function subscribe(topic, fn) {
  const list = listeners.get(topic) || [];
  list.push(fn);
  listeners.set(topic, list);
  return () => {
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  };
}

/**
 * Says that `topic`'s part of the state changed.
 * @param {Topic} topic
 */
export function publish(topic) {
  for (const fn of [...(listeners.get(topic) || [])]) fn();
}
