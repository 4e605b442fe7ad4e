// Unit tests of web/history.js (reading the run history's bodies, building its
// URLs) and web/history-run.js (a stored run coloured as the live view colours it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRun, parseExecution, parseRunPage, parseGraphs, parseNodeStats, nodeStatsUrl, runUrl, runEventsUrl, execPath } from '../../web/history.js';
import { runFromHistory } from '../../web/history-run.js';
import { createStore, applyEvent, statusOf } from '../../web/store.js';
import { parseEvent } from '../../web/protocol.js';
import { pipelineGraph, nestedGraph, allPaths } from './graphs.mjs';
import { runToArray, makeIds } from './simulate.mjs';
import { HistoryStore } from './history-sim.mjs';

// docs/history.md's examples, as the server answers.
const RUN = { run_id: '7989ca41-449f-89dd-8000-00000000001e', workflow_id: '7989ca41-449f-89dd-8000-00000000001e', graph: 'data_pipeline',
  graph_type: 'DataPipeline', parent_workflow_id: null, status: 'success', started_at: '2026-11-30T23:48:29.910Z', started_ms: 1796082509910,
  ended_at: '2026-11-30T23:48:29.925Z', ended_ms: 1796082509925, last_event_at: '2026-11-30T23:48:29.925Z', last_event_ms: 1796082509925,
  duration: 0.014153211, final_action: 'done', error: null, event_count: 45, error_count: 1, node_executions: 6, source: { host: 'vm', pid: 5827 } };
const EXEC = { run_id: RUN.run_id, execution_id: '7989ca41-449f-89dd-8000-000000000021', item: null, node: 'processor', node_id: 'processor',
  node_type: 'DataProcessingNode', status: 'completed', started_at: '2026-11-30T23:48:29.915Z', started_ms: 1796082509915,
  ended_at: '2026-11-30T23:48:29.920Z', ended_ms: 1796082509920, duration: 0.005419866, attempts: 2, retries: 1, events: 8, errors: 1,
  action: 'default', error: 'upstream service timed out (attempt 1)', error_type: 'TimeoutError', phase: 'exec' };

test('a stored run and a node execution are read under their documented names', () => {
  const r = parseRun(RUN);
  assert.equal(r.id, RUN.run_id);
  assert.equal(r.status, 'success');
  assert.equal(r.startMs, 1796082509910);
  assert.equal(r.duration, 0.014153211);
  assert.equal(r.finalAction, 'done');
  assert.equal(r.errors, 1);
  assert.equal(r.executions, 6);
  assert.equal(r.host, 'vm');
  assert.equal(r.parent, '');
  const x = parseExecution(EXEC);
  assert.deepEqual([x.id, x.node, x.status, x.attempts, x.retries, x.item, x.endMs - x.startMs], [EXEC.execution_id, 'processor', 'completed', 2, 1, undefined, 5]);
  assert.equal(parseRun({ workflow_id: 'x' }), null, 'run_id is the run\'s name, not workflow_id');
  assert.equal(parseExecution({ correlation_id: 'x' }), null);
  // Unknown values are unknown, not guessed.
  const odd = parseRun(Object.assign({}, RUN, { status: 'weird', started_ms: '1796082509910', duration: -1 }));
  assert.deepEqual([odd.status, Number.isNaN(odd.startMs), odd.duration], ['unknown', true, undefined]);
  const page = parseRunPage({ run: Object.assign({ topology: pipelineGraph() }, RUN), nodes: [EXEC, { bogus: 1 }], nodes_truncated: false, children: [], errors: [{ event_name: 'retry_attempted' }] });
  assert.equal(page.executions.length, 1);
  assert.equal(page.run.topology.id, 'data_pipeline');
  assert.equal(page.errors.length, 1);
  assert.equal(parseRunPage({ nodes: [] }), null);
});

