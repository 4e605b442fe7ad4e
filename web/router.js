/*
 * router.js - what the page shows, kept in the address bar's fragment:
 *   #run=<workflow_id>&node=<node path>
 * so a view can be reloaded, linked or gone back to.  Only the fragment is
 * used (it never reaches the server).  parse/format are pure
 * (tests/web/router.test.mjs); bindRouter wires them to the window.
 */

/** {run, node} from a fragment ("#run=a&node=x%2Fy"); missing keys are ''. */
export function parseRoute(hash) {
  const p = new URLSearchParams(String(hash || '').replace(/^#/, ''));
  return { run: p.get('run') || '', node: p.get('node') || '' };
}

/** The fragment for a route ('' when empty). */
export function formatRoute(r) {
  const p = new URLSearchParams();
  if (r.run) p.set('run', r.run);
  if (r.node) p.set('node', r.node);
  const s = p.toString();
  return s ? '#' + s : '';
}

/**
 * Keep the fragment in step with the page: onRoute(route) is called on
 * load and on back/forward; the returned set(route) records a new view
 * (replace: true for changes not worth a history entry).
 */
export function bindRouter(win, onRoute) {
  let current = formatRoute(parseRoute(win.location.hash));
  win.addEventListener('hashchange', () => {
    current = win.location.hash;
    onRoute(parseRoute(current));
  });
  onRoute(parseRoute(current));
  return (route, replace) => {
    const h = formatRoute(route);
    if (h === current || (h === '' && current === '')) return;
    current = h;
    const url = win.location.pathname + win.location.search + h;
    if (replace) win.history.replaceState(null, '', url);
    else win.history.pushState(null, '', url);
  };
}

/**
 * The address without ?token= (docs/protocol.md "Authentication"): once the
 * server has set its cookie the token need not stay in the address bar,
 * history or a shared link.  Returns null when there is nothing to drop.
 */
export function withoutToken(search) {
  const p = new URLSearchParams(search);
  if (!p.has('token')) return null;
  p.delete('token');
  const s = p.toString();
  return s ? '?' + s : '';
}
