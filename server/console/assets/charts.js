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
// onZoom(from, to), and so does dragging across bars (the range they
// cover). Bars form one tab stop; arrow keys move between them,
// Shift+arrows extend a selection that Enter zooms to.
export function histogram(buckets, { onZoom, label = 'Log count over time' } = {}) {
  const W = 1000, H = 110;
  const n = buckets.length;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const bw = n ? W / n : W;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'histogram', role: 'group', 'aria-label': `${label}: ${n} bars, use arrow keys, Enter zooms in, Shift+arrows select several` });
  const sel = s('rect', { class: 'sel', x: 0, y: 0, width: 0, height: H, hidden: '' });
  const bars = [];
  let anchor = -1; // keyboard selection start (Shift+arrows)
  const showSel = (a, b) => {
    const lo = Math.min(a, b), hi = Math.max(a, b);
    sel.setAttribute('x', lo * bw);
    sel.setAttribute('width', (hi - lo + 1) * bw);
    sel.removeAttribute('hidden');
    svg.dataset.selFrom = buckets[lo].from;
    svg.dataset.selTo = buckets[hi].to;
  };
  const hideSel = () => { sel.setAttribute('hidden', ''); delete svg.dataset.selFrom; delete svg.dataset.selTo; };
  const zoomTo = (a, b) => onZoom && onZoom(buckets[Math.min(a, b)].from, buckets[Math.max(a, b)].to);
  buckets.forEach((b, i) => {
    const bh = b.count ? Math.max(2, (b.count / max) * (H - 4)) : 0;
    const text = `${fmtTime(b.from)} to ${fmtTime(b.to)}: ${fmtCount(b.count)} logs`;
    const g = s('g', { class: 'bar', role: 'button', tabindex: i === n - 1 ? 0 : -1, 'aria-label': text, 'data-from': b.from, 'data-to': b.to, 'data-count': b.count, 'data-i': i },
      s('title', null, text),
      s('rect', { class: 'hit', x: i * bw, y: 0, width: bw, height: H }),
      s('rect', { class: 'fill', x: i * bw + bw * 0.08, y: H - bh, width: Math.max(bw * 0.84, 1), height: bh }));
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); anchor >= 0 ? zoomTo(anchor, i) : zoomTo(i, i); return; }
      if (e.key === 'Escape') { anchor = -1; hideSel(); return; }
      let j = -1;
      if (e.key === 'ArrowRight') j = Math.min(n - 1, i + 1);
      if (e.key === 'ArrowLeft') j = Math.max(0, i - 1);
      if (e.key === 'Home') j = 0;
      if (e.key === 'End') j = n - 1;
      if (j < 0) return;
      e.preventDefault();
      if (e.shiftKey) { if (anchor < 0) anchor = i; showSel(anchor, j); } else { anchor = -1; hideSel(); }
      bars[i].setAttribute('tabindex', -1); bars[j].setAttribute('tabindex', 0); bars[j].focus();
    });
    bars.push(g);
    svg.appendChild(g);
  });
  svg.appendChild(sel);
  // Pointer: a click zooms to a bar, a drag to the bars it crossed.
  const barAt = (x) => {
    const r = svg.getBoundingClientRect();
    return Math.min(n - 1, Math.max(0, Math.floor(((x - r.left) / r.width) * n)));
  };
  let down = null;
  svg.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !n) return;
    down = { x: e.clientX, i: barAt(e.clientX), drag: false };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener('pointermove', (e) => {
    if (!down) return;
    if (!down.drag && Math.abs(e.clientX - down.x) < 4) return;
    down.drag = true;
    showSel(down.i, barAt(e.clientX));
  });
  svg.addEventListener('pointerup', (e) => {
    if (!down) return;
    const d = down;
    down = null;
    svg.releasePointerCapture(e.pointerId);
    // The pointer is captured, so the target is the svg: the bar is found
    // by position.
    if (d.drag) { zoomTo(d.i, barAt(e.clientX)); return; }
    zoomTo(d.i, d.i);
  });
  svg.addEventListener('pointercancel', () => { down = null; hideSel(); });
  const first = buckets[0], last = buckets[n - 1];
  const sameDay = first && last && new Date(first.from * 1000).toDateString() === new Date(last.to * 1000).toDateString();
  return h('figure', { class: 'histo' },
    h('div', { class: 'histo-y', 'aria-hidden': 'true' }, h('span', null, fmtCount(max)), h('span', null, '0')),
    svg,
    h('figcaption', { class: 'histo-x' },
      h('span', null, first ? fmtTime(first.from, !sameDay) : ''),
      h('span', null, n ? 'click a bar or drag across bars to zoom in' : ''),
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
  const numeric = columns.filter((c) => rows.every((r) => r[c] === undefined || r[c] === '' || r[c] === 'null' || isNum(r[c])) && rows.some((r) => isNum(r[c])));
  if (!rows.length || columns.length < 2) {
    // One number (select count(*)) is a single value.
    return { kind: null, single: rows.length === 1 && numeric.length > 0, numeric, series: numeric, why: 'a chart needs at least two columns: a time or category column and a number' };
  }
  const timeCol = columns.find((c) => rows.every((r) => !isNaN(timeValue(r[c]))) && (/(time|date|minute|hour|day|^t$|ts$)/i.test(c) || !numeric.includes(c)));
  if (timeCol) {
    const series = numeric.filter((c) => c !== timeCol);
    if (series.length) return { kind: 'line', x: timeCol, series: series.slice(0, 4), numeric };
  }
  // A numeric first column next to other numbers is read as categories
  // (status codes, user ids): GROUP BY keys come first.
  const cat = columns.find((c) => !numeric.includes(c)) || (numeric.length >= 2 ? columns[0] : undefined);
  const vals = numeric.filter((c) => c !== cat);
  if (cat && vals.length) return { kind: 'bar', x: cat, series: vals.slice(0, 1), numeric };
  return { kind: null, single: rows.length === 1 && numeric.length > 0, numeric, series: numeric, why: 'no time or category column next to a numeric column' };
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

// pieChart draws the first numeric series by category (the 8 largest,
// the rest as "other").
export function pieChart(rows, x, series, width = 800) {
  const c = series[0];
  let data = rows.map((r) => ({ k: r[x] ?? '', v: Math.max(0, Number(r[c]) || 0) })).sort((a, b) => b.v - a.v);
  if (data.length > 8) {
    const rest = data.slice(7).reduce((a, d) => a + d.v, 0);
    data = data.slice(0, 7).concat([{ k: 'other', v: rest }]);
  }
  const total = data.reduce((a, d) => a + d.v, 0) || 1;
  const R = 100, W = Math.max(320, Math.round(width)), H = 2 * R + 16, cx = R + 8, cy = R + 8;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Pie chart of ${c} by ${x}, ${data.length} slices` });
  let a0 = -Math.PI / 2;
  data.forEach((d, i) => {
    const a1 = a0 + (d.v / total) * 2 * Math.PI;
    const large = a1 - a0 > Math.PI ? 1 : 0;
    const p = (a) => `${(cx + R * Math.cos(a)).toFixed(2)},${(cy + R * Math.sin(a)).toFixed(2)}`;
    const dPath = data.length === 1 ? `M${cx - R},${cy} a${R},${R} 0 1,0 ${2 * R},0 a${R},${R} 0 1,0 ${-2 * R},0` : `M${cx},${cy} L${p(a0)} A${R},${R} 0 ${large} 1 ${p(a1)} Z`;
    svg.appendChild(s('path', { d: dPath, class: `slice s${i % 8}` }, s('title', null, `${d.k || '(empty)'}: ${fmtCount(d.v)} (${(100 * d.v / total).toFixed(1)}%)`)));
    const y = 14 + i * 22;
    svg.appendChild(s('rect', { x: 2 * R + 40, y: y - 10, width: 12, height: 12, class: `slice s${i % 8}` }));
    svg.appendChild(s('text', { x: 2 * R + 58, y, class: 'tick' }, `${d.k || '(empty)'} — ${fmtCount(d.v)} (${(100 * d.v / total).toFixed(1)}%)`));
    a0 = a1;
  });
  return h('figure', { class: 'chart-wrap', 'data-kind': 'pie' }, svg);
}

// singleValue shows the first numeric cell of the first row, large.
export function singleValue(rows, series) {
  const c = series[0];
  const v = rows.length ? rows[0][c] : '';
  const n = Number(v);
  return h('figure', { class: 'chart-wrap single', 'data-kind': 'single' },
    h('div', { class: 'single-value', 'aria-label': `${c}: ${v}` }, isNum(v) ? fmtCount(+n.toPrecision(6)) : String(v ?? '')),
    h('figcaption', { class: 'legend' }, c));
}

// chartKinds lists the chart kinds that suit a plan, the first the default.
export function chartKinds(plan, rows) {
  if (!plan.kind) return plan.single ? ['single', 'table'] : ['table'];
  const kinds = plan.kind === 'line' ? ['line', 'bar'] : ['bar', 'pie'];
  if (rows.length === 1) kinds.push('single');
  kinds.push('table');
  return kinds;
}

export const KIND_LABELS = { line: 'Line chart', bar: 'Bar chart', pie: 'Pie chart', single: 'Single value', table: 'Table only' };

// drawChart renders a result as kind ('table' draws nothing: the table is
// the result).
export function drawChart(kind, rows, plan, width) {
  if (kind === 'line') return lineChart(rows, plan.x, plan.series, width);
  if (kind === 'bar') return barChart(rows, plan.x, plan.series, width);
  if (kind === 'pie') return pieChart(rows, plan.x, plan.series, width);
  if (kind === 'single') return singleValue(rows, plan.series.length ? plan.series : plan.numeric);
  return null;
}

function legend(series) {
  return h('figcaption', { class: 'legend' }, series.map((c, i) => h('span', null, h('i', { class: `sw s${i}`, 'aria-hidden': 'true' }), c)));
}
