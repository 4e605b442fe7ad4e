/* test_redis_backend.c - the Redis backend against a real redis-server.
 *
 * Every assertion is made through an independent hiredis connection (or a
 * Pub/Sub subscriber), never through the backend itself: the point is that
 * other programs see docs/redis.md's layout. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_events.h"
#include "kaygraph/backends.h"
#include "redis_server.h"
#include "testutil.h"

#define PFX "kaygraph:monitoring:"

static kg_redis_server server;

static int group_setup(void **state)
{
    (void)state;
    if (!kg_redis_server_available()) {
        fprintf(stderr, "redis-server not found: skipping\n");
        return 0;
    }
    return kg_redis_server_start(&server, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    kg_redis_server_stop(&server);
    return 0;
}

static redisContext *client_flushed(void)
{
    if (!server.pid)
        skip();
    redisContext *c = kg_redis_server_client(&server);
    assert_non_null(c);
    redisReply *r = kg_redis_cmd(c, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    return c;
}

static kg_backend_t *backend_for(const kg_redis_server *s, void (*tweak)(kg_redis_options *),
                                 unsigned workers)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    if (tweak)
        tweak(&o);
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&o, &err);
    if (!b)
        fail_msg("kg_redis_backend_new: %s", err.message);
    assert_int_equal(kg_backend_connect(b, workers), 0);
    assert_true(kg_backend_is_connected(b));
    return b;
}

/* A subscriber to every channel under the prefix. */
static redisContext *subscriber(const char *pattern)
{
    redisContext *c = kg_redis_server_client(&server);
    assert_non_null(c);
    redisReply *r = kg_redis_cmd(c, "PSUBSCRIBE %s", pattern);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    return c;
}

/* ---- the layout after a demo-sized workflow -------------------------------------- */

static void test_demo_workflow_layout(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    redisContext *sub = subscriber(PFX "*");
    kg_backend_t *b = backend_for(&server, NULL, 1);

    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    kg_event_view views[KG_TEST_DEMO_EVENTS];
    int64_t ts0 = kg_test_epoch_ms();
    size_t n = kg_test_demo_run(ev, "wf-demo-1", 100, ts0);
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);

    /* Pub/Sub: every event once on "all" and once on its type's channel,
     * in order, as valid events. */
    size_t on_all = 0, on_type = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        void *v = NULL;
        assert_int_equal(redisGetReply(sub, &v), REDIS_OK);
        redisReply *m = v;
        assert_int_equal(m->type, REDIS_REPLY_ARRAY);
        assert_int_equal(m->elements, 4);
        assert_string_equal(m->element[0]->str, "pmessage");
        const char *chan = m->element[2]->str;
        json_error_t jerr;
        json_t *j = json_loads(m->element[3]->str, 0, &jerr);
        if (!j)
            fail_msg("message is not JSON: %s", jerr.text);
        const char *type = json_string_value(json_object_get(j, "event_type"));
        const char *id = json_string_value(json_object_get(j, "event_id"));
        assert_non_null(type);
        assert_non_null(id);
        for (const char *k = "timestamp\0node_id\0node_type\0event_name\0data\0"
                             "correlation_id\0workflow_id\0";
             *k; k += strlen(k) + 1)
            assert_non_null(json_object_get(j, k));
        if (strcmp(chan, PFX "all") == 0) {
            assert_string_equal(id, ev[on_all].id);
            on_all++;
        } else {
            char want[64];
            snprintf(want, sizeof want, PFX "%s", type);
            assert_string_equal(chan, want);
            assert_string_equal(id, ev[on_type].id);
            on_type++;
        }
        json_decref(j);
        freeReplyObject(m);
    }
    assert_int_equal(on_all, n);
    assert_int_equal(on_type, n);

    /* Stored events with their TTL. */
    for (size_t i = 0; i < n; i++) {
        redisReply *r = kg_redis_cmd(c, "GET " PFX "event:%s", ev[i].id);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, ev[i].json);
        freeReplyObject(r);
        long long ttl = kg_redis_int(c, "TTL " PFX "event:%s", ev[i].id);
        assert_true(ttl > 3500 && ttl <= 3600);
    }

    /* The workflow index: every event, scored by its epoch ms. */
    redisReply *z = kg_redis_cmd(c, "ZRANGE " PFX "workflow:wf-demo-1 0 -1 WITHSCORES");
    assert_non_null(z);
    assert_int_equal(z->elements, 2 * n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(z->element[2 * i]->str, ev[i].id);
        assert_int_equal(strtoll(z->element[2 * i + 1]->str, NULL, 10), ev[i].ts_ms);
    }
    freeReplyObject(z);
    long long ttl = kg_redis_int(c, "TTL " PFX "workflow:wf-demo-1");
    assert_true(ttl > 3500 && ttl <= 3600);

    /* The node indexes: seven events per node. */
    static const char *const nodes[] = {"data_source", "validator", "processor", "aggregator",
                                        "storage"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(kg_redis_int(c, "ZCARD " PFX "node:%s", nodes[i]), 7);
        ttl = kg_redis_int(c, "TTL " PFX "node:%s", nodes[i]);
        assert_true(ttl > 3500 && ttl <= 3600);
        redisReply *s = kg_redis_cmd(c, "ZSCORE " PFX "node:%s %s", nodes[i], ev[1 + 7 * i].id);
        assert_int_equal(strtoll(s->str, NULL, 10), ev[1 + 7 * i].ts_ms);
        freeReplyObject(s);
    }

    /* Counters per type: 2 + 5*4 lifecycle, 5*2 data, 5 metric, no error. */
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:lifecycle"), 22);
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:data"), 10);
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:metric"), 5);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "metrics:events:error"), 0);

    /* A finished run leaves nothing active; no stream unless asked. */
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:nodes"), 0);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:workflows"), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "stream"), 0);

    kg_backend_free(b);
    redisFree(sub);
    redisFree(c);
}

