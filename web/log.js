/*
 * log.js - the event log (capped, virtualised, filterable, pausable,
 * keyboard-navigable) and the event detail pane.
 *
 * The log holds the newest LOG_ROWS matching events, newest first, but the
 * DOM only holds the rows in view: they are absolutely positioned inside a
 * spacer as tall as the whole log and refilled on scroll or when events
 * arrive, so a frame costs ~20 rows of text whatever the event rate.
 * Keyboard: the log is one tab stop; ↑/↓ (PgUp/PgDn, Home/End) select a row
 * and show it in the detail pane, Enter opens its node.  Nodes' own log
 * lines (node_log) show their level as a word and a colour, and the log can
 * be filtered to lines at or above a level.  The same class lists a stored
 * run's events on the run page.
 */
import { h, setText, clear } from './dom.js';
import { fmtClock, fmtDateTime, fmtDur, clip, zoneLabel } from './fmt.js';
import { pathLeaf } from './protocol.js';
import { LEVELS, progressOf } from './store.js';
import { LEVEL_GLYPH, progressText, fmtNum } from './node-output.js';

export const LOG_ROWS = 500, LOG_BUFFER = 5000;

/** One-line summary of an event's data. */
export function summarize(ev) {
  const d = ev.data;
  const parts = [];
  const str = (v) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
  switch (ev.name) {
    case 'node_completed':
      parts.push('→ ' + (str(d.next_action) || 'default'));
      if (typeof d.total_execution_time === 'number') parts.push(fmtDur(d.total_execution_time));
      break;
    case 'workflow_started': {
      const g = d.graph;
      if (g && Array.isArray(g.nodes)) parts.push(`${g.nodes.length} nodes, ${Array.isArray(g.edges) ? g.edges.length : 0} edges, start ${str(g.start)}`);
      if (d.parent_workflow_id) parts.push('nested run');
      break;
    }
    case 'workflow_completed':
      parts.push(str(d.status));
      if (d.final_action) parts.push('final ' + str(d.final_action));
      if (typeof d.duration === 'number') parts.push(fmtDur(d.duration));
      break;
    case 'execution_time':
      if (typeof d.value === 'number') parts.push(fmtDur(d.value));
      break;
    case 'node_log':
      if (LEVELS.includes(d.level)) parts.push(`${LEVEL_GLYPH[d.level]} ${d.level.toUpperCase()}`);
      parts.push(str(d.message));
      if (d.fields && typeof d.fields === 'object') parts.push(clip(JSON.stringify(d.fields), 120));
      if (d.truncated === true) parts.push('[cut]');
      break;
    case 'custom_metric':
      parts.push(`${str(d.name)} = ${fmtNum(d.value)}${d.unit ? ' ' + str(d.unit) : ''}`);
      if (d.kind) parts.push(str(d.kind));
      break;
    case 'node_progress':
      if (progressOf(d)) parts.push(progressText(progressOf(d)));
      break;
    case 'custom_event':
      parts.push(str(d.name));
      if (d.data !== undefined) parts.push(clip(JSON.stringify(d.data), 120));
      break;
    case 'data_input': case 'data_output': {
      const sn = d.snapshot;
      if (sn && sn.truncated === false) parts.push(clip(JSON.stringify(sn.data), 140));
      else if (sn && sn.truncated) parts.push(`${clip(str(sn.preview), 100)} (truncated, ${sn.original_size} bytes)`);
      else if (d.has_data !== undefined) parts.push(d.has_data ? 'has data' : 'no data');
      break;
    }
    default:
      if (d.error !== undefined) parts.push(str(d.error));
      if (d.error_type !== undefined) parts.push(str(d.error_type));
      if (d.phase !== undefined) parts.push('phase ' + str(d.phase));
      if (d.attempt !== undefined) parts.push(`attempt ${str(d.attempt)}${d.max_retries !== undefined ? '/' + str(d.max_retries) : ''}`);
      if (!parts.length && d.value !== undefined) parts.push(str(d.value) + (d.unit ? ' ' + str(d.unit) : ''));
  }
  if (ev.item !== undefined) parts.push('item ' + ev.item);
  return parts.join(' · ');
}

