/* test_dash_redis.c - the Redis source against a real redis-server: events
 * published by the Redis backend (and by hand) reach WebSocket clients, the
 * subscription survives a server restart, a dashboard restarted while a
 * producer publishes catches up from the stream (exact count), a dropped
 * subscription is replayed, and runs evicted from memory are served from
 * Redis over HTTP and WebSocket.  Peers that are not Redis (protocol garbage,
 * an HTTP server on the port: tests/backends/fake_peer.c) are backed off from
 * and shown as disconnected. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "kaygraph/backends.h"
#include "fake_peer.h"
#include "kaygraph/dashboard.h"
#include "redis_server.h"
#include "testutil.h"
#include "wsclient.h"

static kg_redis_server g_redis;

static int setup(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        return 0;
    return kg_redis_server_start(&g_redis, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kg_redis_server_stop(&g_redis);
    return 0;
}

static kg_dashboard_t *start_with_redis_logged(kg_dashboard_log_cb log, void *log_ud)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.redis_host = "127.0.0.1";
    o.redis_port = g_redis.port;
    o.log = log;
    o.log_ud = log_ud;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_connected), 10));
    return d;
}

static kg_dashboard_t *start_with_redis(void)
{
    return start_with_redis_logged(NULL, NULL);
}

/* Counts the log lines that say events were missed for want of a stream. */
typedef struct missed_log {
    atomic_uint lines;
} missed_log;

static void missed_log_fn(void *ud, kg_dashboard_log_level level, const char *msg)
{
    missed_log *l = ud;
    if (level == KG_DASH_LOG_WARN && strstr(msg, "no stream to replay") &&
        strstr(msg, "--redis-stream"))
        atomic_fetch_add(&l->lines, 1);
}

static void test_redis_backend_to_ws(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_dashboard_t *d = start_with_redis();
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
    char *m = kg_tws_wait_for(&c, "\"initial\"", 5);
    assert_non_null(m);
    free(m);

    /* The real producer side: the Redis backend publishing a batch. */
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = g_redis.port;
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&ro, &err);
    assert_non_null(b);
    kg_backend_connect(b, 1);
    char *texts[2];
    kg_event_view v[2];
    for (int i = 0; i < 2; i++) {
        char id[32];
        snprintf(id, sizeof id, "rb-%d", i);
        texts[i] = kg_tevent(id, i ? "node_completed" : "node_started", "lifecycle", "n", "run-R",
                             (unsigned)i, NULL);
        v[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i]),
                               .event_id = id, .event_type = "lifecycle",
                               .event_name = i ? "node_completed" : "node_started",
                               .node_id = "n", .workflow_id = "run-R",
                               .timestamp_ms = 1795800973123LL, .seq = (uint64_t)i};
        /* event_id must outlive the call: point it into the text instead. */
        v[i].event_id = strstr(texts[i], "rb-");
    }
    kg_batch batch = {.events = v, .count = 2};
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    m = kg_tws_wait_for(&c, "\"rb-1\"", 10);
    assert_non_null(m);
    free(m);
    kg_backend_disconnect(b);
    kg_backend_free(b);
    for (int i = 0; i < 2; i++)
        free(texts[i]);

    kg_dashboard_stats st;
    kg_dashboard_stats_get(d, &st);
    assert_true(st.redis_messages >= 2);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

