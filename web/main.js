/*
 * main.js - the dashboard page: wires the transport, the store and the views.
 *
 * Messages from /ws (docs/protocol.md) are queued as they arrive and applied
 * once per animation frame: events go through the store's reducer, the views
 * redraw only what the frame changed.  Slow-moving parts (cards, node table,
 * pickers, the node panel) refresh on timers.  The module split:
 *   transport.js  socket + reconnect      protocol.js  reading messages
 *   store.js      state reducer           model.js     nested topology
 *   layout.js     layered layout          graph-view.js the SVG graph
 *   chart.js      throughput              log.js       event log + detail
 *   cards.js      cards + node table      panel.js     node panel
 *   router.js     #run=…&node=…, #/runs   theme.js     theme + time zone
 *   fmt.js        formatting              dom.js       safe element building
 *   runs-page.js  the runs page           run-page.js  one stored run's page
 *   history.js    reading the history     api.js       GET with the token
 * The live view keeps running while the runs pages are shown.
 */
import { $, h, setText, textMeasurer } from './dom.js';
import { fmtClock, fmtDur, fmtInt, idTail, distinctPart, zoneLabel, zoneShort, clip } from './fmt.js';
import { parseEvent, messageType, pathLeaf } from './protocol.js';
import { createStore, applyEvent, applySummary, runFromEvents, runLabel, rootOf, OUTCOME_TEXT, OUTCOME_ICON } from './store.js';
import { defaultCollapsed, groupPaths, visibleAncestor } from './model.js';
import { GraphView } from './graph-view.js';
import { ThroughputChart } from './chart.js';
import { EventLog } from './log.js';
import { refreshCards, NodeTable } from './cards.js';
import { NodePanel } from './panel.js';
import { bindRouter, withoutToken, runPageHref, parseLocation, formatLocation } from './router.js';
import { Connection } from './transport.js';
import { Preferences } from './theme.js';
import { createApi } from './api.js';
import { parseRunPage, runUrl, nodeStatsUrl, parseNodeStats } from './history.js';
import { runFromHistory } from './history-run.js';
import { progressOf } from './store.js';
import { RunsPage } from './runs-page.js';
import { RunPage } from './run-page.js';

const params = new URLSearchParams(location.search);
const TOKEN = params.get('token') || '';
const QUEUE_MAX = 200000;   // a hidden tab gets few frames: beyond this, the oldest queued events are skipped (counted)
const api = createApi(TOKEN);

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------
const st = createStore();
const tab = {
  metrics: null, uptime: undefined, received: 0, baseline: 0, sinceInitial: 0, applied: 0,
  frames: 0, lastFrameMs: 0, maxFrameMs: 0, clientDropped: 0, localSkipped: 0,
};
let selectedRun = '';           // '' follows the latest run
let shownRunId = '';
let replay = null;              // {run, evs, i, timer, done}
const collapsedByTopo = new Map();
const pending = new Map();      // workflow_id -> 'hydrate' | 'replay'
const hydrated = new Set();     // runs whose stored events were fetched (and finished then)
let setRoute = () => {};
let currentPage = '';           // 'live' | 'runs' | 'run'
let graphStale = false;         // the live graph is not drawn while another page is shown

let viewsReady = false;
const prefs = new Preferences((what) => {
  if (!viewsReady) return;
  setText($('theme-btn'), 'theme: ' + prefs.theme);
  $('theme-btn').setAttribute('aria-label', `Theme: ${prefs.theme} (${prefs.effective}); click to change`);
  setText($('zone-btn'), prefs.utc ? 'times: UTC' : `times: local (${zoneLabel(false)})`);
  setText($('log-time-head'), `time ${zoneShort(prefs.utc)}`);
  $('log-time-head').title = prefs.utc ? 'Times in UTC (the zone of the events\' timestamps)' : `Times in this browser's zone (${zoneLabel(false)})`;
  if (what === 'theme' && chart) chart.readColors();
  if (what === 'zone' && log) { log.redrawAll(); log.render(); pickerVersion = -1; refreshPickers(); panelRefresh(); }
  if (what === 'zone' && runsPage) { runsPage.redrawTimes(); runPage.redrawTimes(); }
});
let runsPage = null, runPage = null;

const measure = textMeasurer();
const graph = new GraphView($('graph'), $('minimap'), $('graph-empty'), {
  measure,
  select: (path) => openNode(path),
  toggle: (path) => toggleGroup(path),
  layoutDone: () => {},
});
const chart = new ThroughputChart($('chart'));
const log = new EventLog($('log'), $('log-count'), $('detail'), {
  select: () => {},
  open: (ev) => { if (ev.rpath && ev.root) { if (ev.root !== displayedRunId()) pickRun(ev.root); openNode(ev.rpath); } },
  runLabel: (ev) => { const r = st.runs.get(ev.root || ev.wf); return r ? '#' + r.num : idTail(ev.wf, 6); },
  utc: () => prefs.utc,
  schedule: () => schedule(),
});
const table = new NodeTable($('node-tbody'), $('node-table-src'), { select: (path) => openNode(path) });
const panel = new NodePanel($('node-panel'), {
  close: () => closeNode(),
  showInLog: (path) => { filterLogByNode(path); },
  center: (path) => { revealPath(path); },
  toggle: (path) => toggleGroup(path),
  utc: () => prefs.utc,
  stats: (path, range) => nodeStats(path, range),
});
viewsReady = true;
prefs.apply();

