/* benchmarks.c - see benchmarks.h.  Every figure is a median over repeated
 * blocks, so one preempted block on this 2-core machine does not skew it.
 *
 * Node "work" is a busy-wait on the thread's own CPU clock, and overheads
 * are computed from the workflow thread's CPU time: that is what the
 * workflow pays, whatever else (other processes, the dispatcher threads on
 * the other core) the machine is doing.  Wall-clock figures are reported
 * beside them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kaygraph/kaygraph.h>

#include "benchmarks.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

/* ---- the benchmark workflow: 5 nodes in a line that busy-wait W µs ---------- */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process: every thread, the dispatcher's included. */
static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void busy_wait(double us)
{
    if (us <= 0)
        return;
    double end = cpu_s() + us / 1e6;
    while (cpu_s() < end) {
    }
}

/* Per-run cost of a block: thread CPU seconds and wall seconds. */
typedef struct cost {
    double cpu, wall;
} cost;

static int cmp_cost_cpu(const void *a, const void *b)
{
    double x = ((const cost *)a)->cpu, y = ((const cost *)b)->cpu;
    return (x > y) - (x < y);
}

static cost median_cost(cost *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_cost_cpu);
    return n ? v[n / 2] : (cost){0, 0};
}

static int busy_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    busy_wait(*(const double *)kg_ctx_data(ctx));
    return 0;
}

static const kg_node_ops busy_ops = {.type_name = "BusyNode", .exec = busy_exec};

static kg_node_t *line_graph(double *work_us)
{
    kg_node_t *g = kg_graph_new("bench", NULL, NULL);
    kg_node_t *prev = NULL;
    for (int i = 0; i < 5; i++) {
        char id[8] = {'n', (char)('0' + i), 0};
        kg_node_t *n = kg_graph_add(g, kg_node_new(id, &busy_ops, work_us));
        if (prev)
            kg_node_connect(prev, NULL, n);
        prev = n;
    }
    return g;
}

/* Cost per graph run over `runs` runs. */
static cost time_runs(kg_node_t *g, json_t *shared, int runs)
{
    double c0 = cpu_s(), t0 = now_s();
    for (int r = 0; r < runs; r++)
        kg_run(g, shared, NULL);
    return (cost){(cpu_s() - c0) / runs, (now_s() - t0) / runs};
}

/* Cost of 5 direct busy-waits: the same work without the engine. */
static cost time_direct(double us, int runs)
{
    double c0 = cpu_s(), t0 = now_s();
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < 5; i++)
            busy_wait(us);
    return (cost){(cpu_s() - c0) / runs, (now_s() - t0) / runs};
}

static int runs_for(const bench_options *o, double us)
{
    double per_run = 5 * (us + 0.3) / 1e6;
    int runs = (int)(o->seconds / 11 / per_run);
    if (o->quick)
        runs = 20;
    return runs < 20 ? 20 : runs;
}

json_t *bench_engine(const bench_options *o)
{
    static const double work[] = {0, 1, 10, 100};
    json_t *rows = json_array();
    json_t *shared = json_object();
    for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) {
        double us = work[i];
        kg_node_t *g = line_graph(&us);
        int runs = runs_for(o, us), blocks = o->quick ? 3 : 11;
        cost engine[16], direct[16];
        /* Interleaved blocks: drift and preemption hit both sides alike. */
        for (int b = 0; b < blocks; b++) {
            engine[b] = time_runs(g, shared, runs);
            direct[b] = time_direct(us, runs);
        }
        cost e = median_cost(engine, (size_t)blocks), d = median_cost(direct, (size_t)blocks);
        json_array_append_new(rows, json_pack("{s:f, s:f, s:f, s:f, s:i}", "work_us", us,
                                              "ns_per_node_execution", e.cpu / 5 * 1e9,
                                              "engine_overhead_ns", (e.cpu - d.cpu) / 5 * 1e9,
                                              "engine_overhead_ns_wall", (e.wall - d.wall) / 5 * 1e9,
                                              "runs", runs * blocks));
        kg_node_free(g);
    }
    json_decref(shared);
    return json_pack("{s:s, s:o}", "benchmark", "engine_overhead", "results", rows);
}

/* ---- monitoring ------------------------------------------------------------------ */

#define KG__BENCH_DEFAULT_BUFFER 0   /* bench_monitor_new: keep kg_monitor_config_init's */

static kg_monitor_t *bench_monitor_new(size_t buffer)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    if (buffer)
        cfg.buffer_size = buffer;
    cfg.metrics_interval = 0;
    kg_monitor_t *mon = NULL;
    kg_monitor_new(&cfg, &mon, NULL);
    return mon;
}