static void test_active_sets(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, NULL, 1);
    int64_t t = kg_test_epoch_ms();
    kg_test_event ev[4];
    kg_event_view views[4];
    kg_test_event_fill(&ev[0], "workflow_started", "g", "wf-a", 1, t);
    kg_test_event_fill(&ev[1], "node_started", "n1", "wf-a", 2, t);
    kg_test_event_fill(&ev[2], "node_started", "n2", "wf-a", 3, t);
    kg_test_event_fill(&ev[3], "node_started", "n3", "wf-a", 4, t);
    kg_batch batch = kg_test_batch(ev, 4, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:nodes"), 3);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:workflows wf-a"), 1);

    /* node_completed and node_failed both end a node's activity. */
    kg_test_event_fill(&ev[0], "node_completed", "n1", "wf-a", 5, t);
    kg_test_event_fill(&ev[1], "node_failed", "n2", "wf-a", 6, t);
    batch = kg_test_batch(ev, 2, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    redisReply *m = kg_redis_cmd(c, "SMEMBERS " PFX "active:nodes");
    assert_int_equal(m->elements, 1);
    assert_string_equal(m->element[0]->str, "n3");
    freeReplyObject(m);
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:error"), 1);

    kg_test_event_fill(&ev[0], "workflow_completed", "g", "wf-a", 7, t);
    batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:workflows"), 0);
    kg_backend_free(b);
    redisFree(c);
}

/* The active sets end in the state of the newest event whatever the order
 * of arrival: across batches and workers (node ids are shared by concurrent
 * runs), within one batch (only the newest decision per member counts),
 * and under replay. */
