// @ts-check
// The users tab (admins): the console's users (those of the config file are
// listed only), and a form to add or change one.

import { api } from '../api.js';
import { $, el, errorMessage, fieldValue, modal, toast } from '../dom.js';
import { t } from '../i18n.js';
import { state } from '../store.js';

/** @typedef {import('../types.js').User} User */

/** Binds the form. */
export function mount() {
  $('#user-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = /** @type {HTMLFormElement} */ (ev.target);
    $('#user-error').textContent = '';
    /** @type {{ role: string, password?: string }} */
    const body = { role: fieldValue(f, 'role') };
    if (fieldValue(f, 'password')) body.password = fieldValue(f, 'password');
    try {
      await api('PUT', `/api/users/${encodeURIComponent(fieldValue(f, 'name').trim())}`, body);
      f.reset();
      toast(t('saved'));
      loadUsers();
    } catch (e) { $('#user-error').textContent = errorMessage(e); }
  });
}

/** The tab is shown. */
export function show() {
  loadUsers();
}

async function loadUsers() {
  try {
    const users = /** @type {User[]} */ (await api('GET', '/api/users'));
    $('#user-rows').replaceChildren(...users.map((u) => el('tr', { dataset: { user: u.name } },
      el('td', { text: u.name }),
      el('td', { text: t('role_' + u.role) }),
      el('td', { text: t(u.source === 'config' ? 'config_user' : 'console_user') }),
      el('td', {}, u.source === 'console' && state.me && u.name !== state.me.user
        ? el('button', {
          type: 'button', class: 'link danger', text: t('delete'),
          onclick: () => modal({
            title: t('delete'), body: [el('p', { text: t('delete_confirm', { name: u.name }) })], ok: t('delete'), danger: true,
            onOk: async () => { await api('DELETE', `/api/users/${encodeURIComponent(u.name)}`); loadUsers(); },
          }),
        })
        : null))));
  } catch (e) { toast(errorMessage(e), true); }
}
