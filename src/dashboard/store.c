/* dashboard/store.c - run history, the engine-independent part (see store.h).
 *
 * Three parts:
 *   the queue   producers (the hub's callers, under the hub lock) append
 *               kg__sev records; admission refuses when the queue is full or
 *               its oldest uncommitted event has waited the commit interval,
 *               so backpressure, not memory, absorbs a slow disk;
 *   the writer  one thread and one connection: takes up to
 *               KG__STORE_BATCH_MAX events, sorts them by event_id (the
 *               lock order two PostgreSQL writers share), makes sure their
 *               runs exist, inserts them, computes the summary deltas of the
 *               ones that were new and applies them, all in one transaction.
 *               A failed batch is kept and retried with backoff; between
 *               batches it runs bounded retention steps;
 *   queries     one thread and one read connection; api_runs.c says what
 *               a query does, this only carries it there and back.
 *
 * Lock order: hub lock, then the queue lock (kg__store_put runs under the
 * hub lock).  The writer never takes the hub lock. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kaygraph/monitor.h"
#include "store.h"
#include "util/clock.h"
#include "util/log.h"

enum { KG__SS_UNAVAILABLE, KG__SS_OK, KG__SS_FAILING, KG__SS_CLOSED };
static const char *const kg__state_names[] = {"unavailable", "ok", "failing", "closed"};

#define KG__ERROR_TEXT_MAX 1000      /* bytes of an error message kept per event */
#define KG__RETAIN_EVERY 5.0          /* s between retention checks with nothing to do */
#define KG__RETAIN_BUSY 1.0           /* s between steps while there is more to delete */
#define KG__RETRY_FIRST 0.25          /* s before the first retry of a failed batch */
#define KG__RETRY_MAX 5.0
#define KG__CLOSE_GRACE 5.0           /* s close() keeps retrying a failing store */

struct kg__store {
    void (*wake)(void *ud);      /* tells the service thread answers are ready */
    void *wake_ud;
    const kg__store_ops *ops;
    char *spec;
    char where[160];              /* the spec without a password, for messages */
    kg_dashboard_log_cb log;
    void *log_ud;
    double retain_days;
    uint64_t retain_bytes;
    double stale_after;

    /* The queue (q_lock). */
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond, q_idle;
    kg__sev **ring;
    size_t cap, head, count;      /* entries [head, head + count) mod cap */
    size_t bytes;
    double inflight_oldest;       /* accept time of the oldest event in the writer's hands, or 0 */
    uint64_t put_total, done_total;   /* events queued / written or given up, ever */
    bool writer_waiting, stop;
    bool writer_lingering;        /* wake the writer once enough events wait */
    atomic_int state;

    pthread_t writer;
    bool writer_started;

    /* Counters and the last error (stats_lock for the text). */
    pthread_mutex_t stats_lock;
    char error[KG_ERROR_MESSAGE_MAX];
    atomic_uint_fast64_t written, duplicates, refused, dropped, failures, commits;
    atomic_uint_fast64_t retained_runs, retained_events, db_bytes;
    _Atomic double last_commit_ms;
    _Atomic double writer_cpu_s;   /* CPU time of the writer thread so far */

    /* Queries (qq_lock). */
    pthread_mutex_t qq_lock;
    pthread_cond_t qq_cond;
    kg_link pending, done;
    unsigned outstanding;
    bool qq_stop;
    pthread_t querier;
    bool querier_started;
    void *qconn;                  /* query thread only */
};

/* ---- small helpers ------------------------------------------------------------------- */

#define kg__st_log(s, lvl, ...) kg_log_to((s)->log, (s)->log_ud, (lvl), __VA_ARGS__)

static const char *kg__jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && *v ? v : NULL;
}

static struct timespec kg__deadline(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    return ts;
}

const kg__store_ops *kg__store_engine(const char *spec, kg_error_t *err)
{
    if (strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0) {
#ifdef KG_HAVE_LIBPQ
        return &kg__store_pg_ops;
#else
        kg_error_set(err, KG_EUNSUPPORTED, "ArgumentError",
                     "this build has no PostgreSQL support (libpq was not found)");
        return NULL;
#endif
    }
    return &kg__store_sqlite_ops;
}

