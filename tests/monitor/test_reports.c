/* test_reports.c - what a node reports about itself (kg_ctx_log, kg_ctx_metric,
 * kg_ctx_progress, kg_ctx_event): the events' contents and place within the
 * node execution, filtering before anything is formatted (capture list,
 * minimum level, sampling), bounds and truncation, the log handler when no
 * monitor takes them, and accounting with parallel batch workers. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"
#include "mock_monitor.h"

/* ---- a workflow whose node reports from every step ------------------------------ */

static int talk_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    kg_ctx_log(ctx, KG_LOG_INFO, "prep reads %d records", 3);
    kg_ctx_progress(ctx, 0, 3);
    return 0;
}

static int talk_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    kg_ctx_log_fields_new(ctx, KG_LOG_WARN, json_pack("{s:i, s:s}", "record", 17, "why", "bad date"),
                          "skipped record %d", 17);
    kg_ctx_metric(ctx, "records_processed", 2, "records", KG_METRIC_COUNTER);
    kg_ctx_progress(ctx, 2, 3);
    kg_ctx_event_new(ctx, "cache", json_pack("{s:f}", "hit_rate", 0.82));
    return 0;
}

static int talk_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **action)
{
    kg_ctx_log(ctx, KG_LOG_DEBUG, "post <done> \"quoted\"");
    kg_ctx_metric(ctx, "mean_value", 41.5, "", KG_METRIC_GAUGE);
    kg_ctx_metric(ctx, "latency", 0.25, "seconds", KG_METRIC_HISTOGRAM);
    kg_ctx_log(ctx, KG_LOG_ERROR, "post error line");
    return 0;
}

static const kg_node_ops talk_ops = {.type_name = "TalkNode", .prep = talk_prep,
                                     .exec = talk_exec, .post = talk_post};

