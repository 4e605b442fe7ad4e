// Unit tests of web/store.js: the reducer from events to runs, node states and outcomes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvent } from '../../web/protocol.js';
import { createStore, applyEvent, applySummary, runLabel, runFromEvents, statusOf, isErrorEdge, LIMITS } from '../../web/store.js';
import { edgeKey } from '../../web/model.js';
import { pipelineGraph, nestedGraph } from './graphs.mjs';
import { runToArray } from './simulate.mjs';

const feed = (st, raws) => raws.map((r) => applyEvent(st, parseEvent(r)));
const choose = (want) => (n, actions) => (want[n.id] && actions.includes(want[n.id]) ? want[n.id] : actions[0]);

test('a pipeline run: statuses, edges taken, success', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 1, choose: choose({ validator: 'process', storage: 'stored' }) });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(run.outcome, 'success');
  assert.equal(statusOf(run, 'data_pipeline/reporter'), 'completed');
  assert.equal(statusOf(run, 'data_pipeline/error_handler'), 'idle');
  assert.equal(run.edges.get(edgeKey('data_pipeline/storage', 'stored')), 1);
  assert.equal(run.edges.get(edgeKey('data_pipeline/validator', 'process')), 1);
  assert.equal(st.latestRun, run.id);
  assert.equal(run.nodes.get('data_pipeline/storage').execs.length, 1);
  assert.equal(run.nodes.get('data_pipeline/storage').execs[0].action, 'stored');
});

test('an error path taken is "handled", with the reason from the node\'s output', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 2, choose: choose({ validator: 'process', storage: 'error' }), reason: () => 'storage quota exceeded' });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(run.status, 'success');
  assert.equal(run.outcome, 'handled');
  assert.deepEqual(run.errorPath, { path: 'data_pipeline/storage', action: 'error', to: 'data_pipeline/error_handler', reason: 'storage quota exceeded' });
  assert.equal(statusOf(run, 'data_pipeline/error_handler'), 'completed');
  assert.match(runLabel(run, '…0001'), /^#1 · ⚠ handled error: storage quota exceeded · …0001$/);
  assert.ok(run.errors.some((e) => e.path === 'data_pipeline/storage' && /quota/.test(e.msg)));
});

test('error edges are recognised by action or by target', () => {
  assert.ok(isErrorEdge('error', null));
  assert.ok(isErrorEdge('no_valid_data', null));
  assert.ok(isErrorEdge('on-failure', null));
  assert.ok(isErrorEdge('default', { id: 'error_handler', type: 'ErrorHandlerNode' }));
  assert.ok(!isErrorEdge('stored', { id: 'reporter', type: 'ReportNode' }));
  assert.ok(!isErrorEdge('process', null));
  assert.ok(!isErrorEdge('terror_level', null) === true);
});

test('a failed run is "failed" and its label counts its errors', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 3, choose: choose({ validator: 'process' }), fail: (p) => p.endsWith('/storage'), retry: (p) => p.endsWith('/processor') });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(run.outcome, 'failed');
  assert.equal(statusOf(run, 'data_pipeline/storage'), 'failed');
  assert.equal(run.nodes.get('data_pipeline/storage').lastError, 'storage unavailable');
  assert.equal(run.nodes.get('data_pipeline/processor').retries, 1);
  assert.equal(run.errorEvents, 2);
  assert.match(runLabel(run, '…0001', '12:00:00'), /^#1 · ✕ failed · 2 errors · 12:00:00 · …0001$/);
});

test('nested runs fold into their outermost run, by node_path', () => {
  const st = createStore();
  const evs = runToArray(nestedGraph(), { seed: 4, items: () => 3 });
  feed(st, evs);
  assert.equal(st.runs.size, 1, 'nested runs are not listed as runs of their own');
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(run.outcome, 'success');
  // The same id in two sub-graphs: two states.
  assert.equal(statusOf(run, 'order_flow/checks/validator'), 'completed');
  assert.equal(statusOf(run, 'order_flow/checks/enrich/validator'), 'completed');
  assert.equal(run.nodes.get('order_flow/checks/validator').count, 1);
  // Batch graph: one run per item, each item's state and the node's per-item executions.
  const items = run.items.get('order_flow/per_item');
  assert.deepEqual([...items.keys()], [0, 1, 2]);
  assert.ok([...items.values()].every((i) => i.status === 'completed'));
  const fetch = run.nodes.get('order_flow/per_item/fetch');
  assert.equal(fetch.count, 3);
  assert.deepEqual(fetch.execs.map((x) => x.item), [0, 1, 2]);
  assert.deepEqual([...fetch.items], [0, 1, 2]);
});

