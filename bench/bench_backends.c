/* bench_backends.c - sustained throughput of the Redis and HTTP backends
 * against real local servers, with zero loss checked, and what a Redis
 * outage costs a monitored workflow.  Figures for BENCHMARKS.md.
 *
 *   bench_backends [--seconds S] [--workers W] [--batch B] [--rate R]
 *                  [--outage-rate R] [--buffer N] [--parse] [--breaker-reset S] [--unix]
 *                  [--lean] [--stream MAXLEN]
 *                  [redis|http|e2e|outage|all]
 *
 *   redis   W threads call send_batch() with batches of B pre-serialised
 *           events (every command of the layout: SETEX, the workflow and node
 *           ZADDs + EXPIRE, INCRBY, the active-set script, 2 PUBLISH) for S
 *           seconds into a redis-server started here (default config, no
 *           persistence), while a kg_redis_reader subscriber drains "all".
 *           Zero loss: subscriber count, counters, event keys and workflow
 *           indexes all equal the events sent.  INFO commandstats (reset
 *           before the run) is printed per command: calls and server
 *           microseconds per event.  --unix: over a unix socket.
 *           --lean: the lean layout (per run hash, "all" channel only);
 *           zero loss then means subscriber count, counters and the run
 *           hashes' fields all equal the events sent, and no event keys.
 *           --stream N: also the capped stream (stream_maxlen N).
 *   http    the same into the in-process loopback receiver (batches of B);
 *           with --parse the receiver parses every body with jansson.
 *           Senders go round their pre-generated events (renewing the ids
 *           in place) until the deadline, so neither figure is bounded by
 *           how many events were prepared.
 *   e2e     workflows monitored into Redis through the whole pipeline
 *           (engine -> monitor -> dispatcher -> backend), paced at R
 *           events/s (default 40,000): is it sustained without a drop?
 *           --lean: into the lean layout.
 *   outage  a workflow emitting --outage-rate events/s (default 10,000) for
 *           3 x S seconds with a --buffer (default 131072) event buffer;
 *           redis-server (no persistence) is SIGKILLed for the middle S
 *           seconds and restarted empty.  Reports the run-time slowdown
 *           during the outage, the time to recover and the events lost
 *           (exact accounting, see bench_outage).
 *
 * Output: one JSON object per benchmark on stdout, human-readable notes on
 * stderr. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "kaygraph/monitor.h"
#include "kaygraph/redis_reader.h"
#include "redis_server.h"

#define PFX "kaygraph:monitoring:"

static double opt_seconds = 3.0;
static unsigned opt_workers = 2;
static size_t opt_batch = 100;
static bool opt_parse = false;    /* http: the receiver parses every body (jansson) */
static bool opt_unix = false;     /* redis: over a unix socket instead of TCP loopback */
static bool opt_lean = false;     /* redis: the lean layout (docs/redis.md) */
static long opt_stream = 0;       /* redis: stream_maxlen (0: no stream) */
static double opt_rate = 40000;   /* e2e: events/s offered */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU seconds used by this process so far. */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used by the redis-server (INFO cpu), or -1. */
static double cpu_redis(const kg_redis_server *srv)
{
    redisContext *c = kg_redis_server_client(srv);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "INFO cpu");
    double v = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *u = strstr(r->str, "used_cpu_user:");
        const char *sy = strstr(r->str, "used_cpu_sys:");
        if (u && sy)
            v = atof(u + 14) + atof(sy + 13);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/* ---- pre-generated events -------------------------------------------------------- */

/* The demo run's shape: 37 events per workflow run, 5 nodes. */
static const char *const run_names[] = {
    "node_started", "node_preparing", "data_input", "node_executing",
    "data_output", "execution_time", "node_completed"};
static const char *const run_nodes[] = {"data_source", "validator", "processor", "aggregator",
                                        "storage"};

static const char *type_of(const char *name)
{
    if (strncmp(name, "data_", 5) == 0)
        return "data";
    if (strcmp(name, "execution_time") == 0)
        return "metric";
    return "lifecycle";
}

typedef struct event_set {
    char *arena;
    kg_event_view *views;
    uint16_t (*wf_at)[2];   /* where the workflow id sits in each JSON */
    size_t n;
    int64_t ts0;
} event_set;

#define EV_STRIDE 768        /* per event: id, wf and json, with room */
#define EV_ID_CYCLE 15       /* the 3 hex digits after "01900000-xxxx-7" */
#define EV_JSON_ID 13        /* strlen("{\"event_id\":\"") */
#define EV_WF 48             /* offset of the workflow id in an event's slot */
#define EV_WF_CYCLE 10       /* "bench-ttt-" then the 3 cycle digits */

