/*
 * timeline.js - the Gantt layout of a stored run's node executions: which
 * bars, in which row and lane, and the time scale.  No DOM (timeline-view.js
 * draws it); tests/web/timeline.test.mjs.
 *
 * One row per node path, rows in the order the nodes first started.  Every
 * attempt of an execution is a bar of its own: the execution's
 * [started_ms, ended_ms] is cut at the times of its retry_attempted events
 * (from the run's events; an execution whose retry times are not known keeps
 * its remaining attempts in one bar that says so).  Executions of one node
 * that overlap in time (parallel batch items, a node run by several item
 * runs at once) get lanes of their own within the row, so no bar hides
 * another.  A running execution's bar ends "now" and is marked open.
 */
import { splitPath, pathLeaf } from './protocol.js';

/** The key of an execution: its correlation id, and the item for a batch node's items. */
export const execKey = (corr, item) => corr + '\u0000' + (item === undefined || item === null ? '' : item);

/**
 * When each execution's attempts failed: execKey -> [{ms, error}] in time
 * order, from a run's raw events (retry_attempted carries the attempt that
 * failed; a batch item's events carry data.item).
 */
export function retryTimes(raws) {
  const out = new Map();
  for (const e of raws) {
    if (!e || e.event_name !== 'retry_attempted' || typeof e.correlation_id !== 'string') continue;
    const ms = Date.parse(e.timestamp);
    if (!Number.isFinite(ms)) continue;
    const d = e.data && typeof e.data === 'object' ? e.data : {};
    const k = execKey(e.correlation_id, typeof d.item === 'number' ? d.item : undefined);
    if (!out.has(k)) out.set(k, []);
    out.get(k).push({ ms, attempt: typeof d.attempt === 'number' ? d.attempt : 0, error: typeof d.error === 'string' ? d.error : '' });
  }
  for (const list of out.values()) list.sort((a, b) => a.ms - b.ms || a.attempt - b.attempt);
  return out;
}

/**
 * The bars of one execution (history.js parseExecution, with .path): one per
 * attempt whose end is known, the last one carrying the execution's outcome.
 */
export function executionBars(x, retries, now) {
  const start = x.startMs;
  const open = !Number.isFinite(x.endMs);
  const end = open ? Math.max(start, Number.isFinite(now) ? now : start) : Math.max(start, x.endMs);
  const times = (retries || []).filter((r) => r.ms >= start && r.ms <= end).slice(0, Math.max(0, x.attempts - 1));
  const bars = [];
  let from = start;
  times.forEach((r, i) => {
    bars.push({ attempt: i + 1, attemptTo: i + 1, start: from, end: r.ms, status: 'retried', error: r.error, action: '', open: false });
    from = r.ms;
  });
  const last = times.length + 1;
  bars.push({
    attempt: last, attemptTo: Math.max(last, x.attempts), start: from, end,
    status: open ? 'running' : x.status, error: x.status === 'failed' ? x.error : '', action: x.status === 'completed' ? x.action : '', open,
  });
  for (const b of bars) Object.assign(b, { execId: x.id, runId: x.runId, path: x.path, item: x.item, attempts: x.attempts, exec: x, key: execKey(x.id, x.item) + '\u0000' + b.attempt });
  return bars;
}

/**
 * The layout: {t0, t1, rows: [{path, label, depth, lanes, bars}], bars (by
 * start), skipped (executions without a start time)}.
 * opts: retries (retryTimes' map), order(path) -> number (ties between rows
 * that started together: the topology's order), now (ms, for running bars),
 * runStart / runEnd (ms, widen the scale to the whole run).
 */
