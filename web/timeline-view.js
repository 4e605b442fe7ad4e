/*
 * timeline-view.js - the Gantt timeline of a stored run (timeline.js lays
 * it out): one row per node, one bar per attempt of each execution.
 *
 * States read without colour: ✓ completed (green), ✕ failed (red, hatched,
 * thick border, "✕" after the bar), ↻ an attempt that failed and was retried
 * (orange, dashed), ▶ still running (blue, open right end).  Hover or focus a
 * bar for its details (node, attempt, start, duration, action, error).
 * Keyboard: the bars are one tab stop; ←/→ the previous/next bar in time,
 * ↑/↓ the nearest bar in the row above/below, Home/End, Enter selects.
 * The node labels stay at the left and the time axis at the top while the
 * body scrolls; zoom widens the time axis.  Every bar carries
 * data-execution-id, data-attempt, data-status and data-node-path.
 */
import { h, s, clear } from './dom.js';
import { fmtDur, fmtClock, zoneLabel } from './fmt.js';
import { timeScale, fmtOffset } from './timeline.js';
import { pathUnderRoot } from './history.js';

export const BAR_GLYPH = { completed: '✓', failed: '✕', retried: '↻', running: '▶' };
const STATUS_WORDS = { completed: 'completed', failed: 'failed', retried: 'failed, then retried', running: 'running' };
const LANE_H = 16, LANE_GAP = 3, ROW_PAD = 4, AXIS_H = 26;

/** Height of a row with n lanes. */
export const rowHeight = (lanes) => ROW_PAD * 2 + lanes * LANE_H + (lanes - 1) * LANE_GAP;

/** One bar in words: for its tooltip, its aria-label and the tests. */
export function barText(b, t0) {
  const att = b.attemptTo > b.attempt ? `attempts ${b.attempt}–${b.attemptTo} of ${b.attempts} (retry times unknown)`
    : b.attempts > 1 ? `attempt ${b.attempt} of ${b.attempts}` : '';
  return {
    node: b.path, attempt: att, item: b.item !== undefined ? `item ${b.item}` : '',
    status: `${BAR_GLYPH[b.status]} ${STATUS_WORDS[b.status]}`,
    start: fmtOffset(b.start - t0, 1, Math.max(1, b.start - t0)),
    duration: fmtDur((b.end - b.start) / 1000) + (b.open ? ' so far' : ''),
    action: b.action, error: b.error,
  };
}

export class TimelineView {
  /** wrap: the element to draw in; cb: {select(bar), utc(), rootId: () => the run's id} */
  constructor(wrap, cb) {
    this.wrap = wrap;
    this.cb = cb;
    this.zoom = 1;
    this.tl = null;
    this.byKey = new Map();
    this.focusKey = '';
    this.pick = null;
    this.labelW = 210;
    this.tip = h('div', { class: 'tl-tip', role: 'tooltip', id: 'tl-tip', hidden: true });
    this.body = h('div', { class: 'tl-body' });
    wrap.append(this.body, this.tip);
    this.body.addEventListener('pointerover', (e) => { const g = e.target.closest('.tl-bar'); if (g) this.showTip(g.kgBar, g); });
    this.body.addEventListener('pointerout', (e) => { const g = e.target.closest('.tl-bar'); if (g && document.activeElement !== g) this.hideTip(); });
    this.body.addEventListener('click', (e) => { const g = e.target.closest('.tl-bar'); if (g) { this.focus(g.kgBar.key, false); this.cb.select(g.kgBar); } });
    this.body.addEventListener('focusin', (e) => { const g = e.target.closest('.tl-bar'); if (g) this.showTip(g.kgBar, g); });
    this.body.addEventListener('focusout', () => this.hideTip());
    this.body.addEventListener('keydown', (e) => this.onKey(e));
    // The tooltip is fixed to the window: it follows its bar when anything scrolls.
    const follow = () => { if (!this.tip.hidden && this.tipFor && this.tipFor.isConnected) this.showTip(this.tipFor.kgBar, this.tipFor); };
    this.body.addEventListener('scroll', follow, { passive: true });
    window.addEventListener('scroll', follow, { passive: true });
    new ResizeObserver(() => { if (this.tl && Math.abs(this.width() - this.drawnW) > 4) this.draw(); }).observe(wrap);
  }

  /** Draw a layout (timeline.js buildTimeline). */
  render(tl) {
    this.tl = tl;
    this.draw();
  }
  setZoom(z) {
    const keep = this.body.scrollLeft / Math.max(1, this.body.scrollWidth);
    this.zoom = Math.max(1, Math.min(64, z));
    this.draw();
    this.body.scrollLeft = keep * this.body.scrollWidth;
  }
  width() { return this.wrap.clientWidth || 800; }