/* n events of demo-shaped runs (37 events per run), ids unique per
 * (tag, cycle, index).  Cycle 0 is written here; events_cycle() rewrites
 * the cycle digits in place, so a sender can go round the same memory as
 * many times as its time allows and never run out of fresh events. */
static int events_make(event_set *s, size_t n, unsigned tag)
{
    s->arena = malloc(n * EV_STRIDE);
    s->views = calloc(n, sizeof *s->views);
    s->wf_at = calloc(n, sizeof *s->wf_at);
    s->n = n;
    if (!s->arena || !s->views || !s->wf_at)
        return -1;
    s->ts0 = epoch_ms();
    for (size_t i = 0; i < n; i++) {
        char *p = s->arena + i * EV_STRIDE;
        size_t run = i / 37, k = i % 37;
        const char *name, *node;
        if (k == 0) {
            name = "workflow_started", node = "demo_graph";
        } else if (k == 36) {
            name = "workflow_completed", node = "demo_graph";
        } else {
            name = run_names[(k - 1) % 7], node = run_nodes[(k - 1) / 7];
        }
        char *id = p, *wf = p + EV_WF, *json = p + 128;
        snprintf(id, 48, "01900000-%04x-7000-8000-%012zx", tag & 0xffff, i & 0xffffffffffffu);
        snprintf(wf, 80, "bench-%03x-000-%zu", tag & 0xfff, run);
        int len = snprintf(json, EV_STRIDE - 128,
                           "{\"event_id\":\"%s\",\"timestamp\":\"2026-11-27T17:36:13.123456Z\","
                           "\"node_id\":\"%s\",\"node_type\":\"BenchNode\",\"event_type\":\"%s\","
                           "\"event_name\":\"%s\",\"data\":{\"state\":\"running\"},"
                           "\"correlation_id\":\"c-%s-%zu\",\"workflow_id\":\"%s\",\"seq\":%zu,"
                           "\"source\":{\"host\":\"bench\",\"pid\":1}}",
                           id, node, type_of(name), name, wf, k, wf, i);
        char *w1 = strstr(json, "\"c-") + 3;
        char *w2 = strstr(json, "\"workflow_id\":\"") + 15;
        s->wf_at[i][0] = (uint16_t)(w1 - json);
        s->wf_at[i][1] = (uint16_t)(w2 - json);
        s->views[i] = (kg_event_view){.json = json,
                                      .json_len = (size_t)len,
                                      .event_id = id,
                                      .event_type = type_of(name),
                                      .event_name = name,
                                      .node_id = node,
                                      .workflow_id = wf,
                                      .timestamp_ms = s->ts0 + (int64_t)(i / 100),
                                      .seq = i};
    }
    return 0;
}

/* Make the set's events new ones: cycle number into the event ids and
 * workflow ids (same lengths), later timestamps and sequence numbers. */
static void events_cycle(event_set *s, unsigned cycle)
{
    char hex[4];
    snprintf(hex, sizeof hex, "%03x", cycle & 0xfff);
    for (size_t i = 0; i < s->n; i++) {
        char *p = s->arena + i * EV_STRIDE;
        char *json = p + 128;
        memcpy(p + EV_ID_CYCLE, hex, 3);
        memcpy(json + EV_JSON_ID + EV_ID_CYCLE, hex, 3);
        memcpy(p + EV_WF + EV_WF_CYCLE, hex, 3);
        memcpy(json + s->wf_at[i][0] + EV_WF_CYCLE, hex, 3);
        memcpy(json + s->wf_at[i][1] + EV_WF_CYCLE, hex, 3);
        s->views[i].timestamp_ms = s->ts0 + (int64_t)((cycle * s->n + i) / 100);
        s->views[i].seq = (uint64_t)cycle * s->n + i;
    }
}

static void events_free(event_set *s)
{
    free(s->arena);
    free(s->views);
    free(s->wf_at);
}

/* ---- sender threads ------------------------------------------------------------- */

typedef struct sender {
    kg_backend_t *b;
    unsigned worker;
    event_set ev;
    size_t sent;
    size_t failures;
    unsigned cycles;
    double deadline;
} sender;

/* Send batches until the deadline, going round the pre-generated events
 * (renewed each round) as often as needed: the figure is the backend's
 * rate, never bounded by how many events were prepared. */
static void *send_main(void *arg)
{
    sender *s = arg;
    for (unsigned cycle = 0; now_s() < s->deadline; cycle++) {
        if (cycle > 0)
            events_cycle(&s->ev, cycle);
        s->cycles = cycle + 1;
        for (size_t at = 0; at < s->ev.n && now_s() < s->deadline; at += opt_batch) {
            kg_batch batch = {.events = s->ev.views + at,
                              .count = s->ev.n - at < opt_batch ? s->ev.n - at : opt_batch};
            while (kg_backend_send_batch(s->b, s->worker, &batch) != 0) {
                s->failures++;
                if (now_s() > s->deadline + 10)
                    return NULL;
            }
            s->sent += batch.count;
        }
    }
    return NULL;
}

