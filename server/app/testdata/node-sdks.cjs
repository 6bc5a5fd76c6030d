// Drives a running sluice-server with the npm Log Service SDKs, as a user
// would: @alicloud/sls20201230 (the current SDK: v1 signatures with
// hmac-sha256 by default) and aliyun-sdk (the older one: hmac-sha1,
// deflate). Run by server/app's TestNodeSDKs with NODE_PATH pointing at
// hack/ensure-npm-sdks.sh's install; configured by environment:
// SLUICE_ENDPOINT (host:port of the server's base domain), SLUICE_ADDR
// (127.0.0.1:port), SLUICE_AK, SLUICE_SK, SLUICE_PROJECT.
// Prints one line per check and "N passed, M failed"; exits 1 on failure.
'use strict';
const dns = require('node:dns');
const assert = require('node:assert/strict');

const endpoint = process.env.SLUICE_ENDPOINT;
const addr = process.env.SLUICE_ADDR;
const [baseHost] = endpoint.split(':');

// The SDKs put the project in the host name ({project}.{endpoint}): send
// every name under the test's base domain to the server.
const lookup = dns.lookup;
dns.lookup = (host, opts, cb) => {
  if (typeof opts === 'function') { cb = opts; opts = {}; }
  if (host === baseHost || host.endsWith('.' + baseHost)) {
    if (opts && opts.all) return cb(null, [{ address: '127.0.0.1', family: 4 }]);
    return cb(null, '127.0.0.1', 4);
  }
  return lookup(host, opts, cb);
};

const Sls = require('@alicloud/sls20201230');
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const ALY = require('aliyun-sdk');

const project = process.env.SLUICE_PROJECT;
let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log('ok   ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + ': ' + (e && (e.stack || e.message || JSON.stringify(e))));
  }
}

function call(sdk, op, params) {
  return new Promise((resolve, reject) => sdk[op](params, (err, data) => err ? reject(err) : resolve(data)));
}

