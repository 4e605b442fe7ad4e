// What a person using the dashboard expects (node --test, read by ctest):
// themes, keyboard access to nodes / log rows / the node table, drill-down
// from a node, a table row, a log row and the errors card, a layout that
// works at 1280x720 and 800 px wide (no sideways scrolling, the event
// detail reachable), times with their zone, an event detail that starts at
// the top and shows snapshots as JSON, picking a run that finished before
// the page opened, the token page, and a server restart.  Items 1-10 of
// issue 16, "What a person trying the UI hit".
//
// Against the mock server (mock-server.mjs: docs/protocol.md, every message
// validated against docs/schema), which can script what these checks need
// (a handled error, a restart, the token page).  Screenshots: artifacts/,
// and docs/ with KG_UPDATE_DOCS_SCREENSHOT=1.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { precondition, startServer, stopProcess, until, getJson, launch, closeBrowser, openPage, shot, stats } from './helpers.mjs';

const skip = precondition(false);

async function run(base, q) {
  const r = await fetch(`${base}/mock/run?${q}`, { method: 'POST' });
  assert.equal(r.status, 200);
  return (await r.json()).workflow_ids;
}
const noSideScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
const activePath = (page) => page.evaluate(() => document.activeElement && document.activeElement.getAttribute('data-node-path'));

