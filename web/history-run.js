/*
 * history-run.js - a stored run (GET /api/runs/<id>, history.js) as the
 * live view's Run (store.js), so the same graph view colours it.
 *
 * The run page's node executions cover the run and every run nested in it
 * (sub-graphs, batch-graph items), each with the node's path under the root
 * graph, so the whole nested graph is coloured from them: a node's status is
 * that of its latest execution, the edges taken are the executions' actions,
 * a batch graph's item runs are the nested runs holding executions directly
 * under it (numbered by start: the run page does not say which item a run
 * was).  The run's own events (when given) add what executions do not carry:
 * log lines, custom metrics, progress and custom events (store.js reducer).
 * Pure: tests/web/history-run.test.mjs.
 */
import { createStore, newRun, nodeState, setTopology, outcomeOf, isErrorEdge, applyEvent, LIMITS } from './store.js';
import { parseEvent, parentPath } from './protocol.js';
import { edgeKey } from './model.js';
import { execPath } from './history.js';

/** A status of a run page's run in the live view's words. */
const RUN_STATUS = { running: 'running', success: 'success', failed: 'failed', stale: 'stale' };

/**
 * page: parseRunPage's value; opts.store: the store the run is numbered in
 * (a fresh one by default); opts.events: raw events of the run (optional).
 * Returns the Run, with run.history = page and every execution's .path set.
 */
export function runFromHistory(page, opts = {}) {
  const st = opts.store || createStore();
  const r = page.run;
  const run = newRun(st, r.id);
  run.history = page;
  if (r.topology) setTopology(run, r.topology);
  const rootPath = run.model ? run.model.rootPath : r.graph;
  run.status = RUN_STATUS[r.status] || 'unknown';
  run.startMs = r.startMs;
  run.startTs = Number.isFinite(r.startMs) ? new Date(r.startMs).toISOString() : '';
  run.endMs = r.endMs;
  run.duration = r.duration;
  run.finalAction = r.finalAction;
  run.events = r.events;
  run.errorEvents = r.errors;
  run.summaryOnly = false;

  const execs = page.executions.slice().sort(byStart);
  for (const x of execs) x.path = execPath(rootPath, x);
  for (const x of execs) applyExecution(run, x);
  markItems(run, execs);
  for (const raw of page.errors) {
    const ev = parseEvent(raw);
    if (!ev || typeof ev.data.error !== 'string' || !ev.data.error) continue;
    run.errors.push({ path: ev.path, name: ev.name, msg: ev.data.error, tsMs: ev.tsMs });
    if (run.errors.length > LIMITS.errors) run.errors.shift();
  }
  if (r.status === 'failed' && r.error) run.errors.push({ path: rootPath, name: 'workflow_completed', msg: r.error, tsMs: r.endMs });
  if (opts.events) addEvents(run, opts.events);
  run.outcome = outcomeOf(run);
  return run;
}