static kg_node_t *talk_graph_new(void)
{
    kg_node_t *g = kg_graph_new("flow", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("talk", &talk_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("after", NULL, NULL));
    kg_node_connect(a, NULL, b);
    return g;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_t *data_of(json_t *ev)
{
    return json_object_get(ev, "data");
}

/* The events of node `id`, in seq order (a run goes through one worker, so
 * the mock holds them in that order already; checked here). */
static json_t *node_events(json_t *events, const char *id)
{
    json_t *out = json_array(), *ev;
    size_t i;
    json_int_t last = 0;
    json_array_foreach(events, i, ev) {
        if (strcmp(str(ev, "node_id"), id) != 0)
            continue;
        json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
        assert_true(seq > last);
        last = seq;
        json_array_append(out, ev);
    }
    return out;
}

static json_t *find_name(json_t *events, const char *name, size_t nth)
{
    json_t *ev;
    size_t i;
    json_array_foreach(events, i, ev) {
        if (strcmp(str(ev, "event_name"), name) == 0 && nth-- == 0)
            return ev;
    }
    return NULL;
}

static size_t count_name(json_t *events, const char *name)
{
    size_t n = 0, i;
    json_t *ev;
    json_array_foreach(events, i, ev) n += strcmp(str(ev, "event_name"), name) == 0;
    return n;
}

/* ---- contents and order ---------------------------------------------------------- */

static void test_reports_are_events_of_the_node_execution(void **state)
{
    (void)state;
    fixture f;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture_start(&f, &cfg);
    kg_node_t *g = talk_graph_new();
    kg_monitor_attach(f.mon, g);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    json_t *all = fixture_events(&f);
    json_t *evs = node_events(all, "talk");

    /* node_started ... node_completed, in the order the steps reported. */
    static const char *const order[] = {
        "node_started", "node_preparing", "node_log", "node_progress", "data_input",
        "node_executing", "node_log", "custom_metric", "node_progress", "custom_event",
        "data_output", "execution_time", "node_log", "custom_metric", "custom_metric",
        "node_log", "node_completed"};
    assert_int_equal(json_array_size(evs), sizeof order / sizeof order[0]);
    const char *corr = str(json_array_get(evs, 0), "correlation_id");
    const char *wf = str(json_array_get(evs, 0), "workflow_id");
    for (size_t i = 0; i < json_array_size(evs); i++) {
        json_t *ev = json_array_get(evs, i);
        assert_string_equal(str(ev, "event_name"), order[i]);
        assert_string_equal(str(ev, "correlation_id"), corr);
        assert_string_equal(str(ev, "workflow_id"), wf);
        assert_string_equal(str(ev, "node_path"), "flow/talk");
        assert_string_equal(str(ev, "node_type"), "TalkNode");
        assert_true(strlen(str(ev, "event_id")) == 36);
        assert_true(json_is_object(json_object_get(ev, "source")));
        assert_null(json_object_get(data_of(ev), "item"));
    }

    json_t *log = data_of(find_name(evs, "node_log", 0));
    assert_string_equal(str(find_name(evs, "node_log", 0), "event_type"), "log");
    assert_string_equal(str(log, "level"), "info");
    assert_string_equal(str(log, "message"), "prep reads 3 records");
    assert_null(json_object_get(log, "fields"));
    assert_null(json_object_get(log, "truncated"));

    log = data_of(find_name(evs, "node_log", 1));
    assert_string_equal(str(log, "level"), "warning");
    assert_string_equal(str(log, "message"), "skipped record 17");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(log, "fields"), "record")), 17);
    assert_string_equal(str(json_object_get(log, "fields"), "why"), "bad date");

    log = data_of(find_name(evs, "node_log", 2));
    assert_string_equal(str(log, "level"), "debug");
    assert_string_equal(str(log, "message"), "post <done> \"quoted\"");
    assert_string_equal(str(data_of(find_name(evs, "node_log", 3)), "level"), "error");

    json_t *ev = find_name(evs, "custom_metric", 0), *m = data_of(ev);
    assert_string_equal(str(ev, "event_type"), "metric");
    assert_string_equal(str(m, "name"), "records_processed");
    assert_true(json_is_integer(json_object_get(m, "value")));
    assert_int_equal(json_integer_value(json_object_get(m, "value")), 2);
    assert_string_equal(str(m, "unit"), "records");
    assert_string_equal(str(m, "kind"), "counter");
    m = data_of(find_name(evs, "custom_metric", 1));
    assert_string_equal(str(m, "name"), "mean_value");
    assert_true(json_number_value(json_object_get(m, "value")) == 41.5);
    assert_string_equal(str(m, "unit"), "");
    assert_string_equal(str(m, "kind"), "gauge");
    m = data_of(find_name(evs, "custom_metric", 2));
    assert_string_equal(str(m, "kind"), "histogram");
    assert_true(json_number_value(json_object_get(m, "value")) == 0.25);

    ev = find_name(evs, "node_progress", 1);
    assert_string_equal(str(ev, "event_type"), "lifecycle");
    assert_int_equal(json_integer_value(json_object_get(data_of(ev), "done")), 2);
    assert_int_equal(json_integer_value(json_object_get(data_of(ev), "total")), 3);

    ev = find_name(evs, "custom_event", 0);
    assert_string_equal(str(ev, "event_type"), "data");
    assert_string_equal(str(data_of(ev), "name"), "cache");
    assert_true(json_number_value(json_object_get(json_object_get(data_of(ev), "data"),
                                                  "hit_rate")) == 0.82);
    json_decref(evs);
    json_decref(all);
    kg_monitor_detach(f.mon, g);
    assert_int_equal(kg_monitor_free(f.mon), 0);
    kg_node_free(g);
}

/* ---- filtering happens before formatting ------------------------------------------- */

/* Each report writes, through %n, how far the formatter got: a report that
 * was formatted leaves a value >= 0 behind. */
static int probe_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    int *marks = kg_ctx_data(ctx);
    kg_ctx_log(ctx, KG_LOG_DEBUG, "debug%n", &marks[KG_LOG_DEBUG]);
    kg_ctx_log(ctx, KG_LOG_INFO, "info%n", &marks[KG_LOG_INFO]);
    kg_ctx_log(ctx, KG_LOG_WARN, "warning%n", &marks[KG_LOG_WARN]);
    kg_ctx_log(ctx, KG_LOG_ERROR, "error%n", &marks[KG_LOG_ERROR]);
    marks[4] = kg_ctx_log_enabled(ctx, KG_LOG_INFO);
    kg_ctx_metric(ctx, "m", 1, NULL, KG_METRIC_GAUGE);
    kg_ctx_progress(ctx, 1, 2);
    kg_ctx_event(ctx, "e", NULL);
    return 0;
}

