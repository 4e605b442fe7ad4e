/* test_dash_reports.c - what the dashboard does with what nodes report
 * about themselves: node_log / custom_event accepted and kept with the run's
 * events, node_progress shown on the running node (metrics and
 * network_graph) and cleared when it completes, custom_metric as
 * kaygraph_user_<name> Prometheus families (names sanitised, label values
 * escaped, kinds, histogram buckets, the series bound and its counter),
 * node durations as a histogram; and /metrics of a real server, fed by a
 * real monitored workflow, validated by `promtool check metrics`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaygraph/dashboard.h"
#include "kaygraph/kaygraph.h"
#include "prometheus.h"
#include "testutil.h"
#include "wsclient.h"

/* ---- helpers -------------------------------------------------------------------- */

static kg__agg *new_agg(size_t max_user_series)
{
    kg__agg_limits lim = {.recent_events = 100, .max_runs = 10, .max_run_events = 1000,
                          .max_nodes = 100, .max_store_bytes = 1 << 22,
                          .max_user_series = max_user_series};
    kg__agg *a = kg__agg_new(&lim, 1000.0);
    assert_non_null(a);
    return a;
}

/* Add an event of node `path` (its id is the last component), consuming
 * nothing; the event's type follows from `name`. */
static int add(kg__agg *a, const char *id, const char *name, const char *path, const char *wf,
               unsigned long long seq, const char *data)
{
    static const struct {
        const char *name, *type;
    } types[] = {{"node_log", "log"},         {"custom_metric", "metric"},
                 {"custom_event", "data"},    {"node_completed", "lifecycle"},
                 {"node_failed", "error"},    {"workflow_completed", "lifecycle"}};
    const char *type = "lifecycle";
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0)
            type = types[i].type;
    const char *slash = strrchr(path, '/');
    char *text = NULL;
    int n = asprintf(&text,
                     "{\"event_id\":\"%s\",\"timestamp\":\"2026-11-27T17:36:13.%06lluZ\","
                     "\"node_id\":\"%s\",\"node_type\":\"T\",\"node_path\":\"%s\","
                     "\"event_type\":\"%s\",\"event_name\":\"%s\",\"data\":{%s},"
                     "\"correlation_id\":\"c\",\"workflow_id\":\"%s\",\"seq\":%llu,"
                     "\"source\":{\"host\":\"h\",\"pid\":1}}",
                     id, seq % 1000000, slash ? slash + 1 : path, path, type, name,
                     data ? data : "", wf, seq);
    assert_true(n > 0);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root)
        fail_msg("bad test event: %s: %s", je.text, text);
    kg__event ev;
    kg_error_t err;
    assert_int_equal(kg__event_check(root, &ev, &err), 0);
    kg_text *m = kg_text_new(text, strlen(text));
    int rc = kg__agg_add(a, &ev, m, 1000.5);
    kg_text_unref(m);
    json_decref(root);
    free(text);
    return rc;
}

static json_t *node_of(json_t *metrics, const char *key)
{
    return json_object_get(json_object_get(metrics, "nodes"), key);
}

static json_t *graph_entry(json_t *nodes, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v) {
        const char *p = json_string_value(json_object_get(v, "path"));
        if (p && strcmp(p, path) == 0)
            return v;
        json_t *inner = graph_entry(json_object_get(v, "nodes"), path);
        if (inner)
            return inner;
    }
    return NULL;
}

static char *prometheus_of(kg__agg *a)
{
    kg_buf sb;
    kg_buf_init(&sb);
    kg__prom_render_agg(a, 1001, &sb);
    return kg_buf_steal(&sb, NULL);
}

/* ---- events and progress ----------------------------------------------------------- */