static void test_redis_restart(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    missed_log missed = {0};
    kg_dashboard_t *d = start_with_redis_logged(missed_log_fn, &missed);
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));
    assert_int_equal(atomic_load(&missed.lines), 0);   /* the first replay is not a gap */

    kg_redis_server_kill(&g_redis);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), !st.redis_connected), 10));
    assert_int_equal(kg_redis_server_restart(&g_redis), 0);

    /* Publish until the resubscribed dashboard forwards one (Pub/Sub keeps
     * nothing for an absent subscriber, so early ones may be lost). */
    redisContext *rc = kg_redis_server_client(&g_redis);
    assert_non_null(rc);
    char *m = NULL;
    double deadline = kg_test_now() + 15;
    for (int i = 0; !m && kg_test_now() < deadline; i++) {
        char id[32];
        snprintf(id, sizeof id, "after-%d", i);
        char *e = kg_tevent(id, "node_started", "lifecycle", "n", "run-S", (unsigned)i, NULL);
        redisReply *r = kg_redis_cmd(rc, "PUBLISH kaygraph:monitoring:all %s", e);
        if (r)
            freeReplyObject(r);
        free(e);
        m = kg_tws_wait_for(&c, "\"after-", 0.5);
    }
    assert_non_null(m);
    free(m);
    /* No producer writes a stream here: the gap is said, not hidden. */
    assert_true(KG_WAIT_UNTIL(atomic_load(&missed.lines) >= 1, 10));
    /* Garbage on the channel is rejected, not fatal. */
    redisReply *r = kg_redis_cmd(rc, "PUBLISH kaygraph:monitoring:all %s", "{not json");
    if (r)
        freeReplyObject(r);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.rejected >= 1), 5));
    redisFree(rc);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

/* ---- stream replay ---------------------------------------------------------------------- */

/* A producer thread: the real Redis backend (with the stream on) sending
 * batches of 50 unique events until told to stop. */
typedef struct producer {
    pthread_t thread;
    atomic_bool stop;
    atomic_ullong sent;
    atomic_int failures;
    int port;
    const char *tag;
    unsigned long long limit;   /* stop after this many events; 0 = no limit */
} producer;

/* Events made now, as a real producer's are (kg_tevent writes a fixed
 * time): the dashboard's reconnect replay starts from the time of the last
 * event it received. */
static void stamp_now(char *event)
{
    char *ts = strstr(event, "\"timestamp\":\"");
    char now[64];
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    struct tm tm;
    gmtime_r(&t.tv_sec, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + 19, sizeof now - 19, ".%06ldZ", (long)(t.tv_nsec / 1000) % 1000000);
    if (ts && strlen(ts + 13) > 27)
        memcpy(ts + 13, now, 27);
}

static void *producer_main(void *arg)
{
    producer *p = arg;
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = p->port;
    ro.stream_maxlen = 1000000;
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&ro, &err);
    if (!b) {
        atomic_fetch_add(&p->failures, 1);
        return NULL;
    }
    kg_backend_connect(b, 1);
    unsigned long long n = 0;
    while (!atomic_load(&p->stop) && (!p->limit || n < p->limit)) {
        char *texts[50];
        char ids[50][48];
        kg_event_view v[50];
        for (int i = 0; i < 50; i++) {
            snprintf(ids[i], sizeof ids[i], "%s-%llu", p->tag, n + (unsigned long long)i);
            texts[i] = kg_tevent(ids[i], "node_started", "lifecycle", "n", "run-P", n + (unsigned)i,
                                 NULL);
            stamp_now(texts[i]);
            v[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i]),
                                   .event_id = ids[i], .event_type = "lifecycle",
                                   .event_name = "node_started", .node_id = "n",
                                   .workflow_id = "run-P", .timestamp_ms = 1795800973123LL,
                                   .seq = n + (unsigned)i};
        }
        kg_batch batch = {.events = v, .count = 50};
        if (kg_backend_send_batch(b, 0, &batch) == 0) {
            n += 50;
            atomic_store(&p->sent, n);
        } else {
            atomic_fetch_add(&p->failures, 1);
        }
        for (int i = 0; i < 50; i++)
            free(texts[i]);
        kg_test_sleep(0.002);
    }
    kg_backend_disconnect(b);
    kg_backend_free(b);
    return NULL;
}

/* One producer at a time, static: a failing test (cmocka longjmps out)
 * leaves it to the teardown instead of running on a dead stack frame. */
static producer g_prod;
static bool g_prod_running;

static int stop_leftover_producer(void **state)
{
    (void)state;
    if (g_prod_running) {
        atomic_store(&g_prod.stop, true);
        pthread_join(g_prod.thread, NULL);
        g_prod_running = false;
    }
    return 0;
}

