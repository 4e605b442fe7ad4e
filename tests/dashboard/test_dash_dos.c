/* test_dash_dos.c - the dashboard under denial-of-service clients (issue #11, items 1-9, 17).
 *
 * Each test is an attack seen in adversarial testing, run against the real
 * server over loopback with raw sockets, asserting the answer the issue
 * asks for and, where the attack is about resources, that the server stays
 * bounded and /healthz keeps answering:
 *   slow request bodies (a deadline and a minimum rate; refused requests
 *   closed before their body is read), the file-descriptor limit (a child
 *   process with RLIMIT_NOFILE 256: no spin, logs bounded, /healthz
 *   answers), clients that never read responses (the server's RSS), the
 *   WebSocket limits (per address, idle close, reasons in HTTP/1.1 status
 *   lines), huge events and the "initial" message, chunked bodies,
 *   pipelined WebSocket requests, unmasked frames, and three small
 *   contracts (one nosniff header, NaN quantiles, seq order).
 * Attacks that need a process of their own (a lowered RLIMIT_NOFILE, an
 * RSS of the server alone) fork the server into a child. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "kaygraph/dashboard.h"
#include "testutil.h"
#include "wsclient.h"

static const char kg_token[] = "s3cret-token";

/* Sanitizers multiply memory (shadow, quarantine) and time. */
#if defined(__SANITIZE_THREAD__)
#define KG_SLOW 4
#elif defined(__SANITIZE_ADDRESS__)
#define KG_SLOW 2
#else
#define KG_SLOW 1
#endif

/* ---- helpers ---------------------------------------------------------------------------- */

static kg_dashboard_t *start(kg_dashboard_options *o)
{
    o->port = 0;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    return d;
}

static void raise_fd_limit(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fail_msg("RLIMIT_NOFILE %llu < %llu needed", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)want);
}

/* GET /healthz on a fresh connection ("Connection: close"): its status
 * within `timeout` s (any status: *any), or -1. */
static int healthz_any(int port, double timeout)
{
    int fd = kg_traw_connect(port, NULL);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int st = -1;
    if (kg_traw_send(fd, req, sizeof req - 1)) {
        bool closed;
        char *r = kg_traw_read(fd, timeout, &closed, NULL);
        st = kg_traw_status(r);
        free(r);
    }
    close(fd);
    return st;
}

static int healthz(int port, double timeout)
{
    int fd = kg_traw_connect(port, NULL);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int st = -1;
    if (kg_traw_send(fd, req, sizeof req - 1)) {
        bool closed;
        char *r = kg_traw_read(fd, timeout, &closed, NULL);
        if (r && strstr(r, "\"ok\""))
            st = kg_traw_status(r);
        free(r);
    }
    close(fd);
    return st;
}

static void ingest(kg_dashboard_t *d, const char *id, const char *name, const char *type,
                   const char *node, const char *wf, unsigned long long seq, const char *extra)
{
    char *e = kg_tevent(id, name, type, node, wf, seq, extra);
    kg_error_t err;
    if (kg_dashboard_ingest(d, e, strlen(e), &err) != 0)
        fail_msg("ingest %s: %s", id, err.message);
    free(e);
}

static long proc_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
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

