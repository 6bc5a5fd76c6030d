// Sluice console: hash-routed single page. Each page is a function that
// renders into <main> and may return a cleanup function (timers, observers).
import { h, clear, announce, errorBox, emptyState, code, confirmDialog } from './dom.js';
import { session, setCSRF, setSignedOutHandler, sls, paths } from './api.js';
import { searchPage } from './search.js';
import { groupPage, groupsTab } from './groups.js';
import { configPage, configsTab } from './configs.js';
import { dashboardsTab, dashboardPage } from './dashboards.js';
import { alertsTab, alertPage } from './alerts.js';
import { indexPage, settingsPage, createLogstoreForm } from './logstores.js';
import { state, go, enc, projectHref, searchHref, indexHref, settingsHref, setCrumbs, canWrite } from './nav.js';

const main = document.getElementById('main');
const who = document.getElementById('who');

let cleanup = null;
let renderSeq = 0;

function renderWho() {
  clear(who);
  if (!state.me) return;
  who.appendChild(h('span', { class: 'key', title: state.me.admin ? 'admin key' : 'project key' },
    state.me.accessKeyId, state.me.admin ? h('span', { class: 'badge' }, 'admin') : null));
  who.appendChild(h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  try { await session.signOut(); } catch { /* already signed out */ }
  state.me = null;
  setCSRF('');
  renderWho();
  go('#/signin');
}

setSignedOutHandler(() => {
  state.me = null;
  setCSRF('');
  renderWho();
  if (!location.hash.startsWith('#/signin')) {
    sessionStorage.setItem('sluice.after', location.hash);
    go('#/signin');
  }
});

function signInPage() {
  setCrumbs(['Sign in', '#/signin']);
  const idIn = h('input', { id: 'ak-id', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'off' });
  const secIn = h('input', { id: 'ak-secret', name: 'accessKeySecret', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { id: 'signin-msg' });
  const form = h('form', { class: 'card signin', 'aria-describedby': 'signin-help' },
    h('h1', null, 'Sign in'),
    h('p', { id: 'signin-help', class: 'hint' }, 'Use an access key of this server. The first start writes an admin key to ', code('DATA-DIR/admin-key.json'),
      '; create narrower keys with ', code('sluice-server keys create --project NAME=read'), '. The console has exactly the permissions of the key.'),
    h('label', { for: 'ak-id' }, 'Access key id'), idIn,
    h('label', { for: 'ak-secret' }, 'Access key secret'), secIn,
    msg,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      const me = await session.signIn(idIn.value, secIn.value);
      secIn.value = '';
      state.me = me;
      setCSRF(me.csrfToken);
      renderWho();
      announce(`Signed in as ${me.accessKeyId}`);
      const after = sessionStorage.getItem('sluice.after');
      sessionStorage.removeItem('sluice.after');
      go(after && !after.startsWith('#/signin') ? after : '#/');
    } catch (err) {
      msg.appendChild(errorBox(err));
      secIn.focus();
    } finally {
      btn.disabled = false;
    }
  });
  main.appendChild(form);
  idIn.focus();
}

async function projectsPage() {
  setCrumbs();
  const me = state.me;
  const sec = h('section', { class: 'page' }, h('h1', null, 'Projects'));
  main.appendChild(sec);
  let projects = [];
  try {
    // ListProject answers with the projects this key may read.
    const r = await sls('GET', '', '/?offset=0&size=500');
    const perm = new Map(me.projects.map((p) => [p.name, p.permission]));
    projects = (r.projects || []).map((p) => ({ name: p.projectName, description: p.description || (me.admin ? '' : `${perm.get(p.projectName) || 'read'} access`) }));
  } catch (err) {
    sec.appendChild(errorBox(err));
    return;
  }
  if (!projects.length) {
    sec.appendChild(emptyState('No projects yet',
      h('p', null, 'A project holds logstores (where logs land), machine groups (sets of agents) and collection configs.'),
      me.admin ? h('p', null, 'Create one below, or with any Log Service SDK (', code('client.CreateProject("web", "")'), ').')
        : h('p', null, 'This key has no project permissions. Ask an admin to run ', code(`sluice-server keys grant --id ${me.accessKeyId} --project NAME=read`), '.')));
  } else {
    sec.appendChild(h('ul', { class: 'cards' }, projects.map((p) =>
      h('li', { class: 'card' }, h('h2', null, h('a', { href: projectHref(p.name) }, p.name)), h('p', { class: 'hint' }, p.description || '—')))));
  }
  if (me.admin) sec.appendChild(createProjectForm());
}

