// Logtail collection configs: list, editor with inline validation (the
// server's logconfig checks, with key paths), and applying to groups.
import { h, clear, announce, errorBox, emptyState, code, debounce, fmtTime } from './dom.js';
import { sls, paths, validateConfig } from './api.js';
import { go, setCrumbs, projectHref, configHref, groupHref, canWrite } from './nav.js';

const NEW = '+new';

export async function configsTab(body, project) {
  let names;
  try {
    names = (await sls('GET', project, paths.configs())).configs || [];
  } catch (err) { body.appendChild(errorBox(err)); return; }
  if (!names.length) {
    body.appendChild(emptyState('No collection configs yet',
      h('p', null, 'A config says which files (or container stdout) to collect, how to parse them, and which logstore to send them to. Apply it to a machine group and its agents start collecting.'),
      h('p', null, 'Configs use the Logtail JSON format, so configs written for Logtail, the SDKs or the ', code('AliyunLogConfig'), ' CRD work unchanged.')));
  } else {
    body.appendChild(h('ul', { class: 'list', 'aria-label': 'Configs' }, names.map((c) => h('li', null, h('a', { href: configHref(project, c), class: 'name' }, c)))));
  }
  if (canWrite(project)) body.appendChild(h('p', null, h('a', { href: configHref(project, NEW), class: 'button primary', id: 'new-config' }, 'New config')));
}

function template(project, logstore = 'app') {
  return {
    configName: 'app-logs',
    inputType: 'file',
    inputDetail: {
      logType: 'common_reg_log',
      logPath: '/var/log/app',
      filePattern: '*.log',
      regex: '(\\S+) (\\S+) (.*)',
      key: ['time', 'level', 'message'],
      logBeginRegex: '.*',
    },
    outputType: 'LogService',
    outputDetail: { projectName: project, logstoreName: logstore },
  };
}

