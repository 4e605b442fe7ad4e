// Development helper: open a running dashboard in headless Chromium, wait a
// moment, save a screenshot and print console errors and page stats.
// usage: node shot.mjs URL OUT.png [waitMs] [width] [height]
// env: SHOT_EVAL (JS run in the page before the shot), SHOT_ELEMENT (CSS
// selector: shoot that element only), SHOT_SCHEME (light|dark).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [url, out, waitMs = '6000', w = '1440', h = '1000'] = process.argv.slice(2);
const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-shot-'));
const ctx = await chromium.launchPersistentContext(udd, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: Number(w), height: Number(h) },
  colorScheme: process.env.SHOT_SCHEME || 'light',
});
const page = ctx.pages()[0] || await ctx.newPage();
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log('console.' + m.type(), m.text()); });
page.on('pageerror', (e) => console.log('pageerror', e.message));
await page.goto(url);
await page.waitForTimeout(Number(waitMs));
if (process.env.SHOT_EVAL) { await page.evaluate(process.env.SHOT_EVAL); await page.waitForTimeout(500); }
console.log(JSON.stringify(await page.evaluate(() => window.kgDashboard && window.kgDashboard.stats())));
if (process.env.SHOT_ELEMENT) await page.locator(process.env.SHOT_ELEMENT).first().screenshot({ path: out });
else await page.screenshot({ path: out, fullPage: true });
await ctx.close();
fs.rmSync(udd, { recursive: true, force: true });
