/*
 * layout.js - layered (Sugiyama-style) layout of a nested workflow graph.
 *
 * Why our own: KayGraph edges only join siblings (an edge into a graph node
 * enters that graph's start node), so a nested topology is a tree of small
 * graphs.  Each group is laid out on its own, innermost first, and then
 * placed in its parent as one box of that size: no edge crosses a group's
 * border, so no crossing can come from the nesting, and a collapsed group is
 * just a smaller box.  Per level: back edges found by a depth-first search
 * from the start node (they close loops and are routed around the level),
 * longest-path layering, dummy vertices on long edges, barycentre sweeps
 * plus adjacent transpositions that keep the order with the fewest
 * crossings (counted exactly, bilayer by bilayer), then vertical placement
 * pulled towards neighbours with no overlap.  Layer gaps widen to fit the
 * edge labels, so no label is cut off.  BENCHMARKS.md ("Web UI layout")
 * compares the result with dagre on the same graphs.
 *
 * Pure: layout(model, collapsed, opts) returns boxes and edge routes in
 * graph coordinates; tests/web/layout.test.mjs checks it.
 */

export const DEFAULTS = {
  nodeH: 58,            // a node box's height
  nodeMinW: 150,
  nodeMaxW: 360,
  groupPad: 16,         // inside an expanded group, around its content
  groupHeader: 40,      // title row of an expanded group
  batchHeader: 64,      // a batch graph's title row also holds its item strip
  gapX: 64,             // minimum gap between layers
  gapY: 22,             // minimum gap between boxes in a layer
  labelPad: 14,         // gap space either side of an edge label
  labelH: 17,
  dummyH: 10,
  sweeps: 24,
  // Text width estimate (px) when no measure function is given.
  measure: (text, kind) => text.length * (kind === 'title' ? 7.9 : kind === 'mono' ? 6.7 : 6.4),
};

/** Size of a leaf box (or a collapsed group) from its texts. */
export function leafSize(node, o, collapsedGroup) {
  const idW = o.measure(node.id, 'title') + 40;
  const typeW = o.measure(node.type || '', 'mono') + 30;
  const w = Math.min(o.nodeMaxW, Math.max(o.nodeMinW, idW, typeW, collapsedGroup ? 190 : 0));
  return { w: Math.ceil(w), h: o.nodeH + (collapsedGroup ? 8 : 0) };
}

/**
 * Lay out `model` (model.js buildModel) with the groups in `collapsed`
 * shown as single boxes.  Returns
 *   {boxes: Map(path -> {x, y, w, h, group, collapsed, depth, contentX, contentY}),
 *    edges: [{key, from, to, action, back, self, segs:[{x0,y0,x1,y1,c}], label}],
 *    bbox: {x, y, w, h}, crossings}
 * where c is null for a straight segment or [c1x, c1y, c2x, c2y] for a cubic,
 * and label is {x, y, w, text} (centre) or null ("default" actions carry none).
 */
