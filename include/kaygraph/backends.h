/* kaygraph/backends.h - the backends that ship with kaygraph.
 *
 *   mock   in memory, inspectable, can be told to fail or to be slow: a
 *          product feature (dry runs, the demo) and the fault-injection tool.
 *   file   JSON Lines, one event per line, to a path or stdout.
 *   redis  Redis Pub/Sub + key layout of docs/redis.md (hiredis), with a read side.
 *   http   webhook POSTs of batches (libcurl).
 *   tee    the same events to several backends (e.g. Redis and the embedded
 *          dashboard).
 *
 * Every constructor returns a new backend owned by the caller (give it to
 * kg_monitor_new(), which steals it) or NULL with `err` filled. */
#ifndef KAYGRAPH_BACKENDS_H
#define KAYGRAPH_BACKENDS_H

#include <jansson.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- mock ------------------------------------------------------------------ */

typedef struct kg_mock_options {
    double delay;          /* seconds slept per send_batch (seed default 0) */
    size_t max_events;     /* events kept for inspection (ring); 0 = 10000 */
    bool keep_json;        /* keep the JSON text of kept events (default true) */
    /* Room for members added in later minor releases (docs/abi.md): zeroed
     * by the *_init function or an initialiser, never written by callers. */
    uint64_t reserved[8];
} kg_mock_options;

KG_API kg_backend_t *kg_mock_backend_new(const kg_mock_options *opts /* NULL = defaults */,
                                  kg_error_t *err);

/* Fault injection, callable from any thread at any time:
 * fail the next `n` send_batch calls (n < 0: fail until told otherwise,
 * 0: stop failing); sleep `delay` seconds in each send; report connected. */
KG_API void kg_mock_backend_fail(kg_backend_t *mock, long n);
KG_API void kg_mock_backend_set_delay(kg_backend_t *mock, double delay);
KG_API void kg_mock_backend_set_connected(kg_backend_t *mock, bool connected);

typedef struct kg_mock_stats {
    uint64_t batches;          /* successful send_batch calls */
    uint64_t events;           /* events delivered */
    uint64_t failed_batches;   /* send_batch calls that were told to fail */
    /* Room for members added in later minor releases (docs/abi.md); the
     * library fills it, callers ignore it. */
    uint64_t reserved[8];
} kg_mock_stats;
KG_API void kg_mock_backend_stats(kg_backend_t *mock, kg_mock_stats *out);

/* Events delivered per event_name, as a new JSON object {"node_started":12,..}. */
KG_API json_t *kg_mock_backend_breakdown(kg_backend_t *mock);

/* The last kept events (oldest first) as a new JSON array of parsed events;
 * at most `max` (0 = all kept).  Parsing happens here, not on the send path. */
KG_API json_t *kg_mock_backend_events(kg_backend_t *mock, size_t max);

/* Forget kept events and counters. */
KG_API void kg_mock_backend_clear(kg_backend_t *mock);

/* ---- file (JSON Lines) ----------------------------------------------------- */

/* `path` "-" means stdout.  The file is opened for appending on connect and
 * every batch is written with one write(2) per batch and flushed. */
KG_API kg_backend_t *kg_file_backend_new(const char *path, kg_error_t *err);

/* ---- redis ----------------------------------------------------------------- */

/* What the Redis backend writes (docs/redis.md).  SEED: the layout of
 * docs/redis.md that the Python original's consumers read (every event stored
 * under its own key, indexed per run and per node, published on two
 * channels).  LEAN: for high rates -- each run's events in one hash, the
 * "all" channel only, the stream (when on) one entry per batch; the
 * dashboard, kgmon tail and kg_redis_reader read both. */
typedef enum kg_redis_layout { KG_REDIS_LAYOUT_SEED = 0, KG_REDIS_LAYOUT_LEAN = 1 } kg_redis_layout;

