// Unit tests of web/layout.js: every node drawn once, nothing overlapping,
// few crossings, labels whole, groups around their children.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology } from '../../web/protocol.js';
import { buildModel, defaultCollapsed } from '../../web/model.js';
import { layout, bilayerCrossings } from '../../web/layout.js';
import { layoutQuality, countCrossings, countOverlaps, edgePolyline } from '../../web/layout-metrics.js';
import { pipelineGraph, nestedGraph, wideGraph, bigNestedGraph, allPaths } from './graphs.mjs';

const model = (g) => buildModel(parseTopology(g));

function checkLayout(name, g, collapsed = new Set(), maxCrossings = 0) {
  const m = model(g);
  const L = layout(m, collapsed);
  // Every node outside a collapsed group has exactly one box, and nothing else does.
  const hidden = (p) => [...collapsed].some((c) => p.startsWith(c + '/'));
  const want = allPaths(g).filter((p) => !hidden(p)).sort();
  assert.deepEqual([...L.boxes.keys()].sort(), want, `${name}: boxes`);
  for (const [p, b] of L.boxes) {
    assert.ok([b.x, b.y, b.w, b.h].every(Number.isFinite) && b.w > 0 && b.h > 0, `${name}: box of ${p}`);
    // A child lies inside its group's content area.
    const parent = p.slice(0, p.lastIndexOf('/'));
    const pb = L.boxes.get(parent);
    if (pb) {
      assert.ok(b.x >= pb.x - 0.5 && b.y >= pb.y + pb.header - 0.5 && b.x + b.w <= pb.x + pb.w + 0.5 && b.y + b.h <= pb.y + pb.h + 0.5,
        `${name}: ${p} outside its group ${parent}`);
    }
  }
  const q = layoutQuality(L);
  assert.equal(q.overlaps, 0, `${name}: overlapping boxes`);
  assert.equal(q.labelOverlaps, 0, `${name}: labels over boxes or labels`);
  assert.ok(q.crossings <= maxCrossings, `${name}: ${q.crossings} crossings (at most ${maxCrossings})`);
  // Every edge of a visible pair is routed, from its source box to its target box.
  for (const e of L.edges) {
    const a = L.boxes.get(e.from), b = L.boxes.get(e.to), s = e.segs[0], t = e.segs[e.segs.length - 1];
    assert.ok(a && b, `${name}: edge ${e.key} between drawn boxes`);
    const onBox = (x, y, bx) => x >= bx.x - 1 && x <= bx.x + bx.w + 1 && y >= bx.y - 1 && y <= bx.y + bx.h + 1;
    assert.ok(onBox(s.x0, s.y0, a), `${name}: ${e.key} starts on its source`);
    assert.ok(onBox(t.x1, t.y1, b), `${name}: ${e.key} ends on its target`);
    if (e.action !== 'default') assert.equal(e.label && e.label.text, e.action, `${name}: label of ${e.key} is the whole action`);
  }
  return { L, q, m };
}

test('the seed pipeline: no crossings, no overlaps, labels whole', () => {
  const { L } = checkLayout('pipeline', pipelineGraph());
  const lab = L.edges.find((e) => e.action === 'no_valid_data').label;
  assert.equal(lab.text, 'no_valid_data');
});

test('the nested example, expanded and with groups collapsed', () => {
  checkLayout('nested', nestedGraph());
  checkLayout('nested, checks collapsed', nestedGraph(), new Set(['order_flow/checks']));
  checkLayout('nested, enrich and per_item collapsed', nestedGraph(), new Set(['order_flow/checks/enrich', 'order_flow/per_item']));
  // A collapsed group is a box of its own size, smaller than when open.
  const open = layout(model(nestedGraph())).boxes.get('order_flow/checks');
  const shut = layout(model(nestedGraph()), new Set(['order_flow/checks'])).boxes.get('order_flow/checks');
  assert.ok(shut.collapsed && !open.collapsed && shut.w < open.w);
});