/* utime + stime of a process, in seconds. */
static double proc_cpu(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the server in a child process ---------------------------------------------------------- */

/* The child is this program again (exec'd with --dashboard-child), so that
 * under AddressSanitizer it runs without the quarantine of freed memory
 * (ASAN_OPTIONS quarantine_size_mb=0): its RSS is then what the server
 * holds, not what it freed lately. */
typedef struct shared {
    atomic_uint log_lines;
    atomic_uint conns, evicted, shed, busy;
    char last_warning[512];
} shared;

typedef struct child {
    pid_t pid;
    int port;
    int ctl;            /* closing it stops the child */
    int err;            /* the child's stderr (an unlinked file) */
    shared *sh;
} child;

static void child_log(void *ud, kg_dashboard_log_level level, const char *msg)
{
    shared *sh = ud;
    atomic_fetch_add(&sh->log_lines, 1);
    if (level <= KG_DASH_LOG_WARN)
        snprintf(sh->last_warning, sizeof sh->last_warning, "%s", msg);
}

/* argv: --dashboard-child NOFILE EXTRA_FDS MAX_CONNECTIONS SHM_FD PORT_FD CTL_FD */
static int child_main(int argc, char **argv)
{
    if (argc != 8)
        return 2;
    rlim_t nofile = (rlim_t)strtoull(argv[2], NULL, 10);
    int extra_fds = atoi(argv[3]);
    size_t max_conns = (size_t)strtoull(argv[4], NULL, 10);
    int shm_fd = atoi(argv[5]), port_fd = atoi(argv[6]), ctl_fd = atoi(argv[7]);
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (sh == MAP_FAILED)
        return 2;
    close(shm_fd);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = nofile;
    setrlimit(RLIMIT_NOFILE, &rl);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    if (max_conns)
        o.max_connections = max_conns;
    o.log = child_log;
    o.log_ud = sh;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    int port = kg_dashboard_new(&o, &d, &err) == 0 ? kg_dashboard_port(d) : -1;
    if (port < 0)
        fprintf(stderr, "child: kg_dashboard_new: %s\n", err.message);
    /* Descriptors the rest of the process uses (an embedding program). */
    for (int i = 0; i < extra_fds; i++)
        if (open("/dev/null", O_RDONLY) < 0)
            break;
    (void)!write(port_fd, &port, sizeof port);
    close(port_fd);
    for (;;) {
        struct pollfd p = {.fd = ctl_fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (d) {
            kg_dashboard_stats st;
            kg_dashboard_stats_get(d, &st);
            atomic_store(&sh->conns, st.connections);
            atomic_store(&sh->evicted, (unsigned)st.conns_evicted);
            atomic_store(&sh->shed, (unsigned)st.conns_shed);
            atomic_store(&sh->busy, (unsigned)st.busy_refused);
        }
        if (r != 0)
            break;   /* the parent closed the pipe */
    }
    kg_dashboard_free(d);
    return port > 0 ? 0 : 3;
}

/* A dashboard in a child with RLIMIT_NOFILE `nofile`; after it started,
 * the child also opens `extra_fds` descriptors. */
static child child_start(rlim_t nofile, int extra_fds, size_t max_connections)
{
    child ch;
    memset(&ch, 0, sizeof ch);
    int portp[2], ctlp[2];
    assert_int_equal(pipe(portp), 0);
    assert_int_equal(pipe(ctlp), 0);
    int shm_fd = memfd_create("kg_dos", 0);
    assert_true(shm_fd >= 0);
    assert_int_equal(ftruncate(shm_fd, sizeof *ch.sh), 0);
    ch.sh = mmap(NULL, sizeof *ch.sh, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    assert_true(ch.sh != MAP_FAILED);
    char errpath[] = "/tmp/kg_dos_err_XXXXXX";
    int errfd = mkstemp(errpath);
    assert_true(errfd >= 0);
    unlink(errpath);
    char a[6][32];
    snprintf(a[0], 32, "%llu", (unsigned long long)nofile);
    snprintf(a[1], 32, "%d", extra_fds);
    snprintf(a[2], 32, "%zu", max_connections);
    snprintf(a[3], 32, "%d", shm_fd);
    snprintf(a[4], 32, "%d", portp[1]);
    snprintf(a[5], 32, "%d", ctlp[0]);
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(sl > 0);
    self[sl] = '\0';
    const char *asan = getenv("ASAN_OPTIONS");
    char env[1024];
    snprintf(env, sizeof env, "%s%squarantine_size_mb=0:detect_leaks=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    fflush(NULL);
    ch.pid = fork();
    assert_true(ch.pid >= 0);
    if (ch.pid == 0) {
        close(portp[0]);
        close(ctlp[1]);
        dup2(errfd, 2);
        setenv("ASAN_OPTIONS", env, 1);
        execl(self, self, "--dashboard-child", a[0], a[1], a[2], a[3], a[4], a[5], (char *)NULL);
        _exit(127);
    }
    close(portp[1]);
    close(ctlp[0]);
    ch.err = errfd;
    close(shm_fd);
    ch.ctl = ctlp[1];
    ch.port = -1;
    struct pollfd p = {.fd = portp[0], .events = POLLIN};
    if (poll(&p, 1, 30000) != 1 || read(portp[0], &ch.port, sizeof ch.port) != sizeof ch.port)
        ch.port = -1;
    close(portp[0]);
    if (ch.port <= 0)
        fail_msg("the child dashboard did not start");
    return ch;
}

static long file_size(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (long)sb.st_size : -1;
}

static void child_stop(child *ch)
{
    close(ch->ctl);
    int status = 0;
    double t0 = kg_test_now();
    while (waitpid(ch->pid, &status, WNOHANG) == 0) {
        if (kg_test_now() - t0 > 20) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &status, 0);
            fail_msg("the child dashboard did not stop");
        }
        kg_test_sleep(0.01);
    }
    close(ch->err);
    munmap(ch->sh, sizeof *ch->sh);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- 1. slow bodies ------------------------------------------------------------------------- */

/* POST /api/ingest announcing 1,000,000 bytes, then `chunk` bytes every
 * `every` s: seconds until the server answered (its status in *st) and
 * closed, or -1 after `limit` s. */
static double trickle(int port, size_t chunk, double every, double limit, int *st)
{
    int fd = kg_traw_connect(port, NULL);
    assert_true(fd >= 0);
    static const char head[] = "POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
    assert_true(kg_traw_send(fd, head, sizeof head - 1));
    double t0 = kg_test_now();
    char buf[4096], *pad = calloc(1, chunk);
    memset(pad, ' ', chunk);
    size_t got = 0;
    *st = -1;
    double took = -1;
    while (kg_test_now() - t0 < limit) {
        send(fd, pad, chunk, MSG_NOSIGNAL);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(every * 1000)) == 1) {
            ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0) {
                took = kg_test_now() - t0;
                break;
            }
            got += (size_t)r;
            buf[got] = '\0';
            *st = kg_traw_status(buf);
        }
    }
    free(pad);
    close(fd);
    return took;
}

