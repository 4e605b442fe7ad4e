/* test_engine.c - the engine's KayGraph semantics: lifecycle, routing,
 * retries, fallback, hooks, nesting, params, batches, metrics, observer. */
#include <stdatomic.h>
#include <string.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

static char warnings[4][512];
static int n_warnings;

static void capture_warning(void *ud, kg_log_level level, const char *msg)
{
    (void)ud;
    if (level == KG_LOG_WARN && n_warnings < 4)
        snprintf(warnings[n_warnings++], sizeof warnings[0], "%s", msg);
}

static int setup(void **state)
{
    (void)state;
    n_warnings = 0;
    kg_log_set_handler(capture_warning, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kg_log_set_handler(NULL, NULL);
    return 0;
}

/* A node whose post returns the action stored in its data, and appends its
 * id to shared["trail"]. */
static int trail_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **action)
{
    json_t *trail = json_object_get(shared, "trail");
    if (!trail) {
        trail = json_array();
        json_object_set_new(shared, "trail", trail);
    }
    json_array_append_new(trail, json_string(kg_node_id(kg_ctx_node(ctx))));
    *action = kg_ctx_data(ctx);
    return 0;
}
static const kg_node_ops trail_ops = {.type_name = "TrailNode", .post = trail_post};

static const char *trail_str(json_t *shared)
{
    static char buf[256];
    buf[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(shared, "trail"), i, v) {
        if (i)
            strcat(buf, ",");
        strcat(buf, json_string_value(v));
    }
    return buf;
}

/* ---- routing ------------------------------------------------------------------ */

static void test_routes_by_action_and_default(void **state)
{
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &trail_ops, "left"));
    kg_node_t *l = kg_graph_add(g, kg_node_new("l", &trail_ops, NULL));
    kg_node_t *r = kg_graph_add(g, kg_node_new("r", &trail_ops, NULL));
    kg_node_t *end = kg_graph_add(g, kg_node_new("end", &trail_ops, "done"));
    assert_int_equal(kg_node_connect(a, "left", l), 0);
    assert_int_equal(kg_node_connect(a, "right", r), 0);
    assert_int_equal(kg_node_connect(l, NULL, end), 0);
    json_t *shared = json_object();
    kg_result_t res;
    assert_int_equal(kg_run(g, shared, &res), 0);
    assert_string_equal(trail_str(shared), "a,l,end");
    assert_string_equal(res.action, "done");
    assert_int_equal(n_warnings, 0);
    json_decref(shared);
    kg_node_free(g);
}

static void test_unknown_action_ends_with_warning(void **state)
{
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &trail_ops, "sideways"));
    kg_node_t *b = kg_graph_add(g, kg_node_new("b", &trail_ops, NULL));
    kg_node_connect(a, "left", b);
    kg_node_connect(a, "right", b);
    json_t *shared = json_object();
    kg_result_t res;
    assert_int_equal(kg_run(g, shared, &res), 0);
    assert_string_equal(trail_str(shared), "a");
    assert_string_equal(res.action, "sideways");
    assert_int_equal(n_warnings, 1);
    assert_non_null(strstr(warnings[0], "'sideways'"));
    assert_non_null(strstr(warnings[0], "'left', 'right'"));
    json_decref(shared);
    kg_node_free(g);
}

static void test_overwriting_successor_warns(void **state)
{
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &trail_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("b", &trail_ops, NULL));
    kg_node_t *c = kg_graph_add(g, kg_node_new("c", &trail_ops, NULL));
    assert_int_equal(kg_node_connect(a, NULL, b), 0);
    assert_int_equal(kg_node_connect(a, "default", c), 1);
    assert_int_equal(n_warnings, 1);
    assert_non_null(strstr(warnings[0], "'default'"));
    assert_ptr_equal(kg_node_successor(a, NULL), c);
    kg_node_free(g);
}