function createProjectForm() {
  const name = h('input', { id: 'np-name', required: true, pattern: '[a-z0-9][a-z0-9-]{1,61}[a-z0-9]', 'aria-describedby': 'np-help', spellcheck: 'false' });
  const desc = h('input', { id: 'np-desc' });
  const msg = h('div');
  const form = h('form', { class: 'card form' },
    h('h2', null, 'Create a project'),
    h('label', { for: 'np-name' }, 'Name'), name,
    h('p', { id: 'np-help', class: 'hint' }, '3–63 characters: lower-case letters, digits and hyphens.'),
    h('label', { for: 'np-desc' }, 'Description (optional)'), desc,
    msg, h('button', { type: 'submit', class: 'primary' }, 'Create project'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    try {
      await sls('POST', name.value, '/', { projectName: name.value, description: desc.value });
      announce(`Project ${name.value} created`);
      go(projectHref(name.value));
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  return form;
}

async function projectPage(project, tab) {
  tab = tab || 'logstores';
  const labels = { logstores: 'Logstores', dashboards: 'Dashboards', alerts: 'Alerts', groups: 'Machine groups', configs: 'Configs' };
  setCrumbs([project, projectHref(project)], [labels[tab] || tab, projectHref(project, tab)]);
  const nav = h('nav', { class: 'tabs', 'aria-label': 'Project sections' },
    Object.entries(labels).map(([t, l]) => h('a', { href: projectHref(project, t), 'aria-current': t === tab ? 'page' : null }, l)));
  const body = h('div', { class: 'tab-body' });
  main.appendChild(h('section', { class: 'page' }, h('h1', null, project), nav, body));
  if (tab === 'groups') return groupsTab(body, project);
  if (tab === 'configs') return configsTab(body, project);
  if (tab === 'dashboards') return dashboardsTab(body, project);
  if (tab === 'alerts') return alertsTab(body, project);
  return logstoresTab(body, project);
}

async function logstoresTab(body, project) {
  let names;
  try {
    names = (await sls('GET', project, paths.logstores())).logstores || [];
  } catch (err) {
    body.appendChild(errorBox(err));
    return;
  }
  if (!names.length) {
    body.appendChild(emptyState('No logstores yet',
      h('p', null, 'A logstore is where logs land and are searched. Create one below, then send logs to it: point an agent config\'s ',
        code('outputDetail.logstoreName'), ' at it, or call PutLogs from an SDK.')));
  } else {
    body.appendChild(h('ul', { class: 'list', 'aria-label': 'Logstores' }, names.map((ls) =>
      h('li', null, h('a', { href: searchHref(project, ls), class: 'name' }, ls),
        h('span', { class: 'actions' },
          h('a', { href: searchHref(project, ls) }, 'Search'),
          h('a', { href: indexHref(project, ls) }, 'Index'),
          h('a', { href: settingsHref(project, ls) }, 'Settings'))))));
  }
  if (canWrite(project)) body.appendChild(createLogstoreForm(project));
  else body.appendChild(h('p', { class: 'hint' }, 'This access key can read this project but not change it.'));
  if (state.me && state.me.admin) body.appendChild(deleteProjectCard(project, names.length));
}

// deleteProjectCard deletes the project with everything in it, once its
// name is typed (admins only: DeleteProject needs an admin key).
function deleteProjectCard(project, logstores) {
  const del = h('button', { type: 'button', class: 'danger', id: 'delete-project' }, 'Delete project');
  const msg = h('div');
  del.addEventListener('click', async () => {
    clear(msg);
    if (!await confirmDialog({ title: `Delete project ${project}?`, body: h('p', null, `Its ${logstores} logstore${logstores === 1 ? '' : 's'} and every log in them are deleted with the project. This cannot be undone.`),
      confirmLabel: 'Delete project', typeToConfirm: project })) return;
    try {
      await sls('DELETE', project, '/');
      announce(`Project ${project} deleted`);
      go('#/');
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  return h('section', { class: 'card danger-zone', 'aria-labelledby': 'dp-h' }, h('h2', { id: 'dp-h' }, 'Delete this project'),
    h('p', null, 'Deletes the project and every logstore in it with its logs.'), msg, del);
}

function notFoundPage() {
  setCrumbs(['Not found', location.hash]);
  main.appendChild(emptyState('Page not found', h('p', null, 'Nothing lives at ', code(location.hash), '. '), h('a', { href: '#/' }, 'Back to projects')));
}

async function route() {
  const seq = ++renderSeq;
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  clear(main);
  const raw = location.hash.replace(/^#/, '') || '/';
  const [pathPart, queryPart] = raw.split('?');
  const params = new URLSearchParams(queryPart || '');
  const seg = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  if (!state.me && seg[0] !== 'signin') {
    try {
      const me = await session.get();
      state.me = me;
      setCSRF(me.csrfToken);
      renderWho();
    } catch (err) {
      if (seq !== renderSeq) return;
      // The 401 handler (api.js) already kept where the user was going
      // and moved to #/signin: keep the target, not '#/signin'.
      if (err.status === 401) {
        if (!location.hash.startsWith('#/signin')) { sessionStorage.setItem('sluice.after', location.hash); go('#/signin'); }
        return;
      }
      main.appendChild(errorBox(err));
      return;
    }
    if (seq !== renderSeq) return;
  }
  let r;
  try {
    if (seg[0] === 'signin') r = signInPage();
    else if (!seg.length) r = projectsPage();
    else if (seg[0] === 'p' && seg.length >= 2) {
      const project = seg[1];
      if (seg.length === 2) r = projectPage(project);
      else if (seg.length === 3) r = projectPage(project, seg[2]);
      else if (seg[2] === 'logstores' && seg.length === 4) r = searchPage(main, project, seg[3], params);
      else if (seg[2] === 'logstores' && seg[4] === 'index') r = indexPage(main, project, seg[3]);
      else if (seg[2] === 'logstores' && seg[4] === 'settings') r = settingsPage(main, project, seg[3]);
      else if (seg[2] === 'dashboards' && seg.length === 4) r = dashboardPage(main, project, seg[3], params);
      else if (seg[2] === 'alerts' && seg.length === 4) r = alertPage(main, project, seg[3]);
      else if (seg[2] === 'groups' && seg.length === 4) r = groupPage(main, project, seg[3]);
      else if (seg[2] === 'configs' && seg.length === 4) r = configPage(main, project, seg[3]);
      else r = notFoundPage();
    } else r = notFoundPage();
    r = await r;
  } catch (err) {
    main.appendChild(errorBox(err));
  }
  if (seq !== renderSeq) { if (typeof r === 'function') r(); return; }
  if (typeof r === 'function') cleanup = r;
  // Move focus to the new page's heading (screen readers announce it), unless
  // the page focused a field itself.
  if (!main.contains(document.activeElement)) {
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  }
  document.body.dataset.page = seg[0] === 'p' ? (seg[2] === 'logstores' && seg.length === 4 ? 'search' : seg[2] || 'project') : (seg[0] || 'projects');
  document.body.dataset.ready = String(seq);
}

window.addEventListener('hashchange', route);
route();
