/* fixture.c - see fixture.h. */
#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double kg_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kg_test_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A TCP socket bound to a free port of 127.0.0.1, not listening; -1 when
 * that failed (*port is then -1 too). */
static int kg__bound_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    *port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        *port = ntohs(a.sin_port);
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

bool kg_test_skip_allowed(const char *why)
{
    const char *allow = getenv("KG_TEST_ALLOW_SKIP");
    bool skip = allow && strcmp(allow, "1") == 0;
    fprintf(stderr, "%s: %s\n", why,
            skip ? "skipping (KG_TEST_ALLOW_SKIP=1)"
                 : "failing (scripts/deps.sh --test installs it; KG_TEST_ALLOW_SKIP=1 skips)");
    return skip;
}

int kg_test_free_port(void)
{
    int port, fd = kg__bound_socket(&port);
    if (fd >= 0)
        close(fd);
    return port;
}

int kg_test_refused_port(int *fd)
{
    int port;
    *fd = kg__bound_socket(&port);
    return port;
}
