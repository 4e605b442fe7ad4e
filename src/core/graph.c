/* graph.c - graph membership (which nodes a graph owns, its start node) and
 * the topology snapshot that monitoring sends with every workflow_started.
 *
 * The topology is the graph as built (every node added, every edge with its
 * action), not a guess from observed transitions: the dashboard draws it
 * before the first node runs.  It is computed once and cached, because a
 * graph is built once and run many times. */
#include <string.h>

#include "core/internal.h"

/* Is `graph` the node `node` or inside it?  Adding `node` to it would make
 * the graph contain itself. */
static bool is_within(const kg_node_t *graph, const kg_node_t *node)
{
    for (const kg_node_t *g = graph; g; g = g->owner)
        if (g == node)
            return true;
    return false;
}

kg_node_t *kg_graph_add(kg_node_t *graph, kg_node_t *node)
{
    if (!node)
        return NULL;
    /* A node that belongs to a graph, or that `graph` lies in, is not ours
     * to free. */
    bool foreign = node->owner || is_within(graph, node);
    if (foreign || !kg_node_is_graph(graph) || kg_graph_find(graph, node->id)) {
        if (!foreign)
            kg_node_free(node);
        return NULL;
    }
    if (graph->n_children == graph->cap_children) {
        size_t cap = graph->cap_children ? graph->cap_children * 2 : 8;
        kg_node_t **c = realloc(graph->children, cap * sizeof *c);
        if (!c) {
            kg_node_free(node);
            return NULL;
        }
        graph->children = c;
        graph->cap_children = cap;
    }
    graph->children[graph->n_children++] = node;
    node->owner = graph;
    if (!graph->start)
        graph->start = node;
    kg__topology_invalidate(graph);
    kg__path_invalidate(node);
    return node;
}

int kg_graph_set_start(kg_node_t *graph, kg_node_t *node)
{
    if (!kg_node_is_graph(graph) || !node || node->owner != graph)
        return KG_EINVAL;
    graph->start = node;
    kg__topology_invalidate(graph);
    return 0;
}

kg_node_t *kg_graph_start(const kg_node_t *graph)
{
    return kg_node_is_graph(graph) ? graph->start : NULL;
}

kg_node_t *kg_graph_find(const kg_node_t *graph, const char *id)
{
    if (!kg_node_is_graph(graph) || !id)
        return NULL;
    for (size_t i = 0; i < graph->n_children; i++)
        if (strcmp(graph->children[i]->id, id) == 0)
            return graph->children[i];
    return NULL;
}

/* Building a graph is single-threaded and happens before runs (node.h), so a
 * plain exchange is enough to drop the cache when a node or edge changes. */
static void topology_drop(kg_node_t *graph)
{
    json_decref(atomic_exchange(&graph->topology, NULL));
    kg_text_unref(atomic_exchange(&graph->topology_text, NULL));
}

/* A change to a node or its edges changes the topology of its graph and,
 * as topologies nest, of every graph above. */
void kg__topology_invalidate(kg_node_t *node)
{
    for (kg_node_t *g = kg_node_is_graph(node) ? node : node->owner; g; g = g->owner)
        topology_drop(g);
}

/* {"id","type","start","nodes","edges"} of a graph; a child that is a graph
 * nests the same object (a batch graph also says "batch": true).  Depth is
 * bounded by construction: kg_graph_add refuses cycles. */
static json_t *topology_build(const kg_node_t *graph)
{
    json_t *nodes = json_array(), *edges = json_array();
    for (size_t i = 0; i < graph->n_children; i++) {
        const kg_node_t *n = graph->children[i];
        json_array_append_new(nodes, kg_node_is_graph(n)
                                         ? topology_build(n)
                                         : json_pack("{s:s, s:s}", "id", n->id, "type", n->type_name));
        for (size_t e = 0; e < n->n_edges; e++)
            json_array_append_new(edges, json_pack("{s:s, s:s, s:s}", "from", n->id, "to",
                                                   n->edges[e].to->id, "action",
                                                   n->edges[e].action));
    }
    json_t *topo = json_pack("{s:s, s:s, s:o, s:o, s:s?}", "id", graph->id, "type",
                             graph->type_name, "nodes", nodes, "edges", edges, "start",
                             graph->start ? graph->start->id : NULL);
    if (topo && graph->kind == KG_KIND_BATCH_GRAPH)
        json_object_set_new(topo, "batch", json_true());
    return topo;
}

json_t *kg_graph_topology(const kg_node_t *graph)
{
    if (!kg_node_is_graph(graph))
        return NULL;
    kg_node_t *g = (kg_node_t *)graph;   /* only the cache slot changes */
    json_t *cached = atomic_load_explicit(&g->topology, memory_order_acquire);
    if (cached)
        return cached;
    /* Concurrent first runs may both build it; one wins the exchange and the
     * other's copy is dropped.  Release publishes the finished object. */
    json_t *built = topology_build(graph);
    if (!built)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&g->topology, &cached, built,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        json_decref(built);
        return cached;
    }
    return built;
}

/* ---- shared text ------------------------------------------------------------- */

kg_text *kg__graph_topology_text(const kg_node_t *graph)
{
    if (!kg_node_is_graph(graph))
        return NULL;
    kg_node_t *g = (kg_node_t *)graph;
    kg_text *cached = atomic_load_explicit(&g->topology_text, memory_order_acquire);
    if (!cached) {
        json_t *topo = kg_graph_topology(graph);
        char *text = topo ? json_dumps(topo, JSON_COMPACT) : NULL;
        kg_text *built = text ? kg_text_new(text, strlen(text)) : NULL;
        free(text);
        if (!built)
            return NULL;
        /* As in kg_graph_topology: one concurrent builder wins. */
        if (atomic_compare_exchange_strong_explicit(&g->topology_text, &cached, built,
                                                    memory_order_acq_rel, memory_order_acquire))
            cached = built;
        else
            kg_text_unref(built);
    }
    return kg_text_ref(cached);
}
