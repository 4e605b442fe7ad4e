/* kaygraph/node.h - the workflow engine: nodes, graphs, batches, runs.
 *
 * A node has three optional steps, called in order by the engine:
 *
 *   prep(shared)                        -> prep_res     reads the shared store
 *   exec(prep_res)                      -> exec_res     pure work, retried on failure
 *   post(shared, prep_res, exec_res)    -> action       writes results, picks the edge
 *
 * A graph starts at its start node and follows the successor named by each
 * node's action ("default" when post returns none) until a node has no
 * successor for its action.  A graph is itself a node, so graphs nest.
 *
 * Values are jansson JSON values.  Ownership follows jansson: a parameter is
 * *borrowed* unless the function name ends in `_new` or the comment says it
 * is *stolen*; a returned json_t* is a *new reference* only where stated.
 *
 * Threading: building a graph (adding nodes, connecting edges, setting
 * options) must happen before it runs.  Once built, the same graph object may
 * be run concurrently from any number of threads: all per-run state lives on
 * the running thread's stack, and node metrics are atomics. */
#ifndef KAYGRAPH_NODE_H
#define KAYGRAPH_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kg_node kg_node_t;   /* opaque: a node, batch node or graph */
typedef struct kg_ctx kg_ctx_t;     /* opaque: one node execution, stack-owned */
struct kg_observer;

#define KG_ID_MAX 64       /* node ids and type names, including the NUL */
#define KG_ACTION_MAX 64   /* action names, including the NUL */
#define KG_DEFAULT_ACTION "default"

/* ---- Step functions --------------------------------------------------------
 * Every step returns 0 on success or a negative code on failure; a failing
 * step describes itself with kg_ctx_fail() (which returns KG_ENODE, so
 * `return kg_ctx_fail(ctx, "ValueError", "bad record %d", i);` reads well).
 *
 * Results are written to the out-parameter as a *new reference* (or left NULL
 * for "none"); the engine owns it from then on, also when the step fails.
 * `shared` is borrowed and may be modified in place by prep and post. */
typedef int (*kg_prep_fn)(kg_ctx_t *ctx, json_t *shared, json_t **prep_res);
typedef int (*kg_exec_fn)(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res);
/* `*action` must point to a string that is still valid when post returns:
 * a literal, or a string owned by the node's data.  The engine copies it at
 * once.  Leave it NULL for the default action. */
typedef int (*kg_post_fn)(kg_ctx_t *ctx, json_t *shared, json_t *prep_res,
                          json_t *exec_res, const char **action);
/* Called after the last failed exec attempt, with the last error.  Return 0
 * and a result to recover, or a negative code to fail the node.  Without a
 * fallback the node fails with `error`. */
typedef int (*kg_fallback_fn)(kg_ctx_t *ctx, json_t *prep_res, const kg_error_t *error,
                              json_t **exec_res);
typedef void (*kg_before_prep_fn)(kg_ctx_t *ctx, json_t *shared);
typedef void (*kg_after_exec_fn)(kg_ctx_t *ctx, json_t *shared, json_t *prep_res, json_t *exec_res);
/* Called when the node fails in any step.  Return true to suppress: the node
 * then ends without an action, so (as in KayGraph) the graph goes on along the
 * node's "default" edge, if any. */
typedef bool (*kg_on_error_fn)(kg_ctx_t *ctx, json_t *shared, const kg_error_t *error);

/* The behaviour of a node.  Every member may be NULL.  The table is borrowed
 * and must outlive the node (make it `static const`). */
typedef struct kg_node_ops {
    const char *type_name;          /* "DataValidationNode"; NULL -> "Node" */
    kg_prep_fn prep;
    kg_exec_fn exec;
    kg_post_fn post;
    kg_fallback_fn exec_fallback;
    kg_before_prep_fn before_prep;
    kg_after_exec_fn after_exec;
    kg_on_error_fn on_error;
    void (*destroy)(void *data);    /* frees `data` when the node is freed */
    /* Room for operations added in later minor releases (docs/abi.md):
     * leave it zero (NULL), as a designated initialiser does. */
    void (*reserved[4])(void);
} kg_node_ops;

