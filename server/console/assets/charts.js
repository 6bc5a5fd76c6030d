// Hand-drawn SVG charts: the search histogram and the SQL result chart.
// No charting library: two chart kinds are a few dozen lines each.
import { h, s, fmtTime, fmtCount } from './dom.js';

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// histogram draws bucket counts; clicking (or Enter on) a bar calls
// onZoom(from, to). Bars form one tab stop; arrow keys move between them.
export function histogram(buckets, { onZoom, label = 'Log count over time' } = {}) {
  const W = 1000, H = 110;
  const n = buckets.length;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const bw = n ? W / n : W;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'histogram', role: 'group', 'aria-label': `${label}: ${n} bars, use arrow keys, Enter zooms in` });
  const bars = [];
  buckets.forEach((b, i) => {
    const bh = b.count ? Math.max(2, (b.count / max) * (H - 4)) : 0;
    const text = `${fmtTime(b.from)} to ${fmtTime(b.to)}: ${fmtCount(b.count)} logs`;
    const g = s('g', { class: 'bar', role: 'button', tabindex: i === n - 1 ? 0 : -1, 'aria-label': text, 'data-from': b.from, 'data-to': b.to, 'data-count': b.count, 'data-i': i },
      s('title', null, text),
      s('rect', { class: 'hit', x: i * bw, y: 0, width: bw, height: H }),
      s('rect', { class: 'fill', x: i * bw + bw * 0.08, y: H - bh, width: Math.max(bw * 0.84, 1), height: bh }));
    const zoom = () => onZoom && onZoom(b.from, b.to);
    g.addEventListener('click', zoom);
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); zoom(); return; }
      let j = -1;
      if (e.key === 'ArrowRight') j = Math.min(n - 1, i + 1);
      if (e.key === 'ArrowLeft') j = Math.max(0, i - 1);
      if (e.key === 'Home') j = 0;
      if (e.key === 'End') j = n - 1;
      if (j >= 0) { e.preventDefault(); bars[i].setAttribute('tabindex', -1); bars[j].setAttribute('tabindex', 0); bars[j].focus(); }
    });
    bars.push(g);
    svg.appendChild(g);
  });
  const first = buckets[0], last = buckets[n - 1];
  const sameDay = first && last && new Date(first.from * 1000).toDateString() === new Date(last.to * 1000).toDateString();
  return h('figure', { class: 'histo' },
    h('div', { class: 'histo-y', 'aria-hidden': 'true' }, h('span', null, fmtCount(max)), h('span', null, '0')),
    svg,
    h('figcaption', { class: 'histo-x' },
      h('span', null, first ? fmtTime(first.from, !sameDay) : ''),
      h('span', null, n ? 'click a bar to zoom in' : ''),
      h('span', null, last ? fmtTime(last.to, !sameDay) : '')));
}

const isNum = (v) => v !== '' && v !== null && v !== undefined && !isNaN(Number(v)) && isFinite(Number(v));

// timeValue reads a SQL cell as a time in seconds, or NaN. The server
// renders timestamps in UTC without a zone ("2026-11-23 10:00:00.000"):
// those are read as UTC, not as the browser's local time. A bare date is
// a calendar day and stays local midnight.
export function timeValue(v) {
  if (v === null || v === undefined || v === '') return NaN;
  if (/^\d{10}(\.\d+)?$/.test(v)) return Number(v);
  if (/^\d{13}$/.test(v)) return Number(v) / 1000;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(v);
  if (m) {
    const t = Date.parse(!m[2] ? m[1] + 'T00:00:00' : `${m[1]}T${m[2]}${m[3] || 'Z'}`);
    return isNaN(t) ? NaN : t / 1000;
  }
  return NaN;
}

// localTime renders a UTC timestamp cell of the server in the browser's
// zone, as every other time on the page ("2026-11-23 18:00:00", with
// milliseconds when it has them); other values are returned unchanged.
export function localTime(v) {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}/.test(v)) return v;
  const t = timeValue(v);
  if (isNaN(t)) return v;
  const ms = Math.round((t * 1000) % 1000);
  return fmtTime(Math.floor(t)) + (ms ? '.' + String(ms).padStart(3, '0') : '');
}

