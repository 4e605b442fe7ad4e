/* benchmarks.h - the engine and monitoring benchmarks behind `kgmon bench`
 * and bench/kg_bench.  Each returns a new JSON object with its figures. */
#ifndef KG_BENCHMARKS_H
#define KG_BENCHMARKS_H

#include <jansson.h>
#include <stdbool.h>

typedef struct bench_options {
    double seconds;     /* rough time budget per measurement */
    bool quick;         /* tiny run (for tests): figures are not meaningful */
} bench_options;

/* ns of pure engine overhead per node execution, 5-node linear graph,
 * nodes that busy-wait W = 0, 1, 10, 100 µs. */
json_t *bench_engine(const bench_options *o);

/* Producer cost per event (median ns, the observer callback alone), and
 * the same workflow monitored vs unmonitored at W = 0, 1, 10, 50 µs: the
 * workflow thread's CPU overhead (percent, per node execution, per event)
 * and the whole process's CPU per event, all threads. */
json_t *bench_monitor_overhead(const bench_options *o);

/* End-to-end events/s into the mock backend with zero loss. */
json_t *bench_throughput(const bench_options *o);

/* RSS growth with a failing backend offered far more events than fit. */
json_t *bench_memory(const bench_options *o);

/* ns per call of what a node reports about itself (kg_ctx_log,
 * kg_ctx_metric, kg_ctx_progress) with no monitor, filtered out by the
 * monitor (minimum log level, capture list) and captured; and a trivial
 * library call as the yardstick (bench_reports.c). */
json_t *bench_reports(const bench_options *o);

#endif
