/* test_dash_aggregate.c - the dashboard's socket-free parts: aggregation, ingest
 * parsing, auth rules, and a WebSocket client's queue/framing logic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "ingest.h"
#include "prometheus.h"
#include "util/iso8601.h"
#include "ws.h"
#include "wsproto.h"
#include "testutil.h"
#include "wsclient.h"

/* ---- helpers ------------------------------------------------------------------- */

static kg__agg *new_agg(size_t runs, size_t run_events, size_t nodes, size_t bytes, double stale)
{
    kg__agg_limits lim = {.recent_events = 100, .max_runs = runs, .max_run_events = run_events,
                          .max_nodes = nodes, .max_store_bytes = bytes, .stale_after = stale};
    kg__agg *a = kg__agg_new(&lim, 1000.0);
    assert_non_null(a);
    return a;
}

/* Add the event whose JSON is `text` (consumed).  Returns kg__agg_add's code. */
static int add_text(kg__agg *a, char *text, double now)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    assert_non_null(root);
    kg__event ev;
    kg_error_t err;
    assert_int_equal(kg__event_check(root, &ev, &err), 0);
    kg_text *m = kg_text_new(text, strlen(text));
    int rc = kg__agg_add(a, &ev, m, now);
    kg_text_unref(m);
    json_decref(root);
    free(text);
    return rc;
}

static int add(kg__agg *a, const char *id, const char *name, const char *type, const char *node,
               const char *wf, unsigned long long seq, const char *extra, double now)
{
    return add_text(a, kg_tevent(id, name, type, node, wf, seq, extra), now);
}

static const char *k_graph =
    "\"graph\":{\"nodes\":[{\"id\":\"load\",\"type\":\"Load\"},{\"id\":\"check\",\"type\":"
    "\"Check\"},{\"id\":\"store\",\"type\":\"Store\"}],\"edges\":[{\"from\":\"load\",\"to\":"
    "\"check\",\"action\":\"default\"},{\"from\":\"check\",\"to\":\"store\",\"action\":\"ok\"}],"
    "\"start\":\"load\"}";

static json_t *node_metrics(json_t *m, const char *node)
{
    return json_object_get(json_object_get(m, "nodes"), node);
}

static const char *node_status(kg__agg *a, const char *node)
{
    static char buf[32];
    json_t *m = kg__agg_metrics(a, 1001);
    const char *s = json_string_value(json_object_get(node_metrics(m, node), "status"));
    snprintf(buf, sizeof buf, "%s", s ? s : "(none)");
    json_decref(m);
    return buf;
}

/* ---- aggregation ------------------------------------------------------------------ */

static void test_topology_and_status(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 0);
    assert_int_equal(add(a, "e1", "workflow_started", "lifecycle", "flow", "w1", 1, k_graph, 1000), 0);
    json_t *g = kg__agg_network_graph(a);
    assert_int_equal(json_array_size(json_object_get(g, "nodes")), 3);
    assert_int_equal(json_array_size(json_object_get(g, "edges")), 2);
    assert_string_equal(json_string_value(json_object_get(g, "start")), "load");
    assert_string_equal(json_string_value(json_object_get(g, "workflow_id")), "w1");
    json_decref(g);
    assert_string_equal(node_status(a, "load"), "idle");

    add(a, "e2", "node_started", "lifecycle", "load", "w1", 2, NULL, 1000);
    assert_string_equal(node_status(a, "load"), "running");
    json_t *act = kg__agg_active_nodes(a);
    assert_int_equal(json_array_size(act), 1);
    json_decref(act);
    add(a, "e3", "node_completed", "lifecycle", "load", "w1", 3,
        "\"next_action\":\"default\",\"total_execution_time\":0.5", 1000);
    assert_string_equal(node_status(a, "load"), "completed");
    add(a, "e4", "node_started", "lifecycle", "check", "w1", 4, NULL, 1000);
    add(a, "e5", "retry_attempted", "error", "check", "w1", 5, "\"attempt\":1", 1000);
    assert_string_equal(node_status(a, "check"), "retrying");
    add(a, "e6", "node_failed", "error", "check", "w1", 6, "\"error\":\"boom\"", 1000);
    assert_string_equal(node_status(a, "check"), "failed");

    /* The edge load -default-> check was taken once. */
    g = kg__agg_network_graph(a);
    size_t i;
    json_t *e;
    int taken = -1;
    json_array_foreach(json_object_get(g, "edges"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "from")), "load") == 0)
            taken = (int)json_integer_value(json_object_get(e, "count"));
    assert_int_equal(taken, 1);
    json_decref(g);

    json_t *m = kg__agg_metrics(a, 1001);
    assert_int_equal(json_integer_value(json_object_get(m, "total_events")), 6);
    assert_int_equal(json_integer_value(json_object_get(m, "errors")), 2);
    assert_true(json_real_value(json_object_get(m, "success_rate")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(node_metrics(m, "check"), "retries")), 1);
    assert_true(json_real_value(json_object_get(node_metrics(m, "load"), "avg")) == 0.5);
    assert_true(json_real_value(json_object_get(node_metrics(m, "load"), "p95")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(m, "active_workflows")), 1);
    json_decref(m);

    add(a, "e7", "workflow_completed", "lifecycle", "flow", "w1", 7,
        "\"status\":\"failed\",\"duration\":1.5", 1000);
    m = kg__agg_metrics(a, 1001);
    assert_int_equal(json_integer_value(json_object_get(m, "active_workflows")), 0);
    assert_true(json_real_value(json_object_get(m, "workflow_success_rate")) == 0.0);
    json_decref(m);
    kg__agg_free(a);
}

