// Machine groups: the list, creation, and one group's agents and configs.
import { h, clear, announce, errorBox, emptyState, code, fmtTime, fmtRelative } from './dom.js';
import { sls, paths } from './api.js';
import { go, setCrumbs, projectHref, groupHref, configHref, canWrite } from './nav.js';

export async function groupsTab(body, project) {
  let names;
  try {
    names = (await sls('GET', project, paths.groups())).machinegroups || [];
  } catch (err) { body.appendChild(errorBox(err)); return; }
  if (!names.length) {
    body.appendChild(emptyState('No machine groups yet',
      h('p', null, 'A machine group is a set of agents, chosen by IP address or by a user-defined id. Configs applied to a group are sent to its agents.'),
      h('p', null, 'For Kubernetes DaemonSets a user-defined id is easiest: set ', code('ALIYUN_LOGTAIL_USER_DEFINED_ID'), ' on the agent and create a group of type "user-defined" with that id.')));
  } else {
    body.appendChild(h('ul', { class: 'list', 'aria-label': 'Machine groups' }, names.map((g) => h('li', null, h('a', { href: groupHref(project, g), class: 'name' }, g)))));
  }
  if (canWrite(project)) body.appendChild(groupForm(project));
}

function groupForm(project, g) {
  const editing = !!g;
  const name = h('input', { id: 'mg-name', required: true, spellcheck: 'false', value: g ? g.groupName : '', readonly: editing });
  const type = h('select', { id: 'mg-type' }, h('option', { value: 'ip', selected: !g || g.machineIdentifyType === 'ip' }, 'IP addresses'),
    h('option', { value: 'userdefined', selected: g && g.machineIdentifyType === 'userdefined' }, 'User-defined ids'));
  const list = h('textarea', { id: 'mg-list', rows: 4, spellcheck: 'false', 'aria-describedby': 'mg-help', value: g ? g.machineList.join('\n') : '' });
  list.value = g ? g.machineList.join('\n') : '';
  const topic = h('input', { id: 'mg-topic', value: g && g.groupAttribute ? g.groupAttribute.groupTopic || '' : '' });
  const msg = h('div');
  const form = h('form', { class: 'card form', id: 'group-form' },
    h('h2', null, editing ? 'Edit group' : 'Create a machine group'),
    h('label', { for: 'mg-name' }, 'Name'), name,
    h('label', { for: 'mg-type' }, 'Identify agents by'), type,
    h('label', { for: 'mg-list' }, 'Members (one per line)'), list,
    h('p', { id: 'mg-help', class: 'hint' }, 'IP addresses as the agents report them, or the values of ', code('ALIYUN_LOGTAIL_USER_DEFINED_ID'), '.'),
    h('label', { for: 'mg-topic' }, 'Group topic (optional)'), topic,
    msg, h('button', { type: 'submit', class: 'primary' }, editing ? 'Save group' : 'Create group'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(msg);
    const body = { groupName: name.value.trim(), groupType: '', machineIdentifyType: type.value,
      machineList: list.value.split(/[\n,]/).map((x) => x.trim()).filter(Boolean), groupAttribute: { externalName: '', groupTopic: topic.value.trim() } };
    try {
      if (editing) await sls('PUT', project, paths.group(body.groupName), body);
      else await sls('POST', project, '/machinegroups', body);
      announce(`Machine group ${body.groupName} saved`);
      go(groupHref(project, body.groupName));
    } catch (err) { msg.appendChild(errorBox(err)); }
  });
  return form;
}

