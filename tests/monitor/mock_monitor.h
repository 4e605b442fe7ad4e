/* mock_monitor.h - the monitor tests' fixture: a monitor on the mock backend
 * (events kept as JSON), started with the test's configuration, and its
 * events read back once everything queued has been delivered.  Include after
 * testutil.h (it asserts with cmocka). */
#ifndef KG_TEST_MOCK_MONITOR_H
#define KG_TEST_MOCK_MONITOR_H

#include "kaygraph/kaygraph.h"

typedef struct fixture {
    kg_monitor_t *mon;
    kg_backend_t *mock;   /* borrowed: the monitor owns it */
} fixture;

/* Start a monitor with `cfg` (its backend and metrics_interval are set
 * here: the mock, no dispatcher metrics). */
static inline void fixture_start(fixture *f, kg_monitor_config *cfg)
{
    f->mock = kg_mock_backend_new(&(kg_mock_options){.max_events = 200000, .keep_json = true}, NULL);
    cfg->backend = f->mock;
    cfg->metrics_interval = 0;
    kg_error_t err;
    assert_int_equal(kg_monitor_new(cfg, &f->mon, &err), 0);
}

/* Every event delivered so far (a new reference), after a flush. */
static inline json_t *fixture_events(fixture *f)
{
    assert_int_equal(kg_monitor_flush(f->mon, 10), 0);
    return kg_mock_backend_events(f->mock, 0);
}

#endif