static void test_active_sets_out_of_order(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, NULL, 2);
    int64_t t = kg_test_epoch_ms();
    kg_test_event ev[4];
    kg_event_view views[4];

    /* Worker 1 delivers run B's completion of "v" (t+2) before worker 0
     * delivers run A's start of "v" (t+1): "v" stays inactive. */
    kg_test_event_fill(&ev[0], "node_completed", "v", "wf-b", 20, t + 2);
    kg_batch batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 1, &batch), 0);
    kg_test_event_fill(&ev[0], "node_started", "v", "wf-a", 10, t + 1);
    batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:nodes v"), 0);

    /* Same millisecond: seq decides. */
    kg_test_event_fill(&ev[0], "node_started", "v", "wf-c", 21, t + 2);
    batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 1, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:nodes v"), 1);

    /* Within one batch, out of order: the newest event wins, for nodes and
     * for workflows; a replay of the same batch changes nothing. */
    kg_test_event_fill(&ev[0], "node_started", "w", "wf-d", 31, t + 5);
    kg_test_event_fill(&ev[1], "node_completed", "w", "wf-e", 30, t + 4);
    kg_test_event_fill(&ev[2], "workflow_completed", "g", "wf-d", 33, t + 6);
    kg_test_event_fill(&ev[3], "workflow_started", "g", "wf-d", 32, t + 5);
    batch = kg_test_batch(ev, 4, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:nodes w"), 1);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:workflows wf-d"), 0);
    redisReply *r = kg_redis_cmd(c, "SREM " PFX "active:nodes w");
    freeReplyObject(r);
    assert_int_equal(kg_backend_send_batch(b, 1, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:nodes w"), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:workflows wf-d"), 0);
    /* The node clocks expire with the rest of the layout; runs need none
     * (see redis.c). */
    long long ttl = kg_redis_int(c, "TTL " PFX "active:clock:nodes");
    assert_true(ttl > 3500 && ttl <= 3600);
    assert_int_equal(kg_redis_int(c, "HLEN " PFX "active:clock:nodes"), 2);
    redisReply *k = kg_redis_cmd(c, "KEYS " PFX "active:clock:workflows*");
    assert_int_equal(k->elements, 0);
    freeReplyObject(k);
    kg_backend_free(b);
    redisFree(c);
}

/* SCRIPT FLUSH (or a failover to a server without the script): the batch
 * fails with NOSCRIPT, the connection is replaced (loading the script
 * again), and the retry succeeds. */
static void test_script_flushed(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, NULL, 1);
    redisReply *r = kg_redis_cmd(c, "SCRIPT FLUSH");
    freeReplyObject(r);
    kg_test_event ev[1];
    kg_event_view views[1];
    kg_test_event_fill(&ev[0], "node_started", "s", "wf-s", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), KG_EBACKEND);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SISMEMBER " PFX "active:nodes s"), 1);
    kg_backend_free(b);
    redisFree(c);
}

/* A batch far larger than the dispatcher's default, many runs and nodes:
 * every event stored and indexed once, the per-key grouping exact, and the
 * active-node script working through its decisions in chunks (600 nodes). */
static void test_large_batch_grouping(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, NULL, 1);
    enum { RUNS = 100, NODES = 600, N = RUNS * KG_TEST_DEMO_EVENTS + NODES };
    kg_test_event *ev = calloc(N, sizeof *ev);
    kg_event_view *views = calloc(N, sizeof *views);
    assert_non_null(ev);
    assert_non_null(views);
    int64_t t = kg_test_epoch_ms();
    for (int run = 0; run < RUNS; run++) {
        char wf[32];
        snprintf(wf, sizeof wf, "wf-big-%d", run);
        kg_test_demo_run(ev + run * KG_TEST_DEMO_EVENTS, wf, (uint64_t)run * 100, t + run);
    }
    for (int i = 0; i < NODES; i++) {
        char node[32];
        snprintf(node, sizeof node, "n-%d", i);
        kg_test_event_fill(&ev[RUNS * KG_TEST_DEMO_EVENTS + i], "node_started", node, "wf-many",
                           100000 + (uint64_t)i, t + RUNS);
    }
    kg_batch batch = kg_test_batch(ev, N, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    for (int run = 0; run < RUNS; run += 7)
        assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-big-%d", run),
                         KG_TEST_DEMO_EVENTS);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-many"), NODES);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "node:validator"), 7 * RUNS);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:nodes"), NODES);
    assert_int_equal(kg_redis_int(c, "HLEN " PFX "active:clock:nodes"), 5 + NODES);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:workflows"), 0);
    assert_int_equal(kg_redis_int(c, "DBSIZE"),
                     /* events + workflows + nodes (the graph's own "demo_graph"
                      * included) + 3 counters + the node clock hash + the
                      * active-node set */
                     N + (RUNS + 1) + (6 + NODES) + 3 + 1 + 1);
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:lifecycle"),
                     22 * RUNS + NODES);
    /* The same batch again (a retry after a lost reply): nothing changes
     * but the counters. */
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:nodes"), NODES);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "node:validator"), 7 * RUNS);
    kg_backend_free(b);
    free(ev);
    free(views);
    redisFree(c);
}