static const kg_node_ops probe_ops = {.type_name = "ProbeNode", .exec = probe_exec};

/* Run one probe node under `cfg`; marks[level] is >= 0 when that line was
 * formatted. */
static json_t *probe_run(kg_monitor_config *cfg, int marks[5])
{
    fixture f;
    fixture_start(&f, cfg);
    for (int i = 0; i < 4; i++)
        marks[i] = -1;
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_graph_add(g, kg_node_new("probe", &probe_ops, marks));
    kg_monitor_attach(f.mon, g);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    json_t *events = fixture_events(&f);
    kg_monitor_detach(f.mon, g);
    assert_int_equal(kg_monitor_free(f.mon), 0);
    kg_node_free(g);
    return events;
}

static void test_log_level_filters_before_formatting(void **state)
{
    (void)state;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.log_level = KG_LOG_WARN;
    int marks[5];
    json_t *events = probe_run(&cfg, marks);
    assert_int_equal(marks[KG_LOG_DEBUG], -1);
    assert_int_equal(marks[KG_LOG_INFO], -1);
    assert_int_equal(marks[KG_LOG_WARN], 7);
    assert_int_equal(marks[KG_LOG_ERROR], 5);
    assert_int_equal(marks[4], 0);   /* kg_ctx_log_enabled says so too */
    assert_int_equal(count_name(events, "node_log"), 2);
    assert_string_equal(str(data_of(find_name(events, "node_log", 0)), "level"), "warning");
    assert_string_equal(str(data_of(find_name(events, "node_log", 1)), "level"), "error");
    assert_int_equal(count_name(events, "custom_metric"), 1);
    assert_int_equal(count_name(events, "node_progress"), 1);
    assert_int_equal(count_name(events, "custom_event"), 1);
    assert_true(json_is_null(json_object_get(data_of(find_name(events, "custom_event", 0)), "data")));
    json_decref(events);
}

static void test_capture_list_filters_before_formatting(void **state)
{
    (void)state;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    kg_error_t err;
    /* "lifecycle" has node_progress; node_log, custom_metric and custom_event
     * are left out. */
    assert_int_equal(kg_capture_parse("lifecycle", &cfg.capture, &err), 0);
    int marks[5];
    json_t *events = probe_run(&cfg, marks);
    for (int i = 0; i < 4; i++)
        assert_int_equal(marks[i], -1);
    assert_int_equal(count_name(events, "node_log"), 0);
    assert_int_equal(count_name(events, "custom_metric"), 0);
    assert_int_equal(count_name(events, "custom_event"), 0);
    assert_int_equal(count_name(events, "node_progress"), 1);
    assert_int_equal(count_name(events, "node_started"), 1);
    json_decref(events);

    /* The type "log" and the names parse. */
    uint32_t mask;
    assert_int_equal(kg_capture_parse("lifecycle,log", &mask, &err), 0);
    assert_true(mask & KG_CAPTURE(KG_EV_NODE_LOG));
    assert_true(mask & KG_CAPTURE(KG_EV_NODE_PROGRESS));
    assert_false(mask & KG_CAPTURE(KG_EV_CUSTOM_METRIC));
    assert_int_equal(kg_capture_parse("custom_metric, custom_event", &mask, &err), 0);
    assert_int_equal(mask, KG_CAPTURE(KG_EV_CUSTOM_METRIC) | KG_CAPTURE(KG_EV_CUSTOM_EVENT));
    assert_int_equal(kg_capture_type(KG_TYPE_LOG), KG_CAPTURE(KG_EV_NODE_LOG));
    assert_string_equal(kg_event_type_str(kg_event_name_type(KG_EV_NODE_LOG)), "log");
    assert_int_equal(kg_event_type_parse("log"), KG_TYPE_LOG);
    assert_int_equal(kg_event_name_parse("node_progress"), KG_EV_NODE_PROGRESS);
    assert_int_equal(kg_capture_parse("lifecycle,logs", &mask, &err), KG_EINVAL);
    assert_non_null(strstr(err.message, "log;"));   /* the message lists the type */
}

static void test_unsampled_run_reports_nothing(void **state)
{
    (void)state;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.sample_rate = 0;
    int marks[5];
    json_t *events = probe_run(&cfg, marks);
    for (int i = 0; i < 4; i++)
        assert_int_equal(marks[i], -1);
    assert_int_equal(json_array_size(events), 0);
    json_decref(events);
}

