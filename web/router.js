/*
 * router.js - what the page shows, kept in the address bar's fragment, so a
 * view can be reloaded, linked or gone back to:
 *   #run=<workflow_id>&node=<node path>        the live view (the default)
 *   #/runs?status=failed&graph=g&since=24h&q=  the runs page (its filters)
 *   #/runs/<run id>?node=<path>&exec=<id>      one stored run's page
 * Only the fragment is used (it never reaches the server).  parse/format
 * are pure (tests/web/router.test.mjs); bindRouter wires them to the window.
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
 * Which page a fragment names: {page: 'live', run, node}, {page: 'runs',
 * query} (the runs page's filters as URL parameters, runs-query.js reads
 * them) or {page: 'run', id, node, exec}.  Anything else is the live view.
 */
export function parseLocation(hash) {
  const h = String(hash || '').replace(/^#/, '');
  const m = /^\/runs(?:\/([^?]*))?(?:\?(.*))?$/.exec(h);
  if (!m) return Object.assign({ page: 'live' }, parseRoute(h));
  if (m[1] === undefined || m[1] === '') return { page: 'runs', query: m[2] || '' };
  let id;
  try { id = decodeURIComponent(m[1]); } catch (e) { return { page: 'runs', query: '' }; }
  const p = new URLSearchParams(m[2] || '');
  return { page: 'run', id, node: p.get('node') || '', exec: p.get('exec') || '' };
}

/** The fragment of a location (parseLocation's inverse). */
export function formatLocation(loc) {
  if (!loc || !loc.page || loc.page === 'live') return formatRoute(loc || {});
  if (loc.page === 'runs') return '#/runs' + (loc.query ? '?' + loc.query : '');
  const p = new URLSearchParams();
  if (loc.node) p.set('node', loc.node);
  if (loc.exec) p.set('exec', loc.exec);
  const q = p.toString();
  return '#/runs/' + encodeURIComponent(loc.id) + (q ? '?' + q : '');
}

/** The link to a stored run's page. */
export const runPageHref = (id) => formatLocation({ page: 'run', id });

/**
 * Keep the fragment in step with the page: onRoute(location) is called on
 * load and on back/forward (parseLocation's value); the returned
 * set(location) records a new view (replace: true for changes not worth a
 * history entry).  A location without a page is the live view's route.
 */
export function bindRouter(win, onRoute) {
  let current = formatLocation(parseLocation(win.location.hash));
  win.addEventListener('hashchange', () => {
    current = win.location.hash;
    onRoute(parseLocation(current));
  });
  onRoute(parseLocation(current));
  return (route, replace) => {
    const h = formatLocation(route);
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