export async function groupPage(main, project, name) {
  setCrumbs([project, projectHref(project)], ['Machine groups', projectHref(project, 'groups')], [name, groupHref(project, name)]);
  const page = h('section', { class: 'page' }, h('h1', null, `Machine group ${name}`));
  main.appendChild(page);
  let g, machines, applied, configs;
  try {
    [g, machines, applied, configs] = await Promise.all([
      sls('GET', project, paths.group(name)),
      sls('GET', project, paths.machines(name)).catch((err) => ({ error: err })),
      sls('GET', project, paths.groupConfigs(name)),
      sls('GET', project, paths.configs()),
    ]);
  } catch (err) { page.appendChild(errorBox(err)); return; }

  page.appendChild(h('dl', { class: 'props card' },
    h('dt', null, 'Identify agents by'), h('dd', null, g.machineIdentifyType === 'userdefined' ? 'user-defined id' : 'IP address'),
    h('dt', null, 'Members'), h('dd', null, g.machineList.length ? g.machineList.join(', ') : h('em', null, 'none yet')),
    h('dt', null, 'Topic'), h('dd', null, (g.groupAttribute && g.groupAttribute.groupTopic) || '—'),
    h('dt', null, 'Last changed'), h('dd', null, g.lastModifyTime ? fmtTime(g.lastModifyTime) : '—')));

  // Agents
  const agents = h('section', { class: 'card', 'aria-labelledby': 'agents-h' }, h('h2', { id: 'agents-h' }, 'Agents'));
  page.appendChild(agents);
  if (machines.error) {
    agents.appendChild(errorBox(machines.error));
  } else if (!machines.machines || !machines.machines.length) {
    const origin = location.origin;
    agents.appendChild(emptyState('No agent has checked in yet',
      h('p', null, 'Agents appear here after their first heartbeat. Point sluice-agent (or LoongCollector) at this server in its instance config:'),
      h('pre', { class: 'snippet' }, JSON.stringify({ config_server_address: origin, data_server_list: [{ cluster: project, endpoint: origin }], access_key_id: '<a key with read access to ' + project + '>', access_key_secret: '…' }, null, 2)),
      h('p', null, g.machineIdentifyType === 'userdefined'
        ? ['and set ', code('ALIYUN_LOGTAIL_USER_DEFINED_ID'), ' to one of: ', code(g.machineList.join(', ') || '(add an id above)'), '.']
        : ['The agent joins this group when the IP it reports is one of: ', code(g.machineList.join(', ') || '(add an IP above)'), '.'])));
  } else {
    const rows = machines.machines.map((m) => h('tr', null,
      h('td', null, m.ip || '—', m.hostname ? h('div', { class: 'hint' }, m.hostname) : null),
      h('td', null, m['userdefined-id'] || '—'),
      h('td', null, m.version || '—', m.agentType ? h('div', { class: 'hint' }, m.agentType) : null),
      h('td', null, m.lastHeartbeatTime ? h('time', { datetime: new Date(m.lastHeartbeatTime * 1000).toISOString(), title: fmtTime(m.lastHeartbeatTime) }, fmtRelative(m.lastHeartbeatTime)) : '—'),
      h('td', null, (m.configs || []).length ? h('ul', { class: 'statuses' }, m.configs.map((c) => h('li', { class: `st st-${(c.status || 'unset').toLowerCase()}` },
        h('span', { class: 'badge' }, c.status || 'UNSET'), ' ', c.name, c.version ? h('span', { class: 'hint' }, ` v${c.version}`) : null,
        c.message ? h('div', { class: 'st-msg' }, c.message) : null))) : h('span', { class: 'hint' }, 'none reported'))));
    agents.appendChild(h('div', { class: 'table-scroll' }, h('table', { class: 'machines', id: 'machines' },
      h('caption', { class: 'sr-only' }, 'Agents in this group'),
      h('thead', null, h('tr', null, ['IP / host', 'User-defined id', 'Version', 'Last heartbeat', 'Configs'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows))));
  }

  // Configs applied
  const cfgSec = h('section', { class: 'card', 'aria-labelledby': 'applied-h' }, h('h2', { id: 'applied-h' }, 'Configs applied to this group'));
  page.appendChild(cfgSec);
  const appliedSet = new Set(applied.configs || []);
  const all = configs.configs || [];
  if (!all.length) {
    cfgSec.appendChild(emptyState('No configs in this project', h('p', null, h('a', { href: configHref(project, '+new') }, 'Create a collection config'), ' and apply it here.')));
  } else {
    const writable = canWrite(project);
    const msg = h('div');
    cfgSec.appendChild(h('ul', { class: 'list checks' }, all.map((c) => {
      const id = `ap-${c}`;
      const box = h('input', { type: 'checkbox', id, checked: appliedSet.has(c), disabled: !writable });
      box.addEventListener('change', async () => {
        clear(msg);
        try {
          await sls(box.checked ? 'PUT' : 'DELETE', project, paths.apply(name, c));
          announce(`${c} ${box.checked ? 'applied to' : 'removed from'} ${name}`);
        } catch (err) { box.checked = !box.checked; msg.appendChild(errorBox(err)); }
      });
      return h('li', null, box, h('label', { for: id }, c), ' ', h('a', { href: configHref(project, c), class: 'hint' }, 'edit'));
    })), msg);
  }
  if (canWrite(project)) {
    page.appendChild(groupForm(project, g));
    const del = h('button', { type: 'button', class: 'danger' }, 'Delete group');
    del.addEventListener('click', async () => {
      if (!confirm(`Delete machine group ${name}? Its agents stop receiving the configs applied to it.`)) return;
      try { await sls('DELETE', project, paths.group(name)); go(projectHref(project, 'groups')); } catch (err) { page.appendChild(errorBox(err)); }
    });
    page.appendChild(h('div', { class: 'buttons' }, del));
  }
}
