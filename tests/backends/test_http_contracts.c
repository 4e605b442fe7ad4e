/* test_http_contracts.c - what the webhook backend promises a receiver, and
 * what it does with receivers that push back, through the whole pipeline
 * (monitor -> dispatcher -> HTTP backend -> the loopback receiver, which
 * logs every request with the time it arrived):
 *
 *   - 429 / 503 with Retry-After (seconds or an HTTP date): the batch is
 *     resent no earlier than told, and no later than the backend's bound;
 *   - 307 / 308: followed, method and body kept, a bounded number of hops,
 *     credentials only to the same origin; 301 / 302 / 303: the batch fails
 *     at once naming the Location, and is not resent in a loop;
 *   - a receiver slower than the timeout: shutdown still ends at the
 *     monitor's deadline (the request in flight is cut), timeouts count as
 *     failed batches, and every batch carries an Idempotency-Key (equal to
 *     "batch_id" in its body, the same on every resend) so a receiver can
 *     drop the copy of a batch it stored but could not acknowledge in time;
 *     the dashboard's /api/ingest drops such a copy by event_id. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bk_events.h"
#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "kaygraph/dashboard.h"
#include "kaygraph/monitor.h"
#include "testutil.h"

/* ---- a small monitored workflow ------------------------------------------------------- */

static int step_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    (void)ctx;
    (void)prep_res;
    *exec_res = json_integer(7);
    return 0;
}

static const kg_node_ops step_ops = {.type_name = "ContractNode", .exec = step_exec};

static kg_node_t *make_graph(void)
{
    kg_node_t *g = kg_graph_new("contract_graph", NULL, NULL);
    assert_non_null(g);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &step_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("b", &step_ops, NULL));
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(kg_node_connect(a, NULL, b), 0);
    return g;
}

typedef struct http_opts {
    double timeout, connect_timeout, retry_after_max;
} http_opts;

static kg_backend_t *http_backend(const char *url, const http_opts *ho)
{
    static const char *const headers[] = {"Authorization: Bearer t0ken", NULL};
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = url;
    o.headers = headers;
    if (ho && ho->timeout > 0)
        o.timeout = ho->timeout;
    if (ho && ho->connect_timeout > 0)
        o.connect_timeout = ho->connect_timeout;
    if (ho && ho->retry_after_max > 0)
        o.retry_after_max = ho->retry_after_max;
    kg_error_t err;
    kg_backend_t *b = kg_http_backend_new(&o, &err);
    if (!b)
        fail_msg("kg_http_backend_new: %s", err.message);
    return b;
}

/* One worker, quick retries: without Retry-After a failed batch would be
 * resent within 50 ms. */
static kg_monitor_t *make_monitor(kg_backend_t *b, double shutdown_timeout)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = b;
    cfg.metrics_interval = 0;
    cfg.flush_interval = 0.01;
    cfg.async_workers = 1;
    cfg.retry_backoff_max = 0.05;
    cfg.circuit_breaker_reset = 0.05;
    cfg.shutdown_timeout = shutdown_timeout;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0)
        fail_msg("kg_monitor_new: %s", err.message);
    return m;
}

/* Run the graph once under `m`; returns the events emitted. */
static uint64_t run_once(kg_monitor_t *m, kg_node_t *g)
{
    kg_monitor_attach(m, g);
    kg_result_t res;
    assert_int_equal(kg_run(g, NULL, &res), 0);
    kg_monitor_detach(m, g);
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    assert_true(st.emitted > 0);
    return st.emitted;
}

/* The "batch_id" of a batch body (copied into out), or false. */
static bool body_batch_id(const kg_http_request *q, char *out, size_t size)
{
    json_t *j = json_loadb(q->body, q->body_len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "batch_id"));
    if (id)
        snprintf(out, size, "%s", id);
    json_decref(j);
    return id != NULL;
}

/* Requests i and k carry the same batch: the same body but for its
 * "timestamp" (the time of sending), the same Idempotency-Key, equal to its
 * batch_id. */