// ---------------------------------------------------------------------------
// Which run is shown
// ---------------------------------------------------------------------------
function displayedRunId() {
  if (selectedRun) return selectedRun;
  return st.latestRun;
}
function shownRun() {
  return replay ? replay.run : st.runs.get(displayedRunId()) || null;
}
function collapsedFor(run) {
  if (!run || !run.model) return new Set();
  let c = collapsedByTopo.get(run.topoKey);
  if (!c) { c = defaultCollapsed(run.model, 400); collapsedByTopo.set(run.topoKey, c); }
  return c;
}
function pickRun(id) {
  stopReplay();
  selectedRun = id;
  $('run-picker').value = id;
  setRoute({ run: id, node: '' });
  closeNode(true);
  redrawRun();
}
function redrawRun() {
  const run = shownRun();
  shownRunId = run ? run.id : '';
  // Another page in front: the live graph is laid out when it is shown again.
  if (currentPage === 'live' || !currentPage) { graph.show(run, collapsedFor(run)); graphStale = false; } else graphStale = true;
  if (run && !replay) ensureLoaded(run);
  // A run picked by address that this tab has not heard of: ask the server
  // (its memory, then Redis, then the run history).
  // Over the socket once it is open (the 'initial' message redraws): the
  // REST route answers an unknown run with a 404 the console would report.
  if (!run && selectedRun && conn.isOpen && !pending.has(selectedRun) && !hydrated.has(selectedRun)) requestRun(selectedRun, 'hydrate');
  refreshSummary();
  panelRefresh();
}

/**
 * Fetch a run's stored events once when the tab did not see it from its
 * start (a run that finished before the page opened, or was half-way): its
 * topology and every node's state, nested runs included.  Events already
 * seen are skipped (event_id), so fetching a run in progress loses nothing.
 */
function ensureLoaded(run) {
  if (pending.has(run.id) || hydrated.has(run.id) || run.liveFromStart) return;
  requestRun(run.id, 'hydrate');
}
function requestRun(id, why) {
  pending.set(id, why);
  if (conn.send({ type: 'get_workflow_events', workflow_id: id })) return;
  // No WebSocket: the REST route answers the same.
  fetch('api/workflows/' + encodeURIComponent(id) + '/events', { headers: TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {} })
    .then((r) => r.json().then((j) => ({ ok: r.ok, j })))
    .then(({ ok, j }) => onRunEvents({ workflow_id: id, found: ok, events: ok ? j.events : [], graph: ok ? j.graph : null, status: ok && j.run ? j.run.status : null, error: ok ? undefined : j.error }))
    .catch((e) => { pending.delete(id); showNotice(`Could not fetch run ${idTail(id, 6)}: ${e.message}`); });
}

/** A workflow_events reply (docs/protocol.md): hydrate the run, or replay it. */
function onRunEvents(msg) {
  const id = typeof msg.workflow_id === 'string' ? msg.workflow_id : '';
  const why = pending.get(id) || 'hydrate';
  pending.delete(id);
  const events = Array.isArray(msg.events) ? msg.events : [];
  if (msg.found === false) {
    hydrated.add(id);
    fromHistory(id, why, typeof msg.error === 'string' ? msg.error : '');
    return;
  }
  if (why === 'replay') { startReplay(id, events, msg.graph); return; }
  const run = st.runs.get(id);
  if (msg.graph && run) applySummary(st, { workflow_id: id, status: typeof msg.status === 'string' ? msg.status : 'unknown' }, msg.graph);
  for (const raw of events) {
    const ev = parseEvent(raw);
    if (ev) applyEvent(st, ev);
  }
  const r = st.runs.get(id);
  if (r) r.summaryOnly = false;
  hydrated.add(id);
  if (rootOf(st, id) === id) hydrateNested(id);
  if (rootOf(st, id) === displayedRunId()) redrawRun();
  st.version++;
}

/**
 * A run the live view no longer holds (evicted from the server's memory, or
 * from before a restart) is read from the run history (GET /api/runs/<id>):
 * its graph coloured from its stored node executions, nested runs included.
 * A replay of such a run replays its stored events.
 */
async function fromHistory(id, why, redisError) {
  const r = await api.get(runUrl(id));
  const page = r.ok ? parseRunPage(r.body) : null;
  if (!page) {
    showNotice(`Run ${idTail(id, 6)} is unknown to the server (never seen, or evicted)` + (redisError ? `: ${redisError}` : '') +
      (r.status === 404 ? '' : ` · run history: ${r.error}`));
    return;
  }
  if (why === 'replay') {
    const ev = await api.get('api/runs/' + encodeURIComponent(id) + '/events?limit=10000');
    if (ev.ok && Array.isArray(ev.body.events)) startReplay(id, ev.body.events, page.run.topology);
    return;
  }
  const old = st.runs.get(id);
  const run = runFromHistory(page, { store: st });
  if (old) run.num = old.num; else st.runSeq = Math.max(st.runSeq, run.num);
  run.fromHistory = true;
  st.runs.set(id, run);
  st.version++;
  if (id === displayedRunId()) redrawRun();
}

