/* test_dash_server.c - the dashboard server over real loopback sockets.
 *
 * Routes and their error paths (400/404/405/413/415), token, Origin and Host
 * rules, WebSocket initial/event/metrics/get_workflow_events, ingest -> WS,
 * the in-process feed -> WS, max clients, a client that stops reading while
 * another keeps up, and concurrent producers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kaygraph/backend.h"
#include "kaygraph/dashboard.h"
#include "testutil.h"
#include "wsclient.h"

static atomic_int g_connect_logs;

static void log_cb(void *ud, kg_dashboard_log_level lvl, const char *msg)
{
    (void)ud;
    (void)lvl;
    if (strstr(msg, "connected ("))
        atomic_fetch_add(&g_connect_logs, 1);
}

static kg_dashboard_t *start(kg_dashboard_options *o)
{
    o->port = 0;
    o->log = log_cb;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    int rc = kg_dashboard_new(o, &d, &err);
    if (rc != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    assert_true(kg_dashboard_port(d) > 0);
    return d;
}

static kg_dashboard_t *start_default(void)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    return start(&o);
}

static int post_event(int port, const char *body, kg_thttp_resp *r)
{
    return kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n", body,
                    strlen(body), r);
}

static void ingest(kg_dashboard_t *d, const char *id, const char *name, const char *type,
                   const char *node, const char *wf, unsigned long long seq, const char *extra)
{
    char *e = kg_tevent(id, name, type, node, wf, seq, extra);
    kg_error_t err;
    assert_int_equal(kg_dashboard_ingest(d, e, strlen(e), &err), 0);
    free(e);
}

/* ---- HTTP routes ---------------------------------------------------------------------- */

static void test_http_routes(void **state)
{
    (void)state;
    kg_dashboard_t *d = start_default();
    int port = kg_dashboard_port(d);
    kg_thttp_resp r;
    char v[256];

    assert_int_equal(kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"ok\""));
    kg_thttp_resp_free(&r);

    assert_int_equal(kg_thttp(port, "GET", "/", NULL, NULL, 0, &r), 200);
    assert_true(kg_thttp_header(&r, "content-type", v, sizeof v));
    assert_non_null(strstr(v, "text/html"));
    assert_true(kg_thttp_header(&r, "content-security-policy", v, sizeof v));
    assert_non_null(strstr(r.body, "<html"));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/", "Accept-Encoding: gzip\r\n", NULL, 0, &r), 200);
    assert_true(kg_thttp_header(&r, "content-encoding", v, sizeof v));
    assert_string_equal(v, "gzip");
    assert_true(r.body_len > 2 && (unsigned char)r.body[0] == 0x1f);
    kg_thttp_resp_free(&r);

    assert_int_equal(kg_thttp(port, "GET", "/nope", NULL, NULL, 0, &r), 404);
    assert_non_null(strstr(r.body, "\"error\""));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/ingest", NULL, NULL, 0, &r), 405);
    kg_thttp_resp_free(&r);

    /* ingest: good, malformed, wrong type, too large, wrong content type */
    char *e = kg_tevent("h1", "workflow_started", "lifecycle", "flow", "run-1", 1,
                        "\"graph\":{\"nodes\":[{\"id\":\"a\",\"type\":\"A\"}],\"edges\":[],"
                        "\"start\":\"a\"}");
    assert_int_equal(post_event(port, e, &r), 200);
    assert_non_null(strstr(r.body, "\"accepted\":1"));
    kg_thttp_resp_free(&r);
    free(e);
    assert_int_equal(post_event(port, "{\"events\":[", &r), 400);
    assert_non_null(strstr(r.body, "malformed JSON"));
    kg_thttp_resp_free(&r);
    assert_int_equal(post_event(port, "{\"event_id\":\"x\"}", &r), 400);
    assert_non_null(strstr(r.body, "\"error\""));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: text/plain\r\n", "{}", 2,
                              &r),
                     415);
    kg_thttp_resp_free(&r);
    size_t big_len = (1u << 20) + 10;
    char *big = malloc(big_len);
    memset(big, ' ', big_len);
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                              big, big_len, &r),
                     413);
    kg_thttp_resp_free(&r);
    free(big);

    /* Two more events, then the read routes. */
    ingest(d, "h2", "node_started", "lifecycle", "a", "run-1", 2, NULL);
    ingest(d, "h3", "node_completed", "lifecycle", "a", "run-1", 3,
           "\"total_execution_time\":0.25,\"next_action\":\"default\"");
    assert_int_equal(kg_thttp(port, "GET", "/api/events?limit=2", NULL, NULL, 0, &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "events"), 1), "event_id")),
                        "h3");
    json_decref(j);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/events?limit=abc", NULL, NULL, 0, &r), 400);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"run-1\""));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows/run-1/events", NULL, NULL, 0, &r), 200);
    j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 3);
    assert_true(json_is_object(json_object_get(j, "graph")));
    json_decref(j);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows/nope/events", NULL, NULL, 0, &r), 404);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", NULL, NULL, 0, &r), 200);
    j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "total_events")), 3);
    assert_true(json_real_value(json_object_get(j, "success_rate")) == 1.0);
    assert_int_equal(json_integer_value(json_object_get(j, "rejected")), 1);
    json_decref(j);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "kaygraph_dashboard_node_executions_total{node=\"a\"} 1"));
    assert_true(kg_thttp_header(&r, "content-type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain"));
    kg_thttp_resp_free(&r);
    kg_dashboard_free(d);
}

