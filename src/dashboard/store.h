/* dashboard/store.h - run history: the store that outlives the process.
 *
 * Every event the hub accepts is also queued here (kg__store_put, under the
 * hub lock) and written by one writer thread in batched transactions, off
 * the event loop: the events themselves (deduplicated by event_id), a
 * summary row per workflow run and one per node execution.  Queries for
 * /api/runs* run on a query thread with their own connection and come back
 * to the service thread the way Redis history fetches do (source_redis.h):
 * a bounded pending list, a done list, a hub wake-up.
 *
 *   store.c         engine-independent: the queue and its admission rule,
 *                   the writer (batches, retries, retention steps), the
 *                   per-batch summaries, the query thread, health counters
 *   store_sqlite.c  SQLite: WAL, schema + migrations, incremental retention
 *   store_pg.c      PostgreSQL (libpq): the same interface; several
 *                   dashboards may write one database
 *   api_runs.c      the HTTP routes: parse a request into a query, run it
 *                   against an engine, format the answer
 *
 * An engine is a table of functions (kg__store_ops) over an opaque
 * connection, one file per engine, hiredis-adapter style.  Summaries are
 * computed here from the events an engine reports as newly inserted, and
 * applied as merges that are idempotent and order-independent (counts add,
 * times take min/max, statuses take the strongest), so replays, retries and
 * two dashboards writing the same events never count anything twice.
 *
 * Durability: the writer commits what it has within KG__STORE_COMMIT_INTERVAL
 * (it gathers a small batch for KG__STORE_LINGER, then writes), so a kill -9
 * normally loses the events acknowledged in the last ~200 ms.  Should the
 * writer stall (a loaded machine, a slow disk), admission refuses new events
 * (backpressure: ingest 503, a failed feed send, a waiting Redis source)
 * once the oldest uncommitted one has waited KG__STORE_ADMIT_AGE: the loss
 * is bounded by that, and a stall shorter than it does not hold the live
 * view back.  When the store fails (full
 * disk, locked or corrupt file, database down) it keeps what it queued and
 * retries; events that do not fit then are accepted for the live view and
 * counted as not stored (log, /api/metrics, /healthz). */
#ifndef KG_DASH_STORE_H
#define KG_DASH_STORE_H

#include "body.h"
#include "event.h"
#include "kaygraph/dashboard.h"
#include "util/buf.h"
#include "util/list.h"
#include "util/map.h"
#include "util/text.h"

#define KG__STORE_COMMIT_INTERVAL 0.2    /* s: an accepted event is committed within */
#define KG__STORE_ADMIT_AGE 1.0          /* s: refuse new events once one waited this long */
#define KG__STORE_BATCH_MAX 8192         /* events per transaction */
#define KG__STORE_LINGER 0.05            /* s the writer gathers a small batch */
#define KG__STORE_BATCH_ENOUGH 1024      /* ... unless this many already wait */
#define KG__STORE_QUERIES_MAX 32         /* queries queued or running at once */
#define KG__STORE_QUEUE_BYTES (64u << 20) /* event text waiting for the writer */
#define KG__EVENT_OVERHEAD 160           /* bytes of row and index per stored event, for
                                          * size estimates (measured on SQLite) */
#define KG__STORE_NICE 5                 /* queries and checkpoints yield to the live view */

/* Run and node-execution status ranks: a merge keeps the highest. */
enum { KG__ST_NONE = -1, KG__ST_RUNNING = 0, KG__ST_SUCCESS = 1, KG__ST_FAILED = 2 };
/* Node executions: running, completed, failed. */
enum { KG__XS_RUNNING = 0, KG__XS_COMPLETED = 1, KG__XS_FAILED = 2 };

/* ---- what the writer gets ---------------------------------------------------------- */

/* One accepted event as queued: the fields history needs, copied from the
 * validated event (strings live in `pool`), and its text.  NULL strings
 * are absent fields. */
typedef struct kg__sev {
    kg_text *msg;                 /* the event's JSON text (a reference) */
    const char *event_id, *run_id, *corr, *node_id, *node_type, *node_path;
    const char *parent_id;        /* workflow_started: data.parent_workflow_id */
    const char *action;           /* node_completed next_action / workflow_completed final_action */
    const char *error, *error_type, *phase;
    const char *host;
    char *topology;               /* workflow_started: data.graph as JSON text (malloc'd) */
    int64_t ts_ms;                /* event time (arrival time when it did not parse) */
    int64_t seq;                  /* -1 when absent */
    int64_t pid;                  /* -1 when absent */
    int type, name;               /* kg_event_type / kg_event_name, -1 unknown */
    int item;                     /* data.item, -1 when absent */
    int status;                   /* workflow_completed: KG__ST_SUCCESS / _FAILED */
    double duration;              /* workflow duration / node total_execution_time, NAN */
    double accepted;              /* monotonic time it was accepted */
    /* Filled by the writer and the engine. */
    int64_t rid;                  /* its run's row id, 0 for events of no run */
    bool inserted;                /* new (not a duplicate of a stored event) */
    char pool[];
} kg__sev;

