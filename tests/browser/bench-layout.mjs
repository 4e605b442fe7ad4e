// Layout benchmark (not a test): the UI's own layered layout (web/layout.js)
// against dagre (@dagrejs/dagre, pinned dev dependency) on the same graphs -
// the seed's pipeline, the nested example, the wide example (>= 120 nodes)
// and a ~300-node nested graph - measuring what a reader suffers from: edge
// crossings and overlapping boxes (counted on the drawn geometry by
// web/layout-metrics.js, the same code for both engines), the drawing's size,
// and the time to lay out (median of repeated runs after a warm-up).
//
// dagre is run two ways: "dagre per group" lays out each (sub-)graph on its
// own exactly as web/layout.js does (sizes and label widths identical), and
// "dagre compound" lays out the whole graph at once with sub-graphs as
// clusters (edges into a group go to its start node, edges out of it leave
// from its last nodes: dagre does not route edges to clusters).
//
// usage: node tests/browser/bench-layout.mjs [--json]
import { parseTopology } from '../../web/protocol.js';
import { buildModel } from '../../web/model.js';
import { layout, leafSize, DEFAULTS } from '../../web/layout.js';
import { layoutQuality, countCrossings, countOverlaps } from '../../web/layout-metrics.js';
import * as G from '../web/graphs.mjs';

let dagre = null;
try { dagre = (await import('@dagrejs/dagre')).default; } catch (e) { console.error('dagre not installed (npm ci in tests/browser): its rows are skipped'); }

const o = DEFAULTS;
const median = (a) => { const s = a.slice().sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
function time(fn, reps) {
  fn(); fn();   // warm-up (JIT)
  const ts = [];
  let r;
  for (let i = 0; i < reps; i++) { const t0 = performance.now(); r = fn(); ts.push(performance.now() - t0); }
  return { ms: median(ts), result: r };
}

// --- dagre, one level at a time (same decomposition as web/layout.js) ------
function dagreLevel(group, sizeOf) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: o.gapY, ranksep: o.gapX, edgesep: 10, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of group.children) { const s = sizeOf(c); g.setNode(c.path, { width: s.w, height: s.h }); }
  for (const e of group.edges) {
    const text = e.action === 'default' ? '' : e.action;
    g.setEdge(e.from, e.to, text ? { width: o.measure(text, 'mono') + 16, height: o.labelH, labelpos: 'c' } : {}, e.key);
  }
  dagre.layout(g);
  return g;
}
function dagrePerGroup(model) {
  const boxes = [], edges = [], labels = [];
  const sized = new Map();
  const sizeOf = (n) => {
    if (sized.has(n.path)) return sized.get(n.path);
    let s;
    if (!n.group) s = leafSize(n, o, false);
    else {
      const g = dagreLevel(n, sizeOf);
      const gr = g.graph();
      s = { w: Math.max(gr.width + 2 * o.groupPad, 220), h: gr.height + (n.batch ? o.batchHeader : o.groupHeader) + o.groupPad, g };
    }
    sized.set(n.path, s);
    return s;
  };
  const place = (group, ox, oy, g) => {
    for (const c of group.children) {
      const nd = g.node(c.path);
      const x = ox + nd.x - nd.width / 2, y = oy + nd.y - nd.height / 2;
      boxes.push({ key: c.path, x, y, w: nd.width, h: nd.height });
      const s = sized.get(c.path);
      if (s.g) place(c, x + o.groupPad, y + (c.batch ? o.batchHeader : o.groupHeader), s.g);
    }
    for (const ed of g.edges()) {
      const E = g.edge(ed);
      edges.push({ from: ed.v, to: ed.w, pts: E.points.map((p) => [p.x + ox, p.y + oy]) });
      if (E.width) labels.push({ key: 'l' + labels.length, x: E.x + ox - E.width / 2, y: E.y + oy - 8, w: E.width, h: 16 });
    }
  };
  const g = dagreLevel(model.root, sizeOf);
  place(model.root, 0, 0, g);
  return { boxes, edges, labels, w: g.graph().width, h: g.graph().height };
}