static void test_bad_log_level_is_refused(void **state)
{
    (void)state;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    assert_int_equal(cfg.log_level, KG_LOG_DEBUG);
    cfg.log_level = (kg_log_level)4;
    cfg.backend = kg_mock_backend_new(NULL, NULL);
    kg_monitor_t *mon;
    kg_error_t err;
    assert_int_equal(kg_monitor_new(&cfg, &mon, &err), KG_EINVAL);
    assert_non_null(strstr(err.message, "log_level"));
    assert_int_equal(kg_log_level_parse("warning"), KG_LOG_WARN);
    assert_int_equal(kg_log_level_parse("warn"), KG_LOG_WARN);
    assert_int_equal(kg_log_level_parse("debug"), KG_LOG_DEBUG);
    assert_int_equal(kg_log_level_parse("loud"), -1);
    assert_string_equal(kg_log_level_name(KG_LOG_ERROR), "error");
    assert_string_equal(kg_metric_kind_name(KG_METRIC_HISTOGRAM), "histogram");
}

/* ---- bounds ----------------------------------------------------------------------- */

static int big_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    char *big = malloc(3 * KG_LOG_MESSAGE_MAX + 1);
    /* "é" (2 bytes) repeated: a cut must not split one. */
    for (size_t i = 0; i < 3 * KG_LOG_MESSAGE_MAX; i += 2)
        memcpy(big + i, "\xC3\xA9", 2);
    big[3 * KG_LOG_MESSAGE_MAX] = '\0';
    kg_ctx_log(ctx, KG_LOG_INFO, "x%s", big);   /* odd offset: the limit falls inside a char */
    json_t *fields = json_object();
    json_object_set_new(fields, "small", json_integer(1));
    assert_int_equal(json_object_set_new(fields, "huge", json_string(big)), 0);
    json_object_set_new(fields, "after", json_string("kept"));
    kg_ctx_log_fields(ctx, KG_LOG_INFO, fields, "fields");
    json_decref(fields);
    kg_ctx_log_fields_new(ctx, KG_LOG_INFO, json_integer(5), "not an object");
    json_t *data = json_pack("{s:s, s:s}", "a", big, "b", big);
    assert_non_null(data);
    kg_ctx_event_new(ctx, "big", data);
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    kg_ctx_metric(ctx, name, 1, "a-unit-that-is-much-longer-than-thirty-two-bytes", KG_METRIC_GAUGE);
    kg_ctx_metric(ctx, "nan", NAN, NULL, KG_METRIC_GAUGE);            /* dropped */
    kg_ctx_metric(ctx, "neg", -1, NULL, KG_METRIC_COUNTER);           /* dropped */
    kg_ctx_metric(ctx, NULL, 1, NULL, KG_METRIC_GAUGE);               /* dropped */
    kg_ctx_metric(ctx, "kind", 1, NULL, (kg_metric_kind)9);           /* dropped */
    kg_ctx_progress(ctx, INFINITY, 1);                                /* dropped */
    kg_ctx_progress(ctx, -1, 1);                                      /* dropped */
    kg_ctx_progress(ctx, 5, 0);                                       /* total unknown */
    kg_ctx_event(ctx, "", NULL);                                      /* dropped */
    kg_ctx_log(ctx, (kg_log_level)99, "odd level");                   /* as debug */
    free(big);
    return 0;
}

static const kg_node_ops big_ops = {.type_name = "BigNode", .exec = big_exec};

static bool valid_utf8_len(const char *s)
{
    /* jansson only hands out valid UTF-8: a replacement character would
     * mean a cut sequence was mended. */
    return strstr(s, "\xEF\xBF\xBD") == NULL;
}

