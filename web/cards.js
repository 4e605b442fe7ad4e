/*
 * cards.js - the metric cards and the per-node table.
 *
 * Cards read the server's metrics message exactly as docs/protocol.md
 * defines it (no other spellings), plus what only this tab knows: run
 * outcomes (success / handled error / failed) and its own receive rate.
 * Each card says what it counts.  The node table lists the server's
 * per-node statistics (metrics.nodes, keyed by node path), in the order of
 * the shown run's topology.
 */
import { $, h, setText, setAttr } from './dom.js';
import { fmtInt, fmtCompact, fmtDur, fmtPct } from './fmt.js';
import { GLYPH } from './graph-view.js';

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function setCard(id, value, sub, flag, title) {
  const card = $(id);
  setText(card.querySelector('.card-value'), value);
  setText(card.querySelector('.card-sub'), sub || '');
  if (flag !== undefined) card.classList.toggle('nonzero', !!flag);
  if (title !== undefined) card.title = title;
}

/**
 * m: the server's metrics (or null), st: the store, tab: {rate, clientDropped, localSkipped}.
 */
export function refreshCards(m, st, tab) {
  const M = m || {};
  const bt = M.events_by_type || {};
  const types = ['lifecycle', 'data', 'error', 'metric', 'log'].filter((k) => num(bt[k]));
  setCard('card-total', fmtInt(num(M.total_events) ?? st.total),
    types.map((k) => `${fmtCompact(bt[k])} ${k}`).join(' · ') || (m ? '' : 'seen by this tab'),
    undefined, 'Events the server accepted, by event type' + (m ? '' : ' (this tab only: no server metrics yet)'));
  const nodesSeen = M.nodes && typeof M.nodes === 'object' ? Object.keys(M.nodes).length : 0;
  setCard('card-active-nodes', fmtInt(num(M.active_nodes)), `of ${fmtInt(nodesSeen)} workflow nodes seen`, undefined,
    'Nodes running or retrying now (the dispatcher is not a workflow node and is not counted)');
  // Run outcomes this tab knows.
  const o = { success: 0, handled: 0, failed: 0, running: 0 };
  for (const run of st.runs.values()) if (run.outcome in o) o[run.outcome]++;
  const finished = o.success + o.handled + o.failed;
  setCard('card-active-workflows', fmtInt(num(M.active_workflows)), `${fmtInt(st.runs.size)} runs known to this tab`, undefined,
    'Workflow runs in progress (server)');
  setCard('card-success', finished ? fmtPct(o.success / finished) : '–',
    `${GLYPH.completed} ${o.success} ok · ⚠ ${o.handled} handled · ${GLYPH.failed} ${o.failed} failed`, o.failed + o.handled > 0,
    'Runs that finished without taking an error path, of the finished runs this tab knows. "Handled": succeeded through an error path ' +
    '(e.g. storage -error-> error_handler). Server: ' + (M.workflow_success_rate === null || M.workflow_success_rate === undefined ? 'no finished runs'
      : `${fmtPct(M.workflow_success_rate)} of runs ended with status success (handled ones included)`));
  const bn = M.events_by_name || {};
  const errs = num(M.errors) ?? st.errors;
  setCard('card-errors', fmtInt(errs),
    `${fmtInt(bn.node_failed || 0)} failed · ${fmtInt(bn.retry_attempted || 0)} retries · ${fmtInt(bn.fallback_triggered || 0)} fallbacks`, errs > 0,
    'Error events: node failures, retry attempts, fallbacks and suppressed errors (a retry that then succeeds counts here too). Click to list them.');
  setCard('card-eps', fmtCompact(num(M.events_per_second) ?? tab.rate), `${fmtCompact(tab.rate)}/s reach this tab`, undefined,
    'Events per second accepted by the server (5 s average)');
  const drop = (num(M.dropped) || 0) + (num(M.ws_dropped) || 0);
  const mine = tab.clientDropped + tab.localSkipped;
  const sub = [];
  if (num(M.dropped)) sub.push(`${fmtInt(M.dropped)} by producers`);
  if (num(M.ws_dropped)) sub.push(`${fmtInt(M.ws_dropped)} to slow pages`);
  sub.push(mine ? `${fmtInt(mine)} for this tab` : 'none for this tab');
  setCard('card-dropped', fmtInt(drop), sub.join(' · '), drop + mine > 0,
    'Events producers reported dropped (queue full, breaker open) plus messages the server skipped for pages that fell behind');
}