typedef struct kg_redis_options {
    const char *host;              /* default "127.0.0.1" */
    int port;                      /* default 6379 */
    const char *unix_socket;       /* used instead of host/port when set */
    const char *password;          /* AUTH when set */
    int db;                        /* SELECT when > 0 */
    const char *prefix;            /* default "kaygraph:monitoring:" */
    int ttl;                       /* seconds, default 3600 */
    double connect_timeout;        /* seconds, default 1.0 */
    double command_timeout;        /* seconds, default 2.0 */
    long stream_maxlen;            /* > 0: also XADD to <prefix>stream MAXLEN ~ N */
    /* Read side only (kaygraph/redis_reader.h): the longest string one reply
     * element may carry -- one event's JSON text -- in bytes; a reply is also
     * refused past 16 times this in total.  A peer that sends more fails the
     * connection with KG_EPROTO.  0 = 16 MiB (16 times the dashboard's
     * default body limit, i.e. the largest event it accepts). */
    size_t max_reply;
    kg_redis_layout layout;        /* write side: default KG_REDIS_LAYOUT_SEED */
    /* Room for members added in later minor releases (docs/abi.md): zeroed
     * by the *_init function or an initialiser, never written by callers. */
    uint64_t reserved[8];
} kg_redis_options;

KG_API void kg_redis_options_init(kg_redis_options *o);
KG_API kg_backend_t *kg_redis_backend_new(const kg_redis_options *o, kg_error_t *err);

/* ---- http webhook ------------------------------------------------------------
 *
 * One POST per batch: {"events":[...],"batch_size":N,"timestamp":"...",
 * "batch_id":"<uuid>"} with Content-Type: application/json and
 * Idempotency-Key: <the same uuid>.  The id is derived from the batch's
 * event_ids (an event is in one batch only), so every resend of a batch carries the same key (a receiver
 * that stored a batch whose answer timed out can drop the copy) and
 * different batches different ones.
 *
 * Answers: 2xx is success.  307 and 308 are followed (method, body and
 * headers kept; at most 5 hops; the headers of `headers` only to the same
 * scheme, host and port, never from https to http).  301, 302 and 303 are not
 * (they would turn the POST into a GET): the batch fails, the error names the
 * Location, and the backend asks the dispatcher to wait retry_after_max
 * before trying that URL again.  429 and 503 with Retry-After (seconds or an
 * HTTP date) make the dispatcher wait that long, at most retry_after_max.
 * Everything else >= 300, a connection error or a timeout is a failure the
 * dispatcher retries with backoff.  A monitor that stops cuts a request in
 * flight at its shutdown deadline. */

typedef struct kg_http_options {
    const char *url;               /* required: http:// or https:// with a host */
    const char *const *headers;    /* NULL-terminated "Name: value" list, copied */
    double connect_timeout;        /* seconds, default 2.0 */
    double timeout;                /* whole request, seconds, default 5.0 */
    bool single_as_bare;           /* send a batch of one as the bare event */
    bool verify_tls;               /* default true */
    double retry_after_max;        /* longest pause a Retry-After (or a redirect
                                    * not followed) imposes, s; default 60 */
    /* Room for members added in later minor releases (docs/abi.md): zeroed
     * by the *_init function or an initialiser, never written by callers. */
    uint64_t reserved[8];
} kg_http_options;

KG_API void kg_http_options_init(kg_http_options *o);
KG_API kg_backend_t *kg_http_backend_new(const kg_http_options *o, kg_error_t *err);

/* Why the last failed request failed: libcurl's text ("SSL certificate
 * problem: ...") or "HTTP <status>", copied into buf.  false when `b` is not
 * an HTTP backend or nothing has failed yet.  Callable from any thread. */
KG_API bool kg_http_backend_last_error(kg_backend_t *b, char *buf, size_t size);

/* ---- tee ------------------------------------------------------------------- */

/* Send every batch to each of `n` backends (stolen, also on failure).  A batch
 * succeeds when all of them accept it; backends that already accepted it are
 * not sent it again on the retry (at-most-once per backend). */
KG_API kg_backend_t *kg_tee_backend_new(kg_backend_t **backends, size_t n, kg_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
