// Development-only stand-in for the C dashboard server (kgmon dashboard).
//
// It serves web/ from disk and speaks the dashboard contract of
// shared/DESIGN.md closely enough to develop the web UI before the real
// server exists: GET / (UI files), GET /ws (initial / event / events / metrics /
// workflow_events / notice messages), POST /api/ingest, GET /api/events,
// /api/workflows, /api/workflows/<id>/events, /api/metrics, /healthz, and
// --token.  With --demo it also runs a simulated version of the seed's example
// workflow (source -> validation -> processing -> aggregation -> storage, with
// an error handler, retries, failures and a loop) so the UI has something live
// to draw.  The browser test never uses it against CI: it drives the real binary.
//
// usage: node mock-server.mjs [--port 8089] [--token T] [--demo] [--batch]

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '../../web');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf('--' + name);
  return i >= 0 ? (argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[i + 1] : true) : dflt;
};
const PORT = Number(opt('port', 8089));
const TOKEN = opt('token', '');
const DEMO = !!opt('demo', false);
const BATCH = !!opt('batch', false);   // send {"type":"events"} batches instead of one message per event

const recent = [];              // last 1000 events
const runs = new Map();         // workflow_id -> {events:[], status, graph}
const counts = { lifecycle: 0, data: 0, error: 0, metric: 0 };
const activeNodes = new Set();
const activeWorkflows = new Set();
let total = 0, lastTotal = 0, eps = 0, ok = 0, failed = 0;
let networkGraph = null;
const clients = new Set();
let pendingBatch = [];

function record(ev) {
  total++;
  counts[ev.event_type] = (counts[ev.event_type] || 0) + 1;
  recent.push(ev);
  if (recent.length > 1000) recent.shift();
  const wf = ev.workflow_id || '';
  let run = runs.get(wf);
  if (!run) { run = { events: [], status: 'running', graph: null, started: ev.timestamp }; runs.set(wf, run); }
  if (run.events.length < 5000) run.events.push(ev);
  if (runs.size > 200) runs.delete(runs.keys().next().value);
  if (ev.event_name === 'workflow_started') { activeWorkflows.add(wf); run.graph = ev.data && ev.data.graph; networkGraph = run.graph; }
  if (ev.event_name === 'workflow_completed') {
    activeWorkflows.delete(wf);
    run.status = ev.data && ev.data.status;
    if (run.status === 'success') ok++; else failed++;
  }
  if (ev.event_name === 'node_started') activeNodes.add(ev.node_id);
  if (ev.event_name === 'node_completed' || ev.event_name === 'node_failed') activeNodes.delete(ev.node_id);
  if (BATCH) pendingBatch.push(ev);
  else broadcast({ type: 'event', data: ev });
}

function metrics() {
  return {
    total_events: total,
    events_by_type: counts,
    active_nodes: [...activeNodes],
    active_workflows: [...activeWorkflows],
    success_rate: ok + failed ? ok / (ok + failed) : null,
    errors: counts.error,
    events_per_second: eps,
    dropped: 0,
  };
}

function broadcast(msg) {
  const s = JSON.stringify(msg);
  for (const ws of clients) if (ws.readyState === 1) ws.send(s);
}
setInterval(() => { eps = total - lastTotal; lastTotal = total; broadcast({ type: 'metrics', data: metrics() }); }, 1000);
if (BATCH) setInterval(() => { if (pendingBatch.length) { broadcast({ type: 'events', data: pendingBatch }); pendingBatch = []; } }, 50);

const types = { '.mjs': 'text/javascript; charset=utf-8', '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };

function authorized(req, url) {
  if (!TOKEN) return true;
  if (req.headers.authorization === 'Bearer ' + TOKEN) return true;
  return url.pathname === '/ws' && url.searchParams.get('token') === TOKEN;
}

function json(res, code, obj) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  const isUi = req.method === 'GET' && (url.pathname === '/' || /^\/[\w-]+\.(html|js|css)$/.test(url.pathname));
  if (!isUi && !authorized(req, url)) return json(res, 401, { error: 'unauthorized' });
  if (isUi) {
    const f = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    fs.readFile(path.join(webDir, f), (err, buf) => {
      if (err) return json(res, 404, { error: 'not found' });
      res.writeHead(200, { 'Content-Type': types[path.extname(f)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(buf);
    });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/mock/demo') {
    // Test hook standing in for `kgmon demo`: N quick runs, answered when done.
    const n = Number(url.searchParams.get('iterations') || 1);
    (async () => { for (let i = 0; i < n; i++) await demoRun(0.15); })().then(() => json(res, 200, { runs: n }));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/api/ingest') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { return json(res, 400, { error: 'malformed JSON: ' + e.message }); }
      const evs = Array.isArray(body.events) ? body.events : [body];
      for (const ev of evs) record(ev);
      json(res, 200, { accepted: evs.length });
    });
    return;
  }
  if (url.pathname === '/api/metrics') return json(res, 200, metrics());
  if (url.pathname === '/api/events') return json(res, 200, { events: recent.slice(-Number(url.searchParams.get('limit') || 100)) });
  if (url.pathname === '/api/workflows') {
    return json(res, 200, { workflows: [...runs].map(([id, r]) => ({ workflow_id: id, status: r.status, started_at: r.started, event_count: r.events.length })) });
  }
  const m = url.pathname.match(/^\/api\/workflows\/([^/]+)\/events$/);
  if (m) {
    const r = runs.get(decodeURIComponent(m[1]));
    return r ? json(res, 200, { events: r.events }) : json(res, 404, { error: 'unknown workflow' });
  }
  json(res, 404, { error: 'not found' });
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, sock, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/ws' || !authorized(req, url)) { sock.destroy(); return; }
  wss.handleUpgrade(req, sock, head, (ws) => {
    clients.add(ws);
    ws.on('close', () => clients.delete(ws));
    ws.on('message', (buf) => {
      let msg;
      try { msg = JSON.parse(buf.toString()); } catch (e) { return; }
      if (msg.type === 'get_workflow_events') {
        const r = runs.get(String(msg.workflow_id));
        ws.send(JSON.stringify({ type: 'workflow_events', workflow_id: msg.workflow_id, events: r ? r.events : [] }));
      }
    });
    ws.send(JSON.stringify({ type: 'initial', data: {
      events: recent.slice(-100), metrics: metrics(), active_nodes: [...activeNodes],
      active_workflows: [...activeWorkflows], network_graph: networkGraph } }));
  });
});

