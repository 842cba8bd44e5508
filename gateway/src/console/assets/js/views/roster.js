// @ts-check
// The roster tab (admins): search, add, edit and remove persons, their
// credentials, visitor passes with an expiry, and face photos (JPEG; a refused
// photo is explained in words and the dialog stays open).

import { api } from '../api.js';
import { $, el, errorMessage, fieldValue, modal, toast } from '../dom.js';
import { fmtTime, isoToLocalInput, localInputToIso } from '../format.js';
import { name, t } from '../i18n.js';
import { state } from '../store.js';

/** @typedef {import('../types.js').Person} Person */
/** @typedef {import('../types.js').PersonsPage} PersonsPage */
/** @typedef {import('../types.js').Credential} Credential */

/** @type {string | null} */
let personsNext = null;

/** Binds the search form and the buttons. */
export function mount() {
  $('#roster-search').addEventListener('submit', (ev) => { ev.preventDefault(); loadPersons(false); });
  $('#persons-more').addEventListener('click', () => loadPersons(true));
  $('#person-add').addEventListener('click', () => editPerson(null));
}

/** The tab is shown. */
export function show() {
  loadPersons(false);
}

/**
 * Lists the persons the search finds; `more` appends the next page.
 * @param {boolean} more
 */
async function loadPersons(more) {
  const q = new URLSearchParams();
  const text = fieldValue(/** @type {HTMLFormElement} */ ($('#roster-search')), 'q').trim();
  if (text) q.set('q', text);
  q.set('limit', '100');
  if (more && personsNext) q.set('after', personsNext);
  try {
    const r = /** @type {PersonsPage} */ (await api('GET', '/api/persons?' + q.toString()));
    const rows = r.persons.map(personRow);
    if (more) $('#person-rows').append(...rows);
    else $('#person-rows').replaceChildren(...rows);
    personsNext = r.next_after;
    $('#persons-more').hidden = !r.next_after;
  } catch (e) { toast(errorMessage(e), true); }
}

/**
 * @param {Person} p
 * @returns {HTMLTableRowElement}
 */
function personRow(p) {
  return el('tr', { dataset: { person: p.id } },
    el('td', { text: p.id }),
    el('td', { text: p.name }),
    el('td', { text: name('group', p.group) }),
    el('td', { text: p.credentials.map((c) => `${name('cred', c.type)} ${c.value}`).join(', ') || t('none') }),
    el('td', { text: p.valid_until ? fmtTime(p.valid_until) : '' }),
    el('td', { text: String(p.faces || 0) }),
    el('td', { class: 'nowrap' },
      el('button', { type: 'button', class: 'link', text: t('edit'), onclick: () => editPerson(p) }),
      el('button', { type: 'button', class: 'link danger', text: t('delete'), onclick: () => deletePerson(p) })));
}

/**
 * One credential's line in the dialog (removable).
 * @param {Credential | null} c
 * @returns {HTMLDivElement}
 */
function credRow(c) {
  const type = el('select', { class: 'cred-type' },
    ...['card', 'plate', 'tag', 'pin', 'qr'].map((k) => el('option', { value: k, text: name('cred', k) })));
  type.value = (c && c.type) || 'card';
  const value = el('input', { class: 'cred-value', value: (c && c.value) || '' });
  const row = el('div', { class: 'cred-row' }, type, value,
    el('button', { type: 'button', class: 'link danger', text: '✕', onclick: () => row.remove() }));
  return row;
}

/**
 * The person dialog: a new person (null) or an existing one.
 * @param {Person | null} p
 */
function editPerson(p) {
  const isNew = !p;
  const f = {
    id: el('input', { name: 'id', value: p ? p.id : '', required: true, readonly: !isNew }),
    name: el('input', { name: 'name', value: p ? p.name : '', required: true }),
    group: el('select', { name: 'group' },
      ...['resident', 'staff', 'visitor', 'watchlist'].map((g) => el('option', { value: g, text: name('group', g) }))),
    tags: el('input', { name: 'tags', value: p ? (p.tags || []).join(', ') : '' }),
    from: el('input', { name: 'valid_from', type: 'datetime-local', value: p ? isoToLocalInput(p.valid_from) : '' }),
    until: el('input', { name: 'valid_until', type: 'datetime-local', value: p ? isoToLocalInput(p.valid_until) : '' }),
    photo: el('input', { name: 'photo', type: 'file', accept: 'image/jpeg' }),
  };
  f.group.value = p ? p.group : 'resident';
  const creds = el('div', { class: 'creds' }, ...(p ? p.credentials : []).filter((c) => c.type !== 'face').map(credRow));
  /**
   * @param {string} key
   * @param {HTMLElement} input
   */
  const label = (key, input) => el('label', {}, el('span', { text: t(key) }), input);
  modal({
    title: t('person_title'),
    wide: true,
    body: [
      el('div', { class: 'form-grid' },
        label('ID', f.id), label('name', f.name), label('group', f.group), label('tags', f.tags),
        label('valid_from', f.from), label('valid_until', f.until)),
      el('div', {}, el('span', { class: 'label', text: t('credentials') }), creds,
        el('button', { type: 'button', class: 'link', text: '+ ' + t('add_credential'), onclick: () => creds.append(credRow(null)) })),
      label('face_photo', f.photo),
      el('p', { class: 'muted', text: `${t('faces')}: ${p ? p.faces || 0 : 0}` }),
    ],
    ok: t('save'),
    onOk: async () => {
      if (f.group.value === 'visitor' && !f.until.value) throw new Error(t('visitor_pass'));
      /** @type {{ name: string, group: string, tags: string[], credentials: Credential[], valid_from?: string, valid_until?: string }} */
      const person = {
        name: f.name.value.trim(),
        group: f.group.value,
        tags: f.tags.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
        credentials: [...creds.querySelectorAll('.cred-row')]
          .map((r) => ({
            type: /** @type {HTMLSelectElement} */ (r.querySelector('.cred-type')).value,
            value: /** @type {HTMLInputElement} */ (r.querySelector('.cred-value')).value.trim(),
          }))
          .filter((c) => c.value),
      };
      const from = localInputToIso(f.from.value);
      const until = localInputToIso(f.until.value);
      if (from) person.valid_from = from;
      if (until) person.valid_until = until;
      const id = f.id.value.trim();
      const file = f.photo.files && f.photo.files[0];
      const maxKib = state.me ? state.me.max_upload_kib : 0;
      if (file && file.size > maxKib * 1024) {
        throw new Error(`${t('face_photo')}: ${t('too_big', { kib: maxKib })}`);
      }
      await api('PUT', `/api/persons/${encodeURIComponent(id)}`, person);
      if (file) {
        try {
          await api('POST', `/api/persons/${encodeURIComponent(id)}/faces`, file, 'image/jpeg');
          toast(t('face_enrolled'));
        } catch (e) {
          loadPersons(false);
          // The person is saved; the photo was refused: say why, keep the dialog.
          f.id.readOnly = true;
          throw new Error(`${t('face_photo')}: ${errorMessage(e)}`);
        }
      } else {
        toast(t('saved'));
      }
      loadPersons(false);
    },
  });
}

/**
 * Asks, then removes the person.
 * @param {Person} p
 */
function deletePerson(p) {
  modal({
    title: t('delete'),
    body: [el('p', { text: t('delete_confirm', { name: `${p.name} (${p.id})` }) })],
    ok: t('delete'),
    danger: true,
    onOk: async () => {
      await api('DELETE', `/api/persons/${encodeURIComponent(p.id)}`);
      toast(t('deleted'));
      loadPersons(false);
    },
  });
}
