/* fuzz_http.c - libFuzzer target: the HTTP request path after libwebsockets.
 *
 * libwebsockets parses the request line and headers; everything the server
 * decides from them is socket-free and called here in the order server.c
 * calls it: the Host rule, the token (Authorization, Cookie, ?token=), the
 * WebSocket Origin rule, the query parameters, then the router with the
 * method, path, query, Content-Type, Accept-Encoding and body.  A response
 * that is not a 2xx/4xx/5xx status, or an API response that is not
 * application/json, is a bug (abort).  The input is '\n'-separated fields:
 *   method, path, query, content-type, accept-encoding, authorization,
 *   cookie, origin, host, then the body (the rest, may hold '\n'). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "hub.h"
#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kg__hub *g_hub;

static void seed(void)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.max_body = 4096;
    g_hub = calloc(1, sizeof *g_hub);
    if (!g_hub || kg__hub_init(g_hub, &o) != 0)
        abort();
    g_hub->history = true;   /* unknown runs take the Redis-history path */
    for (int i = 0; i < 10; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"event_id\":\"e%d\",\"timestamp\":\"2026-11-27T17:36:13.1Z\",\"node_id\":\"n%d\","
                 "\"node_type\":\"T\",\"event_type\":\"lifecycle\",\"event_name\":\"node_started\","
                 "\"data\":{},\"correlation_id\":\"c\",\"workflow_id\":\"w%d\",\"seq\":%d}",
                 i, i % 3, i % 4, i);
        kg__ingest_event_text(g_hub, ev, strlen(ev), NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_hub)
        seed();
    if (size > 70000)
        return 0;
    /* Fields, NUL-terminated copies (lws hands us C strings). */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *f[9];
    char *p = buf;
    for (int i = 0; i < 9; i++) {
        f[i] = p;
        char *nl = p ? memchr(p, '\n', size - (size_t)(p - buf)) : NULL;
        if (nl) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = buf + size;   /* the remaining fields are "" */
        }
    }
    const char *body = p;
    size_t body_len = size - (size_t)(p - buf);
    static const char token[] = "fuzz-token";

    bool loop = kg__is_loopback_bind(f[8]);
    (void)kg__host_ok(f[8], true);
    (void)kg__host_ok(f[8], loop);
    (void)kg__auth_bearer_ok(token, f[5]);
    (void)kg__auth_cookie_ok(token, f[6]);
    (void)kg__origin_ok(f[7], f[8], "http://a.example, https://b.example:8443");
    (void)kg__origin_ok(f[7], f[8], NULL);
    char q[300];
    (void)kg__query_get(f[2], "token", q, sizeof q);
    (void)kg__query_get(f[2], "limit", q, 8);

    kg__http_req req = {
        .method = f[0],
        .path = f[1][0] ? f[1] : "/",
        .query = f[2],
        .content_type = f[3][0] ? f[3] : NULL,
        .accept_encoding = f[4],
        .body = body,
        .body_len = body_len,
        .body_too_large = body_len > g_hub->max_body,
    };
    kg__http_resp resp;
    memset(&resp, 0, sizeof resp);
    kg__api_handle(g_hub, NULL, &req, &resp);
    if (resp.status < 200 || resp.status > 599 || !resp.content_type)
        abort();
    if (!resp.static_body && strncmp(req.path, "/api/", 5) == 0 &&
        strcmp(resp.content_type, "application/json") != 0)
        abort();
    if (resp.history_id_set) {
        /* As the server would, with nothing found and with a fake answer. */
        kg__api_history(&resp, resp.history_id, NULL, NULL);
        json_t *evs = json_pack("[{s:s,s:s}]", "event_name", "workflow_started", "event_type",
                                "lifecycle");
        kg__api_history(&resp, f[1], evs, NULL);
        json_decref(evs);
    }
    kg__resp_free(&resp);
    free(buf);
    return 0;
}
