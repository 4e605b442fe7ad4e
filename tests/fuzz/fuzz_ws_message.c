/* fuzz_ws_message.c - libFuzzer target: messages a browser sends on /ws.
 *
 * Each input is one client message, handed to the same function the
 * server's LWS_CALLBACK_RECEIVE uses (split in two fragments when long, to
 * cover reassembly); the replies it queues are then framed as the writable
 * callback would.  The hub holds a few runs so get_workflow_events finds
 * something. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kg__hub *g_hub;
static kg__wsclient g_client;

static void seed(void)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.client_queue = 64;
    g_hub = calloc(1, sizeof *g_hub);
    if (!g_hub || kg__hub_init(g_hub, &o) != 0)
        abort();
    for (int i = 0; i < 20; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"event_id\":\"e%d\",\"timestamp\":\"2026-11-27T17:36:13.1Z\",\"node_id\":\"n%d\","
                 "\"node_type\":\"T\",\"event_type\":\"lifecycle\",\"event_name\":\"node_started\","
                 "\"data\":{},\"correlation_id\":\"c\",\"workflow_id\":\"w%d\",\"seq\":%d}",
                 i, i % 3, i % 4, i);
        kg__ingest_event_text(g_hub, ev, strlen(ev), NULL);
    }
    if (kg__ws_client_start(g_hub, &g_client) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_hub)
        seed();
    /* Half the inputs run as if a Redis history were configured, so unknown
     * runs go through the fetch hand-off and kg__ws_client_history. */
    g_hub->history = size > 0 && (data[size - 1] & 2);
    if (size > 8 && data[0] & 1) {
        size_t half = size / 2;
        if (kg__ws_client_rx(g_hub, &g_client, data, half, false) == 0)
            kg__ws_client_rx(g_hub, &g_client, data + half, size - half, true);
    } else {
        kg__ws_client_rx(g_hub, &g_client, data, size, true);
    }
    if (g_client.fetch_wanted) {
        g_client.fetch_wanted = false;
        static int turn;
        json_t *evs = NULL;
        if (++turn % 2) {
            /* What Redis would return: the input itself when it is an array. */
            evs = json_loadb((const char *)data, size, 0, NULL);
            if (!json_is_array(evs)) {
                json_decref(evs);
                evs = json_pack("[{s:s,s:s,s:{s:s}}]", "event_name", "workflow_completed",
                                "event_type", "lifecycle", "data", "status", "success");
            }
        }
        kg__ws_client_history(&g_client, g_client.fetch_id, evs, evs ? NULL : "fuzz: not found");
        json_decref(evs);
    }
    kg__sb out;
    kg__sb_init(&out);
    while (kg__ws_client_pending(g_hub, &g_client)) {
        kg__sb_reset(&out);
        kg__ws_client_fill(g_hub, &g_client, &out, kg__mono_now());
    }
    kg__sb_free(&out);
    return 0;
}
