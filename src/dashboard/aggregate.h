/* dashboard/aggregate.h - the aggregated state: a self-contained model of what the
 * dashboard knows (aggregate.c).  Not thread-safe (the hub locks it); time is
 * passed in, so tests drive it without clocks.  It depends on event.h and
 * src/util only; the JSON and Prometheus renderings sit above it. */
#ifndef KG_DASH_AGGREGATE_H
#define KG_DASH_AGGREGATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "body.h"
#include "event.h"
#include "kaygraph/monitor.h"
#include "util/buf.h"
#include "util/text.h"

typedef struct kg__agg kg__agg;

typedef struct kg__agg_limits {
    size_t recent_events, max_runs, max_run_events, max_nodes, max_store_bytes;
    size_t max_edges, max_topologies;
    double stale_after;
} kg__agg_limits;

kg__agg *kg__agg_new(const kg__agg_limits *lim, double now);
void kg__agg_free(kg__agg *a);

/* Add one validated event with its text `msg` (a reference is taken).
 * 0, KG_EEXISTS for a duplicate event_id (nothing changed), KG_ENOMEM. */
int kg__agg_add(kg__agg *a, const kg__event *ev, kg_text *msg, double now);

/* Periodic work: stale runs and nodes. */
void kg__agg_tick(kg__agg *a, double now);

void kg__agg_note_rejected(kg__agg *a, uint64_t n);
void kg__agg_note_ws(kg__agg *a, uint64_t sent, uint64_t dropped);
void kg__agg_set_clients(kg__agg *a, unsigned clients);

/* A run summary (like /api/workflows' entries, with "graph") computed from
 * its events (borrowed array): status from workflow_completed, or
 * "unknown"; "source":"redis".  New reference, NULL on oom. */
json_t *kg__run_summary_of_events(const char *workflow_id, json_t *events);

/* Snapshots (new references / appended text). */
json_t *kg__agg_metrics(kg__agg *a, double now);
json_t *kg__agg_network_graph(kg__agg *a);
json_t *kg__agg_active_nodes(kg__agg *a);
json_t *kg__agg_active_workflows(kg__agg *a);
json_t *kg__agg_runs(kg__agg *a, size_t max);   /* summaries, oldest first */
/* The last `limit` events as a JSON array text, oldest first. */
void kg__agg_recent_json(kg__agg *a, size_t limit, kg_buf *sb);
/* The same as references appended to `b` (comma-separated, no brackets). */
void kg__agg_recent_refs(kg__agg *a, size_t limit, kg__body *b);
int kg__agg_run_events_refs(kg__agg *a, const char *workflow_id, kg__body *b, json_t **summary);
/* One run's events as a JSON array text; KG_ENOTFOUND when unknown.  The
 * run's summary (status, graph, truncated) as a new object in *summary. */
int kg__agg_run_events_json(kg__agg *a, const char *workflow_id, kg_buf *sb, json_t **summary);
/* {"type":"initial","data":{...}}: the last 100 events, each producer's in
 * seq order, an event over 64 KiB as a brief ("data":{"truncated":true,
 * "original_size":N}), so the message stays under ~7 MiB. */
void kg__agg_initial_json(kg__agg *a, double now, kg_buf *sb);

typedef struct kg__agg_counts {
    uint64_t total, rejected, duplicates, errors;
    uint64_t by_type[KG_EVENT_TYPE_COUNT];
    size_t runs, nodes, store_bytes, recent;
    uint64_t ws_dropped;
    unsigned clients;
    size_t active_runs;
    uint64_t runs_success, runs_failed, runs_stale;
    double producer_dropped;   /* the sum of what producers report dropped */
    double started;            /* when the aggregation began (the `now` scale) */
} kg__agg_counts;
void kg__agg_counts_get(kg__agg *a, kg__agg_counts *out);

/* One node's figures as the renderings show them, copied out of the model
 * so that they can be written without the hub's lock. */
typedef struct kg__node_view {
    char *key;                 /* node_path, or node_id for producers without */
    uint64_t started, failed, retries;
    bool running;              /* running or retrying */
    double p95;                /* seconds; NaN before any observation */
    double time_sum;           /* seconds over time_n executions */
    uint64_t time_n;
} kg__node_view;

/* Every node, least recently active first: a new array of *n views (free
 * with kg__agg_nodes_free), NULL with *n = 0 when there is none or memory
 * ran out. */
kg__node_view *kg__agg_nodes(kg__agg *a, size_t *n);
void kg__agg_nodes_free(kg__node_view *v, size_t n);

#endif
