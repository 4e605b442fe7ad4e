// The run history's pages in a real browser against the REAL kgmon (node
// --test, read by ctest as browser_history): issue 15's UI.
//
// `kgmon demo --dashboard=P --iterations 12 --db <tmp>` makes runs into its
// own history (XDG_STATE_HOME points into a temporary directory too, so
// nothing lands in $HOME); a nested demo and a hand-made run with hostile ids
// (HTML and script in the run id, graph id and node ids; a failed node after a
// retry; parallel batch items) are posted to the same dashboard.  Then:
// #/runs lists exactly what GET /api/runs says (filters, id search, keyboard,
// paging); a run page opened by URL draws one timeline bar per attempt of
// each node execution GET /api/runs/<id> returns (count, order, failed ones
// marked by colour, glyph and words), colours the graph, opens a node's
// durations over time; the dashboard is stopped and started again on the same
// database (`kgmon dashboard --db`) and the earlier runs and their timelines
// are still there, and a run the new live view never saw opens in the live
// view from the history.  No hostile text ever runs.  Every history body the
// server sent validates against docs/schema.  Screenshots (light and dark) go
// to artifacts/, and to docs/ with KG_UPDATE_DOCS_SCREENSHOT=1.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  KGMON, precondition, startProcess, stopProcess, until, waitHealthy, getJson, postEvents, launch, closeBrowser, openPage, shot, freePort,
} from './helpers.mjs';
import { loadSchemas } from './schema.mjs';
import { chainRun } from '../web/simulate.mjs';

const skip = precondition(true);
const schemas = skip ? null : await loadSchemas();