// chartPlan decides whether a SQL result can be charted: a time column
// (line chart) or a category column (bar chart) plus numeric columns.
export function chartPlan(columns, rows) {
  if (!rows.length || columns.length < 2) return { kind: null, why: 'a chart needs at least two columns: a time or category column and a number' };
  const numeric = columns.filter((c) => rows.every((r) => r[c] === undefined || r[c] === '' || r[c] === 'null' || isNum(r[c])) && rows.some((r) => isNum(r[c])));
  const timeCol = columns.find((c) => rows.every((r) => !isNaN(timeValue(r[c]))) && (/(time|date|minute|hour|day|^t$|ts$)/i.test(c) || !numeric.includes(c)));
  if (timeCol) {
    const series = numeric.filter((c) => c !== timeCol);
    if (series.length) return { kind: 'line', x: timeCol, series: series.slice(0, 4) };
  }
  // A numeric first column next to other numbers is read as categories
  // (status codes, user ids): GROUP BY keys come first.
  const cat = columns.find((c) => !numeric.includes(c)) || (numeric.length >= 2 ? columns[0] : undefined);
  const vals = numeric.filter((c) => c !== cat);
  if (cat && vals.length) return { kind: 'bar', x: cat, series: vals.slice(0, 1) };
  return { kind: null, why: 'no time or category column next to a numeric column' };
}

// lineChart and barChart draw at width px (the box they go in), so text is
// at its natural size.
export function lineChart(rows, x, series, width = 800) {
  const pts = rows.map((r) => ({ t: timeValue(r[x]), v: series.map((c) => Number(r[c]) || 0) })).sort((a, b) => a.t - b.t);
  const W = Math.max(320, Math.round(width)), H = 260, L = 56, R = 12, T = 12, B = 28;
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
  const max = niceMax(Math.max(0, ...pts.flatMap((p) => p.v)));
  const X = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const Y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Line chart of ${series.join(', ')} over ${x}, ${pts.length} points` });
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.appendChild(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid' }));
    svg.appendChild(s('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmtCount(+v.toPrecision(3))));
  }
  const sameDay = new Date(t0 * 1000).toDateString() === new Date(t1 * 1000).toDateString();
  [[t0, 'start'], [(t0 + t1) / 2, 'middle'], [t1, 'end']].forEach(([t, a]) =>
    svg.appendChild(s('text', { x: X(t), y: H - 8, 'text-anchor': a, class: 'tick' }, fmtTime(t, !sameDay))));
  series.forEach((c, si) => {
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.t).toFixed(1)},${Y(p.v[si]).toFixed(1)}`).join(' ');
    svg.appendChild(s('path', { d, class: `series s${si}` }));
    if (pts.length <= 200) pts.forEach((p) => svg.appendChild(s('circle', { cx: X(p.t), cy: Y(p.v[si]), r: 2.5, class: `pt s${si}` }, s('title', null, `${fmtTime(p.t)} ${c}=${p.v[si]}`))));
  });
  return h('figure', { class: 'chart-wrap', 'data-kind': 'line' }, svg, legend(series));
}

export function barChart(rows, x, series, width = 800) {
  const c = series[0];
  const data = rows.slice(0, 40).map((r) => ({ k: r[x] ?? '', v: Number(r[c]) || 0 }));
  const W = Math.max(320, Math.round(width)), rowH = 24, L = Math.min(200, Math.round(W * 0.35)), R = 70;
  const H = data.length * rowH + 8;
  const max = niceMax(Math.max(0, ...data.map((d) => d.v)));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Bar chart of ${c} by ${x}, ${data.length} bars` });
  data.forEach((d, i) => {
    const y = 4 + i * rowH;
    const maxChars = Math.max(6, Math.floor((L - 12) / 7));
    const label = d.k.length > maxChars ? d.k.slice(0, maxChars - 1) + '…' : d.k;
    svg.appendChild(s('text', { x: L - 8, y: y + rowH * 0.65, 'text-anchor': 'end', class: 'tick' }, label || '(empty)'));
    svg.appendChild(s('rect', { x: L, y: y + 3, height: rowH - 6, width: Math.max(1, (d.v / max) * (W - L - R)), class: 'barfill s0' }, s('title', null, `${d.k}: ${d.v}`)));
    svg.appendChild(s('text', { x: L + (d.v / max) * (W - L - R) + 6, y: y + rowH * 0.65, class: 'tick' }, fmtCount(d.v)));
  });
  return h('figure', { class: 'chart-wrap', 'data-kind': 'bar' }, svg, legend([c]));
}

function legend(series) {
  return h('figcaption', { class: 'legend' }, series.map((c, i) => h('span', null, h('i', { class: `sw s${i}`, 'aria-hidden': 'true' }), c)));
}