/* "postgres://user:secret@host/db" -> "postgres://user@host/db" for logs. */
static void kg__spec_public(const char *spec, char *out, size_t outlen)
{
    const char *scheme = strstr(spec, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        snprintf(out, outlen, "%.*s%s", (int)(colon - spec), spec, at);
    else
        snprintf(out, outlen, "%s", spec);
}

void kg__run_row_clear(kg__run_row *r)
{
    free(r->run_id);
    free(r->parent_id);
    free(r->graph);
    free(r->graph_type);
    free(r->final_action);
    free(r->error);
    free(r->host);
    free(r->topology);
    memset(r, 0, sizeof *r);
}

void kg__exec_row_clear(kg__exec_row *x)
{
    free(x->run_id);
    free(x->corr);
    free(x->node_id);
    free(x->node);
    free(x->node_type);
    free(x->action);
    free(x->error);
    free(x->error_type);
    free(x->phase);
    memset(x, 0, sizeof *x);
}

/* ---- health ------------------------------------------------------------------------------ */

static void kg__set_state(kg__store *s, int state, const char *error)
{
    int old = atomic_exchange(&s->state, state);
    pthread_mutex_lock(&s->stats_lock);
    bool same_error = error && strcmp(s->error, error) == 0;
    if (error)
        snprintf(s->error, sizeof s->error, "%s", error);
    pthread_mutex_unlock(&s->stats_lock);
    /* One line per change, not one per retry. */
    if (state == KG__SS_OK && old != KG__SS_OK && old != KG__SS_CLOSED) {
        kg__st_log(s, KG_DASH_LOG_INFO, "history: %s %s (%s)",
                   old == KG__SS_UNAVAILABLE ? "opened" : "recovered; writing again to",
                   s->where, s->ops->name);
    } else if (state != KG__SS_OK && (old != state || !same_error) && error) {
        kg__st_log(s, KG_DASH_LOG_ERROR, "history: %s %s: %s; the live view goes on, events "
                   "are kept in memory (up to the queue) and retried",
                   state == KG__SS_UNAVAILABLE ? "cannot open" : "cannot write to", s->where,
                   error);
    }
}

void kg__store_stats_get(kg__store *s, kg__store_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s) {
        out->engine = "none";
        out->state = "off";
        return;
    }
    out->engine = s->ops->name;
    int st = atomic_load(&s->state);
    out->state = kg__state_names[st];
    pthread_mutex_lock(&s->stats_lock);
    snprintf(out->error, sizeof out->error, "%s", s->error);
    pthread_mutex_unlock(&s->stats_lock);
    pthread_mutex_lock(&s->q_lock);
    out->queued = s->count;
    double oldest = s->inflight_oldest;
    if (s->count && (!oldest || s->ring[s->head]->accepted < oldest))
        oldest = s->ring[s->head]->accepted;
    pthread_mutex_unlock(&s->q_lock);
    out->oldest_pending_s = oldest ? kg_clock_mono() - oldest : 0;
    out->written = atomic_load(&s->written);
    out->duplicates = atomic_load(&s->duplicates);
    out->refused = atomic_load(&s->refused);
    out->dropped = atomic_load(&s->dropped);
    out->failures = atomic_load(&s->failures);
    out->commits = atomic_load(&s->commits);
    out->retained_runs = atomic_load(&s->retained_runs);
    out->retained_events = atomic_load(&s->retained_events);
    out->db_bytes = atomic_load(&s->db_bytes);
    out->last_commit_ms = atomic_load(&s->last_commit_ms);
    out->writer_cpu_s = atomic_load(&s->writer_cpu_s);
}

double kg__store_stale_after(const kg__store *s)
{
    return s->stale_after;
}

json_t *kg__store_health_json(kg__store *s, bool full)
{
    kg__store_stats st;
    kg__store_stats_get(s, &st);
    if (!s)
        return json_pack("{s:s}", "state", "off");
    if (!full)
        return json_pack("{s:s,s:s?}", "state", st.state, "error", st.error[0] ? st.error : NULL);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f}",
                          "state", st.state, "engine", st.engine, "db", s->where, "queued",
                          (json_int_t)st.queued, "written", (json_int_t)st.written,
                          "duplicates", (json_int_t)st.duplicates, "refused",
                          (json_int_t)st.refused, "dropped", (json_int_t)st.dropped, "failures",
                          (json_int_t)st.failures, "commits", (json_int_t)st.commits,
                          "retained_runs", (json_int_t)st.retained_runs, "retained_events",
                          (json_int_t)st.retained_events, "db_bytes", (json_int_t)st.db_bytes,
                          "last_commit_ms", st.last_commit_ms, "oldest_pending_s",
                          st.oldest_pending_s, "commit_interval_s", KG__STORE_COMMIT_INTERVAL,
                          "admit_age_s", KG__STORE_ADMIT_AGE,
                          "writer_cpu_s", st.writer_cpu_s);
    if (o)
        json_object_set_new(o, "error", st.error[0] ? json_string(st.error) : json_null());
    return o;
}

/* ---- the queue --------------------------------------------------------------------------- */

/* Oldest accept time among events not committed (q_lock held), 0 if none. */
static double kg__oldest_locked(const kg__store *s)
{
    double oldest = s->inflight_oldest;
    if (s->count && (!oldest || s->ring[s->head]->accepted < oldest))
        oldest = s->ring[s->head]->accepted;
    return oldest;
}

bool kg__store_room(kg__store *s, size_t bytes)
{
    if (!s)
        return true;
    int st = atomic_load(&s->state);
    if (st == KG__SS_FAILING || st == KG__SS_UNAVAILABLE)
        return true;   /* the live view goes on; kg__store_put counts what does not fit */
    pthread_mutex_lock(&s->q_lock);
    double oldest = kg__oldest_locked(s);
    bool full = s->count >= s->cap || s->bytes + bytes > KG__STORE_QUEUE_BYTES ||
                (oldest && kg_clock_mono() - oldest > KG__STORE_ADMIT_AGE);
    pthread_mutex_unlock(&s->q_lock);
    if (full)
        atomic_fetch_add(&s->refused, 1);
    return !full;
}

/* Bytes of `s` to copy: at most `max`, cut back to a UTF-8 boundary. */
static size_t kg__cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static const char *kg__pool_put(char **p, const char *s, size_t max)
{
    if (!s)
        return NULL;
    size_t n = kg__cut(s, max);
    char *d = *p;
    memcpy(d, s, n);
    d[n] = '\0';
    *p += n + 1;
    return d;
}