const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
// A "%" or a trailing "/" in a run id does not survive the server's URL handling
// today (see the todo case at the end), so the hostile id has neither.
const HOSTILE_RUN = `run/${XSS}"#?&`;
const HOSTILE_GRAPH = `graph${XSS}`;
const esc = (id) => id.replace(/%/g, '%25').replace(/\//g, '%2F');

/** A failed run with hostile ids: a retry then a failure, three batch items in parallel. */
function hostileRun() {
  const t0 = Date.now() - 5000;
  const ts = (ms) => new Date(t0 + ms).toISOString();
  const load = `load${XSS}`, G = esc(HOSTILE_GRAPH);
  const graph = { id: HOSTILE_GRAPH, type: `Type${XSS}`, start: load,
    nodes: [{ id: load, type: 'LoadNode' }, { id: 'work', type: 'BatchNode' }, { id: 'flaky', type: 'FlakyNode' }],
    edges: [{ from: load, to: 'work', action: 'default' }, { from: 'work', to: 'flaky', action: `next${XSS}` }] };
  let seq = 0;
  const ev = (ms, node, type, name, data, corr) => ({
    event_id: `hostile-${process.pid}-${++seq}`, timestamp: ts(ms), node_id: node, node_type: 'T', node_path: node === HOSTILE_GRAPH ? G : `${G}/${esc(node)}`,
    event_type: type, event_name: name, data, correlation_id: corr, workflow_id: HOSTILE_RUN, seq, source: { host: `host${XSS}`, pid: 1 },
  });
  const out = [ev(0, HOSTILE_GRAPH, 'lifecycle', 'workflow_started', { state: 'running', graph }, HOSTILE_RUN)];
  out.push(ev(1, load, 'lifecycle', 'node_started', { state: 'started' }, 'c-load'),
    ev(100, load, 'lifecycle', 'node_completed', { state: 'completed', next_action: 'default', total_execution_time: 0.099 }, 'c-load'));
  for (const item of [0, 1, 2]) {
    out.push(ev(110 + item * 5, 'work', 'lifecycle', 'node_started', { state: 'started', item }, 'c-work'),
      ev(400 + item * 20, 'work', 'lifecycle', 'node_completed', { state: 'completed', next_action: `next${XSS}`, total_execution_time: 0.29, item }, 'c-work'));
  }
  out.push(ev(500, 'flaky', 'lifecycle', 'node_started', { state: 'started' }, 'c-flaky'),
    ev(650, 'flaky', 'error', 'retry_attempted', { attempt: 1, max_retries: 2, phase: 'exec', error: `timeout ${XSS}`, error_type: 'TimeoutError' }, 'c-flaky'),
    ev(900, 'flaky', 'error', 'node_failed', { state: 'failed', phase: 'exec', error: `broken ${XSS}`, error_type: 'IOError', total_execution_time: 0.4 }, 'c-flaky'),
    ev(910, HOSTILE_GRAPH, 'lifecycle', 'workflow_completed', { status: 'failed', final_action: null, duration: 0.91, error: `run failed ${XSS}` }, HOSTILE_RUN));
  return out;
}

/** What the page's timeline shows: one entry per bar, in the page's order. */
const barsOnPage = (page) => page.$$eval('#rp-timeline .tl-bar', (els) => els.map((e) => ({
  exec: e.getAttribute('data-execution-id'), item: e.hasAttribute('data-item') ? Number(e.getAttribute('data-item')) : null,
  attempt: Number(e.getAttribute('data-attempt')), attempts: Number(e.getAttribute('data-attempts')), status: e.getAttribute('data-status'),
  path: e.getAttribute('data-node-path'), x: Number(e.querySelector('.tl-rect').getAttribute('x')),
  glyph: (e.querySelector('.tl-glyph') || {}).textContent || '', label: e.getAttribute('aria-label'),
})));

/**
 * The timeline matches the run's node executions (GET /api/runs/<id>): one bar
 * per attempt (attempts = 1 + retries), bars in the order the executions
 * started, the last attempt's status the execution's, failed and retried
 * attempts marked by a glyph and words besides the colour.
 */
function checkTimeline(bars, body) {
  const execs = body.nodes;
  const key = (id, item) => id + '\u0000' + (item === null || item === undefined ? '' : item);
  const want = new Map(execs.map((x) => [key(x.execution_id, x.item), x]));
  const got = new Map();
  for (const b of bars) { const k = key(b.exec, b.item); if (!got.has(k)) got.set(k, []); got.get(k).push(b); }
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'one row of bars per node execution, no more, no less');
  assert.equal(bars.length, execs.reduce((n, x) => n + x.attempts, 0), 'one bar per attempt');
  for (const [k, x] of want) {
    const list = got.get(k);
    assert.deepEqual(list.map((b) => b.attempt), Array.from({ length: x.attempts }, (_, i) => i + 1), `attempts of ${x.node}`);
    const last = list[list.length - 1];
    assert.equal(last.status, x.status === 'running' ? 'running' : x.status, `status of ${x.node}`);
    for (const b of list.slice(0, -1)) { assert.equal(b.status, 'retried'); assert.equal(b.glyph, '↻'); assert.match(b.label, /failed, then retried/); }
    if (x.status === 'failed') { assert.equal(last.glyph, '✕', `${x.node}: a failed bar is marked ✕`); assert.match(last.label, /✕ failed/); }
  }
  // In the order the executions started: the page's order, and left to right.
  const start = (b) => want.get(key(b.exec, b.item)).started_ms;
  const firsts = bars.filter((b) => b.attempt === 1);
  for (let i = 1; i < firsts.length; i++) {
    assert.ok(start(firsts[i - 1]) <= start(firsts[i]), `bar ${i} out of start order`);
    if (start(firsts[i - 1]) < start(firsts[i])) assert.ok(firsts[i - 1].x <= firsts[i].x + 0.01, `bar ${i} left of its predecessor`);
  }
}

