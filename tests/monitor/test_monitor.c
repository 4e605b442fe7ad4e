/* test_monitor.c - what the monitor emits: names, order, schema, snapshots,
 * verbosity, per-run sampling, and the topology in workflow_started. */
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"
#include "mock_monitor.h"

/* ---- a small workflow: load -> work (fails its first attempt) -> save ---- */

static int load_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:i, s:s}", "n", 3, "blob", "0123456789abcdefghijklmnopqrstuvwxyz");
    return 0;
}

static int work_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    if (kg_ctx_attempt(ctx) == 0)
        return kg_ctx_fail(ctx, "TransientError", "first attempt <fails>");
    *out = json_integer(42);
    return 0;
}

static int save_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **action)
{
    *action = "saved";
    return 0;
}

static int boom_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    return kg_ctx_fail(ctx, "Boom", "always fails");
}

static const kg_node_ops load_ops = {.type_name = "LoadNode", .prep = load_prep};
static const kg_node_ops work_ops = {.type_name = "WorkNode", .exec = work_exec};
static const kg_node_ops save_ops = {.type_name = "SaveNode", .post = save_post};
static const kg_node_ops boom_ops = {.type_name = "BoomNode", .exec = boom_exec};

static kg_node_t *workflow_new(bool failing)
{
    kg_node_t *g = kg_graph_new("pipeline", NULL, NULL);
    kg_node_t *load = kg_graph_add(g, kg_node_new("load", &load_ops, NULL));
    kg_node_t *work = kg_graph_add(g, kg_node_new("work", &work_ops, NULL));
    kg_node_t *save = kg_graph_add(g, kg_node_new("save", failing ? &boom_ops : &save_ops, NULL));
    kg_node_set_retries(work, 2, 0);
    kg_node_connect(load, NULL, work);
    kg_node_connect(work, NULL, save);
    return g;
}

static const char *ev_name(json_t *ev)
{
    return json_string_value(json_object_get(ev, "event_name"));
}

static json_t *ev_data(json_t *ev)
{
    return json_object_get(ev, "data");
}

/* Events sorted by seq (workers may deliver batches out of order). */
static int by_seq(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "seq"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "seq"));
    return (x > y) - (x < y);
}

static json_t *sorted(json_t *events)
{
    size_t n = json_array_size(events);
    json_t **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(events, i));
    qsort(v, n, sizeof *v, by_seq);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, v[i]);
    free(v);
    json_decref(events);
    return out;
}

/* "name name name" of one node's events, in seq order. */
static void names_of(json_t *events, const char *node, char *out, size_t cap)
{
    out[0] = '\0';
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "node_id")), node) != 0)
            continue;
        if (out[0])
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, ev_name(ev), cap - strlen(out) - 1);
    }
}

/* The first event named `name`; the test fails when there is none, so an
 * assertion about the event's contents cannot pass for want of the event. */
