/* bench_reports.c - what a node's own reports cost the node (kg_ctx_log,
 * kg_ctx_metric, kg_ctx_progress): with no monitor, filtered out by the
 * monitor, and captured.  See benchmarks.h.
 *
 * The calls are timed inside a node's exec step, on the thread's CPU clock,
 * in blocks of 1,000 calls; an empty loop of the same length is timed in
 * every block too and subtracted, so a figure is what the call itself
 * costs.  Captured blocks are flushed between blocks (outside the timing),
 * so the queue never fills and nothing is dropped.  A trivial library call
 * (kg_ctx_attempt) is timed the same way as the yardstick for "costs about
 * a branch". */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kaygraph/kaygraph.h>

#include "benchmarks.h"

#define CALLS 1000

typedef enum report_op {
    OP_ATTEMPT,        /* kg_ctx_attempt: a call that only reads a field */
    OP_LOG,            /* kg_ctx_log(info, "record %d processed", i) */
    OP_LOG_DEBUG,      /* kg_ctx_log(debug, ...) */
    OP_LOG_FIELDS,     /* kg_ctx_log_fields_new(info, json_pack({record: i}), ...) */
    OP_METRIC,         /* kg_ctx_metric(counter) */
    OP_PROGRESS,       /* kg_ctx_progress */
} report_op;

typedef struct report_case {
    const char *name;
    report_op op;
    int monitor;       /* 0: none, 1: everything captured, 2: log_level warning and
                        * no custom_metric captured */
    bool handler;      /* no monitor: a handler that drops lines (info reaches it) */
} report_case;

static const report_case cases[] = {
    {"reference_call", OP_ATTEMPT, 0, false},
    {"off_log_below_handler_level", OP_LOG_DEBUG, 0, false},
    {"off_log_to_handler", OP_LOG, 0, true},
    {"off_metric", OP_METRIC, 0, false},
    {"filtered_log_level", OP_LOG, 2, false},
    {"filtered_metric", OP_METRIC, 2, false},
    {"captured_log", OP_LOG, 1, false},
    {"captured_log_fields", OP_LOG_FIELDS, 1, false},
    {"captured_metric", OP_METRIC, 1, false},
    {"captured_progress", OP_PROGRESS, 1, false},
};

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What the measuring node is told to do, and where it puts the figures. */
typedef struct report_job {
    report_op op;
    kg_monitor_t *mon;   /* flushed between blocks; NULL: none */
    int blocks;
    double *ns;          /* per block: ns per call, the empty loop subtracted */
} report_job;

static volatile unsigned sink;

static void calls(kg_ctx_t *ctx, report_op op)
{
    for (int i = 0; i < CALLS; i++) {
        switch (op) {
        case OP_ATTEMPT:
            sink += kg_ctx_attempt(ctx);
            break;
        case OP_LOG:
            kg_ctx_log(ctx, KG_LOG_INFO, "record %d processed", i);
            break;
        case OP_LOG_DEBUG:
            kg_ctx_log(ctx, KG_LOG_DEBUG, "record %d processed", i);
            break;
        case OP_LOG_FIELDS:
            kg_ctx_log_fields_new(ctx, KG_LOG_INFO, json_pack("{s:i}", "record", i),
                                  "record %d processed", i);
            break;
        case OP_METRIC:
            kg_ctx_metric(ctx, "records_processed", 1, "records", KG_METRIC_COUNTER);
            break;
        case OP_PROGRESS:
            kg_ctx_progress(ctx, i, CALLS);
            break;
        }
    }
}

static void empty_loop(void)
{
    for (int i = 0; i < CALLS; i++)
        sink += (unsigned)i;
}

static int measure_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    report_job *job = kg_ctx_data(ctx);
    for (int b = 0; b < job->blocks; b++) {
        double t0 = cpu_s();
        empty_loop();
        double t1 = cpu_s();
        calls(ctx, job->op);
        double t2 = cpu_s();
        job->ns[b] = ((t2 - t1) - (t1 - t0)) / CALLS * 1e9;
        if (job->mon)
            kg_monitor_flush(job->mon, 30);
    }
    return 0;
}

static const kg_node_ops measure_ops = {.type_name = "ReportBenchNode", .exec = measure_exec};

static void drop_line(void *ud, kg_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    sink += (unsigned)msg[0];
}

static kg_monitor_t *report_monitor(int kind)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_mock_backend_new(&(kg_mock_options){.keep_json = false}, NULL);
    cfg.metrics_interval = 0;
    if (kind == 2) {
        cfg.log_level = KG_LOG_WARN;
        cfg.capture &= ~KG_CAPTURE(KG_EV_CUSTOM_METRIC);
    }
    kg_monitor_t *mon = NULL;
    kg_monitor_new(&cfg, &mon, NULL);
    return mon;
}

/* One round of one case: `blocks` blocks in one node execution. */
static double case_round(const report_case *c, int blocks)
{
    double *ns = calloc((size_t)blocks, sizeof *ns);
    report_job job = {.op = c->op, .blocks = blocks, .ns = ns};
    kg_node_t *g = kg_graph_new("bench_reports", NULL, NULL);
    kg_graph_add(g, kg_node_new("measure", &measure_ops, &job));
    if (c->monitor) {
        job.mon = report_monitor(c->monitor);
        kg_monitor_attach(job.mon, g);
    }
    if (c->handler)
        kg_log_set_handler(drop_line, NULL);
    kg_run(g, NULL, NULL);
    kg_log_set_handler(NULL, NULL);
    if (job.mon) {
        kg_monitor_detach(job.mon, g);
        kg_monitor_free(job.mon);
    }
    kg_node_free(g);
    qsort(ns, (size_t)blocks, sizeof *ns, cmp_double);
    double med = ns[blocks / 2];
    free(ns);
    return med;
}

json_t *bench_reports(const bench_options *o)
{
    enum { N = sizeof cases / sizeof cases[0], ROUNDS_MAX = 15 };
    int rounds = o->quick ? 1 : 7, blocks = o->quick ? 3 : 201;
    double med[N][ROUNDS_MAX];
    /* Rounds interleave the cases, so drift hits all alike. */
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < N; i++)
            med[i][r] = case_round(&cases[i], blocks);
    json_t *results = json_object();
    for (size_t i = 0; i < N; i++) {
        qsort(med[i], (size_t)rounds, sizeof med[i][0], cmp_double);
        json_object_set_new(results, cases[i].name,
                            json_pack("{s:f, s:f, s:f}", "ns_per_call", med[i][rounds / 2],
                                      "min", med[i][0], "max", med[i][rounds - 1]));
    }
    return json_pack("{s:s, s:i, s:i, s:i, s:o}", "benchmark", "node_reports", "calls_per_block",
                     CALLS, "blocks", blocks, "rounds", rounds, "results", results);
}
