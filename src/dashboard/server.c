/* dashboard/server.c - the libwebsockets side: context, service thread, HTTP.
 *
 * One lws context with one vhost that does not listen: conns.c accepts
 * connections and hands them to it (server.h says why).  Protocols: "kaygraph"
 * serves HTTP, "kaygraph-ws" and "kaygraph-listen" are raw descriptors lws
 * only polls for us (WebSocket clients, server_ws.c; the listening socket,
 * conns.c).  The callbacks only translate between lws and the socket-free
 * code: api.c answers HTTP requests, ws.c decides what each client gets,
 * auth.c decides who may connect.
 *
 * HTTP: a request is answered as soon as its headers allow, without
 * reading a body it does not need: a 401, a route that takes no body (a
 * POST /healthz with a megabyte announced), a body over max_body (413), a
 * chunked body (411: lws 4.1 does not decode chunked request bodies) - and
 * then the connection is closed, so an unread body costs nothing.
 * Responses are written 16 KiB per writable callback, event responses
 * straight from the stores' texts (kg__body); their bytes count against
 * the budget for slow readers, and a large response when that is spent is
 * a 503 with Retry-After.
 *
 * Threads: the service thread owns every connection and is the only one to
 * call lws on them.  Producers wake it with lws_cancel_service (via the hub,
 * at most once per batch); it then asks for a writable callback on every
 * client that has something pending, and writes only from writable
 * callbacks.  A timer (lws_sul) sends "metrics" and marks stale runs every
 * metrics_interval; another (conns.c) enforces deadlines every 250 ms. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include "server.h"
#include "api_runs.h"
#include "auth.h"
#include "ingest.h"
#include "util/clock.h"

#define KG__HTTP_CHUNK (16 * 1024)   /* bytes per HTTP write */
/* Responses up to this size are always served; larger ones only while the
 * bytes waiting for slow readers are under max_pending_bytes. */
#define KG__HTTP_SMALL (16 * 1024)

/* Per HTTP transaction (lws allocates and zeroes it for each request on a
 * keep-alive connection, so what outlives a request is in the kg__conn). */
typedef struct kg__pss {
    int kind;
    char method[8];
    char path[512];
    char query[1024];
    char content_type[128];
    char accept_encoding[128];
    kg_buf body;
    bool body_too_large;
    bool responded;
    bool head;
    bool close_after;
    bool set_cookie;
    int late_status;              /* an answer to write at the next writable */
    kg__http_resp resp;
    size_t resp_off;
    kg__fetch *fetch;             /* a history fetch this request waits for */
} kg__pss;

enum { KG__PSS_NONE, KG__PSS_HTTP };

kg__hub *kg__server_hub(struct kg_dashboard *d);
kg__hub *kg__server_hub(struct kg_dashboard *d)
{
    return &d->hub;
}


/* Copy a header into buf; "" when absent or too long. */
static const char *kg__method(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes t;
        const char *name;
    } m[] = {
        {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},   {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_DELETE_URI, "DELETE"},
        {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (lws_hdr_total_length(wsi, m[i].t) > 0)
            return m[i].name;
    return "OTHER";
}

static bool kg__cookie_safe(const char *t)
{
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              *t == '-' || *t == '_' || *t == '.' || *t == '~'))
            return false;
    return true;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static int kg__add_header(struct lws *wsi, const char *name, const char *value,
                          unsigned char **ptr, unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), ptr, end);
}