static void test_graph_rejects_duplicate_ids(void **state)
{
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    assert_non_null(kg_graph_add(g, kg_node_new("a", NULL, NULL)));
    assert_null(kg_graph_add(g, kg_node_new("a", NULL, NULL)));
    assert_null(kg_node_new("", NULL, NULL));
    assert_null(kg_graph_add(kg_graph_find(g, "a"), kg_node_new("x", NULL, NULL)));
    kg_node_free(g);
}

/* ---- retries, fallback, errors -------------------------------------------------- */

typedef struct flaky {
    int fail_times;      /* attempts that fail before one succeeds */
    int calls;
    unsigned attempts_seen[8];
    double times[8];
    bool fallback_ok;
    int fallback_calls;
    char fallback_error[320];
} flaky;

static int flaky_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    flaky *f = kg_ctx_data(ctx);
    f->attempts_seen[f->calls] = kg_ctx_attempt(ctx);
    f->times[f->calls] = kg_test_now();
    if (f->calls++ < f->fail_times)
        return kg_ctx_fail(ctx, "TransientError", "attempt %u failed", kg_ctx_attempt(ctx));
    *out = json_string("ok");
    return 0;
}

static int flaky_fallback(kg_ctx_t *ctx, json_t *in, const kg_error_t *err, json_t **out)
{
    flaky *f = kg_ctx_data(ctx);
    f->fallback_calls++;
    snprintf(f->fallback_error, sizeof f->fallback_error, "%s: %s", err->type, err->message);
    if (!f->fallback_ok)
        return kg_ctx_fail(ctx, "FallbackError", "no luck");
    *out = json_string("fallback");
    return 0;
}

static int store_result_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **a)
{
    json_object_set(shared, "result", e);
    return 0;
}

static const kg_node_ops flaky_ops = {.type_name = "Flaky", .exec = flaky_exec,
                                      .post = store_result_post};
static const kg_node_ops flaky_fb_ops = {.type_name = "Flaky", .exec = flaky_exec,
                                         .exec_fallback = flaky_fallback,
                                         .post = store_result_post};

static void test_retries_until_success_with_wait(void **state)
{
    flaky f = {.fail_times = 2};
    kg_node_t *n = kg_node_new("n", &flaky_ops, &f);
    assert_int_equal(kg_node_set_retries(n, 3, 0.02), 0);
    json_t *shared = json_object();
    assert_int_equal(kg_run(n, shared, NULL), 0);
    assert_int_equal(f.calls, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(f.attempts_seen[i], i);
    assert_true(f.times[1] - f.times[0] >= 0.019);
    assert_true(f.times[2] - f.times[1] >= 0.019);
    assert_string_equal(json_string_value(json_object_get(shared, "result")), "ok");
    kg_node_metrics m;
    kg_node_metrics_get(n, &m);
    assert_int_equal(m.retries, 2);
    assert_int_equal(m.successes, 1);
    json_decref(shared);
    kg_node_free(n);
}

static void test_exhausted_retries_fail_with_error_value(void **state)
{
    flaky f = {.fail_times = 100};
    kg_node_t *n = kg_node_new("n", &flaky_ops, &f);
    kg_node_set_retries(n, 2, 0);
    kg_result_t res;
    assert_int_equal(kg_run(n, NULL, &res), KG_ENODE);
    assert_int_equal(f.calls, 2);
    assert_int_equal(res.error.code, KG_ENODE);
    assert_string_equal(res.error.type, "TransientError");
    assert_string_equal(res.error.message, "attempt 1 failed");
    kg_node_metrics m;
    kg_node_metrics_get(n, &m);
    assert_int_equal(m.errors, 1);
    kg_node_free(n);
}

static void test_fallback_recovers_and_sees_last_error(void **state)
{
    flaky f = {.fail_times = 100, .fallback_ok = true};
    kg_node_t *n = kg_node_new("n", &flaky_fb_ops, &f);
    kg_node_set_retries(n, 2, 0);
    json_t *shared = json_object();
    assert_int_equal(kg_run(n, shared, NULL), 0);
    assert_int_equal(f.fallback_calls, 1);
    assert_string_equal(f.fallback_error, "TransientError: attempt 1 failed");
    assert_string_equal(json_string_value(json_object_get(shared, "result")), "fallback");
    json_decref(shared);
    kg_node_free(n);
}

static void test_failing_fallback_fails_node(void **state)
{
    flaky f = {.fail_times = 100, .fallback_ok = false};
    kg_node_t *n = kg_node_new("n", &flaky_fb_ops, &f);
    kg_result_t res;
    assert_int_equal(kg_run(n, NULL, &res), KG_ENODE);
    assert_string_equal(res.error.type, "FallbackError");
    kg_node_free(n);
}

static bool suppress_all(kg_ctx_t *ctx, json_t *shared, const kg_error_t *err)
{
    json_object_set_new(shared, "suppressed", json_string(err->message));
    return true;
}

static int failing_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    return kg_ctx_fail(ctx, "PrepError", "cannot prepare");
}

