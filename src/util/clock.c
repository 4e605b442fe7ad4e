/* util/clock.c - see clock.h. */
#include <time.h>

#include "util/clock.h"

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kg_clock_mono_ns(void)
{
    return read_ns(CLOCK_MONOTONIC);
}

int64_t kg_clock_real_ns(void)
{
    return read_ns(CLOCK_REALTIME);
}

double kg_clock_mono(void)
{
    return (double)kg_clock_mono_ns() / 1e9;
}

double kg_clock_real(void)
{
    return (double)kg_clock_real_ns() / 1e9;
}

void kg_clock_sleep(double seconds)
{
    if (seconds <= 0)
        return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}
