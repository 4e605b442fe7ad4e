// Shared helpers of the browser tests: preconditions, processes, bounded
// waits, the browser, screenshots, and schema checks of what a server sends.
// Every wait has a deadline; there are no fixed sleeps.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../..');
export const ARTIFACTS = path.join(here, 'artifacts');
export const CHROMIUM = process.env.KG_CHROMIUM || '/usr/bin/chromium';
export const MOCK = process.env.KG_BROWSER_MOCK === '1';
const argKgmon = process.argv.find((a) => a.startsWith('--kgmon='));
export const KGMON = process.env.KGMON || (argKgmon ? argKgmon.slice(8) : '');
export const ALLOW_SKIP = process.env.KG_TEST_ALLOW_SKIP === '1' || process.env.KG_BROWSER_ALLOW_SKIP === '1';
export const UPDATE_DOCS = process.env.KG_UPDATE_DOCS_SCREENSHOT === '1';

// ---------------------------------------------------------------------------
// Preconditions: a missing piece fails the test (a skipped test is not a
// pass, and a green run must never hide a missing install step).  A developer
// who knowingly lacks Chromium can set KG_TEST_ALLOW_SKIP=1 (as for the C
// tests' redis-server, PostgreSQL, OpenSSL) or KG_BROWSER_ALLOW_SKIP=1 to skip.
// ---------------------------------------------------------------------------
export let chromium = null;
export let ws = null;
let missing = '';
try { ({ chromium } = await import('playwright-core')); } catch (e) { missing = 'playwright-core is not installed (run `npm ci` in tests/browser)'; }
try { ws = (await import('ws')).default; } catch (e) { missing = missing || 'ws is not installed (run `npm ci` in tests/browser)'; }
try { await import('ajv/dist/2020.js'); } catch (e) { missing = missing || 'ajv is not installed (run `npm ci` in tests/browser)'; }
if (!missing && !fs.existsSync(CHROMIUM)) missing = `${CHROMIUM} not found (apt-get install chromium)`;
export function precondition(needKgmon) {
  let why = missing;
  if (!why && needKgmon && !(KGMON && fs.existsSync(KGMON))) why = `kgmon binary not found (KGMON=${KGMON || 'unset'})`;
  if (why && !ALLOW_SKIP) throw new Error('browser test cannot run: ' + why);
  return why ? `skipped: ${why}` : false;
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** A child process whose output is kept (tail) for failure messages. */
export function startProcess(cmd, args, name) {
  const child = spawn(cmd, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const out = [];
  const keep = (buf) => { out.push(buf.toString()); if (out.length > 400) out.splice(0, 100); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.output = () => out.join('').slice(-6000);
  child.label = name;
  return child;
}

/** Stop a child we started: the given signal, then SIGKILL after a bounded wait. */
export async function stopProcess(child, signal = 'SIGTERM', ms = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child && child.exited;
  child.kill(signal);
  let timer;
  const res = await Promise.race([child.exited, new Promise((r) => { timer = setTimeout(() => r(null), ms); })]);
  clearTimeout(timer);
  if (res) return res;
  child.kill('SIGKILL');
  return child.exited;
}

/** Poll until fn() returns a truthy value or the deadline passes. */
export async function until(what, fn, ms = 10000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ''));
    await new Promise((r) => setTimeout(r, every));
  }
}

export async function waitHealthy(base, child) {
  await until(`${base}/healthz`, async () => {
    if (child && child.exitCode !== null) throw new Error(`${child.label} exited early:\n${child.output()}`);
    const r = await fetch(base + '/healthz').catch(() => null);
    return r && r.ok;
  }, 15000);
}

/** The dashboard under test: the real kgmon, or the mock server (KG_BROWSER_MOCK=1 or mock: true). */
export async function startServer({ mock = MOCK, token = '', port } = {}) {
  port = port || await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = mock ? [path.join(here, 'mock-server.mjs'), '--port', String(port)] : ['dashboard', '--port', String(port)];
  if (token) args.push('--token', token);
  const child = mock ? startProcess(process.execPath, args, 'mock server') : startProcess(KGMON, args, 'kgmon dashboard');
  await waitHealthy(base, child);
  return { child, base, port, mock };
}

