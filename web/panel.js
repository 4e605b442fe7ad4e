/*
 * panel.js - the node panel: what one node (or sub-graph) did.
 *
 * Opened by clicking a node, a node-table row, Enter on a focused node or a
 * log row.  For the shown run: status, executions with their durations,
 * actions, attempts and errors (per item for batch work), retries,
 * failures, the last error, and what the node reported about itself (its
 * progress, log lines, custom metrics and events: node-output.js); for all
 * runs: the server's counts and timings, and from the run history its
 * durations over time (stats-chart.js).  A sub-graph shows what runs or
 * failed inside it and its item runs.
 */
import { h, setText, clear } from './dom.js';
import { fmtDur, fmtInt, fmtClock } from './fmt.js';
import { GLYPH } from './graph-view.js';
import { groupState } from './model.js';
import { statusOf } from './store.js';
import { logList, metricsTable, customList, progressBar } from './node-output.js';
import { statsChart } from './stats-chart.js';

const RANGES = [['1h', 'last hour'], ['24h', 'last 24 h'], ['7d', 'last 7 days'], ['30d', 'last 30 days']];

export class NodePanel {
  /**
   * cb: {close(), showInLog(path), center(path), toggle(path), utc(),
   *      stats(path, range) -> Promise<{ok, stats, error}> (the run history; optional),
   *      server: false to leave out the live server's counts (the run page)}
   */
  constructor(el, cb) {
    this.el = el;
    this.cb = cb;
    this.path = '';
    this.range = '7d';
    this.stats = null;           // {key, state: 'loading' | 'ok' | 'error', value, error}
    this.openFields = new Set(); // log lines whose fields are unfolded (kept across redraws)
    el.addEventListener('keydown', (e) => { if (e.key === 'Escape') { cb.close(); e.preventDefault(); } });
    el.addEventListener('toggle', (e) => {
      const k = e.target.getAttribute && e.target.getAttribute('data-key');
      if (k) { if (e.target.open) this.openFields.add(k); else this.openFields.delete(k); }
    }, true);
  }
  get open() { return !this.el.hidden; }

  show(path, run, metrics) {
    if (path !== this.path) this.openFields.clear();
    this.path = path;
    this.el.hidden = false;
    this.render(run, metrics);
  }
  hide() { this.el.hidden = true; this.path = ''; }

