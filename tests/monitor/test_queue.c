/* test_queue.c - the monitor's queue under contention: 8 producers (records
 * of one or two events), 3 consumers each taking one partition: every record
 * taken exactly once by the consumer of its partition, each producer's
 * records in order with increasing positions; room is judged from the
 * slowest consumer; the cells kept for the dispatcher; what is dropped when
 * the workers stop.  Its real job is to run under ThreadSanitizer. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "monitor/queue.h"
#include "testutil.h"

#define PRODUCERS 8
#define CONSUMERS 3
#define PER_PRODUCER 200000

static kg_queue q;
static atomic_long taken_events, taken_records;
static atomic_bool producers_done;
static atomic_long order_violations, wrong_partition;

static void *producer(void *arg)
{
    long id = (long)arg;
    for (long i = 0; i < PER_PRODUCER;) {
        unsigned count = 1 + (unsigned)(i % 3 == 0);
        size_t pos;
        kg_record *r = kg_queue_reserve(&q, count, false, &pos);
        if (!r) {
            sched_yield();   /* full: try again, we want every record through */
            continue;
        }
        memset(r, 0, sizeof *r);
        r->run_id = (uint64_t)id;
        r->exec_id = (uint64_t)i;
        r->item = (int32_t)count;
        kg_queue_commit(r, pos, (unsigned)id % CONSUMERS, count);
        i++;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    unsigned cid = (unsigned)(long)arg;
    long last_i[PRODUCERS];
    size_t last_pos[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        last_i[p] = -1, last_pos[p] = 0;
    size_t pos = 0;
    for (;;) {
        unsigned part, count;
        const kg_record *r = kg_queue_peek(&q, pos, &part, &count);
        if (!r) {
            if (atomic_load(&producers_done) && pos == kg_queue_reserved(&q))
                break;
            kg_queue_advance(&q, cid, pos);   /* let producers use what we read */
            sched_yield();
            continue;
        }
        if (part == cid) {
            long p = (long)r->run_id, i = (long)r->exec_id;
            if (i <= last_i[p] || (last_i[p] >= 0 && pos <= last_pos[p]))
                atomic_fetch_add(&order_violations, 1);
            if ((unsigned)p % CONSUMERS != cid || (unsigned)r->item != count)
                atomic_fetch_add(&wrong_partition, 1);
            last_i[p] = i;
            last_pos[p] = pos;
            atomic_fetch_add(&taken_records, 1);
            atomic_fetch_add(&taken_events, (long)count);
        }
        pos += count;
        if (pos % 64 == 0 || count == 2)
            kg_queue_advance(&q, cid, pos);
    }
    kg_queue_advance(&q, cid, pos);
    return NULL;
}

static void test_mpmc_exactly_once(void **state)
{
    assert_int_equal(kg_queue_init(&q, 1024, CONSUMERS, 0), 0);
    assert_int_equal(kg_queue_capacity(&q), 1024);
    pthread_t pt[PRODUCERS], ct[CONSUMERS];
    for (long i = 0; i < CONSUMERS; i++)
        pthread_create(&ct[i], NULL, consumer, (void *)i);
    for (long i = 0; i < PRODUCERS; i++)
        pthread_create(&pt[i], NULL, producer, (void *)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    atomic_store(&producers_done, true);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    /* A third of the records carry two events, i.e. two positions. */
    long per_events = PER_PRODUCER + (PER_PRODUCER + 2) / 3;
    assert_int_equal(atomic_load(&taken_records), (long)PRODUCERS * PER_PRODUCER);
    assert_int_equal(atomic_load(&taken_events), (long)PRODUCERS * per_events);
    assert_int_equal(kg_queue_reserved(&q), (size_t)(PRODUCERS * per_events));
    assert_int_equal(atomic_load(&order_violations), 0);
    assert_int_equal(atomic_load(&wrong_partition), 0);
    assert_int_equal(kg_queue_drop_untaken(&q), 0);
    kg_queue_destroy(&q);
}

static void put(kg_queue *qq, unsigned count, bool reserved_room, unsigned part, bool expect)
{
    size_t pos = 0;
    kg_record *r = kg_queue_reserve(qq, count, reserved_room, &pos);
    if (!expect) {
        assert_null(r);
        return;
    }
    assert_non_null(r);
    memset(r, 0, sizeof *r);
    kg_queue_commit(r, pos, part, count);
}

/* Room is what the slowest consumer has not read; producers never wait. */
static void test_full_queue_refuses_without_waiting(void **state)
{
    kg_queue small;
    assert_int_equal(kg_queue_init(&small, 7, 2, 0), 0);   /* rounded up to 8 */
    assert_int_equal(kg_queue_capacity(&small), 8);
    for (int i = 0; i < 4; i++)
        put(&small, 2, false, 0, true);
    put(&small, 1, false, 0, false);
    kg_queue_advance(&small, 0, 8);   /* consumer 0 is done, consumer 1 is not */
    put(&small, 1, false, 0, false);
    kg_queue_advance(&small, 1, 2);
    put(&small, 2, false, 0, true);   /* positions 8 and 9 reuse 0 and 1 */
    put(&small, 1, false, 0, false);
    unsigned part, count;
    assert_null(kg_queue_peek(&small, 10, &part, &count));
    assert_non_null(kg_queue_peek(&small, 8, &part, &count));
    assert_int_equal(count, 2);
    kg_queue_destroy(&small);
}

/* Producers leave the last `reserve` cells to the dispatcher, which can
 * still queue its report while they are refused. */
static void test_reserved_cells_for_the_dispatcher(void **state)
{
    kg_queue qq;
    assert_int_equal(kg_queue_init(&qq, 16, 1, 3), 0);
    for (int i = 0; i < 13; i++)
        put(&qq, 1, false, 0, true);
    put(&qq, 1, false, 0, false);
    for (int i = 0; i < 3; i++)
        put(&qq, 1, true, 0, true);
    put(&qq, 1, true, 0, false);
    kg_queue_destroy(&qq);
}

/* When the workers stop, what their partitions' consumers have not read is
 * released and counted; what a faster consumer stepped over is not. */
static void test_drop_untaken_counts_events(void **state)
{
    kg_queue qq;
    assert_int_equal(kg_queue_init(&qq, 16, 2, 0), 0);
    put(&qq, 1, false, 0, true);   /* pos 0, partition 0 */
    put(&qq, 2, false, 1, true);   /* pos 1-2, partition 1 */
    put(&qq, 1, false, 0, true);   /* pos 3 */
    put(&qq, 2, false, 1, true);   /* pos 4-5 */
    kg_queue_advance(&qq, 0, 6);   /* consumer 0 took 0 and 3 */
    kg_queue_advance(&qq, 1, 3);   /* consumer 1 took 1-2 only */
    assert_int_equal(kg_queue_drop_untaken(&qq), 2);
    assert_int_equal(kg_queue_drop_untaken(&qq), 0);
    kg_queue_destroy(&qq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_queue_refuses_without_waiting),
        cmocka_unit_test(test_reserved_cells_for_the_dispatcher),
        cmocka_unit_test(test_drop_untaken_counts_events),
        cmocka_unit_test(test_mpmc_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
