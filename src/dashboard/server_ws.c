/* dashboard/server_ws.c - WebSocket connections, on their own sockets.
 *
 * libwebsockets parses the upgrade request (an HTTP request like any
 * other); in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE we decide.  A refusal is
 * written as an HTTP/1.1 status line with a reason (lws would answer an
 * upgrade request with HTTP/1.0, which WebSocket clients reject as "not a
 * valid HTTP response").  An accepted client's socket is taken from lws:
 * duplicated, lws' descriptor pointed at /dev/null (lws then closes that),
 * and the duplicate given back to lws as a raw descriptor that lws only
 * polls.  From then on the protocol is ours (wsproto.c parses, ws.c
 * decides what to send), because lws 4.1 accepts unmasked client frames
 * and cannot be told not to (RFC 6455 5.1: the server must close).
 * Owning the connection also gives exact flow control: we stop reading a
 * client whose replies are not written yet, so pipelined requests are
 * answered one by one instead of being dropped.
 *
 * Per client: the bytes framed and not yet written (out, freed once
 * written, so an idle client holds no buffer), a pending control frame
 * (pong, or our ping), unparsed input kept while reading is paused.
 * Limits: max_clients in all, max_clients_per_ip per address; a client
 * that sends nothing for ws_idle_timeout (we ping it half-way) or accepts
 * nothing for client_timeout is closed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "server.h"
#include "util/clock.h"
#include "wsproto.h"

#define KG__WS_READ 16384            /* bytes per read */
#define KG__WS_FILLS_PER_WRITE 4     /* fills per writable callback, then others' turn */
#define KG__WS_CLOSE_WAIT 5.0        /* seconds for a close frame to leave */

struct kg__wsconn {
    kg__wsclient c;
    kg__wsrx rx;
    kg_buf out;
    size_t out_off;
    uint8_t ctl[KG__WS_CONTROL_MAX];
    size_t ctl_len;
    uint8_t *stash;              /* unparsed input while reading is paused */
    size_t stash_len;
    bool paused, closing, ping_sent;
    bool rearm;                  /* wants a writable callback (kg__ws_want_write) */
    double closing_at, last_rx;
    kg__fetch *fetch;
};

/* ---- asking for writable callbacks ------------------------------------------------------- */

static void kg__ws_rearm(lws_sorted_usec_list_t *sul)
{
    kg_dashboard_t *d = lws_container_of(sul, kg_dashboard_t, sul_rearm);
    d->rearm_due = false;
    for (kg_link *l = d->clients.next; l != &d->clients; l = l->next) {
        kg__conn *c = KG_CONTAINER_OF(l, kg__wsclient, link)->conn;
        if (c->ws->rearm && c->wsi) {
            c->ws->rearm = false;
            lws_callback_on_writable(c->wsi);
        }
    }
}

/* lws clears POLLOUT on a raw descriptor right after its writable callback
 * returns, undoing a lws_callback_on_writable made inside it.  So the
 * request is made from a timer due at once (before the next poll). */
static void kg__ws_want_write(kg_dashboard_t *d, kg__conn *c)
{
    c->ws->rearm = true;
    if (!d->rearm_due) {
        d->rearm_due = true;
        lws_sul_schedule(d->ctx, 0, &d->sul_rearm, kg__ws_rearm, 1);
    }
}

/* ---- the upgrade ---------------------------------------------------------------------- */

static const char *kg__reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 426: return "Upgrade Required";
    default: return "Service Unavailable";
    }
}

/* Write a refusal on lws' socket before lws closes it.  A few hundred bytes
 * on a socket that has sent nothing yet: the kernel takes them at once. */
static void kg__ws_refuse(struct lws *wsi, int status, const char *why)
{
    char body[256], buf[640];
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "{\"error\":");
    kg_buf_json_cstr(&sb, why);
    kg_buf_puts(&sb, "}");
    snprintf(body, sizeof body, "%s", sb.failed ? "{}" : sb.data);
    kg_buf_free(&sb);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%sConnection: close\r\n\r\n%s",
                     status, kg__reason(status), strlen(body),
                     status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                     status == 503 ? "Retry-After: 5\r\n" : "", body);
    if (n > 0 && (size_t)n < sizeof buf)
        (void)!send(lws_get_socket_fd(wsi), buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}


