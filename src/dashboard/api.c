/* dashboard/api.c - the HTTP routes, as a pure function from request to response.
 *
 * server.c gathers the request (method, path, query, a few headers, the
 * body) from libwebsockets and writes whatever this returns; authentication
 * has been checked before.  Keeping routing free of socket code means every
 * route is exercised by unit tests, and bad input can only ever produce a
 * 4xx response here.
 *
 * The event routes answer with references to the stored events (a
 * kg__body), not a copy: the server writes them out as the socket drains,
 * so a client that asks for a thousand events and never reads holds
 * pointers, not megabytes.  A response (kg__http_resp) starts zeroed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "assets.h"
#include "ingest.h"
#include "prometheus.h"
#include "util/clock.h"
#include "api_runs.h"

static const char kg__json_type[] = "application/json";

static const kg_web_asset *kg__asset_find(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (const kg_web_asset *a = kg__web_assets; a->path; a++)
        if (strcmp(a->path, path) == 0)
            return a;
    return NULL;
}

static bool kg__accepts_gzip(const char *ae)
{
    /* Good enough: "gzip" listed and not explicitly refused with q=0. */
    if (!ae)
        return false;
    const char *g = strstr(ae, "gzip");
    if (!g)
        return false;
    const char *q = strstr(g, "q=0");
    const char *comma = strchr(g, ',');
    return !(q && (!comma || q < comma) && strncmp(q, "q=0.", 4) != 0);
}

static void kg__serve_asset(kg__http_resp *resp, const kg_web_asset *a, const char *accept_encoding)
{
    resp->content_type = a->content_type;
    resp->cache_control = "no-cache";
    if (a->gz && kg__accepts_gzip(accept_encoding)) {
        resp->static_body = a->gz;
        resp->static_len = a->gz_len;
        resp->content_encoding = "gzip";
    } else {
        resp->static_body = a->data;
        resp->static_len = a->len;
    }
}

void kg__api_auth_page(kg__http_resp *resp, const char *accept_encoding)
{
    const kg_web_asset *a = kg__asset_find("/auth.html");
    if (!a) {
        kg__resp_error(resp, 401, "missing or wrong token");
        return;
    }
    kg__serve_asset(resp, a, accept_encoding);
    resp->status = 401;
    resp->cache_control = "no-store";
}

static void kg__route_metrics(kg__hub *h, const kg_dashboard_stats *stats, kg__http_resp *resp)
{
    double now = kg_clock_mono();
    pthread_mutex_lock(&h->lock);
    json_t *m = kg__agg_metrics(h->agg, now);
    pthread_mutex_unlock(&h->lock);
    if (!m) {
        kg__resp_error(resp, 500, "out of memory");
        return;
    }
    if (stats) {
        const kg_dashboard_stats st = *stats;
        json_t *srv = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "ws_sent",
                                (json_int_t)st.ws_sent, "ws_dropped", (json_int_t)st.ws_dropped,
                                "clients", (json_int_t)st.clients, "redis_messages",
                                (json_int_t)st.redis_messages, "redis_replayed",
                                (json_int_t)st.redis_replayed, "redis_replays",
                                (json_int_t)st.redis_replays, "redis_fetches",
                                (json_int_t)st.redis_fetches, "redis_connected",
                                st.redis_connected);
        /* The limits at work (kaygraph/dashboard.h, "Limits"). */
        json_object_set_new(srv, "connections", json_integer((json_int_t)st.connections));
        json_object_set_new(srv, "conns_evicted", json_integer((json_int_t)st.conns_evicted));
        json_object_set_new(srv, "conns_shed", json_integer((json_int_t)st.conns_shed));
        json_object_set_new(srv, "busy_refused", json_integer((json_int_t)st.busy_refused));
        json_object_set_new(m, "server", srv);
    }
    json_object_set_new(m, "history", kg__store_health_json(h->store, true));   /* history */
    kg_buf_json(&resp->body, m);
    json_decref(m);
}

