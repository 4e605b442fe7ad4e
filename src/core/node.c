/* node.c - creating, configuring, inspecting and freeing nodes; metrics.
 *
 * Graph membership and topology live in graph.c, execution in run.c. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/desc.h"
#include "core/internal.h"
#include "util/clock.h"

static const kg_node_ops no_ops = {0};
static atomic_uint_fast64_t id_counter = 1;

/* Run and execution ids only need to be unique within the process; the
 * monitor turns them into globally unique ids off the hot path. */
uint64_t kg__next_id(void)
{
    return atomic_fetch_add_explicit(&id_counter, 1, memory_order_relaxed);
}

static const char *default_type_name(kg_node_kind kind)
{
    switch (kind) {
    case KG_KIND_BATCH:
        return "BatchNode";
    case KG_KIND_PARALLEL_BATCH:
        return "ParallelBatchNode";
    case KG_KIND_GRAPH:
        return "Graph";
    case KG_KIND_BATCH_GRAPH:
        return "BatchGraph";
    default:
        return "Node";
    }
}

static kg_node_t *node_create(kg_node_kind kind, const char *id, const kg_node_ops *ops,
                              void *data)
{
    if (!id || !*id || strlen(id) >= KG_ID_MAX)
        return NULL;
    kg_node_t *n = calloc(1, sizeof *n);
    if (!n || !(n->params = json_object())) {
        free(n);
        return NULL;
    }
    n->kind = kind;
    memcpy(n->id, id, strlen(id) + 1);
    n->ops = ops ? ops : &no_ops;
    n->type_name = n->ops->type_name ? n->ops->type_name : default_type_name(kind);
    n->data = data;
    n->max_retries = 1;
    n->max_workers = 1;
    atomic_init(&n->time_min_ns, UINT64_MAX);
    return n;
}

kg_node_t *kg_node_new(const char *id, const kg_node_ops *ops, void *data)
{
    return node_create(KG_KIND_NODE, id, ops, data);
}

kg_node_t *kg_batch_node_new(const char *id, const kg_node_ops *ops, void *data)
{
    return node_create(KG_KIND_BATCH, id, ops, data);
}

kg_node_t *kg_parallel_batch_node_new(const char *id, const kg_node_ops *ops, void *data,
                                      unsigned max_workers)
{
    if (max_workers < 1 || max_workers > 256)
        return NULL;
    kg_node_t *n = node_create(KG_KIND_PARALLEL_BATCH, id, ops, data);
    if (n)
        n->max_workers = max_workers;
    return n;
}

kg_node_t *kg_graph_new(const char *id, const kg_node_ops *ops, void *data)
{
    return node_create(KG_KIND_GRAPH, id, ops, data);
}

kg_node_t *kg_batch_graph_new(const char *id, const kg_node_ops *ops, void *data)
{
    return node_create(KG_KIND_BATCH_GRAPH, id, ops, data);
}

void kg_node_free(kg_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_children; i++)
        kg_node_free(node->children[i]);
    free(node->children);
    free(node->edges);
    json_decref(node->params);
    json_decref(atomic_load(&node->topology));
    kg_text_unref(atomic_load(&node->topology_text));
    kg_text_unref(atomic_load(&node->path_text));
    kg__desc_invalidate(node);
    if (node->ops->destroy)
        node->ops->destroy(node->data);
    free(node);
}

int kg_node_set_retries(kg_node_t *node, unsigned max_retries, double wait)
{
    if (!node || max_retries < 1 || !(wait >= 0) || !isfinite(wait))
        return KG_EINVAL;
    node->max_retries = max_retries;
    node->wait = wait;
    return 0;
}

int kg_node_set_params(kg_node_t *node, json_t *params)
{
    if (!node || !json_is_object(params))
        return KG_EINVAL;
    json_t *copy = json_deep_copy(params);
    if (!copy)
        return KG_ENOMEM;
    json_decref(node->params);
    node->params = copy;
    return 0;
}

void kg_node_set_observer(kg_node_t *node, const kg_observer *obs)
{
    if (!node)
        return;
    if (obs && obs->on_event)
        node->observer = *obs;
    else
        memset(&node->observer, 0, sizeof node->observer);
}