static void assert_same_batch(const kg_http_request *a, const kg_http_request *b)
{
    char ka[128], kb[128], ia[128], ib[128];
    assert_true(kg_http_request_header(a, "Idempotency-Key", ka, sizeof ka));
    assert_true(kg_http_request_header(b, "Idempotency-Key", kb, sizeof kb));
    assert_string_equal(ka, kb);
    assert_true(body_batch_id(a, ia, sizeof ia));
    assert_true(body_batch_id(b, ib, sizeof ib));
    assert_string_equal(ia, ka);
    assert_string_equal(ib, kb);
    json_t *ja = json_loadb(a->body, a->body_len, 0, NULL), *jb = json_loadb(b->body, b->body_len, 0, NULL);
    assert_non_null(ja);
    assert_non_null(jb);
    assert_true(json_equal(json_object_get(ja, "events"), json_object_get(jb, "events")));
    json_decref(ja);
    json_decref(jb);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Retry-After ---------------------------------------------------------------------------- */

/* The receiver answers the first POST `status` with `retry_after`: the
 * resend comes at least `min_gap` s later.  Returns the two requests'
 * arrival times (monotonic). */
static void retry_after_case(int status, const char *retry_after, const http_opts *ho,
                             double min_gap, double *t0, double *t1)
{
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_log(rx, 100);
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", retry_after);
    kg_http_receiver_respond(rx, status, hdr, 1);
    kg_monitor_t *m = make_monitor(http_backend(kg_http_receiver_url(rx), ho), 5);
    kg_node_t *g = make_graph();
    uint64_t emitted = run_once(m, g);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    assert_true(kg_http_receiver_logged(rx) >= 2);
    const kg_http_request *q0 = kg_http_receiver_log(rx, 0), *q1 = kg_http_receiver_log(rx, 1);
    print_message("%d + Retry-After: %s: resent %.3f s after the refusal\n", status, retry_after,
                  q1->at - q0->at);
    assert_int_equal(q0->status, status);
    assert_int_equal(q1->status, 200);
    *t0 = q0->at;
    *t1 = q1->at;
    assert_true(*t1 - *t0 >= min_gap);
    assert_same_batch(q0, q1);
    /* Delivered once, nothing lost. */
    assert_int_equal(kg_http_receiver_events(rx), emitted);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_http_receiver_stop(rx);
}

static void test_retry_after_seconds(void **state)
{
    (void)state;
    double t0, t1;
    retry_after_case(429, "2", NULL, 2.0, &t0, &t1);
    retry_after_case(503, "1", NULL, 1.0, &t0, &t1);
}

/* An HTTP date (IMF-fixdate): not resent before that time. */
static void test_retry_after_http_date(void **state)
{
    (void)state;
    time_t when = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    double t0, t1;
    retry_after_case(503, date, NULL, 0, &t0, &t1);
    /* The receiver's clock is monotonic: its offset from the wall clock. */
    double offset = wall_now() - kg_test_now();
    print_message("resent at %.3f, told %s (%lld)\n", t1 + offset, date, (long long)when);
    assert_true(t1 + offset >= (double)when - 0.005);
}

/* A pause longer than the backend's bound (retry_after_max) is cut to it. */
static void test_retry_after_capped(void **state)
{
    (void)state;
    http_opts ho = {.retry_after_max = 1.0};
    double t0, t1;
    retry_after_case(429, "3600", &ho, 1.0, &t0, &t1);
    assert_true(t1 - t0 < 10);
}

/* ---- redirects ------------------------------------------------------------------------------ */

static int send_events(kg_backend_t *b, size_t n, kg_test_event *ev)
{
    kg_event_view views[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++)
        kg_test_event_fill(&ev[i], "node_started", "node-r", "wf-redirect", i, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, n, views);
    return kg_backend_send_batch(b, 0, &batch);
}

/* 307 and 308 are followed with the method and the body kept (a relative and
 * an absolute Location); user headers go along only to the same origin. */
static void test_redirect_307_308_followed(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_log(rx, 100);
    kg_backend_t *b = http_backend(kg_http_receiver_url(rx), NULL);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    kg_test_event ev[3];

    kg_http_receiver_respond(rx, 307, "Location: /moved?x=1\r\n", 1);
    assert_int_equal(send_events(b, 3, ev), 0);
    assert_int_equal(kg_http_receiver_logged(rx), 2);
    const kg_http_request *q0 = kg_http_receiver_log(rx, 0), *q1 = kg_http_receiver_log(rx, 1);
    assert_int_equal(q0->status, 307);
    assert_string_equal(q1->method, "POST");
    assert_string_equal(q1->path, "/moved?x=1");
    assert_same_batch(q0, q1);
    char h[128];
    assert_true(kg_http_request_header(q1, "Authorization", h, sizeof h));

    /* The next batch starts from the configured URL again. */
    char loc[160];
    snprintf(loc, sizeof loc, "Location: http://127.0.0.1:%d/permanent\r\n",
             kg_http_receiver_port(rx));
    kg_http_receiver_respond(rx, 308, loc, 1);
    assert_int_equal(send_events(b, 2, ev), 0);
    assert_int_equal(kg_http_receiver_logged(rx), 4);
    q0 = kg_http_receiver_log(rx, 2);
    q1 = kg_http_receiver_log(rx, 3);
    assert_string_equal(q0->path, "/ingest");
    assert_string_equal(q1->path, "/permanent");
    assert_string_equal(q1->method, "POST");
    assert_same_batch(q0, q1);

    /* Another origin (a different host name for the same server): followed,
     * but without the Authorization header the user configured for the
     * first one, as libcurl does on its own redirects. */
    snprintf(loc, sizeof loc, "Location: http://localhost:%d/elsewhere\r\n",
             kg_http_receiver_port(rx));
    kg_http_receiver_respond(rx, 307, loc, 1);
    assert_int_equal(send_events(b, 1, ev), 0);
    assert_int_equal(kg_http_receiver_logged(rx), 6);
    q1 = kg_http_receiver_log(rx, 5);
    assert_string_equal(q1->path, "/elsewhere");
    assert_false(kg_http_request_header(q1, "Authorization", h, sizeof h));
    assert_true(kg_http_request_header(q1, "Idempotency-Key", h, sizeof h));
    assert_int_equal(kg_http_receiver_accepted(rx), 3);
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

/* A redirect loop ends after a bounded number of hops, with a message. */
static void test_redirect_hops_bounded(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_log(rx, 100);
    kg_http_receiver_respond(rx, 307, "Location: /again\r\n", 1000);
    kg_backend_t *b = http_backend(kg_http_receiver_url(rx), NULL);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    kg_test_event ev[1];
    assert_int_equal(send_events(b, 1, ev), KG_EBACKEND);
    char why[512];
    assert_true(kg_http_backend_last_error(b, why, sizeof why));
    print_message("redirect loop: %zu requests: %s\n", kg_http_receiver_logged(rx), why);
    assert_int_equal(kg_http_receiver_logged(rx), 6);   /* the request and 5 hops */
    assert_non_null(strstr(why, "redirect"));
    kg_backend_free(b);
    kg_http_receiver_stop(rx);
}

/* 301 / 302 / 303 would turn the POST into a GET: not followed.  The batch
 * fails at once with the Location in the message, and the backend does not
 * resend it in a loop (it used to be retried 27 times during one demo). */
static void test_redirect_301_fails_at_once(void **state)
{
    (void)state;
    static const int codes[] = {301, 302, 303};
    for (size_t i = 0; i < 3; i++) {
        kg_http_receiver_t *rx = kg_http_receiver_start();
        assert_non_null(rx);
        kg_http_receiver_set_log(rx, 1000);
        char loc[200], want[160];
        snprintf(want, sizeof want, "http://127.0.0.1:%d/new-home", kg_http_receiver_port(rx));
        snprintf(loc, sizeof loc, "Location: %s\r\n", want);
        kg_http_receiver_respond(rx, codes[i], loc, 100000);
        kg_backend_t *b = http_backend(kg_http_receiver_url(rx), NULL);
        kg_monitor_t *m = make_monitor(b, 0.3);
        kg_node_t *g = make_graph();
        run_once(m, g);
        assert_true(KG_WAIT_UNTIL(kg_http_receiver_logged(rx) >= 1, 10));
        /* Quick retries (50 ms) would have sent it about 30 times by now. */
        kg_test_sleep(1.5);
        char why[512] = "";
        kg_http_backend_last_error(b, why, sizeof why);
        kg_monitor_stats st;
        kg_monitor_stats_get(m, &st);
        print_message("%d: %zu requests in 1.5 s, %llu failed batches: %s\n", codes[i],
                      kg_http_receiver_logged(rx), (unsigned long long)st.failed_batches, why);
        assert_int_equal(kg_http_receiver_logged(rx), 1);
        assert_true(st.failed_batches >= 1);
        char code[8];
        snprintf(code, sizeof code, "%d", codes[i]);
        assert_non_null(strstr(why, code));
        assert_non_null(strstr(why, want));
        assert_int_equal(kg_http_receiver_accepted(rx), 0);
        /* Shutdown: the held batch is counted, not lost silently. */
        assert_int_equal(kg_monitor_free(m), KG_ETIMEOUT);
        kg_node_free(g);
        kg_http_receiver_stop(rx);
    }
}

/* ---- slow receivers --------------------------------------------------------------------------- */

/* A request in flight when the monitor stops is cut at the shutdown
 * deadline, not at the backend's (longer) request timeout. */
static void test_shutdown_cuts_request_in_flight(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_log(rx, 100);
    kg_http_receiver_set_stall(rx, 60);
    kg_http_receiver_set_mode(rx, KG_HTTP_RECEIVER_STALL);
    http_opts ho = {.timeout = 10};
    kg_monitor_t *m = make_monitor(http_backend(kg_http_receiver_url(rx), &ho), 0.5);
    kg_node_t *g = make_graph();
    run_once(m, g);
    assert_true(KG_WAIT_UNTIL(kg_http_receiver_logged(rx) >= 1, 10));
    double t0 = kg_test_now();
    int rc = kg_monitor_free(m);
    double took = kg_test_now() - t0;
    print_message("shutdown with a request in flight: %.3f s (shutdown_timeout 0.5, request "
                  "timeout 10)\n", took);
    assert_int_equal(rc, KG_ETIMEOUT);
    assert_true(took >= 0.45 && took < 1.0);
    kg_node_free(g);
    kg_http_receiver_stop(rx);
}

/* A receiver that stores the batch but answers after the timeout: the
 * dispatcher counts the timeout as a failed batch and resends the batch
 * with the same Idempotency-Key and batch_id, so the receiver can tell the
 * copy from a new batch; another batch gets another key. */
static void test_idempotency_key_on_timeout(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_stall(rx, 1.0);
    kg_http_receiver_misbehave(rx, KG_HTTP_RECEIVER_SLOW, 1);
    http_opts ho = {.timeout = 0.3};
    kg_backend_t *b = http_backend(kg_http_receiver_url(rx), &ho);
    kg_monitor_t *m = make_monitor(b, 5);
    kg_node_t *g = make_graph();
    uint64_t emitted = run_once(m, g);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    char why[512] = "";
    kg_http_backend_last_error(b, why, sizeof why);
    print_message("slow receiver: %zu accepted, %llu failed batches, last error: %s\n",
                  kg_http_receiver_accepted(rx), (unsigned long long)st.failed_batches, why);
    assert_true(st.failed_batches >= 1);
    assert_non_null(strstr(why, "imed out"));
    /* Stored twice: the late-acknowledged one and its resend. */
    assert_true(kg_http_receiver_accepted(rx) >= 2);
    assert_same_batch(kg_http_receiver_request(rx, 0), kg_http_receiver_request(rx, 1));
    assert_int_equal(kg_http_receiver_events(rx), 2 * emitted);

    /* A new batch, a new key. */
    run_once(m, g);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    size_t n = kg_http_receiver_accepted(rx);
    char k0[128], k1[128];
    assert_true(kg_http_request_header(kg_http_receiver_request(rx, 0), "Idempotency-Key", k0,
                                       sizeof k0));
    assert_true(kg_http_request_header(kg_http_receiver_request(rx, n - 1), "Idempotency-Key", k1,
                                       sizeof k1));
    assert_string_not_equal(k0, k1);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_http_receiver_stop(rx);
}

/* The dashboard's /api/ingest given the same batch twice (what a receiver
 * sees after a timed-out but stored POST) counts its events once: it drops
 * events by event_id, which covers a resent batch as long as the resend
 * comes within its 64-128 K event_id window. */
static void test_dashboard_drops_resent_batch(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/ingest", kg_dashboard_port(d));
    kg_backend_t *b = http_backend(url, NULL);
    assert_int_equal(kg_backend_connect(b, 1), 0);
    kg_test_event ev[5];
    kg_event_view views[5];
    for (size_t i = 0; i < 5; i++)
        kg_test_event_fill(&ev[i], "node_started", "node-d", "wf-dup", i, kg_test_epoch_ms());
    kg_batch batch = kg_test_batch(ev, 5, views);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.events + st.duplicates >= 10), 10));
    assert_int_equal(st.events, 5);
    assert_int_equal(st.duplicates, 5);
    kg_backend_free(b);
    kg_dashboard_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_http_date),
        cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_redirect_307_308_followed),
        cmocka_unit_test(test_redirect_hops_bounded),
        cmocka_unit_test(test_redirect_301_fails_at_once),
        cmocka_unit_test(test_shutdown_cuts_request_in_flight),
        cmocka_unit_test(test_idempotency_key_on_timeout),
        cmocka_unit_test(test_dashboard_drops_resent_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