static void test_on_error_suppresses_and_follows_default(void **state)
{
    static const kg_node_ops ops = {.prep = failing_prep, .on_error = suppress_all,
                                    .post = trail_post};
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("b", &trail_ops, NULL));
    kg_node_connect(a, NULL, b);
    json_t *shared = json_object();
    assert_int_equal(kg_run(g, shared, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(shared, "suppressed")), "cannot prepare");
    /* a's post never ran (the failure was in prep); b ran on the default edge. */
    assert_string_equal(trail_str(shared), "b");
    json_decref(shared);
    kg_node_free(g);
}

static void test_unsuppressed_error_stops_graph(void **state)
{
    static const kg_node_ops ops = {.prep = failing_prep};
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("a", &ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("b", &trail_ops, NULL));
    kg_node_connect(a, NULL, b);
    json_t *shared = json_object();
    kg_result_t res;
    assert_int_equal(kg_run(g, shared, &res), KG_ENODE);
    assert_string_equal(res.error.type, "PrepError");
    assert_null(json_object_get(shared, "trail"));
    json_decref(shared);
    kg_node_free(g);
}

/* ---- hooks, nesting, params ------------------------------------------------------ */

static void hook_before_prep(kg_ctx_t *ctx, json_t *shared)
{
    json_object_set_new(shared, "before", json_true());
}

static int params_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    *out = json_deep_copy(kg_ctx_params(ctx));
    return 0;
}

static void hook_after_exec(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e)
{
    json_object_set(shared, "params_seen", e);
}

static void test_hooks_nesting_and_params(void **state)
{
    static const kg_node_ops ops = {.before_prep = hook_before_prep, .exec = params_exec,
                                    .after_exec = hook_after_exec, .post = trail_post};
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    kg_node_t *inner = kg_graph_add(outer, kg_graph_new("inner", NULL, NULL));
    kg_graph_add(inner, kg_node_new("leaf", &ops, "inner_done"));
    kg_node_t *after = kg_graph_add(outer, kg_node_new("after", &trail_ops, NULL));
    /* The nested graph's action is its last node's action. */
    kg_node_connect(inner, "inner_done", after);
    json_t *params = json_pack("{s:i}", "tenant", 7);
    assert_int_equal(kg_node_set_params(outer, params), 0);
    json_decref(params);
    json_t *shared = json_object();
    assert_int_equal(kg_run(outer, shared, NULL), 0);
    assert_string_equal(trail_str(shared), "leaf,after");
    assert_true(json_is_true(json_object_get(shared, "before")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(shared, "params_seen"), "tenant")), 7);
    json_decref(shared);
    kg_node_free(outer);
}

/* ---- batches ------------------------------------------------------------------------- */

static int items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "items"));
    return 0;
}