/* ---- security ------------------------------------------------------------------------------- */

static void test_token_origin_host(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = "s3cret";
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    kg_thttp_resp r;
    char v[256];
    assert_int_equal(kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", NULL, NULL, 0, &r), 401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/", NULL, NULL, 0, &r), 401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", "Authorization: Bearer nope\r\n", NULL,
                              0, &r),
                     401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", "Authorization: Bearer s3cret\r\n",
                              NULL, 0, &r),
                     200);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/?token=s3cret", NULL, NULL, 0, &r), 200);
    assert_true(kg_thttp_header(&r, "set-cookie", v, sizeof v));
    assert_non_null(strstr(v, "kg_token=s3cret"));
    assert_non_null(strstr(v, "HttpOnly"));
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/main.js", "Cookie: kg_token=s3cret\r\n", NULL, 0, &r),
                     200);
    kg_thttp_resp_free(&r);
    assert_int_equal(post_event(port, "{}", &r), 401);
    kg_thttp_resp_free(&r);

    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 401);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=bad", NULL), 401);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=s3cret", NULL), 101);
    kg_tws_close(&c);
    assert_int_equal(kg_tws_connect(&c, port, "/ws", "Authorization: Bearer s3cret\r\n"), 101);
    kg_tws_close(&c);
    /* Foreign Origin refused even with the token; the page's own origin accepted. */
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=s3cret",
                                    "Origin: http://evil.example\r\n"),
                     403);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Origin: http://127.0.0.1:%d\r\n", port);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=s3cret", hdr), 101);
    kg_tws_close(&c);
    /* DNS rebinding: a foreign Host on a loopback bind. */
    snprintf(hdr, sizeof hdr, "Host: evil.example:%d\r\nOrigin: http://evil.example:%d\r\n",
             port, port);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=s3cret", hdr), 403);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics",
                              "Host: evil.example\r\nAuthorization: Bearer s3cret\r\n", NULL, 0,
                              &r),
                     403);
    kg_thttp_resp_free(&r);
    /* Wrong path for an upgrade. */
    assert_int_equal(kg_tws_connect(&c, port, "/other?token=s3cret", NULL), 404);
    kg_dashboard_free(d);
}

static void test_max_clients(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.max_clients = 2;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    kg_tclient a, b, c;
    assert_int_equal(kg_tws_connect(&a, port, "/ws", NULL), 101);
    assert_int_equal(kg_tws_connect(&b, port, "/ws", NULL), 101);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.clients == 2), 5));
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 503);
    kg_tws_close(&a);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.clients == 1), 5));
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    kg_tws_close(&b);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

/* ---- WebSocket ------------------------------------------------------------------------------- */

static json_t *recv_json(kg_tclient *c, const char *needle, double timeout)
{
    char *m = kg_tws_wait_for(c, needle, timeout);
    if (!m)
        fail_msg("no message containing %s within %.1f s", needle, timeout);
    json_t *j = json_loads(m, 0, NULL);
    free(m);
    assert_non_null(j);
    return j;
}

