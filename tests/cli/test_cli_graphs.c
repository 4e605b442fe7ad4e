/* test_cli_graphs.c - `kgmon demo --graph nested|wide` into a file backend,
 * read back as a consumer would: every node of the workflow_started
 * topology has its own path, every event's node_path names a node of that
 * topology (and ends in its node_id), the id used in two sub-graphs gives
 * two paths, each batch-graph item is a nested run with data.item, and the
 * wide graph is as wide as promised.  And the embedded dashboard's view of
 * the nested graph: network_graph nested, metrics.nodes keyed by path. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#include "cli_assert.h"
#include "kgmon_run.h"
#include "wsclient.h"

#define RUN_TIMEOUT 120.0

/* Every path of `graph`'s nodes (recursively) into `paths` (path -> node
 * id); fails on a path seen twice.  Ids here need no escaping. */
static void collect_paths(json_t *graph, const char *prefix, json_t *paths)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(graph, "nodes"), i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", prefix, id);
        if (json_object_get(paths, path))
            fail_msg("two nodes have the path %s", path);
        json_object_set_new(paths, path, json_string(id));
        if (json_object_get(v, "nodes"))
            collect_paths(v, path, paths);
    }
}

typedef struct run_file {
    json_t *events;   /* every line, in file order */
    json_t *topology; /* the first top-level workflow_started's graph */
    json_t *paths;    /* path -> id, from the topology (the graph itself included) */
} run_file;

static void run_graph(const char *graph, run_file *rf)
{
    const char *path = kgm_path(graph);
    char *out, *err;
    const char *argv[] = {"demo", "--graph", graph, "--backend", "file", "--file", path,
                          "--iterations", "3", "--batch-size", "30", "--node-delay", "0", NULL};
    int rc = kgm_run(RUN_TIMEOUT, &out, &err, argv);
    assert_exit(rc, 0, err);
    assert_contains(out, "dropped 0");
    size_t len;
    char *text = kgm_read_file(path, &len);
    assert_non_null(text);
    rf->events = json_array();
    rf->topology = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *ev = json_loads(line, 0, &je);
        if (!ev)
            fail_msg("not JSON: %s (%s)", line, je.text);
        json_array_append_new(rf->events, ev);
        json_t *data = json_object_get(ev, "data");
        if (!rf->topology &&
            strcmp(json_string_value(json_object_get(ev, "event_name")), "workflow_started") == 0 &&
            !json_object_get(data, "parent_workflow_id"))
            rf->topology = json_incref(json_object_get(data, "graph"));
    }
    free(text);
    free(out);
    free(err);
    assert_non_null(rf->topology);
    rf->paths = json_object();
    const char *top = json_string_value(json_object_get(rf->topology, "id"));
    json_object_set_new(rf->paths, top, json_string(top));
    collect_paths(rf->topology, top, rf->paths);
}

static void run_file_free(run_file *rf)
{
    json_decref(rf->events);
    json_decref(rf->topology);
    json_decref(rf->paths);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Every node and workflow event names a node of the topology by a path
 * ending in its own id; dispatcher metrics name none.  Returns the paths
 * seen per node id (id -> {path: true}). */
static json_t *check_event_paths(const run_file *rf)
{
    json_t *by_id = json_object();
    size_t i;
    json_t *ev;
    json_array_foreach(rf->events, i, ev) {
        const char *id = str(ev, "node_id"), *path = str(ev, "node_path");
        if (strcmp(id, "dispatcher") == 0) {
            assert_null(json_object_get(ev, "node_path"));
            continue;
        }
        if (!path)
            fail_msg("%s of %s has no node_path", str(ev, "event_name"), id);
        json_t *known = json_object_get(rf->paths, path);
        if (!known || strcmp(json_string_value(known), id) != 0)
            fail_msg("%s of %s: node_path %s is not that node in the topology",
                     str(ev, "event_name"), id, path);
        json_t *set = json_object_get(by_id, id);
        if (!set)
            json_object_set_new(by_id, id, set = json_object());
        json_object_set_new(set, path, json_true());
    }
    return by_id;
}

static void test_demo_graph_nested(void **state)
{
    (void)state;
    run_file rf;
    run_graph("nested", &rf);
    /* orders + intake, ingest{fetch, validator}, enrich{lookup, scoring{features,
     * model, validator}}, per_region{aggregate, store}, report */
    assert_int_equal(json_object_size(rf.paths), 15);
    json_t *by_id = check_event_paths(&rf);
    json_t *validators = json_object_get(by_id, "validator");
    assert_int_equal(json_object_size(validators), 2);
    assert_non_null(json_object_get(validators, "orders/ingest/validator"));
    assert_non_null(json_object_get(validators, "orders/enrich/scoring/validator"));
    assert_non_null(json_object_get(json_object_get(by_id, "features"), "orders/enrich/scoring/features"));

    /* Each batch item is a nested run of per_region: its workflow_started
     * has data.item and the enclosing run as parent; the nodes inside it
     * share its workflow_id. */
    json_t *item_runs = json_object();   /* workflow_id -> item */
    int items_seen[3] = {0, 0, 0};
    size_t i;
    json_t *ev;
    json_array_foreach(rf.events, i, ev) {
        json_t *data = json_object_get(ev, "data");
        if (strcmp(str(ev, "event_name"), "workflow_started") != 0 ||
            strcmp(str(ev, "node_path"), "orders/per_region") != 0)
            continue;
        json_t *item = json_object_get(data, "item");
        assert_true(json_is_integer(item));
        assert_in_range(json_integer_value(item), 0, 2);
        items_seen[json_integer_value(item)]++;
        assert_non_null(str(data, "parent_workflow_id"));
        assert_true(json_is_true(json_object_get(json_object_get(data, "graph"), "batch")));
        json_object_set(item_runs, str(ev, "workflow_id"), item);
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(items_seen[k], 3);   /* 3 iterations x 3 regions */
    size_t stores = 0;
    json_array_foreach(rf.events, i, ev) {
        if (strcmp(str(ev, "node_path"), "orders/per_region/store") == 0 &&
            strcmp(str(ev, "event_name"), "node_completed") == 0) {
            assert_non_null(json_object_get(item_runs, str(ev, "workflow_id")));
            stores++;
        }
    }
    assert_int_equal(stores, 9);
    json_decref(item_runs);
    json_decref(by_id);
    run_file_free(&rf);
}

static void test_demo_graph_wide(void **state)
{
    (void)state;
    run_file rf;
    run_graph("wide", &rf);
    assert_true(json_object_size(rf.paths) >= 121);   /* >= 120 nodes + the graph */
    json_t *out_deg = json_object(), *in_deg = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(rf.topology, "edges"), i, e) {
        const char *from = str(e, "from"), *to = str(e, "to");
        json_object_set_new(out_deg, from,
                            json_integer(json_integer_value(json_object_get(out_deg, from)) + 1));
        json_object_set_new(in_deg, to, json_integer(json_integer_value(json_object_get(in_deg, to)) + 1));
    }
    /* Fan-out from dispatch and route, fan-in to collect and finalize. */
    assert_int_equal(json_integer_value(json_object_get(out_deg, "dispatch")), 12);
    assert_int_equal(json_integer_value(json_object_get(out_deg, "route")), 12);
    assert_int_equal(json_integer_value(json_object_get(in_deg, "collect")), 12);
    assert_int_equal(json_integer_value(json_object_get(in_deg, "finalize")), 12);
    json_t *by_id = check_event_paths(&rf);
    const char *id;
    json_t *set;
    json_object_foreach(by_id, id, set) assert_int_equal(json_object_size(set), 1);
    json_decref(by_id);
    json_decref(out_deg);
    json_decref(in_deg);
    run_file_free(&rf);
}

static json_t *entry(json_t *nodes, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v) if (strcmp(str(v, "id"), id) == 0) return v;
    fail_msg("no node %s in network_graph", id);
    return NULL;
}

