// Real-browser test of the kaygraph-c dashboard (node --test, read by ctest).
//
// It starts the REAL C server (`kgmon dashboard --port P`, path from $KGMON or
// --kgmon=PATH), opens the page it serves in headless Debian Chromium through
// playwright-core, runs the real demo workflow into it (`kgmon demo --backend
// http --webhook-url .../api/ingest`), and asserts what a person would check:
// the graph shows the workflow's nodes, their statuses change and end as the
// run's events say, the edges taken light up, the run's outcome (succeeded /
// handled error / failed) is shown with its error, the log fills (and
// filters, pauses and stays capped), a run can be replayed, an event full of
// HTML and <script> renders as literal text without executing, and the page
// keeps answering while ~10,000 events/s are pushed through POST /api/ingest.
// Every WebSocket message and REST body the server sends is checked against
// docs/schema.  It also checks the embedded dashboard (`kgmon demo
// --dashboard=P`), the token path and a server restart.
//
// Screenshots go to tests/browser/artifacts/ (gitignored); with
// KG_UPDATE_DOCS_SCREENSHOT=1 they are also copied to docs/.
// Development without the C server: KG_BROWSER_MOCK=1 drives mock-server.mjs.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  here, MOCK, KGMON, precondition, startServer, startProcess, stopProcess, until, waitHealthy, getJson, postEvents, makeEvent,
  runDemo, launch, closeBrowser, openPage, stats, nodeIdsShown, shot, schemaWatcher, checkRestSchemas, freePort,
} from './helpers.mjs';
import { loadSchemas } from './schema.mjs';

const XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';
const skip = precondition(!MOCK);
const schemas = skip ? null : await loadSchemas();

/** The server's stored events of the newest run with a topology. */
async function latestRunEvents(base) {
  const { workflows } = await getJson(base, '/api/workflows');
  assert.ok(Array.isArray(workflows) && workflows.length, 'the server lists no workflow run');
  const byStart = workflows.slice().sort((a, b) => String(b.started_at || '').localeCompare(String(a.started_at || '')));
  for (const w of byStart) {
    const j = await getJson(base, '/api/workflows/' + encodeURIComponent(w.workflow_id) + '/events');
    const started = j.events.find((e) => e.event_name === 'workflow_started' && e.data && e.data.graph && !e.data.parent_workflow_id);
    if (started) return { id: w.workflow_id, events: j.events, graph: started.data.graph };
  }
  throw new Error('no run with a workflow_started topology');
}

/** What the page should show for a run once all its events are applied (keyed by node id: a flat graph). */
function expectedState(events) {
  const status = {};
  const edges = {};
  const ordered = events.slice().sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || String(a.timestamp).localeCompare(String(b.timestamp)));
  let errorPath = false, failed = false;
  for (const e of ordered) {
    if (e.event_name === 'workflow_completed') failed = e.data.status === 'failed';
    if (!e.node_id || e.event_name.startsWith('workflow_')) continue;
    if (e.event_name === 'node_completed') {
      status[e.node_id] = 'completed';
      const a = (e.data && e.data.next_action) || 'default';
      const key = e.node_id + '\u0000' + a;
      edges[key] = (edges[key] || 0) + 1;
      if (a === 'error' || a === 'no_valid_data') errorPath = true;
    } else if (e.event_name === 'node_failed') status[e.node_id] = 'failed';
    else if (e.event_name === 'retry_attempted') status[e.node_id] = 'retrying';
    else if (['node_started', 'node_preparing', 'node_executing'].includes(e.event_name)) {
      if (status[e.node_id] !== 'retrying' || e.event_name === 'node_started') status[e.node_id] = 'running';
    }
  }
  return { status, edges, outcome: failed ? 'failed' : errorPath ? 'handled' : 'success' };
}