static int kg__http_start_response(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *ptr = start, *end = buf + sizeof buf - 1;
    kg__http_resp *r = &p->resp;
    size_t len = kg__resp_body_len(r);
    kg__conn *c = kg__conn_of(wsi);
    p->responded = true;
    if (c) {
        c->in_body = false;
        if (!r->static_body)
            kg__conn_pending(d, c, p->head ? 0 : len);
    }
    /* With LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE,
     * lws adds x-content-type-options: nosniff, a strict
     * content-security-policy and friends to every response itself. */
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->content_type, len, &ptr, end))
        return -1;
    if (r->content_encoding && kg__add_header(wsi, "content-encoding:", r->content_encoding, &ptr, end))
        return -1;
    if (r->cache_control && kg__add_header(wsi, "cache-control:", r->cache_control, &ptr, end))
        return -1;
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        if (kg__add_header(wsi, "retry-after:", ra, &ptr, end))
            return -1;
    }
    /* history: run exports are downloads */
    if (r->disposition[0] && kg__add_header(wsi, "content-disposition:", r->disposition, &ptr, end))
        return -1;
    if (p->set_cookie && d->opt.token && kg__cookie_safe(d->opt.token)) {
        char cookie[512];
        int n = snprintf(cookie, sizeof cookie, "kg_token=%s; Path=/; HttpOnly; SameSite=Strict",
                         d->opt.token);
        if (n > 0 && (size_t)n < sizeof cookie && kg__add_header(wsi, "set-cookie:", cookie, &ptr, end))
            return -1;
    }
    if (p->close_after && kg__add_header(wsi, "connection:", "close", &ptr, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &ptr, end))
        return -1;
    if (p->head)
        p->resp_off = len;
    lws_callback_on_writable(wsi);
    return 0;
}

/* The next piece of the body into d->out (after LWS_PRE bytes); its size. */
static size_t kg__http_piece(kg_dashboard_t *d, kg__pss *p, size_t len)
{
    kg__http_resp *r = &p->resp;
    size_t n = len - p->resp_off;
    if (n > KG__HTTP_CHUNK)
        n = KG__HTTP_CHUNK;
    kg_buf_reset(&d->out);
    static const char pre[LWS_PRE] = {0};
    kg_buf_append(&d->out, pre, LWS_PRE);
    if (r->static_body)
        kg_buf_append(&d->out, r->static_body + p->resp_off, n);
    else if (r->stream.n)
        kg__body_copy(&r->stream, &d->out, n);
    else
        kg_buf_append(&d->out, r->body.data + p->resp_off, n);
    return d->out.failed ? 0 : d->out.len - LWS_PRE;
}

static void kg__http_release(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    kg__conn *c = kg__conn_of(wsi);
    if (c)
        kg__conn_pending(d, c, 0);
    kg__resp_free(&p->resp);
    kg_buf_free(&p->body);
}

static int kg__http_error(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, int status,
                          const char *msg, bool close)
{
    kg__resp_error(&p->resp, status, msg);
    p->resp.cache_control = "no-store";
    p->close_after = close;
    return kg__http_start_response(d, wsi, p);
}