export async function getJson(base, p, token) {
  const r = await fetch(base + p, { headers: token ? { Authorization: 'Bearer ' + token } : {} });
  assert.equal(r.status, 200, `GET ${p} -> ${r.status}`);
  return r.json();
}

export async function postEvents(base, events, token) {
  const body = events.length === 1 ? events[0] : { events, batch_size: events.length, timestamp: new Date().toISOString() };
  const r = await fetch(base + '/api/ingest', {
    method: 'POST',
    headers: Object.assign({ 'Content-Type': 'application/json' }, token ? { Authorization: 'Bearer ' + token } : {}),
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.equal(r.status, 200, `POST /api/ingest -> ${r.status}: ${text}`);
  return JSON.parse(text);
}

let uuidSeq = 0;
export const uuid = () => `018f3c1e-7b2a-7c4d-9e1f-${(++uuidSeq).toString(16).padStart(12, '0')}`;
export function makeEvent(fields) {
  return Object.assign({
    event_id: uuid(), timestamp: new Date().toISOString().replace(/Z$/, '000Z'), node_id: '', node_type: '',
    event_type: 'lifecycle', event_name: 'node_started', data: {}, correlation_id: uuid(),
    workflow_id: '', seq: uuidSeq, source: { host: 'browser-test', pid: process.pid },
  }, fields);
}

/** Run the real demo workflow into the dashboard; extra args e.g. ['--graph', 'nested']. */
export async function runDemo(server, iterations, extra = [], timeoutMs = 90000) {
  if (server.mock) {
    const graph = extra.includes('--graph') ? extra[extra.indexOf('--graph') + 1] : 'pipeline';
    const r = await fetch(`${server.base}/mock/run?graph=${graph}&n=${iterations}&pace=0.05`, { method: 'POST' });
    assert.equal(r.status, 200);
    return (await r.json()).workflow_ids;
  }
  const demo = startProcess(KGMON, ['demo', '--backend', 'http', '--webhook-url', `${server.base}/api/ingest`,
    '--iterations', String(iterations), '--node-delay', '20', ...extra], 'kgmon demo');
  let timer;
  const res = await Promise.race([demo.exited, new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
  clearTimeout(timer);
  if (!res) { await stopProcess(demo, 'SIGKILL'); throw new Error(`kgmon demo did not finish within ${timeoutMs / 1000} s:\n` + demo.output()); }
  assert.equal(res.code, 0, `kgmon demo exited with ${res.code}/${res.signal}:\n${demo.output()}`);
  return null;
}


// ---------------------------------------------------------------------------
// Browser
// ---------------------------------------------------------------------------
export async function launch(viewport = { width: 1440, height: 1000 }, colorScheme = 'dark') {
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-chromium-'));
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport, colorScheme, timeout: 30000,
  });
  ctx.setDefaultTimeout(15000);
  ctx.udd = udd;
  return ctx;
}
export async function closeBrowser(ctx) {
  if (!ctx) return;
  await ctx.close().catch(() => {});
  fs.rmSync(ctx.udd, { recursive: true, force: true });
}

// Injected before the page's own scripts: records every status a drawn node
// shows (old and new values) and every edge that lights, so transitions that
// last less than one poll are still seen.
export function installRecorder() {
  window.__kgRec = { status: {}, lit: {} };
  const obs = new MutationObserver((recs) => {
    for (const r of recs) {
      const el = r.target;
      if (r.attributeName === 'data-status' && el.hasAttribute && el.hasAttribute('data-node-path')) {
        const id = el.getAttribute('data-node-path');
        const s = (window.__kgRec.status[id] = window.__kgRec.status[id] || []);
        for (const v of [r.oldValue, el.getAttribute('data-status')]) if (v && !s.includes(v)) s.push(v);
      } else if (r.attributeName === 'class' && el.classList && el.classList.contains('lit') && el.hasAttribute('data-from')) {
        const k = el.getAttribute('data-from') + '\u0000' + el.getAttribute('data-action');
        window.__kgRec.lit[k] = (window.__kgRec.lit[k] || 0) + 1;
      }
    }
  });
  obs.observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-status', 'class'] });
}

/** A page with the recorder, collecting errors and any request leaving the server. */
export async function openPage(ctx, base, query = '') {
  const page = await ctx.newPage();
  page.problems = [];
  page.external = [];
  page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push('console.error: ' + m.text()); });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith(base.replace('http:', 'ws:')) && !u.startsWith('data:')) page.external.push(u);
  });
  await page.addInitScript(installRecorder);
  await page.goto(base + '/' + query, { waitUntil: 'load' });
  return page;
}

