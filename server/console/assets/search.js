// The search page: query box, time range, histogram, results or SQL table
// and chart, field sidebar, live tail. All of its state is in the URL hash
// (query, time range, rows), so a search is shared by copying the link.
import { h, clear, announce, errorBox, emptyState, code, fmtTime, fmtCount, localInput, nextId, confirmDialog } from './dom.js';
import { sls, paths, checkQuery, tail as tailCall } from './api.js';
import { setCrumbs, projectHref, searchHref, indexHref, settingsHref, canWrite } from './nav.js';
import { rangeControl, resolve, relSeconds, relLabel, REFRESH, refreshSeconds } from './timerange.js';
import { completionAt, quoteValue, rank, sqlCandidates } from './complete.js';
import { toCSV, columnsOf, download, fileStamp, history as queryHistory, remember, forget } from './export.js';
import { histogram, chartPlan, chartKinds, drawChart, KIND_LABELS, timeValue, localTime } from './charts.js';
import { listDashboards, addChart, dashboardHref } from './dashboards.js';

const PAGE = 100; // GetLogs returns at most 100 rows per call
const POLL_MS = 2000;
const LIVE_MAX = 1000; // rows a live tail keeps on screen (the newest)
const HIDDEN_KEYS = new Set(['__time__', '__time_ns_part__', '__pack_meta__']);
const CONTEXT_LINES = 10; // lines each way a context view loads at a time

const nowSec = () => Math.floor(Date.now() / 1000);

// timeRange resolves the page's range to [from, to) in unix seconds: a
// relative range ("45m", "2h", "7d") ends now.
const timeRange = resolve;

function interval(from, to) {
  const span = Math.max(1, to - from);
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]) if (span / s <= 60) return s;
  return Math.ceil(span / 60);
}

