// Benchmark (not a test): the dashboard tab's memory over a long run.
//
// Starts the real server (kgmon dashboard), feeds it continuously with the
// demo workflow over HTTP (kgmon demo --iterations 0 --node-delay MS), opens
// the page in headless Chromium and every SAMPLE seconds forces a garbage
// collection in the page and records its JS heap (performance.memory), its
// DOM node count and the events it received.  The figure that matters: the
// heap in the last minute against the first minute after warm-up (flat =
// the UI's stores are bounded).
//
// usage: KGMON=build/release/apps/kgmon/kgmon node tests/browser/memory-soak.mjs [seconds=600] [sample=10] [node-delay-ms=2]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, startProcess, stopProcess, KGMON, CHROMIUM } from './helpers.mjs';

const [secs = '600', sample = '10', delay = '2'] = process.argv.slice(2);
if (!KGMON) { console.error('set KGMON to the kgmon binary'); process.exit(2); }
const server = await startServer({ mock: false });
const demo = startProcess(KGMON, ['demo', '--backend', 'http', '--webhook-url', `${server.base}/api/ingest`, '--iterations', '0', '--node-delay', delay, '--quiet'], 'kgmon demo');
const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-memsoak-'));
const ctx = await chromium.launchPersistentContext(udd, {
  executablePath: CHROMIUM, headless: true, viewport: { width: 1440, height: 1000 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--enable-precise-memory-info', '--js-flags=--expose-gc'],
});
const samples = [];
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(server.base + '/');
  await page.waitForFunction(() => window.kgDashboard && window.kgDashboard.stats().connected, null, { timeout: 15000 });
  const t0 = Date.now();
  while (Date.now() - t0 < Number(secs) * 1000) {
    await new Promise((r) => setTimeout(r, Number(sample) * 1000));
    const s = await page.evaluate(() => {
      if (window.gc) window.gc();
      const st = window.kgDashboard.stats();
      return { heap: performance.memory.usedJSHeapSize, dom: document.getElementsByTagName('*').length, received: st.received, runs: st.runs, maxFrameMs: st.maxFrameMs };
    });
    s.t = Math.round((Date.now() - t0) / 1000);
    samples.push(s);
    console.log(JSON.stringify(s));
  }
} finally {
  await ctx.close().catch(() => {});
  fs.rmSync(udd, { recursive: true, force: true });
  await stopProcess(demo, 'SIGINT');
  await stopProcess(server.child);
}
const mib = (b) => (b / 1048576).toFixed(1);
const win = (from, to) => samples.filter((s) => s.t > from && s.t <= to);
const avg = (a, k) => a.reduce((x, s) => x + s[k], 0) / Math.max(1, a.length);
const end = samples[samples.length - 1];
const firstMin = win(60, 120), lastMin = win(end.t - 60, end.t);
const summary = {
  seconds: end.t, events: end.received, events_per_s: Math.round(end.received / end.t), runs_kept: end.runs,
  heap_mib_minute_2: +mib(avg(firstMin, 'heap')), heap_mib_last_minute: +mib(avg(lastMin, 'heap')),
  heap_mib_max: +mib(Math.max(...samples.map((s) => s.heap))), dom_nodes_minute_2: Math.round(avg(firstMin, 'dom')), dom_nodes_last_minute: Math.round(avg(lastMin, 'dom')),
  longest_frame_ms: end.maxFrameMs,
};
console.log('SUMMARY ' + JSON.stringify(summary));
