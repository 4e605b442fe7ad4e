/* test_reports_backends.c - what nodes report about themselves (node_log,
 * custom_metric, node_progress, custom_event) reaches every backend like
 * any event: Redis in the seed layout (on the channel of its type, stored,
 * counted, read back per run) and the lean layout (the feed and the run
 * hash, read back by kg_redis_reader), the HTTP webhook, and the JSON Lines
 * file.  Real redis-server and a real HTTP receiver on loopback, through
 * the monitor. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "kaygraph/kaygraph.h"
#include "kaygraph/redis_reader.h"
#include "redis_server.h"
#include "testutil.h"

#define PFX "kaygraph:monitoring:"

static const char *const report_names[] = {"node_log", "custom_metric", "node_progress",
                                           "custom_event"};
static const char *const report_types[] = {"log", "metric", "lifecycle", "data"};

/* ---- a workflow whose nodes report ------------------------------------------------- */

static int noisy_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    kg_ctx_log_fields_new(ctx, KG_LOG_WARN, json_pack("{s:s}", "quote", "a \"b\" <c>\n"),
                          "line with \"quotes\" and a newline\n");
    kg_ctx_metric(ctx, "rows_written", 93, "rows", KG_METRIC_COUNTER);
    kg_ctx_progress(ctx, 40, 100);
    kg_ctx_event_new(ctx, "tokens", json_pack("{s:i}", "used", 5120));
    *out = json_integer(1);
    return 0;
}

static const kg_node_ops noisy_ops = {.type_name = "NoisyNode", .exec = noisy_exec};

#define NODES 2
#define EVENTS_PER_RUN (2 + NODES * (7 + 4))

static kg_node_t *noisy_graph(void)
{
    kg_node_t *g = kg_graph_new("reports", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("first", &noisy_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("second", &noisy_ops, NULL));
    assert_int_equal(kg_node_connect(a, NULL, b), 0);
    return g;
}

/* Run the workflow `runs` times into `backend`; returns the events sent. */
static uint64_t run_into(kg_backend_t *backend, int runs)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = backend;
    cfg.metrics_interval = 0;
    cfg.flush_interval = 0.02;
    cfg.async_workers = 2;
    kg_monitor_t *m;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0)
        fail_msg("kg_monitor_new: %s", err.message);
    kg_node_t *g = noisy_graph();
    kg_monitor_attach(m, g);
    for (int i = 0; i < runs; i++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    assert_int_equal(st.emitted, st.sent);
    assert_int_equal(st.sent, (uint64_t)runs * EVENTS_PER_RUN);
    kg_monitor_detach(m, g);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    return st.sent;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int report_index(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, report_names[i]) == 0)
            return i;
    return -1;
}

/* The report's data as sent by noisy_exec. */
static void check_report(json_t *ev)
{
    json_t *d = json_object_get(ev, "data");
    const char *name = str(ev, "event_name");
    int k = report_index(name);
    assert_true(k >= 0);
    assert_string_equal(str(ev, "event_type"), report_types[k]);
    if (k == 0) {
        assert_string_equal(str(d, "level"), "warning");
        assert_string_equal(str(d, "message"), "line with \"quotes\" and a newline\n");
        assert_string_equal(str(json_object_get(d, "fields"), "quote"), "a \"b\" <c>\n");
    } else if (k == 1) {
        assert_string_equal(str(d, "name"), "rows_written");
        assert_int_equal(json_integer_value(json_object_get(d, "value")), 93);
        assert_string_equal(str(d, "kind"), "counter");
    } else if (k == 2) {
        assert_int_equal(json_integer_value(json_object_get(d, "done")), 40);
        assert_int_equal(json_integer_value(json_object_get(d, "total")), 100);
    } else {
        assert_string_equal(str(d, "name"), "tokens");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "data"), "used")),
                         5120);
    }
}

/* A run's events (seq order): each node's reports lie between its
 * node_executing and data_output. */
