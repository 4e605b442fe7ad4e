/* monitor/credits.h - descriptor references for queued records without an
 * atomic operation per event.
 *
 * Each queued record holds a reference to its node's descriptor
 * (core/desc.h).  Incrementing the count per event would be a locked
 * instruction on the node thread, on a cache line the dispatcher also
 * writes when it drops references.  Instead a thread takes references in
 * bulk (one atomic add of KG_CREDIT_BULK) and hands them out one per record
 * from thread-local storage; it keeps credits for the last few descriptors
 * it used (a small two-way set-associative cache keyed by the descriptor's
 * address) and gives unused ones back when a slot is needed for another or
 * the thread exits.  A freed graph's descriptors therefore stay allocated
 * until the threads that ran it use other nodes or exit: at most
 * KG_CREDIT_SLOTS per thread. */
#ifndef KG_MONITOR_CREDITS_H
#define KG_MONITOR_CREDITS_H

#include <stddef.h>
#include <stdint.h>

#include "core/desc.h"

#define KG_CREDIT_SETS 8          /* two slots each */
#define KG_CREDIT_SLOTS (2 * KG_CREDIT_SETS)
#define KG_CREDIT_BULK 1024

typedef struct kg_credit {
    kg_node_desc *desc;
    size_t left;               /* references held, not yet handed out */
} kg_credit;

/* initial-exec: a plain %fs-relative access, not a __tls_get_addr call per
 * event.  (A library loaded with dlopen needs these 264 bytes from glibc's
 * static TLS surplus, which has room for them.) */
extern __thread kg_credit kg__credits[KG_CREDIT_SLOTS] __attribute__((tls_model("initial-exec")));

void kg__credit_slow(kg_node_desc *d);

static inline kg_credit *kg__credit_set(const kg_node_desc *d)
{
    uint64_t h = ((uint64_t)(uintptr_t)d * 0x9E3779B97F4A7C15u) >> 61;   /* 3 bits */
    return &kg__credits[2 * (size_t)h];
}

/* One reference to `d` (not NULL) for a record. */
static inline void kg_credit_take(kg_node_desc *d)
{
    kg_credit *set = kg__credit_set(d);
    if (set[0].desc == d && set[0].left) {
        set[0].left--;
        return;
    }
    if (set[1].desc == d && set[1].left) {
        set[1].left--;
        return;
    }
    kg__credit_slow(d);
}

#endif
