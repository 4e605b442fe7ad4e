/*
 * kaygraph-c live monitor: the whole dashboard client in one plain ES2020 file.
 *
 * What it does: connects to the dashboard server's WebSocket (/ws), keeps an
 * aggregated picture of every workflow run it has seen, and draws
 *   - the workflow network of one run as a layered DAG in SVG, from the real
 *     topology carried by workflow_started events (own layout code below:
 *     cycle breaking, longest-path layering, barycentric ordering), with nodes
 *     coloured by live status and the edge taken lighting up on each transition;
 *   - metric cards, a canvas throughput chart, a per-node table;
 *   - a capped, filterable, pausable event log with an event detail pane;
 *   - a run picker that can replay one run's events fetched from the server.
 *
 * Why it is shaped like this:
 *   - Safety: event data is untrusted.  It only ever reaches the page through
 *     textContent, createTextNode, setAttribute on inert attributes and
 *     new Option(text); this file contains no innerHTML/outerHTML/insertAdjacentHTML
 *     and no eval, so a <script> or <img onerror> in an event renders as text.
 *   - Speed: at 10,000 events/s, incoming messages are only parsed and queued in
 *     onmessage; the queue is applied once per animation frame, the DOM is
 *     touched only for what changed (dirty nodes, lit edges, new log rows), the
 *     log keeps at most LOG_ROWS rows and recycles them, and slow-moving parts
 *     (cards, table, pickers) refresh on a timer, not per event.
 *   - No dependencies and no build step: the C server embeds this file as is.
 */
'use strict';

