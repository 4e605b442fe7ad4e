// Nested and large workflows in the browser (node --test, read by ctest).
//
// The nested example (sub-graphs two levels deep, one node id in two
// sub-graphs, a batch graph running its sub-graph per item) and the wide
// example (>= 120 nodes, fan-out and fan-in) are run into a dashboard and the
// page is checked as a person would: every node of the run's topology is
// drawn exactly once, visible, and no two node boxes overlap; a sub-graph
// collapses into one box that shows what runs or failed inside, and expands
// again; a live run is followed inside the nested graph (states change in
// sub-graphs and in a collapsed group, the batch graph shows its item runs);
// the wide graph fits, and a minimap appears when zoomed in.
//
// Servers: the mock server (mock-server.mjs, which speaks the nested-graph
// contract and validates what it sends against docs/schema), and the real
// kgmon once it has `demo --graph nested|wide` (the same checks).
// Screenshots go to artifacts/ and, with KG_UPDATE_DOCS_SCREENSHOT=1, docs/.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  precondition, startServer, stopProcess, until, getJson, runDemo, launch, closeBrowser, openPage, stats, drawnPaths, shot,
  checkDrawing, startProcess, KGMON,
} from './helpers.mjs';
import { allPaths } from '../web/graphs.mjs';

const skip = precondition(false);

/** The newest top-level run (no parent) and its topology, from the server. */
async function latestTopRun(base) {
  const { workflows } = await getJson(base, '/api/workflows');
  for (const w of workflows.slice().reverse()) {
    if (w.parent_workflow_id) continue;
    const j = await getJson(base, '/api/workflows/' + encodeURIComponent(w.workflow_id) + '/events');
    const st = j.events.find((e) => e.event_name === 'workflow_started' && e.data.graph && !e.data.parent_workflow_id);
    if (st) return { id: w.workflow_id, graph: st.data.graph, events: j.events };
  }
  throw new Error('no top-level run with a topology');
}

/** Final status per node_path from events (all runs of a fresh server belong to one root run). */
function finalStatus(events) {
  const st = {};
  for (const e of events.slice().sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))) {
    const p = e.node_path;
    if (!p || e.event_name.startsWith('workflow_')) continue;
    if (e.event_name === 'node_completed') st[p] = 'completed';
    else if (e.event_name === 'node_failed') st[p] = 'failed';
  }
  return st;
}

