// A stand-in for the C dashboard server (kgmon dashboard), for UI work and
// for the browser test's nested / wide scenarios until the real server sends
// nested topologies.  It speaks docs/protocol.md and checks itself against
// docs/schema: every WebSocket message and REST body it sends is validated
// (tests/browser/schema.mjs, ajv); a violation is printed and counted, and
// GET /mock/violations lists them (the browser test asserts there are none).
//
// It serves web/ from disk, aggregates the events it receives (POST
// /api/ingest, or its own simulated runs) the way src/dashboard/aggregate.c
// does, keyed by node_path as docs/protocol.md says, and with --token it
// behaves as the server should: Bearer header, ?token= (sets the kg_token
// cookie) or the cookie; a page request without it gets web/auth.html (401).
//
// Simulated runs (tests/web/simulate.mjs) follow the nested-graph contract:
// node_path on every event, a nested run per sub-graph with
// parent_workflow_id, a run per batch item with data.item; with report=1
// the nodes also log, report progress, metrics and custom events (issue 14),
// and metrics.nodes[path].progress shows the progress of a running node.
//
// The run history (docs/history.md: /api/runs, /api/runs/<id>[/events|
// /export], /api/graphs, /api/nodes/<graph>/<node>/stats) is served from
// tests/web/history-sim.mjs, a JS reading of the server's store; it outlives
// POST /mock/restart, as the real history outlives a restart.
//
// usage: node mock-server.mjs [--port 8089] [--token T] [--demo pipeline|nested|wide|big] [--pace 1]
// test hooks:
//   POST /mock/run?graph=nested&n=1&pace=0.2&wait=1&seed=5&choose=storage:error&fail=path-suffix&report=1
//   POST /mock/restart        counters and runs start again from zero, sockets close
//   GET  /mock/violations     schema violations of what this server sent

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { loadSchemas } from './schema.mjs';
import { runEvents, randomChoice, makeIds } from '../web/simulate.mjs';
import { HistoryStore } from '../web/history-sim.mjs';
import * as G from '../web/graphs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '../../web');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf('--' + name);
  return i >= 0 ? (argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[i + 1] : true) : dflt;
};
const PORT = Number(opt('port', 8089));
const TOKEN = opt('token', '');
const DEMO = opt('demo', '');
const PACE = Number(opt('pace', 1));
const schemas = await loadSchemas();
const GRAPHS = { pipeline: G.pipelineGraph, nested: G.nestedGraph, wide: G.wideGraph, big: G.bigNestedGraph };

// ---------------------------------------------------------------------------
// Aggregated state (a JS reading of src/dashboard/aggregate.c)
// ---------------------------------------------------------------------------
let S;
function reset() {
  S = {
    started: Date.now(), total: 0, rejected: 0, duplicates: 0, errors: 0,
    byType: { lifecycle: 0, data: 0, error: 0, metric: 0 }, byName: {},
    nodeCompleted: 0, nodeFailed: 0, runsSuccess: 0, runsFailed: 0, runsTotal: 0,
    wsDropped: 0, recent: [], runs: new Map(), ordinal: 0, nodes: new Map(), seen: new Set(),
    rate: new Map(), latestRun: null, latestGraph: null, edges: new Map(),
  };
}
reset();
const history = new HistoryStore();
const violations = [];

function nodeKey(ev) { return ev.node_path || ev.node_id; }
function nodeOf(key, ev) {
  let n = S.nodes.get(key);
  if (!n) {
    n = { id: ev.node_id, type: ev.node_type || '', status: 'idle', count: 0, completed: 0, failed: 0, retries: 0, errors: 0, times: [], sum: 0, n: 0, inTopology: false, lastSeq: -1, progress: null };
    S.nodes.set(key, n);
  }
  return n;
}