export const stats = (page) => page.evaluate(() => window.kgDashboard.stats());
export const drawnPaths = (page) => page.$$eval('#graph [data-node-path]', (els) => els.map((e) => e.getAttribute('data-node-path')));
export const nodeIdsShown = (page) => page.$$eval('#graph g.gnode', (els) => els.map((e) => e.getAttribute('data-node-id')));

/** Screenshot into artifacts/ (and docs/ with KG_UPDATE_DOCS_SCREENSHOT=1). */
export async function shot(page, name, opts = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const p = path.join(ARTIFACTS, name);
  if (opts.element) await page.locator(opts.element).first().screenshot({ path: p });
  else await page.screenshot({ path: p, fullPage: opts.fullPage !== false });
  if (UPDATE_DOCS && opts.docs) fs.copyFileSync(p, path.join(repo, 'docs', opts.docs));
  return p;
}

/**
 * The geometry of what is drawn: every [data-node-path] element once, each
 * with a non-empty box inside the graph's view, no two leaf boxes (nodes and
 * collapsed groups) overlapping, no group overlapping a group or node that is
 * not inside it.
 */
export async function checkDrawing(page, wantPaths) {
  const g = await page.evaluate(() => {
    const svg = document.getElementById('graph').getBoundingClientRect();
    const items = [...document.querySelectorAll('#graph [data-node-path]')].map((el) => {
      const box = el.querySelector(':scope > .box, :scope > .gbox').getBoundingClientRect();
      const cs = getComputedStyle(el);
      return { path: el.getAttribute('data-node-path'), kind: el.classList.contains('ggroup') ? 'group' : 'leaf',
        x: box.x, y: box.y, w: box.width, h: box.height, shown: cs.display !== 'none' && cs.visibility !== 'hidden' };
    });
    return { svg: { x: svg.x, y: svg.y, w: svg.width, h: svg.height }, items };
  });
  const paths = g.items.map((i) => i.path);
  assert.equal(new Set(paths).size, paths.length, 'a node drawn twice: ' + paths.filter((p, i) => paths.indexOf(p) !== i).join(', '));
  if (wantPaths) assert.deepEqual(paths.slice().sort(), wantPaths.slice().sort(), 'drawn node paths');
  for (const i of g.items) {
    assert.ok(i.shown && i.w > 2 && i.h > 2, `${i.path} is not visible (${i.w}x${i.h})`);
    assert.ok(i.x >= g.svg.x - 1 && i.y >= g.svg.y - 1 && i.x + i.w <= g.svg.x + g.svg.w + 1 && i.y + i.h <= g.svg.y + g.svg.h + 1,
      `${i.path} lies outside the graph's view`);
  }
  const overlap = (a, b) => Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) > 0.5 && Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) > 0.5;
  const inside = (a, b) => b.path.startsWith(a.path + '/');
  const bad = [];
  for (let i = 0; i < g.items.length; i++) {
    for (let j = i + 1; j < g.items.length; j++) {
      const a = g.items[i], b = g.items[j];
      if (inside(a, b) || inside(b, a)) continue;
      if (overlap(a, b)) bad.push(`${a.path} / ${b.path}`);
    }
  }
  assert.deepEqual(bad, [], 'overlapping node boxes');
  return g;
}

