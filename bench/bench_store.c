/* bench_store.c - run-history figures: ingest into SQLite, query latency, size.
 *
 *   bench_store --db PATH [--runs 50000] [--nodes 6] [--producers 2] [--batch 100]
 *               [--queries 200] [--skip-ingest] [--path feed|webhook]
 *
 * 1. Ingest: a dashboard with --db PATH; producer threads generate runs
 *    (workflow_started, per node started/executing/completed, the run's
 *    end: 2 + 3 * nodes events; 20 with 6 nodes) and deliver them in
 *    batches of `batch` events, either as the embedded dashboard's
 *    monitor does (--path feed: the in-process backend's send_batch, one
 *    event text each, the default) or as a webhook sender (--path webhook:
 *    kg_dashboard_ingest of a {"events":[...]} body), retrying a batch the
 *    history refuses (KG_EFULL) as both do.  Rate = events / time until the
 *    last one is committed.  Zero loss: the database holds every event,
 *    nothing dropped.  --db none measures the same pipeline without history.
 *    The writer's CPU time per event gives its capacity on a free core.
 * 2. Queries: a fresh dashboard on the file; each route `queries` times
 *    over loopback HTTP (a new connection per request, as a browser tab
 *    opening a page): p50/p99/max per route.
 * 3. Size: the file after a checkpoint, bytes per million events.
 * Prints one JSON object. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hub.h"
#include "ingest.h"
#include "kaygraph/backend.h"
#include "kaygraph/dashboard.h"
#include "store.h"
#include "store_events.h"
#include "wsclient.h"

kg__hub *kg__server_hub(struct kg_dashboard *d);

#define RUN_ID_FMT "0190a1b2-0000-7000-8000-%012d"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

typedef struct cfg {
    const char *db;
    int runs, nodes, producers, batch, queries;
    bool skip_ingest, webhook;
    int64_t t0;
} cfg;

typedef struct producer {
    const cfg *c;
    kg_dashboard_t *d;
    kg_backend_t *feed;
    int index;
    uint64_t events, refusals;
} producer;

/* Deliver k events; 0 or KG_EFULL (try again) or another error. */
static int deliver(producer *p, char **ev, size_t k)
{
    if (p->c->webhook) {
        char *body = kg_tbatch(ev, 0, k);
        int rc = kg_dashboard_ingest(p->d, body, strlen(body), NULL);
        free(body);
        return rc;
    }
    kg_event_view views[1024];
    for (size_t j = 0; j < k; j++)
        views[j] = (kg_event_view){.json = ev[j], .json_len = strlen(ev[j])};
    kg_batch b = {.events = views, .count = k};
    return kg_backend_send_batch(p->feed, (unsigned)p->index, &b);
}

static void *produce(void *arg)
{
    producer *p = arg;
    const cfg *c = p->c;
    char **pending = NULL;
    size_t npend = 0, cap = 0;
    for (int i = p->index; i < c->runs; i += c->producers) {
        /* Time-ordered ids, as the monitor's (UUIDv7-like): the unique index
         * grows at its end, as it does in production. */
        char id[48];
        snprintf(id, sizeof id, RUN_ID_FMT, i);
        /* One run in 50 fails, one in 10 retries its first node. */
        kg_trun r = {.run_id = id,
                     .graph = i % 4 ? "etl_pipeline" : "nightly_report",
                     .nodes = c->nodes,
                     .start_ms = c->t0 + (int64_t)i * 1700,
                     .fail = i % 50 == 7,
                     .retries = i % 10 == 3};
        size_t n;
        char **ev = kg_trun_events(&r, &n);
        if (npend + n > cap) {
            cap = (npend + n) * 2;
            pending = realloc(pending, cap * sizeof *pending);
        }
        memcpy(pending + npend, ev, n * sizeof *ev);
        npend += n;
        free(ev);
        bool last = i + c->producers >= c->runs;
        while (npend >= (size_t)c->batch || (last && npend)) {
            size_t k = npend < (size_t)c->batch ? npend : (size_t)c->batch;
            int rc;
            /* Refused: as the monitor's dispatcher and a webhook sender, wait
             * and deliver the batch again (accepted events are duplicates). */
            while ((rc = deliver(p, pending, k)) == KG_EFULL) {
                p->refusals++;
                sleep_s(0.002);
            }
            if (rc != 0)
                fprintf(stderr, "ingest failed: %d\n", rc);
            for (size_t j = 0; j < k; j++)
                free(pending[j]);
            memmove(pending, pending + k, (npend - k) * sizeof *pending);
            npend -= k;
            p->events += k;
        }
    }
    free(pending);
    return NULL;
}

static long long sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