/* ---- Creating nodes --------------------------------------------------------
 * Every constructor returns a new node owned by the caller, or NULL when out
 * of memory or `id` is NULL, empty or KG_ID_MAX bytes or longer.  A node
 * added to a graph is owned by that graph from then on. */

/* A plain node.  `data` is passed to every step through kg_ctx_data(). */
KG_API kg_node_t *kg_node_new(const char *id, const kg_node_ops *ops, void *data);

/* A batch node: prep returns an array, exec runs once per item (each item
 * with its own retries and fallback), exec_res is the array of results in
 * input order.  A prep result that is not an array counts as one item. */
KG_API kg_node_t *kg_batch_node_new(const char *id, const kg_node_ops *ops, void *data);

/* As kg_batch_node_new, but items run on up to `max_workers` threads at once
 * (1..256).  Results stay in input order.  The first item that fails (after
 * its retries and fallback) fails the node. */
KG_API kg_node_t *kg_parallel_batch_node_new(const char *id, const kg_node_ops *ops, void *data,
                                      unsigned max_workers);

/* A graph.  `ops` may be NULL; otherwise its prep/post run around the
 * orchestration like any node's (exec is ignored: running the graph *is* the
 * exec step, and exec_res is the last action as a JSON string). */
KG_API kg_node_t *kg_graph_new(const char *id, const kg_node_ops *ops, void *data);

/* A batch graph: its prep returns an array of params objects and the
 * sub-graph runs once per object, with those params over the graph's own. */
KG_API kg_node_t *kg_batch_graph_new(const char *id, const kg_node_ops *ops, void *data);

/* Free a node and, for a graph, every node it owns.  NULL is a no-op.
 * Must not be called while the node runs. */
KG_API void kg_node_free(kg_node_t *node);

/* ---- Building graphs ------------------------------------------------------- */

/* Add `node` to `graph`; the graph owns (steals) it, also on failure.  The
 * first node added becomes the start node.  Returns `node` (borrowed) so
 * calls chain, or NULL if graph is not a graph, a node with the same id is
 * already there, or on allocation failure (then `node` has been freed).
 * Exceptions, where NULL is returned and nothing is freed: `node` already
 * belongs to a graph, or `graph` is `node` or lies inside it (a graph
 * cannot contain itself). */
KG_API kg_node_t *kg_graph_add(kg_node_t *graph, kg_node_t *node);

/* Make `node` (already added) the start node.  KG_EINVAL otherwise. */
KG_API int kg_graph_set_start(kg_node_t *graph, kg_node_t *node);

/* `from` --action--> `to`.  `action` NULL means "default".  Both nodes are
 * borrowed.  Replacing an existing successor logs a warning and returns 1;
 * 0 on a new edge; negative on error. */
KG_API int kg_node_connect(kg_node_t *from, const char *action, kg_node_t *to);

/* Retries: `max_retries` is the total number of exec attempts (>= 1, the
 * KayGraph meaning), `wait` the seconds slept between attempts (>= 0,
 * fractional allowed).  KG_EINVAL otherwise. */
KG_API int kg_node_set_retries(kg_node_t *node, unsigned max_retries, double wait);

/* Params given to the node when it runs on its own (a graph passes its own
 * params to every node it runs instead).  Must be an object; borrowed and
 * copied (deep), so later changes to `params` do not leak into runs. */
KG_API int kg_node_set_params(kg_node_t *node, json_t *params);

/* Install an observer on a graph (or node): every run of it, nested graphs
 * and batch items included, reports to `obs`.  The struct is copied; NULL
 * removes it.  Takes effect for runs started afterwards. */
KG_API void kg_node_set_observer(kg_node_t *node, const struct kg_observer *obs);

/* ---- Introspection (all borrowed, valid while the node lives) ------------- */
KG_API const char *kg_node_id(const kg_node_t *node);
KG_API const char *kg_node_type(const kg_node_t *node);
KG_API void *kg_node_data(const kg_node_t *node);
KG_API bool kg_node_is_graph(const kg_node_t *node);
KG_API kg_node_t *kg_graph_start(const kg_node_t *graph);
KG_API kg_node_t *kg_graph_find(const kg_node_t *graph, const char *id);
/* The successor for `action` (NULL means "default"), or NULL. */
KG_API kg_node_t *kg_node_successor(const kg_node_t *node, const char *action);

