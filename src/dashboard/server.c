/* dashboard/server.c - the libwebsockets side: context, service thread, callbacks.
 *
 * One lws context with one vhost listening on bind:port and one protocol
 * that serves both HTTP and the WebSocket (browsers send no subprotocol, so
 * lws hands upgrades to protocols[0]).  The callbacks only translate between
 * lws and the socket-free code: api.c answers HTTP requests, ws.c decides
 * what each client gets, auth.c decides who may connect.
 *
 * Threads: the service thread owns every connection and is the only one to
 * call lws on them.  Producers wake it with lws_cancel_service (via the hub,
 * at most once per batch); it then asks for a writable callback on every
 * client that has something pending, and writes only from
 * LWS_CALLBACK_SERVER_WRITEABLE.  A 1 s timer (lws_sul) sends "metrics",
 * marks stale runs and closes clients that accepted nothing for
 * client_timeout seconds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "dash_internal.h"
#include "source_redis.h"
#include "store.h"

struct kg_dashboard {
    kg_dashboard_options opt;
    char *strs[7];                 /* owned copies of the option strings */
    bool loopback;
    kg__hub hub;
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    int port;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    kg__link clients;              /* service thread only */
    unsigned nclients;
    atomic_uint clients_pub;
    atomic_uint_fast64_t ws_sent, ws_dropped;
    lws_sorted_usec_list_t sul;
    kg__sb out;                    /* the service thread's write buffer */
    kg__redis_source *redis;
};

enum { KG__PSS_NONE, KG__PSS_HTTP, KG__PSS_WS };

/* Per connection (lws allocates and zeroes it). */
typedef struct kg__pss {
    int kind;
    /* HTTP */
    char method[8];
    char path[512];
    char query[1024];
    char content_type[128];
    char accept_encoding[128];
    kg__sb body;
    bool body_too_large;
    bool responded;
    bool head;
    bool close_after;
    bool set_cookie;
    kg__http_resp resp;
    size_t resp_off;
    /* WebSocket */
    kg__wsclient ws;
    /* A history fetch this connection waits for (HTTP or WS), or NULL. */
    kg__fetch *fetch;
} kg__pss;

kg__hub *kg__server_hub(struct kg_dashboard *d);
kg__hub *kg__server_hub(struct kg_dashboard *d)
{
    return &d->hub;
}

static void kg__log(kg_dashboard_t *d, kg_dashboard_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void kg__log(kg_dashboard_t *d, kg_dashboard_log_level lvl, const char *fmt, ...)
{
    if (!d->opt.log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    d->opt.log(d->opt.log_ud, lvl, buf);
}

/* Copy a header into buf; "" when absent or too long. */
static const char *kg__hdr(struct lws *wsi, enum lws_token_indexes t, char *buf, int len)
{
    buf[0] = '\0';
    if (lws_hdr_total_length(wsi, t) <= 0 || lws_hdr_copy(wsi, buf, len, t) < 0)
        buf[0] = '\0';
    return buf;
}

/* lws splits the query into '&'-separated fragments; join them back. */
static void kg__query(struct lws *wsi, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    char frag[512];
    for (int i = 0; i < 32; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n <= 0)
            break;
        if (o + (size_t)n + 2 >= outlen)
            break;
        if (o)
            out[o++] = '&';
        memcpy(out + o, frag, (size_t)n);
        o += (size_t)n;
        out[o] = '\0';
    }
}

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

/* Token from any of the three places; `via_query` tells the caller whether
 * to hand out the cookie. */
static bool kg__authorized(kg_dashboard_t *d, struct lws *wsi, const char *query, bool *via_query)
{
    *via_query = false;
    if (!d->opt.token)
        return true;
    char buf[1024];
    if (kg__auth_bearer_ok(d->opt.token, kg__hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf,
                                                  sizeof buf)))
        return true;
    if (kg__auth_cookie_ok(d->opt.token, kg__hdr(wsi, WSI_TOKEN_HTTP_COOKIE, buf, sizeof buf)))
        return true;
    if (kg__query_get(query, "token", buf, sizeof buf) &&
        kg__token_equal(d->opt.token, buf, strlen(buf))) {
        *via_query = true;
        return true;
    }
    return false;
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

static int kg__http_start_response(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *ptr = start, *end = buf + sizeof buf - 1;
    kg__http_resp *r = &p->resp;
    size_t len = r->static_body ? r->static_len : r->body.len;
    p->responded = true;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->content_type, len, &ptr, end))
        return -1;
    if (r->content_encoding &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-encoding:",
                                    (const unsigned char *)r->content_encoding,
                                    (int)strlen(r->content_encoding), &ptr, end))
        return -1;
    if (r->cache_control &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)r->cache_control,
                                    (int)strlen(r->cache_control), &ptr, end))
        return -1;
    /* history: a 503 while the store is behind, and export downloads */
    if (r->retry_after &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                    (const unsigned char *)r->retry_after,
                                    (int)strlen(r->retry_after), &ptr, end))
        return -1;
    if (r->disposition[0] &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-disposition:",
                                    (const unsigned char *)r->disposition,
                                    (int)strlen(r->disposition), &ptr, end))
        return -1;
    static const char nosniff[] = "nosniff";
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)nosniff, sizeof nosniff - 1, &ptr, end))
        return -1;
    if (r->content_type && strncmp(r->content_type, "text/html", 9) == 0) {
        /* The UI loads only from us; event data can never run as script. */
        static const char csp[] = "default-src 'self'; connect-src 'self' ws: wss:; "
                                  "img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
                                        (const unsigned char *)csp, sizeof csp - 1, &ptr, end))
            return -1;
    }
    if (p->set_cookie && d->opt.token && kg__cookie_safe(d->opt.token)) {
        char cookie[512];
        int n = snprintf(cookie, sizeof cookie, "kg_token=%s; Path=/; HttpOnly; SameSite=Strict",
                         d->opt.token);
        if (n > 0 && (size_t)n < sizeof cookie &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"set-cookie:",
                                        (const unsigned char *)cookie, n, &ptr, end))
            return -1;
    }
    if (p->close_after &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                    (const unsigned char *)"close", 5, &ptr, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &ptr, end))
        return -1;
    if (p->head)
        p->resp_off = len;
    lws_callback_on_writable(wsi);
    return 0;
}

