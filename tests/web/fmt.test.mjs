// Unit tests of web/fmt.js (node --test tests/web/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtDur, fmtInt, fmtCompact, fmtPct, fmtClock, zoneLabel, uniqueSuffixLen, idTail, clip, niceMax } from '../../web/fmt.js';

test('durations pick a readable unit', () => {
  assert.equal(fmtDur(0.00084), '840 µs');
  assert.equal(fmtDur(0.0123), '12.3 ms');
  assert.equal(fmtDur(0.004), '4.00 ms');
  assert.equal(fmtDur(1.2), '1.20 s');
  assert.equal(fmtDur(150), '2.5 min');
  assert.equal(fmtDur(undefined), '–');
  assert.equal(fmtDur(-1), '–');
});

test('numbers and ratios', () => {
  assert.equal(fmtInt(1234567), '1,234,567');
  assert.equal(fmtInt(undefined), '–');
  assert.equal(fmtCompact(12345), '12.3k');
  assert.equal(fmtCompact(1234567), '1.23M');
  assert.equal(fmtPct(0.975), '97.5%');
  assert.equal(fmtPct(1), '100%');
  assert.equal(fmtPct(null), '–');
});

test('clock in UTC is the JSON timestamp\'s own time', () => {
  const ms = Date.parse('2026-11-30T23:05:35.010Z');
  assert.equal(fmtClock(ms, true), '23:05:35.010');
  assert.equal(fmtClock(ms, true, false), '23:05:35');
  assert.equal(zoneLabel(true), 'UTC');
  assert.match(zoneLabel(false, ms), /^UTC[+-]\d\d:\d\d$/);
  assert.equal(fmtClock(NaN, true), '--:--:--');
});

test('run ids that share their first characters are told apart by their tail', () => {
  const ids = ['93e4e4ff-e1b5-8b2a-8000-000000000003', '93e4e4ff-e1b5-8b2a-8000-00000000000c', '93e4e4ff-e1b5-8b2a-8000-000000000015'];
  const n = uniqueSuffixLen(ids);
  assert.equal(n, 4);
  const tails = ids.map((id) => idTail(id, n));
  assert.equal(new Set(tails).size, 3);
  assert.equal(tails[0], '…0003');
  // Ids equal in their last 6 characters need a longer tail.
  assert.equal(uniqueSuffixLen(['a-123456', 'b-123456']), 8);
  assert.equal(idTail('short', 4), 'short');
});

test('clip and axis bounds', () => {
  assert.equal(clip('abcdef', 4), 'abc…');
  assert.equal(clip('abc', 4), 'abc');
  assert.equal(niceMax(0), 4);
  assert.equal(niceMax(9000), 10000);
  assert.equal(niceMax(13), 20);
});

test('ids equal at the end but not at the start are told apart by their start', async () => {
  const { distinctPart } = await import('../../web/fmt.js');
  assert.deepEqual(distinctPart(['0002e668-x-000000000001', '0003f779-x-000000000001']), { from: 'start', n: 4 });
  assert.deepEqual(distinctPart(['a-0001', 'a-0002']), { from: 'end', n: 4 });
  assert.equal(idTail('0002e668-x-000000000001', 4, 'start'), '0002…');
});

test('the short zone name for headers', async () => {
  const { zoneShort } = await import('../../web/fmt.js');
  assert.equal(zoneShort(true), 'UTC');
  assert.match(zoneShort(false), /^UTC([+-]\d{1,2}(:\d\d)?)?$/);
});
