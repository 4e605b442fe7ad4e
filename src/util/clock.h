/* util/clock.h - the clocks every part reads.
 *
 * Monotonic time for intervals, deadlines and rates; real (wall) time only
 * for what is shown or stored as a date.  clock_gettime is a vDSO call on
 * Linux: no system call. */
#ifndef KG_UTIL_CLOCK_H
#define KG_UTIL_CLOCK_H

#include <stdint.h>

int64_t kg_clock_mono_ns(void);   /* CLOCK_MONOTONIC, nanoseconds */
int64_t kg_clock_real_ns(void);   /* CLOCK_REALTIME, ns since the Unix epoch */
double kg_clock_mono(void);       /* the same in seconds */
double kg_clock_real(void);
/* Sleep `seconds` (fractions allowed; a signal may end it early). */
void kg_clock_sleep(double seconds);

#endif