(() => {
  // ---------------------------------------------------------------------------
  // Configuration
  // ---------------------------------------------------------------------------
  const CFG = {
    LOG_ROWS: 500,            // rows kept in the log DOM (recycled)
    LOG_BUFFER: 5000,         // events kept in memory so filters can rebuild the log
    MAX_RUNS: 200,            // workflow runs remembered (oldest evicted)
    MAX_NODES_STATS: 500,     // distinct node ids tracked for the table
    MAX_FILTER_OPTIONS: 200,  // entries in the node / workflow filter selects
    SEEN_IDS: 20000,          // recent event_ids remembered for de-duplication
    CHART_BUCKET_MS: 500,     // throughput chart resolution
    CHART_BUCKETS: 120,       // 120 x 0.5 s = the last 60 s
    RECONNECT_MIN_MS: 500,
    RECONNECT_MAX_MS: 15000,
    EDGE_LIT_MS: 900,         // how long an edge stays lit after a transition
    SLOW_REFRESH_MS: 250,     // cards and table refresh period
    PICKER_REFRESH_MS: 1000,  // run picker / filter options refresh period
    QUEUE_MAX: 200000,        // beyond this (a hidden tab), the oldest queued events are skipped
    NODE_W: 160,
    NODE_H: 66,
    GAP_X: 90,
    GAP_Y: 34,
  };

  const params = new URLSearchParams(location.search);
  const TOKEN = params.get('token') || '';

  // ---------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const SVGNS = 'http://www.w3.org/2000/svg';

  /** Build an element; string/number children become text nodes, never markup. */
  function build(ns, tag, attrs, children) {
    const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => build(null, tag, attrs, children);
  const s = (tag, attrs, ...children) => build(SVGNS, tag, attrs, children);

  /** Any value as display text: strings as is, objects as JSON. */
  function str(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'object') {
      try { return JSON.stringify(v); } catch (e) { return '[object]'; }
    }
    return String(v);
  }
  /** A finite number, or undefined (numeric strings accepted). */
  function num(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  }
  /** Value at a dotted path ("a.b.c") of obj, or undefined. */
  function at(obj, path) {
    let o = obj;
    for (const p of path.split('.')) {
      if (o === null || typeof o !== 'object') return undefined;
      o = o[p];
    }
    return o;
  }
  /** First defined, non-null value among several candidate paths. */
  function pick(obj, paths) {
    if (!obj || typeof obj !== 'object') return undefined;
    for (const p of paths) {
      const v = at(obj, p);
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  }
  /** A count from a number, an array (its length) or an object (its size). */
  function countOf(v) {
    if (Array.isArray(v)) return v.length;
    const n = num(v);
    if (n !== undefined) return n;
    if (v && typeof v === 'object') return Object.keys(v).length;
    return undefined;
  }
  const intFmt = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => (n === undefined || n === null ? '–' : intFmt.format(Math.round(n)));
  function fmtCompact(n) {
    if (n === undefined) return '–';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 1 : 2) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(n >= 1e5 ? 0 : 1) + 'k';
    return fmtInt(n);
  }
  /** Seconds as a short human duration. */
  function fmtDur(sec) {
    if (sec === undefined || sec === null || !Number.isFinite(sec)) return '–';
    if (sec < 0.001) return (sec * 1e6).toFixed(0) + ' µs';
    if (sec < 1) return (sec * 1e3).toFixed(sec < 0.01 ? 2 : sec < 0.1 ? 1 : 0) + ' ms';
    if (sec < 120) return sec.toFixed(2) + ' s';
    return (sec / 60).toFixed(1) + ' min';
  }
  const pad2 = (n) => (n < 10 ? '0' : '') + n;
  /** Local wall-clock time (HH:MM:SS.mmm) of an ISO timestamp. */
  function fmtClock(ts, fallbackMs) {
    let ms = ts ? Date.parse(ts) : NaN;
    if (!Number.isFinite(ms)) ms = fallbackMs || Date.now();
    const d = new Date(ms);
    const m = d.getMilliseconds();
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.' +
      (m < 10 ? '00' : m < 100 ? '0' : '') + m;
  }
  const shortId = (id) => (id.length > 10 ? id.slice(0, 8) + '…' : id);
  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  }
  function authHeaders() {
    return TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
  }

  // ---------------------------------------------------------------------------
  // Events and workflow runs
  // ---------------------------------------------------------------------------

  /**
   * Wrap a raw server event with normalised string fields (missing fields
   * become ''), keeping the raw object for the detail pane.
   */
  function normEvent(raw) {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
    const data = raw.data && typeof raw.data === 'object' && !Array.isArray(raw.data) ? raw.data : {};
    return {
      raw,
      id: str(raw.event_id),
      ts: str(raw.timestamp),
      node: str(raw.node_id),
      ntype: str(raw.node_type),
      type: str(raw.event_type),
      name: str(raw.event_name),
      wf: str(raw.workflow_id),
      data,
      // Ordering key: a producer's seq, else the timestamp.  Batches from
      // several dispatcher threads can arrive out of order, and a late
      // node_executing must not turn a completed node back into "running".
      ord: num(raw.seq) ?? (Date.parse(str(raw.timestamp)) || Infinity),
      recv: Date.now(),
      text: null,  // lower-cased search text, built lazily
    };
  }

  /**
   * A topology in canonical form {nodes:[{id,type}], edges:[{from,to,action}], start},
   * or null.  Accepts a few spellings (source/target, label, nodes as strings or
   * as an object keyed by id) so a server variant does not blank the graph.
   */
  function normGraph(g) {
    if (!g || typeof g !== 'object') return null;
    let rawNodes = g.nodes;
    if (rawNodes && !Array.isArray(rawNodes) && typeof rawNodes === 'object') {
      rawNodes = Object.keys(rawNodes).map((id) => {
        const v = rawNodes[id];
        return v && typeof v === 'object' ? Object.assign({ id }, v) : { id, type: v };
      });
    }
    const nodes = [];
    const seen = new Set();
    const addNode = (id, type, extra) => {
      if (!id || seen.has(id)) return;
      seen.add(id);
      nodes.push({ id, type: type || '', extra: extra || null });
    };
    for (const n of Array.isArray(rawNodes) ? rawNodes : []) {
      if (typeof n === 'string') addNode(n, '');
      else if (n && typeof n === 'object') addNode(str(n.id ?? n.node_id ?? n.name), str(n.type ?? n.node_type), n);
    }
    const edges = [];
    const ekeys = new Set();
    for (const e of Array.isArray(g.edges) ? g.edges : []) {
      if (!e || typeof e !== 'object') continue;
      const from = str(e.from ?? e.source);
      const to = str(e.to ?? e.target);
      const action = str(e.action ?? e.label) || 'default';
      if (!from || !to) continue;
      const key = from + '\u0000' + action;
      if (ekeys.has(key)) continue;   // a node has one successor per action
      ekeys.add(key);
      addNode(from, '');
      addNode(to, '');
      edges.push({ from, to, action, key });
    }
    if (!nodes.length) return null;
    let start = str(g.start ?? g.start_node);
    if (!seen.has(start)) start = nodes[0].id;
    const topoKey = nodes.map((n) => n.id).sort().join('\u0001') + '\u0002' +
      edges.map((e) => e.key + '\u0000' + e.to).sort().join('\u0001') + '\u0002' + start;
    return { nodes, edges, start, topoKey };
  }

  /** One workflow run (one workflow_id): its topology and live node states. */
  class Run {
    constructor(id) {
      this.id = id;
      this.graph = null;        // normGraph() result, from workflow_started
      this.inferred = null;     // node ids seen, when no topology is known
      this.firstSeen = Date.now();
      this.lastSeen = this.firstSeen;
      this.startTs = '';
      this.startMs = 0;
      this.status = 'unknown';  // running | success | failed | unknown
      this.duration = undefined;
      this.finalAction = '';
      this.events = 0;
      this.errors = 0;
      this.nodes = new Map();   // node id -> NodeState
      this.edgeCounts = new Map(); // edge key -> traversals in this run
    }
    node(id) {
      let n = this.nodes.get(id);
      if (!n) {
        n = { status: 'idle', retries: 0, attempt: 0, failures: 0, execs: 0, fallbacks: 0,
              lastDur: undefined, lastError: '', type: '', ord: -Infinity };
        this.nodes.set(id, n);
      }
      return n;
    }
    /** A (re)start: nodes not touched by a later event go back to idle. */
    resetNodes(ord) {
      let later = false;
      for (const n of this.nodes.values()) {
        if (n.ord > ord) { later = true; continue; }
        n.status = 'idle'; n.retries = 0; n.attempt = 0; n.failures = 0; n.execs = 0;
        n.fallbacks = 0; n.lastDur = undefined; n.lastError = ''; n.ord = ord;
      }
      if (!later) this.edgeCounts.clear();
    }
  }

  const RUNNING_NAMES = new Set(['node_started', 'node_preparing', 'node_executing',
    'data_input', 'data_output', 'execution_time']);

  /**
   * Apply one event to a run.  Reports what changed through fx (a Set of node
   * ids, a list of lit edge keys, and flags), so the graph view can update
   * only that.  Used by the live path and by replay alike.
   */
  function applyToRun(run, ev, fx) {
    run.events++;
    run.lastSeen = ev.recv;
    const d = ev.data;
    if (ev.type === 'error') run.errors++;
    switch (ev.name) {
      case 'workflow_started': {
        const g = normGraph(d.graph);
        if (g) {
          if (!run.graph || run.graph.topoKey !== g.topoKey) fx.topo = true;
          run.graph = g;
          run.inferred = null;
        }
        // A workflow_started arriving after its run's end keeps the end status.
        if (!(run.endOrd > ev.ord)) { run.status = 'running'; run.duration = undefined; }
        run.startTs = ev.ts;
        run.startMs = Date.parse(ev.ts) || ev.recv;
        run.resetNodes(ev.ord);
        fx.all = true;
        fx.run = true;
        return;
      }
      case 'workflow_completed': {
        const st = str(d.status).toLowerCase();
        run.status = st === 'failed' || st === 'failure' || st === 'error' ? 'failed' : 'success';
        run.endOrd = ev.ord;
        run.duration = num(d.duration);
        run.finalAction = str(d.final_action);
        fx.run = true;
        return;
      }
      default:
        break;
    }
    if (!ev.node) return;
    const n = run.node(ev.node);
    if (ev.ntype && !n.type) n.type = ev.ntype;
    if (!run.graph) {
      if (!run.inferred) run.inferred = [];
      if (run.inferred.length < 64 && !run.inferred.includes(ev.node)) {
        run.inferred.push(ev.node);
        fx.topo = true;
      }
    }
    // Counters always count; the status only follows events newer than the
    // one that set it.
    const newer = !(ev.ord < n.ord);
    if (newer && ev.ord !== Infinity) n.ord = ev.ord;
    const setStatus = (st) => { if (newer) n.status = st; };
    if (ev.name === 'node_started') {
      setStatus('running');
      if (newer) n.attempt = 0;
    } else if (RUNNING_NAMES.has(ev.name)) {
      // A retried execution stays "retrying" until it completes or fails.
      if (n.status !== 'retrying') setStatus('running');
    } else if (ev.name === 'retry_attempted') {
      setStatus('retrying');
      n.retries++;
      n.attempt = num(d.attempt) ?? n.attempt + 1;
      n.lastError = str(d.error);
    } else if (ev.name === 'fallback_triggered') {
      n.fallbacks++;
    } else if (ev.name === 'node_failed') {
      setStatus('failed');
      n.failures++;
      n.lastError = str(d.error) || str(d.error_type);
    } else if (ev.name === 'node_completed') {
      setStatus('completed');
      n.execs++;
      const dur = num(d.total_execution_time) ?? num(d.duration);
      if (dur !== undefined) n.lastDur = dur;
      const action = str(d.next_action) || 'default';
      const key = ev.node + '\u0000' + action;
      run.edgeCounts.set(key, (run.edgeCounts.get(key) || 0) + 1);
      fx.edges.push(key);
    } else if (ev.type === 'error') {
      n.lastError = str(d.error) || n.lastError;
    } else {
      return;
    }
    fx.nodes.add(ev.node);
  }

  // ---------------------------------------------------------------------------
  // Global state
  // ---------------------------------------------------------------------------
  const state = {
    runs: new Map(),          // workflow_id -> Run, in first-seen order
    runsVersion: 0,           // bumped when the run list or a run's status changes
    latestTopoRun: '',        // newest run that has a real topology
    latestRun: '',            // newest run of any kind
    selectedRun: '',          // '' = follow the latest run
    nodeStats: new Map(),     // node id -> client-side stats for the table
    nodeIdsVersion: 0,
    total: 0,                 // events received by this tab
    errors: 0,
    byType: Object.create(null),
    serverMetrics: null,
    initActiveNodes: undefined,
    initActiveWorkflows: undefined,
    clientDropped: 0,         // messages the server told us it skipped for this tab
    localSkipped: 0,          // events this tab skipped itself (hidden-tab overflow)
    seenIds: new Set(),
    seenPrev: new Set(),
    // counters for tests and diagnostics
    received: 0,
    baseline: 0,              // server's total_events in the last "initial" snapshot
    sinceInitial: 0,          // events received since that snapshot
    applied: 0,
    frames: 0,
    lastFrameMs: 0,
    maxFrameMs: 0,
  };

  function getRun(id) {
    let run = state.runs.get(id);
    if (!run) {
      run = new Run(id);
      state.runs.set(id, run);
      state.runsVersion++;
      if (state.runs.size > CFG.MAX_RUNS) evictRuns();
    }
    return run;
  }
  function evictRuns() {
    // Maps iterate in insertion order, so the first keys are the oldest runs.
    for (const id of state.runs.keys()) {
      if (state.runs.size <= CFG.MAX_RUNS) break;
      if (id === state.selectedRun || id === displayedRunId()) continue;
      state.runs.delete(id);
      if (id === state.latestTopoRun) state.latestTopoRun = '';
    }
  }

  /** Which run the graph shows: the picked one, else the newest with a topology. */
  function displayedRunId() {
    if (state.selectedRun && state.runs.has(state.selectedRun)) return state.selectedRun;
    if (state.latestTopoRun && state.runs.has(state.latestTopoRun)) return state.latestTopoRun;
    return state.latestRun && state.runs.has(state.latestRun) ? state.latestRun : '';
  }

  function nodeStat(id) {
    let st = state.nodeStats.get(id);
    if (!st) {
      if (state.nodeStats.size >= CFG.MAX_NODES_STATS) return null;
      st = { count: 0, errors: 0, sum: 0, n: 0, durs: new Float64Array(512), di: 0, type: '' };
      state.nodeStats.set(id, st);
      state.nodeIdsVersion++;
    }
    return st;
  }
  function p95(st) {
    const n = Math.min(st.n, st.durs.length);
    if (!n) return undefined;
    const a = Array.from(st.durs.subarray(0, n)).sort((x, y) => x - y);
    return a[Math.min(n - 1, Math.ceil(0.95 * n) - 1)];
  }

  /**
   * True if this event_id was seen recently (a resent "initial" snapshot
   * repeats events).  Two generations of sets: when the current one fills,
   * it becomes the previous one, so memory is bounded and each check is O(1).
   */
  function isDuplicate(id) {
    if (!id) return false;
    if (state.seenIds.has(id) || state.seenPrev.has(id)) return true;
    state.seenIds.add(id);
    if (state.seenIds.size >= CFG.SEEN_IDS) {
      state.seenPrev = state.seenIds;
      state.seenIds = new Set();
    }
    return false;
  }

  // ---------------------------------------------------------------------------
  // DAG layout (layered, left to right, cycles tolerated)
  // ---------------------------------------------------------------------------

  /**
   * Lay out a topology.  Steps: depth-first search from the start node marks
   * back edges (they close cycles and are drawn as arcs below the graph);
   * longest-path layering on the remaining acyclic edges; dummy vertices on
   * edges spanning several layers; barycentric ordering sweeps keeping the
   * order with the fewest crossings; vertical placement pulled towards
   * neighbours.  Returns positions and edge geometry in graph coordinates.
   */
  function layoutGraph(g) {
    const W = CFG.NODE_W, H = CFG.NODE_H, GX = CFG.GAP_X, GY = CFG.GAP_Y;
    const N = g.nodes.length;
    const idx = new Map(g.nodes.map((n, i) => [n.id, i]));
    const edges = g.edges.map((e) => ({ e, u: idx.get(e.from), v: idx.get(e.to), back: false, self: e.from === e.to }));
    const out = Array.from({ length: N }, () => []);
    edges.forEach((E, k) => { if (!E.self) out[E.u].push(k); });

    // 1. Back edges by iterative DFS, start node first.
    const color = new Uint8Array(N);
    const roots = [idx.get(g.start)].concat(g.nodes.map((_, i) => i));
    for (const root of roots) {
      if (color[root]) continue;
      color[root] = 1;
      const stack = [[root, 0]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        const u = top[0];
        if (top[1] < out[u].length) {
          const k = out[u][top[1]++];
          const v = edges[k].v;
          if (color[v] === 1) edges[k].back = true;
          else if (color[v] === 0) { color[v] = 1; stack.push([v, 0]); }
        } else {
          color[u] = 2;
          stack.pop();
        }
      }
    }
    const fwd = edges.filter((E) => !E.back && !E.self);

    // 2. Longest-path layering (Kahn order over forward edges).
    const indeg = new Int32Array(N);
    const fout = Array.from({ length: N }, () => []);
    for (const E of fwd) { indeg[E.v]++; fout[E.u].push(E.v); }
    const layer = new Int32Array(N);
    const queue = [];
    for (let i = 0; i < N; i++) if (!indeg[i]) queue.push(i);
    for (let qi = 0; qi < queue.length; qi++) {
      const u = queue[qi];
      for (const v of fout[u]) {
        if (layer[u] + 1 > layer[v]) layer[v] = layer[u] + 1;
        if (--indeg[v] === 0) queue.push(v);
      }
    }
    // Sources other than the start node sit just before their first successor.
    const hasIn = new Uint8Array(N);
    for (const E of fwd) hasIn[E.v] = 1;
    const startIdx = idx.get(g.start);
    for (let i = 0; i < N; i++) {
      if (hasIn[i] || i === startIdx || !fout[i].length) continue;
      let m = Infinity;
      for (const v of fout[i]) m = Math.min(m, layer[v]);
      layer[i] = Math.max(0, m - 1);
    }

    // 3. Vertices: real nodes 0..N-1, then dummies on long edges.
    const vLayer = Array.from(layer);
    const up = Array.from({ length: N }, () => []);
    const down = Array.from({ length: N }, () => []);
    const chains = new Map();  // edge object -> vertex chain from u to v
    for (const E of fwd) {
      const chain = [E.u];
      for (let l = layer[E.u] + 1; l < layer[E.v]; l++) {
        const d = vLayer.length;
        vLayer.push(l);
        up.push([]);
        down.push([]);
        chain.push(d);
      }
      chain.push(E.v);
      for (let i = 0; i + 1 < chain.length; i++) {
        down[chain[i]].push(chain[i + 1]);
        up[chain[i + 1]].push(chain[i]);
      }
      chains.set(E, chain);
    }
    const V = vLayer.length;
    const L = V ? Math.max(...vLayer) + 1 : 0;
    const layers = Array.from({ length: L }, () => []);
    // Initial order: breadth-first from the start node, so siblings stay together.
    const seenV = new Uint8Array(V);
    const bfs = [startIdx];
    seenV[startIdx] = 1;
    for (let i = 0; i < N; i++) if (!seenV[i] && !hasIn[i]) { seenV[i] = 1; bfs.push(i); }
    for (let qi = 0; qi < bfs.length; qi++) {
      for (const w of down[bfs[qi]]) if (!seenV[w]) { seenV[w] = 1; bfs.push(w); }
    }
    for (let i = 0; i < V; i++) if (!seenV[i]) bfs.push(i);
    for (const v of bfs) layers[vLayer[v]].push(v);

    // 4. Barycentric ordering sweeps; keep the best order seen.
    const pos = new Float64Array(V);
    const setPos = () => { for (const Lr of layers) Lr.forEach((v, i) => { pos[v] = i; }); };
    const crossings = () => {
      let c = 0;
      for (let l = 0; l + 1 < L; l++) {
        const segs = [];
        for (const u of layers[l]) for (const w of down[u]) segs.push([pos[u], pos[w]]);
        for (let i = 0; i < segs.length; i++) {
          for (let j = i + 1; j < segs.length; j++) {
            if ((segs[i][0] - segs[j][0]) * (segs[i][1] - segs[j][1]) < 0) c++;
          }
        }
      }
      return c;
    };
    setPos();
    let best = layers.map((Lr) => Lr.slice());
    let bestC = fwd.length < 400 ? crossings() : 0;
    for (let it = 0; it < 12 && bestC > 0; it++) {
      const downward = it % 2 === 0;
      const order = downward ? [...Array(L).keys()].slice(1) : [...Array(L).keys()].reverse().slice(1);
      for (const l of order) {
        const nb = downward ? up : down;
        const bc = new Map();
        for (const v of layers[l]) {
          const ns = nb[v];
          bc.set(v, ns.length ? ns.reduce((a, w) => a + pos[w], 0) / ns.length : pos[v]);
        }
        layers[l].sort((a, b) => bc.get(a) - bc.get(b) || pos[a] - pos[b]);
        layers[l].forEach((v, i) => { pos[v] = i; });
      }
      const c = crossings();
      if (c < bestC) { bestC = c; best = layers.map((Lr) => Lr.slice()); }
    }
    for (let l = 0; l < L; l++) layers[l] = best[l];
    setPos();

    // 5. Coordinates.  x by layer; y stacked, then pulled towards neighbours.
    const DH = 14;  // height of a dummy vertex
    const hOf = (v) => (v < N ? H : DH);
    const y = new Float64Array(V);
    for (const Lr of layers) {
      let acc = 0;
      for (const v of Lr) { y[v] = acc + hOf(v) / 2; acc += hOf(v) + GY; }
      const off = (acc - GY) / 2;
      for (const v of Lr) y[v] -= off;
    }
    for (let it = 0; it < 8; it++) {
      const ls = it % 2 === 0 ? [...Array(L).keys()] : [...Array(L).keys()].reverse();
      for (const l of ls) {
        const Lr = layers[l];
        const want = Lr.map((v) => {
          const ns = up[v].concat(down[v]);
          return ns.length ? ns.reduce((a, w) => a + y[w], 0) / ns.length : y[v];
        });
        // Place in order, each at least its wish and clear of the previous one,
        // then shift the whole layer back so the displacement averages to zero.
        let prev = -Infinity, prevH = 0, shift = 0;
        const ny = Lr.map((v, i) => {
          const minY = prev + prevH / 2 + GY + hOf(v) / 2;
          const yy = Math.max(want[i], minY);
          prev = yy; prevH = hOf(v);
          shift += yy - want[i];
          return yy;
        });
        shift /= Lr.length || 1;
        Lr.forEach((v, i) => { y[v] = ny[i] - shift; });
      }
    }
    const xOf = (l) => l * (W + GX);

    // 6. Edge geometry.
    const nodesOut = new Map();
    g.nodes.forEach((n, i) => nodesOut.set(n.id, { x: xOf(layer[i]), y: y[i] - H / 2, w: W, h: H, layer: layer[i] }));
    let minX = 0, maxX = L ? xOf(L - 1) + W : W, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < N; i++) { minY = Math.min(minY, y[i] - H / 2); maxY = Math.max(maxY, y[i] + H / 2); }
    const f = (v) => Math.round(v * 10) / 10;
    // Parallel forward edges between the same pair get spread apart.
    const pairCount = new Map(), pairSeen = new Map();
    for (const E of fwd) { const k = E.u + ',' + E.v; pairCount.set(k, (pairCount.get(k) || 0) + 1); }
    const edgesOut = [];
    let backSeen = 0;
    for (const E of edges) {
      const a = nodesOut.get(E.e.from), b = nodesOut.get(E.e.to);
      let d, lx, ly;
      if (E.self) {
        const x0 = a.x + W - 58, x1 = a.x + W - 18, top = a.y;
        d = `M${x0} ${top} C${x0 - 8} ${top - 46} ${x1 + 8} ${top - 46} ${x1} ${top}`;
        lx = (x0 + x1) / 2; ly = top - 38;
        minY = Math.min(minY, top - 52);
      } else if (E.back) {
        // Orthogonal detour through the gaps between layers: out of the
        // source's right side, along outside the nodes of the spanned layers
        // (above or below, whichever is closer), back into the target's left
        // side.  Gap columns hold no nodes, so the detour never crosses one.
        const l0 = Math.min(a.layer, b.layer), l1 = Math.max(a.layer, b.layer);
        let top = Infinity, bottom = -Infinity;
        for (let i = 0; i < N; i++) {
          if (layer[i] >= l0 && layer[i] <= l1) { top = Math.min(top, y[i] - H / 2); bottom = Math.max(bottom, y[i] + H / 2); }
        }
        const nth = backSeen++;
        const sy = y[E.u] + 12, ty = y[E.v] + 12;
        const below = bottom + 30 + nth * 14, above = top - 30 - nth * 14;
        const depth = Math.abs(sy - below) + Math.abs(ty - below) <= Math.abs(sy - above) + Math.abs(ty - above) ? below : above;
        const x0 = a.x + W, x1 = x0 + 22 + nth * 6, x3 = b.x, x2 = x3 - 22 - nth * 6;
        d = roundedPath([[x0, sy], [x1, sy], [x1, depth], [x2, depth], [x2, ty], [x3, ty]], 10, f);
        lx = (x1 + x2) / 2;
        ly = depth;
        minY = Math.min(minY, depth - 12);
        maxY = Math.max(maxY, depth + 12);
      } else {
        const chain = chains.get(E);
        const k = E.u + ',' + E.v;
        const cnt = pairCount.get(k), idxp = pairSeen.get(k) || 0;
        pairSeen.set(k, idxp + 1);
        const off = chain.length === 2 ? (idxp - (cnt - 1) / 2) * 16 : 0;
        const pts = [[a.x + W, y[E.u] + off]];
        for (let i = 1; i + 1 < chain.length; i++) {
          const dv = chain[i];
          pts.push([xOf(vLayer[dv]), y[dv]], [xOf(vLayer[dv]) + W, y[dv]]);
        }
        pts.push([b.x, y[E.v] + off]);
        let path = `M${f(pts[0][0])} ${f(pts[0][1])}`;
        for (let i = 1; i < pts.length; i++) {
          const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
          if (i % 2 === 1) {
            const mx = (x0 + x1) / 2;
            path += ` C${f(mx)} ${f(y0)} ${f(mx)} ${f(y1)} ${f(x1)} ${f(y1)}`;
          } else {
            path += ` L${f(x1)} ${f(y1)}`;
          }
        }
        d = path;
        lx = (pts[0][0] + pts[1][0]) / 2;
        ly = (pts[0][1] + pts[1][1]) / 2;
      }
      edgesOut.push({ from: E.e.from, to: E.e.to, action: E.e.action, key: E.e.key, d, lx, ly, back: E.back, self: E.self });
    }
    if (!Number.isFinite(minY)) { minY = 0; maxY = H; }
    return { nodes: nodesOut, edges: edgesOut, bbox: { x: minX, y: minY, w: maxX - minX, h: maxY - minY } };
  }

  /** SVG path through orthogonal points with rounded corners of radius r. */
  function roundedPath(pts, r, f) {
    let d = `M${f(pts[0][0])} ${f(pts[0][1])}`;
    for (let i = 1; i < pts.length - 1; i++) {
      const [px, py] = pts[i - 1], [cx, cy] = pts[i], [nx, ny] = pts[i + 1];
      const d1 = Math.hypot(cx - px, cy - py), d2 = Math.hypot(nx - cx, ny - cy);
      const k = Math.min(r, d1 / 2, d2 / 2);
      const ax = cx + ((px - cx) / (d1 || 1)) * k, ay = cy + ((py - cy) / (d1 || 1)) * k;
      const bx = cx + ((nx - cx) / (d2 || 1)) * k, by = cy + ((ny - cy) / (d2 || 1)) * k;
      d += ` L${f(ax)} ${f(ay)} Q${f(cx)} ${f(cy)} ${f(bx)} ${f(by)}`;
    }
    const last = pts[pts.length - 1];
    return d + ` L${f(last[0])} ${f(last[1])}`;
  }

  // ---------------------------------------------------------------------------
  // Graph view (SVG)
  // ---------------------------------------------------------------------------
  class GraphView {
    constructor(svg, root, emptyEl) {
      this.svg = svg;
      this.root = root;
      this.emptyEl = emptyEl;
      this.topoKey = null;
      this.nodeViews = new Map();  // node id -> {el, stat, meta, ...cached text}
      this.edgeViews = new Map();  // edge key -> {el, path, token, motion, litUntil, count}
      this.litEdges = new Set();
      this.bbox = null;
      this.view = null;            // current viewBox {x,y,w,h}
      this.userView = false;       // true once the user panned or zoomed
      this.edgeSeq = 0;
      new ResizeObserver(() => this.fit(false)).observe(svg);
      this.installPanZoom();
    }

    /** Show a run: rebuild the drawing if its topology differs, then sync every node. */
    show(run) {
      const g = run ? run.graph || this.inferredGraph(run) : null;
      const key = g ? g.topoKey : '';
      if (key !== this.topoKey) this.rebuild(g);
      if (run) this.syncAll(run);
    }

    inferredGraph(run) {
      if (!run.inferred || !run.inferred.length) return null;
      const g = normGraph({ nodes: run.inferred.map((id) => ({ id, type: run.node(id).type })), edges: [] });
      if (g) g.inferredNote = true;
      return g;
    }

    rebuild(g) {
      this.topoKey = g ? g.topoKey : '';
      this.nodeViews.clear();
      this.edgeViews.clear();
      this.litEdges.clear();
      while (this.root.firstChild) this.root.removeChild(this.root.firstChild);
      this.emptyEl.hidden = !!g;
      if (!g) { this.bbox = null; return; }
      const lay = layoutGraph(g);
      this.bbox = lay.bbox;
      const edgeLayer = s('g', { class: 'edges' });
      const labelLayer = s('g', { class: 'labels' });
      const nodeLayer = s('g', { class: 'nodes' });
      for (const e of lay.edges) {
        const pid = 'kg-edge-' + (++this.edgeSeq);  // generated, never from event data
        const path = s('path', { id: pid, class: 'path', d: e.d, 'marker-end': 'url(#arrow)' });
        // A wide translucent stroke under the path is the "glow" of a lit edge
        // (cheaper to paint than an SVG blur filter).
        const halo = s('path', { class: 'halo', d: e.d });
        const token = s('circle', { class: 'token', r: 4, cx: 0, cy: 0, visibility: 'hidden' });
        const motion = s('animateMotion', { dur: '0.6s', begin: 'indefinite', fill: 'remove', rotate: 'auto' });
        motion.appendChild(s('mpath', { href: '#' + pid }));
        token.appendChild(motion);
        const el = s('g', { class: 'gedge' + (e.back ? ' back' : '') + (e.self ? ' self' : ''),
          'data-from': e.from, 'data-to': e.to, 'data-action': e.action, 'data-count': 0 },
          s('title', null, `${e.from} —${e.action}→ ${e.to}`), halo, path, token);
        edgeLayer.appendChild(el);
        // Label: a pill behind the action name, sized from the text length.
        // Clipped to fit the gap between layers; the edge's title has it in full.
        const label = clip(e.action, Math.max(4, Math.floor((CFG.GAP_X - 12) / 6.1)));
        const tw = label.length * 6.1 + 10;
        const lab = s('g', { class: 'gedge-label', transform: `translate(${e.lx.toFixed(1)},${e.ly.toFixed(1)})` },
          s('rect', { class: 'elabel-bg', x: -tw / 2, y: -9, width: tw, height: 17, rx: 8.5 }),
          s('text', { class: 'elabel', 'text-anchor': 'middle', y: 4 }, label));
        // Labels share the edge's lit class through a wrapper with the same class.
        const labWrap = s('g', { class: 'gedge' + (e.back ? ' back' : '') }, lab);
        labelLayer.appendChild(labWrap);
        this.edgeViews.set(e.key, { el, labWrap, path, token, motion, litUntil: 0, count: -1, lastToken: 0 });
      }
      const W = CFG.NODE_W, H = CFG.NODE_H;
      for (const n of g.nodes) {
        const p = lay.nodes.get(n.id);
        const isStart = n.id === g.start;
        const retry = s('g', { class: 'badge badge-retry', transform: `translate(${W - 44},-9)`, display: 'none' },
          s('rect', { width: 38, height: 17, rx: 8.5 }), s('text', { x: 19, y: 12.5, 'text-anchor': 'middle' }, ''));
        const fail = s('g', { class: 'badge badge-fail', transform: `translate(${W - 86},-9)`, display: 'none' },
          s('rect', { width: 38, height: 17, rx: 8.5 }), s('text', { x: 19, y: 12.5, 'text-anchor': 'middle' }, ''));
        const stat = s('text', { class: 'nstat', x: 14, y: 56 }, 'idle');
        const meta = s('text', { class: 'nmeta', x: W - 10, y: 56, 'text-anchor': 'end' }, '');
        const tip = s('title', null, n.id + (n.type ? ` (${n.type})` : ''));
        const el = s('g', { class: 'gnode', 'data-node-id': n.id, 'data-status': 'idle',
          'data-retries': 0, 'data-failures': 0, transform: `translate(${p.x},${p.y})` },
          tip,
          s('rect', { class: 'box', width: W, height: H, rx: 9 }),
          s('rect', { class: 'bar', x: 0, y: 9, width: 4, height: H - 18, rx: 2 }),
          s('text', { class: 'nid', x: 14, y: 22 }, clip(n.id, 19)),
          s('text', { class: 'ntype', x: 14, y: 38 }, clip(n.type || '', 21)),
          stat, meta, fail, retry,
          isStart ? s('text', { class: 'start-tag', x: 0, y: -7 }, 'START') : null);
        nodeLayer.appendChild(el);
        this.nodeViews.set(n.id, { el, stat, meta, retry, fail, tip, type: n.type,
          c: { status: 'idle', stat: 'idle', meta: '', retries: 0, failures: 0, tip: '' } });
      }
      this.root.append(edgeLayer, nodeLayer, labelLayer);
      this.userView = false;
      this.fit(true);
    }

    /** Fit the drawing in the panel; small graphs are not blown up past 1.3x. */
    fit(force) {
      if (!this.bbox) return;
      if (this.userView && !force) return;
      const rect = this.svg.getBoundingClientRect();
      const pw = Math.max(rect.width, 50), ph = Math.max(rect.height, 50);
      const pad = 36;
      const bw = this.bbox.w + pad * 2, bh = this.bbox.h + pad * 2 + 10;
      const scale = Math.min(pw / bw, ph / bh, 1.3);
      const vw = pw / scale, vh = ph / scale;
      const cx = this.bbox.x + this.bbox.w / 2, cy = this.bbox.y + this.bbox.h / 2;
      this.setView({ x: cx - vw / 2, y: cy - vh / 2, w: vw, h: vh });
    }
    setView(v) {
      this.view = v;
      this.svg.setAttribute('viewBox', `${v.x.toFixed(1)} ${v.y.toFixed(1)} ${v.w.toFixed(1)} ${v.h.toFixed(1)}`);
    }
    installPanZoom() {
      // Wheel zooms around the pointer, drag pans, double-click re-fits.
      this.svg.addEventListener('wheel', (e) => {
        if (!this.view) return;
        e.preventDefault();
        const r = this.svg.getBoundingClientRect();
        const k = Math.exp(e.deltaY * 0.0015);
        const v = this.view;
        const px = v.x + (e.clientX - r.left) / r.width * v.w;
        const py = v.y + (e.clientY - r.top) / r.height * v.h;
        this.userView = true;
        this.setView({ x: px - (px - v.x) * k, y: py - (py - v.y) * k, w: v.w * k, h: v.h * k });
      }, { passive: false });
      let drag = null;
      this.svg.addEventListener('pointerdown', (e) => {
        if (!this.view || e.button !== 0) return;
        drag = { x: e.clientX, y: e.clientY, v: Object.assign({}, this.view) };
        this.svg.setPointerCapture(e.pointerId);
      });
      this.svg.addEventListener('pointermove', (e) => {
        if (!drag) return;
        const r = this.svg.getBoundingClientRect();
        const dx = (e.clientX - drag.x) / r.width * drag.v.w, dy = (e.clientY - drag.y) / r.height * drag.v.h;
        if (Math.abs(dx) + Math.abs(dy) > 0.5) this.userView = true;
        this.setView({ x: drag.v.x - dx, y: drag.v.y - dy, w: drag.v.w, h: drag.v.h });
      });
      const end = () => { drag = null; };
      this.svg.addEventListener('pointerup', end);
      this.svg.addEventListener('pointercancel', end);
      this.svg.addEventListener('dblclick', () => { this.userView = false; this.fit(true); });
    }

    syncAll(run) {
      for (const id of this.nodeViews.keys()) this.updateNode(run, id);
      for (const [key, ev] of this.edgeViews) this.setEdgeCount(ev, run.edgeCounts.get(key) || 0);
    }

    /** Update one node's drawing from the run's state; touches only changed text. */
    updateNode(run, id) {
      const v = this.nodeViews.get(id);
      if (!v) return;
      const n = run.nodes.get(id);
      const status = n ? n.status : 'idle';
      const c = v.c;
      if (c.status !== status) { c.status = status; v.el.setAttribute('data-status', status); }
      let stat = status;
      if (n && status === 'retrying' && n.attempt) stat = `retrying · attempt ${n.attempt}`;
      if (n && status === 'failed' && n.lastError) stat = 'failed · ' + clip(n.lastError, 14);
      if (c.stat !== stat) { c.stat = stat; v.stat.textContent = stat; }
      const meta = n && n.execs ? `×${n.execs}  ${fmtDur(n.lastDur)}` : '';
      if (c.meta !== meta) { c.meta = meta; v.meta.textContent = meta; }
      const retries = n ? n.retries : 0, failures = n ? n.failures : 0;
      if (c.retries !== retries) {
        c.retries = retries;
        v.el.setAttribute('data-retries', retries);
        v.retry.setAttribute('display', retries ? 'inline' : 'none');
        v.retry.lastChild.textContent = '↻ ' + retries;
      }
      if (c.failures !== failures) {
        c.failures = failures;
        v.el.setAttribute('data-failures', failures);
        v.fail.setAttribute('display', failures ? 'inline' : 'none');
        v.fail.lastChild.textContent = '✕ ' + failures;
      }
      const tip = id + (v.type ? ` (${v.type})` : '') + `\nstatus: ${status}` +
        (n ? `\nexecutions: ${n.execs}  retries: ${n.retries}  failures: ${n.failures}` +
          (n.fallbacks ? `  fallbacks: ${n.fallbacks}` : '') + (n.lastError ? `\nlast error: ${n.lastError}` : '') : '');
      if (c.tip !== tip) { c.tip = tip; v.tip.textContent = tip; }
    }

    setEdgeCount(ev, count) {
      if (ev.count === count) return;
      ev.count = count;
      ev.el.setAttribute('data-count', count);
      ev.el.classList.toggle('traversed', count > 0);
    }

    /** Light the edge taken by a transition, and send a token along it. */
    lightEdge(run, key, now) {
      const ev = this.edgeViews.get(key);
      if (!ev) return;
      this.setEdgeCount(ev, run.edgeCounts.get(key) || 0);
      if (!ev.litUntil) {
        ev.el.classList.add('lit');
        ev.labWrap.classList.add('lit');
        ev.path.setAttribute('marker-end', 'url(#arrow-lit)');
      }
      ev.litUntil = now + CFG.EDGE_LIT_MS;
      this.litEdges.add(ev);
      if (now - ev.lastToken > 400 && typeof ev.motion.beginElement === 'function') {
        ev.lastToken = now;
        ev.token.setAttribute('visibility', 'visible');
        try { ev.motion.beginElement(); } catch (e) { /* SMIL unavailable: the glow is enough */ }
      }
    }

    /** Called every frame: unlight edges whose time is up. */
    tick(now) {
      for (const ev of this.litEdges) {
        if (ev.litUntil > now) continue;
        ev.litUntil = 0;
        ev.el.classList.remove('lit');
        ev.labWrap.classList.remove('lit');
        ev.path.setAttribute('marker-end', 'url(#arrow)');
        ev.token.setAttribute('visibility', 'hidden');
        this.litEdges.delete(ev);
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Throughput chart (canvas)
  // ---------------------------------------------------------------------------
  class ThroughputChart {
    constructor(canvas) {
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d');
      this.all = new Float64Array(CFG.CHART_BUCKETS);
      this.err = new Float64Array(CFG.CHART_BUCKETS);
      this.bucket = Math.floor(Date.now() / CFG.CHART_BUCKET_MS);
      this.dirty = true;
      new ResizeObserver(() => this.resize()).observe(canvas);
    }
    resize() {
      const r = this.canvas.getBoundingClientRect();
      const dpr = window.devicePixelRatio || 1;
      this.canvas.width = Math.max(1, Math.round(r.width * dpr));
      this.canvas.height = Math.max(1, Math.round(r.height * dpr));
      this.dirty = true;
    }
    /** Advance the ring to the current time bucket, zeroing skipped buckets. */
    roll(now) {
      const b = Math.floor(now / CFG.CHART_BUCKET_MS);
      const n = CFG.CHART_BUCKETS;
      if (b - this.bucket >= n) { this.all.fill(0); this.err.fill(0); }
      else for (let i = this.bucket + 1; i <= b; i++) { this.all[i % n] = 0; this.err[i % n] = 0; }
      if (b !== this.bucket) this.dirty = true;
      this.bucket = b;
    }
    add(now, count, errors) {
      this.roll(now);
      const i = this.bucket % CFG.CHART_BUCKETS;
      this.all[i] += count;
      this.err[i] += errors;
    }
    /** Events/s over the last complete second. */
    rate(now) {
      this.roll(now);
      const n = CFG.CHART_BUCKETS, per = 1000 / CFG.CHART_BUCKET_MS;
      let sum = 0;
      for (let k = 1; k <= per; k++) sum += this.all[(this.bucket - k + n) % n];
      return sum;
    }
    draw(now) {
      this.roll(now);
      if (!this.dirty) return;
      this.dirty = false;
      const { ctx, canvas } = this;
      const dpr = window.devicePixelRatio || 1;
      const W = canvas.width / dpr, H = canvas.height / dpr;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      const n = CFG.CHART_BUCKETS, scale = 1000 / CFG.CHART_BUCKET_MS;
      // Series oldest -> newest, excluding the bucket still filling.
      const pts = n - 1;
      const A = new Float64Array(pts), E = new Float64Array(pts);
      let max = 0;
      for (let k = 0; k < pts; k++) {
        const b = (this.bucket - pts + k + n) % n;
        A[k] = this.all[b] * scale; E[k] = this.err[b] * scale;
        if (A[k] > max) max = A[k];
      }
      const nice = niceMax(max);
      const L = 46, R = 10, T = 10, B = 20;
      const cw = W - L - R, ch = H - T - B;
      ctx.font = '10.5px ui-monospace, "DejaVu Sans Mono", monospace';
      ctx.textBaseline = 'middle';
      // Grid and y labels.
      for (let i = 0; i <= 4; i++) {
        const yy = T + ch - (ch * i) / 4;
        ctx.strokeStyle = i === 0 ? '#2a3544' : '#1a2230';
        ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(L, Math.round(yy) + 0.5); ctx.lineTo(W - R, Math.round(yy) + 0.5); ctx.stroke();
        ctx.fillStyle = '#5b6676';
        ctx.textAlign = 'right';
        ctx.fillText(fmtCompact((nice * i) / 4), L - 6, yy);
      }
      ctx.textAlign = 'center';
      ctx.textBaseline = 'alphabetic';
      for (const [sec, lab] of [[60, '-60s'], [30, '-30s'], [0, 'now']]) {
        const xx = L + cw - (cw * sec) / 60;
        ctx.fillText(lab, Math.min(Math.max(xx, L + 12), W - R - 12), H - 5);
      }
      const X = (k) => L + (cw * k) / (pts - 1);
      const Y = (v) => T + ch - (nice ? (ch * v) / nice : 0);
      // Events area.
      const grad = ctx.createLinearGradient(0, T, 0, T + ch);
      grad.addColorStop(0, 'rgba(56,189,248,0.35)');
      grad.addColorStop(1, 'rgba(56,189,248,0.02)');
      ctx.beginPath();
      ctx.moveTo(X(0), Y(0));
      for (let k = 0; k < pts; k++) ctx.lineTo(X(k), Y(A[k]));
      ctx.lineTo(X(pts - 1), Y(0));
      ctx.closePath();
      ctx.fillStyle = grad;
      ctx.fill();
      ctx.beginPath();
      for (let k = 0; k < pts; k++) (k ? ctx.lineTo(X(k), Y(A[k])) : ctx.moveTo(X(k), Y(A[k])));
      ctx.strokeStyle = '#38bdf8'; ctx.lineWidth = 1.6; ctx.stroke();
      // Errors line.
      ctx.beginPath();
      for (let k = 0; k < pts; k++) (k ? ctx.lineTo(X(k), Y(E[k])) : ctx.moveTo(X(k), Y(E[k])));
      ctx.strokeStyle = '#ef4444'; ctx.lineWidth = 1.3; ctx.stroke();
    }
  }
  /** Fill an empty chart with the server's per-second history (metrics.throughput). */
  function seedChart(m) {
    const thr = m && Array.isArray(m.throughput) ? m.throughput : null;
    if (!thr || chart.seeded) return;
    chart.seeded = true;
    const per = 1000 / CFG.CHART_BUCKET_MS, n = CFG.CHART_BUCKETS;
    chart.roll(Date.now());
    // thr[last] is the last whole second; the current second is still filling.
    const curSecStart = Math.floor(Date.now() / 1000) * 1000;
    for (let k = 0; k < thr.length; k++) {
      const v = num(thr[thr.length - 1 - k]) || 0;
      const secStart = curSecStart - (k + 1) * 1000;
      for (let j = 0; j < per; j++) {
        const b = Math.floor((secStart + j * CFG.CHART_BUCKET_MS) / CFG.CHART_BUCKET_MS);
        if (chart.bucket - b >= n - 1 || b > chart.bucket) continue;
        chart.all[b % n] = v / per;
      }
    }
    chart.dirty = true;
  }
  function niceMax(v) {
    if (v <= 4) return 4;
    // Four grid steps of a round size.
    const step = v / 4, q = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * q >= step) return 4 * m * q;
    return 40 * q;
  }

  // ---------------------------------------------------------------------------
  // Event log (capped, virtualised, filters, pause)
  // ---------------------------------------------------------------------------

  /**
   * The log holds the newest LOG_ROWS matching events, newest first, but the
   * DOM only holds the rows that fit in the viewport (plus a few): they are
   * absolutely positioned inside a spacer as tall as the whole log and
   * re-filled on scroll or when events arrive.  So a frame costs the same
   * ~20 rows of text whether 10 or 10,000 events arrived, while scrolling
   * still reaches all LOG_ROWS entries.
   */
  class EventLog {
    constructor(container, countEl, detailEl) {
      this.container = container;
      this.countEl = countEl;
      this.detailEl = detailEl;
      this.buffer = [];          // ring of recent events for filter rebuilds
      this.bufStart = 0;
      this.items = [];           // matching events in the log, oldest first (<= LOG_ROWS)
      this.pendingPaused = 0;
      this.paused = false;
      this.filter = { type: '', node: '', wf: '', text: '' };
      this.totalSeen = 0;
      this.selectedEv = null;
      this.dirty = true;
      this.rowH = 22;
      this.pool = [];            // recycled row elements
      this.spacer = h('div', { class: 'log-spacer' });
      this.empty = h('div', { class: 'log-empty' }, 'No events yet.');
      container.append(this.spacer, this.empty);
      // Scroll position and height are cached from events so that a frame
      // never reads layout (a forced synchronous layout per frame is costly).
      this.scrollTop = 0;
      this.viewH = 400;
      container.addEventListener('scroll', () => { this.scrollTop = container.scrollTop; this.dirty = true; schedule(); }, { passive: true });
      new ResizeObserver((entries) => {
        for (const e of entries) this.viewH = e.contentRect.height || this.viewH;
        this.dirty = true;
        schedule();
      }).observe(container);
      container.addEventListener('click', (e) => {
        let row = e.target;
        while (row && row !== container && !row.classList.contains('log-row')) row = row.parentNode;
        if (!row || row === container || !row.kgEvent) return;
        this.selectedEv = row.kgEvent;
        this.showDetail(row.kgEvent);
        this.dirty = true;
        this.render();
      });
    }
    get rows() { return this.items.length; }
    showDetail(ev) {
      let text;
      try { text = JSON.stringify(ev.raw, null, 2); } catch (e) { text = String(ev.raw); }
      this.detailEl.textContent = text;   // text, never markup
    }
    matches(ev) {
      const f = this.filter;
      if (f.type && ev.type !== f.type) return false;
      if (f.node && ev.node !== f.node) return false;
      if (f.wf && ev.wf !== f.wf) return false;
      if (f.text) {
        if (ev.text === null) {
          ev.text = (ev.name + ' ' + ev.node + ' ' + ev.ntype + ' ' + ev.type + ' ' + ev.wf + ' ' + str(ev.data)).toLowerCase();
        }
        if (!ev.text.includes(f.text)) return false;
      }
      return true;
    }
    /** Called once per frame with the events that arrived. */
    push(evs) {
      let added = 0;
      for (const ev of evs) {
        if (this.buffer.length < CFG.LOG_BUFFER) this.buffer.push(ev);
        else { this.buffer[this.bufStart] = ev; this.bufStart = (this.bufStart + 1) % CFG.LOG_BUFFER; }
        this.totalSeen++;
        if (!this.matches(ev)) continue;
        if (this.paused) { this.pendingPaused++; continue; }
        this.items.push(ev);
        added++;
      }
      if (!added) return;
      const over = this.items.length - CFG.LOG_ROWS;
      if (over > 0) this.items.splice(0, over);
      // A reader scrolled down into older events keeps seeing the same ones.
      if (this.scrollTop > 0) this.anchor = (this.anchor || 0) + Math.min(added, CFG.LOG_ROWS);
      this.dirty = true;
    }
    /** Events in the buffer, oldest first. */
    buffered() {
      return this.buffer.slice(this.bufStart).concat(this.buffer.slice(0, this.bufStart));
    }
    makeRow() {
      return h('div', { class: 'log-row' },
        h('span', { class: 'c-time' }), h('span', { class: 'c-type' }), h('span', { class: 'c-name' }),
        h('span', { class: 'c-node' }), h('span', { class: 'c-wf' }), h('span', { class: 'c-detail' }));
    }
    fillRow(row, ev) {
      const c = row.children;
      row.kgEvent = ev;
      row.setAttribute('data-t', ev.type);
      c[0].textContent = fmtClock(ev.ts, ev.recv);
      c[1].textContent = ev.type || '?';
      c[1].setAttribute('data-t', ev.type);
      c[2].textContent = ev.name || '(unnamed)';
      c[3].textContent = ev.node;
      c[4].textContent = ev.wf ? shortId(ev.wf) : '';
      c[4].title = ev.wf;
      c[5].textContent = summarize(ev);
    }
    /** Draw the rows in view; only rows whose event changed are re-filled. */
    render() {
      if (!this.dirty) return;
      this.dirty = false;
      const n = this.items.length;
      const height = n * this.rowH;
      if (this.spacerH !== height) { this.spacerH = height; this.spacer.style.height = height + 'px'; }
      this.empty.hidden = n > 0;
      if (this.anchor) {
        this.scrollTop = Math.min(this.scrollTop + this.anchor * this.rowH, Math.max(0, height - this.viewH));
        this.container.scrollTop = this.scrollTop;
        this.anchor = 0;
      }
      const first = Math.max(0, Math.floor(this.scrollTop / this.rowH) - 2);
      const count = Math.max(0, Math.min(n - first, Math.ceil(this.viewH / this.rowH) + 4));
      while (this.pool.length < count) {
        const row = this.makeRow();
        row.kgEvent = null;
        this.pool.push(row);
        this.spacer.appendChild(row);
      }
      for (let k = 0; k < this.pool.length; k++) {
        const row = this.pool[k];
        if (k >= count) {
          if (!row.hidden) { row.hidden = true; row.kgEvent = null; }
          continue;
        }
        const i = first + k;
        const ev = this.items[n - 1 - i];   // newest first
        if (row.hidden) row.hidden = false;
        if (row.kgEvent !== ev) this.fillRow(row, ev);
        if (row.kgTop !== i) { row.kgTop = i; row.style.transform = `translateY(${i * this.rowH}px)`; }
        const sel = ev === this.selectedEv;
        if (row.kgSel !== sel) { row.kgSel = sel; row.classList.toggle('selected', sel); }
      }
    }
    /** Re-filter the buffer from scratch (filters changed, resume, clear). */
    rebuild() {
      const all = this.buffered();
      const out = [];
      for (let i = all.length - 1; i >= 0 && out.length < CFG.LOG_ROWS; i--) if (this.matches(all[i])) out.push(all[i]);
      this.items = out.reverse();
      this.pendingPaused = 0;
      this.anchor = 0;
      this.container.scrollTop = this.scrollTop = 0;
      this.dirty = true;
      this.render();
    }
    clear() {
      this.buffer = [];
      this.bufStart = 0;
      this.rebuild();
    }
    updateCount() {
      let t = `${fmtInt(this.items.length)} in log · ${fmtInt(this.totalSeen)} received`;
      if (this.paused) t = `paused · ${fmtInt(this.pendingPaused)} new · ` + t;
      if (this.countEl.textContent !== t) this.countEl.textContent = t;
    }
  }

  /** One-line summary of an event's data for the log. */
  function summarize(ev) {
    const d = ev.data;
    const parts = [];
    switch (ev.name) {
      case 'node_completed':
        if (d.next_action !== undefined) parts.push('→ ' + (str(d.next_action) || 'default'));
        if (d.total_execution_time !== undefined) parts.push(fmtDur(num(d.total_execution_time)));
        break;
      case 'workflow_started': {
        const g = d.graph;
        if (g && Array.isArray(g.nodes)) parts.push(`${g.nodes.length} nodes, ${Array.isArray(g.edges) ? g.edges.length : 0} edges, start ${str(g.start)}`);
        break;
      }
      case 'workflow_completed':
        parts.push(str(d.status));
        if (d.final_action !== undefined) parts.push('final ' + str(d.final_action));
        if (d.duration !== undefined) parts.push(fmtDur(num(d.duration)));
        break;
      case 'execution_time':
        if (d.value !== undefined) parts.push(str(d.value) + (d.unit ? ' ' + str(d.unit) : ''));
        break;
      default:
        if (d.error !== undefined) parts.push(str(d.error));
        if (d.error_type !== undefined) parts.push(str(d.error_type));
        if (d.phase !== undefined) parts.push('phase ' + str(d.phase));
        if (d.attempt !== undefined) parts.push(`attempt ${str(d.attempt)}${d.max_retries !== undefined ? '/' + str(d.max_retries) : ''}`);
        if (d.value !== undefined && !parts.length) parts.push(str(d.value) + (d.unit ? ' ' + str(d.unit) : ''));
        if (!parts.length && d.state !== undefined) parts.push(str(d.state));
        if (!parts.length && d.snapshot !== undefined) parts.push(clip(str(d.snapshot), 120));
    }
    return parts.length ? parts.join(' · ') : clip(str(ev.data), 160).replace(/^\{\}$/, '');
  }

  // ---------------------------------------------------------------------------
  // Views wired to the page
  // ---------------------------------------------------------------------------
  const graph = new GraphView($('graph'), $('graph-root'), $('graph-empty'));
  const chart = new ThroughputChart($('chart'));
  const log = new EventLog($('log'), $('log-count'), $('detail'));
  let shownRunId = null;   // run currently drawn (live mode)
  let replay = null;       // active replay, see startReplay()

  // ---------------------------------------------------------------------------
  // Applying events (once per frame)
  // ---------------------------------------------------------------------------
  let queue = [];
  let rafId = 0, timerId = 0;

  function schedule() {
    if (!rafId) rafId = requestAnimationFrame(flush);
    // A hidden tab gets no animation frames; a slow timer keeps state current.
    if (!timerId) timerId = setTimeout(flush, 500);
  }

  let queuedEvents = 0;
  /** Queue events (appended to the last item when it holds events) or another item. */
  function enqueue(item) {
    const last = queue[queue.length - 1];
    if (item.events && last && last.events) { for (const ev of item.events) last.events.push(ev); }
    else queue.push(item);
    if (item.events) {
      queuedEvents += item.events.length;
      // A hidden tab gets few frames: past the bound, skip the oldest events
      // (counted) rather than let memory grow.
      while (queuedEvents > CFG.QUEUE_MAX && queue.length) {
        const first = queue[0];
        if (!first.events) { queue.shift(); continue; }
        const drop = Math.min(first.events.length, queuedEvents - CFG.QUEUE_MAX);
        first.events.splice(0, drop);
        queuedEvents -= drop;
        state.localSkipped += drop;
        if (!first.events.length) queue.shift();
      }
    }
    schedule();
  }

  /** Normalise raw events and drop the ones already seen. */
  function ingest(raws) {
    const evs = [];
    for (const raw of raws) {
      const ev = normEvent(raw);
      if (!ev || isDuplicate(ev.id)) continue;
      evs.push(ev);
    }
    return evs;
  }

  const scratchFx = () => ({ nodes: new Set(), edges: [], topo: false, all: false, run: false });

  /** Apply normalised events to the global state; fx collects the shown run's changes. */
  function applyEvents(evs, fx, backlog) {
    const now = Date.now();
    let errs = 0;
    for (const ev of evs) {
      state.total++;
      state.applied++;
      state.byType[ev.type] = (state.byType[ev.type] || 0) + 1;
      if (ev.type === 'error') { state.errors++; errs++; }
      // Per-node statistics for the table (client-side view).
      if (ev.node && ev.name !== 'workflow_started' && ev.name !== 'workflow_completed') {
        const st = nodeStat(ev.node);
        if (st) {
          if (ev.ntype && !st.type) st.type = ev.ntype;
          if (ev.name === 'node_completed' || ev.name === 'node_failed') st.count++;
          if (ev.type === 'error') st.errors++;
          if (ev.name === 'node_completed') {
            const dsec = num(ev.data.total_execution_time);
            if (dsec !== undefined) {
              st.sum += dsec; st.n++;
              st.durs[st.di] = dsec; st.di = (st.di + 1) % st.durs.length;
            }
          }
        }
      }
      // Workflow runs.  Only the run the graph shows reports its changes in
      // fx; a newly started run with a topology takes over in follow mode.
      if (ev.wf) {
        const run = getRun(ev.wf);
        const oldStatus = run.status;
        const shown = !replay && displayedRunId() === ev.wf;
        applyToRun(run, ev, shown ? fx : scratchFx());
        state.latestRun = ev.wf;
        // "Latest" is the run that started last (by its timestamp), not the
        // one whose events arrived last: batches can overtake each other.
        if (ev.name === 'workflow_started' && run.graph && state.latestTopoRun !== ev.wf) {
          const cur = state.runs.get(state.latestTopoRun);
          if (!cur || !cur.graph || !(cur.startMs > run.startMs)) {
            state.latestTopoRun = ev.wf;
            if (!state.selectedRun) fx.switched = true;
          }
        }
        if (oldStatus !== run.status) state.runsVersion++;
      } else if (!replay) {
        // No workflow id: apply to whatever run is shown if the node is in it.
        const run = state.runs.get(displayedRunId());
        if (run && ev.node && graph.nodeViews.has(ev.node)) applyToRun(run, ev, fx);
      }
    }
    // The initial snapshot is history, not throughput.
    if (!backlog) chart.add(now, evs.length, errs);
    log.push(evs);
  }

  function handleMessage(msg) {
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'event': enqueue({ events: [msg.data] }); break;
      case 'events': enqueue({ events: Array.isArray(msg.data) ? msg.data : Array.isArray(msg.events) ? msg.events : [] }); break;
      case 'initial': enqueue({ initial: msg.data || {} }); break;
      case 'metrics':
        state.serverMetrics = msg.data && typeof msg.data === 'object' ? msg.data : null;
        // The initial snapshot's active lists are stale from now on.
        state.initActiveNodes = state.initActiveWorkflows = undefined;
        break;
      case 'workflow_events':
        if (msg.found === false) { showNotice(`Run ${shortId(str(msg.workflow_id))} is unknown to the server (never seen, or evicted)`); break; }
        startReplay(str(msg.workflow_id), Array.isArray(msg.events) ? msg.events : (msg.data && msg.data.events) || [], msg.graph);
        break;
      case 'notice': {
        const d = msg.data || {};
        const dropped = num(d.dropped) ?? num(d.missed) ?? 0;
        state.clientDropped += dropped;
        showNotice(str(d.message) || `Server skipped ${fmtInt(dropped)} messages for this tab (client too slow)`);
        break;
      }
      case 'error': showNotice('Server: ' + str(msg.message || (msg.data && msg.data.message) || msg.data)); break;
      default: break;
    }
  }

  let noticeTimer = 0;
  function showNotice(text) {
    const el = $('notice');
    el.textContent = text;
    el.title = text;
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  /** Server topology snapshot from the initial message, in any of a few shapes. */
  function registerNetworkGraph(ng) {
    if (!ng || typeof ng !== 'object') return;
    const list = [];
    if (Array.isArray(ng)) list.push(...ng);
    else if (Array.isArray(ng.workflows)) list.push(...ng.workflows);
    else if (Array.isArray(ng.graphs)) list.push(...ng.graphs);
    else if (ng.nodes) list.push(ng);
    else for (const k of Object.keys(ng)) if (ng[k] && typeof ng[k] === 'object') list.push(Object.assign({ workflow_id: k }, ng[k]));
    for (const item of list) {
      if (!item || typeof item !== 'object') continue;
      let src = item.graph || item;
      // The server's union graph lists nodes seen outside any topology too
      // (in_topology: false); draw the topology only when it has one.
      if (Array.isArray(src.nodes) && src.nodes.some((n) => n && n.in_topology === true)) {
        src = Object.assign({}, src, { nodes: src.nodes.filter((n) => n && n.in_topology !== false) });
      }
      const g = normGraph(src);
      if (!g) continue;
      const id = str(item.workflow_id ?? item.id) || 'server-topology';
      const run = getRun(id);
      if (!run.graph) run.graph = g;
      if (item.status && typeof item.status === 'string') run.status = normRunStatus(item.status, run.status);
      // Node statuses carried by the snapshot, if any.
      for (const n of g.nodes) {
        const x = n.extra;
        if (!x) continue;
        const st = str(x.status ?? x.state);
        if (st) run.node(n.id).status = normNodeStatus(st);
        const r = num(x.retries); if (r !== undefined) run.node(n.id).retries = r;
        const f = num(x.failures ?? x.errors); if (f !== undefined) run.node(n.id).failures = f;
        const c = num(x.count ?? x.executions); if (c !== undefined) run.node(n.id).execs = c;
      }
      if (!state.latestTopoRun || !state.runs.get(state.latestTopoRun) || !state.runs.get(state.latestTopoRun).graph) state.latestTopoRun = id;
    }
  }
  function normNodeStatus(st) {
    st = st.toLowerCase();
    if (st === 'success' || st === 'done' || st === 'completed') return 'completed';
    if (st === 'error' || st === 'failed') return 'failed';
    if (st === 'retrying' || st === 'retry') return 'retrying';
    if (st === 'idle' || st === 'pending') return 'idle';
    return 'running';
  }
  function normRunStatus(st, prev) {
    st = st.toLowerCase();
    if (st === 'stale') return 'stale';
    if (st === 'success' || st === 'completed') return 'success';
    if (st === 'failed' || st === 'error') return 'failed';
    if (st === 'running' || st === 'active') return 'running';
    return prev;
  }

  function flush() {
    if (rafId) { cancelAnimationFrame(rafId); rafId = 0; }
    if (timerId) { clearTimeout(timerId); timerId = 0; }
    const t0 = performance.now();
    const items = queue;
    queue = [];
    queuedEvents = 0;
    const fx = { nodes: new Set(), edges: [], topo: false, all: false, run: false, switched: false };
    for (const it of items) {
      if (it.initial) {
        const d = it.initial;
        if (d.metrics && typeof d.metrics === 'object') state.serverMetrics = d.metrics;
        state.initActiveNodes = d.active_nodes;
        state.initActiveWorkflows = d.active_workflows;
        registerRunSummaries(d.workflows);
        registerNetworkGraph(d.network_graph);
        seedChart(d.metrics);
        // The server sends every later event exactly once after a snapshot, so
        // baseline + sinceInitial is its total when nothing was lost on the way.
        state.baseline = (d.metrics && num(d.metrics.total_events)) || 0;
        state.sinceInitial = 0;
        fx.all = true;
        applyEvents(ingest(Array.isArray(d.events) ? d.events : []), fx, true);
        if (!Array.isArray(d.workflows)) fetchRuns();
      } else {
        state.received += it.events.length;
        state.sinceInitial += it.events.length;
        applyEvents(ingest(it.events), fx);
      }
    }
    renderFrame(fx);
    const dt = performance.now() - t0;
    state.frames++;
    state.lastFrameMs = dt;
    if (dt > state.maxFrameMs) state.maxFrameMs = dt;
  }

  /** Bring the graph up to date with this frame's changes. */
  function renderFrame(fx) {
    const now = performance.now();
    if (!replay) {
      const id = displayedRunId();
      const run = state.runs.get(id);
      if (id !== shownRunId || fx.topo || fx.switched || fx.all) {
        shownRunId = id;
        graph.show(run || null);
        if (run) for (const k of fx.edges) graph.lightEdge(run, k, now);
        runStatusDirty = true;
      } else if (run) {
        for (const nid of fx.nodes) graph.updateNode(run, nid);
        for (const k of fx.edges) graph.lightEdge(run, k, now);
      }
      if (fx.run) runStatusDirty = true;
    }
    graph.tick(now);
    log.render();
    chart.draw(Date.now());
  }

  // ---------------------------------------------------------------------------
  // Slow refresh: cards, node table, pickers, run status
  // ---------------------------------------------------------------------------
  let runStatusDirty = true;

  function setCard(id, value, sub, flag) {
    const card = $(id);
    const v = card.children[1], sb = card.children[2];
    if (v.textContent !== value) v.textContent = value;
    if (sb.textContent !== (sub || '')) sb.textContent = sub || '';
    if (flag !== undefined) v.classList.toggle('nonzero', !!flag);
  }

  /** Read the server metrics object, tolerating several field spellings and nestings. */
  function readMetrics(m) {
    const out = {};
    if (!m) return out;
    const byType = pick(m, ['events_by_type', 'counts_by_type', 'event_counts', 'by_type', 'counts', 'events.by_type', 'event_types']);
    out.byType = byType && typeof byType === 'object' && !Array.isArray(byType) ? byType : null;
    let total = num(pick(m, ['total_events', 'events_total', 'total', 'event_count', 'events.total', 'events_received', 'events.received']));
    if (total === undefined && out.byType) {
      total = 0;
      for (const k of Object.keys(out.byType)) total += num(out.byType[k]) || 0;
    }
    out.total = total;
    out.activeNodes = countOf(pick(m, ['active_nodes', 'active_node_count', 'nodes_active', 'active.nodes']));
    out.activeWorkflows = countOf(pick(m, ['active_workflows', 'active_workflow_count', 'workflows_active', 'active.workflows']));
    // success_rate: node executions that completed; workflow_success_rate: runs.
    const pct = (v) => (v !== undefined && v <= 1 ? v * 100 : v);
    out.successRate = pct(num(pick(m, ['success_rate', 'success_ratio', 'workflows.success_rate'])));
    out.workflowSuccess = pct(num(pick(m, ['workflow_success_rate', 'workflows.success_rate'])));
    out.wsDropped = num(pick(m, ['ws_dropped', 'server.ws_dropped']));
    out.errors = num(pick(m, ['errors', 'error_count', 'errors_total', 'total_errors', 'events.errors', 'error_events']));
    if (out.errors === undefined && out.byType) out.errors = num(out.byType.error);
    out.eps = num(pick(m, ['events_per_second', 'events_per_sec', 'eps', 'rate', 'throughput', 'events.per_second', 'events.rate']));
    out.dropped = num(pick(m, ['dropped', 'events_dropped', 'dropped_events', 'dropped_total', 'events.dropped', 'clients_dropped', 'ws.dropped']));
    out.runsTotal = num(pick(m, ['workflows_total', 'workflows.total', 'total_workflows', 'runs', 'workflows_completed']));
    const nodes = pick(m, ['nodes', 'node_stats', 'per_node', 'node_metrics']);
    out.nodes = nodes && typeof nodes === 'object' ? nodes : null;
    return out;
  }

  function refreshCards() {
    const m = readMetrics(state.serverMetrics);
    const now = Date.now();
    const clientRate = chart.rate(now);
    // Total events.
    const bt = m.byType || state.byType;
    const sub = ['lifecycle', 'data', 'error', 'metric'].filter((k) => num(bt[k])).map((k) => `${k[0].toUpperCase()} ${fmtCompact(num(bt[k]))}`).join(' · ');
    setCard('card-total', fmtInt(m.total ?? state.total), sub || (m.total === undefined ? 'seen by this tab' : ''));
    // Active nodes / workflows: server, else the initial snapshot, else this tab's runs.
    let clientActiveWf = 0, clientActiveNodes = 0;
    for (const run of state.runs.values()) {
      if (run.status !== 'running') continue;
      clientActiveWf++;
      for (const n of run.nodes.values()) if (n.status === 'running' || n.status === 'retrying') clientActiveNodes++;
    }
    const an = m.activeNodes ?? countOf(state.initActiveNodes) ?? clientActiveNodes;
    setCard('card-active-nodes', fmtInt(an), `${fmtInt(state.nodeStats.size)} distinct seen`);
    const aw = m.activeWorkflows ?? countOf(state.initActiveWorkflows) ?? clientActiveWf;
    setCard('card-active-workflows', fmtInt(aw), `${fmtInt(state.runs.size)} runs seen`);
    // Success rate of finished runs.
    let ok = 0, done = 0;
    for (const run of state.runs.values()) {
      if (run.status === 'success') { ok++; done++; } else if (run.status === 'failed') done++;
    }
    const pctText = (v) => (v === undefined ? '–' : v.toFixed(v >= 99.95 || v === 0 ? 0 : 1) + '%');
    const sr = m.successRate ?? (done ? (100 * ok) / done : undefined);
    let srSub;
    if (m.successRate !== undefined) srSub = 'node executions' + (m.workflowSuccess !== undefined ? ` · runs ${pctText(m.workflowSuccess)}` : '');
    else srSub = done ? `${fmtInt(ok)} of ${fmtInt(done)} runs (this tab)` : 'no finished runs yet';
    setCard('card-success', pctText(sr), srSub);
    const errs = m.errors ?? state.errors;
    setCard('card-errors', fmtInt(errs), m.errors === undefined ? 'error events' : `${fmtInt(state.errors)} seen by this tab`, errs > 0);
    setCard('card-eps', fmtCompact(m.eps ?? clientRate), `${fmtCompact(clientRate)}/s to this tab`);
    // Events lost by the sources, plus messages skipped for slow WebSocket clients.
    const drop = (m.dropped ?? 0) + (m.wsDropped ?? 0);
    const mine = state.clientDropped + state.localSkipped;
    const dropSub = [];
    if (m.wsDropped) dropSub.push(`${fmtInt(m.wsDropped)} to slow clients`);
    dropSub.push(mine ? `${fmtInt(mine)} for this tab` : 'none for this tab');
    setCard('card-dropped', fmtInt(m.dropped === undefined && m.wsDropped === undefined ? mine : drop), dropSub.join(' · '), drop + mine > 0);
    log.updateCount();
    refreshRunStatus();
  }

  /** The per-node table, from server per-node stats if present, else this tab's. */
  const tableRows = new Map();
  function refreshTable() {
    const m = readMetrics(state.serverMetrics);
    const rows = [];
    let src = 'this tab';
    if (m.nodes) {
      const entries = Array.isArray(m.nodes)
        ? m.nodes.map((x) => [str(x && (x.id ?? x.node_id ?? x.name)), x])
        : Object.keys(m.nodes).map((k) => [k, m.nodes[k]]);
      for (const [id, x] of entries) {
        if (!id || !x || typeof x !== 'object') continue;
        let avg = num(pick(x, ['avg', 'avg_s', 'avg_time', 'mean', 'avg_execution_time', 'timing.avg']));
        let p = num(pick(x, ['p95', 'p95_s', 'p95_time', 'timing.p95']));
        const avgMs = num(pick(x, ['avg_ms', 'mean_ms'])), pMs = num(pick(x, ['p95_ms']));
        if (avg === undefined && avgMs !== undefined) avg = avgMs / 1000;
        if (p === undefined && pMs !== undefined) p = pMs / 1000;
        // No timing sample yet is shown as "–", not as 0.
        const timed = num(pick(x, ['completed'])) ?? 1;
        if (!timed && !avg) { avg = undefined; p = undefined; }
        rows.push({ id, count: num(pick(x, ['count', 'executions', 'completed', 'runs', 'total'])), avg, p95: p,
          errors: num(pick(x, ['errors', 'error_count', 'failures', 'failed'])) });
      }
      src = 'server';
    }
    if (!rows.length) {
      src = 'this tab';
      for (const [id, st] of state.nodeStats) rows.push({ id, count: st.count, avg: st.n ? st.sum / st.n : undefined, p95: p95(st), errors: st.errors });
    }
    // Order: the shown topology first, in its order, then the rest by name.
    const run = state.runs.get(shownRunId);
    const order = new Map();
    if (run && run.graph) run.graph.nodes.forEach((n, i) => order.set(n.id, i));
    rows.sort((a, b) => (order.has(a.id) ? order.get(a.id) : 1e9) - (order.has(b.id) ? order.get(b.id) : 1e9) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    rows.length = Math.min(rows.length, 100);
    const tbody = $('node-tbody');
    const keep = new Set();
    let prev = null;
    for (const r of rows) {
      keep.add(r.id);
      let tr = tableRows.get(r.id);
      if (!tr) {
        tr = h('tr', null, h('td', null, h('span', { class: 'dot' }), r.id), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }));
        tr.title = r.id;
        tableRows.set(r.id, tr);
      }
      const c = tr.children;
      const set = (i, t) => { if (c[i].textContent !== t) c[i].textContent = t; };
      set(1, fmtInt(r.count ?? 0));
      set(2, fmtDur(r.avg));
      set(3, fmtDur(r.p95));
      set(4, fmtInt(r.errors ?? 0));
      c[4].classList.toggle('errs-nonzero', (r.errors || 0) > 0);
      const ns = run && run.nodes.get(r.id);
      const st = ns ? ns.status : 'idle';
      if (tr.getAttribute('data-status') !== st) tr.setAttribute('data-status', st);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const [id, tr] of tableRows) if (!keep.has(id)) { tr.remove(); tableRows.delete(id); }
    const srcEl = $('node-table-src');
    const srcText = `stats: ${src}`;
    if (srcEl.textContent !== srcText) srcEl.textContent = srcText;
  }

  function refreshRunStatus() {
    if (!runStatusDirty) return;
    runStatusDirty = false;
    const el = $('run-status');
    if (replay) return;
    const run = state.runs.get(shownRunId);
    if (!run) { el.textContent = ''; el.setAttribute('data-status', 'none'); return; }
    let t = `${shortId(run.id)} · ${run.status}`;
    if (run.duration !== undefined) t += ` · ${fmtDur(run.duration)}`;
    if (!run.graph) t += ' · topology unknown';
    el.textContent = t;
    el.title = `workflow ${run.id}\n${fmtInt(run.events)} events, ${fmtInt(run.errors)} errors`;
    el.setAttribute('data-status', run.status);
  }

  // Run picker and filter options: rebuilt at most once a second, never while open.
  let pickerVersion = -1, nodeOptVersion = -1, wfOptVersion = -1;
  function runLabel(run) {
    const t = run.startTs ? fmtClock(run.startTs).slice(0, 8) : fmtClock('', run.firstSeen).slice(0, 8);
    return `${t} · ${shortId(run.id)} · ${run.status}${run.graph ? '' : ' (no topology)'}`;
  }
  function topoLabel(g) {
    if (!g) return 'topology unknown';
    const names = g.nodes.slice(0, 3).map((n) => n.id).join(', ');
    return `${g.nodes.length} nodes: ${names}${g.nodes.length > 3 ? ', …' : ''}`;
  }
  function refreshPickers() {
    const picker = $('run-picker');
    if (pickerVersion !== state.runsVersion && document.activeElement !== picker) {
      pickerVersion = state.runsVersion;
      const runs = Array.from(state.runs.values()).reverse().slice(0, 100);
      const groups = new Map();
      for (const run of runs) {
        const key = run.graph ? run.graph.topoKey : '';
        if (!groups.has(key)) groups.set(key, { label: topoLabel(run.graph), runs: [] });
        groups.get(key).runs.push(run);
      }
      const frag = document.createDocumentFragment();
      frag.appendChild(new Option('Follow latest run', ''));
      for (const grp of groups.values()) {
        const og = document.createElement('optgroup');
        og.label = grp.label;
        for (const run of grp.runs) og.appendChild(new Option(runLabel(run), run.id));
        frag.appendChild(og);
      }
      while (picker.firstChild) picker.removeChild(picker.firstChild);
      picker.appendChild(frag);
      if (state.selectedRun && !state.runs.has(state.selectedRun)) state.selectedRun = '';
      picker.value = state.selectedRun;
    }
    const fnode = $('f-node');
    if (nodeOptVersion !== state.nodeIdsVersion && document.activeElement !== fnode) {
      nodeOptVersion = state.nodeIdsVersion;
      const cur = fnode.value;
      while (fnode.options.length > 1) fnode.remove(1);
      const ids = Array.from(state.nodeStats.keys()).sort().slice(0, CFG.MAX_FILTER_OPTIONS);
      for (const id of ids) fnode.appendChild(new Option(clip(id, 40), id));
      fnode.value = ids.includes(cur) ? cur : '';
    }
    const fwf = $('f-workflow');
    if (wfOptVersion !== state.runsVersion && document.activeElement !== fwf) {
      wfOptVersion = state.runsVersion;
      const cur = fwf.value;
      while (fwf.options.length > 1) fwf.remove(1);
      const ids = Array.from(state.runs.keys()).reverse().slice(0, CFG.MAX_FILTER_OPTIONS);
      for (const id of ids) fwf.appendChild(new Option(shortId(id) + ' · ' + state.runs.get(id).status, id));
      if (cur && !ids.includes(cur)) fwf.appendChild(new Option(shortId(cur), cur));
      fwf.value = cur;
    }
  }

  setInterval(() => { refreshCards(); refreshTable(); }, CFG.SLOW_REFRESH_MS);
  setInterval(refreshPickers, CFG.PICKER_REFRESH_MS);
  // The chart scrolls with time even when no event arrives.
  setInterval(() => { if (!rafId) requestAnimationFrame(() => { chart.draw(Date.now()); graph.tick(performance.now()); }); }, CFG.CHART_BUCKET_MS);

  // ---------------------------------------------------------------------------
  // Replay of one run
  // ---------------------------------------------------------------------------

  /**
   * Replay a run's events on a fresh copy of the run: the graph shows the copy
   * while events are applied one by one, paced by their real gaps (clamped to
   * 40..600 ms for lifecycle and error events; data and metric events cost no time).
   */
  function startReplay(wfId, raws, graphHint) {
    stopReplay(false);
    const evs = raws.map(normEvent).filter(Boolean);
    if (!evs.length) { showNotice(`No stored events for run ${shortId(wfId)}`); return; }
    const seqOf = (ev) => num(ev.raw.seq);
    evs.sort((a, b) => {
      const ta = Date.parse(a.ts), tb = Date.parse(b.ts);
      if (Number.isFinite(ta) && Number.isFinite(tb) && ta !== tb) return ta - tb;
      return (seqOf(a) ?? 0) - (seqOf(b) ?? 0);
    });
    const run = new Run(wfId || evs[0].wf);
    const live = state.runs.get(run.id);
    // In case the run's workflow_started was evicted server-side.
    if (live && live.graph) run.graph = live.graph;
    else if (graphHint) run.graph = normGraph(graphHint);
    replay = { run, evs, i: 0, timer: 0 };
    $('replay-bar').hidden = false;
    const el = $('run-status');
    el.textContent = `replay · ${shortId(run.id)}`;
    el.setAttribute('data-status', 'replay');
    graph.show(run);
    stepReplay();
  }
  function stepReplay() {
    if (!replay) return;
    const r = replay;
    const fx = { nodes: new Set(), edges: [], topo: false, all: false, run: false };
    let delay = 0;
    // Apply events up to (and including) the next visible one.
    while (r.i < r.evs.length) {
      const ev = r.evs[r.i++];
      applyToRun(r.run, ev, fx);
      if (ev.type === 'lifecycle' || ev.type === 'error') {
        const next = r.evs[r.i];
        if (next) {
          const gap = Date.parse(next.ts) - Date.parse(ev.ts);
          delay = Math.min(600, Math.max(40, Number.isFinite(gap) ? gap : 120));
        }
        break;
      }
    }
    const now = performance.now();
    if (fx.topo || fx.all) graph.show(r.run);
    else for (const id of fx.nodes) graph.updateNode(r.run, id);
    for (const k of fx.edges) graph.lightEdge(r.run, k, now);
    $('replay-text').textContent = `Replaying ${shortId(r.run.id)} · ${r.i}/${r.evs.length} events`;
    $('replay-fill').style.width = ((100 * r.i) / r.evs.length).toFixed(1) + '%';
    if (r.i >= r.evs.length) {
      $('replay-text').textContent = `Replay of ${shortId(r.run.id)} finished · ${r.evs.length} events · ${r.run.status}`;
      r.done = true;
      return;
    }
    r.timer = setTimeout(stepReplay, delay);
  }
  function stopReplay(redraw) {
    if (!replay) return;
    clearTimeout(replay.timer);
    replay = null;
    $('replay-bar').hidden = true;
    if (redraw) {
      shownRunId = null;  // force the live run to be redrawn next frame
      runStatusDirty = true;
      schedule();
    }
  }
  function requestReplay() {
    const id = state.selectedRun || displayedRunId();
    if (!id) { showNotice('No run to replay yet'); return; }
    if (conn.send({ type: 'get_workflow_events', workflow_id: id })) return;
    // No WebSocket: fall back to the REST route.
    fetch('api/workflows/' + encodeURIComponent(id) + '/events', { headers: authHeaders() })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
      .then((j) => startReplay(id, Array.isArray(j) ? j : (j && j.events) || [], j && j.graph))
      .catch((e) => showNotice('Replay failed: ' + e.message));
  }

  /**
   * Runs listed by the server (initial.workflows, GET /api/workflows), oldest
   * first: they fill the run picker with runs older than the event snapshot.
   * Live state already known for a run wins over the summary.
   */
  function registerRunSummaries(list) {
    if (!Array.isArray(list)) return;
    const fresh = [];
    for (const w of list.slice(-CFG.MAX_RUNS)) {
      if (!w || typeof w !== 'object') continue;
      const id = str(w.workflow_id ?? w.id);
      if (!id || state.runs.has(id)) continue;
      fresh.push([id, w]);
    }
    if (!fresh.length) return;
    // Older runs go before the ones already known, keeping first-seen order.
    const known = Array.from(state.runs.entries());
    state.runs.clear();
    for (const [id, w] of fresh) {
      const run = new Run(id);
      const g = normGraph(w.graph || w.topology);
      if (g) run.graph = g;
      if (typeof w.status === 'string') run.status = normRunStatus(w.status, run.status);
      const d = num(w.duration); if (d !== undefined) run.duration = d;
      run.startTs = str(w.started_at ?? w.start_time ?? w.started);
      run.events = num(w.event_count) ?? 0;
      run.errors = num(w.error_count) ?? 0;
      state.runs.set(id, run);
    }
    for (const [id, run] of known) state.runs.set(id, run);
    if (state.runs.size > CFG.MAX_RUNS) evictRuns();
    state.runsVersion++;
  }

  /** Learn about runs older than the initial snapshot (best effort). */
  function fetchRuns() {
    fetch('api/workflows', { headers: authHeaders() })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => registerRunSummaries(Array.isArray(j) ? j : j && (j.workflows || j.runs || j.data)))
      .catch(() => { /* older servers may not have the route */ });
  }

  // ---------------------------------------------------------------------------
  // WebSocket connection with exponential backoff
  // ---------------------------------------------------------------------------
  /**
   * Two transports behind one interface (open(url), send(text), and the
   * callbacks open / close / messages(array of parsed messages)):
   * WorkerTransport lets ws-worker.js own the socket and deliver one batch per
   * ~16 ms, so thousands of messages a second do not each cost a main-thread
   * task; DirectTransport is the plain fallback when a worker cannot start.
   */
  class WorkerTransport {
    constructor(cb) {
      this.kind = 'worker';
      this.worker = new Worker('ws-worker.js');
      this.worker.onmessage = (e) => {
        const m = e.data || {};
        if (m.ev === 'batch') {
          let arr;
          try { arr = JSON.parse(m.data); } catch (err) { return; }
          if (Array.isArray(arr)) cb.messages(arr);
        } else if (m.ev === 'open') cb.open();
        else if (m.ev === 'close') cb.close();
      };
      // The script failed to load or crashed: fall back to a direct socket.
      this.worker.onerror = (e) => { if (e && e.preventDefault) e.preventDefault(); this.worker.terminate(); cb.failed(); };
    }
    open(url) { this.worker.postMessage({ cmd: 'connect', url }); }
    send(text) { this.worker.postMessage({ cmd: 'send', data: text }); }
  }
  class DirectTransport {
    constructor(cb) { this.kind = 'direct'; this.cb = cb; this.ws = null; }
    open(url) {
      let ws;
      try { ws = new WebSocket(url); } catch (e) { this.cb.close(); return; }
      this.ws = ws;
      ws.onopen = () => this.cb.open();
      ws.onmessage = (e) => {
        let msg;
        try { msg = JSON.parse(e.data); } catch (err) { return; }
        this.cb.messages([msg]);
      };
      ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.cb.close(); } };
      ws.onerror = () => { /* onclose follows */ };
    }
    send(text) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text); }
  }

  /** The WebSocket session: status pill, exponential backoff with jitter, sends. */
  class Connection {
    constructor() {
      this.isOpen = false;
      this.attempt = 0;
      this.retryAt = 0;
      this.retryTimer = 0;
      this.countdown = 0;
      this.stableTimer = 0;
      const base = location.pathname.replace(/[^/]*$/, '');
      // batch=1: the server sends runs of events as one {"type":"events"} message,
      // which keeps the tab responsive at thousands of events per second.
      this.url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base + 'ws?batch=1' +
        (TOKEN ? '&token=' + encodeURIComponent(TOKEN) : '');
      const cb = {
        open: () => this.onOpen(),
        close: () => this.onClose(),
        messages: (arr) => { for (const m of arr) handleMessage(m); },
        failed: () => { this.transport = new DirectTransport(cb); this.connect(); },
      };
      this.transport = null;
      if (typeof Worker === 'function' && !params.has('noworker')) {
        try { this.transport = new WorkerTransport(cb); } catch (e) { this.transport = null; }
      }
      if (!this.transport) this.transport = new DirectTransport(cb);
      $('conn').addEventListener('click', () => { if (!this.isOpen) this.connect(); });
    }
    setStatus(st, text) {
      const el = $('conn');
      el.setAttribute('data-state', st);
      $('conn-text').textContent = text;
    }
    connect() {
      clearTimeout(this.retryTimer);
      clearInterval(this.countdown);
      this.setStatus(this.attempt ? 'reconnecting' : 'connecting', this.attempt ? 'reconnecting…' : 'connecting…');
      this.transport.open(this.url);
    }
    onOpen() {
      this.isOpen = true;
      this.setStatus('open', 'live');
      // Reset the backoff only once the connection has proved stable.
      this.stableTimer = setTimeout(() => { this.attempt = 0; }, 5000);
    }
    onClose() {
      this.isOpen = false;
      clearTimeout(this.stableTimer);
      this.scheduleRetry();
    }
    scheduleRetry() {
      const base = Math.min(CFG.RECONNECT_MAX_MS, CFG.RECONNECT_MIN_MS * Math.pow(2, this.attempt));
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      this.attempt++;
      this.retryAt = Date.now() + delay;
      const tickText = () => {
        const left = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
        this.setStatus('reconnecting', `offline · retry in ${left}s`);
      };
      tickText();
      clearInterval(this.countdown);
      this.countdown = setInterval(tickText, 1000);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    }
    send(obj) {
      if (!this.isOpen) return false;
      this.transport.send(JSON.stringify(obj));
      return true;
    }
  }
  const conn = new Connection();

  // ---------------------------------------------------------------------------
  // Controls
  // ---------------------------------------------------------------------------
  $('run-picker').addEventListener('change', (e) => {
    stopReplay(false);
    state.selectedRun = e.target.value;
    shownRunId = null;
    runStatusDirty = true;
    schedule();
    refreshTable();
  });
  $('replay-btn').addEventListener('click', requestReplay);
  $('replay-stop').addEventListener('click', () => stopReplay(true));

  const applyFilters = () => {
    log.filter = {
      type: $('f-type').value,
      node: $('f-node').value,
      wf: $('f-workflow').value,
      text: $('f-text').value.trim().toLowerCase(),
    };
    log.rebuild();
    log.updateCount();
  };
  $('f-type').addEventListener('change', applyFilters);
  $('f-node').addEventListener('change', applyFilters);
  $('f-workflow').addEventListener('change', applyFilters);
  let textTimer = 0;
  $('f-text').addEventListener('input', () => { clearTimeout(textTimer); textTimer = setTimeout(applyFilters, 150); });

  $('pause-btn').addEventListener('click', () => {
    const btn = $('pause-btn');
    log.paused = !log.paused;
    btn.setAttribute('aria-pressed', String(log.paused));
    btn.textContent = log.paused ? '▶ Resume' : '❚❚ Pause';
    if (!log.paused) log.rebuild();  // catch up with what arrived meanwhile
    log.updateCount();
  });
  $('clear-btn').addEventListener('click', () => { log.clear(); log.updateCount(); });

  // Read-only hooks for the browser test and for debugging from the console.
  window.kgDashboard = Object.freeze({
    stats: () => ({
      received: state.received,
      seen: state.baseline + state.sinceInitial,
      applied: state.applied,
      total: state.total,
      queue: queuedEvents,
      frames: state.frames,
      lastFrameMs: state.lastFrameMs,
      maxFrameMs: state.maxFrameMs,
      logRows: log.rows,
      logDomRows: log.pool.filter((r) => !r.hidden).length,
      runs: state.runs.size,
      shownRun: shownRunId,
      connected: conn.isOpen,
      transport: conn.transport.kind,
      replaying: !!(replay && !replay.done),
      clientDropped: state.clientDropped,
      localSkipped: state.localSkipped,
    }),
    /** A copy of one run's node states (default: the shown run). */
    run: (id) => {
      const run = state.runs.get(id || shownRunId);
      if (!run) return null;
      const nodes = {};
      for (const [k, n] of run.nodes) nodes[k] = Object.assign({}, n);
      return { id: run.id, status: run.status, events: run.events, nodes, edges: Object.fromEntries(run.edgeCounts) };
    },
  });

  conn.connect();
  refreshCards();
})();