/** A node's durations over time, from the run history (the node panel's chart). */
function nodeStats(path, range) {
  const url = nodeStatsUrl(path, range, 40);
  if (!url) return Promise.resolve({ ok: false, error: 'not a node of a graph' });
  return api.get(url).then((r) => (r.ok ? { ok: true, stats: parseNodeStats(r.body) } : { ok: false, error: r.error }));
}

/**
 * A run's nested runs (sub-graphs, batch items) are runs of their own on the
 * server: fetch the ones the run list names as its descendants
 * (run summaries' parent_workflow_id) so their nodes get their final state.
 */
function hydrateNested(rootId) {
  fetch('api/workflows', { headers: TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {} })
    .then((r) => (r.ok ? r.json() : null))
    .then((j) => {
      if (!j || !Array.isArray(j.workflows)) return;
      for (const w of j.workflows) applySummary(st, w);
      for (const w of j.workflows) {
        const id = w.workflow_id;
        if (typeof w.parent_workflow_id === 'string' && w.parent_workflow_id && rootOf(st, id) === rootId && !hydrated.has(id) && !pending.has(id)) requestRun(id, 'hydrate');
      }
    })
    .catch(() => {});
}

// ---------------------------------------------------------------------------
// Applying messages, once per frame
// ---------------------------------------------------------------------------
let queue = [];
let queuedEvents = 0;
let rafId = 0, timerId = 0;
function schedule() {
  if (!rafId) rafId = requestAnimationFrame(flush);
  // A hidden tab gets no animation frames; a slow timer keeps state current.
  if (!timerId) timerId = setTimeout(flush, 500);
}
function enqueue(item) {
  const last = queue[queue.length - 1];
  if (item.events && last && last.events) for (const ev of item.events) last.events.push(ev);
  else queue.push(item);
  if (item.events) {
    queuedEvents += item.events.length;
    while (queuedEvents > QUEUE_MAX && queue.length) {
      const first = queue[0];
      if (!first.events) { queue.shift(); continue; }
      const drop = Math.min(first.events.length, queuedEvents - QUEUE_MAX);
      first.events.splice(0, drop);
      queuedEvents -= drop;
      tab.localSkipped += drop;
      if (!first.events.length) queue.shift();
    }
  }
  schedule();
}

function handleMessage(msg) {
  switch (messageType(msg)) {
    case 'event': enqueue({ events: [msg.data] }); break;
    case 'events': if (Array.isArray(msg.data)) enqueue({ events: msg.data }); break;
    case 'initial': if (msg.data && typeof msg.data === 'object') enqueue({ initial: msg.data }); break;
    case 'metrics': if (msg.data && typeof msg.data === 'object') setMetrics(msg.data); break;
    case 'workflow_events': onRunEvents(msg); break;
    case 'notice': {
      const d = msg.data && typeof msg.data === 'object' ? msg.data : {};
      if (typeof d.dropped === 'number') tab.clientDropped += d.dropped;
      showNotice(typeof d.message === 'string' ? d.message : 'notice from the server');
      break;
    }
    case 'error': showNotice('Server: ' + (typeof msg.message === 'string' ? msg.message : 'error')); break;
    default: break;   // pong, and types this page does not know
  }
}

function setMetrics(m) {
  const up = typeof m.uptime === 'number' ? m.uptime : undefined;
  if (up !== undefined && tab.uptime !== undefined && up + 0.5 < tab.uptime) {
    showBanner('restart', `The server restarted at about ${fmtClock(Date.now() - up * 1000, prefs.utc, false)} ${zoneLabel(prefs.utc)} ` +
      `(its uptime went from ${fmtDur(tab.uptime)} to ${fmtDur(up)}): its counters started again from zero.`);
  }
  if (up !== undefined) tab.uptime = up;
  tab.metrics = m;
  serverProgress(m);
}

/**
 * metrics.nodes[path].progress (docs/protocol.md): the progress of a node
 * running now, for a page that missed its node_progress events (opened
 * mid-run).  Events the tab saw itself take precedence.
 */
function serverProgress(m) {
  const run = st.runs.get(displayedRunId());
  if (!run || !m.nodes || typeof m.nodes !== 'object') return;
  const changed = new Set();
  for (const [path, n] of run.nodes) {
    const sp = m.nodes[path] && progressOf(m.nodes[path].progress);
    if (sp && (n.status === 'running' || n.status === 'retrying') && (!n.progress || n.progress.fromServer)) {
      if (!n.progress || n.progress.done !== sp.done || n.progress.total !== sp.total) { n.progress = Object.assign(sp, { fromServer: true, ord: -Infinity }); changed.add(path); }
    }
  }
  if (changed.size && graph.run === run && !replay) graph.update(changed);
}