static void test_reports_are_bounded_and_say_so(void **state)
{
    (void)state;
    fixture f;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture_start(&f, &cfg);
    kg_node_t *n = kg_node_new("big", &big_ops, NULL);
    kg_monitor_attach(f.mon, n);
    assert_int_equal(kg_run(n, NULL, NULL), 0);
    json_t *events = fixture_events(&f);

    json_t *d = data_of(find_name(events, "node_log", 0));
    assert_true(json_is_true(json_object_get(d, "truncated")));
    size_t len = strlen(str(d, "message"));
    assert_true(len <= KG_LOG_MESSAGE_MAX && len >= KG_LOG_MESSAGE_MAX - 1);
    assert_true(valid_utf8_len(str(d, "message")));

    d = data_of(find_name(events, "node_log", 1));
    assert_true(json_is_true(json_object_get(d, "truncated")));
    json_t *fields = json_object_get(d, "fields");
    assert_int_equal(json_integer_value(json_object_get(fields, "small")), 1);
    assert_null(json_object_get(fields, "huge"));
    assert_string_equal(str(fields, "after"), "kept");

    d = data_of(find_name(events, "node_log", 2));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "fields"), "value")), 5);
    assert_null(json_object_get(d, "truncated"));
    assert_string_equal(str(data_of(find_name(events, "node_log", 3)), "level"), "debug");
    assert_int_equal(count_name(events, "node_log"), 4);

    d = data_of(find_name(events, "custom_event", 0));
    assert_true(json_is_true(json_object_get(d, "truncated")));
    assert_true(json_is_string(json_object_get(d, "data")));
    assert_true(strlen(str(d, "data")) <= KG_REPORT_DATA_MAX);
    assert_true(valid_utf8_len(str(d, "data")));
    assert_true(json_integer_value(json_object_get(d, "original_size")) > KG_REPORT_DATA_MAX);
    assert_int_equal(count_name(events, "custom_event"), 1);

    d = data_of(find_name(events, "custom_metric", 0));
    assert_int_equal(strlen(str(d, "name")), KG_REPORT_NAME_MAX);
    assert_int_equal(strlen(str(d, "unit")), KG_REPORT_UNIT_MAX);
    assert_true(json_is_true(json_object_get(d, "truncated")));
    assert_int_equal(count_name(events, "custom_metric"), 1);

    d = data_of(find_name(events, "node_progress", 0));
    assert_int_equal(json_integer_value(json_object_get(d, "done")), 5);
    assert_int_equal(json_integer_value(json_object_get(d, "total")), 0);
    assert_int_equal(count_name(events, "node_progress"), 1);
    json_decref(events);
    kg_monitor_detach(f.mon, n);
    assert_int_equal(kg_monitor_free(f.mon), 0);
    kg_node_free(n);
}

/* ---- no monitor: the log handler ---------------------------------------------------- */

typedef struct captured {
    pthread_mutex_t lock;
    char lines[16][256];
    int levels[16];
    size_t n;
} captured;

static void capture_line(void *ud, kg_log_level level, const char *msg)
{
    captured *c = ud;
    pthread_mutex_lock(&c->lock);
    if (c->n < 16) {
        snprintf(c->lines[c->n], sizeof c->lines[c->n], "%s", msg);
        c->levels[c->n++] = (int)level;
    }
    pthread_mutex_unlock(&c->lock);
}

static int graph_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    kg_ctx_log(ctx, KG_LOG_WARN, "the graph itself");
    return 0;
}

static const kg_node_ops graph_ops = {.type_name = "TalkGraph", .prep = graph_prep};

static void test_without_monitor_lines_go_to_the_log_handler(void **state)
{
    (void)state;
    captured c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    kg_log_set_handler(capture_line, &c);
    int marks[5] = {-1, -1, -1, -1, 0};
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_graph_add(g, kg_node_new("probe", &probe_ops, marks));
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    /* Default level info: debug is not formatted. */
    assert_int_equal(marks[KG_LOG_DEBUG], -1);
    assert_int_equal(marks[KG_LOG_INFO], 4);
    assert_int_equal(marks[4], 1);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[0], "g/probe: info");
    assert_int_equal(c.levels[0], KG_LOG_INFO);
    assert_string_equal(c.lines[1], "g/probe: warning");
    assert_string_equal(c.lines[2], "g/probe: error");
    assert_int_equal(c.levels[2], KG_LOG_ERROR);

    kg_log_set_level(KG_LOG_ERROR);
    c.n = 0;
    for (int i = 0; i < 4; i++)
        marks[i] = -1;
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(marks[KG_LOG_WARN], -1);
    assert_int_equal(c.n, 1);
    kg_log_set_level(KG_LOG_INFO);
    kg_node_free(g);

    /* Fields follow the message as JSON; a top-level graph's own steps are
     * not a node execution, so even under a monitor they go here. */
    c.n = 0;
    kg_node_t *t = talk_graph_new();
    kg_node_t *outer = kg_graph_new("outer", &graph_ops, NULL);
    kg_graph_add(outer, t);
    fixture f;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    fixture_start(&f, &cfg);
    kg_monitor_attach(f.mon, outer);
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "outer: the graph itself");
    json_t *events = fixture_events(&f);
    assert_int_equal(count_name(events, "node_log"), 4);   /* the inner nodes' */
    json_decref(events);
    kg_monitor_detach(f.mon, outer);
    assert_int_equal(kg_monitor_free(f.mon), 0);

    c.n = 0;
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    assert_int_equal(c.n, 4);   /* the graph's warning, the inner info, warning, error */
    assert_string_equal(c.lines[2],
                        "outer/flow/talk: skipped record 17 {\"record\":17,\"why\":\"bad date\"}");
    assert_int_equal(c.levels[2], KG_LOG_WARN);
    kg_node_free(outer);
    kg_log_set_handler(NULL, NULL);
}