server.listen(PORT, '127.0.0.1', () => console.log(`mock dashboard on http://127.0.0.1:${PORT}/`));

// --------------------------------------------------------------------------
// Simulated demo workflow
// --------------------------------------------------------------------------
const GRAPH = {
  nodes: [
    { id: 'data_source', type: 'DataSourceNode' },
    { id: 'validator', type: 'DataValidationNode' },
    { id: 'processor', type: 'DataProcessingNode' },
    { id: 'aggregator', type: 'AggregationNode' },
    { id: 'storage', type: 'StorageNode' },
    { id: 'error_handler', type: 'ErrorHandlerNode' },
  ],
  edges: [
    { from: 'data_source', to: 'validator', action: 'default' },
    { from: 'validator', to: 'processor', action: 'valid' },
    { from: 'validator', to: 'error_handler', action: 'invalid' },
    { from: 'processor', to: 'aggregator', action: 'default' },
    { from: 'processor', to: 'error_handler', action: 'error' },
    { from: 'aggregator', to: 'storage', action: 'default' },
    { from: 'aggregator', to: 'processor', action: 'more' },
    { from: 'error_handler', to: 'storage', action: 'recovered' },
  ],
  start: 'data_source',
};
let seq = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function emit(wf, node, type, ntype, name, data, corr) {
  record({
    event_id: crypto.randomUUID(), timestamp: new Date().toISOString(), node_id: node, node_type: ntype,
    event_type: type, event_name: name, data, correlation_id: corr || crypto.randomUUID(), workflow_id: wf,
    seq: ++seq, source: { host: 'mock', pid: process.pid },
  });
}
let speed = 1;   // 1 = the live --demo pace; smaller is faster
async function runNode(wf, id, type, action, opts = {}) {
  const corr = crypto.randomUUID();
  const t0 = Date.now();
  emit(wf, id, 'lifecycle', type, 'node_started', { state: 'running' }, corr);
  emit(wf, id, 'lifecycle', type, 'node_preparing', { state: 'preparing' }, corr);
  emit(wf, id, 'data', type, 'data_input', { snapshot: { truncated: false, data: { items: 12 } } }, corr);
  emit(wf, id, 'lifecycle', type, 'node_executing', { state: 'executing' }, corr);
  await sleep((120 + Math.random() * 380) * speed);
  if (opts.retry) {
    emit(wf, id, 'error', type, 'retry_attempted', { error: 'transient: upstream timeout', error_type: 'TimeoutError', phase: 'exec', attempt: 1, max_retries: 3 }, corr);
    await sleep(300 * speed);
  }
  if (opts.fail) {
    emit(wf, id, 'error', type, 'node_failed', { error: 'storage unavailable', error_type: 'IOError', phase: 'exec', attempt: 3, max_retries: 3 }, corr);
    return false;
  }
  const dt = (Date.now() - t0) / 1000;
  emit(wf, id, 'data', type, 'data_output', { snapshot: { truncated: false, data: { ok: true } } }, corr);
  emit(wf, id, 'metric', type, 'execution_time', { value: dt, unit: 's' }, corr);
  emit(wf, id, 'lifecycle', type, 'node_completed', { state: 'completed', next_action: action, total_execution_time: dt }, corr);
  return true;
}
async function demoRun(pace = 1) {
  speed = pace;
  const wf = crypto.randomUUID();
  const t0 = Date.now();
  emit(wf, 'graph', 'lifecycle', 'Graph', 'workflow_started', { graph: GRAPH });
  await sleep(200 * speed);
  const T = Object.fromEntries(GRAPH.nodes.map((n) => [n.id, n.type]));
  let ok = await runNode(wf, 'data_source', T.data_source, 'default');
  const valid = Math.random() > 0.2;
  await runNode(wf, 'validator', T.validator, valid ? 'valid' : 'invalid');
  if (valid) {
    let loops = 0;
    for (;;) {
      await runNode(wf, 'processor', T.processor, 'default', { retry: Math.random() < 0.3 });
      const more = loops++ < 1 && Math.random() < 0.4;
      await runNode(wf, 'aggregator', T.aggregator, more ? 'more' : 'default');
      if (!more) break;
    }
  } else {
    await runNode(wf, 'error_handler', T.error_handler, 'recovered');
  }
  ok = await runNode(wf, 'storage', T.storage, null, { fail: Math.random() < 0.15 });
  emit(wf, 'graph', 'lifecycle', 'Graph', 'workflow_completed', { status: ok ? 'success' : 'failed', final_action: ok ? 'default' : null, duration: (Date.now() - t0) / 1000 });
}
if (DEMO) (async () => { for (;;) { await demoRun(); await sleep(1200); } })();
