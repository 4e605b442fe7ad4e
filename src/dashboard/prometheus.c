/* dashboard/prometheus.c - GET /metrics in the Prometheus text exposition
 * format (0.0.4).
 *
 * A rendering of the model, like the JSON views: the aggregation's counts
 * and a copy of its per-node figures are taken under the hub's lock, and
 * the text is written after the lock is released.  Node keys are user data,
 * so every label value is escaped (backslash, double quote, newline) as the
 * format asks. */
#include <math.h>

#include "event.h"
#include "prometheus.h"

void kg__prom_label(kg_buf *sb, const char *v)
{
    kg_buf_append(sb, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            kg_buf_append(sb, "\\\\", 2);
        else if (*p == '"')
            kg_buf_append(sb, "\\\"", 2);
        else if (*p == '\n')
            kg_buf_append(sb, "\\n", 2);
        else
            kg_buf_append(sb, p, 1);
    }
    kg_buf_append(sb, "\"", 1);
}

static void prom_events(kg_buf *sb, const kg__agg_counts *c)
{
    kg_buf_puts(sb, "# HELP kaygraph_dashboard_events_total Events accepted, by event type.\n"
                    "# TYPE kaygraph_dashboard_events_total counter\n");
    for (int i = 0; i < KG_EVENT_TYPE_COUNT; i++)
        kg_buf_printf(sb, "kaygraph_dashboard_events_total{event_type=\"%s\"} %llu\n",
                      kg__event_type_at(i), (unsigned long long)c->by_type[i]);
    kg_buf_printf(sb,
                  "# HELP kaygraph_dashboard_events_rejected_total Invalid events refused.\n"
                  "# TYPE kaygraph_dashboard_events_rejected_total counter\n"
                  "kaygraph_dashboard_events_rejected_total %llu\n"
                  "# HELP kaygraph_dashboard_events_duplicate_total Events seen twice (same event_id).\n"
                  "# TYPE kaygraph_dashboard_events_duplicate_total counter\n"
                  "kaygraph_dashboard_events_duplicate_total %llu\n"
                  "# HELP kaygraph_dashboard_ws_messages_dropped_total Messages dropped for slow WebSocket clients.\n"
                  "# TYPE kaygraph_dashboard_ws_messages_dropped_total counter\n"
                  "kaygraph_dashboard_ws_messages_dropped_total %llu\n"
                  "# HELP kaygraph_dashboard_ws_clients WebSocket clients connected.\n"
                  "# TYPE kaygraph_dashboard_ws_clients gauge\n"
                  "kaygraph_dashboard_ws_clients %u\n"
                  "# HELP kaygraph_dashboard_workflows_active Runs in progress.\n"
                  "# TYPE kaygraph_dashboard_workflows_active gauge\n"
                  "kaygraph_dashboard_workflows_active %zu\n",
                  (unsigned long long)c->rejected, (unsigned long long)c->duplicates,
                  (unsigned long long)c->ws_dropped, c->clients, c->active_runs);
    kg_buf_printf(sb,
                  "# HELP kaygraph_dashboard_workflows_total Runs finished, by status.\n"
                  "# TYPE kaygraph_dashboard_workflows_total counter\n"
                  "kaygraph_dashboard_workflows_total{status=\"success\"} %llu\n"
                  "kaygraph_dashboard_workflows_total{status=\"failed\"} %llu\n"
                  "kaygraph_dashboard_workflows_total{status=\"stale\"} %llu\n"
                  "# HELP kaygraph_dashboard_producer_events_dropped Events producers report dropped.\n"
                  "# TYPE kaygraph_dashboard_producer_events_dropped gauge\n"
                  "kaygraph_dashboard_producer_events_dropped %.0f\n",
                  (unsigned long long)c->runs_success, (unsigned long long)c->runs_failed,
                  (unsigned long long)c->runs_stale, c->producer_dropped);
}

/* `name{node="key"`: the caller writes the rest of the labels and value. */
static void prom_node_series(kg_buf *sb, const char *name, const char *suffix,
                             const kg__node_view *n)
{
    kg_buf_printf(sb, "%s%s{node=", name, suffix);
    kg__prom_label(sb, n->key);
}

