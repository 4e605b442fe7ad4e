// The runs pages with a large history (BENCHMARKS.md, "Web UI: run history
// pages"): time to first render of the runs page and of a run page whose
// timeline has ~300 node executions, against the real kgmon on a database
// that already holds many runs (bench_store fills one with 50,000).
//
//   build/rel/bench/bench_store --db /tmp/h50k.db --runs 50000 --queries 1
//   KGMON=build/rel/apps/kgmon/kgmon node tests/browser/bench-history.mjs --db /tmp/h50k.db [--reps 7]
//
// It starts `kgmon dashboard --db <db>` on a free port, posts two runs (a flat
// 300-node chain with every 20th node retried once and one failure handled,
// and a run of the 314-node nested example graph, tests/web/graphs.mjs), then
// opens each page in a fresh headless Chromium tab `reps` times and reads the
// page's own figures (window.kgDashboard.pages(): first rows / first timeline
// drawn, from the start of navigation and from the page's own start).
// Prints one JSON object with medians and every sample; the load average
// before and after (the machine is shared).

import fs from 'node:fs';
import { KGMON, startProcess, stopProcess, waitHealthy, freePort, getJson, postEvents, launch, closeBrowser } from './helpers.mjs';
import { bigNestedGraph } from '../web/graphs.mjs';
import { runToArray, makeIds, chainRun } from '../web/simulate.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf('--' + name); return i >= 0 ? process.argv[i + 1] : dflt; };
const DB = arg('db', '');
const REPS = Number(arg('reps', 7));
if (!DB || !fs.existsSync(DB)) { console.error('bench-history: --db PATH of an existing history database (bench_store fills one)'); process.exit(2); }
if (!KGMON) { console.error('bench-history: set KGMON'); process.exit(2); }
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (a) => { const s = a.slice().sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : null; };

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = startProcess(KGMON, ['dashboard', '--port', String(port), '--db', DB], 'kgmon dashboard');
const out = { db: DB, load_before: load(), reps: REPS };
let ctx;
try {
  await waitHealthy(base, server);
  const chain = chainRun(300, `bench-chain-${process.pid}`);
  // node_log is not accepted by servers that predate it: without, the chain is the same run.
  const accepts = await fetch(base + '/api/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(chain.events.find((e) => e.event_name === 'node_log')) });
  const events = accepts.ok ? chain.events.slice() : chain.events.filter((e) => e.event_name !== 'node_log');
  for (let i = 0; i < events.length; i += 500) await postEvents(base, events.slice(i, i + 500));
  const nestedEvents = runToArray(bigNestedGraph(300), { seed: 9, t0: Date.now() - 60000, ids: makeIds(process.pid), eventIds: makeIds(process.pid + 1), items: () => 3 });
  for (let i = 0; i < nestedEvents.length; i += 500) await postEvents(base, nestedEvents.slice(i, i + 500));
  const nestedId = nestedEvents[0].workflow_id;
  const wait = async (id) => { for (let i = 0; i < 100; i++) { const r = await fetch(`${base}/api/runs/${encodeURIComponent(id)}`); if (r.ok) { const j = await r.json(); if (j.run.status !== 'running') return j; } await new Promise((r) => setTimeout(r, 100)); } throw new Error('run not stored: ' + id); };
  const chainPage = await wait(chain.id), nestedPage = await wait(nestedId);
  const graphs = await getJson(base, '/api/graphs?window=3650d');
  out.stored_runs = graphs.graphs.reduce((n, g) => n + g.runs, 0);
  out.node_log_accepted = accepts.ok;
  ctx = await launch({ width: 1280, height: 900 }, 'dark');
  const measure = async (hash, ready) => {
    const samples = [];
    for (let r = 0; r < REPS; r++) {
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${base}/${hash}`);
      await page.waitForFunction(ready, null, { timeout: 60000, polling: 50 });
      const f = await page.evaluate(() => window.kgDashboard.pages());
      if (errors.length) throw new Error(errors.join('; '));
      samples.push(f);
      await page.close();
    }
    return samples;
  };
  const runs = await measure('#/runs', () => window.kgDashboard && window.kgDashboard.pages().runs.firstAt > 0);
  out.runs_page = { rows: runs[0].runs.rows, first_render_from_navigation_ms: median(runs.map((s) => s.runs.firstAt)), first_render_in_page_ms: median(runs.map((s) => s.runs.firstRender)),
    samples_from_navigation: runs.map((s) => Math.round(s.runs.firstAt)) };
  const failed = await measure('#/runs?status=failed&graph=bench_chain', () => window.kgDashboard && window.kgDashboard.pages().runs.firstAt > 0);
  out.runs_page_filtered = { first_render_from_navigation_ms: median(failed.map((s) => s.runs.firstAt)), samples: failed.map((s) => Math.round(s.runs.firstAt)) };
  for (const [name, id, body] of [['run_page_300_chain', chain.id, chainPage], ['run_page_nested_314', nestedId, nestedPage]]) {
    const s = await measure(`#/runs/${encodeURIComponent(id)}`, () => window.kgDashboard && window.kgDashboard.pages().run.completeAt > 0 && window.kgDashboard.pages().run.graphAt > 0);
    out[name] = { executions: body.nodes.length, bars: s[0].run.bars, rows: s[0].run.rows, events: s[0].run.events,
      first_render_from_navigation_ms: median(s.map((x) => x.run.firstAt)), first_render_in_page_ms: median(s.map((x) => x.run.firstRender)),
      fetch_run_page_ms: median(s.map((x) => x.run.fetched)), build_run_ms: median(s.map((x) => x.run.modelMs)), graph_ms: median(s.map((x) => x.run.graphMs)), graph_layout_ms: median(s.map((x) => x.run.layoutMs)),
      timeline_ms: median(s.map((x) => x.run.timelineMs)), graph_drawn_from_navigation_ms: median(s.map((x) => x.run.graphAt)),
      complete_with_events_ms: median(s.map((x) => x.run.complete)),
      samples_first_from_navigation: s.map((x) => Math.round(x.run.firstAt)) };
  }
} finally {
  await closeBrowser(ctx);
  await stopProcess(server, 'SIGTERM', 20000);
  out.load_after = load();
  for (const v of Object.values(out)) if (v && typeof v === 'object') for (const k of Object.keys(v)) if (typeof v[k] === 'number') v[k] = Math.round(v[k] * 10) / 10;
  console.log(JSON.stringify(out, null, 1));
}