static void test_demo_graph_nested_dashboard(void **state)
{
    (void)state;
    int port = kg_test_free_port();
    char dash[32];
    snprintf(dash, sizeof dash, "--dashboard=%d", port);
    const char *argv[] = {"demo", "--graph", "nested", dash, "--iterations", "2",
                          "--node-delay", "0", NULL};
    kgm_proc p;
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "Serving the dashboard", 60));
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    char *msg = kg_tws_wait_for(&c, "\"type\":\"initial\"", 30);
    assert_non_null(msg);
    json_error_t je;
    json_t *initial = json_loads(msg, 0, &je);
    assert_non_null(initial);
    json_t *data = json_object_get(initial, "data");
    json_t *g = json_object_get(data, "network_graph");
    json_t *top = json_object_get(g, "nodes");
    assert_int_equal(json_array_size(top), 5);   /* intake ingest enrich per_region report */
    assert_string_equal(str(g, "start"), "intake");
    json_t *ingest = entry(top, "ingest");
    assert_string_equal(str(ingest, "path"), "orders/ingest");
    json_t *v1 = entry(json_object_get(ingest, "nodes"), "validator");
    assert_string_equal(str(v1, "path"), "orders/ingest/validator");
    assert_string_equal(str(v1, "status"), "completed");
    json_t *scoring = entry(json_object_get(entry(top, "enrich"), "nodes"), "scoring");
    json_t *v2 = entry(json_object_get(scoring, "nodes"), "validator");
    assert_string_equal(str(v2, "path"), "orders/enrich/scoring/validator");
    assert_true(json_is_true(json_object_get(entry(top, "per_region"), "batch")));
    json_t *nodes = json_object_get(json_object_get(data, "metrics"), "nodes");
    assert_string_equal(str(json_object_get(nodes, "orders/ingest/validator"), "id"), "validator");
    assert_string_equal(str(json_object_get(nodes, "orders/enrich/scoring/validator"), "id"),
                        "validator");
    assert_null(json_object_get(nodes, "validator"));
    /* Two iterations: each region's store ran twice, one node. */
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(nodes, "orders/per_region/store"), "completed")), 6);
    json_decref(initial);
    free(msg);
    kg_tws_close(&c);
    kgm_signal(&p, SIGINT);
    assert_true(kgm_wait(&p, 30));
    char *err = kgm_stderr(&p);
    assert_exit(p.status, 0, err);
    free(err);
    kgm_cleanup(&p);
}

static void test_demo_graph_bad_values(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--graph", "tree", NULL);
    assert_exit(rc, 2, err);
    assert_contains(err, "--graph must be pipeline, nested or wide (got 'tree')");
    free(out);
    free(err);
    rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--graph", "wide", "--parallel", NULL);
    assert_exit(rc, 2, err);
    assert_contains(err, "--parallel applies to --graph pipeline only");
    free(out);
    free(err);
    rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--help", NULL);
    assert_exit(rc, 0, err);
    assert_contains(out, "--graph G");
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_graph_nested),
        cmocka_unit_test(test_demo_graph_wide),
        cmocka_unit_test(test_demo_graph_nested_dashboard),
        cmocka_unit_test(test_demo_graph_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