describe('run history pages against the real kgmon (kgmon demo --dashboard --db)', { skip }, () => {
  let tmp, db, port, base, base2, demo, server2, ctx, page, runs, nested;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-history-ui-'));
    db = path.join(tmp, 'history.db');
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    process.env.XDG_STATE_HOME = path.join(tmp, 'state');   // for the children this suite starts
    demo = startProcess(KGMON, ['demo', `--dashboard=${port}`, '--iterations', '12', '--node-delay', '20', '--db', db], 'kgmon demo --dashboard');
    await waitHealthy(base, demo);
    runs = await until('12 demo runs in the history', async () => {
      const j = await getJson(base, '/api/runs?limit=100');
      return j.runs.length >= 12 && j.runs.every((r) => r.status !== 'running') ? j.runs : null;
    }, 120000, 250);
    // A nested run (sub-graphs, a batch graph, a retry inside a nested run) into the same dashboard.
    const nd = startProcess(KGMON, ['demo', '--backend', 'http', '--webhook-url', `${base}/api/ingest`, '--graph', 'nested', '--iterations', '2',
      '--node-delay', '10'], 'kgmon demo --graph nested');
    const res = await nd.exited;
    assert.equal(res.code, 0, nd.output());
    nested = await until('the nested runs in the history', async () => {
      const j = await getJson(base, '/api/runs?limit=100&graph=orders');
      return j.runs.length >= 2 && j.runs.every((r) => r.status !== 'running') ? j.runs : null;
    }, 60000, 250);
    ctx = await launch({ width: 1280, height: 900 }, 'dark');
  });

  after(async () => {
    if (page) assert.deepEqual(page.problems, [], 'page errors');
    await closeBrowser(ctx);
    await stopProcess(demo, 'SIGINT');
    await stopProcess(server2);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    delete process.env.XDG_STATE_HOME;
  });

  // First, while the history holds only the demo's runs (the docs' pictures).
  it('screenshots of the runs page and a run page, light and dark', { timeout: 60000 }, async () => {
    const id = (runs.find((r) => r.error_count > 0) || runs[0]).run_id;
    for (const scheme of ['dark', 'light']) {
      const c = await launch({ width: 1280, height: 900 }, scheme);
      try {
        const p = await openPage(c, base, '#/runs');
        await p.waitForSelector('#runs-tbody tr');
        await p.waitForSelector('.gcard');
        await shot(p, `history-runs-${scheme}.png`, { docs: `ui-runs-${scheme}.png`, fullPage: false });
        await p.goto(`${base}/#/runs/${encodeURIComponent(id)}`);
        await p.waitForSelector('#rp-timeline .tl-bar');
        await p.locator('#rp-timeline .tl-bar[data-status="retried"]').first().hover().catch(() => {});
        await shot(p, `history-run-${scheme}.png`, { docs: `ui-run-${scheme}.png` });
        if (scheme === 'dark') {
          await p.goto(`${base}/#/runs/${encodeURIComponent(id)}?node=${encodeURIComponent('data_pipeline/processor')}`);
          await p.waitForSelector('#rp-node-panel .np-history svg.sc-svg');
          await p.locator('#rp-node-panel .np-history').scrollIntoViewIfNeeded();
          await shot(p, 'history-node-durations.png', { docs: 'ui-node-durations.png', element: '#rp-node-panel' });
        }
        const nid = nested[0].run_id;
        await p.goto(`${base}/#/runs/${encodeURIComponent(nid)}`);
        await p.waitForSelector('#rp-timeline .tl-bar');
        await shot(p, `history-run-nested-${scheme}.png`, { docs: scheme === 'dark' ? 'ui-run-nested.png' : undefined });
        for (const [w, h] of [[1280, 720], [800, 900]]) {
          await p.setViewportSize({ width: w, height: h });
          await p.waitForTimeout(200);
          assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `no sideways scroll at ${w} px (${scheme})`);
          if (scheme === 'dark') await shot(p, `history-run-${w}.png`, { docs: w === 800 ? 'ui-run-800.png' : undefined, fullPage: false });
        }
        assert.deepEqual(p.problems, []);
      } finally { await closeBrowser(c); }
    }
  });

  it('the history bodies the server sends match docs/schema', async () => {
    await postEvents(base, hostileRun());
    await until('the hostile run in the history', async () => (await fetch(`${base}/api/runs/${encodeURIComponent(HOSTILE_RUN)}`)).status === 200, 10000, 100);
    const bad = [];
    const check = async (route, p) => { const why = schemas.rest(route, await getJson(base, p)); if (why) bad.push(`${p}: ${why}`); };
    await check('runs', '/api/runs?limit=5');
    await check('runs', '/api/runs?status=failed&nested=1');
    for (const r of [runs[0], nested[0]]) {
      await check('run_page', `/api/runs/${encodeURIComponent(r.run_id)}`);
      await check('run_events', `/api/runs/${encodeURIComponent(r.run_id)}/events?limit=10`);
    }
    await check('run_page', `/api/runs/${encodeURIComponent(HOSTILE_RUN)}`);
    await check('graphs', '/api/graphs');
    await check('node_stats', '/api/nodes/data_pipeline/processor/stats?since=1h&buckets=10');
    assert.deepEqual(bad, []);
  });

  it('#/runs lists what GET /api/runs says, filters by status, graph and id, and is keyboard navigable', { timeout: 60000 }, async () => {
    page = await openPage(ctx, base, '#/runs');
    const api = await getJson(base, '/api/runs?limit=100');
    await page.waitForFunction((n) => document.querySelectorAll('#runs-tbody tr').length === n, api.runs.length, { timeout: 15000 });
    const ids = await page.$$eval('#runs-tbody tr', (trs) => trs.map((t) => t.getAttribute('data-run-id')));
    assert.deepEqual(ids, api.runs.map((r) => r.run_id), 'the rows, newest first, as the API lists them');
    const statuses = await page.$$eval('#runs-tbody tr .rs-status', (tds) => tds.map((t) => t.textContent.trim()));
    assert.ok(statuses.every((s) => /^[▶✓✕‖] (running|success|failed|stale)$/.test(s)), 'a status reads as glyph and word: ' + statuses.join(', '));
    // Per graph: runs, success rate, p50/p95 from /api/graphs.
    const graphs = await getJson(base, '/api/graphs');
    const pipe = graphs.graphs.find((g) => g.graph === 'data_pipeline');
    const card = await page.textContent('.gcard[data-graph="data_pipeline"]');
    assert.match(card, new RegExp(`${pipe.runs} runs`));
    assert.match(card, /succeeded/);
    assert.match(card, /p50 .* · p95 /);
    // Status filter: only failed runs, and the address says so.
    await page.check('input[name="rf-status"][value="failed"]');
    await page.waitForFunction(() => location.hash.includes('status=failed'), null, { timeout: 5000 });
    const failed = await getJson(base, '/api/runs?status=failed');
    await page.waitForFunction((n) => document.querySelectorAll('#runs-tbody tr').length === n && [...document.querySelectorAll('#runs-tbody tr')].every((t) => t.getAttribute('data-status') === 'failed'), failed.runs.length, { timeout: 10000 })
      .catch(async (e) => { throw new Error(`${e.message}: want ${failed.runs.length} failed runs, the page shows ${JSON.stringify(await page.$$eval('#runs-tbody tr', (t) => t.map((r) => r.getAttribute('data-status'))))} (${await page.textContent('#runs-count')})`); });
    assert.ok(failed.runs.some((r) => r.run_id === HOSTILE_RUN), 'the hostile run is a failed run');
    // Graph filter by its card, then cleared.
    await page.click('#rf-clear');
    await page.click('.gcard[data-graph="orders"]');
    await page.waitForFunction(() => document.querySelectorAll('#runs-tbody tr').length > 0 && [...document.querySelectorAll('#runs-tbody .rs-graph')].every((t) => t.textContent === 'orders'), null, { timeout: 10000 });
    // Run id search (a prefix).
    await page.click('#rf-clear');
    const one = runs[3].run_id;
    await page.fill('#rf-q', one);
    await page.waitForFunction((id) => { const r = document.querySelectorAll('#runs-tbody tr'); return r.length === 1 && r[0].getAttribute('data-run-id') === id; }, one, { timeout: 10000 });
    // Keyboard: ↓ between rows, Enter opens the run's page.
    await page.click('#rf-clear');
    await page.waitForFunction((n) => document.querySelectorAll('#runs-tbody tr').length === n, api.runs.length, { timeout: 10000 });
    await page.focus('#runs-tbody tr:first-child a');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => document.activeElement.closest('tr').getAttribute('data-run-id'));
    assert.equal(focused, api.runs[2].run_id);
    await page.keyboard.press('Enter');
    await page.waitForFunction((id) => location.hash.startsWith('#/runs/') && decodeURIComponent(location.hash.slice(7)) === id, api.runs[2].run_id, { timeout: 5000 });
    await page.waitForSelector('#rp-timeline .tl-bar', { timeout: 15000 });
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  it('the runs page reads the history a page at a time as it scrolls (cursor paging), and from the keyboard', { timeout: 60000 }, async () => {
    // 110 small runs more: the list is longer than one page (100 rows).
    const t0 = Date.now() - 120000;
    const evs = [];
    for (let i = 0; i < 110; i++) {
      const id = `tiny-${process.pid}-${String(i).padStart(3, '0')}`;
      const at = (ms) => new Date(t0 + i * 50 + ms).toISOString();
      const base = { node_id: 'tiny', node_type: 'Tiny', node_path: 'tiny', correlation_id: id, workflow_id: id, source: { host: 't', pid: 1 } };
      evs.push(Object.assign({ event_id: `${id}-s`, timestamp: at(0), event_type: 'lifecycle', event_name: 'workflow_started', data: { state: 'running', graph: { id: 'tiny', type: 'Tiny', start: null, nodes: [], edges: [] } }, seq: 2 * i }, base),
        Object.assign({ event_id: `${id}-c`, timestamp: at(20), event_type: 'lifecycle', event_name: 'workflow_completed', data: { status: 'success', final_action: null, duration: 0.02 }, seq: 2 * i + 1 }, base));
    }
    await postEvents(base, evs);
    await until('the small runs in the history', async () => (await getJson(base, '/api/runs?graph=tiny&limit=500')).runs.length === 110, 20000, 200);
    const all = [];
    let cursor = null;
    do {
      const j = await getJson(base, '/api/runs?limit=7' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      all.push(...j.runs.map((r) => r.run_id));
      cursor = j.next_cursor;
    } while (cursor);
    assert.ok(all.length > 100, `${all.length} runs`);
    const rows = () => page.$$eval('#runs-tbody tr', (trs) => trs.map((t) => t.getAttribute('data-run-id')));
    await page.goto(base + '/#/runs');
    await page.click('#runs-refresh');   // the list read a moment ago is kept when coming back; read it again
    await page.waitForFunction(() => document.querySelectorAll('#runs-tbody tr').length === 100, null, { timeout: 15000 });
    await page.waitForTimeout(300);
    assert.equal((await rows()).length, 100, 'one page until the list is scrolled');
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    await page.waitForFunction((n) => document.querySelectorAll('#runs-tbody tr').length === n, all.length, { timeout: 15000 });
    assert.deepEqual(await rows(), all, 'the scrolled list is the cursor-paged list, in order, once each');
    assert.match(await page.textContent('#runs-end'), /the end of the list/);
    // From the keyboard: ↓ on the last row reads the next page and moves into it.
    await page.goto(base + '/#/runs?graph=data_pipeline');
    await page.goto(base + '/#/runs');
    await page.waitForFunction(() => document.querySelectorAll('#runs-tbody tr').length === 100, null, { timeout: 15000 });
    await page.focus('#runs-tbody tr:nth-child(100) a');
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.activeElement && document.activeElement.closest('tr') && [...document.querySelectorAll('#runs-tbody tr')].indexOf(document.activeElement.closest('tr')) === 100, null, { timeout: 10000 });
  });

  it('a run page opened by URL draws one bar per attempt of each execution, failures marked, hostile text inert', { timeout: 60000 }, async () => {
    const retried = runs.find((r) => r.error_count > 0) || runs[0];
    // A run of 300 node executions (every 20th retried once) and over 600 events.
    const chain = chainRun(300, `chain-${process.pid}`);
    for (let i = 0; i < chain.events.length; i += 400) {
      const r = await fetch(base + '/api/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ events: chain.events.slice(i, i + 400) }) });
      assert.equal(r.status, 200, await r.text());   // a server before node_log refuses those lines only
    }
    await until('the 300-node run stored', async () => { const r = await fetch(`${base}/api/runs/${chain.id}`); return r.ok && (await r.json()).run.status === 'success'; }, 20000, 100);
    for (const id of [chain.id, retried.run_id, nested[0].run_id, HOSTILE_RUN]) {
      const body = await getJson(base, `/api/runs/${encodeURIComponent(id)}`);
      await page.goto(`${base}/#/runs/${encodeURIComponent(id)}`);
      await page.waitForFunction((n) => document.querySelectorAll('#rp-timeline .tl-bar').length === n, body.nodes.reduce((n, x) => n + x.attempts, 0), { timeout: 20000 })
        .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await barsOnPage(page))}`); });
      checkTimeline(await barsOnPage(page), body);
      assert.equal(await page.textContent('#rp-id'), id, 'the run id, as text');
      await page.waitForFunction((n) => document.getElementById('rp-log-count').textContent.startsWith(`${n.toLocaleString('en-US')} in log`), body.run.event_count, { timeout: 10000 })
        .catch(async (e) => { throw new Error(`${e.message}: the event list says ${await page.textContent('#rp-log-count')}, the run has ${body.run.event_count}`); });
      await page.waitForFunction(() => window.kgDashboard.pages().run.graphAt > 0, null, { timeout: 10000 });
      // The graph is coloured from the executions: every node that ran shows its latest execution's status.
      const byPath = {};
      const root = body.run.topology.id.replace(/%/g, '%25').replace(/\//g, '%2F');
      for (const x of body.nodes.slice().sort((a, b) => a.started_ms - b.started_ms)) byPath[root + '/' + x.node] = x.status;
      const drawn = await page.$$eval('#rp-graph [data-kind="node"]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-node-path'), e.getAttribute('data-status')])));
      let compared = 0;
      for (const [p, s] of Object.entries(byPath)) if (drawn[p] !== undefined) { assert.equal(drawn[p], s, `graph status of ${p}`); compared++; }
      assert.ok(compared >= 3, `only ${compared} drawn nodes compared`);
    }
    // The hostile run: the failed node's bar, its tooltip and the errors list show the text, never run it.
    const bar = page.locator('#rp-timeline .tl-bar[data-status="failed"]').first();
    await bar.hover();
    await page.waitForSelector('#tl-tip:not([hidden])');
    assert.match(await page.textContent('#tl-tip'), /broken <img src=x onerror/);
    await bar.click();
    await page.waitForSelector('#rp-exec:not([hidden])');
    assert.match(await page.textContent('#rp-exec'), /IOError/);
    assert.match(await page.textContent('#rp-errors'), /timeout <img src=x/);
    assert.match(await page.textContent('#rp-summary'), /run failed <img/);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'hostile text ran');
    assert.equal(await page.$$eval('#run-page img, #run-page script:not([src])', (e) => e.length), 0, 'hostile markup became elements');
    // Batch items that ran in parallel are on lanes of their own.
    const work = await page.$$eval('#rp-timeline .tl-bar[data-execution-id="c-work"] .tl-rect', (r) => r.map((e) => Number(e.getAttribute('y'))));
    assert.equal(new Set(work).size, 3, 'three overlapping items, three lanes');
  });

  it('the timeline and the graph are keyboard reachable; a bar shows its details on focus', { timeout: 30000 }, async () => {
    const id = (runs.find((r) => r.error_count > 0) || runs[0]).run_id;
    await page.goto(`${base}/#/runs/${encodeURIComponent(id)}`);
    await page.waitForSelector('#rp-timeline .tl-bar[tabindex="0"]', { timeout: 15000 });
    await page.focus('#rp-timeline .tl-bar[tabindex="0"]');
    const first = await page.evaluate(() => document.activeElement.getAttribute('data-node-path'));
    await page.keyboard.press('ArrowDown');
    const second = await page.evaluate(() => document.activeElement.getAttribute('data-node-path'));
    assert.notEqual(first, second, 'down moves to the next row');
    assert.ok(!(await page.$eval('#tl-tip', (e) => e.hidden)), 'focus shows the tooltip');
    for (const k of ['node', 'start', 'duration', 'status']) assert.ok((await page.textContent('#tl-tip')).includes(k === 'node' ? second.split('/').pop() : k), `tooltip names ${k}`);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#rp-exec:not([hidden])');
    assert.match(page.url(), /exec=/, 'the selected execution is in the address');
    const focusStyle = await page.evaluate(() => getComputedStyle(document.activeElement.querySelector('.tl-rect')).stroke);
    assert.ok(focusStyle && focusStyle !== 'none', 'the focused bar is outlined');
  });

  it('the node panel charts the node\'s durations over time from the history', { timeout: 30000 }, async () => {
    const stats = await getJson(base, '/api/nodes/data_pipeline/processor/stats?since=7d&buckets=40');
    assert.ok(stats.count >= 12, `the processor ran ${stats.count} times`);
    await page.goto(`${base}/#/runs/${encodeURIComponent(runs[0].run_id)}?node=${encodeURIComponent('data_pipeline/processor')}`);
    await page.waitForSelector('#rp-node-panel:not([hidden]) .np-history svg.sc-svg', { timeout: 15000 });
    const hits = await page.$$eval('#rp-node-panel .sc-hit', (r) => r.map((e) => Number(e.getAttribute('data-count'))));
    const want = stats.buckets.filter((b) => b.count > 0).map((b) => b.count);
    // The page asks for the same 40 buckets over 7 days, a moment later: the same counts (a bucket edge may move one).
    assert.equal(hits.reduce((a, b) => a + b, 0), want.reduce((a, b) => a + b, 0), 'executions charted');
    assert.match(await page.textContent('#rp-node-panel .sc-cap'), new RegExp(`${stats.count} executions · p50 `));
  });

  it('after a restart on the same database the earlier runs and their timelines are still there', { timeout: 120000 }, async () => {
    const id = (runs.find((r) => r.error_count > 0) || runs[0]).run_id;
    const before = await getJson(base, '/api/runs?limit=500&nested=1');
    await page.goto(`${base}/#/runs/${encodeURIComponent(id)}`);
    await page.waitForSelector('#rp-timeline .tl-bar');
    const barsBefore = (await barsOnPage(page)).map(({ exec, item, attempt, status, path: p }) => [exec, item, attempt, status, p]);
    await stopProcess(demo, 'SIGINT');
    const port2 = await freePort();
    base2 = `http://127.0.0.1:${port2}`;
    server2 = startProcess(KGMON, ['dashboard', '--port', String(port2), '--db', db], 'kgmon dashboard --db');
    await waitHealthy(base2, server2);
    const after = await getJson(base2, '/api/runs?limit=500&nested=1');
    assert.deepEqual(after.runs.map((r) => r.run_id), before.runs.map((r) => r.run_id), 'every run is still in the history');
    const why = (what) => async (e) => { throw new Error(`${what}: ${e.message}; page: ${page.url()} ${JSON.stringify(page.problems)}`); };
    await page.goto(`${base2}/#/runs`);
    await page.waitForFunction((n) => document.querySelectorAll('#runs-tbody tr').length === n, (await getJson(base2, '/api/runs?limit=100')).runs.length, { timeout: 15000 }).catch(why('runs list after the restart'));
    await page.goto(`${base2}/#/runs/${encodeURIComponent(id)}`);
    await page.waitForFunction((n) => document.querySelectorAll('#rp-timeline .tl-bar').length === n, barsBefore.length, { timeout: 20000 }).catch(why('timeline after the restart'));
    const barsAfter = (await barsOnPage(page)).map(({ exec, item, attempt, status, path: p }) => [exec, item, attempt, status, p]);
    assert.deepEqual(barsAfter, barsBefore, 'the same timeline after the restart');
    checkTimeline(await barsOnPage(page), await getJson(base2, `/api/runs/${encodeURIComponent(id)}`));
    // The new live view never saw this run: it opens from the history, graph coloured.
    await page.goto(`${base2}/#run=${encodeURIComponent(id)}`);
    await page.waitForFunction(() => document.querySelectorAll('#graph g.gnode[data-status="completed"]').length >= 5, null, { timeout: 15000 }).catch(why('the live view of an old run'));
    assert.match(await page.textContent('#run-summary'), /succeeded|handled/);
    assert.equal(await page.getAttribute('#run-page-link', 'href'), `#/runs/${encodeURIComponent(id)}`, 'the live page links the run to its page');
    // And so does a run nested in a run the live view never saw.
    await page.goto(`${base2}/#run=${encodeURIComponent(nested[0].run_id)}`);
    await page.waitForFunction(() => document.querySelectorAll('#graph [data-node-path][data-status="completed"]').length >= 8, null, { timeout: 15000 }).catch(why('the live view of an old nested run'));
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  it('a run id with "%25" or a trailing "/" opens its own run', { todo: 'the server URL-decodes /api/runs/<id> twice (libwebsockets decodes the path, then kg__split_run_path decodes it again): /api/runs/pct%2525 answers the run "pct%", and ".../x%2F/events" is 404' }, async () => {
    const ids = ['pct%25', 'ends/'];
    const live = base2 || base;
    for (const id of ids) await postEvents(live, [{ event_id: `todo-${id}-${process.pid}`, timestamp: new Date().toISOString(), node_id: 'g', node_type: 'T',
      event_type: 'lifecycle', event_name: 'workflow_started', data: { graph: { id: 'g', nodes: [], edges: [] } }, correlation_id: id, workflow_id: id, seq: 1 }]);
    for (const id of ids) {
      const j = await until(`run ${id}`, async () => { const r = await fetch(`${live}/api/runs/${encodeURIComponent(id)}`); return r.ok && r.json(); }, 5000, 100);
      assert.equal(j.run.run_id, id);
      assert.equal((await fetch(`${live}/api/runs/${encodeURIComponent(id)}/events`)).status, 200);
    }
  });
});