static void check_run(json_t *evs)
{
    assert_int_equal(json_array_size(evs), EVENTS_PER_RUN);
    int reports = 0, inside = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(evs, i, ev) {
        const char *name = str(ev, "event_name");
        if (strcmp(name, "node_executing") == 0)
            inside = 1;
        else if (strcmp(name, "data_output") == 0)
            inside = 0;
        if (report_index(name) >= 0) {
            assert_true(inside);
            check_report(ev);
            reports++;
        }
    }
    assert_int_equal(reports, NODES * 4);
}

/* ---- Redis --------------------------------------------------------------------------- */

static kg_backend_t *redis_backend(const kg_redis_server *s, kg_redis_layout layout)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    o.layout = layout;
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&o, &err);
    if (!b)
        fail_msg("redis backend: %s", err.message);
    return b;
}

static kg_redis_reader_t *reader_for(const kg_redis_server *s)
{
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = s->port;
    kg_redis_reader_t *rd = NULL;
    assert_int_equal(kg_redis_reader_new(&ro, &rd, NULL), 0);
    return rd;
}

/* The seed layout: each report on <prefix>all and <prefix><its type>
 * (node_log on "log", custom_metric on "metric"), stored under its id,
 * indexed under its run, counted per type. */
static void test_redis_seed_layout_carries_reports(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        fail_msg("redis-server is not installed");
    kg_redis_server srv;
    assert_int_equal(kg_redis_server_start(&srv, NULL), 0);
    redisContext *sub = kg_redis_server_client(&srv);
    redisReply *r = kg_redis_cmd(sub, "PSUBSCRIBE " PFX "*");
    assert_non_null(r);
    freeReplyObject(r);
    kg_redis_reader_t *rd = reader_for(&srv);

    uint64_t sent = run_into(redis_backend(&srv, KG_REDIS_LAYOUT_SEED), 1);

    int on_type[4] = {0}, on_all[4] = {0};
    json_t *wf = NULL;
    for (uint64_t i = 0; i < 2 * sent; i++) {
        void *v = NULL;
        assert_int_equal(redisGetReply(sub, &v), REDIS_OK);
        redisReply *m = v;
        assert_int_equal(m->elements, 4);
        json_t *ev = json_loads(m->element[3]->str, 0, NULL);
        assert_non_null(ev);
        int k = report_index(str(ev, "event_name"));
        if (k >= 0) {
            check_report(ev);
            char want[64];
            snprintf(want, sizeof want, PFX "%s", report_types[k]);
            if (strcmp(m->element[2]->str, PFX "all") == 0)
                on_all[k]++;
            else if (strcmp(m->element[2]->str, want) == 0)
                on_type[k]++;
            else
                fail_msg("%s published on %s", report_names[k], m->element[2]->str);
            /* Stored under its id. */
            json_t *stored = NULL;
            assert_int_equal(kg_redis_reader_event(rd, str(ev, "event_id"), &stored, NULL), 0);
            assert_string_equal(str(stored, "event_name"), report_names[k]);
            json_decref(stored);
        }
        if (!wf)
            wf = json_incref(json_object_get(ev, "workflow_id"));
        json_decref(ev);
        freeReplyObject(m);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(on_all[k], NODES);
        assert_int_equal(on_type[k], NODES);
    }

    json_t *evs = NULL;
    assert_int_equal(kg_redis_reader_workflow_events(rd, json_string_value(wf), 0, &evs, NULL), 0);
    /* Sorted-set order is by millisecond then id: sort by seq to check. */
    json_t *sorted = json_array();
    for (json_int_t seq = 0; json_array_size(sorted) < json_array_size(evs) && seq < 1000; seq++) {
        size_t i;
        json_t *ev;
        json_array_foreach(evs, i, ev) if (json_integer_value(json_object_get(ev, "seq")) == seq)
            json_array_append(sorted, ev);
    }
    check_run(sorted);
    json_decref(sorted);
    json_decref(evs);

    json_t *counters = NULL;
    assert_int_equal(kg_redis_reader_counters(rd, &counters, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(counters, "log")), NODES);
    assert_int_equal(json_integer_value(json_object_get(counters, "metric")), 2 * NODES);
    json_decref(counters);

    json_decref(wf);
    redisFree(sub);
    kg_redis_reader_free(rd);
    kg_redis_server_stop(&srv);
}