static void test_out_of_order_and_duplicates(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 0);
    /* completed (seq 3) arrives before started (seq 1): status stays completed. */
    add(a, "x3", "node_completed", "lifecycle", "n", "w", 3, "\"total_execution_time\":0.1", 1000);
    add(a, "x1", "node_started", "lifecycle", "n", "w", 1, NULL, 1000);
    add(a, "x2", "node_executing", "lifecycle", "n", "w", 2, NULL, 1000);
    assert_string_equal(node_status(a, "n"), "completed");
    /* The run's events come back in seq order. */
    kg_buf sb;
    kg_buf_init(&sb);
    assert_int_equal(kg__agg_run_events_json(a, "w", &sb, NULL), 0);
    json_t *arr = json_loads(sb.data, 0, NULL);
    assert_int_equal(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, i), "seq")),
                         (json_int_t)i + 1);
    json_decref(arr);
    kg_buf_free(&sb);
    /* Same event_id again: ignored. */
    assert_int_equal(add(a, "x1", "node_started", "lifecycle", "n", "w", 1, NULL, 1000),
                     KG_EEXISTS);
    kg__agg_counts c;
    kg__agg_counts_get(a, &c);
    assert_int_equal(c.total, 3);
    assert_int_equal(c.duplicates, 1);
    assert_int_equal(kg__agg_run_events_json(a, "nope", &sb, NULL), KG_ENOTFOUND);
    kg_buf_free(&sb);
    kg__agg_free(a);
}

static void test_stale_runs(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 30);
    add(a, "s1", "workflow_started", "lifecycle", "flow", "w1", 1, k_graph, 1000);
    add(a, "s2", "node_started", "lifecycle", "load", "w1", 2, NULL, 1000);
    kg__agg_tick(a, 1010);
    assert_string_equal(node_status(a, "load"), "running");
    kg__agg_tick(a, 1031);
    assert_string_equal(node_status(a, "load"), "idle");
    json_t *runs = kg__agg_runs(a, 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "status")),
                        "stale");
    json_decref(runs);
    json_t *wf = kg__agg_active_workflows(a);
    assert_int_equal(json_array_size(wf), 0);
    json_decref(wf);
    kg__agg_free(a);
}

/* Run "<prefix>-<i>": started and completed (success) at `now`. */
static void add_short_run(kg__agg *a, const char *prefix, int i, double now)
{
    char id[48], wf[32];
    snprintf(wf, sizeof wf, "%s-%d", prefix, i);
    snprintf(id, sizeof id, "%s-s", wf);
    add(a, id, "workflow_started", "lifecycle", "flow", wf, 1, k_graph, now);
    snprintf(id, sizeof id, "%s-c", wf);
    add(a, id, "workflow_completed", "lifecycle", "flow", wf, 3,
        "\"status\":\"success\",\"duration\":0.1", now);
}

/* A run whose process died (started, then silence) is kept while short runs
 * come and go, and still after it became stale. */
static void test_running_run_outlives_short_runs(void **state)
{
    (void)state;
    kg__agg *a = new_agg(3, 100, 100, 1 << 20, 30);
    add(a, "k1", "workflow_started", "lifecycle", "flow", "killed", 1, k_graph, 1000);
    add(a, "k2", "node_started", "lifecycle", "load", "killed", 2, NULL, 1000);
    for (int i = 0; i < 20; i++)
        add_short_run(a, "short", i, 1001 + i);
    json_t *runs = kg__agg_runs(a, 0);
    assert_int_equal(json_array_size(runs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "workflow_id")),
                        "killed");
    json_decref(runs);
    kg__agg_tick(a, 1031);
    runs = kg__agg_runs(a, 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "status")),
                        "stale");
    json_decref(runs);
    add(a, "s-last", "workflow_started", "lifecycle", "flow", "short-last", 1, k_graph, 1032);
    runs = kg__agg_runs(a, 0);
    assert_int_equal(json_array_size(runs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "workflow_id")),
                        "killed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "status")),
                        "stale");
    json_decref(runs);
    kg__agg_free(a);
}

/* A late event of a run that ended and was evicted (a replay behind the live
 * feed) is counted but does not bring the run back as "running". */
static void test_late_event_of_evicted_run(void **state)
{
    (void)state;
    kg__agg *a = new_agg(2, 100, 100, 1 << 20, 30);
    for (int i = 0; i < 3; i++)
        add_short_run(a, "run", i, 1000 + i);
    assert_int_equal(add(a, "late", "node_started", "lifecycle", "load", "run-0", 2, NULL, 1010), 0);
    json_t *runs = kg__agg_runs(a, 0);
    assert_int_equal(json_array_size(runs), 2);
    for (size_t i = 0; i < json_array_size(runs); i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(runs, i), "workflow_id")), "run-0");
    json_decref(runs);
    assert_string_not_equal(node_status(a, "load"), "running");
    json_t *m = kg__agg_metrics(a, 1010);
    assert_int_equal(json_integer_value(json_object_get(m, "total_events")), 7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "workflows"), "running")), 0);
    json_decref(m);
    kg__agg_free(a);
}

