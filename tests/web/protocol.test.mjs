// Unit tests of web/protocol.js: the documented wire format, read exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvent, parseTopology, splitPath, childPath, escapeComponent, parentPath, pathLeaf, topologyKey, topologySize, isDispatcherEvent } from '../../web/protocol.js';
import { nestedGraph } from './graphs.mjs';

const base = {
  event_id: '01a22eb4-de22-735d-906e-16aefa6b420f', timestamp: '2026-11-30T23:05:35.010577Z', node_id: 'validator',
  node_type: 'V', event_type: 'lifecycle', event_name: 'node_completed', data: { next_action: 'ok', total_execution_time: 0.5 },
  correlation_id: 'c', workflow_id: 'w', seq: 7, source: { host: 'h', pid: 1 },
};

test('an event is read under its documented names only', () => {
  const ev = parseEvent({ ...base, node_path: 'outer/inner/validator', data: { ...base.data, item: 3 } });
  assert.equal(ev.node, 'validator');
  assert.equal(ev.path, 'outer/inner/validator');
  assert.equal(ev.wf, 'w');
  assert.equal(ev.item, 3);
  assert.equal(ev.ord, 7);
  assert.equal(ev.tsMs, Date.parse('2026-11-30T23:05:35.010Z'));
  // Alternative spellings are not guessed at.
  const odd = parseEvent({ ...base, node_id: undefined, node: 'validator', workflow_id: undefined, workflowId: 'w' });
  assert.equal(odd.node, '');
  assert.equal(odd.wf, '');
  assert.equal(parseEvent({ type: 'event' }), null);
  assert.equal(parseEvent([]), null);
  assert.equal(parseEvent(null), null);
});

test('a missing seq orders by timestamp; a nested run names its parent', () => {
  const ev = parseEvent({ ...base, seq: undefined, event_name: 'workflow_started', data: { parent_workflow_id: 'p' } });
  assert.equal(ev.ord, ev.tsMs);
  assert.equal(ev.parentWf, 'p');
});

test('dispatcher metrics are not node events', () => {
  assert.ok(isDispatcherEvent(parseEvent({ ...base, node_id: 'dispatcher', event_type: 'metric', event_name: 'queue_depth' })));
  assert.ok(!isDispatcherEvent(parseEvent({ ...base, event_type: 'metric', event_name: 'execution_time' })));
});

test('path components escape "/" and "%"', () => {
  assert.equal(escapeComponent('a/b%c'), 'a%2Fb%25c');
  assert.equal(childPath('outer', 'x/y'), 'outer/x%2Fy');
  assert.equal(childPath('', 'x'), 'x');
  assert.deepEqual(splitPath('outer/x%2Fy/50%25'), ['outer', 'x/y', '50%']);
  assert.equal(parentPath('a/b/c'), 'a/b');
  assert.equal(parentPath('a'), '');
  assert.equal(pathLeaf('a/x%2Fy'), 'x/y');
});

test('a nested topology is parsed recursively', () => {
  const t = parseTopology(nestedGraph());
  assert.equal(t.id, 'order_flow');
  const checks = t.nodes.find((n) => n.id === 'checks');
  assert.ok(Array.isArray(checks.nodes));
  assert.equal(checks.start, 'schema_check');
  const enrich = checks.nodes.find((n) => n.id === 'enrich');
  assert.deepEqual(enrich.nodes.map((n) => n.id), ['lookup', 'validator', 'merge']);
  assert.equal(t.nodes.find((n) => n.id === 'per_item').batch, true);
  assert.equal(topologySize(t), 15);
});

test('topology: duplicate ids, dangling edges and second successors on one action are dropped', () => {
  const t = parseTopology({
    nodes: [{ id: 'a', type: 'A' }, { id: 'a', type: 'dup' }, { id: 'b' }, { id: '' }, 'c', { id: 7 }],
    edges: [{ from: 'a', to: 'b', action: 'go' }, { from: 'a', to: 'a', action: 'go' }, { from: 'a', to: 'zz' }, { from: 'b', to: 'a' }],
    start: 'nope',
  });
  assert.deepEqual(t.nodes.map((n) => [n.id, n.type]), [['a', 'A'], ['b', '']]);
  assert.deepEqual(t.edges, [{ from: 'a', to: 'b', action: 'go' }, { from: 'b', to: 'a', action: 'default' }]);
  assert.equal(t.start, 'a');
  assert.equal(parseTopology({ edges: [] }), null);
  assert.equal(parseTopology('x'), null);
});

test('the topology key changes with shape, not with order of arrival', () => {
  const a = parseTopology(nestedGraph()), b = parseTopology(nestedGraph());
  assert.equal(topologyKey(a), topologyKey(b));
  const c = nestedGraph();
  c.nodes[1].nodes[2].nodes.push({ id: 'extra', type: 'X' });
  assert.notEqual(topologyKey(parseTopology(c)), topologyKey(a));
});
