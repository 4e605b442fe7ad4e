/* dashboard/prometheus.c - GET /metrics in the Prometheus text exposition format (0.0.4).
 *
 * The families come from the aggregate (aggregate.c walks its nodes) plus
 * the server's own counters here.  Node ids are user data, so every label
 * value is escaped (backslash, double quote, newline) as the format asks. */
#include "dash_internal.h"

void kg__prom_label(kg__sb *sb, const char *v)
{
    kg__sb_add(sb, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            kg__sb_add(sb, "\\\\", 2);
        else if (*p == '"')
            kg__sb_add(sb, "\\\"", 2);
        else if (*p == '\n')
            kg__sb_add(sb, "\\n", 2);
        else
            kg__sb_add(sb, p, 1);
    }
    kg__sb_add(sb, "\"", 1);
}

void kg__prom_render(kg__hub *h, double now, kg__sb *sb)
{
    pthread_mutex_lock(&h->lock);
    kg__agg_prometheus(h->agg, now, sb);
    uint64_t ring = h->head - h->tail;
    size_t ring_bytes = h->ring_bytes;
    kg__agg_counts c;
    kg__agg_counts_get(h->agg, &c);
    pthread_mutex_unlock(&h->lock);
    kg__sb_printf(sb,
                  "# HELP kaygraph_dashboard_broadcast_messages Messages held for WebSocket clients.\n"
                  "# TYPE kaygraph_dashboard_broadcast_messages gauge\n"
                  "kaygraph_dashboard_broadcast_messages %llu\n"
                  "# HELP kaygraph_dashboard_broadcast_bytes Bytes held for WebSocket clients.\n"
                  "# TYPE kaygraph_dashboard_broadcast_bytes gauge\n"
                  "kaygraph_dashboard_broadcast_bytes %zu\n"
                  "# HELP kaygraph_dashboard_store_bytes Event text kept for runs and recent events.\n"
                  "# TYPE kaygraph_dashboard_store_bytes gauge\n"
                  "kaygraph_dashboard_store_bytes %zu\n"
                  "# HELP kaygraph_dashboard_runs Runs kept in memory.\n"
                  "# TYPE kaygraph_dashboard_runs gauge\n"
                  "kaygraph_dashboard_runs %zu\n",
                  (unsigned long long)ring, ring_bytes, c.store_bytes, c.runs);
}
