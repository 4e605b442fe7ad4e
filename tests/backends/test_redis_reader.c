/* test_redis_reader.c - the consumer side (kaygraph/redis_reader.h) reading
 * what the Redis backend wrote to a real redis-server: live feed, fetches,
 * stream replay, and surviving a server restart; and peers that are not
 * (or no longer) Redis (tests/backends/fake_peer.c): protocol garbage, an
 * HTTP server on the port, bulk strings that never end. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_events.h"
#include "fake_peer.h"
#include "kaygraph/backends.h"
#include "kaygraph/redis_reader.h"
#include "redis_server.h"
#include "testutil.h"

#define PFX "kaygraph:monitoring:"

static kg_redis_server server;

static int group_setup(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        return 0;
    return kg_redis_server_start(&server, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    kg_redis_server_stop(&server);
    return 0;
}

static void flush(const kg_redis_server *s)
{
    redisContext *c = kg_redis_server_client(s);
    assert_non_null(c);
    freeReplyObject(kg_redis_cmd(c, "FLUSHALL"));
    redisFree(c);
}

static kg_backend_t *backend(const kg_redis_server *s, long stream_maxlen)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    o.stream_maxlen = stream_maxlen;
    o.password = s->password[0] ? s->password : NULL;
    kg_backend_t *b = kg_redis_backend_new(&o, NULL);
    assert_non_null(b);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    return b;
}

static kg_redis_reader_t *reader(const kg_redis_server *s, double timeout)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    o.password = s->password[0] ? s->password : NULL;
    o.connect_timeout = timeout;
    o.command_timeout = timeout;
    kg_redis_reader_t *r = NULL;
    kg_error_t err;
    if (kg_redis_reader_new(&o, &r, &err) != 0)
        fail_msg("reader: %s", err.message);
    return r;
}

static void send_events(kg_backend_t *b, const kg_test_event *ev, size_t n)
{
    kg_event_view views[64];
    assert_true(n <= 64);
    kg_batch batch = kg_test_batch(ev, n, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
}

static void test_live_feed(void **state)
{
    (void)state;
    if (!server.pid)
        skip();
    flush(&server);
    kg_redis_reader_t *r = reader(&server, 2.0);
    kg_error_t err;
    char *json = NULL, *chan = NULL;
    size_t len = 0;
    assert_int_equal(kg_redis_reader_next(r, 0.1, &json, &len, NULL, &err), KG_EINVAL);
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    assert_int_equal(kg_redis_reader_subscribe(r, "error", false, &err), 0);

    /* Nothing published yet: a bounded wait, then KG_ETIMEOUT. */
    double t0 = kg_test_now();
    assert_int_equal(kg_redis_reader_next(r, 0.2, &json, &len, NULL, &err), KG_ETIMEOUT);
    double took = kg_test_now() - t0;
    assert_true(took >= 0.19 && took < 1.0);

    kg_backend_t *b = backend(&server, 0);
    kg_test_event ev[KG_TEST_DEMO_EVENTS + 1];
    size_t n = kg_test_demo_run(ev, "wf-live", 1, kg_test_epoch_ms());
    kg_test_event_fill(&ev[n++], "node_failed", "storage", "wf-live", 99, kg_test_epoch_ms());
    send_events(b, ev, n);

    /* Every event on "all" in order, and the one error event on "error". */
    size_t on_all = 0, on_error = 0;
    for (size_t i = 0; i < n + 1; i++) {
        assert_int_equal(kg_redis_reader_next(r, 5.0, &json, &len, &chan, &err), 0);
        assert_int_equal(len, strlen(json));
        json_t *j = json_loads(json, 0, NULL);
        assert_non_null(j);
        const char *id = json_string_value(json_object_get(j, "event_id"));
        if (strcmp(chan, PFX "all") == 0) {
            assert_string_equal(id, ev[on_all].id);
            on_all++;
        } else {
            assert_string_equal(chan, PFX "error");
            assert_string_equal(id, ev[n - 1].id);
            on_error++;
        }
        json_decref(j);
        free(json);
        free(chan);
    }
    assert_int_equal(on_all, n);
    assert_int_equal(on_error, 1);
    assert_int_equal(kg_redis_reader_next(r, 0.05, &json, &len, NULL, &err), KG_ETIMEOUT);
    assert_int_equal(kg_redis_reader_reconnects(r), 0);
    kg_backend_free(b);
    kg_redis_reader_free(r);
}