export function buildTimeline(execs, opts = {}) {
  const retries = opts.retries || new Map();
  const order = opts.order || (() => 0);
  const rowsByPath = new Map();
  const bars = [];
  let skipped = 0;
  for (const x of execs) {
    if (!x.path || !Number.isFinite(x.startMs)) { skipped++; continue; }
    const list = executionBars(x, retries.get(execKey(x.id, x.item)), opts.now);
    let row = rowsByPath.get(x.path);
    if (!row) {
      const parts = splitPath(x.path);
      row = { path: x.path, label: pathLeaf(x.path), depth: Math.max(0, parts.length - 2), first: x.startMs, execs: [], bars: [], lanes: 1 };
      rowsByPath.set(x.path, row);
    }
    row.first = Math.min(row.first, x.startMs);
    row.execs.push({ start: x.startMs, end: list[list.length - 1].end, bars: list });
    for (const b of list) { b.row = row; row.bars.push(b); bars.push(b); }
  }
  const rows = [...rowsByPath.values()].sort((a, b) => a.first - b.first || order(a.path) - order(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  rows.forEach((row, i) => { row.index = i; assignLanes(row); });
  bars.sort((a, b) => a.start - b.start || a.row.index - b.row.index || a.lane - b.lane || a.attempt - b.attempt);
  let t0 = Number.isFinite(opts.runStart) ? opts.runStart : Infinity, t1 = Number.isFinite(opts.runEnd) ? opts.runEnd : -Infinity;
  for (const b of bars) { if (b.start < t0) t0 = b.start; if (b.end > t1) t1 = b.end; }
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
  if (!(t1 > t0)) t1 = t0 + 1;
  return { t0, t1, rows, bars, skipped };
}

/** First-fit lanes per execution (its attempts stay in one lane): no two bars of a lane overlap. */
function assignLanes(row) {
  row.execs.sort((a, b) => a.start - b.start);
  const ends = [];
  for (const x of row.execs) {
    let lane = ends.findIndex((e) => e <= x.start);
    if (lane < 0) { lane = ends.length; ends.push(x.end); } else ends[lane] = x.end;
    for (const b of x.bars) b.lane = lane;
  }
  row.lanes = Math.max(1, ends.length);
  delete row.execs;
}

// ---------------------------------------------------------------------------
// Time scale
// ---------------------------------------------------------------------------
const STEPS = [];
for (const unit of [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000]) for (const m of [1, 2, 5]) STEPS.push(unit * m);
STEPS.push(15000, 30000, 60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000, 21600000, 43200000, 86400000);
STEPS.sort((a, b) => a - b);

/** The smallest round step (ms) that puts at most maxTicks ticks over span ms. */
export function niceStep(span, maxTicks = 8) {
  for (const s of STEPS) if (span / s <= maxTicks) return s;
  return Math.ceil(span / maxTicks / 86400000) * 86400000;
}

/**
 * An offset from the run's start at the precision of the step, in the unit
 * that suits the whole span (so one axis does not mix "500 ms" and "1.0 s"):
 * "+0", "+250 ms", "+1.5 s", "+2 min".
 */
export function fmtOffset(ms, step = Math.abs(ms), span = Math.abs(ms)) {
  if (ms === 0) return '+0';
  const sign = ms < 0 ? '-' : '+';
  const a = Math.abs(ms);
  const dec = (unit) => Math.min(3, Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9)));
  if (span < 1000) return `${sign}${a.toFixed(dec(1))} ms`;
  if (span < 120000) return `${sign}${(a / 1000).toFixed(dec(1000))} s`;
  if (span < 7200000) return `${sign}${(a / 60000).toFixed(dec(60000))} min`;
  return `${sign}${(a / 3600000).toFixed(dec(3600000))} h`;
}

/**
 * The scale from [t0, t1] (ms) to [x0, x1] (px): x(t), and ticks every
 * round step from t0 ({t, x, label} with the offset from t0).
 */
export function timeScale(t0, t1, x0, x1, maxTicks) {
  const span = Math.max(t1 - t0, 1e-6);
  const w = Math.max(x1 - x0, 1);
  const x = (t) => x0 + ((t - t0) / span) * w;
  const n = maxTicks || Math.max(2, Math.floor(w / 90));
  const step = niceStep(span, n);
  const ticks = [];
  for (let k = 0; k * step <= span + 1e-9 && ticks.length <= n + 1; k++) {
    const t = t0 + k * step;
    ticks.push({ t, x: x(t), label: fmtOffset(k * step, step, span) });
  }
  return { t0, t1, x0, x1, x, step, ticks };
}
