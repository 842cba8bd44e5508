// @ts-check
// DOM helpers. Everything shown is built with DOM nodes and textContent, never
// HTML from data.

/**
 * The element `sel` finds in the page (the page's own ids: always there).
 * @param {string} sel
 * @returns {HTMLElement}
 */
export const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

/**
 * A form control's value by name (`form.elements`).
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {string}
 */
export function fieldValue(form, name) {
  const f = /** @type {HTMLInputElement | HTMLSelectElement | null} */ (form.elements.namedItem(name));
  return f ? f.value : '';
}

/**
 * Attributes for `el`: `class`, `text` (textContent), `on<event>` (a
 * listener), `dataset` (an object), any other attribute (`true` sets it empty).
 * undefined, null and false leave it out.
 * @typedef {{ [attr: string]: unknown }} Attrs
 */

/** @typedef {Node | string | number | boolean | null | undefined} Child */

/**
 * A new element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...(Child | Child[])} children  null, undefined and false are left out
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = String(v);
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let toastTimer;

/**
 * A message at the bottom for four seconds.
 * @param {string} msg
 * @param {boolean} [bad]  shown as an error
 */
export function toast(msg, bad) {
  const box = $('#toast');
  box.textContent = msg;
  box.classList.toggle('bad', !!bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

/**
 * @typedef {object} ModalOptions
 * @property {string} title
 * @property {Node[]} body
 * @property {string} ok  the OK button's text
 * @property {() => Promise<void>} [onOk]  its error is shown in the dialog, which stays open
 * @property {boolean} [danger]  a red OK button
 * @property {boolean} [wide]
 * @property {HTMLElement} [focus]
 * @property {boolean} [noCancel]
 */

/**
 * The one dialog (#modal), filled and opened.
 * @param {ModalOptions} opts
 */
export function modal({ title, body, ok, onOk, danger, wide, focus, noCancel }) {
  const dlg = /** @type {HTMLDialogElement} */ ($('#modal'));
  $('#modal-title').textContent = title;
  $('#modal-body').replaceChildren(...body);
  $('#modal-error').textContent = '';
  const okBtn = /** @type {HTMLButtonElement} */ ($('#modal-ok'));
  okBtn.textContent = ok;
  okBtn.classList.toggle('danger', !!danger);
  okBtn.disabled = false;
  $('#modal-cancel').hidden = !!noCancel;
  dlg.classList.toggle('wide', !!wide);
  const form = /** @type {HTMLFormElement} */ ($('#modal-form'));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (!onOk) { dlg.close(); return; }
    okBtn.disabled = true;
    $('#modal-error').textContent = '';
    try {
      await onOk();
      dlg.close();
    } catch (e) {
      $('#modal-error').textContent = errorMessage(e);
    } finally {
      okBtn.disabled = false;
    }
  };
  $('#modal-cancel').onclick = () => dlg.close();
  if (!dlg.open) dlg.showModal();
  if (focus) focus.focus();
}

/**
 * What a caught error says.
 * @param {unknown} e
 * @returns {string}
 */
export function errorMessage(e) {
  return e instanceof Error ? e.message : String(e);
}
