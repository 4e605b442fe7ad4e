/* fuzz_ws_message.c - libFuzzer target: what a client sends on /ws.
 *
 * Half the inputs are one client message, handed to the function the
 * server calls for a received message (split in two fragments when long,
 * to cover reassembly); the other half are raw client bytes for the frame
 * parser (wsproto.c), fed in pieces of varying size, whose data goes to
 * the same function - as server_ws.c does.  The replies queued are then
 * framed as the writable callback would, and the reply budget must come
 * back to zero.  The hub holds a few runs so get_workflow_events finds
 * something. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "ws.h"
#include "ingest.h"
#include "wsproto.h"

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

/* Raw client bytes through the frame parser, `step` bytes at a time. */
static void parse_frames(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    memcpy(buf, data, size);
    kg__wsrx rx;
    memset(&rx, 0, sizeof rx);
    size_t step = size ? (size_t)data[0] % 17 + 1 : 1, off = 0;
    bool done = false;
    while (off < size && !done) {
        size_t len = size - off < step ? size - off : step, used = 0;
        while (used < len && !done) {
            kg__wsev ev;
            size_t u = kg__wsrx_parse(&rx, buf + off + used, len - used, &ev);
            used += u;
            if (ev.type == KG__WSEV_DATA &&
                kg__ws_client_rx(g_hub, &g_client, ev.data, ev.len, ev.final) != 0)
                done = true;
            if (ev.type == KG__WSEV_ERROR || ev.type == KG__WSEV_CLOSE)
                done = true;
            if (u == 0)
                break;
        }
        off += len;
    }
    /* A message left half-assembled is dropped with the connection. */
    free(g_client.rx);
    g_client.rx = NULL;
    g_client.rx_len = 0;
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_hub)
        seed();

    /* Half the inputs run as if a Redis history were configured, so unknown
     * runs go through the fetch hand-off and kg__ws_client_history. */
    g_hub->history = size > 0 && (data[size - 1] & 2);
    if (size > 1 && (data[size - 1] & 4)) {
        parse_frames(data, size - 1);
    } else if (size > 8 && data[0] & 1) {
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
        kg__ws_client_history(g_hub, &g_client, g_client.fetch_id, evs, evs ? NULL : "fuzz: not found");
        json_decref(evs);
    }
    kg_buf out;
    kg_buf_init(&out);
    while (kg__ws_client_pending(g_hub, &g_client)) {
        kg_buf_reset(&out);
        kg__ws_client_fill(g_hub, &g_client, &out, kg_clock_mono());
    }
    kg_buf_free(&out);
    if (g_hub->pending != 0)
        abort();   /* every queued byte was written or released */
    return 0;
}
