// Logstore creation, settings (retention, shards, deletion) and the index
// editor.
import { h, clear, announce, errorBox, code, nextId, confirmDialog, fmtTime } from './dom.js';
import { sls, paths } from './api.js';
import { go, searchHref, projectHref, indexHref, settingsHref, setCrumbs, canWrite } from './nav.js';

// DEFAULT_TOKENS are the Log Service's default delimiters.
export const DEFAULT_TOKENS = [',', ' ', "'", '"', ';', '=', '(', ')', '[', ']', '{', '}', '?', '@', '&', '<', '>', '/', ':', '\n', '\t', '\r'];

const escTok = (t) => t.map((c) => ({ '\n': '\\n', '\t': '\\t', '\r': '\\r', '\\': '\\\\' }[c] || c)).join('');
function unescTok(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      const n = s[++i];
      out.push({ n: '\n', t: '\t', r: '\r', '\\': '\\' }[n] || n);
    } else out.push(s[i]);
  }
  return [...new Set(out)];
}

export function defaultIndex() {
  return { line: { token: DEFAULT_TOKENS.slice(), caseSensitive: false, chn: false }, keys: {} };
}

export function createLogstoreForm(project) {
  const name = h('input', { id: 'nl-name', required: true, spellcheck: 'false', 'aria-describedby': 'nl-help' });
  const ttl = h('input', { id: 'nl-ttl', type: 'number', min: 1, max: 3650, value: 30 });
  const shards = h('input', { id: 'nl-shards', type: 'number', min: 1, max: 64, value: 2 });
  const withIndex = h('input', { id: 'nl-index', type: 'checkbox', checked: true });
  const msg = h('div');
  const form = h('form', { class: 'card form', id: 'create-logstore' },
    h('h2', null, 'Create a logstore'),
    h('label', { for: 'nl-name' }, 'Name'), name,
    h('p', { id: 'nl-help', class: 'hint' }, '3–63 characters: lower-case letters, digits, hyphens and underscores.'),
    h('div', { class: 'row' },
      h('div', null, h('label', { for: 'nl-ttl' }, 'Retention (days)'), ttl),
      h('div', null, h('label', { for: 'nl-shards' }, 'Shards'), shards)),
    h('div', { class: 'check' }, withIndex, h('label', { for: 'nl-index' }, 'Create a full-text index now (searches need an index; add typed keys for SQL later)')),
    msg, h('button', { type: 'submit', class: 'primary' }, 'Create logstore'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const ls = name.value.trim();
    try {
      await sls('POST', project, '/logstores', { logstoreName: ls, ttl: Number(ttl.value), shardCount: Number(shards.value) });
      if (withIndex.checked) await sls('POST', project, paths.index(ls), defaultIndex());
      announce(`Logstore ${ls} created`);
      go(withIndex.checked ? searchHref(project, ls) : indexHref(project, ls));
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  return form;
}

const TYPES = ['text', 'long', 'double', 'json'];

export async function indexPage(main, project, ls) {
  setCrumbs([project, projectHref(project)], [ls, searchHref(project, ls)], ['Index', indexHref(project, ls)]);
  const page = h('section', { class: 'page' }, h('h1', null, `Index of ${ls}`),
    h('p', { class: 'hint' }, 'The full-text index makes bare words searchable. A key index makes ', code('key:value'),
      ' searches work; turn on "Analytics" (doc_value) to use the key as a column in SQL after the ', code('|'), '.'));
  main.appendChild(page);
  let idx, exists = true;
  try {
    idx = await sls('GET', project, paths.index(ls));
  } catch (err) {
    if (err.code !== 'IndexConfigNotExist') { page.appendChild(errorBox(err)); return; }
    exists = false;
    idx = defaultIndex();
    page.appendChild(h('div', { class: 'banner info', role: 'note' }, 'This logstore has no index yet, so it cannot be searched. Save to create one.'));
  }
  idx.keys = idx.keys || {};
  const lineOn = h('input', { type: 'checkbox', id: 'ix-line', checked: !!idx.line });
  const lineCase = h('input', { type: 'checkbox', id: 'ix-case', checked: !!(idx.line && idx.line.caseSensitive) });
  const tokens = h('input', { id: 'ix-tokens', value: escTok((idx.line && idx.line.token) || DEFAULT_TOKENS), spellcheck: 'false', 'aria-describedby': 'ix-tok-help' });
  const tbody = h('tbody');
  const addRow = (name = '', k = { type: 'text', doc_value: true }) => {
    const id = nextId('key');
    const tr = h('tr', null,
      h('td', null, h('label', { for: id, class: 'sr-only' }, 'Key name'), h('input', { id, class: 'k-name', value: name, spellcheck: 'false', required: true })),
      h('td', null, h('label', { for: id + 't', class: 'sr-only' }, 'Type'),
        h('select', { id: id + 't', class: 'k-type' }, TYPES.map((t) => h('option', { value: t, selected: (k.type || 'text') === t }, t)))),
      h('td', null, h('input', { type: 'checkbox', class: 'k-doc', id: id + 'd', checked: !!k.doc_value }), h('label', { for: id + 'd', class: 'sr-only' }, 'Analytics')),
      h('td', null, h('input', { type: 'checkbox', class: 'k-case', id: id + 'c', checked: !!k.caseSensitive }), h('label', { for: id + 'c', class: 'sr-only' }, 'Case sensitive')),
      h('td', null, h('button', { type: 'button', class: 'link danger', onclick: () => tr.remove(), 'aria-label': `Remove key ${name}` }, 'Remove')));
    tr._orig = k;
    tbody.appendChild(tr);
    return tr;
  };
  Object.keys(idx.keys).sort().forEach((k) => addRow(k, idx.keys[k]));
  const msg = h('div');
  const form = h('form', { class: 'card form wide', id: 'index-form' },
    h('fieldset', null, h('legend', null, 'Full-text index'),
      h('div', { class: 'check' }, lineOn, h('label', { for: 'ix-line' }, 'Index every value for full-text search')),
      h('div', { class: 'check' }, lineCase, h('label', { for: 'ix-case' }, 'Case sensitive')),
      h('label', { for: 'ix-tokens' }, 'Delimiters'), tokens,
      h('p', { id: 'ix-tok-help', class: 'hint' }, 'Characters that split text into words; write newline, tab and carriage return as \\n \\t \\r.')),
    h('fieldset', null, h('legend', null, 'Key indexes'),
      h('div', { class: 'table-scroll' }, h('table', { class: 'keys' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Analytics'), h('th', { scope: 'col' }, 'Case sensitive'), h('th', null, h('span', { class: 'sr-only' }, 'Actions')))),
        tbody)),
      h('button', { type: 'button', class: 'secondary', id: 'ix-add', onclick: () => addRow().querySelector('input').focus() }, 'Add key')),
    msg,
    canWrite(project) ? null : h('p', { class: 'hint', id: 'ix-readonly' }, 'This access key can only read this project: the index is shown, not editable.'),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', disabled: !canWrite(project) }, exists ? 'Save index' : 'Create index'),
      h('a', { href: searchHref(project, ls) }, 'Back to search')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const out = { ...idx, keys: {} };
    if (lineOn.checked) out.line = { ...(idx.line || {}), token: unescTok(tokens.value), caseSensitive: lineCase.checked };
    else delete out.line;
    for (const tr of tbody.querySelectorAll('tr')) {
      const name = tr.querySelector('.k-name').value.trim();
      if (!name) continue;
      const type = tr.querySelector('.k-type').value;
      const k = { ...tr._orig, type, doc_value: tr.querySelector('.k-doc').checked, caseSensitive: tr.querySelector('.k-case').checked };
      if (type === 'text' && !k.token) k.token = DEFAULT_TOKENS.slice();
      out.keys[name] = k;
    }
    try {
      await sls(exists ? 'PUT' : 'POST', project, paths.index(ls), out);
      exists = true;
      idx = out;
      msg.appendChild(h('div', { class: 'banner ok', role: 'status' }, 'Index saved. New logs are indexed with it.'));
      announce('Index saved');
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  page.appendChild(form);
}

// settingsPage edits a logstore's retention and shard count and deletes
// it, each change confirmed first.
export async function settingsPage(main, project, ls) {
  setCrumbs([project, projectHref(project)], [ls, searchHref(project, ls)], ['Settings', settingsHref(project, ls)]);
  const page = h('section', { class: 'page' }, h('h1', null, `Settings of ${ls}`));
  main.appendChild(page);
  let info;
  try {
    info = await sls('GET', project, paths.logstore(ls));
  } catch (err) { page.appendChild(errorBox(err)); return; }
  const write = canWrite(project);
  const ttl = h('input', { id: 'ls-ttl', type: 'number', min: 1, max: 3650, value: info.ttl, disabled: !write, 'aria-describedby': 'ls-ttl-help' });
  const shards = h('input', { id: 'ls-shards', type: 'number', min: info.shardCount, max: 256, value: info.shardCount, disabled: !write, 'aria-describedby': 'ls-shards-help' });
  const msg = h('div', { role: 'status' });
  const form = h('form', { class: 'card form', id: 'logstore-settings', novalidate: true },
    h('h2', null, 'Retention and shards'),
    h('div', { class: 'row' },
      h('div', null, h('label', { for: 'ls-ttl' }, 'Retention (days)'), ttl),
      h('div', null, h('label', { for: 'ls-shards' }, 'Shards'), shards)),
    h('p', { id: 'ls-ttl-help', class: 'hint' }, 'Logs older than the retention are deleted (by their own time).'),
    h('p', { id: 'ls-shards-help', class: 'hint' }, `Shards can be added, not removed: their logs and consumer checkpoints would be lost. Created ${info.createTime ? fmtTime(info.createTime) : ''}.`),
    msg, write ? h('button', { type: 'submit', class: 'primary' }, 'Save') : h('p', { class: 'hint' }, 'This access key can read this project but not change it.'));
  page.appendChild(form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const t = Number(ttl.value), n = Number(shards.value);
    if (!(Number.isInteger(t) && t >= 1 && t <= 3650)) { msg.appendChild(errorBox({ code: 'InvalidRetention', message: 'retention must be 1 to 3650 days' })); ttl.focus(); return; }
    if (!(Number.isInteger(n) && n >= info.shardCount && n <= 256)) { msg.appendChild(errorBox({ code: 'InvalidShardCount', message: `shards must be ${info.shardCount} to 256 (they can grow, not shrink)` })); shards.focus(); return; }
    if (t === info.ttl && n === info.shardCount) { msg.textContent = 'Nothing changed.'; return; }
    const changes = [];
    if (t !== info.ttl) changes.push(h('li', null, `Retention ${info.ttl} → ${t} days`, t < info.ttl ? h('strong', null, `: logs older than ${t} days are deleted`) : null));
    if (n !== info.shardCount) changes.push(h('li', null, `Shards ${info.shardCount} → ${n} (cannot be undone)`));
    if (!await confirmDialog({ title: `Change ${ls}?`, body: h('ul', null, changes), confirmLabel: 'Save changes' })) return;
    try {
      await sls('PUT', project, paths.logstore(ls), { logstoreName: ls, ttl: t, shardCount: n });
      info = { ...info, ttl: t, shardCount: n };
      shards.min = n;
      msg.textContent = `Saved: retention ${t} days, ${n} shards.`;
      announce(msg.textContent);
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  if (!write) return;
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-logstore' }, 'Delete logstore');
  const delMsg = h('div');
  page.appendChild(h('section', { class: 'card danger-zone', 'aria-labelledby': 'dz-h' },
    h('h2', { id: 'dz-h' }, 'Delete this logstore'),
    h('p', null, 'Deletes every log in it, its index and its consumer groups. Configs that send to it will fail until it is created again.'),
    delMsg, del));
  del.addEventListener('click', async () => {
    clear(delMsg);
    if (!await confirmDialog({ title: `Delete ${ls}?`, body: h('p', null, 'Every log in ', code(ls), ' is deleted. This cannot be undone.'), confirmLabel: 'Delete logstore', typeToConfirm: ls })) return;
    try {
      await sls('DELETE', project, paths.logstore(ls));
      announce(`Logstore ${ls} deleted`);
      go(projectHref(project));
    } catch (err) { delMsg.appendChild(errorBox(err)); }
  });
}
