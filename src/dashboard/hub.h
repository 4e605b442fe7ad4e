/* dashboard/hub.h - the aggregation, the broadcast ring and the lock that guards
 * both: what every source feeds and every client reads (hub.c). */
#ifndef KG_DASH_HUB_H
#define KG_DASH_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aggregate.h"
#include "kaygraph/dashboard.h"

typedef enum kg__bkind { KG__B_EVENT = 0, KG__B_RAW = 1 } kg__bkind;

typedef struct kg__bentry {
    kg_text *msg;
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
 * event costs more than the event (an eventfd write and a poll cycle).
 * `may_refuse`: KG_EFULL when the history is behind (its sender retries);
 * false for a source that cannot be held back: the event then always
 * reaches the live view, and the history when its queue has room (else it
 * is counted in history.dropped). */
int kg__hub_add(kg__hub *h, const kg__event *ev, kg_text *msg, bool may_refuse);
/* Push a prebuilt message to every client (caller holds the lock). */
void kg__hub_push_locked(kg__hub *h, kg_text *msg, kg__bkind kind);
void kg__hub_wake(kg__hub *h);
/* The same for callers that hold the hub as a `void *` (the store). */
void kg__hub_wake_cb(void *hub);

#endif