static void ingest(const cfg *c)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.db = c->db;
    o.retain_mb = 0;            /* keep everything: the query part needs it */
    o.retain_days = 0;
    o.recent_events = 1000;
    kg_dashboard_t *d;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0) {
        fprintf(stderr, "dashboard: %s\n", err.message);
        exit(1);
    }
    kg_backend_t *feed = kg_dashboard_backend_new(d);
    kg_backend_connect(feed, (unsigned)c->producers);
    producer *p = calloc((size_t)c->producers, sizeof *p);
    pthread_t *t = calloc((size_t)c->producers, sizeof *t);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_s();
    for (int i = 0; i < c->producers; i++) {
        p[i] = (producer){.c = c, .d = d, .feed = feed, .index = i};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    uint64_t events = 0, refusals = 0;
    for (int i = 0; i < c->producers; i++) {
        pthread_join(t[i], NULL);
        events += p[i].events;
        refusals += p[i].refusals;
    }
    double accepted = now_s() - t0;
    kg__store_sync(kg__server_hub(d)->store, 600);
    double committed = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    kg__store_stats st;
    kg__store_stats_get(kg__server_hub(d)->store, &st);
    kg_backend_disconnect(feed);
    kg_backend_free(feed);
    kg_dashboard_free(d);
    if (strcmp(c->db, "none") == 0) {
        printf("  \"ingest\": {\"db\": \"none\", \"path\": \"%s\", \"events\": %llu, "
               "\"producers\": %d, \"batch\": %d, \"seconds\": %.3f, \"events_per_s\": %.0f, "
               "\"process_cpu_s\": %.2f, \"cpu_us_per_event\": %.2f}\n}\n",
               c->webhook ? "webhook" : "feed", (unsigned long long)events, c->producers,
               c->batch, accepted, (double)events / accepted, cpu, cpu * 1e6 / (double)events);
        exit(0);
    }
    long long stored = sql_int(c->db, "SELECT count(*) FROM kg_events");
    long long runs = sql_int(c->db, "SELECT count(*) FROM kg_runs");
    /* Size after a full checkpoint (the WAL folded into the file). */
    sqlite3 *db;
    sqlite3_open(c->db, &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    long long bytes = file_size(c->db);
    printf("  \"ingest\": {\"path\": \"%s\", \"events\": %llu, \"runs\": %lld, "
           "\"producers\": %d, \"batch\": %d, \"accepted_s\": %.3f, \"committed_s\": %.3f, "
           "\"events_per_s\": %.0f, \"stored\": %lld, \"lost\": %lld, \"dropped\": %llu, "
           "\"refusals\": %llu, \"commits\": %llu, \"process_cpu_s\": %.2f, "
           "\"cpu_us_per_event\": %.2f, \"writer_cpu_s\": %.2f, "
           "\"writer_cpu_us_per_event\": %.2f, \"db_bytes\": %lld, "
           "\"bytes_per_million_events\": %.0f},\n",
           c->webhook ? "webhook" : "feed", (unsigned long long)events, runs, c->producers,
           c->batch, accepted, committed, (double)events / committed, stored,
           (long long)events - stored, (unsigned long long)st.dropped,
           (unsigned long long)refusals, (unsigned long long)st.commits, cpu,
           cpu * 1e6 / (double)events, st.writer_cpu_s, st.writer_cpu_s * 1e6 / (double)events,
           bytes, (double)bytes * 1e6 / (double)events);
    fflush(stdout);
}

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* GET `path` `n` times (a path per call from `make`); latency figures. */
static void route(int port, const char *name, int n, void (*make)(int, char *, size_t, void *),
                  void *ud, bool last)
{
    double *lat = calloc((size_t)n, sizeof *lat);
    int fails = 0;
    char path[512];
    /* CPU of the whole process per request (query thread, service thread,
     * this client): what a request costs whatever else runs on the box. */
    double cpu0 = process_cpu();
    for (int i = 0; i < n; i++) {
        make(i, path, sizeof path, ud);
        kg_thttp_resp r;
        double t = now_s();
        int st = kg_thttp(port, "GET", path, NULL, NULL, 0, &r);
        lat[i] = (now_s() - t) * 1000;
        if (st != 200) {
            fails++;
            fprintf(stderr, "%s: %d %.200s\n", path, st, r.body ? r.body : "");
        }
        kg_thttp_resp_free(&r);
    }
    double cpu_ms = (process_cpu() - cpu0) * 1000 / n;
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    printf("    \"%s\": {\"n\": %d, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
           "\"cpu_ms_per_request\": %.2f, \"errors\": %d}%s\n",
           name, n, lat[n / 2], lat[(size_t)((double)n * 0.99)], lat[n - 1], cpu_ms, fails,
           last ? "" : ",");
    fflush(stdout);
    free(lat);
}

typedef struct qctx {
    const cfg *c;
    char cursor[64];
} qctx;

static void mk_list(int i, char *out, size_t n, void *ud)
{
    (void)i;
    (void)ud;
    snprintf(out, n, "/api/runs?limit=50");
}

static void mk_list_failed(int i, char *out, size_t n, void *ud)
{
    (void)i;
    (void)ud;
    snprintf(out, n, "/api/runs?limit=50&status=failed&graph=etl_pipeline");
}

static void mk_list_deep(int i, char *out, size_t n, void *ud)
{
    const qctx *q = ud;
    /* A page deep in the list: the cursor of a run half-way back. */
    int k = q->c->runs / 2 + i;
    snprintf(out, n, "/api/runs?limit=50&cursor=%lld.%d",
             (long long)(q->c->t0 + (int64_t)k * 1700), k + 1);
}

static void mk_search(int i, char *out, size_t n, void *ud)
{
    const qctx *q = ud;
    /* A prefix that matches ten runs. */
    int k = (i * 7919) % q->c->runs;
    char id[48];
    snprintf(id, sizeof id, RUN_ID_FMT, k);
    snprintf(out, n, "/api/runs?q=%.*s", (int)strlen(id) - 1, id);
}

static void mk_run(int i, char *out, size_t n, void *ud)
{
    const qctx *q = ud;
    int k = (i * 7919) % q->c->runs;
    char id[48];
    snprintf(id, sizeof id, RUN_ID_FMT, k);
    snprintf(out, n, "/api/runs/%s", id);
}

static void mk_events(int i, char *out, size_t n, void *ud)
{
    const qctx *q = ud;
    int k = (i * 104729) % q->c->runs;
    char id[48];
    snprintf(id, sizeof id, RUN_ID_FMT, k);
    snprintf(out, n, "/api/runs/%s/events", id);
}

static void mk_graphs(int i, char *out, size_t n, void *ud)
{
    (void)i;
    (void)ud;
    snprintf(out, n, "/api/graphs?window=30d");
}

static void mk_node(int i, char *out, size_t n, void *ud)
{
    (void)ud;
    snprintf(out, n, "/api/nodes/etl_pipeline/n%d/stats?since=30d", i % 6);
}

static void queries(const cfg *c)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.db = c->db;
    o.retain_mb = 0;
    o.retain_days = 0;
    kg_dashboard_t *d;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0) {
        fprintf(stderr, "dashboard: %s\n", err.message);
        exit(1);
    }
    int port = kg_dashboard_port(d);
    qctx q = {.c = c};
    long long events = sql_int(c->db, "SELECT count(*) FROM kg_events");
    long long runs = sql_int(c->db, "SELECT count(*) FROM kg_runs");
    printf("  \"queries\": {\"stored_events\": %lld, \"stored_runs\": %lld,\n", events, runs);
    int n = c->queries;
    route(port, "runs_list", n, mk_list, &q, false);
    route(port, "runs_list_failed_graph", n, mk_list_failed, &q, false);
    route(port, "runs_list_deep_page", n, mk_list_deep, &q, false);
    route(port, "runs_search_prefix", n, mk_search, &q, false);
    route(port, "run_page", n, mk_run, &q, false);
    route(port, "run_events", n, mk_events, &q, false);
    route(port, "graph_stats", n / 4 > 10 ? n / 4 : 10, mk_graphs, &q, false);
    route(port, "node_stats", n / 4 > 10 ? n / 4 : 10, mk_node, &q, true);
    printf("  }\n");
    kg_dashboard_free(d);
}