/* The numbers of an event: times, item, status, duration, topology. */
static void kg__sev_values(kg__sev *e, const kg__event *ev)
{
    const json_t *d = ev->data;
    e->ts_ms = ev->ts_ms >= 0 ? ev->ts_ms : (int64_t)(kg_clock_real() * 1000);
    e->seq = ev->has_seq && ev->seq <= INT64_MAX ? (int64_t)ev->seq : -1;
    json_t *pid = json_object_get(json_object_get(ev->root, "source"), "pid");
    e->pid = json_is_integer(pid) ? json_integer_value(pid) : -1;
    e->type = ev->type;
    e->name = ev->name;
    json_t *item = json_object_get(d, "item");
    e->item = json_is_integer(item) && json_integer_value(item) >= 0 &&
                      json_integer_value(item) < INT32_MAX
                  ? (int)json_integer_value(item)
                  : -1;
    e->status = KG__ST_NONE;
    e->duration = NAN;
    json_t *dur = NULL;
    if (ev->name == KG_EV_WORKFLOW_COMPLETED) {
        const char *st = kg__jstr(d, "status");
        e->status = st && strcmp(st, "success") == 0 ? KG__ST_SUCCESS : KG__ST_FAILED;
        dur = json_object_get(d, "duration");
    } else if (ev->name == KG_EV_NODE_COMPLETED || ev->name == KG_EV_NODE_FAILED) {
        dur = json_object_get(d, "total_execution_time");
    }
    if (json_is_number(dur) && isfinite(json_number_value(dur)) && json_number_value(dur) >= 0)
        e->duration = json_number_value(dur);
    /* Once per run: the graph as text, so the writer never parses events. */
    if (ev->name == KG_EV_WORKFLOW_STARTED && json_is_object(json_object_get(d, "graph")))
        e->topology = json_dumps(json_object_get(d, "graph"), JSON_COMPACT);
}

/* The history's copy of an accepted event: its strings in one allocation
 * (runs under the hub lock: a lookup per field, one malloc). */
static kg__sev *kg__sev_new(const kg__event *ev, kg_text *msg)
{
    const json_t *d = ev->data, *src = json_object_get(ev->root, "source");
    bool error_fields = ev->type == KG_TYPE_ERROR || ev->name == KG_EV_WORKFLOW_COMPLETED;
    enum { N = 12, ERROR_AT = 8 };
    const char *strs[N] = {
        ev->event_id,
        *ev->workflow_id ? ev->workflow_id : NULL,
        *ev->correlation_id ? ev->correlation_id : NULL,
        *ev->node_id ? ev->node_id : NULL,
        *ev->node_type ? ev->node_type : NULL,
        kg__jstr(ev->root, "node_path"),
        ev->name == KG_EV_WORKFLOW_STARTED ? kg__jstr(d, "parent_workflow_id") : NULL,
        ev->name == KG_EV_WORKFLOW_COMPLETED ? kg__jstr(d, "final_action")
        : ev->name == KG_EV_NODE_COMPLETED   ? kg__jstr(d, "next_action")
                                             : NULL,
        error_fields ? kg__jstr(d, "error") : NULL,
        error_fields ? kg__jstr(d, "error_type") : NULL,
        error_fields ? kg__jstr(d, "phase") : NULL,
        kg__jstr(src, "host"),
    };
    size_t need = 0;
    for (int i = 0; i < N; i++)
        if (strs[i])
            need += kg__cut(strs[i], i == ERROR_AT ? KG__ERROR_TEXT_MAX : 2 * KG__ID_MAX) + 1;
    kg__sev *e = calloc(1, sizeof *e + need);
    if (!e)
        return NULL;
    char *p = e->pool;
    const char **dst[N] = {&e->event_id, &e->run_id,     &e->corr,      &e->node_id,
                           &e->node_type, &e->node_path, &e->parent_id, &e->action,
                           &e->error,    &e->error_type, &e->phase,     &e->host};
    for (int i = 0; i < N; i++)
        *dst[i] = kg__pool_put(&p, strs[i], i == ERROR_AT ? KG__ERROR_TEXT_MAX : 2 * KG__ID_MAX);
    e->msg = kg_text_ref(msg);
    kg__sev_values(e, ev);
    return e;
}

static void kg__sev_free(kg__sev *e)
{
    if (!e)
        return;
    kg_text_unref(e->msg);
    free(e->topology);
    free(e);
}

kg__sev *kg__store_prepare(kg__store *s, const kg__event *ev, kg_text *msg)
{
    return s ? kg__sev_new(ev, msg) : NULL;
}

void kg__store_discard(kg__sev *sev)
{
    kg__sev_free(sev);
}

void kg__store_put(kg__store *s, kg__sev **sev)
{
    if (!s)
        return;
    kg__sev *e = sev ? *sev : NULL;
    if (sev)
        *sev = NULL;
    pthread_mutex_lock(&s->q_lock);
    /* Only a failing store gets here with a full queue (see kg__store_room). */
    if (!e || s->count >= s->cap || s->bytes + e->msg->len > KG__STORE_QUEUE_BYTES) {
        pthread_mutex_unlock(&s->q_lock);
        atomic_fetch_add(&s->dropped, 1);
        kg__sev_free(e);
        return;
    }
    /* Its waiting starts now, when it is acknowledged. */
    e->accepted = kg_clock_mono();
    s->ring[(s->head + s->count) % s->cap] = e;
    s->count++;
    s->bytes += e->msg->len;
    s->put_total++;
    bool wake = s->writer_waiting ||
                (s->writer_lingering && s->count >= KG__STORE_BATCH_ENOUGH);
    if (wake)
        s->writer_waiting = s->writer_lingering = false;
    pthread_mutex_unlock(&s->q_lock);
    if (wake)
        pthread_cond_signal(&s->q_cond);
}