static void test_slow_body_cut(void **state)
{
    (void)state;
    /* Defaults: 1 byte every 0.5 s is under body_min_rate (1 KiB/s), cut
     * once the 5 s grace is over. */
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    int st;
    double took = trickle(port, 1, 0.5, 20, &st);
    print_message("1 byte / 0.5 s with the defaults: answered %d, closed after %.1f s\n", st,
                  took);
    assert_true(took > 4.5 && took < 8);
    assert_int_equal(st, 408);
    assert_int_equal(healthz(port, 2), 200);
    kg_dashboard_free(d);

    /* A fast enough rate, but the whole body is late: body_timeout. */
    kg_dashboard_options_init(&o);
    o.body_timeout = 1.5;
    d = start(&o);
    port = kg_dashboard_port(d);
    took = trickle(port, 4000, 0.1, 10, &st);
    print_message("40 KB/s, body_timeout 1.5 s: answered %d, closed after %.1f s\n", st, took);
    assert_true(took > 1.4 && took < 3);
    assert_int_equal(st, 408);
    kg_dashboard_free(d);
}

/* Send a request head only; the answer's status, and whether the server
 * closed within `timeout` s without waiting for the body. */
static int head_only(int port, const char *head, double timeout, bool *closed)
{
    int fd = kg_traw_connect(port, NULL);
    assert_true(fd >= 0);
    assert_true(kg_traw_send(fd, head, strlen(head)));
    char *r = kg_traw_read(fd, timeout, closed, NULL);
    int st = kg_traw_status(r);
    free(r);
    close(fd);
    return st;
}

static void test_refused_before_body(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = kg_token;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    bool closed;
    double t0 = kg_test_now();
    int st = head_only(port,
                       "POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                       "application/json\r\nContent-Length: 1000000\r\n\r\n",
                       3, &closed);
    print_message("unauthenticated POST announcing 1 MB: %d, closed %d after %.2f s\n", st,
                  closed, kg_test_now() - t0);
    assert_int_equal(st, 401);
    assert_true(closed);
    /* A route that takes no body. */
    st = head_only(port, "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n",
                   3, &closed);
    print_message("POST /healthz announcing 1 MB: %d, closed %d\n", st, closed);
    assert_int_equal(st, 405);
    assert_true(closed);
    /* Authorized, but a GET with a body: answered, then closed. */
    st = head_only(port,
                   "GET /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                   "s3cret-token\r\nContent-Length: 5000\r\n\r\n",
                   3, &closed);
    assert_int_equal(st, 200);
    assert_true(closed);
    assert_int_equal(healthz(port, 2), 200);
    kg_dashboard_free(d);
}

/* ---- 2. the file-descriptor limit ------------------------------------------------------------ */

/* Hold `idle` idle sockets and `slow` slow bodies against the child while
 * /healthz is probed 20 times; asserts every probe answered, the child's
 * CPU and its log volume.  Returns how many sockets the server closed. */
