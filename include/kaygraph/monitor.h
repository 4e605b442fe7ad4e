/* kaygraph/monitor.h - real-time monitoring of workflows.
 *
 * A monitor is an engine observer (kaygraph/observer.h) that turns every
 * lifecycle point into an event of docs/events.md's schema and delivers it to a
 * backend, without ever slowing or failing the workflow:
 *
 *   node thread:  filter -> sample -> stamp -> copy a fixed-size record into a
 *                 bounded lock-free queue (never blocks, never allocates
 *                 unless data snapshots are on; a full queue drops and counts)
 *   dispatchers:  `async_workers` threads take batches off the queue,
 *                 serialise them, send them, retry with backoff, and stop
 *                 calling a failing backend through a circuit breaker.
 *
 * Usage:
 *     kg_monitor_config cfg;
 *     kg_monitor_config_init(&cfg);
 *     cfg.backend = kg_mock_backend_new(NULL, NULL);
 *     kg_monitor_t *mon;
 *     if (kg_monitor_new(&cfg, &mon, &err) == 0) {
 *         kg_monitor_attach(mon, graph);       // or NULL: process-wide
 *         kg_run(graph, shared, &res);
 *         kg_monitor_free(mon);                // flushes, then stops
 *     }
 *
 * Threading: every function may be called from any thread.  The monitor must
 * outlive the runs it observes: detach (or free) it only when they are over. */
#ifndef KAYGRAPH_MONITOR_H
#define KAYGRAPH_MONITOR_H

#include "backend.h"
#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Event names ------------------------------------------------------------ */

#define KG_EVENT_TYPE_MAP(X) \
    X(LIFECYCLE, "lifecycle") X(DATA, "data") X(ERROR, "error") X(METRIC, "metric")

typedef enum kg_event_type {
#define KG__TYPE_ENUM(name, str) KG_TYPE_##name,
    KG_EVENT_TYPE_MAP(KG__TYPE_ENUM)
#undef KG__TYPE_ENUM
    KG_EVENT_TYPE_COUNT
} kg_event_type;

/* X(enum, "name", type) in docs/events.md's order. */
#define KG_EVENT_NAME_MAP(X)                                   \
    X(WORKFLOW_STARTED, "workflow_started", LIFECYCLE)         \
    X(NODE_STARTED, "node_started", LIFECYCLE)                 \
    X(NODE_PREPARING, "node_preparing", LIFECYCLE)             \
    X(NODE_EXECUTING, "node_executing", LIFECYCLE)             \
    X(NODE_COMPLETED, "node_completed", LIFECYCLE)             \
    X(WORKFLOW_COMPLETED, "workflow_completed", LIFECYCLE)     \
    X(DATA_INPUT, "data_input", DATA)                          \
    X(DATA_OUTPUT, "data_output", DATA)                        \
    X(NODE_FAILED, "node_failed", ERROR)                       \
    X(RETRY_ATTEMPTED, "retry_attempted", ERROR)               \
    X(FALLBACK_TRIGGERED, "fallback_triggered", ERROR)         \
    X(ERROR_SUPPRESSED, "error_suppressed", ERROR)             \
    X(EXECUTION_TIME, "execution_time", METRIC)                \
    X(QUEUE_DEPTH, "queue_depth", METRIC)                      \
    X(THROUGHPUT_METRIC, "throughput_metric", METRIC)          \
    X(EVENTS_DROPPED, "events_dropped", METRIC)

typedef enum kg_event_name {
#define KG__NAME_ENUM(name, str, type) KG_EV_##name,
    KG_EVENT_NAME_MAP(KG__NAME_ENUM)
#undef KG__NAME_ENUM
    KG_EVENT_NAME_COUNT
} kg_event_name;

KG_API const char *kg_event_name_str(kg_event_name n);        /* static, "node_started" */
KG_API kg_event_type kg_event_name_type(kg_event_name n);
KG_API const char *kg_event_type_str(kg_event_type t);        /* static, "lifecycle" */
/* Parse a name ("node_started") or -1. */
KG_API int kg_event_name_parse(const char *s);
KG_API int kg_event_type_parse(const char *s);

/* Verbosity: a bit per event name. */
#define KG_CAPTURE(name) (UINT32_C(1) << (name))
#define KG_CAPTURE_ALL ((UINT32_C(1) << KG_EVENT_NAME_COUNT) - 1)
KG_API uint32_t kg_capture_type(kg_event_type t);   /* all names of one type */
/* Parse a comma list of types and names ("lifecycle,error", "node_failed",
 * "all", "none") into a mask.  KG_EINVAL with `err` naming the bad word. */
KG_API int kg_capture_parse(const char *list, uint32_t *mask, kg_error_t *err);