function suite(kind) {
  const mock = kind === 'mock';
  describe(`nested and wide workflows (${mock ? 'mock server' : 'kgmon'})`, { skip: skip || (!mock && precondition(true)) }, () => {
    let server, ctx, page, nested;

    before(async () => {
      server = await startServer({ mock });
      ctx = await launch({ width: 1440, height: 1000 });
      page = await openPage(ctx, server.base);
      await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
    });
    after(async () => {
      if (page) assert.deepEqual(page.problems, []);
      await closeBrowser(ctx);
      await stopProcess(server && server.child);
    });

    it('draws every node of a nested run once, none overlapping, with its final state', { timeout: 90000 }, async () => {
      await runDemo(server, 1, ['--graph', 'nested']);
      nested = await latestTopRun(server.base);
      const want = allPaths(nested.graph);
      const depth = Math.max(...want.map((p) => p.split('/').length));
      assert.ok(depth >= 4, `two levels of sub-graphs (deepest path ${depth - 1} below the top)`);
      const ids = want.map((p) => p.slice(p.lastIndexOf('/') + 1));
      assert.ok(ids.some((id, i) => ids.indexOf(id) !== i), 'one node id used in two sub-graphs');
      await until('every node path drawn', async () => JSON.stringify((await drawnPaths(page)).sort()) === JSON.stringify(want.slice().sort()), 15000);
      await checkDrawing(page, want);
      const q = await page.evaluate(() => window.kgDashboard.layoutQuality());
      assert.equal(q.overlaps, 0);
      assert.ok(q.crossings <= 2, `crossings: ${q.crossings}`);
      // Final states, nested nodes included: the same id in two sub-graphs has its own state.
      const { events } = await getJson(server.base, '/api/events?limit=1000');
      const exp = finalStatus(events);
      assert.ok(Object.keys(exp).some((p) => p.split('/').length >= 4), 'events from inside a sub-graph of a sub-graph');
      let got = {};
      await until('final statuses by path', async () => {
        got = await page.$$eval('#graph [data-node-path]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-node-path'), e.getAttribute('data-status')])));
        return Object.entries(exp).every(([p, s]) => got[p] === s);
      }, 10000).catch((e) => { throw new Error(`${e.message}: want ${JSON.stringify(exp)}, page ${JSON.stringify(got)}`); });
      // Batch graph: one item run per item, shown on the group.
      const batch = (function find(g, prefix) {
        for (const n of g.nodes) {
          const p = prefix + '/' + n.id;
          if (n.batch) return p;
          if (n.nodes) { const r = find(n, p); if (r) return r; }
        }
        return '';
      }(nested.graph, nested.graph.id));
      assert.ok(batch, 'the nested example has a batch graph');
      const itemRuns = new Set(events.filter((e) => e.event_name === 'workflow_started' && e.node_path === batch).map((e) => e.data.item));
      assert.ok(itemRuns.size >= 2, `item runs of ${batch}: ${[...itemRuns]}`);
      const shown = await page.$$eval(`#graph [data-node-path="${batch}"] .items .item`, (els) => els.map((e) => e.getAttribute('data-status')));
      assert.equal(shown.length, itemRuns.size, 'one square per item run');
      await shot(page, 'ui-nested.png', { element: '#graph-panel', docs: 'ui-nested.png' });
    });

    it('collapses a sub-graph into one box that shows its state, and expands it again', { timeout: 30000 }, async () => {
      const want = allPaths(nested.graph);
      const group = want.filter((p) => nested.graph.nodes.some((n) => n.nodes && p === nested.graph.id + '/' + n.id))[0];
      const inside = want.filter((p) => p.startsWith(group + '/'));
      await page.click(`#graph [data-node-path="${group}"] > .gtoggle`);
      await page.waitForSelector(`#graph g.gnode.gcollapsed[data-node-path="${group}"]`, { timeout: 5000 });
      const after1 = await drawnPaths(page);
      for (const p of inside) assert.ok(!after1.includes(p), `${p} hidden while ${group} is collapsed`);
      await checkDrawing(page, want.filter((p) => !inside.includes(p)));
      // The collapsed box carries the aggregated state of what ran inside.
      const st = await page.$eval(`#graph [data-node-path="${group}"]`, (e) => [e.getAttribute('data-status'), e.querySelector('.nstat').textContent]);
      assert.ok(['completed', 'failed'].includes(st[0]), `collapsed status ${st}`);
      assert.match(st[1], /done|failed/);
      await shot(page, 'ui-collapsed.png', { element: '#graph-panel', docs: 'ui-collapsed.png' });
      // Keyboard: Space on the focused collapsed group expands it.
      await page.focus(`#graph [data-node-path="${group}"]`);
      await page.keyboard.press('Space');
      await page.waitForSelector(`#graph g.ggroup[data-node-path="${group}"]`, { timeout: 5000 });
      await checkDrawing(page, want);
    });

    it('follows a live run inside the nested graph, collapsed groups included', { timeout: 120000 }, async () => {
      const want = allPaths(nested.graph);
      const groups = want.filter((p) => want.some((q) => q.startsWith(p + '/')));
      const deep = groups.find((p) => p.split('/').length >= 3);   // a sub-graph inside a sub-graph
      const top = groups.find((p) => p.split('/').length === 2 && !deep.startsWith(p + '/'));   // another top-level sub-graph, collapsed
      await page.click(`#graph [data-node-path="${top}"] > .gtoggle`);
      await page.waitForSelector(`#graph g.gnode.gcollapsed[data-node-path="${top}"]`);
      await page.evaluate(() => { window.__kgRec.status = {}; });
      const before0 = await stats(page);
      // A slow run, so states are seen changing.
      let demo;
      if (mock) demo = fetch(`${server.base}/mock/run?graph=nested&n=1&pace=1.5`, { method: 'POST' });
      // kgmon's HTTP backend sends a batch per second (or per 100 events): with
      // 400 ms per node a batch ends inside a node's execution often enough
      // for "running" to be drawn, in sub-graphs and in the collapsed group.
      else demo = (async () => { const c = startProcess(KGMON, ['demo', '--backend', 'http', '--webhook-url', `${server.base}/api/ingest`, '--iterations', '1', '--node-delay', '400', '--graph', 'nested'], 'kgmon demo'); return c.exited; })();
      await until('the new run shown', async () => (await stats(page)).shownRun !== before0.shownRun, 15000);
      // While it runs: a node inside the sub-graph of a sub-graph is running.
      await until('a node running inside ' + deep, () => page.$(`#graph [data-node-path^="${deep}/"][data-status="running"], #graph [data-node-path^="${deep}/"][data-status="retrying"]`), 15000, 20)
        .then(() => shot(page, 'ui-live.png', { element: '#graph-panel', docs: 'ui-live.png' })).catch(() => {});
      await demo;
      const rec = await until('states recorded', async () => {
        const r = await page.evaluate(() => window.__kgRec.status);
        return r[top] && r[top].includes('running') && Object.keys(r).some((p) => p.startsWith(deep + '/') && r[p].includes('running')) ? r : null;
      }, 20000).catch(async (e) => { throw new Error(e.message + ': ' + JSON.stringify(await page.evaluate(() => window.__kgRec.status))); });
      assert.ok(rec[top].some((s) => s === 'completed' || s === 'failed'), `collapsed ${top} went ${rec[top]}`);
      const deepNodes = Object.keys(rec).filter((p) => p.startsWith(deep + '/'));
      assert.ok(deepNodes.length >= 2, `nodes inside ${deep} changed state: ${deepNodes}`);
      await page.waitForFunction(() => ['success', 'handled', 'failed'].includes(document.getElementById('run-summary').getAttribute('data-outcome')), null, { timeout: 10000 });
      await page.click(`#graph [data-node-path="${top}"] .gtoggle`);
    });

    it('draws the wide example (>= 120 nodes) once each, fitted, with a minimap when zoomed in', { timeout: 90000 }, async () => {
      await runDemo(server, 1, ['--graph', 'wide']);
      const wide = await latestTopRun(server.base);
      const want = allPaths(wide.graph);
      assert.ok(want.length >= 120, `${want.length} nodes`);
      await until('every wide node drawn', async () => JSON.stringify((await drawnPaths(page)).sort()) === JSON.stringify(want.slice().sort()), 15000);
      await page.click('#zoom-fit');
      await checkDrawing(page, want);
      const q = await page.evaluate(() => window.kgDashboard.layoutQuality());
      assert.equal(q.overlaps, 0);
      assert.ok(await page.$eval('#minimap', (e) => e.hidden), 'no minimap while the whole graph is in view');
      await shot(page, 'ui-wide.png', { element: '#graph-panel', docs: 'ui-wide.png' });
      for (let i = 0; i < 4; i++) await page.click('#zoom-in');
      assert.ok(!(await page.$eval('#minimap', (e) => e.hidden)), 'a minimap once part of the graph is out of view');
      // Find a node: it is centred and its panel opens.
      const target = want[Math.floor(want.length / 2)];
      await page.fill('#node-search', target);
      await page.press('#node-search', 'Enter');
      await page.waitForSelector('#node-panel:not([hidden])');
      assert.equal(await page.$eval('#node-panel .np-path', (e) => e.textContent), target);
      const inView = await page.evaluate((p) => {
        const b = document.querySelector(`#graph [data-node-path="${p}"] .box`).getBoundingClientRect(), s = document.getElementById('graph').getBoundingClientRect();
        return b.x >= s.x && b.y >= s.y && b.x + b.width <= s.x + s.width && b.y + b.height <= s.y + s.height;
      }, target);
      assert.ok(inView, 'the node found is in view');
      await shot(page, 'ui-wide-zoomed.png', { element: '#graph-panel' });
      await page.keyboard.press('Escape');
      await page.click('#zoom-fit');
    });

    if (mock) {
      it('lays out a ~300-node nested graph in the browser (figure for BENCHMARKS.md)', { timeout: 60000 }, async (t) => {
        await fetch(`${server.base}/mock/run?graph=big&n=1&pace=0.01`, { method: 'POST' });
        const big = await latestTopRun(server.base);
        const want = allPaths(big.graph);
        await until('the big graph drawn', async () => (await drawnPaths(page)).length === want.length, 20000);
        const s = await stats(page);
        const q = await page.evaluate(() => window.kgDashboard.layoutQuality());
        assert.equal(q.overlaps, 0);
        t.diagnostic(`browser layout of ${q.boxes} boxes: ${s.layoutMs.toFixed(1)} ms; crossings ${q.crossings}, overlaps ${q.overlaps}`);
        await page.click('#zoom-fit');
        await checkDrawing(page, want);
        const v = await getJson(server.base, '/mock/violations');
        assert.deepEqual(v.list, [], 'the mock server sent messages that do not match docs/schema');
      });
    }
  });
}

suite('mock');
suite('kgmon');