static int fd_siege(child *ch, int idle, int slow, const char *what)
{
    int n = idle + slow;
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++) {
        fds[i] = kg_traw_connect(ch->port, NULL);
        assert_true(fds[i] >= 0);
        if (i >= idle) {
            static const char h[] = "POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Content-Length: 1000000\r\n\r\n{";
            assert_true(kg_traw_send(fds[i], h, sizeof h - 1));
        }
    }
    /* The burst is settled when the server holds or has turned away every
     * socket; its connections are then older than the 250 ms a newcomer is
     * protected for when descriptors run out (earlier, a probe may be shed
     * with a 503 like any other newcomer). */
    (void)KG_WAIT_UNTIL(atomic_load(&ch->sh->conns) + atomic_load(&ch->sh->shed) +
                                atomic_load(&ch->sh->evicted) >=
                            (unsigned)n,
                        2);
    kg_test_sleep(0.3);
    double cpu0 = proc_cpu(ch->pid), t0 = kg_test_now();
    int answered = 0;
    double worst = 0;
    for (int probe = 0; probe < 20; probe++) {
        double p0 = kg_test_now();
        int st = healthz(ch->port, 2.0 * KG_SLOW);
        double dt = kg_test_now() - p0;
        if (dt > worst)
            worst = dt;
        answered += st == 200;
        for (int i = idle; i < n; i++)
            send(fds[i], " ", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        kg_test_sleep(0.2);
    }
    double wall = kg_test_now() - t0, cpu = proc_cpu(ch->pid) - cpu0;
    int server_closed = 0;
    for (int i = 0; i < n; i++) {
        char b[256];
        ssize_t r = recv(fds[i], b, sizeof b, MSG_DONTWAIT);
        server_closed += r == 0 || (r > 0 && kg_traw_status(b) > 0) ||
                         (r < 0 && errno == ECONNRESET);
        close(fds[i]);
    }
    free(fds);
    long errbytes = file_size(ch->err);
    unsigned lines = atomic_load(&ch->sh->log_lines);
    print_message("%s: %d sockets held; /healthz answered %d of 20 (worst %.0f ms); server CPU "
                  "%.2f s in %.1f s; %d of our sockets closed by the server (%u evicted, %u shed); "
                  "log: %u lines, stderr %ld bytes; last warning: %s\n",
                  what, n, answered, worst * 1000, cpu, wall, server_closed,
                  atomic_load(&ch->sh->evicted), atomic_load(&ch->sh->shed), lines, errbytes,
                  ch->sh->last_warning);
    assert_int_equal(answered, 20);
    assert_true(cpu < 0.5 * wall);      /* no spinning */
    assert_true(errbytes < 16 * 1024);  /* no flood on stderr (lws' own lines) */
    assert_true(lines < 50);            /* summaries, not one line per failure */
    return server_closed;
}