/* Median ns per event of the observer callback (the whole producer path),
 * in blocks of 1000 events that fit the queue, waiting for the dispatcher to
 * drain between blocks so no event is dropped. */
static const kg_node_ops validator_ops = {.type_name = "DataValidationNode"};

/* An observer event as the engine makes it: a real node (events name it by
 * its descriptor) and the engine's clock reading. */
static kg_obs_event engine_event(const kg_node_t *node, kg_obs_point point)
{
    return (kg_obs_event){.point = point, .node = node, .node_id = kg_node_id(node),
                          .node_type = kg_node_type(node), .run_id = 7, .root_run_id = 7,
                          .exec_id = 9, .item = -1, .time_ns = 1};
}

static double producer_ns(const bench_options *o)
{
    kg_monitor_t *mon = bench_monitor_new(1 << 16);
    const kg_observer *obs = kg_monitor_observer(mon);
    kg_node_t *node = kg_node_new("validator", &validator_ops, NULL);
    kg_obs_event ev = engine_event(node, KG_OBS_NODE_START);
    int blocks = o->quick ? 10 : 2001;
    double *samples = malloc((size_t)blocks * sizeof *samples);
    for (int b = 0; b < blocks; b++) {
        double t0 = now_s();
        for (int i = 0; i < 1000; i++)
            obs->on_event(obs->ud, &ev);
        samples[b] = (now_s() - t0) / 1000 * 1e9;
        if (b % 8 == 7)   /* 8000 events: well within one partition */
            kg_monitor_flush(mon, 10);
    }
    double med = median(samples, (size_t)blocks);
    free(samples);
    kg_monitor_free(mon);
    kg_node_free(node);
    return med;
}

/* One block of monitored runs: the workflow thread's CPU and the whole
 * process's CPU (the dispatcher's work for these events included: the
 * flush waits for it), and how many events it emitted. */
typedef struct mon_block {
    cost thread;
    double process;
    double events;
} mon_block;

static mon_block time_monitored(kg_monitor_t *mon, kg_node_t *g, json_t *shared, int runs)
{
    kg_monitor_stats s0, s1;
    kg_monitor_stats_get(mon, &s0);
    double p0 = process_cpu_s();
    cost c = time_runs(g, shared, runs);
    kg_monitor_flush(mon, 30);
    double p1 = process_cpu_s();
    kg_monitor_stats_get(mon, &s1);
    return (mon_block){c, (p1 - p0) / runs, (double)(s1.emitted - s0.emitted) / runs};
}

static int cmp_block(const void *a, const void *b)
{
    double x = ((const mon_block *)a)->thread.cpu, y = ((const mon_block *)b)->thread.cpu;
    return (x > y) - (x < y);
}

/* Per node-work size: what monitoring costs the workflow thread (CPU time,
 * monitored minus unmonitored), and what it costs the whole process per
 * event (every thread's CPU in a monitored block, dispatcher included,
 * minus the unmonitored workflow's own CPU, over the events). */
json_t *bench_monitor_overhead(const bench_options *o)
{
    static const double work[] = {0, 1, 10, 50};
    json_t *rows = json_array();
    json_t *shared = json_object();
    for (size_t i = 0; i < sizeof work / sizeof work[0]; i++) {
        double us = work[i];
        kg_node_t *g = line_graph(&us);
        /* The default buffer (65,536 events); a block is at most 800 runs
         * (29,600 events) and is flushed, so even empty nodes never fill
         * it: nothing is dropped, and the workflow pays what it pays with
         * the default configuration. */
        kg_monitor_t *mon = bench_monitor_new(KG__BENCH_DEFAULT_BUFFER);
        int runs = runs_for(o, us) / 2, blocks = o->quick ? 3 : 15;
        if (runs > 800)
            runs = 800;
        cost plain[32];
        mon_block monitored[32];
        double process[32];
        /* Interleave so drift (frequency, other load) hits both alike. */
        for (int b = 0; b < blocks; b++) {
            kg_monitor_detach(mon, g);
            plain[b] = time_runs(g, shared, runs);
            kg_monitor_attach(mon, g);
            monitored[b] = time_monitored(mon, g, shared, runs);
            process[b] = monitored[b].process;
        }
        qsort(monitored, (size_t)blocks, sizeof *monitored, cmp_block);
        cost p = median_cost(plain, (size_t)blocks);
        mon_block m = monitored[blocks / 2];
        double per_run_ns = (m.thread.cpu - p.cpu) * 1e9;
        double total_ns = (median(process, (size_t)blocks) - p.cpu) * 1e9;
        json_array_append_new(rows, json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                                              "work_us", us,
                                              "unmonitored_us_per_run", p.cpu * 1e6,
                                              "monitored_us_per_run", m.thread.cpu * 1e6,
                                              "overhead_percent", (m.thread.cpu - p.cpu) / p.cpu * 100,
                                              "overhead_ns_per_node", per_run_ns / 5,
                                              "workflow_ns_per_event", per_run_ns / m.events,
                                              "process_cpu_ns_per_event", total_ns / m.events,
                                              "events_per_node", m.events / 5,
                                              "overhead_percent_wall",
                                              (m.thread.wall - p.wall) / p.wall * 100));
        kg_monitor_stats s;
        kg_monitor_stats_get(mon, &s);
        json_object_set_new(json_array_get(rows, i), "events", json_integer((json_int_t)s.emitted));
        json_object_set_new(json_array_get(rows, i), "dropped",
                            json_integer((json_int_t)s.dropped_full));
        kg_monitor_free(mon);
        kg_node_free(g);
    }
    json_decref(shared);
    return json_pack("{s:s, s:f, s:o}", "benchmark", "monitor_overhead",
                     "producer_ns_per_event_median", producer_ns(o), "results", rows);
}

