/* fixture.h - helpers shared by the C tests and the benchmarks that drive real
 * servers: bounded waits, clocks, ports.  No cmocka here, so a build without
 * tests (benchmarks only) needs no test framework.
 *
 * Tests never sleep-and-hope: they wait for a condition with a bound
 * (KG_WAIT_UNTIL) and fail with a message when the bound passes. */
#ifndef KG_FIXTURE_H
#define KG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic seconds. */
double kg_test_now(void);
void kg_test_sleep(double seconds);

/* Poll `cond` every millisecond for at most `timeout` seconds; evaluates to
 * true when it became true.  Use as assert_true(KG_WAIT_UNTIL(x == 3, 5)). */
#define KG_WAIT_UNTIL(cond, timeout)                                  \
    ({                                                                \
        double kg__deadline = kg_test_now() + (timeout);              \
        bool kg__ok;                                                  \
        while (!(kg__ok = (cond)) && kg_test_now() < kg__deadline)   \
            kg_test_sleep(0.001);                                     \
        kg__ok;                                                       \
    })

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int kg_test_free_port(void);

/* A TCP port on 127.0.0.1 where connections are refused for as long as *fd
 * (a bound, not listening socket) stays open: unlike a port that was free a
 * moment ago, no test running in parallel can start a server on it.  The
 * caller closes *fd. */
int kg_test_refused_port(int *fd);

/* A test that needs something the machine lacks (redis-server, PostgreSQL,
 * OpenSSL) skips only when KG_TEST_ALLOW_SKIP=1 is set: a skipped test is not
 * a pass, so by default it fails.  Prints `why` and returns whether to skip. */
bool kg_test_skip_allowed(const char *why);

#endif