static double send_cpu;   /* process CPU seconds of the last run_senders' sending phase */

/* Run opt_workers senders for opt_seconds; returns events sent and the
 * elapsed time. */
static size_t run_senders(kg_backend_t *b, double *elapsed, size_t *failures, unsigned *cycles)
{
    sender *s = calloc(opt_workers, sizeof *s);
    pthread_t *t = calloc(opt_workers, sizeof *t);
    /* 1000 runs per sender; rounds are renewed in place. */
    size_t per = 37 * 1000;
    for (unsigned i = 0; i < opt_workers; i++) {
        s[i].b = b;
        s[i].worker = i;
        if (events_make(&s[i].ev, per, i) != 0) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    double cpu0 = cpu_self();
    double t0 = now_s();
    for (unsigned i = 0; i < opt_workers; i++) {
        s[i].deadline = t0 + opt_seconds;
        pthread_create(&t[i], NULL, send_main, &s[i]);
    }
    size_t total = 0;
    *failures = 0;
    *cycles = 0;
    for (unsigned i = 0; i < opt_workers; i++) {
        pthread_join(t[i], NULL);
        total += s[i].sent;
        *failures += s[i].failures;
        *cycles += s[i].cycles;
    }
    *elapsed = now_s() - t0;
    send_cpu = cpu_self() - cpu0;
    for (unsigned i = 0; i < opt_workers; i++)
        events_free(&s[i].ev);
    free(s);
    free(t);
    return total;
}

/* ---- redis ---------------------------------------------------------------------- */

typedef struct subscriber {
    kg_redis_reader_t *r;
    atomic_size_t got;
    atomic_bool stop;
} subscriber;

static void *sub_main(void *arg)
{
    subscriber *s = arg;
    while (!atomic_load(&s->stop)) {
        char *json = NULL;
        size_t len;
        if (kg_redis_reader_next(s->r, 0.2, &json, &len, NULL, NULL) == 0) {
            /* A lean-layout message is a batch: one event per line. */
            size_t events = 1;
            for (size_t i = 0; i < len; i++)
                events += json[i] == '\n';
            free(json);
            atomic_fetch_add(&s->got, events);
        }
    }
    return NULL;
}

static long long redis_int(redisContext *c, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(c, fmt, arg);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    if (r)
        freeReplyObject(r);
    return v;
}

/* Keys matching `pattern`, or the sum of their sizes (ZCARD / HLEN). */
static long long count_keys_sized(redisContext *c, const char *pattern, const char *size_cmd)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 5000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            char cmd[16];
            snprintf(cmd, sizeof cmd, "%s %%s", size_cmd ? size_cmd : "");
            n += size_cmd ? redis_int(c, cmd, r->element[1]->element[i]->str) : 1;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static long long count_keys(redisContext *c, const char *pattern, bool zcard_sum)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 5000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY)
            return -1;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            n += zcard_sum ? redis_int(c, "ZCARD %s", r->element[1]->element[i]->str) : 1;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

/* INFO commandstats as {"cmd":{"calls_per_event","usec_per_call","usec_per_event"}},
 * printed as a table on stderr: where the server's time goes. */
static json_t *commandstats(redisContext *c, size_t events)
{
    json_t *out = json_object();
    redisReply *r = redisCommand(c, "INFO commandstats");
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        return out;
    }
    double total = 0;
    fprintf(stderr, "  %-16s %12s %14s %14s\n", "command", "calls/event", "usec/call",
            "usec/event");
    for (char *line = strtok(r->str, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        char name[64];
        long long calls = 0;
        double usec = 0, per_call = 0;
        if (sscanf(line, "cmdstat_%63[^:]:calls=%lld,usec=%lf,usec_per_call=%lf", name, &calls,
                   &usec, &per_call) != 4)
            continue;
        /* The bench's own checking queries come after the clock stopped. */
        if (!strcmp(name, "scan") || !strcmp(name, "zcard") || !strcmp(name, "info") ||
            !strcmp(name, "config|resetstat") || !strcmp(name, "scard"))
            continue;
        double cpe = (double)calls / (double)events, upe = usec / (double)events;
        total += upe;
        fprintf(stderr, "  %-16s %12.3f %14.2f %14.3f\n", name, cpe, per_call, upe);
        json_object_set_new(out, name, json_pack("{s:f, s:f, s:f}", "calls_per_event", cpe,
                                                 "usec_per_call", per_call, "usec_per_event",
                                                 upe));
    }
    fprintf(stderr, "  %-16s %12s %14s %14.3f (command execution only; I/O and "
                    "protocol parsing come on top)\n", "total", "", "", total);
    json_object_set_new(out, "total_usec_per_event", json_real(total));
    freeReplyObject(r);
    return out;
}

