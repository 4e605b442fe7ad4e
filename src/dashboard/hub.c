/* dashboard/hub.c - where sources meet clients: the aggregate and the broadcast ring.
 *
 * Producers (any thread) add events under one mutex; each accepted event
 * updates the aggregate and is appended to a bounded broadcast ring.  The
 * service thread is then woken once (not once per event: a flag coalesces
 * wake-ups) and every client copies what it has not sent yet from the ring.
 * The ring is shared, so fan-out costs one reference per message, not one
 * copy per client; a client that falls behind the ring's tail has lost
 * messages and is resynchronised (ws.c).  The ring is bounded by count and
 * by bytes, so no client, however stuck, makes memory grow. */
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "util/clock.h"
#include "store.h"

int kg__hub_init(kg__hub *h, const kg_dashboard_options *o)
{
    memset(h, 0, sizeof *h);
    kg__agg_limits lim = {
        .recent_events = o->recent_events,
        .max_runs = o->max_runs,
        .max_run_events = o->max_run_events,
        .max_nodes = o->max_nodes,
        .max_store_bytes = o->max_store_bytes,
        .max_user_series = o->max_user_series,
        .stale_after = o->stale_after,
    };
    h->started = kg_clock_mono();
    h->agg = kg__agg_new(&lim, h->started);
    if (!h->agg)
        return KG_ENOMEM;
    /* Enough entries for every client's allowed lag plus the metrics ticks. */
    size_t want = o->client_queue * 2 + 64;
    size_t cap = 64;
    while (cap < want && cap < ((size_t)1 << 22))
        cap *= 2;
    h->ring = calloc(cap, sizeof *h->ring);
    if (!h->ring) {
        kg__agg_free(h->agg);
        return KG_ENOMEM;
    }
    h->mask = cap - 1;
    h->ring_max_bytes = o->broadcast_bytes;
    h->max_body = o->max_body;
    h->client_queue = o->client_queue;
    h->pending_max = o->max_pending_bytes ? o->max_pending_bytes : (64u << 20);
    pthread_mutex_init(&h->lock, NULL);
    atomic_init(&h->head_pub, 0);
    atomic_init(&h->wake_pending, false);
    return 0;
}

void kg__hub_destroy(kg__hub *h)
{
    if (!h->agg)
        return;
    for (uint64_t i = h->tail; i < h->head; i++)
        kg_text_unref(h->ring[i & h->mask].msg);
    free(h->ring);
    kg__agg_free(h->agg);
    pthread_mutex_destroy(&h->lock);
    h->agg = NULL;
}

static void kg__hub_evict_locked(kg__hub *h)
{
    kg__bentry *e = &h->ring[h->tail & h->mask];
    h->ring_bytes -= e->msg->len;
    kg_text_unref(e->msg);
    e->msg = NULL;
    h->tail++;
}

void kg__hub_push_locked(kg__hub *h, kg_text *msg, kg__bkind kind)
{
    while (h->head - h->tail > h->mask ||
           (h->head > h->tail && h->ring_bytes + msg->len > h->ring_max_bytes))
        kg__hub_evict_locked(h);
    kg__bentry *e = &h->ring[h->head & h->mask];
    e->msg = kg_text_ref(msg);
    e->kind = (uint8_t)kind;
    h->ring_bytes += msg->len;
    h->head++;
    /* Release pairs with the service thread's acquire load: a client that
     * sees the new head under the lock anyway; the lock-free read only
     * decides whether to ask for a writable callback. */
    atomic_store_explicit(&h->head_pub, h->head, memory_order_release);
}

void kg__hub_wake(kg__hub *h)
{
    /* One wake-up per batch of pushes: the service thread clears the flag
     * before it looks at the ring, so a push after that look wakes it again. */
    if (h->wake && !atomic_exchange(&h->wake_pending, true))
        h->wake(h->wake_ud);
}

int kg__hub_add(kg__hub *h, const kg__event *ev, kg_text *msg, bool may_refuse)
{
    double now = kg_clock_mono();
    kg__sev *sev = kg__store_prepare(h->store, ev, msg);   /* history: outside the lock */
    pthread_mutex_lock(&h->lock);
    /* history (store.h): refused before anything changes, so a retry is
     * not taken for a duplicate; queued in the same hold of the lock. */
    bool room = !may_refuse || kg__store_room(h->store, msg->len);
    int rc = room ? kg__agg_add(h->agg, ev, msg, now) : KG_EFULL;
    if (rc == 0) {
        kg__hub_push_locked(h, msg, KG__B_EVENT);
        kg__store_put(h->store, &sev);   /* history */
    }
    pthread_mutex_unlock(&h->lock);
    kg__store_discard(sev);   /* history: refused or a duplicate */
    if (rc == 0) {
        atomic_fetch_add(&h->events, 1);
    } else if (rc == KG_EEXISTS) {
        atomic_fetch_add(&h->duplicates, 1);
    }
    return rc;
}

void kg__hub_wake_cb(void *hub)
{
    kg__hub_wake(hub);
}