static void test_ws_flow(void **state)
{
    (void)state;
    kg_dashboard_t *d = start_default();
    int port = kg_dashboard_port(d);
    ingest(d, "w0", "workflow_started", "lifecycle", "flow", "run-A", 1,
           "\"graph\":{\"nodes\":[{\"id\":\"a\",\"type\":\"A\"},{\"id\":\"b\",\"type\":\"B\"}],"
           "\"edges\":[{\"from\":\"a\",\"to\":\"b\",\"action\":\"default\"}],\"start\":\"a\"}");
    ingest(d, "w1", "node_started", "lifecycle", "a", "run-A", 2, NULL);

    int before = atomic_load(&g_connect_logs);
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    json_t *init = recv_json(&c, "\"initial\"", 5);
    json_t *data = json_object_get(init, "data");
    assert_int_equal(json_array_size(json_object_get(data, "events")), 2);
    assert_int_equal(json_array_size(json_object_get(data, "active_nodes")), 1);
    assert_int_equal(json_array_size(json_object_get(data, "active_workflows")), 1);
    assert_int_equal(json_array_size(json_object_get(json_object_get(data, "network_graph"),
                                                     "nodes")),
                     2);
    assert_true(json_is_object(json_object_get(data, "metrics")));
    json_decref(init);
    assert_true(KG_WAIT_UNTIL(atomic_load(&g_connect_logs) > before, 5));

    /* ingest over HTTP -> event on the socket, in order */
    char *e = kg_tevent("w2", "node_completed", "lifecycle", "a", "run-A", 3,
                        "\"next_action\":\"default\",\"total_execution_time\":0.1");
    kg_thttp_resp r;
    assert_int_equal(post_event(port, e, &r), 200);
    kg_thttp_resp_free(&r);
    free(e);
    json_t *ev = recv_json(&c, "\"w2\"", 5);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "event");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"),
                                                          "event_name")),
                        "node_completed");
    json_decref(ev);

    /* get_workflow_events */
    static const char req[] = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"run-A\"}";
    assert_int_equal(kg_tws_send(&c, req, sizeof req - 1), 0);
    json_t *we = recv_json(&c, "\"workflow_events\"", 5);
    assert_string_equal(json_string_value(json_object_get(we, "workflow_id")), "run-A");
    assert_int_equal(json_array_size(json_object_get(we, "events")), 3);
    json_decref(we);

    /* periodic metrics */
    json_t *m = recv_json(&c, "\"type\":\"metrics\"", 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "data"),
                                                        "total_events")),
                     3);
    json_decref(m);

    /* a bad client message gets an error reply, the connection stays up */
    assert_int_equal(kg_tws_send(&c, "not json", 8), 0);
    json_t *err = recv_json(&c, "\"error\"", 5);
    json_decref(err);
    ingest(d, "w3", "node_started", "lifecycle", "b", "run-A", 4, NULL);
    json_decref(recv_json(&c, "\"w3\"", 5));
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

static void test_inprocess_feed(void **state)
{
    (void)state;
    kg_dashboard_t *d = start_default();
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
    json_decref(recv_json(&c, "\"initial\"", 5));
    kg_backend_t *b = kg_dashboard_backend_new(d);
    assert_non_null(b);
    assert_int_equal(kg_backend_connect(b, 2), 0);
    char *texts[3];
    kg_event_view views[3];
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "feed%d", i);
        texts[i] = kg_tevent(id, "node_started", "lifecycle", "n", "run-F", (unsigned)i, NULL);
        views[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i])};
    }
    kg_batch batch = {.events = views, .count = 3};
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    json_decref(recv_json(&c, "\"feed0\"", 5));
    json_decref(recv_json(&c, "\"feed2\"", 5));
    kg_backend_disconnect(b);
    kg_backend_free(b);
    for (int i = 0; i < 3; i++)
        free(texts[i]);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

/* ---- slow clients and concurrency ---------------------------------------------------------- */

typedef struct producer {
    kg_dashboard_t *d;
    int id, n;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    char pad[600];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char extra[700];
    snprintf(extra, sizeof extra, "\"pad\":\"%s\"", pad);
    for (int i = 0; i < p->n; i++) {
        char id[48], wf[48];
        snprintf(id, sizeof id, "p%d-%d", p->id, i);
        snprintf(wf, sizeof wf, "run-%d-%d", p->id, i / 100);
        char *e = kg_tevent(id, "node_started", "lifecycle", "n", wf, (unsigned)i, extra);
        kg_dashboard_ingest(p->d, e, strlen(e), NULL);
        free(e);
    }
    return NULL;
}

typedef struct reader {
    kg_tclient *c;
    atomic_bool stop, marker;
    atomic_int events;
} reader;

