/* dashboard/dash_internal.h - the dashboard's private types, shared by src/dashboard.
 *
 * The server is split by concern so that everything but server.c works
 * without a socket (unit tests and fuzz targets call it directly):
 *
 *   util.c        string builder, refcounted messages, string map, clocks
 *   aggregate.c   kg__agg: the aggregated state (not thread-safe, time passed in)
 *   hub.c         kg__hub: agg + broadcast ring + lock; what sources feed
 *   ingest.c      event validation and webhook-body parsing (a source)
 *   source_redis.c the Redis subscription thread (a source)
 *   feed.c        the in-process backend (a source)
 *   ws.c          one WebSocket client: its cursor in the broadcast ring, its
 *                 private queue, client messages, frame building
 *   wsproto.c     the WebSocket protocol's receive side (frame parser, UTF-8)
 *   api.c         HTTP routes as a pure function of a request
 *   auth.c        token, Origin and Host rules
 *   prometheus.c  /metrics text exposition
 *   server.c      libwebsockets context, service thread, thin callbacks, HTTP
 *   conns.c       the listening socket, connection accounting and limits
 *   server_ws.c   WebSocket connections on their own sockets (see server.h)
 *
 * Locking: one mutex in the hub guards the agg and the broadcast ring.
 * Clients (kg__wsclient) belong to the service thread alone. */
#ifndef KG_DASH_INTERNAL_H
#define KG_DASH_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaygraph/dashboard.h"
#include "kaygraph/error.h"

/* ---- util.c ------------------------------------------------------------------ */

/* Growable byte string.  On allocation failure `oom` is set and further
 * appends do nothing, so callers check once at the end. */
typedef struct kg__sb {
    char *buf;
    size_t len, cap;
    bool oom;
} kg__sb;

