/*
 * run-page.js - one stored run, by URL (#/runs/<id>): read from the run
 * history (GET /api/runs/<id> and its events, docs/history.md), never from
 * the live view's memory, so a run of last week opens as one of a minute ago.
 *
 * What it shows: the run's facts and errors; its graph coloured by what
 * happened in it, nested graphs drawn as the live view draws them
 * (history-run.js turns the node executions into the live view's Run); the
 * Gantt timeline of its node executions (timeline.js / timeline-view.js:
 * retries and parallel batch items as separate bars); the selected
 * execution in full, with what the node reported about itself (log lines,
 * metrics, progress, custom events); the run's events (log.js, filterable
 * by type and level); an export link and a link back to the live view.
 * A run still in progress is read again every few seconds.
 */
import { $, h, clear, setText, textMeasurer } from './dom.js';
import { fmtDur, fmtInt, fmtDateTime, clip } from './fmt.js';
import { parseEvent, pathLeaf } from './protocol.js';
import { parseRunPage, parseNodeStats, runUrl, runEventsUrl, runExportUrl, nodeStatsUrl, pathUnderRoot } from './history.js';
import { runFromHistory, addEvents } from './history-run.js';
import { buildTimeline, retryTimes } from './timeline.js';
import { TimelineView, BAR_GLYPH } from './timeline-view.js';
import { GraphView, GLYPH } from './graph-view.js';
import { NodePanel } from './panel.js';
import { EventLog } from './log.js';
import { defaultCollapsed, groupPaths } from './model.js';
import { logLine, addMetric, progressOf, OUTCOME_ICON, OUTCOME_TEXT } from './store.js';
import { logList, metricsTable, customList, progressBar } from './node-output.js';
import { formatLocation, runPageHref } from './router.js';
import { RUN_GLYPH as STATUS_GLYPH } from './runs-page.js';

const MAX_EVENTS = 20000;          // events of a run read for its page (the rest: export)
const MAX_NESTED_FETCH = 20;       // nested runs whose events are read for their retries
const PAGE_EVENTS = 5000;
const REFRESH_MS = 3000;

