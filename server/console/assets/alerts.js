// Alerts: a saved query run on a schedule over a relative window, compared
// with a threshold, notifying webhooks (the API's /jobs Alert resource; the
// server evaluates them, server/alert). The list shows each alert's status;
// an alert's page shows its last evaluation, errors, and history, and edits,
// disables or deletes it.
import { h, clear, announce, errorBox, emptyState, code, confirmDialog, fmtTime } from './dom.js';
import { sls } from './api.js';
import { go, setCrumbs, projectHref, canWrite, enc } from './nav.js';

export const alertHref = (p, a) => `#/p/${enc(p)}/alerts/${enc(a)}`;

const getState = (project, name) => sls('GET', project, `/jobs/${enc(name)}/state`);
const secs = (t) => (t ? Date.parse(t) / 1000 : 0);

// statusBadge shows ok / firing / resolved / disabled in words (never by
// color alone).
function statusBadge(a, st) {
  const s = a.status === 'DISABLED' ? 'disabled' : (st && st.status) || 'ok';
  return h('span', { class: `badge alert-${s}`, 'data-status': s }, s);
}

export async function alertsTab(body, project) {
  let list;
  try { list = (await sls('GET', project, '/jobs?jobType=Alert&offset=0&size=500')).results || []; } catch (err) { body.appendChild(errorBox(err)); return; }
  if (!list.length) {
    body.appendChild(emptyState('No alerts yet',
      h('p', null, 'An alert runs a query on a schedule, e.g. ', code('status >= 500 | select count(*) as c'),
        ' every minute over the last 5 minutes, and posts to a webhook when ', code('c > 10'), '.')));
  } else {
    const states = await Promise.all(list.map((a) => getState(project, a.name).catch(() => null)));
    body.appendChild(h('ul', { class: 'list', 'aria-label': 'Alerts' }, list.map((a, i) =>
      h('li', { 'data-alert': a.name }, h('a', { href: alertHref(project, a.name), class: 'name' }, a.displayName || a.name), statusBadge(a, states[i]),
        h('span', { class: 'hint' }, ` ${a.configuration.queryList[0].logStore} · ${a.configuration.condition} · every ${a.schedule.interval}`)))));
  }
  if (canWrite(project)) body.appendChild(await alertForm(project, null));
}