static void test_reports_accepted_and_kept_with_the_run(void **state)
{
    (void)state;
    kg__agg *a = new_agg(0);
    assert_int_equal(add(a, "e1", "node_started", "g/n", "w1", 1, "\"state\":\"started\""), 0);
    assert_int_equal(add(a, "e2", "node_log", "g/n", "w1", 2,
                         "\"level\":\"warning\",\"message\":\"<b>x</b>\",\"fields\":{\"k\":1}"),
                     0);
    assert_int_equal(add(a, "e3", "custom_event", "g/n", "w1", 3,
                         "\"name\":\"cache\",\"data\":{\"hit\":0.5}"), 0);
    kg_buf sb;
    kg_buf_init(&sb);
    json_t *summary = NULL;
    assert_int_equal(kg__agg_run_events_json(a, "w1", &sb, &summary), 0);
    json_t *evs = json_loads(sb.data, 0, NULL);
    assert_int_equal(json_array_size(evs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 1), "event_name")),
                        "node_log");
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 2), "event_name")),
                        "custom_event");
    json_decref(evs);
    json_decref(summary);
    kg_buf_free(&sb);
    json_t *m = kg__agg_metrics(a, 1001);
    json_t *bt = json_object_get(m, "events_by_type");
    assert_int_equal(json_integer_value(json_object_get(bt, "log")), 1);
    assert_int_equal(json_integer_value(json_object_get(bt, "data")), 1);
    json_t *bn = json_object_get(m, "events_by_name");
    assert_int_equal(json_integer_value(json_object_get(bn, "node_log")), 1);
    assert_int_equal(json_integer_value(json_object_get(bn, "custom_event")), 1);
    assert_null(json_object_get(bn, "other"));
    json_decref(m);
    kg__agg_free(a);
}

static void test_progress_while_running_only(void **state)
{
    (void)state;
    kg__agg *a = new_agg(0);
    assert_int_equal(add(a, "s1", "workflow_started", "g", "w1", 1,
                         "\"graph\":{\"id\":\"g\",\"type\":\"G\",\"start\":\"n\",\"nodes\":"
                         "[{\"id\":\"n\",\"type\":\"T\"}],\"edges\":[]}"), 0);
    /* Progress of a node that is not running is not shown. */
    assert_int_equal(add(a, "p0", "node_progress", "g/n", "w1", 2, "\"done\":1,\"total\":9"), 0);
    json_t *m = kg__agg_metrics(a, 1001);
    assert_null(json_object_get(node_of(m, "g/n"), "progress"));
    json_decref(m);

    assert_int_equal(add(a, "e1", "node_started", "g/n", "w1", 3, NULL), 0);
    assert_int_equal(add(a, "p1", "node_progress", "g/n", "w1", 5, "\"done\":40,\"total\":100"), 0);
    /* An older one (a parallel item's, delivered late) does not win. */
    assert_int_equal(add(a, "p2", "node_progress", "g/n", "w1", 4, "\"done\":39,\"total\":100"), 0);
    m = kg__agg_metrics(a, 1001);
    json_t *p = json_object_get(node_of(m, "g/n"), "progress");
    assert_non_null(p);
    assert_true(json_is_integer(json_object_get(p, "done")));
    assert_int_equal(json_integer_value(json_object_get(p, "done")), 40);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 100);
    json_decref(m);
    json_t *g = kg__agg_network_graph(a);
    json_t *entry = graph_entry(json_object_get(g, "nodes"), "g/n");
    assert_non_null(entry);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(entry, "progress"), "done")),
                     40);
    json_decref(g);

    /* Completed: no progress.  A new execution starts without one. */
    assert_int_equal(add(a, "e2", "node_completed", "g/n", "w1", 6,
                         "\"next_action\":\"default\",\"total_execution_time\":0.25"), 0);
    m = kg__agg_metrics(a, 1001);
    assert_null(json_object_get(node_of(m, "g/n"), "progress"));
    json_decref(m);
    g = kg__agg_network_graph(a);
    assert_null(json_object_get(graph_entry(json_object_get(g, "nodes"), "g/n"), "progress"));
    json_decref(g);
    assert_int_equal(add(a, "e3", "node_started", "g/n", "w1", 7, NULL), 0);
    m = kg__agg_metrics(a, 1001);
    assert_null(json_object_get(node_of(m, "g/n"), "progress"));
    json_decref(m);
    assert_int_equal(add(a, "p3", "node_progress", "g/n", "w1", 8, "\"done\":2.5"), 0);
    m = kg__agg_metrics(a, 1001);
    p = json_object_get(node_of(m, "g/n"), "progress");
    assert_true(json_real_value(json_object_get(p, "done")) == 2.5);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), 0);   /* unknown */
    json_decref(m);
    /* The run ends while the node "runs" (its end was lost): no progress. */
    assert_int_equal(add(a, "w2", "workflow_completed", "g", "w1", 9, "\"status\":\"success\""), 0);
    m = kg__agg_metrics(a, 1001);
    assert_null(json_object_get(node_of(m, "g/n"), "progress"));
    json_decref(m);
    kg__agg_free(a);
}