function flush() {
  if (rafId) { cancelAnimationFrame(rafId); rafId = 0; }
  if (timerId) { clearTimeout(timerId); timerId = 0; }
  const t0 = performance.now();
  const items = queue;
  queue = [];
  queuedEvents = 0;
  const frame = { byRun: new Map(), redraw: false, runs: false };
  for (const it of items) {
    if (it.initial) applyInitial(it.initial, frame);
    else {
      tab.received += it.events.length;
      tab.sinceInitial += it.events.length;
      applyEvents(it.events, frame, false);
    }
  }
  render(frame);
  const dt = performance.now() - t0;
  tab.frames++;
  tab.lastFrameMs = dt;
  if (dt > tab.maxFrameMs) tab.maxFrameMs = dt;
}

function applyInitial(d, frame) {
  if (d.metrics && typeof d.metrics === 'object') { setMetrics(d.metrics); chart.seed(d.metrics.throughput); }
  if (Array.isArray(d.workflows)) for (const w of d.workflows) applySummary(st, w);
  // The server counts every later event exactly once after a snapshot:
  // baseline + sinceInitial is its total when nothing was lost on the way.
  tab.baseline = d.metrics && typeof d.metrics.total_events === 'number' ? d.metrics.total_events : 0;
  tab.sinceInitial = 0;
  applyEvents(Array.isArray(d.events) ? d.events : [], frame, true);
  // No run with a topology among the last events: the server's latest run.
  const ng = d.network_graph;
  if (!st.latestRun && ng && typeof ng.workflow_id === 'string' && ng.workflow_id) {
    const run = st.runs.get(ng.workflow_id);
    if (run && !st.latestRun) st.latestRun = run.id;
  }
  if (!st.latestRun) {
    let newest = null;
    for (const r of st.runs.values()) if (!newest || (r.startMs || 0) >= (newest.startMs || 0)) newest = r;
    if (newest) st.latestRun = newest.id;
  }
  frame.redraw = true;
  frame.runs = true;
}

function applyEvents(raws, frame, backlog) {
  const evs = [];
  let errs = 0;
  const latestBefore = st.latestRun;
  for (const raw of raws) {
    const ev = parseEvent(raw);
    if (!ev) continue;
    ev.recv = Date.now();
    const fx = applyEvent(st, ev);
    if (fx.dup) continue;
    tab.applied++;
    evs.push(ev);
    if (ev.type === 'error') errs++;
    // What changed, per run: the views take the shown run's share at render
    // time (the shown run may change within this frame, in follow mode).
    if (fx.runId && (fx.paths.size || fx.edges.length || fx.topo)) {
      let ch = frame.byRun.get(fx.runId);
      if (!ch) { ch = { paths: new Set(), edges: [], topo: false }; frame.byRun.set(fx.runId, ch); }
      for (const p of fx.paths) ch.paths.add(p);
      for (const k of fx.edges) ch.edges.push(k);
      if (fx.topo) ch.topo = true;
    }
    if (fx.outcome) summaryDirty = true;
    if (fx.outcome || fx.started) frame.runs = true;
    // A run seen from its start on the live stream needs no fetch of its stored events.
    if (fx.started && !backlog) { const r = st.runs.get(fx.runId); if (r) r.liveFromStart = true; }
  }
  if (!selectedRun && st.latestRun !== latestBefore) frame.redraw = true;
  if (!backlog) chart.add(Date.now(), evs.length, errs);
  log.push(evs);
}

function render(frame) {
  const now = performance.now();
  if (!replay) {
    const run = st.runs.get(displayedRunId()) || null;
    const ch = run && frame.byRun.get(run.id);
    if (frame.redraw || (ch && ch.topo) || (run ? run.id : '') !== shownRunId || (run && graph.run !== run && !graphStale)) redrawRun();
    else if (ch && ch.paths.size && !graphStale) graph.update(ch.paths);
    if (ch && !graphStale) for (const k of ch.edges) graph.lightEdge(k, now);
    if (ch && ch.paths.size && panel.open) panelDirty = true;
  }
  graph.tick(now);
  log.render();
  chart.draw(Date.now());
}

// ---------------------------------------------------------------------------
// Slow refresh: cards, table, pickers, run summary, node panel
// ---------------------------------------------------------------------------
let summaryDirty = true, panelDirty = false;
function refreshSlow() {
  refreshCards(tab.metrics, st, { rate: chart.rate(Date.now()), clientDropped: tab.clientDropped, localSkipped: tab.localSkipped });
  table.refresh(tab.metrics, shownRun(), st.errorActions);
  log.updateCount();
  refreshSummary();
  if (panelDirty) { panelDirty = false; panelRefresh(); }
}
setInterval(refreshSlow, 250);

let tailCache = { version: -1, part: null };
function runTail() {
  if (tailCache.version !== st.version) tailCache = { version: st.version, part: distinctPart([...st.runs.keys()], 4, 12) };
  return tailCache.part;
}
function labelOf(run, withClock = true) {
  const clock = withClock && Number.isFinite(run.startMs) ? fmtClock(run.startMs, prefs.utc, false) : '';
  const d = runTail();
  return runLabel(run, idTail(run.id, d.n, d.from), clock);
}