/* Dispatcher metrics have workflow_id "" (and may have node_id ""): no index
 * keys with empty ids. */
static void test_metric_without_workflow(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, NULL, 1);
    kg_test_event ev[2];
    kg_event_view views[2];
    kg_test_event_fill(&ev[0], "queue_depth", "", "", 1, kg_test_epoch_ms());
    kg_test_event_fill(&ev[1], "throughput_metric", "dispatcher", "", 2, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 2, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "workflow:"), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "node:"), 0);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "node:dispatcher"), 1);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "event:%s", ev[0].id), 1);
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:metric"), 2);
    kg_backend_free(b);
    redisFree(c);
}

static void tweak_prefix_ttl(kg_redis_options *o)
{
    o->prefix = "kgtest:";
    o->ttl = 60;
}

static void test_prefix_and_ttl(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, tweak_prefix_ttl, 1);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    kg_event_view views[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-p", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    long long ttl = kg_redis_int(c, "TTL kgtest:event:%s", ev[0].id);
    assert_true(ttl > 50 && ttl <= 60);
    ttl = kg_redis_int(c, "TTL kgtest:workflow:wf-p");
    assert_true(ttl > 50 && ttl <= 60);
    assert_int_equal(kg_redis_int(c, "ZCARD kgtest:workflow:wf-p"), (long long)n);
    assert_int_equal(kg_redis_int(c, "GET kgtest:metrics:events:lifecycle"), 22);
    /* Nothing under the default prefix. */
    redisReply *k = kg_redis_cmd(c, "KEYS " PFX "*");
    assert_int_equal(k->elements, 0);
    freeReplyObject(k);
    kg_backend_free(b);
    redisFree(c);
}

static void tweak_stream(kg_redis_options *o)
{
    o->stream_maxlen = 100;
}

