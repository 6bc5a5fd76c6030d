// Dashboards: saved SQL charts (line, bar, pie, table, single value) of a
// project, shown together over one time range. They are Log Service
// dashboards (/dashboards through the API, as the SDKs read and write
// them): each chart is {title, type, search: {logstore, query}, display}.
import { h, clear, announce, errorBox, emptyState, code, confirmDialog } from './dom.js';
import { sls, paths } from './api.js';
import { go, setCrumbs, projectHref, canWrite, enc } from './nav.js';
import { chartPlan, drawChart, KIND_LABELS, localTime } from './charts.js';
import { PRESETS, REFRESH, resolve, relSeconds, refreshSeconds } from './timerange.js';

export const dashboardHref = (p, d, params) => `#/p/${enc(p)}/dashboards/${enc(d)}${params ? '?' + params : ''}`;

// The chart types on the wire, as the Log Service names them.
const TO_TYPE = { line: 'line', bar: 'bar', pie: 'pie', table: 'table', single: 'number' };
const FROM_TYPE = Object.fromEntries(Object.entries(TO_TYPE).map(([k, v]) => [v, k]));

export const listDashboards = async (project) => {
  const r = await sls('GET', project, '/dashboards?offset=0&size=500');
  return r.dashboardItems || (r.dashboards || []).map((n) => ({ dashboardName: n, displayName: n }));
};
const getDashboard = (project, name) => sls('GET', project, `/dashboards/${enc(name)}`);
const putDashboard = (project, d) => sls('PUT', project, `/dashboards/${enc(d.dashboardName)}`, d);

// addChart appends a chart to a dashboard (titles are unique in one).
export async function addChart(project, name, chart) {
  const d = await getDashboard(project, name);
  d.charts = d.charts || [];
  if (d.charts.some((c) => c.title === chart.title)) throw Object.assign(new Error(`the dashboard already has a chart titled "${chart.title}"`), { code: 'ChartTitleTaken' });
  d.charts.push({ title: chart.title, type: TO_TYPE[chart.kind] || 'table', search: { logstore: chart.logstore, query: chart.query, start: '-900s', end: 'now' }, display: {} });
  await putDashboard(project, d);
}

const slug = (t) => t.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100) || 'dashboard';