function record(ev) {
  if (S.seen.has(ev.event_id)) { S.duplicates++; return false; }
  S.seen.add(ev.event_id);
  history.add(ev);
  if (S.seen.size > 100000) S.seen = new Set([...S.seen].slice(-50000));
  S.total++;
  S.byType[ev.event_type] = (S.byType[ev.event_type] || 0) + 1;
  S.byName[ev.event_name] = (S.byName[ev.event_name] || 0) + 1;
  if (ev.event_type === 'error') S.errors++;
  const sec = Math.floor(Date.now() / 1000);
  S.rate.set(sec, (S.rate.get(sec) || 0) + 1);
  if (S.rate.size > 70) for (const k of S.rate.keys()) { if (k < sec - 65) S.rate.delete(k); }
  S.recent.push(ev);
  if (S.recent.length > 1000) S.recent.shift();
  const wf = ev.workflow_id;
  if (wf) {
    let run = S.runs.get(wf);
    if (!run) {
      run = { id: wf, ordinal: S.ordinal++, status: 'running', events: [], eventCount: 0, errorCount: 0, truncated: 0, startedAt: null, endedAt: null, duration: null, finalAction: null, graph: null, parent: null };
      S.runs.set(wf, run);
      S.runsTotal++;
      if (S.runs.size > 200) { for (const [id, r] of S.runs) { if (r.status !== 'running') { S.runs.delete(id); break; } } }
    }
    run.eventCount++;
    if (ev.event_type === 'error') run.errorCount++;
    run.events.push(ev);
    if (run.events.length > 5000) { run.events.shift(); run.truncated++; }
    if (ev.event_name === 'workflow_started') {
      run.startedAt = ev.timestamp;
      run.graph = ev.data.graph || null;
      run.parent = ev.data.parent_workflow_id || null;
      if (!run.parent) { S.latestRun = wf; S.latestGraph = run.graph; }
    } else if (ev.event_name === 'workflow_completed' && run.status === 'running') {
      const ok = ev.data.status === 'success';
      run.status = ok ? 'success' : 'failed';
      if (ok) S.runsSuccess++; else S.runsFailed++;
      run.endedAt = ev.timestamp;
      run.duration = typeof ev.data.duration === 'number' ? ev.data.duration : null;
      run.finalAction = typeof ev.data.final_action === 'string' ? ev.data.final_action : null;
    }
  }
  if (ev.node_id && ev.event_name !== 'workflow_started' && ev.event_name !== 'workflow_completed' &&
      !(ev.event_type === 'metric' && ev.event_name !== 'execution_time')) {
    const n = nodeOf(nodeKey(ev), ev);
    let status = null;
    switch (ev.event_name) {
      case 'node_started': n.count++; status = 'running'; n.progress = null; break;
      case 'node_progress': if (typeof ev.data.done === 'number') n.progress = { done: ev.data.done, total: typeof ev.data.total === 'number' ? ev.data.total : 0 }; break;
      case 'node_preparing': case 'node_executing': case 'data_input': case 'fallback_triggered': status = 'running'; break;
      case 'retry_attempted': n.retries++; status = 'retrying'; break;
      case 'node_completed': {
        n.completed++; S.nodeCompleted++; status = 'completed'; n.progress = null;
        const t = ev.data.total_execution_time;
        if (typeof t === 'number') { n.sum += t; n.n++; n.times.push(t); if (n.times.length > 256) n.times.shift(); }
        const k = `${nodeKey(ev)}\u0000${ev.data.next_action || 'default'}`;
        S.edges.set(k, (S.edges.get(k) || 0) + 1);
        break;
      }
      case 'node_failed': n.failed++; S.nodeFailed++; status = 'failed'; n.progress = null; break;
      default: break;
    }
    if (ev.event_type === 'error') n.errors++;
    const seq = typeof ev.seq === 'number' ? ev.seq : Infinity;
    if (status && seq >= n.lastSeq) { n.status = status; n.lastSeq = seq; }
  }
  if (ev.event_name === 'workflow_completed' && wf) {
    // Nodes left running by a run that ended go back to idle.
    for (const n of S.nodes.values()) if (n.status === 'running' || n.status === 'retrying') n.status = 'idle';
  }
  return true;
}