static int kg__http_writable(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    if (!p->responded) {
        /* A deadline passed while the body was arriving (conns.c). */
        if (p->late_status)
            return kg__http_error(d, wsi, p, p->late_status,
                                  "request body too slow (see body_timeout)", true);
        return 0;
    }
    size_t len = kg__resp_body_len(&p->resp);
    if (p->resp_off < len) {
        size_t n = kg__http_piece(d, p, len);
        if (!n)
            return -1;
        bool final = p->resp_off + n == len;
        if (lws_write(wsi, (unsigned char *)d->out.data + LWS_PRE, n,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return -1;
        p->resp_off += n;
        kg__conn *c = kg__conn_of(wsi);
        if (c) {
            c->progress = kg_clock_mono();
            if (!p->resp.static_body)
                kg__conn_pending(d, c, len - p->resp_off);
        }
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (p->close_after)
        return -1;
    /* Ready for the next request on this connection. */
    kg__http_release(d, wsi, p);
    p->responded = false;
    p->resp_off = 0;
    kg__conn *c = kg__conn_of(wsi);
    if (c)
        c->progress = kg_clock_mono();
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* A large response while too many bytes already wait for slow readers:
 * 503 instead (a small one is always served: /healthz answers). */
static void kg__http_budget(kg_dashboard_t *d, kg__http_resp *r)
{
    size_t len = kg__resp_body_len(r);
    if (r->static_body || len <= KG__HTTP_SMALL || d->hub.pending < d->hub.pending_max)
        return;
    char msg[160];
    snprintf(msg, sizeof msg,
             "server busy: %zu bytes of responses wait for slow clients; retry later",
             d->hub.pending);
    kg__resp_error(r, 503, msg);
    r->retry_after = 1;
    atomic_fetch_add(&d->stat_busy, 1);
}

static int kg__http_dispatch(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    kg__http_req req = {
        .method = p->method,
        .path = p->path,
        .query = p->query,
        .content_type = p->content_type[0] ? p->content_type : NULL,
        .accept_encoding = p->accept_encoding,
        .body = p->body.data,
        .body_len = p->body.len,
        .body_too_large = p->body_too_large,
    };
    kg_dashboard_stats stats;
    kg_dashboard_stats_get(d, &stats);
    kg__api_handle(&d->hub, &stats, &req, &p->resp);
    kg_buf_free(&p->body);
    if (p->resp.deferred) {
        /* history: answered when the store's query thread is done (kg__store_answers) */
        kg__squery *q = p->resp.deferred;
        q->owner = p;
        q->wsi = wsi;
        if (kg__store_query_submit(d->hub.store, q) == 0)
            return 0;
        p->resp.deferred = NULL;
        kg__squery_free(q);
        kg__resp_error(&p->resp, 503, "history busy (too many queries); try again");
        p->resp.retry_after = 1;
        return kg__http_start_response(d, wsi, p);
    }
    if (p->resp.history_id_set && d->redis && !p->fetch) {
        /* A run evicted from memory: answer once Redis has (kg__fetches_done). */
        kg__fetch *f = calloc(1, sizeof *f);
        if (f) {
            snprintf(f->workflow_id, sizeof f->workflow_id, "%s", p->resp.history_id);
            f->owner = p;
            f->wsi = wsi;
            if (kg__redis_fetch_submit(d->redis, f) == 0) {
                p->fetch = f;
                return 0;
            }
            free(f);
        }
    }
    kg__http_budget(d, &p->resp);
    return kg__http_start_response(d, wsi, p);
}

/* Does this request come with a body, and may it?  Returns 0 to go on, or
 * the callback's result after answering at once. */
static int kg__http_body_rules(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, bool *wait_body)
{
    char cl[32];
    kg__hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
    bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    unsigned long long n = cl[0] ? strtoull(cl, NULL, 10) : 0;
    bool takes_body = strcmp(p->method, "POST") == 0 && strcmp(p->path, "/api/ingest") == 0;
    *wait_body = false;
    if (!takes_body) {
        /* Answered without reading the body; the connection is then closed
         * so that the unread body cannot be taken for the next request. */
        if (n > 0 || chunked)
            p->close_after = true;
        return 0;
    }
    if (chunked)
        return kg__http_error(d, wsi, p, 411,
                              "chunked request bodies are not supported: send Content-Length",
                              true);
    if (n > d->opt.max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "body over the %zu-byte limit", d->opt.max_body);
        return kg__http_error(d, wsi, p, 413, msg, true);
    }
    *wait_body = n > 0;
    return 0;
}

static int kg__on_http(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, const char *uri)
{
    char host[300];
    memset(p, 0, sizeof *p);
    p->kind = KG__PSS_HTTP;
    kg__conn *c = kg__conn_of(wsi);
    double now = kg_clock_mono();
    if (c)
        c->progress = c->req_at = now;
    snprintf(p->method, sizeof p->method, "%s", kg__method(wsi));
    p->head = strcmp(p->method, "HEAD") == 0;
    if (strlen(uri) >= sizeof p->path)
        return kg__http_error(d, wsi, p, 414, "URI too long", true);
    snprintf(p->path, sizeof p->path, "%s", uri);
    kg__server_query(wsi, p->query, sizeof p->query);
    kg__hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, p->content_type, sizeof p->content_type);
    kg__hdr(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, p->accept_encoding, sizeof p->accept_encoding);

    if (!kg__host_ok(kg__hdr(wsi, WSI_TOKEN_HOST, host, sizeof host), d->loopback))
        return kg__http_error(d, wsi, p, 403, "Host not allowed on a loopback bind", true);
    bool via_query = false;
    /* Refused before any body is read, and closed: an unauthenticated
     * client gets nothing more out of this connection. */
    if (strcmp(p->path, "/healthz") != 0 && !kg__server_authorized(&d->opt, wsi, p->query, &via_query)) {
        /* A person opening the page without the token gets a page that says
         * how to pass it; programs get the JSON error. */
        if (strcmp(p->method, "GET") == 0 &&
            (strcmp(p->path, "/") == 0 || strcmp(p->path, "/index.html") == 0)) {
            kg__api_auth_page(&p->resp, p->accept_encoding);
            p->close_after = true;
            return kg__http_start_response(d, wsi, p);
        }
        return kg__http_error(d, wsi, p, 401, "missing or wrong token", true);
    }
    p->set_cookie = via_query;
    bool wait_body;
    int rc = kg__http_body_rules(d, wsi, p, &wait_body);
    if (rc || p->responded)
        return rc;
    if (wait_body) {
        if (c) {
            c->in_body = true;
            c->body_got = 0;
        }
        return 0;   /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    return kg__http_dispatch(d, wsi, p);
}

static int kg__on_http_body(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, const void *in,
                            size_t len)
{
    kg__conn *c = kg__conn_of(wsi);
    if (c)
        c->body_got += len;
    if (p->responded || p->body_too_large || p->late_status)
        return 0;
    if (p->body.len + len > d->opt.max_body) {
        /* Answer now and close: reading the rest would only waste time. */
        p->body_too_large = true;
        kg_buf_free(&p->body);
        char msg[96];
        snprintf(msg, sizeof msg, "body over the %zu-byte limit", d->opt.max_body);
        return kg__http_error(d, wsi, p, 413, msg, true);
    }
    kg_buf_append(&p->body, in, len);
    if (p->body.failed)
        return kg__http_error(d, wsi, p, 503, "out of memory", true);
    return 0;
}

void kg__http_timeout(kg_dashboard_t *d, kg__conn *c)
{
    kg__pss *p = c->wsi ? lws_wsi_user(c->wsi) : NULL;
    if (!p || p->kind != KG__PSS_HTTP || p->responded || p->late_status) {
        kg__conn_kill(d, c);
        return;
    }
    /* Answered from the writable callback, then closed. */
    p->late_status = 408;
    lws_callback_on_writable(c->wsi);
}

/* ---- history fetches ---------------------------------------------------------------------- */

/* Answer the requests whose history fetch has completed (service thread). */
static void kg__fetches_done(kg_dashboard_t *d)
{
    kg__fetch *f;
    while ((f = kg__redis_fetch_done(d->redis))) {
        if (f->cancelled) {
            kg__fetch_free(f);
            continue;
        }
        if (f->ws) {
            kg__ws_fetch_done(d, f);
        } else {
            kg__pss *p = f->owner;
            struct lws *wsi = f->wsi;
            p->fetch = NULL;
            kg__api_history(&p->resp, f->workflow_id, f->rc ? NULL : f->events,
                            f->rc ? f->error : NULL);
            kg__http_budget(d, &p->resp);
            if (kg__http_start_response(d, wsi, p) != 0)
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
        kg__fetch_free(f);
    }
}

/* history: answer the requests whose store query has completed (service
 * thread), as kg__fetches_done does for Redis fetches. */
static void kg__store_answers(kg_dashboard_t *d)
{
    kg__squery *q;
    while ((q = kg__store_query_done(d->hub.store))) {
        if (q->cancelled) {
            kg__squery_free(q);
            continue;
        }
        kg__pss *p = q->owner;
        struct lws *wsi = q->wsi;
        p->resp.deferred = NULL;
        kg__api_runs_answer(&p->resp, q);
        kg__squery_free(q);
        kg__http_budget(d, &p->resp);
        if (kg__http_start_response(d, wsi, p) != 0)
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* The request goes away while its fetch runs: the fetch is freed when it
 * comes back.  After kg__redis_source_stop every fetch is already freed. */
static void kg__fetch_cancel(kg_dashboard_t *d, kg__pss *p)
{
    if (p->fetch && d->redis)
        p->fetch->cancelled = true;
    p->fetch = NULL;
}

/* ---- the callback ------------------------------------------------------------------------ */

/* Raw descriptors: the listening socket (no connection) or a WebSocket. */
static int kg__on_raw(kg_dashboard_t *d, struct lws *wsi, enum lws_callback_reasons reason)
{
    kg__conn *c = kg__conn_of(wsi);
    if (!c) {
        if (reason == LWS_CALLBACK_RAW_RX_FILE && wsi == d->listen_wsi)
            kg__listen_ready(d);
        return 0;
    }
    if (!c->ws || c->wsi != wsi)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return kg__ws_readable(d, c);
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        return kg__ws_writable(d, c);
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        kg__ws_closed(d, c);
        return 0;
    default:
        return 0;
    }
}

static int kg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    kg_dashboard_t *d = lws_context_user(lws_get_context(wsi));
    kg__pss *p = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return kg__on_http(d, wsi, p, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return kg__on_http_body(d, wsi, p, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        kg__conn *c = kg__conn_of(wsi);
        if (c)
            c->in_body = false;
        if (p->responded || p->late_status)
            return 0;
        return kg__http_dispatch(d, wsi, p);
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return p && p->kind == KG__PSS_HTTP ? kg__http_writable(d, wsi, p) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p && p->kind == KG__PSS_HTTP) {
            kg__fetch_cancel(d, p);
            kg__store_query_cancel(d->hub.store, p->resp.deferred);   /* history */
            p->resp.deferred = NULL;
            kg__http_release(d, wsi, p);
            p->kind = KG__PSS_NONE;
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return kg__ws_upgrade(d, wsi);

    case LWS_CALLBACK_RAW_RX_FILE:
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        return kg__on_raw(d, wsi, reason);
    case LWS_CALLBACK_WSI_DESTROY:
        kg__conn_destroyed(d, wsi);
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Clear first, then look: a push after this point wakes us again. */
        atomic_store(&d->hub.wake_pending, false);
        kg__fetches_done(d);
        kg__store_answers(d);   /* history */
        kg__ws_kick(d);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- periodic work ------------------------------------------------------------------------ */

static void kg__tick(lws_sorted_usec_list_t *sul)
{
    kg_dashboard_t *d = lws_container_of(sul, kg_dashboard_t, sul);
    double now = kg_clock_mono();
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "{\"type\":\"metrics\",\"data\":");
    pthread_mutex_lock(&d->hub.lock);
    kg__agg_tick(d->hub.agg, now);
    json_t *m = kg__agg_metrics(d->hub.agg, now);
    kg_buf_json(&sb, m);
    kg_buf_puts(&sb, "}");
    kg_text *msg = m && !sb.failed ? kg_text_new(sb.data, sb.len) : NULL;
    if (msg)
        kg__hub_push_locked(&d->hub, msg, KG__B_RAW);
    pthread_mutex_unlock(&d->hub.lock);
    kg_text_unref(msg);
    json_decref(m);
    kg_buf_free(&sb);
    kg__ws_kick(d);
    lws_sul_schedule(d->ctx, 0, &d->sul, kg__tick, (lws_usec_t)(d->opt.metrics_interval * 1e6));
}

static void *kg__service_main(void *arg)
{
    kg_dashboard_t *d = arg;
    while (!atomic_load(&d->stop))
        if (lws_service(d->ctx, 0) < 0)
            break;
    return NULL;
}

static void kg__wake(void *ud)
{
    kg_dashboard_t *d = ud;
    lws_cancel_service(d->ctx);
}

/* ---- public API ------------------------------------------------------------------------------ */

void kg_dashboard_options_init(kg_dashboard_options *o)
{
    memset(o, 0, sizeof *o);
    o->bind = "127.0.0.1";
    o->port = 8080;
    o->redis_port = 6379;
    o->redis_replay = 10000;
    o->max_body = 1u << 20;
    o->max_clients = 64;
    o->client_queue = 8192;
    o->stale_after = 300;
    o->metrics_interval = 1.0;
    o->recent_events = 1000;
    o->max_runs = 200;
    o->max_run_events = 5000;
    o->max_nodes = 1024;
    o->max_store_bytes = 64u << 20;
    o->broadcast_bytes = 16u << 20;
    o->client_timeout = 30;
    o->max_connections = 1024;
    o->max_clients_per_ip = 16;
    o->body_timeout = 30;
    o->body_min_rate = 1024;
    o->ws_idle_timeout = 60;
    o->max_pending_bytes = 64u << 20;
    o->retain_days = 30;      /* history (o->db stays NULL: memory only) */
    o->retain_mb = 1024;
    o->history_queue = 65536;
}

int kg_dashboard_port(const kg_dashboard_t *d)
{
    return d ? d->port : -1;
}

void kg_dashboard_stats_get(kg_dashboard_t *d, kg_dashboard_stats *out)
{
    memset(out, 0, sizeof *out);
    out->events = atomic_load(&d->hub.events);
    out->rejected = atomic_load(&d->hub.rejected);
    out->duplicates = atomic_load(&d->hub.duplicates);
    out->ws_sent = atomic_load(&d->ws_sent);
    out->ws_dropped = atomic_load(&d->ws_dropped);
    out->clients = atomic_load(&d->clients_pub);
    out->connections = atomic_load(&d->conns_pub);
    out->conns_evicted = atomic_load(&d->stat_evicted);
    out->conns_shed = atomic_load(&d->stat_shed);
    out->busy_refused = atomic_load(&d->stat_busy);
    kg__redis_source_stats rs;
    kg__redis_source_stats_get(d->redis, &rs);
    out->redis_messages = rs.messages;
    out->redis_replayed = rs.replayed;
    out->redis_replays = rs.replays;
    out->redis_fetches = rs.fetches;
    out->redis_connected = rs.connected;
}

int kg_dashboard_ingest(kg_dashboard_t *d, const char *json, size_t len, kg_error_t *err)
{
    if (!d || (!json && len))
        return kg_error_set(err, KG_EINVAL, NULL, "no dashboard or no body");
    return kg__ingest_body(&d->hub, json ? json : "", len, NULL, err);
}

static bool kg__dup(kg_dashboard_t *d, int i, const char **field)
{
    if (!*field)
        return true;
    size_t n = strlen(*field) + 1;
    if (!(d->strs[i] = malloc(n)))
        return false;
    memcpy(d->strs[i], *field, n);
    *field = d->strs[i];
    return true;
}

static int kg__check_options(const kg_dashboard_options *o, kg_error_t *err)
{
    if (o->port < 0 || o->port > 65535)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "port %d out of range", o->port);
    if (!o->bind || !*o->bind)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "bind address required");
    if (o->token && (!*o->token || strlen(o->token) > 256))
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "token must be 1-256 characters");
    if (!o->max_body || !o->max_clients || !o->client_queue || o->metrics_interval <= 0 ||
        !o->broadcast_bytes || o->client_timeout <= 0 || !o->max_connections ||
        o->body_timeout <= 0 || o->ws_idle_timeout <= 0 || !o->max_pending_bytes)
        return kg_error_set(err, KG_EINVAL, "ArgumentError",
                            "max_body, max_clients, client_queue, metrics_interval, "
                            "broadcast_bytes, client_timeout, max_connections, body_timeout, "
                            "ws_idle_timeout and max_pending_bytes must be > 0");
    if (o->max_clients >= o->max_connections)
        return kg_error_set(err, KG_EINVAL, "ArgumentError",
                            "max_clients (%u) must be below max_connections (%zu): HTTP needs "
                            "room too",
                            o->max_clients, o->max_connections);
    if (o->redis_host && (o->redis_port <= 0 || o->redis_port > 65535))
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "redis port out of range");
    return 0;
}

int kg_dashboard_new(const kg_dashboard_options *o, kg_dashboard_t **out, kg_error_t *err)
{
    kg_dashboard_options defaults;
    if (!o) {
        kg_dashboard_options_init(&defaults);
        o = &defaults;
    }
    int rc = kg__check_options(o, err);
    if (rc)
        return rc;
    kg_dashboard_t *d = calloc(1, sizeof *d);
    if (!d)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    d->opt = *o;
    d->conn_events = (struct kg__conn_events){kg__http_timeout, kg__ws_closed, kg__ws_sweep};
    d->listen_fd = d->reserve_fd = d->devnull_fd = -1;
    kg_list_init(&d->conns);
    if (!kg__dup(d, 0, &d->opt.bind) || !kg__dup(d, 1, &d->opt.token) ||
        !kg__dup(d, 2, &d->opt.allowed_origins) || !kg__dup(d, 3, &d->opt.redis_host) ||
        !kg__dup(d, 4, &d->opt.redis_prefix) || !kg__dup(d, 5, &d->opt.redis_password) ||
        !kg__dup(d, 6, &d->opt.db)) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    d->loopback = kg__is_loopback_bind(d->opt.bind);
    kg_list_init(&d->clients);
    atomic_init(&d->stop, false);
    atomic_init(&d->clients_pub, 0);
    atomic_init(&d->ws_sent, 0);
    atomic_init(&d->ws_dropped, 0);
    atomic_init(&d->conns_pub, 0);
    atomic_init(&d->stat_evicted, 0);
    atomic_init(&d->stat_shed, 0);
    atomic_init(&d->stat_busy, 0);
    if (kg__hub_init(&d->hub, &d->opt) != 0) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    int berr = kg__listen_open(d);
    if (berr) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_EIO, "BindError", "cannot listen on %s:%d: %s", o->bind,
                            o->port, strerror(berr));
    }

    d->protocols[KG__PROTO_HTTP] = (struct lws_protocols){
        .name = "kaygraph",
        .callback = kg__callback,
        .per_session_data_size = sizeof(kg__pss),
        .rx_buffer_size = 16384,
    };
    d->protocols[KG__PROTO_WS] = (struct lws_protocols){.name = "kaygraph-ws",
                                                        .callback = kg__callback};
    d->protocols[KG__PROTO_LISTEN] = (struct lws_protocols){.name = "kaygraph-listen",
                                                            .callback = kg__callback};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    /* A server vhost that does not listen: conns.c accepts for it. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = d->protocols;
    info.vhost_name = "kaygraph";
    info.user = d;
    info.max_http_header_data = 8192;
    info.timeout_secs = 30;
    info.keepalive_timeout = 30;
    info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    /* lws logs to stderr by default; keep only its errors (our own log
     * callback reports what matters). */
    lws_set_log_level(LLL_ERR, NULL);
    d->ctx = lws_create_context(&info);
    d->vh = d->ctx ? lws_get_vhost_by_name(d->ctx, "kaygraph") : NULL;
    if (!d->vh || kg__listen_start(d) != 0) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_EIO, NULL, "cannot start libwebsockets");
    }
    d->hub.wake = kg__wake;
    d->hub.wake_ud = d;
    d->hub.history = d->opt.redis_host != NULL;
    /* history: before any source can add an event */
    if ((rc = kg__store_open(kg__hub_wake_cb, &d->hub, &d->opt, &d->hub.store, err)) != 0) {
        kg_dashboard_free(d);
        return rc;
    }
    lws_sul_schedule(d->ctx, 0, &d->sul, kg__tick, (lws_usec_t)(d->opt.metrics_interval * 1e6));
    lws_sul_schedule(d->ctx, 0, &d->sul_conns, kg__conns_sweep, 250000);
    /* The Redis source first: the service thread reads d->redis. */
    if (d->opt.redis_host &&
        (rc = kg__redis_source_start(&d->hub, &d->opt, &d->redis, err)) != 0) {
        kg_dashboard_free(d);
        return rc;
    }
    if (pthread_create(&d->thread, NULL, kg__service_main, d) != 0) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_ENOMEM, NULL, "cannot start the service thread");
    }
    d->thread_started = true;
    kg__server_log(d, KG_DASH_LOG_INFO, "dashboard listening on http://%s:%d/", d->opt.bind, d->port);
    *out = d;
    return 0;
}

