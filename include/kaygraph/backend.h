/* kaygraph/backend.h - where monitoring events go: the backend interface.
 *
 * A backend is a small table of functions plus a `data` pointer, in the
 * manner of hiredis' event-loop adapters.  Writing a backend means writing
 * one file that fills a kg_backend_ops and calls kg_backend_new().  The
 * dispatcher (kaygraph/monitor.h) is the only caller of the table.
 *
 * Threading contract: the dispatcher runs `workers` threads.  connect() is
 * called once, before any send, with that number; send_batch() is then
 * called concurrently from those threads, each passing its own `worker`
 * index (0..workers-1), so a backend keeps one connection per worker and
 * needs no lock on its send path.  disconnect() and destroy() are called once
 * each, after every worker has stopped.  The optional not_before() is called
 * by the workers, set_deadline() by the thread stopping the monitor while
 * workers may be inside send_batch(). */
#ifndef KAYGRAPH_BACKEND_H
#define KAYGRAPH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One serialised event, with the fields backends index on pulled out so no
 * backend has to parse the JSON.  Every pointer is borrowed for the duration
 * of send_batch() and NUL-terminated. */
typedef struct kg_event_view {
    const char *json;          /* the whole event, docs/events.md schema */
    size_t json_len;
    const char *event_id;      /* UUID text, 36 chars */
    const char *event_type;    /* "lifecycle", "data", "error", "metric" */
    const char *event_name;    /* "node_started", ... */
    const char *node_id;
    const char *workflow_id;   /* "" for dispatcher metrics */
    int64_t timestamp_ms;      /* Unix epoch milliseconds */
    uint64_t seq;
    uint64_t reserved[4];   /* later minor releases (docs/abi.md); zero */
} kg_event_view;

typedef struct kg_batch {
    const kg_event_view *events;
    size_t count;
    uint64_t reserved[2];   /* later minor releases (docs/abi.md); zero */
} kg_batch;

typedef struct kg_backend_ops {
    const char *name;   /* "mock", "file", "redis", "http", ... */
    /* Prepare for `workers` concurrent senders.  May fail (e.g. server down):
     * the dispatcher still starts and sends later, because send_batch() of a
     * disconnected backend is expected to try to reconnect. */
    int (*connect)(void *data, unsigned workers);
    /* Deliver a batch, all or nothing from the dispatcher's point of view:
     * return 0 when every event is delivered, a negative code otherwise (the
     * dispatcher then retries the whole batch later).  Must not block longer
     * than the backend's own timeouts. */
    int (*send_batch)(void *data, unsigned worker, const kg_batch *batch);
    void (*disconnect)(void *data);
    bool (*is_connected)(void *data);
    void (*destroy)(void *data);   /* free `data` */
    /* Optional (NULL: no constraint).  The earliest CLOCK_MONOTONIC time, in
     * nanoseconds, at which `worker` may call send_batch() again, when the
     * backend's peer asked for a pause (HTTP 429/503 with Retry-After);
     * 0 or a time past: now.  The dispatcher asks before every send and
     * waits (the batch is kept, the retry backoff still applies), so the
     * backend bounds the pause it passes on. */
    int64_t (*not_before)(void *data, unsigned worker);
    /* Optional.  The monitor is stopping: a send_batch() in progress, and
     * every later one, must return by `deadline` (CLOCK_MONOTONIC ns), as a
     * failure if need be, so that shutdown keeps its bound even when the
     * backend's own timeouts are longer. */
    void (*set_deadline)(void *data, int64_t deadline_ns);
    /* Room for operations added in later minor releases (docs/abi.md):
     * leave it zero (NULL), as a designated initialiser does. */
    void (*reserved[4])(void);
} kg_backend_ops;

typedef struct kg_backend kg_backend_t;

/* Wrap `ops` (borrowed; make it static const) and `data` (owned: destroy()
 * frees it, also when this fails) into a backend.  NULL on allocation
 * failure. */
KG_API kg_backend_t *kg_backend_new(const kg_backend_ops *ops, void *data);

/* Free a backend that was never given to a monitor.  NULL is a no-op. */
KG_API void kg_backend_free(kg_backend_t *backend);

KG_API const char *kg_backend_name(const kg_backend_t *backend);
KG_API void *kg_backend_data(const kg_backend_t *backend);

/* Call the table (used by the dispatcher and by tests). */
KG_API int kg_backend_connect(kg_backend_t *b, unsigned workers);
KG_API int kg_backend_send_batch(kg_backend_t *b, unsigned worker, const kg_batch *batch);
KG_API void kg_backend_disconnect(kg_backend_t *b);
KG_API bool kg_backend_is_connected(kg_backend_t *b);
/* The optional ops; 0 / nothing when the backend has none. */
KG_API int64_t kg_backend_not_before(kg_backend_t *b, unsigned worker);
KG_API void kg_backend_set_deadline(kg_backend_t *b, int64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif
