// @ts-check
// Times as the guards read them (local time, the date only when not today) and
// as datetime-local inputs take them.

/** @param {number} n */
const pad = (n) => String(n).padStart(2, '0');

/**
 * @param {string | null | undefined} ts  RFC 3339
 * @returns {string}
 */
export function fmtTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (isNaN(d.getTime())) return ts;
  const today = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * A datetime-local input's value as RFC 3339 (UTC), or '' when empty or bad.
 * @param {string} v
 * @returns {string}
 */
export function localInputToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d.getTime()) ? '' : d.toISOString();
}

/**
 * RFC 3339 as a datetime-local input's value.
 * @param {string | null | undefined} ts
 * @returns {string}
 */
export function isoToLocalInput(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