function p95(times) {
  if (!times.length) return 0;
  const a = times.slice().sort((x, y) => x - y);
  return a[Math.max(0, Math.ceil(0.95 * a.length) - 1)];
}
function metrics() {
  const nodes = {};
  let active = 0;
  for (const [k, n] of S.nodes) {
    if (n.status === 'running' || n.status === 'retrying') active++;
    nodes[k] = { id: n.id, type: n.type, status: n.status, count: n.count, completed: n.completed, failed: n.failed, retries: n.retries, errors: n.errors, avg: n.n ? n.sum / n.n : 0, p95: p95(n.times) };
    if (n.progress && n.status === 'running') nodes[k].progress = n.progress;
  }
  const sec = Math.floor(Date.now() / 1000);
  const up = (Date.now() - S.started) / 1000;
  const win = up >= 5 ? 5 : Math.max(1, Math.floor(up));
  let sum = 0;
  for (let i = 1; i <= win; i++) sum += S.rate.get(sec - i) || 0;
  const thr = [];
  for (let i = 60; i >= 1; i--) thr.push(S.rate.get(sec - i) || 0);
  let running = 0;
  for (const r of S.runs.values()) if (r.status === 'running') running++;
  return {
    total_events: S.total, events_by_type: { ...S.byType }, events_by_name: { ...S.byName },
    active_nodes: active, active_workflows: running,
    success_rate: S.nodeCompleted + S.nodeFailed ? S.nodeCompleted / (S.nodeCompleted + S.nodeFailed) : null,
    workflow_success_rate: S.runsSuccess + S.runsFailed ? S.runsSuccess / (S.runsSuccess + S.runsFailed) : null,
    errors: S.errors, events_per_second: sum / win, throughput: thr, dropped: 0, queue_depth: 0, ws_dropped: S.wsDropped,
    duplicates: S.duplicates, rejected: S.rejected,
    workflows: { total: S.runsTotal, running, success: S.runsSuccess, failed: S.runsFailed, stale: 0 },
    nodes, clients: clients.size, uptime: up, timestamp: new Date().toISOString(),
  };
}
/** The nested network graph of the contract: the latest topology with paths, statuses and edge counts. */
function networkGraph() {
  const g = S.latestGraph;
  if (!g) return { nodes: [], edges: [], start: null, workflow_id: null };
  const esc = (id) => id.replace(/%/g, '%25').replace(/\//g, '%2F');
  const conv = (t, prefix) => ({
    nodes: t.nodes.map((n) => {
      const p = prefix + '/' + esc(n.id);
      const o = { id: n.id, path: p, type: n.type, status: (S.nodes.get(p) || {}).status || 'idle', in_topology: true };
      const live = S.nodes.get(p);
      if (live && live.progress && live.status === 'running') o.progress = live.progress;
      if (n.nodes) Object.assign(o, conv(n, p), { start: n.start }, n.batch ? { batch: true } : {});
      return o;
    }),
    edges: t.edges.map((e) => ({ from: e.from, to: e.to, action: e.action, count: S.edges.get(`${prefix}/${esc(e.from)}\u0000${e.action}`) || 0 })),
  });
  return Object.assign(conv(g, esc(g.id)), { start: g.start, workflow_id: S.latestRun });
}
function summary(r) {
  return {
    workflow_id: r.id, status: r.status, event_count: r.eventCount, stored_events: r.events.length, error_count: r.errorCount,
    truncated: r.truncated, started_at: r.startedAt, ended_at: r.endedAt, duration: r.duration, final_action: r.finalAction,
    nodes: r.graph ? r.graph.nodes.length : 0, parent_workflow_id: r.parent,
  };
}
const runList = (max) => [...S.runs.values()].sort((a, b) => a.ordinal - b.ordinal).slice(-max).map(summary);

// ---------------------------------------------------------------------------
// Sending, always through the schema
// ---------------------------------------------------------------------------
function violation(what, why, value) {
  const v = { what, why, sample: JSON.stringify(value).slice(0, 400) };
  violations.push(v);
  if (violations.length > 200) violations.shift();
  console.error('SCHEMA VIOLATION', what, why);
}
function sendWs(ws, msg) {
  const why = schemas.ws(msg);
  if (why) violation('ws ' + msg.type, why, msg);
  if (ws.readyState === 1) ws.send(JSON.stringify(msg));
}
function json(res, code, route, body, headers = {}) {
  const why = route ? schemas.rest(route, body) : null;
  if (why) violation('rest ' + route, why, body);
  res.writeHead(code, Object.assign({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }, headers));
  res.end(JSON.stringify(body));
}

const clients = new Set();
function broadcastEvent(ev) {
  for (const c of clients) {
    if (c.batch) { c.pending.push(ev); if (c.pending.length >= 512) flushClient(c); }
    else sendWs(c.ws, { type: 'event', data: ev });
  }
}
function flushClient(c) {
  if (!c.pending.length) return;
  const data = c.pending;
  c.pending = [];
  sendWs(c.ws, { type: 'events', data });
}
setInterval(() => { for (const c of clients) flushClient(c); }, 30);
setInterval(() => { const m = metrics(); for (const c of clients) { flushClient(c); sendWs(c.ws, { type: 'metrics', data: m }); } }, 1000);

function ingest(ev) {
  const why = schemas.event(ev);
  if (why) { S.rejected++; return why; }
  if (record(ev)) broadcastEvent(ev);
  return null;
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };
function cookieToken(req) {
  const m = /(?:^|;\s*)kg_token=([^;]*)/.exec(req.headers.cookie || '');
  return m ? m[1] : '';
}
function authorized(req, url) {
  if (!TOKEN) return { ok: true };
  if (req.headers.authorization === 'Bearer ' + TOKEN) return { ok: true };
  if (cookieToken(req) === TOKEN) return { ok: true };
  if (url.searchParams.get('token') === TOKEN) return { ok: true, setCookie: true };
  return { ok: false };
}
function serveFile(res, file, status = 200, extra = {}) {
  fs.readFile(path.join(webDir, file), (err, buf) => {
    if (err) return json(res, 404, 'error', { error: 'no such route' });
    res.writeHead(status, Object.assign({ 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache' }, extra));
    res.end(buf);
  });
}

let runSeed = 1000;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/healthz') return json(res, 200, 'healthz', { status: 'ok', uptime: (Date.now() - S.started) / 1000 });
  if (p.startsWith('/mock/')) return mockHook(req, res, url);
  const auth = authorized(req, url);
  if (!auth.ok) {
    // What the server should do (docs/protocol.md "Authentication"): a page request gets an explanation.
    if (req.method === 'GET' && (p === '/' || p === '/index.html')) return serveFile(res, 'auth.html', 401);
    return json(res, 401, 'error', { error: 'missing or wrong token' });
  }
  const extra = auth.setCookie ? { 'Set-Cookie': `kg_token=${TOKEN}; Path=/; HttpOnly; SameSite=Strict` } : {};
  if (req.method === 'GET' && (p === '/' || /^\/[\w-]+\.(html|js|css)$/.test(p))) return serveFile(res, p === '/' ? 'index.html' : p.slice(1), 200, extra);
  if (req.method === 'POST' && p === '/api/ingest') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { return json(res, 400, 'error', { error: 'malformed JSON: ' + e.message }); }
      const evs = Array.isArray(body.events) ? body.events : [body];
      let accepted = 0, rejected = 0, first = '';
      const dup0 = S.duplicates;
      for (const ev of evs) { const why = ingest(ev); if (why) { rejected++; first = first || why; } else accepted++; }
      const dups = S.duplicates - dup0;
      if (evs.length && rejected === evs.length) return json(res, 400, 'error', { error: first });
      json(res, 200, 'ingest', Object.assign({ accepted: accepted - dups, rejected, duplicates: dups }, first ? { error: first } : {}));
    });
    return;
  }
  if (p === '/api/metrics') return json(res, 200, 'metrics', Object.assign(metrics(), { server: { ws_sent: 0, ws_dropped: S.wsDropped, clients: clients.size, redis_messages: 0, redis_replayed: 0, redis_replays: 0, redis_fetches: 0, redis_connected: false } }), extra);
  if (p === '/api/events') return json(res, 200, 'events', { events: S.recent.slice(-Number(url.searchParams.get('limit') || 100)) });
  if (p === '/api/workflows') return json(res, 200, 'workflows', { workflows: runList(1e9) });
  if (p === '/api/runs' || p.startsWith('/api/runs/') || p === '/api/graphs' || p.startsWith('/api/nodes/')) return historyRoute(req, res, url);
  const m = p.match(/^\/api\/workflows\/([^/]+)\/events$/);
  if (m) {
    const r = S.runs.get(decodeURIComponent(m[1]));
    if (!r) return json(res, 404, 'error', { error: 'unknown workflow (never seen, or evicted)' });
    return json(res, 200, 'workflow_events', { workflow_id: r.id, events: r.events, run: summary(r), graph: r.graph });
  }
  json(res, 404, 'error', { error: 'no such route' });
});