function refreshSummary() {
  summaryDirty = false;
  const el = $('run-summary');
  const run = shownRun();
  if (!run) { el.setAttribute('data-outcome', 'none'); setText(el, ''); el.kgMain = ''; return; }
  const parts = [];
  parts.push(`${replay ? 'Replay of ' : ''}run #${run.num} · ${OUTCOME_ICON[run.outcome]} ${OUTCOME_TEXT[run.outcome]}`);
  if (Number.isFinite(run.startMs)) parts.push(`started ${fmtClock(run.startMs, prefs.utc, false)} ${zoneLabel(prefs.utc)}`);
  if (run.duration !== undefined) parts.push(`took ${fmtDur(run.duration)}`);
  if (run.finalAction) parts.push(`final action “${run.finalAction}”`);
  parts.push(`${fmtInt(run.events)} events, ${fmtInt(run.errorEvents)} error events`);
  if (run.retries) parts.push(`${run.retries} retries`);
  if (!run.model) parts.push(pending.has(run.id) ? 'fetching its topology…' : 'topology unknown');
  let err = '';
  if (run.outcome === 'handled' && run.errorPath) err = `error path: ${pathLeaf(run.errorPath.path)} → ${run.errorPath.action} → ${pathLeaf(run.errorPath.to)}${run.errorPath.reason ? ': ' + run.errorPath.reason : ''}`;
  else if (run.errors.length) {
    // The node error says where; the run's own error (workflow_completed) is the fallback.
    const nodeErrs = run.errors.filter((e) => e.name !== 'workflow_completed');
    const e = (run.outcome === 'failed' && nodeErrs.find((x) => x.name === 'node_failed')) || nodeErrs[nodeErrs.length - 1] || run.errors[run.errors.length - 1];
    err = e.name === 'workflow_completed' ? `run failed: ${e.msg}` : `${run.outcome === 'failed' && e.name === 'node_failed' ? 'failed at' : 'last error at'} ${pathLeaf(e.path)}: ${e.msg}`;
  }
  el.setAttribute('data-outcome', replay ? 'replay' : run.outcome);
  const link = $('run-page-link');
  if (link.getAttribute('href') !== runPageHref(run.id)) link.setAttribute('href', runPageHref(run.id));
  const main = parts.join(' · ');
  if (el.kgMain === main && el.kgErr === err && el.kgRun === run.id) return;   // unchanged: no re-announcement
  el.kgMain = main; el.kgErr = err; el.kgRun = run.id;
  while (el.firstChild) el.removeChild(el.firstChild);
  el.append(h('span', { class: 'rs-main' }, main));
  if (err) el.append(h('span', { class: 'rs-err' }, err));
  el.append(h('a', { class: 'rs-link', href: runPageHref(run.id), title: 'Timeline, events and export of this run, from the run history' }, 'timeline & events ↗'));
  el.title = `workflow ${run.id}`;
}

let pickerVersion = -1, wfOptVersion = -1, nodeOptKey = '';
function refreshPickers() {
  const picker = $('run-picker');
  if (pickerVersion !== st.version && document.activeElement !== picker) {
    pickerVersion = st.version;
    // Newest start first (runs are numbered in the order this tab learnt of
    // them, which batches can shuffle); runs without a known start last.
    const runs = [...st.runs.values()].reverse()
      .sort((a, b) => (Number.isFinite(b.startMs) ? b.startMs : -1e18) - (Number.isFinite(a.startMs) ? a.startMs : -1e18))
      .slice(0, 150);
    const frag = document.createDocumentFragment();
    const latest = st.runs.get(st.latestRun);
    frag.appendChild(new Option(latest ? `Follow the latest run (now #${latest.num})` : 'Follow the latest run', ''));
    const groups = new Map();
    for (const run of runs) {
      const key = run.topo ? run.topo.id || 'workflow' : 'topology not known yet';
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(run);
    }
    for (const [key, list] of groups) {
      const og = document.createElement('optgroup');
      og.label = key;
      for (const run of list) og.appendChild(new Option(labelOf(run), run.id));
      frag.appendChild(og);
    }
    while (picker.firstChild) picker.removeChild(picker.firstChild);
    picker.appendChild(frag);
    if (selectedRun && !st.runs.has(selectedRun)) picker.appendChild(new Option(`run ${idTail(selectedRun, 8)} (not known yet)`, selectedRun));
    picker.value = selectedRun;
    const cur = picker.options[picker.selectedIndex];
    picker.title = cur ? cur.text : '';
  }
  const fwf = $('f-workflow');
  if (wfOptVersion !== st.version && document.activeElement !== fwf) {
    wfOptVersion = st.version;
    const cur = fwf.value;
    while (fwf.options.length > 1) fwf.remove(1);
    for (const run of [...st.runs.values()].reverse().slice(0, 150)) fwf.appendChild(new Option(labelOf(run), run.id));
    fwf.value = cur && st.runs.has(cur) ? cur : '';
  }
  // Node filter and node search: the shown run's paths, else the server's.
  const run = shownRun();
  const paths = run && run.model ? [...run.model.byPath.keys()].filter((p) => p !== run.model.rootPath)
    : Object.keys((tab.metrics && tab.metrics.nodes) || {});
  const key = paths.join('\u0001');
  const fnode = $('f-node');
  if (key !== nodeOptKey && document.activeElement !== fnode) {
    nodeOptKey = key;
    const cur = fnode.value;
    while (fnode.options.length > 1) fnode.remove(1);
    for (const p of paths.slice(0, 400)) fnode.appendChild(new Option(p, p));
    if (cur && !paths.includes(cur)) fnode.appendChild(new Option(cur, cur));
    fnode.value = cur;
    const dl = $('node-search-list');
    while (dl.firstChild) dl.removeChild(dl.firstChild);
    for (const p of paths.slice(0, 400)) dl.appendChild(new Option(pathLeaf(p), p));
  }
}
setInterval(refreshPickers, 1000);