int main(int argc, char **argv)
{
    cfg c = {.runs = 50000, .nodes = 6, .producers = 2, .batch = 100, .queries = 200};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--skip-ingest") == 0) {
            c.skip_ingest = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--db") == 0)
            c.db = v;
        else if (strcmp(a, "--runs") == 0)
            c.runs = atoi(v);
        else if (strcmp(a, "--nodes") == 0)
            c.nodes = atoi(v);
        else if (strcmp(a, "--producers") == 0)
            c.producers = atoi(v);
        else if (strcmp(a, "--batch") == 0)
            c.batch = atoi(v);
        else if (strcmp(a, "--queries") == 0)
            c.queries = atoi(v);
        else if (strcmp(a, "--path") == 0)
            c.webhook = strcmp(v, "webhook") == 0;
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (!c.db || c.runs <= 0 || c.nodes <= 0 || c.producers <= 0 || c.batch <= 0 ||
        c.queries <= 0) {
        fprintf(stderr, "usage: bench_store --db PATH [--runs N] [--nodes N] [--producers N] "
                        "[--batch N] [--queries N] [--skip-ingest]\n");
        return 2;
    }
    /* Runs 1.7 s apart, the last one ending about now. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c.t0 = (int64_t)ts.tv_sec * 1000 - (int64_t)c.runs * 1700;
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(f);
    }
    printf("{\"benchmark\": \"run_history_sqlite\", \"loadavg_start\": [%.2f, %.2f, %.2f],\n",
           load[0], load[1], load[2]);
    if (!c.skip_ingest) {
        if (strcmp(c.db, "none") != 0) {
            unlink(c.db);
            char side[512];
            snprintf(side, sizeof side, "%s-wal", c.db);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", c.db);
            unlink(side);
        }
        ingest(&c);   /* with --db none it prints and exits */
    } else {
        /* The runs' times are needed to build deep cursors. */
        long long first = sql_int(c.db, "SELECT min(started_ms) FROM kg_runs");
        if (first > 0)
            c.t0 = first;
        c.runs = (int)sql_int(c.db, "SELECT count(*) FROM kg_runs");
    }
    queries(&c);
    printf("}\n");
    return 0;
}