export class RunPage {
  /** cb: {api, utc(), setRoute(loc, replace), notice(text), liveHas(id)} */
  constructor(cb) {
    this.cb = cb;
    this.id = '';
    this.gen = 0;
    this.page = null;
    this.run = null;
    this.events = new Map();       // run id -> raw events read (the run's own, nested runs' on demand)
    this.fetching = new Map();     // run id -> promise
    this.collapsed = null;
    this.perf = {};
    const measure = textMeasurer();
    this.graph = new GraphView($('rp-graph'), $('rp-minimap'), $('rp-graph-empty'), {
      measure, select: (path) => this.openNode(path, true), toggle: (path) => this.toggleGroup(path), layoutDone: () => {},
    });
    this.panel = new NodePanel($('rp-node-panel'), {
      close: () => this.closeNode(), showInLog: (path) => this.filterLog({ node: path }), center: (path) => { this.graph.reveal(path); this.graph.flash(path); },
      toggle: (path) => this.toggleGroup(path), utc: cb.utc, server: false,
      stats: (path, range) => this.stats(path, range),
    });
    this.timeline = new TimelineView($('rp-timeline'), { select: (b) => this.selectBar(b, true), utc: cb.utc, rootId: () => this.id });
    this.log = new EventLog($('rp-log'), $('rp-log-count'), $('rp-detail'), {
      select: () => {}, open: (ev) => this.openEvent(ev), runLabel: () => '', utc: cb.utc,
      schedule: () => requestAnimationFrame(() => this.log.render()),
    }, { rows: MAX_EVENTS, buffer: MAX_EVENTS });
    $('rp-zoom-in').addEventListener('click', () => this.timeline.setZoom(this.timeline.zoom * 2));
    $('rp-zoom-out').addEventListener('click', () => this.timeline.setZoom(this.timeline.zoom / 2));
    $('rp-zoom-fit').addEventListener('click', () => this.timeline.setZoom(1));
    $('rp-fit').addEventListener('click', () => this.graph.fit());
    $('rp-expand').addEventListener('click', () => this.setGroups(false));
    $('rp-collapse').addEventListener('click', () => this.setGroups(true));
    for (const id of ['rp-f-type', 'rp-f-level']) $(id).addEventListener('change', () => this.applyFilters());
    let timer = 0;
    $('rp-f-text').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => this.applyFilters(), 150); });
    $('rp-f-clear').addEventListener('click', () => { $('rp-f-type').value = ''; $('rp-f-level').value = ''; $('rp-f-text').value = ''; this.filterLog({}); });
    let rz = 0;
    window.addEventListener('resize', () => { clearTimeout(rz); rz = setTimeout(() => { if (!$('run-page').hidden) this.fitGraphHeight(); }, 150); });
  }

  // -------------------------------------------------------------------------
  // Loading
  // -------------------------------------------------------------------------
  /** Show a location {page: 'run', id, node, exec}. */
  show(loc) {
    if (loc.id !== this.id) this.load(loc);
    else this.applyLocation(loc);
  }
  hide() { clearTimeout(this.refreshTimer); this.refreshTimer = 0; }

  async load(loc) {
    const gen = ++this.gen;
    clearTimeout(this.refreshTimer);
    this.id = loc.id;
    this.page = null;
    this.run = null;
    this.events.clear();
    this.fetching.clear();
    this.eventCursor = null;
    this.eventIds = new Set();
    this.collapsed = null;
    this.panel.hide();
    for (const id of ['rp-f-type', 'rp-f-level', 'rp-f-text']) $(id).value = '';
    this.log.filter = { type: '', level: '', node: '', wf: '', text: '' };
    this.log.clear();
    this.log.totalSeen = 0;
    this.perf = { start: performance.now() };
    $('rp-exec').hidden = true;
    setText($('rp-id'), loc.id);
    $('rp-id').title = loc.id;
    document.title = `kaygraph · run ${clip(loc.id, 40)}`;
    $('rp-export').href = runExportUrl(loc.id);
    $('rp-export').setAttribute('download', `run-${loc.id.replace(/[^\w.-]+/g, '_')}.jsonl`);
    $('rp-live').href = formatLocation({ run: loc.id, node: '' });
    this.note('Reading the run from the history…');
    clear($('rp-summary'));
    $('rp-errors').hidden = true;
    this.graph.show(null, new Set());
    this.timeline.render(null);
    const r = await this.cb.api.get(runUrl(loc.id));
    if (gen !== this.gen) return;
    if (!r.ok) {
      this.note(r.status === 404 ? `This run is not in the run history: ${r.error}` : `Could not read the run: ${r.error}`, true);
      this.setStatus('unknown');
      return;
    }
    this.page = parseRunPage(r.body);
    if (!this.page) { this.note('The server\'s answer is not a run page.', true); return; }
    this.perf.fetched = performance.now() - this.perf.start;
    this.build(true);
    this.perf.firstRender = performance.now() - this.perf.start;
    this.perf.firstAt = performance.now();   // since the page's navigation began
    this.applyLocation(loc);
    await this.loadEvents(gen);
    if (gen !== this.gen) return;
    this.perf.complete = performance.now() - this.perf.start;
    this.perf.completeAt = performance.now();
    this.scheduleRefresh(gen);
  }

  /** Everything drawn from the run page (and the events read so far). */
  /**
   * Everything drawn from the run page (and the events read so far).  The
   * first time, the facts and the timeline are painted before the graph is
   * laid out (the graph of a large run takes a few hundred ms to draw).
   */
  build(first) {
    const tb = performance.now();
    const page = this.page;
    const own = this.events.get(this.id) || [];
    const run = runFromHistory(page, { events: own });
    for (const [rid, evs] of this.events) if (rid !== this.id) addEvents(run, evs);
    this.run = run;
    const t0 = performance.now();
    this.drawTimeline();
    const t1 = performance.now();
    this.drawSummary();
    this.drawErrors();
    if (first) {
      Object.assign(this.perf, { modelMs: t0 - tb, timelineMs: t1 - t0 });
      const gen = this.gen;
      requestAnimationFrame(() => setTimeout(() => { if (gen === this.gen && this.run === run) this.drawGraph(); }, 0));   // after the next paint
    } else this.drawGraph();
    if (this.selected) this.showExec(this.selected.x, this.selected.item, false);
    const parts = [];
    if (!run.model) parts.push('The run\'s topology is not stored (no workflow_started): the graph cannot be drawn.');
    if (page.truncated) parts.push('Only the first 10,000 node executions are shown.');
    this.note(parts.join(' '), false);
  }

  drawGraph() {
    const run = this.run;
    const t0 = performance.now();
    if (!this.collapsed && run.model) this.collapsed = defaultCollapsed(run.model, 400);
    this.graph.show(run, this.collapsed || new Set());
    this.fitGraphHeight();
    if (this.panel.open) this.panel.render(run, null);
    if (this.perf.graphMs === undefined) Object.assign(this.perf, { graphMs: performance.now() - t0, layoutMs: this.graph.layoutMs, graphAt: performance.now() });
  }

  /**
   * The graph's box as tall as the drawing needs at this width (a long flat
   * pipeline should not leave half a screen empty), between 180 px and
   * about half the window.
   */
  fitGraphHeight() {
    const lay = this.graph.lay;
    const wrap = $('rp-graph').parentNode;
    if (!lay) { wrap.style.height = ''; return; }
    if (this.panel.open) { wrap.style.height = Math.max(wrap.clientHeight, 560) + 'px'; return; }   // room for the node panel
    const w = wrap.clientWidth || 800;
    const want = Math.round((w * (lay.bbox.h + 80)) / (lay.bbox.w + 60)) + 60;
    wrap.style.height = Math.max(180, Math.min(want, Math.round(window.innerHeight * 0.55), 640)) + 'px';
    this.graph.fit();
  }

  drawTimeline() {
    const page = this.page, run = this.run;
    const retries = new Map();
    for (const evs of this.events.values()) for (const [k, v] of retryTimes(evs)) retries.set(k, v);
    const order = new Map();
    if (run.model) { let i = 0; for (const p of run.model.byPath.keys()) order.set(p, i++); }
    const execs = page.executions;
    const now = page.run.status === 'running' ? Math.max(Date.now(), page.run.lastMs || 0) : page.run.lastMs;
    this.tl = buildTimeline(execs, { retries, order: (p) => (order.has(p) ? order.get(p) : 1e9), now,
      runStart: page.run.startMs, runEnd: Number.isFinite(page.run.endMs) ? page.run.endMs : undefined });
    this.timeline.render(this.tl);
    const failed = this.tl.bars.filter((b) => b.status === 'failed').length;
    const retried = this.tl.bars.filter((b) => b.status === 'retried').length;
    setText($('rp-tl-count'), `${fmtInt(execs.length)} executions · ${fmtInt(this.tl.bars.length)} bars · ${fmtInt(this.tl.rows.length)} nodes` +
      (retried ? ` · ${retried} retried attempts` : '') + (failed ? ` · ${failed} failed` : '') + (this.tl.skipped ? ` · ${this.tl.skipped} without a start time` : ''));
  }

  drawSummary() {
    const r = this.page.run, utc = this.cb.utc();
    const outcome = this.run.outcome;
    this.setStatus(r.status, outcome);
    const dl = $('rp-summary');
    clear(dl);
    const add = (k, v, cls) => { if (v !== '' && v !== null && v !== undefined) dl.append(h('div', { class: 'rp-fact' }, h('dt', null, k), h('dd', cls ? { class: cls } : null, v))); };
    add('graph', r.graph + (r.graphType ? ` (${r.graphType})` : ''));
    add('started', Number.isFinite(r.startMs) ? fmtDateTime(r.startMs, utc) : '–');
    add('ended', Number.isFinite(r.endMs) ? fmtDateTime(r.endMs, utc) : r.status === 'running' ? 'still running' : '–');
    add('duration', fmtDur(r.duration));
    add('final action', r.finalAction || '–');
    add('events', fmtInt(r.events));
    add('error events', fmtInt(r.errors), r.errors ? 'bad' : null);
    add('node executions', fmtInt(r.executions) + (this.page.executions.length > r.executions ? ` (${fmtInt(this.page.executions.length)} with nested runs)` : ''));
    add('source', r.host || r.pid !== null ? `${r.host || '?'} pid ${r.pid ?? '?'}` : '');
    if (r.parent) dl.append(h('div', { class: 'rp-fact' }, h('dt', null, 'part of'), h('dd', null, h('a', { href: runPageHref(r.parent) }, `run ${clip(r.parent, 40)}`))));
    if (this.page.children.length) {
      const dd = h('dd', { class: 'rp-children' });
      for (const c of this.page.children.slice(0, 30)) dd.append(h('a', { href: runPageHref(c.id), title: c.id, 'data-status': c.status }, `${STATUS_GLYPH[c.status] || '?'} ${c.graph || 'run'}`), ' ');
      if (this.page.children.length > 30) dd.append(`+${this.page.children.length - 30} more`);
      dl.append(h('div', { class: 'rp-fact rp-fact-wide' }, h('dt', null, 'nested runs'), dd));
    }
    if (r.error) dl.append(h('div', { class: 'rp-fact rp-fact-wide' }, h('dt', null, 'run error'), h('dd', { class: 'bad' }, r.error)));
    if (this.run.errorPath) {
      const e = this.run.errorPath;
      dl.append(h('div', { class: 'rp-fact rp-fact-wide' }, h('dt', null, 'error path'), h('dd', { class: 'warn' }, `${pathLeaf(e.path)} → ${e.action} → ${pathLeaf(e.to)}${e.reason ? ': ' + e.reason : ''}`)));
    }
  }

  setStatus(status, outcome) {
    const el = $('rp-status');
    const o = outcome || (status === 'success' ? 'success' : status);
    el.setAttribute('data-status', o);
    setText(el, `${OUTCOME_ICON[o] || STATUS_GLYPH[status] || '?'} ${OUTCOME_TEXT[o] || status}`);
  }

  drawErrors() {
    const list = $('rp-errors-list');
    clear(list);
    const errs = this.page.errors.map(parseEvent).filter(Boolean);
    $('rp-errors').hidden = !errs.length;
    setText($('rp-errors-count'), errs.length >= 100 ? 'the first 100' : String(errs.length));
    const utc = this.cb.utc();
    for (const ev of errs) {
      const msg = typeof ev.data.error === 'string' ? ev.data.error : ev.name;
      const b = h('button', { class: 'rp-err', type: 'button', 'data-event': ev.name, title: 'Show this execution' },
        h('span', { class: 'rp-err-name' }, `${ev.name === 'retry_attempted' ? '↻' : '✕'} ${ev.name}`),
        h('span', { class: 'rp-err-node' }, pathUnderRoot(ev.path) || ev.node),
        h('span', { class: 'rp-err-time' }, fmtDateTime(ev.tsMs, utc).slice(11)),
        h('span', { class: 'rp-err-msg' }, msg));
      b.addEventListener('click', () => this.openEvent(ev));
      list.append(h('li', null, b));
    }
  }

  /** The run's events, page by page (bounded), then nested runs that retried (for their attempt times). */
  async loadEvents(gen) {
    let cursor = this.eventCursor, n = this.eventIds.size;
    const own = this.events.get(this.id) || [];
    this.events.set(this.id, own);
    for (;;) {
      const r = await this.cb.api.get(runEventsUrl(this.id, cursor, PAGE_EVENTS));
      if (gen !== this.gen) return;
      if (!r.ok) { this.note(`Could not read the run's events: ${r.error}`, true); break; }
      const fresh = [];
      for (const e of Array.isArray(r.body.events) ? r.body.events : []) {
        if (!e || typeof e.event_id !== 'string' || this.eventIds.has(e.event_id)) continue;
        this.eventIds.add(e.event_id);
        own.push(e);
        fresh.push(e);
      }
      this.pushLog(fresh);
      n += fresh.length;
      const next = typeof r.body.next_cursor === 'string' ? r.body.next_cursor : null;
      if (!next) break;   // the last page (not full): read again from its start next time
      this.eventCursor = cursor = next;
      if (n >= MAX_EVENTS) { this.note(`The first ${fmtInt(MAX_EVENTS)} events are listed; the export has them all.`); break; }
    }
    const nested = [...new Set(this.page.executions.filter((x) => x.retries && x.runId && x.runId !== this.id).map((x) => x.runId))].slice(0, MAX_NESTED_FETCH);
    await Promise.all(nested.map((id) => this.runEvents(id)));
    if (gen !== this.gen) return;
    this.build();
  }

  /** A nested run's events (read once). */
  runEvents(id) {
    if (this.events.has(id)) return Promise.resolve(this.events.get(id));
    if (this.fetching.has(id)) return this.fetching.get(id);
    const gen = this.gen;
    const p = (async () => {
      const out = [];
      let cursor = null;
      for (let i = 0; i < 4; i++) {
        const r = await this.cb.api.get(runEventsUrl(id, cursor, PAGE_EVENTS));
        if (!r.ok || gen !== this.gen) break;
        out.push(...(Array.isArray(r.body.events) ? r.body.events : []));
        cursor = r.body.next_cursor;
        if (!cursor) break;
      }
      if (gen === this.gen) this.events.set(id, out);
      this.fetching.delete(id);
      return out;
    })();
    this.fetching.set(id, p);
    return p;
  }

  pushLog(raws) {
    const evs = [];
    for (const raw of raws) {
      const ev = parseEvent(raw);
      if (!ev) continue;
      ev.root = this.id;
      ev.rpath = ev.path || ev.node;
      evs.push(ev);
    }
    this.log.push(evs);
    this.log.render();
    this.log.updateCount();
  }

  scheduleRefresh(gen) {
    if (!this.page || this.page.run.status !== 'running') return;
    this.refreshTimer = setTimeout(async () => {
      if (gen !== this.gen || document.hidden) { if (gen === this.gen) this.scheduleRefresh(gen); return; }
      const r = await this.cb.api.get(runUrl(this.id));
      if (gen !== this.gen) return;
      if (r.ok) { const p = parseRunPage(r.body); if (p) this.page = p; }
      await this.loadEvents(gen);
      if (gen === this.gen) this.scheduleRefresh(gen);
    }, REFRESH_MS);
  }

  note(text, bad) {
    const el = $('rp-note');
    setText(el, text || '');
    el.hidden = !text;
    el.classList.toggle('bad', !!bad);
  }

  // -------------------------------------------------------------------------
  // Selection: a bar (an execution), a node, an event
  // -------------------------------------------------------------------------
  applyLocation(loc) {
    if (!this.tl) return;
    if (loc.exec) {
      const bars = this.tl.bars.filter((b) => b.execId === loc.exec && (!loc.node || b.path === loc.node));
      if (bars.length) { this.selectBar(bars[bars.length - 1], false); return; }
    }
    if (loc.node) this.openNode(loc.node, false);
  }

  selectBar(b, record) {
    this.timeline.markSelected((c) => c.execId === b.execId && c.item === b.item);
    this.graph.markSelected(b.path);
    this.showExec(b.exec, b.item, true);
    if (record) this.cb.setRoute({ page: 'run', id: this.id, node: b.path, exec: b.execId }, true);
  }

  openNode(path, record) {
    if (!this.run) return;
    this.panel.show(path, this.run, null);
    this.fitGraphHeight();
    this.graph.markSelected(path);
    const bars = this.tl ? this.tl.bars.filter((b) => b.path === path) : [];
    this.timeline.markSelected((c) => c.path === path);
    if (bars.length) this.timeline.focus(bars[0].key, false);
    if (record) this.cb.setRoute({ page: 'run', id: this.id, node: path, exec: '' }, true);
  }
  closeNode() {
    this.panel.hide();
    this.fitGraphHeight();
    this.graph.markSelected('');
    this.cb.setRoute({ page: 'run', id: this.id, node: '', exec: '' }, true);
  }
  toggleGroup(path) {
    if (!this.run || !this.run.model) return;
    const c = new Set(this.collapsed || []);
    if (c.has(path)) c.delete(path); else c.add(path);
    this.collapsed = c;
    this.graph.show(this.run, c);
    this.fitGraphHeight();
    this.graph.focusPath(path);
  }
  setGroups(collapse) {
    if (!this.run || !this.run.model) return;
    this.collapsed = collapse ? new Set(groupPaths(this.run.model)) : new Set();
    this.graph.show(this.run, this.collapsed);
    this.fitGraphHeight();
  }

  /** An event of the list or the errors: its execution's bar when there is one, else its node. */
  openEvent(ev) {
    if (!this.tl) return;
    const bars = this.tl.bars.filter((b) => b.execId === ev.corr && (ev.item === undefined || b.item === ev.item));
    if (bars.length) {
      const b = bars[bars.length - 1];
      this.selectBar(b, true);
      this.timeline.focus(b.key);
    } else if (ev.path) this.openNode(ev.path, true);
  }

  /** The selected execution in full, with what its node reported during it. */
  async showExec(x, item, scroll) {
    this.selected = { x, item };
    const box = $('rp-exec');
    const body = $('rp-exec-body');
    box.hidden = false;
    const utc = this.cb.utc();
    const bars = this.tl.bars.filter((b) => b.execId === x.id && b.item === item);
    clear(body);
    setText($('rp-exec-title'), `${pathUnderRoot(x.path) || x.path}${item !== undefined ? ` · item ${item}` : ''}`);
    const dl = h('dl', { class: 'np-kv' });
    const kv = (k, v, cls) => dl.append(h('dt', null, k), h('dd', cls ? { class: cls } : null, v));
    kv('status', `${BAR_GLYPH[x.status] || GLYPH[x.status] || '?'} ${x.status}`, x.status === 'failed' ? 'bad' : null);
    kv('type', x.nodeType || '–');
    kv('started', fmtDateTime(x.startMs, utc));
    kv('duration', x.duration !== undefined ? fmtDur(x.duration) : Number.isFinite(x.endMs) ? fmtDur((x.endMs - x.startMs) / 1000) : 'still running');
    kv('attempts', `${x.attempts}${x.retries ? ` (${x.retries} retr${x.retries === 1 ? 'y' : 'ies'})` : ''}`);
    if (bars.length > 1) kv('attempt times', bars.map((b) => `${b.attempt}: ${fmtDur((b.end - b.start) / 1000)} ${BAR_GLYPH[b.status]}`).join(' · '));
    kv('action', x.action || '–');
    if (x.error) kv('error', `${x.error}${x.errorType ? ` (${x.errorType}${x.phase ? ', in ' + x.phase : ''})` : ''}`, 'bad');
    kv('events', fmtInt(x.events));
    if (x.runId && x.runId !== this.id) dl.append(h('dt', null, 'nested run'), h('dd', null, h('a', { href: runPageHref(x.runId), title: x.runId }, clip(x.runId, 40))));
    kv('execution id', x.id);
    const show = h('button', { class: 'btn btn-small', type: 'button' }, 'Its events in the list');
    show.addEventListener('click', () => this.filterLog({ text: x.id }));
    const node = h('button', { class: 'btn btn-small', type: 'button' }, 'Node details');
    node.addEventListener('click', () => this.openNode(x.path, true));
    body.append(dl, h('div', { class: 'np-actions' }, node, x.runId === this.id ? show : null));
    const own = h('div', { class: 'rp-exec-own' }, h('p', { class: 'muted' }, 'Reading what the node reported…'));
    body.append(own);
    if (scroll) box.scrollIntoView({ block: 'nearest' });
    const evs = x.runId && x.runId !== this.id ? await this.runEvents(x.runId) : (this.events.get(this.id) || []);
    if (!this.selected || this.selected.x !== x) return;
    clear(own);
    own.append(...execOutput(evs, x, item, utc));
  }

  filterLog(f) {
    if (f.text !== undefined) $('rp-f-text').value = f.text;
    this.log.filter = Object.assign({ type: $('rp-f-type').value, level: $('rp-f-level').value, node: '', wf: '', text: $('rp-f-text').value.trim().toLowerCase() }, f.node ? { node: f.node } : {});
    if (f.text !== undefined) this.log.filter.text = f.text.toLowerCase();
    this.log.rebuild();
    this.log.updateCount();
    $('rp-log').focus();
  }
  applyFilters() {
    this.log.filter = { type: $('rp-f-type').value, level: $('rp-f-level').value, node: '', wf: '', text: $('rp-f-text').value.trim().toLowerCase() };
    this.log.rebuild();
    this.log.updateCount();
  }

  stats(path, range) {
    const url = nodeStatsUrl(path, range, 40);
    if (!url) return Promise.resolve({ ok: false, error: 'not a node of the run\'s graph' });
    return this.cb.api.get(url).then((r) => (r.ok ? { ok: true, stats: parseNodeStats(r.body) } : { ok: false, error: r.error }));
  }

  redrawTimes() {
    if (!this.page) return;
    this.drawSummary();
    this.drawErrors();
    if (this.tl) this.timeline.render(this.tl);
    this.log.redrawAll();
    this.log.render();
    if (this.panel.open) this.panel.render(this.run, null);
  }

  /** Figures for the benchmark and the tests. */
  figures() {
    return Object.assign({ id: this.id, bars: this.tl ? this.tl.bars.length : 0, rows: this.tl ? this.tl.rows.length : 0,
      events: (this.events.get(this.id) || []).length }, this.perf);
  }
}

