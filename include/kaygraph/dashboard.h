/* kaygraph/dashboard.h - the live dashboard server: HTTP + WebSocket on one port.
 *
 * The dashboard aggregates monitoring events (docs/events.md) from up to
 * three sources - a Redis subscription, POST /api/ingest (the webhook format)
 * and an in-process feed (kg_dashboard_backend_new) - into a bounded state
 * (topology per workflow, per-node status and timings, recent events, recent
 * runs) and pushes it to browsers over a WebSocket.  The web UI is compiled
 * into the library.
 *
 * Usage (embedded in a monitored program):
 *     kg_dashboard_options o;
 *     kg_dashboard_options_init(&o);
 *     o.port = 8080;
 *     kg_dashboard_t *dash;
 *     if (kg_dashboard_new(&o, &dash, &err) == 0) {
 *         cfg.backend = kg_dashboard_backend_new(dash);   // the in-process feed
 *         ...run workflows...
 *         kg_monitor_free(mon);        // first: it calls the feed
 *         kg_dashboard_free(dash);
 *     }
 *
 * Threading: kg_dashboard_new starts one service thread that owns every
 * connection (libwebsockets).  kg_dashboard_ingest and the feed may be called
 * from any thread at any time; they never block on clients (a slow browser
 * loses messages, never slows producers).  The log callback runs on the
 * service thread or, for Redis source messages, on the Redis thread, or,
 * for run-history messages, on the history writer thread.
 *
 * Wire contract (docs/protocol.md), WebSocket messages sent:
 *   {"type":"initial","data":{"events":[last 100: each producer's in seq
 *        order, producers as they arrived; over 64 KiB as a brief],"metrics":M,
 *        "active_nodes":[ids],"active_workflows":[ids],"network_graph":G,
 *        "workflows":[run summaries, oldest first]}}
 *   {"type":"event","data":<event>}                      one per event
 *   {"type":"metrics","data":M}                          every metrics_interval
 *   {"type":"workflow_events","workflow_id":id,"found":bool,"status":s,
 *        "graph":g|null,"truncated":n,"events":[...]}    reply to the request
 *   {"type":"notice","data":{"level":"warning","dropped":n,"message":"..."}}
 *        this client was too slow: n messages were dropped for it; an
 *        "initial" message with the current state follows at once (resync)
 *   {"type":"error","message":"..."}                     bad client message, or
 *        a request that could not be queued (too many at once, server busy):
 *        every client message gets one answer
 *   {"type":"pong"}                                      reply to {"type":"ping"}
 * Client messages: {"type":"get_workflow_events","workflow_id":id},
 * {"type":"ping"}.
 *   M = {"total_events","events_by_type":{type:n},"events_by_name":{name:n},
 *        "active_nodes":n,"active_workflows":n,"success_rate":0..1|null
 *        (node_completed / (node_completed + node_failed)),
 *        "workflow_success_rate":0..1|null,"errors":n (error-type events),
 *        "events_per_second":x (5 s average),"throughput":[60 per-second
 *        counts, oldest first],"dropped":n (reported by producers through
 *        events_dropped),"ws_dropped":n,"duplicates":n,"rejected":n,
 *        "workflows":{"total","running","success","failed","stale"},
 *        "nodes":{id:{"type","status","count","completed","failed","retries",
 *        "errors","avg","p95"}},"clients":n,"uptime":s,"timestamp":iso}
 *   G = {"nodes":[{"id","type","status"}],"edges":[{"from","to","action",
 *        "count"}],"start":id|null,"workflow_id":latest run|null}: the union
 *        of every topology seen in workflow_started events, plus nodes seen
 *        only in events.  Node status: idle, running, completed, failed,
 *        retrying.  Run status: running, success, failed, stale.
 *
 * Security: binds 127.0.0.1 by default.  With `token`, every route but
 * /healthz needs it, as "Authorization: Bearer T", "?token=T" (any route, so
 * a browser can open /?token=T) or the HttpOnly SameSite=Strict cookie the
 * server sets when a query token was accepted.  WebSocket upgrades whose
 * Origin is not the page's own origin (or listed in allowed_origins) are
 * refused; on a loopback bind a Host header that is not a loopback name is
 * refused (DNS rebinding).  POST /api/ingest needs Content-Type
 * application/json (so a foreign page cannot post without a preflight).
 *
 * Limits (hostile clients): every connection is accounted for.  At most
 * max_connections are open; when full, the HTTP connection that made
 * progress longest ago (an idle keep-alive, headers or a body trickling in,
 * a response nobody reads) is closed for the newcomer.  When the process
 * runs out of file descriptors, a connection is evicted the same way, or a
 * descriptor kept in reserve is used to answer the waiting connection 503
 * and close it, so the server never spins on its listening socket; such
 * events are logged once per 10 s with counts.  Requests are refused before
 * their body is read (401, 413, a body on a route that takes none, 411 for
 * chunked bodies), then the connection is closed; a body must arrive within
 * body_timeout and, after 5 s, at body_min_rate.  Event responses are
 * written from the stores' texts as the socket drains (no copy per client),
 * bytes waiting for slow readers are capped (max_pending_bytes: a large
 * response then gets 503 with Retry-After), and memory freed by a burst of
 * connections is returned to the system.  WebSocket: max_clients,
 * max_clients_per_ip, ws_idle_timeout, client_timeout; a refused upgrade
 * gets an HTTP/1.1 status line with the reason in a JSON body; unmasked
 * client frames are a protocol error (close 1002); a client that sends
 * requests faster than it reads the replies is read more slowly, so every
 * request is answered ("error" messages when a reply could not be queued).
 * "initial" carries the last 100 events (each producer's in seq order); an
 * event over 64 KiB appears there as its schema fields with "data":
 * {"truncated":true,"original_size":N,"event_size":M}, so the message
 * always fits (GET /api/events has the full text).
 *
 * Redis source: the thread subscribes to <prefix>all, then replays the
 * stream <prefix>stream (when producers write one: kg_redis_options.
 * stream_maxlen), then follows Pub/Sub.  Replay and Pub/Sub overlap on
 * purpose; duplicates are dropped by event_id.  On a fresh start it replays
 * the newest `redis_replay` entries; after a reconnect, every entry after
 * the last one it read, but not older than 3 s before the last Pub/Sub
 * message it received (stream ids are Redis' clock: the two clocks must
 * agree within 3 s), so a dashboard that was
 * connected for hours does not re-read the whole stream.  A run evicted from
 * memory (max_runs) is fetched from Redis (its workflow:<id> sorted set) by
 * GET /api/workflows/<id>/events and get_workflow_events, on a separate
 * thread: the reply then carries "source":"redis". */
