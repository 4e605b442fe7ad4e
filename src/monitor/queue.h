/* monitor/queue.h - the bounded lock-free multi-producer multi-consumer queue
 * between node threads and dispatcher threads.
 *
 * Why not Concurrency Kit's ck_ring: its multi-producer enqueue reserves a slot
 * and then spins until every earlier producer has committed, so one producer
 * preempted between the two steps stalls every other producer -- with 8 node
 * threads on 2 cores that is a real block on the workflow's path.  ck_pr's
 * inline-assembly fences are also invisible to ThreadSanitizer.  This is
 * Dmitry Vyukov's bounded MPMC queue in C11 atomics: every cell carries a
 * sequence number, so a producer only ever waits for its own compare-and-swap;
 * a preempted producer delays only the consumer that reaches its cell.
 * tests/monitor/test_queue.c stresses it under TSan.
 *
 * Producers fill the record in place (reserve, write, commit) to avoid a copy. */
#ifndef KG_MONITOR_QUEUE_H
#define KG_MONITOR_QUEUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "monitor/record.h"

typedef struct kg_queue_cell {
    atomic_size_t seq;
    kg_record rec;
} kg_queue_cell;

typedef struct kg_queue {
    kg_queue_cell *cells;
    size_t mask;                          /* capacity - 1, capacity = 2^n */
    alignas(64) atomic_size_t head;       /* next position to reserve */
    alignas(64) atomic_size_t tail;       /* next position to take */
} kg_queue;

/* Capacity is rounded up to a power of two (>= 2).  0 or KG_ENOMEM. */
int kg_queue_init(kg_queue *q, size_t capacity);
void kg_queue_destroy(kg_queue *q);   /* releases records still queued */

/* Reserve a cell, or NULL when the queue is full (never waits).  The record
 * must then be filled and kg_queue_commit()ed; *pos receives its position. */
kg_record *kg_queue_reserve(kg_queue *q, size_t *pos);
void kg_queue_commit(kg_record *rec, size_t pos);

/* Take up to `max` records (copied out, ownership moves to the caller).
 * Returns how many; 0 when empty or when the next cell is not committed yet.
 * *first (may be NULL) receives the position of the first one taken; with
 * a single consumer the others follow it without a gap. */
size_t kg_queue_take(kg_queue *q, kg_record *out, size_t max, size_t *first);

size_t kg_queue_size(const kg_queue *q);
size_t kg_queue_capacity(const kg_queue *q);
size_t kg_queue_reserved(const kg_queue *q);   /* total ever reserved */
size_t kg_queue_taken(const kg_queue *q);      /* total ever taken */

#endif
