/*
 * store.js - the UI's state, and the reducer that applies one event to it.
 *
 * What it keeps: every workflow run seen (bounded), each with its topology
 * (model.js), its outcome, and per node path the live status plus a short
 * history of executions (durations, actions, attempts, errors) for the node
 * panel; edge traversal counts; per-item status of batch graphs; global
 * counters for the chart.  A nested run (a sub-graph's own run, or one item
 * of a batch graph: workflow_started.data.parent_workflow_id) is folded into
 * its outermost run, whose topology already holds the sub-graph: node paths
 * are absolute, so a nested node's state lands on the right box.
 *
 * What a node reports about itself (node_log, custom_metric, node_progress,
 * custom_event: docs/protocol.md) is kept per node path and execution,
 * bounded: the newest log lines, the latest value of each metric name, the
 * progress of the execution in progress, the newest custom events.
 *
 * Run outcomes (docs/ui.md): "failed" when workflow_completed says so,
 * "handled" when the run succeeded but took an error path (an edge whose
 * action or target names an error, e.g. storage -error-> error_handler) or
 * suppressed an error, "success" otherwise.
 *
 * Pure (no DOM, time passed in): tests/web/store.test.mjs.
 */
import { parseTopology, parseEvent, topologyKey, isDispatcherEvent } from './protocol.js';
import { buildModel, resolvePath, edgeKey } from './model.js';

export const LIMITS = {
  runs: 200,          // root runs remembered (oldest finished evicted first)
  links: 20000,       // nested run -> parent links remembered
  execs: 20,          // executions kept per node per run
  errors: 30,         // error messages kept per run
  seenIds: 20000,     // event ids per generation for de-duplication
  items: 500,         // batch items tracked per batch graph per run
  logs: 200,          // log lines kept per node per run (newest)
  metrics: 50,        // custom metric names kept per node per run
  custom: 50,         // custom events kept per node per run (newest)
};

/** Log levels, least severe first (docs/protocol.md, node_log). */
export const LEVELS = ['debug', 'info', 'warning', 'error'];
export const METRIC_KINDS = ['counter', 'gauge', 'histogram'];

const ERROR_WORDS = new Set(['error', 'errors', 'err', 'fail', 'failed', 'failure', 'invalid', 'exception',
  'reject', 'rejected', 'abort', 'aborted', 'timeout', 'fatal']);
const ERROR_TARGET = /error|fail|fallback|recover|dead.?letter|reject/i;

/** Does taking `action` (towards `target`, a model node or null) mean the error path? */
export function isErrorEdge(action, target) {
  const words = String(action || '').toLowerCase().split(/[^a-z0-9]+/);
  if (words.some((w) => ERROR_WORDS.has(w))) return true;
  if (words[0] === 'no' && words.length > 1) return true;   // "no_valid_data", "no_match"
  return !!target && (ERROR_TARGET.test(target.id) || ERROR_TARGET.test(target.type));
}

export function createStore() {
  return {
    runs: new Map(),        // root workflow_id -> Run (insertion order = first seen)
    parent: new Map(),      // nested workflow_id -> parent workflow_id
    childInfo: new Map(),   // nested workflow_id -> {path, item}
    runSeq: 0,
    latestRun: '',          // newest root run (by start time) that has a topology
    version: 0,             // bumped when the run list or a run's outcome changes
    total: 0,
    byType: Object.create(null),
    errors: 0,
    errorActions: new Map(),   // node path -> error-path actions taken (all runs this tab saw)
    seen: [new Set(), new Set()],
    duplicates: 0,
  };
}

