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