static int kg__http_writable(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    if (!p->responded)
        return 0;
    kg__http_resp *r = &p->resp;
    const unsigned char *body = r->static_body ? r->static_body : (const unsigned char *)r->body.buf;
    size_t len = r->static_body ? r->static_len : r->body.len;
    if (p->resp_off < len) {
        size_t n = len - p->resp_off;
        if (n > 32768)
            n = 32768;
        bool final = p->resp_off + n == len;
        kg__sb_reset(&d->out);
        if (!kg__sb_reserve(&d->out, LWS_PRE + n))
            return -1;
        memcpy(d->out.buf + LWS_PRE, body + p->resp_off, n);
        if (lws_write(wsi, (unsigned char *)d->out.buf + LWS_PRE, n,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return -1;
        p->resp_off += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (p->close_after)
        return -1;
    /* Ready for the next request on this connection. */
    kg__sb_free(&p->resp.body);
    kg__sb_free(&p->body);
    p->responded = false;
    p->resp_off = 0;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int kg__http_dispatch(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    kg__http_req req = {
        .method = p->method,
        .path = p->path,
        .query = p->query,
        .content_type = p->content_type[0] ? p->content_type : NULL,
        .accept_encoding = p->accept_encoding,
        .body = p->body.buf,
        .body_len = p->body.len,
        .body_too_large = p->body_too_large,
    };
    kg__sb_init(&p->resp.body);
    kg__api_handle(&d->hub, d, &req, &p->resp);
    if (p->resp.deferred) {
        /* history: answered when the store's query thread is done (kg__store_answers) */
        kg__squery *q = p->resp.deferred;
        q->owner = p;
        q->wsi = wsi;
        int rc = kg__store_query_submit(d->hub.store, q);
        if (rc == 0)
            return 0;
        p->resp.deferred = NULL;
        kg__squery_free(q);
        kg__api_error(&p->resp, 503, "history busy (too many queries); try again");
        p->resp.retry_after = "1";
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
    return kg__http_start_response(d, wsi, p);
}

static int kg__http_error(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, int status,
                          const char *msg, bool close)
{
    kg__sb_init(&p->resp.body);
    kg__api_error(&p->resp, status, msg);
    p->resp.cache_control = "no-store";
    p->close_after = close;
    return kg__http_start_response(d, wsi, p);
}

static int kg__on_http(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, const char *uri)
{
    char host[300];
    p->kind = KG__PSS_HTTP;
    p->responded = false;
    p->body_too_large = false;
    p->close_after = false;
    p->set_cookie = false;
    p->resp_off = 0;
    p->resp.retry_after = NULL;     /* history: headers of a previous response */
    p->resp.disposition[0] = '\0';
    kg__sb_init(&p->body);
    snprintf(p->method, sizeof p->method, "%s", kg__method(wsi));
    p->head = strcmp(p->method, "HEAD") == 0;
    if (strlen(uri) >= sizeof p->path)
        return kg__http_error(d, wsi, p, 414, "URI too long", true);
    snprintf(p->path, sizeof p->path, "%s", uri);
    kg__query(wsi, p->query, sizeof p->query);
    kg__hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, p->content_type, sizeof p->content_type);
    kg__hdr(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, p->accept_encoding, sizeof p->accept_encoding);

    if (!kg__host_ok(kg__hdr(wsi, WSI_TOKEN_HOST, host, sizeof host), d->loopback))
        return kg__http_error(d, wsi, p, 403, "Host not allowed on a loopback bind", true);
    bool via_query = false;
    if (strcmp(p->path, "/healthz") != 0 && !kg__authorized(d, wsi, p->query, &via_query))
        return kg__http_error(d, wsi, p, 401, "missing or wrong token", false);
    p->set_cookie = via_query;

    if (strcmp(p->method, "POST") == 0) {
        char cl[32];
        kg__hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
        if (cl[0]) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > d->opt.max_body) {
                char msg[96];
                snprintf(msg, sizeof msg, "body over the %zu-byte limit", d->opt.max_body);
                return kg__http_error(d, wsi, p, 413, msg, true);
            }
            if (n > 0)
                return 0;   /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
        } else if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            return 0;   /* chunked: wait for the body */
        }
    }
    return kg__http_dispatch(d, wsi, p);
}

static int kg__on_http_body(kg_dashboard_t *d, struct lws *wsi, kg__pss *p, const void *in,
                            size_t len)
{
    if (p->responded || p->body_too_large)
        return 0;
    if (p->body.len + len > d->opt.max_body) {
        /* Answer now and close: reading the rest would only waste time. */
        p->body_too_large = true;
        kg__sb_free(&p->body);
        char msg[96];
        snprintf(msg, sizeof msg, "body over the %zu-byte limit", d->opt.max_body);
        return kg__http_error(d, wsi, p, 413, msg, true);
    }
    kg__sb_add(&p->body, in, len);
    if (p->body.oom)
        return kg__http_error(d, wsi, p, 503, "out of memory", true);
    return 0;
}

/* ---- WebSocket ---------------------------------------------------------------------------- */

/* Admission before the upgrade: path, Host, token, Origin, capacity.  Returns
 * 0 to accept, 1 after sending a refusal. */
static int kg__ws_admit(kg_dashboard_t *d, struct lws *wsi)
{
    char uri[512], host[300], origin[300], query[1024], peer[64];
    kg__hdr(wsi, WSI_TOKEN_GET_URI, uri, sizeof uri);
    kg__hdr(wsi, WSI_TOKEN_HOST, host, sizeof host);
    kg__hdr(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin);
    kg__query(wsi, query, sizeof query);
    lws_get_peer_simple(wsi, peer, sizeof peer);
    int status = 0;
    const char *why = NULL;
    bool via_query;
    if (strcmp(uri, "/ws") != 0) {
        status = 404, why = "no WebSocket here (use /ws)";
    } else if (!kg__host_ok(host, d->loopback)) {
        status = 403, why = "Host not allowed on a loopback bind";
    } else if (!kg__authorized(d, wsi, query, &via_query)) {
        status = 401, why = "missing or wrong token";
    } else if (!kg__origin_ok(origin, host, d->opt.allowed_origins)) {
        status = 403, why = "foreign Origin refused";
    } else if (d->nclients >= d->opt.max_clients) {
        status = 503, why = "too many clients";
    }
    if (!status)
        return 0;
    kg__log(d, KG_DASH_LOG_WARN, "refused WebSocket from %s (origin \"%s\"): %s", peer, origin,
            why);
    if (lws_return_http_status(wsi, (unsigned)status, why))
        return -1;
    return 1;
}

/* A get_workflow_events for a run not in memory: ask Redis. */
static void kg__ws_fetch_start(kg_dashboard_t *d, struct lws *wsi, kg__pss *p)
{
    kg__wsclient *c = &p->ws;
    c->fetch_wanted = false;
    kg__fetch *f = d->redis && !p->fetch ? calloc(1, sizeof *f) : NULL;
    if (f) {
        snprintf(f->workflow_id, sizeof f->workflow_id, "%s", c->fetch_id);
        f->owner = p;
        f->wsi = wsi;
        f->ws = true;
        if (kg__redis_fetch_submit(d->redis, f) == 0) {
            p->fetch = f;
            c->fetch_busy = true;
            return;
        }
        free(f);
    }
    kg__ws_client_history(c, c->fetch_id, NULL, "history busy; try again");
}

/* Answer the connections whose history fetch has completed (service thread). */
static void kg__fetches_done(kg_dashboard_t *d)
{
    kg__fetch *f;
    while ((f = kg__redis_fetch_done(d->redis))) {
        if (f->cancelled) {
            kg__fetch_free(f);
            continue;
        }
        kg__pss *p = f->owner;
        struct lws *wsi = f->wsi;
        p->fetch = NULL;
        const char *why = f->rc ? f->error : NULL;
        if (f->ws) {
            p->ws.fetch_busy = false;
            kg__ws_client_history(&p->ws, f->workflow_id, f->rc ? NULL : f->events, why);
            lws_callback_on_writable(wsi);
        } else {
            kg__api_history(&p->resp, f->workflow_id, f->rc ? NULL : f->events, why);
            if (kg__http_start_response(d, wsi, p) != 0)
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
        kg__fetch_free(f);
    }
}

/* history: answer the connections whose store query has completed
 * (service thread), as kg__fetches_done does for Redis fetches. */
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
        if (kg__http_start_response(d, wsi, p) != 0)
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* The connection goes away while its fetch runs: the fetch is freed when it
 * comes back.  After kg__redis_source_stop every fetch is already freed. */
static void kg__fetch_cancel(kg_dashboard_t *d, kg__pss *p)
{
    if (p->fetch && d->redis)
        p->fetch->cancelled = true;
    p->fetch = NULL;
}

static void kg__ws_kick(kg_dashboard_t *d)
{
    for (kg__link *l = d->clients.next; l != &d->clients; l = l->next) {
        kg__wsclient *c = KG__CONTAINER(l, kg__wsclient, link);
        if (kg__ws_client_pending(&d->hub, c))
            lws_callback_on_writable((struct lws *)c->wsi);
    }
}

static void kg__set_clients(kg_dashboard_t *d)
{
    atomic_store(&d->clients_pub, d->nclients);
    pthread_mutex_lock(&d->hub.lock);
    kg__agg_set_clients(d->hub.agg, d->nclients);
    pthread_mutex_unlock(&d->hub.lock);
}

static int kg__ws_writable(kg_dashboard_t *d, struct lws *wsi, kg__wsclient *c)
{
    kg__sb_reset(&d->out);
    /* lws needs LWS_PRE bytes of headroom before what it writes. */
    static const char pre[LWS_PRE] = {0};
    kg__sb_add(&d->out, pre, LWS_PRE);
    uint64_t dropped_before = c->dropped_total;
    size_t n = kg__ws_client_fill(&d->hub, c, &d->out, kg__mono_now());
    if (c->dropped_total != dropped_before)
        atomic_fetch_add(&d->ws_dropped, c->dropped_total - dropped_before);
    if (d->out.oom)
        return -1;
    size_t len = d->out.len - LWS_PRE;
    if (len) {
        /* Frames are built by ws.c, so they go out as raw bytes: one write
         * for many messages. */
        if (lws_write(wsi, (unsigned char *)d->out.buf + LWS_PRE, len, LWS_WRITE_HTTP) <
            (int)len)
            return -1;
        atomic_fetch_add(&d->ws_sent, n);
    }
    if (kg__ws_client_pending(&d->hub, c))
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- the callback ------------------------------------------------------------------------ */

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
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p->responded)
            return 0;
        return kg__http_dispatch(d, wsi, p);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return kg__http_writable(d, wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p && p->kind == KG__PSS_HTTP) {
            kg__fetch_cancel(d, p);
            kg__store_query_cancel(d->hub.store, p->resp.deferred);   /* history */
            p->resp.deferred = NULL;
            kg__sb_free(&p->body);
            kg__sb_free(&p->resp.body);
            p->kind = KG__PSS_NONE;
        }
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return kg__ws_admit(d, wsi);
    case LWS_CALLBACK_ESTABLISHED: {
        if (d->nclients >= d->opt.max_clients)
            return -1;
        memset(&p->ws, 0, sizeof p->ws);
        p->kind = KG__PSS_WS;
        p->ws.wsi = wsi;
        lws_get_peer_simple(wsi, p->ws.peer, sizeof p->ws.peer);
        char query[1024], flag[8];
        kg__query(wsi, query, sizeof query);
        p->ws.batch = kg__query_get(query, "batch", flag, sizeof flag) && strcmp(flag, "1") == 0;
        if (kg__ws_client_start(&d->hub, &p->ws) != 0) {
            kg__ws_client_end(&p->ws);
            p->kind = KG__PSS_NONE;
            return -1;
        }
        kg__list_push_back(&d->clients, &p->ws.link);
        d->nclients++;
        kg__set_clients(d);
        kg__log(d, KG_DASH_LOG_INFO, "client %s connected (%u client%s)", p->ws.peer,
                d->nclients, d->nclients == 1 ? "" : "s");
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        bool final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        if (kg__ws_client_rx(&d->hub, &p->ws, in, len, final) != 0) {
            static const char why[] = "message too large";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                             sizeof why - 1);
            return -1;
        }
        if (p->ws.fetch_wanted)
            kg__ws_fetch_start(d, wsi, p);
        if (kg__ws_client_pending(&d->hub, &p->ws))
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (p->kind != KG__PSS_WS)
            return 0;
        return kg__ws_writable(d, wsi, &p->ws);
    case LWS_CALLBACK_CLOSED:
        if (p && p->kind == KG__PSS_WS) {
            kg__fetch_cancel(d, p);
            kg__list_remove(&p->ws.link);
            d->nclients--;
            kg__set_clients(d);
            kg__log(d, KG_DASH_LOG_INFO,
                    "client %s disconnected (%u left; %llu sent, %llu dropped for it)",
                    p->ws.peer, d->nclients, (unsigned long long)p->ws.sent,
                    (unsigned long long)p->ws.dropped_total);
            kg__ws_client_end(&p->ws);
            p->kind = KG__PSS_NONE;
        }
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
    double now = kg__mono_now();
    kg__sb sb;
    kg__sb_init(&sb);
    kg__sb_puts(&sb, "{\"type\":\"metrics\",\"data\":");
    pthread_mutex_lock(&d->hub.lock);
    kg__agg_tick(d->hub.agg, now);
    json_t *m = kg__agg_metrics(d->hub.agg, now);
    kg__sb_json(&sb, m);
    kg__sb_puts(&sb, "}");
    kg__msg *msg = m && !sb.oom ? kg__msg_new(sb.buf, sb.len) : NULL;
    if (msg)
        kg__hub_push_locked(&d->hub, msg, KG__B_RAW);
    pthread_mutex_unlock(&d->hub.lock);
    kg__msg_unref(msg);
    json_decref(m);
    kg__sb_free(&sb);

    for (kg__link *l = d->clients.next; l != &d->clients; l = l->next) {
        kg__wsclient *c = KG__CONTAINER(l, kg__wsclient, link);
        if (kg__ws_client_pending(&d->hub, c) && now - c->last_progress > d->opt.client_timeout) {
            kg__log(d, KG_DASH_LOG_WARN, "client %s accepted nothing for %.0f s: closing",
                    c->peer, now - c->last_progress);
            c->last_progress = now;   /* log once */
            lws_set_timeout((struct lws *)c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
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
    o->retain_days = 30;      /* history (o->db stays NULL: memory only) */
    o->retain_mb = 1024;
    o->history_queue = 65536;
}

int kg_dashboard_port(const kg_dashboard_t *d)
{
    return d ? d->port : -1;
}

void kg__server_stats(struct kg_dashboard *d, kg_dashboard_stats *out)
{
    memset(out, 0, sizeof *out);
    out->events = atomic_load(&d->hub.events);
    out->rejected = atomic_load(&d->hub.rejected);
    out->duplicates = atomic_load(&d->hub.duplicates);
    out->ws_sent = atomic_load(&d->ws_sent);
    out->ws_dropped = atomic_load(&d->ws_dropped);
    out->clients = atomic_load(&d->clients_pub);
    kg__redis_source_stats rs;
    kg__redis_source_stats_get(d->redis, &rs);
    out->redis_messages = rs.messages;
    out->redis_replayed = rs.replayed;
    out->redis_replays = rs.replays;
    out->redis_fetches = rs.fetches;
    out->redis_connected = rs.connected;
}

void kg_dashboard_stats_get(kg_dashboard_t *d, kg_dashboard_stats *out)
{
    kg__server_stats(d, out);
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
        !o->broadcast_bytes || o->client_timeout <= 0)
        return kg_error_set(err, KG_EINVAL, "ArgumentError",
                            "max_body, max_clients, client_queue, metrics_interval, "
                            "broadcast_bytes and client_timeout must be > 0");
    if (o->redis_host && (o->redis_port <= 0 || o->redis_port > 65535))
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "redis port out of range");
    return 0;
}

/* Try the bind ourselves first: a clear error ("Address already in use")
 * instead of lws' log lines, and lws 4.1 leaks a little when its vhost
 * cannot bind.  0 or an errno value. */
static int kg__probe_bind(const char *host, int port)
{
    /* Port 0 is probed too: binding an address this host does not have
     * fails the same way whatever the port. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai)
        return EADDRNOTAVAIL;
    int rc = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0)
        rc = errno;
    else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
             bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
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
    int berr = kg__probe_bind(o->bind, o->port);
    if (berr)
        return kg_error_set(err, KG_EIO, "BindError", "cannot listen on %s:%d: %s", o->bind,
                            o->port, strerror(berr));
    kg_dashboard_t *d = calloc(1, sizeof *d);
    if (!d)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    d->opt = *o;
    if (!kg__dup(d, 0, &d->opt.bind) || !kg__dup(d, 1, &d->opt.token) ||
        !kg__dup(d, 2, &d->opt.allowed_origins) || !kg__dup(d, 3, &d->opt.redis_host) ||
        !kg__dup(d, 4, &d->opt.redis_prefix) || !kg__dup(d, 5, &d->opt.redis_password) ||
        !kg__dup(d, 6, &d->opt.db)) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    d->loopback = kg__is_loopback_bind(d->opt.bind);
    kg__list_init(&d->clients);
    atomic_init(&d->stop, false);
    atomic_init(&d->clients_pub, 0);
    atomic_init(&d->ws_sent, 0);
    atomic_init(&d->ws_dropped, 0);
    if (kg__hub_init(&d->hub, &d->opt) != 0) {
        kg_dashboard_free(d);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }

    d->protocols[0] = (struct lws_protocols){
        .name = "kaygraph",
        .callback = kg__callback,
        .per_session_data_size = sizeof(kg__pss),
        .rx_buffer_size = 16384,
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = d->opt.port;
    info.iface = d->opt.bind;
    info.protocols = d->protocols;
    info.vhost_name = "kaygraph";
    info.user = d;
    info.max_http_header_data = 8192;
    info.timeout_secs = 30;
    info.keepalive_timeout = 30;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    if (!strchr(d->opt.bind, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* lws logs to stderr by default; keep only its errors (our own log
     * callback reports what matters). */
    lws_set_log_level(LLL_ERR, NULL);
    d->ctx = lws_create_context(&info);
    if (!d->ctx) {
        char where[300];
        snprintf(where, sizeof where, "%s:%d", d->opt.bind, d->opt.port);
        kg_dashboard_free(d);
        return kg_error_set(err, KG_EIO, "BindError", "cannot listen on %s", where);
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(d->ctx, "kaygraph");
    d->port = vh ? lws_get_vhost_listen_port(vh) : d->opt.port;
    d->hub.wake = kg__wake;
    d->hub.wake_ud = d;
    d->hub.history = d->opt.redis_host != NULL;
    /* history: before any source can add an event */
    if ((rc = kg__store_open(&d->hub, &d->opt, &d->hub.store, err)) != 0) {
        kg_dashboard_free(d);
        return rc;
    }
    lws_sul_schedule(d->ctx, 0, &d->sul, kg__tick, (lws_usec_t)(d->opt.metrics_interval * 1e6));
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
    kg__log(d, KG_DASH_LOG_INFO, "dashboard listening on http://%s:%d/", d->opt.bind, d->port);
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
        /* Closes every connection; their CLOSED callbacks run here, on this
         * thread, now that the service thread is gone. */
        lws_context_destroy(d->ctx);
    }
    kg__hub_destroy(&d->hub);
    kg__sb_free(&d->out);
    for (size_t i = 0; i < sizeof d->strs / sizeof d->strs[0]; i++)
        free(d->strs[i]);
    free(d);
}
