/* kaygraph/observer.h - the engine's observer interface.
 *
 * An observer sees every lifecycle point of every node the engine runs under
 * it.  Monitoring (kaygraph/monitor.h) is one observer; tests and tracers can
 * be others.  Install with kg_node_set_observer() on a graph, or process-wide
 * with kg_observer_set_global().  With no observer installed each lifecycle
 * point costs the engine one predictable branch.
 *
 * The callback runs synchronously on the thread that runs the node, so it
 * must be quick and must not fail: it returns nothing, and the engine never
 * looks at what it did.  Everything in the event is borrowed for the call. */
#ifndef KAYGRAPH_OBSERVER_H
#define KAYGRAPH_OBSERVER_H

#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The lifecycle points, in the order they occur in one node execution. */
#define KG_OBS_POINT_MAP(X)   \
    X(RUN_START, "run_start")   /* a graph run begins: `node` is the graph */     \
    X(RUN_END, "run_end")       /* ...ends: `action`, `error`, `elapsed` */       \
    X(NODE_START, "node_start")                                                    \
    X(BEFORE_PREP, "before_prep")                                                  \
    X(AFTER_PREP, "after_prep")         /* `data` = prep_res */                    \
    X(BEFORE_EXEC, "before_exec")                                                  \
    X(RETRY, "retry")                   /* `error`, `attempt` that failed */       \
    X(FALLBACK, "fallback")             /* `error` passed to exec_fallback */      \
    X(AFTER_EXEC, "after_exec")         /* `data` = exec_res, `elapsed` = exec */  \
    X(AFTER_POST, "after_post")         /* `action`, `elapsed` = whole node */     \
    X(NODE_FAILED, "node_failed")       /* `error`, `phase`, `elapsed` */          \
    X(SUPPRESSED, "suppressed")         /* `error`, `phase`: on_error said so */

typedef enum kg_obs_point {
#define KG__OBS_ENUM(name, str) KG_OBS_##name,
    KG_OBS_POINT_MAP(KG__OBS_ENUM)
#undef KG__OBS_ENUM
    KG_OBS_POINT_COUNT
} kg_obs_point;

KG_API const char *kg_obs_point_name(kg_obs_point p);   /* static string */

typedef struct kg_obs_event {
    kg_obs_point point;
    const kg_node_t *node;    /* the node (the graph for RUN_*) */
    const char *node_id;      /* == kg_node_id(node) */
    const char *node_type;    /* == kg_node_type(node) */
    uint64_t run_id;          /* this graph run; unique in the process */
    uint64_t parent_run_id;   /* enclosing run for nested graphs, else 0 */
    uint64_t root_run_id;     /* outermost run (== run_id at top level) */
    uint64_t exec_id;         /* this node execution; 0 for RUN_* */
    unsigned attempt;         /* 0-based exec attempt (RETRY: the one that failed) */
    unsigned max_retries;
    long item;                /* batch item index (RUN_*: the batch graph's item), or -1 */
    const char *phase;        /* "prep", "exec" or "post" where it applies */
    const char *action;       /* AFTER_POST, RUN_END; NULL for none */
    const kg_error_t *error;  /* RETRY, FALLBACK, NODE_FAILED, SUPPRESSED, RUN_END */
    json_t *data;             /* AFTER_PREP, AFTER_EXEC: borrowed, do not modify */
    double elapsed;           /* seconds, see the list above */
    /* The node's path from the outermost graph of this run ("outer/inner/x";
     * for RUN_* the graph's own path), see kg_node_path().  It points into
     * kg_node_path(node), which stays valid while the node lives.  NULL when
     * unknown (out of memory). */
    const char *node_path;
    /* When the point occurred: CLOCK_MONOTONIC nanoseconds, from the clock
     * reading the engine takes there anyway (points that follow each other
     * with no user code between them share one reading).  0 in an event
     * not made by the engine. */
    uint64_t time_ns;
} kg_obs_event;

typedef struct kg_observer {
    void (*on_event)(void *ud, const kg_obs_event *ev);
    void *ud;
    /* Optional.  Two points that follow each other with no user code
     * between them (NODE_START then BEFORE_PREP; AFTER_PREP then
     * BEFORE_EXEC) in one call: `ev` is the first, `then` the second, which
     * has the same fields except that it carries no `data`.  When NULL the
     * engine calls on_event twice.  (Monitoring queues both events in one
     * step this way.) */
    void (*on_pair)(void *ud, const kg_obs_event *ev, kg_obs_point then);
} kg_observer;

/* Process-wide observer used by runs whose graph has none of its own.  The
 * struct is copied; NULL removes it.  Not for use while runs are starting
 * on other threads: set it at startup and clear it at shutdown. */
KG_API void kg_observer_set_global(const kg_observer *obs);

#ifdef __cplusplus
}
#endif
#endif
