/* test_multihost_netns.c - several "hosts" publishing to one Redis, and one
 * host's network link cut and restored.
 *
 * Topology, created by the test and removed at its end (all addresses exist
 * only inside the namespaces created here; no traffic leaves the machine):
 *
 *     netns kgt<pid>r   redis-server bound to 10.200.N.1 (N = 0..HOSTS-1),
 *                       plus a unix socket the test itself reads through
 *     netns kgt<pid>hN  a workflow process (this binary, --host mode) with
 *                       10.200.N.2/24 on one end of a veth pair whose other
 *                       end (10.200.N.1/24) is in the Redis namespace
 *
 * Each host runs the workflow continuously and reports its monitor's
 * statistics on stdout every 50 ms.  The test waits until all deliver, sets
 * host 1's interface down (`ip link set ... down`) for KG_REL_FAULT_S
 * seconds (default 1.5), checks that the other hosts kept delivering
 * without a single failed batch while it was cut, restores it, and waits
 * until host 1 has delivered everything it buffered meanwhile.  Finally
 * every host flushes and exits, and the event keys in Redis equal the sum
 * of the events the hosts emitted: nothing lost, on any host.
 *
 * Needs root and network namespaces (CI runs as root): otherwise it skips
 * with a message saying which. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kaygraph/backends.h"
#include "kaygraph/monitor.h"
#include "redis_server.h"
#include "testutil.h"

#define PFX "kaygraph:monitoring:"
#define HOSTS 3
#define CUT 1
/* A Redis reachable from other hosts wants a password (and redis-server's
 * protected mode refuses non-loopback clients without one). */
#define PASSWORD "kg-multihost-test"

/* ---- the host process --------------------------------------------------------------- */

static int step_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    (void)ctx;
    (void)prep_res;
    *exec_res = json_integer(3);
    return 0;
}

static const kg_node_ops step_ops = {.type_name = "HostNode", .exec = step_exec};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs until stdin says "stop" (or closes), printing
 *   S <emitted> <sent> <failed_batches> <circuit_opens> <runs> <failed_runs> <slowest_us>
 * every 50 ms, then flushes and prints the final line as "F ...".  Exit 0
 * when everything emitted was delivered. */
static int host_main(const char *addr, int port, const char *name)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.host = addr;
    o.port = port;
    o.password = PASSWORD;
    o.connect_timeout = 0.5;
    o.command_timeout = 0.5;
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_redis_backend_new(&o, NULL);
    cfg.metrics_interval = 0;
    cfg.buffer_size = 1u << 18;
    cfg.flush_interval = 0.02;
    cfg.circuit_breaker_reset = 0.2;
    cfg.retry_backoff_max = 0.1;
    cfg.shutdown_timeout = 20;
    cfg.async_workers = 2;
    cfg.source_host = name;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (!cfg.backend || kg_monitor_new(&cfg, &m, &err) != 0)
        return 2;
    kg_node_t *g = kg_graph_new("host_graph", NULL, NULL);
    kg_node_t *a = kg_graph_add(g, kg_node_new("extract", &step_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("load", &step_ops, NULL));
    kg_node_connect(a, NULL, b);
    kg_monitor_attach(m, g);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    unsigned runs = 0, failed = 0;
    double slowest = 0, next_report = 0;
    for (;;) {
        double t0 = now_s();
        if (kg_run(g, NULL, NULL) != 0)
            failed++;
        double took = now_s() - t0;
        slowest = took > slowest ? took : slowest;
        runs++;
        if (t0 >= next_report) {
            kg_monitor_stats st;
            kg_monitor_stats_get(m, &st);
            printf("S %llu %llu %llu %llu %u %u %.0f\n", (unsigned long long)st.emitted,
                   (unsigned long long)st.sent, (unsigned long long)st.failed_batches,
                   (unsigned long long)st.circuit_opens, runs, failed, slowest * 1e6);
            fflush(stdout);
            next_report = t0 + 0.05;
            char cmd[16];
            ssize_t n = read(0, cmd, sizeof cmd);
            if (n == 0 || (n > 0 && memchr(cmd, 's', (size_t)n)))
                break;
        }
        struct timespec pause = {0, 3000000};
        nanosleep(&pause, NULL);
    }
    int frc = kg_monitor_flush(m, 20);
    kg_monitor_stats st;
    kg_monitor_stats_get(m, &st);
    printf("F %llu %llu %llu %llu %u %u %.0f\n", (unsigned long long)st.emitted,
           (unsigned long long)st.sent, (unsigned long long)st.failed_batches,
           (unsigned long long)st.circuit_opens, runs, failed, slowest * 1e6);
    fflush(stdout);
    bool ok = frc == 0 && st.sent == st.emitted && st.dropped_full == 0 && failed == 0;
    ok &= kg_monitor_free(m) == 0;
    kg_node_free(g);
    return ok ? 0 : 1;
}