static void test_pattern(void **state)
{
    (void)state;
    if (!server.pid)
        skip();
    kg_redis_reader_t *r = reader(&server, 2.0);
    assert_int_equal(kg_redis_reader_subscribe(r, "*", true, NULL), 0);
    kg_backend_t *b = backend(&server, 0);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-pat", 1, kg_test_epoch_ms());
    send_events(b, ev, n);
    size_t got = 0;
    char *json;
    size_t len;
    while (kg_redis_reader_next(r, 0.5, &json, &len, NULL, NULL) == 0) {
        free(json);
        got++;
    }
    assert_int_equal(got, 2 * n);
    kg_backend_free(b);
    kg_redis_reader_free(r);
}

/* What a stream replay must see: the demo events, then the open run's, each
 * exactly as it was sent. */
typedef struct replay_check {
    char after[64];
    const kg_test_event *ev, *open;
    size_t n, seen;
} replay_check;

static void check_entry(void *ud, const kg_stream_entry *e)
{
    replay_check *c = ud;
    assert_true(c->seen < c->n + 3);
    const kg_test_event *want = c->seen < c->n ? &c->ev[c->seen] : &c->open[c->seen - c->n];
    assert_non_null(e->event);
    assert_int_equal(e->event_len, strlen(want->json));
    assert_memory_equal(e->event, want->json, e->event_len);
    snprintf(c->after, sizeof c->after, "%s", e->id);
    c->seen++;
}

static void test_fetch(void **state)
{
    (void)state;
    if (!server.pid)
        skip();
    flush(&server);
    kg_backend_t *b = backend(&server, 1000);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-fetch", 1, kg_test_epoch_ms());
    send_events(b, ev, n);
    kg_test_event open[3];
    kg_test_event_fill(&open[0], "workflow_started", "g", "wf-open", 1, kg_test_epoch_ms());
    kg_test_event_fill(&open[1], "node_started", "beta", "wf-open", 2, kg_test_epoch_ms());
    kg_test_event_fill(&open[2], "node_started", "alpha", "wf-open", 3, kg_test_epoch_ms());
    send_events(b, open, 3);

    kg_redis_reader_t *r = reader(&server, 2.0);
    kg_error_t err;
    json_t *arr = NULL;
    assert_int_equal(kg_redis_reader_workflow_events(r, "wf-fetch", 0, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++) {
        json_t *want = json_loads(ev[i].json, 0, NULL);
        assert_true(json_equal(json_array_get(arr, i), want));
        json_decref(want);
    }
    json_decref(arr);
    assert_int_equal(kg_redis_reader_workflow_events(r, "wf-fetch", 5, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 4), "event_id")),
                        ev[n - 1].id);
    json_decref(arr);
    assert_int_equal(kg_redis_reader_workflow_events(r, "no-such-run", 0, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);

    assert_int_equal(kg_redis_reader_node_events(r, "validator", 0, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 7);
    json_decref(arr);

    json_t *one = NULL;
    assert_int_equal(kg_redis_reader_event(r, ev[3].id, &one, &err), 0);
    assert_string_equal(json_string_value(json_object_get(one, "event_name")), ev[3].name);
    json_decref(one);
    assert_int_equal(kg_redis_reader_event(r, "nope", &one, &err), KG_ENOTFOUND);
    assert_null(one);

    assert_int_equal(kg_redis_reader_active_nodes(r, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), "alpha");
    assert_string_equal(json_string_value(json_array_get(arr, 1)), "beta");
    json_decref(arr);
    assert_int_equal(kg_redis_reader_active_workflows(r, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), "wf-open");
    json_decref(arr);

    json_t *counters = NULL;
    assert_int_equal(kg_redis_reader_counters(r, &counters, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(counters, "lifecycle")), 25);
    assert_int_equal(json_integer_value(json_object_get(counters, "data")), 10);
    assert_int_equal(json_integer_value(json_object_get(counters, "metric")), 5);
    assert_int_equal(json_integer_value(json_object_get(counters, "error")), 0);
    json_decref(counters);

    /* Replay the stream in pages of 10 until caught up. */
    replay_check chk = {.after = "0", .ev = ev, .n = n, .open = open};
    for (int page = 0; page < 10; page++) {
        size_t m = 0;
        assert_int_equal(kg_redis_reader_stream_scan(r, chk.after, 10, check_entry, &chk, &m, &err), 0);
        if (m == 0)
            break;
    }
    size_t seen = chk.seen;
    assert_int_equal(seen, n + 3);
    kg_redis_reader_free(r);
    kg_backend_free(b);
}

/* ---- the lean layout ------------------------------------------------------------- */

static kg_backend_t *lean_backend(const kg_redis_server *s)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    o.stream_maxlen = 1000;
    o.layout = KG_REDIS_LAYOUT_LEAN;
    o.password = s->password[0] ? s->password : NULL;
    kg_backend_t *b = kg_redis_backend_new(&o, NULL);
    assert_non_null(b);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    return b;
}