// alertForm creates (a == null) or edits an alert.
async function alertForm(project, a) {
  let logstores = [];
  try { logstores = (await sls('GET', project, '/logstores')).logstores || []; } catch { /* typed by hand then */ }
  const q = a ? a.configuration.queryList[0] : {};
  const hook = a ? (a.configuration.notificationList || [])[0] || {} : {};
  const f = (id, label, input, hint) => [h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null];
  const title = h('input', { id: 'al-title', required: true, value: a ? a.displayName || a.name : '', placeholder: 'e.g. Server errors' });
  const ls = h('select', { id: 'al-logstore', required: true }, logstores.map((n) => h('option', { value: n, selected: n === q.logStore }, n)));
  const query = h('input', { id: 'al-query', required: true, value: q.query || '', placeholder: 'status >= 500 | select count(*) as c', 'aria-describedby': 'al-query-hint', class: 'mono' });
  const span = h('input', { id: 'al-window', required: true, value: (q.start || '-5m').replace(/^-/, ''), 'aria-describedby': 'al-window-hint', size: 6 });
  const cond = h('input', { id: 'al-condition', required: true, value: a ? a.configuration.condition : '', placeholder: 'c > 10', 'aria-describedby': 'al-condition-hint', class: 'mono' });
  const every = h('input', { id: 'al-interval', required: true, value: a ? a.schedule.interval : '1m', 'aria-describedby': 'al-interval-hint', size: 6 });
  const url = h('input', { id: 'al-webhook', type: 'url', required: true, value: hook.serviceUri || '', placeholder: 'https://hooks.example.com/sluice' });
  const resolved = h('input', { id: 'al-resolved', type: 'checkbox', checked: a ? !!a.configuration.sendResolved : true });
  const msg = h('div');
  const form = h('form', { class: 'card form', id: a ? 'edit-alert' : 'create-alert' }, h('h2', null, a ? 'Edit the alert' : 'Create an alert'),
    ...f('al-title', 'Title', title),
    ...f('al-logstore', 'Logstore', ls),
    ...f('al-query', 'Query', query, 'A search, or search | SQL. With no SQL the condition reads __count__, the matching lines.'),
    ...f('al-window', 'Over the last', span, 'A duration: 5m, 1h, 1d.'),
    ...f('al-condition', 'Fire when', cond, 'column op number, e.g. c > 10 (any result row), or __count__ > 0 (the rows).'),
    ...f('al-interval', 'Check every', every, 'At least 1s, e.g. 1m.'),
    ...f('al-webhook', 'Webhook URL', url, 'Receives a JSON POST when the alert fires and resolves; retried with backoff.'),
    h('div', { class: 'check' }, resolved, h('label', { for: 'al-resolved' }, ' Also notify when resolved')),
    msg, h('button', { type: 'submit', class: 'primary' }, a ? 'Save alert' : 'Create alert'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const name = a ? a.name : title.value.trim().toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'alert';
    const body = {
      ...(a || {}), name, displayName: title.value.trim(), type: 'Alert',
      configuration: {
        ...(a ? a.configuration : {}),
        queryList: [{ logStore: ls.value, query: query.value.trim(), start: '-' + span.value.trim().replace(/^-/, ''), end: 'now' }],
        condition: cond.value.trim(), sendResolved: resolved.checked,
        notificationList: [{ type: 'Webhook', serviceUri: url.value.trim(), method: 'POST' }],
      },
      schedule: { type: 'FixedRate', interval: every.value.trim() },
    };
    try {
      if (a) await sls('PUT', project, `/jobs/${enc(name)}`, body);
      else await sls('POST', project, '/jobs', body);
      announce(`Alert ${body.displayName} saved`);
      go(alertHref(project, name));
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  return form;
}

export async function alertPage(main, project, name) {
  const page = h('section', { class: 'page alert-page' });
  main.appendChild(page);
  let a;
  try { a = await sls('GET', project, `/jobs/${enc(name)}`); } catch (err) { page.appendChild(errorBox(err)); return; }
  setCrumbs([project, projectHref(project)], ['Alerts', projectHref(project, 'alerts')], [a.displayName || name, alertHref(project, name)]);
  const q = a.configuration.queryList[0];
  const status = h('div', { class: 'alert-status', 'aria-live': 'polite' });
  const hist = h('div');
  page.append(h('div', { class: 'title-row' }, h('h1', null, a.displayName || name)),
    h('p', null, code(q.query), ` on ${q.logStore}, over the last ${q.start.replace(/^-/, '')}, every ${a.schedule.interval}; fires when `, code(a.configuration.condition), '.'),
    status, h('h2', null, 'History'), hist);
  const render = async () => {
    let st;
    try { st = await getState(project, name); } catch (err) { clear(status).appendChild(errorBox(err)); return; }
    clear(status).append(...[
      h('p', null, 'Status: ', statusBadge(a, st),
        st.lastEvaluation ? ` · last evaluated ${fmtTime(secs(st.lastEvaluation))}` : ' · not evaluated yet',
        st.lastValue !== undefined && st.lastValue !== '' ? ` · value ${st.lastValue}` : ''),
      st.lastError ? h('div', { class: 'banner error', role: 'alert' }, 'The last evaluation failed: ', st.lastError) : null,
      st.lastNotifyError ? h('div', { class: 'banner error', role: 'alert', id: 'webhook-failing' }, 'The webhook is failing: ', st.lastNotifyError, '. Delivery is retried at each evaluation.') : null].filter(Boolean));
    const rows = st.history || [];
    clear(hist).appendChild(rows.length
      ? h('table', { class: 'results alert-history' },
        h('thead', null, h('tr', null, ['Time', 'Event', 'Status', 'Value / target', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows.map((e) => h('tr', { 'data-type': e.type, 'data-status': e.status },
          h('td', null, fmtTime(secs(e.time))), h('td', null, e.type === 'notification' ? `notification (${e.attempts} attempt${e.attempts === 1 ? '' : 's'})` : 'evaluation'),
          h('td', null, e.status), h('td', null, e.type === 'notification' ? e.url : e.value || ''), h('td', null, e.error || '')))))
      : h('p', { class: 'hint' }, 'No evaluations yet.'));
    page.dataset.state = 'done';
  };
  await render();
  const timer = setInterval(() => { if (!document.hidden) render(); }, 3000);
  if (canWrite(project)) {
    const enabled = a.status !== 'DISABLED';
    const toggle = h('button', { type: 'button', class: 'secondary', id: 'alert-toggle' }, enabled ? 'Disable' : 'Enable');
    const del = h('button', { type: 'button', class: 'secondary danger', id: 'alert-delete' }, 'Delete alert');
    const msg = h('div');
    toggle.addEventListener('click', async () => {
      try {
        await sls('PUT', project, `/jobs/${enc(name)}?action=${enabled ? 'disable' : 'enable'}`);
        announce(`Alert ${enabled ? 'disabled' : 'enabled'}`);
        window.dispatchEvent(new Event('hashchange'));
      } catch (err) { msg.appendChild(errorBox(err)); }
    });
    del.addEventListener('click', async () => {
      if (!await confirmDialog({ title: `Delete the alert ${a.displayName || name}?`, body: h('p', null, 'Its history goes with it.'), confirmLabel: 'Delete alert' })) return;
      try { await sls('DELETE', project, `/jobs/${enc(name)}`); announce('Alert deleted'); go(projectHref(project, 'alerts')); } catch (err) { msg.appendChild(errorBox(err)); }
    });
    page.append(h('div', { class: 'controls' }, toggle, del), msg, await alertForm(project, a));
  }
  return () => clearInterval(timer);
}
