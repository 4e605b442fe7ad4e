/* dashboard/user_metrics.h - the metrics nodes report about themselves
 * (custom_metric events), kept as Prometheus families for GET /metrics
 * (user_metrics.c; rendered by prometheus.c).
 *
 * A metric named N is the family kaygraph_user_<N'> (N' = N with every byte
 * outside [A-Za-z0-9_] replaced by '_'): a counter sums its increments (and
 * is written <family>_total), a gauge keeps its newest value, a histogram
 * counts observations into KG__USER_BUCKETS fixed buckets.  A series is one
 * (family, graph, node).  The number of series is bounded: an update that
 * would start one more, or whose kind or name clashes with an existing
 * family, is dropped and counted.  Families and series keep their order of
 * first sight.  Not thread-safe: the hub's lock covers it, as the rest of
 * the model. */
#ifndef KG_DASH_USER_METRICS_H
#define KG_DASH_USER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaygraph/node.h"

#define KG__USER_BUCKETS 21
/* Upper bounds of the histogram buckets (+Inf is implicit). */
extern const double kg__user_bucket_bounds[KG__USER_BUCKETS];

typedef struct kg__user_series {
    char *graph, *node;        /* label values */
    double value;              /* counter: the sum; gauge: the newest value; histogram: the sum */
    int64_t ts_ms;             /* gauge: the producer's time of the newest value */
    uint64_t seq;
    uint64_t count;            /* histogram: observations */
    uint64_t buckets[KG__USER_BUCKETS];   /* histogram: observations <= each bound */
} kg__user_series;

typedef struct kg__user_family {
    char *name;                /* kaygraph_user_x (a counter's without its _total) */
    char *help;                /* the metric's own name, and unit, as reported */
    kg_metric_kind kind;
    kg__user_series **series;
    size_t n_series, cap_series;
} kg__user_family;

typedef struct kg__umetrics kg__umetrics;

/* One custom_metric event. */
typedef struct kg__user_update {
    const char *name, *unit;   /* unit may be NULL */
    kg_metric_kind kind;
    double value;
    const char *graph, *node;
    int64_t ts_ms;             /* -1: unknown */
    uint64_t seq;
} kg__user_update;

kg__umetrics *kg__umetrics_new(size_t max_series);
void kg__umetrics_free(kg__umetrics *u);

/* Fold one update in: 0, or KG_EFULL when it was dropped (and counted). */
int kg__umetrics_add(kg__umetrics *u, const kg__user_update *m);

/* A copy to render from without the lock: a new object (free with
 * kg__umetrics_free), NULL on oom. */
kg__umetrics *kg__umetrics_copy(const kg__umetrics *u);

/* What a rendering reads. */
const kg__user_family *const *kg__umetrics_families(const kg__umetrics *u, size_t *n);
size_t kg__umetrics_series(const kg__umetrics *u);    /* series kept */
uint64_t kg__umetrics_dropped(const kg__umetrics *u); /* updates dropped */

#endif