function byStart(a, b) {
  const sa = Number.isFinite(a.startMs) ? a.startMs : Infinity, sb = Number.isFinite(b.startMs) ? b.startMs : Infinity;
  return sa - sb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function applyExecution(run, x) {
  if (!x.path) return;
  const n = nodeState(run, x.path);
  if (x.nodeType && !n.type) n.type = x.nodeType;
  if (x.item !== undefined && n.items.size < LIMITS.items) n.items.add(x.item);
  // Executions come by start: the latest decides the node's status.
  n.status = x.status;
  n.ord = Number.isFinite(x.startMs) ? x.startMs : n.ord;
  n.retries += x.retries;
  run.retries += x.retries;
  if (x.retries) n.attempt = x.attempts - 1;
  if (x.error) n.lastError = x.error;
  if (x.status === 'failed') { n.failures++; run.failures++; }
  if (x.status === 'completed') { n.count++; if (x.duration !== undefined) n.lastDur = x.duration; }
  n.execs.push({ corr: x.id, item: x.item, startMs: x.startMs, status: x.status, dur: x.duration, action: x.action,
    attempts: x.attempts, error: x.error, note: '', fallback: false, suppressed: false, runId: x.runId });
  if (n.execs.length > 200) n.execs.shift();
  if (x.status !== 'completed' || !x.action) return;
  const key = edgeKey(x.path, x.action);
  run.edges.set(key, (run.edges.get(key) || 0) + 1);
  const m = run.model;
  const node = m && m.byPath.get(x.path);
  const edge = node && node.parent && node.parent.edges.find((e) => e.key === key);
  const target = edge ? m.byPath.get(edge.to) : null;
  if (edge && isErrorEdge(x.action, target)) {
    run.errorPath = { path: x.path, action: x.action, to: edge.to, reason: x.error || '' };
    run.errors.push({ path: x.path, name: 'node_completed', msg: `${node.id} → ${x.action}`, tsMs: x.endMs });
  }
}

/**
 * Item runs of batch graphs: the nested runs whose executions sit directly
 * under a batch graph's path, by their first start.  Their status: failed
 * when one of their executions failed, running when one still runs.
 */
function markItems(run, execs) {
  const m = run.model;
  if (!m) return;
  const perGraph = new Map();   // batch path -> Map(runId -> {start, status})
  for (const x of execs) {
    const g = m.byPath.get(parentPath(x.path));
    if (!g || !g.batch || x.runId === run.id) continue;
    let runs = perGraph.get(g.path);
    if (!runs) { runs = new Map(); perGraph.set(g.path, runs); }
    let it = runs.get(x.runId);
    if (!it) { it = { start: x.startMs, status: 'completed' }; runs.set(x.runId, it); }
    if (x.status === 'failed') it.status = 'failed';
    else if (x.status === 'running' && it.status !== 'failed') it.status = 'running';
  }
  for (const [path, runs] of perGraph) {
    const list = [...runs.entries()].sort((a, b) => (a[1].start || 0) - (b[1].start || 0));
    const items = new Map();
    list.slice(0, LIMITS.items).forEach(([wf, it], k) => items.set(k, { status: it.status, wf }));
    run.items.set(path, items);
  }
}

function mergeMetric(metrics, name, v) {
  const m = metrics.get(name);
  if (!m) { if (metrics.size < LIMITS.metrics) metrics.set(name, v); return; }
  m.count += v.count;
  m.sum += v.sum;
  m.min = Math.min(m.min, v.min);
  m.max = Math.max(m.max, v.max);
  if (v.tsMs > m.tsMs || !Number.isFinite(m.tsMs)) { m.last = v.last; m.tsMs = v.tsMs; m.ord = v.ord; }
}

/**
 * The run's own events, for what only events carry (log lines, metrics,
 * progress, custom events).  Statuses and counts stay the executions'.
 */
export function addEvents(run, raws) {
  const st = createStore();
  const probe = newRun(st, run.id);
  st.runs.set(run.id, probe);
  probe.model = run.model;
  for (const raw of raws) {
    const ev = parseEvent(raw);
    if (!ev || !['node_log', 'custom_metric', 'node_progress', 'custom_event'].includes(ev.name)) continue;
    ev.wf = run.id;   // a nested run's events: its own paths are absolute already
    applyEvent(st, ev);
  }
  for (const [path, p] of probe.nodes) {
    const n = nodeState(run, path);
    // Several calls (the run, then nested runs fetched later) merge in time order.
    n.logs = n.logs.concat(p.logs).sort((a, b) => a.tsMs - b.tsMs || a.ord - b.ord);
    n.logsDropped += p.logsDropped + Math.max(0, n.logs.length - LIMITS.logs);
    if (n.logs.length > LIMITS.logs) n.logs = n.logs.slice(-LIMITS.logs);
    for (const [k, v] of p.metrics) mergeMetric(n.metrics, k, v);
    if (p.progress && (!n.progress || p.progress.ord > n.progress.ord)) n.progress = p.progress;
    for (const c of p.custom) { n.custom.push(c); if (n.custom.length > LIMITS.custom) { n.custom.shift(); n.customDropped++; } }
  }
  for (const k of Object.keys(probe.logLevels)) run.logLevels[k] += probe.logLevels[k];
  for (const c of probe.custom) { run.custom.push(c); if (run.custom.length > LIMITS.custom * 4) run.custom.shift(); }
}
