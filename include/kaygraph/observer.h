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

/* The lifecycle points, in the order they occur in one node execution,
 * then the points a node's own code reports (any time during it). */
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
    X(SUPPRESSED, "suppressed")         /* `error`, `phase`: on_error said so */     \
    /* What the node's own code reports (kg_ctx_log & co., node.h): only to    \
     * an observer whose user_mask asks for them; `user` says what. */         \
    X(LOG, "log")                       /* kg_ctx_log*: a log line */              \
    X(METRIC, "metric")                 /* kg_ctx_metric */                        \
    X(PROGRESS, "progress")             /* kg_ctx_progress */                      \
    X(CUSTOM, "custom")                 /* kg_ctx_event* */

typedef enum kg_obs_point {
#define KG__OBS_ENUM(name, str) KG_OBS_##name,
    KG_OBS_POINT_MAP(KG__OBS_ENUM)
#undef KG__OBS_ENUM
    KG_OBS_POINT_COUNT
} kg_obs_point;

KG_API const char *kg_obs_point_name(kg_obs_point p);   /* static string */

/* What a node reported (the LOG, METRIC, PROGRESS and CUSTOM points).
 * Borrowed for the call, like the rest of the event; texts are already
 * cut to the limits of node.h (KG_LOG_MESSAGE_MAX, ...) and NUL-terminated. */
typedef struct kg_obs_user {
    kg_log_level level;         /* LOG */
    const char *message;        /* LOG: the formatted line */
    size_t message_len;
    bool truncated;             /* LOG: message cut; METRIC/CUSTOM: name or unit cut */
    json_t *fields;             /* LOG: an object, or NULL */
    const char *name;           /* METRIC, CUSTOM */
    double value;               /* METRIC; PROGRESS: done */
    double total;               /* PROGRESS: 0 when unknown */
    const char *unit;           /* METRIC: "" when none */
    kg_metric_kind kind;        /* METRIC */
    json_t *data;               /* CUSTOM: any JSON value (never NULL) */
} kg_obs_user;

/* kg_observer.user_mask: which of a node's reports an observer takes.  A
 * log line's bit depends on its level, so the mask is also the minimum
 * level; the engine checks it before it formats anything. */
#define KG_USER_LOG(level) (UINT32_C(1) << (level))   /* KG_LOG_ERROR..KG_LOG_DEBUG */
#define KG_USER_LOG_UPTO(level) ((UINT32_C(2) << (level)) - 1)   /* that level and more severe */
#define KG_USER_METRIC (UINT32_C(1) << 4)
#define KG_USER_PROGRESS (UINT32_C(1) << 5)
#define KG_USER_CUSTOM (UINT32_C(1) << 6)
/* Set by an observer that is in charge of node reports, alone or with the
 * bits above: what its mask leaves out is dropped.  An observer whose mask
 * is 0 (the default, and every observer written before reports existed)
 * receives none, and a node's log lines then go to the log handler as when
 * nothing watches. */
#define KG_USER_CLAIM (UINT32_C(1) << 31)

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
    /* LOG, METRIC, PROGRESS, CUSTOM: what the node reported; else NULL. */
    const kg_obs_user *user;
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
    /* Which node reports (LOG, METRIC, PROGRESS, CUSTOM points) on_event
     * receives: KG_USER_* bits, 0 (none) by default (see KG_USER_CLAIM). */
    uint32_t user_mask;
    /* Optional.  Asked after user_mask accepted a report and before it is
     * formatted, with the outermost run's id (kg_obs_event.root_run_id):
     * false drops it.  The monitor's per-run sampling decision.  Runs on the
     * node's thread, concurrently: must be quick and thread-safe. */
    bool (*user_accept)(void *ud, uint64_t root_run_id);
    /* Room for members added in later minor releases (docs/abi.md): zero
     * it (`= {0}` or a designated initialiser does). */
    void (*reserved[4])(void);
} kg_observer;

/* Process-wide observer used by runs whose graph has none of its own.  The
 * struct is copied; NULL removes it.  Not for use while runs are starting
 * on other threads: set it at startup and clear it at shutdown. */
KG_API void kg_observer_set_global(const kg_observer *obs);

#ifdef __cplusplus
}
#endif
#endif