static void test_stream(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    kg_backend_t *b = backend_for(&server, tweak_stream, 1);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    kg_event_view views[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-s", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "XLEN " PFX "stream"), (long long)n);
    redisReply *x = kg_redis_cmd(c, "XRANGE " PFX "stream - +");
    assert_int_equal(x->elements, n);
    for (size_t i = 0; i < n; i++) {
        redisReply *fields = x->element[i]->element[1];
        assert_int_equal(fields->elements, 2);
        assert_string_equal(fields->element[0]->str, "event");
        assert_string_equal(fields->element[1]->str, ev[i].json);
    }
    freeReplyObject(x);
    /* Capped: "~" trims in whole macro nodes, so the length stays near the
     * cap rather than growing with every batch. */
    for (int round = 0; round < 60; round++) {
        n = kg_test_demo_run(ev, "wf-s", 1, kg_test_epoch_ms());
        batch = kg_test_batch(ev, n, views);
        assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    }
    long long len = kg_redis_int(c, "XLEN " PFX "stream");
    assert_true(len >= 100 && len < 61 * (long long)KG_TEST_DEMO_EVENTS);
    assert_true(len <= 300);
    kg_backend_free(b);
    redisFree(c);
}

/* ---- the lean layout ----------------------------------------------------------- */

static void tweak_lean(kg_redis_options *o)
{
    o->layout = KG_REDIS_LAYOUT_LEAN;
    o->stream_maxlen = 1000;
}

/* The lean layout: a run's events in one hash (field = seq) with its TTL;
 * the batch as one message on "all" only and one stream entry, one event
 * per line; counters and active sets as in the seed layout; no per-event
 * keys, no per-node indexes; the layout marker, which a seed-layout writer
 * removes again. */
static void test_lean_layout(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    redisContext *sub = subscriber(PFX "*");
    kg_backend_t *b = backend_for(&server, tweak_lean, 1);
    redisReply *mark = kg_redis_cmd(c, "GET " PFX "layout");
    assert_string_equal(mark->str, "lean");
    freeReplyObject(mark);

    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    kg_event_view views[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-lean-1", 500, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);

    /* One message, on "all", the events in order one per line. */
    void *v = NULL;
    assert_int_equal(redisGetReply(sub, &v), REDIS_OK);
    redisReply *m = v;
    assert_string_equal(m->element[2]->str, PFX "all");
    char *text = strdup(m->element[3]->str), *save = NULL;
    size_t lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        assert_string_equal(line, ev[lines++].json);
    assert_int_equal(lines, n);
    free(text);
    freeReplyObject(m);

    /* The run's hash: every event under its seq, with the TTL. */
    assert_int_equal(kg_redis_int(c, "HLEN " PFX "run:wf-lean-1"), (long long)n);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = kg_redis_cmd(c, "HGET " PFX "run:wf-lean-1 %llu",
                                     (unsigned long long)ev[i].seq);
        assert_string_equal(r->str, ev[i].json);
        freeReplyObject(r);
    }
    long long ttl = kg_redis_int(c, "TTL " PFX "run:wf-lean-1");
    assert_true(ttl > 3500 && ttl <= 3600);

    /* The stream: the batch as one entry. */
    redisReply *x = kg_redis_cmd(c, "XRANGE " PFX "stream - +");
    assert_int_equal(x->elements, 1);
    assert_string_equal(x->element[0]->element[1]->element[0]->str, "events");
    assert_non_null(strstr(x->element[0]->element[1]->element[1]->str, ev[n - 1].json));
    freeReplyObject(x);

    /* As the seed layout: counters, active sets.  Not: event keys, node and
     * workflow indexes, per-type channels (the subscriber got nothing more). */
    assert_int_equal(kg_redis_int(c, "GET " PFX "metrics:events:lifecycle"), 22);
    assert_int_equal(kg_redis_int(c, "SCARD " PFX "active:nodes"), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "event:%s", ev[0].id), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "node:validator"), 0);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "workflow:wf-lean-1"), 0);
    redisReply *pong = kg_redis_cmd(sub, "PING");   /* answered after any queued message */
    assert_int_equal(pong->type, REDIS_REPLY_ARRAY);
    assert_string_equal(pong->element[0]->str, "pong");
    freeReplyObject(pong);

    /* A seed-layout writer under the same prefix takes the marker away. */
    kg_backend_t *seed = backend_for(&server, NULL, 1);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "layout"), 0);
    kg_backend_free(seed);
    kg_backend_free(b);
    redisFree(sub);
    redisFree(c);
}

/* A Redis error reply fails the batch but keeps the connection. */
static void test_error_reply(void **state)
{
    (void)state;
    redisContext *c = client_flushed();
    redisReply *r = kg_redis_cmd(c, "SET " PFX "workflow:wf-wrong not-a-zset");
    freeReplyObject(r);
    kg_backend_t *b = backend_for(&server, NULL, 1);
    kg_test_event ev[2];
    kg_event_view views[2];
    kg_test_event_fill(&ev[0], "node_started", "n", "wf-wrong", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), KG_EBACKEND);
    assert_true(kg_backend_is_connected(b));
    kg_test_event_fill(&ev[1], "node_started", "n", "wf-right", 2, kg_test_epoch_ms());
    batch = kg_test_batch(&ev[1], 1, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-right"), 1);
    kg_backend_free(b);
    redisFree(c);
}