static void prom_nodes(kg_buf *sb, const kg__node_view *v, size_t n)
{
    static const char *const fam[][3] = {
        {"kaygraph_dashboard_node_executions_total", "counter", "Node executions started."},
        {"kaygraph_dashboard_node_failures_total", "counter", "Node executions failed."},
        {"kaygraph_dashboard_node_retries_total", "counter", "Retry attempts."},
        {"kaygraph_dashboard_node_running", "gauge", "1 when the node is running or retrying."},
        {"kaygraph_dashboard_node_duration_seconds", "summary",
         "Node execution time (p95 over the last 256 executions)."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        kg_buf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", fam[f][0], fam[f][2], fam[f][0],
                      fam[f][1]);
        for (size_t i = 0; i < n; i++) {
            if (f < 4) {
                uint64_t val = f == 0 ? v[i].started : f == 1 ? v[i].failed
                             : f == 2 ? v[i].retries : (uint64_t)v[i].running;
                prom_node_series(sb, fam[f][0], "", &v[i]);
                kg_buf_printf(sb, "} %llu\n", (unsigned long long)val);
                continue;
            }
            /* No observation: NaN, as Prometheus client libraries do (0 would
             * read as "instant"). */
            prom_node_series(sb, fam[f][0], "", &v[i]);
            if (isnan(v[i].p95))
                kg_buf_puts(sb, ",quantile=\"0.95\"} NaN\n");
            else
                kg_buf_printf(sb, ",quantile=\"0.95\"} %.9g\n", v[i].p95);
            prom_node_series(sb, fam[f][0], "_sum", &v[i]);
            kg_buf_printf(sb, "} %.9g\n", v[i].time_sum);
            prom_node_series(sb, fam[f][0], "_count", &v[i]);
            kg_buf_printf(sb, "} %llu\n", (unsigned long long)v[i].time_n);
        }
    }
}

static void prom_uptime(kg_buf *sb, const kg__agg_counts *c, double now)
{
    kg_buf_printf(sb,
                  "# HELP kaygraph_dashboard_uptime_seconds Seconds since the dashboard started.\n"
                  "# TYPE kaygraph_dashboard_uptime_seconds gauge\n"
                  "kaygraph_dashboard_uptime_seconds %.3f\n"
                  "# HELP kaygraph_dashboard_store_bytes Event text kept for runs and recent events.\n"
                  "# TYPE kaygraph_dashboard_store_bytes gauge\n"
                  "kaygraph_dashboard_store_bytes %zu\n"
                  "# HELP kaygraph_dashboard_runs Runs kept in memory.\n"
                  "# TYPE kaygraph_dashboard_runs gauge\n"
                  "kaygraph_dashboard_runs %zu\n",
                  now - c->started, c->store_bytes, c->runs);
}

void kg__prom_render_agg(kg__agg *a, double now, kg_buf *sb)
{
    kg__agg_counts c;
    size_t n;
    kg__agg_counts_get(a, &c);
    kg__node_view *nodes = kg__agg_nodes(a, &n);
    prom_events(sb, &c);
    prom_nodes(sb, nodes, n);
    kg__agg_nodes_free(nodes, n);
    prom_uptime(sb, &c, now);
}

void kg__prom_render(kg__hub *h, double now, kg_buf *sb)
{
    kg__agg_counts c;
    size_t n;
    pthread_mutex_lock(&h->lock);
    kg__agg_counts_get(h->agg, &c);
    kg__node_view *nodes = kg__agg_nodes(h->agg, &n);
    uint64_t ring = h->head - h->tail;
    size_t ring_bytes = h->ring_bytes;
    pthread_mutex_unlock(&h->lock);

    prom_events(sb, &c);
    prom_nodes(sb, nodes, n);
    kg__agg_nodes_free(nodes, n);
    prom_uptime(sb, &c, now);
    kg_buf_printf(sb,
                  "# HELP kaygraph_dashboard_broadcast_messages Messages held for WebSocket clients.\n"
                  "# TYPE kaygraph_dashboard_broadcast_messages gauge\n"
                  "kaygraph_dashboard_broadcast_messages %llu\n"
                  "# HELP kaygraph_dashboard_broadcast_bytes Bytes held for WebSocket clients.\n"
                  "# TYPE kaygraph_dashboard_broadcast_bytes gauge\n"
                  "kaygraph_dashboard_broadcast_bytes %zu\n",
                  (unsigned long long)ring, ring_bytes);
}