static void test_bounded_memory(void **state)
{
    (void)state;
    /* 5 runs, 50 events per run, 20 nodes, 256 KiB of text. */
    kg__agg *a = new_agg(5, 50, 20, 256 * 1024, 0);
    char id[64], wf[64], node[64];
    char pad[2100];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char extra[2200];
    snprintf(extra, sizeof extra, "\"pad\":\"%s\"", pad);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        snprintf(wf, sizeof wf, "wf-%d", i / 300);
        snprintf(node, sizeof node, "node-%d", i % 97);
        assert_int_equal(add(a, id, "node_started", "lifecycle", node, wf, (unsigned)i,
                             i % 10 ? NULL : extra, 1000 + i * 0.001),
                         0);
        kg__agg_counts c;
        kg__agg_counts_get(a, &c);
        assert_true(c.runs <= 5);
        assert_true(c.nodes <= 20);
        assert_true(c.store_bytes <= 256 * 1024);
        assert_true(c.recent <= 100);
    }
    kg_buf sb;
    kg_buf_init(&sb);
    json_t *summary = NULL;
    assert_int_equal(kg__agg_run_events_json(a, "wf-66", &sb, &summary), 0);
    json_t *arr = json_loads(sb.data, 0, NULL);
    assert_true(json_array_size(arr) <= 50);
    assert_true(json_integer_value(json_object_get(summary, "truncated")) > 0);
    json_decref(arr);
    json_decref(summary);
    kg_buf_free(&sb);
    kg__agg_free(a);
}

static void test_metrics_and_prometheus(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 0);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "m%d", i);
        char extra[64];
        snprintf(extra, sizeof extra, "\"total_execution_time\":%d", i + 1);
        /* JSON-escaped in the event text: the id is we"ird<newline>node. */
        add(a, id, "node_completed", "lifecycle", "we\\\"ird\\nnode", "w", (unsigned)i, extra,
            1000.5 + i * 0.1);
    }
    add(a, "d1", "events_dropped", "metric", "dispatcher", "", 100, "\"value\":7", 1003);
    json_t *m = kg__agg_metrics(a, 1003.5);
    json_t *n = node_metrics(m, "we\"ird\nnode");
    assert_non_null(n);
    assert_true(json_real_value(json_object_get(n, "avg")) == 10.5);
    assert_true(json_real_value(json_object_get(n, "p95")) == 19);
    assert_int_equal(json_integer_value(json_object_get(m, "dropped")), 7);
    assert_true(json_real_value(json_object_get(m, "events_per_second")) > 0);
    assert_int_equal(json_array_size(json_object_get(m, "throughput")), 60);
    json_decref(m);
    kg_buf sb;
    kg_buf_init(&sb);
    kg__prom_render_agg(a, 1004, &sb);
    assert_non_null(strstr(sb.data, "kaygraph_dashboard_node_executions_total{node=\"we\\\"ird\\nnode\"}"));
    assert_non_null(strstr(sb.data, "kaygraph_dashboard_events_total{event_type=\"lifecycle\"} 20"));
    kg_buf_free(&sb);
    kg__agg_free(a);
}

/* ---- ingest ------------------------------------------------------------------------------ */

static kg__hub *new_hub(size_t client_queue)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.client_queue = client_queue;
    o.max_body = 64 * 1024;
    kg__hub *h = calloc(1, sizeof *h);
    assert_int_equal(kg__hub_init(h, &o), 0);
    return h;
}

static void free_hub(kg__hub *h)
{
    kg__hub_destroy(h);
    free(h);
}

/* ---- nested graphs: nodes keyed by path --------------------------------------- */

/* kg_tevent with "node_path" (consumed text in, new text out). */
static char *with_path(char *ev, const char *path)
{
    char *at = strstr(ev, "\"node_id\":");
    size_t n = strlen(ev) + strlen(path) + 32;
    char *out = malloc(n);
    snprintf(out, n, "%.*s\"node_path\":\"%s\",%s", (int)(at - ev), ev, path, at);
    free(ev);
    return out;
}

static int add_p(kg__agg *a, const char *id, const char *name, const char *type,
                 const char *node, const char *path, const char *wf, unsigned long long seq,
                 const char *extra)
{
    return add_text(a, with_path(kg_tevent(id, name, type, node, wf, seq, extra), path), 1000);
}

/* outer: a -> inner(x -> y) -> inner2(x -> y), per_item[batch](z) */
static const char *k_nested =
    "\"graph\":{\"id\":\"outer\",\"type\":\"Graph\",\"start\":\"a\",\"nodes\":["
    "{\"id\":\"a\",\"type\":\"A\"},"
    "{\"id\":\"inner\",\"type\":\"Graph\",\"start\":\"x\",\"nodes\":[{\"id\":\"x\",\"type\":\"X\"},"
    "{\"id\":\"y\",\"type\":\"Y\"}],\"edges\":[{\"from\":\"x\",\"to\":\"y\",\"action\":\"default\"}]},"
    "{\"id\":\"inner2\",\"type\":\"Graph\",\"start\":\"x\",\"nodes\":[{\"id\":\"x\",\"type\":\"X\"},"
    "{\"id\":\"y\",\"type\":\"Y\"}],\"edges\":[{\"from\":\"x\",\"to\":\"y\",\"action\":\"default\"}]},"
    "{\"id\":\"per_item\",\"type\":\"BatchGraph\",\"batch\":true,\"start\":\"z\",\"nodes\":"
    "[{\"id\":\"z\",\"type\":\"Z\"}],\"edges\":[]}],"
    "\"edges\":[{\"from\":\"a\",\"to\":\"inner\",\"action\":\"default\"}]}";

