/* monitor/breaker.h - the circuit breaker shared by the dispatcher threads.
 *
 * closed --(threshold consecutive failures)--> open --(reset elapsed)-->
 * half-open: exactly one worker wins the probe; success closes, failure
 * re-opens and restarts the reset timer.  While open, nobody calls the
 * backend and events wait in the queue (the buffer), so an outage shorter
 * than the buffer loses nothing. */
#ifndef KG_MONITOR_BREAKER_H
#define KG_MONITOR_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct kg_breaker {
    atomic_int state;              /* kg_circuit_state */
    atomic_uint failures;          /* consecutive failed batches */
    atomic_int_fast64_t opened_ns; /* monotonic time it last opened */
    atomic_uint_fast64_t opens;
    unsigned threshold;
    int64_t reset_ns;
} kg_breaker;

void kg_breaker_init(kg_breaker *b, unsigned threshold, double reset_seconds);

/* May this worker call the backend now?  *probe is set when the call is the
 * half-open probe.  `force_probe` skips the reset wait (used at shutdown). */
bool kg_breaker_allow(kg_breaker *b, int64_t now_ns, bool force_probe, bool *probe);
void kg_breaker_success(kg_breaker *b);
void kg_breaker_failure(kg_breaker *b, int64_t now_ns, bool probe);
/* Nanoseconds until a probe is allowed (0 when closed or due). */
int64_t kg_breaker_wait_ns(kg_breaker *b, int64_t now_ns);

#endif