/** The run history's routes (docs/history.md), every JSON body checked against the schema. */
function historyRoute(req, res, url) {
  const p = url.pathname, q = url.searchParams;
  const send = (route, r) => json(res, r.status, r.status === 200 ? route : 'error', r.body);
  const dec = (x) => { try { return decodeURIComponent(x); } catch (e) { return null; } };
  if (p === '/api/runs' || p === '/api/runs/') return send('runs', history.list(q));
  if (p === '/api/graphs') return send('graphs', history.graphs(q));
  let m = /^\/api\/nodes\/([^/]+)\/(.+)\/stats$/.exec(p);
  if (m) {
    const g = dec(m[1]), n = dec(m[2]);
    if (g === null || n === null) return json(res, 400, 'error', { error: 'bad node path' });
    return send('node_stats', history.nodeStats(g, n, q));
  }
  m = /^\/api\/runs\/(.+?)(\/events|\/export)?$/.exec(p);
  const id = m && dec(m[1]);
  if (!id) return json(res, 400, 'error', { error: 'bad run id' });
  if (m[2] === '/events') return send('run_events', history.events(id, q));
  if (m[2] === '/export') {
    const text = history.exportLines(id);
    if (text === null) return json(res, 404, 'error', { error: 'no such run' });
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Content-Disposition': `attachment; filename="run-${id.replace(/[^\w.-]/g, '_')}.jsonl"` });
    return res.end(text);
  }
  return send('run_page', history.page(id));
}