static json_t *entry_by_id(json_t *nodes, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v) if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
        return v;
    return NULL;
}

static void test_nested_graph_keyed_by_path(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 0);
    assert_int_equal(add_p(a, "n1", "workflow_started", "lifecycle", "outer", "outer", "w1", 1,
                           k_nested), 0);
    /* x of inner runs and completes; x of inner2 only starts. */
    add_p(a, "n2", "node_started", "lifecycle", "x", "outer/inner/x", "w2", 2, NULL);
    add_p(a, "n3", "node_completed", "lifecycle", "x", "outer/inner/x", "w2", 3,
          "\"next_action\":\"default\",\"total_execution_time\":0.25");
    add_p(a, "n4", "node_started", "lifecycle", "x", "outer/inner2/x", "w3", 4, NULL);
    /* A nested run's own workflow_started adds nothing new. */
    add_p(a, "n5", "workflow_started", "lifecycle", "inner", "outer/inner", "w2", 1,
          "\"parent_workflow_id\":\"w1\",\"graph\":{\"id\":\"inner\",\"type\":\"Graph\","
          "\"start\":\"x\",\"nodes\":[{\"id\":\"x\",\"type\":\"X\"},{\"id\":\"y\",\"type\":\"Y\"}],"
          "\"edges\":[{\"from\":\"x\",\"to\":\"y\",\"action\":\"default\"}]}");

    json_t *m = kg__agg_metrics(a, 1001);
    json_t *x1 = node_metrics(m, "outer/inner/x"), *x2 = node_metrics(m, "outer/inner2/x");
    assert_non_null(x1);
    assert_non_null(x2);
    assert_string_equal(json_string_value(json_object_get(x1, "id")), "x");
    assert_string_equal(json_string_value(json_object_get(x1, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(x2, "status")), "running");
    assert_null(node_metrics(m, "x"));
    assert_int_equal(json_object_size(json_object_get(m, "nodes")), 9);
    json_decref(m);
    json_t *act = kg__agg_active_nodes(a);
    assert_int_equal(json_array_size(act), 1);
    assert_string_equal(json_string_value(json_array_get(act, 0)), "outer/inner2/x");
    json_decref(act);

    json_t *g = kg__agg_network_graph(a);
    json_t *top = json_object_get(g, "nodes");
    assert_int_equal(json_array_size(top), 4);
    assert_string_equal(json_string_value(json_object_get(g, "start")), "a");
    assert_int_equal(json_array_size(json_object_get(g, "edges")), 1);
    json_t *inner = entry_by_id(top, "inner"), *inner2 = entry_by_id(top, "inner2");
    assert_string_equal(json_string_value(json_object_get(inner, "path")), "outer/inner");
    assert_string_equal(json_string_value(json_object_get(inner, "start")), "x");
    json_t *ix = entry_by_id(json_object_get(inner, "nodes"), "x");
    assert_string_equal(json_string_value(json_object_get(ix, "path")), "outer/inner/x");
    assert_string_equal(json_string_value(json_object_get(ix, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(
                            entry_by_id(json_object_get(inner2, "nodes"), "x"), "status")),
                        "running");
    /* The transition inner/x -> inner/y counts there, not in inner2. */
    json_t *e1 = json_array_get(json_object_get(inner, "edges"), 0);
    json_t *e2 = json_array_get(json_object_get(inner2, "edges"), 0);
    assert_string_equal(json_string_value(json_object_get(e1, "from_path")), "outer/inner/x");
    assert_string_equal(json_string_value(json_object_get(e1, "to")), "y");
    assert_int_equal(json_integer_value(json_object_get(e1, "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(e2, "count")), 0);
    json_t *per = entry_by_id(top, "per_item");
    assert_true(json_is_true(json_object_get(per, "batch")));
    assert_int_equal(json_array_size(json_object_get(per, "nodes")), 1);
    assert_null(json_object_get(entry_by_id(top, "a"), "nodes"));   /* not a graph */
    json_decref(g);

    /* Run summaries name the run a nested run belongs to. */
    json_t *runs = kg__agg_runs(a, 0);
    size_t i, checked = 0;
    json_t *r;
    json_array_foreach(runs, i, r) {
        const char *id = json_string_value(json_object_get(r, "workflow_id"));
        json_t *parent = json_object_get(r, "parent_workflow_id");
        if (strcmp(id, "w1") == 0 && ++checked)
            assert_true(json_is_null(parent));
        if (strcmp(id, "w2") == 0 && ++checked)
            assert_string_equal(json_string_value(parent), "w1");
    }
    assert_int_equal(checked, 2);
    json_decref(runs);
    kg__agg_free(a);
}

/* A nested run (here one item of a batch graph) seen without its
 * enclosing run's topology (the dashboard started late) still nests under
 * its graph, escaped ids and all. */
static void test_nested_run_alone_nests(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 100, 1 << 20, 0);
    add_p(a, "m1", "workflow_started", "lifecycle", "in%2Fner", "outer/in%2Fner", "w2", 1,
          "\"parent_workflow_id\":\"w1\",\"item\":0,\"graph\":{\"id\":\"in/ner\",\"type\":\"Graph\","
          "\"batch\":true,\"start\":\"a/b\",\"nodes\":[{\"id\":\"a/b\",\"type\":\"X\"}],\"edges\":[]}");
    json_t *g = kg__agg_network_graph(a);
    json_t *top = json_object_get(g, "nodes");
    assert_int_equal(json_array_size(top), 1);
    json_t *inner = json_array_get(top, 0);
    assert_string_equal(json_string_value(json_object_get(inner, "path")), "outer/in%2Fner");
    assert_true(json_is_true(json_object_get(inner, "batch")));
    assert_string_equal(json_string_value(json_object_get(inner, "start")), "a/b");
    json_t *child = json_array_get(json_object_get(inner, "nodes"), 0);
    assert_string_equal(json_string_value(json_object_get(child, "id")), "a/b");
    assert_string_equal(json_string_value(json_object_get(child, "path")), "outer/in%2Fner/a%2Fb");
    json_decref(g);
    kg__agg_free(a);
}

/* A topology nested deeper than anyone draws is followed to a bound. */
static void test_deep_topology_is_bounded(void **state)
{
    (void)state;
    kg__agg *a = new_agg(10, 100, 1000, 1 << 22, 0);
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "\"graph\":");
    for (int i = 0; i < 200; i++)
        kg_buf_printf(&sb, "{\"id\":\"g%d\",\"nodes\":[", i);
    for (int i = 0; i < 200; i++)
        kg_buf_puts(&sb, "]}");
    add_p(a, "d1", "workflow_started", "lifecycle", "top", "top", "w", 1, sb.data);
    kg__agg_counts c;
    kg__agg_counts_get(a, &c);
    assert_in_range(c.nodes, 30, 40);
    json_t *g = kg__agg_network_graph(a);
    assert_non_null(g);
    json_decref(g);
    kg_buf_free(&sb);
    kg__agg_free(a);
}

static void test_ingest_bodies(void **state)
{
    (void)state;
    kg__hub *h = new_hub(64);
    kg__ingest_result r;
    kg_error_t err;
    char *e1 = kg_tevent("b1", "node_started", "lifecycle", "n", "w", 1, NULL);
    assert_int_equal(kg__ingest_body(h, e1, strlen(e1), &r, &err), 0);
    assert_int_equal(r.accepted, 1);
    char body[4096];
    char *e2 = kg_tevent("b2", "node_completed", "lifecycle", "n", "w", 2, NULL);
    snprintf(body, sizeof body,
             "{\"events\":[%s,{\"event_id\":\"bad\"},%s],\"batch_size\":3,\"timestamp\":\"t\"}", e2,
             e1);
    assert_int_equal(kg__ingest_body(h, body, strlen(body), &r, &err), 0);
    assert_int_equal(r.accepted, 1);
    assert_int_equal(r.rejected, 1);
    assert_int_equal(r.duplicates, 1);
    assert_non_null(strstr(r.first_error, "events[1]"));

    static const char *bad[] = {"", "{", "[1,2]", "{\"events\":3}", "{\"event_id\":1}",
                                "nul\x01", "{\"events\":[1]}", "\"str\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kg_error_clear(&err);
        assert_int_equal(kg__ingest_body(h, bad[i], strlen(bad[i]), &r, &err), KG_EPARSE);
        assert_true(err.message[0] != '\0');
    }
    /* Wrong types and an unknown event_type. */
    char *e3 = kg_tevent("b3", "node_started", "nonsense", "n", "w", 3, NULL);
    assert_int_equal(kg__ingest_body(h, e3, strlen(e3), &r, &err), KG_EPARSE);
    assert_non_null(strstr(err.message, "event_type"));
    /* node_path, when present, must be a string. */
    char *e4 = kg_tevent("b4", "node_started", "lifecycle", "n", "w", 4, NULL);
    char *at = strstr(e4, "\"node_id\"");
    snprintf(body, sizeof body, "%.*s\"node_path\":7,%s", (int)(at - e4), e4, at);
    assert_int_equal(kg__ingest_body(h, body, strlen(body), &r, &err), KG_EPARSE);
    assert_non_null(strstr(err.message, "node_path"));
    free(e4);
    char *big = calloc(1, 70000);
    memset(big, ' ', 69999);
    assert_int_equal(kg__ingest_body(h, big, 69999, &r, &err), KG_ERANGE);
    /* The stored text of a bare event is its own text, trimmed. */
    kg_buf sb;
    kg_buf_init(&sb);
    kg__agg_recent_json(h->agg, 1, &sb);
    json_t *arr = json_loads(sb.data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "event_id")),
                        "b2");
    json_decref(arr);
    kg_buf_free(&sb);
    free(big);
    free(e1);
    free(e2);
    free(e3);
    free_hub(h);
}

