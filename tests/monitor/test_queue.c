/* test_queue.c - the MPMC queue under contention: 8 producers, 3 consumers,
 * every record delivered exactly once and each producer's records in order.
 * Its real job is to run under ThreadSanitizer (scripts/test). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "monitor/queue.h"
#include "testutil.h"

#define PRODUCERS 8
#define CONSUMERS 3
#define PER_PRODUCER 200000

static kg_queue q;
static atomic_long produced_drops, consumed;
static atomic_bool producers_done;
static long last_seen[CONSUMERS][PRODUCERS];
static atomic_long order_violations;

static void *producer(void *arg)
{
    long id = (long)arg;
    for (long i = 0; i < PER_PRODUCER;) {
        size_t pos;
        kg_record *r = kg_queue_reserve(&q, &pos);
        if (!r) {
            atomic_fetch_add(&produced_drops, 1);
            continue;   /* full: try again, we want every record through */
        }
        r->run_id = (uint64_t)id;
        r->exec_id = (uint64_t)i;
        r->payload_kind = KG_PAYLOAD_NONE;
        r->path = NULL;
        kg_queue_commit(r, pos);
        i++;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    long cid = (long)arg;
    kg_record batch[64];
    for (int p = 0; p < PRODUCERS; p++)
        last_seen[cid][p] = -1;
    for (;;) {
        size_t n = kg_queue_take(&q, batch, 64);
        for (size_t i = 0; i < n; i++) {
            long p = (long)batch[i].run_id, seq = (long)batch[i].exec_id;
            /* One consumer sees a producer's records in increasing order. */
            if (seq <= last_seen[cid][p])
                atomic_fetch_add(&order_violations, 1);
            last_seen[cid][p] = seq;
        }
        atomic_fetch_add(&consumed, (long)n);
        if (n == 0 && atomic_load(&producers_done) && kg_queue_size(&q) == 0)
            break;
    }
    return NULL;
}

static void test_mpmc_exactly_once(void **state)
{
    assert_int_equal(kg_queue_init(&q, 1024), 0);
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
    assert_int_equal(atomic_load(&consumed), (long)PRODUCERS * PER_PRODUCER);
    assert_int_equal(kg_queue_reserved(&q), (size_t)PRODUCERS * PER_PRODUCER);
    assert_int_equal(kg_queue_taken(&q), (size_t)PRODUCERS * PER_PRODUCER);
    assert_int_equal(atomic_load(&order_violations), 0);
    kg_queue_destroy(&q);
}

static void test_full_queue_refuses_without_waiting(void **state)
{
    kg_queue small;
    assert_int_equal(kg_queue_init(&small, 3), 0);   /* rounded up to 4 */
    assert_int_equal(kg_queue_capacity(&small), 4);
    size_t pos;
    for (int i = 0; i < 4; i++) {
        kg_record *r = kg_queue_reserve(&small, &pos);
        assert_non_null(r);
        r->payload_kind = KG_PAYLOAD_NONE;
        r->path = NULL;
        kg_queue_commit(r, pos);
    }
    assert_null(kg_queue_reserve(&small, &pos));
    kg_record out[8];
    assert_int_equal(kg_queue_take(&small, out, 8), 4);
    kg_record *again = kg_queue_reserve(&small, &pos);   /* room again */
    assert_non_null(again);
    again->payload_kind = KG_PAYLOAD_NONE;
    again->path = NULL;
    kg_queue_commit(again, pos);
    kg_queue_destroy(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_queue_refuses_without_waiting),
        cmocka_unit_test(test_mpmc_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