/* Emit `total` events as fast as the dispatcher takes them: the producer
 * only waits (outside the measured path's semantics) for room in the queue,
 * so nothing is dropped and the rate is what the pipeline sustains. */
json_t *bench_throughput(const bench_options *o)
{
    const size_t cap = 1 << 18;
    long total = o->quick ? 20000 : (long)(o->seconds * 3e6);
    kg_monitor_t *mon = bench_monitor_new(cap);
    const kg_observer *obs = kg_monitor_observer(mon);
    kg_node_t *node = kg_node_new("validator", &validator_ops, NULL);
    kg_obs_event ev = engine_event(node, KG_OBS_NODE_START);
    kg_monitor_stats s;
    double t0 = now_s();
    for (long sent = 0; sent < total;) {
        kg_monitor_stats_get(mon, &s);
        /* At most half a partition in flight in all: even if one worker is
         * preempted and every pending event is in its partition, nothing is
         * dropped -- a preempted worker also holds the cell it was copying,
         * and a producer lapping the ring onto it would see it as full. */
        long room = (long)(s.queue_capacity / 8) - (long)s.queue_size;
        for (long i = 0; i < room && sent < total; i++, sent++) {
            /* Events of 64 runs, spread over the dispatcher's partitions. */
            ev.run_id = ev.root_run_id = 1 + (uint64_t)(sent & 63);
            obs->on_event(obs->ud, &ev);
        }
        if (room <= 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    kg_monitor_flush(mon, 60);
    double elapsed = now_s() - t0;
    kg_monitor_stats_get(mon, &s);
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f}", "benchmark", "throughput_mock",
                            "events", (json_int_t)s.emitted, "delivered", (json_int_t)s.sent,
                            "dropped", (json_int_t)s.dropped_full, "seconds", elapsed,
                            "events_per_second", (double)s.sent / elapsed);
    kg_monitor_free(mon);
    kg_node_free(node);
    return out;
}

/* ---- memory ------------------------------------------------------------------- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* RSS growth while a failing backend is offered far more events than the
 * buffer holds: the queue is allocated once, so the growth is bounded by it. */
json_t *bench_memory(const bench_options *o)
{
    long before = rss_kib();
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    kg_backend_t *mock = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    kg_mock_backend_fail(mock, -1);
    cfg.backend = mock;
    cfg.metrics_interval = 0;
    cfg.shutdown_timeout = 0.2;
    kg_monitor_t *mon = NULL;
    kg_monitor_new(&cfg, &mon, NULL);
    const kg_observer *obs = kg_monitor_observer(mon);
    kg_node_t *node = kg_node_new("validator", &validator_ops, NULL);
    kg_obs_event ev = engine_event(node, KG_OBS_NODE_START);
    long total = o->quick ? 100000 : 5000000;
    for (long i = 0; i < total; i++) {
        ev.run_id = ev.root_run_id = 1 + (uint64_t)(i & 63);
        obs->on_event(obs->ud, &ev);
    }
    long after = rss_kib();
    kg_monitor_stats s;
    kg_monitor_stats_get(mon, &s);
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:i, s:i, s:i}", "benchmark",
                            "memory_failing_backend", "events_offered", (json_int_t)total,
                            "queued", (json_int_t)s.queue_size, "dropped",
                            (json_int_t)s.dropped_full, "buffer_size",
                            (json_int_t)s.queue_capacity, "rss_before_kib", (int)before,
                            "rss_after_kib", (int)after, "rss_growth_kib", (int)(after - before));
    kg_monitor_free(mon);
    kg_node_free(node);
    return out;
}