static void test_bad_options(void **state)
{
    (void)state;
    kg_redis_options o;
    kg_redis_options_init(&o);
    kg_error_t err;
    o.port = 0;
    assert_null(kg_redis_backend_new(&o, &err));
    assert_int_equal(err.code, KG_EINVAL);
    kg_redis_options_init(&o);
    o.ttl = 0;
    assert_null(kg_redis_backend_new(&o, &err));
    assert_int_equal(err.code, KG_EINVAL);
    /* Defaults are fine without a server. */
    kg_backend_t *b = kg_redis_backend_new(NULL, &err);
    assert_non_null(b);
    assert_string_equal(kg_backend_name(b), "redis");
    assert_false(kg_backend_is_connected(b));
    kg_backend_free(b);
}

/* ---- AUTH, SELECT, unix socket (own servers) -------------------------------------- */

static const char *auth_password;
static int auth_db;
static void tweak_auth(kg_redis_options *o)
{
    o->password = auth_password;
    o->db = auth_db;
}

static void test_auth_and_db(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server s;
    kg_redis_server_opts so = {.password = "s3cret"};
    assert_int_equal(kg_redis_server_start(&s, &so), 0);

    /* Wrong password: connect fails with an error reply, so do sends. */
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s.port;
    o.password = "wrong";
    kg_error_t err;
    kg_backend_t *bad = kg_redis_backend_new(&o, &err);
    assert_non_null(bad);
    assert_int_equal(kg_backend_connect(bad, 1), KG_EBACKEND);
    assert_false(kg_backend_is_connected(bad));
    kg_test_event ev[1];
    kg_event_view views[1];
    kg_test_event_fill(&ev[0], "node_started", "n", "wf-auth", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 1, views);
    assert_int_equal(kg_backend_send_batch(bad, 0, &batch), KG_EBACKEND);
    kg_backend_free(bad);

    auth_password = "s3cret";
    auth_db = 3;
    kg_backend_t *b = backend_for(&s, tweak_auth, 2);
    assert_int_equal(kg_backend_send_batch(b, 1, &batch), 0);
    redisContext *c = kg_redis_server_client(&s);
    assert_non_null(c);
    assert_int_equal(kg_redis_int(c, "EXISTS " PFX "workflow:wf-auth"), 0);
    redisReply *r = kg_redis_cmd(c, "SELECT 3");
    freeReplyObject(r);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-auth"), 1);
    kg_backend_free(b);
    redisFree(c);
    kg_redis_server_stop(&s);
}

static const char *unix_path;
static void tweak_unix(kg_redis_options *o)
{
    o->unix_socket = unix_path;
    o->port = 1;   /* ignored with a socket */
}

static void test_unix_socket(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server s;
    kg_redis_server_opts so = {.unix_socket = true};
    assert_int_equal(kg_redis_server_start(&s, &so), 0);
    unix_path = s.unix_path;
    kg_backend_t *b = backend_for(&s, tweak_unix, 1);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    kg_event_view views[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-unix", 1, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    redisContext *c = kg_redis_server_client(&s);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-unix"), (long long)n);
    redisFree(c);
    kg_backend_free(b);
    kg_redis_server_stop(&s);
}

/* ---- faults ---------------------------------------------------------------------- */

static int send_one(kg_backend_t *b, unsigned worker, const char *wf, uint64_t seq)
{
    kg_test_event ev[1];
    kg_event_view views[1];
    kg_test_event_fill(&ev[0], "node_started", "n", wf, seq, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 1, views);
    return kg_backend_send_batch(b, worker, &batch);
}

