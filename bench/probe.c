/* probe.c - kg_probe: small, fixed workloads for finding out where the
 * monitor's time goes (BENCHMARKS.md, "Where the time goes").  Unlike
 * `kgmon bench` it measures one configuration per call, so it can be run
 * under callgrind or perf, pinned, and interleaved by a shell loop.
 *
 *   kg_probe workflow [--work US] [--runs N] [--monitor] [--workers N]
 *                     [--buffer N] [--pin none|same|split]
 *       the benchmark workflow (5 nodes in a line, each busy-waiting US µs
 *       of its thread's CPU time) run N times; prints the workflow thread's
 *       CPU time and the whole process's CPU time per node execution.
 *       --pin same: every thread on CPU 0; split: the workflow thread on
 *       CPU 0, the dispatcher threads on CPU 1.  --spin: the node's work is
 *       a calibrated user-space loop instead of reading the CPU clock.
 *   kg_probe clock
 *       the cost of one clock read (vDSO clock_gettime, rdtsc, and the
 *       thread CPU clock that the busy-wait reads, a system call).
 *
 * Output: one JSON object per call on stdout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include <kaygraph/kaygraph.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double work_us;
static double spin_per_us;   /* --spin: loop iterations per µs (calibrated); 0 = clock */
static volatile unsigned long long spin_sink;

/* Work that stays in user space: a dependent multiply-add chain, as a node
 * computing something would run.  The default busy-wait below reads the
 * thread's CPU clock, a system call (~210 ns here), ~47 times per 10 µs: the
 * kernel then evicts part of the caches the monitor uses. */
static void spin(double us)
{
    unsigned long long x = spin_sink, n = (unsigned long long)(us * spin_per_us);
    for (unsigned long long i = 0; i < n; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    spin_sink = x;
}

static void spin_calibrate(void)
{
    spin_per_us = 1000;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    spin(50000);
    double us = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e6;
    spin_per_us = 1000 * 50000 / us;
}

static void busy_wait(double us)
{
    if (us <= 0)
        return;
    if (spin_per_us > 0) {
        spin(us);
        return;
    }
    double end = clock_s(CLOCK_THREAD_CPUTIME_ID) + us / 1e6;
    while (clock_s(CLOCK_THREAD_CPUTIME_ID) < end) {
    }
}

static int busy_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    busy_wait(work_us);
    return 0;
}

static const kg_node_ops busy_ops = {.type_name = "BusyNode", .exec = busy_exec};