const CSS_escape = (s) => String(s).replace(/["\\]/g, '\\$&');

// ---------------------------------------------------------------------------
// The standalone dashboard: kgmon dashboard + the demo sending over HTTP
// ---------------------------------------------------------------------------
describe('dashboard UI in headless Chromium (kgmon dashboard)', { skip }, () => {
  let server, ctx, page, base, run, watcher;

  before(async () => {
    server = await startServer();
    base = server.base;
    ctx = await launch();
    watcher = await schemaWatcher(base, schemas);
  });

  after(async () => {
    await closeBrowser(ctx);
    const res = await stopProcess(server && server.child);
    if (server && res && res.code !== 0 && res.signal !== 'SIGTERM' && !MOCK) {
      assert.fail(`server exited with ${res.code}/${res.signal}:\n${server.child.output()}`);
    }
  });

  it('serves the page, which connects to /ws and loads nothing external', async () => {
    page = await openPage(ctx, base);
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
    assert.deepEqual(page.external, [], 'requests outside the dashboard server');
    assert.deepEqual(page.problems, []);
  });

  it('draws the real topology of a demo run, with live statuses, lit edges and the run\'s outcome', { timeout: 120000 }, async () => {
    await runDemo(server, 12);
    run = await latestRunEvents(base);
    const gid = run.graph.id || '';
    const P = (id) => (gid ? gid + '/' + id : id);
    const want = run.graph.nodes.map((n) => n.id).sort();
    assert.ok(want.length >= 2, 'the demo topology has nodes');
    // The page follows the latest run: the same node ids, no more, no less.
    await until('the demo nodes in the graph', async () => JSON.stringify((await nodeIdsShown(page)).sort()) === JSON.stringify(want), 15000);
    // Every edge of the topology is drawn; named actions carry their whole name as the label.
    const edgesShown = await page.$$eval('#graph g.gedge[data-from]', (els) => els.map((e) => [e.getAttribute('data-from'), e.getAttribute('data-to'), e.getAttribute('data-action')].join('|')));
    for (const e of run.graph.edges) assert.ok(edgesShown.includes([P(e.from), P(e.to), e.action || 'default'].join('|')), `edge ${e.from} -${e.action}-> ${e.to} drawn`);
    const labels = await page.$$eval('#graph .elabel', (els) => els.map((e) => e.textContent));
    for (const e of run.graph.edges) if (e.action !== 'default') assert.ok(labels.includes(e.action), `label ${e.action} (whole) in ${JSON.stringify(labels)}`);

    // Final statuses equal what the run's events say, node by node.
    const exp = expectedState(run.events);
    let got = {};
    await until('final node statuses', async () => {
      got = await page.$$eval('#graph g.gnode', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-node-id'), e.getAttribute('data-status')])));
      return Object.keys(exp.status).every((id) => got[id] === exp.status[id]);
    }, 10000).catch((e) => { throw new Error(`${e.message}: want ${JSON.stringify(exp.status)}, page shows ${JSON.stringify(got)}`); });
    // Statuses changed while the page watched (idle -> running/completed ...).
    const rec = await page.evaluate(() => window.__kgRec);
    const changed = Object.entries(rec.status).filter(([, v]) => v.length >= 2);
    assert.ok(changed.length >= Object.keys(exp.status).length / 2, `statuses seen per node: ${JSON.stringify(rec.status)}`);
    // The edges taken are counted, and at least one lit up as it happened.
    for (const [key, n] of Object.entries(exp.edges)) {
      const [from, action] = key.split('\u0000');
      if (!run.graph.edges.some((e) => e.from === from && (e.action || 'default') === action)) continue;   // terminal node
      const count = await page.$eval(`#graph g.gedge[data-from="${CSS_escape(P(from))}"][data-action="${CSS_escape(action)}"]`, (e) => Number(e.getAttribute('data-count')));
      assert.equal(count, n, `traversals of ${from} -${action}->`);
    }
    const litKeys = Object.keys(rec.lit);
    assert.ok(litKeys.length > 0, 'no edge ever lit');
    // The run summary says how the run ended: succeeded, handled error (error path taken) or failed.
    await page.waitForFunction((o) => document.getElementById('run-summary').getAttribute('data-outcome') === o, exp.outcome, { timeout: 5000 })
      .catch(async () => assert.fail(`outcome: want ${exp.outcome}, page shows ${await page.$eval('#run-summary', (e) => e.getAttribute('data-outcome') + ': ' + e.textContent)}`));
    // Metric cards and the per-node table are filled; the dispatcher is not counted as a node.
    await until('the events card', async () => {
      const total = await page.$eval('#card-total .card-value', (e) => e.textContent);
      return /^[\d,]+$/.test(total) && Number(total.replace(/,/g, '')) >= run.events.length;
    }, 5000);
    const nodesSub = await page.$eval('#card-active-nodes .card-sub', (e) => e.textContent);
    assert.equal(nodesSub, `of ${want.length} workflow nodes seen`, 'the node count is the workflow\'s nodes (no dispatcher)');
    const tableKeys = await page.$$eval('#node-tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-path')));
    for (const id of Object.keys(exp.status)) assert.ok(tableKeys.some((k) => k === id || k === P(id)), `node table row for ${id}`);
    assert.deepEqual(page.problems, []);
    await shot(page, 'dashboard.png', { docs: 'dashboard.png' });
  });

  it('tells runs apart: numbered, with outcome and error count, and a handled error shows its reason', { timeout: 60000 }, async () => {
    // Labels differ although run ids share their first characters.
    const labels = await until('run labels', async () => {
      const l = await page.$$eval('#run-picker option', (os) => os.filter((o) => o.value).map((o) => o.textContent));
      return l.length >= 12 ? l : null;
    }, 5000);
    assert.equal(new Set(labels).size, labels.length, 'run labels are unique: ' + labels.join(' | '));
    for (const l of labels) assert.match(l, /^#\d+ · (✓ succeeded|⚠ handled error|✕ failed|▶ running)/, l);
    // A run that went storage -error-> error_handler (or validator -no_valid_data->) is "handled", with its reason.
    const { workflows } = await getJson(base, '/api/workflows');
    let handled = null;
    for (const w of workflows) {
      const j = await getJson(base, '/api/workflows/' + encodeURIComponent(w.workflow_id) + '/events');
      if (expectedState(j.events).outcome === 'handled') { handled = j; break; }
    }
    assert.ok(handled, 'the demo (seed 42) takes the error path in its 12th run; none of the 12 did');
    const option = await page.$eval('#run-picker', (s, id) => [...s.options].find((o) => o.value === id).textContent, handled.workflow_id);
    assert.match(option, /⚠ handled error/);
    await page.selectOption('#run-picker', handled.workflow_id);
    await page.waitForFunction(() => document.getElementById('run-summary').getAttribute('data-outcome') === 'handled', null, { timeout: 5000 });
    const summary = await page.$eval('#run-summary', (e) => e.textContent);
    assert.match(summary, /error path: (storage → error → error_handler: storage quota exceeded|validator → no_valid_data → error_handler)/, summary);
    await shot(page, 'dashboard-handled.png');
    await page.selectOption('#run-picker', '');
  });

  it('fills the event log, which filters, pauses and stays capped', async () => {
    const rows = await page.$$eval('#log .log-row', (els) => els.length);
    assert.ok(rows > 0 && rows <= 500, `log rows: ${rows}`);
    const gid = run.graph.id || '';
    const nodeId = Object.keys(expectedState(run.events).status)[0];
    const key = gid ? gid + '/' + nodeId : nodeId;
    await until('node option', () => page.$eval('#f-node', (s, k) => [...s.options].some((o) => o.value === k), key), 5000);
    await page.selectOption('#f-node', key);
    await until('node filter', async () => {
      const nodes = await page.$$eval('#log .log-row:not([hidden]) .c-node', (els) => els.map((e) => e.textContent));
      return nodes.length > 0 && nodes.every((n) => n === nodeId);
    }, 5000);
    await page.selectOption('#f-node', '');
    await page.selectOption('#f-type', 'lifecycle');
    await until('type filter', async () => {
      const types = await page.$$eval('#log .log-row:not([hidden]) .c-type', (els) => els.map((e) => e.textContent));
      return types.length > 0 && types.every((t) => t === 'lifecycle');
    }, 5000);
    await page.selectOption('#f-type', '');
    await page.click('#pause-btn');
    const firstBefore = await page.$eval('#log .log-row:not([hidden])', (e) => e.textContent);
    await postEvents(base, [makeEvent({ node_id: 'pause-probe', node_type: 'Probe', event_name: 'node_started', workflow_id: 'pause-probe-run' })]);
    await page.waitForFunction(() => /paused · [1-9]/.test(document.getElementById('log-count').textContent), null, { timeout: 5000 });
    assert.equal(await page.$eval('#log .log-row:not([hidden])', (e) => e.textContent), firstBefore, 'log changed while paused');
    await page.click('#pause-btn');
    await page.waitForFunction(() => document.querySelector('#log .log-row:not([hidden]) .c-node').textContent === 'pause-probe', null, { timeout: 5000 });
  });

  it('replays a run picked in the run picker; the replay bar goes away at the end', { timeout: 60000 }, async () => {
    await until('run in picker', () => page.$eval('#run-picker', (s, id) => [...s.options].some((o) => o.value === id), run.id), 5000);
    await page.selectOption('#run-picker', run.id);
    await page.click('#replay-btn');
    await page.waitForSelector('#replay-bar:not([hidden])', { timeout: 5000 });
    await page.waitForFunction(() => /finished/.test(document.getElementById('replay-text').textContent), null, { timeout: 45000 });
    const exp = expectedState(run.events);
    const got = await page.$$eval('#graph g.gnode', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-node-id'), e.getAttribute('data-status')])));
    for (const [id, st] of Object.entries(exp.status)) assert.equal(got[id], st, `replayed status of ${id}`);
    await page.waitForSelector('#replay-bar', { state: 'hidden', timeout: 6000 });
    await page.selectOption('#run-picker', '');
  });

  it('replay while following the latest run keeps going while new runs arrive', { timeout: 90000 }, async () => {
    await page.selectOption('#run-picker', '');
    await page.click('#replay-btn');
    await page.waitForSelector('#replay-bar:not([hidden])', { timeout: 5000 });
    const demo = runDemo(server, 3);   // new runs arrive during the replay
    const progress = [];
    await until('replay progress', async () => {
      const t = await page.$eval('#replay-text', (e) => e.textContent);
      progress.push(t);
      return /finished/.test(t);
    }, 60000, 100);
    await demo;
    const counts = progress.map((t) => Number((/ (\d+)\/\d+ events/.exec(t) || [0, 0])[1])).filter(Boolean);
    assert.ok(new Set(counts).size >= 3, `replay advanced: ${[...new Set(progress)].slice(0, 6).join(' | ')}`);
    await page.waitForSelector('#replay-bar', { state: 'hidden', timeout: 6000 });
  });

  it('renders HTML and <script> in event data as literal text', async () => {
    const wf = 'xss-run-' + XSS;
    const graph = { nodes: [{ id: XSS, type: XSS }, { id: 'after', type: '<b>bold</b>' }], edges: [{ from: XSS, to: 'after', action: XSS.slice(0, 40) }], start: XSS };
    await postEvents(base, [
      makeEvent({ node_id: 'graph', node_type: XSS, event_name: 'workflow_started', workflow_id: wf, data: { graph } }),
      makeEvent({ node_id: XSS, node_type: XSS, event_name: 'node_started', workflow_id: wf, data: { state: 'started' } }),
      makeEvent({ node_id: XSS, node_type: XSS, event_type: 'error', event_name: 'node_failed', workflow_id: wf,
        data: { error: XSS, error_type: '<i>x</i>', phase: 'exec', attempt: 1, max_retries: 1 } }),
    ]);
    const row = page.locator('#log .log-row', { hasText: '<script>window.__xss=1</script>' }).first();
    await row.waitFor({ timeout: 10000 });
    await row.click();
    const detail = await page.$eval('#detail', (e) => e.textContent);
    assert.ok(detail.includes('window.__xss=1') && detail.includes('onerror='), 'detail pane shows the payload as text');
    await page.waitForFunction((id) => [...document.querySelectorAll('#graph g.gnode')].some((g) => g.getAttribute('data-node-id') === id), XSS, { timeout: 10000 });
    const nodeText = await page.$$eval('#graph g.gnode', (els, id) => els.filter((g) => g.getAttribute('data-node-id') === id).map((g) => g.textContent).join(''), XSS);
    assert.ok(nodeText.includes('<script>'), `node text: ${nodeText}`);
    // The node panel and the run picker show it as text too.
    await page.click(`#graph g.gnode[data-node-id="${CSS_escape(XSS)}"]`);
    await page.waitForSelector('#node-panel:not([hidden])');
    assert.ok((await page.$eval('#node-panel', (e) => e.textContent)).includes('<script>'));
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'window.__xss was set: the payload executed');
    const injected = await page.evaluate(() => ({
      imgs: document.querySelectorAll('img').length,
      scripts: [...document.scripts].map((s) => s.src || 'inline'),
      bold: document.querySelectorAll('#log b, #graph b, #detail b, #node-tbody b, #run-picker b, #node-panel b, #node-panel i').length,
      foreign: document.querySelectorAll('#graph foreignObject').length,
    }));
    assert.equal(injected.imgs, 0);
    assert.equal(injected.scripts.length, 1, 'one script: main.js');
    assert.equal(injected.bold + injected.foreign, 0);
    await page.keyboard.press('Escape');
    await shot(page, 'dashboard-xss.png');
    assert.deepEqual(page.problems, []);
  });

  it('stays responsive while ~10,000 events/s arrive', { timeout: 120000 }, async (t) => {
    const RATE = Number(process.env.KG_BROWSER_LOAD_RATE || 10000), SECONDS = 4;
    const before0 = await stats(page);
    const producer = startProcess(process.execPath, [path.join(here, 'load-producer.mjs'), base, String(RATE), String(SECONDS), '250'], 'load producer');
    const rtts = [];
    let maxRows = 0;
    let producing = true;
    producer.exited.then(() => { producing = false; });
    while (producing) {
      const t0 = performance.now();
      const rows = await page.evaluate(() => document.querySelectorAll('#log .log-row').length);
      rtts.push(performance.now() - t0);
      maxRows = Math.max(maxRows, rows);
    }
    const res = await producer.exited;
    assert.equal(res.code, 0, 'load producer failed:\n' + producer.output());
    const load = JSON.parse(producer.output().trim().split('\n').pop());
    const end = await until('the page to catch up', async () => {
      const s = await stats(page);
      return s.received + s.clientDropped - before0.received - before0.clientDropped >= load.accepted && s.queue === 0 ? s : null;
    }, 30000, 100).catch(async (e) => { t.diagnostic(JSON.stringify(await stats(page))); throw e; });
    rtts.sort((a, b) => a - b);
    const p50 = rtts[Math.floor(rtts.length / 2)], p90 = rtts[Math.floor(rtts.length * 0.9)], max = rtts[rtts.length - 1];
    const skipped = end.clientDropped - before0.clientDropped;
    t.diagnostic(`producer: ${load.sent} events in ${load.seconds.toFixed(2)} s (${load.rate}/s, target ${RATE}/s), accepted ${load.accepted}; ` +
      `page received ${end.received - before0.received} via ${end.transport} (+${skipped} skipped for it by the server); ` +
      `main-thread round-trip p50 ${p50.toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${rtts.length} probes; ` +
      `longest frame ${end.maxFrameMs.toFixed(1)} ms; log ${end.logRows} rows (${maxRows} in the DOM at most)`);
    assert.deepEqual(load.errors, [], 'ingest requests failed');
    assert.equal(load.accepted, load.sent, 'server rejected events');
    assert.ok(load.rate >= Math.min(1000, RATE), `producer reached only ${load.rate} events/s`);
    assert.ok(rtts.length >= 5, `only ${rtts.length} probes answered in ${load.seconds} s`);
    assert.ok(max < 2500, `page stalled: main-thread round-trip max ${max.toFixed(0)} ms`);
    assert.ok(p50 < 250, `page sluggish: main-thread round-trip p50 ${p50.toFixed(0)} ms`);
    assert.ok(end.logRows > 0 && end.logRows <= 500, `log rows after load: ${end.logRows}`);
    assert.ok(maxRows <= 500, `log DOM rows: ${maxRows}`);
    await until('the load topology in the graph', async () => JSON.stringify((await nodeIdsShown(page)).sort()) === JSON.stringify(['enrich', 'ingest', 'parse', 'score', 'store']), 5000);
    await shot(page, 'dashboard-load.png');
    assert.deepEqual(page.problems, []);
  });

  it('sends only what docs/schema describes (WebSocket and REST)', async () => {
    const report = watcher.close();
    assert.deepEqual(report.invalid, [], 'WebSocket messages that do not match docs/schema');
    for (const type of ['initial', 'event', 'events', 'metrics', 'workflow_events', 'pong', 'error']) {
      assert.ok(report.byType[type] > 0, `no ${type} message seen (${JSON.stringify(report.byType)})`);
    }
    assert.deepEqual(await checkRestSchemas(base, schemas), [], 'REST bodies that do not match docs/schema');
    if (MOCK) {
      const v = await getJson(base, '/mock/violations');
      assert.deepEqual(v.list, [], 'the mock server sent messages that do not match docs/schema');
    }
  });
});

// ---------------------------------------------------------------------------
// The embedded dashboard, the token path and a restart (real binary only)
// ---------------------------------------------------------------------------
describe('embedded dashboard, token, restart (kgmon demo --dashboard, kgmon dashboard --token)', { skip: skip || (MOCK && 'needs the real kgmon') }, () => {
  let ctx;
  before(async () => { ctx = await launch(); });
  after(async () => { await closeBrowser(ctx); });

  it('kgmon demo --dashboard serves the UI with the run it just made', { timeout: 90000 }, async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const demo = startProcess(KGMON, ['demo', `--dashboard=${port}`, '--iterations', '2'], 'kgmon demo --dashboard');
    try {
      await waitHealthy(base, demo);
      const page = await openPage(ctx, base);
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
      const run = await until('a run with a topology', () => latestRunEvents(base).catch(() => null), 60000, 200);
      const want = run.graph.nodes.map((n) => n.id).sort();
      await until('embedded run nodes in the graph', async () => JSON.stringify((await nodeIdsShown(page)).sort()) === JSON.stringify(want), 15000);
      await until('log rows', async () => (await page.$$eval('#log .log-row', (e) => e.length)) > 0, 5000);
      assert.deepEqual(page.external, []);
      assert.deepEqual(page.problems, []);
      await shot(page, 'dashboard-embedded.png');
    } finally {
      await stopProcess(demo, 'SIGINT');
    }
  });

  it('passes ?token=T on to /ws, then drops it from the address bar', { timeout: 60000 }, async () => {
    const token = 'browser-test-token-' + process.pid;
    const server = await startServer({ token });
    try {
      const denied = await fetch(server.base + '/api/metrics');
      assert.equal(denied.status, 401, 'the token is enforced');
      const page = await openPage(ctx, server.base, '?token=' + encodeURIComponent(token));
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
      await postEvents(server.base, [makeEvent({ node_id: 'token-node', node_type: 'T', workflow_id: 'token-run' })], token);
      await page.waitForFunction(() => [...document.querySelectorAll('#log .c-node')].some((e) => e.textContent === 'token-node'), null, { timeout: 10000 });
      // The cookie the server set works, so the token leaves the address bar (and a reload still works).
      await until('token dropped from the URL', async () => !new URL(page.url()).searchParams.has('token'), 5000);
      await page.reload();
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
      assert.deepEqual(page.problems, []);
    } finally {
      await stopProcess(server.child);
    }
  });

  it('without the token, the page explains how to pass it', { timeout: 30000 }, async () => {
    const token = 'auth-page-token';
    const server = await startServer({ token });
    try {
      const r = await fetch(server.base + '/', { headers: { Accept: 'text/html' } });
      assert.equal(r.status, 401);
      assert.match(r.headers.get('content-type') || '', /text\/html/, 'the token page, not JSON');
      const api = await fetch(server.base + '/api/metrics');
      assert.equal(api.status, 401);
      assert.match(api.headers.get('content-type') || '', /json/, 'programs still get the JSON error');
      const page = await openPage(ctx, server.base);
      assert.match(await page.textContent('h1'), /needs its token/);
      await page.fill('#token', token);
      await page.click('button[type=submit]');
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
    } finally {
      await stopProcess(server.child);
    }
  });

  it('greys out data while offline and says when the server restarted', { timeout: 60000 }, async () => {
    const first = await startServer();
    const port = first.port;
    let second = null;
    try {
      await runDemo(first, 1);
      const page = await openPage(ctx, first.base);
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
      await page.waitForFunction(() => window.kgDashboard.stats().runs > 0, null, { timeout: 10000 });
      await until('some uptime', async () => (await getJson(first.base, '/api/metrics')).uptime > 2, 10000, 200);
      await page.waitForFunction(() => /^\d/.test(document.querySelector('#card-total .card-value').textContent), null, { timeout: 5000 });
      await stopProcess(first.child);
      await page.waitForFunction(() => document.body.classList.contains('offline'), null, { timeout: 10000 });
      const banner = await page.$eval('#banner-text', (e) => e.textContent);
      assert.match(banner, /Disconnected from the server since .*greyed out/);
      const grey = await page.$eval('.cards', (e) => getComputedStyle(e).filter);
      assert.match(grey, /grayscale/);
      await shot(page, 'dashboard-offline.png');
      second = await startServer({ port });
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 20000 });
      await page.waitForFunction(() => /restarted/.test(document.getElementById('banner-text').textContent) && !document.getElementById('banner').hidden, null, { timeout: 10000 });
      assert.ok(!(await page.evaluate(() => document.body.classList.contains('offline'))));
    } finally {
      await stopProcess(first.child);
      if (second) await stopProcess(second.child);
    }
  });
});