export function newRun(st, id) {
  return {
    id, num: ++st.runSeq,
    topo: null, model: null, topoKey: '',
    status: 'unknown',      // running | success | failed | stale | unknown (the server's words)
    outcome: 'unknown',     // running | success | handled | failed | stale | unknown
    startTs: '', startMs: NaN, endMs: NaN, duration: undefined, finalAction: '',
    events: 0, errorEvents: 0, failures: 0, retries: 0, suppressed: 0, fallbacks: 0,
    errorPath: null,        // {path, action, to, reason} of the last error-path edge taken
    errors: [],             // [{path, name, msg, tsMs}] newest last
    nodes: new Map(),       // path -> NodeState
    edges: new Map(),       // edgeKey -> traversals
    items: new Map(),       // batch graph path -> Map(item -> {status, wf})
    endOrd: -Infinity,
    logLevels: { debug: 0, info: 0, warning: 0, error: 0 },   // node_log lines by level
    custom: [],             // custom events, newest last (bounded)
    summaryOnly: false,     // known from a server summary only (no events seen)
    lastSeen: 0,
  };
}

/** The state of a node path in a run, created idle on first use. */
export function nodeState(run, path) {
  let n = run.nodes.get(path);
  if (!n) {
    n = { status: 'idle', ord: -Infinity, type: '', count: 0, failures: 0, retries: 0, fallbacks: 0,
      attempt: 0, maxRetries: undefined, lastError: '', lastDur: undefined, execs: [], items: new Set(),
      logs: [], logsDropped: 0, metrics: new Map(), progress: null, custom: [], customDropped: 0 };
    run.nodes.set(path, n);
  }
  return n;
}

/** A node_log event's line: {tsMs, ord, level, message, fields, corr, item}, or null when malformed. */
export function logLine(ev) {
  const d = ev.data;
  if (!LEVELS.includes(d.level) || typeof d.message !== 'string') return null;
  const fields = d.fields !== null && typeof d.fields === 'object' && !Array.isArray(d.fields) ? d.fields : null;
  return { tsMs: ev.tsMs, ord: ev.ord, level: d.level, message: d.message, fields, corr: ev.corr, item: ev.item, truncated: d.truncated === true };
}

/**
 * Fold a custom_metric event into a node's metrics (by name): the last
 * value, and count / sum / min / max of the values reported.  What to show
 * depends on the kind (a counter's increments add up, a gauge is its last
 * value, a histogram its spread): node-output.js.
 */
export function addMetric(metrics, ev) {
  const d = ev.data;
  if (typeof d.name !== 'string' || !d.name || typeof d.value !== 'number' || !Number.isFinite(d.value)) return false;
  let m = metrics.get(d.name);
  if (!m) {
    if (metrics.size >= LIMITS.metrics) return false;
    m = { name: d.name, kind: '', unit: '', last: 0, count: 0, sum: 0, min: Infinity, max: -Infinity, tsMs: NaN, ord: -Infinity };
    metrics.set(d.name, m);
  }
  m.kind = METRIC_KINDS.includes(d.kind) ? d.kind : m.kind || 'gauge';
  if (typeof d.unit === 'string') m.unit = d.unit;
  m.count++;
  m.sum += d.value;
  if (d.value < m.min) m.min = d.value;
  if (d.value > m.max) m.max = d.value;
  if (!(ev.ord < m.ord)) { m.last = d.value; m.ord = ev.ord; m.tsMs = ev.tsMs; }
  return true;
}

/**
 * A node_progress event's {done, total}, or null: done >= 0; total > 0, or 0
 * when the node does not know it (docs/events.md: 0 or absent).
 */
export function progressOf(data) {
  const { done, total } = data || {};
  if (typeof done !== 'number' || !Number.isFinite(done) || done < 0) return null;
  if (total === undefined) return { done, total: 0 };
  if (typeof total !== 'number' || !Number.isFinite(total) || total < 0) return null;
  return { done, total };
}

function pushBounded(list, v, max) {
  list.push(v);
  if (list.length > max) { list.shift(); return 1; }
  return 0;
}

function execOf(n, ev) {
  const key = ev.corr || '';
  for (let i = n.execs.length - 1; i >= 0 && i >= n.execs.length - 4; i--) if (n.execs[i].corr === key) return n.execs[i];
  const x = { corr: key, item: ev.item, startMs: ev.tsMs, status: 'running', dur: undefined, action: '',
    attempts: 1, error: '', note: '', fallback: false, suppressed: false };
  n.execs.push(x);
  if (n.execs.length > LIMITS.execs) n.execs.shift();
  return x;
}

