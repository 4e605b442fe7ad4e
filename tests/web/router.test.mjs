// Unit tests of web/router.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute, formatRoute, withoutToken } from '../../web/router.js';

test('route round-trips through the fragment, paths with "/" and "%" included', () => {
  const r = { run: '93e4e4ff-e1b5-8b2a-8000-000000000003', node: 'outer/x%2Fy/z' };
  assert.deepEqual(parseRoute(formatRoute(r)), r);
  assert.deepEqual(parseRoute(''), { run: '', node: '' });
  assert.equal(formatRoute({ run: '', node: '' }), '');
});

test('the token is dropped from the query, other parameters stay', () => {
  assert.equal(withoutToken('?token=abc'), '');
  assert.equal(withoutToken('?a=1&token=abc&b=2'), '?a=1&b=2');
  assert.equal(withoutToken('?a=1'), null);
  assert.equal(withoutToken(''), null);
});

test('pages: the runs page with its filters, a run page by id, the live view otherwise', async () => {
  const { parseLocation, formatLocation, runPageHref } = await import('../../web/router.js');
  assert.deepEqual(parseLocation('#/runs'), { page: 'runs', query: '' });
  assert.deepEqual(parseLocation('#/runs?status=failed&since=24h'), { page: 'runs', query: 'status=failed&since=24h' });
  const hostile = 'run/<img src=x onerror=alert(1)>?#%&';
  const href = runPageHref(hostile);
  assert.ok(!/[<>?#&]/.test(href.slice(1).replace('#', '').split('/').pop()), 'the id is encoded: ' + href);
  assert.deepEqual(parseLocation(href), { page: 'run', id: hostile, node: '', exec: '' });
  const loc = { page: 'run', id: '9f1b-39', node: 'orders/enrich/x%2Fy', exec: 'c-1' };
  assert.deepEqual(parseLocation(formatLocation(loc)), loc);
  assert.deepEqual(parseLocation('#run=a&node=b'), { page: 'live', run: 'a', node: 'b' });
  assert.deepEqual(parseLocation(''), { page: 'live', run: '', node: '' });
  assert.equal(formatLocation({ run: 'a', node: '' }), '#run=a', 'a route without a page is the live view\'s');
  assert.equal(formatLocation({ page: 'runs', query: 'q=x' }), '#/runs?q=x');
  assert.deepEqual(parseLocation('#/runs/%E0%A4%A'), { page: 'runs', query: '' }, 'a malformed id falls back to the list');
});
