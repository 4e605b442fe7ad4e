/* kaygraph/redis_reader.h - the read side of the Redis backend, for consumers.
 *
 * The Redis backend (kaygraph/backends.h) writes docs/redis.md's layout or the
 * lean one (docs/redis.md); this is how a consumer (the dashboard, a tool,
 * a test) reads either back without knowing the key names or the layout: subscribe to the live feed, fetch one workflow run's
 * or one node's stored events, the active node / workflow sets, the per-type
 * counters, and replay the optional capped stream from a given entry id.
 *
 * A reader holds two connections, both made on first use: a subscriber
 * (kg_redis_reader_subscribe / kg_redis_reader_next) and a command connection
 * (every fetch).  Threading: one thread may use the subscriber functions while
 * another uses the fetch functions; each group is not for concurrent use.
 *
 * Connection loss never fails a reader for good: the call that notices it
 * returns KG_ECONNECT (or KG_ETIMEOUT), and the next call reconnects
 * (AUTH, SELECT and every subscription included).
 *
 * Peers that misbehave.  A subscription counts only once the server has
 * confirmed it: a peer that answers SUBSCRIBE with anything else (protocol
 * garbage, an HTTP server on the port) fails with KG_EPROTO ("not a Redis
 * server?").  Failed connections -- refused, timed out, protocol errors, and
 * connections lost before they delivered a message (or a reply) or had been
 * up 2 s -- are retried with exponential backoff, 0.1 s doubling to 5 s, per
 * connection (subscriber and command): while a retry is not due, calls fail
 * at once with the last error, so a broken peer costs at most one connection
 * attempt per backoff step whatever the caller's loop does.  A connection
 * that had delivered is re-made at once (Redis restarted, CLIENT KILL): up
 * to 3 times in a row, then once a second.  Replies are bounded (kg_redis_options.max_reply, and
 * at most 2^20 elements per array): a longer string (e.g. a bulk declared
 * "$999999999999") fails the connection with KG_EPROTO once max_reply bytes
 * of it have arrived, instead of being buffered.  Pub/Sub keeps nothing
 * for an absent subscriber: messages published while the subscriber was
 * reconnecting are lost to it, which kg_redis_reader_reconnects() reveals;
 * replay them from the stream (kg_redis_reader_stream_scan) when the
 * producer has stream_maxlen set.
 *
 * Ownership: returned json_t* are new references (json_decref them);
 * returned char* are malloc'd and freed by the caller with free(). */
#ifndef KAYGRAPH_REDIS_READER_H
#define KAYGRAPH_REDIS_READER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends.h"
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kg_redis_reader kg_redis_reader_t;

/* A reader for the layout written by a Redis backend with the same options
 * (host, port, unix_socket, password, db, prefix and the timeouts are used;
 * ttl and stream_maxlen are ignored).  `o` NULL means the defaults.  Does
 * not connect yet.  Returns 0 and *out (free with kg_redis_reader_free), or
 * KG_ENOMEM / KG_EINVAL with `err` filled. */
KG_API int kg_redis_reader_new(const kg_redis_options *o, kg_redis_reader_t **out, kg_error_t *err);

/* Close both connections and free.  NULL is a no-op. */
KG_API void kg_redis_reader_free(kg_redis_reader_t *r);

/* ---- live feed ----------------------------------------------------------------
 * `channel` is a suffix of the prefix: "all" (the default when NULL) or an
 * event type ("error").  With `pattern` true it is a PSUBSCRIBE glob on the
 * same suffix ("*" gets every channel, so each event twice).  Subscriptions
 * are remembered (at most 16) and restored after a reconnect.  A new
 * connection waits (at most the command timeout) for Redis to confirm the
 * subscription.  Returns 0, KG_ECONNECT when Redis cannot be reached,
 * KG_EPROTO when the peer is not Redis (the subscription is still remembered
 * and made by the next kg_redis_reader_next), or KG_EFULL. */
KG_API int kg_redis_reader_subscribe(kg_redis_reader_t *r, const char *channel, bool pattern,
                              kg_error_t *err);

/* Wait at most `timeout` seconds for the next published event (0: take one
 * that has already arrived, in the reader's buffer or the socket, without
 * waiting).  A lean-layout message carries several events, one per line:
 * they come out one per call, each with the message's channel.  Returns 0
 * with *json (the event's JSON text, NUL-terminated, malloc'd), *len and,
 * when `channel` is not NULL, *channel (the full channel name, malloc'd).
 * KG_ETIMEOUT when nothing arrived in time on a confirmed subscription;
 * KG_ECONNECT when the connection is down and KG_EPROTO when the peer broke
 * the protocol or a reply bound (the call then retries to connect, as the
 * backoff allows, until `timeout` has passed, so a caller looping on it does
 * not spin; a connection attempt may add the connect and command timeouts);
 * KG_EINVAL when nothing was subscribed. */
