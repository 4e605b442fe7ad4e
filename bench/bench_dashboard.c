/* bench_dashboard.c - event-to-WebSocket-client latency of the dashboard.
 *
 * One process: the dashboard server (its own service thread), a producer
 * thread that ingests events at a fixed rate (each stamped with the
 * monotonic clock in data.bench_ns), and a receiver thread holding N real
 * WebSocket connections on loopback (epoll, non-blocking, its own frame
 * parser).  Latency = receive time - stamp, for every (event, client) pair,
 * so it covers ingest parsing, aggregation, fan-out, framing, the kernel and
 * the client's parse.  Prints one JSON object.
 *
 *   bench_dashboard [--clients 50] [--duration 5] [--rates 1000,10000] [--db PATH]
 *
 * --db PATH also writes the run history into that SQLite file (or
 * postgres://...) while measuring: the live view's latency with history on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kaygraph/dashboard.h"
#include "hub.h"
#include "store.h"

kg__hub *kg__server_hub(struct kg_dashboard *d);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

typedef struct client {
    int fd;
    char *buf;
    size_t len, cap;
    bool upgraded;
} client;

typedef struct bench {
    client *cl;
    int n;
    atomic_bool stop;
    double *lat;          /* milliseconds */
    size_t nlat, caplat;
    uint64_t other_msgs, notices;
} bench;

static int ws_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    return fd;
}

static void on_message(bench *b, const char *p, size_t n, uint64_t t)
{
    static const char key[] = "\"bench_ns\":";
    if (n > 16 && memcmp(p, "{\"type\":\"event\",", 16) == 0) {
        const char *k = memmem(p, n, key, sizeof key - 1);
        if (k) {
            uint64_t sent = strtoull(k + sizeof key - 1, NULL, 10);
            if (b->nlat == b->caplat) {
                b->caplat = b->caplat ? b->caplat * 2 : 1 << 20;
                b->lat = realloc(b->lat, b->caplat * sizeof *b->lat);
            }
            b->lat[b->nlat++] = (double)(t - sent) / 1e6;
            return;
        }
    }
    if (n > 17 && memcmp(p, "{\"type\":\"notice\"", 16) == 0)
        b->notices++;
    b->other_msgs++;
}

