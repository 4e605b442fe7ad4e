/* test_dispatcher.c - delivery guarantees: batching by size and interval,
 * the circuit breaker's open -> half-open -> closed cycle, no loss across a
 * recovered outage, counted drops on overflow, the shutdown flush, a stuck
 * backend that never holds up producers, and exact accounting with 8
 * producer threads x 1M events.  Faults come from the mock backend. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"

/* n node_started events, spread over 16 workflow runs (and so over the
 * dispatcher's partitions). */
static void emit_n(kg_monitor_t *mon, long n)
{
    const kg_observer *o = kg_monitor_observer(mon);
    kg_obs_event ev = {.point = KG_OBS_NODE_START, .node_id = "n", .node_type = "T",
                       .exec_id = 2, .item = -1};
    for (long i = 0; i < n; i++) {
        ev.run_id = ev.root_run_id = 1 + (uint64_t)(i % 16);
        o->on_event(o->ud, &ev);
    }
}

static kg_monitor_t *monitor_new(kg_monitor_config *cfg, kg_backend_t **mock_out)
{
    kg_backend_t *mock = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    if (mock_out)
        *mock_out = mock;
    if (!cfg->backend)
        cfg->backend = mock;
    else
        kg_backend_free(mock);
    cfg->metrics_interval = 0;
    kg_monitor_t *mon = NULL;
    kg_error_t err;
    if (kg_monitor_new(cfg, &mon, &err) != 0)
        fail_msg("kg_monitor_new: %s", err.message);
    return mon;
}

static uint64_t mock_events(kg_backend_t *mock)
{
    kg_mock_stats s;
    kg_mock_backend_stats(mock, &s);
    return s.events;
}

static uint64_t mock_batches(kg_backend_t *mock)
{
    kg_mock_stats s;
    kg_mock_backend_stats(mock, &s);
    return s.batches;
}

static uint64_t mock_failed(kg_backend_t *mock)
{
    kg_mock_stats s;
    kg_mock_backend_stats(mock, &s);
    return s.failed_batches;
}

static kg_monitor_stats stats(kg_monitor_t *mon)
{
    kg_monitor_stats s;
    kg_monitor_stats_get(mon, &s);
    return s;
}

static void test_batches_by_size(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.batch_size = 10;
    cfg.flush_interval = 60;
    cfg.async_workers = 1;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    emit_n(mon, 35);
    assert_true(KG_WAIT_UNTIL(mock_events(mock) == 30, 5));
    assert_int_equal(mock_batches(mock), 3);
    kg_monitor_stats s = stats(mon);
    assert_int_equal(s.queue_size + s.batch_buffer, 5);
    assert_int_equal(kg_monitor_flush(mon, 5), 0);
    assert_int_equal(mock_events(mock), 35);
    assert_int_equal(mock_batches(mock), 4);
    kg_monitor_free(mon);
}

static void test_batches_by_interval(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.batch_size = 1000;
    cfg.flush_interval = 0.05;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    emit_n(mon, 7);
    assert_true(KG_WAIT_UNTIL(mock_events(mock) == 7, 5));
    assert_true(mock_batches(mock) >= 1 && mock_batches(mock) <= 4);
    kg_monitor_free(mon);
}

static void test_breaker_opens_probes_and_closes(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.batch_size = 10;
    cfg.flush_interval = 0.01;
    cfg.async_workers = 1;
    cfg.circuit_breaker_threshold = 3;
    cfg.circuit_breaker_reset = 0.3;
    cfg.retry_backoff_max = 0.01;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    kg_mock_backend_fail(mock, -1);
    emit_n(mon, 10);
    assert_true(KG_WAIT_UNTIL(stats(mon).circuit == KG_CIRCUIT_OPEN, 5));
    double opened = kg_test_now();
    uint64_t failed_at_open = mock_failed(mock);
    assert_int_equal(failed_at_open, 3);
    /* While open nobody calls the backend; the one probe comes after the
     * reset interval and, failing, re-opens the breaker. */
    assert_true(KG_WAIT_UNTIL(mock_failed(mock) == failed_at_open + 1, 5));
    assert_true(kg_test_now() - opened >= 0.25);
    assert_true(KG_WAIT_UNTIL(stats(mon).circuit_opens == 2, 5));
    assert_int_equal(mock_events(mock), 0);
    kg_mock_backend_fail(mock, 0);
    assert_true(KG_WAIT_UNTIL(stats(mon).circuit == KG_CIRCUIT_CLOSED, 5));
    assert_true(KG_WAIT_UNTIL(mock_events(mock) == 10, 5));
    kg_monitor_stats s = stats(mon);
    assert_int_equal(s.sent, 10);
    assert_int_equal(s.consecutive_failures, 0);
    assert_int_equal(s.failed_batches, failed_at_open + 1);
    kg_monitor_free(mon);
}