static int square_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    json_int_t v = json_integer_value(in);
    if (v < 0)
        return kg_ctx_fail(ctx, "ValueError", "negative item %lld", (long long)v);
    *out = json_integer(v * v);
    return 0;
}

static const kg_node_ops square_ops = {.prep = items_prep, .exec = square_exec,
                                       .post = store_result_post};

static void test_batch_node_keeps_order(void **state)
{
    kg_node_t *n = kg_batch_node_new("sq", &square_ops, NULL);
    json_t *shared = json_pack("{s:[i,i,i,i]}", "items", 3, 1, 4, 2);
    assert_int_equal(kg_run(n, shared, NULL), 0);
    char *s = json_dumps(json_object_get(shared, "result"), JSON_COMPACT);
    assert_string_equal(s, "[9,1,16,4]");
    free(s);
    json_decref(shared);
    kg_node_free(n);
}

static void test_batch_item_failure_fails_node(void **state)
{
    kg_node_t *n = kg_parallel_batch_node_new("sq", &square_ops, NULL, 3);
    json_t *shared = json_pack("{s:[i,i,i,i]}", "items", 3, -1, 4, -2);
    kg_result_t res;
    assert_int_equal(kg_run(n, shared, &res), KG_ENODE);
    assert_string_equal(res.error.message, "negative item -1");
    json_decref(shared);
    kg_node_free(n);
}

typedef struct concurrency_probe {
    atomic_int active, max_active;
} concurrency_probe;

static int slow_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    concurrency_probe *p = kg_ctx_data(ctx);
    int now = atomic_fetch_add(&p->active, 1) + 1;
    int max = atomic_load(&p->max_active);
    while (now > max && !atomic_compare_exchange_weak(&p->max_active, &max, now)) {
    }
    /* Hold the item until a second one runs alongside (bounded), which
     * proves the items really overlap. */
    KG_WAIT_UNTIL(atomic_load(&p->max_active) >= 2, 5);
    kg_test_sleep(0.005);
    atomic_fetch_sub(&p->active, 1);
    *out = json_integer(json_integer_value(in) + 100);
    return 0;
}

static void test_parallel_batch_runs_concurrently_and_bounded(void **state)
{
    static const kg_node_ops ops = {.prep = items_prep, .exec = slow_exec,
                                    .post = store_result_post};
    concurrency_probe probe = {0};
    kg_node_t *n = kg_parallel_batch_node_new("par", &ops, &probe, 3);
    json_t *shared = json_pack("{s:[i,i,i,i,i,i,i,i,i,i]}", "items", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    assert_int_equal(kg_run(n, shared, NULL), 0);
    assert_true(atomic_load(&probe.max_active) >= 2);
    assert_true(atomic_load(&probe.max_active) <= 3);
    json_t *result = json_object_get(shared, "result");
    assert_int_equal(json_array_size(result), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(json_integer_value(json_array_get(result, (size_t)i)), i + 100);
    json_decref(shared);
    kg_node_free(n);
}

static int params_list_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("[{s:s},{s:s},{s:s}]", "file", "a", "file", "b", "file", "c");
    return 0;
}

static int record_param_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **a)
{
    json_t *seen = json_object_get(shared, "seen");
    json_array_append(seen, json_object_get(kg_ctx_params(ctx), "file"));
    json_array_append(seen, json_object_get(kg_ctx_params(ctx), "base"));
    return 0;
}

static void test_batch_graph_runs_once_per_params(void **state)
{
    static const kg_node_ops bg_ops = {.prep = params_list_prep};
    static const kg_node_ops leaf_ops = {.post = record_param_post};
    kg_node_t *bg = kg_batch_graph_new("bg", &bg_ops, NULL);
    kg_graph_add(bg, kg_node_new("leaf", &leaf_ops, NULL));
    json_t *params = json_pack("{s:s}", "base", "x");
    kg_node_set_params(bg, params);
    json_decref(params);
    json_t *shared = json_pack("{s:[]}", "seen");
    assert_int_equal(kg_run(bg, shared, NULL), 0);
    char *s = json_dumps(json_object_get(shared, "seen"), JSON_COMPACT);
    assert_string_equal(s, "[\"a\",\"x\",\"b\",\"x\",\"c\",\"x\"]");
    free(s);
    json_decref(shared);
    kg_node_free(bg);
}