function isDuplicate(st, id) {
  if (!id) return false;
  if (st.seen[0].has(id) || st.seen[1].has(id)) return true;
  st.seen[0].add(id);
  if (st.seen[0].size >= LIMITS.seenIds) st.seen = [new Set(), st.seen[0]];
  return false;
}

/** The outermost run a workflow id belongs to. */
export function rootOf(st, wf) {
  let r = wf;
  for (let i = 0; i < 64 && st.parent.has(r); i++) r = st.parent.get(r);
  return r;
}

export function getRun(st, id) {
  let run = st.runs.get(id);
  if (!run) {
    run = newRun(st, id);
    st.runs.set(id, run);
    st.version++;
    if (st.runs.size > LIMITS.runs) evictRuns(st);
  }
  return run;
}

function evictRuns(st, keep) {
  // Oldest first; a run still in progress is kept unless nothing else can go.
  for (const pass of [0, 1]) {
    for (const [id, run] of st.runs) {
      if (st.runs.size <= LIMITS.runs) return;
      if (id === keep || id === st.latestRun || (pass === 0 && run.outcome === 'running')) continue;
      st.runs.delete(id);
    }
  }
}

/** Give a run its topology (a workflow_started graph); true when it changed. */
export function setTopology(run, graph) {
  const topo = parseTopology(graph);
  if (!topo) return false;
  const key = topologyKey(topo);
  if (key === run.topoKey) return false;
  run.topo = topo;
  run.topoKey = key;
  run.model = buildModel(topo);
  return true;
}

export function outcomeOf(run) {
  if (run.status === 'failed') return 'failed';
  if (run.status === 'success') return run.errorPath || run.suppressed ? 'handled' : 'success';
  return run.status;   // running | stale | unknown
}

function noteError(run, path, ev, msg) {
  if (!msg) return;
  run.errors.push({ path, name: ev.name, msg, tsMs: ev.tsMs });
  if (run.errors.length > LIMITS.errors) run.errors.shift();
}

/** Fold a nested run that was seen before its parent link into its root. */
function mergeRun(st, from, into) {
  for (const [p, n] of from.nodes) {
    const cur = into.nodes.get(p);
    if (!cur || n.ord > cur.ord) into.nodes.set(p, n);
  }
  for (const [k, c] of from.edges) into.edges.set(k, (into.edges.get(k) || 0) + c);
  into.events += from.events;
  into.errorEvents += from.errorEvents;
  into.failures += from.failures;
  into.retries += from.retries;
  for (const e of from.errors) into.errors.push(e);
  if (from.errorPath && !into.errorPath) into.errorPath = from.errorPath;
  st.runs.delete(from.id);
}

/**
 * Apply one parsed event (protocol.js parseEvent).  Returns what changed, for
 * the views: {dup, runId (root run touched), topo (its topology changed),
 * paths (Set of node paths whose state changed), edges (edge keys taken),
 * outcome (its outcome or label changed), started (a new root run started)}.
 */