// ---------------------------------------------------------------------------
// Nodes: panel, groups, search
// ---------------------------------------------------------------------------
function openNode(path) {
  if (!path) return;
  const run = shownRun();
  panel.show(path, run, tab.metrics);
  graph.markSelected(path);
  if (!replay) setRoute({ run: selectedRun, node: path });
}
function closeNode(silent) {
  panel.hide();
  graph.markSelected('');
  if (!silent && !replay) setRoute({ run: selectedRun, node: '' });
}
function panelRefresh() {
  if (panel.open) panel.render(shownRun(), tab.metrics);
}
setInterval(() => { if (panel.open) panelDirty = true; }, 1000);

function toggleGroup(path) {
  const run = shownRun();
  if (!run || !run.model) return;
  const c = new Set(collapsedFor(run));
  if (c.has(path)) c.delete(path); else c.add(path);
  collapsedByTopo.set(run.topoKey, c);
  graph.show(run, c);
  graph.focusPath(path);
  panelRefresh();
}
function setAllGroups(collapse) {
  const run = shownRun();
  if (!run || !run.model) return;
  const c = collapse ? new Set(groupPaths(run.model)) : new Set();
  collapsedByTopo.set(run.topoKey, c);
  graph.show(run, c);
}
/** Show a node: open the groups that hide it, centre it, flash it. */
function revealPath(path) {
  const run = shownRun();
  if (!run || !run.model || !run.model.byPath.has(path)) return false;
  const c = collapsedFor(run);
  if (visibleAncestor(run.model, path, c) !== path) {
    const open = new Set(c);
    let n = run.model.byPath.get(path).parent;
    while (n) { open.delete(n.path); n = n.parent; }
    collapsedByTopo.set(run.topoKey, open);
    graph.show(run, open);
  }
  graph.reveal(path);
  graph.flash(path);
  graph.focusPath(path, true);
  return true;
}
function filterLogByNode(path) {
  const fnode = $('f-node');
  if (![...fnode.options].some((o) => o.value === path)) fnode.appendChild(new Option(path, path));
  fnode.value = path;
  applyFilters();
  $('log').focus();
}

$('node-search').addEventListener('change', (e) => findNode(e.target.value));
$('node-search').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); findNode(e.target.value); } });
function findNode(text) {
  const q = text.trim().toLowerCase();
  const run = shownRun();
  if (!q || !run || !run.model) return;
  const paths = [...run.model.byPath.keys()].filter((p) => p !== run.model.rootPath);
  const hit = paths.find((p) => p.toLowerCase() === q) || paths.find((p) => pathLeaf(p).toLowerCase() === q) ||
    paths.find((p) => p.toLowerCase().includes(q));
  if (!hit) { showNotice(`No node matches “${clip(text, 40)}”`); return; }
  revealPath(hit);
  openNode(hit);
}

// ---------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------
function requestReplay() {
  const id = displayedRunId();
  if (!id) { showNotice('No run to replay yet'); return; }
  requestRun(id, 'replay');
}
/**
 * Replay a run's stored events on a fresh copy: the graph shows the copy
 * while its events are applied, paced by their real gaps (clamped to
 * 40..600 ms per lifecycle or error event).  Live events keep arriving in
 * the store meanwhile; at the end the bar goes away and the live view
 * returns.
 */
function startReplay(id, raws, graphHint) {
  stopReplay(false);
  const evs = raws.map(parseEvent).filter(Boolean);
  if (!evs.length) { showNotice(`No stored events for run ${idTail(id, 6)}`); return; }
  evs.sort((a, b) => (a.seq !== undefined && b.seq !== undefined ? a.seq - b.seq : a.tsMs - b.tsMs));
  const live = st.runs.get(id);
  const run = runFromEvents(id, [], graphHint || (live && live.topo) || null);
  run.num = live ? live.num : run.num;
  replay = { run, evs, i: 0, timer: 0, done: false, store: createStore() };
  replay.store.runs.set(id, run);
  $('replay-bar').hidden = false;
  summaryDirty = true;
  graph.show(run, collapsedFor(run));
  stepReplay();
}
function stepReplay() {
  const r = replay;
  if (!r) return;
  const paths = new Set(), edges = [];
  let delay = 0, topo = false;
  while (r.i < r.evs.length) {
    const ev = r.evs[r.i++];
    const fx = applyEvent(r.store, ev);
    for (const p of fx.paths) paths.add(p);
    for (const k of fx.edges) edges.push(k);
    if (fx.topo) topo = true;
    if (ev.type === 'lifecycle' || ev.type === 'error') {
      const next = r.evs[r.i];
      if (next) { const gap = next.tsMs - ev.tsMs; delay = Math.min(600, Math.max(40, Number.isFinite(gap) ? gap : 120)); }
      break;
    }
  }
  const run = r.store.runs.get(r.run.id) || r.run;
  r.run = run;
  if (topo || graph.run !== run) graph.show(run, collapsedFor(run));
  else graph.update(paths);
  const now = performance.now();
  for (const k of edges) graph.lightEdge(k, now);
  setText($('replay-text'), `Replaying run #${run.num} · ${r.i}/${r.evs.length} events`);
  $('replay-fill').style.width = ((100 * r.i) / r.evs.length).toFixed(1) + '%';
  summaryDirty = true;
  if (r.i >= r.evs.length) {
    r.done = true;
    setText($('replay-text'), `Replay of run #${run.num} finished · ${r.evs.length} events · ${OUTCOME_TEXT[run.outcome] || run.outcome}`);
    r.timer = setTimeout(() => stopReplay(true), 2500);
    return;
  }
  r.timer = setTimeout(stepReplay, delay);
}
function stopReplay(redraw = true) {
  if (!replay) return;
  clearTimeout(replay.timer);
  replay = null;
  $('replay-bar').hidden = true;
  summaryDirty = true;
  if (redraw) redrawRun();
}

