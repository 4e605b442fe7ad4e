// Unit tests of the pure parts of web/node-output.js (what nodes report) and
// web/stats-chart.js (a node's durations over time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressText, progressShare, metricValue, fmtNum } from '../../web/node-output.js';
import { statsGeometry, niceCeil, statsSummary } from '../../web/stats-chart.js';
import { addMetric } from '../../web/store.js';

test('progress reads "done/total", with the share when total is not 100', () => {
  assert.equal(progressText({ done: 40, total: 100 }), '40/100');
  assert.equal(progressText({ done: 3, total: 12 }), '3/12 (25%)');
  assert.equal(progressText({ done: 1500, total: 3000 }), '1,500/3,000 (50%)');
  assert.equal(progressText(null), '');
  assert.equal(progressText({ done: 40, total: 0 }), '40 done', 'a total not known');
  assert.equal(progressShare({ done: 40, total: 0 }), 0);
  assert.equal(progressShare({ done: 150, total: 100 }), 1);
});

test('a metric is shown by its kind: counters add up, gauges are their last value, histograms their spread', () => {
  const m = new Map();
  const ev = (name, value, kind, unit = '', ord = 1) => ({ data: { name, value, kind, unit }, ord, tsMs: ord });
  for (const v of [25, 25, 50]) addMetric(m, ev('records_processed', v, 'counter', 'records'));
  addMetric(m, ev('mean_value', 12.5, 'gauge', '', 1));
  addMetric(m, ev('mean_value', 14.25, 'gauge', '', 2));
  addMetric(m, ev('mean_value', 99, 'gauge', '', 0));   // older, arriving late: not the last value
  for (const v of [1, 2, 6]) addMetric(m, ev('latency', v, 'histogram', 'ms'));
  assert.equal(metricValue(m.get('records_processed')), '100 records in all (3 reports)');
  assert.equal(metricValue(m.get('mean_value')), '14.25 (last of 3)');
  assert.equal(metricValue(m.get('latency')), '3 values · min 1 · avg 3 · max 6 ms');
  assert.equal(addMetric(m, ev('', 1, 'gauge')), false, 'a metric without a name is ignored');
  assert.equal(addMetric(m, { data: { name: 'x', value: 'NaN', kind: 'gauge' }, ord: 1 }), false);
  assert.equal(fmtNum(0.1 + 0.2), '0.3');
  assert.equal(fmtNum(1234567), '1,234,567');
});

const stats = (buckets) => ({ sinceMs: 0, untilMs: buckets.length * 1000, count: 0, failed: 0, buckets: buckets.map((b, i) => Object.assign({ startMs: i * 1000, count: 0, failed: 0 }, b)) });

test('the durations chart: a round scale, gaps where no execution ran, failures marked, one hover area per bucket with data', () => {
  assert.equal(niceCeil(0.31), 0.5);
  assert.equal(niceCeil(0.15), 0.2);
  assert.equal(niceCeil(2), 2);
  assert.equal(niceCeil(0), 0.001);
  const st = stats([{ count: 2, p50: 0.1, p95: 0.2, max: 0.3 }, {}, { count: 1, failed: 1, p50: 0.15, p95: 0.15, max: 0.15 }, { count: 3, p50: 0.12, p95: 0.25, max: 0.28 }]);
  const g = statsGeometry(st, 400, 130);
  assert.equal(g.yMax, 0.5);
  assert.deepEqual(g.segments.p50.map((seg) => seg.length), [1, 2], 'the empty bucket splits the line');
  assert.equal(g.hits.length, 3);
  assert.equal(g.fails.length, 1);
  assert.equal(g.dots.length, 3);
  assert.ok(g.segments.p50[1][0].x < g.segments.p50[1][1].x, 'time runs left to right');
  assert.ok(g.y(0.3) < g.y(0.1), 'longer is higher');
  assert.ok(g.y(0) <= 130 && g.y(g.yMax) >= 0);
  assert.match(statsSummary(Object.assign(st, { count: 6, failed: 1, p50: 0.12, p95: 0.25, max: 0.3 })), /^6 executions · p50 120 ms · p95 250 ms · max 300 ms · ✕ 1 failed$/);
  assert.equal(statsSummary(stats([{}])), 'No executions of this node in the range.');
});