static void *read_loop(void *arg)
{
    reader *r = arg;
    while (!atomic_load(&r->stop)) {
        char *m = NULL;
        if (kg_tws_recv(r->c, 0.2, &m, NULL) != 0)
            continue;
        if (strncmp(m, "{\"type\":\"event\",", 16) == 0)
            atomic_fetch_add(&r->events, 1);
        if (strstr(m, "\"marker\""))
            atomic_store(&r->marker, true);
        free(m);
    }
    return NULL;
}

static void test_stuck_client_does_not_block_others(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.client_queue = 256;
    o.broadcast_bytes = 2u << 20;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    kg_tclient stuck, good;
    assert_int_equal(kg_tws_connect(&stuck, port, "/ws", NULL), 101);
    assert_int_equal(kg_tws_connect(&good, port, "/ws", NULL), 101);
    json_decref(recv_json(&good, "\"initial\"", 5));

    /* 4 producers x 5000 events of ~1 KiB: far more than the stuck client's
     * socket buffers and its allowed lag. */
    pthread_t t[4];
    producer p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (producer){.d = d, .id = i, .n = 5000};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    /* The good client is read by its own thread, as a browser would. */
    reader rd = {.c = &good};
    atomic_init(&rd.stop, false);
    atomic_init(&rd.events, 0);
    atomic_init(&rd.marker, false);
    pthread_t rt;
    pthread_create(&rt, NULL, read_loop, &rd);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* After the flood, a marker event must reach the good client promptly:
     * the stuck one (never read) did not hold it up. */
    double t0 = kg_test_now();
    ingest(d, "marker", "node_started", "lifecycle", "n", "run-M", 1, NULL);
    assert_true(KG_WAIT_UNTIL(atomic_load(&rd.marker), 10));
    double latency = kg_test_now() - t0;
    atomic_store(&rd.stop, true);
    pthread_join(rt, NULL);
    print_message("good client: %d event messages during the flood, marker after %.3f s\n",
                  atomic_load(&rd.events), latency);
    assert_true(atomic_load(&rd.events) > 100);

    /* Memory held for clients stayed under its bound. */
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    const char *bb = strstr(r.body, "\nkaygraph_dashboard_broadcast_bytes ");
    assert_non_null(bb);
    assert_true(strtoull(bb + 36, NULL, 10) <= (2u << 20));
    kg_thttp_resp_free(&r);

    /* The stuck client, once it reads, learns it lost messages and gets the state. */
    json_t *notice = recv_json(&stuck, "\"notice\"", 10);
    assert_true(json_integer_value(json_object_get(json_object_get(notice, "data"), "dropped")) >
                0);
    json_decref(notice);
    json_decref(recv_json(&stuck, "\"initial\"", 10));
    kg_dashboard_stats st;
    kg_dashboard_stats_get(d, &st);
    assert_int_equal(st.events, 20001);
    assert_true(st.ws_dropped > 0);
    kg_tws_close(&stuck);
    kg_tws_close(&good);
    kg_dashboard_free(d);
}

static void test_concurrent_ingest_counts(void **state)
{
    (void)state;
    kg_dashboard_t *d = start_default();
    pthread_t t[4];
    producer p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (producer){.d = d, .id = i, .n = 1000};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    /* Meanwhile a client connects and disconnects repeatedly. */
    for (int k = 0; k < 5; k++) {
        kg_tclient c;
        assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
        json_decref(recv_json(&c, "\"initial\"", 5));
        kg_tws_close(&c);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(kg_dashboard_port(d), "GET", "/api/metrics", NULL, NULL, 0, &r),
                     200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "total_events")), 4000);
    json_decref(j);
    kg_thttp_resp_free(&r);
    kg_dashboard_free(d);
}

static void test_bad_options(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 70000;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    assert_int_equal(kg_dashboard_new(&o, &d, &err), KG_EINVAL);
    kg_dashboard_options_init(&o);
    o.port = 0;
    kg_dashboard_t *a = start(&o);
    o.port = kg_dashboard_port(a);
    o.log = NULL;
    assert_int_equal(kg_dashboard_new(&o, &d, &err), KG_EIO);   /* port taken */
    kg_dashboard_free(a);
    kg_dashboard_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_routes),
        cmocka_unit_test(test_token_origin_host),
        cmocka_unit_test(test_max_clients),
        cmocka_unit_test(test_ws_flow),
        cmocka_unit_test(test_inprocess_feed),
        cmocka_unit_test(test_stuck_client_does_not_block_others),
        cmocka_unit_test(test_concurrent_ingest_counts),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
