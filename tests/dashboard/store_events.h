/* store_events.h - synthetic workflow runs for the run-history tests.
 *
 * A run is what the monitor emits for a linear graph of `nodes` nodes:
 * workflow_started (with its topology), then per node node_started,
 * node_executing, (retry_attempted x retries on node `retry_node`),
 * node_completed -- or node_failed on the failing node, which ends the run --
 * and workflow_completed with success or failed.  Event ids are
 * "<run_id>-<k>", timestamps start at start_ms and advance 10 ms per event,
 * seq follows the order.  The text is docs/events.md's schema. */
#ifndef KG_TEST_STORE_EVENTS_H
#define KG_TEST_STORE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kg_trun {
    const char *run_id;
    const char *graph;        /* "pipeline" when NULL */
    int nodes;                /* 3 when 0 */
    int64_t start_ms;
    bool fail;                /* the last node fails */
    bool running;             /* no workflow_completed (a run still going) */
    int retries;              /* retry_attempted events on the first node */
    const char *parent;       /* parent_workflow_id (a nested run), or NULL */
    const char *node_path;    /* prefix for node_path ("pipeline": pipeline/n0...), or NULL */
} kg_trun;

/* The run's events as JSON texts (malloc'd array of malloc'd strings);
 * *n gets the count. */
char **kg_trun_events(const kg_trun *r, size_t *n);
void kg_tevents_free(char **ev, size_t n);
/* {"events":[ev[0], ...]} of ev[from, from + n) (malloc'd). */
char *kg_tbatch(char *const *ev, size_t from, size_t n);
/* ISO 8601 UTC of epoch ms. */
void kg_tiso(int64_t ms, char out[40]);
/* Wall clock now, epoch ms. */
int64_t kg_tnow_ms(void);

#endif
