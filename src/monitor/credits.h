/* monitor/credits.h - descriptor references for queued records without an
 * atomic operation per event.
 *
 * Each queued record holds a reference to its node's descriptor
 * (core/desc.h).  Incrementing the count per event would be a locked
 * instruction on the node thread, on a cache line the dispatcher also
 * writes when it drops references.  Instead a thread takes references in
 * bulk (one atomic add of KG_CREDIT_BULK) and hands them out one per record
 * from thread-local storage; it keeps credits for the last few descriptors
 * it used and gives unused ones back when it moves on or exits.  A freed
 * graph's descriptors therefore stay allocated until the threads that ran
 * it use other nodes or exit: at most KG_CREDIT_SLOTS per thread. */
#ifndef KG_MONITOR_CREDITS_H
#define KG_MONITOR_CREDITS_H

#include <stddef.h>

#include "core/desc.h"

#define KG_CREDIT_SLOTS 16
#define KG_CREDIT_BULK 1024

typedef struct kg_credit {
    kg_node_desc *desc;
    size_t left;               /* references held, not yet handed out */
} kg_credit;

/* initial-exec: a plain %fs-relative access, not a __tls_get_addr call per
 * event (the library is linked at start-up, not dlopen'ed). */
extern __thread kg_credit kg__credits[KG_CREDIT_SLOTS] __attribute__((tls_model("initial-exec")));

void kg__credit_slow(kg_node_desc *d);

/* One reference to `d` (not NULL) for a record. */
static inline void kg_credit_take(kg_node_desc *d)
{
    if (kg__credits[0].desc == d && kg__credits[0].left) {
        kg__credits[0].left--;
        return;
    }
    kg__credit_slow(d);
}

#endif
