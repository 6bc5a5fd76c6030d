// The console's backend client. The session cookie is HttpOnly (script
// never sees it); mutating requests carry the CSRF token the server gave at
// sign-in, which is kept only in memory.

let csrf = '';
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setSignedOutHandler(fn) { onSignedOut = fn; }
export function setCSRF(t) { csrf = t || ''; }

export async function call(method, url, body, { raw = false, signal } = {}) {
  const headers = { 'X-Sluice-CSRF': csrf || 'signin' };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers, body: payload, credentials: 'same-origin', signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', `cannot reach the server (${e.message}): is sluice-server running?`);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) {
    const code = data && data.errorCode ? data.errorCode : `HTTP${resp.status}`;
    const msg = data && data.errorMessage ? data.errorMessage : (typeof data === 'string' ? data : resp.statusText);
    const err = new ApiError(resp.status, code, msg);
    if (resp.status === 401 && code === 'SessionExpired') onSignedOut(err);
    throw err;
  }
  return raw ? { data, headers: resp.headers } : data;
}

const enc = encodeURIComponent;

// sls calls the Log Service API through the console with the session's key.
export function sls(method, project, path, body, opts) {
  return call(method, `/console/api/sls/${enc(project || '_')}${path}`, body, opts);
}

export const session = {
  get: () => call('GET', '/console/api/session'),
  signIn: (accessKeyId, accessKeySecret) => call('POST', '/console/api/session', { accessKeyId, accessKeySecret }),
  signOut: () => call('DELETE', '/console/api/session'),
};

export const checkQuery = (query, logstore) => call('POST', '/console/api/check-query', { query, logstore });
export const validateConfig = (text) => call('POST', '/console/api/validate-config', text);
// tail reads what the server received since the cursors (see tail.go).
export const tail = (body) => call('POST', '/console/api/tail', body);

export const paths = {
  logstores: () => '/logstores?offset=0&size=500',
  logstore: (ls) => `/logstores/${enc(ls)}`,
  index: (ls) => `/logstores/${enc(ls)}/index`,
  logs: (ls) => `/logstores/${enc(ls)}/logs`,
  histogram: (ls, p) => `/logstores/${enc(ls)}?type=histogram&${new URLSearchParams(p)}`,
  context: (ls, p) => `/logstores/${enc(ls)}?type=context_log&${new URLSearchParams(p)}`,
  groups: () => '/machinegroups?offset=0&size=500',
  group: (g) => `/machinegroups/${enc(g)}`,
  machines: (g) => `/machinegroups/${enc(g)}/machines?offset=0&size=500`,
  groupConfigs: (g) => `/machinegroups/${enc(g)}/configs`,
  apply: (g, c) => `/machinegroups/${enc(g)}/configs/${enc(c)}`,
  configs: () => '/configs?offset=0&size=500',
  config: (c) => `/configs/${enc(c)}`,
  configGroups: (c) => `/configs/${enc(c)}/machinegroups`,
};