/* Admission: 0, or the refusal's status with *why (a static or `buf`). */
static int kg__ws_admit(kg_dashboard_t *d, struct lws *wsi, kg__conn *c, const char *query,
                        char *buf, size_t buflen, const char **why)
{
    char uri[512], host[300], origin[300], key[64], ver[8];
    kg__hdr(wsi, WSI_TOKEN_GET_URI, uri, sizeof uri);
    kg__hdr(wsi, WSI_TOKEN_HOST, host, sizeof host);
    kg__hdr(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin);
    kg__hdr(wsi, WSI_TOKEN_KEY, key, sizeof key);
    kg__hdr(wsi, WSI_TOKEN_VERSION, ver, sizeof ver);
    bool via_query;
    if (strcmp(uri, "/ws") != 0)
        return *why = "no WebSocket here (use /ws)", 404;
    if (!kg__host_ok(host, d->loopback))
        return *why = "Host not allowed on a loopback bind", 403;
    if (!kg__server_authorized(&d->opt, wsi, query, &via_query))
        return *why = "missing or wrong token", 401;
    if (!kg__origin_ok(origin, host, d->opt.allowed_origins))
        return *why = "foreign Origin refused", 403;
    if (strcmp(ver, "13") != 0)
        return *why = "unsupported WebSocket version (13 only)", 426;
    if (strlen(key) != 24)
        return *why = "missing or malformed Sec-WebSocket-Key", 400;
    if (d->nclients >= d->max_clients) {
        snprintf(buf, buflen, "too many WebSocket clients (limit %u); retry later", d->max_clients);
        return *why = buf, 503;
    }
    if (d->opt.max_clients_per_ip && c && c->peer && c->peer->ws >= d->opt.max_clients_per_ip) {
        snprintf(buf, buflen, "too many WebSocket clients from %s (limit %u per address)",
                 c->addr, d->opt.max_clients_per_ip);
        return *why = buf, 503;
    }
    return 0;
}

/* Sec-WebSocket-Accept for a client key (RFC 6455 4.2.2). */
static void kg__ws_accept_key(const char *key, char out[32])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[24 + sizeof guid];
    memcpy(cat, key, 24);
    memcpy(cat + 24, guid, sizeof guid);
    unsigned char sha[20];
    lws_SHA1((const unsigned char *)cat, 24 + sizeof guid - 1, sha);
    lws_b64_encode_string((const char *)sha, 20, out, 32);
}

/* Take the socket from lws: a duplicate for us, /dev/null for lws to close.
 * Returns our descriptor or -1. */
static int kg__ws_take_fd(kg_dashboard_t *d, struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi);
    int ours = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (ours < 0)
        return -1;
    /* Atomically replaces lws' descriptor: its shutdown() then fails
     * harmlessly (not a socket) and its close() closes /dev/null. */
    if (dup2(d->devnull_fd, fd) < 0) {
        close(ours);
        return -1;
    }
    return ours;
}

static void kg__ws_client_add(kg_dashboard_t *d, kg__conn *c)
{
    kg_list_push_back(&d->clients, &c->ws->c.link);
    d->nclients++;
    if (c->peer)
        c->peer->ws++;
    kg__ws_set_clients(d);
    kg__server_log(d, KG_DASH_LOG_INFO, "client %s connected (%u client%s)", c->addr, d->nclients,
            d->nclients == 1 ? "" : "s");
}