/* ---- metrics and observer --------------------------------------------------------------- */

static void test_metrics_count_and_time(void **state)
{
    flaky f = {.fail_times = 0};
    kg_node_t *n = kg_node_new("n", &flaky_ops, &f);
    for (int i = 0; i < 5; i++)
        kg_run(n, NULL, NULL);
    kg_node_metrics m;
    kg_node_metrics_get(n, &m);
    assert_int_equal(m.executions, 5);
    assert_int_equal(m.successes, 5);
    assert_int_equal(m.errors, 0);
    assert_true(m.min_time > 0 && m.min_time <= m.avg_time && m.avg_time <= m.max_time);
    kg_node_metrics_reset(n);
    kg_node_metrics_get(n, &m);
    assert_int_equal(m.executions, 0);
    kg_node_free(n);
}

static char obs_log[4096];

static void log_point(void *ud, const kg_obs_event *ev)
{
    char line[128];
    /* "!" marks an event without the engine's clock reading. */
    snprintf(line, sizeof line, "%s%s:%s%s", obs_log[0] ? " " : "", ev->node_id,
             kg_obs_point_name(ev->point), ev->time_ns ? "" : "!");
    strncat(obs_log, line, sizeof obs_log - strlen(obs_log) - 1);
}

static void test_observer_sees_points_in_order(void **state)
{
    flaky f = {.fail_times = 1};
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *n = kg_graph_add(g, kg_node_new("n", &flaky_fb_ops, &f));
    kg_node_set_retries(n, 2, 0);
    kg_observer obs = {.on_event = log_point};
    obs_log[0] = '\0';
    kg_node_set_observer(g, &obs);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_string_equal(obs_log,
                        "g:run_start n:node_start n:before_prep n:after_prep n:before_exec "
                        "n:retry n:after_exec n:after_post g:run_end");
    json_t *topo = kg_graph_topology(g);
    assert_string_equal(json_string_value(json_object_get(topo, "start")), "n");
    kg_node_free(g);
}

static void log_pair(void *ud, const kg_obs_event *ev, kg_obs_point then)
{
    log_point(ud, ev);
    char line[128];
    snprintf(line, sizeof line, "+%s", kg_obs_point_name(then));
    strncat(obs_log, line, sizeof obs_log - strlen(obs_log) - 1);
}

/* An observer that takes pairs gets the points that follow each other
 * with nothing between them in one call, and the others as before; every
 * event carries the engine's clock reading. */
static void test_observer_pairs_and_times(void **state)
{
    flaky f = {.fail_times = 1};
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *n = kg_graph_add(g, kg_node_new("n", &flaky_fb_ops, &f));
    kg_node_set_retries(n, 2, 0);
    kg_observer obs = {.on_event = log_point, .on_pair = log_pair};
    obs_log[0] = '\0';
    kg_node_set_observer(g, &obs);
    assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_string_equal(obs_log,
                        "g:run_start n:node_start+before_prep n:after_prep+before_exec "
                        "n:retry n:after_exec n:after_post g:run_end");
    kg_node_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_by_action_and_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_action_ends_with_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwriting_successor_warns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_rejects_duplicate_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_until_success_with_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhausted_retries_fail_with_error_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_recovers_and_sees_last_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_fallback_fails_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_error_suppresses_and_follows_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsuppressed_error_stops_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_nesting_and_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_node_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_item_failure_fails_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_batch_runs_concurrently_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_graph_runs_once_per_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_count_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_sees_points_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_pairs_and_times, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