test('a nested run seen before its workflow_started is merged into the root', () => {
  const st = createStore();
  const evs = runToArray(nestedGraph(), { seed: 5, items: () => 2 });
  // The sub-graph "checks" events arrive before the workflow_started that links them.
  const i = evs.findIndex((e) => e.event_name === 'workflow_started' && e.node_path === 'order_flow/checks');
  const moved = evs.splice(i, 1)[0];
  const j = evs.findIndex((e) => e.node_path === 'order_flow/checks/dedupe' && e.event_name === 'node_completed');
  evs.splice(j + 1, 0, moved);
  feed(st, evs);
  assert.equal(st.runs.size, 1);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(statusOf(run, 'order_flow/checks/schema_check'), 'completed');
});

test('late and duplicate events do not move a node backwards or count twice', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 6, choose: choose({ validator: 'process', storage: 'stored' }) });
  const idx = evs.findIndex((e) => e.event_name === 'node_executing' && e.node_id === 'validator');
  const late = evs.splice(idx, 1)[0];
  feed(st, evs);
  feed(st, [late, evs[5], evs[6]]);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(statusOf(run, 'data_pipeline/validator'), 'completed');
  assert.equal(st.duplicates, 2);
  assert.equal(st.total, evs.length + 1);
});

test('dispatcher metrics count but touch no run or node', () => {
  const st = createStore();
  feed(st, [{ event_id: 'd1', timestamp: '2026-11-30T12:00:00.000000Z', node_id: 'dispatcher', node_type: 'Dispatcher', event_type: 'metric',
    event_name: 'queue_depth', data: { value: 3, unit: 'events' }, correlation_id: null, workflow_id: null, seq: 1 }]);
  assert.equal(st.total, 1);
  assert.equal(st.runs.size, 0);
});

test('older producers without node_path still land on the right nodes', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 7, choose: choose({ validator: 'process', storage: 'stored' }) }).map((e) => { const c = { ...e }; delete c.node_path; return c; });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(statusOf(run, 'data_pipeline/reporter'), 'completed');
});

test('a run known only from a server summary, then from its stored events', () => {
  const st = createStore();
  const run = applySummary(st, { workflow_id: 'w1', status: 'success', event_count: 40, error_count: 0, started_at: '2026-11-30T12:00:00Z', duration: 0.5, final_action: 'done' }, pipelineGraph());
  assert.equal(run.outcome, 'success');
  assert.ok(run.summaryOnly && run.model);
  const evs = runToArray(pipelineGraph(), { seed: 8, choose: choose({ validator: 'process', storage: 'error' }) });
  const full = runFromEvents(evs[0].workflow_id, evs, pipelineGraph());
  assert.equal(full.outcome, 'handled');
  assert.equal(statusOf(full, 'data_pipeline/error_handler'), 'completed');
});

test('runs are bounded', () => {
  const st = createStore();
  for (let i = 0; i < LIMITS.runs + 50; i++) {
    feed(st, [{ event_id: 'e' + i, timestamp: '2026-11-30T12:00:00.000000Z', node_id: 'g', node_type: 'G', event_type: 'lifecycle',
      event_name: 'workflow_completed', data: { status: 'success', duration: 0.1 }, correlation_id: 'w' + i, workflow_id: 'w' + i, seq: i }]);
  }
  assert.equal(st.runs.size, LIMITS.runs);
  assert.ok(!st.runs.has('w0') && st.runs.has('w' + (LIMITS.runs + 49)));
});

test('node events inside a batch graph item run get the item from that run', () => {
  const st = createStore();
  // As kaygraph-c emits them: only the item run's workflow_started/_completed carry data.item.
  const evs = runToArray(nestedGraph(), { seed: 9, items: () => 2 }).map((e) => {
    if (e.event_name.startsWith('workflow_') || e.data.item === undefined) return e;
    const c = { ...e, data: { ...e.data } };
    delete c.data.item;
    return c;
  });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.deepEqual(run.nodes.get('order_flow/per_item/fetch').execs.map((x) => x.item), [0, 1]);
});

test('a failed run keeps the error that ended it', () => {
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 10, choose: choose({ validator: 'process' }), fail: (p) => p.endsWith('/processor') });
  const end = evs[evs.length - 1];
  end.data = { ...end.data, error: 'processor: storage unavailable', error_type: 'IOError', error_code: -5 };
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  assert.equal(run.errors[run.errors.length - 1].msg, 'processor: storage unavailable');
});