/* ---- Prometheus ------------------------------------------------------------------------ */

static void test_user_families(void **state)
{
    (void)state;
    kg__agg *a = new_agg(0);
    add(a, "m1", "custom_metric", "flow/proc", "w1", 1,
        "\"name\":\"records processed\",\"value\":10,\"unit\":\"records\",\"kind\":\"counter\"");
    add(a, "m2", "custom_metric", "flow/proc", "w1", 2,
        "\"name\":\"records processed\",\"value\":5,\"unit\":\"records\",\"kind\":\"counter\"");
    add(a, "m3", "custom_metric", "flow/agg", "w1", 3,
        "\"name\":\"mean.value\",\"value\":41.5,\"unit\":\"\",\"kind\":\"gauge\"");
    add(a, "m4", "custom_metric", "flow/agg", "w1", 4,
        "\"name\":\"mean.value\",\"value\":40,\"unit\":\"\",\"kind\":\"gauge\"");
    add(a, "m5", "custom_metric", "flow/we\\\"ird\\nnode", "w1", 5,
        "\"name\":\"latency\",\"value\":0.02,\"unit\":\"seconds\",\"kind\":\"histogram\"");
    add(a, "m6", "custom_metric", "flow/we\\\"ird\\nnode", "w1", 6,
        "\"name\":\"latency\",\"value\":3,\"unit\":\"seconds\",\"kind\":\"histogram\"");
    /* "rows_total" is the counter "rows": one family with "rows". */
    add(a, "m7", "custom_metric", "flow/proc", "w1", 7,
        "\"name\":\"rows_total\",\"value\":2,\"unit\":\"\",\"kind\":\"counter\"");
    add(a, "m8", "custom_metric", "flow/proc", "w1", 8,
        "\"name\":\"rows\",\"value\":3,\"unit\":\"\",\"kind\":\"counter\"");
    /* Clashes: the same name as another kind; a gauge named like a
     * histogram's sample; a counter's _total. */
    add(a, "c1", "custom_metric", "flow/proc", "w1", 9,
        "\"name\":\"records processed\",\"value\":1,\"unit\":\"\",\"kind\":\"gauge\"");
    add(a, "c2", "custom_metric", "flow/proc", "w1", 10,
        "\"name\":\"latency_count\",\"value\":1,\"unit\":\"\",\"kind\":\"gauge\"");
    add(a, "c3", "custom_metric", "flow/proc", "w1", 11,
        "\"name\":\"rows_total\",\"value\":1,\"unit\":\"\",\"kind\":\"gauge\"");
    /* Not a metric at all: no kind. */
    add(a, "c4", "custom_metric", "flow/proc", "w1", 12, "\"name\":\"x\",\"value\":1");

    char *text = prometheus_of(a);
    assert_non_null(strstr(text, "# TYPE kaygraph_user_records_processed_total counter\n"
                                 "kaygraph_user_records_processed_total{graph=\"flow\","
                                 "node=\"flow/proc\"} 15\n"));
    assert_non_null(strstr(text, "# HELP kaygraph_user_records_processed_total A node's own "
                                 "counter: records processed (records).\n"));
    assert_non_null(strstr(text, "# TYPE kaygraph_user_mean_value gauge\n"
                                 "kaygraph_user_mean_value{graph=\"flow\",node=\"flow/agg\"} 40\n"));
    assert_non_null(strstr(text, "# TYPE kaygraph_user_latency histogram\n"));
    assert_non_null(strstr(text, "kaygraph_user_latency_bucket{graph=\"flow\",node=\"flow/we\\\"ird"
                                 "\\nnode\",le=\"0.01\"} 0\n"));
    assert_non_null(strstr(text, "kaygraph_user_latency_bucket{graph=\"flow\",node=\"flow/we\\\"ird"
                                 "\\nnode\",le=\"0.025\"} 1\n"));
    assert_non_null(strstr(text, "kaygraph_user_latency_bucket{graph=\"flow\",node=\"flow/we\\\"ird"
                                 "\\nnode\",le=\"5\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_user_latency_bucket{graph=\"flow\",node=\"flow/we\\\"ird"
                                 "\\nnode\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_user_latency_count{graph=\"flow\",node=\"flow/we\\\"ird"
                                 "\\nnode\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_user_rows_total{graph=\"flow\",node=\"flow/proc\"} 5\n"));
    assert_null(strstr(text, "kaygraph_user_latency_count{graph=\"flow\",node=\"flow/proc\"}"));
    assert_non_null(strstr(text, "kaygraph_dashboard_user_series_dropped_total 4\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_user_series 4\n"));
    free(text);
    kg__agg_free(a);
}