KG_API int kg_redis_reader_next(kg_redis_reader_t *r, double timeout, char **json, size_t *len,
                         char **channel, kg_error_t *err);

/* Times the subscriber connection was re-established after a loss: when it
 * grows, messages may have been missed. */
KG_API uint64_t kg_redis_reader_reconnects(const kg_redis_reader_t *r);

/* The subscriber connection's state, for reports ("redis: protocol error
 * ...; next attempt in 1.6 s").  Call it from the thread that uses the
 * subscriber functions. */
typedef struct kg_redis_reader_status {
    bool subscribed;           /* connected, and Redis confirmed the subscription */
    unsigned failures;         /* consecutive failed attempts (0 while subscribed) */
    double retry_in;           /* seconds until the next attempt is allowed (0: now) */
    int last_code;             /* the last failure's KG_E* code (0: none yet) */
    char last_error[KG_ERROR_MESSAGE_MAX];
} kg_redis_reader_status;
KG_API void kg_redis_reader_status_get(const kg_redis_reader_t *r, kg_redis_reader_status *out);

/* ---- fetch (command connection) --------------------------------------------------
 * Each returns 0 and a new reference in *out, or a negative code with `err`
 * filled (KG_ECONNECT, KG_ETIMEOUT, KG_EBACKEND for a Redis error reply,
 * KG_ENOMEM). */

/* The events of one workflow run (or node), parsed, oldest first (sorted-set
 * order: epoch ms, then event id; in the lean layout: seq).  `max` > 0 keeps
 * only the newest `max`.  Events whose key has expired, or that are not
 * valid JSON, are skipped.  The lean layout keeps no per-node index:
 * kg_redis_reader_node_events is then KG_EINVAL, and kg_redis_reader_event
 * finds nothing (KG_ENOTFOUND). */
KG_API int kg_redis_reader_workflow_events(kg_redis_reader_t *r, const char *workflow_id, size_t max,
                                    json_t **out, kg_error_t *err);
KG_API int kg_redis_reader_node_events(kg_redis_reader_t *r, const char *node_id, size_t max,
                                json_t **out, kg_error_t *err);

/* One stored event by id, parsed; KG_ENOTFOUND when absent or expired. */
KG_API int kg_redis_reader_event(kg_redis_reader_t *r, const char *event_id, json_t **out,
                          kg_error_t *err);

/* The active sets as sorted arrays of strings. */
KG_API int kg_redis_reader_active_nodes(kg_redis_reader_t *r, json_t **out, kg_error_t *err);
KG_API int kg_redis_reader_active_workflows(kg_redis_reader_t *r, json_t **out, kg_error_t *err);

/* The per-type counters as {"lifecycle":n,"data":n,"error":n,"metric":n}
 * (0 for a counter that does not exist). */
KG_API int kg_redis_reader_counters(kg_redis_reader_t *r, json_t **out, kg_error_t *err);

/* One entry of the stream, as kg_redis_reader_stream_scan passes it to its
 * visitor: everything is borrowed for the duration of the call. */
typedef struct kg_stream_entry {
    const char *id;          /* "<ms>-<seq>", NUL-terminated */
    const char *event;       /* the event's JSON text, NOT NUL-terminated;
                              * NULL when the entry has no "event" field */
    size_t event_len;
} kg_stream_entry;

typedef void (*kg_stream_visit_cb)(void *ud, const kg_stream_entry *entry);

/* Replay: up to `count` (0 = 1000) stream entries strictly after entry id
 * `after` ("0" or NULL: from the oldest kept), oldest first, each passed to
 * `visit` as it is in the reply (no copy, no JSON parsing: a replay pass that
 * only needs ids costs no parsing).  A lean-layout entry holds several
 * events: each is visited with the entry's id.  *n (may be NULL) gets the
 * number of events visited.  Pass the last id back as `after` to go on; 0 entries
 * means caught up, and so does a stream that does not exist.  Entries without
 * the expected shape are skipped.  Needs Redis >= 5 (XREAD). */
KG_API int kg_redis_reader_stream_scan(kg_redis_reader_t *r, const char *after, size_t count,
                                kg_stream_visit_cb visit, void *ud, size_t *n, kg_error_t *err);

/* Entries in the stream now (XLEN): 0 when it does not exist. */
KG_API int kg_redis_reader_stream_length(kg_redis_reader_t *r, unsigned long long *len,
                                  kg_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
