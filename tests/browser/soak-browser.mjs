// A real browser attached to the dashboard for scripts/soak: headless Debian
// Chromium (playwright-core) opens the page and keeps it open; every second
// it writes what the page has received to OUTFILE (atomically, via a rename),
// the same "key value" lines as the counting WebSocket client:
//   seen N            the server's total_events at the page's last "initial"
//                     snapshot + events received since (equals the server's
//                     total when the page lost nothing, across reconnects)
//   received N        events received by the page since it loaded
//   client_dropped N  events the server said it skipped for this page
//   local_skipped N   events the page skipped itself (hidden-tab overflow)
//   connected 0|1
//   max_frame_ms X    the longest frame the UI spent applying events
//   heap_kib N        the page's JS heap (Chromium's performance.memory)
// It runs until SIGINT/SIGTERM, then writes the file once more and exits.
//
// usage: node soak-browser.mjs URL OUTFILE
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: node soak-browser.mjs URL OUTFILE');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let stopping = false;
process.on('SIGINT', () => { stopping = true; });
process.on('SIGTERM', () => { stopping = true; });

function write(s) {
  const lines = [
    `seen ${s.seen}`, `received ${s.received}`, `client_dropped ${s.clientDropped}`,
    `local_skipped ${s.localSkipped}`, `connected ${s.connected ? 1 : 0}`,
    `max_frame_ms ${Math.round(s.maxFrameMs)}`, `heap_kib ${s.heapKib}`,
  ];
  fs.writeFileSync(out + '.tmp', lines.join('\n') + '\n');
  fs.renameSync(out + '.tmp', out);
}

const stats = (page) => page.evaluate(() => ({
  ...window.kgDashboard.stats(),
  heapKib: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1024) : 0,
}));

const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-soak-chromium-'));
const ctx = await chromium.launchPersistentContext(udd, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--enable-precise-memory-info'],
  viewport: { width: 1440, height: 1000 },
  timeout: 30000,
});
let rc = 0;
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.kgDashboard && window.kgDashboard.stats().connected,
    null, { timeout: 15000 });
  let last = await stats(page);
  write(last);
  while (!stopping) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await stats(page);
    write(last);
  }
} catch (e) {
  console.error('soak-browser:', e.message);
  rc = 1;
} finally {
  await ctx.close().catch(() => {});
  fs.rmSync(udd, { recursive: true, force: true });
}
process.exit(rc);