static void test_kill_and_restart(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server s;
    assert_int_equal(kg_redis_server_start(&s, NULL), 0);
    kg_backend_t *b = backend_for(&s, NULL, 2);
    assert_int_equal(send_one(b, 0, "wf-k", 1), 0);

    /* Server gone: the send fails promptly (no SIGPIPE death), and
     * is_connected says so. */
    kg_redis_server_kill(&s);
    double t0 = kg_test_now();
    int rc = send_one(b, 0, "wf-k", 2);
    assert_true(rc == KG_ECONNECT || rc == KG_ETIMEOUT);
    assert_true(kg_test_now() - t0 < 1.5);
    assert_false(kg_backend_is_connected(b));
    assert_int_equal(send_one(b, 0, "wf-k", 3), KG_ECONNECT);
    assert_false(kg_backend_is_connected(b));

    /* Back: worker 0 reconnects on its next send; worker 1's connection
     * died while idle and is replaced before its batch, so that batch does
     * not fail either. */
    assert_int_equal(kg_redis_server_restart(&s), 0);
    assert_int_equal(send_one(b, 0, "wf-k", 4), 0);
    assert_int_equal(send_one(b, 1, "wf-k", 5), 0);
    assert_true(kg_backend_is_connected(b));
    redisContext *c = kg_redis_server_client(&s);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-k"), 2);

    /* A restart while idle costs no failed batch at all. */
    kg_redis_server_kill(&s);
    assert_int_equal(kg_redis_server_restart(&s), 0);
    assert_int_equal(send_one(b, 0, "wf-k2", 6), 0);
    assert_int_equal(send_one(b, 1, "wf-k2", 7), 0);
    redisFree(c);
    c = kg_redis_server_client(&s);
    assert_int_equal(kg_redis_int(c, "ZCARD " PFX "workflow:wf-k2"), 2);

    /* The server closing the connection (CLIENT KILL) is noticed too. */
    redisReply *r = kg_redis_cmd(c, "CLIENT KILL TYPE normal SKIPME yes");
    freeReplyObject(r);
    assert_int_equal(send_one(b, 0, "wf-k3", 8), 0);
    redisFree(c);
    kg_backend_free(b);
    kg_redis_server_stop(&s);
}

/* A server that stops answering (SIGSTOP): the send returns KG_ETIMEOUT
 * within the command timeout, and works again after SIGCONT. */
static void tweak_short_timeout(kg_redis_options *o)
{
    o->command_timeout = 0.3;
    o->connect_timeout = 0.3;
}

static void test_command_timeout(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server s;
    assert_int_equal(kg_redis_server_start(&s, NULL), 0);
    kg_backend_t *b = backend_for(&s, tweak_short_timeout, 1);
    assert_int_equal(send_one(b, 0, "wf-t", 1), 0);
    kill(s.pid, SIGSTOP);
    double t0 = kg_test_now();
    assert_int_equal(send_one(b, 0, "wf-t", 2), KG_ETIMEOUT);
    double took = kg_test_now() - t0;
    assert_true(took >= 0.25 && took < 1.0);
    assert_false(kg_backend_is_connected(b));
    kill(s.pid, SIGCONT);
    /* The stopped server may still execute the timed-out batch when it
     * resumes: that is the at-least-once case documented in redis.c. */
    assert_true(KG_WAIT_UNTIL(send_one(b, 0, "wf-t", 3) == 0, 5));
    assert_true(kg_backend_is_connected(b));
    kg_backend_free(b);
    kg_redis_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_workflow_layout),
        cmocka_unit_test(test_active_sets),
        cmocka_unit_test(test_active_sets_out_of_order),
        cmocka_unit_test(test_script_flushed),
        cmocka_unit_test(test_large_batch_grouping),
        cmocka_unit_test(test_metric_without_workflow),
        cmocka_unit_test(test_prefix_and_ttl),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_lean_layout),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_auth_and_db),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_command_timeout),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
