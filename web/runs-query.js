/*
 * runs-query.js - the runs page's filters and its paging through the run
 * history (GET /api/runs, docs/history.md).
 *
 * Filters live in the page's address (#/runs?status=failed&since=24h…), so
 * a filtered list can be reloaded or shared; the same filters become the
 * API's query.  The list is read a page at a time with the server's cursor
 * (newest first); a pager keeps the rows read so far, drops answers to a
 * query that is no longer the current one, skips a run a later page repeats
 * (a run that got an earlier event moves between pages) and stops at
 * MAX_ROWS so a long scroll stays bounded.  Pure: tests/web/runs-query.test.mjs.
 */

export const STATUSES = ['running', 'success', 'failed', 'stale'];
export const PAGE_SIZE = 100;
export const MAX_ROWS = 5000;

/** An age ("90s", "15m", "24h", "7d", "2w"), an ISO 8601 time or Unix seconds: what the API takes. */
const TIME_RE = /^(\d{1,6}[smhdw]|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})|\d{1,12})$/;
export const isTimeParam = (v) => typeof v === 'string' && TIME_RE.test(v);

/** The empty filter set. */
export const emptyFilters = () => ({ status: [], graph: '', since: '', until: '', q: '', nested: false });

/**
 * Filters from URL parameters (a string or URLSearchParams): unknown
 * statuses and malformed times are left out rather than sent.
 */
export function filtersFromQuery(query) {
  const p = query instanceof URLSearchParams ? query : new URLSearchParams(String(query || ''));
  const f = emptyFilters();
  const st = (p.get('status') || '').split(',').map((x) => x.trim()).filter((x) => STATUSES.includes(x));
  f.status = STATUSES.filter((x) => st.includes(x));   // one order, no repeats
  f.graph = (p.get('graph') || '').slice(0, 256);
  for (const k of ['since', 'until']) { const v = (p.get(k) || '').trim(); if (isTimeParam(v)) f[k] = v; }
  f.q = (p.get('q') || '').trim().slice(0, 256);
  f.nested = p.get('nested') === '1';
  return f;
}

/** URL parameters of a filter set, the empty ones left out (the page's address and the API share them). */
export function filtersToQuery(f) {
  const p = new URLSearchParams();
  if (f.status && f.status.length) p.set('status', STATUSES.filter((x) => f.status.includes(x)).join(','));
  if (f.graph) p.set('graph', f.graph);
  if (f.since) p.set('since', f.since);
  if (f.until) p.set('until', f.until);
  if (f.q) p.set('q', f.q);
  if (f.nested) p.set('nested', '1');
  return p.toString();
}

/** The GET /api/runs request of one page (relative to the page's base). */
export function runsUrl(f, cursor, limit = PAGE_SIZE) {
  const q = filtersToQuery(f);
  const p = new URLSearchParams(q);
  p.set('limit', String(limit));
  if (cursor) p.set('cursor', cursor);
  return 'api/runs?' + p.toString();
}

/** GET /api/graphs over the filter's time range (default: the API's 7 days). */
export function graphsUrl(f) {
  return f.since ? 'api/graphs?since=' + encodeURIComponent(f.since) : 'api/graphs';
}

/**
 * A `datetime-local` input's value ("2026-11-30T14:05", the browser's zone,
 * or UTC when utc) as an ISO 8601 UTC time for the API; '' when empty or bad.
 */
export function localInputToIso(value, utc) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(String(value || ''));
  if (!m) return '';
  const a = m.slice(1).map((x) => Number(x || 0));
  const ms = utc ? Date.UTC(a[0], a[1] - 1, a[2], a[3], a[4], a[5]) : new Date(a[0], a[1] - 1, a[2], a[3], a[4], a[5]).getTime();
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.000Z$/, 'Z') : '';   // seconds always: the API needs them
}

/** The inverse, for showing an ISO time in a `datetime-local` input; '' for ages and bad values. */
export function isoToLocalInput(iso, utc) {
  if (!/^\d{4}-\d{2}-\d{2}T/.test(String(iso || ''))) return '';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const parts = utc ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes()];
  return `${parts[0]}-${pad(parts[1])}-${pad(parts[2])}T${pad(parts[3])}:${pad(parts[4])}`;
}

/**
 * Paging state for one filter set.  next() names the request to make (null
 * while one is out, after the last page, or at MAX_ROWS); accept(url, body)
 * takes its answer and returns the rows it added.  An answer to another
 * request than the one out (the filters changed since) is ignored.
 */
export function createPager(filters, limit = PAGE_SIZE, maxRows = MAX_ROWS) {
  const seen = new Set();
  const pager = {
    filters, limit, rows: [], cursor: null, pages: 0, done: false, capped: false, pending: '', error: '',
    next() {
      if (pager.done || pager.pending) return null;
      pager.pending = runsUrl(filters, pager.cursor, limit);
      return pager.pending;
    },
    accept(url, body, parse = (r) => r) {
      if (url !== pager.pending) return [];
      pager.pending = '';
      pager.error = '';
      const list = body && Array.isArray(body.runs) ? body.runs : [];
      const added = [];
      for (const raw of list) {
        const row = parse(raw);
        if (!row || seen.has(row.id)) continue;
        if (pager.rows.length >= maxRows) { pager.capped = true; break; }
        seen.add(row.id);
        pager.rows.push(row);
        added.push(row);
      }
      pager.pages++;
      const next = body && typeof body.next_cursor === 'string' && body.next_cursor ? body.next_cursor : null;
      // A cursor that does not move would ask for the same page for ever.
      if (!next || next === pager.cursor || pager.capped) pager.done = true;
      pager.cursor = next;
      return added;
    },
    fail(url, message) {
      if (url !== pager.pending) return;
      pager.pending = '';
      pager.error = message;
    },
  };
  return pager;
}
