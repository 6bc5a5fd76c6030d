// Small DOM helpers. User data only ever enters the page as text nodes or
// attribute values (never as HTML), so log content cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value' && 'value' in el) el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

const SVGNS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let announceTimer;
// announce tells screen readers about something that changed off-focus.
export function announce(text) {
  const el = document.getElementById('announce');
  if (!el) return;
  el.textContent = '';
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { el.textContent = text; }, 30);
}

let uid = 0;
export const nextId = (p) => `${p}-${++uid}`;

export function pad(n, w = 2) { return String(n).padStart(w, '0'); }

// fmtTime renders unix seconds as local "YYYY-MM-DD HH:MM:SS".
export function fmtTime(sec, withDate = true) {
  const d = new Date(sec * 1000);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
}

export function fmtRelative(sec, nowSec = Date.now() / 1000) {
  const d = Math.round(nowSec - sec);
  if (d < 5) return 'just now';
  if (d < 60) return `${d} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString('en-US');
}

// localInput formats unix seconds for <input type="datetime-local">.
export function localInput(sec) {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// errorBox renders an error as an alert with its code and message.
export function errorBox(err, extra) {
  const code = err && err.code ? err.code : 'Error';
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'banner error', role: 'alert' },
    h('strong', null, code), ' ', msg, extra ? h('div', { class: 'hint' }, extra) : null);
}

// emptyState is a friendly "nothing here yet" panel that says what to do.
export function emptyState(title, ...body) {
  return h('section', { class: 'empty' }, h('h3', null, title), ...body);
}

export function code(text) { return h('code', null, text); }

// confirmDialog asks before a change that cannot be undone (a modal
// <dialog>: focus stays inside, Escape cancels). With typeToConfirm the
// confirm button works only once that text is typed. Resolves true when
// confirmed.
export function confirmDialog({ title, body, confirmLabel, typeToConfirm }) {
  return new Promise((resolve) => {
    const id = nextId('dlg');
    const input = typeToConfirm ? h('input', { id: `${id}-in`, autocomplete: 'off', spellcheck: 'false' }) : null;
    const ok = h('button', { type: 'button', class: 'danger', id: 'confirm-ok', disabled: !!typeToConfirm }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'secondary', id: 'confirm-cancel' }, 'Cancel');
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': `${id}-h` },
      h('h2', { id: `${id}-h` }, title), ...[].concat(body),
      input ? h('label', { for: input.id }, 'Type ', code(typeToConfirm), ' to confirm') : null, input,
      h('div', { class: 'actions' }, cancel, ok));
    let done = false;
    const finish = (v) => { if (done) return; done = true; dlg.close(); dlg.remove(); resolve(v); };
    if (input) input.addEventListener('input', () => { ok.disabled = input.value !== typeToConfirm; });
    ok.addEventListener('click', () => finish(true));
    cancel.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    (input || cancel).focus();
  });
}