int kg__ws_upgrade(kg_dashboard_t *d, struct lws *wsi)
{
    kg__conn *c = kg__conn_of(wsi);
    char query[1024], buf[160], origin[300];
    kg__server_query(wsi, query, sizeof query);
    const char *why = NULL;
    int status = kg__ws_admit(d, wsi, c, query, buf, sizeof buf, &why);
    if (!status && (!c || c->ws))
        status = 503, why = "internal error";
    kg__wsconn *w = NULL;
    int fd = -1;
    if (!status && (!(w = calloc(1, sizeof *w)) || (fd = kg__ws_take_fd(d, wsi)) < 0))
        status = 503, why = "out of resources";
    if (status) {
        free(w);
        kg__server_log(d, KG_DASH_LOG_WARN, "refused WebSocket from %s (origin \"%s\"): %d %s",
                c ? c->addr : "?", kg__hdr(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin), status,
                why);
        kg__ws_refuse(wsi, status, why);
        return -1;   /* lws closes the connection */
    }
    /* From here the connection is ours; lws closes its (now /dev/null)
     * descriptor when we return, without the connection. */
    lws_set_opaque_user_data(wsi, NULL);
    char key[64], accept[32], flag[8];
    kg__hdr(wsi, WSI_TOKEN_KEY, key, sizeof key);
    kg__ws_accept_key(key, accept);
    kg_buf_printf(&w->out,
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                  accept);
    w->c.batch = kg__query_get(query, "batch", flag, sizeof flag) && strcmp(flag, "1") == 0;
    w->c.conn = c;
    snprintf(w->c.peer, sizeof w->c.peer, "%s", c->addr);
    w->last_rx = kg_clock_mono();
    c->kind = KG__CONN_WS;
    c->ws = w;
    c->fd = fd;
    c->wsi = NULL;
    c->progress = w->last_rx;
    kg__ws_client_add(d, c);
    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof ad);
    ad.vh = d->vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = fd;
    ad.vh_prot_name = d->protocols[KG__PROTO_WS].name;
    ad.opaque = c;
    c->adopting = true;
    struct lws *nw = kg__ws_client_start(&d->hub, &w->c) == 0
                         ? lws_adopt_descriptor_vhost_via_info(&ad)
                         : NULL;
    c->adopting = false;
    if (!nw) {
        /* lws does not close a raw descriptor it failed to adopt. */
        close(fd);
        kg__conn_free(d, c);
        return -1;
    }
    c->wsi = nw;
    kg__ws_want_write(d, c);
    return -1;
}

/* ---- closing ---------------------------------------------------------------------------- */

/* Close with a close frame (when no data frame is half-written, where one
 * cannot go), after what is queued has gone out. */
static void kg__ws_close(kg_dashboard_t *d, kg__conn *c, uint16_t code, const char *why)
{
    kg__wsconn *w = c->ws;
    if (w->closing)
        return;
    w->closing = true;
    w->closing_at = kg_clock_mono();
    if (!w->c.cur_active) {
        uint8_t f[KG__WS_CONTROL_MAX];
        kg_buf_append(&w->out, f, kg__ws_close_frame(f, code, why));
    }
    if (w->out.failed)
        kg__conn_kill(d, c);
    else
        kg__ws_want_write(d, c);
}