  render(run, metrics) {
    if (this.el.hidden) return;
    this.lastRun = run;
    this.lastMetrics = metrics;
    const path = this.path;
    const el = this.el;
    const keepScroll = el.querySelector('.panel-body') ? el.querySelector('.panel-body').scrollTop : 0;
    clear(el);
    const model = run && run.model;
    const mn = model && model.byPath.get(path);
    const n = run && run.nodes.get(path);
    const id = mn ? mn.id : path.slice(path.lastIndexOf('/') + 1);
    // Keyed by path, or by id when the producers send no paths (docs/protocol.md).
    const sn = metrics && metrics.nodes && typeof metrics.nodes === 'object' ? metrics.nodes : {};
    const server = sn[path] || (!Object.keys(sn).some((k) => k.includes('/')) ? sn[id] : null) || null;
    const status = mn && mn.group ? groupState(model, path, (p) => statusOf(run, p)).status : n ? n.status : 'idle';
    const close = h('button', { class: 'btn btn-icon', type: 'button', 'aria-label': 'Close the node panel', title: 'Close (Esc)' }, '×');
    close.addEventListener('click', () => this.cb.close());
    el.append(h('div', { class: 'panel-title' },
      h('div', null, h('div', { class: 'np-id' }, id), h('div', { class: 'np-path' }, path)), close));
    const body = h('div', { class: 'panel-body' });
    el.append(body);
    const type = (mn && mn.type) || (n && n.type) || (server && server.type) || '';
    body.append(h('div', { class: 'np-status', 'data-status': status },
      h('span', { class: 'np-glyph', 'aria-hidden': 'true' }, GLYPH[status] || '?'), ` ${status}`,
      type ? h('span', { class: 'muted' }, ` · ${type}${mn && mn.batch ? ' (batch graph: runs its sub-graph once per item)' : mn && mn.group ? ' (sub-graph)' : ''}`) : null));
    const actions = h('div', { class: 'np-actions' });
    const btn = (text, fn, title) => { const b = h('button', { class: 'btn', type: 'button', title }, text); b.addEventListener('click', fn); actions.append(b); };
    btn('Events in log', () => this.cb.showInLog(path), 'Filter the event log to this node');
    btn('Centre', () => this.cb.center(path), 'Centre the graph on this node');
    if (mn && mn.group) btn('Collapse / expand', () => this.cb.toggle(path));
    body.append(actions);

    if (run) body.append(h('h3', null, `This run (#${run.num})`));
    if (mn && mn.group && run) {
      const g = groupState(model, path, (p) => statusOf(run, p));
      body.append(kv([['inside', Object.entries(g.counts).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(' · ') || 'nothing ran yet']]));
      const items = run.items.get(path);
      if (items && items.size) {
        const list = [...items.entries()].sort((a, b) => a[0] - b[0]);
        const bad = list.filter(([, i]) => i.status === 'failed').length, done = list.filter(([, i]) => i.status === 'completed').length;
        body.append(kv([['item runs', `${list.length} (${done} completed, ${bad} failed, ${list.length - done - bad} running)`]]));
        const strip = h('div', { class: 'np-items' });
        for (const [k, it] of list.slice(0, 200)) strip.append(h('span', { class: 'np-item', 'data-status': it.status, title: `item ${k}: ${it.status}` }, String(k)));
        body.append(strip);
      }
    }
    if (n) {
      body.append(kv([
        ['executions', `${fmtInt(n.count)} completed, ${fmtInt(n.failures)} failed`],
        ['retries', `${fmtInt(n.retries)}${n.maxRetries !== undefined ? ` (${n.maxRetries} attempts allowed per execution)` : ''}`],
        ['fallbacks', fmtInt(n.fallbacks)],
        ['last duration', fmtDur(n.lastDur)],
        ['items', n.items.size ? `${n.items.size} (batch)` : '–'],
      ]));
      if (n.lastError) body.append(h('div', { class: 'np-error' }, h('strong', null, 'last error: '), n.lastError));
      if (n.execs.length) {
        const utc = this.cb.utc();
        const tb = h('tbody');
        for (const x of n.execs.slice().reverse()) {
          tb.append(h('tr', { 'data-status': x.status },
            h('td', null, fmtClock(x.startMs, utc)),
            h('td', null, x.item !== undefined ? String(x.item) : ''),
            h('td', { class: 'num' }, fmtDur(x.dur)),
            h('td', null, `${GLYPH[x.status] || ''} ${x.status}${x.fallback ? ' (fallback)' : ''}${x.suppressed ? ' (error suppressed)' : ''}`),
            h('td', null, x.action || ''),
            h('td', { class: 'num' }, String(x.attempts)),
            h('td', { class: 'np-err' }, x.error || x.note || '')));
        }
        body.append(h('div', { class: 'np-sub' }, `recent executions (newest first, times ${utc ? 'UTC' : 'local'})`),
          h('div', { class: 'np-table-wrap' }, h('table', { class: 'np-table' },
            h('thead', null, h('tr', null, h('th', null, 'start'), h('th', null, 'item'), h('th', { class: 'num' }, 'duration'), h('th', null, 'outcome'), h('th', null, 'action'), h('th', { class: 'num' }, 'tries'), h('th', null, 'error / note'))),
            tb)));
      }
      this.renderOwn(body, n, status);
    } else if (run && !(mn && mn.group)) {
      body.append(h('p', { class: 'muted' }, 'Nothing ran here in this run.'));
    }
    if (this.cb.server !== false) this.renderServer(body, server);
    this.renderHistory(body, path, mn);
    const nb = el.querySelector('.panel-body');
    if (nb) nb.scrollTop = keepScroll;
  }

