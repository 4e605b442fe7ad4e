// Example topologies (workflow_started.data.graph, docs/schema/graph.schema.json)
// shared by the unit tests, the layout benchmark and the browser test's mock
// server: the seed's pipeline, a nested graph (two levels of sub-graphs, one
// node id used in two sub-graphs, a batch graph), a wide graph (>= 120 nodes,
// fan-out and fan-in) and a 300-node nested graph for the layout target.

const n = (id, type) => ({ id, type });
const e = (from, to, action = 'default') => ({ from, to, action });

/** The seed's example, as `kgmon demo` sends it. */
export function pipelineGraph() {
  return {
    id: 'data_pipeline', type: 'DataPipeline', start: 'data_source',
    nodes: [n('data_source', 'DataSourceNode'), n('validator', 'DataValidationNode'), n('processor', 'DataProcessingNode'),
      n('aggregator', 'AggregationNode'), n('storage', 'StorageNode'), n('reporter', 'ReportNode'), n('error_handler', 'ErrorHandlerNode')],
    edges: [e('data_source', 'validator'), e('validator', 'processor', 'process'), e('validator', 'error_handler', 'no_valid_data'),
      e('processor', 'aggregator'), e('aggregator', 'storage'), e('storage', 'reporter', 'stored'), e('storage', 'error_handler', 'error')],
  };
}

/** Two levels of sub-graphs, "validator" in two of them, a batch graph per item. */
export function nestedGraph() {
  const enrich = {
    id: 'enrich', type: 'Graph', start: 'lookup',
    nodes: [n('lookup', 'LookupNode'), n('validator', 'SchemaValidator'), n('merge', 'MergeNode')],
    edges: [e('lookup', 'validator'), e('validator', 'merge', 'valid'), e('validator', 'lookup', 'retry_lookup')],
  };
  const checks = {
    id: 'checks', type: 'Graph', start: 'schema_check',
    nodes: [n('schema_check', 'SchemaCheckNode'), n('validator', 'RuleValidator'), enrich, n('dedupe', 'DedupeNode')],
    edges: [e('schema_check', 'validator'), e('validator', 'enrich', 'valid'), e('validator', 'dedupe', 'duplicate'), e('enrich', 'dedupe')],
  };
  const perItem = {
    id: 'per_item', type: 'BatchGraph', batch: true, start: 'fetch',
    nodes: [n('fetch', 'FetchNode'), n('transform', 'TransformNode'), n('store_item', 'StoreNode')],
    edges: [e('fetch', 'transform'), e('transform', 'store_item')],
  };
  return {
    id: 'order_flow', type: 'Graph', start: 'intake',
    nodes: [n('intake', 'LoadNode'), checks, perItem, n('report', 'ReportNode'), n('error_handler', 'ErrorHandlerNode')],
    edges: [e('intake', 'checks'), e('checks', 'per_item'), e('checks', 'error_handler', 'error'), e('per_item', 'report'),
      e('per_item', 'error_handler', 'error')],
  };
}

/** >= 120 nodes: a router fanning out to 12 shards of 9 steps, fan-in through audits and a merge. */
export function wideGraph(shards = 13, steps = 9) {
  const nodes = [n('ingest', 'IngestNode'), n('router', 'RouterNode')];
  const edges = [e('ingest', 'router')];
  const stepTypes = ['ParseNode', 'CleanNode', 'ScoreNode', 'EnrichNode', 'FilterNode', 'JoinNode', 'RankNode', 'PackNode', 'EmitNode'];
  for (let s = 0; s < shards; s++) {
    const id = (k) => `shard${String(s).padStart(2, '0')}_${['parse', 'clean', 'score', 'enrich', 'filter', 'join', 'rank', 'pack', 'emit'][k]}`;
    for (let k = 0; k < steps; k++) nodes.push(n(id(k), stepTypes[k]));
    edges.push(e('router', id(0), `shard_${s}`));
    for (let k = 0; k + 1 < steps; k++) edges.push(e(id(k), id(k + 1)));
    // Fan-in: every third shard's filter step also reports to an audit node.
    if (s % 3 === 0) edges.push(e(id(4), `audit_${s / 3}`, 'flagged'));
  }
  for (let a = 0; a < Math.ceil(shards / 3); a++) { nodes.push(n(`audit_${a}`, 'AuditNode')); edges.push(e(`audit_${a}`, 'merge')); }
  nodes.push(n('merge', 'MergeNode'), n('summarise', 'SummaryNode'), n('publish', 'PublishNode'), n('notify', 'NotifyNode'));
  for (let s = 0; s < shards; s++) edges.push(e(`shard${String(s).padStart(2, '0')}_emit`, 'merge'));
  edges.push(e('merge', 'summarise'), e('summarise', 'publish'), e('publish', 'notify'), e('summarise', 'router', 'reprocess'));
  return { id: 'wide_flow', type: 'Graph', start: 'ingest', nodes, edges };
}

