// Time ranges of the search page: presets, relative ("last N minutes,
// hours or days", kept relative in shared links) and custom absolute
// ranges, plus auto-refresh intervals.
import { h, localInput } from './dom.js';

export const PRESETS = [['5m', 'Last 5 minutes'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['4h', 'Last 4 hours'],
  ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const UNITS = { m: ['minute', 60], h: ['hour', 3600], d: ['day', 86400] };
export const REFRESH = [['', 'Off'], ['10s', 'Every 10 s'], ['30s', 'Every 30 s'], ['1m', 'Every minute'], ['5m', 'Every 5 minutes']];

const nowSec = () => Math.floor(Date.now() / 1000);

// relSeconds returns the span of a relative range ("45m", "2h", "7d"),
// or 0 when s is not one.
export function relSeconds(s) {
  const m = /^(\d{1,4})([mhd])$/.exec(s || '');
  return m && Number(m[1]) > 0 ? Number(m[1]) * UNITS[m[2]][1] : 0;
}

export function relLabel(s) {
  const p = PRESETS.find((x) => x[0] === s);
  if (p) return p[1];
  const m = /^(\d+)([mhd])$/.exec(s);
  if (!m) return s;
  const n = Number(m[1]);
  return `Last ${n} ${UNITS[m[2]][0]}${n === 1 ? '' : 's'}`;
}

export function refreshSeconds(s) {
  const m = /^(\d+)([sm])$/.exec(s || '');
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 0;
}

// resolve turns a range state into [from, to) in unix seconds: a
// relative range ends now.
export function resolve(st) {
  const span = relSeconds(st.range);
  if (span) {
    const to = nowSec() + 1;
    return [to - span, to];
  }
  return [st.from, st.to];
}

// rangeControl builds the time range fields. onChange(range) is called
// with {range} (relative) or {from, to} (custom) when the user picks a
// range that is complete; custom from/to wait for the form's submit.
export function rangeControl(st, onChange) {
  const sel = h('select', { id: 'range' });
  const fill = () => {
    sel.replaceChildren(...PRESETS.map(([v, l]) => h('option', { value: v }, l)));
    if (st.range && !PRESETS.some((p) => p[0] === st.range)) sel.appendChild(h('option', { value: st.range }, relLabel(st.range)));
    sel.append(h('option', { value: 'relative' }, 'Last N minutes, hours or days…'), h('option', { value: 'custom' }, 'Custom range…'));
    sel.value = st.range || 'custom';
  };
  fill();
  const [f0, t0] = resolve(st);
  const fromIn = h('input', { id: 'from', type: 'datetime-local', step: 1, value: localInput(f0) });
  const toIn = h('input', { id: 'to', type: 'datetime-local', step: 1, value: localInput(t0) });
  const custom = h('div', { class: 'custom', hidden: !!st.range }, h('div', null, h('label', { for: 'from' }, 'From'), fromIn), h('div', null, h('label', { for: 'to' }, 'To'), toIn));
  const relN = h('input', { id: 'rel-n', type: 'number', min: 1, max: 9999, value: 30, inputmode: 'numeric' });
  const relUnit = h('select', { id: 'rel-unit' }, Object.entries(UNITS).map(([u, [name]]) => h('option', { value: u }, `${name}s`)));
  const relApply = h('button', { type: 'button', class: 'secondary', id: 'rel-apply' }, 'Apply');
  const rel = h('div', { class: 'custom', hidden: true }, h('div', null, h('label', { for: 'rel-n' }, 'Last'), relN), h('div', null, h('label', { for: 'rel-unit' }, 'Unit'), relUnit), h('div', { class: 'end' }, relApply));
  const applyRel = () => {
    const n = Math.round(Number(relN.value));
    if (!(n >= 1 && n <= 9999)) { relN.setAttribute('aria-invalid', 'true'); relN.focus(); return; }
    relN.removeAttribute('aria-invalid');
    const r = `${n}${relUnit.value}`;
    st.range = r;
    fill();
    rel.hidden = true;
    onChange({ range: r });
  };
  relApply.addEventListener('click', applyRel);
  relN.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); applyRel(); } });
  sel.addEventListener('change', () => {
    custom.hidden = sel.value !== 'custom';
    rel.hidden = sel.value !== 'relative';
    if (sel.value === 'custom') { fromIn.focus(); return; }
    if (sel.value === 'relative') { relN.focus(); relN.select(); return; }
    onChange({ range: sel.value });
  });
  return {
    fields: [h('div', null, h('label', { for: 'range' }, 'Time range'), sel), rel, custom],
    // custom returns the chosen absolute range, or null (with the field
    // focused) when it is not a valid one.
    custom() {
      if (sel.value !== 'custom') return undefined;
      const f = Math.floor(new Date(fromIn.value).getTime() / 1000), t = Math.floor(new Date(toIn.value).getTime() / 1000);
      if (!(f && t && t > f)) { fromIn.focus(); return null; }
      return { from: f, to: t };
    },
    show(state) {
      fill();
      custom.hidden = !!state.range;
      rel.hidden = true;
      if (!state.range) { fromIn.value = localInput(state.from); toIn.value = localInput(state.to); }
    },
    setCustom(from, to) { fromIn.value = localInput(from); toIn.value = localInput(to); },
  };
}
