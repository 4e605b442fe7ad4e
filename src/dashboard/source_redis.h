/* dashboard/source_redis.h - the Redis source (source_redis.c): the subscription
 * thread with its stream replay, and the history fetch thread. */
#ifndef KG_DASH_SOURCE_REDIS_H
#define KG_DASH_SOURCE_REDIS_H

#include <stdarg.h>

#include "hub.h"
#include "util/list.h"

typedef struct kg__redis_source kg__redis_source;

/* Start the threads (they connect, subscribe and reconnect by themselves).
 * 0 or KG_ENOMEM / KG_EINVAL with `err` filled. */
int kg__redis_source_start(kg__hub *h, const kg_dashboard_options *o, kg__redis_source **out,
                           kg_error_t *err);
/* Stop within ~0.2 s plus the readers' timeouts, then free; fetches not
 * collected yet are freed too.  NULL is a no-op. */
void kg__redis_source_stop(kg__redis_source *s);

typedef struct kg__redis_source_stats {
    uint64_t messages, replayed, replays, fetches;
    bool connected;
} kg__redis_source_stats;
void kg__redis_source_stats_get(kg__redis_source *s, kg__redis_source_stats *out);

/* One run's events fetched from Redis for a client waiting on the service
 * thread.  `owner`, `wsi` and `cancelled` belong to the service thread; the
 * result fields are written by the fetch thread before it hands the fetch
 * back (under the source's mutex), and read by the service thread after. */
typedef struct kg__fetch {
    kg_link link;
    char workflow_id[KG__ID_MAX + 1];
    void *owner;
    void *wsi;
    bool ws;              /* a get_workflow_events reply, not an HTTP response */
    bool cancelled;       /* the client went away: just free it */
    int rc;               /* 0, or a kg_error code */
    json_t *events;       /* new reference when rc == 0 */
    char error[KG_ERROR_MESSAGE_MAX];
} kg__fetch;

#define KG__FETCH_PENDING_MAX 32   /* fetches queued or running at once */

/* Queue a fetch (ownership passes to the source until it comes back from
 * kg__redis_fetch_done).  KG_EFULL when too many are pending, KG_EINVAL
 * when `s` is NULL: the caller keeps `f` then. */
int kg__redis_fetch_submit(kg__redis_source *s, kg__fetch *f);
/* A completed fetch (ownership back to the caller), or NULL. */
kg__fetch *kg__redis_fetch_done(kg__redis_source *s);
void kg__fetch_free(kg__fetch *f);

#endif
