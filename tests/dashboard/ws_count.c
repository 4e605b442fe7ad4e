/* ws_count.c - a WebSocket client that counts what the dashboard sends (soak tests).
 *
 *   kg_ws_count PORT OUTFILE [TOKEN]
 *
 * Connects to ws://127.0.0.1:PORT/ws and reads until SIGINT/SIGTERM.  When
 * the server goes away (a dashboard killed and restarted) it reconnects every
 * 0.2 s, as the web UI does.  It counts "event" messages, the events announced
 * as dropped in "notice" messages (this client fell behind) and all messages.
 *
 * What the client has seen of the dashboard's history: every "initial"
 * snapshot carries the server's total_events, and the server sends each later
 * event exactly once after it (ws.c), so
 *     seen = total_events of the last initial + events counted since
 * equals the dashboard's own total when nothing was lost on the way.
 *
 * Every second, and at the end, it rewrites OUTFILE (atomically, via a
 * rename) with lines "events N" (all counted), "seen N", "dropped N",
 * "messages N", "reconnects N", "connected 0|1". */
#include <jansson.h>
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

typedef struct counts {
    unsigned long long events, since_initial, baseline, dropped, messages, reconnects;
    int connected;
} counts;

static void dump(const char *path, const counts *k)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "events %llu\nseen %llu\ndropped %llu\nmessages %llu\nreconnects %llu\nconnected %d\n",
            k->events, k->baseline + k->since_initial, k->dropped, k->messages, k->reconnects,
            k->connected);
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* The server's total_events in an "initial" message (0 when absent). */
static unsigned long long initial_total(const char *msg)
{
    json_t *root = json_loads(msg, 0, NULL);
    json_t *t = json_object_get(json_object_get(json_object_get(root, "data"), "metrics"),
                                "total_events");
    unsigned long long v = json_is_integer(t) ? (unsigned long long)json_integer_value(t) : 0;
    json_decref(root);
    return v;
}

static void count_message(counts *k, const char *m)
{
    k->messages++;
    if (strncmp(m, "{\"type\":\"event\"", 15) == 0) {
        k->events++;
        k->since_initial++;
    } else if (strncmp(m, "{\"type\":\"initial\"", 17) == 0) {
        k->baseline = initial_total(m);
        k->since_initial = 0;
    } else if (strncmp(m, "{\"type\":\"notice\"", 16) == 0) {
        const char *d = strstr(m, "\"dropped\":");
        if (d)
            k->dropped += strtoull(d + 10, NULL, 10);
    }
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

    counts k = {0};
    kg_tclient c;
    int st = kg_tws_connect(&c, port, path, NULL);
    if (st != 101) {
        fprintf(stderr, "ws_count: connect: %d\n", st);
        dump(out, &k);
        return 1;
    }
    k.connected = 1;
    double last_dump = 0;
    while (!g_stop) {
        if (!k.connected) {
            if (kg_tws_connect(&c, port, path, NULL) == 101) {
                k.connected = 1;
                k.reconnects++;
                fprintf(stderr, "ws_count: reconnected\n");
            } else {
                usleep(200 * 1000);
            }
        } else {
            char *m = NULL;
            size_t len = 0;
            int r = kg_tws_recv(&c, 0.2, &m, &len);
            if (r == 0) {
                count_message(&k, m);
                free(m);
            } else if (r == -2) {
                fprintf(stderr, "ws_count: server closed; reconnecting\n");
                kg_tws_close(&c);
                k.connected = 0;
            }
        }
        double t = now_s();
        if (t - last_dump >= 1.0) {
            dump(out, &k);
            last_dump = t;
        }
    }
    dump(out, &k);
    if (k.connected)
        kg_tws_close(&c);
    return 0;
}