static void test_fd_limit(void **state)
{
    (void)state;
    raise_fd_limit(1024);
    /* max_connections is lowered to fit 256 descriptors: 30 idle sockets
     * and 260 slow bodies (a byte per 200 ms, as in the review), and
     * /healthz still gets in (the longest idle are evicted). */
    child ch = child_start(256, 0, 0);
    int closed = fd_siege(&ch, 30, 260, "RLIMIT_NOFILE 256");
    assert_true(closed > 0);
    assert_true(atomic_load(&ch.sh->evicted) > 0);
    child_stop(&ch);

    /* The process itself uses most descriptors (an embedding program):
     * accept meets EMFILE long before max_connections. */
    ch = child_start(256, 170, 0);
    fd_siege(&ch, 30, 260, "RLIMIT_NOFILE 256, 170 taken by the process");
    assert_true(atomic_load(&ch.sh->evicted) + atomic_load(&ch.sh->shed) > 0);
    assert_non_null(strstr(ch.sh->last_warning, "file descriptors"));
    child_stop(&ch);

    /* One descriptor left: connections are served there in turn (the
     * oldest evicted once a second old), the others shed through the
     * reserve descriptor with a quick 503; no spinning. */
    ch = child_start(256, 1000, 0);
    int fds[50];
    for (int i = 0; i < 50; i++)
        fds[i] = kg_traw_connect(ch.port, NULL);
    double cpu0 = proc_cpu(ch.pid), t0 = kg_test_now();
    int quick = 0, ok200 = 0;
    for (int probe = 0; probe < 10; probe++) {
        double p0 = kg_test_now();
        int hs = healthz_any(ch.port, 2);
        quick += (hs == 503 || hs == 200) && kg_test_now() - p0 < 1;
        ok200 += hs == 200;
        kg_test_sleep(0.2);
    }
    double wall = kg_test_now() - t0, cpu = proc_cpu(ch.pid) - cpu0;
    for (int i = 0; i < 50; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    print_message("one descriptor left: %d of 10 probes answered at once (%d with 200, the "
                  "others 503); server CPU %.2f s in %.1f s; %u shed, %u evicted; stderr %ld "
                  "bytes\n",
                  quick, ok200, cpu, wall, atomic_load(&ch.sh->shed),
                  atomic_load(&ch.sh->evicted), file_size(ch.err));
    assert_int_equal(quick, 10);
    assert_true(cpu < 0.5 * wall);
    assert_true(atomic_load(&ch.sh->shed) >= 10);
    assert_true(file_size(ch.err) < 16 * 1024);
    child_stop(&ch);
}

/* ---- 3. clients that never read ------------------------------------------------------------------ */

/* `n` sockets each sending `req` and never reading; RSS of the child
 * before, at the worst, and after they went away. */
static void never_read(child *ch, int n, const char *req, long rss[3], int *healthz_ok)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    rss[0] = proc_rss_kib(ch->pid);
    rss[1] = rss[0];
    for (int i = 0; i < n; i++) {
        fds[i] = kg_traw_connect(ch->port, NULL);
        assert_true(fds[i] >= 0);
        int small = 4096;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        assert_true(kg_traw_send(fds[i], req, strlen(req)));
        if (i % 100 == 99) {
            long r = proc_rss_kib(ch->pid);
            if (r > rss[1])
                rss[1] = r;
        }
    }
    /* The server answers what it can and then waits for readers. */
    *healthz_ok = 0;
    for (int probe = 0; probe < 10; probe++) {
        *healthz_ok += healthz(ch->port, 2.0 * KG_SLOW) == 200;
        long r = proc_rss_kib(ch->pid);
        if (r > rss[1])
            rss[1] = r;
        kg_test_sleep(0.2);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    assert_true(KG_WAIT_UNTIL(atomic_load(&ch->sh->conns) <= 1, 20));
    kg_test_sleep(3);   /* a sweep or two: malloc_trim */
    rss[2] = proc_rss_kib(ch->pid);
}

static void test_never_reading_clients(void **state)
{
    (void)state;
    raise_fd_limit(4096);
    /* max_connections 3000: hold them all, the worst case for memory. */
    child ch = child_start(4096, 0, 3000);
    /* 1,000 recent events of ~500 bytes, in batches of 100. */
    for (int b = 0; b < 10; b++) {
        char *batch = calloc(1, 100 * 700 + 64);
        size_t n = (size_t)sprintf(batch, "{\"events\":[");
        for (int i = b * 100; i < (b + 1) * 100; i++)
            n += (size_t)sprintf(batch + n,
                                 "%s{\"event_id\":\"r-%d\",\"timestamp\":\"2026-11-27T17:36:13.1Z\","
                                 "\"node_id\":\"node\",\"node_type\":\"T\",\"event_type\":"
                                 "\"lifecycle\",\"event_name\":\"node_started\",\"correlation_id\":"
                                 "\"c\",\"workflow_id\":\"run-R\",\"seq\":%d,\"data\":{\"pad\":"
                                 "\"%0300d\"}}",
                                 i % 100 ? "," : "", i, i, 0);
        n += (size_t)sprintf(batch + n, "]}");
        kg_thttp_resp r;
        int st = kg_thttp(ch.port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                          batch, n, &r);
        kg_thttp_resp_free(&r);
        free(batch);
        assert_int_equal(st, 200);
    }
    long rss[3];
    int ok;
    never_read(&ch, 1500,
               "GET /api/events?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
               "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
               rss, &ok);
    print_message("1,500 sockets sending GET /api/events?limit=1000 + GET /metrics, never "
                  "reading: server RSS %ld -> peak %ld -> %ld KiB after they left; %u large "
                  "responses refused with 503 (budget); /healthz answered %d of 10\n",
                  rss[0], rss[1], rss[2], atomic_load(&ch.sh->busy), ok);
    assert_int_equal(ok, 10);
    assert_true(rss[1] - rss[0] < 64 * 1024 * KG_SLOW);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* Given back (ASan's quarantine keeps freed memory by design). */
    assert_true(rss[2] - rss[0] < 48 * 1024);
#endif
    child_stop(&ch);
}

static char *big_event(int i, size_t size)
{
    char *e = malloc(size + 512);
    int n = snprintf(e, 512,
                     "{\"event_id\":\"big-%d\",\"timestamp\":\"2026-11-27T17:36:13.1Z\","
                     "\"node_id\":\"n\",\"node_type\":\"T\",\"event_type\":\"data\","
                     "\"event_name\":\"data_output\",\"correlation_id\":\"c\","
                     "\"workflow_id\":\"run-big\",\"seq\":%d,\"data\":{\"blob\":\"",
                     i, i);
    memset(e + n, 'x', size);
    strcpy(e + n + size, "\"}}");
    return e;
}

/* Huge events, as a Redis stream replay of big entries delivers them: what
 * the stores keep is bounded (max_store_bytes 64 MiB of event text, the
 * broadcast ring's 16 MiB), whatever arrives; then 60 clients ask for all
 * of them and never read. */
static void test_huge_events(void **state)
{
    (void)state;
    raise_fd_limit(1024);
    child ch = child_start(1024, 0, 0);
    long rss0 = proc_rss_kib(ch.pid), peak = rss0;
    for (int i = 0; i < 200; i++) {
        char *e = big_event(i, 900 * 1000);
        kg_thttp_resp r;
        int st = kg_thttp(ch.port, "POST", "/api/ingest", "Content-Type: application/json\r\n", e,
                          strlen(e), &r);
        kg_thttp_resp_free(&r);
        free(e);
        assert_int_equal(st, 200);
        long now = proc_rss_kib(ch.pid);
        if (now > peak)
            peak = now;
    }
    print_message("200 events of 900 KB ingested: server RSS %ld -> peak %ld KiB\n", rss0, peak);
    assert_true(peak - rss0 < (64 + 16 + 48) * 1024 * KG_SLOW);
    long rss[3];
    int ok;
    never_read(&ch, 60, "GET /api/events?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", rss,
               &ok);
    print_message("then 60 sockets GET /api/events?limit=1000 (~70 MB each) never reading: "
                  "server RSS %ld -> peak %ld -> %ld KiB; %u refused with 503 (budget); /healthz "
                  "answered %d of 10\n",
                  rss[0], rss[1], rss[2], atomic_load(&ch.sh->busy), ok);
    assert_int_equal(ok, 10);
    assert_true(rss[1] - rss[0] < 64 * 1024 * KG_SLOW);
    child_stop(&ch);
}

/* ---- 4 and 9. WebSocket slots and refusals ------------------------------------------------------- */

/* A raw upgrade refused: the status line and the reason in the body. */
static void refusal(int port, const char *from, const char *headers, int want, const char *line,
                    const char *reason)
{
    int fd = kg_traw_connect(port, from);
    assert_true(fd >= 0);
    char req[1024];
    snprintf(req, sizeof req,
             "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
             "13\r\n%s\r\n",
             port, headers ? headers : "");
    assert_true(kg_traw_send(fd, req, strlen(req)));
    bool closed;
    char *r = kg_traw_read(fd, 3, &closed, NULL);
    close(fd);
    char first[128];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(r, "\r\n"), r);
    print_message("refused upgrade (%s): \"%s\", body %s\n", reason, first,
                  strstr(r, "\r\n\r\n") ? strstr(r, "\r\n\r\n") + 4 : "(none)");
    assert_string_equal(first, line);
    assert_int_equal(kg_traw_status(r), want);
    assert_true(closed);
    assert_non_null(strstr(r, reason));
    free(r);
}

static void test_ws_slots(void **state)
{
    (void)state;
    /* Default per-address cap: 16 WebSocket clients from 127.0.0.1, the
     * 17th is refused with the reason; another address still gets in. */
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    int fds[20];
    for (int i = 0; i < 16; i++) {
        fds[i] = kg_traw_ws(port, NULL, NULL);
        assert_true(fds[i] >= 0);
    }
    refusal(port, NULL, NULL, 503, "HTTP/1.1 503 Service Unavailable", "per address");
    int other = kg_traw_ws(port, "127.0.0.2", NULL);
    assert_true(other >= 0);
    close(other);
    for (int i = 0; i < 16; i++)
        close(fds[i]);
    kg_dashboard_free(d);

    /* max_clients: the reason says so; settable per-address cap. */
    kg_dashboard_options_init(&o);
    o.max_clients = 4;
    o.max_clients_per_ip = 2;
    d = start(&o);
    port = kg_dashboard_port(d);
    static const char *const from[] = {"127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.3"};
    for (int i = 0; i < 4; i++) {
        fds[i] = kg_traw_ws(port, from[i], NULL);
        assert_true(fds[i] >= 0);
    }
    refusal(port, "127.0.0.4", NULL, 503, "HTTP/1.1 503 Service Unavailable",
            "too many WebSocket clients (limit 4)");
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    kg_dashboard_free(d);

    /* Idle close: a client that answers pings stays, one that does not
     * (it never reads, so never sees them) is closed. */
    kg_dashboard_options_init(&o);
    o.ws_idle_timeout = 1;
    d = start(&o);
    port = kg_dashboard_port(d);
    kg_tclient live;
    assert_int_equal(kg_tws_connect(&live, port, "/ws", NULL), 101);
    int mute = kg_traw_ws(port, NULL, NULL);
    assert_true(mute >= 0);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.clients == 2), 5));
    double t0 = kg_test_now();
    while (kg_test_now() - t0 < 3) {
        char *m = NULL;
        if (kg_tws_recv(&live, 0.1, &m, NULL) == -2)
            fail_msg("the client that answers pings was closed");
        free(m);
    }
    kg_dashboard_stats_get(d, &st);
    print_message("ws_idle_timeout 1 s: after 3 s, %u of 2 clients left (the one answering pings)\n",
                  st.clients);
    assert_int_equal(st.clients, 1);
    bool closed;
    char *r = kg_traw_read(mute, 2, &closed, NULL);
    free(r);
    assert_true(closed);
    close(mute);
    kg_tws_close(&live);
    kg_dashboard_free(d);
}