typedef struct lean_replay {
    char after[64];
    char ids[64][40];
    size_t seen;
    char first_entry[64];
    bool one_entry;
} lean_replay;

static void lean_entry(void *ud, const kg_stream_entry *e)
{
    lean_replay *lr = ud;
    if (lr->seen == 0)
        snprintf(lr->first_entry, sizeof lr->first_entry, "%s", e->id);
    else if (strcmp(lr->first_entry, e->id) != 0)
        lr->one_entry = false;
    snprintf(lr->after, sizeof lr->after, "%s", e->id);
    json_t *j = json_loadb(e->event, e->event_len, 0, NULL);
    assert_non_null(j);
    if (lr->seen < 64)
        snprintf(lr->ids[lr->seen], sizeof lr->ids[0], "%s",
                 json_string_value(json_object_get(j, "event_id")));
    lr->seen++;
    json_decref(j);
}

/* What the lean layout writes reads back as the seed layout's does: the
 * live feed event by event (a message per batch is split), the stream
 * replay event by event (an entry per batch), a run's events in seq order
 * from its hash; the per-node index, which the lean layout has not, is an
 * error that says so. */
static void test_lean_layout_reads_back(void **state)
{
    (void)state;
    if (!server.pid)
        skip();
    flush(&server);
    kg_redis_reader_t *r = reader(&server, 2.0);
    kg_error_t err;
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    char *json = NULL, *chan = NULL;
    size_t len = 0;
    assert_int_equal(kg_redis_reader_next(r, 0.1, &json, &len, NULL, &err), KG_ETIMEOUT);

    kg_backend_t *b = lean_backend(&server);
    kg_test_event ev[KG_TEST_DEMO_EVENTS];
    size_t n = kg_test_demo_run(ev, "wf-lean", 40, kg_test_epoch_ms());
    send_events(b, ev, n);

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kg_redis_reader_next(r, 5.0, &json, &len, &chan, &err), 0);
        assert_string_equal(chan, PFX "all");
        assert_int_equal(len, strlen(ev[i].json));
        assert_string_equal(json, ev[i].json);
        free(json);
        free(chan);
    }
    assert_int_equal(kg_redis_reader_next(r, 0.05, &json, &len, NULL, &err), KG_ETIMEOUT);

    lean_replay lr = {.after = "0", .one_entry = true};
    size_t m = 0;
    assert_int_equal(kg_redis_reader_stream_scan(r, lr.after, 10, lean_entry, &lr, &m, &err), 0);
    assert_int_equal(m, n);
    assert_int_equal(lr.seen, n);
    assert_true(lr.one_entry);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(lr.ids[i], ev[i].id);
    assert_int_equal(kg_redis_reader_stream_scan(r, lr.after, 10, lean_entry, &lr, &m, &err), 0);
    assert_int_equal(m, 0);

    json_t *arr = NULL;
    assert_int_equal(kg_redis_reader_workflow_events(r, "wf-lean", 0, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, i), "event_id")),
                            ev[i].id);
    json_decref(arr);
    assert_int_equal(kg_redis_reader_workflow_events(r, "wf-lean", 3, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 2), "event_id")),
                        ev[n - 1].id);
    json_decref(arr);
    assert_int_equal(kg_redis_reader_node_events(r, "validator", 0, &arr, &err), KG_EINVAL);
    assert_non_null(strstr(err.message, "lean"));
    assert_null(arr);
    kg_redis_reader_free(r);
    kg_backend_free(b);
}

/* A batch whose events add up to more than a reader may take in one reply
 * element goes out as several messages and stream entries. */