/* A run as the batch changes it (a merge: see the file comment). */
typedef struct kg__srun {
    const char *run_id;           /* borrowed from an event of the batch */
    int64_t rid;                  /* ensure_runs fills it */
    char *db_graph;               /* ensure_runs: graph already stored (malloc'd) or NULL */
    /* Deltas from the batch's inserted events. */
    int64_t min_ms, max_ms, ended_ms;   /* -1: none */
    int64_t events, errors;
    int64_t bytes;                /* event text + KG__EVENT_OVERHEAD per event */
    int status;                   /* KG__ST_*; NONE when the batch says nothing */
    double duration;              /* NAN */
    const char *graph, *graph_type, *parent_id, *final_action, *error, *host;
    int64_t pid;                  /* -1 */
    const char *topology;         /* borrowed from the workflow_started event */
} kg__srun;

/* A node execution (run, correlation_id, item) as the batch changes it. */
typedef struct kg__sexec {
    int64_t rid;
    const char *corr;
    int item;                     /* -1: the execution itself, >= 0 a batch item */
    const char *node_id, *node, *graph, *node_type;   /* node: path under the root graph */
    int64_t min_ms, end_ms, err_ms;   /* -1: none */
    int status;                   /* KG__XS_*, -1 none */
    double duration;              /* NAN */
    int64_t retries, events, errors;
    const char *action, *error, *error_type, *phase;
} kg__sexec;

/* ---- what queries get back ----------------------------------------------------------- */

typedef struct kg__run_row {
    int64_t rid;
    char *run_id, *parent_id, *graph, *graph_type, *final_action, *error, *host;
    char *topology;               /* only for kg__store_ops.run_get */
    int status;
    int64_t started_ms, last_ms, ended_ms;   /* -1: unknown */
    double duration;              /* NAN: unknown */
    int64_t events, errors, pid, executions;
} kg__run_row;

typedef struct kg__exec_row {
    char *run_id, *corr, *node_id, *node, *node_type, *action, *error, *error_type, *phase;
    int item, status;
    int64_t started_ms, ended_ms;
    double duration;
    int64_t retries, events, errors;
} kg__exec_row;

void kg__run_row_clear(kg__run_row *r);
void kg__exec_row_clear(kg__exec_row *x);

typedef struct kg__runs_query {
    unsigned status_mask;         /* bit KG__ST_* + bit 3 for "stale"; 0 = all */
    const char *graph;            /* NULL: all */
    const char *prefix;           /* run id prefix, NULL: all */
    int64_t since_ms, until_ms;   /* started in [since, until); -1: open */
    int64_t stale_before_ms;      /* running with no event since: "stale" */
    bool nested;                  /* include runs nested in other runs */
    bool cursor;                  /* continue after (cursor_ms, cursor_rid) */
    int64_t cursor_ms, cursor_rid;
    size_t limit;
} kg__runs_query;

#define KG__STALE_BIT 3

/* Row callbacks return 0 to go on, non-zero to stop (that value is returned). */
typedef int (*kg__run_cb)(void *ud, const kg__run_row *r);
typedef int (*kg__exec_cb)(void *ud, const kg__exec_row *x);
typedef int (*kg__text_cb)(void *ud, int64_t seq, int64_t id, const char *text, size_t len);
/* Node-stats and graph-stats rows. */
typedef int (*kg__point_cb)(void *ud, const char *graph, int64_t ms, double duration, int status);

/* ---- an engine ---------------------------------------------------------------------------- */

typedef struct kg__retain {
    int64_t before_ms;            /* delete runs with no event since; -1: no age limit */
    uint64_t max_bytes;           /* keep the database under this; 0: no size limit */
    size_t max_runs;              /* work bound of one step */
} kg__retain;

typedef struct kg__retain_result {
    uint64_t runs, events;        /* deleted by this step */
    uint64_t bytes;               /* database size after it */
    bool more;                    /* another step is needed */
} kg__retain_result;

