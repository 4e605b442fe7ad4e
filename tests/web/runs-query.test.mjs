// Unit tests of web/runs-query.js: the runs page's filters, API queries and cursor paging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filtersFromQuery, filtersToQuery, runsUrl, graphsUrl, createPager, localInputToIso, isoToLocalInput, emptyFilters, isTimeParam } from '../../web/runs-query.js';

test('filters round-trip through the address, in one order, the empty ones left out', () => {
  const f = filtersFromQuery('status=failed,running,bogus,failed&graph=orders&since=24h&until=2026-11-30T12:00:00Z&q=%209f1b%20&nested=1');
  assert.deepEqual(f, { status: ['running', 'failed'], graph: 'orders', since: '24h', until: '2026-11-30T12:00:00Z', q: '9f1b', nested: true });
  assert.equal(filtersToQuery(f), 'status=running%2Cfailed&graph=orders&since=24h&until=2026-11-30T12%3A00%3A00Z&q=9f1b&nested=1');
  assert.deepEqual(filtersFromQuery(filtersToQuery(f)), f);
  assert.deepEqual(filtersFromQuery(''), emptyFilters());
  assert.equal(filtersToQuery(emptyFilters()), '');
});

test('malformed times are not sent; ages, ISO 8601 and Unix seconds are', () => {
  for (const ok of ['90s', '15m', '24h', '7d', '2w', '1796000000', '2026-11-27T17:00:00Z', '2026-11-27T17:00:00.5Z']) assert.ok(isTimeParam(ok), ok);
  for (const bad of ['', 'yesterday', '24 h', '2026-11-27', '2026-11-27T17:00Z', '-5m', '1e9', '<script>']) assert.ok(!isTimeParam(bad), bad);
  assert.equal(filtersFromQuery('since=yesterday&until=%3Cscript%3E').since, '');
});

test('the API query of a page: filters, limit, cursor; graphs over the same range', () => {
  const f = Object.assign(emptyFilters(), { status: ['failed'], graph: 'a b&c', q: 'x/y' });
  assert.equal(runsUrl(f, null, 50), 'api/runs?status=failed&graph=a+b%26c&q=x%2Fy&limit=50');
  assert.equal(runsUrl(emptyFilters(), '1796082509910.4', 100), 'api/runs?limit=100&cursor=1796082509910.4');
  assert.equal(graphsUrl(emptyFilters()), 'api/graphs');
  assert.equal(graphsUrl(Object.assign(emptyFilters(), { since: '24h' })), 'api/graphs?since=24h');
});

test('datetime-local values become ISO 8601 UTC with seconds, and back', () => {
  assert.equal(localInputToIso('2026-11-30T14:05', true), '2026-11-30T14:05:00Z');
  assert.equal(localInputToIso('2026-11-30T14:05:07', true), '2026-11-30T14:05:07Z');
  assert.equal(localInputToIso('junk', true), '');
  assert.equal(isoToLocalInput('2026-11-30T14:05:00Z', true), '2026-11-30T14:05');
  assert.equal(isoToLocalInput('24h', true), '');
  const local = localInputToIso('2026-11-30T14:05', false);
  assert.equal(isoToLocalInput(local, false), '2026-11-30T14:05', 'the browser zone round-trips');
});

const page = (ids, next) => ({ runs: ids.map((id) => ({ id })), next_cursor: next, limit: 3 });

test('cursor paging: one request at a time, the cursor followed, repeats skipped, the end found', () => {
  const p = createPager(emptyFilters(), 3);
  const u1 = p.next();
  assert.equal(u1, 'api/runs?limit=3');
  assert.equal(p.next(), null, 'no second request while one is out');
  assert.deepEqual(p.accept(u1, page(['a', 'b', 'c'], 'c1')).map((r) => r.id), ['a', 'b', 'c']);
  const u2 = p.next();
  assert.equal(u2, 'api/runs?limit=3&cursor=c1');
  // A run that moved between pages is not listed twice.
  assert.deepEqual(p.accept(u2, page(['c', 'd', 'e'], 'c2')).map((r) => r.id), ['d', 'e']);
  const u3 = p.next();
  assert.deepEqual(p.accept(u3, page(['f'], null)).map((r) => r.id), ['f']);
  assert.equal(p.done, true);
  assert.equal(p.next(), null, 'nothing after the last page');
  assert.deepEqual(p.rows.map((r) => r.id), ['a', 'b', 'c', 'd', 'e', 'f']);
  assert.equal(p.pages, 3);
});

test('an answer to an older request (the filters changed) is ignored; a failure can be retried', () => {
  const p = createPager(emptyFilters(), 3);
  const u = p.next();
  assert.deepEqual(p.accept('api/runs?limit=3&status=failed', page(['x'], 'c')), []);
  assert.equal(p.rows.length, 0);
  p.fail(u, 'HTTP 503');
  assert.equal(p.error, 'HTTP 503');
  assert.equal(p.next(), u, 'the same page is asked again');
});

test('paging stops at the row bound, and on a cursor that does not move', () => {
  const p = createPager(emptyFilters(), 3, 4);
  p.accept(p.next(), page(['a', 'b', 'c'], 'c1'));
  p.accept(p.next(), page(['d', 'e', 'f'], 'c2'));
  assert.equal(p.rows.length, 4);
  assert.equal(p.capped, true);
  assert.equal(p.done, true);
  const q = createPager(emptyFilters(), 3);
  q.accept(q.next(), page(['a'], 'same'));
  q.accept(q.next(), page(['b'], 'same'));
  assert.equal(q.done, true);
});