static void test_lean_large_batch_split(void **state)
{
    (void)state;
    if (!server.pid)
        skip();
    flush(&server);
    kg_redis_reader_t *r = reader(&server, 5.0);
    kg_error_t err;
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    char *json = NULL;
    size_t len = 0;
    assert_int_equal(kg_redis_reader_next(r, 0.1, &json, &len, NULL, &err), KG_ETIMEOUT);
    kg_backend_t *b = lean_backend(&server);
    enum { N = 40, BIG = 100000 };   /* 4 MB in all */
    static char texts[N][BIG + 200];
    kg_event_view views[N];
    for (int i = 0; i < N; i++) {
        int k = snprintf(texts[i], sizeof texts[i], "{\"event_id\":\"big-%d\",\"pad\":\"", i);
        memset(texts[i] + k, 'x', BIG);
        snprintf(texts[i] + k + BIG, 200, "\"}");
        views[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i]),
                                   .event_id = "", .event_type = "lifecycle",
                                   .event_name = "node_started", .node_id = "n",
                                   .workflow_id = "wf-big", .seq = (uint64_t)i + 1};
    }
    kg_batch batch = {.events = views, .count = N};
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(kg_redis_reader_next(r, 5.0, &json, &len, NULL, &err), 0);
        assert_int_equal(len, views[i].json_len);
        assert_int_equal(memcmp(json, texts[i], len), 0);
        free(json);
    }
    redisContext *c = kg_redis_server_client(&server);
    long long entries = kg_redis_int(c, "XLEN " PFX "stream");
    assert_true(entries >= 4 && entries <= 5);   /* about 1 MiB each */
    assert_int_equal(kg_redis_int(c, "HLEN " PFX "run:wf-big"), N);
    redisFree(c);
    kg_redis_reader_free(r);
    kg_backend_free(b);
}

/* Kill the server under a subscribed reader, restart it: the reader
 * resubscribes by itself and says it reconnected; fetches work again. */
static void test_reconnect(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server s;
    kg_redis_server_opts so = {.password = "pw"};
    assert_int_equal(kg_redis_server_start(&s, &so), 0);
    kg_redis_reader_t *r = reader(&s, 0.5);
    kg_error_t err;
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    json_t *arr = NULL;
    assert_int_equal(kg_redis_reader_active_nodes(r, &arr, &err), 0);
    json_decref(arr);

    kg_redis_server_kill(&s);
    char *json = NULL;
    size_t len;
    double t0 = kg_test_now();
    assert_int_equal(kg_redis_reader_next(r, 0.3, &json, &len, NULL, &err), KG_ECONNECT);
    assert_true(kg_test_now() - t0 < 1.5);
    assert_int_equal(kg_redis_reader_active_nodes(r, &arr, &err), KG_ECONNECT);

    assert_int_equal(kg_redis_server_restart(&s), 0);
    kg_backend_t *b = backend(&s, 0);
    /* Publish until the resubscribed reader hears one: the reader may not
     * have resubscribed yet when the first is published. */
    bool heard = false;
    double deadline = kg_test_now() + 10;
    for (uint64_t seq = 1; !heard && kg_test_now() < deadline; seq++) {
        kg_test_event ev[1];
        kg_test_event_fill(&ev[0], "node_started", "n", "wf-re", seq, kg_test_epoch_ms());
        send_events(b, ev, 1);
        if (kg_redis_reader_next(r, 0.2, &json, &len, NULL, &err) == 0) {
            heard = strstr(json, "wf-re") != NULL;
            free(json);
        }
    }
    assert_true(heard);
    assert_true(kg_redis_reader_reconnects(r) >= 1);
    assert_int_equal(kg_redis_reader_active_nodes(r, &arr, &err), 0);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    kg_backend_free(b);
    kg_redis_reader_free(r);
    kg_redis_server_stop(&s);
}


/* ---- misbehaving peers (no redis-server needed) ------------------------------------- */

static kg_redis_reader_t *peer_reader(const kg_fake_peer *p, size_t max_reply)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.max_reply = max_reply;
    o.port = kg_fake_peer_port(p);
    o.connect_timeout = 1.0;
    o.command_timeout = 1.0;
    kg_redis_reader_t *r = NULL;
    kg_error_t err;
    if (kg_redis_reader_new(&o, &r, &err) != 0)
        fail_msg("reader: %s", err.message);
    return r;
}

/* Follow the live feed for `seconds` as a consumer does (next() in a loop,
 * subscribing again while it fails); no call may deliver a message, and
 * unless `quiet_ok` none may report a quiet but healthy connection
 * (KG_ETIMEOUT: a peer that confirmed SUBSCRIBE may be slow with its
 * garbage).  Returns the number of failed calls; *last gets the last
 * failure. */