// --- dagre, the whole graph as one compound graph ----------------------------
function dagreCompound(model) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: o.gapY, ranksep: o.gapX, edgesep: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  const entry = (n) => (n.group ? entry(n.children.find((c) => c.path === n.start) || n.children[0]) : n.path);
  const exits = (n) => {
    if (!n.group) return [n.path];
    const hasOut = new Set(n.edges.map((e) => e.from));
    return n.children.filter((c) => !hasOut.has(c.path)).flatMap(exits);
  };
  const add = (group) => {
    for (const c of group.children) {
      if (c.group) { g.setNode(c.path, { paddingTop: o.groupHeader }); add(c); } else { const s = leafSize(c, o, false); g.setNode(c.path, { width: s.w, height: s.h }); }
      if (group.parent) g.setParent(c.path, group.path);
    }
    for (const e of group.edges) {
      const text = e.action === 'default' ? '' : e.action;
      for (const f of exits(group.children.find((c) => c.path === e.from))) {
        g.setEdge(f, entry(group.children.find((c) => c.path === e.to)),
          text ? { width: o.measure(text, 'mono') + 16, height: o.labelH, labelpos: 'c' } : {}, e.key + '|' + f);
      }
    }
  };
  add(model.root);
  dagre.layout(g);
  const boxes = g.nodes().map((k) => { const nd = g.node(k); return { key: k, x: nd.x - nd.width / 2, y: nd.y - nd.height / 2, w: nd.width, h: nd.height }; });
  const edges = [], labels = [];
  for (const ed of g.edges()) {
    const E = g.edge(ed);
    edges.push({ from: ed.v, to: ed.w, pts: E.points.map((p) => [p.x, p.y]) });
    if (E.width) labels.push({ key: 'l' + labels.length, x: E.x - E.width / 2, y: E.y - 8, w: E.width, h: 16 });
  }
  return { boxes, edges, labels, w: g.graph().width, h: g.graph().height };
}

function quality(res) {
  const anc = (a, b) => b.startsWith(a + '/');
  const leaves = res.boxes.filter((b) => !res.boxes.some((c) => anc(b.key, c.key)));
  const lo = countOverlaps(res.labels.concat(leaves)) - countOverlaps(leaves) - countOverlaps(res.labels) + countOverlaps(res.labels);
  return { crossings: countCrossings(res.edges), overlaps: countOverlaps(res.boxes, anc), labelOverlaps: lo, width: Math.round(res.w), height: Math.round(res.h) };
}

const graphs = { pipeline: G.pipelineGraph(), nested: G.nestedGraph(), wide: G.wideGraph(), 'nested-300': G.bigNestedGraph() };
const rows = [];
for (const [name, raw] of Object.entries(graphs)) {
  const model = buildModel(parseTopology(raw));
  const reps = model.size > 200 ? 15 : 31;
  const own = time(() => layout(model), reps);
  rows.push({ graph: name, nodes: model.size, engine: 'web/layout.js', ms: own.ms, ...layoutQuality(own.result) });
  if (dagre) {
    const a = time(() => dagrePerGroup(model), reps);
    rows.push({ graph: name, nodes: model.size, engine: 'dagre per group', ms: a.ms, ...quality(a.result) });
    const b = time(() => dagreCompound(model), Math.min(reps, 9));
    rows.push({ graph: name, nodes: model.size, engine: 'dagre compound', ms: b.ms, ...quality(b.result) });
  }
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 1));
else {
  console.log('| graph | nodes | engine | crossings | box overlaps | label overlaps | size (px) | time (median) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.graph} | ${r.nodes} | ${r.engine} | ${r.crossings} | ${r.overlaps} | ${r.labelOverlaps} | ${r.width} × ${r.height} | ${r.ms.toFixed(1)} ms |`);
}