void kg__sb_init(kg__sb *sb);
void kg__sb_free(kg__sb *sb);
void kg__sb_reset(kg__sb *sb);              /* len = 0, keeps a small buffer */
bool kg__sb_reserve(kg__sb *sb, size_t extra);
void kg__sb_add(kg__sb *sb, const void *p, size_t n);
void kg__sb_puts(kg__sb *sb, const char *s);
void kg__sb_printf(kg__sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kg__sb_json_str(kg__sb *sb, const char *s);   /* "quoted, escaped" */
void kg__sb_json(kg__sb *sb, const json_t *j);     /* compact dump */
/* Take the buffer (NUL-terminated, malloc'd); the builder is reset. NULL on oom. */
char *kg__sb_steal(kg__sb *sb, size_t *len);

/* Immutable refcounted text (an event's JSON, a prebuilt message).  Shared by
 * the stores, the broadcast ring and clients across threads. */
typedef struct kg__msg {
    atomic_uint refs;
    size_t len;
    char data[];   /* NUL-terminated */
} kg__msg;

kg__msg *kg__msg_new(const char *p, size_t len);      /* refs = 1; NULL on oom */
kg__msg *kg__msg_ref(kg__msg *m);
void kg__msg_unref(kg__msg *m);                        /* NULL is a no-op */

/* A long text made of shared texts (events held by the stores) so that a
 * response or a reply costs a list of references, not a copy: it is copied
 * out piece by piece as the socket drains.  A part may be preceded by a
 * comma (JSON arrays of events). */
typedef struct kg__part {
    kg__msg *m;
    bool comma;
} kg__part;

typedef struct kg__body {
    kg__part *v;
    size_t n, cap;
    size_t len;       /* bytes in all */
    size_t sent;      /* bytes copied out so far */
    size_t i, off;    /* where the next copy starts */
    bool oom;
} kg__body;

void kg__body_init(kg__body *b);
void kg__body_free(kg__body *b);
void kg__body_add(kg__body *b, kg__msg *m, bool comma);      /* takes a reference */
void kg__body_text(kg__body *b, const char *p, size_t n);    /* copies p */
/* Append up to `max` bytes from where the last copy stopped; returns how
 * many.  Parts copied out in full are released at once. */
size_t kg__body_copy(kg__body *b, kg__sb *out, size_t max);
static inline size_t kg__body_left(const kg__body *b)
{
    return b->len - b->sent;
}

/* String-keyed hash map (chained).  Keys are copied; values borrowed. */
typedef struct kg__mapent {
    struct kg__mapent *next;
    uint64_t hash;
    void *val;
    char key[];
} kg__mapent;

typedef struct kg__map {
    kg__mapent **b;
    size_t nb, n;
} kg__map;

uint64_t kg__hash(const char *s, size_t n);
void kg__map_free(kg__map *m);                 /* frees entries, not values */
void *kg__map_get(const kg__map *m, const char *key);
int kg__map_put(kg__map *m, const char *key, void *val);   /* 0 / KG_ENOMEM */
void *kg__map_del(kg__map *m, const char *key);            /* the old value */

/* Intrusive doubly linked list (LRU orders). */
typedef struct kg__link {
    struct kg__link *prev, *next;
} kg__link;

void kg__list_init(kg__link *head);
void kg__list_push_back(kg__link *head, kg__link *l);
void kg__list_remove(kg__link *l);
bool kg__list_empty(const kg__link *head);
#define KG__CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

double kg__mono_now(void);        /* monotonic seconds */
double kg__wall_now(void);        /* Unix seconds */
void kg__iso_time(double unix_s, char out[32]);   /* 2026-11-27T17:36:13.123Z */
/* ISO 8601 UTC to epoch ms; -1 when unparsable. */
int64_t kg__parse_iso_ms(const char *s);

/* ---- events (ingest.c) ------------------------------------------------------- */

#define KG__ID_MAX 256   /* longest node / workflow / correlation id accepted */
#define KG__PATH_MAX 2048   /* longest node_path accepted */

/* A validated event: every pointer borrows from `root`. */
typedef struct kg__event {
    json_t *root;
    const char *event_id, *timestamp, *node_id, *node_type;
    const char *node_path;   /* "" when the producer sends none */
    const char *event_type, *event_name, *correlation_id, *workflow_id;
    json_t *data;
    int type;      /* kg_event_type, or -1 */
    int name;      /* kg_event_name, or -1 */
    uint64_t seq;
    bool has_seq;
    int64_t ts_ms; /* -1 when the timestamp did not parse */
} kg__event;

/* Check the schema of `root` (borrowed) and fill `ev`.  0 or KG_EPARSE. */
int kg__event_check(json_t *root, kg__event *ev, kg_error_t *err);

/* Event-name / type tables (ours, from monitor.h's X-macros). */
int kg__event_type_index(const char *s);
int kg__event_name_index(const char *s);
const char *kg__event_name_at(int i);
const char *kg__event_type_at(int i);
int kg__event_name_count(void);

/* ---- aggregate.c --------------------------------------------------------------- */

typedef struct kg__agg kg__agg;

typedef struct kg__agg_limits {
    size_t recent_events, max_runs, max_run_events, max_nodes, max_store_bytes;
    size_t max_edges, max_topologies;
    double stale_after;
} kg__agg_limits;

kg__agg *kg__agg_new(const kg__agg_limits *lim, double now);
void kg__agg_free(kg__agg *a);

/* Add one validated event with its text `msg` (a reference is taken).
 * 0, KG_EEXISTS for a duplicate event_id (nothing changed), KG_ENOMEM. */
int kg__agg_add(kg__agg *a, const kg__event *ev, kg__msg *msg, double now);

/* Periodic work: stale runs and nodes. */
void kg__agg_tick(kg__agg *a, double now);

void kg__agg_note_rejected(kg__agg *a, uint64_t n);
void kg__agg_note_ws(kg__agg *a, uint64_t sent, uint64_t dropped);
void kg__agg_set_clients(kg__agg *a, unsigned clients);

/* Snapshots (new references / appended text). */
json_t *kg__agg_metrics(kg__agg *a, double now);
json_t *kg__agg_network_graph(kg__agg *a);
json_t *kg__agg_active_nodes(kg__agg *a);
json_t *kg__agg_active_workflows(kg__agg *a);
json_t *kg__agg_runs(kg__agg *a, size_t max);   /* summaries, oldest first */
/* The last `limit` events as a JSON array text, oldest first. */
void kg__agg_recent_json(kg__agg *a, size_t limit, kg__sb *sb);
/* The same as references appended to `b` (comma-separated, no brackets). */
void kg__agg_recent_refs(kg__agg *a, size_t limit, kg__body *b);
int kg__agg_run_events_refs(kg__agg *a, const char *workflow_id, kg__body *b, json_t **summary);
/* One run's events as a JSON array text; KG_ENOTFOUND when unknown.  The
 * run's summary (status, graph, truncated) as a new object in *summary. */
int kg__agg_run_events_json(kg__agg *a, const char *workflow_id, kg__sb *sb, json_t **summary);
/* {"type":"initial","data":{...}}: the last 100 events, each producer's in
 * seq order, an event over 64 KiB as a brief ("data":{"truncated":true,
 * "original_size":N}), so the message stays under ~7 MiB. */
void kg__agg_initial_json(kg__agg *a, double now, kg__sb *sb);

typedef struct kg__agg_counts {
    uint64_t total, rejected, duplicates, errors;
    uint64_t by_type[4];
    size_t runs, nodes, store_bytes, recent;
} kg__agg_counts;
void kg__agg_counts_get(kg__agg *a, kg__agg_counts *out);

/* Prometheus text (prometheus.c walks the agg through this). */
void kg__agg_prometheus(kg__agg *a, double now, kg__sb *sb);

/* ---- hub.c ------------------------------------------------------------------- */

typedef enum kg__bkind { KG__B_EVENT = 0, KG__B_RAW = 1 } kg__bkind;

typedef struct kg__bentry {
    kg__msg *msg;
    uint8_t kind;   /* KG__B_EVENT: wrap as {"type":"event","data":msg} */
} kg__bentry;

typedef struct kg__hub {
    pthread_mutex_t lock;
    kg__agg *agg;
    /* Broadcast ring: entries [tail, head) are alive; entry i at ring[i & mask]. */
    kg__bentry *ring;
    uint64_t mask, head, tail;
    size_t ring_bytes, ring_max_bytes;
    _Atomic uint64_t head_pub;     /* head, readable without the lock */
    size_t max_body;
    size_t client_queue;
    double started;
    /* Called (outside the lock) when new messages wait for clients; the
     * server sets it to wake its service thread. */
    void (*wake)(void *ud);
    void *wake_ud;
    atomic_bool wake_pending;
    atomic_uint_fast64_t events, rejected, duplicates;
    /* A Redis history is configured: runs unknown here may be fetched
     * (set before any thread starts, read-only after). */
    bool history;
    /* Bytes of responses and replies waiting for slow readers (HTTP and
     * WebSocket, all connections) and the budget: over it, large new ones
     * are refused.  Service thread only. */
    size_t pending, pending_max;
    /* Run history (store.h): every accepted event is also queued there.
     * NULL with --db none.  Set before any source starts. */
    struct kg__store *store;
} kg__hub;

int kg__hub_init(kg__hub *h, const kg_dashboard_options *o);
void kg__hub_destroy(kg__hub *h);
/* Add a validated event (text in msg).  Takes the lock.  Does not wake the
 * service thread: a source adds a group of events (a read from Redis, a
 * replay page, a batch) and then calls kg__hub_wake once; one wake-up per
 * event costs more than the event (an eventfd write and a poll cycle). */
int kg__hub_add(kg__hub *h, const kg__event *ev, kg__msg *msg);
/* Push a prebuilt message to every client (caller holds the lock). */
void kg__hub_push_locked(kg__hub *h, kg__msg *msg, kg__bkind kind);
void kg__hub_wake(kg__hub *h);

/* ---- ingest.c ----------------------------------------------------------------- */

typedef struct kg__ingest_result {
    size_t accepted, rejected, duplicates;
    char first_error[KG_ERROR_MESSAGE_MAX];
} kg__ingest_result;

/* Parse a webhook body (bare event or batch) and add its events to the hub.
 * See kg_dashboard_ingest for the return codes. */
int kg__ingest_body(kg__hub *h, const char *body, size_t len, kg__ingest_result *res,
                    kg_error_t *err);
/* One event's JSON text (the in-process feed, Redis Pub/Sub and stream);
 * `text` is borrowed.  Like kg__hub_add, it does not wake the service
 * thread: call kg__hub_wake after a group. */
int kg__ingest_event_text(kg__hub *h, const char *text, size_t len, kg_error_t *err);

/* ---- ws.c ----------------------------------------------------------------------- */

#define KG__WS_PRIVATE_MAX 16            /* queued replies per client */
#define KG__WS_PRIV_BYTES_MAX (16u << 20) /* reply bytes queued per client */
#define KG__WS_RX_MAX (64 * 1024)        /* largest client message */
#define KG__WS_WRITE_SOFT (64 * 1024)    /* bytes per write before yielding */

typedef struct kg__wsclient {
    kg__link link;            /* in the server's client list */
    void *conn;               /* the server's connection, NULL when not on a socket */
    uint64_t cursor;          /* next broadcast entry to send */
    kg__body priv[KG__WS_PRIVATE_MAX];  /* replies, sent before broadcasts */
    unsigned priv_head, priv_len;
    size_t priv_bytes;        /* queued and half-written reply bytes */
    kg__body cur;             /* the reply being written (its header is out) */
    bool cur_active;
    /* Answers owed to requests that found the queue full or the budget
     * spent: framed as short errors, one per request. */
    unsigned owed_full, owed_busy;
    uint64_t dropped;         /* dropped for this client, not yet noticed */
    uint64_t dropped_total;
    bool resync;              /* send notice + initial before anything else */
    double last_progress;     /* last time a write went out (or connect) */
    uint64_t sent;
    char *rx;                 /* fragments of the message being received */
    size_t rx_len;
    bool rx_overflow;
    char peer[64];
    bool batch;               /* asked for {"type":"events","data":[...]} frames */
    /* get_workflow_events for a run not in memory, with h->history: ws.c
     * sets fetch_wanted and fetch_id instead of answering; the server starts
     * the fetch (fetch_busy while it runs) and answers through
     * kg__ws_client_history. */
    bool fetch_wanted, fetch_busy;
    char fetch_id[KG__ID_MAX + 1];
} kg__wsclient;

/* Start a client: its cursor and an "initial" message, consistent with each
 * other (one lock).  0 or KG_ENOMEM. */
int kg__ws_client_start(kg__hub *h, kg__wsclient *c);
/* Release what the client holds (its replies leave h->pending). */
void kg__ws_client_end(kg__hub *h, kg__wsclient *c);
/* A received fragment; on the final one the message is handled and replies
 * are queued.  Returns 0, KG_EPROTO (over KG__WS_RX_MAX: close 1009) or
 * KG_EPARSE (not UTF-8: close 1007) when the client must be closed. */
int kg__ws_client_rx(kg__hub *h, kg__wsclient *c, const void *p, size_t n, bool final);
/* False when the reply queue is (nearly) full: stop reading this client's
 * messages until kg__ws_client_fill has made room. */
bool kg__ws_client_can_take(const kg__wsclient *c);
/* Handle one whole client message (fuzzable). */
void kg__ws_client_message(kg__hub *h, kg__wsclient *c, const char *msg, size_t len);
/* True when something waits for this client. */
bool kg__ws_client_pending(kg__hub *h, const kg__wsclient *c);
/* Queue the workflow_events reply for a run fetched from Redis: `events`
 * (borrowed array) or NULL when not found (`why` then says why, or NULL). */
void kg__ws_client_history(kg__hub *h, kg__wsclient *c, const char *workflow_id, json_t *events,
                           const char *why);
/* Append the next WebSocket frames (server frames: unmasked text) to `out`,
 * about KG__WS_WRITE_SOFT bytes (at least one whole message if any).
 * Returns the number of messages framed. */
size_t kg__ws_client_fill(kg__hub *h, kg__wsclient *c, kg__sb *out, double now);
/* Frame header for an unmasked FIN text frame of `len` bytes; returns its size. */
size_t kg__ws_frame_header(uint8_t hdr[10], uint64_t len);

/* ---- wsproto.c ------------------------------------------------------------------- */

bool kg__utf8_valid(const void *data, size_t n);

#define KG__WS_CONTROL_MAX 127
/* A server control frame (close 8, ping 9, pong 10), payload cut at 125. */
size_t kg__ws_control_frame(uint8_t out[KG__WS_CONTROL_MAX], int opcode, const void *payload,
                            size_t n);
size_t kg__ws_close_frame(uint8_t out[KG__WS_CONTROL_MAX], uint16_t code, const char *why);

typedef enum kg__wsev_type {
    KG__WSEV_NONE,    /* more bytes needed */
    KG__WSEV_DATA,    /* a chunk of a text message: data/len, `final` on its last */
    KG__WSEV_PING,    /* data/len: the payload to echo */
    KG__WSEV_PONG,
    KG__WSEV_CLOSE,   /* code (1005 when none) */
    KG__WSEV_ERROR    /* close with `code`, `why` says why */
} kg__wsev_type;

typedef struct kg__wsev {
    kg__wsev_type type;
    const uint8_t *data;
    size_t len;
    bool final;
    uint16_t code;
    const char *why;
} kg__wsev;

/* Receive state of one connection. */
typedef struct kg__wsrx {
    uint8_t hdr[14];
    unsigned hdr_len;
    bool in_payload, in_message, fin;
    int opcode;
    uint64_t left;
    uint8_t mask[4];
    unsigned mask_pos;
    uint8_t ctl[125];
    size_t ctl_len;
} kg__wsrx;

/* Parse client bytes from p (payloads are unmasked in place).  Returns the
 * bytes consumed and stops after each event in *ev, so the caller can stop
 * between messages and keep the rest; ev->type NONE means "give me more". */
size_t kg__wsrx_parse(kg__wsrx *rx, uint8_t *p, size_t n, kg__wsev *ev);

/* ---- auth.c --------------------------------------------------------------------- */

bool kg__token_equal(const char *expected, const char *given, size_t given_len);
/* `authorization` header value ("Bearer T") or NULL. */
bool kg__auth_bearer_ok(const char *token, const char *authorization);
/* Cookie header, looking for kg_token=T. */
bool kg__auth_cookie_ok(const char *token, const char *cookie);
/* Origin absent (non-browser) is allowed; otherwise it must name the same
 * host:port as `host` or be in the comma list `allowed`. */
bool kg__origin_ok(const char *origin, const char *host, const char *allowed);
/* On a loopback bind, the Host header must be a loopback name. */
bool kg__host_ok(const char *host, bool loopback_bind);
bool kg__is_loopback_bind(const char *bind);

/* ---- api.c ------------------------------------------------------------------------ */

typedef struct kg__http_req {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* without the query */
    const char *query;        /* the raw query string, "" when none */
    const char *content_type; /* NULL when absent */
    const char *accept_encoding;
    const char *body;
    size_t body_len;
    bool body_too_large;
} kg__http_req;

typedef struct kg__http_resp {
    int status;
    const char *content_type;     /* static */
    const char *content_encoding; /* static or NULL */
    const char *cache_control;    /* static or NULL */
    int retry_after;              /* seconds for a Retry-After header, 0 = none */
    const unsigned char *static_body;  /* embedded asset, when not NULL */
    size_t static_len;
    kg__sb body;                  /* otherwise, unless `stream` has parts */
    kg__body stream;              /* references to the stores' events */
    /* 404 for a run not in memory while a Redis history is configured: the
     * server may fetch it (kg__api_history) instead of sending this. */
    bool history_id_set;
    char history_id[KG__ID_MAX + 1];
    /* Run history (api_runs.c): a query the server hands to the store's
     * query thread, answering when it comes back (kg__api_runs_answer). */
    struct kg__squery *deferred;
    char disposition[KG__ID_MAX + 64];   /* Content-Disposition, "" when none */
} kg__http_resp;

struct kg_dashboard;
/* Route one request (auth already checked).  Fills `resp` (resp->body must
 * have been kg__sb_init'ed). */
void kg__api_handle(kg__hub *h, struct kg_dashboard *d, const kg__http_req *req,
                    kg__http_resp *resp);
void kg__api_error(kg__http_resp *resp, int status, const char *message);
/* 401 with the embedded page that explains how to pass the token. */
void kg__api_auth_page(kg__http_resp *resp, const char *accept_encoding);
/* Bytes of the response body (static, text or stream); release both. */
size_t kg__api_body_len(const kg__http_resp *resp);
void kg__api_resp_free(kg__http_resp *resp);
/* The response to GET /api/workflows/<id>/events from a run fetched from
 * Redis: `events` (borrowed array) or NULL (404, `why` or a default). */
void kg__api_history(kg__http_resp *resp, const char *workflow_id, json_t *events,
                     const char *why);
/* A run summary (like /api/workflows' entries, with "graph") computed from
 * its events (borrowed array): status from workflow_completed, or
 * "unknown"; "source":"redis".  New reference, NULL on oom. */
json_t *kg__history_summary(const char *workflow_id, json_t *events);
/* Percent-decode n bytes of `s` into out; false when it does not fit or
 * decodes to a NUL. */
bool kg__url_decode(const char *s, size_t n, char *out, size_t outlen, bool plus_space);
/* Value of `name` in a query string, URL-decoded into out; false if absent. */
bool kg__query_get(const char *query, const char *name, char *out, size_t outlen);

/* ---- prometheus.c --------------------------------------------------------------------- */

void kg__prom_render(kg__hub *h, double now, kg__sb *sb);
/* Append a label value escaped per the exposition format. */
void kg__prom_label(kg__sb *sb, const char *v);

/* ---- web assets (generated from web/ at build time) ------------------------------------ */

typedef struct kg_web_asset {
    const char *path;          /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;   /* gzip of data, or NULL */
    size_t gz_len;
} kg_web_asset;

extern const kg_web_asset kg__web_assets[];   /* ends with path == NULL */

/* ---- server.c (used by api.c for the stats it shows) ------------------------------------ */

void kg__server_stats(struct kg_dashboard *d, kg_dashboard_stats *out);

#endif
