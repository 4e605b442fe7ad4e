// A stand-in for the engine's monitoring output, for the unit tests and the
// browser test's mock server: it walks a topology the way the C engine runs
// it and yields the events docs/protocol.md specifies, nested runs included
// (a graph node starts a run of its own sub-graph, with node_path and
// parent_workflow_id; a batch graph starts one such run per item, whose
// workflow_started/_completed carry data.item, as docs/events.md says; the
// node events inside carry no item).  Deterministic for a given seed.
//
// runEvents(graph, opts) is a generator of {event, delay} (delay: ms a live
// producer would wait before sending it); opts:
//   seed, choose(node, actions, rnd) -> action, fail(path, rnd) -> bool,
//   retry(path, rnd) -> bool, items(path, rnd) -> n (batch graphs),
//   reason(path) -> text put in the data_output snapshot when an error action is taken,
//   t0 (ms), host, pid, pace (delay scale),
//   report: true to have leaf nodes tell their own story as the demo's nodes
//   do (issue 14: node_log lines with fields, node_progress, custom_metric,
//   custom_event), or a function (node, path, rnd) -> [{type, name, data, delay}].

const esc = (id) => id.replace(/%/g, '%25').replace(/\//g, '%2F');

export function makeIds(seed) {
  let n = 0;
  const prefix = (seed >>> 0).toString(16).padStart(8, '0');
  return () => `${prefix}-e1b5-8b2a-8000-${(++n).toString(16).padStart(12, '0')}`;
}

export function* runEvents(graph, opts = {}) {
  let s = (opts.seed ?? 1) >>> 0 || 1;
  const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  const newId = opts.ids || makeIds(opts.seed ?? 1);
  const evId = opts.eventIds || makeIds((opts.seed ?? 1) ^ 0x5a5a5a5a);
  let seq = opts.seqStart || 0;
  let t = opts.t0 ?? Date.parse('2026-11-30T12:00:00Z');
  const pace = opts.pace ?? 1;
  const choose = opts.choose || ((node, actions) => actions[0]);
  const fail = opts.fail || (() => false);
  const retry = opts.retry || (() => false);
  const items = opts.items || (() => 3);
  const reason = opts.reason || (() => 'quota exceeded');
  const source = { host: opts.host || 'sim', pid: opts.pid || 4242 };
  const report = opts.report === true ? demoReport : opts.report || null;

  function* ev(delay, f) {
    t += delay * pace;
    const e = {
      event_id: evId(), timestamp: new Date(t).toISOString().replace(/\.(\d\d\d)Z$/, '.$1000Z'),
      node_id: f.node_id, node_type: f.node_type, event_type: f.type, event_name: f.name, data: f.data || {},
      correlation_id: f.corr, workflow_id: f.wf, seq: ++seq, source,
    };
    if (f.path) e.node_path = f.path;
    yield { event: e, delay: delay * pace };
  }
  const withItem = (data, item) => (item === undefined ? data : Object.assign({ item }, data));
  const noItem = (data) => data;   // node events inside an item's run: the run's id tells the item

  // Run graph g (its path gp) as run wf; returns {ok, action}.
  function* runGraph(g, gp, wf, item) {
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    let cur = byId.get(g.start) || g.nodes[0];
    let last = '';
    for (let steps = 0; cur && steps < 200; steps++) {
      const path = gp + '/' + esc(cur.id);
      const actions = [...new Set(g.edges.filter((e) => e.from === cur.id).map((e) => e.action))];
      const r = yield* runNode(cur, path, wf, item, actions);
      if (!r.ok) return { ok: false, action: '' };
      last = r.action;
      const next = g.edges.find((e) => e.from === cur.id && e.action === r.action);
      cur = next ? byId.get(next.to) : null;
    }
    return { ok: true, action: last };
  }

  function* runNode(n, path, wf, item, actions) {
    const corr = newId();
    const base = { node_id: n.id, node_type: n.type, corr, wf, path };
    const t0 = t;
    yield* ev(5, { ...base, type: 'lifecycle', name: 'node_started', data: noItem({ state: 'started' }) });
    yield* ev(2, { ...base, type: 'lifecycle', name: 'node_preparing', data: noItem({ state: 'preparing' }) });
    yield* ev(1, { ...base, type: 'data', name: 'data_input', data: noItem({ has_data: true }) });
    yield* ev(1, { ...base, type: 'lifecycle', name: 'node_executing', data: noItem({ state: 'executing' }) });
    let ok = true, action = 'default';
    if (n.nodes) {
      const runs = n.batch ? items(path, rnd) : 1;
      let lastAction = '';
      for (let i = 0; i < runs && ok; i++) {
        const cwf = newId();
        const it = n.batch ? i : item;
        const sub = { nodes: n.nodes, edges: n.edges, start: n.start, id: n.id, type: n.type };
        yield* ev(2, { node_id: n.id, node_type: n.type, corr: cwf, wf: cwf, path, type: 'lifecycle', name: 'workflow_started',
          data: withItem({ state: 'running', parent_workflow_id: wf, graph: sub }, it) });
        const r0 = t;
        const r = yield* runGraph(n, path, cwf, it);
        yield* ev(2, { node_id: n.id, node_type: n.type, corr: cwf, wf: cwf, path, type: 'lifecycle', name: 'workflow_completed',
          data: withItem({ status: r.ok ? 'success' : 'failed', final_action: r.ok ? r.action || null : null, duration: (t - r0) / 1000 }, it) });
        ok = r.ok;
        lastAction = r.action;
      }
      if (!ok) {
        yield* ev(1, { ...base, type: 'error', name: 'node_failed', data: noItem({ state: 'failed', total_execution_time: (t - t0) / 1000, phase: 'exec', error: 'sub-graph run failed', error_type: 'GraphError' }) });
        return { ok: false };
      }
      action = pickAction(n, actions, lastAction);
    } else {
      let work = 20 + Math.floor(rnd() * 60);   // the node's own work, before its next event
      if (report) for (const r of report(n, path, rnd)) yield* ev(r.delay ?? 3, { ...base, type: r.type, name: r.name, data: r.data });
      if (retry(path, rnd)) {
        yield* ev(work, { ...base, type: 'error', name: 'retry_attempted', data: noItem({ attempt: 1, max_retries: 3, phase: 'exec', error: 'upstream service timed out (attempt 1)', error_type: 'TimeoutError' }) });
        work = 30;
      }
      if (fail(path, rnd)) {
        yield* ev(work, { ...base, type: 'error', name: 'node_failed', data: noItem({ state: 'failed', total_execution_time: (t - t0) / 1000, phase: 'exec', error: 'storage unavailable', error_type: 'IOError', attempt: 3, max_retries: 3 }) });
        return { ok: false };
      }
      action = pickAction(n, actions, '');
      t += work * pace;
    }
    const errorish = /error|fail|invalid|^no_/.test(action);
    const snapshot = errorish ? { truncated: false, data: { ok: false, reason: reason(path) } } : { truncated: false, data: { ok: true } };
    yield* ev(2, { ...base, type: 'data', name: 'data_output', data: noItem({ has_data: true, snapshot }) });
    const dur = (t - t0) / 1000;
    yield* ev(1, { ...base, type: 'metric', name: 'execution_time', data: noItem({ value: dur, unit: 'seconds' }) });
    yield* ev(1, { ...base, type: 'lifecycle', name: 'node_completed', data: noItem({ state: 'completed', next_action: action, total_execution_time: dur }) });
    return { ok: true, action };
  }

  function pickAction(n, actions, fallback) {
    if (!actions.length) return fallback || 'default';
    const a = choose(n, actions, rnd);
    return actions.includes(a) ? a : actions[0];
  }

  const wf = newId();
  const gp = esc(graph.id);
  const t0 = t;
  yield* ev(0, { node_id: graph.id, node_type: graph.type, corr: wf, wf, path: gp, type: 'lifecycle', name: 'workflow_started', data: { state: 'running', graph } });
  const r = yield* runGraph(graph, gp, wf, undefined);
  yield* ev(2, { node_id: graph.id, node_type: graph.type, corr: wf, wf, path: gp, type: 'lifecycle', name: 'workflow_completed',
    data: Object.assign({ status: r.ok ? 'success' : 'failed', final_action: r.ok ? r.action || null : null, duration: (t - t0) / 1000 },
      r.ok ? {} : { error: 'storage unavailable', error_type: 'IOError', error_code: -5 }) });
  return wf;
}

/**
 * What the demo's own nodes report (issue 14, "Demo"): a node logs what it
 * does; the validator logs each invalid record at warning with the reason,
 * the processor reports progress over its chunks and a records_processed
 * counter, the aggregator a mean_value gauge, the storage node its storage
 * id (and a custom event).
 */
export function demoReport(n, path, rnd) {
  const log = (level, message, fields) => ({ type: 'log', name: 'node_log', data: fields ? { level, message, fields } : { level, message } });
  const out = [log('info', `${n.id}: starting`, { node: n.id })];
  if (/valid/.test(n.id)) {
    const bad = 1 + Math.floor(rnd() * 3);
    for (let i = 0; i < bad; i++) {
      const rec = 3 + Math.floor(rnd() * 90);
      out.push(log('warning', `invalid record ${rec}: bad date`, { record: rec, reason: 'bad date', value: '2026-13-45' }));
    }
    out.push(log('debug', 'validation rules loaded', { rules: 12 }));
  } else if (/process|transform/.test(n.id)) {
    const chunks = 4;
    for (let c = 1; c <= chunks; c++) {
      out.push({ type: 'lifecycle', name: 'node_progress', data: { done: c * 25, total: 100 }, delay: 12 });
      // After the last chunk the node winds up for as long as a chunk took, so
      // "100/100" is on screen for a while, not only between two messages.
      out.push({ type: 'metric', name: 'custom_metric', data: { name: 'records_processed', value: 25, unit: 'records', kind: 'counter' }, delay: c === chunks ? 12 : 0.5 });
    }
  } else if (/aggregat|report/.test(n.id)) {
    out.push({ type: 'metric', name: 'custom_metric', data: { name: 'mean_value', value: Math.round(rnd() * 10000) / 100, unit: '', kind: 'gauge' } });
  } else if (/stor/.test(n.id)) {
    const id = 'st-' + Math.floor(rnd() * 1e6).toString(16);
    out.push(log('info', `stored as ${id}`, { storage_id: id }));
    out.push({ type: 'data', name: 'custom_event', data: { name: 'stored', data: { storage_id: id, rows: 93 } } });
  }
  return out;
}

/** All events of one run as an array (no pacing). */
export function runToArray(graph, opts = {}) {
  const out = [];
  for (const { event } of runEvents(graph, opts)) out.push(event);
  return out;
}

/** A plausible choice of action: mostly the first, sometimes another; loops rarely. */
export function randomChoice(weights = {}) {
  return (n, actions, rnd) => {
    const w = weights[n.id];
    if (w) {
      let r = rnd();
      for (const [a, p] of Object.entries(w)) { if (actions.includes(a) && (r -= p) < 0) return a; }
    }
    if (actions.length === 1) return actions[0];
    const loops = actions.filter((a) => /retry|again|more|reprocess/.test(a));
    const r = rnd();
    if (loops.length && r < 0.08) return loops[0];
    const rest = actions.filter((a) => !loops.includes(a));
    return rnd() < 0.8 || rest.length === 1 ? rest[0] : rest[1 + Math.floor(rnd() * (rest.length - 1))];
  };
}

/**
 * A flat chain of n nodes as a producer sends it, in one run `id`: every
 * 20th node's execution is retried once, every node logs a line (each 50th
 * at warning).  {id, events}.  The run history's big-run cases (the
 * browser test's and bench-history.mjs's 300-node timelines).
 */
export function chainRun(n, id) {
  const nodes = [], edges = [];
  for (let i = 0; i < n; i++) nodes.push({ id: `step${String(i).padStart(3, '0')}`, type: 'StepNode' });
  for (let i = 0; i + 1 < n; i++) edges.push({ from: nodes[i].id, to: nodes[i + 1].id, action: 'default' });
  const graph = { id: 'bench_chain', type: 'Chain', start: nodes[0].id, nodes, edges };
  const t0 = Date.now() - n * 12 - 1000;
  let seq = 0, t = t0;
  const evs = [];
  const ev = (node, type, name, data, corr) => evs.push({ event_id: `${id}-${++seq}`, timestamp: new Date(t).toISOString(), node_id: node, node_type: 'StepNode',
    node_path: node === 'bench_chain' ? 'bench_chain' : 'bench_chain/' + node, event_type: type, event_name: name, data, correlation_id: corr, workflow_id: id, seq, source: { host: 'bench', pid: 1 } });
  ev('bench_chain', 'lifecycle', 'workflow_started', { state: 'running', graph }, id);
  for (let i = 0; i < n; i++) {
    const node = nodes[i].id, corr = `${id}-x${i}`;
    ev(node, 'lifecycle', 'node_started', { state: 'started' }, corr);
    t += 4;
    if (i % 20 === 19) { ev(node, 'error', 'retry_attempted', { attempt: 1, max_retries: 2, error: 'timed out', error_type: 'TimeoutError', phase: 'exec' }, corr); t += 4; }
    ev(node, 'log', 'node_log', { level: i % 50 === 7 ? 'warning' : 'info', message: `step ${i} done`, fields: { i } }, corr);
    t += 4;
    ev(node, 'lifecycle', 'node_completed', { state: 'completed', next_action: 'default', total_execution_time: 0.008 }, corr);
  }
  ev('bench_chain', 'lifecycle', 'workflow_completed', { status: 'success', final_action: 'default', duration: (t - t0) / 1000 }, id);
  return { id, events: evs };
}
