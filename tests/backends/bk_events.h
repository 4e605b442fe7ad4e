/* bk_events.h - hand-built monitoring events for backend tests.
 *
 * The backends only see kg_event_view arrays, so their tests build those
 * directly, in docs/events.md's schema, without going through a monitor.  Each
 * kg_test_event owns the storage its view points into. */
#ifndef KG_TEST_BK_EVENTS_H
#define KG_TEST_BK_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "kaygraph/backend.h"

typedef struct kg_test_event {
    char json[1024];
    char id[40];
    char type[16];
    char name[32];
    char node[64];
    char wf[64];
    int64_t ts_ms;
    uint64_t seq;
} kg_test_event;

/* Fill `e`; the event type follows from `name` as in docs/events.md.  The event
 * id is unique across processes and calls. */
void kg_test_event_fill(kg_test_event *e, const char *name, const char *node_id,
                        const char *workflow_id, uint64_t seq, int64_t ts_ms);

/* The view of `e` (borrowing e's storage). */
kg_event_view kg_test_event_view(const kg_test_event *e);

/* Views of n events into views[n]; returns the batch over them. */
kg_batch kg_test_batch(const kg_test_event *ev, size_t n, kg_event_view *views);

/* A demo-sized, complete workflow run: workflow_started, then for each of 5
 * nodes node_started, node_preparing, data_input, node_executing,
 * data_output, execution_time, node_completed, then workflow_completed.
 * Timestamps ts0, ts0+1, ...  `out` holds KG_TEST_DEMO_EVENTS. */
#define KG_TEST_DEMO_NODES 5
#define KG_TEST_DEMO_EVENTS (2 + 7 * KG_TEST_DEMO_NODES)
size_t kg_test_demo_run(kg_test_event *out, const char *workflow_id, uint64_t seq0, int64_t ts0);

/* Current Unix epoch in ms. */
int64_t kg_test_epoch_ms(void);

#endif
