/* monitor/queue.h - the bounded lock-free queue between node threads and the
 * dispatcher's workers.
 *
 * One queue per monitor, and an event's position in it is its sequence
 * number (seq = position + 1): a single compare-and-swap on the head both
 * orders the event and reserves its cell.  That is the only locked
 * instruction on a node thread's path.  What seq then guarantees:
 *  - strictly increasing in emission order on each thread;
 *  - unique among the monitor's events;
 *  - across threads it follows happens-before: an event that happened
 *    before another (same thread, or ordered by a lock, a thread join, any
 *    release/acquire pair) reserved its position first, since the CASes on
 *    the head are totally ordered consistently with happens-before.
 *    Concurrent events are ordered arbitrarily, and their timestamps (taken
 *    by the engine just before) may disagree with that order.
 *  - every worker reads the queue in position order, so each run, taken by
 *    one worker, is delivered in seq order, also when its events come from
 *    several threads.  A cell is one cache line: an 8-byte state word and a 56-byte
 * record.
 *
 * Producers (node threads) never read a cell: there is room when the head is
 * less than `limit` ahead of `tail`, the oldest position some worker still
 * needs; then they fill the cell and commit it with one release store of its
 * state.  A preempted producer delays only the workers that reach its cell;
 * it never blocks another producer.  Producers leave the last `reserve`
 * cells to the dispatcher's own metric events, so that an events_dropped
 * report always finds room while node threads are being refused.
 *
 * Consumers (dispatcher workers, at most 64) each read every committed cell
 * in order: a worker takes the records of its partition (a run's events all
 * have one partition, so one worker delivers each run in order) and steps
 * over the others.  Each worker publishes how far it has read; `tail` is
 * the minimum of those.
 *
 * Why not Concurrency Kit's ck_ring: its multi-producer enqueue spins until
 * every earlier producer has committed, so one preempted producer stalls all
 * others -- with 8 node threads on 2 cores a real block on the workflow's
 * path -- and ck_pr's inline-assembly fences are invisible to
 * ThreadSanitizer.  tests/monitor/test_queue.c stresses this one under TSan. */
#ifndef KG_MONITOR_QUEUE_H
#define KG_MONITOR_QUEUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/record.h"

#define KG_QUEUE_MAX_CONSUMERS 64
#define KG_QUEUE_MAX_EVENTS 2    /* events one record can carry */
#define KG_QUEUE_NO_PART 127     /* a placeholder no consumer takes */

/* A committed cell's state: position + 1 in the low 56 bits, then the
 * record's partition (7 bits) and event count - 1 (1 bit), so a worker can
 * step over a record of another partition without reading more of it. */
typedef struct kg_queue_cell {
    _Atomic uint64_t state;
    kg_record rec;
} kg_queue_cell;

typedef struct kg_queue_cursor {
    alignas(64) atomic_size_t pos;   /* this consumer's next position */
} kg_queue_cursor;

typedef struct kg_queue {
    kg_queue_cell *cells;
    size_t mask;                       /* capacity - 1, capacity = 2^n */
    size_t limit;                      /* producers: capacity - reserve */
    unsigned n_cursors;
    kg_queue_cursor *cursors;
    alignas(64) atomic_size_t head;    /* next position to reserve */
    alignas(64) atomic_size_t tail;    /* cells below it are free */
} kg_queue;

/* Capacity is rounded up to a power of two (>= 2), `reserve` < capacity.
 * 0 or KG_ENOMEM. */
int kg_queue_init(kg_queue *q, size_t capacity, unsigned consumers, size_t reserve);
/* Releases the records no consumer has taken (see kg_queue_destroy_count). */
void kg_queue_destroy(kg_queue *q);

#define KG__QUEUE_POS_BITS 56
#define KG__QUEUE_POS_MASK ((UINT64_C(1) << KG__QUEUE_POS_BITS) - 1)

/* A producer asks for the cell KG__QUEUE_PREFETCH_AHEAD positions ahead in
 * the exclusive state that writing needs.  Each cell was last read by the
 * workers on the other CPU a lap ago, so writing a record misses; and the
 * locked CAS of the next reservation (a node's records come in quick pairs:
 * start and preparing, executed and completed) waits until that miss has
 * drained from the store buffer.  Asked for 16 positions (2-3 node
 * executions) early, the line is there when the record is written.  Measured
 * with `kg_probe workflow --work 10 --pin split`, 7 interleaved rounds, twice:
 * 256 -> 204 and 253 -> 201 ns of monitoring per node execution; the next
 * position instead of 16 ahead made no difference (too late), two lines
 * (16 and 17, for records of one and two positions) none beyond one.
 * PREFETCHW is a hint (a no-op on x86 CPUs without it); elsewhere, and under
 * ThreadSanitizer, the compiler's write prefetch. */
#define KG__QUEUE_PREFETCH_AHEAD 16
static inline void kg__queue_prefetch_for_write(const void *p)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

/* Reserve `count` (1..KG_QUEUE_MAX_EVENTS) consecutive positions, or NULL
 * when there is no room (never waits).  `reserved_room`: may use the cells
 * kept for the dispatcher.  Then fill the record and kg_queue_commit() it.
 * Inline: these two are on every node thread's path.
 *
 * Memory ordering: the acquire load of `tail` pairs with the release that
 * published it, so every consumer is done with the cells below it.  The
 * position itself needs only a relaxed CAS: the record's contents are
 * published by commit's release store, and the CAS's place in the head's
 * modification order is what orders seq across threads. */
static inline kg_record *kg_queue_reserve(kg_queue *q, unsigned count, bool reserved_room,
                                          size_t *pos_out)
{
    size_t limit = reserved_room ? q->mask + 1 : q->limit;
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
        /* (No subtraction: a stale `pos` may be below `tail`; then the CAS
         * fails and reloads it.) */
        if (pos + count > tail + limit)
            return NULL;   /* full */
        if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + count,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *pos_out = pos;
            kg__queue_prefetch_for_write(&q->cells[(pos + KG__QUEUE_PREFETCH_AHEAD) & q->mask]);
            return &q->cells[pos & q->mask].rec;
        }
    }
}

/* The committed record at position `pos`, or NULL when it is not committed
 * yet (or pos == head).  *part and *count describe it.  Inline: every worker
 * calls it for every record. */
static inline const kg_record *kg_queue_peek(const kg_queue *q, size_t pos, unsigned *part,
                                             unsigned *count)
{
    kg_queue_cell *cell = &q->cells[pos & q->mask];
    /* Acquire pairs with commit's release: the record is complete. */
    uint64_t state = atomic_load_explicit(&cell->state, memory_order_acquire);
    if ((state & KG__QUEUE_POS_MASK) != (((uint64_t)pos + 1) & KG__QUEUE_POS_MASK))
        return NULL;   /* not committed yet, or nothing there */
    *part = (unsigned)((state >> KG__QUEUE_POS_BITS) & 0x7F);
    *count = (unsigned)(state >> 63) + 1;
    return &cell->rec;
}

static inline void kg_queue_commit(kg_record *rec, size_t pos, unsigned part, unsigned count)
{
    kg_queue_cell *cell = (kg_queue_cell *)((char *)rec - offsetof(kg_queue_cell, rec));
    uint64_t state = (((uint64_t)pos + 1) & KG__QUEUE_POS_MASK) |
                     ((uint64_t)part << KG__QUEUE_POS_BITS) | ((uint64_t)(count - 1) << 63);
    /* Release publishes the record's contents to the consumer's acquire. */
    atomic_store_explicit(&cell->state, state, memory_order_release);
}

/* Consumer `c` has read everything before `pos` (and copied what it takes). */
void kg_queue_advance(kg_queue *q, unsigned c, size_t pos);
size_t kg_queue_cursor_of(const kg_queue *q, unsigned c);

/* Release the records at and after every consumer's cursor that the
 * consumer of their partition has not taken (the workers have stopped).
 * Returns how many events they carried. */
size_t kg_queue_drop_untaken(kg_queue *q);

size_t kg_queue_capacity(const kg_queue *q);
size_t kg_queue_reserved(const kg_queue *q);   /* positions ever reserved */

#endif