static void test_refusal_status_lines(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = kg_token;
    o.max_clients = 1;
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    refusal(port, NULL, NULL, 401, "HTTP/1.1 401 Unauthorized", "token");
    refusal(port, NULL, "Authorization: Bearer s3cret-token\r\nOrigin: http://evil.example\r\n",
            403, "HTTP/1.1 403 Forbidden", "Origin");
    int fd = kg_traw_ws(port, NULL, "Authorization: Bearer s3cret-token\r\n");
    assert_true(fd >= 0);
    refusal(port, NULL, "Authorization: Bearer s3cret-token\r\n", 503,
            "HTTP/1.1 503 Service Unavailable", "too many WebSocket clients");
    close(fd);
    kg_dashboard_free(d);
}

/* ---- 5. large events and the initial message ------------------------------------------------------- */

static void test_large_events_initial(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    for (int i = 0; i < 20; i++) {
        char *e = big_event(i, 900 * 1000);
        kg_error_t err;
        assert_int_equal(kg_dashboard_ingest(d, e, strlen(e), &err), 0);
        free(e);
    }
    ingest(d, "small-1", "node_started", "lifecycle", "n", "run-big", 100, NULL);
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    char *m = NULL;
    size_t len = 0;
    int rc = kg_tws_recv(&c, 10, &m, &len);
    assert_int_equal(rc, 0);
    json_t *j = json_loads(m, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "initial");
    json_t *evs = json_object_get(json_object_get(j, "data"), "events");
    print_message("after 20 events of 900 KB: initial message of %zu bytes, %zu events\n", len,
                  json_array_size(evs));
    assert_true(len < 8u << 20);
    assert_int_equal(json_array_size(evs), 21);
    json_t *first = json_object_get(json_array_get(evs, 0), "data");
    assert_true(json_is_true(json_object_get(first, "truncated")));
    assert_true(json_integer_value(json_object_get(first, "original_size")) > 900000);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "event_id")),
                        "big-0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 20), "event_id")),
                        "small-1");
    json_decref(j);
    free(m);
    /* Still live after it. */
    ingest(d, "small-2", "node_started", "lifecycle", "n", "run-big", 101, NULL);
    m = kg_tws_wait_for(&c, "small-2", 5);
    assert_non_null(m);
    free(m);
    kg_tws_close(&c);
    /* The full text is still there for whoever asks. */
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/api/events?limit=1", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/events?limit=3", NULL, NULL, 0, &r), 200);
    assert_true(r.body_len > 900000);
    kg_thttp_resp_free(&r);
    kg_dashboard_free(d);
}