function mockHook(req, res, url) {
  const p = url.pathname;
  if (p === '/mock/violations') { res.writeHead(200, { 'Content-Type': 'application/json' }); return res.end(JSON.stringify({ count: violations.length, list: violations })); }
  if (p === '/mock/restart' && req.method === 'POST') {
    reset();
    for (const c of clients) c.ws.terminate();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end('{"restarted":true}');
  }
  if (p === '/mock/run' && req.method === 'POST') {
    const graph = (GRAPHS[url.searchParams.get('graph') || 'pipeline'] || GRAPHS.pipeline)();
    const n = Number(url.searchParams.get('n') || 1);
    const pace = Number(url.searchParams.get('pace') || 0.1);
    const seed = Number(url.searchParams.get('seed') || ++runSeed);
    const wait = url.searchParams.get('wait') !== '0';
    const weights = {};
    for (const c of (url.searchParams.get('choose') || '').split(',').filter(Boolean)) { const [node, action] = c.split(':'); weights[node] = { [action]: 1 }; }
    const failAt = url.searchParams.get('fail') || '';
    const items = Number(url.searchParams.get('items') || 3);
    const report = url.searchParams.get('report') === '1';
    const retryAt = url.searchParams.get('retry') || '';
    const ids = [];
    const done = (async () => { for (let i = 0; i < n; i++) ids.push(await simulate(graph, { seed: seed + i, pace, weights, failAt, items, report, retryAt })); })();
    if (wait) done.then(() => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify({ workflow_ids: ids })); });
    else { res.writeHead(202, { 'Content-Type': 'application/json' }); res.end('{"started":true}'); }
    return;
  }
  res.writeHead(404); res.end();
}