/* ---- summaries ---------------------------------------------------------------------------- */

static int kg__sev_id_cmp(const void *x, const void *y)
{
    return strcmp((*(kg__sev *const *)x)->event_id, (*(kg__sev *const *)y)->event_id);
}

static int kg__srun_cmp(const void *x, const void *y)
{
    return strcmp(((const kg__srun *)x)->run_id, ((const kg__srun *)y)->run_id);
}

static int kg__sexec_cmp(const void *x, const void *y)
{
    const kg__sexec *a = x, *b = y;
    if (a->rid != b->rid)
        return a->rid < b->rid ? -1 : 1;
    int c = strcmp(a->corr, b->corr);
    return c ? c : (a->item > b->item) - (a->item < b->item);
}

static void kg__min_ms(int64_t *dst, int64_t v)
{
    if (v >= 0 && (*dst < 0 || v < *dst))
        *dst = v;
}

static void kg__max_ms(int64_t *dst, int64_t v)
{
    if (v >= 0 && v > *dst)
        *dst = v;
}

static void kg__srun_init(kg__srun *r, const char *run_id)
{
    memset(r, 0, sizeof *r);
    r->run_id = run_id;
    r->min_ms = r->max_ms = r->ended_ms = -1;
    r->status = KG__ST_NONE;
    r->duration = NAN;
    r->pid = -1;
}

static void kg__srun_add(kg__srun *r, const kg__sev *e)
{
    kg__min_ms(&r->min_ms, e->ts_ms);
    kg__max_ms(&r->max_ms, e->ts_ms);
    r->events++;
    r->bytes += (int64_t)e->msg->len + KG__EVENT_OVERHEAD;
    if (e->type == KG_TYPE_ERROR)
        r->errors++;
    if (r->status < KG__ST_RUNNING)
        r->status = KG__ST_RUNNING;
    if (!r->host && e->host) {
        r->host = e->host;
        r->pid = e->pid;
    }
    if (e->name == KG_EV_WORKFLOW_STARTED) {
        if (e->node_id)
            r->graph = e->node_id;
        if (e->node_type)
            r->graph_type = e->node_type;
        if (e->parent_id)
            r->parent_id = e->parent_id;
        if (e->topology)
            r->topology = e->topology;
    } else if (e->name == KG_EV_WORKFLOW_COMPLETED) {
        if (e->status > r->status)
            r->status = e->status;
        kg__max_ms(&r->ended_ms, e->ts_ms);
        if (!isnan(e->duration))
            r->duration = e->duration;
        if (e->action)
            r->final_action = e->action;
        if (e->error)
            r->error = e->error;
    }
}

static void kg__sexec_add(kg__sexec *x, const kg__sev *e)
{
    kg__min_ms(&x->min_ms, e->ts_ms);
    x->events++;
    if (x->status < KG__XS_RUNNING)
        x->status = KG__XS_RUNNING;
    if (!x->node_type && e->node_type)
        x->node_type = e->node_type;
    if (e->type == KG_TYPE_ERROR) {
        x->errors++;
        /* The error shown is the last one (by time, then text: a merge that
         * does not depend on arrival order). */
        if (e->error && (e->ts_ms > x->err_ms ||
                         (e->ts_ms == x->err_ms && x->error && strcmp(e->error, x->error) > 0))) {
            x->err_ms = e->ts_ms;
            x->error = e->error;
            x->error_type = e->error_type;
            x->phase = e->phase;
        }
    }
    switch (e->name) {
    case KG_EV_RETRY_ATTEMPTED:
        x->retries++;
        break;
    case KG_EV_NODE_COMPLETED:
    case KG_EV_NODE_FAILED:
        if (e->name == KG_EV_NODE_COMPLETED) {
            if (x->status < KG__XS_COMPLETED)
                x->status = KG__XS_COMPLETED;
            if (e->action)
                x->action = e->action;
        } else {
            x->status = KG__XS_FAILED;
        }
        kg__max_ms(&x->end_ms, e->ts_ms);
        if (!isnan(e->duration))
            x->duration = e->duration;
        break;
    default:
        break;
    }
}

/* The batch's pieces, built by kg__batch_plan and freed by kg__batch_free. */
typedef struct kg__batch {
    kg__sev **ev;
    size_t n;
    kg__srun *runs;
    size_t nruns;
    kg__sexec *execs;
    size_t nexecs;
    char **keys;                  /* exec keys' graph/node strings (owned) */
    size_t nkeys;
} kg__batch;

static void kg__batch_free(kg__batch *b)
{
    for (size_t i = 0; i < b->nruns; i++)
        free(b->runs[i].db_graph);
    free(b->runs);
    free(b->execs);
    for (size_t i = 0; i < b->nkeys; i++)
        free(b->keys[i]);
    free(b->keys);
    memset(b, 0, sizeof *b);
}

static kg__srun *kg__run_find(kg__batch *b, const char *run_id)
{
    kg__srun key = {.run_id = run_id};
    return bsearch(&key, b->runs, b->nruns, sizeof key, kg__srun_cmp);
}

/* Sort by event_id (dropping duplicates within the batch), and collect the
 * runs.  0 or KG_ENOMEM. */