test('graph summaries and node statistics', () => {
  const g = parseGraphs({ since: '2026-11-29T23:48:41.821Z', truncated: false, graphs: [{ graph: 'data_pipeline', runs: 4, success: 4, failed: 0, running: 0,
    success_rate: 1, p50_duration: 0.011267037, p95_duration: 0.014389224, avg_duration: 0.0127494858, last_started_at: null, last_started_ms: 1796082509910 }] });
  assert.deepEqual([g.graphs[0].graph, g.graphs[0].successRate, g.graphs[0].p95], ['data_pipeline', 1, 0.014389224]);
  assert.equal(parseGraphs({ graphs: [{ graph: 'x', success_rate: null }] }).graphs[0].successRate, undefined);
  const s = parseNodeStats({ graph: 'g', node: 'n', since_ms: 1, until_ms: 3, bucket_s: 1, count: 2, failed: 0, avg: 1, p50: 1, p95: 1, max: 1, truncated: false,
    buckets: [{ start_ms: 1, count: 0, failed: 0, avg: null, p50: null, p95: null, max: null }, { start_ms: 2, count: 2, failed: 1, avg: 1, p50: 1, p95: 1, max: 1 }] });
  assert.equal(s.buckets.length, 2);
  assert.equal(s.buckets[0].p50, undefined);
  assert.equal(s.buckets[1].failed, 1);
});

test('history URLs: run ids and node paths are escaped once more than node_path escapes them', () => {
  assert.equal(runUrl('a/b?c#d'), 'api/runs/a%2Fb%3Fc%23d');
  assert.equal(runEventsUrl('r', '9.1', 500), 'api/runs/r/events?limit=500&cursor=9.1');
  assert.equal(nodeStatsUrl('orders/enrich/scoring/model', '24h', 30), 'api/nodes/orders/enrich/scoring/model/stats?since=24h&buckets=30');
  // The id "a/b" is "a%2Fb" in a node path; the server decodes the URL once and compares with that.
  assert.equal(nodeStatsUrl('g/a%2Fb'), 'api/nodes/g/a%252Fb/stats?since=7d&buckets=40');
  assert.equal(nodeStatsUrl('g'), '', 'the root graph is not a node');
  assert.equal(execPath('orders', { node: 'enrich/lookup' }), 'orders/enrich/lookup');
});

/** Feed a run's events to both the live store and the history, as the server would. */
function bothWays(graph, opts) {
  const events = runToArray(graph, Object.assign({ ids: makeIds(7), eventIds: makeIds(8) }, opts));
  const st = createStore();
  for (const e of events) applyEvent(st, parseEvent(e));
  const h = new HistoryStore({ now: () => Date.parse('2026-11-30T13:00:00Z') });
  for (const e of events) h.add(e);
  const root = events[0].workflow_id;
  const page = parseRunPage(h.page(root).body);
  return { live: st.runs.get(root), stored: runFromHistory(page, { events }), page, events };
}

test('a stored nested run is coloured as the live view coloured it: statuses, edges, item runs, outcome', () => {
  const choose = (n, actions) => (n.id === 'validator' && actions.includes('valid') ? 'valid' : actions[0]);
  const { live, stored, page } = bothWays(nestedGraph(), { seed: 3, choose, items: () => 3, retry: (p) => p.endsWith('/transform') });
  assert.ok(page.executions.some((x) => x.runId !== page.run.id), 'executions of nested runs are on the run page');
  for (const p of allPaths(nestedGraph())) assert.equal(statusOf(stored, p), statusOf(live, p), `status of ${p}`);
  assert.deepEqual(Object.fromEntries(stored.edges), Object.fromEntries(live.edges), 'edges taken');
  const items = (run) => [...run.items.get('order_flow/per_item').values()].map((i) => i.status);
  assert.deepEqual(items(stored), items(live), 'item runs of the batch graph');
  assert.equal(stored.outcome, live.outcome);
  assert.equal(stored.nodes.get('order_flow/per_item/transform').retries, live.nodes.get('order_flow/per_item/transform').retries);
});

test('a failed run and a handled error read the same from the history', () => {
  const fail = bothWays(pipelineGraph(), { seed: 4, choose: (n, a) => (a.includes('process') ? 'process' : a[0]), fail: (p) => p.endsWith('/storage') });
  assert.equal(fail.stored.outcome, 'failed');
  assert.equal(statusOf(fail.stored, 'data_pipeline/storage'), 'failed');
  assert.equal(fail.stored.nodes.get('data_pipeline/storage').lastError, 'storage unavailable');
  const handled = bothWays(pipelineGraph(), { seed: 5, choose: (n, a) => (a.includes('process') ? 'process' : a.includes('error') ? 'error' : a[0]) });
  assert.equal(handled.live.outcome, 'handled');
  assert.equal(handled.stored.outcome, 'handled');
  assert.equal(handled.stored.errorPath.to, 'data_pipeline/error_handler');
});
