// Query autocompletion: keys, then values of the key being typed.
//
// completionAt finds what the caret is in: a value ("key:par" → the key
// and the part typed) or a word that may become a key ("sta"). Only the
// search part (before a "|") is completed.
export function completionAt(text, caret) {
  const before = text.slice(0, caret);
  if (before.includes('|')) return null;
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