static void redis_resetstat(const kg_redis_server *srv)
{
    redisContext *c = kg_redis_server_client(srv);
    if (c) {
        redisReply *r = redisCommand(c, "CONFIG RESETSTAT");
        if (r)
            freeReplyObject(r);
        redisFree(c);
    }
}

static json_t *bench_redis(void)
{
    kg_redis_server srv;
    kg_redis_server_opts so = {.unix_socket = opt_unix};
    if (kg_redis_server_start(&srv, &so) != 0)
        return json_pack("{s:s}", "error", "redis-server did not start");
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = srv.port;
    if (opt_unix)
        o.unix_socket = srv.unix_path;
    o.layout = opt_lean ? KG_REDIS_LAYOUT_LEAN : KG_REDIS_LAYOUT_SEED;
    o.stream_maxlen = opt_stream;
    kg_backend_t *b = kg_redis_backend_new(&o, NULL);
    kg_backend_connect(b, opt_workers);

    subscriber sub = {0};
    kg_redis_reader_new(&o, &sub.r, NULL);
    kg_redis_reader_subscribe(sub.r, NULL, false, NULL);
    pthread_t st;
    pthread_create(&st, NULL, sub_main, &sub);
    /* Let the subscription land before the first publish. */
    double until = now_s() + 0.3;
    while (now_s() < until) {
    }

    double elapsed;
    size_t failures;
    unsigned cycles;
    redis_resetstat(&srv);
    double rcpu0 = cpu_redis(&srv);
    size_t sent = run_senders(b, &elapsed, &failures, &cycles);
    double cpu_client = send_cpu, cpu_server = cpu_redis(&srv) - rcpu0;
    double t_sent = now_s();
    while (atomic_load(&sub.got) < sent && now_s() < t_sent + 30) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double drained = now_s() - t_sent;
    atomic_store(&sub.stop, true);
    pthread_join(st, NULL);

    redisContext *c = kg_redis_server_client(&srv);
    long long counters = 0;
    static const char *const types[] = {"lifecycle", "data", "metric", "error"};
    for (int i = 0; i < 4; i++) {
        char key[96];
        snprintf(key, sizeof key, PFX "metrics:events:%s", types[i]);
        long long v = redis_int(c, "GET %s", key);
        counters += v > 0 ? v : 0;
    }
    long long keys = count_keys(c, PFX "event:*", false);
    long long indexed = opt_lean ? count_keys_sized(c, PFX "run:*", "HLEN")
                                 : count_keys(c, PFX "workflow:*", true);
    long long active = redis_int(c, "SCARD %s", PFX "active:workflows");
    json_t *cmdstats = commandstats(c, sent);
    redisFree(c);
    size_t got = atomic_load(&sub.got);
    /* Senders stop at the deadline, possibly inside a run: those runs are
     * rightly still active. */
    bool zero_loss = got == sent && counters == (long long)sent &&
                     keys == (opt_lean ? 0 : (long long)sent) && indexed == (long long)sent &&
                     active <= (long long)opt_workers && failures == 0;
    fprintf(stderr,
            "redis (%s%s): %zu events in %.2f s = %.0f events/s (%u workers, batches of %zu); "
            "subscriber got %zu (drained %.2f s after), counters %lld, event keys %lld, "
            "indexed %lld, runs cut by the deadline %lld: %s; CPU: client %.2f s (%.2f us/event, "
            "subscriber included), redis-server %.2f s (%.2f us/event = %.0f events per "
            "server CPU second)\n",
            opt_unix ? "unix socket" : "TCP loopback", opt_lean ? ", lean layout" : "", sent,
            elapsed, sent / elapsed, opt_workers,
            opt_batch, got, drained, counters, keys,
            indexed, active, zero_loss ? "zero loss" : "LOSS", cpu_client,
            cpu_client * 1e6 / (double)sent, cpu_server, cpu_server * 1e6 / (double)sent,
            (double)sent / cpu_server);
    json_t *out = json_pack("{s:s, s:I, s:f, s:f, s:i, s:I, s:I, s:f, s:b}", "bench", "redis",
                            "events", (json_int_t)sent, "seconds", elapsed, "events_per_s", sent / elapsed,
                            "workers", (int)opt_workers, "batch", (json_int_t)opt_batch,
                            "subscriber_received", (json_int_t)got, "drain_s", drained,
                            "zero_loss", zero_loss);
    json_object_set_new(out, "client_cpu_us_per_event", json_real(cpu_client * 1e6 / (double)sent));
    json_object_set_new(out, "server_cpu_us_per_event", json_real(cpu_server * 1e6 / (double)sent));
    json_object_set_new(out, "sender_rounds", json_integer(cycles));
    json_object_set_new(out, "transport", json_string(opt_unix ? "unix" : "tcp"));
    json_object_set_new(out, "layout", json_string(opt_lean ? "lean" : "seed"));
    json_object_set_new(out, "stream_maxlen", json_integer(opt_stream));
    json_object_set_new(out, "commandstats", cmdstats);
    kg_redis_reader_free(sub.r);
    kg_backend_free(b);
    kg_redis_server_stop(&srv);
    return out;
}

