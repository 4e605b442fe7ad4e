// A JS reading of the dashboard's run history (src/dashboard/store*.c,
// api_runs.c; docs/history.md): runs, node executions and the bodies of the
// history routes, built from events the way the server builds them.  Used by
// the unit tests (a stored run coloured like the live view) and by the mock
// server (tests/browser/mock-server.mjs), which validates every body it
// sends against docs/schema/history.schema.json.  Deterministic given `now`.

const iso = (ms) => (Number.isFinite(ms) ? new Date(ms).toISOString() : null);
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const STATUS = ['running', 'success', 'failed'];
const EXEC_STATUS = ['running', 'completed', 'failed'];

/** A time parameter (ISO 8601, Unix seconds, an age) as epoch ms, or NaN. */
export function parseWhen(s, now) {
  if (typeof s !== 'string' || !s) return NaN;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(s)) return Date.parse(s);
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(s);
  if (!m) return NaN;
  const mult = { '': 0, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
  return m[2] ? Math.max(0, now - Number(m[1]) * mult * 1000) : Number(m[1]) * 1000;
}
function parseSpan(s) {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(String(s));
  return m && Number(m[1]) > 0 ? Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]] : NaN;
}
const rank = (sorted, q) => (sorted.length ? sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] : null);

export class HistoryStore {
  constructor({ now = () => Date.now(), staleAfter = 300 } = {}) {
    this.now = now;
    this.staleAfter = staleAfter;
    this.runs = new Map();      // run_id -> run
    this.seen = new Set();
    this.rid = 0;
  }

  /** Store one accepted event (deduplicated by event_id, as the server does). */
  add(ev) {
    if (this.seen.has(ev.event_id)) return false;
    this.seen.add(ev.event_id);
    const wf = ev.workflow_id;
    if (!wf || ev.node_id === 'dispatcher') return true;
    const ts = Date.parse(ev.timestamp);
    let r = this.runs.get(wf);
    if (!r) {
      r = { rid: ++this.rid, id: wf, parent: null, graph: null, graphType: null, topology: null, status: 0, started: ts, last: ts,
        ended: NaN, duration: null, finalAction: null, error: null, events: [], errors: 0, host: null, pid: null, execs: new Map() };
      this.runs.set(wf, r);
    }
    r.events.push(ev);
    r.started = Math.min(r.started, ts);
    r.last = Math.max(r.last, ts);
    if (ev.event_type === 'error') r.errors++;
    if (isObj(ev.source)) { r.host = r.host ?? (typeof ev.source.host === 'string' ? ev.source.host : null); r.pid = r.pid ?? (typeof ev.source.pid === 'number' ? ev.source.pid : null); }
    const d = isObj(ev.data) ? ev.data : {};
    if (ev.event_name === 'workflow_started') {
      r.graph = r.graph ?? ev.node_id;
      r.graphType = r.graphType ?? ev.node_type;
      r.topology = r.topology ?? (isObj(d.graph) ? d.graph : null);
      r.parent = r.parent ?? (typeof d.parent_workflow_id === 'string' ? d.parent_workflow_id : null);
      return true;
    }
    if (ev.event_name === 'workflow_completed') {
      r.status = Math.max(r.status, d.status === 'failed' ? 2 : 1);
      r.ended = ts;
      r.duration = typeof d.duration === 'number' ? d.duration : r.duration;
      r.finalAction = typeof d.final_action === 'string' ? d.final_action : r.finalAction;
      if (typeof d.error === 'string') r.error = d.error;
      return true;
    }
    if (!ev.correlation_id || !ev.node_id) return true;
    const item = typeof d.item === 'number' ? d.item : -1;
    const key = ev.correlation_id + '\u001f' + item;
    let x = r.execs.get(key);
    if (!x) {
      const parts = typeof ev.node_path === 'string' ? ev.node_path.split('/') : null;
      x = { corr: ev.correlation_id, item, nodeId: ev.node_id, node: parts && parts.length > 1 ? parts.slice(1).join('/') : ev.node_id,
        graph: parts ? parts[0] : null, nodeType: ev.node_type, status: 0, started: ts, ended: NaN, duration: null, retries: 0, events: 0,
        errors: 0, action: null, error: null, errorType: null, phase: null, errMs: -Infinity };
      r.execs.set(key, x);
    }
    x.events++;
    x.started = Math.min(x.started, ts);
    if (ev.event_type === 'error') x.errors++;
    if (ev.event_name === 'retry_attempted') x.retries++;
    if (ev.event_name === 'node_completed') { x.status = Math.max(x.status, 1); x.ended = ts; x.duration = d.total_execution_time ?? x.duration; x.action = d.next_action ?? x.action; }
    if (ev.event_name === 'node_failed') { x.status = 2; x.ended = ts; x.duration = d.total_execution_time ?? x.duration; }
    if (typeof d.error === 'string' && ts >= x.errMs) { x.errMs = ts; x.error = d.error; x.errorType = d.error_type ?? null; x.phase = d.phase ?? null; }
    return true;
  }