// locate finds where a key path (inputDetail.filterRegex[1]) is written in
// the JSON text: each segment's "name" searched after the previous one.
export function locate(text, path) {
  if (!path || path === '(document)') return -1;
  let at = 0;
  for (const seg of path.split('.')) {
    const name = seg.replace(/\[\d+\]$/, '');
    if (!name) continue;
    // The key is a quoted name followed by a colon (the same word may be
    // a value elsewhere).
    const re = new RegExp(JSON.stringify(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\s*:', 'g');
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return at || -1;
    at = m.index;
  }
  return at;
}

export async function configPage(main, project, name) {
  const isNew = name === NEW;
  setCrumbs([project, projectHref(project)], ['Configs', projectHref(project, 'configs')], [isNew ? 'New config' : name, configHref(project, name)]);
  const page = h('section', { class: 'page' }, h('h1', null, isNew ? 'New collection config' : `Config ${name}`));
  main.appendChild(page);
  let cfg, groups = [], applied = [];
  try {
    // A new config sends to a logstore that exists (the first one), so
    // the template itself checks as valid.
    if (isNew) cfg = template(project, ((await sls('GET', project, paths.logstores())).logstores || [])[0]);
    else {
      cfg = await sls('GET', project, paths.config(name));
      applied = (await sls('GET', project, paths.configGroups(name))).machinegroups || [];
    }
    groups = (await sls('GET', project, paths.groups())).machinegroups || [];
  } catch (err) { page.appendChild(errorBox(err)); return; }
  const meta = {};
  for (const k of ['createTime', 'lastModifyTime']) { meta[k] = cfg[k]; delete cfg[k]; }
  const writable = canWrite(project);

  const editor = h('textarea', { id: 'cfg-json', class: 'code', rows: 22, spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'cfg-help cfg-problems', readonly: !writable });
  editor.value = JSON.stringify(cfg, null, 2);
  const problems = h('div', { id: 'cfg-problems', 'aria-live': 'polite' });
  const saveMsg = h('div');
  const save = h('button', { type: 'submit', class: 'primary', id: 'cfg-save', disabled: !writable }, isNew ? 'Create config' : 'Save config');
  const form = h('form', { class: 'card form wide', id: 'config-form' },
    h('label', { for: 'cfg-json' }, 'Logtail config (JSON)'),
    h('p', { id: 'cfg-help', class: 'hint' }, 'Checked as you type with the same rules the server and agents use. ',
      code('inputDetail.logType'), ': common_reg_log, json_log, delimiter_log, apsara_log; ', code('outputDetail'), ' names the project and logstore.'),
    editor, problems, saveMsg,
    h('div', { class: 'buttons' }, save, meta.lastModifyTime ? h('span', { class: 'hint' }, `last changed ${fmtTime(Number(meta.lastModifyTime))}`) : null));
  page.appendChild(form);

  let seq = 0;
  const check = async () => {
    const my = ++seq;
    let res;
    try { res = await validateConfig(editor.value); } catch (err) { if (my === seq) clear(problems).appendChild(errorBox(err)); return; }
    if (my !== seq) return;
    clear(problems);
    editor.toggleAttribute('aria-invalid', !res.ok);
    if (!res.ok) editor.setAttribute('aria-invalid', 'true'); else editor.removeAttribute('aria-invalid');
    if (res.ok && !res.warnings.length) {
      problems.appendChild(h('p', { class: 'valid' }, '✓ Valid config'));
      return;
    }
    const item = (e, kind) => {
      const b = h('button', { type: 'button', class: 'link', 'data-path': e.path }, e.path || '(config)');
      b.addEventListener('click', () => {
        let pos = -1;
        const m = /invalid JSON at byte (\d+)/.exec(e.message);
        if (m) pos = new TextDecoder().decode(new TextEncoder().encode(editor.value).slice(0, Number(m[1]))).length;
        else pos = locate(editor.value, e.path);
        editor.focus();
        if (pos >= 0) editor.setSelectionRange(pos, pos + (m ? 1 : JSON.stringify(e.path.split('.').pop().replace(/\[\d+\]$/, '')).length));
      });
      return h('li', { class: kind }, b, ': ', e.message);
    };
    if (!res.ok) problems.appendChild(h('div', { class: 'banner error', role: 'alert' }, h('strong', null, `${res.errors.length} problem${res.errors.length > 1 ? 's' : ''}`),
      h('ul', { class: 'problems' }, res.errors.map((e) => item(e, 'err')))));
    if (res.warnings.length) problems.appendChild(h('div', { class: 'banner warn' }, h('strong', null, 'Warnings'),
      h('ul', { class: 'problems' }, res.warnings.map((e) => item(e, 'warn')))));
  };
  editor.addEventListener('input', debounce(check, 300));
  check();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(saveMsg);
    let body;
    try { body = JSON.parse(editor.value); } catch (err) { saveMsg.appendChild(errorBox({ code: 'InvalidJSON', message: err.message })); return; }
    try {
      if (isNew) await sls('POST', project, '/configs', body);
      else await sls('PUT', project, paths.config(name), body);
      announce('Config saved');
      if (isNew || body.configName !== name) { go(configHref(project, body.configName)); return; }
      saveMsg.appendChild(h('div', { class: 'banner ok', role: 'status' }, 'Saved. Agents of the groups below pick it up at their next heartbeat.'));
    } catch (err) { saveMsg.appendChild(errorBox(err)); }
  });

  if (isNew) return;
  const gsec = h('section', { class: 'card', 'aria-labelledby': 'cfg-groups-h' }, h('h2', { id: 'cfg-groups-h' }, 'Apply to machine groups'));
  page.appendChild(gsec);
  if (!groups.length) {
    gsec.appendChild(emptyState('No machine groups', h('p', null, 'Create a machine group on the ', h('a', { href: projectHref(project, 'groups') }, 'Machine groups'), ' tab, then apply this config to it.')));
  } else {
    const set = new Set(applied);
    const msg = h('div');
    gsec.appendChild(h('ul', { class: 'list checks' }, groups.map((g) => {
      const id = `cg-${g}`;
      const box = h('input', { type: 'checkbox', id, checked: set.has(g), disabled: !writable });
      box.addEventListener('change', async () => {
        clear(msg);
        try {
          await sls(box.checked ? 'PUT' : 'DELETE', project, paths.apply(g, name));
          announce(`${name} ${box.checked ? 'applied to' : 'removed from'} ${g}`);
        } catch (err) { box.checked = !box.checked; msg.appendChild(errorBox(err)); }
      });
      return h('li', null, box, h('label', { for: id }, g), ' ', h('a', { href: groupHref(project, g), class: 'hint' }, 'agents'));
    })), msg);
  }
  if (writable) {
    const del = h('button', { type: 'button', class: 'danger' }, 'Delete config');
    del.addEventListener('click', async () => {
      if (!confirm(`Delete config ${name}? Agents stop collecting with it.`)) return;
      try { await sls('DELETE', project, paths.config(name)); go(projectHref(project, 'configs')); } catch (err) { page.appendChild(errorBox(err)); }
    });
    page.appendChild(h('div', { class: 'buttons' }, del));
  }
}
