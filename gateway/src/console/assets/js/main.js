// @ts-check
// The guards' console: the entry point. Native ES modules, no build step: the
// gateway serves these files as they are (see gateway/src/console/assets.rs).
// Here: the language, the login, the tabs, the header, the start.

import { api, whenUnauthenticated } from './api.js';
import { $, errorMessage } from './dom.js';
import { getLang, loadLabels, setLang, t } from './i18n.js';
import { closeLive, connectLive, onLive, setConn } from './live.js';
import { beep, toggleSound } from './sound.js';
import { publish, state } from './store.js';
import * as alarms from './views/alarms.js';
import * as doors from './views/doors.js';
import * as events from './views/events.js';
import * as roster from './views/roster.js';
import * as users from './views/users.js';

/** @typedef {import('./types.js').Me} Me */

// ---------------------------------------------------------------- language
/** Words everything in the language chosen. */
function applyLang() {
  const lang = getLang();
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  document.querySelectorAll('[data-i18n]').forEach((e) => { e.textContent = t(/** @type {HTMLElement} */ (e).dataset.i18n || ''); });
  document.querySelectorAll('[data-i18n-ph]').forEach((e) => {
    const input = /** @type {HTMLInputElement} */ (e);
    input.placeholder = t(input.dataset.i18nPh || '');
  });
  document.querySelectorAll('.lang-switch').forEach((b) => { b.textContent = lang === 'zh' ? 'English' : '中文'; });
  $('#sound').textContent = state.sound ? t('sound_on') : t('sound_off');
  $('#sound').classList.toggle('off', !state.sound);
  if (state.me) $('#whoami').textContent = `${state.me.user} (${t('role_' + state.me.role)})`;
  publish('lang');
  setConn($('#conn').dataset.state || 'connecting');
}

// ---------------------------------------------------------------- login
/**
 * The login form (also when the session ended).
 * @param {string} [message]
 */
function showLogin(message) {
  closeLive();
  setConn('connecting');
  state.me = null;
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message || '';
  /** @type {HTMLInputElement} */ ($('#login-password')).value = '';
  $('#login-user').focus();
}

/** The page, once logged in: the lists, then the live stream. */
async function showApp() {
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  const me = /** @type {Me} */ (state.me);
  document.querySelectorAll('[data-admin]').forEach((e) => { /** @type {HTMLElement} */ (e).hidden = me.role !== 'admin'; });
  applyLang();
  await Promise.all([doors.loadDoors(), alarms.loadOpenAlarms(), alarms.loadFeed()]);
  connectLive();
}

// ---------------------------------------------------------------- tabs
/** @type {Record<string, { show(): void }>} */
const TABS = { doors, events, roster, users };

/**
 * Shows one tab (and loads what it shows).
 * @param {string} tab
 */
function showTab(tab) {
  state.tab = tab;
  document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', /** @type {HTMLElement} */ (b).dataset.tab === tab));
  document.querySelectorAll('main .tab').forEach((s) => { /** @type {HTMLElement} */ (s).hidden = s.id !== 'tab-' + tab; });
  const view = TABS[tab];
  if (view) view.show();
}

// ---------------------------------------------------------------- wiring
function bind() {
  whenUnauthenticated(() => showLogin());

  document.querySelectorAll('.lang-switch').forEach((b) => b.addEventListener('click', () => {
    setLang(getLang() === 'zh' ? 'en' : 'zh');
    applyLang();
  }));

  $('#sound').addEventListener('click', () => {
    toggleSound();
    applyLang();
    if (state.sound) beep(1);
  });

  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const user = /** @type {HTMLInputElement} */ ($('#login-user'));
    const password = /** @type {HTMLInputElement} */ ($('#login-password'));
    const submit = /** @type {HTMLButtonElement} */ ($('#login-submit'));
    $('#login-error').textContent = '';
    submit.disabled = true;
    try {
      state.me = /** @type {Me} */ (await api('POST', '/api/login', {
        user: user.value.trim(),
        password: password.value,
      }));
      password.value = '';
      await showApp();
    } catch (e) {
      $('#login-error').textContent = `${t('login_failed')}: ${errorMessage(e)}`;
    } finally {
      submit.disabled = false;
    }
  });

  $('#logout').addEventListener('click', async () => {
    try { await api('POST', '/api/logout'); } catch (e) { /* logged out anyway */ }
    showLogin();
  });

  $('#tabs').addEventListener('click', (ev) => {
    const b = /** @type {HTMLElement | null} */ (/** @type {Element} */ (ev.target).closest('button[data-tab]'));
    if (!b) return;
    showTab(b.dataset.tab || '');
  });

  onLive({
    alarm: alarms.applyAlarm,
    event: (rec) => {
      if (rec.door || rec.kind === 'device') doors.refreshDoorsSoon();
      alarms.applyEvent(rec);
    },
    reconnected: () => { alarms.loadOpenAlarms(); doors.loadDoors(); },
    gap: () => { alarms.loadOpenAlarms(); alarms.loadFeed(); doors.loadDoors(); },
  });

  for (const view of [alarms, events, doors, roster, users]) view.mount();
}

// ---------------------------------------------------------------- start
(async function start() {
  bind();
  // The domain words and the session are asked for at once; nothing is drawn
  // before the words are here.
  const labels = loadLabels();
  const me = api('GET', '/api/me');
  me.catch(() => { /* answered below */ });
  await labels;
  applyLang();
  try {
    state.me = /** @type {Me} */ (await me);
    await showApp();
  } catch (e) {
    showLogin();
  }
})();