/* ---- Configuration (names and defaults as the seed's MonitoringConfig) ------ */

typedef struct kg_monitor_config {
    kg_backend_t *backend;              /* required; stolen by kg_monitor_new */
    bool enable_data_snapshots;         /* false */
    size_t max_snapshot_size;           /* 1024 bytes */
    double sample_rate;                 /* 1.0; decided once per workflow run */
    unsigned batch_size;                /* 100 */
    double flush_interval;              /* 1.0 s */
    unsigned circuit_breaker_threshold; /* 5 consecutive failed batches */
    double circuit_breaker_reset;       /* 1.0 s before a half-open probe */
    unsigned async_workers;             /* 4 */
    size_t buffer_size;                 /* 65536 events; rounded up to 2^n */
    uint32_t capture;                   /* KG_CAPTURE_ALL */
    double metrics_interval;            /* 5.0 s between dispatcher metrics; 0 = off */
    double shutdown_timeout;            /* 5.0 s: kg_monitor_free's flush bound */
    double retry_backoff_max;           /* 1.0 s: cap of the retry backoff */
    const char *source_host;            /* NULL = gethostname() */
} kg_monitor_config;

KG_API void kg_monitor_config_init(kg_monitor_config *cfg);

typedef struct kg_monitor kg_monitor_t;

/* Start the dispatcher threads.  Steals cfg->backend, also on failure.
 * Returns 0 and *out, or a negative code with `err` filled (bad value, no
 * memory, threads could not start). */
KG_API int kg_monitor_new(const kg_monitor_config *cfg, kg_monitor_t **out, kg_error_t *err);

/* Monitor every run of `graph` (nested graphs and batch items included);
 * NULL installs it process-wide (kg_observer_set_global).  Detach with
 * kg_monitor_detach(mon, graph) or by freeing the monitor. */
KG_API void kg_monitor_attach(kg_monitor_t *mon, kg_node_t *graph);
KG_API void kg_monitor_detach(kg_monitor_t *mon, kg_node_t *graph);

/* The observer, to combine with others or install by hand.  Borrowed. */
KG_API const struct kg_observer *kg_monitor_observer(kg_monitor_t *mon);

/* Wait until every event queued before the call has been delivered (or
 * dropped), at most `timeout` seconds.  0, or KG_ETIMEOUT. */
KG_API int kg_monitor_flush(kg_monitor_t *mon, double timeout);

/* Flush (bounded by shutdown_timeout), stop the threads, free the backend
 * and the monitor.  A graph attached with kg_monitor_attach(mon, graph) keeps
 * pointing at the monitor: detach it (or free the graph) first; a
 * process-wide attachment is removed here.  Events still undelivered at the deadline are counted in
 * `dropped_shutdown`.  Returns 0 when nothing was lost, KG_ETIMEOUT
 * otherwise.  NULL is a no-op. */
KG_API int kg_monitor_free(kg_monitor_t *mon);

typedef enum kg_circuit_state {
    KG_CIRCUIT_CLOSED = 0, KG_CIRCUIT_OPEN = 1, KG_CIRCUIT_HALF_OPEN = 2
} kg_circuit_state;
KG_API const char *kg_circuit_state_str(kg_circuit_state s);

typedef struct kg_monitor_stats {
    uint64_t emitted;           /* events that passed filter and sampling */
    uint64_t enqueued;          /* of those, put on the queue */
    uint64_t dropped_full;      /* of those, dropped: queue full */
    uint64_t sent;              /* delivered to the backend */
    uint64_t dropped_shutdown;  /* still undelivered when the monitor stopped */
    uint64_t failed_batches;    /* send_batch calls that failed */
    size_t queue_size;          /* events waiting in the queue now */
    size_t queue_capacity;
    size_t batch_buffer;        /* events taken off the queue, not yet sent */
    kg_circuit_state circuit;
    unsigned consecutive_failures;
    uint64_t circuit_opens;     /* times the breaker opened */
    bool backend_connected;
    const char *backend_name;   /* static/borrowed */
    /* Room for members added in later minor releases (docs/abi.md); the
     * library fills it, callers ignore it. */
    uint64_t reserved[8];
} kg_monitor_stats;

/* A consistent-enough snapshot; exact once the monitor is idle:
 *   emitted == enqueued + dropped_full
 *   enqueued == sent + queue_size + batch_buffer + dropped_shutdown */
KG_API void kg_monitor_stats_get(kg_monitor_t *mon, kg_monitor_stats *out);

/* The stats as a new JSON object (for reports and the dashboard). */
KG_API json_t *kg_monitor_stats_json(kg_monitor_t *mon);

#ifdef __cplusplus
}
#endif
#endif