static int kg__batch_plan(kg__batch *b)
{
    qsort(b->ev, b->n, sizeof *b->ev, kg__sev_id_cmp);
    b->runs = calloc(b->n ? b->n : 1, sizeof *b->runs);
    b->execs = calloc(b->n ? b->n : 1, sizeof *b->execs);
    b->keys = calloc(2 * (b->n ? b->n : 1), sizeof *b->keys);
    if (!b->runs || !b->execs || !b->keys)
        return KG_ENOMEM;
    kg_map seen = {0};
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        kg__sev *e = b->ev[i];
        e->rid = 0;
        e->inserted = false;
        if (!e->run_id || kg_map_get(&seen, e->run_id))
            continue;
        kg__srun_init(&b->runs[b->nruns++], e->run_id);
        rc = kg_map_put(&seen, e->run_id, e);
    }
    kg_map_free(&seen);
    qsort(b->runs, b->nruns, sizeof *b->runs, kg__srun_cmp);
    return rc;
}

/* Graph and node key of an execution: from node_path ("graph/a/b": graph
 * "graph", node "a/b") when the producer sends one, else the run's graph
 * and the node id. */
static int kg__exec_names(kg__batch *b, const kg__sev *e, const kg__srun *r, kg__sexec *x)
{
    x->node_id = e->node_id;
    const char *slash = e->node_path ? strchr(e->node_path, '/') : NULL;
    if (slash && slash[1]) {
        char *graph = strndup(e->node_path, (size_t)(slash - e->node_path));
        if (!graph)
            return KG_ENOMEM;
        b->keys[b->nkeys++] = graph;
        x->graph = graph;
        x->node = slash + 1;
    } else {
        x->graph = r->graph ? r->graph : r->db_graph;
        x->node = e->node_id;
    }
    return 0;
}

/* Deltas from the events the engine reported as new. */
static int kg__batch_deltas(kg__batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        kg__sev *e = b->ev[i];
        if (!e->inserted || !e->run_id)
            continue;
        kg__srun *r = kg__run_find(b, e->run_id);
        if (r)
            kg__srun_add(r, e);
    }
    kg_map execs = {0};
    int rc = 0;
    char key[64 + 2 * KG__ID_MAX];
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        kg__sev *e = b->ev[i];
        if (!e->inserted || !e->run_id || !e->corr || !e->node_id ||
            e->name == KG_EV_WORKFLOW_STARTED || e->name == KG_EV_WORKFLOW_COMPLETED)
            continue;
        kg__srun *r = kg__run_find(b, e->run_id);
        snprintf(key, sizeof key, "%lld\x1f%s\x1f%d", (long long)e->rid, e->corr, e->item);
        uintptr_t at = (uintptr_t)kg_map_get(&execs, key);
        kg__sexec *x;
        if (at) {
            x = &b->execs[at - 1];
        } else {
            x = &b->execs[b->nexecs];
            memset(x, 0, sizeof *x);
            x->rid = e->rid;
            x->corr = e->corr;
            x->item = e->item;
            x->min_ms = x->end_ms = x->err_ms = -1;
            x->status = -1;
            x->duration = NAN;
            if ((rc = kg__exec_names(b, e, r, x)) != 0 ||
                (rc = kg_map_put(&execs, key, (void *)(uintptr_t)(b->nexecs + 1))) != 0)
                break;
            b->nexecs++;
        }
        kg__sexec_add(x, e);
    }
    kg_map_free(&execs);
    qsort(b->execs, b->nexecs, sizeof *b->execs, kg__sexec_cmp);
    return rc;
}

/* One transaction for the batch.  0 or the engine's error. */
static int kg__batch_write(kg__store *s, void *conn, kg__batch *b, kg_error_t *err)
{
    const kg__store_ops *ops = s->ops;
    int rc = kg__batch_plan(b);
    if (rc)
        return kg_error_set(err, rc, NULL, "out of memory");
    if ((rc = ops->begin(conn, err)) != 0)
        return rc;
    if ((rc = ops->ensure_runs(conn, b->runs, b->nruns, err)) != 0)
        goto fail;
    for (size_t i = 0; i < b->n; i++) {
        kg__sev *e = b->ev[i];
        kg__srun *r = e->run_id ? kg__run_find(b, e->run_id) : NULL;
        e->rid = r ? r->rid : 0;
    }
    if ((rc = ops->insert_events(conn, b->ev, b->n, err)) != 0)
        goto fail;
    if ((rc = kg__batch_deltas(b)) != 0) {
        kg_error_set(err, rc, NULL, "out of memory");
        goto fail;
    }
    if ((rc = ops->apply_runs(conn, b->runs, b->nruns, err)) != 0 ||
        (rc = ops->apply_execs(conn, b->execs, b->nexecs, err)) != 0)
        goto fail;
    double t0 = kg_clock_mono();
    if ((rc = ops->commit(conn, err)) != 0)
        goto fail;
    atomic_store(&s->last_commit_ms, (kg_clock_mono() - t0) * 1000);
    return 0;
fail:
    ops->rollback(conn);
    return rc;
}

/* ---- the writer ------------------------------------------------------------------------------ */

typedef struct kg__writer {
    kg__store *s;
    void *conn;
    kg__sev **batch;              /* the batch in hand (kept across failed attempts) */
    size_t n;
    double retry_at, backoff;
    double next_retain;
    double next_open;
} kg__writer;

/* Take up to KG__STORE_BATCH_MAX queued events, waiting at most `wait` s
 * for the first.  Returns false when stopping with nothing left.
 *
 * Group commit: a commit writes every page the transaction touched (the
 * tail of each index, the runs' rows), whether it carries three events or
 * three thousand, so a few events are given KG__STORE_LINGER after the
 * first of them was accepted for others to join.  That is well inside the
 * commit interval, and at high rates batches are large anyway. */