#ifndef KAYGRAPH_DASHBOARD_H
#define KAYGRAPH_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "node.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kg_dashboard kg_dashboard_t;

/* The engine's log levels and callback type (kaygraph/node.h), under the
 * names earlier versions of this header gave them. */
typedef kg_log_level kg_dashboard_log_level;
#define KG_DASH_LOG_ERROR KG_LOG_ERROR
#define KG_DASH_LOG_WARN KG_LOG_WARN
#define KG_DASH_LOG_INFO KG_LOG_INFO

/* One line of log ("client 127.0.0.1 connected (3 clients)").  `msg` is
 * borrowed for the call. */
typedef kg_log_fn kg_dashboard_log_cb;

typedef struct kg_dashboard_options {
    const char *bind;            /* "127.0.0.1" */
    int port;                    /* 8080; 0 = ephemeral (see kg_dashboard_port) */
    const char *token;           /* NULL = no auth */
    const char *allowed_origins; /* comma list of extra WebSocket origins, NULL */
    const char *redis_host;      /* NULL = no Redis source */
    int redis_port;              /* 6379 */
    const char *redis_prefix;    /* NULL = "kaygraph:monitoring:" */
    const char *redis_password;  /* NULL */
    size_t redis_replay;         /* 10000: when the Redis source starts, it
                                  * first replays up to this many of the
                                  * newest entries of <prefix>stream (written
                                  * by producers with stream_maxlen set);
                                  * 0 = no replay.  After a reconnect it
                                  * replays every entry added since (see
                                  * "Redis source" below) */
    size_t max_body;             /* 1 MiB: larger request bodies get 413 */
    unsigned max_clients;        /* 64 WebSocket clients; more get 503
                                  * (must be below max_connections) */
    unsigned max_clients_per_ip; /* 16 WebSocket clients from one address;
                                  * more get 503; 0 = no per-address cap */
    size_t max_connections;      /* 1024 connections open at once (HTTP and
                                  * WebSocket); lowered to fit the process's
                                  * RLIMIT_NOFILE (less a margin).  When
                                  * full, the HTTP connection that made
                                  * progress longest ago is closed for the
                                  * newcomer (see "Limits" above) */
    size_t client_queue;         /* 8192 messages a client may lag behind
                                  * (~0.8 s at 10,000 events/s) */
    double stale_after;          /* 300 s without events: a run becomes "stale" */
    double metrics_interval;     /* 1.0 s between "metrics" messages */
    size_t recent_events;        /* 1000 events kept for /api/events */
    size_t max_runs;             /* 200 runs kept.  To make room, the least
                                  * recently active completed run goes first;
                                  * running and stale runs only when none of
                                  * the 64 least recently active completed.
                                  * Late events of an evicted completed run
                                  * are counted but do not bring it back */
    size_t max_run_events;       /* 5000 events kept per run (oldest dropped) */
    size_t max_nodes;            /* 1024 nodes tracked (least recently seen evicted) */
    size_t max_store_bytes;      /* 64 MiB of event text kept in all */
    size_t broadcast_bytes;      /* 16 MiB of messages waiting for clients */
    double client_timeout;       /* 30 s: a client that accepts no data (a
                                  * WebSocket, or an HTTP response) is closed */
    double body_timeout;         /* 30 s: a request body must arrive in full
                                  * within this; else 408 and close */
    size_t body_min_rate;        /* 1024 bytes/s: from 5 s on, a request
                                  * body slower than this on average is cut
                                  * the same way; 0 = no minimum */
    double ws_idle_timeout;      /* 60 s: a WebSocket client that sends
                                  * nothing (a ping is sent at half-time,
                                  * browsers answer it) is closed (1001) */
    size_t max_pending_bytes;    /* 64 MiB: response and reply bytes waiting
                                  * for slow readers, all connections; above
                                  * it a large response gets 503 (WebSocket:
                                  * an "error" message) */
    kg_dashboard_log_cb log;     /* NULL = silent */
    void *log_ud;
    /* Run history (docs/history.md; added at the end, docs/abi.md): every
     * accepted event, a summary per run and per node execution, kept in a
     * database that outlives the process and served by /api/runs...,
     * /api/graphs and /api/nodes/<graph>/<node>/stats.  All zero (a program
     * built before they existed): no history. */
    const char *db;              /* NULL or "none" = memory only (the default);
                                  * "postgres://..." / "postgresql://..." =
                                  * PostgreSQL (libpq conninfo URI); anything
                                  * else = a SQLite file path */
    double retain_days;          /* 30: runs with no event for this long are
                                  * deleted (incrementally); 0 = no age limit */
    size_t retain_mb;            /* 1024: above this database size the oldest
                                  * runs are deleted; 0 = no size limit */
    size_t history_queue;        /* 65536 events accepted but not yet written;
                                  * when the writer is this far (or 1 s)
                                  * behind, ingest answers 503, the feed's
                                  * send fails and the Redis source waits */
} kg_dashboard_options;