/* The lean layout: the reports in the batch messages on <prefix>all and in
 * the run's hash, and kg_redis_reader reads both back. */
static void test_redis_lean_layout_carries_reports(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        fail_msg("redis-server is not installed");
    kg_redis_server srv;
    assert_int_equal(kg_redis_server_start(&srv, NULL), 0);
    kg_redis_reader_t *rd = reader_for(&srv);
    assert_int_equal(kg_redis_reader_subscribe(rd, NULL, false, NULL), 0);

    uint64_t sent = run_into(redis_backend(&srv, KG_REDIS_LAYOUT_LEAN), 2);

    int seen[4] = {0};
    json_t *runs = json_object();
    for (uint64_t i = 0; i < sent; i++) {
        char *json = NULL, *chan = NULL;
        size_t len;
        assert_int_equal(kg_redis_reader_next(rd, 10, &json, &len, &chan, NULL), 0);
        assert_string_equal(chan, PFX "all");
        json_t *ev = json_loads(json, 0, NULL);
        assert_non_null(ev);
        int k = report_index(str(ev, "event_name"));
        if (k >= 0) {
            check_report(ev);
            seen[k]++;
        }
        json_object_set_new(runs, str(ev, "workflow_id"), json_true());
        json_decref(ev);
        free(json);
        free(chan);
    }
    for (int k = 0; k < 4; k++)
        assert_int_equal(seen[k], 2 * NODES);
    const char *wid;
    json_t *v;
    assert_int_equal(json_object_size(runs), 2);
    json_object_foreach(runs, wid, v) {
        json_t *evs = NULL;
        assert_int_equal(kg_redis_reader_workflow_events(rd, wid, 0, &evs, NULL), 0);
        check_run(evs);   /* the lean layout reads back in seq order */
        json_decref(evs);
    }
    json_decref(runs);
    kg_redis_reader_free(rd);
    kg_redis_server_stop(&srv);
}

/* ---- the webhook ----------------------------------------------------------------------- */

static void test_webhook_carries_reports(void **state)
{
    (void)state;
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = kg_http_receiver_url(rx);
    kg_error_t err;
    kg_backend_t *b = kg_http_backend_new(&o, &err);
    if (!b)
        fail_msg("http backend: %s", err.message);
    uint64_t sent = run_into(b, 1);
    assert_int_equal(kg_http_receiver_events(rx), sent);

    json_t *all = json_array();
    for (size_t i = 0; i < kg_http_receiver_kept(rx); i++) {
        const kg_http_request *req = kg_http_receiver_request(rx, i);
        json_t *body = json_loads(req->body, 0, NULL);
        assert_non_null(body);
        json_t *events = json_object_get(body, "events");
        if (events)
            json_array_extend(all, events);
        else
            json_array_append(all, body);
        json_decref(body);
    }
    check_run(all);
    json_decref(all);
    kg_http_receiver_stop(rx);
}

/* ---- the JSON Lines file ----------------------------------------------------------------- */

static void test_file_carries_reports(void **state)
{
    (void)state;
    char path[] = "/tmp/kg-reports-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    kg_error_t err;
    kg_backend_t *b = kg_file_backend_new(path, &err);
    if (!b)
        fail_msg("file backend: %s", err.message);
    run_into(b, 1);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    json_t *all = json_array();
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *ev = json_loads(line, 0, &je);
        if (!ev)
            fail_msg("not a JSON line: %s", je.text);
        json_array_append_new(all, ev);
    }
    fclose(f);
    unlink(path);
    check_run(all);
    json_decref(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_seed_layout_carries_reports),
        cmocka_unit_test(test_redis_lean_layout_carries_reports),
        cmocka_unit_test(test_webhook_carries_reports),
        cmocka_unit_test(test_file_carries_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