static void producer_start(producer *p, const char *tag, unsigned long long limit)
{
    assert_ptr_equal(p, &g_prod);
    memset(p, 0, sizeof *p);
    g_prod_running = true;
    p->port = g_redis.port;
    p->tag = tag;
    p->limit = limit;
    assert_int_equal(pthread_create(&p->thread, NULL, producer_main, p), 0);
}

static void producer_stop(producer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    g_prod_running = false;
    assert_int_equal(atomic_load(&p->failures), 0);
}

static void dbg_log(void *ud, kg_dashboard_log_level lvl, const char *msg)
{
    (void)ud;
    if (getenv("KG_TEST_VERBOSE"))
        fprintf(stderr, "[dash %d] %.3f %s\n", (int)lvl, kg_test_now(), msg);
}

static kg_dashboard_t *start_replaying(size_t replay)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.redis_host = "127.0.0.1";
    o.redis_port = g_redis.port;
    o.redis_replay = replay;
    o.log = dbg_log;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    return d;
}

static void flush_redis(void)
{
    redisContext *rc = kg_redis_server_client(&g_redis);
    assert_non_null(rc);
    redisReply *r = kg_redis_cmd(rc, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(rc);
}

/* The dashboard stops while a producer publishes; a new one starts and
 * catches up: every event, exactly once. */
static void test_redis_restart_dashboard_catches_up(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    flush_redis();
    producer *pp = &g_prod;
    producer_start(pp, "cu", 0);
    kg_dashboard_t *d = start_replaying(10000);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= 1000), 20));
    kg_dashboard_free(d);   /* as if killed: its subscription is gone */
    unsigned long long at_stop = atomic_load(&pp->sent);
    /* Events the dashboard cannot see, not even through Pub/Sub. */
    assert_true(KG_WAIT_UNTIL(atomic_load(&pp->sent) >= at_stop + 1000, 20));

    /* The new one replays everything (up to 100,000: more than was sent). */
    d = start_replaying(100000);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= 1000), 20));
    /* Following the live feed too, before the producer stops. */
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_messages >= 100), 20));
    producer_stop(pp);
    unsigned long long sent = atomic_load(&pp->sent);
    bool ok = KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= sent), 20);
    kg_dashboard_stats_get(d, &st);
    print_message("catch-up: sent %llu, dashboard %llu (replayed %llu, live %llu, dup %llu)\n",
                  sent, (unsigned long long)st.events, (unsigned long long)st.redis_replayed,
                  (unsigned long long)st.redis_messages, (unsigned long long)st.duplicates);
    assert_true(ok);
    assert_int_equal(st.events, sent);
    /* At least what was published while no dashboard ran came from the stream. */
    assert_true(st.redis_replayed >= 1000);
    assert_int_equal(st.rejected, 0);
    kg_dashboard_free(d);
}

/* Fresh start: only the newest `redis_replay` entries are replayed. */
static void test_redis_replay_bounded(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    flush_redis();
    producer *pp = &g_prod;
    producer_start(pp, "bd", 0);
    assert_true(KG_WAIT_UNTIL(atomic_load(&pp->sent) >= 3000, 20));
    producer_stop(pp);
    kg_dashboard_t *d = start_replaying(500);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_replays >= 1), 20));
    kg_dashboard_stats_get(d, &st);
    assert_int_equal(st.redis_replayed, 500);
    assert_int_equal(st.events, 500);
    /* The newest ones: the last id is there, the first is not. */
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(kg_dashboard_port(d), "GET", "/api/events?limit=1", NULL, NULL, 0,
                              &r),
                     200);
    char last[64];
    snprintf(last, sizeof last, "\"bd-%llu\"", (unsigned long long)atomic_load(&pp->sent) - 1);
    assert_non_null(strstr(r.body, last));
    kg_thttp_resp_free(&r);
    kg_dashboard_free(d);

    /* redis_replay = 0: nothing replayed. */
    d = start_replaying(0);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_connected), 10));
    kg_dashboard_stats_get(d, &st);
    assert_int_equal(st.redis_replayed, 0);
    assert_int_equal(st.events, 0);
    kg_dashboard_free(d);
}

