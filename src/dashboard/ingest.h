/* dashboard/ingest.h - event texts and webhook bodies into the hub (ingest.c). */
#ifndef KG_DASH_INGEST_H
#define KG_DASH_INGEST_H

#include <stdatomic.h>
#include <stddef.h>

#include "hub.h"

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
/* kg__ingest_event_text for a source that cannot be held back: Redis
 * Pub/Sub, whose server disconnects a subscriber that falls 32 MB behind
 * (then everything published until the resubscription is gone, unless a
 * stream replay brings it back).  Never refused for the history's sake: the
 * live view gets the event, the history too when its queue has room (the
 * 1 s admission bound is for events acknowledged to a sender; these are
 * not), else it is counted in history.dropped. */
int kg__ingest_event_text_live(kg__hub *h, const char *text, size_t len, kg_error_t *err);
/* kg__ingest_event_text for a source that must not lose events and can
 * wait (the Redis stream replay, which reads at its own pace): while the
 * store refuses, wait (waking the service thread) until it has room or
 * *stop is set. */
int kg__ingest_event_text_wait(kg__hub *h, const char *text, size_t len, atomic_bool *stop,
                               kg_error_t *err);

#endif