export class EventLog {
  /**
   * cb: {select(ev), open(ev), runLabel(ev) -> "#12", utc() -> bool, schedule()};
   * limits: {rows, buffer} (the live log: LOG_ROWS of LOG_BUFFER; a stored
   * run's page lists all it read).
   */
  constructor(container, countEl, detail, cb, limits = {}) {
    this.maxRows = limits.rows || LOG_ROWS;
    this.maxBuffer = limits.buffer || LOG_BUFFER;
    this.container = container;
    this.countEl = countEl;
    this.detail = detail;
    this.cb = cb;
    this.buffer = [];
    this.bufStart = 0;
    this.items = [];
    this.pendingPaused = 0;
    this.paused = false;
    this.filter = { type: '', level: '', node: '', wf: '', text: '' };
    this.totalSeen = 0;
    this.selectedEv = null;
    this.dirty = true;
    this.rowH = 22;
    this.pool = [];
    this.spacer = h('div', { class: 'log-spacer' });
    this.empty = h('div', { class: 'log-empty' }, 'No events yet.');
    container.append(this.spacer, this.empty);
    this.scrollTop = 0;
    this.viewH = 300;
    container.addEventListener('scroll', () => { this.scrollTop = container.scrollTop; this.dirty = true; cb.schedule(); }, { passive: true });
    new ResizeObserver((entries) => { for (const e of entries) this.viewH = e.contentRect.height || this.viewH; this.dirty = true; cb.schedule(); }).observe(container);
    container.addEventListener('click', (e) => {
      const row = e.target.closest('.log-row');
      if (row && row.kgEvent) this.select(row.kgEvent, false);
    });
    container.addEventListener('dblclick', (e) => {
      const row = e.target.closest('.log-row');
      if (row && row.kgEvent) cb.open(row.kgEvent);
    });
    container.addEventListener('keydown', (e) => this.onKey(e));
  }
  get rows() { return this.items.length; }