static bool kg__writer_take(kg__writer *w, double wait)
{
    kg__store *s = w->s;
    pthread_mutex_lock(&s->q_lock);
    if (!s->count && !s->stop && wait > 0) {
        struct timespec ts = kg__deadline(wait);
        s->writer_waiting = true;
        pthread_cond_timedwait(&s->q_cond, &s->q_lock, &ts);
        s->writer_waiting = false;
    }
    while (s->count && s->count < KG__STORE_BATCH_ENOUGH && !s->stop) {
        double left = s->ring[s->head]->accepted + KG__STORE_LINGER - kg_clock_mono();
        if (left <= 0)
            break;
        struct timespec ts = kg__deadline(left);
        s->writer_lingering = true;
        pthread_cond_timedwait(&s->q_cond, &s->q_lock, &ts);
        s->writer_lingering = false;
    }
    while (s->count && w->n < KG__STORE_BATCH_MAX) {
        kg__sev *e = s->ring[s->head];
        s->ring[s->head] = NULL;
        s->head = (s->head + 1) % s->cap;
        s->count--;
        s->bytes -= e->msg->len;
        if (!s->inflight_oldest || e->accepted < s->inflight_oldest)
            s->inflight_oldest = e->accepted;
        w->batch[w->n++] = e;
    }
    bool more = !s->stop || w->n || s->count;
    pthread_mutex_unlock(&s->q_lock);
    return more;
}

/* The batch is done with (written, or given up): free it. */
static void kg__writer_release(kg__writer *w, bool written)
{
    kg__store *s = w->s;
    size_t inserted = 0;
    for (size_t i = 0; i < w->n; i++) {
        inserted += w->batch[i]->inserted;
        kg__sev_free(w->batch[i]);
    }
    if (written) {
        atomic_fetch_add(&s->written, inserted);
        atomic_fetch_add(&s->duplicates, w->n - inserted);
        atomic_fetch_add(&s->commits, 1);
    } else {
        atomic_fetch_add(&s->dropped, w->n);
    }
    pthread_mutex_lock(&s->q_lock);
    s->done_total += w->n;
    s->inflight_oldest = 0;
    pthread_mutex_unlock(&s->q_lock);
    pthread_cond_broadcast(&s->q_idle);
    w->n = 0;
}

static bool kg__writer_open(kg__writer *w)
{
    kg__store *s = w->s;
    if (w->conn)
        return true;
    double now = kg_clock_mono();
    if (now < w->next_open)
        return false;
    kg_error_t err;
    kg_error_clear(&err);
    if (s->ops->open(s->spec, true, &w->conn, &err) != 0) {
        w->conn = NULL;
        w->next_open = now + 2.0;
        atomic_fetch_add(&s->failures, 1);
        kg__set_state(s, KG__SS_UNAVAILABLE, err.message);
        return false;
    }
    uint64_t bytes = 0;
    if (s->ops->size(w->conn, &bytes, &err) == 0)
        atomic_store(&s->db_bytes, bytes);
    kg__set_state(s, KG__SS_OK, NULL);
    return true;
}

static double kg__thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kg__writer_flush(kg__writer *w)
{
    kg__store *s = w->s;
    kg_error_t err;
    kg_error_clear(&err);
    int rc = 0;
    /* A deadlock with another writer (PostgreSQL) or a lock held a moment
     * (SQLite's busy timeout) is retried at once a few times before it
     * counts as a failure. */
    for (int attempt = 0;; attempt++) {
        kg__batch b = {.ev = w->batch, .n = w->n};
        rc = kg__batch_write(s, w->conn, &b, &err);
        kg__batch_free(&b);
        if (rc != KG_EBUSY || attempt == 2 || !s->ops->alive(w->conn))
            break;
        kg_error_clear(&err);
    }
    atomic_store(&s->writer_cpu_s, kg__thread_cpu());
    if (rc == 0) {
        kg__writer_release(w, true);
        w->backoff = 0;
        if (atomic_load(&s->state) != KG__SS_OK)
            kg__set_state(s, KG__SS_OK, NULL);
        return;
    }
    atomic_fetch_add(&s->failures, 1);
    kg__set_state(s, KG__SS_FAILING, err.message);
    if (!s->ops->alive(w->conn)) {
        s->ops->close(w->conn);
        w->conn = NULL;
    }
    w->backoff = w->backoff ? fmin(w->backoff * 2, KG__RETRY_MAX) : KG__RETRY_FIRST;
    w->retry_at = kg_clock_mono() + w->backoff;
}

static void kg__writer_retain(kg__writer *w)
{
    kg__store *s = w->s;
    double now = kg_clock_mono();
    if (now < w->next_retain || !w->conn)
        return;
    kg__retain r = {
        .before_ms = s->retain_days > 0
                         ? (int64_t)((kg_clock_real() - s->retain_days * 86400.0) * 1000)
                         : -1,
        .max_bytes = s->retain_bytes,
        .max_runs = 100,
    };
    kg__retain_result res = {0};
    kg_error_t err;
    kg_error_clear(&err);
    int rc = s->ops->retain(w->conn, &r, &res, &err);
    w->next_retain = now + (rc == 0 && res.more ? KG__RETAIN_BUSY : KG__RETAIN_EVERY);
    if (rc != 0) {
        atomic_fetch_add(&s->failures, 1);
        kg__st_log(s, KG_DASH_LOG_WARN, "history: retention step failed: %s", err.message);
        if (!s->ops->alive(w->conn)) {
            s->ops->close(w->conn);
            w->conn = NULL;
        }
        return;
    }
    atomic_store(&s->db_bytes, res.bytes);
    if (res.runs || res.events) {
        atomic_fetch_add(&s->retained_runs, res.runs);
        atomic_fetch_add(&s->retained_events, res.events);
    }
}