#ifdef __SANITIZE_ADDRESS__
/* RSS figures below must be what the process holds, not what ASan keeps in
 * quarantine after it was freed. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=0";
}
#endif

/* kB of the process' VmHWM (peak RSS since the last reset) or VmRSS. */
static long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void peak_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);   /* resets VmHWM to the current RSS */
        fclose(f);
    }
}

/* A fresh dashboard replays a stream of 250 events of ~900 KB (225 MB: one
 * XREAD of 1,000 entries used to pull all of it into hiredis at once).  The
 * replay completes, every entry is ingested, and the process' peak RSS
 * grows by the bounded stores plus a bounded page, not by the stream. */
static void test_redis_replay_of_huge_entries_bounded(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    flush_redis();
    enum { N = 250, BLOB = 900 * 1000 };
    char *blob = malloc(BLOB + 1);
    assert_non_null(blob);
    memset(blob, 'x', BLOB);
    blob[BLOB] = '\0';
    redisContext *rc = kg_redis_server_client(&g_redis);
    assert_non_null(rc);
    for (int i = 0; i < N; i++) {
        char *ev = NULL;
        int len = asprintf(&ev,
                           "{\"event_id\":\"huge-%d\",\"timestamp\":\"2026-11-30T10:00:00.000000Z\","
                           "\"node_id\":\"n\",\"node_type\":\"T\",\"event_type\":\"data\","
                           "\"event_name\":\"data_output\",\"data\":{\"blob\":\"%s\"},"
                           "\"correlation_id\":\"c%d\",\"workflow_id\":\"w%d\",\"seq\":%d}",
                           i, blob, i, i % 10, i + 1);
        assert_true(len > 0);
        redisReply *r = redisCommand(rc, "XADD kaygraph:monitoring:stream * event %b", ev,
                                     (size_t)len);
        assert_non_null(r);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        free(ev);
    }
    redisFree(rc);
    free(blob);

    peak_rss_reset();
    long before_kb = proc_status_kb("VmRSS:");
    kg_dashboard_t *d = start_replaying(1000);
    kg_dashboard_stats st;
    bool done = KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_replays >= 1), 60);
    kg_dashboard_stats_get(d, &st);
    long peak_kb = proc_status_kb("VmHWM:");
    print_message("huge replay: %llu replayed, %llu events, peak RSS +%.1f MB over %.1f MB\n",
                  (unsigned long long)st.redis_replayed, (unsigned long long)st.events,
                  (double)(peak_kb - before_kb) / 1024, (double)before_kb / 1024);
    assert_true(done);
    assert_int_equal(st.redis_replayed, N);
    assert_int_equal(st.events, N);
#ifndef __SANITIZE_THREAD__
    /* The stores keep at most 64 MiB + the 16 MiB ring; a replay page is
     * about 8 MiB.  (TSan's shadow memory makes RSS meaningless there.) */
    assert_true(peak_kb - before_kb < 160 * 1024);
#endif
    kg_dashboard_free(d);
    flush_redis();
}

/* The subscription is dropped (CLIENT KILL) while a producer publishes: the
 * reconnect replays what Pub/Sub lost; nothing is missing or counted twice. */
static void test_redis_resubscribe_replays(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    flush_redis();
    kg_dashboard_t *d = start_replaying(10000);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_connected), 10));
    producer *pp = &g_prod;
    /* 30,000 events in all: within the aggregation's duplicate window
     * (64 K event ids), so "nothing counted twice" is the replay's doing.
     * A dashboard lagging further behind Pub/Sub than that window (a
     * sanitizer build on a loaded machine could, with no limit) may count
     * a replayed event twice: RELIABILITY.md says so. */
    producer_start(pp, "rs", 30000);
    redisContext *rc = kg_redis_server_client(&g_redis);
    assert_non_null(rc);
    for (int k = 0; k < 3; k++) {
        uint64_t before = st.redis_replays;
        assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= 500u * (k + 1)),
                                  20));
        redisReply *r = kg_redis_cmd(rc, "CLIENT KILL TYPE pubsub");
        assert_non_null(r);
        freeReplyObject(r);
        assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_replays > before),
                                  60));
    }
    redisFree(rc);
    producer_stop(pp);
    unsigned long long sent = atomic_load(&pp->sent);
    bool ok = KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= sent), 20);
    kg_dashboard_stats_get(d, &st);
    print_message("resubscribe: sent %llu, dashboard %llu (replays %llu, replayed %llu, "
                  "dup %llu)\n",
                  sent, (unsigned long long)st.events, (unsigned long long)st.redis_replays,
                  (unsigned long long)st.redis_replayed, (unsigned long long)st.duplicates);
    assert_true(ok);
    assert_int_equal(st.events, sent);
    kg_dashboard_free(d);
}