  status(r) {
    if (r.status) return STATUS[r.status];
    return r.last < this.now() - this.staleAfter * 1000 ? 'stale' : 'running';
  }
  runBody(r, withTopology) {
    const o = {
      run_id: r.id, workflow_id: r.id, graph: r.graph, graph_type: r.graphType, parent_workflow_id: r.parent, status: this.status(r),
      started_at: iso(r.started), started_ms: r.started, ended_at: iso(r.ended), ended_ms: Number.isFinite(r.ended) ? r.ended : null,
      last_event_at: iso(r.last), last_event_ms: r.last, duration: r.duration, final_action: r.finalAction, error: r.error,
      event_count: r.events.length, error_count: r.errors, node_executions: r.execs.size, source: { host: r.host, pid: r.pid },
    };
    if (withTopology) o.topology = r.topology;
    return o;
  }
  execBody(r, x) {
    return {
      run_id: r.id, execution_id: x.corr, item: x.item >= 0 ? x.item : null, node: x.node, node_id: x.nodeId, node_type: x.nodeType,
      status: EXEC_STATUS[x.status], started_at: iso(x.started), started_ms: x.started, ended_at: iso(x.ended),
      ended_ms: Number.isFinite(x.ended) ? x.ended : null, duration: x.duration, attempts: 1 + x.retries, retries: x.retries,
      events: x.events, errors: x.errors, action: x.action, error: x.error, error_type: x.errorType, phase: x.phase,
    };
  }