/* Stopping and nothing can be written: count what is left as not stored. */
static void kg__writer_give_up(kg__writer *w)
{
    do {
        if (w->n)
            kg__writer_release(w, false);
    } while (kg__writer_take(w, 0) && w->n);
}

void kg__store_background_thread(void)
{
    /* Linux: a thread's nice value is per thread (setpriority on its tid).
     * Lowering our own priority needs no privilege; failing is harmless. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), KG__STORE_NICE);
}

static void *kg__writer_main(void *arg)
{
    kg__store *s = arg;
    /* The writer keeps the normal priority: niced, it lost the CPU to the
     * producers it has to keep up with (27,000 instead of 41-49,000 events/s
     * at full rate on this machine) and pushed back on them. */
    kg__writer w = {.s = s, .conn = NULL};
    w.batch = malloc(KG__STORE_BATCH_MAX * sizeof *w.batch);
    w.next_retain = kg_clock_mono() + 1.0;
    double deadline = 0;
    while (w.batch) {
        pthread_mutex_lock(&s->q_lock);
        bool stopping = s->stop;
        pthread_mutex_unlock(&s->q_lock);
        double now = kg_clock_mono();
        if (stopping && !deadline)
            deadline = now + KG__CLOSE_GRACE;
        kg__writer_open(&w);
        if (!w.conn || (w.n && now < w.retry_at)) {
            /* Unavailable or backing off: events wait in the queue (bounded). */
            if (stopping && now > deadline) {
                kg__writer_give_up(&w);
                break;
            }
            kg_clock_sleep(0.02);
            continue;
        }
        if (!w.n && !kg__writer_take(&w, fmax(0, fmin(KG__RETAIN_BUSY, w.next_retain - now))))
            break;
        if (w.n)
            kg__writer_flush(&w);
        if (!w.n)
            kg__writer_retain(&w);
    }
    if (w.conn)
        s->ops->close(w.conn);
    free(w.batch);
    return NULL;
}

/* ---- queries ------------------------------------------------------------------------------------ */

kg__squery *kg__squery_new(void)
{
    kg__squery *q = calloc(1, sizeof *q);
    if (q) {
        kg_buf_init(&q->body);
        q->status = 500;
    }
    return q;
}

void kg__squery_free(kg__squery *q)
{
    if (!q)
        return;
    kg_buf_free(&q->body);
    free(q);
}

static void kg__query_exec(kg__store *s, void **conn, kg__squery *q)
{
    kg_error_t err;
    kg_error_clear(&err);
    if (!*conn && s->ops->open(s->spec, false, conn, &err) != 0) {
        *conn = NULL;
        q->status = 503;
        q->content_type = "application/json";
        kg_buf_reset(&q->body);
        kg_buf_puts(&q->body, "{\"error\":");
        char msg[KG_ERROR_MESSAGE_MAX + 64];
        snprintf(msg, sizeof msg, "history unavailable: %s", err.message);
        kg_buf_json_cstr(&q->body, msg);
        kg_buf_puts(&q->body, "}");
        return;
    }
    q->run(q, s->ops, *conn);
    /* A dropped connection is reopened for the next query. */
    if (!s->ops->alive(*conn)) {
        s->ops->close(*conn);
        *conn = NULL;
    }
}

static void *kg__querier_main(void *arg)
{
    kg__store *s = arg;
    kg__store_background_thread();
    pthread_mutex_lock(&s->qq_lock);
    for (;;) {
        while (!s->qq_stop && kg_list_empty(&s->pending))
            pthread_cond_wait(&s->qq_cond, &s->qq_lock);
        if (s->qq_stop)
            break;
        kg_link *l = s->pending.next;
        kg_list_remove(l);
        pthread_mutex_unlock(&s->qq_lock);
        kg__query_exec(s, &s->qconn, KG_CONTAINER_OF(l, kg__squery, link));
        pthread_mutex_lock(&s->qq_lock);
        kg_list_push_back(&s->done, l);
        pthread_mutex_unlock(&s->qq_lock);
        s->wake(s->wake_ud);
        pthread_mutex_lock(&s->qq_lock);
    }
    pthread_mutex_unlock(&s->qq_lock);
    if (s->qconn)
        s->ops->close(s->qconn);
    s->qconn = NULL;
    return NULL;
}

int kg__store_query_submit(kg__store *s, kg__squery *q)
{
    if (!s || !s->querier_started)
        return KG_EINVAL;
    pthread_mutex_lock(&s->qq_lock);
    int rc = 0;
    if (s->qq_stop) {
        rc = KG_ECLOSED;
    } else if (s->outstanding >= KG__STORE_QUERIES_MAX) {
        rc = KG_EFULL;
    } else {
        s->outstanding++;
        q->cancelled = false;
        kg_list_push_back(&s->pending, &q->link);
        pthread_cond_signal(&s->qq_cond);
    }
    pthread_mutex_unlock(&s->qq_lock);
    return rc;
}

kg__squery *kg__store_query_done(kg__store *s)
{
    if (!s)
        return NULL;
    kg__squery *q = NULL;
    pthread_mutex_lock(&s->qq_lock);
    if (!kg_list_empty(&s->done)) {
        kg_link *l = s->done.next;
        kg_list_remove(l);
        s->outstanding--;
        q = KG_CONTAINER_OF(l, kg__squery, link);
    }
    pthread_mutex_unlock(&s->qq_lock);
    return q;
}