/* ---- the test: namespaces ------------------------------------------------------------- */

static char ns_redis[32], ns_host[HOSTS][32], if_host[HOSTS][16], if_redis[HOSTS][16];

/* Run an `ip` command line quietly; its exit status. */
static int ip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ip(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "ip ");
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    char full[600];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int rc = system(full);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void topology_remove(void)
{
    /* Deleting a namespace destroys the veth ends inside it (and so both
     * ends of each pair). */
    for (int h = 0; h < HOSTS; h++)
        if (ns_host[h][0])
            ip("netns del %s", ns_host[h]);
    if (ns_redis[0])
        ip("netns del %s", ns_redis);
}

/* Build the topology; 0, or a message in `why` (and nothing left behind). */
static int topology_create(char *why, size_t size)
{
    int pid = (int)getpid();
    snprintf(ns_redis, sizeof ns_redis, "kgt%dr", pid);
    for (int h = 0; h < HOSTS; h++) {
        snprintf(ns_host[h], sizeof ns_host[h], "kgt%dh%d", pid, h);
        snprintf(if_host[h], sizeof if_host[h], "kh%dn%d", pid, h);
        snprintf(if_redis[h], sizeof if_redis[h], "kr%dn%d", pid, h);
    }
    topology_remove();   /* leftovers of an earlier process with this pid */
    if (ip("netns add %s", ns_redis) != 0) {
        snprintf(why, size, "`ip netns add` failed: no network namespace support");
        ns_redis[0] = '\0';
        return -1;
    }
    bool ok = ip("-n %s link set lo up", ns_redis) == 0;
    for (int h = 0; ok && h < HOSTS; h++) {
        ok = ip("netns add %s", ns_host[h]) == 0 &&
             ip("-n %s link set lo up", ns_host[h]) == 0 &&
             ip("link add %s netns %s type veth peer name %s netns %s", if_host[h],
                ns_host[h], if_redis[h], ns_redis) == 0 &&
             ip("-n %s addr add 10.200.%d.1/24 dev %s", ns_redis, h, if_redis[h]) == 0 &&
             ip("-n %s link set %s up", ns_redis, if_redis[h]) == 0 &&
             ip("-n %s addr add 10.200.%d.2/24 dev %s", ns_host[h], h, if_host[h]) == 0 &&
             ip("-n %s link set %s up", ns_host[h], if_host[h]) == 0;
        if (!ok)
            snprintf(why, size, "could not set up host %d's namespace and veth pair", h);
    }
    if (!ok) {
        topology_remove();
        return -1;
    }
    return 0;
}

/* ---- the test: host processes ---------------------------------------------------------- */

typedef struct host {
    pid_t pid;
    int in, out;            /* its stdin (we write), its stdout (we read) */
    char line[256];
    size_t len;
    /* the latest report */
    unsigned long long emitted, sent, failed_batches, opens;
    unsigned runs, failed_runs;
    double slowest_us;
    bool final;
} host;

static host hosts[HOSTS];