/* An observer that knows nothing of reports (user_mask 0) leaves log lines
 * to the handler and never sees a report point. */
static atomic_int plain_points[KG_OBS_POINT_COUNT];

static void plain_observer(void *ud, const kg_obs_event *ev)
{
    (void)ud;
    atomic_fetch_add(&plain_points[ev->point], 1);
}

static void test_observer_without_mask_gets_no_reports(void **state)
{
    (void)state;
    captured c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    kg_log_set_handler(capture_line, &c);
    kg_node_t *g = talk_graph_new();
    kg_observer obs = {.on_event = plain_observer};
    kg_node_set_observer(g, &obs);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(plain_points[KG_OBS_LOG], 0);
    assert_int_equal(plain_points[KG_OBS_METRIC], 0);
    assert_int_equal(plain_points[KG_OBS_PROGRESS], 0);
    assert_int_equal(plain_points[KG_OBS_CUSTOM], 0);
    assert_int_equal(plain_points[KG_OBS_NODE_START], 2);
    assert_int_equal(c.n, 3);   /* info, warning, error; not debug */

    /* Claimed with no bit: everything is dropped, nothing is logged. */
    c.n = 0;
    obs.user_mask = KG_USER_CLAIM;
    kg_node_set_observer(g, &obs);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(plain_points[KG_OBS_LOG], 0);
    obs.user_mask = KG_USER_LOG_UPTO(KG_LOG_WARN) | KG_USER_PROGRESS;
    kg_node_set_observer(g, &obs);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(plain_points[KG_OBS_LOG], 2);
    assert_int_equal(plain_points[KG_OBS_PROGRESS], 2);
    assert_int_equal(plain_points[KG_OBS_METRIC], 0);
    kg_node_free(g);
    kg_log_set_handler(NULL, NULL);
}

/* ---- parallel batch workers: ordering and accounting ------------------------------- */

#define ITEMS 64
#define LOGS_PER_ITEM 20

static int items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_array();
    for (int i = 0; i < ITEMS; i++)
        json_array_append_new(*out, json_integer(i));
    return 0;
}

static int item_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    long item = kg_ctx_item(ctx);
    for (int k = 0; k < LOGS_PER_ITEM; k++) {
        kg_ctx_log_fields_new(ctx, k % 2 ? KG_LOG_INFO : KG_LOG_DEBUG,
                              json_pack("{s:i, s:i}", "item", (int)item, "k", k),
                              "item %ld line %d", item, k);
        kg_ctx_progress(ctx, k + 1, LOGS_PER_ITEM);
    }
    kg_ctx_metric(ctx, "items_done", 1, "items", KG_METRIC_COUNTER);
    kg_ctx_event_new(ctx, "item_done", json_integer(item));
    *out = json_integer(item);
    return 0;
}

static const kg_node_ops items_ops = {.type_name = "ItemsNode", .prep = items_prep,
                                      .exec = item_exec};