/**
 * A deterministic ~300-node nested graph: lanes of stages, each stage a
 * sub-graph that splits into parallel branches (some holding sub-graphs and
 * batch graphs of their own) and joins again, with skips and loops.
 */
export function bigNestedGraph(target = 300) {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  let count = 0;
  const types = ['LoadNode', 'CheckNode', 'MapNode', 'ReduceNode', 'StoreNode'];
  const stage = (id, type, size, depth) => {
    const nodes = [n(`${id}_split`, 'SplitNode')], edges = [];
    count++;
    const branches = 2 + Math.floor(rnd() * 3);
    const per = Math.max(1, Math.floor((size - 2) / branches));
    for (let b = 0; b < branches; b++) {
      let prev = `${id}_split`, prev2 = null;
      for (let i = 0; i < per; i++) {
        const nid = `${id}_b${b}_${i}`;
        if (depth < 2 && i === 1 && b % 2 === 0 && count < target - 30) {
          count++;
          const sub = stage(nid, depth === 0 ? 'Graph' : 'BatchGraph', 5 + Math.floor(rnd() * 4), depth + 1);
          if (depth === 1) sub.batch = true;
          nodes.push(sub);
        } else { count++; nodes.push(n(nid, types[(b + i) % 5])); }
        edges.push(e(prev, nid, i === 0 ? `branch_${b}` : 'default'));
        if (prev2 && rnd() < 0.25) edges.push(e(prev2, nid, 'skip'));
        if (i > 1 && rnd() < 0.1) edges.push(e(nid, `${id}_b${b}_0`, 'again'));
        prev2 = prev; prev = nid;
      }
      edges.push(e(prev, `${id}_join`));
    }
    nodes.push(n(`${id}_join`, 'JoinNode'));
    count++;
    return { id, type, start: `${id}_split`, nodes, edges };
  };
  const nodes = [n('intake', 'IntakeNode')], edges = [];
  count++;
  const lanes = [[], [], []];
  for (let i = 0; count < target - 2; i++) {
    const lane = lanes[i % 3];
    const sid = `stage${i}`;
    nodes.push(stage(sid, 'Graph', 10 + Math.floor(rnd() * 8), 0));
    edges.push(e(lane.length ? lane[lane.length - 1] : 'intake', sid, lane.length ? 'default' : `lane_${i % 3}`));
    lane.push(sid);
  }
  nodes.push(n('merge', 'MergeNode'), n('publish', 'PublishNode'));
  for (const lane of lanes) if (lane.length) edges.push(e(lane[lane.length - 1], 'merge'));
  edges.push(e('merge', 'publish'));
  return { id: 'big_flow', type: 'Graph', start: 'intake', nodes, edges };
}

/** Every node of a topology with its path (docs/protocol.md "node_path"). */
export function allPaths(g, prefix = g.id) {
  const out = [];
  for (const c of g.nodes) {
    const p = prefix + '/' + c.id.replace(/%/g, '%25').replace(/\//g, '%2F');
    out.push(p);
    if (c.nodes) out.push(...allPaths(c, p));
  }
  return out;
}