void kg__ws_closed(kg_dashboard_t *d, kg__conn *c)
{
    kg__wsconn *w = c->ws;
    if (!w)
        return;
    if (w->fetch && d->redis)
        w->fetch->cancelled = true;
    kg_list_remove(&w->c.link);
    d->nclients--;
    if (c->peer)
        c->peer->ws--;
    kg__ws_set_clients(d);
    kg__server_log(d, KG_DASH_LOG_INFO, "client %s disconnected (%u left; %llu sent, %llu dropped for it)",
            c->addr, d->nclients, (unsigned long long)w->c.sent,
            (unsigned long long)w->c.dropped_total);
    kg__ws_client_end(&d->hub, &w->c);
    kg_buf_free(&w->out);
    free(w->stash);
    free(w);
    c->ws = NULL;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void kg__ws_fetch_start(kg_dashboard_t *d, kg__conn *c)
{
    kg__wsconn *w = c->ws;
    w->c.fetch_wanted = false;
    kg__fetch *f = d->redis && !w->fetch ? calloc(1, sizeof *f) : NULL;
    if (f) {
        snprintf(f->workflow_id, sizeof f->workflow_id, "%s", w->c.fetch_id);
        f->owner = c;
        f->wsi = c->wsi;
        f->ws = true;
        if (kg__redis_fetch_submit(d->redis, f) == 0) {
            w->fetch = f;
            w->c.fetch_busy = true;
            return;
        }
        free(f);
    }
    kg__ws_client_history(&d->hub, &w->c, w->c.fetch_id, NULL, "history busy; try again");
}

void kg__ws_fetch_done(kg_dashboard_t *d, kg__fetch *f)
{
    kg__conn *c = f->owner;
    kg__wsconn *w = c->ws;
    w->fetch = NULL;
    w->c.fetch_busy = false;
    kg__ws_client_history(&d->hub, &w->c, f->workflow_id, f->rc ? NULL : f->events,
                          f->rc ? f->error : NULL);
    kg__ws_want_write(d, c);
}

/* One event from the parser.  False when the connection is closing. */
static bool kg__ws_event(kg_dashboard_t *d, kg__conn *c, const kg__wsev *ev)
{
    kg__wsconn *w = c->ws;
    switch (ev->type) {
    case KG__WSEV_DATA: {
        int rc = kg__ws_client_rx(&d->hub, &w->c, ev->data, ev->len, ev->final);
        if (rc == KG_EPROTO)
            kg__ws_close(d, c, 1009, "message too large");
        else if (rc == KG_EPARSE)
            kg__ws_close(d, c, 1007, "text message is not UTF-8");
        else if (rc != 0)
            kg__ws_close(d, c, 1011, "out of memory");
        else if (w->c.fetch_wanted)
            kg__ws_fetch_start(d, c);
        break;
    }
    case KG__WSEV_PING:
        /* One pong pending at most: a newer ping's replaces an older one's. */
        w->ctl_len = kg__ws_control_frame(w->ctl, 10, ev->data, ev->len);
        break;
    case KG__WSEV_CLOSE:
        kg__ws_close(d, c, ev->code == 1005 ? 1000 : ev->code, "");
        break;
    case KG__WSEV_ERROR:
        kg__server_log(d, KG_DASH_LOG_WARN, "client %s: protocol error (%s): closing", c->addr,
                ev->why);
        kg__ws_close(d, c, ev->code, ev->why);
        break;
    default:
        break;
    }
    return !w->closing;
}

/* Parse what arrived; stop (and keep the rest) while the client's replies
 * are queued up, so that every request is answered. */
static void kg__ws_consume(kg_dashboard_t *d, kg__conn *c, uint8_t *p, size_t n)
{
    kg__wsconn *w = c->ws;
    size_t off = 0;
    while (off < n && !w->closing) {
        if (!kg__ws_client_can_take(&w->c)) {
            uint8_t *s = malloc(n - off);
            if (!s) {
                kg__conn_kill(d, c);
                return;
            }
            memcpy(s, p + off, n - off);
            w->stash = s;
            w->stash_len = n - off;
            if (!w->paused) {
                lws_rx_flow_control(c->wsi, 0);
                w->paused = true;
            }
            break;
        }
        kg__wsev ev;
        size_t used = kg__wsrx_parse(&w->rx, p + off, n - off, &ev);
        off += used;
        if (!kg__ws_event(d, c, &ev))
            break;
        if (used == 0 && ev.type == KG__WSEV_NONE)
            break;
    }
    if (kg__ws_client_pending(&d->hub, &w->c) || w->ctl_len)
        kg__ws_want_write(d, c);
}

int kg__ws_readable(kg_dashboard_t *d, kg__conn *c)
{
    kg__wsconn *w = c->ws;
    uint8_t buf[KG__WS_READ];
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0)
        return -1;   /* the client closed */
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (w->closing)
        return 0;    /* what comes after a close is ignored */
    w->last_rx = kg_clock_mono();
    w->ping_sent = false;
    kg__ws_consume(d, c, buf, (size_t)n);
    return 0;
}

