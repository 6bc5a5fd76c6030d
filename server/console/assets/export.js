// Export of results (CSV, JSON) and the browser-side query history.

const numeric = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

// csvCell quotes a value for CSV (RFC 4180). A text starting with = + - @
// is prefixed with ' so a spreadsheet does not run it as a formula
// (numbers are left alone).
function csvCell(v) {
  let s = v === undefined || v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !numeric.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

// toCSV renders rows (objects) with the given columns, a header first.
export function toCSV(cols, rows) {
  const lines = [cols.map(csvCell).join(',')];
  for (const r of rows) lines.push(cols.map((c) => csvCell(r[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

// columnsOf lists the keys of rows in the order they are first seen.
export function columnsOf(rows) {
  const seen = new Set();
  for (const r of rows) for (const k in r) seen.add(k);
  return [...seen];
}

// download saves text as a file through an <a download> (kept on the
// page until the next export, so the file stays reachable).
export function download(name, type, text) {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const old = document.getElementById('export-link');
  if (old) { URL.revokeObjectURL(old.href); old.remove(); }
  const a = document.createElement('a');
  a.id = 'export-link';
  a.href = url;
  a.download = name;
  a.hidden = true;
  a._blob = blob; // what was saved, for whoever reads the page (tests)
  document.body.appendChild(a);
  a.click();
}

// fileStamp is a file-name-safe local time.
export function fileStamp(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

// Query history: the last HISTORY_MAX queries run in this browser, per
// project and logstore, newest first (localStorage; nothing leaves the
// browser).
const HISTORY_MAX = 30;
const historyKey = (project, ls) => `sluice.history.${project}/${ls}`;

export function history(project, ls) {
  try {
    const v = JSON.parse(localStorage.getItem(historyKey(project, ls)) || '[]');
    return Array.isArray(v) ? v.filter((e) => e && typeof e.q === 'string') : [];
  } catch { return []; }
}

export function remember(project, ls, q) {
  if (!q.trim()) return;
  const list = [{ q, at: Date.now() }, ...history(project, ls).filter((e) => e.q !== q)].slice(0, HISTORY_MAX);
  try { localStorage.setItem(historyKey(project, ls), JSON.stringify(list)); } catch { /* storage full or off: no history */ }
}

export function forget(project, ls) {
  try { localStorage.removeItem(historyKey(project, ls)); } catch { /* nothing to do */ }
}