static void test_iso_time(void **state)
{
    (void)state;
    assert_true(kg_iso8601_parse_ms("1970-01-01T00:00:00Z") == 0);
    assert_true(kg_iso8601_parse_ms("2026-11-27T17:36:13.123456Z") == 1795800973123LL);
    assert_true(kg_iso8601_parse_ms("2026-11-27T18:36:13.123+01:00") == 1795800973123LL);
    assert_true(kg_iso8601_parse_ms("garbage") == -1);
    assert_true(kg_iso8601_parse_ms("2026-13-27T17:36:13Z") == -1);
}

/* ---- auth ------------------------------------------------------------------------------- */

static void test_auth_rules(void **state)
{
    (void)state;
    assert_true(kg__token_equal("s3cret", "s3cret", 6));
    assert_false(kg__token_equal("s3cret", "s3cre", 5));
    assert_false(kg__token_equal("s3cret", "s3cretx", 7));
    assert_true(kg__auth_bearer_ok("tok", "Bearer tok"));
    assert_true(kg__auth_bearer_ok("tok", "bearer  tok "));
    assert_false(kg__auth_bearer_ok("tok", "Basic tok"));
    assert_false(kg__auth_bearer_ok("tok", NULL));
    assert_true(kg__auth_cookie_ok("tok", "a=b; kg_token=tok; c=d"));
    assert_false(kg__auth_cookie_ok("tok", "kg_token=tok2"));
    assert_true(kg__origin_ok(NULL, "127.0.0.1:8080", NULL));
    assert_true(kg__origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080", NULL));
    assert_true(kg__origin_ok("http://LOCALHOST", "localhost:80", NULL));
    assert_false(kg__origin_ok("http://evil.example", "127.0.0.1:8080", NULL));
    assert_false(kg__origin_ok("http://127.0.0.1:9999", "127.0.0.1:8080", NULL));
    assert_false(kg__origin_ok("null", "127.0.0.1:8080", NULL));
    assert_true(kg__origin_ok("https://ops.example", "127.0.0.1:8080",
                              "http://a.example, https://ops.example"));
    assert_true(kg__host_ok("127.0.0.1:8080", true));
    assert_true(kg__host_ok("localhost:8080", true));
    assert_true(kg__host_ok("[::1]:8080", true));
    assert_false(kg__host_ok("evil.example:8080", true));
    assert_false(kg__host_ok("127.0.0.1.evil.example", true));
    assert_true(kg__host_ok("evil.example", false));
    char v[32];
    assert_true(kg__query_get("a=1&token=x%2By+z&b", "token", v, sizeof v));
    assert_string_equal(v, "x+y z");
    assert_false(kg__query_get("tokenx=1", "token", v, sizeof v));
}

/* ---- WebSocket client logic without a socket ---------------------------------------------- */

/* Decode the frames in `out` into a JSON array of messages. */
static json_t *frames(const kg_buf *out)
{
    json_t *arr = json_array();
    size_t i = 0;
    while (i < out->len) {
        const uint8_t *p = (const uint8_t *)out->data + i;
        assert_int_equal(p[0], 0x81);
        uint64_t n = p[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            n = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (n == 127) {
            n = 0;
            for (int k = 0; k < 8; k++)
                n = (n << 8) | p[2 + k];
            h = 10;
        }
        json_error_t je;
        json_t *m = json_loadb((const char *)p + h, (size_t)n, 0, &je);
        assert_non_null(m);
        json_array_append_new(arr, m);
        i += h + (size_t)n;
    }
    assert_int_equal(i, out->len);
    return arr;
}

static const char *type_at(json_t *arr, size_t i)
{
    return json_string_value(json_object_get(json_array_get(arr, i), "type"));
}

static void ingest_one(kg__hub *h, const char *id, const char *wf, unsigned long long seq)
{
    char *e = kg_tevent(id, "node_started", "lifecycle", "n", wf, seq, NULL);
    assert_int_equal(kg__ingest_event_text(h, e, strlen(e), NULL), 0);
    free(e);
}

static void test_ws_client_logic(void **state)
{
    (void)state;
    kg__hub *h = new_hub(8);
    ingest_one(h, "before", "w1", 1);
    kg__wsclient c;
    memset(&c, 0, sizeof c);
    assert_int_equal(kg__ws_client_start(h, &c), 0);
    ingest_one(h, "after", "w1", 2);
    kg_buf out;
    kg_buf_init(&out);
    assert_true(kg__ws_client_fill(h, &c, &out, 1) == 2);
    json_t *arr = frames(&out);
    assert_string_equal(type_at(arr, 0), "initial");
    json_t *init_events = json_object_get(json_object_get(json_array_get(arr, 0), "data"), "events");
    assert_int_equal(json_array_size(init_events), 1);   /* "before" only */
    assert_string_equal(type_at(arr, 1), "event");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(arr, 1), "data"), "event_id")),
                        "after");
    json_decref(arr);
    assert_false(kg__ws_client_pending(h, &c));

    /* Requests. */
    static const char req[] = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"w1\"}";
    kg__ws_client_message(h, &c, req, sizeof req - 1);
    kg__ws_client_message(h, &c, "{\"type\":\"ping\"}", 15);
    kg__ws_client_message(h, &c, "{nope", 5);
    kg__ws_client_message(h, &c, "{\"type\":\"get_workflow_events\"}", 30);
    kg__ws_client_message(h, &c, "{\"type\":\"get_workflow_events\",\"workflow_id\":\"zz\"}", 49);
    kg_buf_reset(&out);
    assert_true(kg__ws_client_fill(h, &c, &out, 2) == 5);
    arr = frames(&out);
    assert_string_equal(type_at(arr, 0), "workflow_events");
    assert_int_equal(json_array_size(json_object_get(json_array_get(arr, 0), "events")), 2);
    assert_true(json_is_true(json_object_get(json_array_get(arr, 0), "found")));
    assert_string_equal(type_at(arr, 1), "pong");
    assert_string_equal(type_at(arr, 2), "error");
    assert_string_equal(type_at(arr, 3), "error");
    assert_true(json_is_false(json_object_get(json_array_get(arr, 4), "found")));
    json_decref(arr);

    /* Fall 20 messages behind with a queue of 8: notice + fresh initial, no backlog. */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "lag%d", i);
        ingest_one(h, id, "w2", (unsigned)i);
    }
    kg_buf_reset(&out);
    assert_true(kg__ws_client_fill(h, &c, &out, 3) == 2);
    arr = frames(&out);
    assert_string_equal(type_at(arr, 0), "notice");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(arr, 0), "data"), "dropped")),
                     20);
    assert_string_equal(type_at(arr, 1), "initial");
    json_decref(arr);
    assert_false(kg__ws_client_pending(h, &c));
    /* Oversized client message: protocol error. */
    char *huge = malloc(KG__WS_RX_MAX + 1);
    memset(huge, 'a', KG__WS_RX_MAX + 1);
    assert_int_equal(kg__ws_client_rx(h, &c, huge, KG__WS_RX_MAX / 2, false), 0);
    assert_int_equal(kg__ws_client_rx(h, &c, huge, KG__WS_RX_MAX, true), KG_EPROTO);
    free(huge);
    kg__ws_client_end(h, &c);
    kg_buf_free(&out);
    free_hub(h);
}

