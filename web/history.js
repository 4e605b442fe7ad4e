/*
 * history.js - the run history's answers (docs/history.md, bodies in
 * docs/schema/history.schema.json) read into the UI's own values.
 *
 * Like protocol.js for the live feed: one place reads the server's JSON,
 * under the documented names only (run_id, started_ms, execution_id, …);
 * a value of the wrong type becomes "unknown" (null / NaN), never a guess.
 * Also the one place that builds the history routes' URLs from a run id or
 * a node path (escaping included).  Pure: tests/web/history.test.mjs.
 */
import { splitPath } from './protocol.js';

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v) => (typeof v === 'string' ? v : '');
const ms = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const secs = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
const count = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);

export const RUN_STATUSES = ['running', 'success', 'failed', 'stale'];
const EXEC_STATUSES = ['running', 'completed', 'failed'];

/** A stored run (GET /api/runs items, a run page's run and children), or null. */
export function parseRun(o) {
  if (!isObj(o) || typeof o.run_id !== 'string' || !o.run_id) return null;
  const src = isObj(o.source) ? o.source : {};
  return {
    id: o.run_id,
    graph: str(o.graph),
    graphType: str(o.graph_type),
    parent: str(o.parent_workflow_id),
    status: RUN_STATUSES.includes(o.status) ? o.status : 'unknown',
    startMs: ms(o.started_ms),
    endMs: ms(o.ended_ms),
    lastMs: ms(o.last_event_ms),
    duration: secs(o.duration),
    finalAction: str(o.final_action),
    error: str(o.error),
    events: count(o.event_count),
    errors: count(o.error_count),
    executions: count(o.node_executions),
    host: str(src.host),
    pid: typeof src.pid === 'number' ? src.pid : null,
    topology: isObj(o.topology) ? o.topology : null,
  };
}

/** One node execution of a run page, or null. */
export function parseExecution(o) {
  if (!isObj(o) || typeof o.execution_id !== 'string') return null;
  return {
    runId: str(o.run_id),
    id: o.execution_id,
    item: typeof o.item === 'number' && Number.isInteger(o.item) ? o.item : undefined,
    node: str(o.node) || str(o.node_id),
    nodeId: str(o.node_id),
    nodeType: str(o.node_type),
    status: EXEC_STATUSES.includes(o.status) ? o.status : 'running',
    startMs: ms(o.started_ms),
    endMs: ms(o.ended_ms),
    duration: secs(o.duration),
    attempts: typeof o.attempts === 'number' && o.attempts >= 1 ? Math.floor(o.attempts) : 1,
    retries: count(o.retries),
    events: count(o.events),
    errors: count(o.errors),
    action: str(o.action),
    error: str(o.error),
    errorType: str(o.error_type),
    phase: str(o.phase),
  };
}

/** GET /api/runs/<id>: {run, executions, truncated, children, errors (raw events)}, or null. */
export function parseRunPage(body) {
  if (!isObj(body)) return null;
  const run = parseRun(body.run);
  if (!run) return null;
  const list = (v, f) => (Array.isArray(v) ? v.map(f).filter(Boolean) : []);
  return {
    run,
    executions: list(body.nodes, parseExecution),
    truncated: body.nodes_truncated === true,
    children: list(body.children, parseRun),
    errors: Array.isArray(body.errors) ? body.errors.filter(isObj) : [],
  };
}

/** GET /api/graphs: per graph, its runs in the window. */
export function parseGraphs(body) {
  if (!isObj(body) || !Array.isArray(body.graphs)) return { since: '', truncated: false, graphs: [] };
  const rate = (v) => (typeof v === 'number' && v >= 0 && v <= 1 ? v : undefined);
  return {
    since: str(body.since),
    truncated: body.truncated === true,
    graphs: body.graphs.filter(isObj).map((g) => ({
      graph: str(g.graph), runs: count(g.runs), success: count(g.success), failed: count(g.failed), running: count(g.running),
      successRate: rate(g.success_rate), p50: secs(g.p50_duration), p95: secs(g.p95_duration), avg: secs(g.avg_duration),
      lastStartMs: ms(g.last_started_ms),
    })),
  };
}

const statsOf = (o) => ({
  count: count(o.count), failed: count(o.failed), avg: secs(o.avg), p50: secs(o.p50), p95: secs(o.p95), max: secs(o.max),
});

/** GET /api/nodes/<graph>/<node>/stats, or null. */
export function parseNodeStats(body) {
  if (!isObj(body) || !Array.isArray(body.buckets)) return null;
  return Object.assign(statsOf(body), {
    graph: str(body.graph), node: str(body.node),
    sinceMs: ms(body.since_ms), untilMs: ms(body.until_ms),
    bucketS: typeof body.bucket_s === 'number' && body.bucket_s > 0 ? body.bucket_s : NaN,
    truncated: body.truncated === true,
    buckets: body.buckets.filter(isObj).map((b) => Object.assign(statsOf(b), { startMs: ms(b.start_ms) })),
  });
}

// ---------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------
export const runUrl = (id) => 'api/runs/' + encodeURIComponent(id);
export const runEventsUrl = (id, cursor, limit = 1000) =>
  runUrl(id) + '/events?limit=' + limit + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
export const runExportUrl = (id) => runUrl(id) + '/export';

/**
 * GET /api/nodes/<graph>/<node>/stats for a node path of the live view
 * ("orders/enrich/scoring/model": the root graph's id, then the node's path
 * under it).  Components stay escaped as in node_path (an id "a/b" is
 * "a%2Fb"), so each is URL-encoded once more; the server decodes once and
 * compares with the stored, escaped path.  '' for a path with no node under
 * the root.
 */
export function nodeStatsUrl(path, range = '7d', buckets = 40) {
  const parts = String(path || '').split('/');
  if (parts.length < 2 || parts.some((p) => !p)) return '';
  const enc = parts.map(encodeURIComponent);
  return `api/nodes/${enc[0]}/${enc.slice(1).join('/')}/stats?since=${encodeURIComponent(range)}&buckets=${buckets}`;
}

/**
 * The live view's node path of an execution: the run's root path (the
 * topology's escaped id, model.js) and the execution's path under it.
 */
export function execPath(rootPath, x) {
  if (!x.node) return '';
  return rootPath ? rootPath + '/' + x.node : x.node;
}

/** A readable name of a node path under its root ("enrich/scoring/model"), unescaped. */
export function pathUnderRoot(path) {
  return splitPath(path).slice(1).join(' / ');
}