/* The graph's topology as docs/events.md's `graph` object:
 * {"id","type","nodes":[{"id","type"}],"edges":[{"from","to","action"}],"start":id}.
 * A node that is a graph appears as the same kind of object (its own
 * "nodes", "edges", "start"; a batch graph also "batch": true), recursively.
 * Borrowed, immutable, computed once and cached: do not modify; json_incref
 * it to keep it beyond the graph's life.  NULL if not a graph. */
KG_API json_t *kg_graph_topology(const kg_node_t *graph);

/* The node's path: the ids of the graphs that contain it, outermost first,
 * then its own id, joined by "/" ("outer/inner/validator"); a node in no
 * graph is just its id.  In each id "%" is written "%25" and "/" "%2F", so
 * splitting on "/" gives the ids back.  Events name the node by this path
 * from the outermost graph being run (a run started at an inner graph
 * leaves out the graphs above it).  Borrowed and cached: valid while the
 * node lives and its graph membership does not change.  NULL when out of
 * memory. */
KG_API const char *kg_node_path(const kg_node_t *node);

/* ---- Running --------------------------------------------------------------- */

typedef struct kg_result {
    char action[KG_ACTION_MAX];  /* last action ("" for none) */
    kg_error_t error;            /* set when the run failed */
    uint64_t reserved[4];   /* later minor releases (docs/abi.md); zero */
} kg_result_t;

/* Run `node` (a graph or a single node) on `shared` (borrowed, modified in
 * place; NULL means a fresh empty object).  Returns 0 when the run ended
 * normally (including an unknown action, which logs a warning) and fills
 * result->action; otherwise the failing node's negative code with
 * result->error filled.  `result` may be NULL. */
KG_API int kg_run(kg_node_t *node, json_t *shared, kg_result_t *result);

/* ---- Inside a step: the execution context (valid only during the call) --- */

KG_API void *kg_ctx_data(const kg_ctx_t *ctx);        /* the node's data */
KG_API kg_node_t *kg_ctx_node(const kg_ctx_t *ctx);   /* borrowed */
KG_API json_t *kg_ctx_params(const kg_ctx_t *ctx);    /* borrowed object, never NULL */
KG_API unsigned kg_ctx_attempt(const kg_ctx_t *ctx);  /* 0-based exec attempt */
/* For batch items: the item's index (0-based), or -1 outside a batch exec. */
KG_API long kg_ctx_item(const kg_ctx_t *ctx);
KG_API uint64_t kg_ctx_run_id(const kg_ctx_t *ctx);   /* id of the current graph run */
KG_API uint64_t kg_ctx_exec_id(const kg_ctx_t *ctx);  /* id of this node execution */

/* Record why the current step fails; returns KG_ENODE.  `type` NULL means
 * "Error". */
KG_API int kg_ctx_fail(kg_ctx_t *ctx, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Metrics: kept for every node ----------------------------------------- */

typedef struct kg_node_metrics {
    uint64_t executions;   /* node executions started */
    uint64_t successes;    /* ended with an action (or suppressed error) */
    uint64_t errors;       /* ended failed */
    uint64_t retries;      /* failed exec attempts that were retried */
    double min_time, avg_time, max_time;   /* seconds per execution */
    /* Room for members added in later minor releases (docs/abi.md); the
     * library fills it, callers ignore it. */
    uint64_t reserved[8];
} kg_node_metrics;

KG_API void kg_node_metrics_get(const kg_node_t *node, kg_node_metrics *out);
KG_API void kg_node_metrics_reset(kg_node_t *node);

/* ---- Logging ---------------------------------------------------------------
 * Warnings (unknown action, replaced successor) go to this handler; the
 * default writes "kaygraph: warning: ..." to stderr.  NULL restores it.
 * Process-wide; may be called from any thread.  The dashboard's log lines
 * (kaygraph/dashboard.h) use the same levels and callback type. */
typedef enum kg_log_level { KG_LOG_ERROR = 0, KG_LOG_WARN = 1, KG_LOG_INFO = 2 } kg_log_level;
typedef void (*kg_log_fn)(void *ud, kg_log_level level, const char *msg);
KG_API void kg_log_set_handler(kg_log_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