static void parse(bench *b, client *c, uint64_t t)
{
    size_t off = 0;
    if (!c->upgraded) {
        char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!e)
            return;
        off = (size_t)(e - c->buf) + 4;
        c->upgraded = true;
    }
    for (;;) {
        if (c->len - off < 2)
            break;
        const uint8_t *p = (const uint8_t *)c->buf + off;
        uint64_t n = p[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (c->len - off < 4)
                break;
            n = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (n == 127) {
            if (c->len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | p[2 + i];
            h = 10;
        }
        if (c->len - off < h + n)
            break;
        if ((p[0] & 0x0f) == 1)
            on_message(b, (const char *)p + h, (size_t)n, t);
        off += h + (size_t)n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static void *receiver(void *arg)
{
    bench *b = arg;
    int ep = epoll_create1(0);
    for (int i = 0; i < b->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, b->cl[i].fd, &ev);
    }
    struct epoll_event evs[64];
    while (!atomic_load(&b->stop)) {
        int k = epoll_wait(ep, evs, 64, 50);
        for (int j = 0; j < k; j++) {
            client *c = &b->cl[evs[j].data.u32];
            if (c->cap - c->len < 65536) {
                c->cap = c->cap ? c->cap * 2 : 1 << 20;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            if (r > 0) {
                /* Stamp after the read: an event stamped while we were
                 * reading another socket must not look negative. */
                uint64_t t = now_ns();
                c->len += (size_t)r;
                parse(b, c, t);
            } else if (r == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
    }
    close(ep);
    return NULL;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void run(int port, kg_dashboard_t *d, int nclients, double rate, double duration,
                bool first)
{
    bench b = {.n = nclients};
    atomic_init(&b.stop, false);
    b.cl = calloc((size_t)nclients, sizeof *b.cl);
    for (int i = 0; i < nclients; i++)
        b.cl[i].fd = ws_open(port);
    kg_dashboard_stats st0;
    kg_dashboard_stats_get(d, &st0);
    kg__store_stats hs0;
    kg__store_stats_get(kg__server_hub(d)->store, &hs0);
    pthread_t rt;
    pthread_create(&rt, NULL, receiver, &b);
    /* Let every client get its "initial" message first. */
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    long rss0 = rss_kib();

    char ev[768];
    uint64_t start = now_ns(), sent = 0, refusals = 0;
    uint64_t total = (uint64_t)(rate * duration);
    while (sent < total) {
        uint64_t due = (uint64_t)((double)(now_ns() - start) / 1e9 * rate) + 1;
        if (due > total)
            due = total;
        for (; sent < due; sent++) {
            int n = snprintf(ev, sizeof ev,
                             "{\"event_id\":\"bench-%.0f-%llu\",\"timestamp\":"
                             "\"2026-11-27T17:36:13.123456Z\",\"node_id\":\"node-%llu\","
                             "\"node_type\":\"BenchNode\",\"event_type\":\"lifecycle\","
                             "\"event_name\":\"node_started\",\"data\":{\"state\":\"running\","
                             "\"bench_ns\":%llu},\"correlation_id\":\"c-%llu\",\"workflow_id\":"
                             "\"wf-%llu\",\"seq\":%llu,\"source\":{\"host\":\"bench\",\"pid\":1}}",
                             rate, (unsigned long long)sent, (unsigned long long)(sent % 8),
                             (unsigned long long)now_ns(), (unsigned long long)sent,
                             (unsigned long long)(sent / 50), (unsigned long long)sent);
            /* With --db the history may push back: retry, as a sender would. */
            while (kg_dashboard_ingest(d, ev, (size_t)n, NULL) == KG_EFULL) {
                refusals++;
                sched_yield();
            }
        }
        struct timespec tick = {0, 200000};   /* 0.2 ms */
        nanosleep(&tick, NULL);
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    /* Drain: wait until every client has everything or 5 s passed. */
    uint64_t drain_until = now_ns() + 5000000000ull;
    while (now_ns() < drain_until) {
        if (b.nlat >= total * (uint64_t)nclients)
            break;
        nanosleep(&pause, NULL);
    }
    atomic_store(&b.stop, true);
    pthread_join(rt, NULL);
    long rss1 = rss_kib();
    kg_dashboard_stats st1;
    kg_dashboard_stats_get(d, &st1);
    kg__store_stats hs1;
    kg__store_stats_get(kg__server_hub(d)->store, &hs1);
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp_d);
    double p50 = b.nlat ? b.lat[b.nlat / 2] : -1;
    double p99 = b.nlat ? b.lat[(size_t)((double)b.nlat * 0.99)] : -1;
    double mx = b.nlat ? b.lat[b.nlat - 1] : -1;
    printf("%s    {\"rate\": %.0f, \"achieved_rate\": %.0f, \"events\": %llu, \"clients\": %d, "
           "\"deliveries_expected\": %llu, \"deliveries\": %zu, \"p50_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"ws_dropped\": %llu, \"notices\": %llu, "
           "\"rss_kib_before\": %ld, \"rss_kib_after\": %ld, \"history_refusals\": %llu, "
           "\"history_commits\": %llu, \"history_writer_cpu_us_per_event\": %.2f}",
           first ? "" : ",\n", rate, (double)total / elapsed, (unsigned long long)total, nclients,
           (unsigned long long)total * (unsigned long long)nclients, b.nlat, p50, p99, mx,
           (unsigned long long)(st1.ws_dropped - st0.ws_dropped),
           (unsigned long long)b.notices, rss0, rss1, (unsigned long long)refusals,
           (unsigned long long)(hs1.commits - hs0.commits),
           (hs1.writer_cpu_s - hs0.writer_cpu_s) * 1e6 / (double)total);
    fflush(stdout);
    for (int i = 0; i < nclients; i++) {
        close(b.cl[i].fd);
        free(b.cl[i].buf);
    }
    free(b.cl);
    free(b.lat);
    /* Let the server notice the closes before the next round. */
    for (int k = 0; k < 50; k++) {
        kg_dashboard_stats s;
        kg_dashboard_stats_get(d, &s);
        if (s.clients == 0)
            break;
        struct timespec t = {0, 20000000L};
        nanosleep(&t, NULL);
    }
}

int main(int argc, char **argv)
{
    int clients = 50;
    double duration = 5;
    char rates[128] = "1000,10000";
    const char *db = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--clients") == 0)
            clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--duration") == 0)
            duration = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rates") == 0)
            snprintf(rates, sizeof rates, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--db") == 0)   /* history */
            db = argv[i + 1];
    }
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.max_clients = (unsigned)clients + 8;
    /* Every benchmark client is 127.0.0.1. */
    o.max_clients_per_ip = 0;
    o.max_connections = (size_t)clients + 64;
    o.client_queue = 65536;
    o.broadcast_bytes = 256u << 20;
    o.db = db;
    kg_dashboard_t *d;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0) {
        fprintf(stderr, "dashboard: %s\n", err.message);
        return 1;
    }
    printf("{\"benchmark\": \"dashboard_event_to_ws_latency\", \"duration_s\": %.1f, "
           "\"db\": \"%s\", \"results\": [\n",
           duration, db ? db : "none");
    bool first = true;
    for (char *tok = strtok(rates, ","); tok; tok = strtok(NULL, ",")) {
        run(kg_dashboard_port(d), d, clients, atof(tok), duration, first);
        first = false;
    }
    printf("\n]}\n");
    kg_dashboard_free(d);
    return 0;
}
