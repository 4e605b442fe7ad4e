/* test_redis_reader.c - the consumer side (kaygraph/redis_reader.h) reading
 * what the Redis backend wrote to a real redis-server: live feed, fetches,
 * stream replay, and surviving a server restart. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_events.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_feed),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_reconnect),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