typedef struct kg__store_ops {
    const char *name;             /* "sqlite", "postgres" */
    /* A connection.  `writer`: creates or migrates the schema and writes;
     * otherwise read-only use.  0, or a KG_E* code with `err` filled. */
    int (*open)(const char *spec, bool writer, void **conn, kg_error_t *err);
    void (*close)(void *conn);
    /* False when the connection is lost (close it, open another). */
    bool (*alive)(void *conn);
    /* Writing, between begin and commit (rollback on any failure). */
    int (*begin)(void *c, kg_error_t *err);
    int (*commit)(void *c, kg_error_t *err);
    void (*rollback)(void *c);
    /* Create missing runs; fill rid and db_graph of each (sorted by run_id). */
    int (*ensure_runs)(void *c, kg__srun *runs, size_t n, kg_error_t *err);
    /* Insert events (sorted by event_id, rid set) that are not stored yet;
     * set `inserted` on those that were new. */
    int (*insert_events)(void *c, kg__sev **ev, size_t n, kg_error_t *err);
    int (*apply_runs)(void *c, const kg__srun *runs, size_t n, kg_error_t *err);
    int (*apply_execs)(void *c, const kg__sexec *x, size_t n, kg_error_t *err);
    /* One bounded retention step (its own transaction). */
    int (*retain)(void *c, const kg__retain *r, kg__retain_result *out, kg_error_t *err);
    /* Database size in bytes (what retain_mb bounds). */
    int (*size)(void *c, uint64_t *bytes, kg_error_t *err);
    /* Queries (read connection). */
    int (*runs)(void *c, const kg__runs_query *q, kg__run_cb cb, void *ud, kg_error_t *err);
    /* One run with its topology; KG_ENOTFOUND when unknown. */
    int (*run_get)(void *c, const char *run_id, kg__run_row *out, kg_error_t *err);
    /* Runs nested in `run_id` (its children), newest first, at most `limit`. */
    int (*children)(void *c, const char *run_id, size_t limit, kg__run_cb cb, void *ud,
                    kg_error_t *err);
    /* Node executions of run `rid` and of the runs nested in it (any
     * depth), by start time, at most `limit`. */
    int (*execs)(void *c, int64_t rid, size_t limit, kg__exec_cb cb, void *ud, kg_error_t *err);
    /* Events of run `rid` in order (seq, then arrival) after (after_seq,
     * after_id), at most `limit`; `errors_only`: error events only. */
    int (*events)(void *c, int64_t rid, int64_t after_seq, int64_t after_id, size_t limit,
                  bool errors_only, kg__text_cb cb, void *ud, kg_error_t *err);
    /* Top-level runs started since `since_ms`: graph, start, duration, status. */
    int (*graph_points)(void *c, int64_t since_ms, size_t limit, kg__point_cb cb, void *ud,
                        kg_error_t *err);
    /* Executions of `node` (path under the root graph) in runs of `graph`
     * started in [since, until) (-1: open), at most `limit`, newest first. */
    int (*node_points)(void *c, const char *graph, const char *node, int64_t since_ms,
                       int64_t until_ms, size_t limit, kg__point_cb cb, void *ud,
                       kg_error_t *err);
} kg__store_ops;

extern const kg__store_ops kg__store_sqlite_ops;
#ifdef KG_HAVE_LIBPQ
extern const kg__store_ops kg__store_pg_ops;
#endif

/* The engine for a spec: postgres:// or postgresql:// -> PostgreSQL, else
 * a SQLite path.  NULL with `err` when the engine is not built in. */
const kg__store_ops *kg__store_engine(const char *spec, kg_error_t *err);

/* ---- the store ------------------------------------------------------------------------------ */

typedef struct kg__store kg__store;

/* Open the history for the dashboard options (o->db NULL or "none": *out =
 * NULL, history off).  The database is opened here, so its first error is
 * logged at once; a store that cannot open keeps retrying in the
 * background (the dashboard runs without history meanwhile).  0, or
 * KG_EINVAL (bad option) / KG_ENOMEM with `err`. */
int kg__store_open(void (*wake)(void *ud), void *wake_ud, const kg_dashboard_options *o,
                   kg__store **out, kg_error_t *err);
/* Stop the query thread (its queries are freed: later kg__store_query_cancel
 * calls do nothing), write everything queued, close.  NULL is a no-op. */
void kg__store_close(kg__store *s);

