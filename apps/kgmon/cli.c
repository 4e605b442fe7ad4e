/* cli.c - see cli.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kgmon %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see kgmon %s --help)\n", cmd);
    va_end(ap);
    return KGMON_USAGE;
}

bool cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_hostport(const char *s, int default_port, char **host, int *port)
{
    if (!s || !*s)
        return false;
    const char *colon = strrchr(s, ':');
    unsigned long long p = (unsigned long long)default_port;
    size_t host_len = strlen(s);
    if (colon) {
        if (!cli_parse_uint(colon + 1, 1, 65535, &p))
            return false;
        host_len = (size_t)(colon - s);
    } else if (cli_parse_uint(s, 1, 65535, &p)) {
        host_len = 0;
    }
    *host = host_len ? strndup(s, host_len) : strdup("127.0.0.1");
    *port = (int)p;
    return *host != NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool cli_sleep_interruptible(double seconds)
{
    double slept = 0;
    while (slept < seconds && !cli_interrupted) {
        double step = seconds - slept < 0.05 ? seconds - slept : 0.05;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        slept += step;
    }
    return cli_interrupted != 0;
}

bool cli_is_tty(int fd)
{
    return isatty(fd) == 1;
}
