/*
 * protocol.js - the dashboard's wire format, read exactly as docs/protocol.md
 * and docs/schema/ define it.
 *
 * One place turns server JSON into the UI's own values: events (with
 * node_path, docs/protocol.md "Node paths"), workflow topologies (recursive:
 * a node that is a graph carries nodes/edges/start) and message envelopes.
 * Field names are read under their documented spelling only; a message of
 * the wrong shape is dropped, never guessed at.  Pure: unit-tested in
 * tests/web/protocol.test.mjs.
 */

/** Event names the dispatcher emits about itself (node_id "dispatcher", no node_path). */
export const DISPATCHER_METRICS = new Set(['queue_depth', 'throughput_metric', 'events_dropped']);

export const EVENT_TYPES = ['lifecycle', 'data', 'error', 'metric', 'log'];

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v) => (typeof v === 'string' ? v : '');

/** One path component, escaped ("%" -> "%25", "/" -> "%2F"). */
export function escapeComponent(id) {
  return String(id).replace(/%/g, '%25').replace(/\//g, '%2F');
}

/** The components of a node_path, unescaped. */
export function splitPath(path) {
  if (!path) return [];
  return path.split('/').map((c) => c.replace(/%2F/gi, '/').replace(/%25/g, '%'));
}

/** Join a parent path and a node id ("" parent: the id alone). */
export function childPath(parent, id) {
  const c = escapeComponent(id);
  return parent ? parent + '/' + c : c;
}

/** The parent of a path ("a/b/c" -> "a/b", "a" -> ""). */
export function parentPath(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** The last component of a path, unescaped. */
export function pathLeaf(path) {
  const parts = splitPath(path);
  return parts.length ? parts[parts.length - 1] : '';
}

/**
 * An event as the UI uses it, or null when it is not an event object.
 * Required fields are the nine of docs/schema/event.schema.json; the server
 * has checked them, so only their types are re-checked here.
 */
export function parseEvent(raw) {
  if (!isObj(raw) || typeof raw.event_name !== 'string' || typeof raw.event_type !== 'string') return null;
  const data = isObj(raw.data) ? raw.data : {};
  const ts = str(raw.timestamp);
  const tsMs = ts ? Date.parse(ts) : NaN;
  const seq = typeof raw.seq === 'number' && Number.isFinite(raw.seq) ? raw.seq : undefined;
  return {
    raw,
    id: str(raw.event_id),
    ts,
    tsMs,
    node: str(raw.node_id),
    path: str(raw.node_path),          // '' when the producer sends none
    ntype: str(raw.node_type),
    type: raw.event_type,
    name: raw.event_name,
    wf: str(raw.workflow_id),
    corr: str(raw.correlation_id),
    seq,
    data,
    item: typeof data.item === 'number' ? data.item : undefined,
    parentWf: raw.event_name === 'workflow_started' ? str(data.parent_workflow_id) : '',
    // Ordering key within one producer: seq, else the timestamp.
    ord: seq !== undefined ? seq : Number.isFinite(tsMs) ? tsMs : Infinity,
    text: null,   // lower-cased search text, built lazily by the log
  };
}

/** A dispatcher metric: not a node of any workflow (docs/protocol.md). */
export function isDispatcherEvent(ev) {
  return DISPATCHER_METRICS.has(ev.name);
}

/**
 * A topology (workflow_started.data.graph, a network_graph, a reply's
 * "graph") in the UI's form, recursively:
 *   {id, type, start, batch, nodes:[Topo-or-leaf], edges:[{from,to,action}]}
 * where a leaf is {id, type, status?, count?} and a graph node is a Topo.
 * Duplicate node ids keep the first; edges naming unknown nodes are dropped;
 * a node has one successor per action (the engine's rule), the first wins.
 * Returns null for anything that is not a topology object.
 */
export function parseTopology(g, depth = 0) {
  if (!isObj(g) || !Array.isArray(g.nodes) || depth > 32) return null;
  const nodes = [];
  const seen = new Set();
  for (const n of g.nodes) {
    if (!isObj(n) || typeof n.id !== 'string' || !n.id || seen.has(n.id)) continue;
    seen.add(n.id);
    const node = { id: n.id, type: str(n.type), batch: n.batch === true };
    if (typeof n.status === 'string') node.status = n.status;
    if (typeof n.path === 'string') node.path = n.path;
    if (Array.isArray(n.nodes)) {
      const sub = parseTopology(n, depth + 1);
      if (sub) Object.assign(node, { nodes: sub.nodes, edges: sub.edges, start: sub.start });
    }
    nodes.push(node);
  }
  const edges = [];
  const out = new Set();
  for (const e of Array.isArray(g.edges) ? g.edges : []) {
    if (!isObj(e) || typeof e.from !== 'string' || typeof e.to !== 'string') continue;
    if (!seen.has(e.from) || !seen.has(e.to)) continue;
    const action = typeof e.action === 'string' && e.action ? e.action : 'default';
    const k = e.from + '\u0000' + action;
    if (out.has(k)) continue;
    out.add(k);
    const edge = { from: e.from, to: e.to, action };
    if (typeof e.count === 'number') edge.count = e.count;
    edges.push(edge);
  }
  const start = typeof g.start === 'string' && seen.has(g.start) ? g.start : nodes.length ? nodes[0].id : '';
  return { id: str(g.id), type: str(g.type), start, batch: g.batch === true, nodes, edges };
}

/** A stable text key of a topology's shape (ids, types, edges, nesting). */
export function topologyKey(t) {
  if (!t) return '';
  const parts = [t.id, t.start, t.batch ? 'B' : ''];
  for (const n of t.nodes) parts.push(n.nodes ? '(' + n.id + ':' + topologyKey(n) + ')' : n.id + ':' + n.type);
  for (const e of t.edges) parts.push(e.from + '>' + e.action + '>' + e.to);
  return parts.join('\u0001');
}

/** Count the nodes of a topology, sub-graphs' nodes included (graph nodes count once). */
export function topologySize(t) {
  let n = 0;
  for (const c of t.nodes) n += 1 + (c.nodes ? topologySize(c) : 0);
  return n;
}

/** The envelope of a WebSocket message: its type, or '' when it is not one. */
export function messageType(msg) {
  return isObj(msg) && typeof msg.type === 'string' ? msg.type : '';
}