static void parallel_reports(size_t buffer, bool expect_drops)
{
    fixture f;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.buffer_size = buffer;
    cfg.batch_size = 64;
    cfg.async_workers = 2;
    fixture_start(&f, &cfg);
    kg_node_t *g = kg_graph_new("par", NULL, NULL);
    kg_graph_add(g, kg_parallel_batch_node_new("items", &items_ops, NULL, 8));
    kg_monitor_attach(f.mon, g);
    const int runs = 3;
    for (int r = 0; r < runs; r++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    json_t *events = fixture_events(&f);
    kg_monitor_stats st;
    kg_monitor_stats_get(f.mon, &st);
    kg_mock_stats ms;
    kg_mock_backend_stats(f.mock, &ms);
    /* Accounting: everything emitted was delivered or counted as dropped. */
    assert_int_equal(st.emitted, st.sent + st.dropped_full + st.dropped_shutdown);
    assert_int_equal(ms.events, st.sent);
    assert_int_equal(json_array_size(events), st.sent);
    size_t per_run = 2 + 7 + ITEMS * (2 * LOGS_PER_ITEM + 2);
    if (expect_drops)
        assert_true(st.dropped_full > 0);
    else
        assert_int_equal(st.sent, runs * per_run);

    /* Ordering: within each execution of "items", every report lies between
     * its node_executing and its data_output by seq, carries its item, and
     * one item's lines come in the order it wrote them. */
    json_t *ev;
    size_t i;
    json_t *execs = json_object();
    json_array_foreach(events, i, ev) {
        if (strcmp(str(ev, "node_id"), "items") != 0)
            continue;
        json_t *list = json_object_get(execs, str(ev, "correlation_id"));
        if (!list)
            json_object_set_new(execs, str(ev, "correlation_id"), list = json_array());
        json_array_append(list, ev);
    }
    const char *corr;
    json_t *list;
    json_object_foreach(execs, corr, list) {
        json_int_t begin = -1, end = -1, last_k[ITEMS];
        for (int k = 0; k < ITEMS; k++)
            last_k[k] = -1;
        json_array_foreach(list, i, ev) {
            json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
            if (strcmp(str(ev, "event_name"), "node_executing") == 0)
                begin = seq;
            if (strcmp(str(ev, "event_name"), "data_output") == 0)
                end = seq;
        }
        json_array_foreach(list, i, ev) {
            const char *name = str(ev, "event_name");
            if (strcmp(name, "node_log") && strcmp(name, "node_progress") &&
                strcmp(name, "custom_metric") && strcmp(name, "custom_event"))
                continue;
            json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
            if (begin >= 0)
                assert_true(seq > begin);
            if (end >= 0)
                assert_true(seq < end);
            json_int_t item = json_integer_value(json_object_get(data_of(ev), "item"));
            assert_true(item >= 0 && item < ITEMS);
            if (strcmp(name, "node_log") == 0) {
                json_t *fields = json_object_get(data_of(ev), "fields");
                assert_int_equal(json_integer_value(json_object_get(fields, "item")), item);
                json_int_t k = json_integer_value(json_object_get(fields, "k"));
                assert_true(k > last_k[item]);
                last_k[item] = k;
            }
        }
        if (!expect_drops)
            assert_int_equal(json_array_size(list), 7 + ITEMS * (2 * LOGS_PER_ITEM + 2));
    }
    assert_int_equal(json_object_size(execs) > 0, true);
    json_decref(execs);
    json_decref(events);
    kg_monitor_detach(f.mon, g);
    assert_int_equal(kg_monitor_free(f.mon), 0);
    kg_node_free(g);
}

static void test_parallel_workers_ordered_and_counted(void **state)
{
    (void)state;
    parallel_reports(1 << 16, false);
}

static void test_parallel_workers_full_queue_counted(void **state)
{
    (void)state;
    parallel_reports(64, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reports_are_events_of_the_node_execution),
        cmocka_unit_test(test_log_level_filters_before_formatting),
        cmocka_unit_test(test_capture_list_filters_before_formatting),
        cmocka_unit_test(test_unsampled_run_reports_nothing),
        cmocka_unit_test(test_bad_log_level_is_refused),
        cmocka_unit_test(test_reports_are_bounded_and_say_so),
        cmocka_unit_test(test_without_monitor_lines_go_to_the_log_handler),
        cmocka_unit_test(test_observer_without_mask_gets_no_reports),
        cmocka_unit_test(test_parallel_workers_ordered_and_counted),
        cmocka_unit_test(test_parallel_workers_full_queue_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
