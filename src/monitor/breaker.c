/* breaker.c - see breaker.h. */
#include "kaygraph/monitor.h"
#include "monitor/breaker.h"

void kg_breaker_init(kg_breaker *b, unsigned threshold, double reset_seconds)
{
    atomic_init(&b->state, KG_CIRCUIT_CLOSED);
    atomic_init(&b->failures, 0);
    atomic_init(&b->opened_ns, 0);
    atomic_init(&b->opens, 0);
    b->threshold = threshold ? threshold : 1;
    b->reset_ns = (int64_t)(reset_seconds * 1e9);
}

bool kg_breaker_allow(kg_breaker *b, int64_t now_ns, bool force_probe, bool *probe)
{
    *probe = false;
    int state = atomic_load(&b->state);
    if (state == KG_CIRCUIT_CLOSED)
        return true;
    if (state == KG_CIRCUIT_HALF_OPEN)
        return false;   /* another worker's probe is in flight */
    if (!force_probe && now_ns - atomic_load(&b->opened_ns) < b->reset_ns)
        return false;
    /* Only the worker that moves open -> half-open sends the probe. */
    int expected = KG_CIRCUIT_OPEN;
    if (atomic_compare_exchange_strong(&b->state, &expected, KG_CIRCUIT_HALF_OPEN)) {
        *probe = true;
        return true;
    }
    return false;
}

void kg_breaker_success(kg_breaker *b)
{
    atomic_store(&b->failures, 0);
    atomic_store(&b->state, KG_CIRCUIT_CLOSED);
}


void kg_breaker_failure(kg_breaker *b, int64_t now_ns, bool probe)
{
    unsigned failures = atomic_fetch_add(&b->failures, 1) + 1;
    /* The open time is stored before the state so that a worker seeing
     * "open" never pairs it with a stale open time. */
    if (probe) {
        atomic_store(&b->opened_ns, now_ns);
        atomic_store(&b->state, KG_CIRCUIT_OPEN);
        atomic_fetch_add(&b->opens, 1);
        return;
    }
    if (failures < b->threshold || atomic_load(&b->state) != KG_CIRCUIT_CLOSED)
        return;
    atomic_store(&b->opened_ns, now_ns);
    int expected = KG_CIRCUIT_CLOSED;
    if (atomic_compare_exchange_strong(&b->state, &expected, KG_CIRCUIT_OPEN))
        atomic_fetch_add(&b->opens, 1);
}

int64_t kg_breaker_wait_ns(kg_breaker *b, int64_t now_ns)
{
    if (atomic_load(&b->state) != KG_CIRCUIT_OPEN)
        return 0;
    int64_t left = atomic_load(&b->opened_ns) + b->reset_ns - now_ns;
    return left > 0 ? left : 0;
}
