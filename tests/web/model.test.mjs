// Unit tests of web/model.js: nested topologies as trees of node paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology, parseEvent } from '../../web/protocol.js';
import { buildModel, resolvePath, defaultCollapsed, visibleCount, groupState, visibleAncestor, groupPaths, edgeKey } from '../../web/model.js';
import { nestedGraph, pipelineGraph, bigNestedGraph, allPaths } from './graphs.mjs';

const model = (g) => buildModel(parseTopology(g));

test('every node gets its node_path; the same id in two sub-graphs gives two paths', () => {
  const m = model(nestedGraph());
  assert.deepEqual([...m.byPath.keys()].filter((p) => p !== m.rootPath).sort(), allPaths(nestedGraph()).sort());
  assert.deepEqual(m.idIndex.get('validator').sort(), ['order_flow/checks/enrich/validator', 'order_flow/checks/validator']);
  const enrich = m.byPath.get('order_flow/checks/enrich');
  assert.equal(enrich.group, true);
  assert.equal(enrich.depth, 2);
  assert.equal(enrich.start, 'order_flow/checks/enrich/lookup');
  assert.deepEqual(enrich.edges.map((e) => e.key), [
    edgeKey('order_flow/checks/enrich/lookup', 'default'), edgeKey('order_flow/checks/enrich/validator', 'valid'),
    edgeKey('order_flow/checks/enrich/validator', 'retry_lookup')]);
  assert.equal(m.byPath.get('order_flow/per_item').batch, true);
  assert.deepEqual(groupPaths(m), ['order_flow/checks', 'order_flow/checks/enrich', 'order_flow/per_item']);
});

test('events are placed by node_path, or by id when the producer sends none', () => {
  const m = model(nestedGraph());
  const ev = (f) => parseEvent({ event_id: 'x', timestamp: '', event_type: 'lifecycle', event_name: 'node_started', data: {}, ...f });
  assert.equal(resolvePath(m, ev({ node_id: 'validator', node_path: 'order_flow/checks/enrich/validator' })), 'order_flow/checks/enrich/validator');
  assert.equal(resolvePath(m, ev({ node_id: 'intake' })), 'order_flow/intake');
  assert.equal(resolvePath(m, ev({ node_id: 'lookup' })), 'order_flow/checks/enrich/lookup');   // unique id
  assert.equal(resolvePath(m, ev({ node_id: 'validator' })), 'order_flow/validator');           // ambiguous: top level
  assert.equal(resolvePath(null, ev({ node_id: 'x' })), 'x');
  // A topology without an id (older producers): paths are bare ids.
  const flat = model({ nodes: [{ id: 'a' }, { id: 'b' }], edges: [{ from: 'a', to: 'b' }] });
  assert.equal(flat.rootPath, '');
  assert.ok(flat.byPath.has('a'));
  assert.equal(resolvePath(flat, ev({ node_id: 'b', node_path: 'g/b' })), 'b');
});

test('collapsed groups hide their insides; big graphs start with deep levels collapsed', () => {
  const m = model(nestedGraph());
  assert.equal(visibleCount(m, new Set()), 15);
  assert.equal(visibleCount(m, new Set(['order_flow/checks'])), 15 - 7);
  assert.equal(defaultCollapsed(m, 400).size, 0);
  const big = model(bigNestedGraph());
  const c = defaultCollapsed(big, 100);
  assert.ok(visibleCount(big, c) <= 100, `visible ${visibleCount(big, c)}`);
  assert.ok([...c].every((p) => big.byPath.get(p).group));
  assert.equal(visibleAncestor(m, 'order_flow/checks/enrich/lookup', new Set(['order_flow/checks'])), 'order_flow/checks');
  assert.equal(visibleAncestor(m, 'order_flow/checks/enrich/lookup', new Set()), 'order_flow/checks/enrich/lookup');
  assert.equal(visibleCount(model(pipelineGraph()), new Set()), 7);
});

test('a collapsed group shows what runs or failed inside it', () => {
  const m = model(nestedGraph());
  const st = new Map([['order_flow/checks/enrich/merge', 'completed']]);
  const of = (p) => st.get(p) || 'idle';
  assert.equal(groupState(m, 'order_flow/checks', of).status, 'completed');
  st.set('order_flow/checks/validator', 'failed');
  assert.equal(groupState(m, 'order_flow/checks', of).status, 'failed');
  st.set('order_flow/checks/enrich/lookup', 'running');
  const g = groupState(m, 'order_flow/checks', of);
  assert.equal(g.status, 'running');
  assert.deepEqual(g.counts, { idle: 3, running: 1, retrying: 0, completed: 1, failed: 1 });
  assert.equal(groupState(m, 'order_flow/checks/enrich', of).status, 'running');
  assert.equal(groupState(m, 'order_flow/per_item', of).status, 'idle');
});