/** Play one simulated run into the server, paced; resolves with its workflow_id. */
let seqBase = 0;
// One id generator per process, as a real producer has: run ids share a
// prefix and differ at the end (the UI must show the part that differs).
const runIds = makeIds((process.pid * 2654435761) >>> 0), eventIds = makeIds((process.pid * 40503 + 7) >>> 0);
async function simulate(graph, o) {
  const gen = runEvents(graph, {
    seed: o.seed, pace: o.pace, t0: Date.now(), ids: runIds, eventIds, seqStart: seqBase,
    choose: randomChoice(Object.assign({ validator: { process: 0.9, no_valid_data: 0.1 }, storage: { stored: 0.88, error: 0.12 } }, o.weights)),
    retry: (p, rnd) => (o.retryAt ? p.endsWith(o.retryAt) : rnd() < 0.08), fail: (p, rnd) => (o.failAt ? p.endsWith(o.failAt) : rnd() < 0.01),
    report: o.report || false,
    items: () => o.items, reason: (p) => (p.endsWith('/storage') ? 'storage quota exceeded' : 'rejected by rule'),
    host: 'mock', pid: process.pid,
  });
  let wf = '';
  for (const { event, delay } of gen) {
    if (delay > 0.5) await new Promise((r) => setTimeout(r, delay));
    event.timestamp = new Date().toISOString().replace(/Z$/, '000Z');   // microseconds, as kaygraph-c producers write
    seqBase = Math.max(seqBase, event.seq);
    if (!wf) wf = event.workflow_id;
    const why = ingest(event);
    if (why) console.error('simulated event rejected:', why);
  }
  return wf;
}

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, sock, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/ws' || !authorized(req, url).ok) { sock.write('HTTP/1.1 401 Unauthorized\r\n\r\n'); sock.destroy(); return; }
  wss.handleUpgrade(req, sock, head, (ws) => {
    const c = { ws, batch: url.searchParams.get('batch') === '1', pending: [] };
    clients.add(c);
    ws.on('close', () => clients.delete(c));
    ws.on('message', (buf) => {
      let msg;
      try { msg = JSON.parse(buf.toString()); } catch (e) { return sendWs(ws, { type: 'error', message: 'malformed JSON' }); }
      const why = schemas.client(msg);
      if (why) violation('client message', why, msg);
      if (msg.type === 'ping') return sendWs(ws, { type: 'pong' });
      if (msg.type !== 'get_workflow_events') return sendWs(ws, { type: 'error', message: `unknown message type ${JSON.stringify(String(msg.type)).slice(0, 66)}` });
      flushClient(c);
      const r = S.runs.get(String(msg.workflow_id));
      if (!r) return sendWs(ws, { type: 'workflow_events', workflow_id: String(msg.workflow_id), events: [], found: false, status: null, graph: null, truncated: 0 });
      sendWs(ws, { type: 'workflow_events', workflow_id: r.id, events: r.events, found: true, status: r.status, graph: r.graph, truncated: r.truncated });
    });
    sendWs(ws, { type: 'initial', data: {
      events: S.recent.slice(-100), metrics: metrics(), active_nodes: [...S.nodes].filter(([, n]) => n.status === 'running' || n.status === 'retrying').map(([k]) => k),
      active_workflows: [...S.runs.values()].filter((r) => r.status === 'running').map((r) => r.id), network_graph: networkGraph(), workflows: runList(50),
    } });
  });
});

server.listen(PORT, '127.0.0.1', () => console.log(`mock dashboard on http://127.0.0.1:${PORT}/`));

if (DEMO) {
  const name = DEMO === true ? 'pipeline' : DEMO;
  (async () => { for (let i = 0; ; i++) { await simulate((GRAPHS[name] || GRAPHS.pipeline)(), { seed: 1 + i, pace: PACE, weights: {}, failAt: '', items: 4, report: true }); await new Promise((r) => setTimeout(r, 800 * PACE)); } })();
}