export function layout(model, collapsed = new Set(), opts = {}) {
  const o = Object.assign({}, DEFAULTS, opts);
  const boxes = new Map();
  const edges = [];
  let crossings = 0;

  // 1. Sizes and relative positions, innermost groups first.
  const sized = new Map();   // path -> {w, h, inner}
  const sizeOf = (n) => {
    if (!n.group || collapsed.has(n.path)) {
      const s = leafSize(n, o, n.group);
      sized.set(n.path, s);
      return s;
    }
    const inner = layoutGroup(n);
    const header = n.batch ? o.batchHeader : o.groupHeader;
    const titleW = o.measure(n.id, 'title') + o.measure(n.type || '', 'mono') + 110;
    const w = Math.ceil(Math.max(inner.w + 2 * o.groupPad, titleW, 220));
    const h = Math.ceil(header + inner.h + o.groupPad);
    const s = { w, h, inner, header };
    sized.set(n.path, s);
    return s;
  };
  const layoutGroup = (g) => {
    const kids = g.children;
    const idx = new Map(kids.map((c, i) => [c.path, i]));
    const W = [], H = [];
    for (const c of kids) { const s = sizeOf(c); W.push(s.w); H.push(s.h); }
    const E = [];
    for (const e of g.edges) {
      const u = idx.get(e.from), v = idx.get(e.to);
      if (u === undefined || v === undefined) continue;
      const text = e.action === 'default' ? '' : e.action;
      E.push({ u, v, e, text, labelW: text ? Math.ceil(o.measure(text, 'mono') + 16) : 0 });
    }
    const start = g.start && idx.has(g.start) ? idx.get(g.start) : 0;
    const lv = layoutLevel(kids.length, W, H, E, start, o);
    crossings += lv.crossings;
    return { w: lv.w, h: lv.h, x: lv.x, y: lv.y, routes: lv.routes, kids };
  };

  // 2. Absolute coordinates, outermost first.
  const place = (g, ox, oy, inner) => {
    inner.kids.forEach((c, i) => {
      const s = sized.get(c.path);
      const x = ox + inner.x[i], y = oy + inner.y[i];
      const isOpen = c.group && !collapsed.has(c.path);
      const box = { x, y, w: s.w, h: s.h, group: c.group, collapsed: c.group && !isOpen, depth: c.depth };
      boxes.set(c.path, box);
      if (isOpen) {
        box.contentX = x + (s.w - s.inner.w) / 2;
        box.contentY = y + s.header;
        box.header = s.header;
        place(c, box.contentX, box.contentY, s.inner);
      }
    });
    for (const r of inner.routes) {
      const segs = r.segs.map((s) => ({
        x0: s.x0 + ox, y0: s.y0 + oy, x1: s.x1 + ox, y1: s.y1 + oy,
        c: s.c ? [s.c[0] + ox, s.c[1] + oy, s.c[2] + ox, s.c[3] + oy] : null,
      }));
      edges.push({
        key: r.e.key, from: r.e.from, to: r.e.to, action: r.e.action, back: r.back, self: r.self, segs,
        label: r.label ? { x: r.label.x + ox, y: r.label.y + oy, w: r.label.w, text: r.label.text } : null,
      });
    }
  };
  const top = layoutGroup(model.root);
  place(model.root, 0, 0, top);
  return { boxes, edges, bbox: { x: 0, y: 0, w: top.w, h: top.h }, crossings };
}