  draw() {
    const tl = this.tl;
    this.hideTip();
    clear(this.body);
    this.byKey.clear();
    if (!tl) return;
    if (!tl.bars.length) { this.body.append(h('p', { class: 'muted tl-empty' }, 'No node executions with a start time in this run.')); return; }
    const avail = this.width();
    this.drawnW = avail;
    this.labelW = avail < 700 ? 130 : 210;
    const trackW = Math.max(300, (avail - this.labelW - 2) * this.zoom);
    const sc = timeScale(tl.t0, tl.t1, 8, trackW - 28, Math.max(2, Math.floor(trackW / 95)));
    let y = 0;
    const rowsY = tl.rows.map((r) => { const top = y; r.h = rowHeight(r.lanes); y += r.h; return top; });
    const H = y;
    const axis = s('svg', { class: 'tl-axis', width: trackW, height: AXIS_H, 'aria-hidden': 'true' });
    for (const t of sc.ticks) {
      axis.append(s('line', { class: 'tl-tick', x1: t.x.toFixed(1), x2: t.x.toFixed(1), y1: AXIS_H - 6, y2: AXIS_H }),
        s('text', { class: 'tl-ticklabel', x: t.x.toFixed(1), y: AXIS_H - 10, 'text-anchor': t.x < 20 ? 'start' : 'middle' }, t.label));
    }
    const svg = s('svg', { class: 'tl-svg', width: trackW, height: H, role: 'group',
      'aria-label': `Timeline of ${tl.bars.length} bars in ${tl.rows.length} rows: arrow keys move between bars, Enter shows one` });
    svg.append(s('defs', null,
      s('pattern', { id: 'tl-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
        s('rect', { class: 'tl-hatch-line', width: 2.2, height: 6 }))));
    const grid = s('g', { class: 'tl-grid' });
    tl.rows.forEach((r, i) => { if (i % 2) grid.append(s('rect', { class: 'tl-band', x: 0, y: rowsY[i], width: trackW, height: r.h })); });
    for (const t of sc.ticks) grid.append(s('line', { class: 'tl-gridline', x1: t.x.toFixed(1), x2: t.x.toFixed(1), y1: 0, y2: H }));
    svg.append(grid);
    const bars = s('g', { class: 'tl-bars' });
    const rootId = this.cb.rootId ? this.cb.rootId() : '';
    for (const b of tl.bars) bars.append(this.drawBar(b, sc, rowsY[b.row.index], rootId));
    svg.append(bars);
    const labels = h('div', { class: 'tl-labels' });
    labels.style.width = this.labelW + 'px';
    tl.rows.forEach((r) => {
      const d = h('div', { class: 'tl-label', title: pathUnderRoot(r.path) || r.path, 'data-node-path': r.path }, r.label);
      d.style.height = r.h + 'px';
      d.style.paddingLeft = (6 + Math.min(r.depth, 6) * 10) + 'px';
      labels.append(d);
    });
    const corner = h('div', { class: 'tl-corner' }, 'node');
    corner.style.width = this.labelW + 'px';
    const inner = h('div', { class: 'tl-inner' },
      h('div', { class: 'tl-axisrow' }, corner, axis),
      h('div', { class: 'tl-rowsarea' }, labels, svg));
    inner.style.width = (this.labelW + trackW) + 'px';
    this.body.append(inner);
    if (!this.byKey.has(this.focusKey)) this.focusKey = tl.bars[0].key;
    this.byKey.get(this.focusKey).el.setAttribute('tabindex', '0');
    if (this.pick) for (const v of this.byKey.values()) if (this.pick(v.b)) v.el.classList.add('selected');
  }

  drawBar(b, sc, rowTop, rootId) {
    const x0 = sc.x(b.start), x1 = Math.max(sc.x(b.end), x0 + 3);
    const y = rowTop + ROW_PAD + b.lane * (LANE_H + LANE_GAP);
    const w = x1 - x0;
    const t = barText(b, this.tl.t0);
    const label = [t.node, t.item, t.attempt, t.status, `started ${t.start}`, `took ${t.duration}`, t.action ? `action ${t.action}` : '',
      t.error ? `error: ${t.error}` : '', b.runId && b.runId !== rootId ? 'in a nested run' : ''].filter(Boolean).join(', ');
    const g = s('g', {
      class: 'tl-bar', 'data-status': b.status, 'data-execution-id': b.execId, 'data-attempt': b.attempt, 'data-attempts': b.attempts,
      'data-node-path': b.path, 'data-item': b.item !== undefined ? b.item : null, 'data-run-id': b.runId || null,
      tabindex: '-1', role: 'button', 'aria-label': label, 'aria-describedby': 'tl-tip',
    },
    s('rect', { class: 'tl-rect', x: x0.toFixed(1), y, width: w.toFixed(1), height: LANE_H, rx: 2.5 }));
    if (b.status === 'failed' || b.status === 'retried') g.append(s('rect', { class: 'tl-pattern', x: x0.toFixed(1), y, width: w.toFixed(1), height: LANE_H, rx: 2.5, fill: 'url(#tl-hatch)' }));
    if (b.status !== 'completed') g.append(s('text', { class: 'tl-glyph', x: (x1 + 3).toFixed(1), y: y + LANE_H - 4 }, BAR_GLYPH[b.status]));
    if (w > 56) g.append(s('text', { class: 'tl-dur', x: (x0 + 4).toFixed(1), y: y + LANE_H - 4.5 }, (b.status === 'completed' ? '' : BAR_GLYPH[b.status] + ' ') + fmtDur((b.end - b.start) / 1000)));
    g.kgBar = b;
    this.byKey.set(b.key, { el: g, b });
    return g;
  }

  showTip(b, el) {
    if (!b) return;
    this.tipFor = el;
    const t = barText(b, this.tl.t0);
    const utc = this.cb.utc();
    clear(this.tip);
    const rows = [['status', t.status], t.item ? ['item', t.item] : null, t.attempt ? ['attempt', t.attempt] : null,
      ['start', `${fmtClock(b.start, utc)} ${zoneLabel(utc, b.start)} (${t.start})`], ['duration', t.duration],
      t.action ? ['action', t.action] : null, t.error ? ['error', t.error] : null,
      b.runId && b.runId !== (this.cb.rootId ? this.cb.rootId() : '') ? ['run', b.runId] : null].filter(Boolean);
    const dl = h('dl', null);
    for (const [k, v] of rows) dl.append(h('dt', null, k), h('dd', k === 'error' ? { class: 'bad' } : null, v));
    this.tip.append(h('div', { class: 'tl-tip-node' }, pathUnderRoot(b.path) || b.path), dl);
    this.tip.setAttribute('data-status', b.status);
    this.tip.hidden = false;
    // Fixed to the window: the panel around the timeline clips what overflows it.
    const r = el.getBoundingClientRect();
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    const W = window.innerWidth, H = window.innerHeight;
    const left = Math.max(4, Math.min(r.left, W - tw - 4));
    let top = r.bottom + 6;
    if (top + th > H - 4 && r.top - th - 6 >= 4) top = r.top - th - 6;
    this.tip.style.left = left + 'px';
    this.tip.style.top = Math.max(4, Math.min(top, H - th - 4)) + 'px';
  }
  hideTip() { this.tip.hidden = true; }

  /** Move the tab stop to a bar (and the focus, unless quiet). */
  focus(key, move = true) {
    const v = this.byKey.get(key);
    if (!v) return;
    const old = this.byKey.get(this.focusKey);
    if (old) old.el.setAttribute('tabindex', '-1');
    v.el.setAttribute('tabindex', '0');
    this.focusKey = key;
    if (move) { v.el.focus({ preventScroll: true }); v.el.scrollIntoView({ block: 'nearest', inline: 'nearest' }); }
  }
  /** Mark the bars for which pick(bar) is true as selected (kept across redraws). */
  markSelected(pick) {
    this.pick = pick;
    for (const v of this.byKey.values()) v.el.classList.toggle('selected', !!pick && pick(v.b));
  }
  /** The bars of an execution, first attempt first. */
  barsOf(execId, item) {
    return this.tl ? this.tl.bars.filter((b) => b.execId === execId && (item === undefined || b.item === item)) : [];
  }

  onKey(e) {
    const g = e.target.closest && e.target.closest('.tl-bar');
    if (!g || !this.tl) return;
    const b = g.kgBar, bars = this.tl.bars;
    const i = bars.indexOf(b);
    let next = null;
    switch (e.key) {
      case 'ArrowRight': next = bars[i + 1]; break;
      case 'ArrowLeft': next = bars[i - 1]; break;
      case 'Home': next = bars[0]; break;
      case 'End': next = bars[bars.length - 1]; break;
      case 'ArrowDown': case 'ArrowUp': {
        const row = this.tl.rows[b.row.index + (e.key === 'ArrowDown' ? 1 : -1)];
        if (row) next = row.bars.reduce((best, c) => (!best || Math.abs(c.start - b.start) < Math.abs(best.start - b.start) ? c : best), null);
        break;
      }
      case 'Enter': case ' ': this.cb.select(b); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    if (next) this.focus(next.key);
  }
}

