/* test_http_tls.c - the webhook backend over https:// against the test
 * receiver's TLS mode (a self-signed certificate generated at test start):
 *
 *   - verify_tls = false accepts the certificate: batches arrive, the TLS
 *     connection is kept alive and reused;
 *   - verify_tls = true (the default) refuses it: the send fails with
 *     KG_ECONNECT, nothing is delivered, the receiver sees the aborted
 *     handshake, and kg_http_backend_last_error() names the reason;
 *   - through the whole monitor pipeline over https://, every event arrives.
 *
 * Skips (with a message) only when the tests were built without OpenSSL. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk_events.h"
#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "kaygraph/monitor.h"
#include "testutil.h"

/* In src/backends/http.c; to move to kaygraph/backends.h. */

static kg_http_receiver_t *tls_receiver(void)
{
    kg_http_receiver_t *rx = kg_http_receiver_start_tls();
    if (!rx && kg_test_skip_allowed("no TLS receiver (tests built without OpenSSL)"))
        skip();
    assert_non_null(rx);
    assert_int_equal(strncmp(kg_http_receiver_url(rx), "https://", 8), 0);
    assert_non_null(strstr(kg_http_receiver_cert_pem(rx), "BEGIN CERTIFICATE"));
    return rx;
}

static kg_backend_t *https_backend(const char *url, bool verify, unsigned workers)
{
    kg_http_options o;
    kg_http_options_init(&o);
    assert_true(o.verify_tls);   /* verification is the default */
    o.url = url;
    o.verify_tls = verify;
    o.timeout = 5;
    o.connect_timeout = 5;
    kg_error_t err;
    kg_backend_t *b = kg_http_backend_new(&o, &err);
    if (!b)
        fail_msg("kg_http_backend_new: %s", err.message);
    assert_int_equal(kg_backend_connect(b, workers), 0);
    return b;
}

static int send_events(kg_backend_t *b, size_t n, const char *wf)
{
    kg_test_event ev[8];
    kg_event_view views[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        kg_test_event_fill(&ev[i], "node_started", "tls-node", wf, i, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    return kg_backend_send_batch(b, 0, &batch);
}

static void test_https_without_verification(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = tls_receiver();
    kg_backend_t *b = https_backend(kg_http_receiver_url(rx), false, 1);
    char why[256];
    assert_false(kg_http_backend_last_error(b, why, sizeof why));
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_events(b, 4, "wf-tls"), 0);
    assert_true(kg_backend_is_connected(b));
    assert_int_equal(kg_http_receiver_accepted(rx), 3);
    assert_int_equal(kg_http_receiver_events(rx), 12);
    /* One TLS connection, kept alive across the batches. */
    assert_int_equal(kg_http_receiver_connections(rx), 1);
    assert_int_equal(kg_http_receiver_tls_failures(rx), 0);
    const kg_http_request *q = kg_http_receiver_request(rx, 0);
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    assert_non_null(body);
    assert_int_equal(json_integer_value(json_object_get(body, "batch_size")), 4);
    json_decref(body);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_https_verification_rejects_self_signed(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = tls_receiver();
    kg_backend_t *b = https_backend(kg_http_receiver_url(rx), true, 1);
    assert_int_equal(send_events(b, 2, "wf-tls-bad"), KG_ECONNECT);
    assert_false(kg_backend_is_connected(b));
    char why[256] = "";
    assert_true(kg_http_backend_last_error(b, why, sizeof why));
    print_message("verify_tls=true against a self-signed certificate: %s\n", why);
    /* libcurl's words: "SSL certificate problem: self-signed certificate". */
    assert_non_null(strstr(why, "certificate"));
    /* Nothing was delivered, and the server saw the client give up. */
    assert_true(KG_WAIT_UNTIL(kg_http_receiver_tls_failures(rx) >= 1, 5));
    assert_int_equal(kg_http_receiver_accepted(rx), 0);
    /* It stays refused: no retry slips through. */
    assert_int_equal(send_events(b, 2, "wf-tls-bad"), KG_ECONNECT);
    assert_int_equal(kg_http_receiver_accepted(rx), 0);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

static void test_https_plain_http_url_mismatch(void **state)
{
    (void)state;
    /* A plain-HTTP client against the TLS port is a failed request, not a
     * hang: the receiver's handshake fails, the backend reports an error. */
    kg_http_receiver_t *rx = tls_receiver();
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ingest", kg_http_receiver_port(rx));
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = url;
    o.timeout = 2;
    o.connect_timeout = 2;
    kg_backend_t *b = kg_http_backend_new(&o, NULL);
    assert_non_null(b);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    double t0 = kg_test_now();
    assert_true(send_events(b, 1, "wf-plain") < 0);
    assert_true(kg_test_now() - t0 < 2.5);
    assert_int_equal(kg_http_receiver_accepted(rx), 0);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

/* ---- through the monitor ------------------------------------------------------------ */

static int step_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    (void)ctx;
    (void)prep_res;
    *exec_res = json_integer(7);
    return 0;
}

static const kg_node_ops step_ops = {.type_name = "TlsNode", .exec = step_exec};

static void test_monitor_over_https(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = tls_receiver();
    kg_node_t *g = kg_graph_new("tls_graph", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &step_ops, NULL));
    kg_node_t *c = kg_graph_add(g, kg_node_new("b", &step_ops, NULL));
    assert_int_equal(kg_node_connect(a, NULL, c), 0);
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = https_backend(kg_http_receiver_url(rx), false, 2);
    cfg.metrics_interval = 0;
    cfg.flush_interval = 0.02;
    cfg.async_workers = 2;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0)
        fail_msg("kg_monitor_new: %s", err.message);
    kg_monitor_attach(m, g);
    for (int i = 0; i < 50; i++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    assert_true(st.emitted > 0);
    assert_int_equal(st.sent, st.emitted);
    assert_int_equal(st.failed_batches, 0);
    assert_int_equal(kg_http_receiver_events(rx), st.emitted);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_http_receiver_stop(rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_without_verification),
        cmocka_unit_test(test_https_verification_rejects_self_signed),
        cmocka_unit_test(test_https_plain_http_url_mismatch),
        cmocka_unit_test(test_monitor_over_https),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