/** What a node reported during one execution (its events: correlation id and item). */
export function execOutput(raws, x, item, utc) {
  const logs = [], metrics = new Map(), custom = [];
  let progress = null;
  for (const raw of raws) {
    if (!raw || raw.correlation_id !== x.id) continue;
    const ev = parseEvent(raw);
    if (!ev || (item !== undefined && ev.item !== undefined && ev.item !== item)) continue;
    if (ev.name === 'node_log') { const l = logLine(ev); if (l) logs.push(l); }
    else if (ev.name === 'custom_metric') addMetric(metrics, ev);
    else if (ev.name === 'node_progress') { const p = progressOf(ev.data); if (p) progress = p; }
    else if (ev.name === 'custom_event' && typeof ev.data.name === 'string') custom.push({ tsMs: ev.tsMs, name: ev.data.name, data: ev.data.data });
  }
  logs.sort((a, b) => a.ord - b.ord);
  const out = [];
  if (progress) out.push(h('div', { class: 'np-sub' }, 'progress (last reported)'), progressBar(progress));
  out.push(h('div', { class: 'np-sub' }, `log lines (${fmtInt(logs.length)})`));
  out.push(logs.length ? logList(logs, { utc, max: 500 }) : h('p', { class: 'muted' }, 'This execution logged nothing.'));
  if (metrics.size) out.push(h('div', { class: 'np-sub' }, 'metrics'), metricsTable(metrics));
  if (custom.length) out.push(h('div', { class: 'np-sub' }, `custom events (${custom.length})`), customList(custom, { utc }));
  return out;
}
