/*
 * stats-chart.js - a node's durations over time from the run history
 * (GET /api/nodes/<graph>/<node>/stats, history.js parseNodeStats) as a
 * small SVG chart: p50 and p95 per bucket as lines (solid / dashed), the
 * slowest execution as dots, buckets with failures marked ✕, a tooltip per
 * bucket, and a one-line summary that says the same in words.  Buckets
 * without executions leave a gap rather than a line through zero.
 * statsGeometry is pure (tests/web/stats-chart.test.mjs).
 */
import { s, h } from './dom.js';
import { fmtDur, fmtInt, fmtClock, fmtDateTime } from './fmt.js';

/** A round upper bound for seconds (1, 2, 2.5, 5 × 10^k). */
export function niceCeil(v) {
  if (!(v > 0)) return 1e-3;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

/**
 * Where things go in a w × h chart: {yMax, x(ms), y(sec), segments:
 * {p50: [[{x,y}…]…], p95: …} (runs of buckets with data), dots (max per
 * bucket), fails ({x, n}), hits ({x, w, b}: one per bucket with data)}.
 */
export function statsGeometry(st, w, ht, pad = { l: 46, r: 8, t: 8, b: 18 }) {
  const bs = st.buckets;
  const vals = [];
  for (const b of bs) for (const k of ['p50', 'p95', 'max']) if (b[k] !== undefined) vals.push(b[k]);
  const yMax = niceCeil(vals.length ? Math.max(...vals) : 0);
  const t0 = Number.isFinite(st.sinceMs) ? st.sinceMs : (bs[0] ? bs[0].startMs : 0);
  const t1 = Number.isFinite(st.untilMs) ? st.untilMs : t0 + 1;
  const cw = Math.max(1, w - pad.l - pad.r), ch = Math.max(1, ht - pad.t - pad.b);
  const x = (ms) => pad.l + ((ms - t0) / Math.max(1, t1 - t0)) * cw;
  const y = (v) => pad.t + ch - (v / yMax) * ch;
  const bw = bs.length ? cw / bs.length : cw;
  const segments = { p50: [], p95: [] };
  const dots = [], fails = [], hits = [];
  let open = { p50: null, p95: null };
  bs.forEach((b, i) => {
    const cx = pad.l + (i + 0.5) * bw;
    for (const k of ['p50', 'p95']) {
      if (b[k] === undefined) { open[k] = null; continue; }
      if (!open[k]) { open[k] = []; segments[k].push(open[k]); }
      open[k].push({ x: cx, y: y(b[k]) });
    }
    if (b.max !== undefined) dots.push({ x: cx, y: y(b.max), b });
    if (b.failed) fails.push({ x: cx, n: b.failed, b });
    if (b.count) hits.push({ x: pad.l + i * bw, w: bw, b });
  });
  return { yMax, x, y, pad, cw, ch, t0, t1, segments, dots, fails, hits };
}

const line = (pts) => pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');

/** The summary in words: "37 executions · p50 … · p95 … · max … · 1 failed". */
export function statsSummary(st) {
  if (!st.count) return 'No executions of this node in the range.';
  const parts = [`${fmtInt(st.count)} execution${st.count === 1 ? '' : 's'}`, `p50 ${fmtDur(st.p50)}`, `p95 ${fmtDur(st.p95)}`, `max ${fmtDur(st.max)}`];
  parts.push(st.failed ? `✕ ${fmtInt(st.failed)} failed` : 'none failed');
  if (st.truncated) parts.push('(the newest 200,000 only)');
  return parts.join(' · ');
}

/** The chart element.  opts: utc, width, height. */
export function statsChart(st, opts = {}) {
  const w = opts.width || 380, ht = opts.height || 130;
  const g = statsGeometry(st, w, ht);
  const svg = s('svg', { class: 'sc-svg', viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: 'img',
    'aria-label': `Durations over time: ${statsSummary(st)}` });
  for (const v of [0, g.yMax / 2, g.yMax]) {
    const yy = g.y(v);
    svg.append(s('line', { class: 'sc-grid', x1: g.pad.l, x2: w - g.pad.r, y1: yy.toFixed(1), y2: yy.toFixed(1) }),
      s('text', { class: 'sc-axis', x: g.pad.l - 5, y: (yy + 3.5).toFixed(1), 'text-anchor': 'end' }, v ? fmtDur(v) : '0'));
  }
  const span = g.t1 - g.t0;
  const when = (ms) => (span > 86400000 ? fmtDateTime(ms, opts.utc).slice(5, 16) : fmtClock(ms, opts.utc, false));
  svg.append(s('text', { class: 'sc-axis', x: g.pad.l, y: ht - 4 }, when(g.t0)),
    s('text', { class: 'sc-axis', x: w - g.pad.r, y: ht - 4, 'text-anchor': 'end' }, when(g.t1)));
  for (const seg of g.segments.p95) svg.append(s('path', { class: 'sc-p95', d: line(seg) }));
  for (const seg of g.segments.p50) svg.append(s('path', { class: 'sc-p50', d: line(seg) }));
  for (const seg of [...g.segments.p50, ...g.segments.p95]) if (seg.length === 1) svg.append(s('circle', { class: 'sc-one', cx: seg[0].x, cy: seg[0].y, r: 2.2 }));
  for (const d of g.dots) svg.append(s('circle', { class: 'sc-max', cx: d.x.toFixed(1), cy: d.y.toFixed(1), r: 1.8 }));
  for (const f of g.fails) svg.append(s('text', { class: 'sc-fail', x: f.x.toFixed(1), y: g.pad.t + g.ch - 2, 'text-anchor': 'middle' }, '✕'));
  for (const hb of g.hits) {
    const b = hb.b;
    const tip = `${fmtDateTime(b.startMs, opts.utc)}\n${fmtInt(b.count)} execution${b.count === 1 ? '' : 's'}${b.failed ? `, ${b.failed} failed ✕` : ''}\n` +
      `p50 ${fmtDur(b.p50)} · p95 ${fmtDur(b.p95)} · max ${fmtDur(b.max)}`;
    svg.append(s('rect', { class: 'sc-hit', x: hb.x.toFixed(1), y: g.pad.t, width: Math.max(1, hb.w).toFixed(1), height: g.ch, 'data-count': b.count }, s('title', null, tip)));
  }
  return h('figure', { class: 'sc' }, svg,
    h('figcaption', { class: 'sc-cap' },
      h('span', { class: 'sc-key sc-key-p50' }, 'p50'), ' ', h('span', { class: 'sc-key sc-key-p95' }, 'p95'), ' ', h('span', { class: 'sc-key sc-key-max' }, '• max'), ' · ',
      statsSummary(st)));
}