async function main() {
  const client = new Sls.default(new $OpenApiUtil.Config({
    accessKeyId: process.env.SLUICE_AK, accessKeySecret: process.env.SLUICE_SK,
    endpoint, protocol: 'http', readTimeout: 30000, connectTimeout: 5000,
  }));
  // aliyun-sdk puts the project in front of the endpoint's host name and
  // drops the endpoint's port on the way (against the service it is 80 or
  // 443): httpOptions.port takes the requests to the test server's port.
  const old = new ALY.SLS({ accessKeyId: process.env.SLUICE_AK, secretAccessKey: process.env.SLUICE_SK,
    endpoint: 'http://' + baseHost, httpOptions: { port: Number(endpoint.split(':')[1]) }, apiVersion: '2015-06-01' });
  const ls = 'node-logs';
  const now = Math.floor(Date.now() / 1000);

  await check('sls20201230 CreateProject (hmac-sha256 v1)', async () => {
    await client.createProject(new Sls.CreateProjectRequest({ projectName: project, description: 'node' }));
  });
  await check('sls20201230 CreateLogStore', async () => {
    await client.createLogStore(project, new Sls.CreateLogStoreRequest({ logstoreName: ls, ttl: 7, shardCount: 2 }));
  });
  await check('sls20201230 CreateIndex', async () => {
    await client.createIndex(project, ls, new Sls.CreateIndexRequest({ body: new Sls.Index({
      line: new Sls.IndexLine({ token: [' ', ',', '=', ':'] }),
      keys: { status: new Sls.IndexKey({ type: 'long', docValue: true }), msg: new Sls.IndexKey({ type: 'text', token: [' '] }) },
    }) }));
  });
  await check('sls20201230 GetIndex', async () => {
    const r = await client.getIndex(project, ls);
    assert.equal(r.body.keys.status.type, 'long');
  });
  // The data comes in through aliyun-sdk: @alicloud/sls20201230's PutLogs
  // (and PullLogs) cannot work in JavaScript, against this server or the
  // service: its gateway (@alicloud/gateway-sls 0.3.2) serializes no
  // protobuf body (TypeError before sending) and parses PullLogs' protobuf
  // answer as JSON. The Go SDK tests cover both calls.
  await check('aliyun-sdk putLogs (deflate)', async () => {
    for (const [topic, status] of [['node', [201, 202, 203]], ['old', [500]]]) {
      await call(old, 'putLogs', { projectName: project, logStoreName: ls, logGroup: { topic, source: '10.0.0.2',
        logs: status.map(st => ({ time: now, contents: [{ key: 'status', value: String(st) }, { key: 'msg', value: `from ${topic} ${st}` }] })) } });
    }
  });
  await check('sls20201230 GetLogs', async () => {
    const r = await client.getLogs(project, ls, new Sls.GetLogsRequest({ from: now - 60, to: now + 60, query: 'status > 201' }));
    assert.equal(r.body.length, 3);
    assert.deepEqual(r.body.map(l => l.status).sort(), ['202', '203', '500']);
  });
  await check('sls20201230 GetLogs with SQL', async () => {
    const r = await client.getLogs(project, ls, new Sls.GetLogsRequest({ from: now - 60, to: now + 60,
      query: '* | select __topic__ as t, count(*) as n group by t order by t' }));
    assert.deepEqual(r.body.map(x => [x.t, x.n]), [['node', '3'], ['old', '1']]);
  });
  await check('sls20201230 GetHistograms (GET /index?type=histogram)', async () => {
    const r = await client.getHistograms(project, ls, new Sls.GetHistogramsRequest({ from: now - 60, to: now + 60, query: 'msg:from' }));
    assert.equal(r.body.reduce((n, h) => n + h.count, 0), 4);
    assert.ok(r.body.every(h => h.progress === 'Complete'));
  });
  await check('sls20201230 ListShards', async () => {
    const r = await client.listShards(project, ls);
    assert.deepEqual(r.body.map(s => s.shardID), [0, 1]);
  });
  const begins = [];
  await check('sls20201230 GetCursor (begin, end, time) / GetCursorTime', async () => {
    let groups = 0;
    for (const s of [0, 1]) {
      const b = await client.getCursor(project, ls, String(s), new Sls.GetCursorRequest({ from: 'begin' }));
      const e = await client.getCursor(project, ls, String(s), new Sls.GetCursorRequest({ from: 'end' }));
      const t = await client.getCursor(project, ls, String(s), new Sls.GetCursorRequest({ from: String(now - 3600) }));
      assert.equal(t.body.cursor, b.body.cursor);
      const n = Number(Buffer.from(e.body.cursor, 'base64')) - Number(Buffer.from(b.body.cursor, 'base64'));
      groups += n;
      if (n > 0) {
        const ct = await client.getCursorTime(project, ls, String(s), new Sls.GetCursorTimeRequest({ cursor: b.body.cursor }));
        assert.ok(Math.abs(ct.body.cursorTime - now) < 60, String(ct.body.cursorTime));
      }
      begins.push(b.body.cursor);
    }
    assert.equal(groups, 2, 'two groups written');
  });
  await check('aliyun-sdk getCursor / batchGetLogs', async () => {
    const got = [];
    for (const s of [0, 1]) {
      const c = await call(old, 'getCursor', { projectName: project, logStoreName: ls, ShardId: s, FromTime: now - 3600 });
      assert.equal(c.body.cursor, begins[s]);
      const r = await call(old, 'batchGetLogs', { projectName: project, logStoreName: ls, ShardId: s, cursor: c.body.cursor, count: 100 });
      assert.equal(r.headers['x-log-count'], String((r.body.logGroupList || []).length));
      for (const g of r.body.logGroupList || []) got.push(g.topic + ':' + g.logs.map(l => l.contents[0].value).join(','));
    }
    assert.deepEqual(got.sort(), ['node:201,202,203', 'old:500']);
  });
  await check('sls20201230 consumer group: create, list, heartbeat, checkpoint', async () => {
    await client.createConsumerGroup(project, ls, new Sls.CreateConsumerGroupRequest({ consumerGroup: 'cg', timeout: 30, order: false }));
    const l = await client.listConsumerGroup(project, ls);
    assert.equal(l.body[0].name, 'cg');
    const hb = await client.consumerGroupHeartBeat(project, ls, 'cg', new Sls.ConsumerGroupHeartBeatRequest({ consumer: 'n1', body: [] }));
    assert.deepEqual(hb.body, [0, 1]);
    await client.consumerGroupUpdateCheckPoint(project, ls, 'cg', new Sls.ConsumerGroupUpdateCheckPointRequest({
      consumer: 'n1', forceSuccess: false, shard: 1, checkpoint: begins[1] }));
    const cp = await client.getCheckPoint(project, ls, 'cg', new Sls.GetCheckPointRequest({ shard: 1 }));
    assert.equal(cp.body[0].checkpoint, begins[1]);
  });
  await check('sls20201230 GetProjectLogs', async () => {
    const r = await client.getProjectLogs(project, new Sls.GetProjectLogsRequest({ query: `select count(*) as n from "${ls}" where __time__ > 0` }));
    assert.equal(r.body[0].n, '4');
  });
  await check('sls20201230 saved search: create, get, list', async () => {
    await client.createSavedSearch(project, new Sls.CreateSavedSearchRequest({ savedsearchName: 'errors',
      searchQuery: 'status >= 500', logstore: ls, topic: '', displayName: 'Errors' }));
    const g = await client.getSavedSearch(project, 'errors');
    assert.equal(g.body.searchQuery, 'status >= 500');
    const l = await client.listSavedSearch(project, new Sls.ListSavedSearchRequest({ offset: 0, size: 10 }));
    assert.equal(l.body.total, 1);
    assert.equal(l.body.savedsearchItems[0].savedsearchName, 'errors');
    assert.equal(l.body.savedsearchItems[0].displayName, 'Errors');
  });
  await check('sls20201230 dashboard: create, get, list', async () => {
    await client.createDashboard(project, new Sls.CreateDashboardRequest({ body: new Sls.Dashboard({
      dashboardName: 'overview', displayName: 'Overview', description: 'traffic', attribute: { type: 'grid' },
      charts: [new Sls.Chart({ title: 'pv', type: 'linepro',
        search: { logstore: ls, query: '* | select count(*) as pv', start: '-3600s', end: 'now' },
        display: { xPos: 0, yPos: 0, width: 5, height: 5, displayName: 'PV' } })] }) }));
    const g = await client.getDashboard(project, 'overview');
    assert.equal(g.body.charts[0].title, 'pv');
    assert.equal(g.body.attribute.type, 'grid');
    const l = await client.listDashboard(project, new Sls.ListDashboardRequest({ offset: 0, size: 10 }));
    assert.deepEqual(l.body.dashboards, ['overview']);
    assert.equal(l.body.dashboardItems[0].description, 'traffic');
  });
  await check('aliyun-sdk listTopics', async () => {
    // aliyun-sdk hands JSON arrays over as objects keyed '0', '1', ...
    const r = await call(old, 'listTopics', { projectName: project, logStoreName: ls, line: 100 });
    assert.deepEqual(Object.values(r.body), ['node', 'old']);
  });
  await check('aliyun-sdk getLogs', async () => {
    const r = await call(old, 'getLogs', { projectName: project, logStoreName: ls, from: now - 60, to: now + 60, query: 'status:500' });
    const logs = Object.values(r.body);
    assert.equal(logs.length, 1);
    assert.equal(logs[0].msg, 'from old 500');
  });
  await check('aliyun-sdk getHistograms', async () => {
    const r = await call(old, 'getHistograms', { projectName: project, logStoreName: ls, from: now - 60, to: now + 60, query: 'status >= 202' });
    assert.equal(Object.values(r.body).reduce((n, h) => n + h.count, 0), 3);
  });

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch(e => { console.log('FAIL setup: ' + (e.stack || e)); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
