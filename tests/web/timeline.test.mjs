// Unit tests of web/timeline.js: the Gantt layout of a run's node executions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTimeline, executionBars, retryTimes, execKey, timeScale, niceStep, fmtOffset } from '../../web/timeline.js';

const T = Date.parse('2026-12-01T10:00:00.000Z');
let n = 0;
const exec = (path, start, end, o = {}) => Object.assign({
  id: o.id || `corr-${++n}`, runId: 'run-1', path, item: undefined, status: 'completed', startMs: T + start,
  endMs: end === null ? NaN : T + end, attempts: 1, retries: 0, action: 'default', error: '',
}, o);
const retryEv = (corr, at, attempt, item) => ({
  event_name: 'retry_attempted', correlation_id: corr, timestamp: new Date(T + at).toISOString(),
  data: Object.assign({ attempt, max_retries: 3, error: `timed out (attempt ${attempt})` }, item === undefined ? {} : { item }),
});

test('one bar per execution, rows in the order nodes first started', () => {
  const tl = buildTimeline([exec('p/b', 10, 20), exec('p/a', 0, 10), exec('p/c', 20, 25, { status: 'failed', error: 'boom', action: '' })]);
  assert.deepEqual(tl.rows.map((r) => r.path), ['p/a', 'p/b', 'p/c']);
  assert.equal(tl.bars.length, 3);
  assert.deepEqual(tl.bars.map((b) => b.path), ['p/a', 'p/b', 'p/c'], 'bars by start');
  assert.equal(tl.t0, T);
  assert.equal(tl.t1, T + 25);
  const failed = tl.bars[2];
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error, 'boom');
  assert.equal(failed.action, '');
  assert.equal(tl.bars[0].action, 'default');
});

test('each retry is a bar of its own, cut at the retry_attempted times', () => {
  const x = exec('p/model', 100, 400, { id: 'c-model', attempts: 3, retries: 2 });
  const retries = retryTimes([retryEv('c-model', 200, 1), retryEv('c-model', 300, 2), retryEv('other', 250, 1)]);
  const tl = buildTimeline([x], { retries });
  assert.equal(tl.bars.length, 3);
  assert.deepEqual(tl.bars.map((b) => [b.attempt, b.start - T, b.end - T, b.status]), [[1, 100, 200, 'retried'], [2, 200, 300, 'retried'], [3, 300, 400, 'completed']]);
  assert.equal(tl.bars[0].error, 'timed out (attempt 1)');
  assert.ok(tl.bars.every((b) => b.lane === 0), 'the attempts of one execution share a lane');
  assert.equal(new Set(tl.bars.map((b) => b.key)).size, 3, 'bar keys are unique');
});

test('attempts whose times are unknown stay together in the last bar, which says so', () => {
  const x = exec('p/model', 0, 90, { id: 'c', attempts: 3, retries: 2 });
  const bars = executionBars(x, retryTimes([retryEv('c', 30, 1)]).get(execKey('c')), NaN);
  assert.deepEqual(bars.map((b) => [b.attempt, b.attemptTo]), [[1, 1], [2, 3]]);
  const none = executionBars(x, undefined, NaN);
  assert.deepEqual(none.map((b) => [b.attempt, b.attemptTo, b.start - T, b.end - T]), [[1, 3, 0, 90]]);
});

test('overlapping executions of one node (parallel batch items) get lanes; sequential ones share a lane', () => {
  const items = [0, 1, 2, 3].map((i) => exec('p/worker', i < 2 ? 0 : 60 + i, i < 2 ? 60 : 100, { id: 'c-batch', item: i }));
  const later = exec('p/worker', 200, 210, { id: 'c-later' });
  const tl = buildTimeline([...items, later]);
  const row = tl.rows[0];
  assert.equal(tl.rows.length, 1);
  assert.equal(row.lanes, 2, 'items 0 and 1 run together; items 2 and 3 start when they ended, in their lanes');
  // No two bars of one lane overlap.
  for (const a of tl.bars) for (const b of tl.bars) if (a !== b && a.lane === b.lane) assert.ok(a.end <= b.start || b.end <= a.start, `lane ${a.lane} overlaps`);
  assert.equal(tl.bars.length, 5);
  assert.deepEqual(new Set(tl.bars.map((b) => b.item)), new Set([0, 1, 2, 3, undefined]));
  // A batch item's retries are matched by correlation id and item.
  const r = retryTimes([retryEv('c-batch', 20, 1, 1)]);
  assert.ok(r.has(execKey('c-batch', 1)) && !r.has(execKey('c-batch', 0)));
});

test('a running execution ends now and is open; executions without a start are skipped and counted', () => {
  const tl = buildTimeline([exec('p/a', 0, 10), exec('p/b', 10, null, { status: 'running', action: '' }), exec('p/c', 0, 5, { startMs: NaN })], { now: T + 50 });
  assert.equal(tl.skipped, 1);
  const b = tl.bars.find((x) => x.path === 'p/b');
  assert.equal(b.open, true);
  assert.equal(b.status, 'running');
  assert.equal(b.end, T + 50);
  assert.equal(tl.t1, T + 50);
});

test('the run\'s start and end widen the scale; rows that start together follow the topology order', () => {
  const tl = buildTimeline([exec('p/z', 10, 20), exec('p/y', 10, 20)], { runStart: T, runEnd: T + 100, order: (p) => (p === 'p/z' ? 0 : 1) });
  assert.equal(tl.t0, T);
  assert.equal(tl.t1, T + 100);
  assert.deepEqual(tl.rows.map((r) => r.path), ['p/z', 'p/y']);
  assert.equal(tl.rows[0].depth, 0);
  assert.equal(buildTimeline([exec('p/g/x', 0, 1)]).rows[0].depth, 1, 'a node in a sub-graph is one level deeper');
});

test('time scale: round steps, ticks from the start, offsets at the step\'s precision', () => {
  assert.equal(niceStep(1000, 8), 200);
  assert.equal(niceStep(2112, 8), 500);
  assert.equal(niceStep(0.014, 8), 0.002);
  assert.equal(niceStep(3 * 3600000, 8), 1800000);
  const s = timeScale(T, T + 2112, 100, 1100, 8);
  assert.equal(s.x(T), 100);
  assert.equal(s.x(T + 2112), 1100);
  assert.equal(s.step, 500);
  assert.deepEqual(s.ticks.map((t) => t.label), ['+0', '+0.5 s', '+1.0 s', '+1.5 s', '+2.0 s']);
  assert.ok(s.ticks.every((t, i) => i === 0 || t.x > s.ticks[i - 1].x));
  assert.equal(fmtOffset(250, 50), '+250 ms');
  assert.equal(fmtOffset(0.5, 0.1), '+0.5 ms');
  assert.equal(fmtOffset(90000, 30000), '+90 s');
  assert.equal(fmtOffset(300000, 60000), '+5 min');
  assert.equal(fmtOffset(500, 500, 2112), '+0.5 s', 'the unit suits the span');
  // A run of zero length still has a scale.
  const z = timeScale(T, T, 0, 100);
  assert.ok(Number.isFinite(z.x(T)) && z.ticks.length >= 1);
});