  /** GET /api/runs: {status, body}. */
  list(q) {
    const now = this.now();
    const bad = (error) => ({ status: 400, body: { error } });
    const limit = q.has('limit') ? Number(q.get('limit')) : 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) return bad('limit must be an integer 1..500');
    const statuses = (q.get('status') || '').split(',').filter(Boolean);
    if (statuses.some((s) => !['running', 'success', 'failed', 'stale'].includes(s))) return bad('status must be a comma list of running, success, failed, stale');
    const since = q.get('since') ? parseWhen(q.get('since'), now) : -Infinity;
    const until = q.get('until') ? parseWhen(q.get('until'), now) : Infinity;
    if (Number.isNaN(since) || Number.isNaN(until)) return bad('since/until must be an ISO 8601 time, Unix seconds or an age like 24h');
    let cur = null;
    if (q.get('cursor')) {
      const m = /^(-?\d+)\.(\d+)$/.exec(q.get('cursor'));
      if (!m) return bad('bad cursor (use next_cursor from the previous page)');
      cur = [Number(m[1]), Number(m[2])];
    }
    const graph = q.get('graph') || '', prefix = q.get('q') || '', nested = q.get('nested') === '1';
    const all = [...this.runs.values()].filter((r) => (nested || !r.parent) && (!graph || r.graph === graph) && r.id.startsWith(prefix) &&
      r.started >= since && r.started < until && (!statuses.length || statuses.includes(this.status(r))));
    all.sort((a, b) => b.started - a.started || b.rid - a.rid);
    const after = cur ? all.filter((r) => r.started < cur[0] || (r.started === cur[0] && r.rid < cur[1])) : all;
    const page = after.slice(0, limit);
    const more = after.length > limit;
    const last = page[page.length - 1];
    return { status: 200, body: { runs: page.map((r) => this.runBody(r, false)), next_cursor: more ? `${last.started}.${last.rid}` : null, limit } };
  }

  descendants(r) {
    const out = [r];
    for (let i = 0; i < out.length && out.length < 10000; i++) for (const c of this.runs.values()) if (c.parent === out[i].id) out.push(c);
    return out;
  }
  /** GET /api/runs/<id>. */
  page(id) {
    const r = this.runs.get(id);
    if (!r) return { status: 404, body: { error: 'no such run' } };
    const execs = [];
    for (const d of this.descendants(r)) for (const x of d.execs.values()) execs.push(this.execBody(d, x));
    execs.sort((a, b) => a.started_ms - b.started_ms || (a.execution_id < b.execution_id ? -1 : 1));
    const children = [...this.runs.values()].filter((c) => c.parent === id).sort((a, b) => a.started - b.started);
    return { status: 200, body: {
      run: this.runBody(r, true), nodes: execs.slice(0, 10000), nodes_truncated: execs.length > 10000,
      children: children.slice(0, 200).map((c) => this.runBody(c, false)), errors: this.ordered(r).filter((e) => e.event_type === 'error').slice(0, 100),
    } };
  }
  ordered(r) {
    return r.events.map((e, i) => [e, i]).sort((a, b) => (a[0].seq ?? 0) - (b[0].seq ?? 0) || a[1] - b[1]).map(([e]) => e);
  }
  /** GET /api/runs/<id>/events. */
  events(id, q) {
    const r = this.runs.get(id);
    if (!r) return { status: 404, body: { error: 'no such run' } };
    const limit = q.has('limit') ? Number(q.get('limit')) : 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 10000) return { status: 400, body: { error: 'limit must be an integer 1..10000' } };
    let list = this.ordered(r);
    if (q.get('type') === 'error') list = list.filter((e) => e.event_type === 'error');
    const m = /^(\d+)\.0$/.exec(q.get('cursor') || '0.0');
    if (!m) return { status: 400, body: { error: 'bad cursor (use next_cursor from the previous page)' } };
    const from = Number(m[1]);
    const page = list.slice(from, from + limit);
    return { status: 200, body: { run_id: id, events: page, next_cursor: page.length === limit ? `${from + limit}.0` : null } };
  }
  /** GET /api/runs/<id>/export: JSON Lines. */
  exportLines(id) {
    const r = this.runs.get(id);
    return r ? this.ordered(r).map((e) => JSON.stringify(e) + '\n').join('') : null;
  }
  /** GET /api/graphs. */
  graphs(q) {
    const now = this.now();
    let since;
    if (q.get('since')) since = parseWhen(q.get('since'), now);
    else { const w = q.get('window') ? parseSpan(q.get('window')) : 7 * 86400; since = Number.isNaN(w) ? NaN : now - w * 1000; }
    if (Number.isNaN(since)) return { status: 400, body: { error: 'since/window must be a time or a duration' } };
    const per = new Map();
    for (const r of this.runs.values()) {
      if (r.parent || r.started < since) continue;
      let g = per.get(r.graph);
      if (!g) { g = { graph: r.graph, runs: 0, success: 0, failed: 0, running: 0, durs: [], last: -Infinity }; per.set(r.graph, g); }
      g.runs++;
      if (r.status === 1) g.success++; else if (r.status === 2) g.failed++; else g.running++;
      if (r.status && typeof r.duration === 'number') g.durs.push(r.duration);
      g.last = Math.max(g.last, r.started);
    }
    const graphs = [...per.values()].sort((a, b) => b.last - a.last).map((g) => {
      const d = g.durs.sort((a, b) => a - b);
      return { graph: g.graph, runs: g.runs, success: g.success, failed: g.failed, running: g.running,
        success_rate: g.success + g.failed ? g.success / (g.success + g.failed) : null, p50_duration: rank(d, 0.5), p95_duration: rank(d, 0.95),
        avg_duration: d.length ? d.reduce((s, v) => s + v, 0) / d.length : null, last_started_at: iso(g.last), last_started_ms: g.last };
    });
    return { status: 200, body: { since: iso(since), truncated: false, graphs } };
  }
  /** GET /api/nodes/<graph>/<node>/stats (graph and node already URL-decoded). */
  nodeStats(graph, node, q) {
    const now = this.now();
    const since = q.get('since') ? parseWhen(q.get('since'), now) : now - 7 * 86400000;
    const until = q.get('until') ? parseWhen(q.get('until'), now) : now;
    const n = q.has('buckets') ? Number(q.get('buckets')) : 60;
    if (Number.isNaN(since) || Number.isNaN(until) || !(until > since)) return { status: 400, body: { error: 'bad since/until' } };
    if (!Number.isInteger(n) || n < 1 || n > 500) return { status: 400, body: { error: 'buckets must be an integer 1..500' } };
    const width = (until - since) / n;
    const all = [], per = Array.from({ length: n }, () => []);
    for (const r of this.runs.values()) {
      for (const x of r.execs.values()) {
        if ((x.graph ?? this.rootGraph(r)) !== graph || x.node !== node || x.started < since || x.started >= until) continue;
        all.push(x);
        per[Math.min(n - 1, Math.floor((x.started - since) / width))].push(x);
      }
    }
    const stats = (list) => {
      const d = list.filter((x) => x.status && typeof x.duration === 'number').map((x) => x.duration).sort((a, b) => a - b);
      return { count: list.length, failed: list.filter((x) => x.status === 2).length, avg: d.length ? d.reduce((s, v) => s + v, 0) / d.length : null,
        p50: rank(d, 0.5), p95: rank(d, 0.95), max: d.length ? d[d.length - 1] : null };
    };
    return { status: 200, body: Object.assign(stats(all), {
      graph, node, since_at: iso(since), since_ms: Math.round(since), until_at: iso(until), until_ms: Math.round(until), bucket_s: width / 1000, truncated: false,
      buckets: per.map((list, i) => Object.assign(stats(list), { start_at: iso(since + i * width), start_ms: Math.round(since + i * width) })),
    }) };
  }
  rootGraph(r) {
    let cur = r;
    for (let i = 0; i < 64 && cur.parent && this.runs.has(cur.parent); i++) cur = this.runs.get(cur.parent);
    return cur.graph;
  }
}