/* ---- history of evicted runs ------------------------------------------------------------ */

static void send_run(kg_backend_t *b, const char *run, unsigned long long seq0)
{
    char ids[3][64];
    char *texts[3];
    kg_event_view v[3];
    static const char *const names[3] = {"workflow_started", "node_started", "workflow_completed"};
    static const char *const extra[3] = {
        "\"graph\":{\"nodes\":[{\"id\":\"n\",\"type\":\"T\"}],\"edges\":[],\"start\":\"n\"}",
        NULL, "\"status\":\"success\",\"final_action\":\"done\",\"duration\":0.5"};
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof ids[i], "%s-e%d", run, i);
        texts[i] = kg_tevent(ids[i], names[i], "lifecycle", i == 1 ? "n" : "", run, seq0 + (unsigned)i,
                             extra[i]);
        v[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i]), .event_id = ids[i],
                               .event_type = "lifecycle", .event_name = names[i],
                               .node_id = i == 1 ? "n" : "", .workflow_id = run,
                               .timestamp_ms = 1795800973123LL + (int64_t)i, .seq = seq0 + (unsigned)i};
    }
    kg_batch batch = {.events = v, .count = 3};
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    for (int i = 0; i < 3; i++)
        free(texts[i]);
}

static void test_redis_history_of_evicted_run(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    flush_redis();
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.redis_host = "127.0.0.1";
    o.redis_port = g_redis.port;
    o.max_runs = 2;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    int port = kg_dashboard_port(d);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_connected), 10));

    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = g_redis.port;
    kg_backend_t *b = kg_redis_backend_new(&ro, &err);
    assert_non_null(b);
    kg_backend_connect(b, 1);
    send_run(b, "run-A", 0);
    send_run(b, "run-B", 10);
    send_run(b, "run-C", 20);
    kg_backend_disconnect(b);
    kg_backend_free(b);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events >= 9), 10));

    /* run-A was evicted (max_runs 2) but Redis has it. */
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body, "\"run-A\""));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows/run-A/events", NULL, NULL, 0, &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "redis");
    assert_int_equal(json_array_size(json_object_get(j, "events")), 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "run"), "status")),
                        "success");
    assert_true(json_is_object(json_object_get(j, "graph")));
    json_decref(j);
    kg_thttp_resp_free(&r);
    /* Unknown everywhere: 404. */
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows/run-Z/events", NULL, NULL, 0, &r), 404);
    kg_thttp_resp_free(&r);
    /* In memory: served from memory (no "source"). */
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows/run-C/events", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body, "\"source\":\"redis\""));
    kg_thttp_resp_free(&r);

    /* The same over the WebSocket. */
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));
    const char *req = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"run-A\"}";
    assert_int_equal(kg_tws_send(&c, req, strlen(req)), 0);
    char *m = kg_tws_wait_for(&c, "\"workflow_events\"", 10);
    assert_non_null(m);
    j = json_loads(m, 0, NULL);
    free(m);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "found")));
    assert_string_equal(json_string_value(json_object_get(j, "source")), "redis");
    assert_int_equal(json_array_size(json_object_get(j, "events")), 3);
    json_decref(j);
    req = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"run-Z\"}";
    assert_int_equal(kg_tws_send(&c, req, strlen(req)), 0);
    m = kg_tws_wait_for(&c, "\"workflow_events\"", 10);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"found\":false"));
    free(m);
    /* A client that asks and leaves before the answer: nothing leaks or crashes. */
    assert_int_equal(kg_tws_send(&c, req, strlen(req)), 0);
    kg_tws_close(&c);
    assert_int_equal(kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
    kg_dashboard_stats_get(d, &st);
    assert_true(st.redis_fetches >= 2);
    kg_dashboard_free(d);
}