/* ---- 6. chunked bodies ---------------------------------------------------------------------------- */

static void test_chunked_ingest(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    int fd = kg_traw_connect(port, NULL);
    char *e = kg_tevent("ch-1", "node_started", "lifecycle", "n", "run-C", 1, NULL);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     strlen(e), e);
    free(e);
    double t0 = kg_test_now();
    assert_true(kg_traw_send(fd, req, (size_t)n));
    bool closed;
    char *r = kg_traw_read(fd, 5, &closed, NULL);
    double took = kg_test_now() - t0;
    int st = kg_traw_status(r);
    print_message("chunked POST /api/ingest: %d in %.2f s, closed %d: %s\n", st, took, closed,
                  strstr(r, "\r\n\r\n") ? strstr(r, "\r\n\r\n") + 4 : "");
    assert_int_equal(st, 411);
    assert_true(closed);
    assert_true(took < 2);
    assert_non_null(strstr(r, "Content-Length"));
    free(r);
    close(fd);
    kg_dashboard_free(d);
}

/* ---- 7. pipelined WebSocket requests ----------------------------------------------------------------- */

static void test_pipelined_ws_requests(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof id, "p-%d", i);
        ingest(d, id, "node_started", "lifecycle", "n", "run-P", (unsigned)i, NULL);
    }
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));
    /* 200 requests in one write: masked frames back to back. */
    enum { N = 200 };
    static const char req[] = "{\"type\":\"get_workflow_events\",\"workflow_id\":\"run-P\"}";
    size_t fl = 6 + sizeof req - 1;
    char *all = malloc(N * fl);
    for (int i = 0; i < N; i++) {
        uint8_t *f = (uint8_t *)all + i * fl;
        f[0] = 0x81;
        f[1] = 0x80 | (uint8_t)(sizeof req - 1);
        memcpy(f + 2, "\x01\x02\x03\x04", 4);
        for (size_t k = 0; k < sizeof req - 1; k++)
            f[6 + k] = (uint8_t)(req[k] ^ f[2 + (k & 3)]);
    }
    assert_true(kg_traw_send(c.fd, all, N * fl));
    free(all);
    int replies = 0, errors = 0;
    double t0 = kg_test_now();
    while (replies + errors < N && kg_test_now() - t0 < 20) {
        char *m = NULL;
        if (kg_tws_recv(&c, 1, &m, NULL) != 0)
            continue;
        if (strstr(m, "\"type\":\"workflow_events\""))
            replies++;
        else if (strstr(m, "\"type\":\"error\""))
            errors++;
        free(m);
    }
    print_message("%d get_workflow_events back to back: %d replies + %d errors in %.2f s\n", N,
                  replies, errors, kg_test_now() - t0);
    assert_int_equal(replies + errors, N);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

/* ---- 8. unmasked frames ------------------------------------------------------------------------------- */