static void test_outage_shorter_than_buffer_loses_nothing(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.buffer_size = 16384;   /* 4 partitions of 4096 */
    cfg.batch_size = 50;
    cfg.flush_interval = 0.01;
    cfg.circuit_breaker_reset = 0.05;
    cfg.retry_backoff_max = 0.02;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    emit_n(mon, 1000);
    kg_mock_backend_fail(mock, -1);   /* outage begins */
    emit_n(mon, 3000);
    assert_true(KG_WAIT_UNTIL(stats(mon).circuit == KG_CIRCUIT_OPEN, 5));
    emit_n(mon, 3000);
    kg_mock_backend_fail(mock, 0);    /* outage ends */
    assert_int_equal(kg_monitor_flush(mon, 10), 0);
    kg_monitor_stats s = stats(mon);
    assert_int_equal(s.emitted, 7000);
    assert_int_equal(s.dropped_full, 0);
    assert_int_equal(s.sent, 7000);
    assert_int_equal(mock_events(mock), 7000);
    kg_monitor_free(mon);
}

static void test_overflow_drops_are_counted(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.buffer_size = 64;
    cfg.batch_size = 16;
    cfg.async_workers = 1;
    cfg.flush_interval = 0.01;
    cfg.retry_backoff_max = 0.01;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    kg_mock_backend_fail(mock, -1);
    emit_n(mon, 1000);
    kg_monitor_stats s = stats(mon);
    assert_int_equal(s.emitted, 1000);
    assert_true(s.enqueued <= 64 + 16);
    assert_int_equal(s.dropped_full, 1000 - s.enqueued);
    kg_mock_backend_fail(mock, 0);
    assert_int_equal(kg_monitor_flush(mon, 10), 0);
    s = stats(mon);
    assert_int_equal(s.sent, s.enqueued);
    assert_int_equal(s.emitted, s.sent + s.dropped_full);
    assert_int_equal(mock_events(mock), s.sent);
    kg_monitor_free(mon);
}

static void test_shutdown_delivers_everything_queued(void **state)
{
    char path[] = "/tmp/kg_shutdown_XXXXXX";
    close(mkstemp(path));
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_file_backend_new(path, NULL);
    cfg.batch_size = 100000;
    cfg.flush_interval = 3600;   /* nothing would go out before shutdown */
    kg_monitor_t *mon = monitor_new(&cfg, NULL);
    emit_n(mon, 5000);
    assert_int_equal(kg_monitor_free(mon), 0);
    FILE *fp = fopen(path, "r");
    int lines = 0, c;
    while ((c = fgetc(fp)) != EOF)
        lines += c == '\n';
    fclose(fp);
    unlink(path);
    assert_int_equal(lines, 5000);
}

static void test_shutdown_with_dead_backend_is_bounded(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.shutdown_timeout = 0.2;
    cfg.retry_backoff_max = 0.05;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    kg_mock_backend_fail(mock, -1);
    emit_n(mon, 100);
    double t0 = kg_test_now();
    assert_int_equal(kg_monitor_free(mon), KG_ETIMEOUT);
    assert_true(kg_test_now() - t0 < 3);
}

static void test_stuck_backend_never_holds_up_producers(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.batch_size = 10;
    cfg.flush_interval = 0.001;
    cfg.shutdown_timeout = 0.1;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    kg_mock_backend_set_delay(mock, 2.0);   /* every send blocks for 2 s */
    emit_n(mon, 1);
    assert_true(KG_WAIT_UNTIL(stats(mon).batch_buffer == 1, 5));   /* a worker is stuck */
    emit_n(mon, 20000);
    /* All 20001 went to the queue or were counted as dropped, while not a
     * single send completed: the producer never waited for the backend. */
    kg_monitor_stats s = stats(mon);
    assert_int_equal(mock_batches(mock), 0);
    assert_int_equal(s.emitted, 20001);
    assert_int_equal(s.enqueued + s.dropped_full, 20001);
    kg_monitor_free(mon);
}

static atomic_bool keep_emitting;

static void *emit_until_told(void *arg)
{
    while (atomic_load(&keep_emitting))
        emit_n(arg, 1000);
    return NULL;
}

/* A delivered events_dropped report with a value > 0. */
static bool drop_reported(kg_backend_t *mock)
{
    json_t *events = kg_mock_backend_events(mock, 0);
    bool found = false;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "event_name")), "events_dropped") == 0 &&
            json_number_value(json_object_get(json_object_get(ev, "data"), "value")) > 0)
            found = true;
    }
    json_decref(events);
    return found;
}

/* While the queue overflows (a slow backend, a producer that never stops),
 * the dispatcher's own events_dropped report still gets out: it does not
 * queue behind the events it reports on. */