// ---------------------------------------------------------------------------
// What nodes report about themselves (issue 14): node_log, custom_metric,
// node_progress, custom_event
// ---------------------------------------------------------------------------
test('log lines, metrics, progress and custom events land on the node, without changing its status', async () => {
  const { demoReport } = await import('./simulate.mjs');
  const st = createStore();
  const evs = runToArray(pipelineGraph(), { seed: 1, choose: choose({ validator: 'process', storage: 'stored' }), report: true });
  feed(st, evs);
  const run = st.runs.get(evs[0].workflow_id);
  const v = run.nodes.get('data_pipeline/validator');
  assert.equal(v.status, 'completed', 'log lines do not make a completed node look running');
  const warnings = v.logs.filter((l) => l.level === 'warning');
  assert.ok(warnings.length >= 1 && warnings.every((l) => /^invalid record \d+: bad date$/.test(l.message) && l.fields.reason === 'bad date'));
  assert.ok(v.logs.every((l) => l.corr === v.execs[0].corr), 'each line names its execution');
  assert.equal(run.logLevels.warning, warnings.length);
  const p = run.nodes.get('data_pipeline/processor');
  assert.deepEqual([p.progress.done, p.progress.total], [100, 100]);
  const m = p.metrics.get('records_processed');
  assert.deepEqual([m.kind, m.unit, m.count, m.sum, m.last], ['counter', 'records', 4, 100, 25]);
  assert.equal(run.nodes.get('data_pipeline/aggregator').metrics.get('mean_value').kind, 'gauge');
  const s = run.nodes.get('data_pipeline/storage');
  assert.equal(s.custom.length, 1);
  assert.equal(s.custom[0].name, 'stored');
  assert.match(s.custom[0].data.storage_id, /^st-/);
  assert.equal(run.custom.length, 1);
  assert.ok(typeof demoReport === 'function');
});

test('progress follows the newest event and starts again with the next execution; malformed reports are ignored', () => {
  const st = createStore();
  const wf = 'wf-p';
  const mk = (seq, name, data, type = 'lifecycle') => ({ event_id: 'e' + seq, timestamp: '2026-11-30T12:00:00.000Z', node_id: 'worker', node_type: 'W', node_path: 'g/worker',
    event_type: type, event_name: name, data, correlation_id: 'c' + (seq < 10 ? 1 : 2), workflow_id: wf, seq });
  feed(st, [
    { event_id: 'e0', timestamp: '2026-11-30T12:00:00.000Z', node_id: 'g', node_type: 'G', node_path: 'g', event_type: 'lifecycle', event_name: 'workflow_started',
      data: { graph: { id: 'g', nodes: [{ id: 'worker', type: 'W' }], edges: [], start: 'worker' } }, correlation_id: wf, workflow_id: wf, seq: 0 },
    mk(1, 'node_started', {}), mk(3, 'node_progress', { done: 60, total: 100 }), mk(2, 'node_progress', { done: 40, total: 100 }),
    mk(4, 'node_progress', { done: 'x', total: 100 }), mk(5, 'node_progress', { done: -1, total: 10 }),
    mk(6, 'node_log', { level: 'loud', message: 'not a level' }, 'log'), mk(7, 'node_log', { level: 'info', message: 42 }, 'log'),
    mk(8, 'custom_metric', { name: 'm', value: 'NaN', kind: 'gauge' }, 'metric'), mk(9, 'custom_event', { data: {} }, 'data'),
  ]);
  const n = st.runs.get(wf).nodes.get('g/worker');
  assert.deepEqual([n.progress.done, n.progress.total], [60, 100], 'an older progress event arriving late does not win');
  assert.equal(n.logs.length, 0);
  assert.equal(n.metrics.size, 0);
  assert.equal(n.custom.length, 0);
  assert.equal(n.status, 'running');
  feed(st, [mk(11, 'node_started', {})]);
  assert.equal(n.progress, null, 'a new execution has no progress yet');
  // A node that does not know its total says 0 (or leaves it out): docs/events.md.
  feed(st, [mk(12, 'node_progress', { done: 7, total: 0 }), mk(13, 'node_progress', { done: 9 })]);
  assert.deepEqual([n.progress.done, n.progress.total], [9, 0]);
});

test('log lines are bounded per node; the dropped ones are counted', () => {
  const st = createStore();
  const wf = 'wf-l';
  const evs = [{ event_id: 's', timestamp: '2026-11-30T12:00:00.000Z', node_id: 'g', node_type: 'G', node_path: 'g', event_type: 'lifecycle', event_name: 'workflow_started',
    data: { graph: { id: 'g', nodes: [{ id: 'n', type: 'N' }], edges: [], start: 'n' } }, correlation_id: wf, workflow_id: wf, seq: 0 }];
  for (let i = 1; i <= LIMITS.logs + 25; i++) {
    evs.push({ event_id: 'l' + i, timestamp: '2026-11-30T12:00:00.000Z', node_id: 'n', node_type: 'N', node_path: 'g/n', event_type: 'log', event_name: 'node_log',
      data: { level: 'info', message: 'line ' + i }, correlation_id: 'c', workflow_id: wf, seq: i });
  }
  feed(st, evs);
  const n = st.runs.get(wf).nodes.get('g/n');
  assert.equal(n.logs.length, LIMITS.logs);
  assert.equal(n.logsDropped, 25);
  assert.equal(n.logs[n.logs.length - 1].message, 'line ' + (LIMITS.logs + 25));
});