static void test_unmasked_frame(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    int fd = kg_traw_ws(port, NULL, NULL);
    assert_true(fd >= 0);
    static const char msg[] = "{\"type\":\"ping\"}";
    uint8_t f[64];
    f[0] = 0x81;
    f[1] = (uint8_t)(sizeof msg - 1);   /* no mask bit */
    memcpy(f + 2, msg, sizeof msg - 1);
    assert_true(kg_traw_send(fd, f, 2 + sizeof msg - 1));
    bool closed;
    size_t len;
    char *r = kg_traw_read(fd, 3, &closed, &len);
    /* Past the initial message: a close frame with 1002. */
    bool close_1002 = false, pong = false;
    for (size_t i = 0; i + 4 <= len; i++) {
        if ((uint8_t)r[i] == 0x88 && (uint8_t)r[i + 2] == 0x03 && (uint8_t)r[i + 3] == 0xea)
            close_1002 = true;
    }
    pong = strstr(r ? r : "", "\"pong\"") != NULL;
    print_message("unmasked text frame: close 1002 %d, connection closed %d, answered %d\n",
                  close_1002, closed, pong);
    assert_true(close_1002);
    assert_true(closed);
    assert_false(pong);
    free(r);
    close(fd);
    assert_int_equal(healthz(port, 2), 200);
    kg_dashboard_free(d);
}

/* ---- 17. small contracts ---------------------------------------------------------------------------------- */

static int count_header(const char *resp, const char *name)
{
    int n = 0;
    size_t nl = strlen(name);
    const char *end = strstr(resp, "\r\n\r\n");
    for (const char *p = resp; (p = strstr(p, "\r\n")) != NULL && (!end || p < end);) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            n++;
    }
    return n;
}

static void test_small_contracts(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    kg_dashboard_t *d = start(&o);
    int port = kg_dashboard_port(d);
    /* A node that started and never finished: no duration observed. */
    ingest(d, "q-1", "node_started", "lifecycle", "waiting", "run-Q", 1, NULL);
    static const char *const paths[] = {"/metrics", "/api/metrics", "/", "/healthz"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int fd = kg_traw_connect(port, NULL);
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 paths[i]);
        assert_true(kg_traw_send(fd, req, strlen(req)));
        bool closed;
        char *r = kg_traw_read(fd, 3, &closed, NULL);
        close(fd);
        int nosniff = count_header(r, "x-content-type-options");
        int csp = count_header(r, "content-security-policy");
        if (nosniff != 1 || csp > 1)
            fail_msg("GET %s: x-content-type-options %d times, content-security-policy %d times",
                     paths[i], nosniff, csp);
        if (i == 0) {
            /* The duration histogram of a node with no observation: empty
             * buckets, a zero count (not a made-up duration). */
            assert_non_null(strstr(r, "kaygraph_dashboard_node_duration_seconds_bucket{node="
                                      "\"waiting\",le=\"+Inf\"} 0\n"));
            assert_non_null(strstr(r, "kaygraph_dashboard_node_duration_seconds_count{node="
                                      "\"waiting\"} 0\n"));
        }
        free(r);
    }
    /* The limits' counters are in /api/metrics (this request's connection
     * is open while it is answered). */
    assert_true(kg_thttp_json_int(port, "/api/metrics", "server", "connections") >= 1);
    assert_int_equal(kg_thttp_json_int(port, "/api/metrics", "server", "conns_shed"), 0);
    /* Seq order in "initial": one producer's events arrive shuffled. */
    static const unsigned seqs[] = {5, 3, 4, 10, 2, 7, 6, 9, 8};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "s-%u", seqs[i]);
        ingest(d, id, "node_started", "lifecycle", "n", "run-S", seqs[i], NULL);
    }
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, port, "/ws", NULL), 101);
    char *m = kg_tws_wait_for(&c, "\"initial\"", 5);
    assert_non_null(m);
    json_t *j = json_loads(m, 0, NULL);
    free(m);
    json_t *evs = json_object_get(json_object_get(j, "data"), "events");
    assert_int_equal(json_array_size(evs), 10);
    unsigned long long prev = 0;
    char order[128] = "";
    for (size_t i = 0; i < json_array_size(evs); i++) {
        unsigned long long s =
            (unsigned long long)json_integer_value(json_object_get(json_array_get(evs, i), "seq"));
        snprintf(order + strlen(order), sizeof order - strlen(order), "%s%llu", i ? "," : "", s);
        if (s < prev)
            fail_msg("initial events not in seq order: %s", order);
        prev = s;
    }
    print_message("initial events' seq: %s\n", order);
    json_decref(j);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dashboard-child") == 0)
        return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_before_body),
        cmocka_unit_test(test_chunked_ingest),
        cmocka_unit_test(test_refusal_status_lines),
        cmocka_unit_test(test_unmasked_frame),
        cmocka_unit_test(test_pipelined_ws_requests),
        cmocka_unit_test(test_small_contracts),
        cmocka_unit_test(test_large_events_initial),
        cmocka_unit_test(test_ws_slots),
        cmocka_unit_test(test_slow_body_cut),
        cmocka_unit_test(test_fd_limit),
        cmocka_unit_test(test_never_reading_clients),
        cmocka_unit_test(test_huge_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
