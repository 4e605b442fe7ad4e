/* test_engine_concurrency.c - one graph object run from many threads at once
 * (per-run state must be per run), with a parallel batch node inside; and a
 * nested graph whose node paths are first built by racing threads while a
 * monitor holds references to them.  Runs under ThreadSanitizer in
 * scripts/test. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"

#define THREADS 8
#define RUNS 300

static int items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "items"));
    return 0;
}

static int double_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    /* Fail every first attempt of odd items: retries must stay per item. */
    if ((json_integer_value(in) & 1) && kg_ctx_attempt(ctx) == 0)
        return kg_ctx_fail(ctx, "Transient", "odd");
    *out = json_integer(json_integer_value(in) * 2);
    return 0;
}

static int sum_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **a)
{
    json_int_t sum = 0;
    size_t i;
    json_t *v;
    json_array_foreach(e, i, v) sum += json_integer_value(v);
    json_object_set_new(shared, "sum", json_integer(sum));
    *a = "check";
    return 0;
}

static int check_post(kg_ctx_t *ctx, json_t *shared, json_t *p, json_t *e, const char **a)
{
    json_object_set_new(shared, "checked", json_true());
    return 0;
}

static const kg_node_ops par_ops = {.prep = items_prep, .exec = double_exec, .post = sum_post};
static const kg_node_ops check_ops = {.post = check_post};

static void *runner(void *arg)
{
    kg_node_t *g = arg;
    long failures = 0;
    for (int r = 0; r < RUNS; r++) {
        json_t *shared = json_pack("{s:[i,i,i,i,i,i]}", "items", r, r + 1, r + 2, r + 3, r + 4, r + 5);
        kg_result_t res;
        if (kg_run(g, shared, &res) != 0 ||
            json_integer_value(json_object_get(shared, "sum")) != 2 * (6 * r + 15) ||
            !json_is_true(json_object_get(shared, "checked")))
            failures++;
        json_decref(shared);
    }
    return (void *)failures;
}

static void test_one_graph_many_threads(void **state)
{
    kg_node_t *g = kg_graph_new("g", NULL, NULL);
    kg_node_t *par = kg_graph_add(g, kg_parallel_batch_node_new("par", &par_ops, NULL, 3));
    kg_node_t *chk = kg_graph_add(g, kg_node_new("check", &check_ops, NULL));
    kg_node_set_retries(par, 2, 0);
    kg_node_connect(par, "check", chk);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, runner, g);
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *f;
        pthread_join(t[i], &f);
        failures += (long)f;
    }
    assert_int_equal(failures, 0);
    kg_node_metrics m;
    kg_node_metrics_get(par, &m);
    assert_int_equal(m.executions, THREADS * RUNS);
    assert_int_equal(m.successes, THREADS * RUNS);
    assert_int_equal(m.retries, THREADS * RUNS * 3);   /* three odd items per run */
    kg_node_free(g);
}

/* ---- nested: paths built and referenced concurrently -------------------------- */

typedef struct path_check {
    const kg_observer *next;   /* the monitor's observer */
    atomic_long events, wrong;
} path_check;

/* The path must be the node's own, from the outer graph down. */
static void check_path(void *ud, const kg_obs_event *ev)
{
    path_check *pc = ud;
    const char *want = kg_node_path(ev->node);
    atomic_fetch_add(&pc->events, 1);
    if (!ev->node_path || !want || strcmp(ev->node_path, want) != 0)
        atomic_fetch_add(&pc->wrong, 1);
    pc->next->on_event(pc->next->ud, ev);
}

static void test_nested_paths_from_many_threads(void **state)
{
    kg_node_t *g = kg_graph_new("outer", NULL, NULL);
    kg_node_t *inner = kg_graph_add(g, kg_graph_new("inner", NULL, NULL));
    kg_node_t *par = kg_graph_add(inner, kg_parallel_batch_node_new("par", &par_ops, NULL, 3));
    kg_node_t *chk = kg_graph_add(inner, kg_node_new("check", &check_ops, NULL));
    kg_node_set_retries(par, 2, 0);
    kg_node_connect(par, "check", chk);
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    kg_backend_t *mock = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    cfg.backend = mock;
    cfg.buffer_size = 1 << 20;
    cfg.metrics_interval = 0;
    kg_monitor_t *mon;
    assert_int_equal(kg_monitor_new(&cfg, &mon, NULL), 0);
    path_check pc = {.next = kg_monitor_observer(mon)};
    kg_node_set_observer(g, &(kg_observer){.on_event = check_path, .ud = &pc});
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, runner, g);
    long failures = 0;
    for (int i = 0; i < THREADS; i++) {
        void *f;
        pthread_join(t[i], &f);
        failures += (long)f;
    }
    assert_int_equal(failures, 0);
    assert_int_equal(atomic_load(&pc.wrong), 0);
    kg_node_free(g);   /* before delivery: queued events keep their paths */
    assert_int_equal(kg_monitor_flush(mon, 60), 0);
    kg_monitor_stats s;
    kg_monitor_stats_get(mon, &s);
    assert_int_equal(s.sent, (uint64_t)atomic_load(&pc.events) + THREADS * RUNS * 3);
    assert_int_equal(kg_monitor_free(mon), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_one_graph_many_threads),
                                       cmocka_unit_test(test_nested_paths_from_many_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