// ---------------------------------------------------------------------------
// One level: N boxes of sizes W[i] x H[i], edges E[k] = {u, v, labelW, text}.
// Returns top-left x[i], y[i] (content starts at 0,0), w, h, routes, crossings.
// ---------------------------------------------------------------------------
export function layoutLevel(N, W, H, E, start, o) {
  if (!N) return { x: [], y: [], w: 0, h: 0, routes: [], crossings: 0 };
  // -- back edges (DFS from the start node, then from any unvisited node)
  const outK = Array.from({ length: N }, () => []);
  E.forEach((e, k) => { if (e.u !== e.v) outK[e.u].push(k); });
  const back = new Uint8Array(E.length);
  const color = new Uint8Array(N);
  const order = [start];
  for (let i = 0; i < N; i++) if (i !== start) order.push(i);
  for (const root of order) {
    if (color[root]) continue;
    color[root] = 1;
    const stack = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const u = top[0];
      if (top[1] < outK[u].length) {
        const k = outK[u][top[1]++];
        const v = E[k].v;
        if (color[v] === 1) back[k] = 1;
        else if (color[v] === 0) { color[v] = 1; stack.push([v, 0]); }
      } else {
        color[u] = 2;
        stack.pop();
      }
    }
  }
  // Back edges are reversed for layering and ordering (the standard
  // Sugiyama step), so a loop is laid out beside the nodes it spans and
  // drawn right to left through its own dummy vertices.
  const fwd = [];
  const src = (k) => (back[k] ? E[k].v : E[k].u), dst = (k) => (back[k] ? E[k].u : E[k].v);
  E.forEach((e, k) => { if (e.u !== e.v) fwd.push(k); });

  // -- layers: longest path over forward edges
  const layer = new Int32Array(N);
  const indeg = new Int32Array(N);
  const succ = Array.from({ length: N }, () => []);
  for (const k of fwd) { indeg[dst(k)]++; succ[src(k)].push(dst(k)); }
  const queue = [];
  for (let i = 0; i < N; i++) if (!indeg[i]) queue.push(i);
  for (let qi = 0; qi < queue.length; qi++) {
    const u = queue[qi];
    for (const v of succ[u]) {
      if (layer[u] + 1 > layer[v]) layer[v] = layer[u] + 1;
      if (--indeg[v] === 0) queue.push(v);
    }
  }
  // Sources other than the start sit just before their nearest successor.
  const hasIn = new Uint8Array(N);
  for (const k of fwd) hasIn[dst(k)] = 1;
  for (let i = 0; i < N; i++) {
    if (hasIn[i] || i === start || !succ[i].length) continue;
    let m = Infinity;
    for (const v of succ[i]) m = Math.min(m, layer[v]);
    layer[i] = Math.max(0, m - 1);
  }

  // -- vertices: boxes 0..N-1, dummies after; chains per forward edge
  const vL = Array.from(layer), vW = W.slice(), vH = H.slice();
  const up = Array.from({ length: N }, () => []);
  const down = Array.from({ length: N }, () => []);
  const chain = new Map();
  for (const k of fwd) {
    const u = src(k), v = dst(k);
    const c = [u];
    for (let l = layer[u] + 1; l < layer[v]; l++) {
      const d = vL.length;
      vL.push(l); vW.push(0); vH.push(o.dummyH); up.push([]); down.push([]);
      c.push(d);
    }
    c.push(v);
    for (let i = 0; i + 1 < c.length; i++) { down[c[i]].push(c[i + 1]); up[c[i + 1]].push(c[i]); }
    chain.set(k, c);
  }
  const V = vL.length;
  let L = 0;
  for (let i = 0; i < V; i++) L = Math.max(L, vL[i] + 1);
  const layers = Array.from({ length: L }, () => []);

  // Initial order: depth-first from the start node keeps chains together.
  const seen = new Uint8Array(V);
  const dfsOrder = [];
  const visit = (r) => {
    const st = [r];
    while (st.length) {
      const u = st.pop();
      if (seen[u]) continue;
      seen[u] = 1;
      dfsOrder.push(u);
      for (let i = down[u].length - 1; i >= 0; i--) if (!seen[down[u][i]]) st.push(down[u][i]);
    }
  };
  visit(start);
  for (let i = 0; i < V; i++) if (!seen[i] && !up[i].length) visit(i);
  for (let i = 0; i < V; i++) if (!seen[i]) visit(i);
  for (const v of dfsOrder) layers[vL[v]].push(v);

  // -- ordering
  const pos = new Float64Array(V);
  const setPos = () => { for (const Lr of layers) for (let i = 0; i < Lr.length; i++) pos[Lr[i]] = i; };
  setPos();
  const total = () => {
    let c = 0;
    for (let l = 0; l + 1 < L; l++) c += bilayerCrossings(layers[l], layers[l + 1], down, pos);
    return c;
  };
  let bestC = total();
  let best = layers.map((a) => a.slice());
  let stale = 0;
  for (let it = 0; it < o.sweeps && bestC > 0 && stale < 6; it++) {
    const downward = it % 2 === 0;
    for (let s = 1; s < L; s++) {
      const l = downward ? s : L - 1 - s;
      const nb = downward ? up : down;
      const Lr = layers[l];
      const bc = new Float64Array(V);
      for (const v of Lr) {
        const ns = nb[v];
        if (!ns.length) { bc[v] = pos[v]; continue; }
        let sum = 0;
        for (const w of ns) sum += pos[w];
        bc[v] = sum / ns.length;
      }
      Lr.sort((a, b) => bc[a] - bc[b] || pos[a] - pos[b]);
      for (let i = 0; i < Lr.length; i++) pos[Lr[i]] = i;
    }
    transpose(layers, up, down, pos);
    const c = total();
    if (c < bestC) { bestC = c; best = layers.map((a) => a.slice()); stale = 0; } else stale++;
  }
  for (let l = 0; l < L; l++) layers[l] = best[l];
  setPos();

  // -- x: layer columns; gaps wide enough for the labels that sit in them
  const layerW = new Float64Array(L);
  for (let v = 0; v < V; v++) layerW[vL[v]] = Math.max(layerW[vL[v]], vW[v]);
  const gap = new Float64Array(L).fill(o.gapX);
  for (const k of fwd) {
    const e = E[k];
    // A forward edge's label sits in the gap after its source, a back edge's
    // in the gap before its source (it leaves leftwards).
    const g = back[k] ? layer[e.u] - 1 : layer[e.u];
    if (e.labelW && g >= 0) gap[g] = Math.max(gap[g], e.labelW + 2 * o.labelPad);
  }
  const colX = new Float64Array(L);
  for (let l = 1; l < L; l++) colX[l] = colX[l - 1] + layerW[l - 1] + gap[l - 1];

  // -- y: stacked, then pulled towards neighbours without overlapping.
  // A box with a self loop keeps room above it for the loop and its label.
  const pad = new Float64Array(V);
  const loops = new Int32Array(V);
  E.forEach((e) => { if (e.u === e.v) pad[e.u] = 44 + o.labelH / 2 + (loops[e.u]++) * (o.labelH + 4); });
  const y = new Float64Array(V);   // centre
  for (const Lr of layers) {
    let acc = 0;
    for (const v of Lr) { y[v] = acc + pad[v] + vH[v] / 2; acc += pad[v] + vH[v] + o.gapY; }
    const off = (acc - o.gapY) / 2;
    for (const v of Lr) y[v] -= off;
  }
  for (let it = 0; it < 10; it++) {
    const fwdDir = it % 2 === 0;
    for (let s = 0; s < L; s++) {
      const Lr = layers[fwdDir ? s : L - 1 - s];
      if (!Lr.length) continue;
      const want = Lr.map((v) => {
        const ns = it < 6 ? (fwdDir ? up[v] : down[v]) : up[v].concat(down[v]);
        const all = ns.length ? ns : up[v].concat(down[v]);
        if (!all.length) return y[v];
        let sum = 0;
        for (const w of all) sum += y[w];
        return sum / all.length;
      });
      // Place in order, each at its wish or just below the previous box,
      // then shift the layer so the displacement averages out.
      const ny = new Float64Array(Lr.length);
      let prevBottom = -Infinity, shift = 0;
      for (let i = 0; i < Lr.length; i++) {
        const v = Lr[i];
        const minC = prevBottom + o.gapY + pad[v] + vH[v] / 2;
        ny[i] = Math.max(want[i], minC);
        prevBottom = ny[i] + vH[v] / 2;
        shift += ny[i] - want[i];
      }
      shift /= Lr.length;
      for (let i = 0; i < Lr.length; i++) y[Lr[i]] = ny[i] - shift;
    }
  }
  let minY = Infinity;
  for (let v = 0; v < V; v++) minY = Math.min(minY, y[v] - vH[v] / 2 - pad[v]);

  // -- routes
  const bx = (v) => colX[vL[v]] + (layerW[vL[v]] - vW[v]) / 2;   // box left
  const routes = [];
  const pairN = new Map(), pairI = new Map();
  for (const k of fwd) { const p = src(k) + ',' + dst(k); pairN.set(p, (pairN.get(p) || 0) + 1); }
  const labels = [];   // edge labels, de-overlapped per gap below
  const colRight = (v) => colX[vL[v]] + layerW[vL[v]];
  for (const k of fwd) {
    const e = E[k], rev = !!back[k];
    // Walk the chain from the edge's real source: a back edge runs right to
    // left, out of its source's left side into its target's right side.
    const c = rev ? chain.get(k).slice().reverse() : chain.get(k);
    const p = src(k) + ',' + dst(k), n = pairN.get(p), i = pairI.get(p) || 0;
    pairI.set(p, i + 1);
    const off = n > 1 ? (i - (n - 1) / 2) * 12 : 0;
    const segs = [];
    const line = (x0, y0, x1, y1) => { if (Math.abs(x1 - x0) > 0.05 || Math.abs(y1 - y0) > 0.05) segs.push({ x0, y0, x1, y1, c: null }); };
    const curve = (x0, y0, x1, y1) => { const m = (x0 + x1) / 2; segs.push({ x0, y0, x1, y1, c: [m, y0, m, y1] }); };
    const near = (v) => (rev ? colX[vL[v]] : colRight(v));     // column side facing the way out
    const far = (v) => (rev ? colRight(v) : colX[vL[v]]);      // column side facing the way in
    const boxOut = (v) => (rev ? bx(v) : bx(v) + W[v]);
    const boxIn = (v) => (rev ? bx(v) + W[v] : bx(v));
    let cy = y[e.u] + off;
    line(boxOut(e.u), cy, near(e.u), cy);
    let cx = near(e.u);
    let label = null;
    for (let j = 1; j < c.length; j++) {
      const w = c[j], last = j === c.length - 1;
      const ty = last ? y[w] + off : y[w];
      const tx = far(w);
      if (j === 1 && e.text) label = { x: (cx + tx) / 2, y: (cy + ty) / 2, w: e.labelW, text: e.text, gap: rev ? vL[e.u] - 1 : vL[e.u] };
      curve(cx, cy, tx, ty);
      cx = tx; cy = ty;
      if (last) line(cx, cy, boxIn(w), cy);
      else { line(cx, cy, near(w), cy); cx = near(w); }
    }
    if (label) labels.push(label);
    routes.push({ e: e.e, back: rev, self: false, segs, label });
  }
  // Labels in the same gap must not overlap: sort by y and push apart.
  const byGap = new Map();
  for (const lb of labels) { if (!byGap.has(lb.gap)) byGap.set(lb.gap, []); byGap.get(lb.gap).push(lb); }
  for (const list of byGap.values()) {
    list.sort((a, b) => a.y - b.y);
    for (let i = 1; i < list.length; i++) {
      const minYc = list[i - 1].y + o.labelH + 3;
      if (list[i].y < minYc) list[i].y = minYc;
    }
  }

  let maxY = -Infinity;
  for (let v = 0; v < V; v++) maxY = Math.max(maxY, y[v] + vH[v] / 2);
  for (const lb of labels) maxY = Math.max(maxY, lb.y + o.labelH / 2);
  for (const lb of labels) minY = Math.min(minY, lb.y - o.labelH / 2);
  let extraTop = minY;
  const extraBottom = maxY;
  // Self loops: a small arc over the box.
  const loopN = new Int32Array(V);
  E.forEach((e) => {
    if (e.u !== e.v) return;
    const v = e.u, left = bx(v), topY = y[v] - H[v] / 2;
    const k = loopN[v]++, rise = 40 + k * (o.labelH + 4);
    const xa = left + W[v] - 56 - k * 6, xb = left + W[v] - 20 + k * 6;
    const segs = [{ x0: xa, y0: topY, x1: xb, y1: topY, c: [xa - 6, topY - rise * 4 / 3, xb + 6, topY - rise * 4 / 3] }];
    const label = e.text ? { x: (xa + xb) / 2, y: topY - rise, w: e.labelW, text: e.text } : null;
    extraTop = Math.min(extraTop, topY - rise - o.labelH / 2 - 2);
    routes.push({ e: e.e, back: false, self: true, segs, label });
  });

  // -- shift everything so the content starts at (0, 0)
  const dx = 0, dy = -extraTop;
  const xs = [], ys = [];
  for (let i = 0; i < N; i++) { xs.push(bx(i) + dx); ys.push(y[i] - H[i] / 2 + dy); }
  for (const r of routes) {
    for (const s of r.segs) {
      s.x0 += dx; s.x1 += dx; s.y0 += dy; s.y1 += dy;
      if (s.c) { s.c[0] += dx; s.c[2] += dx; s.c[1] += dy; s.c[3] += dy; }
    }
    if (r.label) { r.label.x += dx; r.label.y += dy; delete r.label.gap; }
  }
  const width = colX[L - 1] + layerW[L - 1] + dx;
  return { x: xs, y: ys, w: Math.ceil(width), h: Math.ceil(extraBottom - extraTop), routes, crossings: bestC };
}

