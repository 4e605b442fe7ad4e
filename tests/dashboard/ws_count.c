/* ws_count.c - a WebSocket client that counts what the dashboard sends (soak tests).
 *
 *   kg_ws_count PORT OUTFILE [TOKEN]
 *
 * Connects to ws://127.0.0.1:PORT/ws, reads until SIGINT/SIGTERM or until
 * the server closes, and counts "event" messages, the events announced as
 * dropped in "notice" messages (this client fell behind) and all messages.
 * Every second, and at the end, it rewrites OUTFILE (atomically, via a
 * rename) with lines "events N", "dropped N", "messages N", "connected 0|1". */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsclient.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dump(const char *path, unsigned long long events, unsigned long long dropped,
                 unsigned long long messages, int connected)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "events %llu\ndropped %llu\nmessages %llu\nconnected %d\n", events, dropped,
            messages, connected);
    if (fclose(f) == 0)
        rename(tmp, path);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT OUTFILE [TOKEN]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    const char *out = argv[2];
    char path[512];
    if (argc > 3)
        snprintf(path, sizeof path, "/ws?token=%s", argv[3]);
    else
        snprintf(path, sizeof path, "/ws");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    kg_tclient c;
    int st = kg_tws_connect(&c, port, path, NULL);
    if (st != 101) {
        fprintf(stderr, "ws_count: connect: %d\n", st);
        dump(out, 0, 0, 0, 0);
        return 1;
    }
    unsigned long long events = 0, dropped = 0, messages = 0;
    double last_dump = 0;
    int rc = 0;
    while (!g_stop) {
        char *m = NULL;
        size_t len = 0;
        int r = kg_tws_recv(&c, 0.2, &m, &len);
        if (r == 0) {
            messages++;
            if (strncmp(m, "{\"type\":\"event\"", 15) == 0) {
                events++;
            } else if (strncmp(m, "{\"type\":\"notice\"", 16) == 0) {
                const char *d = strstr(m, "\"dropped\":");
                if (d)
                    dropped += strtoull(d + 10, NULL, 10);
            }
            free(m);
        } else if (r == -2) {
            fprintf(stderr, "ws_count: server closed\n");
            rc = 1;
            break;
        }
        double t = now_s();
        if (t - last_dump >= 1.0) {
            dump(out, events, dropped, messages, 1);
            last_dump = t;
        }
    }
    dump(out, events, dropped, messages, rc == 0);
    kg_tws_close(&c);
    return rc;
}
