/* dashboard/server.h - what the socket side of the dashboard shares (server.c,
 * conns.c, server_ws.c); everything here belongs to the service thread.
 *
 * Connections are ours from accept to close (conns.c): the listening socket
 * is not given to libwebsockets, because lws 4.1 spins on it when accept
 * fails with EMFILE and has no connection limit of its own.  Each accepted
 * socket gets a kg__conn (connection accounting: per-address counts, last
 * progress for eviction, request deadlines, response bytes pending) and is
 * handed to lws for HTTP (lws_adopt_descriptor_vhost_via_info, the kg__conn
 * as the wsi's opaque user data).  A WebSocket upgrade is accepted on lws'
 * HTTP connection and then taken over (server_ws.c): lws 4.1 does not
 * enforce client masking and hides the mask bit, so once upgraded the
 * socket is driven by our own frame handling (wsproto.c, ws.c), with lws
 * only polling it (a raw file descriptor). */
#ifndef KG_DASH_SERVER_H
#define KG_DASH_SERVER_H

#include <libwebsockets.h>

#include "api.h"
#include "hub.h"
#include "request.h"
#include "source_redis.h"
#include "util/list.h"
#include "util/log.h"
#include "util/map.h"
#include "ws.h"

typedef enum kg__conn_kind { KG__CONN_HTTP, KG__CONN_WS } kg__conn_kind;

/* Connections from one address (d->peers, keyed by the address text). */
typedef struct kg__peer {
    unsigned conns, ws;
} kg__peer;

typedef struct kg__wsconn kg__wsconn;

typedef struct kg__conn {
    kg_link link;               /* d->conns */
    struct lws *wsi;             /* lws' HTTP wsi, or the raw wsi once WebSocket */
    int fd;
    kg__conn_kind kind;
    char addr[64];
    kg__peer *peer;
    bool adopting;               /* inside lws_adopt_* (see kg__conn_adopt) */
    bool gone;                   /* lws destroyed the wsi during adoption */
    bool closing;                /* asked to close: no longer counted as open */
    double progress;             /* last progress: accept, a request, a write */
    /* HTTP: the request being received, and the response bytes this
     * connection holds in hub.pending. */
    bool in_body;
    double req_at;
    size_t body_got;
    size_t pending;
    kg__wsconn *ws;              /* KG__CONN_WS */
} kg__conn;

struct kg_dashboard {
    kg_dashboard_options opt;
    char *strs[7];                 /* owned copies of the option strings */
    bool loopback;
    kg__hub hub;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[4];
    int port;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    kg_link clients;              /* kg__wsclient.link, service thread only */
    unsigned nclients;
    atomic_uint clients_pub;
    atomic_uint_fast64_t ws_sent, ws_dropped;
    lws_sorted_usec_list_t sul, sul_conns, sul_rearm;
    bool rearm_due;
    kg_buf out;                    /* the service thread's write buffer */
    kg__redis_source *redis;

    /* conns.c */
    int listen_fd, reserve_fd, devnull_fd;
    struct lws *listen_wsi;
    bool listen_paused;
    kg_link conns;
    size_t nconns, nclosing, max_conns;
    unsigned max_clients;          /* effective (max_conns may lower it) */
    kg_map peers;
    unsigned emfile_rounds;        /* EMFILE with closes in flight, in a row */
    double log_at;                 /* last accept/limit summary line */
    uint64_t log_emfile, log_shed, log_evicted, log_refused, log_errors;
    int log_errno;
    double trim_at;
    size_t trim_freed;             /* bytes released since the last malloc_trim */
    atomic_uint conns_pub;
    atomic_uint_fast64_t stat_evicted, stat_shed, stat_busy;
    /* What conns.c tells the HTTP and WebSocket sides (set by server.c):
     * conns.c sits below them and reaches them only through this table. */
    struct kg__conn_events {
        void (*http_timeout)(kg_dashboard_t *d, kg__conn *c);
        void (*ws_closed)(kg_dashboard_t *d, kg__conn *c);
        void (*ws_sweep)(kg_dashboard_t *d, kg__conn *c, double now);
    } conn_events;
};

enum { KG__PROTO_HTTP = 0, KG__PROTO_WS = 1, KG__PROTO_LISTEN = 2 };

/* A log line through the dashboard's callback (util/log.h). */
#define kg__server_log(d, lvl, ...) kg_log_to((d)->opt.log, (d)->opt.log_ud, (lvl), __VA_ARGS__)

/* ---- conns.c ----------------------------------------------------------------- */

/* Bind and listen (before the lws context exists); 0 or an errno value. */
int kg__listen_open(kg_dashboard_t *d);
/* Hand the listening socket to lws for polling (after the context exists). */
int kg__listen_start(kg_dashboard_t *d);
void kg__listen_close(kg_dashboard_t *d);
/* The listening socket is readable: accept what is waiting. */
void kg__listen_ready(kg_dashboard_t *d);
/* lws destroyed a wsi: if it was a connection's, forget the connection. */
void kg__conn_destroyed(kg_dashboard_t *d, struct lws *wsi);
/* Forget a connection lws will not call back about (a failed adoption). */
void kg__conn_free(kg_dashboard_t *d, kg__conn *c);
/* Close a connection at the next service round (it stops counting as open). */
void kg__conn_kill(kg_dashboard_t *d, kg__conn *c);
/* Move this connection's response bytes in hub.pending to `n`. */
void kg__conn_pending(kg_dashboard_t *d, kg__conn *c, size_t n);
/* Periodic: request deadlines, WebSocket idle, summaries, malloc_trim. */
void kg__conns_sweep(lws_sorted_usec_list_t *sul);
kg__conn *kg__conn_of(struct lws *wsi);

/* ---- server.c ---------------------------------------------------------------- */

/* A body deadline passed: answer 408 (or just close when an answer is
 * already on its way). */
void kg__http_timeout(kg_dashboard_t *d, kg__conn *c);

/* ---- server_ws.c -------------------------------------------------------------- */

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: admit and take the socket over, or
 * refuse with an HTTP/1.1 status.  Returns what the callback must return. */
int kg__ws_upgrade(kg_dashboard_t *d, struct lws *wsi);
int kg__ws_readable(kg_dashboard_t *d, kg__conn *c);
int kg__ws_writable(kg_dashboard_t *d, kg__conn *c);
void kg__ws_closed(kg_dashboard_t *d, kg__conn *c);
/* Ask for a writable callback on every client with something pending. */
void kg__ws_kick(kg_dashboard_t *d);
/* Periodic, per client: idle pings and closes, clients that accept nothing. */
void kg__ws_sweep(kg_dashboard_t *d, kg__conn *c, double now);
/* Completed history fetches for WebSocket clients. */
void kg__ws_fetch_done(kg_dashboard_t *d, kg__fetch *f);
void kg__ws_set_clients(kg_dashboard_t *d);

#endif