static unsigned follow_failing(kg_redis_reader_t *r, double seconds, bool quiet_ok,
                               kg_error_t *last)
{
    unsigned failed = 0;
    double until = kg_test_now() + seconds;
    while (kg_test_now() < until) {
        char *json = NULL;
        size_t len;
        kg_error_t err;
        kg_error_clear(&err);
        int rc = kg_redis_reader_next(r, 0.1, &json, &len, NULL, &err);
        free(json);
        if (rc == 0 || (rc == KG_ETIMEOUT && !quiet_ok))
            fail_msg("next() on a peer that is not Redis returned %s (%s)", kg_err_name(rc),
                     err.message);
        if (rc != KG_ETIMEOUT) {
            failed++;
            *last = err;
        }
    }
    return failed;
}

/* A peer answering SUBSCRIBE with bytes that are not RESP, or an HTTP server
 * on the port: the reader reports a protocol error, never "subscribed", and
 * backs off exponentially (it used to reconnect thousands of times a
 * second).  3 s at 0.1 s doubling to 5 s allow 5 attempts. */
static void check_not_redis(kg_fake_script script, const char *needle)
{
    kg_fake_peer *p = kg_fake_peer_start(script, script, NULL);
    assert_non_null(p);
    kg_redis_reader_t *r = peer_reader(p, 0);
    kg_error_t err;
    kg_error_clear(&err);
    int rc = kg_redis_reader_subscribe(r, NULL, false, &err);
    if (rc != KG_EPROTO || !strstr(err.message, needle))
        fail_msg("subscribe: %s (%s), expected KG_EPROTO naming \"%s\"", kg_err_name(rc),
                 err.message, needle);
    kg_error_t last;
    kg_error_clear(&last);
    follow_failing(r, 3.0, false, &last);
    unsigned conns = kg_fake_peer_connections(p);
    print_message("%s peer: %u connections in 3 s; last error: %s\n",
                  script == KG_FAKE_HTTP ? "HTTP" : "garbage", conns, last.message);
    assert_true(conns >= 2 && conns <= 6);
    assert_int_equal(last.code, KG_EPROTO);
    assert_non_null(strstr(last.message, needle));
    assert_int_equal(kg_redis_reader_reconnects(r), 0);
    kg_redis_reader_status st;
    kg_redis_reader_status_get(r, &st);
    assert_false(st.subscribed);
    assert_true(st.failures >= 2 && st.failures == conns);
    assert_int_equal(st.last_code, KG_EPROTO);
    kg_redis_reader_free(r);
    kg_fake_peer_stop(p);
}

static void test_peer_garbage(void **state)
{
    (void)state;
    check_not_redis(KG_FAKE_GARBAGE, "Protocol error");
}

static void test_peer_http(void **state)
{
    (void)state;
    check_not_redis(KG_FAKE_HTTP, "Protocol error");
}

/* A peer that confirms SUBSCRIBE and then sends garbage: each connection is
 * short-lived, so the backoff grows as for a refused one. */
static void test_peer_garbage_after_subscribe(void **state)
{
    (void)state;
    kg_fake_peer *p = kg_fake_peer_start(KG_FAKE_SUB_THEN_GARBAGE, KG_FAKE_SUB_THEN_GARBAGE, NULL);
    assert_non_null(p);
    kg_redis_reader_t *r = peer_reader(p, 0);
    kg_error_t err;
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    kg_error_t last;
    kg_error_clear(&last);
    follow_failing(r, 3.0, true, &last);
    unsigned conns = kg_fake_peer_connections(p);
    print_message("confirm-then-garbage peer: %u connections in 3 s; last error: %s\n", conns,
                  last.message);
    assert_true(conns >= 2 && conns <= 6);
    assert_int_equal(last.code, KG_EPROTO);
    kg_redis_reader_free(r);
    kg_fake_peer_stop(p);
}

/* A peer that behaves (a confirmed subscription, one message) and then hangs
 * up, again and again: a lost connection that delivered is re-made at once,
 * but only 3 times in a row and then once a second beside the backoff, so
 * this costs a bounded number of connections too (a reader that reconnects
 * at once every time made thousands). */
