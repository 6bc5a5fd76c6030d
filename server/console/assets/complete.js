// Query autocompletion: keys, then values of the key being typed.
//
// completionAt finds what the caret is in: a value ("key:par" → the key
// and the part typed) or a word that may become a key ("sta"). Only the
// search part (before a "|") completes keys and values; the SQL part
// (after it) identifiers: keys, keywords and functions (sqlCandidates).
export function completionAt(text, caret) {
  const before = text.slice(0, caret);
  if (pipeAt(before) >= 0) {
    // SQL: the identifier being typed (none inside a string literal).
    const sql = before.slice(pipeAt(before) + 1);
    if ((sql.match(/'/g) || []).length % 2) return null;
    const w = /(?:^|[^A-Za-z0-9_"])("?[A-Za-z_][A-Za-z0-9_.:\-]*)$/.exec(sql);
    if (!w) return null;
    return { kind: 'sql', prefix: w[1].replace(/^"/, ''), start: caret - w[1].length, end: caret };
  }
  // The token: from the last delimiter outside quotes to the caret.
  const m = /(?:^|[\s()])((?:[A-Za-z0-9_.@\-]+|"(?:[^"\\]|\\.)*"|__tag__:[A-Za-z0-9_.\-]+)(?::("?)([^\s"()]*))?)$/.exec(before);
  if (!m) return { kind: 'key', prefix: '', start: caret, end: caret };
  const tok = m[1];
  const start = caret - tok.length;
  const colon = tok.startsWith('__tag__:') ? tok.indexOf(':', 8) : tok.indexOf(':');
  if (colon < 0) {
    if (/^(and|or|not)$/i.test(tok)) return null;
    return { kind: 'key', prefix: tok, start, end: caret };
  }
  let key = tok.slice(0, colon);
  if (key.startsWith('"')) key = key.slice(1, -1);
  const val = tok.slice(colon + 1).replace(/^"/, '');
  return { kind: 'value', key, prefix: val, start: start + colon + 1, end: caret };
}

const simple = /^[A-Za-z0-9_.\-]+$/;
export const quoteValue = (v) => (simple.test(v) ? v : '"' + v.replace(/["\\]/g, (c) => '\\' + c) + '"');

// rank keeps the candidates starting with prefix (case-insensitive), then
// those containing it, at most n.
export function rank(cands, prefix, n = 8) {
  const p = prefix.toLowerCase();
  const starts = [], has = [];
  for (const c of cands) {
    const l = c.toLowerCase();
    if (l === p) continue;
    if (l.startsWith(p)) starts.push(c); else if (p && l.includes(p)) has.push(c);
  }
  return starts.concat(has).slice(0, n);
}

// pipeAt is the offset of the first '|' outside double quotes, or -1 (as
// the server splits a query).
function pipeAt(s) {
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') inQ = !inQ;
    else if (s[i] === '|' && !inQ) return i;
  }
  return -1;
}

export const SQL_KEYWORDS = ['select', 'from', 'log', 'where', 'group by', 'order by', 'having', 'limit', 'as', 'and', 'or', 'not',
  'in', 'like', 'between', 'is null', 'is not null', 'distinct', 'desc', 'asc', 'case', 'when', 'then', 'else', 'end', 'cast', 'over', 'partition by'];
export const SQL_FUNCTIONS = ['count', 'sum', 'avg', 'min', 'max', 'approx_distinct', 'approx_percentile', 'count_if', 'arbitrary',
  'date_trunc', 'date_format', 'from_unixtime', 'to_unixtime', 'now', 'histogram', 'round', 'floor', 'ceil', 'abs', 'coalesce',
  'lower', 'upper', 'length', 'substr', 'split_part', 'strpos', 'regexp_extract', 'regexp_like', 'json_extract_scalar', 'row_number', 'rank', 'lag', 'lead'];

const ident = /^[a-z_][a-z0-9_]*$/;
// sqlCandidates offers, for a prefix typed after '|': the keys SQL reads
// (double-quoted unless plain lowercase names), then functions (with their
// '('), then keywords, in the case the user types in.
export function sqlCandidates(keys, prefix, n = 10) {
  const upper = prefix && prefix === prefix.toUpperCase() && /[A-Z]/.test(prefix);
  const out = [];
  for (const k of rank(keys, prefix, n)) out.push({ label: k, insert: ident.test(k) ? k : '"' + k.replace(/"/g, '""') + '"', kind: 'column' });
  const fold = (w) => (upper ? w.toUpperCase() : w);
  if (prefix) {
    for (const f of rank(SQL_FUNCTIONS, prefix, n)) out.push({ label: fold(f) + '()', insert: fold(f) + '(', kind: 'function' });
    for (const w of rank(SQL_KEYWORDS, prefix, n)) out.push({ label: fold(w), insert: fold(w) + ' ', kind: 'keyword' });
  }
  return out.slice(0, n);
}