/* ---- http ----------------------------------------------------------------------- */

static json_t *bench_http(void)
{
    kg_http_receiver_t *rx = kg_http_receiver_start();
    if (!rx)
        return json_pack("{s:s}", "error", "receiver did not start");
    /* By default the receiver counts events from "batch_size" (the backend's
     * own rate); --parse makes it parse every body, as a real consumer
     * (the dashboard's /api/ingest) does. */
    kg_http_receiver_set_keep(rx, 0, opt_parse);
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = kg_http_receiver_url(rx);
    kg_backend_t *b = kg_http_backend_new(&o, NULL);
    kg_backend_connect(b, opt_workers);
    double elapsed;
    size_t failures;
    unsigned cycles;
    size_t sent = run_senders(b, &elapsed, &failures, &cycles);
    size_t got = kg_http_receiver_events(rx);
    size_t requests = kg_http_receiver_accepted(rx);
    size_t conns = kg_http_receiver_connections(rx);
    bool zero_loss = got == sent && failures == 0;
    fprintf(stderr,
            "http: %zu events in %.2f s = %.0f events/s (%u workers, batches of %zu); "
            "receiver (%s) got %zu events in %zu requests over %zu connections: %s\n",
            sent, elapsed, sent / elapsed, opt_workers, opt_batch,
            opt_parse ? "parsing every body" : "counting batch_size", got, requests, conns,
            zero_loss ? "zero loss" : "LOSS");
    json_t *out = json_pack("{s:s, s:I, s:f, s:f, s:i, s:I, s:I, s:I, s:b, s:i}", "bench", "http",
                            "events", (json_int_t)sent, "seconds", elapsed, "events_per_s",
                            sent / elapsed, "workers", (int)opt_workers, "batch",
                            (json_int_t)opt_batch, "requests", (json_int_t)requests,
                            "connections", (json_int_t)conns, "zero_loss", zero_loss,
                            "sender_rounds", (int)cycles);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
    return out;
}

/* ---- through the monitor ----------------------------------------------------------- */

static double busy_us = 0;
static unsigned long busy_iters = 0;   /* set by calibrate_busy(): fixed work per node */
static volatile uint64_t busy_sink;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void busy_work(unsigned long iters)
{
    uint64_t x = busy_sink;
    for (unsigned long i = 0; i < iters; i++)
        x = x * 6364136223846793005u + 1442695040888963407u;
    busy_sink = x;
}

/* A node's work is a fixed amount of computation (not a wall-clock wait),
 * so that a run's CPU time is the work plus what monitoring adds, whatever
 * else the machine is doing: iterations for busy_us of this thread's CPU. */
static void calibrate_busy(void)
{
    unsigned long n = 100000;
    for (;;) {
        double t0 = thread_cpu_s();
        busy_work(n);
        double took = thread_cpu_s() - t0;
        if (took > 0.02) {
            busy_iters = (unsigned long)((double)n * busy_us / 1e6 / took);
            return;
        }
        n *= 2;
    }
}

static int step_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    (void)ctx;
    (void)prep_res;
    if (busy_iters > 0) {
        busy_work(busy_iters);
    } else if (busy_us > 0) {
        double until = now_s() + busy_us / 1e6;
        while (now_s() < until) {
        }
    }
    *exec_res = NULL;
    return 0;
}

static const kg_node_ops step_ops = {.type_name = "BenchNode", .exec = step_exec};

static kg_node_t *make_graph(void)
{
    kg_node_t *g = kg_graph_new("bench_graph", NULL, NULL);
    kg_node_t *prev = NULL;
    static const char *const ids[] = {"extract", "transform", "load"};
    for (int i = 0; i < 3; i++) {
        kg_node_t *n = kg_graph_add(g, kg_node_new(ids[i], &step_ops, NULL));
        if (prev)
            kg_node_connect(prev, NULL, n);
        prev = n;
    }
    return g;
}