const simple = /^[A-Za-z0-9_.\-]+$/;
function quote(v) { return simple.test(v) ? v : '"' + v.replace(/["\\]/g, (c) => '\\' + c) + '"'; }

// addTerm adds key:value (with negate, not key:value) to a "search | SQL"
// query, before the SQL part.
export function addTerm(query, search, key, value, negate = false) {
  const t = `${negate ? 'not ' : ''}${key.startsWith('__tag__:') ? '__tag__:' + quote(key.slice(8)) : quote(key)}:${quote(value)}`;
  const q = query.trim();
  let sqlPart = '';
  if (search !== undefined && q.length > search.length && q.startsWith(search)) sqlPart = q.slice(search.length);
  else if (search === undefined && q.includes('|')) { sqlPart = q.slice(q.indexOf('|')); search = q.slice(0, q.indexOf('|')); }
  const s = (search === undefined ? q : search).trim();
  const next = !s || s === '*' ? t : `${s} and ${t}`;
  return sqlPart ? `${next} ${sqlPart.trim()}` : next;
}

// topValuesQuery is the "search | SQL" query for the 10 most frequent
// values of key among the logs the search matches.
export function topValuesQuery(search, key) {
  const s = (search || '').trim() || '*';
  return `${s} | select "${key.replace(/"/g, '""')}" as v, count(*) as c group by v order by c desc, v limit 10`;
}

function readState(params) {
  const st = { q: params.get('q') || '', range: params.get('range') || '', from: Number(params.get('from')) || 0, to: Number(params.get('to')) || 0,
    rows: Math.min(1000, Math.max(PAGE, Number(params.get('rows')) || PAGE)), live: params.get('live') === '1',
    refresh: refreshSeconds(params.get('refresh')) ? params.get('refresh') : '',
    view: params.get('view') === 'table' ? 'table' : 'list', cols: (params.get('cols') || '').split(',').filter(Boolean).slice(0, 20) };
  if (st.range && !relSeconds(st.range)) st.range = '';
  if (!st.range && !(st.from && st.to && st.to > st.from)) st.range = '15m';
  if (st.range) { st.from = 0; st.to = 0; }
  return st;
}

function writeParams(st) {
  const p = new URLSearchParams();
  if (st.q) p.set('q', st.q);
  if (st.range) p.set('range', st.range); else { p.set('from', st.from); p.set('to', st.to); }
  if (st.rows !== PAGE) p.set('rows', st.rows);
  if (st.live) p.set('live', '1');
  if (st.refresh) p.set('refresh', st.refresh);
  if (st.view === 'table') p.set('view', 'table');
  if (st.view === 'table' && st.cols.length) p.set('cols', st.cols.join(','));
  return p.toString();
}

export async function searchPage(main, project, ls, params) {
  setCrumbs([project, projectHref(project)], [ls, searchHref(project, ls)]);
  const st = readState(params);
  let index = null;
  let indexErr = null;
  const indexP = sls('GET', project, paths.index(ls)).then((x) => { index = x; }, (e) => { indexErr = e; });

  // --- query form ---
  const qIn = h('textarea', { id: 'q', rows: 2, spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'q-help q-err', placeholder: 'status:500 and GET | SELECT path, count(*) AS n GROUP BY path ORDER BY n DESC', value: st.q });
  qIn.value = st.q;
  // A new relative range runs the search at once (a custom range waits
  // for its from/to and the Search button).
  const rc = rangeControl(st, ({ range: r }) => { st.range = r; form.requestSubmit(); });
  const refreshSel = h('select', { id: 'refresh' }, REFRESH.map(([v, l]) => h('option', { value: v, selected: st.refresh === v }, l)));
  const rowsSel = h('select', { id: 'rows' }, [100, 500, 1000].map((n) => h('option', { value: n, selected: st.rows === n }, `${n} rows`)));
  const live = h('input', { type: 'checkbox', id: 'live', role: 'switch', checked: st.live });
  const pauseBtn = h('button', { type: 'button', class: 'secondary', id: 'pause', 'aria-pressed': 'false', hidden: !st.live }, 'Pause');
  const shareMsg = h('span', { class: 'hint', role: 'status' });
  const share = h('button', { type: 'button', class: 'secondary', id: 'share' }, 'Copy link');
  const qErr = h('div', { id: 'q-err', 'aria-live': 'assertive' });
  const sugList = h('ul', { id: 'q-suggest', role: 'listbox', class: 'suggest', 'aria-label': 'Suggestions', hidden: true });
  qIn.setAttribute('role', 'combobox');
  qIn.setAttribute('aria-autocomplete', 'list');
  qIn.setAttribute('aria-controls', 'q-suggest');
  qIn.setAttribute('aria-expanded', 'false');
  const histList = h('ul', { class: 'history-list' });
  const histBox = h('details', { class: 'history', id: 'history' }, h('summary', null, 'History'), histList);
  const savedList = h('ul', { class: 'history-list' });
  const savedName = h('input', { id: 'saved-name', spellcheck: 'false', placeholder: 'e.g. Checkout errors' });
  const savedMsg = h('div', { role: 'status' });
  const savedForm = h('div', { class: 'saved-form' }, h('label', { for: 'saved-name' }, 'Save this search as'), savedName,
    h('button', { type: 'button', class: 'secondary', id: 'saved-save' }, 'Save'), savedMsg);
  const savedBox = h('details', { class: 'history', id: 'saved' }, h('summary', null, 'Saved searches'), savedForm, savedList);
  const form = h('form', { class: 'searchbar', role: 'search', 'aria-label': `Search ${ls}` },
    h('div', { class: 'q' }, h('label', { for: 'q' }, 'Query'), qIn,
      h('p', { id: 'q-help', class: 'hint' }, 'Search words or ', code('key:value'), ' (and/or/not), then optionally ', code('| SELECT …'), ' SQL. Enter runs it, Shift+Enter adds a line.'),
      sugList,
      h('div', { class: 'qtools' }, histBox, savedBox)),
    h('div', { class: 'controls' },
      ...rc.fields,
      h('div', null, h('label', { for: 'refresh' }, 'Auto-refresh'), refreshSel),
      h('div', null, h('label', { for: 'rows' }, 'Rows'), rowsSel),
      h('div', { class: 'check' }, live, h('label', { for: 'live' }, 'Live tail')),
      pauseBtn,
      h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Search'),
      share, shareMsg),
    qErr);

  const summary = h('p', { class: 'summary', role: 'status', id: 'summary' });
  const histoBox = h('div', { id: 'histogram', class: 'histo-box' });
  const fieldsBox = h('aside', { class: 'fields', 'aria-labelledby': 'fields-h' }, h('h2', { id: 'fields-h' }, 'Fields'));
  const resultsBox = h('section', { class: 'results', 'aria-labelledby': 'results-h' });
  const layout = h('div', { class: 'results-layout' }, fieldsBox, resultsBox);
  const page = h('section', { class: 'page search' },
    h('div', { class: 'title-row' }, h('h1', null, ls), h('span', { class: 'actions' }, h('a', { href: indexHref(project, ls) }, canWrite(project) ? 'Edit index' : 'View index'), h('a', { href: settingsHref(project, ls) }, 'Settings'))),
    form, summary, histoBox, layout);
  main.appendChild(page);

  // --- behaviour ---
  let rows = [];
  let lastSearch = '';
  let range = [0, 0];
  let exhausted = false;
  let loading = false;
  let ctrl = null;
  let pollTimer = null;
  let observer = null;
  let list = null;
  let moreBtn = null;

  // A new time range or row count runs the search at once (a custom
  // range waits for its from/to and the Search button).
  // Query history: the queries run here, newest first.
  histBox.addEventListener('toggle', () => {
    if (!histBox.open) return;
    const hs = queryHistory(project, ls);
    clear(histList);
    if (!hs.length) { histList.appendChild(h('li', { class: 'hint' }, 'Queries you run on this logstore are listed here (kept in this browser only).')); return; }
    for (const e of hs) {
      histList.appendChild(h('li', null, h('button', { type: 'button', class: 'hq', title: `Run again (last run ${fmtTime(Math.floor(e.at / 1000))})`,
        onclick: () => { qIn.value = e.q; histBox.open = false; form.requestSubmit(); } }, e.q)));
    }
    histList.appendChild(h('li', null, h('button', { type: 'button', class: 'secondary', id: 'history-clear',
      onclick: () => { forget(project, ls); histBox.open = false; announce('Query history cleared'); } }, 'Clear history')));
  });
  // Saved searches: the project's, through the API's /savedsearches (any
  // SDK sees them); the time range is kept too (sluiceRange, a field the
  // Log Service does not have: the API stores the JSON as sent).
  const slug = (t) => t.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100) || 'search';
  async function fillSaved() {
    clear(savedList);
    let items = [];
    try {
      const r = await sls('GET', project, '/savedsearches?offset=0&size=500');
      items = r.savedsearchItems || (r.savedsearches || []).map((n) => ({ savedsearchName: n, displayName: n }));
    } catch (err) { savedList.appendChild(h('li', null, errorBox(err))); return; }
    if (!items.length) { savedList.appendChild(h('li', { class: 'hint' }, 'No saved searches in this project yet.')); return; }
    for (const it of items) {
      const name = it.savedsearchName;
      const open = h('button', { type: 'button', class: 'hq', 'data-name': name }, it.displayName || name);
      open.addEventListener('click', async () => {
        try {
          const d = await sls('GET', project, `/savedsearches/${encodeURIComponent(name)}`);
          const p = new URLSearchParams();
          p.set('q', d.searchQuery);
          if (d.sluiceRange && relSeconds(d.sluiceRange)) p.set('range', d.sluiceRange);
          savedBox.open = false;
          location.hash = searchHref(project, d.logstore, p.toString());
        } catch (err) { savedMsg.replaceChildren(errorBox(err)); }
      });
      const del = h('button', { type: 'button', class: 'secondary del', 'aria-label': `Delete saved search ${it.displayName || name}` }, 'Delete');
      del.addEventListener('click', async () => {
        if (!await confirmDialog({ title: `Delete the saved search ${it.displayName || name}?`, body: h('p', null, 'It is deleted for everyone in the project.'), confirmLabel: 'Delete' })) return;
        try { await sls('DELETE', project, `/savedsearches/${encodeURIComponent(name)}`); announce('Saved search deleted'); fillSaved(); } catch (err) { savedMsg.replaceChildren(errorBox(err)); }
      });
      savedList.appendChild(h('li', { class: 'saved-item' }, open, canWrite(project) ? del : null));
    }
  }
  savedBox.addEventListener('toggle', () => { if (savedBox.open) { savedMsg.textContent = ''; fillSaved(); } });
  savedForm.hidden = !canWrite(project);
  savedForm.querySelector('#saved-save').addEventListener('click', async () => {
    const title = savedName.value.trim();
    if (!title) { savedMsg.replaceChildren(errorBox({ code: 'NameRequired', message: 'give the search a name' })); savedName.focus(); return; }
    const q = qIn.value.trim() || '*';
    try {
      await sls('POST', project, '/savedsearches', { savedsearchName: slug(title), displayName: title, searchQuery: q, logstore: ls, topic: '', sluiceRange: st.range || '' });
      savedMsg.textContent = `Saved as "${title}".`;
      savedName.value = '';
      announce(savedMsg.textContent);
      fillSaved();
    } catch (err) { savedMsg.replaceChildren(errorBox(err)); }
  });
  // --- autocompletion: keys (indexed ones and those of the loaded logs),
  // then values of the key being typed (the loaded logs' and, for keys SQL
  // reads, the most frequent in the time range that start with what is
  // typed). Arrow keys move, Enter or Tab takes one, Escape closes. ---
  const suggest = { open: false, items: [], active: -1, at: null, seq: 0 };
  const valueCache = new Map();
  function knownKeys() {
    const ks = new Set(index && index.keys ? Object.keys(index.keys) : []);
    for (const r of rows.slice(0, 200)) for (const k in r) if (!HIDDEN_KEYS.has(k) && k !== '__tag__:__receive_time__') ks.add(k);
    return [...ks].sort();
  }
  function closeSuggest() {
    suggest.open = false; suggest.active = -1;
    sugList.hidden = true;
    qIn.setAttribute('aria-expanded', 'false');
    qIn.removeAttribute('aria-activedescendant');
  }
  function showSuggest(items, at) {
    suggest.items = items; suggest.at = at; suggest.active = -1;
    if (!items.length) { closeSuggest(); return; }
    sugList.replaceChildren(...items.map((it, i) => h('li', { role: 'option', id: `q-sug-${i}`, 'data-i': i, 'aria-selected': 'false' },
      h('span', null, it.label), h('span', { class: 'hint' }, it.kind))));
    sugList.hidden = false;
    suggest.open = true;
    qIn.setAttribute('aria-expanded', 'true');
  }
  function setActive(i) {
    suggest.active = i;
    [...sugList.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) qIn.setAttribute('aria-activedescendant', `q-sug-${i}`); else qIn.removeAttribute('aria-activedescendant');
  }
  function onSuggestKey(e) {
    const n = suggest.items.length;
    if (e.key === 'ArrowDown') { e.preventDefault(); setActive((suggest.active + 1) % n); return true; }
    if (e.key === 'ArrowUp') { e.preventDefault(); setActive((suggest.active - 1 + n) % n); return true; }
    if (e.key === 'Escape') { e.preventDefault(); closeSuggest(); return true; }
    if ((e.key === 'Enter' || e.key === 'Tab') && suggest.active >= 0) { e.preventDefault(); acceptSuggest(suggest.active); return true; }
    return false;
  }
  function acceptSuggest(i) {
    const it = suggest.items[i], at = suggest.at;
    if (!it) return;
    const v = qIn.value;
    qIn.value = v.slice(0, at.start) + it.insert + v.slice(at.end);
    const caret = at.start + it.insert.length;
    qIn.setSelectionRange(caret, caret);
    qIn.focus();
    closeSuggest();
    if (it.kind === 'key') updateSuggest(); // go on with its values
  }
  async function updateSuggest() {
    const at = completionAt(qIn.value, qIn.selectionStart);
    const seq = ++suggest.seq;
    if (!at) { closeSuggest(); return; }
    if (at.kind === 'sql') {
      const keys = ['__time__', '__source__', '__topic__', ...knownKeys().filter(sqlable)];
      showSuggest(sqlCandidates([...new Set(keys)], at.prefix), at);
      return;
    }
    if (at.kind === 'key') {
      if (!at.prefix) { closeSuggest(); return; }
      const keyName = (k) => (k.startsWith('__tag__:') ? k : quoteValue(k));
      showSuggest(rank(knownKeys(), at.prefix).map((k) => ({ label: k + ':', insert: keyName(k) + ':', kind: 'key' })), at);
      return;
    }
    const local = new Map();
    for (const r of rows) if (r[at.key] !== undefined) local.set(r[at.key], (local.get(r[at.key]) || 0) + 1);
    const vals = [...local.entries()].sort((a, b) => b[1] - a[1]).map((x) => x[0]);
    const show = (vs) => showSuggest(rank([...new Set(vs)], at.prefix).map((v) => ({ label: v, insert: quoteValue(v), kind: 'value' })), at);
    show(vals);
    if (!sqlable(at.key)) return;
    // The time range's most frequent values starting with what is typed.
    const ck = `${at.key}\u0000${at.prefix}\u0000${range[0]}`;
    let more = valueCache.get(ck);
    if (!more) {
      await new Promise((r) => setTimeout(r, 200)); // typing on: wait
      if (seq !== suggest.seq) return;
      const col = '"' + at.key.replace(/"/g, '""') + '"';
      const like = at.prefix.replace(/'/g, "''").replace(/[%_\\]/g, (c) => '\\' + c);
      try {
        const r = await sls('POST', project, paths.logs(ls), { from: range[0], to: range[1], line: 100, offset: 0, reverse: true,
          query: `* | select cast(${col} as varchar) as v, count(*) as c from log where ${col} is not null and lower(cast(${col} as varchar)) like lower('${like}%') escape '\\' group by v order by c desc limit 10` });
        more = (r.data || []).map((x) => x.v);
        valueCache.set(ck, more);
      } catch { return; }
    }
    if (seq !== suggest.seq) return;
    show(vals.concat(more));
  }
  refreshSel.addEventListener('change', () => {
    st.refresh = refreshSel.value;
    pushState();
    setRefresh();
    announce(st.refresh ? `The search runs again ${relLabel(st.refresh).toLowerCase()}` : 'Auto-refresh off');
  });
  rowsSel.addEventListener('change', () => form.requestSubmit());
  // An Enter the page handled never also inserts a line break (some
  // input paths send the character apart from the keydown).
  let enterHandled = false;
  qIn.addEventListener('keydown', (e) => {
    enterHandled = false;
    if (suggest.open && onSuggestKey(e)) { enterHandled = e.key === 'Enter'; return; }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); enterHandled = true; closeSuggest(); form.requestSubmit(); }
  });
  qIn.addEventListener('beforeinput', (e) => {
    if (enterHandled && (e.inputType === 'insertLineBreak' || e.inputType === 'insertParagraph' || (e.inputType === 'insertText' && e.data === '\n'))) e.preventDefault();
  });
  qIn.addEventListener('keyup', (e) => { if (e.key === 'Enter') enterHandled = false; });
  qIn.addEventListener('input', () => updateSuggest());
  qIn.addEventListener('blur', () => setTimeout(closeSuggest, 150));
  sugList.addEventListener('mousedown', (e) => {
    const o = e.target.closest('[role=option]');
    if (!o) return;
    e.preventDefault(); // keep the focus in the query box
    acceptSuggest(Number(o.dataset.i));
  });
  qIn.addEventListener('input', () => { if (qIn.getAttribute('aria-invalid')) { qIn.removeAttribute('aria-invalid'); clear(qErr); } });
  share.addEventListener('click', async () => {
    const url = location.href;
    try { await navigator.clipboard.writeText(url); shareMsg.textContent = 'Link copied (it holds the query and time range, never your key).'; } catch { shareMsg.textContent = url; }
  });
  live.addEventListener('change', () => {
    st.live = live.checked;
    if (st.live && !st.range) { st.range = '15m'; rc.show(st); }
    history.replaceState(null, '', '#' + location.hash.slice(1).split('?')[0] + '?' + writeParams(st));
    if (!st.live) { setPaused(false); setPolling(); run(); announce('Live tail off'); return; }
    setPolling();
    announce('Live tail on: every new log appears at the top');
  });
  pauseBtn.addEventListener('click', () => {
    setPaused(!paused);
    setPolling();
    announce(paused ? 'Live tail paused: new logs are kept and shown when you resume' : 'Live tail resumed');
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    st.q = qIn.value.trim();
    st.rows = Number(rowsSel.value);
    const c = rc.custom();
    if (c === null) { clear(qErr).appendChild(errorBox({ code: 'InvalidTimeRange', message: 'choose a start before the end' })); return; }
    if (c) {
      const f = c.from, t = c.to;
      st.range = ''; st.from = f; st.to = t; st.live = false; live.checked = false;
    }
    pushState();
    run();
  });

  function pushState() {
    const hash = '#' + location.hash.slice(1).split('?')[0] + '?' + writeParams(st);
    if (hash !== location.hash) history.pushState(null, '', hash);
  }

  function zoom(from, to) {
    st.range = ''; st.from = from; st.to = to; st.live = false; live.checked = false;
    rc.show(st);
    pushState();
    setPolling();
    run();
    announce(`Zoomed to ${fmtTime(from)} – ${fmtTime(to)}`);
  }

  // clearResults removes what an earlier query left on screen, so an
  // error is never shown next to results it did not produce.
  function clearResults() {
    rows = [];
    list = null;
    if (observer) { observer.disconnect(); observer = null; }
    summary.textContent = '';
    clear(histoBox);
    clear(resultsBox);
    clear(fieldsBox);
    layout.classList.remove('sql');
  }

  function showQueryError(text, offset, message, kind = 'Syntax error') {
    clearResults();
    qIn.setAttribute('aria-invalid', 'true');
    const at = Math.min(offset, text.length);
    const view = h('pre', { class: 'qerr-view', 'aria-hidden': 'true' }, text.slice(0, at), h('mark', null, text.slice(at, at + 1) || ' '), text.slice(at + 1));
    clear(qErr).appendChild(h('div', { class: 'banner error', role: 'alert' },
      h('strong', null, `${kind} at character ${at + 1}: `), message, view));
    qIn.focus();
    qIn.setSelectionRange(at, Math.min(text.length, at + 1));
  }

  async function run() {
    // A new search restarts the tail from its own rows.
    clearTimeout(pollTimer);
    pollTimer = null;
    tailState = null;
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    resetTops();
    clear(qErr);
    qIn.removeAttribute('aria-invalid');
    const q = st.q;
    summary.textContent = 'Searching…';
    range = timeRange(st);
    if (!st.range) rc.setCustom(range[0], range[1]);
    let chk;
    try {
      chk = await checkQuery(q, ls);
    } catch (err) { if (err.name !== 'AbortError') { clearResults(); qErr.appendChild(errorBox(err)); } return; }
    if (signal.aborted) return;
    if (!chk.ok) { summary.textContent = ''; showQueryError(q, chk.offset, chk.message); return; }
    lastSearch = chk.search;
    remember(project, ls, q);
    await indexP;
    if (indexErr && indexErr.code === 'IndexConfigNotExist') { renderNoIndex(); return; }
    performance.clearMarks(); performance.clearMeasures();
    performance.mark('sluice:request');
    const [from, to] = range;
    const histoP = sls('GET', project, paths.histogram(ls, { from, to, query: chk.search || '*', interval: interval(from, to) }), undefined, { signal });
    try {
      if (chk.hasSQL) {
        const [res, histo] = await Promise.all([sls('POST', project, paths.logs(ls), { from, to, query: q, line: 100, offset: 0, reverse: true }, { signal }), histoP]);
        performance.mark('sluice:answered');
        renderHistogram(histo);
        renderSQL(res);
      } else {
        const pages = Math.ceil(st.rows / PAGE);
        const page = (i) => sls('POST', project, paths.logs(ls), { from, to, query: q, line: PAGE, offset: i * PAGE, reverse: true }, { signal });
        // The first page finds the search's newest rows; the server keeps
        // their keys, so the other pages, asked after it, are quick.
        searchAt = nowSec();
        const first = await page(0);
        const calls = [first];
        if ((first.data || []).length === PAGE) for (let i = 1; i < pages; i++) calls.push(page(i));
        const [histo, ...res] = await Promise.all([histoP, ...calls]);
        performance.mark('sluice:answered');
        rows = res.flatMap((r) => r.data || []);
        exhausted = res.some((r) => (r.data || []).length < PAGE);
        renderHistogram(histo);
        renderResults();
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      // The server places syntax errors, and SQL errors it can, at a byte
      // offset of the query.
      const m = /(syntax|SQL) error at (\d+): (.*)/s.exec(err.message || '');
      if (m) { showQueryError(q, utf16At(q, Number(m[2])), m[3], m[1] === 'SQL' ? 'SQL error' : 'Syntax error'); return; }
      clearResults();
      clear(qErr).appendChild(errorBox(err, hintFor(err)));
      return;
    }
    performance.mark('sluice:dom');
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    performance.mark('sluice:rendered');
    const m = performance.measure('sluice:render', 'sluice:answered', 'sluice:rendered');
    window.__sluiceLastRender = { ms: m.duration, rows: rows.length, total: performance.measure('sluice:total', 'sluice:request', 'sluice:rendered').duration,
      dom: performance.measure('sluice:build', 'sluice:answered', 'sluice:dom').duration };
    page.dataset.state = 'done';
    if (st.live) setPolling();
  }

  function hintFor(err) {
    if (/cannot be resolved|no field index|not indexed|index attribute/i.test(err.message || '')) {
      return h('span', null, 'Add the key to the ', h('a', { href: indexHref(project, ls) }, 'index'), ' with Analytics on, then search again.');
    }
    return null;
  }

  function renderNoIndex() {
    summary.textContent = '';
    clear(histoBox);
    clear(resultsBox).appendChild(emptyState('This logstore has no index yet',
      h('p', null, 'Searches and SQL need an index. Create one — a full-text index is enough to start.'),
      h('p', null, h('a', { href: indexHref(project, ls), class: 'button primary' }, 'Create the index'))));
  }

  let histoTotal = 0;
  // renderHistogram always redraws (the histogram must show the range the
  // results are for); a bar that had keyboard focus hands it to the bar
  // of the same interval, or of the same place, in the new one.
  function renderHistogram(buckets) {
    histoTotal = buckets.reduce((a, b) => a + b.count, 0);
    const had = histoBox.contains(document.activeElement) ? document.activeElement.closest('g.bar') : null;
    const fig = histogram(buckets, { onZoom: zoom, label: `Logs per ${interval(range[0], range[1])} s` });
    clear(histoBox).appendChild(fig);
    if (!had) return;
    const bs = [...fig.querySelectorAll('g.bar')];
    const next = bs.find((g) => g.dataset.from === had.dataset.from) || bs[Math.min(bs.length - 1, Number(had.dataset.i) || 0)];
    if (!next) return;
    for (const g of bs) g.setAttribute('tabindex', g === next ? 0 : -1);
    next.focus({ preventScroll: true });
  }

  function describeRange() {
    return `${fmtTime(range[0])} – ${fmtTime(range[1])}`;
  }

  // --- search results ---
  function renderResults() {
    clear(resultsBox);
    layout.classList.remove('sql');
    summary.textContent = `${fmtCount(histoTotal)} logs match · ${describeRange()} · showing ${fmtCount(rows.length)}, newest first`;
    topCtx = { search: lastSearch, from: range[0], to: range[1], total: histoTotal };
    resultsBox.appendChild(h('h2', { id: 'results-h', class: 'sr-only' }, 'Results'));
    if (!rows.length) {
      resultsBox.appendChild(emptyState('No logs in this time range',
        h('p', null, 'Widen the time range, loosen the query, or send logs here: point an agent config at project ', code(project), ' and logstore ', code(ls), ', or call PutLogs from an SDK.'),
        h('p', null, 'Search syntax: ', code('error'), ', ', code('status:500'), ', ', code('latency > 100'), ', ', code('level:error not path:/healthz'), '.')));
      renderFields();
      return;
    }
    resultsBox.appendChild(resultsBar());
    list = h('ol', { class: st.view === 'table' ? 'logs table' : 'logs', 'aria-label': 'Logs, newest first' });
    if (st.view === 'table') {
      list.style.setProperty('--ncols', String(tableCols().length));
      const head = h('div', { class: 'table-head', 'aria-hidden': 'true' }, h('span'), h('span', null, 'time'), tableCols().map((c) => h('span', null, c)));
      head.style.setProperty('--ncols', String(tableCols().length)); // CSSOM: allowed by the CSP
      resultsBox.appendChild(head);
    }
    list.addEventListener('click', toggleRaw);
    list.appendChild(rowsFragment(rows, false));
    resultsBox.appendChild(list);
    moreBtn = h('button', { type: 'button', class: 'secondary more', id: 'more', hidden: exhausted }, 'Load more');
    moreBtn.addEventListener('click', () => loadMore());
    resultsBox.appendChild(moreBtn);
    if (observer) observer.disconnect();
    observer = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) loadMore(); }, { rootMargin: '400px' });
    observer.observe(moreBtn);
    renderFields();
  }

  async function loadMore() {
    if (loading || exhausted || !list) return;
    loading = true;
    moreBtn.disabled = true;
    moreBtn.textContent = 'Loading…';
    try {
      const res = await sls('POST', project, paths.logs(ls), { from: range[0], to: range[1], query: st.q, line: PAGE, offset: rows.length, reverse: true });
      const more = res.data || [];
      rows = rows.concat(more);
      if (more.length < PAGE) exhausted = true;
      list.appendChild(rowsFragment(more, false));
      summary.textContent = `${fmtCount(histoTotal)} logs match · ${describeRange()} · showing ${fmtCount(rows.length)}, newest first`;
      announce(`${more.length} more logs loaded`);
      renderFields();
    } catch (err) {
      resultsBox.appendChild(errorBox(err));
      exhausted = true;
    } finally {
      loading = false;
      moreBtn.disabled = false;
      moreBtn.textContent = 'Load more';
      moreBtn.hidden = exhausted;
    }
  }

  function sig(r) { return JSON.stringify(r); }

  function rowsFragment(batch, fresh) {
    const frag = document.createDocumentFragment();
    for (const r of batch) {
      frag.appendChild(logItem(r, fresh));
    }
    return frag;
  }

  // toggleRaw opens a row's details: its fields with filter for / filter
  // out buttons, and the raw log (one listener for the list); it also
  // serves the row's Context button and the filter buttons.
  function toggleRaw(e) {
    const f = e.target.closest('button.filter');
    if (f) { addFilter(f.dataset.key, f.closest('li')._log[f.dataset.key], f.dataset.neg === '1'); return; }
    const cb = e.target.closest('button.ctx');
    if (cb) { toggleContext(cb); return; }
    const btn = e.target.closest('button.expand');
    if (!btn) return;
    const li = btn.closest('li');
    const open = btn.getAttribute('aria-expanded') === 'true';
    btn.setAttribute('aria-expanded', String(!open));
    btn.textContent = open ? '▸' : '▾';
    let det = li.querySelector('div.details');
    if (!det) {
      const r = li._log;
      const keys = Object.keys(r).filter((k) => !HIDDEN_KEYS.has(k));
      det = h('div', { class: 'details', id: nextId('det') },
        h('table', { class: 'field-actions' }, h('caption', { class: 'sr-only' }, 'Fields of this log'),
          h('tbody', null, keys.map((k) => h('tr', null,
            h('th', { scope: 'row' }, k),
            h('td', null, r[k]),
            h('td', { class: 'acts' },
              h('button', { type: 'button', class: 'filter', 'data-key': k, 'aria-label': `Filter for ${k}: ${r[k]}`, title: 'Filter for this value' }, '+'),
              h('button', { type: 'button', class: 'filter', 'data-key': k, 'data-neg': '1', 'aria-label': `Filter out ${k}: ${r[k]}`, title: 'Filter out this value' }, '−')))))),
        h('pre', { class: 'raw', tabindex: 0, 'aria-label': 'Raw log as JSON' }, JSON.stringify(r, null, 2)));
      btn.setAttribute('aria-controls', det.id);
      li.appendChild(det);
    }
    det.hidden = open;
  }

  // --- context: the lines the same source wrote around a log ---
  // (GetContextLogs by the row's __tag__:__pack_id__ and __pack_meta__).
  function contextCall(packId, meta, back, forward) {
    return sls('GET', project, paths.context(ls, { pack_id: packId, pack_meta: meta, back_lines: back, forward_lines: forward }));
  }

  function contextLine(r) {
    const t = Number(r.__time__);
    const text = Object.keys(r).filter((k) => !k.startsWith('__')).map((k) => `${k}=${r[k]}`).join(' ');
    const anchor = r.__index_number__ === '0';
    const li = h('li', { class: anchor ? 'anchor' : null, 'aria-current': anchor ? 'true' : null },
      h('time', { datetime: new Date(t * 1000).toISOString() }, fmtTime(t)), ' ', h('span', null, text));
    li._log = r;
    return li;
  }

  async function toggleContext(btn) {
    const li = btn.closest('li');
    let box = li.querySelector('section.context');
    const open = btn.getAttribute('aria-expanded') === 'true';
    btn.setAttribute('aria-expanded', String(!open));
    if (box) { box.hidden = open; return; }
    const r = li._log;
    const packId = r['__tag__:__pack_id__'];
    const lines = h('ol', { class: 'context-lines' });
    const status = h('p', { class: 'hint', role: 'status' }, 'Loading the lines around this log…');
    const earlier = h('button', { type: 'button', class: 'secondary ctx-earlier' }, 'Earlier lines');
    const later = h('button', { type: 'button', class: 'secondary ctx-later' }, 'Later lines');
    box = h('section', { class: 'context', id: nextId('ctx'), 'aria-label': `Lines around the log at ${fmtTime(Number(r.__time__))} from the same source` },
      h('p', { class: 'hint' }, `Context: lines written before and after by the same source (${packId.replace(/-\d+$/, '')}), oldest first.`),
      earlier, lines, later, status);
    btn.setAttribute('aria-controls', box.id);
    li.appendChild(box);
    // more fetches n lines before the first shown (or after the last).
    const more = async (dir) => {
      const edge = dir < 0 ? lines.firstElementChild : lines.lastElementChild;
      const b = dir < 0 ? earlier : later;
      b.disabled = true;
      try {
        const res = await contextCall(edge._log['__tag__:__pack_id__'], edge._log.__pack_meta__, dir < 0 ? CONTEXT_LINES : 0, dir > 0 ? CONTEXT_LINES : 0);
        const got = (res.logs || []).filter((x) => x.__index_number__ !== '0');
        const frag = document.createDocumentFragment();
        for (const x of got) frag.appendChild(contextLine(x));
        if (dir < 0) lines.insertBefore(frag, lines.firstChild); else lines.appendChild(frag);
        status.textContent = got.length ? `${got.length} ${dir < 0 ? 'earlier' : 'later'} lines loaded` : `No ${dir < 0 ? 'earlier' : 'later'} lines${res.progress === 'Incomplete' ? ' found nearby' : ''}.`;
        b.disabled = !got.length && res.progress !== 'Incomplete';
      } catch (err) {
        status.textContent = '';
        status.appendChild(errorBox(err));
        b.disabled = false;
      }
    };
    earlier.addEventListener('click', () => more(-1));
    later.addEventListener('click', () => more(1));
    try {
      const res = await contextCall(packId, r.__pack_meta__, CONTEXT_LINES, CONTEXT_LINES);
      for (const x of res.logs || []) lines.appendChild(contextLine(x));
      status.textContent = `${res.back_lines} lines before and ${res.forward_lines} after${res.progress === 'Incomplete' ? ' (the search for more stopped early)' : ''}.`;
      const a = lines.querySelector('li.anchor');
      if (a) a.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      status.textContent = '';
      status.appendChild(errorBox(err));
    }
  }

  // --- table view, columns, export ---
  // tableCols are the columns the table view shows: those chosen, or the
  // first four keys of the logs.
  function tableCols() {
    if (st.cols.length) return st.cols;
    return columnsOf(rows.slice(0, 50)).filter((k) => !k.startsWith('__')).slice(0, 4);
  }

  function setView(v) {
    st.view = v;
    history.replaceState(null, '', '#' + location.hash.slice(1).split('?')[0] + '?' + writeParams(st));
    renderResults();
    announce(v === 'table' ? 'Table view' : 'List view');
  }

  function resultsBar() {
    const listBtn = h('button', { type: 'button', class: 'secondary', id: 'view-list', 'aria-pressed': String(st.view !== 'table') }, 'List');
    const tableBtn = h('button', { type: 'button', class: 'secondary', id: 'view-table', 'aria-pressed': String(st.view === 'table') }, 'Table');
    listBtn.addEventListener('click', () => setView('list'));
    tableBtn.addEventListener('click', () => setView('table'));
    const bar = h('div', { class: 'results-bar' }, h('div', { class: 'seg', role: 'group', 'aria-label': 'View' }, listBtn, tableBtn));
    if (st.view === 'table') {
      const chosen = tableCols();
      const all = columnsOf(rows).filter((k) => !HIDDEN_KEYS.has(k));
      const box = h('details', { class: 'columns', id: 'columns' }, h('summary', null, `Columns (${chosen.length})`),
        h('fieldset', null, h('legend', { class: 'sr-only' }, 'Columns of the table'),
          all.map((k) => {
            const id = nextId('col');
            const cb = h('input', { type: 'checkbox', id, value: k, checked: chosen.includes(k) });
            cb.addEventListener('change', () => {
              const cur = tableCols().filter((c) => c !== k);
              st.cols = cb.checked ? [...cur, k] : cur;
              if (!st.cols.length) st.cols = [k];
              history.replaceState(null, '', '#' + location.hash.slice(1).split('?')[0] + '?' + writeParams(st));
              renderResults();
              const again = document.querySelector(`#columns input[value="${CSS.escape(k)}"]`);
              if (again) { again.closest('details').open = true; again.focus(); }
            });
            return h('div', { class: 'check' }, cb, h('label', { for: id }, k));
          })));
      bar.appendChild(box);
    }
    bar.appendChild(exportButtons(() => ({ cols: columnsOf(rows), data: rows }), 'logs'));
    return bar;
  }

  // exportButtons saves what get() returns ({cols, data}) as CSV or JSON.
  function exportButtons(get, what) {
    const save = (kind) => {
      const { cols, data } = get();
      const name = `${ls}-${fileStamp()}.${kind}`;
      if (kind === 'csv') download(name, 'text/csv', toCSV(cols, data));
      else download(name, 'application/json', JSON.stringify(data, null, 2) + '\n');
      announce(`${data.length} ${what} saved as ${name}`);
    };
    const n = get().data.length;
    return h('div', { class: 'export', role: 'group', 'aria-label': `Export the ${n} ${what} shown` },
      h('span', { class: 'hint' }, 'Export:'),
      h('button', { type: 'button', class: 'secondary', id: 'export-csv', onclick: () => save('csv') }, 'CSV'),
      h('button', { type: 'button', class: 'secondary', id: 'export-json', onclick: () => save('json') }, 'JSON'));
  }

  function tableItem(r, fresh) {
    const t = Number(r.__time__);
    const li = document.createElement('li');
    li.className = fresh ? 'log fresh' : 'log';
    const head = document.createElement('div');
    head.className = 'log-head trow';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'expand';
    btn.setAttribute('aria-expanded', 'false');
    btn.setAttribute('aria-label', `Details of the log at ${fmtTime(t)}`);
    btn.textContent = '▸';
    const time = document.createElement('time');
    time.dateTime = new Date(t * 1000).toISOString();
    time.textContent = fmtTime(t);
    head.append(btn, time);
    for (const c of tableCols()) {
      const cell = document.createElement('span');
      cell.className = 'cell';
      cell.dataset.col = c;
      const lab = document.createElement('span');
      lab.className = 'sr-only';
      lab.textContent = `${c}: `;
      cell.append(lab, r[c] === undefined ? '' : r[c]);
      head.appendChild(cell);
    }
    li.appendChild(head);
    li._log = r;
    return li;
  }

  function logItem(r, fresh) {
    if (st.view === 'table') return tableItem(r, fresh);
    const t = Number(r.__time__);
    const li = document.createElement('li');
    li.className = fresh ? 'log fresh' : 'log';
    const head = document.createElement('div');
    head.className = 'log-head';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'expand';
    btn.setAttribute('aria-expanded', 'false');
    btn.setAttribute('aria-label', `Raw log at ${fmtTime(t)}`);
    btn.textContent = '▸';
    const time = document.createElement('time');
    time.dateTime = new Date(t * 1000).toISOString();
    time.textContent = fmtTime(t);
    head.append(btn, time);
    if (r['__tag__:__pack_id__'] && r.__pack_meta__) {
      const cb = document.createElement('button');
      cb.type = 'button';
      cb.className = 'ctx';
      cb.setAttribute('aria-expanded', 'false');
      cb.setAttribute('aria-label', `Context: lines around the log at ${fmtTime(t)}`);
      cb.textContent = 'Context';
      head.appendChild(cb);
    }
    const tags = document.createElement('span');
    tags.className = 'tags';
    const kv = document.createElement('dl');
    kv.className = 'kv';
    for (const k in r) {
      if (HIDDEN_KEYS.has(k)) continue;
      const v = r[k];
      if (k === '__source__' || k === '__topic__' || k.startsWith('__tag__:')) {
        if (v === '') continue;
        const chip = document.createElement('span');
        chip.className = 'tag';
        chip.textContent = `${k.replace(/^__tag__:/, '').replace(/^__(source|topic)__$/, '$1')}: ${v}`;
        tags.appendChild(chip);
        continue;
      }
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      kv.append(dt, dd);
    }
    head.appendChild(tags);
    li.append(head, kv);
    li._log = r;
    return li;
  }

  // --- field sidebar ---
  // A field's top values over the whole search and time range come from a
  // "search | SQL" query, sent only when the user opens the field (and again
  // for the fields still open after the search changes). Keys SQL cannot
  // read (no field index with Analytics) show counts from the loaded rows.
  const openFields = new Set();
  let tops = new Map(); // key → { state: 'loading' | 'done' | 'error', data, err } for topCtx
  let topCtx = null; // { search, from, to, total } of the results shown; null while a search runs
  let topsCtrl = null;
  let bodies = new Map(); // key → { body, count, stat } of the rendered sidebar

  // resetTops forgets the previous search's top values and cancels their
  // queries: answers for an older search are never shown.
  function resetTops() {
    if (topsCtrl) topsCtrl.abort();
    topsCtrl = new AbortController();
    tops = new Map();
    topCtx = null;
  }

  function searchable(k) {
    if (k === '__source__' || k === '__topic__' || k.startsWith('__tag__:')) return true;
    return !!(index && index.keys && index.keys[k]);
  }

  // sqlable: SQL sees __source__, __topic__ and every key with a field
  // index (tags as "__tag__:name" when indexed so). The Log Service also
  // wants Analytics (doc_value) on; Sluice's store reads any field index.
  function sqlable(k) {
    if (k === '__source__' || k === '__topic__') return true;
    return !!(index && index.keys && index.keys[k]);
  }

  const pct = (n, total) => (total > 0 ? `${(100 * n / total).toFixed(n === total ? 0 : 1)}%` : '');

  function renderFields() {
    clear(fieldsBox).appendChild(h('h2', { id: 'fields-h' }, 'Fields'));
    bodies = new Map();
    const stats = new Map();
    for (const r of rows) for (const k in r) {
      if (HIDDEN_KEYS.has(k)) continue;
      let m = stats.get(k);
      if (!m) stats.set(k, (m = { n: 0, vals: new Map() }));
      m.n++;
      const v = r[k];
      m.vals.set(v, (m.vals.get(v) || 0) + 1);
    }
    if (!stats.size) { fieldsBox.appendChild(h('p', { class: 'hint' }, 'Fields of the loaded logs appear here with their top values.')); return; }
    fieldsBox.appendChild(h('p', { class: 'hint' }, 'Open a field for its top values over the whole time range. Choose a value to add it to the query.'));
    const keys = [...stats.keys()].sort((a, b) => (a.startsWith('__') - b.startsWith('__')) || stats.get(b).n - stats.get(a).n || a.localeCompare(b));
    for (const k of keys) {
      const m = stats.get(k);
      const body = h('div', { class: 'fbody' });
      const count = h('span', { class: 'fcount' });
      const det = h('details', { class: 'field', 'data-key': k, open: openFields.has(k) },
        h('summary', null, h('span', { class: 'fname' }, k), count), body);
      det.addEventListener('toggle', () => {
        if (det.open) { openFields.add(k); ensureTop(k); } else openFields.delete(k);
      });
      bodies.set(k, { body, count, stat: m });
      paintField(k);
      fieldsBox.appendChild(det);
      if (openFields.has(k)) ensureTop(k);
    }
  }

  // ensureTop starts the top-values query of k for the results shown, once.
  function ensureTop(k) {
    if (!topCtx || !sqlable(k) || tops.has(k)) return;
    const ctx = topCtx;
    const ent = { state: 'loading' };
    tops.set(k, ent);
    paintField(k);
    const query = topValuesQuery(ctx.search, k);
    sls('POST', project, paths.logs(ls), { from: ctx.from, to: ctx.to, query, line: 100, offset: 0, reverse: false }, { signal: topsCtrl.signal })
      .then((res) => {
        if (ctx !== topCtx) return;
        ent.state = 'done';
        ent.data = (res.data || []).map((r) => [r.v, Number(r.c)]);
        ent.total = ctx.total;
        paintField(k);
      }, (err) => {
        if (err.name === 'AbortError' || ctx !== topCtx) return;
        ent.state = 'error';
        ent.err = err;
        paintField(k);
      });
  }

  function valueList(k, entries, total, clickable, where) {
    return h('ul', null, entries.map(([v, n]) => {
      // SQL reports a missing key as null: there is nothing to filter on.
      const missing = v === null || v === undefined || (where === 'range' && v === 'null');
      const label = missing ? '(missing)' : v === '' ? '(empty)' : v;
      const parts = [h('span', { class: 'v' }, label), h('span', { class: 'n' }, fmtCount(n)), h('span', { class: 'p' }, pct(n, total))];
      if (!clickable || missing) return h('li', null, h('span', { class: 'fval static' }, ...parts));
      return h('li', null, h('button', { type: 'button', class: 'fval', 'data-key': k, 'data-value': v, 'data-count': n,
        'aria-label': `Add ${k}:${v} to the query (${n} of ${total} ${where === 'range' ? 'matching' : 'loaded'} logs)`, onclick: () => addFilter(k, v) }, ...parts));
    }));
  }

  function loadedList(k, m, note) {
    const top = [...m.vals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
    return [h('p', { class: 'hint fsrc', 'data-source': 'loaded' }, `From the ${fmtCount(rows.length)} loaded logs`, note),
      valueList(k, top, rows.length, searchable(k), 'loaded')];
  }

  function paintField(k) {
    const b = bodies.get(k);
    if (!b) return;
    const { body, count, stat } = b;
    clear(body);
    if (!sqlable(k)) {
      count.textContent = `${fmtCount(stat.vals.size)} value${stat.vals.size === 1 ? '' : 's'}`;
      const link = (text) => h('a', { href: indexHref(project, ls) }, text);
      const note = !searchable(k) ? [' — not indexed: ', link('add a field index'), ' to filter on it and for counts over the whole range.']
        : [' — ', link('add a field index'), ' for counts over the whole range.'];
      body.append(...loadedList(k, stat, note));
      return;
    }
    const ent = tops.get(k);
    count.textContent = '';
    if (!ent) return; // closed, or the search is still running
    if (ent.state === 'loading') { body.appendChild(h('p', { class: 'hint', role: 'status' }, 'Counting over the whole range…')); return; }
    if (ent.state === 'error') {
      body.appendChild(errorBox(ent.err, h('span', null, 'Top values over the whole range failed. ', hintFor(ent.err))));
      body.append(...loadedList(k, stat, '.'));
      return;
    }
    const total = ent.total;
    count.textContent = `top ${ent.data.length}`;
    if (!ent.data.length) { body.appendChild(h('p', { class: 'hint' }, 'No values in this time range.')); return; }
    body.append(h('p', { class: 'hint fsrc', 'data-source': 'range' }, `Of the ${fmtCount(total)} matching logs in the time range`),
      valueList(k, ent.data, total, true, 'range'));
  }

  function addFilter(k, v, negate = false) {
    qIn.value = addTerm(qIn.value, lastSearch, k, v, negate);
    form.requestSubmit();
  }

  // addToDashboard saves the SQL query as a chart of a dashboard, drawn
  // as kind() (the chart chosen above).
  function addToDashboard(kind) {
    const dbSel = h('select', { id: 'add-db' }, h('option', { value: '' }, 'Loading…'));
    const title = h('input', { id: 'add-title', placeholder: 'Chart title' });
    const msg = h('div', { role: 'status' });
    const btn = h('button', { type: 'button', class: 'secondary', id: 'add-chart' }, 'Add');
    const box = h('details', { class: 'add-dash', id: 'add-dashboard' }, h('summary', null, 'Add to dashboard'),
      h('div', { class: 'saved-form' }, h('label', { for: 'add-db' }, 'Dashboard'), dbSel, h('label', { for: 'add-title' }, 'Title'), title, btn), msg);
    box.addEventListener('toggle', async () => {
      if (!box.open) return;
      try {
        const ds = await listDashboards(project);
        dbSel.replaceChildren(...(ds.length ? ds.map((d) => h('option', { value: d.dashboardName }, d.displayName || d.dashboardName)) : [h('option', { value: '' }, 'No dashboards: create one on the project page')]));
      } catch (err) { msg.replaceChildren(errorBox(err)); }
    });
    btn.addEventListener('click', async () => {
      const t = title.value.trim();
      if (!dbSel.value) { msg.replaceChildren(errorBox({ code: 'NoDashboard', message: 'create a dashboard on the project page first' })); return; }
      if (!t) { msg.replaceChildren(errorBox({ code: 'TitleRequired', message: 'give the chart a title' })); title.focus(); return; }
      try {
        await addChart(project, dbSel.value, { title: t, kind: kind(), logstore: ls, query: st.q });
        msg.replaceChildren(`Added "${t}" to `, h('a', { href: dashboardHref(project, dbSel.value) }, dbSel.selectedOptions[0].textContent), '.');
        announce(`Chart ${t} added`);
      } catch (err) { msg.replaceChildren(errorBox(err)); }
    });
    return box;
  }

  // --- SQL ---
  function renderSQL(res) {
    clear(resultsBox);
    clear(fieldsBox);
    layout.classList.add('sql');
    const data = res.data || [];
    rows = [];
    const cols = (res.meta && res.meta.keys && res.meta.keys.length) ? res.meta.keys : Object.keys(data[0] || {});
    summary.textContent = `${fmtCount(data.length)} result rows · ${fmtCount(histoTotal)} logs matched the search · ${describeRange()}`;
    resultsBox.appendChild(h('h2', { id: 'results-h' }, 'SQL results'));
    if (!data.length) { resultsBox.appendChild(emptyState('The query returned no rows', h('p', null, 'Widen the time range or check the search part before the |.'))); return; }
    resultsBox.appendChild(h('div', { class: 'results-bar' }, exportButtons(() => ({ cols, data }), 'result rows')));
    const plan = chartPlan(cols, data);
    const chartBox = h('div', { class: 'chart-box', id: 'chart' });
    const kinds = chartKinds(plan, data);
    const draw = (kind) => {
      clear(chartBox);
      const el = drawChart(kind, data, plan, chartBox.clientWidth - 26); // inside the figure's padding and border
      if (el) chartBox.appendChild(el);
    };
    const ckId = nextId('ck');
    const sel = h('select', { id: ckId }, kinds.map((k) => h('option', { value: k }, KIND_LABELS[k])));
    sel.addEventListener('change', () => draw(sel.value));
    if (kinds[0] !== 'table') {
      resultsBox.appendChild(h('div', { class: 'chart-head' }, h('label', { for: ckId }, 'Chart'), sel, h('span', { class: 'hint' }, plan.x ? `${plan.series.join(', ')} by ${plan.x}` : plan.series.join(', '))));
      resultsBox.appendChild(chartBox);
      draw(kinds[0]);
    } else {
      resultsBox.appendChild(h('p', { class: 'hint' }, `No chart: ${plan.why}.`));
    }
    if (canWrite(project)) resultsBox.appendChild(addToDashboard(() => (kinds[0] === 'table' ? 'table' : sel.value)));
    const numCols = new Set(cols.filter((c) => data.every((r) => r[c] === undefined || r[c] === '' || /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(r[c]))));
    // Timestamp columns come in UTC; they are shown in the browser's zone
    // like the histogram and the log times (the UTC value in the tooltip).
    const types = (res.meta && res.meta.columnTypes) || [];
    const timeCols = new Set(cols.filter((c, i) => /^timestamp/i.test(types[i] || '')));
    const cell = (r, c) => {
      const v = r[c] ?? '';
      if (!timeCols.has(c) || v === 'null') return h('td', { class: numCols.has(c) ? 'num' : null }, v);
      return h('td', { title: `${v} UTC` }, h('time', { datetime: new Date(timeValue(v) * 1000).toISOString() }, localTime(v)));
    };
    const table = h('table', { class: 'sql-table', id: 'sql-table' },
      h('caption', { class: 'sr-only' }, 'SQL result'),
      h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col', class: numCols.has(c) ? 'num' : null }, c)))),
      h('tbody', null, data.map((r) => h('tr', null, cols.map((c) => cell(r, c))))));
    resultsBox.appendChild(h('div', { class: 'table-scroll', tabindex: 0, 'aria-label': 'SQL result table' }, table));
  }

  // --- live tail ---
  // The tail reads what the server received, shard by shard from cursors
  // (/console/api/tail), so no log is skipped however fast they come or
  // however late their own time is; the list keeps the newest LIVE_MAX.
  // Pause keeps the cursors: resuming shows what arrived meanwhile.
  let tailState = null; // { cursors, since, skip, count } while live
  let searchAt = 0; // when the shown search asked for its rows
  let paused = false;
  let lastHisto = 0;

  function setPaused(p) {
    paused = p;
    pauseBtn.setAttribute('aria-pressed', String(p));
    pauseBtn.textContent = p ? 'Resume' : 'Pause';
    page.classList.toggle('paused', p);
  }

  // tailKey identifies a row whether it came from GetLogs or the tail
  // (which has no receive time).
  function tailKey(r) {
    const o = {};
    for (const k in r) if (k !== '__tag__:__receive_time__' && k !== '__time_ns_part__') o[k] = r[k];
    return JSON.stringify(o);
  }

  // startTail begins from just before the search shown: the rows it
  // shows that were received since then are not shown twice.
  function startTail() {
    const since = (searchAt || nowSec()) - 1;
    const skip = new Map();
    for (const r of rows) {
      if (Number(r['__tag__:__receive_time__']) >= since) { const k = tailKey(r); skip.set(k, (skip.get(k) || 0) + 1); }
    }
    tailState = { cursors: null, since, skip, count: 0 };
  }

  function setPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
    page.classList.toggle('live', st.live);
    pauseBtn.hidden = !st.live;
    if (!st.live) { tailState = null; return; }
    if (!tailState) startTail();
    if (!paused) pollTimer = setTimeout(poll, 0);
  }

  async function poll() {
    pollTimer = null;
    if (!st.live || paused || polling) return;
    polling = true;
    try { await pollOnce(); } finally { polling = false; }
    if (st.live && !paused && !pollTimer && tailState) pollTimer = setTimeout(poll, nextPoll);
  }

  let polling = false; // a tail call is in flight: never two with the same cursors
  let nextPoll = POLL_MS;
  async function pollOnce() {
    nextPoll = POLL_MS;
    const ts = tailState;
    if (!document.hidden && !loading && !layout.classList.contains('sql') && ts) {
      try {
        const res = await tailCall({ project, logstore: ls, query: lastSearch || '*', cursors: ts.cursors, since: ts.cursors ? 0 : ts.since });
        if (ts !== tailState || !st.live) return; // a new search or live off meanwhile
        ts.cursors = res.cursors;
        let fresh = (res.rows || []).reverse(); // newest first
        fresh = fresh.filter((r) => {
          const k = tailKey(r), n = ts.skip.get(k);
          if (n) { ts.skip.set(k, n - 1); return false; }
          return true;
        });
        if (fresh.length) showTailed(fresh, ts);
        if (res.more) nextPoll = 0;
        if (Date.now() - lastHisto >= POLL_MS) {
          lastHisto = Date.now();
          range = timeRange(st);
          renderHistogram(await sls('GET', project, paths.histogram(ls, { from: range[0], to: range[1], query: lastSearch || '*', interval: interval(range[0], range[1]) })));
        }
      } catch (err) {
        if (err.status === 401) return;
        clear(qErr).appendChild(errorBox(err));
      }
    }
  }

  function showTailed(fresh, ts) {
    ts.count += fresh.length;
    fresh = fresh.slice(0, LIVE_MAX);
    exhausted = true; // Load more pages the search, not the tail
    if (!list) {
      rows = fresh;
      renderResults();
    } else {
      list.insertBefore(rowsFragment(fresh, true), list.firstChild);
      rows = fresh.concat(rows);
      while (rows.length > LIVE_MAX) { rows.pop(); list.lastElementChild.remove(); }
      if (moreBtn) moreBtn.hidden = true;
      renderFields();
    }
    summary.textContent = `Live · ${fmtCount(ts.count)} new logs since the tail started · showing the newest ${fmtCount(rows.length)}`;
    announce(`${fresh.length} new logs`);
  }

  function utf16At(text, bytePos) {
    const b = new TextEncoder().encode(text);
    return new TextDecoder().decode(b.slice(0, bytePos)).length;
  }

  // --- auto-refresh: the search runs again every N seconds (not while
  // the live tail runs, nor in a hidden tab) ---
  let refreshTimer = null;
  function setRefresh() {
    clearInterval(refreshTimer);
    refreshTimer = null;
    const sec = refreshSeconds(st.refresh);
    if (sec) refreshTimer = setInterval(() => { if (!document.hidden && !st.live) run(); }, sec * 1000);
  }

  await run();
  if (!st.live) setPolling();
  setRefresh();
  return () => { clearInterval(refreshTimer); if (ctrl) ctrl.abort(); if (topsCtrl) topsCtrl.abort(); clearTimeout(pollTimer); st.live = false; if (observer) observer.disconnect(); };
}