static void test_user_series_bounded(void **state)
{
    (void)state;
    kg__agg *a = new_agg(3);
    for (int i = 0; i < 10; i++) {
        char id[16], path[32];
        snprintf(id, sizeof id, "m%d", i);
        snprintf(path, sizeof path, "g/node%d", i);
        add(a, id, "custom_metric", path, "w1", (unsigned)i + 1,
            "\"name\":\"n\",\"value\":1,\"unit\":\"\",\"kind\":\"counter\"");
    }
    /* Updates of the series kept still count. */
    add(a, "again", "custom_metric", "g/node1", "w1", 20,
        "\"name\":\"n\",\"value\":1,\"unit\":\"\",\"kind\":\"counter\"");
    char *text = prometheus_of(a);
    assert_non_null(strstr(text, "kaygraph_user_n_total{graph=\"g\",node=\"g/node0\"} 1\n"));
    assert_non_null(strstr(text, "kaygraph_user_n_total{graph=\"g\",node=\"g/node1\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_user_n_total{graph=\"g\",node=\"g/node2\"} 1\n"));
    assert_null(strstr(text, "node=\"g/node3\""));
    assert_non_null(strstr(text, "kaygraph_dashboard_user_series_dropped_total 7\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_user_series 3\n"));
    free(text);
    kg__agg_free(a);
}

static void test_node_duration_histogram(void **state)
{
    (void)state;
    kg__agg *a = new_agg(0);
    add(a, "s", "node_started", "g/n", "w1", 1, NULL);
    add(a, "c1", "node_completed", "g/n", "w1", 2,
        "\"next_action\":\"default\",\"total_execution_time\":0.003");
    add(a, "c2", "node_completed", "g/n", "w1", 3,
        "\"next_action\":\"default\",\"total_execution_time\":0.2");
    add(a, "c3", "node_failed", "g/n", "w1", 4, "\"total_execution_time\":500,\"error\":\"x\"");
    char *text = prometheus_of(a);
    assert_non_null(strstr(text, "# TYPE kaygraph_dashboard_node_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_bucket{node=\"g/n\","
                                 "le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_bucket{node=\"g/n\","
                                 "le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_bucket{node=\"g/n\","
                                 "le=\"0.25\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_bucket{node=\"g/n\","
                                 "le=\"300\"} 2\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_bucket{node=\"g/n\","
                                 "le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "kaygraph_dashboard_node_duration_seconds_count{node=\"g/n\"} 3\n"));
    assert_null(strstr(text, "quantile"));
    free(text);
    kg__agg_free(a);
}

/* ---- a real server's /metrics through promtool --------------------------------------- */

static int busy_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    long item = kg_ctx_item(ctx);
    kg_ctx_metric(ctx, "records processed", 10, "records", KG_METRIC_COUNTER);
    kg_ctx_metric(ctx, "queue.depth", (double)item, "", KG_METRIC_GAUGE);
    kg_ctx_metric(ctx, "latency", 0.001 * (double)(item + 1), "seconds", KG_METRIC_HISTOGRAM);
    kg_ctx_metric(ctx, "tokens", 5120, "tokens", KG_METRIC_HISTOGRAM);
    kg_ctx_progress(ctx, 1, 1);
    kg_ctx_log(ctx, KG_LOG_INFO, "item %ld", item);
    return 0;
}