static kg_monitor_t *make_monitor(kg_backend_t *b, size_t buffer)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = b;
    cfg.metrics_interval = 0;
    cfg.buffer_size = buffer;
    cfg.async_workers = opt_workers;
    cfg.batch_size = (unsigned)opt_batch;
    cfg.flush_interval = 0.05;
    cfg.circuit_breaker_reset = 0.5;
    cfg.retry_backoff_max = 0.25;
    cfg.shutdown_timeout = 60;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0) {
        fprintf(stderr, "kg_monitor_new: %s\n", err.message);
        exit(1);
    }
    return m;
}

static json_t *bench_e2e(void)
{
    kg_redis_server srv;
    if (kg_redis_server_start(&srv, NULL) != 0)
        return json_pack("{s:s}", "error", "redis-server did not start");
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = srv.port;
    o.layout = opt_lean ? KG_REDIS_LAYOUT_LEAN : KG_REDIS_LAYOUT_SEED;
    kg_node_t *g = make_graph();
    kg_monitor_t *m = make_monitor(kg_redis_backend_new(&o, NULL), 1u << 20);
    kg_monitor_attach(m, g);
    /* Paced at opt_rate events/s (23 events per run): the question is
     * whether the pipeline sustains that rate without dropping. */
    const double period = 23.0 / opt_rate;
    double t0 = now_s(), next = t0;
    size_t runs = 0;
    while (now_s() - t0 < opt_seconds) {
        if (now_s() < next)
            continue;
        next += period;
        kg_run(g, NULL, NULL);
        runs++;
    }
    double produced = now_s() - t0;
    kg_monitor_flush(m, 60);
    double elapsed = now_s() - t0;
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    redisContext *c = kg_redis_server_client(&srv);
    /* Stored: an event key each (seed), or a field of its run's hash (lean;
     * dispatcher metrics, which have no run, are off here). */
    long long keys = opt_lean ? count_keys_sized(c, PFX "run:*", "HLEN")
                              : count_keys(c, PFX "event:*", false);
    redisFree(c);
    bool zero_loss = st.dropped_full == 0 && st.sent == st.emitted && keys == (long long)st.emitted;
    fprintf(stderr,
            "e2e: %zu runs, %llu events emitted in %.2f s, all delivered after %.2f s = %.0f "
            "events/s end to end; dropped %llu, stored %lld: %s\n",
            runs, (unsigned long long)st.emitted, produced, elapsed, st.emitted / elapsed,
            (unsigned long long)st.dropped_full, keys, zero_loss ? "zero loss" : "LOSS");
    json_t *out = json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:b}", "bench", "e2e_redis", "runs",
                            (json_int_t)runs, "events", (json_int_t)st.emitted, "seconds",
                            elapsed, "events_per_s", st.emitted / elapsed, "dropped",
                            (json_int_t)st.dropped_full, "zero_loss", zero_loss);
    kg_monitor_free(m);
    kg_node_free(g);
    kg_redis_server_stop(&srv);
    return out;
}

/* ---- outage ------------------------------------------------------------------------- */

static double opt_outage_rate = 10000;   /* events/s offered during the outage bench */
static size_t opt_buffer = 131072;        /* the monitor's buffer_size there */
static double opt_breaker_reset = -1;     /* circuit_breaker_reset there; < 0: default */

/* Events whose key exists in Redis, by SCAN. */
static long long stored_events(const kg_redis_server *srv)
{
    redisContext *c = kg_redis_server_client(srv);
    if (!c)
        return -1;
    long long keys = count_keys(c, PFX "event:*", false);
    redisFree(c);
    return keys;
}

/* A workflow emitting opt_outage_rate events/s for 3 x S seconds (S =
 * --seconds): S with Redis up, S with redis-server SIGKILLed, S after it was
 * restarted (empty: an ordinary server without persistence, default config
 * otherwise).  Every kg_run is a new workflow run, so runs spread over all
 * of the monitor's partitions as real traffic does.  The monitor uses the
 * library's defaults (breaker threshold 5, reset 5 s, backoff cap 1 s,
 * flush interval 1 s) with buffer_size = --buffer and, with --breaker-reset,
 * that circuit_breaker_reset.
 *
 * Accounting, exact although the restart wipes Redis: nothing can be
 * acknowledged while the server is dead, so `sent` read just before the
 * restart counts every event Redis acknowledged before the kill; a batch
 * in flight at the kill (perhaps half executed) was not acknowledged and is
 * sent again after the restart.  So every event emitted and not
 * acknowledged before the kill must be in the restarted server:
 *     lost = emitted - sent_before_restart - event keys after the restart.
 * Slowdown: mean kg_run CPU time during the outage against before it (the
 * node work is calibrated computation, so CPU time is work + monitoring);
 * wall time is reported too. */