static void kg__route_events(kg__hub *h, const kg__http_req *req, kg__http_resp *resp)
{
    long limit = 100;
    char buf[32];
    if (kg__query_get(req->query, "limit", buf, sizeof buf)) {
        char *end;
        limit = strtol(buf, &end, 10);
        if (*end || end == buf || limit < 0) {
            kg__resp_error(resp, 400, "limit must be a non-negative integer");
            return;
        }
    }
    kg__body *b = &resp->stream;
    kg__body_text(b, "{\"events\":[", 11);
    pthread_mutex_lock(&h->lock);
    kg__agg_recent_refs(h->agg, (size_t)limit, b);
    pthread_mutex_unlock(&h->lock);
    kg__body_text(b, "]}", 2);
    if (b->oom)
        kg__resp_error(resp, 503, "out of memory");
}

static void kg__route_workflows(kg__hub *h, kg__http_resp *resp)
{
    pthread_mutex_lock(&h->lock);
    json_t *runs = kg__agg_runs(h->agg, 0);
    pthread_mutex_unlock(&h->lock);
    kg_buf_puts(&resp->body, "{\"workflows\":");
    kg_buf_json(&resp->body, runs);
    kg_buf_puts(&resp->body, "}");
    json_decref(runs);
}

static void kg__route_workflow_events(kg__hub *h, const char *enc_id, size_t n,
                                      kg__http_resp *resp)
{
    char id[KG__ID_MAX + 1];
    if (n == 0 || !kg__url_decode(enc_id, n, id, sizeof id, false)) {
        kg__resp_error(resp, 400, "bad workflow id");
        return;
    }
    kg_buf *sb = &resp->body;
    kg__body *b = &resp->stream;
    kg_buf_puts(sb, "{\"workflow_id\":");
    kg_buf_json_cstr(sb, id);
    kg_buf_puts(sb, ",\"events\":[");
    kg__body_text(b, sb->data ? sb->data : "", sb->len);
    kg_buf_reset(sb);
    json_t *summary = NULL;
    pthread_mutex_lock(&h->lock);
    int rc = kg__agg_run_events_refs(h->agg, id, b, &summary);
    pthread_mutex_unlock(&h->lock);
    if (rc != 0) {
        kg__resp_error(resp, 404, "unknown workflow (never seen, or evicted)");
        if (h->history) {
            resp->history_id_set = true;
            snprintf(resp->history_id, sizeof resp->history_id, "%s", id);
        }
        return;
    }
    json_t *graph = json_incref(json_object_get(summary, "graph"));
    json_object_del(summary, "graph");
    kg_buf_puts(sb, "],\"run\":");
    kg_buf_json(sb, summary);
    kg_buf_puts(sb, ",\"graph\":");
    kg_buf_json(sb, graph);
    kg_buf_puts(sb, "}");
    json_decref(graph);
    json_decref(summary);
    if (sb->failed)
        b->oom = true;
    kg__body_text(b, sb->data ? sb->data : "", sb->len);
    kg_buf_reset(sb);
    if (b->oom)
        kg__resp_error(resp, 503, "out of memory");
}


void kg__api_history(kg__http_resp *resp, const char *workflow_id, json_t *events,
                     const char *why)
{
    resp->history_id_set = false;
    resp->status = 200;
    resp->content_type = kg__json_type;
    resp->cache_control = "no-store";
    resp->static_body = NULL;
    kg__body_free(&resp->stream);
    kg_buf_reset(&resp->body);
    json_t *summary = events && json_array_size(events) ? kg__run_summary_of_events(workflow_id, events)
                                                        : NULL;
    if (!summary) {
        kg__resp_error(resp, events && json_array_size(events) ? 503 : 404,
                      why ? why : "unknown workflow (not in memory, not in Redis)");
        return;
    }
    json_t *graph = json_incref(json_object_get(summary, "graph"));
    json_object_del(summary, "graph");
    kg_buf_puts(&resp->body, "{\"workflow_id\":");
    kg_buf_json_cstr(&resp->body, workflow_id);
    kg_buf_puts(&resp->body, ",\"source\":\"redis\",\"events\":");
    kg_buf_json(&resp->body, events);
    kg_buf_puts(&resp->body, ",\"run\":");
    kg_buf_json(&resp->body, summary);
    kg_buf_puts(&resp->body, ",\"graph\":");
    kg_buf_json(&resp->body, graph);
    kg_buf_puts(&resp->body, "}");
    json_decref(graph);
    json_decref(summary);
    if (resp->body.failed)
        kg__resp_error(resp, 503, "out of memory");
}