// ---------------------------------------------------------------------------
// Connection, banners, token
// ---------------------------------------------------------------------------
let noticeTimer = 0;
function showNotice(text) {
  const el = $('notice');
  setText(el, text);
  el.title = text;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, 8000);
}
let bannerKind = '';
function showBanner(kind, text) {
  bannerKind = kind;
  setText($('banner-text'), text);
  $('banner').hidden = false;
  $('banner').setAttribute('data-kind', kind);
}
function hideBanner(kind) {
  if (kind && bannerKind !== kind) return;
  bannerKind = '';
  $('banner').hidden = true;
}
$('banner-close').addEventListener('click', () => hideBanner());

let offlineSince = 0, countdown = 0;
function onStatus(state, retryAt) {
  const el = $('conn');
  el.setAttribute('data-state', state);
  clearInterval(countdown);
  if (state === 'open') {
    setText($('conn-text'), 'live');
    document.body.classList.remove('offline');
    if (offlineSince) hideBanner('offline');
    offlineSince = 0;
    dropTokenFromAddress();
    return;
  }
  if (state === 'connecting') { setText($('conn-text'), 'connecting…'); return; }
  if (!offlineSince) offlineSince = Date.now();
  document.body.classList.add('offline');
  const tick = () => {
    const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    setText($('conn-text'), `offline · retry in ${left} s`);
    showBanner('offline', `Disconnected from the server since ${fmtClock(offlineSince, prefs.utc, false)} ${zoneLabel(prefs.utc)}: ` +
      `the figures and states below are as they were then (greyed out). Reconnecting in ${left} s.`);
  };
  tick();
  countdown = setInterval(tick, 1000);
}

/**
 * With the dashboard's token given as ?token=, the server set its cookie
 * when it served this page (docs/protocol.md "Authentication").  Once a
 * request without the token succeeds, the cookie works: drop the token from
 * the address bar so it is not left in history or a copied link.
 */
let tokenChecked = false;
function dropTokenFromAddress() {
  if (tokenChecked || !TOKEN) return;
  tokenChecked = true;
  const rest = withoutToken(location.search);
  if (rest === null) return;
  fetch('api/metrics', { credentials: 'same-origin', cache: 'no-store' }).then((r) => {
    if (r.ok) history.replaceState(history.state, '', location.pathname + rest + location.hash);
  }).catch(() => {});
}

const base = location.pathname.replace(/[^/]*$/, '');
const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base + 'ws?batch=1' +
  (TOKEN ? '&token=' + encodeURIComponent(TOKEN) : '');
const conn = new Connection(wsUrl, {
  messages: (arr) => { for (const m of arr) handleMessage(m); },
  status: onStatus,
}, !params.has('noworker'));
$('conn').addEventListener('click', () => conn.retryNow());

// ---------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------
$('run-picker').addEventListener('change', (e) => pickRun(e.target.value));
$('replay-btn').addEventListener('click', requestReplay);
$('replay-stop').addEventListener('click', () => stopReplay(true));
$('zoom-in').addEventListener('click', () => graph.zoom(1 / 1.3));
$('zoom-out').addEventListener('click', () => graph.zoom(1.3));
$('zoom-fit').addEventListener('click', () => graph.fit());
$('expand-all').addEventListener('click', () => setAllGroups(false));
$('collapse-all').addEventListener('click', () => setAllGroups(true));
$('theme-btn').addEventListener('click', () => prefs.cycleTheme());
$('zone-btn').addEventListener('click', () => prefs.toggleUtc());
$('card-errors').addEventListener('click', () => {
  $('f-type').value = 'error';
  applyFilters();
  $('log').scrollIntoView({ block: 'nearest' });
  $('log').focus();
});