static json_t *bench_outage(void)
{
    kg_redis_server srv;
    if (kg_redis_server_start(&srv, NULL) != 0)
        return json_pack("{s:s}", "error", "redis-server did not start");
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = srv.port;
    o.layout = opt_lean ? KG_REDIS_LAYOUT_LEAN : KG_REDIS_LAYOUT_SEED;
    kg_node_t *g = make_graph();
    /* 1 ms of node work per run (3 nodes x 333 us of CPU), 23 events per run. */
    busy_us = 333;
    calibrate_busy();
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_redis_backend_new(&o, NULL);
    cfg.metrics_interval = 0;
    cfg.buffer_size = opt_buffer;
    cfg.async_workers = opt_workers;
    cfg.batch_size = (unsigned)opt_batch;
    cfg.shutdown_timeout = 60;
    if (opt_breaker_reset >= 0)
        cfg.circuit_breaker_reset = opt_breaker_reset;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0) {
        fprintf(stderr, "kg_monitor_new: %s\n", err.message);
        exit(1);
    }
    kg_monitor_attach(m, g);
    const double period = 23.0 / opt_outage_rate;
    double phase_sum[3] = {0, 0, 0}, phase_max[3] = {0, 0, 0}, phase_cpu[3] = {0, 0, 0};
    size_t phase_runs[3] = {0, 0, 0};
    uint64_t emitted_at_kill = 0, emitted_in_outage = 0, sent_before_restart = 0;
    uint64_t failed_at_kill = 0, emitted_at_restart = 0;
    double t0 = now_s(), next = t0, t_restart = 0, recovered_after = -1, next_check = 0;
    int phase = 0;
    kg_monitor_stats st;
    for (;;) {
        double t = now_s();
        int want = (int)((t - t0) / opt_seconds);
        if (want != phase) {
            kg_monitor_stats_get(m, &st);
            if (want == 1) {
                kg_redis_server_kill(&srv);
                emitted_at_kill = st.emitted;
                failed_at_kill = st.failed_batches;
            } else if (want == 2) {
                emitted_in_outage = st.emitted - emitted_at_kill;
                sent_before_restart = st.sent;
                emitted_at_restart = st.emitted;
                if (kg_redis_server_restart(&srv) != 0) {
                    fprintf(stderr, "redis-server did not restart\n");
                    exit(1);
                }
                t_restart = now_s();
            }
            phase = want;
            if (phase >= 3)
                break;
        }
        /* Recovered: the backlog is delivered -- as many events sent as
         * had been emitted when the server came back (the events keep
         * coming, so the queue itself is never quite empty). */
        if (phase == 2 && recovered_after < 0 && t >= next_check) {
            kg_monitor_stats_get(m, &st);
            if (st.sent >= emitted_at_restart)
                recovered_after = t - t_restart;
            next_check = t + 0.01;
        }
        if (t < next)
            continue;
        next += period;
        double r0 = now_s(), c0 = thread_cpu_s();
        kg_run(g, NULL, NULL);
        double took = now_s() - r0;
        phase_cpu[phase] += thread_cpu_s() - c0;
        phase_sum[phase] += took;
        if (took > phase_max[phase])
            phase_max[phase] = took;
        phase_runs[phase]++;
    }
    int frc = kg_monitor_flush(m, 60);
    kg_monitor_stats_get(m, &st);
    long long keys = stored_events(&srv);
    double mean[3], cpu[3];
    for (int i = 0; i < 3; i++) {
        mean[i] = phase_runs[i] ? phase_sum[i] / (double)phase_runs[i] : 0;
        cpu[i] = phase_runs[i] ? phase_cpu[i] / (double)phase_runs[i] : 0;
    }
    /* The slowdown is judged on the run's CPU time (the work is fixed
     * computation): wall time on a shared machine mostly measures the
     * scheduler.  Both are reported. */
    double slowdown = cpu[0] > 0 ? (cpu[1] / cpu[0] - 1) * 100 : 0;
    double slowdown_after = cpu[0] > 0 ? (cpu[2] / cpu[0] - 1) * 100 : 0;
    double wall_slowdown = mean[0] > 0 ? (mean[1] / mean[0] - 1) * 100 : 0;
    long long lost = (long long)st.emitted - (long long)sent_before_restart - keys;
    fprintf(stderr,
            "outage: %.0f s outage at %.0f events/s, buffer %zu over %u partitions, breaker "
            "reset %.1f s: run CPU time %.1f us before, %.1f us during (%+.2f%%), %.1f us "
            "after (%+.2f%%); run wall time %.1f / %.1f (%+.2f%%) / %.1f us; slowest run "
            "%.2f / %.2f / %.2f ms; %llu events emitted during the outage; failed batches %llu, "
            "breaker opened %llu times; dropped %llu (queue full %llu); backlog delivered "
            "%.2f s after the restart; flush %s; acknowledged before the restart %llu, in the "
            "restarted Redis %lld, emitted %llu: lost %lld\n",
            opt_seconds, (double)st.emitted / (3 * opt_seconds), opt_buffer, opt_workers,
            cfg.circuit_breaker_reset, cpu[0] * 1e6, cpu[1] * 1e6, slowdown, cpu[2] * 1e6,
            slowdown_after, mean[0] * 1e6, mean[1] * 1e6, wall_slowdown, mean[2] * 1e6,
            phase_max[0] * 1e3, phase_max[1] * 1e3, phase_max[2] * 1e3,
            (unsigned long long)emitted_in_outage,
            (unsigned long long)(st.failed_batches - failed_at_kill),
            (unsigned long long)st.circuit_opens,
            (unsigned long long)(st.dropped_full + st.dropped_shutdown),
            (unsigned long long)st.dropped_full, recovered_after, frc == 0 ? "ok" : "timed out",
            (unsigned long long)sent_before_restart, keys, (unsigned long long)st.emitted, lost);
    json_t *out = json_pack(
        "{s:s, s:f, s:f, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I}",
        "bench", "redis_outage", "outage_s", opt_seconds, "rate", opt_outage_rate, "buffer",
        (json_int_t)opt_buffer, "run_cpu_us_before", cpu[0] * 1e6, "run_cpu_us_during",
        cpu[1] * 1e6, "run_cpu_us_after", cpu[2] * 1e6, "slowdown_pct", slowdown,
        "slowdown_after_pct", slowdown_after, "events", (json_int_t)st.emitted,
        "events_during_outage", (json_int_t)emitted_in_outage, "dropped",
        (json_int_t)(st.dropped_full + st.dropped_shutdown), "circuit_opens",
        (json_int_t)st.circuit_opens, "recovered_s", recovered_after, "acked_before_restart",
        (json_int_t)sent_before_restart, "stored_after_restart", (json_int_t)keys, "lost",
        (json_int_t)lost);
    json_object_set_new(out, "breaker_reset_s", json_real(cfg.circuit_breaker_reset));
    json_object_set_new(out, "run_wall_us_before", json_real(mean[0] * 1e6));
    json_object_set_new(out, "run_wall_us_during", json_real(mean[1] * 1e6));
    json_object_set_new(out, "run_wall_us_after", json_real(mean[2] * 1e6));
    kg_monitor_free(m);
    kg_node_free(g);
    kg_redis_server_stop(&srv);
    busy_us = 0;
    busy_iters = 0;
    return out;
}

