/* demo_workflow.h - the seed's example workflow, written against the public
 * API exactly as a user would write their own:
 *
 *   data_source -> validator -process-> processor -> aggregator -> storage -stored-> reporter
 *                      \-no_valid_data-> error_handler <-error-/
 *
 * data_source generates `batch_size` records (about 8% invalid); processor
 * fails transiently (retries absorb it) and now and then for good (its
 * fallback passes records through unprocessed); storage fails now and then
 * and routes to error_handler.  Everything random derives from the seed and
 * the iteration number, so a run is reproducible with the same --seed.
 * With `parallel`, processor is a parallel batch node over chunks. */
#ifndef KGMON_DEMO_WORKFLOW_H
#define KGMON_DEMO_WORKFLOW_H

#include <kaygraph/kaygraph.h>

/* The example graphs of `kgmon demo --graph` (demo_graphs.c for the others):
 *   pipeline  the seed's example above (the default)
 *   nested    orders: intake -> ingest{fetch -> validator}
 *             -> enrich{lookup -> scoring{features -> model -> validator}}
 *             -> per_region (a batch graph: aggregate -> store per region) -> report;
 *             two sub-graph levels, "validator" in two sub-graphs
 *   wide      fanout: 124 nodes; dispatch fans out to 12 lanes of 5 steps that
 *             fan in to collect, then route fans out to 12 shards of 5 steps
 *             that fan in to finalize */
typedef enum demo_graph { DEMO_GRAPH_PIPELINE, DEMO_GRAPH_NESTED, DEMO_GRAPH_WIDE } demo_graph;

typedef struct demo_options {
    unsigned batch_size;      /* records per iteration */
    bool parallel;            /* processor as a parallel batch node */
    unsigned workers;         /* its max_workers */
    double node_delay;        /* seconds of simulated work per node (0 = none) */
    uint64_t seed;
    demo_graph graph;
} demo_options;

/* A new pipeline graph (owned by the caller, kg_node_free it).  `opts` is
 * copied. */
kg_node_t *demo_workflow_new(const demo_options *opts);

/* The graph `opts->graph`, as demo_workflow_new.  NULL when out of memory. */
kg_node_t *demo_graph_new(const demo_options *opts);
const char *demo_graph_name(demo_graph graph);   /* "pipeline", "nested", "wide" */

/* The shared store for one iteration (new reference). */
json_t *demo_shared_new(uint64_t seed, unsigned iteration);

/* ---- What the example graphs' nodes share (demo_workflow.c) ---------------- */

/* Deterministic pseudo-randomness: a 64-bit mix (splitmix64's finaliser) and
 * a number in [0, 1) from (a, b, c) -- the seed, the iteration, a salt. */
uint64_t demo_mix(uint64_t x);
double demo_chance(uint64_t a, uint64_t b, uint64_t c);
/* The options a demo node was made with (its kg_ctx_data; borrowed). */
const demo_options *demo_opts(kg_ctx_t *ctx);
/* An integer member of `o` (0 when absent or not an integer). */
uint64_t demo_u64(json_t *o, const char *key);
/* Simulated work: sleep `fraction` of the node delay. */
void demo_simulate_work(const demo_options *o, double fraction);

#endif
