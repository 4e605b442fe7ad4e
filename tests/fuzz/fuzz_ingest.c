/* fuzz_ingest.c - libFuzzer target: POST /api/ingest bodies.
 *
 * Feeds arbitrary bytes to the ingest parser (bare event or webhook batch),
 * which validates, aggregates and broadcasts what it accepts.  One hub lives
 * for the whole run with small limits, so eviction, duplicate detection and
 * out-of-order insertion are exercised too; every 64 inputs the snapshots
 * (metrics, initial, Prometheus) are rendered from the accumulated state. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ingest.h"
#include "prometheus.h"
#include "util/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kg__hub *g_hub;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_hub) {
        kg_dashboard_options o;
        kg_dashboard_options_init(&o);
        o.max_body = 1 << 16;
        o.recent_events = 64;
        o.max_runs = 8;
        o.max_run_events = 32;
        o.max_nodes = 16;
        o.max_store_bytes = 1 << 18;
        o.broadcast_bytes = 1 << 18;
        o.client_queue = 64;
        g_hub = calloc(1, sizeof *g_hub);
        if (!g_hub || kg__hub_init(g_hub, &o) != 0)
            abort();
    }
    kg__ingest_result res;
    kg__ingest_body(g_hub, (const char *)data, size, &res, NULL);
    static unsigned n;
    if (++n % 64 == 0) {
        kg_buf sb;
        kg_buf_init(&sb);
        pthread_mutex_lock(&g_hub->lock);
        kg__agg_tick(g_hub->agg, kg_clock_mono() + 1e6);
        kg__agg_initial_json(g_hub->agg, kg_clock_mono(), &sb);
        kg__prom_render_agg(g_hub->agg, kg_clock_mono(), &sb);
        pthread_mutex_unlock(&g_hub->lock);
        kg_buf_free(&sb);
    }
    return 0;
}