static void kg__route_ingest(kg__hub *h, const kg__http_req *req, kg__http_resp *resp)
{
    if (req->body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "body over the %zu-byte limit", h->max_body);
        kg__resp_error(resp, 413, msg);
        return;
    }
    if (!req->content_type || strncasecmp(req->content_type, kg__json_type,
                                          sizeof kg__json_type - 1) != 0) {
        kg__resp_error(resp, 415, "Content-Type must be application/json");
        return;
    }
    kg__ingest_result res;
    kg_error_t err;
    kg_error_clear(&err);
    int rc = kg__ingest_body(h, req->body ? req->body : "", req->body_len, &res, &err);
    if (rc == KG_ERANGE) {
        kg__resp_error(resp, 413, err.message);
        return;
    }
    if (rc == KG_EFULL) {   /* history: behind; the sender retries */
        kg__resp_error(resp, 503, err.message);
        resp->retry_after = 1;
        return;
    }
    if (rc != 0) {
        kg__resp_error(resp, rc == KG_ENOMEM ? 503 : 400, err.message);
        return;
    }
    kg_buf_printf(&resp->body, "{\"accepted\":%zu,\"rejected\":%zu,\"duplicates\":%zu",
                  res.accepted, res.rejected, res.duplicates);
    if (res.first_error[0]) {
        kg_buf_puts(&resp->body, ",\"error\":");
        kg_buf_json_cstr(&resp->body, res.first_error);
    }
    kg_buf_puts(&resp->body, "}");
}

void kg__api_handle(kg__hub *h, const kg_dashboard_stats *stats, const kg__http_req *req,
                    kg__http_resp *resp)
{
    resp->status = 200;
    resp->content_type = kg__json_type;
    resp->content_encoding = NULL;
    resp->cache_control = "no-store";
    resp->static_body = NULL;
    resp->history_id_set = false;
    resp->retry_after = 0;
    kg__body_free(&resp->stream);
    resp->deferred = NULL;          /* history */
    resp->disposition[0] = '\0';
    const char *path = req->path;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    if (strcmp(path, "/api/ingest") == 0) {
        if (!post)
            kg__resp_error(resp, 405, "use POST");
        else
            kg__route_ingest(h, req, resp);
        return;
    }
    if (!get) {
        kg__resp_error(resp, 405, "method not allowed");
        return;
    }
    if (kg__api_runs_handle(h, req, resp))   /* history: the run routes (api_runs.c) */
        return;
    if (strcmp(path, "/healthz") == 0) {
        kg_buf_printf(&resp->body, "{\"status\":\"ok\",\"uptime\":%.3f",
                      kg_clock_mono() - h->started);
        json_t *hist = kg__store_health_json(h->store, false);   /* history */
        kg_buf_puts(&resp->body, ",\"history\":");
        kg_buf_json(&resp->body, hist);
        json_decref(hist);
        kg_buf_puts(&resp->body, "}");
    } else if (strcmp(path, "/api/metrics") == 0) {
        kg__route_metrics(h, stats, resp);
    } else if (strcmp(path, "/api/events") == 0) {
        kg__route_events(h, req, resp);
    } else if (strcmp(path, "/api/workflows") == 0 || strcmp(path, "/api/workflows/") == 0) {
        kg__route_workflows(h, resp);
    } else if (strncmp(path, "/api/workflows/", 15) == 0) {
        const char *id = path + 15;
        size_t n = strlen(id);
        if (n > 7 && strcmp(id + n - 7, "/events") == 0)
            kg__route_workflow_events(h, id, n - 7, resp);
        else
            kg__resp_error(resp, 404, "no such route");
    } else if (strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        kg__prom_render(h, kg_clock_mono(), &resp->body);
    } else {
        const kg_web_asset *a = kg__asset_find(path);
        if (!a) {
            kg__resp_error(resp, 404, "no such route");
            return;
        }
        kg__serve_asset(resp, a, req->accept_encoding);
    }
    if (resp->body.failed)
        kg__resp_error(resp, 503, "out of memory");
}