/* The reply queue has room again: parse what was kept, then read again. */
static void kg__ws_resume(kg_dashboard_t *d, kg__conn *c)
{
    kg__wsconn *w = c->ws;
    if (!w->paused || !kg__ws_client_can_take(&w->c))
        return;
    uint8_t *s = w->stash;
    size_t n = w->stash_len;
    w->stash = NULL;
    w->stash_len = 0;
    w->paused = false;
    if (s)
        kg__ws_consume(d, c, s, n);
    free(s);
    if (!w->paused)
        lws_rx_flow_control(c->wsi, 1);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Send what the socket takes; bytes sent, or -1 on error. */
static ssize_t kg__ws_send(kg__conn *c, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = send(c->fd, p + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        done += (size_t)r;
    }
    if (done)
        c->progress = c->ws->c.last_progress = kg_clock_mono();
    return (ssize_t)done;
}

/* Frames are built in the service thread's buffer (d->out) and written at
 * once; only what the socket did not take is kept, in the client's own
 * buffer (w->out), and written first next time.  A client that keeps up
 * holds no buffer at all. */
int kg__ws_writable(kg_dashboard_t *d, kg__conn *c)
{
    kg__wsconn *w = c->ws;
    for (int round = 0; round < KG__WS_FILLS_PER_WRITE; round++) {
        if (w->out.len > w->out_off) {
            ssize_t r = kg__ws_send(c, w->out.data + w->out_off, w->out.len - w->out_off);
            if (r < 0)
                return -1;
            w->out_off += (size_t)r;
            if (w->out_off < w->out.len) {
                kg__ws_want_write(d, c);
                return 0;
            }
            kg_buf_free(&w->out);
            w->out_off = 0;
        }
        if (w->closing)
            return -1;   /* the close frame is out */
        kg_buf_reset(&d->out);
        if (w->ctl_len && !w->c.cur_active) {
            kg_buf_append(&d->out, w->ctl, w->ctl_len);
            w->ctl_len = 0;
        }
        if (kg__ws_client_pending(&d->hub, &w->c)) {
            uint64_t dropped = w->c.dropped_total;
            size_t n = kg__ws_client_fill(&d->hub, &w->c, &d->out, kg_clock_mono());
            atomic_fetch_add(&d->ws_sent, n);
            if (w->c.dropped_total != dropped)
                atomic_fetch_add(&d->ws_dropped, w->c.dropped_total - dropped);
        }
        if (d->out.failed)
            return -1;
        if (d->out.len) {
            ssize_t r = kg__ws_send(c, d->out.data, d->out.len);
            if (r < 0)
                return -1;
            if ((size_t)r < d->out.len) {
                kg_buf_append(&w->out, d->out.data + r, d->out.len - (size_t)r);
                if (w->out.failed)
                    return -1;
            }
        }
        /* Room in the reply queue again: read what waited (it may queue
         * replies, or a close frame after what is left in w->out). */
        kg__ws_resume(d, c);
        if (!d->out.len && w->out.len == w->out_off && !w->closing)
            return 0;
    }
    kg__ws_want_write(d, c);
    return 0;
}

/* ---- housekeeping --------------------------------------------------------------------------- */

void kg__ws_kick(kg_dashboard_t *d)
{
    for (kg_link *l = d->clients.next; l != &d->clients; l = l->next) {
        kg__wsclient *wc = KG_CONTAINER_OF(l, kg__wsclient, link);
        kg__conn *c = wc->conn;
        if (c->wsi && kg__ws_client_pending(&d->hub, wc))
            lws_callback_on_writable(c->wsi);
    }
}

void kg__ws_set_clients(kg_dashboard_t *d)
{
    atomic_store(&d->clients_pub, d->nclients);
    pthread_mutex_lock(&d->hub.lock);
    kg__agg_set_clients(d->hub.agg, d->nclients);
    pthread_mutex_unlock(&d->hub.lock);
}

void kg__ws_sweep(kg_dashboard_t *d, kg__conn *c, double now)
{
    kg__wsconn *w = c->ws;
    if (!w || !c->wsi)
        return;
    if (w->closing) {
        if (now - w->closing_at > KG__WS_CLOSE_WAIT)
            kg__conn_kill(d, c);
        return;
    }
    if ((w->out.len > w->out_off || kg__ws_client_pending(&d->hub, &w->c)) &&
        now - w->c.last_progress > d->opt.client_timeout) {
        kg__server_log(d, KG_DASH_LOG_WARN, "client %s accepted nothing for %.0f s: closing", c->addr,
                now - w->c.last_progress);
        kg__conn_kill(d, c);
        return;
    }
    double idle = now - w->last_rx;
    if (idle > d->opt.ws_idle_timeout) {
        kg__server_log(d, KG_DASH_LOG_INFO, "client %s sent nothing for %.0f s (not even a pong): closing",
                c->addr, idle);
        kg__ws_close(d, c, 1001, "idle");
    } else if (idle > d->opt.ws_idle_timeout / 2 && !w->ping_sent) {
        w->ping_sent = true;
        w->ctl_len = kg__ws_control_frame(w->ctl, 9, "kg", 2);
        kg__ws_want_write(d, c);
    }
}
