// @ts-check
// The gateway's HTTP API: JSON in and out, the CSRF token on every write, and
// errors as ApiError with the gateway's code and a message in words.

import { errorText } from './i18n.js';
import { state } from './store.js';

export class ApiError extends Error {
  /**
   * @param {number} status  the HTTP status (0: no answer)
   * @param {string} code  the gateway's error code, `network` or `http_<status>`
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @type {() => void} */
let onUnauthenticated = () => {};

/**
 * What to do when the gateway says the session is gone (401): show the login.
 * @param {() => void} fn
 */
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

/**
 * One API call. A Blob or ArrayBuffer body goes as it is (with `contentType`),
 * anything else as JSON. Resolves to the parsed answer (null for 204); the
 * caller names its type.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {string} [contentType]
 * @returns {Promise<unknown>}
 */
export async function api(method, path, body, contentType) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (state.me && method !== 'GET') headers['X-CSRF-Token'] = state.me.csrf;
  /** @type {BodyInit | undefined} */
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers['Content-Type'] = contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', errorText('network') || 'network');
  }
  if (r.status === 204) return null;
  /** @type {{ error?: { code?: string, message?: string } } | null} */
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    /** @type {{ code?: string, message?: string }} */
    const err = (data && data.error) || {};
    if (r.status === 401 && path !== '/api/login') onUnauthenticated();
    const worded = errorText(err.code);
    const message = worded
      ? worded.replace('{retry}', r.headers.get('Retry-After') || '')
      : err.message || r.statusText;
    throw new ApiError(r.status, err.code || 'http_' + r.status, message);
  }
  return data;
}
