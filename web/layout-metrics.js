/*
 * layout-metrics.js - how readable a drawn graph is: edge crossings and box
 * overlaps, measured on the geometry itself (so any layout engine's output
 * can be compared on the same graph).  Used by the unit tests, the layout
 * benchmark (tests/browser/bench-layout.mjs) and, through
 * window.kgDashboard.layoutQuality(), by the browser test on the page's own
 * drawing.  Pure.
 */

/** Polyline points of an edge's segments (cubics sampled). */
export function edgePolyline(segs, samples = 10) {
  const pts = [];
  for (const s of segs) {
    if (!pts.length) pts.push([s.x0, s.y0]);
    if (!s.c) { pts.push([s.x1, s.y1]); continue; }
    for (let i = 1; i <= samples; i++) {
      const t = i / samples, u = 1 - t;
      pts.push([
        u * u * u * s.x0 + 3 * u * u * t * s.c[0] + 3 * u * t * t * s.c[2] + t * t * t * s.x1,
        u * u * u * s.y0 + 3 * u * u * t * s.c[1] + 3 * u * t * t * s.c[3] + t * t * t * s.y1,
      ]);
    }
  }
  return pts;
}

function segCross(a, b, c, d) {
  const o = (p, q, r) => (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
  const d1 = o(a, b, c), d2 = o(a, b, d), d3 = o(c, d, a), d4 = o(c, d, b);
  return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/**
 * Edge crossings: points where two edges' drawn lines cross.  Edges that
 * share an end node meet there by construction; crossings within `near` px
 * of a shared end are not counted.  edges: [{from, to, pts:[[x,y]...]}].
 */
export function countCrossings(edges, near = 3) {
  const boxes = edges.map((e) => {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of e.pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    return { x0, y0, x1, y1 };
  });
  let n = 0;
  for (let i = 0; i < edges.length; i++) {
    for (let j = i + 1; j < edges.length; j++) {
      const A = boxes[i], B = boxes[j];
      if (A.x1 < B.x0 || B.x1 < A.x0 || A.y1 < B.y0 || B.y1 < A.y0) continue;
      const a = edges[i], b = edges[j];
      const shared = [];
      for (const k of ['from', 'to']) for (const l of ['from', 'to']) if (a[k] === b[l]) shared.push(k === 'from' ? a.pts[0] : a.pts[a.pts.length - 1]);
      for (let p = 0; p + 1 < a.pts.length; p++) {
        for (let q = 0; q + 1 < b.pts.length; q++) {
          if (!segCross(a.pts[p], a.pts[p + 1], b.pts[q], b.pts[q + 1])) continue;
          const m = a.pts[p];
          if (shared.some((s) => Math.hypot(s[0] - m[0], s[1] - m[1]) < near + 20)) continue;
          n++;
        }
      }
    }
  }
  return n;
}

/**
 * Pairs of boxes that overlap (by more than `eps` px both ways).  A group's
 * box contains its own descendants by design: pass isAncestor(a, b) to skip
 * those pairs.  boxes: [{key, x, y, w, h}].
 */
export function countOverlaps(boxes, isAncestor = () => false, eps = 0.5) {
  const list = boxes.slice().sort((a, b) => a.x - b.x);
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    for (let j = i + 1; j < list.length; j++) {
      const b = list[j];
      if (b.x >= a.x + a.w - eps) break;
      const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (ox > eps && oy > eps && !isAncestor(a.key, b.key) && !isAncestor(b.key, a.key)) n++;
    }
  }
  return n;
}

/** Crossings and overlaps of a layout.js result. */
export function layoutQuality(lay) {
  const edges = lay.edges.map((e) => ({ from: e.from, to: e.to, pts: edgePolyline(e.segs) }));
  const boxes = [];
  for (const [key, b] of lay.boxes) boxes.push({ key, x: b.x, y: b.y, w: b.w, h: b.h });
  const anc = (a, b) => b.startsWith(a + '/');
  let labelOverlaps = 0;
  const labels = lay.edges.filter((e) => e.label).map((e, i) => ({ key: 'label' + i, x: e.label.x - e.label.w / 2, y: e.label.y - 8, w: e.label.w, h: 16 }));
  labelOverlaps = countOverlaps(labels) + countOverlaps(labels.concat(boxes.filter((b) => !lay.boxes.get(b.key).group || lay.boxes.get(b.key).collapsed))) - countOverlaps(boxes.filter((b) => !lay.boxes.get(b.key).group || lay.boxes.get(b.key).collapsed)) - countOverlaps(labels);
  return {
    crossings: countCrossings(edges),
    overlaps: countOverlaps(boxes, anc),
    labelOverlaps,
    width: Math.round(lay.bbox.w),
    height: Math.round(lay.bbox.h),
  };
}