KG_API void kg_dashboard_options_init(kg_dashboard_options *o);

/* Validate `o`, bind the listening socket and start the service thread (and
 * the Redis thread when redis_host is set; Redis being down is not an error:
 * the thread keeps reconnecting).  Returns 0 and *out, or KG_EINVAL (bad
 * option), KG_EIO (cannot bind), KG_ENOMEM with `err` filled.  `o` and its
 * strings are copied. */
KG_API int kg_dashboard_new(const kg_dashboard_options *o, kg_dashboard_t **out, kg_error_t *err);

/* The port actually listened on (useful with port 0). */
KG_API int kg_dashboard_port(const kg_dashboard_t *d);

/* Feed one webhook body: a bare event or {"events":[...],...}.  Thread-safe,
 * never blocks on clients.  Returns 0 when at least one event was accepted
 * (invalid events of a batch are counted as rejected, duplicates by event_id
 * ignored), KG_EPARSE for malformed JSON or when no event was valid, KG_ERANGE
 * for a body over max_body, KG_EFULL when the run history (`db`) is behind:
 * events before the first refused one were accepted, the caller retries the
 * body later (duplicates are dropped by event_id); `err` says why. */
KG_API int kg_dashboard_ingest(kg_dashboard_t *d, const char *json, size_t len, kg_error_t *err);

/* An in-process feed: a backend whose send_batch ingests each event of the
 * batch (the JSON text, no copy of the batch is kept).  New backend owned by
 * the caller (give it to kg_monitor_new); it does not own the dashboard,
 * which must outlive it.  NULL on allocation failure. */
KG_API kg_backend_t *kg_dashboard_backend_new(kg_dashboard_t *d);

typedef struct kg_dashboard_stats {
    uint64_t events;          /* accepted */
    uint64_t rejected;        /* invalid events */
    uint64_t duplicates;      /* same event_id seen again */
    uint64_t ws_sent;         /* messages written to clients */
    uint64_t ws_dropped;      /* messages dropped for slow clients */
    unsigned clients;         /* WebSocket clients now */
    unsigned connections;     /* open connections (HTTP and WebSocket) */
    uint64_t conns_evicted;   /* closed to make room (limit or no descriptors) */
    uint64_t conns_shed;      /* answered 503 at once and closed (out of
                               * descriptors, or full with nothing to evict) */
    uint64_t busy_refused;    /* 503s for max_pending_bytes */
    uint64_t redis_messages;  /* received from the Redis subscription */
    uint64_t redis_replayed;  /* stream entries replayed (duplicates included) */
    uint64_t redis_replays;   /* replays run (the first + one per reconnect) */
    uint64_t redis_fetches;   /* evicted runs fetched from Redis */
    bool redis_connected;
    /* Room for members added in later minor releases (docs/abi.md); the
     * library fills it, callers ignore it. */
    uint64_t reserved[8];
} kg_dashboard_stats;

KG_API void kg_dashboard_stats_get(kg_dashboard_t *d, kg_dashboard_stats *out);

/* Stop the threads, close every connection, free.  NULL is a no-op.  Must not
 * be called from the log callback. */
KG_API void kg_dashboard_free(kg_dashboard_t *d);

#ifdef __cplusplus
}
#endif
#endif