int kg_node_connect(kg_node_t *from, const char *action, kg_node_t *to)
{
    if (!action)
        action = KG_DEFAULT_ACTION;
    if (!from || !to || !*action || strlen(action) >= KG_ACTION_MAX)
        return KG_EINVAL;
    kg__topology_invalidate(from);
    kg__desc_invalidate(from);   /* its action names change */
    for (size_t i = 0; i < from->n_edges; i++) {
        if (strcmp(from->edges[i].action, action) == 0) {
            kg__log(KG_LOG_WARN, "overwriting successor for action '%s' of node '%s' ('%s' -> '%s')",
                    action, from->id, from->edges[i].to->id, to->id);
            from->edges[i].to = to;
            return 1;
        }
    }
    if (from->n_edges == from->cap_edges) {
        size_t cap = from->cap_edges ? from->cap_edges * 2 : 4;
        kg_edge *e = realloc(from->edges, cap * sizeof *e);
        if (!e)
            return KG_ENOMEM;
        from->edges = e;
        from->cap_edges = cap;
    }
    kg_edge *e = &from->edges[from->n_edges++];
    memcpy(e->action, action, strlen(action) + 1);
    e->to = to;
    return 0;
}

kg_node_t *kg_node_successor(const kg_node_t *node, const char *action)
{
    if (!action || !*action)
        action = KG_DEFAULT_ACTION;
    for (size_t i = 0; i < node->n_edges; i++)
        if (strcmp(node->edges[i].action, action) == 0)
            return node->edges[i].to;
    return NULL;
}

const char *kg_node_id(const kg_node_t *node)
{
    return node->id;
}

const char *kg_node_type(const kg_node_t *node)
{
    return node->type_name;
}

void *kg_node_data(const kg_node_t *node)
{
    return node->data;
}

bool kg_node_is_graph(const kg_node_t *node)
{
    return node && (node->kind == KG_KIND_GRAPH || node->kind == KG_KIND_BATCH_GRAPH);
}

/* ---- metrics ---------------------------------------------------------------- */

void kg__metrics_record(kg_node_t *node, uint64_t elapsed_ns, bool ok)
{
    atomic_fetch_add_explicit(ok ? &node->successes : &node->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&node->time_sum_ns, elapsed_ns, memory_order_relaxed);
    uint_fast64_t cur = atomic_load_explicit(&node->time_min_ns, memory_order_relaxed);
    while (elapsed_ns < cur &&
           !atomic_compare_exchange_weak_explicit(&node->time_min_ns, &cur, elapsed_ns,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    cur = atomic_load_explicit(&node->time_max_ns, memory_order_relaxed);
    while (elapsed_ns > cur &&
           !atomic_compare_exchange_weak_explicit(&node->time_max_ns, &cur, elapsed_ns,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void kg_node_metrics_get(const kg_node_t *node, kg_node_metrics *out)
{
    kg_node_t *n = (kg_node_t *)node;   /* atomics are read, never written */
    memset(out, 0, sizeof *out);
    out->executions = atomic_load(&n->executions);
    out->successes = atomic_load(&n->successes);
    out->errors = atomic_load(&n->errors);
    out->retries = atomic_load(&n->retries);
    uint64_t finished = out->successes + out->errors;
    if (finished) {
        out->min_time = (double)atomic_load(&n->time_min_ns) / 1e9;
        out->max_time = (double)atomic_load(&n->time_max_ns) / 1e9;
        out->avg_time = (double)atomic_load(&n->time_sum_ns) / 1e9 / (double)finished;
    }
}

void kg_node_metrics_reset(kg_node_t *node)
{
    atomic_store(&node->executions, 0);
    atomic_store(&node->successes, 0);
    atomic_store(&node->errors, 0);
    atomic_store(&node->retries, 0);
    atomic_store(&node->time_sum_ns, 0);
    atomic_store(&node->time_min_ns, UINT64_MAX);
    atomic_store(&node->time_max_ns, 0);
}
