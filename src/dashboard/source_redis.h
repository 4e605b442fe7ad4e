/* dashboard/source_redis.h - start/stop of the Redis subscription thread (source_redis.c). */
#ifndef KG_DASH_SOURCE_REDIS_H
#define KG_DASH_SOURCE_REDIS_H

#include <stdarg.h>

#include "dash_internal.h"

typedef struct kg__redis_source kg__redis_source;

/* Start the thread (it connects, subscribes and reconnects by itself).
 * 0 or KG_ENOMEM / KG_EINVAL with `err` filled. */
int kg__redis_source_start(kg__hub *h, const kg_dashboard_options *o, kg__redis_source **out,
                           kg_error_t *err);
/* Stop within ~0.2 s plus the reader's timeouts, then free.  NULL is a no-op. */
void kg__redis_source_stop(kg__redis_source *s);
void kg__redis_source_stats(kg__redis_source *s, uint64_t *messages, bool *connected);

#endif