static void test_drops_are_reported_during_overflow(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    kg_backend_t *mock = kg_mock_backend_new(&(kg_mock_options){.keep_json = true}, NULL);
    kg_mock_backend_set_delay(mock, 0.01);
    cfg.backend = mock;
    cfg.buffer_size = 64;
    cfg.batch_size = 16;
    cfg.async_workers = 1;
    cfg.flush_interval = 0.001;
    cfg.shutdown_timeout = 0.2;
    cfg.metrics_interval = 0.05;
    kg_monitor_t *mon = NULL;
    assert_int_equal(kg_monitor_new(&cfg, &mon, NULL), 0);
    atomic_store(&keep_emitting, true);
    pthread_t t;
    pthread_create(&t, NULL, emit_until_told, mon);
    bool reported = KG_WAIT_UNTIL(drop_reported(mock), 10);
    kg_monitor_stats s = stats(mon);
    atomic_store(&keep_emitting, false);
    pthread_join(t, NULL);
    assert_true(reported);
    assert_true(s.dropped_full > 0);
    kg_monitor_free(mon);
}

/* kg_monitor_flush returns once every event emitted before it has reached
 * the backend: with batches that only leave when full or flushed, over
 * every partition, many times. */
static void test_flush_is_exact(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 4;
    cfg.batch_size = 7;
    cfg.flush_interval = 60;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    uint64_t total = 0;
    for (int i = 0; i < 300; i++) {
        long n = 1 + i % 23;
        emit_n(mon, n);
        total += (uint64_t)n;
        assert_int_equal(kg_monitor_flush(mon, 10), 0);
        assert_int_equal(mock_events(mock), total);
    }
    kg_monitor_free(mon);
}

static uint64_t mock_count_of(kg_backend_t *mock, const char *name)
{
    json_t *b = kg_mock_backend_breakdown(mock);
    uint64_t n = (uint64_t)json_integer_value(json_object_get(b, name));
    json_decref(b);
    return n;
}

/* The same while worker 0 keeps adding its metric events (they take queue
 * positions but go straight into its batch). */
static void test_flush_is_exact_with_metric_events(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 3;
    cfg.batch_size = 7;
    cfg.flush_interval = 60;
    cfg.metrics_interval = 0.001;
    kg_backend_t *mock = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    cfg.backend = mock;
    kg_monitor_t *mon = NULL;
    assert_int_equal(kg_monitor_new(&cfg, &mon, NULL), 0);
    uint64_t total = 0;
    for (int i = 0; i < 300; i++) {
        long n = 1 + i % 23;
        emit_n(mon, n);
        total += (uint64_t)n;
        assert_int_equal(kg_monitor_flush(mon, 10), 0);
        assert_int_equal(mock_count_of(mock, "node_started"), total);
    }
    assert_true(mock_count_of(mock, "queue_depth") > 0);
    kg_monitor_free(mon);
}

#define STRESS_THREADS 8

static void *stress_producer(void *arg)
{
    kg_monitor_t *mon = arg;
    long n = atol(getenv("KG_STRESS_PER_THREAD") ? getenv("KG_STRESS_PER_THREAD") : "1000000");
    emit_n(mon, n);
    return NULL;
}

static void test_eight_producers_exact_accounting(void **state)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.async_workers = 2;
    cfg.batch_size = 500;
    cfg.flush_interval = 0.01;
    kg_backend_t *mock;
    kg_monitor_t *mon = monitor_new(&cfg, &mock);
    pthread_t t[STRESS_THREADS];
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_create(&t[i], NULL, stress_producer, mon);
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(kg_monitor_flush(mon, 60), 0);
    long per = atol(getenv("KG_STRESS_PER_THREAD") ? getenv("KG_STRESS_PER_THREAD") : "1000000");
    kg_monitor_stats s = stats(mon);
    print_message("emitted %llu sent %llu dropped %llu\n", (unsigned long long)s.emitted,
                  (unsigned long long)s.sent, (unsigned long long)s.dropped_full);
    assert_int_equal(s.emitted, (uint64_t)STRESS_THREADS * (uint64_t)per);
    assert_int_equal(s.emitted, s.sent + s.dropped_full);
    assert_int_equal(mock_events(mock), s.sent);
    assert_int_equal(s.queue_size + s.batch_buffer, 0);
    kg_monitor_free(mon);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_by_size),
        cmocka_unit_test(test_flush_is_exact),
        cmocka_unit_test(test_flush_is_exact_with_metric_events),
        cmocka_unit_test(test_batches_by_interval),
        cmocka_unit_test(test_breaker_opens_probes_and_closes),
        cmocka_unit_test(test_outage_shorter_than_buffer_loses_nothing),
        cmocka_unit_test(test_overflow_drops_are_counted),
        cmocka_unit_test(test_shutdown_delivers_everything_queued),
        cmocka_unit_test(test_shutdown_with_dead_backend_is_bounded),
        cmocka_unit_test(test_stuck_backend_never_holds_up_producers),
        cmocka_unit_test(test_drops_are_reported_during_overflow),
        cmocka_unit_test(test_eight_producers_exact_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
