// What nodes report about themselves (issue 14, the dashboard's part) in a
// real browser: node_log lines (level as colour AND word, fields that unfold,
// message as text only), custom metrics, progress on the running node in the
// graph ("50/100" and a bar), custom events, the event log's level filter,
// and the same on the run page for one execution.  Against the mock server
// (mock-server.mjs; its simulated nodes report as the demo's nodes will, and
// it validates everything it sends against docs/schema, the new events
// included); and against the real `kgmon demo --dashboard`, whose example
// nodes report as issue 14 asks (the validator logs each invalid record at
// warning with the reason, the processor reports progress over its chunks and
// a records_processed counter, the aggregator a mean_value gauge, the storage
// node the storage id).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KGMON, precondition, startServer, startProcess, stopProcess, waitHealthy, freePort, until, getJson, postEvents, launch, closeBrowser, shot } from './helpers.mjs';

const skip = precondition(false);
const skipReal = precondition(true);
const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

/** Records every progress a drawn node shows, and its status line then (transitions shorter than a poll included). */
function recordProgress() {
  window.__kgProgress = [];
  new MutationObserver((recs) => {
    for (const r of recs) {
      const el = r.target;
      if (r.attributeName === 'data-progress' && el.hasAttribute('data-progress')) {
        window.__kgProgress.push({ path: el.getAttribute('data-node-path'), progress: el.getAttribute('data-progress'),
          text: (el.querySelector('.nstat') || {}).textContent, status: el.getAttribute('data-status'),
          bar: Number((el.querySelector('.pfill') || { getAttribute: () => 0 }).getAttribute('width')) });
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-progress'] });
}

describe('node logs, metrics, progress and custom events (mock server)', { skip }, () => {
  let server, ctx, page, wf;

  before(async () => {
    server = await startServer({ mock: true });
    ctx = await launch({ width: 1440, height: 1000 }, 'dark');
    page = await ctx.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') page.problems.push('console.error: ' + m.text()); });
    await page.addInitScript(recordProgress);
    await page.goto(server.base + '/');
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
  });
  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await closeBrowser(ctx);
    const v = server ? await getJson(server.base, '/mock/violations').catch(() => ({ list: ['?'] })) : { list: [] };
    await stopProcess(server && server.child);
    assert.deepEqual(v.list, [], 'the mock server sent messages that do not match docs/schema');
  });

  it('shows progress on the running node ("25/100" … and a bar), and none once it completed', { timeout: 60000 }, async () => {
    const r = await fetch(`${server.base}/mock/run?graph=pipeline&n=1&pace=4&report=1&choose=validator:process,storage:stored`, { method: 'POST' });
    wf = (await r.json()).workflow_ids[0];
    const seen = await until('the last progress report drawn', async () => {
      const list = await page.evaluate(() => window.__kgProgress.filter((p) => p.path === 'data_pipeline/processor'));
      return list.some((p) => p.progress === '100/100') && list;
    }, 5000);
    assert.deepEqual([...new Set(seen.map((p) => p.progress))], ['25/100', '50/100', '75/100', '100/100'], 'every progress report shown, in order');
    assert.ok(seen.every((p) => p.status === 'running' && p.text.endsWith(p.progress)), 'the running node says it: ' + JSON.stringify(seen));
    assert.ok(seen.every((p, i) => i === 0 || p.bar >= seen[i - 1].bar) && seen[seen.length - 1].bar > seen[0].bar, 'the bar grows');
    await until('the run ended', async () => page.$eval('[data-node-path="data_pipeline/processor"]', (e) => e.getAttribute('data-status') === 'completed' && !e.hasAttribute('data-progress')), 5000);
  });

  it('the node panel lists a node\'s log lines with their level as a word and a colour, fields unfolding', { timeout: 30000 }, async () => {
    await page.click('[data-node-path="data_pipeline/validator"]');
    await page.waitForSelector('#node-panel .nl-list');
    const lines = await page.$$eval('#node-panel .nl', (els) => els.map((e) => ({ level: e.getAttribute('data-level'), word: e.querySelector('.nl-level').textContent,
      msg: e.querySelector('.nl-msg').textContent, color: getComputedStyle(e.querySelector('.nl-level')).color })));
    const events = (await getJson(server.base, `/api/workflows/${wf}/events`)).events.filter((e) => e.event_name === 'node_log' && e.node_id === 'validator');
    assert.deepEqual(lines.map((l) => l.msg), events.map((e) => e.data.message), 'every line, in order, as text');
    const warn = lines.filter((l) => l.level === 'warning');
    assert.ok(warn.length >= 1 && warn.every((l) => l.word === '⚠ WARNING' && /^invalid record \d+: bad date$/.test(l.msg)));
    const info = lines.find((l) => l.level === 'info');
    assert.notEqual(warn[0].color, info.color, 'levels have their own colour');
    assert.ok(lines.some((l) => l.word === '· DEBUG'));
    // Fields unfold (and stay unfolded while the panel refreshes).
    const det = page.locator('#node-panel .nl[data-level="warning"] details').first();
    await det.locator('summary').focus();
    await page.keyboard.press('Enter');
    await page.waitForTimeout(1300);
    assert.ok(await det.evaluate((d) => d.open), 'still open after the panel refreshed');
    assert.match(await det.locator('pre').textContent(), /"reason": "bad date"/);
    await shot(page, 'nodeout-panel-logs.png', { docs: 'ui-node-logs.png', element: '#node-panel' });
  });

  it('the node panel shows custom metrics by kind and custom events', async () => {
    await page.click('[data-node-path="data_pipeline/processor"]');
    await page.waitForSelector('#node-panel .nm-table');
    assert.match(await page.textContent('#node-panel tr[data-metric="records_processed"]'), /records_processed\s*counter\s*100 records in all \(4 reports\)/);
    await page.keyboard.press('Escape');
    await page.click('[data-node-path="data_pipeline/aggregator"]');
    await page.waitForSelector('#node-panel tr[data-metric="mean_value"]');
    assert.match(await page.textContent('#node-panel tr[data-metric="mean_value"]'), /gauge/);
    await page.keyboard.press('Escape');
    await page.click('[data-node-path="data_pipeline/storage"]');
    await page.waitForSelector('#node-panel .nc');
    assert.match(await page.textContent('#node-panel .nc'), /EVENT\s*stored/);
    await page.keyboard.press('Escape');
  });

  it('the event log filters by level; log rows show the level as a word', async () => {
    const all = (await getJson(server.base, `/api/workflows/${wf}/events`)).events.filter((e) => e.event_name === 'node_log');
    await page.selectOption('#f-workflow', wf);
    await page.selectOption('#f-level', 'warning');
    const want = all.filter((e) => e.data.level === 'warning' || e.data.level === 'error').length;
    await page.waitForFunction((n) => window.kgDashboard.stats().logRows === n, want, { timeout: 5000 });
    const rows = await page.$$eval('#log .log-row:not([hidden])', (els) => els.map((e) => [e.getAttribute('data-level'), e.querySelector('.c-detail').textContent]));
    assert.ok(rows.length > 0 && rows.every(([lv, text]) => lv === 'warning' && text.startsWith('⚠ WARNING · invalid record')), JSON.stringify(rows));
    await page.selectOption('#f-level', 'debug');
    await page.waitForFunction((n) => window.kgDashboard.stats().logRows === n, all.length, { timeout: 5000 });
    await page.selectOption('#f-level', '');
    await page.selectOption('#f-workflow', '');
  });

  it('hostile log lines, fields, metric names and custom events render as text', { timeout: 30000 }, async () => {
    const now = Date.now();
    const base = { node_id: 'validator', node_type: 'V', node_path: 'data_pipeline/validator', correlation_id: 'x-corr', workflow_id: wf, source: { host: 'x', pid: 1 } };
    const ev = (i, type, name, data) => Object.assign({ event_id: `xss-${process.pid}-${i}`, timestamp: new Date(now + i).toISOString(), event_type: type, event_name: name, data, seq: 1e6 + i }, base);
    await postEvents(server.base, [
      ev(1, 'log', 'node_log', { level: 'error', message: `bad ${XSS}`, fields: { [XSS]: XSS } }),
      ev(2, 'metric', 'custom_metric', { name: `m${XSS}`, value: 1, unit: XSS, kind: 'counter' }),
      ev(3, 'data', 'custom_event', { name: `e${XSS}`, data: { html: XSS } }),
    ]);
    await page.click('[data-node-path="data_pipeline/validator"]');
    await page.waitForFunction(() => [...document.querySelectorAll('#node-panel .nl-msg')].some((e) => e.textContent.startsWith('bad <img')), null, { timeout: 5000 });
    await page.locator('#node-panel .nl[data-level="error"] summary').click();
    assert.match(await page.textContent('#node-panel .nl[data-level="error"] pre'), /<img src=x onerror/);
    assert.match(await page.textContent('#node-panel .nm-table'), /m<img src=x/);
    assert.match(await page.textContent('#node-panel .nc'), /e<img src=x/);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'hostile text ran');
    assert.equal(await page.$$eval('#node-panel img, #log img', (e) => e.length), 0);
    await page.keyboard.press('Escape');
  });

  it('the run page shows an execution\'s log lines and metrics', { timeout: 30000 }, async () => {
    await page.goto(`${server.base}/#/runs/${encodeURIComponent(wf)}`);
    await page.waitForSelector('#rp-timeline .tl-bar[data-node-path="data_pipeline/validator"]', { timeout: 10000 });
    await page.click('#rp-timeline .tl-bar[data-node-path="data_pipeline/validator"]');
    await page.waitForSelector('#rp-exec .nl-list');
    const words = await page.$$eval('#rp-exec .nl-level', (e) => e.map((x) => x.textContent));
    assert.ok(words.includes('⚠ WARNING') && words.includes('i INFO'), words.join(','));
    await page.click('#rp-timeline .tl-bar[data-node-path="data_pipeline/processor"]');
    await page.waitForSelector('#rp-exec tr[data-metric="records_processed"]');
    assert.match(await page.textContent('#rp-exec'), /progress \(last reported\)\s*100\/100/);
    await page.selectOption('#rp-f-level', 'warning');
    await page.waitForFunction(() => document.querySelectorAll('#rp-log .log-row:not([hidden])').length > 0 &&
      [...document.querySelectorAll('#rp-log .log-row:not([hidden])')].every((r) => ['warning', 'error'].includes(r.getAttribute('data-level'))), null, { timeout: 5000 });
    await shot(page, 'nodeout-run-exec.png', { element: '#rp-exec' });
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });
});

// ---------------------------------------------------------------------------
// The real demo: kgmon demo --dashboard
// ---------------------------------------------------------------------------
describe('node reports of the real demo (kgmon demo --dashboard)', { skip: skipReal }, () => {
  let tmp, demo, base, ctx, page, runs;
  const it_ = (name, fn) => it(name, { timeout: 60000 }, fn);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-nodeout-'));
    process.env.XDG_STATE_HOME = path.join(tmp, 'state');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    ctx = await launch({ width: 1440, height: 1000 }, 'light');
    demo = startProcess(KGMON, ['demo', `--dashboard=${port}`, '--iterations', '4', '--node-delay', '120', '--db', path.join(tmp, 'h.db')], 'kgmon demo --dashboard');
    await waitHealthy(base, demo);
    page = await ctx.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') page.problems.push('console.error: ' + m.text()); });
    await page.addInitScript(recordProgress);
    await page.goto(base + '/');
    runs = await until('4 demo runs stored', async () => {
      const j = await getJson(base, '/api/runs?limit=10');
      return j.runs.length >= 4 && j.runs.every((r) => r.status !== 'running') ? j.runs : null;
    }, 90000, 250);
  });
  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await closeBrowser(ctx);
    await stopProcess(demo, 'SIGINT');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    delete process.env.XDG_STATE_HOME;
  });

  /** The node_log events of one node in a run, from the server. */
  const logsOf = async (wf, id) => (await getJson(base, `/api/workflows/${encodeURIComponent(wf)}/events`)).events.filter((e) => e.event_name === 'node_log' && e.node_id === id);

  it_('the processor\'s progress showed on its box while it ran', async () => {
    const seen = await page.evaluate(() => window.__kgProgress.filter((p) => p.path === 'data_pipeline/processor'));
    assert.ok(seen.length >= 2, 'progress reports drawn: ' + JSON.stringify(seen));
    assert.ok(seen.every((p) => /^\d+\/\d+$/.test(p.progress) && p.text.includes(p.progress.split('/')[0])), JSON.stringify(seen));
    const m = await getJson(base, '/api/metrics');
    assert.ok(m.events_by_name.node_progress > 0 && m.events_by_name.node_log > 0 && m.events_by_name.custom_metric > 0, JSON.stringify(m.events_by_name));
  });

  it_('the validator\'s own log lines (invalid records at warning, with the reason) are in its node panel', async () => {
    const wf = runs[0].run_id;
    await page.goto(`${base}/#run=${encodeURIComponent(wf)}&node=${encodeURIComponent('data_pipeline/validator')}`);
    const want = await logsOf(wf, 'validator');
    assert.ok(want.length >= 1, 'the validator logged');
    await page.waitForFunction((n) => document.querySelectorAll('#node-panel .nl').length === n, want.length, { timeout: 15000 });
    const got = await page.$$eval('#node-panel .nl', (els) => els.map((e) => [e.getAttribute('data-level'), e.querySelector('.nl-msg').textContent]));
    assert.deepEqual(got, want.map((e) => [e.data.level, e.data.message]));
    const warnings = want.filter((e) => e.data.level === 'warning');
    for (const e of warnings) assert.match(e.data.message, /^invalid record \d+: /);
    if (warnings.length) {
      await page.locator('#node-panel .nl[data-level="warning"] summary').first().click();
      assert.match(await page.textContent('#node-panel .nl[data-level="warning"] pre'), /"reason"/);
    }
    await shot(page, 'nodeout-real-validator.png', { element: '#node-panel' });
  });

  it_('the processor\'s records_processed counter and the aggregator\'s mean_value gauge; the storage node\'s storage id', async () => {
    const wf = runs[0].run_id;
    const evs = (await getJson(base, `/api/workflows/${encodeURIComponent(wf)}/events`)).events;
    const counted = evs.filter((e) => e.event_name === 'custom_metric' && e.data.name === 'records_processed').reduce((n, e) => n + e.data.value, 0);
    await page.goto(`${base}/#run=${encodeURIComponent(wf)}&node=${encodeURIComponent('data_pipeline/processor')}`);
    await page.waitForSelector('#node-panel tr[data-metric="records_processed"]', { timeout: 15000 });
    assert.match(await page.textContent('#node-panel tr[data-metric="records_processed"]'), new RegExp(`counter\\s*${counted.toLocaleString('en-US')} records in all`));
    await page.goto(`${base}/#run=${encodeURIComponent(wf)}&node=${encodeURIComponent('data_pipeline/aggregator')}`);
    await page.waitForSelector('#node-panel tr[data-metric="mean_value"]', { timeout: 15000 });
    assert.match(await page.textContent('#node-panel tr[data-metric="mean_value"]'), /gauge/);
    const stored = (await logsOf(wf, 'storage'))[0];
    await page.goto(`${base}/#run=${encodeURIComponent(wf)}&node=${encodeURIComponent('data_pipeline/storage')}`);
    await page.waitForFunction((m) => [...document.querySelectorAll('#node-panel .nl-msg')].some((e) => e.textContent === m), stored.data.message, { timeout: 15000 });
    assert.match(stored.data.message, /^stored the aggregates as st-|^not stored: /);
  });

  it_('the event log filters by level; the run page lists an execution\'s log lines', async () => {
    await page.goto(`${base}/#`);
    await page.waitForFunction(() => window.kgDashboard.stats().logRows > 0, null, { timeout: 15000 });
    await page.selectOption('#f-level', 'warning');
    await page.waitForFunction(() => [...document.querySelectorAll('#log .log-row:not([hidden])')].every((r) => ['warning', 'error'].includes(r.getAttribute('data-level'))), null, { timeout: 5000 });
    await page.selectOption('#f-level', '');
    const wf = runs[0].run_id;
    const want = await logsOf(wf, 'validator');
    await page.goto(`${base}/#/runs/${encodeURIComponent(wf)}`);
    await page.waitForSelector('#rp-timeline .tl-bar[data-node-path="data_pipeline/validator"]', { timeout: 15000 });
    await page.click('#rp-timeline .tl-bar[data-node-path="data_pipeline/validator"]');
    await page.waitForFunction((n) => document.querySelectorAll('#rp-exec .nl').length === n, want.length, { timeout: 10000 });
    await shot(page, 'nodeout-real-run.png', { docs: 'ui-run-logs.png' });
  });
});