/** Crossings between two adjacent layers (accumulator tree, O(E log V)). */
export function bilayerCrossings(top, bottom, down, pos) {
  if (!top.length || !bottom.length) return 0;
  const targets = [];
  const sorted = top.slice().sort((a, b) => pos[a] - pos[b]);
  for (const u of sorted) {
    const ts = down[u].map((w) => pos[w]).sort((a, b) => a - b);
    for (const t of ts) targets.push(t);
  }
  let first = 1;
  while (first < bottom.length) first <<= 1;
  const tree = new Int32Array(2 * first);
  let c = 0;
  for (const t of targets) {
    let i = t + first;
    tree[i]++;
    while (i > 1) {
      if (!(i & 1)) c += tree[i + 1];
      i >>= 1;
      tree[i]++;
    }
  }
  return c;
}

/** Swap neighbours in a layer while that lowers the crossings with both adjacent layers. */
function transpose(layers, up, down, pos) {
  const cross = (a, b, nb) => {
    // Edges of a before b that cross edges of b: pairs (pa > pb).
    let c = 0;
    for (const x of nb[a]) for (const y of nb[b]) if (pos[x] > pos[y]) c++;
    return c;
  };
  let improved = true, rounds = 0;
  while (improved && rounds++ < 4) {
    improved = false;
    for (const Lr of layers) {
      for (let i = 0; i + 1 < Lr.length; i++) {
        const a = Lr[i], b = Lr[i + 1];
        const now = cross(a, b, up) + cross(a, b, down);
        const swapped = cross(b, a, up) + cross(b, a, down);
        if (swapped < now) {
          Lr[i] = b; Lr[i + 1] = a;
          pos[a] = i + 1; pos[b] = i;
          improved = true;
        }
      }
    }
  }
}

/** SVG path data of a route's segments. */
export function routePath(segs) {
  if (!segs.length) return '';
  const f = (v) => Math.round(v * 10) / 10;
  let d = `M${f(segs[0].x0)} ${f(segs[0].y0)}`;
  for (const s of segs) {
    d += s.c ? ` C${f(s.c[0])} ${f(s.c[1])} ${f(s.c[2])} ${f(s.c[3])} ${f(s.x1)} ${f(s.y1)}` : ` L${f(s.x1)} ${f(s.y1)}`;
  }
  return d;
}