export function applyEvent(st, ev) {
  const fx = { dup: false, runId: '', topo: false, paths: new Set(), edges: [], outcome: false, started: false };
  if (isDuplicate(st, ev.id)) { st.duplicates++; fx.dup = true; return fx; }
  st.total++;
  st.byType[ev.type] = (st.byType[ev.type] || 0) + 1;
  if (ev.type === 'error') st.errors++;
  if (!ev.wf || isDispatcherEvent(ev)) return fx;

  // Nested runs: link to the parent; the root run takes the event.
  if (ev.name === 'workflow_started' && ev.parentWf && ev.parentWf !== ev.wf) {
    st.parent.set(ev.wf, ev.parentWf);
    if (st.parent.size > LIMITS.links) st.parent.delete(st.parent.keys().next().value);
    st.childInfo.set(ev.wf, { path: ev.path, item: ev.item });
    if (st.childInfo.size > LIMITS.links) st.childInfo.delete(st.childInfo.keys().next().value);
    const early = st.runs.get(ev.wf);
    const root = getRun(st, rootOf(st, ev.wf));
    if (early && early !== root) mergeRun(st, early, root);
  }
  // Inside one item's run of a batch graph only that run's workflow_started
  // and workflow_completed carry data.item: its node events get it from there.
  if (ev.item === undefined) {
    const ci = st.childInfo.get(ev.wf);
    if (ci && ci.item !== undefined) ev.item = ci.item;
  }
  const rootId = rootOf(st, ev.wf);
  const run = getRun(st, rootId);
  fx.runId = rootId;
  ev.root = rootId;
  ev.rpath = ev.path;
  run.events++;
  run.summaryOnly = false;
  run.lastSeen = Number.isFinite(ev.tsMs) ? ev.tsMs : run.lastSeen;
  if (ev.type === 'error') run.errorEvents++;
  const nested = rootId !== ev.wf;

  if (ev.name === 'workflow_started' || ev.name === 'workflow_completed') {
    if (nested) return nestedRunEvent(st, run, ev, fx);
    if (ev.name === 'workflow_started') {
      if (ev.data.graph && setTopology(run, ev.data.graph)) fx.topo = true;
      if (!(run.endOrd > ev.ord)) run.status = 'running';
      run.startTs = ev.ts;
      run.startMs = ev.tsMs;
      fx.started = true;
      if (run.model) {
        const cur = st.runs.get(st.latestRun);
        if (!cur || !cur.model || !(cur.startMs > run.startMs)) st.latestRun = run.id;
      }
    } else {
      run.status = ev.data.status === 'failed' ? 'failed' : 'success';
      run.endOrd = ev.ord;
      run.endMs = ev.tsMs;
      run.duration = typeof ev.data.duration === 'number' ? ev.data.duration : undefined;
      run.finalAction = typeof ev.data.final_action === 'string' ? ev.data.final_action : '';
      if (run.status === 'failed' && typeof ev.data.error === 'string') noteError(run, ev.path, ev, ev.data.error);
      // Nodes left running by a run that ended are not running any more.
      for (const [p, n] of run.nodes) if (n.status === 'running' || n.status === 'retrying') { n.status = 'idle'; fx.paths.add(p); }
    }
    const out = outcomeOf(run);
    if (out !== run.outcome) { run.outcome = out; st.version++; }
    fx.outcome = true;
    return fx;
  }

  const path = resolvePath(run.model, ev);
  ev.rpath = path;
  if (!path) return fx;
  const n = nodeState(run, path);
  if (ev.ntype && !n.type) n.type = ev.ntype;
  if (ev.item !== undefined && n.items.size < LIMITS.items) n.items.add(ev.item);
  // The status follows only events newer than the one that set it (batches
  // from several dispatcher threads can arrive out of order).
  const newer = !(ev.ord < n.ord);
  if (newer && ev.ord !== Infinity) n.ord = ev.ord;
  const setStatus = (s) => { if (newer) n.status = s; };
  const d = ev.data;
  const x = execOf(n, ev);
  switch (ev.name) {
    case 'node_started':
      setStatus('running');
      if (newer) { n.attempt = 0; n.progress = null; }
      break;
    case 'node_log': {
      const line = logLine(ev);
      if (!line) return fx;
      n.logsDropped += pushBounded(n.logs, line, LIMITS.logs);
      x.logs = (x.logs || 0) + 1;
      run.logLevels[line.level]++;
      break;
    }
    case 'custom_metric':
      if (!addMetric(n.metrics, ev)) return fx;
      break;
    case 'node_progress': {
      const p = progressOf(d);
      if (!p) return fx;
      const cur = n.progress;
      if (!cur || !(ev.ord < cur.ord)) n.progress = Object.assign(p, { ord: ev.ord, tsMs: ev.tsMs, corr: ev.corr, item: ev.item });
      x.progress = p;
      break;
    }
    case 'custom_event': {
      if (typeof d.name !== 'string' || !d.name) return fx;
      const c = { tsMs: ev.tsMs, ord: ev.ord, name: d.name, data: d.data, corr: ev.corr, item: ev.item, path,
        truncated: d.truncated === true, originalSize: typeof d.original_size === 'number' ? d.original_size : undefined };
      n.customDropped += pushBounded(n.custom, c, LIMITS.custom);
      pushBounded(run.custom, c, LIMITS.custom * 4);
      break;
    }
    case 'node_preparing': case 'node_executing': case 'data_input': case 'execution_time':
      if (n.status !== 'retrying') setStatus('running');
      break;
    case 'data_output': {
      if (n.status !== 'retrying') setStatus('running');
      const snap = d.snapshot;
      const sd = snap && snap.truncated === false && snap.data && typeof snap.data === 'object' ? snap.data : null;
      if (sd) for (const k of ['error', 'reason', 'message']) if (typeof sd[k] === 'string' && sd[k]) { x.note = sd[k]; break; }
      break;
    }
    case 'retry_attempted':
      setStatus('retrying');
      n.retries++; run.retries++;
      if (typeof d.attempt === 'number') { n.attempt = d.attempt; x.attempts = d.attempt + 1; }
      if (typeof d.max_retries === 'number') n.maxRetries = d.max_retries;
      n.lastError = typeof d.error === 'string' ? d.error : n.lastError;
      x.error = n.lastError;
      break;
    case 'fallback_triggered':
      n.fallbacks++; run.fallbacks++; x.fallback = true;
      break;
    case 'error_suppressed':
      run.suppressed++; x.suppressed = true;
      if (typeof d.error === 'string') { n.lastError = d.error; x.error = d.error; noteError(run, path, ev, d.error); }
      break;
    case 'node_failed': {
      setStatus('failed');
      n.failures++; run.failures++;
      const msg = (typeof d.error === 'string' && d.error) || (typeof d.error_type === 'string' ? d.error_type : '') || 'failed';
      n.lastError = msg;
      x.status = 'failed'; x.error = msg;
      if (typeof d.total_execution_time === 'number') x.dur = d.total_execution_time;
      noteError(run, path, ev, msg);
      break;
    }
    case 'node_completed': {
      setStatus('completed');
      n.count++;
      const dur = typeof d.total_execution_time === 'number' ? d.total_execution_time : undefined;
      if (dur !== undefined) n.lastDur = dur;
      const action = typeof d.next_action === 'string' && d.next_action ? d.next_action : 'default';
      x.status = 'completed'; x.dur = dur; x.action = action;
      if (d.error_suppressed === true) x.suppressed = true;
      const key = edgeKey(path, action);
      run.edges.set(key, (run.edges.get(key) || 0) + 1);
      fx.edges.push(key);
      const m = run.model;
      const node = m && m.byPath.get(path);
      const edge = node && node.parent && node.parent.edges.find((e) => e.key === key);
      const target = edge ? m.byPath.get(edge.to) : null;
      if (edge && isErrorEdge(action, target)) {
        run.errorPath = { path, action, to: edge.to, reason: x.note || n.lastError || '' };
        if (st.errorActions.size < 5000 || st.errorActions.has(path)) st.errorActions.set(path, (st.errorActions.get(path) || 0) + 1);
        noteError(run, path, ev, `${node.id} → ${action}${x.note ? ': ' + x.note : ''}`);
        fx.outcome = true;
      }
      break;
    }
    default:
      if (ev.type === 'error' && typeof d.error === 'string') { n.lastError = d.error; noteError(run, path, ev, d.error); }
      else if (ev.type !== 'error') return fx;
  }
  fx.paths.add(path);
  return fx;
}