// ---------------------------------------------------------------------------
// What the server sends, checked against docs/schema
// ---------------------------------------------------------------------------
/**
 * A WebSocket client that validates every message it receives (raw and
 * batched connections both).  .close() returns {count, byType, invalid:[…]}.
 */
export async function schemaWatcher(base, schemas, token = '') {
  const conns = [];
  const report = { count: 0, byType: {}, invalid: [] };
  for (const q of ['', 'batch=1']) {
    const qs = [q, token ? 'token=' + encodeURIComponent(token) : ''].filter(Boolean).join('&');
    const sock = new ws(base.replace('http:', 'ws:') + '/ws' + (qs ? '?' + qs : ''), { headers: { Origin: base } });
    sock.on('message', (buf) => {
      let msg;
      try { msg = JSON.parse(buf.toString()); } catch (e) { report.invalid.push('not JSON: ' + buf.toString().slice(0, 200)); return; }
      report.count++;
      report.byType[msg.type] = (report.byType[msg.type] || 0) + 1;
      const why = schemas.ws(msg);
      if (why && report.invalid.length < 20) report.invalid.push(`${msg.type}: ${why}: ${JSON.stringify(msg).slice(0, 300)}`);
      if (msg.type === 'initial' && !sock.asked) {
        sock.asked = true;
        sock.send(JSON.stringify({ type: 'ping' }));
        sock.send(JSON.stringify({ type: 'get_workflow_events', workflow_id: 'no-such-run' }));
        sock.send(JSON.stringify({ type: 'nonsense' }));
      }
    });
    await new Promise((res, rej) => { sock.on('open', res); sock.on('error', rej); });
    conns.push(sock);
  }
  return {
    ask: (id) => { for (const s of conns) s.send(JSON.stringify({ type: 'get_workflow_events', workflow_id: id })); },
    peek: () => report,
    close: () => { for (const s of conns) s.close(); return report; },
  };
}

/** Every REST route's body checked against rest.schema.json. */
export async function checkRestSchemas(base, schemas, token = '') {
  const H = token ? { Authorization: 'Bearer ' + token } : {};
  const bad = [];
  const get = async (route, p, status = 200) => {
    const r = await fetch(base + p, { headers: H });
    assert.equal(r.status, status, `GET ${p}`);
    const why = schemas.rest(route, await r.json());
    if (why) bad.push(`${p}: ${why}`);
  };
  await get('healthz', '/healthz');
  await get('metrics', '/api/metrics');
  await get('events', '/api/events?limit=20');
  const wf = await (await fetch(base + '/api/workflows', { headers: H })).json();
  const why = schemas.rest('workflows', wf);
  if (why) bad.push('/api/workflows: ' + why);
  for (const w of wf.workflows.slice(-3)) await get('workflow_events', '/api/workflows/' + encodeURIComponent(w.workflow_id) + '/events');
  await get('error', '/api/workflows/no-such-run/events', 404);
  await get('error', '/api/events?limit=x', 400);
  // Ingest: a batch with a bad event is answered with counts (and why the
  // first was refused); a batch of only bad events is a 400.
  const post = async (body, status, route) => {
    const r = await fetch(base + '/api/ingest', { method: 'POST', headers: Object.assign({ 'Content-Type': 'application/json' }, H), body: JSON.stringify(body) });
    assert.equal(r.status, status, `POST /api/ingest ${JSON.stringify(body).slice(0, 80)}`);
    const j = await r.json();
    const w = schemas.rest(route, j);
    if (w) bad.push(`/api/ingest (${status}): ${w}`);
  };
  const good = { event_id: 'schema-probe-' + Date.now(), timestamp: new Date().toISOString(), node_id: 'probe', node_type: 'Probe', event_type: 'lifecycle',
    event_name: 'node_started', data: {}, correlation_id: 'c', workflow_id: 'schema-probe-run' };
  await post({ events: [{ event_id: 'x' }, good] }, 200, 'ingest');
  await post({ events: [{ event_id: 'x' }] }, 400, 'error');
  return bad;
}
