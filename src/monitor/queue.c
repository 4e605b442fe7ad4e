/* queue.c - the monitor's queue; see queue.h for the design.
 *
 * Producers' side: inline in queue.h.  Memory ordering, in short: a
 * producer's record writes happen before its release store of the cell's
 * state, which a consumer's acquire load pairs with.  A consumer's reads of a cell happen before its release store of its
 * cursor; whoever computes `tail` loads the cursors with acquire and
 * publishes `tail` with release; a producer loads `tail` with acquire before
 * writing into a cell below it.  So no cell is rewritten while a consumer
 * may still be reading it. */
#include <stdlib.h>
#include <string.h>

#include "kaygraph/error.h"
#include "monitor/queue.h"

#define POS_BITS KG__QUEUE_POS_BITS
#define POS_MASK KG__QUEUE_POS_MASK

int kg_queue_init(kg_queue *q, size_t capacity, unsigned consumers, size_t reserve)
{
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    memset(q, 0, sizeof *q);
    q->cells = aligned_alloc(64, cap * sizeof *q->cells);
    q->cursors = aligned_alloc(64, consumers * sizeof *q->cursors);
    if (!q->cells || !q->cursors) {
        free(q->cells);
        free(q->cursors);
        return KG_ENOMEM;
    }
    /* State 0 never matches a position + 1 (positions start at 0). */
    memset(q->cells, 0, cap * sizeof *q->cells);
    q->mask = cap - 1;
    q->limit = reserve < cap ? cap - reserve : 1;
    q->n_cursors = consumers;
    for (unsigned i = 0; i < consumers; i++)
        atomic_init(&q->cursors[i].pos, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void kg_queue_destroy(kg_queue *q)
{
    if (!q->cells)
        return;
    kg_queue_drop_untaken(q);
    free(q->cells);
    free(q->cursors);
    q->cells = NULL;
    q->cursors = NULL;
}

/* tail = the lowest cursor.  Several consumers may compute it at once; a
 * stale (lower) minimum is still safe, and the CAS never moves tail back. */
static void tail_update(kg_queue *q)
{
    size_t min = SIZE_MAX;
    for (unsigned i = 0; i < q->n_cursors; i++) {
        size_t p = atomic_load_explicit(&q->cursors[i].pos, memory_order_acquire);
        if (p < min)
            min = p;
    }
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    while (tail < min && !atomic_compare_exchange_weak_explicit(&q->tail, &tail, min,
                                                                memory_order_release,
                                                                memory_order_relaxed)) {
    }
}

void kg_queue_advance(kg_queue *q, unsigned c, size_t pos)
{
    /* seq_cst (a plain store on x86 costs an xchg, once per batch): it and
     * kg_monitor_flush's loads share one total order with the worker's
     * announcement of what it holds (dispatcher.c). */
    atomic_store_explicit(&q->cursors[c].pos, pos, memory_order_seq_cst);
    tail_update(q);
}

size_t kg_queue_cursor_of(const kg_queue *q, unsigned c)
{
    return atomic_load_explicit(&((kg_queue *)q)->cursors[c].pos, memory_order_seq_cst);
}

size_t kg_queue_drop_untaken(kg_queue *q)
{
    size_t head = atomic_load(&q->head), dropped = 0;
    size_t pos = SIZE_MAX;
    for (unsigned i = 0; i < q->n_cursors; i++)
        if (atomic_load(&q->cursors[i].pos) < pos)
            pos = atomic_load(&q->cursors[i].pos);
    unsigned part, count;
    while (pos < head) {
        kg_record *r = (kg_record *)kg_queue_peek(q, pos, &part, &count);
        if (!r)
            break;   /* a producer never committed: nothing to release */
        if (part < q->n_cursors && pos >= atomic_load(&q->cursors[part].pos)) {
            kg_record_release(r);
            dropped += count;
        }
        pos += count;
    }
    for (unsigned i = 0; i < q->n_cursors; i++)
        atomic_store(&q->cursors[i].pos, head);
    atomic_store(&q->tail, head);
    return dropped;
}

size_t kg_queue_capacity(const kg_queue *q)
{
    return q->mask + 1;
}

size_t kg_queue_reserved(const kg_queue *q)
{
    return atomic_load_explicit(&((kg_queue *)q)->head, memory_order_relaxed);
}