test('the wide example (>= 120 nodes, fan-out and fan-in)', () => {
  const { m } = checkLayout('wide', wideGraph());
  assert.ok(m.size >= 120);
});

test('a 300-node nested graph, open and as first shown', () => {
  const g = bigNestedGraph();
  const { m } = checkLayout('nested-300', g, new Set(), 10);
  assert.ok(m.size >= 300);
  checkLayout('nested-300 collapsed', g, defaultCollapsed(m, 120), 10);
});

test('random graphs with loops and nesting never overlap', () => {
  let s = 99;
  const rnd = () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x7fffffff; };
  const gen = (id, size, depth) => {
    const nodes = [], edges = [];
    for (let i = 0; i < size; i++) {
      const nid = `${id}_${i}`;
      nodes.push(depth < 2 && rnd() < 0.15 ? gen(nid, 2 + Math.floor(rnd() * 5), depth + 1) : { id: nid, type: 'T' + i });
    }
    for (let i = 1; i < size; i++) edges.push({ from: nodes[Math.floor(rnd() * i)].id, to: nodes[i].id, action: rnd() < 0.3 ? 'act_' + i : 'default' });
    for (let k = 0; k < size / 3; k++) {
      const a = nodes[Math.floor(rnd() * size)].id, b = nodes[Math.floor(rnd() * size)].id;
      edges.push({ from: a, to: b, action: 'x' + k });
    }
    return { id, type: 'G', start: nodes[0].id, nodes, edges };
  };
  for (let i = 0; i < 25; i++) {
    const g = gen('r' + i, 3 + Math.floor(rnd() * 25), 0);
    const m = model(g);
    const L = layout(m);
    const q = layoutQuality(L);
    assert.equal(q.overlaps, 0, `graph ${i}: overlaps`);
    assert.equal(q.labelOverlaps, 0, `graph ${i}: label overlaps`);
    assert.equal(L.boxes.size, m.size, `graph ${i}: boxes`);
  }
});

test('bilayer crossing count equals the brute-force count', () => {
  let s = 7;
  const rnd = () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x7fffffff; };
  for (let t = 0; t < 50; t++) {
    const nTop = 1 + Math.floor(rnd() * 8), nBot = 1 + Math.floor(rnd() * 8);
    const top = [...Array(nTop).keys()], bottom = [...Array(nBot).keys()].map((i) => i + nTop);
    const down = Array.from({ length: nTop + nBot }, () => []);
    const pos = new Float64Array(nTop + nBot);
    top.forEach((v, i) => { pos[v] = i; });
    bottom.forEach((v, i) => { pos[v] = i; });
    const es = [];
    for (const u of top) for (const w of bottom) if (rnd() < 0.3) { down[u].push(w); es.push([pos[u], pos[w]]); }
    let brute = 0;
    for (let i = 0; i < es.length; i++) for (let j = i + 1; j < es.length; j++) if ((es[i][0] - es[j][0]) * (es[i][1] - es[j][1]) < 0) brute++;
    assert.equal(bilayerCrossings(top, bottom, down, pos), brute);
  }
});

test('the geometric metrics see a crossing and an overlap', () => {
  const x = [{ from: 'a', to: 'b', pts: [[0, 0], [10, 10]] }, { from: 'c', to: 'd', pts: [[0, 10], [10, 0]] }];
  assert.equal(countCrossings(x), 1);
  assert.equal(countCrossings([x[0], { from: 'a', to: 'e', pts: [[0, 0], [10, 5]] }]), 0);   // shared end
  assert.equal(countOverlaps([{ key: 'a', x: 0, y: 0, w: 10, h: 10 }, { key: 'b', x: 5, y: 5, w: 10, h: 10 }]), 1);
  assert.equal(countOverlaps([{ key: 'a', x: 0, y: 0, w: 10, h: 10 }, { key: 'a/b', x: 2, y: 2, w: 3, h: 3 }], (p, q) => q.startsWith(p + '/')), 0);
  assert.equal(edgePolyline([{ x0: 0, y0: 0, x1: 10, y1: 10, c: [5, 0, 5, 10] }], 4).length, 5);
});
