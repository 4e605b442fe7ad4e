/*
 * model.js - the graph model: a nested workflow topology as a tree of paths.
 *
 * A KayGraph graph is itself a node, so a run's topology is a tree: the
 * top-level graph holds nodes, some of which are graphs (or batch graphs,
 * whose sub-graph runs once per item) holding nodes of their own.  Every node
 * is named by its node_path (docs/protocol.md): the outermost graph's id,
 * then each enclosing graph's id, then its own, joined by "/".  Edges only
 * ever join siblings (an edge into a graph node enters its start node), so
 * each group is a small graph of its own; the layout works group by group.
 *
 * Pure: unit-tested in tests/web/model.test.mjs.
 */
import { childPath } from './protocol.js';

/**
 * Build the model of a parsed topology (protocol.js parseTopology).
 * Returns {rootPath, root, byPath, idIndex, size}; each model node is
 *   {path, id, type, group, batch, depth, parent, children, edges, start}
 * with edges {from, to, action, key} between children paths.
 */
export function buildModel(topo) {
  const byPath = new Map();
  const idIndex = new Map();
  const rootPath = topo.id ? childPath('', topo.id) : '';
  const make = (t, path, parent, depth) => {
    const isGroup = Array.isArray(t.nodes);
    const n = {
      path, id: t.id, type: t.type || '', group: isGroup, batch: !!t.batch, depth, parent,
      children: [], edges: [], start: '',
    };
    if (t.status) n.status = t.status;
    if (path !== rootPath || parent) {
      byPath.set(path, n);
      if (!idIndex.has(t.id)) idIndex.set(t.id, []);
      idIndex.get(t.id).push(path);
    }
    if (isGroup) {
      for (const c of t.nodes) n.children.push(make(c, childPath(path, c.id), n, depth + 1));
      for (const e of t.edges) {
        const from = childPath(path, e.from);
        n.edges.push({ from, to: childPath(path, e.to), action: e.action, key: edgeKey(from, e.action) });
      }
      n.start = t.start ? childPath(path, t.start) : '';
    }
    return n;
  };
  const root = make(topo, rootPath, null, 0);
  byPath.set(rootPath, root);
  return { rootPath, root, byPath, idIndex, size: byPath.size - 1 };
}

/** The key of the edge leaving `fromPath` on `action`. */
export function edgeKey(fromPath, action) {
  return fromPath + '\u0000' + (action || 'default');
}

/**
 * The model path an event is about: its node_path when it has one; for
 * producers that send no node_path, the only node with that id, else the
 * top-level node with that id.  '' when the event names no node.
 */
export function resolvePath(model, ev) {
  if (ev.path) {
    if (!model || model.byPath.has(ev.path) || model.rootPath) return ev.path;
    // A topology without an id ("" root) and a producer that sends paths:
    // the path's first component is the graph's id.
    const i = ev.path.indexOf('/');
    return i >= 0 && model.byPath.has(ev.path.slice(i + 1)) ? ev.path.slice(i + 1) : ev.path;
  }
  if (!ev.node) return '';
  if (!model) return ev.node;
  const paths = model.idIndex.get(ev.node);
  if (paths && paths.length === 1) return paths[0];
  return childPath(model.rootPath, ev.node);
}

/** Every group path of the model, outermost first. */
export function groupPaths(model) {
  const out = [];
  const walk = (n) => { for (const c of n.children) if (c.group) { out.push(c.path); walk(c); } };
  walk(model.root);
  return out;
}

/** How many boxes are drawn with these groups collapsed (collapsed groups count as one). */
export function visibleCount(model, collapsed) {
  let n = 0;
  const walk = (g) => {
    for (const c of g.children) {
      n++;
      if (c.group && !collapsed.has(c.path)) walk(c);
    }
  };
  walk(model.root);
  return n;
}

/**
 * The groups collapsed when a topology is first shown: none if the whole
 * graph fits in `maxVisible` boxes, else the deepest levels first until it
 * does (the outermost level is always expanded).
 */
export function defaultCollapsed(model, maxVisible = 400) {
  const collapsed = new Set();
  if (visibleCount(model, collapsed) <= maxVisible) return collapsed;
  const groups = groupPaths(model).map((p) => model.byPath.get(p));
  const maxDepth = groups.reduce((m, g) => Math.max(m, g.depth), 0);
  for (let d = maxDepth; d >= 1; d--) {
    for (const g of groups) if (g.depth === d) collapsed.add(g.path);
    if (visibleCount(model, collapsed) <= maxVisible) break;
  }
  return collapsed;
}

/** Descendant leaf-and-group paths of a group (not the group itself). */
export function descendants(model, path) {
  const g = model.byPath.get(path);
  const out = [];
  const walk = (n) => { for (const c of n.children) { out.push(c.path); if (c.group) walk(c); } };
  if (g) walk(g);
  return out;
}

const ACTIVE = ['running', 'retrying'];

/**
 * The live state of a group from its descendants' states (statusOf(path)
 * returns 'idle' | 'running' | 'retrying' | 'completed' | 'failed'):
 * running (or retrying) when anything inside is, else failed when anything
 * inside failed, else completed when anything completed, else the group's
 * own status.  Counts per status come with it, for the group's label.
 */
export function groupState(model, path, statusOf) {
  const counts = { idle: 0, running: 0, retrying: 0, completed: 0, failed: 0 };
  for (const p of descendants(model, path)) {
    const n = model.byPath.get(p);
    if (n.group) continue;   // a group's own status repeats its children's
    const s = statusOf(p);
    counts[s in counts ? s : 'idle']++;
  }
  let status;
  if (counts.retrying) status = 'retrying';
  else if (counts.running) status = 'running';
  else if (counts.failed) status = 'failed';
  else if (counts.completed) status = 'completed';
  else status = statusOf(path) || 'idle';
  if (!ACTIVE.includes(status) && ACTIVE.includes(statusOf(path))) status = statusOf(path);
  return { status, counts };
}

/** The path of the nearest collapsed ancestor (or the path itself if none hides it). */
export function visibleAncestor(model, path, collapsed) {
  let n = model.byPath.get(path);
  let shown = path;
  while (n && n.parent) {
    if (collapsed.has(n.parent.path)) shown = n.parent.path;
    n = n.parent;
  }
  return shown;
}
