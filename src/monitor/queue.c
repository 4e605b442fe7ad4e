/* queue.c - Vyukov's bounded MPMC queue; see queue.h for why it is ours.
 *
 * Cell protocol: a cell at index i is free for the producer of position p
 * (p & mask == i) when cell.seq == p; it holds a committed record for the
 * consumer of position p when cell.seq == p + 1; after taking it the consumer
 * sets cell.seq = p + capacity, freeing it for the next lap. */
#include <stdint.h>
#include <stdlib.h>

#include "kaygraph/error.h"
#include "monitor/queue.h"

int kg_queue_init(kg_queue *q, size_t capacity)
{
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    q->cells = aligned_alloc(64, ((cap * sizeof *q->cells) + 63) & ~(size_t)63);
    if (!q->cells)
        return KG_ENOMEM;
    for (size_t i = 0; i < cap; i++)
        atomic_init(&q->cells[i].seq, i);
    q->mask = cap - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void kg_queue_destroy(kg_queue *q)
{
    kg_record r;
    while (kg_queue_take(q, &r, 1, NULL) == 1)
        kg_record_release(&r);
    free(q->cells);
    q->cells = NULL;
}

kg_record *kg_queue_reserve(kg_queue *q, size_t *pos_out)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        kg_queue_cell *cell = &q->cells[pos & q->mask];
        /* Acquire pairs with the consumer's release below: once we see the
         * cell free, the consumer's copy out of it has finished. */
        size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            /* Relaxed is enough: the CAS only arbitrates between producers;
             * the record's visibility is published by commit's release. */
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *pos_out = pos;
                return &cell->rec;
            }
        } else if (dif < 0) {
            return NULL;   /* the cell still holds last lap's record: full */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

void kg_queue_commit(kg_record *rec, size_t pos)
{
    kg_queue_cell *cell = (kg_queue_cell *)((char *)rec - offsetof(kg_queue_cell, rec));
    /* Release publishes the record's contents to the consumer's acquire. */
    atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
}

size_t kg_queue_take(kg_queue *q, kg_record *out, size_t max, size_t *first)
{
    size_t n = 0;
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    while (n < max) {
        kg_queue_cell *cell = &q->cells[pos & q->mask];
        /* Acquire pairs with commit's release: the record is complete. */
        size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            /* seq_cst (free on x86, where every CAS is a full barrier) so
             * kg_monitor_flush can order this against a worker's
             * announcement of what it is about to hold (dispatcher.c). */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                if (n == 0 && first)
                    *first = pos;
                out[n++] = cell->rec;
                /* Release: our copy is done before a producer reuses the cell. */
                atomic_store_explicit(&cell->seq, pos + q->mask + 1, memory_order_release);
                pos++;
            }
        } else if (dif < 0) {
            break;   /* empty, or the producer of `pos` has not committed yet */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    return n;
}

size_t kg_queue_size(const kg_queue *q)
{
    size_t tail = atomic_load_explicit(&((kg_queue *)q)->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&((kg_queue *)q)->head, memory_order_relaxed);
    return head > tail ? head - tail : 0;
}

size_t kg_queue_capacity(const kg_queue *q)
{
    return q->mask + 1;
}

size_t kg_queue_reserved(const kg_queue *q)
{
    return atomic_load_explicit(&((kg_queue *)q)->head, memory_order_relaxed);
}

size_t kg_queue_taken(const kg_queue *q)
{
    return atomic_load_explicit(&((kg_queue *)q)->tail, memory_order_seq_cst);
}
