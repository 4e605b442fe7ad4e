/*
 * chart.js - events per second (and errors per second) over the last
 * minute, on a canvas.  Buckets of 0.5 s in a ring; the colours come from
 * the theme's CSS variables so light and dark themes both read.
 */
import { fmtCompact, niceMax } from './fmt.js';

const BUCKET_MS = 500, BUCKETS = 120;

export class ThroughputChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.all = new Float64Array(BUCKETS);
    this.err = new Float64Array(BUCKETS);
    this.bucket = Math.floor(Date.now() / BUCKET_MS);
    this.dirty = true;
    this.seeded = false;
    this.readColors();
    new ResizeObserver(() => this.resize()).observe(canvas);
  }
  readColors() {
    const cs = getComputedStyle(this.canvas);
    const v = (n, d) => cs.getPropertyValue(n).trim() || d;
    this.colors = { line: v('--accent', '#38bdf8'), err: v('--failed', '#ef4444'), grid: v('--border', '#1e2733'), text: v('--faint', '#5b6676') };
    this.dirty = true;
    if (this.canvas.width > 1) this.draw(Date.now());   // a theme switch shows at once, not at the next tick
  }
  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    this.dirty = true;
  }
  roll(now) {
    const b = Math.floor(now / BUCKET_MS);
    if (b - this.bucket >= BUCKETS) { this.all.fill(0); this.err.fill(0); } else for (let i = this.bucket + 1; i <= b; i++) { this.all[i % BUCKETS] = 0; this.err[i % BUCKETS] = 0; }
    if (b !== this.bucket) this.dirty = true;
    this.bucket = b;
  }
  add(now, count, errors) {
    this.roll(now);
    this.all[this.bucket % BUCKETS] += count;
    this.err[this.bucket % BUCKETS] += errors;
  }
  /** Events/s over the last complete second. */
  rate(now) {
    this.roll(now);
    let sum = 0;
    for (let k = 1; k <= 1000 / BUCKET_MS; k++) sum += this.all[(this.bucket - k + BUCKETS) % BUCKETS];
    return sum;
  }
  /** Fill an empty chart with the server's per-second history (metrics.throughput, oldest first). */
  seed(thr) {
    if (this.seeded || !Array.isArray(thr)) return;
    this.seeded = true;
    const per = 1000 / BUCKET_MS;
    this.roll(Date.now());
    const cur = Math.floor(Date.now() / 1000) * 1000;
    for (let k = 0; k < thr.length; k++) {
      const v = typeof thr[thr.length - 1 - k] === 'number' ? thr[thr.length - 1 - k] : 0;
      const sec = cur - (k + 1) * 1000;
      for (let j = 0; j < per; j++) {
        const b = Math.floor((sec + j * BUCKET_MS) / BUCKET_MS);
        if (this.bucket - b >= BUCKETS - 1 || b > this.bucket) continue;
        this.all[b % BUCKETS] = v / per;
      }
    }
    this.dirty = true;
  }
  draw(now) {
    this.roll(now);
    if (!this.dirty) return;
    this.dirty = false;
    const { ctx, canvas, colors } = this;
    const dpr = window.devicePixelRatio || 1;
    const W = canvas.width / dpr, H = canvas.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const scale = 1000 / BUCKET_MS, pts = BUCKETS - 1;
    const A = new Float64Array(pts), E = new Float64Array(pts);
    let max = 0;
    for (let k = 0; k < pts; k++) {
      const b = (this.bucket - pts + k + BUCKETS) % BUCKETS;
      A[k] = this.all[b] * scale; E[k] = this.err[b] * scale;
      if (A[k] > max) max = A[k];
    }
    const nice = niceMax(max);
    const L = 46, R = 10, T = 10, B = 20, cw = W - L - R, ch = H - T - B;
    ctx.font = '10.5px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const yy = T + ch - (ch * i) / 4;
      ctx.strokeStyle = colors.grid; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(L, Math.round(yy) + 0.5); ctx.lineTo(W - R, Math.round(yy) + 0.5); ctx.stroke();
      ctx.fillStyle = colors.text; ctx.textAlign = 'right';
      ctx.fillText(fmtCompact((nice * i) / 4), L - 6, yy);
    }
    ctx.textAlign = 'center'; ctx.textBaseline = 'alphabetic';
    for (const [sec, lab] of [[60, '-60 s'], [30, '-30 s'], [0, 'now']]) {
      const xx = L + cw - (cw * sec) / 60;
      ctx.fillText(lab, Math.min(Math.max(xx, L + 14), W - R - 14), H - 5);
    }
    const X = (k) => L + (cw * k) / (pts - 1), Y = (v) => T + ch - (nice ? (ch * v) / nice : 0);
    ctx.globalAlpha = 0.18;
    ctx.beginPath(); ctx.moveTo(X(0), Y(0));
    for (let k = 0; k < pts; k++) ctx.lineTo(X(k), Y(A[k]));
    ctx.lineTo(X(pts - 1), Y(0)); ctx.closePath();
    ctx.fillStyle = colors.line; ctx.fill();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    for (let k = 0; k < pts; k++) (k ? ctx.lineTo(X(k), Y(A[k])) : ctx.moveTo(X(k), Y(A[k])));
    ctx.strokeStyle = colors.line; ctx.lineWidth = 1.6; ctx.stroke();
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    for (let k = 0; k < pts; k++) (k ? ctx.lineTo(X(k), Y(E[k])) : ctx.moveTo(X(k), Y(E[k])));
    ctx.strokeStyle = colors.err; ctx.lineWidth = 1.4; ctx.stroke();
    ctx.setLineDash([]);
  }
}