static void host_start(host *h, int index, int port)
{
    char nspath[128], addr[32], ports[16], name[32];
    snprintf(nspath, sizeof nspath, "/var/run/netns/%s", ns_host[index]);
    snprintf(addr, sizeof addr, "10.200.%d.1", index);
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(name, sizeof name, "host-%d", index);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    assert_true(nsfd >= 0);
    int to_child[2], from_child[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    memset(h, 0, sizeof *h);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        if (setns(nsfd, CLONE_NEWNET) != 0)
            _exit(125);
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        char *argv[] = {"/proc/self/exe", "--host", addr, ports, name, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    close(nsfd);
    close(to_child[0]);
    close(from_child[1]);
    h->in = to_child[1];
    h->out = from_child[0];
    fcntl(h->out, F_SETFL, fcntl(h->out, F_GETFL) | O_NONBLOCK);
}

/* Read what the hosts printed; keep each one's latest report. */
static void hosts_poll(void)
{
    for (int i = 0; i < HOSTS; i++) {
        host *h = &hosts[i];
        for (;;) {
            ssize_t n = read(h->out, h->line + h->len, sizeof h->line - 1 - h->len);
            if (n <= 0)
                break;
            h->len += (size_t)n;
            char *nl;
            while ((nl = memchr(h->line, '\n', h->len))) {
                *nl = '\0';
                char kind;
                if (sscanf(h->line, "%c %llu %llu %llu %llu %u %u %lf", &kind, &h->emitted,
                           &h->sent, &h->failed_batches, &h->opens, &h->runs, &h->failed_runs,
                           &h->slowest_us) == 8 &&
                    kind == 'F')
                    h->final = true;
                size_t used = (size_t)(nl + 1 - h->line);
                memmove(h->line, nl + 1, h->len - used);
                h->len -= used;
            }
            if (h->len == sizeof h->line - 1)
                h->len = 0;   /* a line that long is garbage */
        }
    }
}

static bool all_sent_over(unsigned long long n)
{
    hosts_poll();
    for (int i = 0; i < HOSTS; i++)
        if (hosts[i].sent <= n)
            return false;
    return true;
}

static bool host_cond(int i, unsigned long long min_sent, unsigned long long min_opens)
{
    hosts_poll();
    return hosts[i].sent >= min_sent && hosts[i].opens >= min_opens;
}

static bool all_final(void)
{
    hosts_poll();
    for (int i = 0; i < HOSTS; i++)
        if (!hosts[i].final)
            return false;
    return true;
}

static void hosts_kill(void)
{
    for (int i = 0; i < HOSTS; i++)
        if (hosts[i].pid > 0) {
            kill(hosts[i].pid, SIGKILL);
            waitpid(hosts[i].pid, NULL, 0);
            hosts[i].pid = 0;
        }
}

static void test_hosts_one_link_cut(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("not root: cannot create network namespaces; skipping\n");
        skip();
    }
    if (!kg_redis_server_available())
        skip();
    char why[128];
    if (topology_create(why, sizeof why) != 0) {
        print_message("%s; skipping\n", why);
        skip();
    }
    double fault_s = 1.5;
    const char *f = getenv("KG_REL_FAULT_S");
    if (f && atof(f) > 0)
        fault_s = atof(f);

    char bind[128] = "";
    for (int h = 0; h < HOSTS; h++)
        snprintf(bind + strlen(bind), sizeof bind - strlen(bind), "%s10.200.%d.1", h ? " " : "",
                 h);
    kg_redis_server srv;
    kg_redis_server_opts so = {.netns = ns_redis, .bind = bind, .password = PASSWORD};
    if (kg_redis_server_start(&srv, &so) != 0) {
        topology_remove();
        fail_msg("redis-server did not start in %s", ns_redis);
    }
    for (int h = 0; h < HOSTS; h++)
        host_start(&hosts[h], h, srv.port);

    bool ok = KG_WAIT_UNTIL(all_sent_over(1000), 20);
    if (!ok) {
        for (int h = 0; h < HOSTS; h++)
            print_message("host-%d: emitted %llu sent %llu failed batches %llu runs %u\n", h,
                          hosts[h].emitted, hosts[h].sent, hosts[h].failed_batches,
                          hosts[h].runs);
        hosts_kill();
        kg_redis_server_stop(&srv);
        topology_remove();
        fail_msg("the hosts did not all deliver");
    }
    host before[HOSTS];
    memcpy(before, hosts, sizeof before);
    /* Cut host CUT's link. */
    assert_int_equal(ip("-n %s link set %s down", ns_host[CUT], if_host[CUT]), 0);
    double t_cut = kg_test_now();
    ok = KG_WAIT_UNTIL(host_cond(CUT, 0, before[CUT].opens + 1), 10);
    double until = t_cut + fault_s;
    ok = ok && KG_WAIT_UNTIL(kg_test_now() >= until, fault_s + 1);
    hosts_poll();
    host during[HOSTS];
    memcpy(during, hosts, sizeof during);
    assert_int_equal(ip("-n %s link set %s up", ns_host[CUT], if_host[CUT]), 0);
    double t_fix = kg_test_now();
    /* Host CUT delivers what it buffered. */
    ok = ok && KG_WAIT_UNTIL(host_cond(CUT, during[CUT].emitted, 0), 30);
    double recovered = kg_test_now() - t_fix;
    for (int h = 0; h < HOSTS; h++)
        (void)!write(hosts[h].in, "stop\n", 5);
    ok = ok && KG_WAIT_UNTIL(all_final(), 30);
    int bad_exit = 0;
    for (int h = 0; h < HOSTS; h++) {
        int status = -1;
        double deadline = kg_test_now() + 10;
        pid_t got;
        while ((got = waitpid(hosts[h].pid, &status, WNOHANG)) == 0 && kg_test_now() < deadline)
            kg_test_sleep(0.01);
        if (got != hosts[h].pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad_exit++;
        if (got == hosts[h].pid)
            hosts[h].pid = 0;
        close(hosts[h].in);
        close(hosts[h].out);
    }
    hosts_kill();

    redisContext *c = kg_redis_server_client(&srv);
    long long keys = c ? kg_redis_count_keys(c, PFX "event:*") : -1;
    unsigned long long total = 0;
    for (int h = 0; h < HOSTS; h++) {
        total += hosts[h].emitted;
        print_message("RELIABILITY multihost host-%d%s: runs %u (%u failed), slowest run %.2f "
                      "ms; emitted %llu, delivered %llu; during the cut: delivered %llu more, "
                      "failed batches %llu, breaker opens %llu\n",
                      h, h == CUT ? " (link cut)" : "", hosts[h].runs, hosts[h].failed_runs,
                      hosts[h].slowest_us / 1e3, hosts[h].emitted, hosts[h].sent,
                      during[h].sent - before[h].sent,
                      during[h].failed_batches - before[h].failed_batches,
                      during[h].opens - before[h].opens);
    }
    print_message("RELIABILITY multihost: host-%d's link down %.1f s; it emitted %llu events "
                  "meanwhile (buffered: %llu undelivered at the restore) and delivered them "
                  "%.2f s after the link came back; Redis holds %lld events of %llu emitted "
                  "by %d hosts: lost %lld\n",
                  CUT, fault_s, during[CUT].emitted - before[CUT].emitted,
                  during[CUT].emitted - during[CUT].sent, recovered, keys, total, HOSTS,
                  (long long)total - keys);
    if (c)
        redisFree(c);
    kg_redis_server_stop(&srv);
    topology_remove();

    assert_true(ok);
    assert_int_equal(bad_exit, 0);
    for (int h = 0; h < HOSTS; h++) {
        assert_int_equal(hosts[h].failed_runs, 0);
        assert_int_equal(hosts[h].sent, hosts[h].emitted);
        if (h == CUT)
            continue;
        /* The others did not notice: they kept delivering, never failed. */
        assert_int_equal(during[h].failed_batches, before[h].failed_batches);
        assert_true(during[h].sent > before[h].sent + 500);
    }
    assert_true(during[CUT].emitted - during[CUT].sent > 0);
    assert_int_equal(keys, (long long)total);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--host") == 0)
        return host_main(argv[2], atoi(argv[3]), argv[4]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts_one_link_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