export async function dashboardsTab(body, project) {
  let items;
  try { items = await listDashboards(project); } catch (err) { body.appendChild(errorBox(err)); return; }
  if (!items.length) {
    body.appendChild(emptyState('No dashboards yet',
      h('p', null, 'A dashboard shows saved SQL charts together over one time range. Create one here, then add charts from a search\'s SQL result ("Add to dashboard").')));
  } else {
    body.appendChild(h('ul', { class: 'list', 'aria-label': 'Dashboards' }, items.map((d) =>
      h('li', null, h('a', { href: dashboardHref(project, d.dashboardName), class: 'name' }, d.displayName || d.dashboardName)))));
  }
  if (!canWrite(project)) return;
  const title = h('input', { id: 'db-title', required: true, placeholder: 'e.g. Web traffic' });
  const msg = h('div');
  const form = h('form', { class: 'card form', id: 'create-dashboard' }, h('h2', null, 'Create a dashboard'),
    h('label', { for: 'db-title' }, 'Title'), title, msg, h('button', { type: 'submit', class: 'primary' }, 'Create dashboard'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const t = title.value.trim();
    const name = slug(t);
    try {
      await sls('POST', project, '/dashboards', { dashboardName: name, displayName: t, description: '', charts: [] });
      announce(`Dashboard ${t} created`);
      go(dashboardHref(project, name));
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  body.appendChild(form);
}

export async function dashboardPage(main, project, name, params) {
  const st = { range: relSeconds(params.get('range')) ? params.get('range') : '1h', refresh: refreshSeconds(params.get('refresh')) ? params.get('refresh') : '' };
  let d;
  const page = h('section', { class: 'page dashboard' });
  main.appendChild(page);
  try { d = await getDashboard(project, name); } catch (err) { page.appendChild(errorBox(err)); return; }
  setCrumbs([project, projectHref(project)], ['Dashboards', projectHref(project, 'dashboards')], [d.displayName || name, dashboardHref(project, name)]);
  const rangeSel = h('select', { id: 'db-range' }, PRESETS.map(([v, l]) => h('option', { value: v, selected: st.range === v }, l)));
  if (!PRESETS.some((p) => p[0] === st.range)) rangeSel.appendChild(h('option', { value: st.range, selected: true }, `Last ${st.range}`));
  const refreshSel = h('select', { id: 'db-refresh' }, REFRESH.map(([v, l]) => h('option', { value: v, selected: st.refresh === v }, l)));
  const grid = h('div', { class: 'dash-grid' });
  page.append(h('div', { class: 'title-row' }, h('h1', null, d.displayName || name)),
    h('div', { class: 'controls dash-controls' },
      h('div', null, h('label', { for: 'db-range' }, 'Time range (all charts)'), rangeSel),
      h('div', null, h('label', { for: 'db-refresh' }, 'Auto-refresh'), refreshSel)),
    grid);
  const setURL = () => {
    const p = new URLSearchParams({ range: st.range });
    if (st.refresh) p.set('refresh', st.refresh);
    history.replaceState(null, '', dashboardHref(project, name, p.toString()));
  };
  let seq = 0;
  const render = async () => {
    const my = ++seq;
    const [from, to] = resolve(st);
    clear(grid);
    const charts = d.charts || [];
    if (!charts.length) {
      grid.appendChild(emptyState('No charts yet', h('p', null, 'Run a search with ', code('| SELECT …'), ' on a logstore and choose "Add to dashboard" under its result.')));
      return;
    }
    await Promise.all(charts.map(async (c) => {
      const kind = FROM_TYPE[c.type] || 'table';
      const body = h('div', { class: 'dash-body' }, h('p', { class: 'hint' }, 'Loading…'));
      const remove = canWrite(project) ? h('button', { type: 'button', class: 'secondary del', 'aria-label': `Remove the chart ${c.title}` }, 'Remove') : null;
      const card = h('figure', { class: 'card dash-card', 'data-title': c.title, 'data-kind': kind },
        h('figcaption', null, h('strong', null, c.title), h('span', { class: 'hint' }, ` ${c.search.logstore} · ${KIND_LABELS[kind] || kind}`), remove),
        body);
      grid.appendChild(card);
      if (remove) {
        remove.addEventListener('click', async () => {
          if (!await confirmDialog({ title: `Remove the chart ${c.title}?`, body: h('p', null, 'It is removed from the dashboard for everyone.'), confirmLabel: 'Remove chart' })) return;
          try {
            d = await getDashboard(project, name);
            d.charts = (d.charts || []).filter((x) => x.title !== c.title);
            await putDashboard(project, d);
            announce(`Chart ${c.title} removed`);
            render();
          } catch (err) { card.appendChild(errorBox(err)); }
        });
      }
      try {
        const res = await sls('POST', project, paths.logs(c.search.logstore), { from, to, query: c.search.query, line: 100, offset: 0, reverse: true });
        if (my !== seq) return;
        const data = res.data || [];
        const cols = (res.meta && res.meta.keys && res.meta.keys.length) ? res.meta.keys : Object.keys(data[0] || {});
        clear(body);
        if (!data.length) { body.appendChild(h('p', { class: 'hint' }, 'No rows in this time range.')); return; }
        const plan = chartPlan(cols, data);
        const el = kind === 'table' ? null : drawChart(kind, data, plan.x ? plan : { ...plan, series: plan.numeric || [] }, Math.max(280, body.clientWidth - 26));
        if (el) body.appendChild(el);
        else body.appendChild(resultTable(cols, data, res.meta));
      } catch (err) {
        if (my !== seq) return;
        clear(body).appendChild(errorBox(err));
      }
    }));
    if (my === seq) page.dataset.state = 'done';
  };
  rangeSel.addEventListener('change', () => { st.range = rangeSel.value; setURL(); render(); });
  let timer = null;
  const setRefresh = () => {
    clearInterval(timer);
    const s = refreshSeconds(st.refresh);
    timer = s ? setInterval(() => { if (!document.hidden) render(); }, s * 1000) : null;
  };
  refreshSel.addEventListener('change', () => { st.refresh = refreshSel.value; setURL(); setRefresh(); });
  await render();
  setRefresh();
  return () => { clearInterval(timer); seq++; };
}

function resultTable(cols, data, meta) {
  const types = (meta && meta.columnTypes) || [];
  const timeCols = new Set(cols.filter((c, i) => /^timestamp/i.test(types[i] || '')));
  const cell = (r, c) => h('td', null, timeCols.has(c) && r[c] !== 'null' ? localTime(r[c]) : (r[c] ?? ''));
  const head = h('thead', null, h('tr', null, cols.map((c) => h('th', { scope: 'col' }, c))));
  const body = h('tbody', null, data.slice(0, 100).map((r) => h('tr', null, cols.map((c) => cell(r, c)))));
  return h('div', { class: 'table-scroll', tabindex: 0, 'aria-label': 'Chart data' }, h('table', { class: 'sql-table' }, head, body));
}
