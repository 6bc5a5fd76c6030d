// Navigation shared by every page: links, breadcrumbs, the signed-in key.
import { h, clear } from './dom.js';

export const state = { me: null };

export const enc = encodeURIComponent;
export const projectHref = (p, tab) => `#/p/${enc(p)}${tab ? '/' + tab : ''}`;
export const searchHref = (p, ls, params) => `#/p/${enc(p)}/logstores/${enc(ls)}${params ? '?' + params : ''}`;
export const indexHref = (p, ls) => `#/p/${enc(p)}/logstores/${enc(ls)}/index`;
export const settingsHref = (p, ls) => `#/p/${enc(p)}/logstores/${enc(ls)}/settings`;
export const groupHref = (p, g) => `#/p/${enc(p)}/groups/${enc(g)}`;
export const configHref = (p, c) => `#/p/${enc(p)}/configs/${enc(c)}`;

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

// setCrumbs shows where the user is: [label, href] pairs, the last current.
export function setCrumbs(...items) {
  const crumbs = document.getElementById('crumbs');
  clear(crumbs);
  const ol = h('ol');
  const all = [['Projects', '#/'], ...items];
  all.forEach(([label, href], i) => {
    const last = i === all.length - 1;
    ol.appendChild(h('li', null, last ? h('span', { 'aria-current': 'page' }, label) : h('a', { href }, label)));
  });
  crumbs.appendChild(ol);
  document.title = `${all[all.length - 1][0]} · Sluice console`;
}

// canWrite reports whether the signed-in key may change project.
export function canWrite(project) {
  const me = state.me;
  if (!me) return false;
  if (me.admin) return true;
  const g = me.projects.find((p) => p.name === project);
  return !!g && g.permission === 'write';
}
