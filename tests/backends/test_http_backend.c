/* test_http_backend.c - the webhook backend against a real HTTP receiver on
 * loopback: body format, headers, keep-alive, and every failure mode the
 * dispatcher's breaker relies on (500, stall past the timeout, closed
 * connection, nobody listening). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_events.h"
#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "testutil.h"

static kg_backend_t *backend_url(const char *url, bool bare, double timeout, unsigned workers)
{
    static const char *const headers[] = {"Authorization: Bearer t0ken", "X-Kg-Test: yes", NULL};
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = url;
    o.headers = headers;
    o.single_as_bare = bare;
    if (timeout > 0) {
        o.timeout = timeout;
        o.connect_timeout = timeout;
    }
    kg_error_t err;
    kg_backend_t *b = kg_http_backend_new(&o, &err);
    if (!b)
        fail_msg("kg_http_backend_new: %s", err.message);
    assert_string_equal(kg_backend_name(b), "http");
    assert_int_equal(kg_backend_connect(b, workers), 0);
    return b;
}

static int send_n(kg_backend_t *b, unsigned worker, size_t n, const char *wf, kg_test_event *ev)
{
    kg_event_view views[128];
    assert_true(n <= 128);
    for (size_t i = 0; i < n; i++)
        kg_test_event_fill(&ev[i], i % 2 ? "node_completed" : "node_started", "node-x", wf, i,
                           kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    return kg_backend_send_batch(b, worker, &batch);
}

static void test_batch_body_and_headers(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_backend_t *b = backend_url(kg_http_receiver_url(rx), false, 0, 1);
    kg_test_event ev[3];
    assert_int_equal(send_n(b, 0, 3, "wf-h", ev), 0);
    assert_true(kg_backend_is_connected(b));
    assert_int_equal(kg_http_receiver_accepted(rx), 1);
    assert_int_equal(kg_http_receiver_events(rx), 3);

    const kg_http_request *q = kg_http_receiver_request(rx, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/ingest");
    char h[256];
    assert_true(kg_http_request_header(q, "Content-Type", h, sizeof h));
    assert_string_equal(h, "application/json");
    assert_true(kg_http_request_header(q, "authorization", h, sizeof h));
    assert_string_equal(h, "Bearer t0ken");
    assert_true(kg_http_request_header(q, "X-Kg-Test", h, sizeof h));
    assert_false(kg_http_request_header(q, "Expect", h, sizeof h));

    json_error_t jerr;
    json_t *body = json_loadb(q->body, q->body_len, 0, &jerr);
    if (!body)
        fail_msg("body is not JSON: %s: %s", jerr.text, q->body);
    assert_int_equal(json_object_size(body), 4);
    assert_int_equal(json_integer_value(json_object_get(body, "batch_size")), 3);
    /* batch_id (an extra field): a UUID, also sent as the Idempotency-Key. */
    const char *bid = json_string_value(json_object_get(body, "batch_id"));
    assert_non_null(bid);
    assert_int_equal(strlen(bid), 36);
    assert_true(kg_http_request_header(q, "Idempotency-Key", h, sizeof h));
    assert_string_equal(h, bid);
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *want = json_loads(ev[i].json, 0, NULL);
        assert_true(json_equal(json_array_get(events, i), want));
        json_decref(want);
    }
    /* ISO 8601 UTC with microseconds: 2026-11-27T17:36:13.123456Z */
    const char *ts = json_string_value(json_object_get(body, "timestamp"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 27);
    assert_true(ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[26] == 'Z');
    json_decref(body);

    /* A batch of one is still wrapped unless single_as_bare. */
    assert_int_equal(send_n(b, 0, 1, "wf-h", ev), 0);
    q = kg_http_receiver_request(rx, 1);
    body = json_loadb(q->body, q->body_len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "batch_size")), 1);
    json_decref(body);
    kg_backend_free(b);

    b = backend_url(kg_http_receiver_url(rx), true, 0, 1);
    assert_int_equal(send_n(b, 0, 1, "wf-bare", ev), 0);
    q = kg_http_receiver_request(rx, 2);
    assert_string_equal(q->body, ev[0].json);
    assert_int_equal(q->events, 1);
    /* ...but a bigger batch is not. */
    assert_int_equal(send_n(b, 0, 2, "wf-bare", ev), 0);
    q = kg_http_receiver_request(rx, 3);
    assert_non_null(strstr(q->body, "\"batch_size\":2"));
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