/** workflow_started / _completed of a nested run: per-item state of batch graphs. */
function nestedRunEvent(st, run, ev, fx) {
  const info = st.childInfo.get(ev.wf) || { path: ev.path, item: ev.item };
  const path = info.path || ev.path;
  if (!path) return fx;
  const g = run.model && run.model.byPath.get(path);
  if (g && g.batch) {
    let items = run.items.get(path);
    if (!items) { items = new Map(); run.items.set(path, items); }
    const item = info.item !== undefined ? info.item : ev.item !== undefined ? ev.item : items.size;
    if (items.size < LIMITS.items || items.has(item)) {
      const status = ev.name === 'workflow_started' ? 'running' : ev.data.status === 'failed' ? 'failed' : 'completed';
      items.set(item, { status, wf: ev.wf });
    }
  }
  if (ev.name === 'workflow_completed' && ev.data.status === 'failed') noteError(run, path, ev, 'sub-graph run failed');
  fx.paths.add(path);
  return fx;
}

/**
 * A run summary from the server (initial.workflows, GET /api/workflows, a
 * workflow_events reply's run): fills in what the tab has not seen itself.
 */
export function applySummary(st, s, graph) {
  if (!s || typeof s.workflow_id !== 'string' || !s.workflow_id) return null;
  if (typeof s.parent_workflow_id === 'string' && s.parent_workflow_id) {
    st.parent.set(s.workflow_id, s.parent_workflow_id);
    return null;
  }
  const known = st.runs.has(s.workflow_id);
  const run = getRun(st, s.workflow_id);
  if (!known) run.summaryOnly = true;
  if (graph && setTopology(run, graph) && !st.latestRun) st.latestRun = run.id;
  if (run.summaryOnly || run.status === 'unknown' || (run.status === 'running' && s.status !== 'running')) {
    if (['running', 'success', 'failed', 'stale', 'unknown'].includes(s.status)) run.status = s.status;
    if (typeof s.duration === 'number') run.duration = s.duration;
    if (typeof s.final_action === 'string') run.finalAction = s.final_action;
    if (typeof s.started_at === 'string' && !run.startTs) { run.startTs = s.started_at; run.startMs = Date.parse(s.started_at); }
    if (run.summaryOnly && typeof s.error_count === 'number') run.errorEvents = s.error_count;
    if (run.summaryOnly && typeof s.event_count === 'number') run.events = s.event_count;
  }
  const out = outcomeOf(run);
  if (out !== run.outcome) { run.outcome = out; st.version++; }
  return run;
}