void kg_dashboard_free(kg_dashboard_t *d)
{
    if (!d)
        return;
    /* The service thread first: it collects the Redis source's fetches.
     * The source may still wake the (stopped) service loop: harmless, the
     * context lives until below. */
    if (d->thread_started) {
        atomic_store(&d->stop, true);
        lws_cancel_service(d->ctx);
        pthread_join(d->thread, NULL);
    }
    kg__redis_source_stop(d->redis);
    d->redis = NULL;   /* every fetch is freed: the CLOSED callbacks below
                        * must not touch theirs (kg__fetch_cancel) */
    /* history: no source is left; write what is queued.  Its queries are
     * freed, so the CLOSED callbacks must not touch them either. */
    kg__store_close(d->hub.store);
    d->hub.store = NULL;
    d->hub.wake = NULL;
    if (d->ctx) {
        lws_sul_cancel(&d->sul);
        lws_sul_cancel(&d->sul_conns);
        lws_sul_cancel(&d->sul_rearm);
        /* Closes every connection; their CLOSED callbacks run here, on this
         * thread, now that the service thread is gone. */
        lws_context_destroy(d->ctx);
    }
    kg__listen_close(d);
    kg__hub_destroy(&d->hub);
    kg_buf_free(&d->out);
    for (size_t i = 0; i < sizeof d->strs / sizeof d->strs[0]; i++)
        free(d->strs[i]);
    free(d);
}