void kg__store_query_cancel(kg__store *s, kg__squery *q)
{
    /* After kg__store_close every query is freed: nothing to mark. */
    if (s && q)
        q->cancelled = true;
}

void kg__store_query_run_sync(kg__store *s, kg__squery *q)
{
    void *conn = NULL;
    kg__query_exec(s, &conn, q);
    if (conn)
        s->ops->close(conn);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

int kg__store_sync(kg__store *s, double timeout)
{
    if (!s)
        return 0;
    struct timespec ts = kg__deadline(timeout);
    pthread_mutex_lock(&s->q_lock);
    uint64_t target = s->put_total;
    int rc = 0;
    while (s->done_total < target && rc == 0)
        if (pthread_cond_timedwait(&s->q_idle, &s->q_lock, &ts) != 0)
            rc = s->done_total < target ? KG_ETIMEOUT : 0;
    pthread_mutex_unlock(&s->q_lock);
    return rc;
}

static void kg__store_free(kg__store *s)
{
    for (size_t i = 0; s->ring && i < s->count; i++)
        kg__sev_free(s->ring[(s->head + i) % s->cap]);
    kg_link *lists[2] = {&s->pending, &s->done};
    for (int i = 0; i < 2; i++)
        while (!kg_list_empty(lists[i])) {
            kg_link *l = lists[i]->next;
            kg_list_remove(l);
            kg__squery_free(KG_CONTAINER_OF(l, kg__squery, link));
        }
    free(s->ring);
    free(s->spec);
    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->q_cond);
    pthread_cond_destroy(&s->q_idle);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_mutex_destroy(&s->qq_lock);
    pthread_cond_destroy(&s->qq_cond);
    free(s);
}

void kg__store_close(kg__store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->qq_lock);
    s->qq_stop = true;
    pthread_cond_broadcast(&s->qq_cond);
    pthread_mutex_unlock(&s->qq_lock);
    if (s->querier_started)
        pthread_join(s->querier, NULL);
    pthread_mutex_lock(&s->q_lock);
    s->stop = true;
    pthread_mutex_unlock(&s->q_lock);
    pthread_cond_signal(&s->q_cond);
    if (s->writer_started)
        pthread_join(s->writer, NULL);
    kg__store_stats st;
    kg__store_stats_get(s, &st);
    if (st.dropped)
        kg__st_log(s, KG_DASH_LOG_WARN, "history: %llu accepted events were not stored (%s)",
                   (unsigned long long)st.dropped, st.error[0] ? st.error : "store failing");
    atomic_store(&s->state, KG__SS_CLOSED);
    kg__store_free(s);
}

int kg__store_open(void (*wake)(void *ud), void *wake_ud, const kg_dashboard_options *o,
                   kg__store **out, kg_error_t *err)
{
    *out = NULL;
    if (!o->db || strcmp(o->db, "none") == 0)
        return 0;
    if (!*o->db)
        return kg_error_set(err, KG_EINVAL, "ArgumentError",
                            "db must be a path, postgres://... or \"none\"");
    if (o->retain_days < 0 || !isfinite(o->retain_days))
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "retain_days must be >= 0");
    const kg__store_ops *ops = kg__store_engine(o->db, err);
    if (!ops)
        return KG_EUNSUPPORTED;
    kg__store *s = calloc(1, sizeof *s);
    if (!s)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    s->wake = wake;
    s->wake_ud = wake_ud;
    s->ops = ops;
    s->log = o->log;
    s->log_ud = o->log_ud;
    s->retain_days = o->retain_days;
    s->stale_after = o->stale_after > 0 ? o->stale_after : 300;
    s->retain_bytes = (uint64_t)o->retain_mb << 20;
    s->cap = o->history_queue ? o->history_queue : 65536;
    s->spec = strdup(o->db);
    s->ring = calloc(s->cap, sizeof *s->ring);
    kg__spec_public(o->db, s->where, sizeof s->where);
    pthread_mutex_init(&s->q_lock, NULL);
    pthread_cond_init(&s->q_cond, NULL);
    pthread_cond_init(&s->q_idle, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->qq_lock, NULL);
    pthread_cond_init(&s->qq_cond, NULL);
    kg_list_init(&s->pending);
    kg_list_init(&s->done);
    atomic_init(&s->state, KG__SS_UNAVAILABLE);
    if (!s->spec || !s->ring) {
        kg__store_free(s);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    /* Open once here so that a bad path or an unreachable database is
     * reported as the dashboard starts, not at the first event. */
    void *probe = NULL;
    kg_error_t oerr;
    kg_error_clear(&oerr);
    if (ops->open(s->spec, true, &probe, &oerr) != 0) {
        atomic_fetch_add(&s->failures, 1);
        kg__set_state(s, KG__SS_UNAVAILABLE, oerr.message);
    } else {
        ops->close(probe);
        kg__set_state(s, KG__SS_OK, NULL);
    }
    if (pthread_create(&s->writer, NULL, kg__writer_main, s) != 0) {
        kg__store_free(s);
        return kg_error_set(err, KG_ENOMEM, NULL, "cannot start the history writer thread");
    }
    s->writer_started = true;
    if (pthread_create(&s->querier, NULL, kg__querier_main, s) != 0) {
        kg__store_close(s);
        return kg_error_set(err, KG_ENOMEM, NULL, "cannot start the history query thread");
    }
    s->querier_started = true;
    *out = s;
    return 0;
}