/** A fresh run rebuilt from a run's stored events (raw JSON objects), e.g. a finished run picked. */
export function runFromEvents(id, events, graph) {
  const st = createStore();
  if (graph) setTopology(getRun(st, id), graph);
  for (const raw of events) { const ev = parseEvent(raw); if (ev) applyEvent(st, ev); }
  const run = st.runs.get(id) || getRun(st, id);
  if (!run.model && graph) setTopology(run, graph);
  return run;
}

export const OUTCOME_TEXT = { running: 'running', success: 'succeeded', handled: 'handled error', failed: 'failed', stale: 'stale', unknown: 'unknown' };
export const OUTCOME_ICON = { running: '▶', success: '✓', handled: '⚠', failed: '✕', stale: '‖', unknown: '?' };

/** One line naming a run: number, outcome, error count, start time, the id's distinct tail. */
export function runLabel(run, tail, clock) {
  const parts = [`#${run.num}`, `${OUTCOME_ICON[run.outcome] || '?'} ${OUTCOME_TEXT[run.outcome] || run.outcome}`];
  if (run.outcome === 'handled' && run.errorPath) parts[1] += `: ${run.errorPath.reason || run.errorPath.action}`;
  if (run.errorEvents) parts.push(`${run.errorEvents} error${run.errorEvents === 1 ? '' : 's'}`);
  if (clock) parts.push(clock);
  parts.push(tail);
  return parts.join(' · ');
}

/** The status shown for a node path of a run ('idle' when nothing happened to it). */
export function statusOf(run, path) {
  const n = run && run.nodes.get(path);
  return n ? n.status : 'idle';
}