/* ---- peers that are not Redis -------------------------------------------------------- */

typedef struct log_sink {
    pthread_mutex_t mu;
    unsigned lines, protocol;   /* log lines; of those, naming the protocol error */
    char first[512];
} log_sink;

static void sink_log(void *ud, kg_dashboard_log_level level, const char *msg)
{
    log_sink *s = ud;
    (void)level;
    pthread_mutex_lock(&s->mu);
    if (strstr(msg, "redis")) {
        if (s->lines++ == 0)
            snprintf(s->first, sizeof s->first, "%s", msg);
        if (strstr(msg, "protocol error") && strstr(msg, "not a Redis server"))
            s->protocol++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* 4 s against a peer that answers SUBSCRIBE with garbage, or an HTTP server:
 * the dashboard never says "connected" (stats and /api/metrics), connects at
 * most once per backoff step (0.1 s doubling: 6 attempts in 4 s; it used to
 * be thousands a second), and logs the protocol error on the first failure
 * and then after 2, 4, 8... failures, not once per attempt. */
static void check_dash_not_redis(kg_fake_script script)
{
    kg_fake_peer *p = kg_fake_peer_start(script, script, NULL);
    assert_non_null(p);
    log_sink sink = {.lines = 0};
    pthread_mutex_init(&sink.mu, NULL);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.redis_host = "127.0.0.1";
    o.redis_port = kg_fake_peer_port(p);
    o.log = sink_log;
    o.log_ud = &sink;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    bool ever_connected = false;
    double until = kg_test_now() + 4.0;
    while (kg_test_now() < until) {
        kg_dashboard_stats st;
        kg_dashboard_stats_get(d, &st);
        ever_connected |= st.redis_connected;
        kg_test_sleep(0.01);
    }
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(kg_dashboard_port(d), "GET", "/api/metrics", NULL, NULL, 0, &r), 200);
    bool metrics_say_down = strstr(r.body, "\"redis_connected\":false") != NULL;
    kg_thttp_resp_free(&r);
    unsigned conns = kg_fake_peer_connections(p);
    kg_dashboard_free(d);
    kg_fake_peer_stop(p);
    print_message("%s peer: %u connections in 4 s, %u log lines (%u naming the protocol error); "
                  "first: %s\n", script == KG_FAKE_HTTP ? "HTTP" : "garbage", conns, sink.lines,
                  sink.protocol, sink.first);
    pthread_mutex_destroy(&sink.mu);
    assert_false(ever_connected);
    assert_true(metrics_say_down);
    assert_true(conns >= 2 && conns <= 8);
    assert_true(sink.protocol >= 1);
    assert_true(sink.lines <= 5);
}

static void test_redis_peer_garbage(void **state)
{
    (void)state;
    check_dash_not_redis(KG_FAKE_GARBAGE);
}

static void test_redis_peer_http(void **state)
{
    (void)state;
    check_dash_not_redis(KG_FAKE_HTTP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_backend_to_ws),
        cmocka_unit_test(test_redis_restart),
        cmocka_unit_test_teardown(test_redis_restart_dashboard_catches_up, stop_leftover_producer),
        cmocka_unit_test_teardown(test_redis_replay_bounded, stop_leftover_producer),
        cmocka_unit_test(test_redis_replay_of_huge_entries_bounded),
        cmocka_unit_test_teardown(test_redis_resubscribe_replays, stop_leftover_producer),
        cmocka_unit_test_teardown(test_redis_history_of_evicted_run, stop_leftover_producer),
        cmocka_unit_test(test_redis_peer_garbage),
        cmocka_unit_test(test_redis_peer_http),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