static int items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("[i,i,i,i]", 0, 1, 2, 3);
    return 0;
}

static const kg_node_ops busy_ops = {.type_name = "BusyNode", .prep = items_prep,
                                     .exec = busy_exec};

/* promtool's verdict on `text`: its exit status, its output in *out. */
static int promtool_check(const char *text, char **out)
{
    char in_path[] = "/tmp/kg-prom-XXXXXX";
    int fd = mkstemp(in_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", in_path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    kg_buf b;
    kg_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        kg_buf_append(&b, chunk, n);
    int status = pclose(p);
    unlink(in_path);
    *out = kg_buf_steal(&b, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_promtool_accepts_metrics(void **state)
{
    (void)state;
    if (system("command -v promtool > /dev/null") != 0)
        fail_msg("promtool is not installed (Debian package prometheus: scripts/deps.sh --test)");
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.max_user_series = 6;   /* fewer than the workflow makes: overflow counted */
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    assert_int_equal(kg_dashboard_new(&o, &d, &err), 0);
    int port = kg_dashboard_port(d);

    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_dashboard_backend_new(d);
    cfg.metrics_interval = 0;
    kg_monitor_t *mon;
    assert_int_equal(kg_monitor_new(&cfg, &mon, &err), 0);
    kg_node_t *g = kg_graph_new("flow \"quoted\"", NULL, NULL);
    kg_graph_add(g, kg_parallel_batch_node_new("busy\nnode", &busy_ops, NULL, 2));
    kg_graph_add(g, kg_batch_node_new("other", &busy_ops, NULL));
    kg_node_connect(kg_graph_find(g, "busy\nnode"), NULL, kg_graph_find(g, "other"));
    kg_monitor_attach(mon, g);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(kg_monitor_flush(mon, 10), 0);

    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "kaygraph_user_records_processed_total{graph=\"flow \\\"quoted\\\"\""));
    assert_non_null(strstr(r.body, "kaygraph_user_latency_bucket{"));
    assert_non_null(strstr(r.body, "# TYPE kaygraph_dashboard_node_duration_seconds histogram"));
    /* 2 nodes x 4 metrics = 8 series, 6 kept: the rest's updates counted. */
    assert_non_null(strstr(r.body, "kaygraph_dashboard_user_series 6\n"));
    assert_null(strstr(r.body, "kaygraph_dashboard_user_series_dropped_total 0\n"));
    char *verdict = NULL;
    int rc = promtool_check(r.body, &verdict);
    if (rc != 0)
        fail_msg("promtool check metrics failed (%d):\n%s\n--- the text:\n%s", rc, verdict, r.body);
    free(verdict);
    kg_thttp_resp_free(&r);

    kg_monitor_detach(mon, g);
    assert_int_equal(kg_monitor_free(mon), 0);
    kg_node_free(g);
    kg_dashboard_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reports_accepted_and_kept_with_the_run),
        cmocka_unit_test(test_progress_while_running_only),
        cmocka_unit_test(test_user_families),
        cmocka_unit_test(test_user_series_bounded),
        cmocka_unit_test(test_node_duration_histogram),
        cmocka_unit_test(test_promtool_accepts_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