int main(int argc, char **argv)
{
    const char *which = "all";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            opt_seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            opt_workers = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            opt_rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            opt_batch = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--outage-rate") == 0 && i + 1 < argc)
            opt_outage_rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc)
            opt_buffer = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--parse") == 0)
            opt_parse = true;
        else if (strcmp(argv[i], "--unix") == 0)
            opt_unix = true;
        else if (strcmp(argv[i], "--lean") == 0)
            opt_lean = true;
        else if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc)
            opt_stream = atol(argv[++i]);
        else if (strcmp(argv[i], "--breaker-reset") == 0 && i + 1 < argc)
            opt_breaker_reset = atof(argv[++i]);
        else if (argv[i][0] != '-')
            which = argv[i];
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--workers W] [--batch B] "
                            "[--rate R] [--outage-rate R] [--buffer N] [--parse] "
                            "[--breaker-reset S] [--unix] [--lean] [--stream MAXLEN] "
                            "[redis|http|e2e|outage|all]\n", argv[0]);
            return 2;
        }
    }
    if (opt_workers < 1 || opt_batch < 1 || !(opt_seconds > 0)) {
        fprintf(stderr, "bad option\n");
        return 2;
    }
    bool all = strcmp(which, "all") == 0;
    json_t *r;
    if (all || strcmp(which, "redis") == 0) {
        r = bench_redis();
        json_dumpf(r, stdout, JSON_COMPACT);
        puts("");
        json_decref(r);
    }
    if (all || strcmp(which, "http") == 0) {
        r = bench_http();
        json_dumpf(r, stdout, JSON_COMPACT);
        puts("");
        json_decref(r);
    }
    if (all || strcmp(which, "e2e") == 0) {
        r = bench_e2e();
        json_dumpf(r, stdout, JSON_COMPACT);
        puts("");
        json_decref(r);
    }
    if (all || strcmp(which, "outage") == 0) {
        r = bench_outage();
        json_dumpf(r, stdout, JSON_COMPACT);
        puts("");
        json_decref(r);
    }
    return 0;
}