function applyFilters() {
  log.filter = { type: $('f-type').value, level: $('f-level').value, node: $('f-node').value, wf: $('f-workflow').value, text: $('f-text').value.trim().toLowerCase() };
  log.rebuild();
  log.updateCount();
}
$('f-type').addEventListener('change', applyFilters);
$('f-level').addEventListener('change', applyFilters);
$('f-node').addEventListener('change', applyFilters);
$('f-workflow').addEventListener('change', applyFilters);
let textTimer = 0;
$('f-text').addEventListener('input', () => { clearTimeout(textTimer); textTimer = setTimeout(applyFilters, 150); });
$('pause-btn').addEventListener('click', () => {
  const btn = $('pause-btn');
  log.paused = !log.paused;
  btn.setAttribute('aria-pressed', String(log.paused));
  setText(btn, log.paused ? '▶ Resume' : '❚❚ Pause');
  if (!log.paused) log.rebuild();
  log.updateCount();
});
$('clear-btn').addEventListener('click', () => { log.clear(); log.updateCount(); });
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && panel.open && currentPage === 'live') { closeNode(); e.preventDefault(); }
});

setInterval(() => { if (!rafId) requestAnimationFrame(() => { chart.draw(Date.now()); graph.tick(performance.now()); }); }, 500);

// ---------------------------------------------------------------------------
// Hooks for the browser test and the console (read-only)
// ---------------------------------------------------------------------------
window.kgDashboard = Object.freeze({
  stats: () => ({
    received: tab.received, seen: tab.baseline + tab.sinceInitial, applied: tab.applied, total: st.total,
    queue: queuedEvents, frames: tab.frames, lastFrameMs: tab.lastFrameMs, maxFrameMs: tab.maxFrameMs,
    logRows: log.rows, logDomRows: log.pool.filter((r) => !r.hidden).length, runs: st.runs.size,
    shownRun: shownRunId, connected: conn.isOpen, transport: conn.carrier.kind, replaying: !!(replay && !replay.done),
    clientDropped: tab.clientDropped, localSkipped: tab.localSkipped, layoutMs: graph.layoutMs,
    theme: prefs.effective,
  }),
  /** A copy of one run's state (default: the shown run). */
  run: (id) => {
    const run = id ? st.runs.get(id) : shownRun();
    if (!run) return null;
    const nodes = {};
    for (const [k, n] of run.nodes) nodes[k] = { status: n.status, count: n.count, failures: n.failures, retries: n.retries, lastError: n.lastError, items: [...n.items] };
    const items = {};
    for (const [k, m] of run.items) items[k] = Object.fromEntries([...m].map(([i, v]) => [i, v.status]));
    return { id: run.id, num: run.num, status: run.status, outcome: run.outcome, events: run.events, errorPath: run.errorPath, nodes, items, edges: Object.fromEntries(run.edges), topology: !!run.model };
  },
  /** Edge crossings, box overlaps and layout time of the drawn graph. */
  layoutQuality: () => graph.quality(),
  rootOf: (wf) => rootOf(st, wf),
  /** The runs pages' figures (time to first render, rows, bars). */
  pages: () => ({ page: currentPage, runs: runsPage.figures(), run: runPage.figures() }),
});

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------
// Pages: live (the default), the runs list, one stored run
// ---------------------------------------------------------------------------
// The runs page changes what it shows through the address (its filters are
// there): record the location, then show it (pushState fires no hashchange).
let onLocation = () => {};
const navigate = (loc, replace) => { setRoute(loc, replace); onLocation(parseLocation(formatLocation(loc))); };
runsPage = new RunsPage({ api, utc: () => prefs.utc, setRoute: navigate, notice: showNotice });
runPage = new RunPage({ api, utc: () => prefs.utc, setRoute: (loc, replace) => setRoute(loc, replace), notice: showNotice });
function showPage(name) {
  if (name === currentPage) return;
  const was = currentPage;
  currentPage = name;
  for (const el of document.querySelectorAll('main.page')) el.hidden = el.getAttribute('data-page') !== name;
  $('nav-live').toggleAttribute('aria-current', name === 'live');
  if (name === 'live') $('nav-live').setAttribute('aria-current', 'page');
  $('nav-runs').toggleAttribute('aria-current', name !== 'live');
  if (name !== 'live') $('nav-runs').setAttribute('aria-current', 'page');
  $('skip-link').setAttribute('href', name === 'live' ? '#graph-panel' : name === 'runs' ? '#runs-title' : '#rp-title');
  if (was === 'run' && name !== 'run') runPage.hide();
  if (name === 'live') {
    document.title = 'kaygraph · live monitor';
    if (graphStale) redrawRun(); else graph.fit();
  }
  if (was) window.scrollTo(0, 0);
}
onLocation = (loc) => {
  const entering = loc.page !== currentPage;
  showPage(loc.page);
  if (loc.page === 'runs') { runsPage.show(loc.query, entering); return; }
  if (loc.page === 'run') { runPage.show(loc); return; }
  if (loc.run !== selectedRun) {
    selectedRun = loc.run;
    $('run-picker').value = loc.run;
    redrawRun();
  }
  if (loc.node && loc.node !== panel.path) openNode(loc.node);
  else if (!loc.node && panel.open) closeNode(true);
};
setRoute = bindRouter(window, (loc) => onLocation(loc));
conn.connect();
refreshSlow();
