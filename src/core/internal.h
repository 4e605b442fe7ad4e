/* core/internal.h - the engine private structures, shared by the files of src/core.
 *
 * A single struct represents every kind of node (plain, batch, parallel
 * batch, graph, batch graph): the kinds differ only in how the exec step is
 * carried out (run.c, batch.c), so one struct keeps graph building and
 * introspection kind-agnostic. */
#ifndef KG_CORE_INTERNAL_H
#define KG_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdlib.h>

#include "kaygraph/node.h"
#include "kaygraph/observer.h"
#include "core/shared_text.h"

typedef enum kg_node_kind {
    KG_KIND_NODE,
    KG_KIND_BATCH,
    KG_KIND_PARALLEL_BATCH,
    KG_KIND_GRAPH,
    KG_KIND_BATCH_GRAPH,
} kg_node_kind;

typedef struct kg_edge {
    char action[KG_ACTION_MAX];
    kg_node_t *to;
} kg_edge;

struct kg_node {
    kg_node_kind kind;
    char id[KG_ID_MAX];
    const char *type_name;     /* ops->type_name or the kind's default */
    const kg_node_ops *ops;    /* never NULL (an empty table when none given) */
    void *data;
    unsigned max_retries;      /* total exec attempts, >= 1 */
    double wait;               /* seconds between attempts */
    unsigned max_workers;      /* parallel batch only */
    json_t *params;            /* own object, never NULL */

    kg_edge *edges;            /* successors by action */
    size_t n_edges, cap_edges;

    kg_observer observer;      /* used when observer.on_event != NULL */

    /* Graphs only: the nodes it owns, in insertion order. */
    kg_node_t **children;
    size_t n_children, cap_children;
    kg_node_t *start;
    kg_node_t *owner;          /* the graph that owns this node, if any */
    _Atomic(json_t *) topology;   /* cached kg_graph_topology() */
    _Atomic(kg_text *) topology_text;   /* ...and its JSON text */
    _Atomic(kg_text *) path_text;       /* cached kg_node_path() (path.c) */
    _Atomic(struct kg_node_desc *) desc;       /* cached descriptor (desc.c) */

    /* Metrics: atomics so concurrent runs of one graph need no lock. */
    atomic_uint_fast64_t executions, successes, errors, retries;
    atomic_uint_fast64_t time_sum_ns, time_min_ns, time_max_ns;
};

/* Per-run state, on the stack of the thread running the graph. */
typedef struct kg_run_state {
    uint64_t run_id, parent_run_id, root_run_id;
    const kg_observer *obs;    /* NULL: nobody is watching */
    json_t *params;            /* borrowed effective params */
    size_t path_skip;          /* where the run's paths start in kg_node_path(); SIZE_MAX: none */
} kg_run_state;

/* One node execution (or one batch item of it), on the stack. */
struct kg_ctx {
    kg_node_t *node;
    const kg_run_state *run;
    uint64_t exec_id;
    unsigned attempt;
    long item;
    kg_error_t error;          /* what the failing step said */
};

/* log.c */
void kg__log(kg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* node.c */
uint64_t kg__next_id(void);
void kg__metrics_record(kg_node_t *node, uint64_t elapsed_ns, bool ok);
void kg__topology_invalidate(kg_node_t *node);

/* path.c: the path below the outermost graph of a run that starts at `root`
 * begins at kg__path_skip(root) in every node's kg_node_path(). */
size_t kg__path_skip(const kg_node_t *root);
const char *kg__node_path_at(const kg_node_t *node, size_t skip);   /* NULL: none */
void kg__path_invalidate(kg_node_t *node);   /* the node's and its descendants' */

/* run.c */
int kg__exec_item(kg_ctx_t *ctx, json_t *input, json_t **out);

/* batch.c: exec step of batch and parallel batch nodes. */
int kg__batch_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res);

/* What every observer event carries, filled in place (an observed point
 * builds its event once; `point` is a constant at each call site, so the
 * conditions fold away). */
static inline void kg__obs_fill(kg_obs_event *ev, const kg_ctx_t *ctx)
{
    ev->node = ctx->node;
    ev->node_id = ctx->node->id;
    ev->node_type = ctx->node->type_name;
    ev->run_id = ctx->run->run_id;
    ev->parent_run_id = ctx->run->parent_run_id;
    ev->root_run_id = ctx->run->root_run_id;
    if (ev->point != KG_OBS_RUN_START && ev->point != KG_OBS_RUN_END)
        ev->exec_id = ctx->exec_id;
    ev->max_retries = ctx->node->max_retries;
    if (ev->point != KG_OBS_RETRY)
        ev->attempt = ctx->attempt;
    ev->item = ctx->item;
    ev->node_path = kg__node_path_at(ctx->node, ctx->run->path_skip);
}

/* Emit an observer point when (and only when) someone is watching: the
 * one branch that unobserved runs pay. */
#define KG_OBSERVE(ctx, pt, ...)                                          \
    do {                                                                     \
        const kg_observer *kg__obs = (ctx)->run->obs;                        \
        if (kg__obs) {                                                       \
            kg_obs_event kg__ev = {.point = (pt), __VA_ARGS__};              \
            kg__obs_fill(&kg__ev, (ctx));                                    \
            kg__obs->on_event(kg__obs->ud, &kg__ev);                         \
        }                                                                    \
    } while (0)

/* kg_error_clear() for the engine's own paths: what every reader of an
 * error looks at, without clearing its 400 bytes. */
static inline void kg__error_reset(kg_error_t *err)
{
    err->code = 0;
    err->type[0] = '\0';
    err->message[0] = '\0';
}

#endif