describe('usability (mock server)', { skip }, () => {
  let server, ctx, page, first, handled;

  before(async () => {
    server = await startServer({ mock: true });
    // Three runs before the page opens: the first one's events are no longer in the
    // server's last-100 snapshot, so picking it needs its stored events.
    first = (await run(server.base, 'graph=pipeline&n=2&pace=0.02&choose=validator:process,storage:stored'))[0];
    handled = (await run(server.base, 'graph=pipeline&n=1&pace=0.02&choose=validator:process,storage:error'))[0];
    ctx = await launch({ width: 1440, height: 1000 }, 'dark');
    page = await openPage(ctx, server.base);
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
  });
  after(async () => {
    if (page) assert.deepEqual(page.problems, []);
    await closeBrowser(ctx);
    const v = server ? await getJson(server.base, '/mock/violations').catch(() => ({ list: ['?'] })) : { list: [] };
    await stopProcess(server && server.child);
    assert.deepEqual(v.list, [], 'the mock server sent messages that do not match docs/schema');
  });

  it('shows a handled error as such, with its reason, in the run summary, the run label and the node table', async () => {
    await page.waitForFunction(() => document.getElementById('run-summary').getAttribute('data-outcome') === 'handled', null, { timeout: 10000 });
    const summary = await page.$eval('#run-summary', (e) => e.textContent);
    assert.match(summary, /handled error/);
    assert.match(summary, /error path: storage → error → error_handler: storage quota exceeded/);
    const label = await until('run label', () => page.$eval('#run-picker', (s, id) => { const o = [...s.options].find((x) => x.value === id); return o && o.textContent; }, handled), 5000);
    assert.match(label, /^#\d+ · ⚠ handled error: storage quota exceeded · /);
    const row = await until('storage row', () => page.$eval('#node-tbody tr[data-path="data_pipeline/storage"]', (tr) => tr.children[6].textContent).catch(() => null), 5000);
    assert.equal(row, '1', 'the storage row counts its error-path action');
    const card = await page.$eval('#card-success', (e) => [e.querySelector('.card-sub').textContent, e.title]);
    assert.match(card[0], /⚠ 1 handled/);
    assert.match(card[1], /error path/);
    const errCard = await page.$eval('#card-errors', (e) => e.title);
    assert.match(errCard, /retry attempts/, 'the errors card says what it counts');
  });

  it('picking a run that finished before the page opened shows its topology and final state', async () => {
    await page.selectOption('#run-picker', first);
    await until('its summary', async () => /succeeded/.test(await page.$eval('#run-summary', (e) => e.textContent)), 5000);
    await until('its nodes', async () => (await page.$$eval('#graph g.gnode', (e) => e.length)) === 7, 10000);
    const st = await page.$eval('#graph g.gnode[data-node-path="data_pipeline/reporter"]', (e) => e.getAttribute('data-status'));
    assert.equal(st, 'completed');
    assert.match(await page.$eval('#run-summary', (e) => e.textContent), /succeeded/);
    assert.ok(new URL(page.url()).hash.includes('run=' + first), 'the view is in the address (#run=…)');
    await page.selectOption('#run-picker', '');
  });

  it('drill-down: node click, table row, log row (Enter) and the errors card', async () => {
    await page.click('#graph g.gnode[data-node-path="data_pipeline/storage"]');
    await page.waitForSelector('#node-panel:not([hidden])');
    const text = await page.$eval('#node-panel', (e) => e.textContent);
    assert.match(text, /storage/);
    assert.match(text, /recent executions/);
    assert.match(text, /All runs \(server\)/);
    assert.ok(new URL(page.url()).hash.includes('node=data_pipeline%2Fstorage'));
    await page.keyboard.press('Escape');
    await page.waitForSelector('#node-panel', { state: 'hidden' });
    // Table row, by keyboard.
    await page.focus('#node-tbody tr[data-path="data_pipeline/validator"]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#node-panel .np-path') && document.querySelector('#node-panel .np-path').textContent === 'data_pipeline/validator');
    await page.keyboard.press('Escape');
    // Errors card: the log lists the error events.
    await run(server.base, 'graph=pipeline&n=1&pace=0.02&fail=/storage');
    await page.click('#card-errors');
    await until('error rows only', async () => {
      const t = await page.$$eval('#log .log-row:not([hidden]) .c-type', (els) => els.map((e) => e.textContent));
      return t.length > 0 && t.every((x) => x === 'error');
    }, 5000);
    await page.selectOption('#f-type', '');
  });

  it('keyboard: graph nodes and log rows are reachable, arrows move, Enter opens', async () => {
    // Graph: one tab stop, arrows move between nodes.
    await page.focus('#graph [data-node-path][tabindex="0"]');
    const a = await activePath(page);
    assert.ok(a, 'a node has focus');
    await page.keyboard.press('Home');
    assert.equal(await activePath(page), 'data_pipeline/data_source');
    await page.keyboard.press('ArrowRight');
    const b = await activePath(page);
    assert.ok(b && b !== 'data_pipeline/data_source', `ArrowRight moved to ${b}`);
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement.querySelector('.ring')).stroke);
    assert.notEqual(ring, 'none', 'the focused node shows a focus ring');
    await page.keyboard.press('Enter');
    await page.waitForFunction((p) => document.querySelector('#node-panel .np-path') && document.querySelector('#node-panel .np-path').textContent === p, b);
    await shot(page, 'ui-node-panel.png', { element: '#graph-panel', docs: 'ui-node-panel.png' });
    await page.keyboard.press('Escape');
    // Log: arrows select rows and show them; Enter opens the event's node.
    await page.focus('#log');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const sel = await page.$$eval('#log .log-row.selected', (e) => e.length);
    assert.equal(sel, 1);
    assert.equal(await page.$eval('#log', (e) => e.getAttribute('aria-activedescendant') !== null), true);
    assert.match(await page.$eval('#detail', (e) => e.textContent), /event/);
    // Move to a node event and open its node.
    for (let i = 0; i < 20; i++) {
      const node = await page.$eval('#log .log-row.selected .c-node', (e) => e.title);
      if (node && node.includes('/')) break;
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    await page.waitForSelector('#node-panel:not([hidden])');
    await page.keyboard.press('Escape');
  });

  it('event detail starts at the top and shows snapshots as JSON', async () => {
    await page.fill('#f-text', 'data_output');
    await until('data_output rows', async () => {
      const names = await page.$$eval('#log .log-row:not([hidden]) .c-name', (els) => els.map((e) => e.textContent));
      return names.length > 1 && names.every((n) => n === 'data_output');
    }, 5000);
    await page.locator('#log .log-row:not([hidden])').nth(0).click();
    const d = await page.$eval('#detail', (e) => e.textContent);
    assert.match(d, /snapshot/);
    assert.match(d, /"ok": (true|false)/, 'snapshot data pretty-printed as JSON');
    assert.ok(!d.includes('\\"'), 'no escaped JSON strings');
    await page.$eval('#detail', (e) => { e.style.maxHeight = '60px'; e.scrollTop = 200; });
    await page.locator('#log .log-row:not([hidden])').nth(1).click();
    assert.equal(await page.$eval('#detail', (e) => e.scrollTop), 0, 'a new event detail starts at the top');
    await page.$eval('#detail', (e) => { e.style.maxHeight = ''; });
    await page.fill('#f-text', '');
  });

  it('times show their zone, and can be shown in UTC', async () => {
    const before0 = await page.$eval('#log-time-head', (e) => e.textContent);
    assert.match(before0, /^time UTC/);
    await page.click('#zone-btn');
    assert.equal(await page.$eval('#log-time-head', (e) => e.textContent), 'time UTC');
    assert.match(await page.$eval('#zone-btn', (e) => e.textContent), /UTC/);
    const ts = await page.evaluate(() => { const r = document.querySelector('#log .log-row:not([hidden])'); return [r.children[0].textContent, r.kgEvent.ts]; });
    assert.equal(ts[0], ts[1].slice(11, 23), 'the log shows the event\'s own UTC time');
    await page.click('#zone-btn');
  });

  it('themes: follows the system, and a toggle switches light and dark', async () => {
    await page.evaluate(() => window.scrollTo(0, 0));
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'dark');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const dark = await bg();
    await shot(page, 'ui-dark.png', { docs: 'ui-dark.png', fullPage: false });
    await page.click('#theme-btn');   // auto -> light
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'light');
    const light = await bg();
    assert.notEqual(light, dark);
    await shot(page, 'ui-light.png', { docs: 'ui-light.png', fullPage: false });
    await page.click('#theme-btn');   // light -> dark
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'dark');
    await page.click('#theme-btn');   // dark -> auto
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme-choice')), 'auto');
  });

  it('states read without colour: a glyph and a word on every node', async () => {
    const nodes = await page.$$eval('#graph g.gnode', (els) => els.map((e) => [e.getAttribute('data-status'), e.querySelector('.glyph').textContent, e.querySelector('.nstat').textContent]));
    const glyph = { idle: '○', running: '▶', retrying: '↻', completed: '✓', failed: '✕' };
    for (const [st, g, text] of nodes) {
      assert.equal(g, glyph[st]);
      assert.ok(text.startsWith(st), `${st}: ${text}`);
    }
    assert.equal(await page.$$eval('#graph .badge', (e) => e.length), 0, 'no separate retry badge beside the attempt');
  });

  for (const [w, h, name] of [[1280, 720, 'ui-1280.png'], [800, 900, 'ui-800.png']]) {
    it(`at ${w}x${h}: no sideways scrolling, the event detail is reachable`, async () => {
      await page.setViewportSize({ width: w, height: h });
      await until('layout settles', async () => noSideScroll(page), 3000);
      const detail = await page.$eval('#detail', (e) => { const r = e.getBoundingClientRect(); const cs = getComputedStyle(e.parentElement); return { w: r.width, x: r.x, shown: cs.display !== 'none' }; });
      assert.ok(detail.shown && detail.w > 200 && detail.x + detail.w <= w + 1, `detail pane ${JSON.stringify(detail)}`);
      await page.locator('#log .log-row:not([hidden])').nth(2).click();
      assert.match(await page.$eval('#detail', (e) => e.textContent), /event/);
      // Nothing cut off in the header controls, the run picker fits.
      const picker = await page.$eval('#run-picker', (e) => e.getBoundingClientRect().right);
      assert.ok(picker <= w, 'run picker inside the window');
      await shot(page, name, { docs: name });
      await page.setViewportSize({ width: 1440, height: 1000 });
    });
  }

  it('greys out when the server goes away and says when its counters restarted', async () => {
    await page.evaluate(() => {
      window.__offline = false;
      new MutationObserver(() => { if (document.body.classList.contains('offline')) window.__offline = true; }).observe(document.body, { attributes: true });
    });
    await fetch(server.base + '/mock/restart', { method: 'POST' });
    await page.waitForFunction(() => window.__offline, null, { timeout: 10000 });
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 15000 });
    await page.waitForFunction(() => /restarted/.test(document.getElementById('banner-text').textContent), null, { timeout: 10000 });
    assert.match(await page.$eval('#banner-text', (e) => e.textContent), /counters started again from zero/);
    await page.click('#banner-close');
  });

  it('keeps answering and its memory bounded while runs keep coming (short)', { timeout: 60000 }, async (t) => {
    const s0 = await stats(page);
    await run(server.base, 'graph=wide&n=3&pace=0.01');
    const s1 = await until('events applied', async () => { const s = await stats(page); return s.applied > s0.applied + 100 ? s : null; }, 10000);
    t.diagnostic(`frames ${s1.frames}, longest ${s1.maxFrameMs.toFixed(1)} ms`);
  });
});

describe('token page (mock server with --token)', { skip }, () => {
  let server, ctx;
  before(async () => { server = await startServer({ mock: true, token: 'ux-token' }); ctx = await launch(); });
  after(async () => { await closeBrowser(ctx); await stopProcess(server && server.child); });

  it('explains how to pass the token, and drops it from the address bar once used', async () => {
    const page = await openPage(ctx, server.base);
    assert.match(await page.textContent('h1'), /needs its token/);
    // The 401 of this page itself is what Chromium logs; nothing else may fail.
    page.problems = page.problems.filter((p) => !/status of 401/.test(p));
    assert.match(await page.textContent('main'), /Authorization: Bearer/);
    await shot(page, 'ui-auth.png', { docs: 'ui-auth.png', fullPage: false });
    await page.fill('#token', 'ux-token');
    await page.click('button[type=submit]');
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
    await until('token dropped from the URL', async () => !new URL(page.url()).searchParams.has('token'), 5000);
    await page.reload();
    await page.waitForSelector('#conn[data-state="open"]', { timeout: 10000 });
    assert.deepEqual(page.problems, []);
  });
});
