// docs/schema/ itself: valid messages pass and invalid ones are refused, so
// the schemas are precise enough to catch a server or producer that strays
// (node --test; ctest schema_docs).  Valid inputs: events as the engine
// emits them (tests/web/simulate.mjs, nested runs included) and messages
// shaped as src/dashboard sends them; invalid ones: one defect each.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { precondition } from './helpers.mjs';
import { loadSchemas } from './schema.mjs';
import { runToArray } from '../web/simulate.mjs';
import { nestedGraph, pipelineGraph } from '../web/graphs.mjs';

const skip = precondition(false);
const v = skip ? null : await loadSchemas();
const event = () => runToArray(pipelineGraph(), { seed: 1 })[5];
const metrics = () => ({
  total_events: 10, events_by_type: { lifecycle: 6, data: 2, error: 1, metric: 1 }, events_by_name: { node_started: 2, other: 1 },
  active_nodes: 1, active_workflows: 1, success_rate: 0.5, workflow_success_rate: null, errors: 1, events_per_second: 2.5,
  throughput: Array(60).fill(0), dropped: 0, queue_depth: 0, ws_dropped: 0, duplicates: 0, rejected: 0,
  workflows: { total: 1, running: 1, success: 0, failed: 0, stale: 0 },
  nodes: { 'g/a': { id: 'a', type: 'A', status: 'running', count: 1, completed: 0, failed: 0, retries: 0, errors: 0, avg: 0, p95: 0 } },
  clients: 1, uptime: 3.2, timestamp: '2026-11-30T12:00:00.000000Z',
});
const summary = () => ({ workflow_id: 'w', status: 'running', event_count: 3, stored_events: 3, error_count: 0, truncated: 0,
  started_at: '2026-11-30T12:00:00.000000Z', ended_at: null, duration: null, final_action: null, nodes: 7 });

test('valid: every event of a nested run and of a pipeline run', { skip }, () => {
  for (const ev of [...runToArray(nestedGraph(), { seed: 3 }), ...runToArray(pipelineGraph(), { seed: 4, fail: (p) => p.endsWith('/storage'), retry: () => true })]) {
    assert.equal(v.event(ev), null, JSON.stringify(ev));
  }
  // Dispatcher metrics (empty ids, no path) and a truncated snapshot.
  assert.equal(v.event({ event_id: 'd', timestamp: '2026-11-30T12:00:00.123456Z', node_id: 'dispatcher', node_type: 'EventDispatcher', event_type: 'metric',
    event_name: 'queue_depth', data: { value: 3, unit: 'events', capacity: 65536 }, correlation_id: '', workflow_id: '', seq: 9 }), null);
  const snap = event();
  snap.event_name = 'data_output'; snap.event_type = 'data';
  snap.data = { has_data: true, snapshot: { truncated: true, original_size: 5620, preview: '[{"id":0' } };
  assert.equal(v.event(snap), null);
});

test('invalid events are refused, one defect each', { skip }, () => {
  const bad = [
    (e) => { delete e.workflow_id; },
    (e) => { e.event_id = ''; },
    (e) => { e.timestamp = '2026-11-30 12:00:00'; },
    (e) => { e.event_type = 'debug'; },
    (e) => { e.data = null; },
    (e) => { e.node_path = 'a//b'; },
    (e) => { e.seq = -1; },
    (e) => { e.event_name = 'node_completed'; e.data = { state: 'completed' }; },
    (e) => { e.event_name = 'workflow_completed'; e.data = { status: 'ok', duration: 1 }; },
    (e) => { e.event_name = 'workflow_started'; e.data = { state: 'running' }; },
    (e) => { e.event_name = 'workflow_started'; e.data = { graph: { nodes: [{ id: 'a' }], edges: [], start: 'a' } }; },
    (e) => { e.event_name = 'retry_attempted'; e.event_type = 'error'; e.data = { attempt: 1 }; },
    (e) => { e.event_name = 'data_output'; e.event_type = 'data'; e.data = { snapshot: { truncated: true, data: 1 } }; },
    (e) => { e.data = { item: -1 }; },
  ];
  for (const f of bad) {
    const e = event();
    f(e);
    assert.notEqual(v.event(e), null, 'accepted: ' + f.toString());
  }
});

test('valid and invalid WebSocket messages', { skip }, () => {
  const initial = { type: 'initial', data: { events: [event()], metrics: metrics(), active_nodes: ['g/a'], active_workflows: ['w'],
    network_graph: { nodes: [{ id: 'a', path: 'g/a', type: 'A', status: 'idle', in_topology: true }], edges: [{ from: 'a', to: 'b', from_path: 'g/a', to_path: 'g/b', action: 'default', count: 0 }], start: 'a', workflow_id: 'w' },
    workflows: [summary()] } };
  const ok = [
    initial, { type: 'event', data: event() }, { type: 'events', data: [event(), event()] }, { type: 'metrics', data: metrics() },
    { type: 'workflow_events', workflow_id: 'w', events: [event()], found: true, status: 'success', graph: pipelineGraph(), truncated: 0 },
    { type: 'workflow_events', workflow_id: 'x', events: [], found: false, status: null, graph: null, truncated: 0 },
    { type: 'notice', data: { level: 'warning', dropped: 12, message: 'this client fell behind' } },
    { type: 'error', message: 'malformed JSON' }, { type: 'pong' },
  ];
  for (const m of ok) assert.equal(v.ws(m), null, JSON.stringify(m).slice(0, 200));
  const m1 = metrics(); delete m1.uptime;
  const m2 = metrics(); m2.throughput = [1, 2];
  const m3 = metrics(); m3.nodes['g/a'].status = 'done';
  const bad = [
    { type: 'events', data: [] }, { type: 'metrics', data: m1 }, { type: 'metrics', data: m2 }, { type: 'metrics', data: m3 },
    { type: 'error', data: { message: 'x' } }, { type: 'event', data: event(), extra: 1 }, { type: 'nope' },
    { type: 'workflow_events', workflow_id: 'w', events: [], found: true, status: 'done', graph: null, truncated: 0 },
    { type: 'initial', data: { ...initial.data, workflows: [{ ...summary(), status: 'ok' }] } },
  ];
  for (const m of bad) assert.notEqual(v.ws(m), null, 'accepted: ' + JSON.stringify(m).slice(0, 200));
});

test('REST bodies', { skip }, () => {
  assert.equal(v.rest('healthz', { status: 'ok', uptime: 1.5 }), null);
  assert.equal(v.rest('ingest', { accepted: 1, rejected: 1, duplicates: 0, error: 'events[0]: missing field "timestamp"' }), null);
  assert.equal(v.rest('metrics', Object.assign(metrics(), { server: { ws_sent: 1, ws_dropped: 0, clients: 1, redis_messages: 0, redis_replayed: 0, redis_replays: 0, redis_fetches: 0, redis_connected: false } })), null);
  assert.notEqual(v.rest('metrics', metrics()), null, 'GET /api/metrics has "server"');
  assert.equal(v.rest('workflow_events', { workflow_id: 'w', events: [], run: summary(), graph: null }), null);
  assert.notEqual(v.rest('workflows', { workflows: [{ workflow_id: 'w' }] }), null);
  assert.notEqual(v.rest('error', { error: 1 }), null);
});