export class NodeTable {
  /** cb: {select(path)} */
  constructor(tbody, srcEl, cb) {
    this.tbody = tbody;
    this.srcEl = srcEl;
    this.rows = new Map();
    tbody.addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) cb.select(tr.getAttribute('data-path')); });
    tbody.addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr');
      if (!tr) return;
      if (e.key === 'Enter' || e.key === ' ') { cb.select(tr.getAttribute('data-path')); e.preventDefault(); }
      else if (e.key === 'ArrowDown' && tr.nextElementSibling) { tr.nextElementSibling.focus(); e.preventDefault(); }
      else if (e.key === 'ArrowUp' && tr.previousElementSibling) { tr.previousElementSibling.focus(); e.preventDefault(); }
    });
  }
  /** m: server metrics, run: the shown run (or null), errorActions: Map(path -> n) */
  refresh(m, run, errorActions) {
    const nodes = m && m.nodes && typeof m.nodes === 'object' ? m.nodes : {};
    // metrics.nodes is keyed by node_path, or by node_id for producers that
    // send no paths (docs/protocol.md): such a key names the shown run's
    // only node with that id.
    const model = run && run.model;
    const toPath = (key) => {
      if (!model || model.byPath.has(key) || key.includes('/')) return key;
      const ps = model.idIndex.get(key);
      return ps && ps.length === 1 ? ps[0] : key;
    };
    const order = new Map();
    if (model) { let i = 0; for (const p of model.byPath.keys()) order.set(p, i++); }
    const rank = (k) => { const p = toPath(k); return order.has(p) ? order.get(p) : 1e9; };
    const keys = Object.keys(nodes).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)).slice(0, 150);
    const keep = new Set();
    let prev = null;
    for (const key of keys) {
      const x = nodes[key];
      if (!x || typeof x !== 'object') continue;
      keep.add(key);
      const path = toPath(key);
      let tr = this.rows.get(key);
      if (tr && tr.getAttribute('data-path') !== path) { tr.remove(); this.rows.delete(key); tr = null; }
      if (!tr) {
        const label = path.includes('/') ? path.slice(path.indexOf('/') + 1) : path;
        tr = h('tr', { tabindex: '0', 'data-path': path, title: key },
          h('td', null, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'sr-status' }), label),
          h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }));
        this.rows.set(key, tr);
      }
      const c = tr.children;
      setText(c[1], fmtInt(num(x.count) ?? 0));
      const timed = (num(x.completed) || 0) + (num(x.failed) || 0) > 0;
      setText(c[2], timed ? fmtDur(num(x.avg)) : '–');
      setText(c[3], timed ? fmtDur(num(x.p95)) : '–');
      setText(c[4], fmtInt(num(x.failed) ?? 0));
      setText(c[5], fmtInt(num(x.retries) ?? 0));
      const ea = errorActions.get(path) || 0;
      setText(c[6], fmtInt(ea));
      c[4].classList.toggle('bad', (num(x.failed) || 0) > 0);
      c[5].classList.toggle('warn', (num(x.retries) || 0) > 0);
      c[6].classList.toggle('warn', ea > 0);
      const ns = run && run.nodes.get(path);
      const st = ns ? ns.status : 'idle';
      setAttr(tr, 'data-status', st);
      setText(c[0].children[1], GLYPH[st] + ' ');
      const want = prev ? prev.nextSibling : this.tbody.firstChild;
      if (want !== tr) this.tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const [k, tr] of this.rows) if (!keep.has(k)) { tr.remove(); this.rows.delete(k); }
    setText(this.srcEl, m ? 'all runs, from the server · status: shown run' : 'waiting for server metrics');
  }
}