  /** What the node reported about itself in this run: progress, log lines, metrics, custom events. */
  renderOwn(body, n, status) {
    const utc = this.cb.utc();
    if (n.progress && (status === 'running' || status === 'retrying')) body.append(h('div', { class: 'np-sub' }, 'progress'), progressBar(n.progress));
    // Which execution a line belongs to, when the node ran more than once (batch items, loops).
    const execNo = new Map(n.execs.map((x, i) => [x.corr + '\u0000' + (x.item ?? ''), i + 1]));
    const label = n.execs.length > 1 ? (l) => (l.item !== undefined ? `item ${l.item}` : `run ${execNo.get(l.corr + '\u0000') || '?'}`) : null;
    if (n.logs.length) {
      body.append(h('div', { class: 'np-sub' }, `log lines (${fmtInt(n.logs.length)}${n.logsDropped ? `, ${fmtInt(n.logsDropped)} older ones not kept` : ''})`));
      const list = logList(n.logs, { utc, label });
      for (const d of list.querySelectorAll('details')) {
        const li = d.parentNode, i = [...li.parentNode.children].indexOf(li);
        const l = n.logs[n.logs.length - list.children.length + i];
        const key = l ? `${l.corr}:${l.ord}:${l.tsMs}` : '';
        d.setAttribute('data-key', key);
        if (this.openFields.has(key)) d.open = true;
      }
      body.append(list);
    }
    if (n.metrics.size) body.append(h('div', { class: 'np-sub' }, 'metrics'), metricsTable(n.metrics));
    if (n.custom.length) body.append(h('div', { class: 'np-sub' }, `custom events (${fmtInt(n.custom.length + n.customDropped)})`), customList(n.custom, { utc }));
  }

  renderServer(body, server) {
    body.append(h('h3', null, 'All runs (server)'));
    if (server) {
      body.append(kv([
        ['started', fmtInt(server.count)], ['completed', fmtInt(server.completed)], ['failed', fmtInt(server.failed)],
        ['retries', fmtInt(server.retries)], ['error events', fmtInt(server.errors)],
        ['average', server.completed + server.failed ? fmtDur(server.avg) : '–'], ['p95 (last 256)', server.completed + server.failed ? fmtDur(server.p95) : '–'],
      ]));
    } else body.append(h('p', { class: 'muted' }, 'The server has no statistics for this path (yet).'));
  }

  /** Durations over time from the run history (fetched once per node and range). */
  renderHistory(body, path, mn) {
    if (!this.cb.stats || (mn && !mn.parent)) return;
    const key = path + '\u0000' + this.range;
    if (!this.stats || this.stats.key !== key) {
      this.stats = { key, state: 'loading' };
      this.cb.stats(path, this.range).then((r) => {
        if (!this.stats || this.stats.key !== key) return;
        this.stats = r.ok ? { key, state: 'ok', value: r.stats } : { key, state: 'error', error: r.error };
        if (this.path === path) this.render(this.lastRun, this.lastMetrics);
      });
    }
    const pick = h('span', { class: 'btn-group np-ranges', role: 'group', 'aria-label': 'Time range' });
    for (const [r, title] of RANGES) {
      const b = h('button', { class: 'btn btn-small', type: 'button', 'aria-pressed': String(r === this.range), title }, r);
      b.addEventListener('click', () => { this.range = r; this.render(this.lastRun, this.lastMetrics); const again = this.el.querySelector('.np-ranges [aria-pressed="true"]'); if (again) again.focus(); });
      pick.append(b);
    }
    const sec = h('section', { class: 'np-history', 'data-state': this.stats.state, 'aria-label': 'Durations over time' },
      h('h3', null, 'Durations over time (history)'), pick);
    if (this.stats.state === 'loading') sec.append(h('p', { class: 'muted' }, 'Reading the run history…'));
    else if (this.stats.state === 'error') sec.append(h('p', { class: 'muted' }, `No history: ${this.stats.error}`));
    else sec.append(statsChart(this.stats.value, { utc: this.cb.utc(), width: 380, height: 130 }));
    body.append(sec);
  }
}

function kv(rows) {
  const dl = h('dl', { class: 'np-kv' });
  for (const [k, v] of rows) dl.append(h('dt', null, k), h('dd', null, v));
  return dl;
}

export { setText };