/* One worker, many batches: one TCP connection. */
static void test_keep_alive(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    kg_backend_t *b = backend_url(kg_http_receiver_url(rx), false, 0, 2);
    kg_test_event ev[100];
    for (int i = 0; i < 50; i++)
        assert_int_equal(send_n(b, (unsigned)(i % 2), 100, "wf-ka", ev), 0);
    assert_int_equal(kg_http_receiver_accepted(rx), 50);
    assert_int_equal(kg_http_receiver_events(rx), 5000);
    assert_int_equal(kg_http_receiver_connections(rx), 2);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_500_then_recovery(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    kg_backend_t *b = backend_url(kg_http_receiver_url(rx), false, 0, 1);
    kg_test_event ev[10];
    kg_http_receiver_misbehave(rx, KG_HTTP_RECEIVER_FAIL, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_n(b, 0, 10, "wf-500", ev), KG_EBACKEND);
    /* An error status still means the endpoint is reachable. */
    assert_true(kg_backend_is_connected(b));
    assert_int_equal(send_n(b, 0, 10, "wf-500", ev), 0);
    assert_int_equal(kg_http_receiver_accepted(rx), 1);
    assert_int_equal(kg_http_receiver_rejected(rx), 3);
    /* 500s keep the connection. */
    assert_int_equal(kg_http_receiver_connections(rx), 1);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_stall_past_timeout(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    kg_http_receiver_set_stall(rx, 10.0);
    kg_backend_t *b = backend_url(kg_http_receiver_url(rx), false, 0.3, 1);
    kg_test_event ev[10];
    kg_http_receiver_misbehave(rx, KG_HTTP_RECEIVER_STALL, 1);
    double t0 = kg_test_now();
    assert_int_equal(send_n(b, 0, 10, "wf-stall", ev), KG_ETIMEOUT);
    double took = kg_test_now() - t0;
    assert_true(took >= 0.25 && took < 1.5);
    assert_false(kg_backend_is_connected(b));
    assert_int_equal(send_n(b, 0, 10, "wf-stall", ev), 0);
    assert_true(kg_backend_is_connected(b));
    assert_int_equal(kg_http_receiver_events(rx), 10);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_closed_connection(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    kg_backend_t *b = backend_url(kg_http_receiver_url(rx), false, 1.0, 1);
    kg_test_event ev[10];
    /* Warm the connection first, so the failure hits a reused one too. */
    assert_int_equal(send_n(b, 0, 10, "wf-close", ev), 0);
    kg_http_receiver_set_mode(rx, KG_HTTP_RECEIVER_CLOSE);
    assert_int_equal(send_n(b, 0, 10, "wf-close", ev), KG_ECONNECT);
    assert_false(kg_backend_is_connected(b));
    kg_http_receiver_set_mode(rx, KG_HTTP_RECEIVER_OK);
    assert_int_equal(send_n(b, 0, 10, "wf-close", ev), 0);
    assert_true(kg_backend_is_connected(b));
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_nobody_listening(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ingest", kg_test_free_port());
    kg_backend_t *b = backend_url(url, false, 1.0, 1);
    kg_test_event ev[5];
    double t0 = kg_test_now();
    assert_int_equal(send_n(b, 0, 5, "wf-none", ev), KG_ECONNECT);
    assert_true(kg_test_now() - t0 < 1.0);
    assert_false(kg_backend_is_connected(b));
    kg_backend_disconnect(b);
    assert_false(kg_backend_is_connected(b));
    kg_backend_free(b);
}

static void test_bad_options(void **state)
{
    (void)state;
    kg_http_options o;
    kg_http_options_init(&o);
    assert_true(o.verify_tls);
    kg_error_t err;
    assert_null(kg_http_backend_new(&o, &err));
    assert_int_equal(err.code, KG_EINVAL);
    o.url = "ftp://example.com/";
    assert_null(kg_http_backend_new(&o, &err));
    assert_int_equal(err.code, KG_EINVAL);
    /* Malformed URLs are refused up front, naming the URL (they used to be
     * accepted and then fail every batch without a reason). */
    static const char *const bad_urls[] = {"http://", "https://", "http:///path", "http://a b/",
                                           "http://host:99999/", "http://host:port/", NULL};
    for (size_t i = 0; bad_urls[i]; i++) {
        o.url = bad_urls[i];
        if (kg_http_backend_new(&o, &err))
            fail_msg("url '%s' accepted", bad_urls[i]);
        assert_int_equal(err.code, KG_EINVAL);
        assert_non_null(strstr(err.message, bad_urls[i]));
    }
    static const char *const bad[] = {"NoColonHere", NULL};
    o.url = "http://127.0.0.1:1/";
    o.headers = bad;
    assert_null(kg_http_backend_new(&o, &err));
    assert_int_equal(err.code, KG_EINVAL);
    assert_null(kg_http_backend_new(NULL, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_body_and_headers),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_500_then_recovery),
        cmocka_unit_test(test_stall_past_timeout),
        cmocka_unit_test(test_closed_connection),
        cmocka_unit_test(test_nobody_listening),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