/* Admission, under the hub lock, before an event is added: true when the
 * queue can take `bytes` more now.  False means "refuse, the sender will
 * retry" (the store is healthy but behind).  While the store is failing it
 * says true: the live view must go on; what does not fit is then counted as
 * not stored.  NULL store: true. */
bool kg__store_room(kg__store *s, size_t bytes);
/* The history's copy of an event (its fields, a reference to its text),
 * made before the hub lock is taken so that the allocation and the field
 * lookups stay out of it.  NULL with no store (or out of memory: the event
 * is then counted as not stored when put). */
kg__sev *kg__store_prepare(kg__store *s, const kg__event *ev, kg_text *msg);
/* Queue an accepted event (under the hub lock, after kg__store_room and
 * the live view's kg__agg_add): *sev passes to the store and becomes NULL. */
void kg__store_put(kg__store *s, kg__sev **sev);
/* Free a prepared event that was not put (refused, a duplicate).  NULL is
 * a no-op. */
void kg__store_discard(kg__sev *sev);

/* Called first by the history's background threads (queries, SQLite
 * checkpoints): a lower CPU priority (nice KG__STORE_NICE), so that on a
 * busy machine the event loop feeding browsers runs first. */
void kg__store_background_thread(void);


typedef struct kg__store_stats {
    const char *engine;           /* static */
    const char *state;            /* "ok", "failing", "unavailable", "closed" (static) */
    char error[KG_ERROR_MESSAGE_MAX];   /* the last failure, "" when none */
    uint64_t queued;              /* events waiting for the writer now */
    uint64_t written, duplicates; /* events stored / already stored */
    uint64_t refused;             /* admissions refused (backpressure) */
    uint64_t dropped;             /* accepted while failing but not stored */
    uint64_t failures, commits;
    uint64_t retained_runs, retained_events;   /* deleted by retention */
    uint64_t db_bytes;
    double last_commit_ms;        /* duration of the last commit (ms) */
    double writer_cpu_s;          /* CPU time the writer thread has used */
    double oldest_pending_s;      /* age of the oldest event not committed */
} kg__store_stats;
void kg__store_stats_get(kg__store *s, kg__store_stats *out);
/* Seconds without events after which a running run shows as "stale". */
double kg__store_stale_after(const kg__store *s);
/* "history": {...} in /api/metrics (`full`: every counter) and /healthz
 * (state and error only: it needs no token).  NULL store: {"state":"off"}. */
json_t *kg__store_health_json(kg__store *s, bool full);
/* Wait until every event queued so far is written (or failed), at most
 * `timeout` s.  0, KG_ETIMEOUT.  For tests and benchmarks. */
int kg__store_sync(kg__store *s, double timeout);

/* ---- queries ----------------------------------------------------------------------------------- */

typedef struct kg__squery kg__squery;
/* Runs a query on the query thread: fills status, content_type and body. */
typedef void (*kg__squery_fn)(kg__squery *q, const kg__store_ops *ops, void *conn);

/* A query for the query thread, answered later on the service thread (as
 * kg__fetch is for Redis).  `owner`, `wsi` and `cancelled` belong to the
 * service thread; the result fields are written by the query thread before
 * it hands the query back. */
struct kg__squery {
    kg_link link;
    kg__squery_fn run;
    void *owner, *wsi;
    bool cancelled;
    /* Request (api_runs.c). */
    int route;
    char id[KG__ID_MAX + 1], node[2 * KG__ID_MAX + 2];
    kg__runs_query rq;
    int64_t since_ms, until_ms, after_seq, after_id;
    size_t limit, buckets;
    bool errors_only;
    double stale_after;
    /* Result. */
    int status;
    const char *content_type;     /* static */
    char disposition[KG__ID_MAX + 64];   /* Content-Disposition, "" when none */
    kg_buf body;
};

kg__squery *kg__squery_new(void);
void kg__squery_free(kg__squery *q);
/* Queue a query (ownership passes to the store until it comes back from
 * kg__store_query_done).  KG_EFULL when too many are pending, KG_EINVAL when
 * there is no store: the caller keeps `q` then. */
int kg__store_query_submit(kg__store *s, kg__squery *q);
/* A completed query (ownership back to the caller), or NULL. */
kg__squery *kg__store_query_done(kg__store *s);
/* The client went away (service thread): freed when it comes back. */
void kg__store_query_cancel(kg__store *s, kg__squery *q);
/* Run a query now on this thread, with a connection of the store's own
 * (tests, benchmarks). */
void kg__store_query_run_sync(kg__store *s, kg__squery *q);

#endif