static void test_peer_message_then_close(void **state)
{
    (void)state;
    kg_fake_peer *p = kg_fake_peer_start(KG_FAKE_SUB_MESSAGE_CLOSE, KG_FAKE_SUB_MESSAGE_CLOSE,
                                         "{\"event_id\":\"m\"}");
    assert_non_null(p);
    kg_redis_reader_t *r = peer_reader(p, 0);
    kg_error_t err;
    assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
    unsigned messages = 0;
    double until = kg_test_now() + 3.0;
    while (kg_test_now() < until) {
        char *json = NULL;
        size_t len;
        if (kg_redis_reader_next(r, 0.1, &json, &len, NULL, &err) == 0)
            messages++;
        free(json);
    }
    unsigned conns = kg_fake_peer_connections(p);
    print_message("message-then-close peer: %u connections, %u messages in 3 s\n", conns,
                  messages);
    assert_true(messages >= 3);
    assert_true(conns <= 15);
    kg_redis_reader_free(r);
    kg_fake_peer_stop(p);
}

/* Peak RSS of this process since the last reset (kB), or -1; resetting it
 * needs Linux >= 4.0 (clear_refs "5"). */
static bool hwm_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static long hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

#define REPLY_CAP (4u << 20)       /* max_reply in these tests (default 16 MiB) */
#define SOCKET_SLACK (16u << 20)   /* what loopback socket buffers may hold unread */
/* Peak RSS allowed to grow by per connection: the capped buffer, grown 1 MiB
 * at a time by hiredis, with ASan's quarantine keeping the old copies (a
 * reader without a bound grew by more than 800 MiB on one connection). */
#define RSS_BOUND_KB (32L << 10)

/* A bulk string that declares 999,999,999,999 bytes and streams them: the
 * reader gives up after max_reply bytes with a clear error, instead of
 * buffering all it is sent (the peer sends at most 256 MiB per connection; a
 * reader without a bound takes all of it).  The subscriber retries with
 * backoff, so the bound is per connection. */
static void check_huge(kg_fake_script script, bool subscriber)
{
    kg_fake_peer *p = kg_fake_peer_start(script, script, NULL);
    assert_non_null(p);
    kg_redis_reader_t *r = peer_reader(p, REPLY_CAP);
    bool have_hwm = hwm_reset();
    long hwm0 = hwm_kb();
    kg_error_t err;
    kg_error_clear(&err);
    int rc;
    double t0 = kg_test_now();
    if (subscriber) {
        assert_int_equal(kg_redis_reader_subscribe(r, NULL, false, &err), 0);
        char *json = NULL;
        size_t len;
        rc = kg_redis_reader_next(r, 3, &json, &len, NULL, &err);
        free(json);
    } else {
        json_t *ev = NULL;
        rc = kg_redis_reader_event(r, "some-id", &ev, &err);
        json_decref(ev);
    }
    double took = kg_test_now() - t0;
    uint64_t sent = kg_fake_peer_bytes_sent(p);
    unsigned conns = kg_fake_peer_connections(p);
    long grew = hwm_kb() - hwm0;
    print_message("%s: %s after %.2f s, %llu bytes sent on %u connections, peak RSS +%ld kB: %s\n",
                  subscriber ? "subscriber" : "command", kg_err_name(rc), took,
                  (unsigned long long)sent, conns, grew, err.message);
    assert_int_equal(rc, KG_EPROTO);
    assert_non_null(strstr(err.message, "limit"));
    assert_true(conns >= 1 && sent <= conns * (uint64_t)(REPLY_CAP + SOCKET_SLACK));
    if (have_hwm && hwm0 > 0)
        assert_true(grew < (long)conns * RSS_BOUND_KB);
    /* The connection was closed, not kept half-read. */
    assert_true(KG_WAIT_UNTIL(kg_fake_peer_closed(p) >= 1, 5));
    kg_redis_reader_free(r);
    kg_fake_peer_stop(p);
}

static void test_peer_huge_bulk_message(void **state)
{
    (void)state;
    check_huge(KG_FAKE_SUB_HUGE_MESSAGE, true);
}

static void test_peer_huge_bulk_reply(void **state)
{
    (void)state;
    check_huge(KG_FAKE_HUGE_BULK, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_feed),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_lean_layout_reads_back),
        cmocka_unit_test(test_lean_large_batch_split),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_peer_garbage),
        cmocka_unit_test(test_peer_http),
        cmocka_unit_test(test_peer_garbage_after_subscribe),
        cmocka_unit_test(test_peer_message_then_close),
        cmocka_unit_test(test_peer_huge_bulk_message),
        cmocka_unit_test(test_peer_huge_bulk_reply),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