static void test_frame_header(void **state)
{
    (void)state;
    uint8_t h[10];
    assert_int_equal(kg__ws_frame_header(h, 5), 2);
    assert_int_equal(h[1], 5);
    assert_int_equal(kg__ws_frame_header(h, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[3], 126);
    assert_int_equal(kg__ws_frame_header(h, 70000), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[9], 70000 & 0xff);
}


/* ---- the WebSocket receive side (wsproto.c) ---------------------------------------- */

/* A client frame: FIN/opcode byte, masked with a fixed key. */
static size_t client_frame(uint8_t *out, uint8_t b0, const char *p, size_t n, bool masked)
{
    size_t h = 0;
    out[h++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        out[h++] = (uint8_t)(m | n);
    } else if (n <= 0xffff) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    static const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    if (masked) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[h + i] = (uint8_t)(p[i] ^ (masked ? key[i & 3] : 0));
    return h + n;
}

/* Feed `n` bytes `step` at a time; collect the events' types, the data
 * (concatenated) and the last code. */
static void feed(kg__wsrx *rx, uint8_t *p, size_t n, size_t step, char *types, char *data,
                 uint16_t *code)
{
    size_t off = 0;
    while (off < n) {
        size_t len = n - off < step ? n - off : step;
        size_t used = 0;
        while (used < len) {
            kg__wsev ev;
            size_t u = kg__wsrx_parse(rx, p + off + used, len - used, &ev);
            used += u;
            static const char t[] = "-DIOCE";
            if (ev.type != KG__WSEV_NONE)
                strncat(types, &t[ev.type], 1);
            if (ev.type == KG__WSEV_DATA) {
                strncat(data, (const char *)ev.data, ev.len);
                if (ev.final)
                    strcat(types, "!");
            }
            if (ev.type == KG__WSEV_CLOSE || ev.type == KG__WSEV_ERROR) {
                *code = ev.code;
                return;
            }
            if (u == 0)
                break;
        }
        off += len;
    }
}

static void test_ws_frame_parser(void **state)
{
    (void)state;
    static uint8_t buf[72000];
    static char types[4096], data[72000];
    uint16_t code;
    /* A fragmented text message with a ping in between, then a close;
     * byte by byte and all at once. */
    for (size_t step = 1; step <= 4096; step *= 4096) {
        size_t n = 0;
        n += client_frame(buf + n, 0x01, "hel", 3, true);
        n += client_frame(buf + n, 0x89, "p", 1, true);
        n += client_frame(buf + n, 0x00, "lo ", 3, true);
        n += client_frame(buf + n, 0x80, "world", 5, true);
        n += client_frame(buf + n, 0x88, "\x03\xe8" "bye", 5, true);
        kg__wsrx rx;
        memset(&rx, 0, sizeof rx);
        types[0] = data[0] = '\0';
        code = 0;
        feed(&rx, buf, n, step, types, data, &code);
        /* Byte by byte, data chunks come one byte at a time. */
        assert_string_equal(data, "hello world");
        assert_non_null(strchr(types, 'I'));
        assert_non_null(strstr(types, "!C"));
        assert_int_equal(code, 1000);
    }
    /* 16- and 64-bit lengths. */
    static char big[70000];
    memset(big, 'a', sizeof big);
    size_t n = client_frame(buf, 0x81, big, 300, true);
    n += client_frame(buf + n, 0x81, big, sizeof big, true);
    kg__wsrx rx;
    memset(&rx, 0, sizeof rx);
    types[0] = data[0] = '\0';
    feed(&rx, buf, n, 1000, types, data, &code);
    assert_int_equal(strlen(data), 300 + sizeof big);
    /* What a server must refuse. */
    static const struct {
        uint8_t b0;
        bool masked;
        size_t len;
        uint16_t code;
    } bad[] = {
        {0x81, false, 4, 1002},   /* unmasked (RFC 6455 5.1) */
        {0xc1, true, 4, 1002},    /* RSV1 without an extension */
        {0x82, true, 4, 1003},    /* binary */
        {0x83, true, 4, 1002},    /* reserved opcode */
        {0x09, true, 4, 1002},    /* fragmented ping */
        {0x89, true, 126, 1002},  /* long ping */
        {0x80, true, 4, 1002},    /* continuation with no message */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = client_frame(buf, bad[i].b0, big, bad[i].len, bad[i].masked);
        memset(&rx, 0, sizeof rx);
        types[0] = data[0] = '\0';
        code = 0;
        feed(&rx, buf, n, 7, types, data, &code);
        if (code != bad[i].code)
            fail_msg("bad frame #%zu: code %u, want %u (events %s)", i, code, bad[i].code, types);
    }
    /* A new message inside a fragmented one. */
    n = client_frame(buf, 0x01, "a", 1, true);
    n += client_frame(buf + n, 0x81, "b", 1, true);
    memset(&rx, 0, sizeof rx);
    types[0] = data[0] = '\0';
    feed(&rx, buf, n, 64, types, data, &code);
    assert_int_equal(code, 1002);
    /* A close reason that is not UTF-8. */
    n = client_frame(buf, 0x88, "\x03\xe8\xff", 3, true);
    memset(&rx, 0, sizeof rx);
    types[0] = data[0] = '\0';
    feed(&rx, buf, n, 64, types, data, &code);
    assert_int_equal(code, 1007);
    /* UTF-8. */
    assert_true(kg__utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(kg__utf8_valid("\xc0\xaf", 2));           /* overlong */
    assert_false(kg__utf8_valid("\xed\xa0\x80", 3));       /* surrogate */
    assert_false(kg__utf8_valid("\xf4\x90\x80\x80", 4));   /* > U+10FFFF */
    assert_false(kg__utf8_valid("\xe2\x82", 2));           /* truncated */
    assert_false(kg__utf8_valid("\xff", 1));
    /* Server frames. */
    uint8_t f[KG__WS_CONTROL_MAX];
    assert_int_equal(kg__ws_close_frame(f, 1002, "x"), 5);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[2] << 8 | f[3], 1002);
}

/* ---- bodies and the reply budget ---------------------------------------------------- */

static void test_body_and_reply_budget(void **state)
{
    (void)state;
    kg__body b;
    kg__body_init(&b);
    kg__body_text(&b, "[", 1);
    kg_text *m1 = kg_text_new("{\"a\":1}", 7), *m2 = kg_text_new("{\"b\":2}", 7);
    kg__body_add(&b, m1, false);
    kg__body_add(&b, m2, true);
    kg__body_text(&b, "]", 1);
    assert_int_equal(b.len, 17);
    kg_buf out;
    kg_buf_init(&out);
    /* Three bytes at a time, across parts and the comma. */
    while (kg__body_left(&b))
        assert_true(kg__body_copy(&b, &out, 3) <= 3);
    assert_string_equal(out.data, "[{\"a\":1},{\"b\":2}]");
    /* Parts written out are released: only our references remain. */
    assert_int_equal(atomic_load(&m1->refs), 1);
    kg__body_free(&b);
    kg_text_unref(m1);
    kg_text_unref(m2);

    /* A client's replies count in h->pending and leave it when written or
     * dropped; a large reply over the budget is refused with an error. */
    kg__hub *h = new_hub(64);
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof id, "e%d", i);
        ingest_one(h, id, "w", (unsigned)i);
    }
    kg__wsclient c;
    memset(&c, 0, sizeof c);
    assert_int_equal(kg__ws_client_start(h, &c), 0);
    size_t initial = h->pending;
    assert_true(initial > 0);
    static const char req[] = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"w\"}";
    kg__ws_client_message(h, &c, req, sizeof req - 1);
    assert_true(h->pending > initial + 16 * 1024);   /* a large reply */
    h->pending_max = 1;                              /* budget spent */
    kg__ws_client_message(h, &c, req, sizeof req - 1);
    kg__ws_client_message(h, &c, "{\"type\":\"ping\"}", 15);   /* small: still served */
    kg_buf_reset(&out);
    kg_buf chunk;
    kg_buf_init(&chunk);
    while (kg__ws_client_pending(h, &c)) {
        /* As the server does: a buffer at most ~64 KiB per fill. */
        kg_buf_reset(&chunk);
        kg__ws_client_fill(h, &c, &chunk, 1);
        assert_true(chunk.len <= KG__WS_WRITE_SOFT + 1024);
        kg_buf_append(&out, chunk.data, chunk.len);
    }
    kg_buf_free(&chunk);
    assert_int_equal(h->pending, 0);
    json_t *arr = frames(&out);
    assert_string_equal(type_at(arr, 0), "initial");
    assert_string_equal(type_at(arr, 1), "workflow_events");
    assert_int_equal(json_array_size(json_object_get(json_array_get(arr, 1), "events")), 300);
    assert_string_equal(type_at(arr, 2), "pong");
    assert_string_equal(type_at(arr, 3), "error");   /* the refused one, answered */
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(arr, 3), "message")),
                           "busy"));
    json_decref(arr);
    /* Replies dropped with the client leave the budget too. */
    h->pending_max = SIZE_MAX;
    kg__ws_client_message(h, &c, req, sizeof req - 1);
    assert_true(h->pending > 0);
    kg__ws_client_end(h, &c);
    assert_int_equal(h->pending, 0);
    kg_buf_free(&out);
    free_hub(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_and_status),
        cmocka_unit_test(test_out_of_order_and_duplicates),
        cmocka_unit_test(test_stale_runs),
        cmocka_unit_test(test_running_run_outlives_short_runs),
        cmocka_unit_test(test_late_event_of_evicted_run),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_metrics_and_prometheus),
        cmocka_unit_test(test_nested_graph_keyed_by_path),
        cmocka_unit_test(test_nested_run_alone_nests),
        cmocka_unit_test(test_deep_topology_is_bounded),
        cmocka_unit_test(test_ingest_bodies),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_auth_rules),
        cmocka_unit_test(test_ws_client_logic),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_ws_frame_parser),
        cmocka_unit_test(test_body_and_reply_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