static kg_node_t *line_graph(void)
{
    kg_node_t *g = kg_graph_new("bench", NULL, NULL);
    kg_node_t *prev = NULL;
    for (int i = 0; i < 5; i++) {
        char id[8] = {'n', (char)('0' + i), 0};
        kg_node_t *n = kg_graph_add(g, kg_node_new(id, &busy_ops, NULL));
        if (prev)
            kg_node_connect(prev, NULL, n);
        prev = n;
    }
    return g;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

typedef struct opts {
    long runs;
    bool monitor;
    unsigned workers;
    size_t buffer;
    const char *pin;
} opts;

static int probe_workflow(const opts *o)
{
    kg_node_t *g = line_graph();
    json_t *shared = json_object();
    kg_monitor_t *mon = NULL;
    /* Dispatcher threads inherit the affinity of the thread creating them. */
    if (strcmp(o->pin, "same") == 0)
        pin(0);
    else if (strcmp(o->pin, "split") == 0)
        pin(1);
    if (o->monitor) {
        kg_monitor_config cfg;
        kg_monitor_config_init(&cfg);
        cfg.backend = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
        cfg.metrics_interval = 0;
        cfg.buffer_size = o->buffer;
        if (o->workers)
            cfg.async_workers = o->workers;
        kg_error_t err;
        if (kg_monitor_new(&cfg, &mon, &err) < 0) {
            fprintf(stderr, "kg_probe: %s\n", err.message);
            return 1;
        }
        kg_monitor_attach(mon, g);
    }
    if (strcmp(o->pin, "split") == 0)
        pin(0);
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double t0 = clock_s(CLOCK_MONOTONIC);
    for (long r = 0; r < o->runs; r++)
        kg_run(g, shared, NULL);
    double c1 = clock_s(CLOCK_THREAD_CPUTIME_ID), t1 = clock_s(CLOCK_MONOTONIC);
    kg_monitor_stats s = {0};
    if (mon) {
        kg_monitor_flush(mon, 60);
        kg_monitor_stats_get(mon, &s);
    }
    double p1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double nodes = (double)o->runs * 5;
    printf("{\"monitor\":%s,\"work_us\":%g,\"runs\":%ld,\"thread_cpu_ns_per_node\":%.1f,"
           "\"process_cpu_ns_per_node\":%.1f,\"wall_ns_per_node\":%.1f,\"events\":%llu,"
           "\"dropped\":%llu}\n",
           mon ? "true" : "false", work_us, o->runs, (c1 - c0) / nodes * 1e9,
           (p1 - p0) / nodes * 1e9, (t1 - t0) / nodes * 1e9, (unsigned long long)s.emitted,
           (unsigned long long)s.dropped_full);
    if (mon) {
        kg_monitor_detach(mon, g);
        kg_monitor_free(mon);
    }
    kg_node_free(g);
    json_decref(shared);
    return 0;
}

static volatile unsigned long long sink;

static double per_call_ns(int what, long n)
{
    struct timespec ts;
    unsigned aux;
    double t0 = clock_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        if (what == 0)
            clock_gettime(CLOCK_MONOTONIC, &ts), sink += (unsigned long long)ts.tv_nsec;
        else if (what == 1)
            clock_gettime(CLOCK_REALTIME, &ts), sink += (unsigned long long)ts.tv_nsec;
        else if (what == 2)
            sink += __rdtsc();
        else if (what == 4)
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), sink += (unsigned long long)ts.tv_nsec;
        else
            sink += __rdtscp(&aux);
    }
    return (clock_s(CLOCK_MONOTONIC) - t0) / (double)n * 1e9;
}

static int probe_clock(void)
{
    long n = 10000000;
    printf("{\"clock_gettime_monotonic_ns\":%.1f,\"clock_gettime_realtime_ns\":%.1f,"
           "\"rdtsc_ns\":%.1f,\"rdtscp_ns\":%.1f,\"clock_gettime_thread_cputime_ns\":%.1f}\n",
           per_call_ns(0, n), per_call_ns(1, n), per_call_ns(2, n), per_call_ns(3, n),
           per_call_ns(4, n / 10));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option table[] = {
        {"work", required_argument, NULL, 'w'},   {"runs", required_argument, NULL, 'r'},
        {"monitor", no_argument, NULL, 'm'},      {"workers", required_argument, NULL, 'k'},
        {"buffer", required_argument, NULL, 'b'}, {"pin", required_argument, NULL, 'p'},
        {"spin", no_argument, NULL, 's'},         {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        fputs("usage: kg_probe workflow|clock [options] (see bench/probe.c)\n", stderr);
        return 2;
    }
    opts o = {.runs = 20000, .buffer = 1 << 20, .pin = "none"};
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", table, NULL)) != -1) {
        switch (opt) {
        case 'w':
            work_us = atof(optarg);
            break;
        case 'r':
            o.runs = atol(optarg);
            break;
        case 'm':
            o.monitor = true;
            break;
        case 'k':
            o.workers = (unsigned)atoi(optarg);
            break;
        case 'b':
            o.buffer = (size_t)atol(optarg);
            break;
        case 'p':
            o.pin = optarg;
            break;
        case 's':
            spin_calibrate();
            break;
        default:
            return 2;
        }
    }
    kg_log_set_handler(NULL, NULL);
    if (strcmp(argv[1], "workflow") == 0)
        return probe_workflow(&o);
    if (strcmp(argv[1], "clock") == 0)
        return probe_clock();
    fprintf(stderr, "kg_probe: unknown probe '%s'\n", argv[1]);
    return 2;
}