  onKey(e) {
    const n = this.items.length;
    if (!n) return;
    let i = this.selectedEv ? n - 1 - this.items.lastIndexOf(this.selectedEv) : -1;   // display index, newest first
    const page = Math.max(1, Math.floor(this.viewH / this.rowH) - 1);
    switch (e.key) {
      case 'ArrowDown': i = Math.min(n - 1, i + 1); break;
      case 'ArrowUp': i = Math.max(0, i - 1); break;
      case 'PageDown': i = Math.min(n - 1, i + page); break;
      case 'PageUp': i = Math.max(0, i - page); break;
      case 'Home': i = 0; break;
      case 'End': i = n - 1; break;
      case 'Enter': if (this.selectedEv) this.cb.open(this.selectedEv); e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    this.select(this.items[n - 1 - Math.max(0, i)], true);
  }

  /** Select an event: highlight its row, show it in the detail pane. */
  select(ev, scroll) {
    this.selectedEv = ev;
    this.showDetail(ev);
    this.cb.select(ev);
    if (scroll) {
      const i = this.items.length - 1 - this.items.lastIndexOf(ev);
      const top = i * this.rowH;
      if (top < this.scrollTop) this.container.scrollTop = this.scrollTop = top;
      else if (top + this.rowH > this.scrollTop + this.viewH) this.container.scrollTop = this.scrollTop = top + this.rowH - this.viewH;
    }
    this.dirty = true;
    this.render();
  }

  showDetail(ev) {
    const d = this.detail;
    clear(d);
    d.scrollTop = 0;
    const utc = this.cb.utc();
    const raw = ev.raw;
    const meta = h('dl', { class: 'detail-meta' });
    const row = (k, v, cls) => { meta.append(h('dt', null, k), h('dd', cls ? { class: cls } : null, v)); };
    row('event', `${ev.name} (${ev.type})`, ev.type === 'error' ? 'bad' : null);
    row('time', Number.isFinite(ev.tsMs) ? fmtDateTime(ev.tsMs, utc) : ev.ts || '–');
    if (ev.node) row('node', ev.rpath || ev.path || ev.node);
    if (ev.ntype) row('type', ev.ntype);
    if (ev.wf) row('run', `${this.cb.runLabel(ev)} · ${ev.wf}`);
    if (ev.item !== undefined) row('item', String(ev.item));
    if (ev.corr) row('execution', ev.corr);
    if (typeof ev.seq === 'number') row('seq', String(ev.seq));
    if (raw.source && typeof raw.source === 'object') row('source', `${raw.source.host ?? ''} pid ${raw.source.pid ?? ''}`);
    d.append(meta);
    const data = Object.assign({}, ev.data);
    const snap = data.snapshot;
    delete data.snapshot;
    if (data.graph) data.graph = `(topology: ${Array.isArray(data.graph.nodes) ? data.graph.nodes.length : '?'} nodes; in full under "raw event")`;
    d.append(h('div', { class: 'detail-h' }, 'data'), h('pre', { class: 'detail-pre' }, JSON.stringify(data, null, 2)));
    if (snap && typeof snap === 'object') {
      let text, note;
      if (snap.truncated === false) { text = JSON.stringify(snap.data, null, 2); note = 'snapshot'; }
      else {
        const pv = typeof snap.preview === 'string' ? snap.preview : '';
        try { text = JSON.stringify(JSON.parse(pv), null, 2); } catch (e) { text = pv; }
        note = `snapshot, truncated: the first ${pv.length} characters of ${snap.original_size ?? '?'} bytes`;
      }
      d.append(h('div', { class: 'detail-h' }, note), h('pre', { class: 'detail-pre' }, text));
    }
    const rawBlock = h('details', { class: 'detail-raw' }, h('summary', null, 'raw event'), h('pre', { class: 'detail-pre' }, JSON.stringify(raw, null, 2)));
    d.append(rawBlock);
  }

  matches(ev) {
    const f = this.filter;
    if (f.type && ev.type !== f.type) return false;
    // A level keeps the nodes' own log lines at or above it (and nothing else).
    if (f.level && !(ev.name === 'node_log' && LEVELS.indexOf(ev.data.level) >= LEVELS.indexOf(f.level))) return false;
    if (f.node && ev.rpath !== f.node && !(ev.rpath || '').startsWith(f.node + '/')) return false;
    if (f.wf && ev.root !== f.wf) return false;
    if (f.text) {
      if (ev.text === null) ev.text = (ev.name + ' ' + (ev.rpath || ev.node) + ' ' + ev.ntype + ' ' + ev.type + ' ' + ev.wf + ' ' + JSON.stringify(ev.data)).toLowerCase();
      if (!ev.text.includes(f.text)) return false;
    }
    return true;
  }
  push(evs) {
    let added = 0;
    for (const ev of evs) {
      if (this.buffer.length < this.maxBuffer) this.buffer.push(ev);
      else { this.buffer[this.bufStart] = ev; this.bufStart = (this.bufStart + 1) % this.maxBuffer; }
      this.totalSeen++;
      if (!this.matches(ev)) continue;
      if (this.paused) { this.pendingPaused++; continue; }
      this.items.push(ev);
      added++;
    }
    if (!added) return;
    const over = this.items.length - this.maxRows;
    if (over > 0) this.items.splice(0, over);
    if (this.scrollTop > 0) this.anchor = (this.anchor || 0) + Math.min(added, this.maxRows);
    this.dirty = true;
  }
  buffered() { return this.buffer.slice(this.bufStart).concat(this.buffer.slice(0, this.bufStart)); }
  makeRow() {
    return h('div', { class: 'log-row', role: 'option', 'aria-selected': 'false' },
      h('span', { class: 'c-time' }), h('span', { class: 'c-type' }), h('span', { class: 'c-name' }),
      h('span', { class: 'c-node' }), h('span', { class: 'c-wf' }), h('span', { class: 'c-detail' }));
  }
  fillRow(row, ev) {
    const c = row.children;
    row.kgEvent = ev;
    row.setAttribute('data-t', ev.type);
    if (ev.name === 'node_log' && LEVELS.includes(ev.data.level)) row.setAttribute('data-level', ev.data.level);
    else row.removeAttribute('data-level');
    setText(c[0], fmtClock(Number.isFinite(ev.tsMs) ? ev.tsMs : ev.recv, this.cb.utc()));
    setText(c[1], ev.type);
    c[1].setAttribute('data-t', ev.type);
    setText(c[2], ev.name);
    const p = ev.rpath || ev.node;
    setText(c[3], p.includes('/') ? p.slice(p.indexOf('/') + 1) : p);
    c[3].title = p;
    setText(c[4], ev.wf ? this.cb.runLabel(ev) : '');
    c[4].title = ev.wf;
    setText(c[5], summarize(ev));
  }
  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const n = this.items.length;
    const height = n * this.rowH;
    if (this.spacerH !== height) { this.spacerH = height; this.spacer.style.height = height + 'px'; }
    this.empty.hidden = n > 0;
    if (this.anchor) {
      this.scrollTop = Math.min(this.scrollTop + this.anchor * this.rowH, Math.max(0, height - this.viewH));
      this.container.scrollTop = this.scrollTop;
      this.anchor = 0;
    }
    const first = Math.max(0, Math.floor(this.scrollTop / this.rowH) - 2);
    const count = Math.max(0, Math.min(n - first, Math.ceil(this.viewH / this.rowH) + 4));
    while (this.pool.length < count) {
      const row = this.makeRow();
      row.kgEvent = null;
      row.id = 'log-row-' + this.pool.length;
      this.pool.push(row);
      this.spacer.appendChild(row);
    }
    let active = '';
    for (let k = 0; k < this.pool.length; k++) {
      const row = this.pool[k];
      if (k >= count) { if (!row.hidden) { row.hidden = true; row.kgEvent = null; } continue; }
      const i = first + k;
      const ev = this.items[n - 1 - i];
      if (row.hidden) row.hidden = false;
      if (row.kgEvent !== ev || row.kgUtc !== this.cb.utc()) { row.kgUtc = this.cb.utc(); this.fillRow(row, ev); }
      if (row.kgTop !== i) { row.kgTop = i; row.style.transform = `translateY(${i * this.rowH}px)`; }
      const sel = ev === this.selectedEv;
      if (sel) active = row.id;
      if (row.kgSel !== sel) { row.kgSel = sel; row.classList.toggle('selected', sel); row.setAttribute('aria-selected', String(sel)); }
    }
    if (active) this.container.setAttribute('aria-activedescendant', active);
    else this.container.removeAttribute('aria-activedescendant');
  }
  rebuild() {
    const all = this.buffered();
    const out = [];
    for (let i = all.length - 1; i >= 0 && out.length < this.maxRows; i--) if (this.matches(all[i])) out.push(all[i]);
    this.items = out.reverse();
    this.pendingPaused = 0;
    this.anchor = 0;
    this.container.scrollTop = this.scrollTop = 0;
    this.dirty = true;
    this.render();
  }
  clear() { this.buffer = []; this.bufStart = 0; this.rebuild(); }
  redrawAll() { for (const r of this.pool) r.kgEvent = null; this.dirty = true; }
  updateCount() {
    let t = `${this.items.length.toLocaleString('en-US')} in log · ${this.totalSeen.toLocaleString('en-US')} received`;
    if (this.paused) t = `paused · ${this.pendingPaused.toLocaleString('en-US')} new · ` + t;
    setText(this.countEl, t);
  }
  zoneNote() { return zoneLabel(this.cb.utc()); }
}

export { pathLeaf };