static json_t *find_event(json_t *events, const char *name)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) if (strcmp(ev_name(ev), name) == 0) return ev;
    fail_msg("no %s event among %zu", name, json_array_size(events));
    return NULL;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_event_order_per_execution(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    kg_result_t res;
    assert_int_equal(kg_run(g, NULL, &res), 0);
    json_t *events = sorted(fixture_events(&f));
    char names[1024];
    names_of(events, "work", names, sizeof names);
    assert_string_equal(names, "node_started node_preparing data_input node_executing "
                               "retry_attempted data_output execution_time node_completed");
    names_of(events, "pipeline", names, sizeof names);
    assert_string_equal(names, "workflow_started workflow_completed");
    assert_string_equal(ev_name(json_array_get(events, 0)), "workflow_started");
    /* One correlation id per node execution, one workflow id per run. */
    const char *wid = json_string_value(json_object_get(json_array_get(events, 0), "workflow_id"));
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
        assert_string_equal(json_string_value(json_object_get(ev, "workflow_id")), wid);
    json_t *retry = find_event(events, "retry_attempted");
    assert_string_equal(json_string_value(json_object_get(ev_data(retry), "error_type")), "TransientError");
    assert_string_equal(json_string_value(json_object_get(ev_data(retry), "error")), "first attempt <fails>");
    assert_int_equal(json_integer_value(json_object_get(ev_data(retry), "attempt")), 1);
    assert_int_equal(json_integer_value(json_object_get(ev_data(retry), "max_retries")), 2);
    json_t *done = find_event(events, "workflow_completed");
    assert_string_equal(json_string_value(json_object_get(ev_data(done), "status")), "success");
    assert_string_equal(json_string_value(json_object_get(ev_data(done), "final_action")), "saved");
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_workflow_started_carries_real_topology(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    kg_run(g, NULL, NULL);
    json_t *events = fixture_events(&f);
    json_t *graph = json_object_get(ev_data(find_event(events, "workflow_started")), "graph");
    char *s = json_dumps(graph, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"edges\":[{\"action\":\"default\",\"from\":\"load\",\"to\":\"work\"},"
                           "{\"action\":\"default\",\"from\":\"work\",\"to\":\"save\"}],"
                           "\"id\":\"pipeline\",\"nodes\":[{\"id\":\"load\",\"type\":\"LoadNode\"},"
                           "{\"id\":\"work\",\"type\":\"WorkNode\"},{\"id\":\"save\",\"type\":\"SaveNode\"}],"
                           "\"start\":\"load\",\"type\":\"Graph\"}");
    free(s);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_failure_events_and_phase(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(true);
    kg_monitor_attach(f.mon, g);
    assert_int_equal(kg_run(g, NULL, NULL), KG_ENODE);
    json_t *events = sorted(fixture_events(&f));
    char names[1024];
    names_of(events, "save", names, sizeof names);
    assert_string_equal(names, "node_started node_preparing data_input node_executing node_failed");
    json_t *failed = find_event(events, "node_failed");
    assert_string_equal(json_string_value(json_object_get(ev_data(failed), "phase")), "exec");
    assert_string_equal(json_string_value(json_object_get(ev_data(failed), "error_type")), "Boom");
    json_t *done = find_event(events, "workflow_completed");
    assert_string_equal(json_string_value(json_object_get(ev_data(done), "status")), "failed");
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static bool is_uuid(const char *s)
{
    regex_t re;
    regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-[78][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
            REG_EXTENDED | REG_NOSUB);
    bool ok = s && regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static bool is_timestamp(const char *s)
{
    regex_t re;
    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
            REG_EXTENDED | REG_NOSUB);
    bool ok = s && regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void check_schema(json_t *ev, json_int_t *last_seq)
{
    static const char *const types[] = {"lifecycle", "data", "error", "metric"};
    assert_true(is_uuid(json_string_value(json_object_get(ev, "event_id"))));
    assert_true(is_timestamp(json_string_value(json_object_get(ev, "timestamp"))));
    assert_true(json_is_string(json_object_get(ev, "node_id")));
    assert_true(json_is_string(json_object_get(ev, "node_type")));
    const char *type = json_string_value(json_object_get(ev, "event_type"));
    int name = kg_event_name_parse(ev_name(ev));
    assert_true(name >= 0);
    assert_string_equal(type, types[kg_event_name_type((kg_event_name)name)]);
    assert_true(json_is_object(ev_data(ev)));
    assert_true(is_uuid(json_string_value(json_object_get(ev, "correlation_id"))));
    assert_true(is_uuid(json_string_value(json_object_get(ev, "workflow_id"))));
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    assert_true(seq > *last_seq);
    *last_seq = seq;
    /* Every node and workflow event names its node by path: the graph's
     * own id for the run, graph/node for its nodes. */
    const char *path = json_string_value(json_object_get(ev, "node_path"));
    const char *node = json_string_value(json_object_get(ev, "node_id"));
    assert_non_null(path);
    if (strcmp(node, "pipeline") == 0)
        assert_string_equal(path, "pipeline");
    else
        assert_true(strncmp(path, "pipeline/", 9) == 0 && strcmp(path + 9, node) == 0);
    json_t *src = json_object_get(ev, "source");
    assert_int_equal(json_integer_value(json_object_get(src, "pid")), getpid());
    assert_true(json_is_string(json_object_get(src, "host")));
}

static void test_every_jsonl_line_is_a_valid_event(void **state)
{
    char path[] = "/tmp/kg_schema_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_file_backend_new(path, NULL);
    cfg.async_workers = 1;   /* one writer: lines are in seq order */
    cfg.metrics_interval = 0;
    cfg.enable_data_snapshots = true;
    kg_monitor_t *mon;
    assert_int_equal(kg_monitor_new(&cfg, &mon, NULL), 0);
    kg_monitor_attach(mon, NULL);   /* process-wide */
    for (int i = 0; i < 20; i++) {
        kg_node_t *g = workflow_new(i % 5 == 0);
        kg_run(g, NULL, NULL);
        kg_node_free(g);
    }
    assert_int_equal(kg_monitor_free(mon), 0);
    FILE *fp = fopen(path, "r");
    char line[65536];
    int lines = 0;
    json_int_t last_seq = 0;
    while (fgets(line, sizeof line, fp)) {
        json_error_t jerr;
        json_t *ev = json_loads(line, 0, &jerr);
        if (!ev)
            fail_msg("line %d is not JSON: %s", lines + 1, jerr.text);
        check_schema(ev, &last_seq);
        json_decref(ev);
        lines++;
    }
    fclose(fp);
    unlink(path);
    /* 20 runs x (2 workflow + 3 nodes x 7 + 1 retry) = 480, minus what the
     * 4 failing runs change: save sends node_failed instead of data_output,
     * execution_time and node_completed. */
    assert_int_equal(lines, 20 * 24 - 4 * 2);
}

static void test_snapshots_and_truncation(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.enable_data_snapshots = true;
    cfg.max_snapshot_size = 20;
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    kg_run(g, NULL, NULL);
    json_t *events = sorted(fixture_events(&f));
    /* load's prep result is longer than 20 bytes: truncated with a preview. */
    json_t *in = find_event(events, "data_input");
    json_t *snap = json_object_get(ev_data(in), "snapshot");
    assert_true(json_is_true(json_object_get(snap, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(snap, "original_size")), 53);
    assert_int_equal(strlen(json_string_value(json_object_get(snap, "preview"))), 20);
    /* work's output (42) fits. */
    size_t i, checked = 0;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(ev_name(ev), "data_output") == 0 &&
            strcmp(json_string_value(json_object_get(ev, "node_id")), "work") == 0) {
            json_t *s = json_object_get(ev_data(ev), "snapshot");
            assert_true(json_is_false(json_object_get(s, "truncated")));
            assert_int_equal(json_integer_value(json_object_get(s, "data")), 42);
            checked++;
        }
    }
    assert_int_equal(checked, 1);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_snapshots_off_by_default(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    kg_run(g, NULL, NULL);
    json_t *events = fixture_events(&f);
    assert_null(json_object_get(ev_data(find_event(events, "data_input")), "snapshot"));
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_verbosity_filters(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    kg_error_t err;
    assert_int_equal(kg_capture_parse("error,workflow_completed", &cfg.capture, &err), 0);
    assert_int_equal(kg_capture_parse("lifecycle,bogus", &cfg.capture, &err), KG_EINVAL);
    assert_non_null(strstr(err.message, "'bogus'"));
    kg_capture_parse("error,workflow_completed", &cfg.capture, &err);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(true);
    kg_monitor_attach(f.mon, g);
    kg_run(g, NULL, NULL);
    json_t *events = sorted(fixture_events(&f));
    char names[1024] = "";
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (names[0])
            strcat(names, " ");
        strcat(names, ev_name(ev));
    }
    assert_string_equal(names, "retry_attempted node_failed workflow_completed");
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_sampling_is_per_run_and_keeps_errors(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.sample_rate = 0.5;
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    const int runs = 400;
    for (int i = 0; i < runs; i++)
        kg_run(g, NULL, NULL);
    json_t *events = fixture_events(&f);
    /* Count events per workflow: a sampled run has all 24, an unsampled one
     * only its retry_attempted (an error event, always kept). */
    json_t *per_run = json_object();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *wid = json_string_value(json_object_get(ev, "workflow_id"));
        json_t *c = json_object_get(per_run, wid);
        json_object_set_new(per_run, wid, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    int complete = 0, errors_only = 0, other = 0;
    const char *k;
    json_t *v;
    json_object_foreach(per_run, k, v) {
        json_int_t n = json_integer_value(v);
        complete += n == 24;
        errors_only += n == 1;
        other += n != 24 && n != 1;
    }
    assert_int_equal(other, 0);
    assert_int_equal(complete + errors_only, runs);
    assert_in_range(complete, runs / 2 - 60, runs / 2 + 60);
    json_decref(per_run);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

static void test_nested_and_batch_nodes_are_monitored(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    kg_node_t *inner = kg_graph_add(outer, workflow_new(false));
    (void)inner;
    kg_monitor_attach(f.mon, outer);
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    json_t *events = sorted(fixture_events(&f));
    char names[1024];
    names_of(events, "pipeline", names, sizeof names);
    assert_string_equal(names, "node_started node_preparing data_input node_executing "
                               "workflow_started workflow_completed data_output execution_time "
                               "node_completed");
    /* The nested run names its parent. */
    json_t *starts[2] = {NULL, NULL};
    size_t i, n = 0;
    json_t *ev;
    json_array_foreach(events, i, ev) if (strcmp(ev_name(ev), "workflow_started") == 0 && n < 2)
        starts[n++] = ev;
    assert_int_equal(n, 2);
    assert_string_equal(json_string_value(json_object_get(ev_data(starts[1]), "parent_workflow_id")),
                        json_string_value(json_object_get(starts[0], "workflow_id")));
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(outer);
}

/* ---- nested graphs: node_path ------------------------------------------------ */

static int two_items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("[{s:i},{s:i}]", "k", 1, "k", 2);
    return 0;
}

/* outer: pipeline(load -> work -> save) -> second(work) -> per_item[batch](leaf) */
static kg_node_t *nested_new(void)
{
    static const kg_node_ops per_item_ops = {.type_name = "PerItem", .prep = two_items_prep};
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    kg_node_t *pipeline = kg_graph_add(outer, workflow_new(false));
    kg_node_t *second = kg_graph_add(outer, kg_graph_new("second", NULL, NULL));
    kg_graph_add(second, kg_node_new("work", &save_ops, NULL));
    kg_node_t *per_item = kg_graph_add(outer, kg_batch_graph_new("per_item", &per_item_ops, NULL));
    kg_graph_add(per_item, kg_node_new("leaf", &load_ops, NULL));
    kg_node_connect(pipeline, "saved", second);
    kg_node_connect(second, "saved", per_item);
    return outer;
}

/* Does `path` name a node of `graph` (a workflow_started topology) whose id
 * is `id`?  Components are split on "/" (ids here need no escaping). */
static bool path_resolves(json_t *graph, const char *path, const char *id)
{
    const char *slash = strchr(path, '/');
    if (!slash)
        return strcmp(json_string_value(json_object_get(graph, "id")), path) == 0 &&
               strcmp(path, id) == 0;
    const char *rest = slash + 1;
    for (;;) {
        slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        json_t *found = NULL, *v;
        size_t i;
        json_array_foreach(json_object_get(graph, "nodes"), i, v) {
            const char *vid = json_string_value(json_object_get(v, "id"));
            if (strlen(vid) == n && strncmp(vid, rest, n) == 0)
                found = v;
        }
        if (!found)
            return false;
        if (!slash)
            return strcmp(json_string_value(json_object_get(found, "id")), id) == 0;
        graph = found;
        rest = slash + 1;
    }
}

static void test_nested_events_name_nodes_by_path(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *outer = nested_new();
    kg_monitor_attach(f.mon, outer);
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    json_t *events = sorted(fixture_events(&f));
    json_t *top = json_array_get(events, 0);
    assert_string_equal(ev_name(top), "workflow_started");
    assert_string_equal(json_string_value(json_object_get(top, "node_path")), "outer");
    json_t *topo = json_object_get(ev_data(top), "graph");
    json_t *work_paths = json_object(), *items = json_object();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *id = json_string_value(json_object_get(ev, "node_id"));
        const char *path = json_string_value(json_object_get(ev, "node_path"));
        assert_non_null(path);
        if (!path_resolves(topo, path, id))
            fail_msg("%s of %s: path %s is not in the topology", ev_name(ev), id, path);
        if (strcmp(id, "work") == 0)
            json_object_set_new(work_paths, path, json_true());
        json_t *item = json_object_get(ev_data(ev), "item");
        if (strcmp(ev_name(ev), "workflow_started") == 0 && strcmp(path, "outer/per_item") == 0) {
            assert_true(json_is_integer(item));
            assert_string_equal(json_string_value(json_object_get(ev_data(ev), "parent_workflow_id")),
                                json_string_value(json_object_get(top, "workflow_id")));
            json_object_set_new(items, json_string_value(json_object_get(ev, "workflow_id")),
                                json_incref(item));
        }
        if (strcmp(ev_name(ev), "workflow_started") == 0 && strcmp(path, "outer/pipeline") == 0)
            assert_string_equal(id, "pipeline");
    }
    /* The same id in two sub-graphs: two paths. */
    assert_int_equal(json_object_size(work_paths), 2);
    assert_non_null(json_object_get(work_paths, "outer/pipeline/work"));
    assert_non_null(json_object_get(work_paths, "outer/second/work"));
    /* One nested run per batch item, each saying which item it is. */
    assert_int_equal(json_object_size(items), 2);
    json_int_t item_sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(items, k, v) item_sum += json_integer_value(v) + 1;
    assert_int_equal(item_sum, 3);   /* items 0 and 1 */
    json_decref(items);
    json_decref(work_paths);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(outer);
}

/* Events still queued when their graph is freed keep their node_path: the
 * record holds a reference to the path text, not the graph's memory
 * (ASan reports a use after free otherwise). */
static void test_node_path_outlives_the_graph(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.circuit_breaker_threshold = 1000;
    cfg.retry_backoff_max = 0.01;
    fixture f;
    fixture_start(&f, &cfg);
    kg_mock_backend_fail(f.mock, -1);   /* hold every event in the monitor */
    kg_node_t *outer = nested_new();
    kg_monitor_attach(f.mon, outer);
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    kg_monitor_detach(f.mon, outer);
    kg_node_free(outer);
    kg_mock_backend_fail(f.mock, 0);
    json_t *events = fixture_events(&f);
    assert_true(json_array_size(events) > 50);
    size_t i, deep = 0;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *path = json_string_value(json_object_get(ev, "node_path"));
        assert_non_null(path);
        deep += strcmp(path, "outer/pipeline/work") == 0;
    }
    assert_true(deep >= 8);
    json_decref(events);
    kg_monitor_free(f.mon);
}

/* With several dispatcher workers, each run's events still reach the
 * backend in the order they happened (a run maps to one partition). */
static void test_each_run_arrives_in_order(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 4;
    cfg.batch_size = 7;   /* many small batches racing each other */
    cfg.flush_interval = 0.001;
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    for (int i = 0; i < 200; i++)
        kg_run(g, NULL, NULL);
    json_t *events = fixture_events(&f);   /* arrival order */
    json_t *last_seq = json_object();
    size_t i, out_of_order = 0;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *wid = json_string_value(json_object_get(ev, "workflow_id"));
        json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
        json_t *prev = json_object_get(last_seq, wid);
        if (prev && json_integer_value(prev) >= seq)
            out_of_order++;
        json_object_set_new(last_seq, wid, json_integer(seq));
    }
    assert_int_equal(json_object_size(last_seq), 200);
    assert_int_equal(json_array_size(events), 200 * 24);
    assert_int_equal(out_of_order, 0);
    json_decref(last_seq);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

/* ---- seq ------------------------------------------------------------------------------- */

/* The id a correlation_id (a v8 UUID from the execution id) was made from:
 * its last 12 hex digits are the id's low 48 bits. */
static uint64_t corr_id(json_t *ev)
{
    const char *c = json_string_value(json_object_get(ev, "correlation_id"));
    return strtoull(c + 24, NULL, 16);
}

static json_int_t ev_seq(json_t *ev)
{
    return json_integer_value(json_object_get(ev, "seq"));
}

/* Issue #11 item 12: seq followed the dispatcher partition of each run, so
 * a run started later could get lower seqs than an earlier one.  Events of
 * runs spread over 4 partitions, emitted by one thread: seq must follow the
 * emission order exactly. */
static void test_seq_follows_emission_order_across_partitions(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 4;
    fixture f;
    fixture_start(&f, &cfg);
    const kg_observer *o = kg_monitor_observer(f.mon);
    kg_obs_event ev = {.point = KG_OBS_NODE_START, .node_id = "n", .node_type = "T", .item = -1};
    enum { N = 4000 };
    for (uint64_t i = 1; i <= N; i++) {
        ev.run_id = ev.root_run_id = 1 + i % 13;   /* every partition, mixed */
        ev.exec_id = i;                            /* the emission order */
        o->on_event(o->ud, &ev);
    }
    json_t *events = sorted(fixture_events(&f));
    assert_int_equal(json_array_size(events), N);
    size_t i;
    json_t *e;
    json_int_t last = 0;
    json_array_foreach(events, i, e) {
        assert_int_equal(corr_id(e), i + 1);
        assert_true(ev_seq(e) > last);
        last = ev_seq(e);
    }
    json_decref(events);
    kg_monitor_free(f.mon);
}

/* The same through the engine: runs one after another on one thread each
 * occupy one contiguous stretch of seq, in the order they ran. */
static void test_seq_orders_consecutive_runs(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 4;
    fixture f;
    fixture_start(&f, &cfg);
    kg_node_t *g = workflow_new(false);
    kg_monitor_attach(f.mon, g);
    enum { RUNS = 40 };
    for (int r = 0; r < RUNS; r++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    json_t *events = sorted(fixture_events(&f));
    assert_int_equal(json_array_size(events), RUNS * 24);
    size_t i;
    json_t *e;
    int runs_seen = 0;
    const char *cur = NULL;
    json_array_foreach(events, i, e) {
        const char *wid = json_string_value(json_object_get(e, "workflow_id"));
        if (cur && strcmp(cur, wid) == 0)
            continue;
        /* A new stretch must begin with its run's start. */
        assert_string_equal(ev_name(e), "workflow_started");
        cur = wid;
        runs_seen++;
    }
    assert_int_equal(runs_seen, RUNS);
    json_decref(events);
    kg_monitor_free(f.mon);
    kg_node_free(g);
}

typedef struct seq_thread {
    kg_monitor_t *mon;
    uint64_t base;   /* exec ids base + 1 .. base + n */
    int n;
} seq_thread;

static void *seq_producer(void *arg)
{
    seq_thread *t = arg;
    const kg_observer *o = kg_monitor_observer(t->mon);
    kg_obs_event ev = {.point = KG_OBS_NODE_START, .node_id = "n", .node_type = "T", .item = -1};
    for (int i = 1; i <= t->n; i++) {
        ev.run_id = ev.root_run_id = t->base + (uint64_t)(i % 5);
        ev.exec_id = t->base + (uint64_t)i;
        o->on_event(o->ud, &ev);
    }
    return NULL;
}

/* What holds across threads (queue.h): each thread's events in its own
 * order, no seq shared, and an event emitted after joining the threads (it
 * happened after all of theirs) has the highest seq. */
static void test_seq_across_threads(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 3;
    cfg.buffer_size = 1 << 16;
    fixture f;
    fixture_start(&f, &cfg);
    enum { THREADS = 4, PER = 5000 };
    pthread_t th[THREADS];
    seq_thread args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (seq_thread){f.mon, (uint64_t)(t + 1) << 32, PER};
        pthread_create(&th[t], NULL, seq_producer, &args[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    seq_thread last = {f.mon, (uint64_t)(THREADS + 1) << 32, 1};
    seq_producer(&last);
    json_t *events = sorted(fixture_events(&f));
    assert_int_equal(json_array_size(events), THREADS * PER + 1);
    uint64_t next[THREADS + 2] = {0};
    size_t i;
    json_t *e;
    json_int_t prev = 0;
    json_array_foreach(events, i, e) {
        assert_true(ev_seq(e) > prev);   /* sorted and unique */
        prev = ev_seq(e);
        uint64_t id = corr_id(e), t = id >> 32;
        assert_true(t >= 1 && t <= THREADS + 1);
        assert_int_equal(id & 0xFFFFFFFFu, ++next[t]);   /* its thread's order */
    }
    assert_int_equal(corr_id(json_array_get(events, THREADS * PER)), last.base + 1);
    json_decref(events);
    kg_monitor_free(f.mon);
}

/* ---- records that carry two events, descriptors ------------------------------------ */

static int oops_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    return kg_ctx_fail(ctx, "Oops", "ignored");
}

static bool oops_suppress(kg_ctx_t *ctx, json_t *shared, const kg_error_t *err)
{
    return true;
}

static const kg_node_ops oops_ops = {.type_name = "OopsNode", .exec = oops_exec,
                                     .on_error = oops_suppress};

/* A suppressed failure is error_suppressed then node_completed (one queue
 * record, two seqs), and each filtered alone still works. */
static void test_suppressed_failure_events(void **state)
{
    static const uint32_t masks[] = {KG_CAPTURE_ALL, KG_CAPTURE(KG_EV_ERROR_SUPPRESSED),
                                     KG_CAPTURE(KG_EV_NODE_COMPLETED)};
    static const char *const expected[] = {
        "node_started node_preparing data_input node_executing error_suppressed node_completed",
        "error_suppressed", "node_completed"};
    for (int k = 0; k < 3; k++) {
        kg_monitor_config cfg;
        kg_monitor_config_init(&cfg);
        cfg.capture = masks[k];
        fixture f;
        fixture_start(&f, &cfg);
        kg_node_t *g = kg_graph_new("g", NULL, NULL);
        kg_graph_add(g, kg_node_new("oops", &oops_ops, NULL));
        kg_monitor_attach(f.mon, g);
        assert_int_equal(kg_run(g, NULL, NULL), 0);
        json_t *events = sorted(fixture_events(&f));
        char names[512];
        names_of(events, "oops", names, sizeof names);
        assert_string_equal(names, expected[k]);
        json_t *done = k != 1 ? find_event(events, "node_completed") : NULL;
        if (done) {
            assert_true(json_is_true(json_object_get(ev_data(done), "error_suppressed")));
            assert_string_equal(json_string_value(json_object_get(ev_data(done), "next_action")),
                                "default");
            assert_null(json_object_get(ev_data(done), "error"));   /* the details are the other event's */
        }
        json_t *sup = k != 2 ? find_event(events, "error_suppressed") : NULL;
        if (sup)
            assert_string_equal(json_string_value(json_object_get(ev_data(sup), "error_type")), "Oops");
        json_decref(events);
        kg_monitor_free(f.mon);
        kg_node_free(g);
    }
}

static void *run_fresh_graph(void *arg)
{
    kg_node_t *g = arg;
    kg_run(g, NULL, NULL);
    return NULL;
}

/* Node names live in a descriptor that queued events keep alive: graphs
 * freed before delivery still name their nodes, and threads that exit give
 * back the references they held in bulk (under ASan a leak fails this). */
static void test_descriptors_outlive_graphs_and_threads(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.flush_interval = 60;   /* nothing leaves before the flush */
    cfg.batch_size = 100000;
    fixture f;
    fixture_start(&f, &cfg);
    enum { THREADS = 6 };
    for (int t = 0; t < THREADS; t++) {
        kg_node_t *g = workflow_new(false);
        kg_monitor_attach(f.mon, g);
        pthread_t th;
        pthread_create(&th, NULL, run_fresh_graph, g);
        pthread_join(th, NULL);
        kg_node_free(g);   /* its events are still queued */
    }
    json_t *events = fixture_events(&f);
    assert_int_equal(json_array_size(events), THREADS * 24);
    char names[1024];
    names_of(events, "save", names, sizeof names);
    assert_non_null(strstr(names, "node_completed"));
    json_t *done = find_event(events, "node_completed");
    assert_string_equal(json_string_value(json_object_get(done, "node_type")), "LoadNode");
    json_decref(events);
    kg_monitor_free(f.mon);
}

static void test_invalid_config_is_refused(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_mock_backend_new(NULL, NULL);
    cfg.sample_rate = 1.5;
    kg_monitor_t *mon = (kg_monitor_t *)1;
    kg_error_t err;
    assert_int_equal(kg_monitor_new(&cfg, &mon, &err), KG_EINVAL);
    assert_null(mon);
    assert_non_null(strstr(err.message, "sample_rate"));
}

int main(void)
{
    kg_log_set_handler(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_order_per_execution),
        cmocka_unit_test(test_workflow_started_carries_real_topology),
        cmocka_unit_test(test_failure_events_and_phase),
        cmocka_unit_test(test_every_jsonl_line_is_a_valid_event),
        cmocka_unit_test(test_snapshots_and_truncation),
        cmocka_unit_test(test_snapshots_off_by_default),
        cmocka_unit_test(test_verbosity_filters),
        cmocka_unit_test(test_sampling_is_per_run_and_keeps_errors),
        cmocka_unit_test(test_nested_and_batch_nodes_are_monitored),
        cmocka_unit_test(test_nested_events_name_nodes_by_path),
        cmocka_unit_test(test_node_path_outlives_the_graph),
        cmocka_unit_test(test_each_run_arrives_in_order),
        cmocka_unit_test(test_seq_follows_emission_order_across_partitions),
        cmocka_unit_test(test_seq_orders_consecutive_runs),
        cmocka_unit_test(test_seq_across_threads),
        cmocka_unit_test(test_suppressed_failure_events),
        cmocka_unit_test(test_descriptors_outlive_graphs_and_threads),
        cmocka_unit_test(test_invalid_config_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
