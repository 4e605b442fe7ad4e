/* cmd_demo.c - `kgmon demo`: the seed's example, run with monitoring.
 *
 * Builds the demo workflow, attaches a monitor with the chosen backend (and
 * the embedded dashboard when asked), runs the iterations, and reports what
 * the workflow did and what monitoring delivered.  Monitoring never stops the
 * workflow: an unreachable Redis is reported after the run, with exit
 * status 3, not before it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kaygraph/dashboard.h>
#include <kaygraph/redis_reader.h>

#include "cli.h"
#include "util/clock.h"
#include "demo_workflow.h"
#include "history_cli.h"

typedef struct demo_args {
    const char *backend;
    unsigned long long iterations;
    bool parallel;
    demo_options wf;
    double sample_rate;
    bool snapshots;
    char *redis_host;
    int redis_port;
    const char *redis_prefix;
    long redis_stream;
    bool redis_lean;
    const char *webhook_url;
    double webhook_timeout;          /* 0 = the backend's default */
    double webhook_connect_timeout;
    const char *file;
    bool dashboard;
    int dashboard_port;
    const char *bind;
    const char *token;
    bool capture_set;
    uint32_t capture;
    kg_log_level log_level;
    bool node_delay_set;
    bool quiet;
    cli_history hist;   /* history: --db, --retain-days, --retain-mb */
} demo_args;

typedef struct demo_totals {
    unsigned runs, ok, handled, failed;
    long long generated, valid, invalid, processed, fallback;
    double seconds;
} demo_totals;

static void demo_usage(FILE *out)
{
    fputs("usage: kgmon demo [options]\n"
          "\n"
          "Run the example data pipeline (data_source -> validator -> processor ->\n"
          "aggregator -> storage, with an error handler) with real-time monitoring.\n"
          "\n"
          "  --graph G            the example graph: pipeline (default, the one above),\n"
          "                       nested (sub-graphs two levels deep and a batch graph)\n"
          "                       or wide (124 nodes fanning out and in)\n"
          "  --backend B          mock (default), redis, http or file\n"
          "  --iterations N       workflow runs (default 5; 0 = until Ctrl-C)\n"
          "  --batch-size N       records generated per run (default 100)\n"
          "  --parallel           process chunks in a parallel batch node\n"
          "  --workers N          its worker threads (default 4)\n"
          "  --sample-rate R      fraction of runs monitored, 0..1 (default 1.0)\n"
          "  --no-snapshots       do not include data snapshots in events\n"
          "  --capture LIST       event types/names to capture (default all), e.g. lifecycle,error\n"
          "  --log-level L        the nodes' own log lines captured from level L up: debug\n"
          "                       (default), info, warning or error\n"
          "  --redis-host H       Redis host (default 127.0.0.1)\n"
          "  --redis-port P       Redis port (default 6379)\n"
          "  --redis-prefix P     Redis key/channel prefix (default kaygraph:monitoring:)\n"
          "  --redis-stream N     also XADD events to <prefix>stream, capped at ~N entries,\n"
          "                       so a dashboard that was down can replay them (default off)\n"
          "  --redis-layout L     seed (default: the layout the Python consumers read) or\n"
          "                       lean (for high rates, docs/redis.md)\n"
          "  --webhook-url URL    webhook for --backend http (default http://127.0.0.1:8080/api/ingest)\n"
          "  --webhook-timeout S  seconds a webhook POST may take, in all (default 5)\n"
          "  --webhook-connect-timeout S\n"
          "                       seconds its connection may take (default 2)\n"
          "  --file PATH          JSON Lines file for --backend file (default kaygraph-events.jsonl, - = stdout)\n"
          "  --dashboard[=PORT]   serve the live dashboard (default port 8080) and keep serving\n"
          "                       after the run until Ctrl-C\n"
          "  --bind ADDR          dashboard address (default 127.0.0.1)\n"
          "  --token T            require this token on the dashboard (default $KGMON_TOKEN)\n"
          CLI_HISTORY_USAGE
          "  --node-delay MS      simulated work per node in ms (default 0; 150 with --dashboard)\n"
          "  --seed N             random seed: same seed, same run (default 42)\n"
          "  --quiet              no per-iteration lines\n"
          "  -h, --help           this help\n",
          out);
}

enum {
    OPT_BACKEND = 256, OPT_ITERATIONS, OPT_BATCH, OPT_PARALLEL, OPT_WORKERS, OPT_SAMPLE,
    OPT_NO_SNAP, OPT_CAPTURE, OPT_RHOST, OPT_RPORT, OPT_URL, OPT_FILE, OPT_DASH, OPT_BIND,
    OPT_TOKEN, OPT_DELAY, OPT_SEED, OPT_QUIET, OPT_RPREFIX, OPT_RSTREAM, OPT_GRAPH,
    OPT_RLAYOUT, OPT_WTIMEOUT, OPT_WCONNECT, OPT_LOG_LEVEL,
};

static const struct option demo_options_table[] = {
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"iterations", required_argument, NULL, OPT_ITERATIONS},
    {"batch-size", required_argument, NULL, OPT_BATCH},
    {"parallel", no_argument, NULL, OPT_PARALLEL},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"sample-rate", required_argument, NULL, OPT_SAMPLE},
    {"no-snapshots", no_argument, NULL, OPT_NO_SNAP},
    {"capture", required_argument, NULL, OPT_CAPTURE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"redis-host", required_argument, NULL, OPT_RHOST},
    {"redis-port", required_argument, NULL, OPT_RPORT},
    {"redis-prefix", required_argument, NULL, OPT_RPREFIX},
    {"redis-stream", required_argument, NULL, OPT_RSTREAM},
    {"redis-layout", required_argument, NULL, OPT_RLAYOUT},
    {"webhook-url", required_argument, NULL, OPT_URL},
    {"webhook-timeout", required_argument, NULL, OPT_WTIMEOUT},
    {"webhook-connect-timeout", required_argument, NULL, OPT_WCONNECT},
    {"file", required_argument, NULL, OPT_FILE},
    {"dashboard", optional_argument, NULL, OPT_DASH},
    {"bind", required_argument, NULL, OPT_BIND},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"node-delay", required_argument, NULL, OPT_DELAY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"quiet", no_argument, NULL, OPT_QUIET},
    CLI_HISTORY_OPTIONS,   /* history */
    {"graph", required_argument, NULL, OPT_GRAPH},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *option_name(int opt)
{
    for (const struct option *o = demo_options_table; o->name; o++)
        if (o->val == opt)
            return o->name;
    return "?";
}

/* Options whose value is a string must not be empty. */
static bool empty_value(int opt, const char *arg)
{
    return arg && !*arg &&
           (opt == OPT_CAPTURE || opt == OPT_RHOST || opt == OPT_RPREFIX || opt == OPT_URL ||
            opt == OPT_FILE || opt == OPT_BIND || opt == OPT_TOKEN || opt >= CLI_OPT_DB);
}

/* --webhook-url: checked here, not when the first batch fails. */
static int webhook_url(demo_args *a, const char *arg)
{
    static const char *const schemes[] = {"http", "https", NULL};
    cli_url u;
    const char *why = cli_parse_url(arg, schemes, true, &u);
    cli_url_free(&u);
    if (why)
        return cli_usage_error("demo", "--webhook-url %s: it must be http(s)://HOST[:PORT][/PATH] "
                               "(got '%s')", why, arg);
    a->webhook_url = arg;
    return 0;
}

/* One option; returns 0, KGMON_USAGE, or -1 for --help. */
static int demo_option(demo_args *a, int opt, const char *arg)
{
    unsigned long long u;
    double d;
    int n;
    kg_error_t err = {0};
    if (empty_value(opt, arg))
        return cli_usage_error("demo", "an empty value is not allowed for --%s", option_name(opt));
    switch (opt) {
    case OPT_BACKEND:
        if (strcmp(arg, "mock") && strcmp(arg, "redis") && strcmp(arg, "http") && strcmp(arg, "file"))
            return cli_usage_error("demo", "--backend must be mock, redis, http or file (got '%s')", arg);
        a->backend = arg;
        return 0;
    case OPT_ITERATIONS:
        if (!cli_parse_uint(arg, 0, 100000000, &u))
            return cli_usage_error("demo", "--iterations must be a whole number >= 0 (got '%s')", arg);
        a->iterations = u;
        return 0;
    case OPT_BATCH:
        if (!cli_parse_uint(arg, 1, 1000000, &u))
            return cli_usage_error("demo", "--batch-size must be 1..1000000 (got '%s')", arg);
        a->wf.batch_size = (unsigned)u;
        return 0;
    case OPT_PARALLEL:
        a->wf.parallel = true;
        return 0;
    case OPT_WORKERS:
        if (!cli_parse_uint(arg, 1, 256, &u))
            return cli_usage_error("demo", "--workers must be 1..256 (got '%s')", arg);
        a->wf.workers = (unsigned)u;
        return 0;
    case OPT_SAMPLE:
        if (!cli_parse_double(arg, 0, 1, &d))
            return cli_usage_error("demo", "--sample-rate must be a number within 0..1 (got '%s')", arg);
        a->sample_rate = d;
        return 0;
    case OPT_NO_SNAP:
        a->snapshots = false;
        return 0;
    case OPT_CAPTURE:
        if (kg_capture_parse(arg, &a->capture, &err) != 0)
            return cli_usage_error("demo", "--capture: %s", err.message);
        a->capture_set = true;
        return 0;
    case OPT_LOG_LEVEL:
        n = kg_log_level_parse(arg);
        if (n < 0)
            return cli_usage_error("demo", "--log-level must be debug, info, warning or error "
                                           "(got '%s')", arg);
        a->log_level = (kg_log_level)n;
        return 0;
    case OPT_RHOST:
        free(a->redis_host);
        a->redis_host = strdup(arg);
        return 0;
    case OPT_RPORT:
        if (!cli_parse_uint(arg, 1, 65535, &u))
            return cli_usage_error("demo", "--redis-port must be 1..65535 (got '%s')", arg);
        a->redis_port = (int)u;
        return 0;
    case OPT_RPREFIX:
        a->redis_prefix = arg;
        return 0;
    case OPT_RSTREAM:
        if (!cli_parse_uint(arg, 1, 100000000, &u))
            return cli_usage_error("demo", "--redis-stream must be 1..100000000 entries (got '%s')", arg);
        a->redis_stream = (long)u;
        return 0;
    case OPT_RLAYOUT:
        if (strcmp(arg, "seed") != 0 && strcmp(arg, "lean") != 0)
            return cli_usage_error("demo", "--redis-layout must be seed or lean (got '%s')", arg);
        a->redis_lean = strcmp(arg, "lean") == 0;
        return 0;
    case OPT_URL:
        return webhook_url(a, arg);
    case OPT_WTIMEOUT:
    case OPT_WCONNECT:
        if (!cli_parse_double(arg, 0.01, 3600, &d))
            return cli_usage_error("demo", "--%s must be 0.01..3600 seconds (got '%s')",
                                   option_name(opt), arg);
        *(opt == OPT_WTIMEOUT ? &a->webhook_timeout : &a->webhook_connect_timeout) = d;
        return 0;
    case OPT_FILE:
        a->file = arg;
        return 0;
    case OPT_DASH:
        a->dashboard = true;
        if (arg && !cli_parse_uint(arg, 0, 65535, &u))
            return cli_usage_error("demo", "--dashboard=PORT needs a port 0..65535 (got '%s')", arg);
        if (arg)
            a->dashboard_port = (int)u;
        return 0;
    case OPT_BIND:
        a->bind = arg;
        return 0;
    case OPT_TOKEN:
        a->token = arg;
        return 0;
    case OPT_DELAY:
        if (!cli_parse_double(arg, 0, 60000, &d))
            return cli_usage_error("demo", "--node-delay must be 0..60000 ms (got '%s')", arg);
        a->wf.node_delay = d / 1000;
        a->node_delay_set = true;
        return 0;
    case OPT_SEED:
        if (!cli_parse_uint(arg, 0, UINT64_MAX, &u))
            return cli_usage_error("demo", "--seed must be a whole number (got '%s')", arg);
        a->wf.seed = u;
        return 0;
    case OPT_QUIET:
        a->quiet = true;
        return 0;
    case CLI_OPT_DB:
    case CLI_OPT_RETAIN_DAYS:
    case CLI_OPT_RETAIN_MB:
        return cli_history_option(&a->hist, "demo", opt, arg);
    case OPT_GRAPH:
        if (strcmp(arg, "pipeline") == 0)
            a->wf.graph = DEMO_GRAPH_PIPELINE;
        else if (strcmp(arg, "nested") == 0)
            a->wf.graph = DEMO_GRAPH_NESTED;
        else if (strcmp(arg, "wide") == 0)
            a->wf.graph = DEMO_GRAPH_WIDE;
        else
            return cli_usage_error("demo", "--graph must be pipeline, nested or wide (got '%s')", arg);
        return 0;
    case 'h':
        return -1;
    default:
        return cli_usage_error("demo", "unknown option");
    }
}

static int demo_parse(demo_args *a, int argc, char **argv)
{
    *a = (demo_args){.backend = "mock", .iterations = 5, .sample_rate = 1.0, .snapshots = true,
                     .redis_port = 6379, .webhook_url = "http://127.0.0.1:8080/api/ingest",
                     .file = "kaygraph-events.jsonl", .dashboard_port = 8080,
                     .bind = "127.0.0.1", .log_level = KG_LOG_DEBUG, .token = cli_env_token(),
                     .wf = {.batch_size = 100, .workers = 4, .seed = 42}};
    a->redis_host = strdup("127.0.0.1");
    cli_history_init(&a->hist);
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", demo_options_table, NULL)) != -1) {
        if (opt == '?')
            return cli_usage_error("demo", "unknown or incomplete option '%s'", argv[optind - 1]);
        int rc = demo_option(a, opt, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (a->wf.parallel && a->wf.graph != DEMO_GRAPH_PIPELINE)
        return cli_usage_error("demo", "--parallel applies to --graph pipeline only");
    if (a->dashboard && !a->node_delay_set)
        a->wf.node_delay = 0.150;   /* slow enough to watch */
    if (a->dashboard && cli_history_resolve(&a->hist, "demo") != 0)   /* history */
        return KGMON_FAILED;
    return 0;
}

/* ---- backend and monitor ------------------------------------------------------------ */

/* A file that cannot be written is a mistake on the command line, so it is
 * reported before the run rather than as lost events after it. */
static bool file_writable(const char *path)
{
    if (strcmp(path, "-") == 0)
        return true;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static kg_backend_t *demo_backend(const demo_args *a, kg_error_t *err)
{
    if (strcmp(a->backend, "redis") == 0) {
        kg_redis_options o;
        kg_redis_options_init(&o);
        o.host = a->redis_host;
        o.port = a->redis_port;
        o.stream_maxlen = a->redis_stream;
        o.layout = a->redis_lean ? KG_REDIS_LAYOUT_LEAN : KG_REDIS_LAYOUT_SEED;
        if (a->redis_prefix)
            o.prefix = a->redis_prefix;
        return kg_redis_backend_new(&o, err);
    }
    if (strcmp(a->backend, "http") == 0) {
        kg_http_options o;
        kg_http_options_init(&o);
        o.url = a->webhook_url;
        if (a->webhook_timeout > 0)
            o.timeout = a->webhook_timeout;
        if (a->webhook_connect_timeout > 0)
            o.connect_timeout = a->webhook_connect_timeout;
        return kg_http_backend_new(&o, err);
    }
    if (strcmp(a->backend, "file") == 0) {
        if (!file_writable(a->file)) {
            kg_error_set(err, KG_EIO, "IOError", "cannot write '%s': %s", a->file, strerror(errno));
            return NULL;
        }
        return kg_file_backend_new(a->file, err);
    }
    return kg_mock_backend_new(NULL, err);
}

static void dashboard_log(void *ud, kg_dashboard_log_level level, const char *msg)
{
    (void)ud;
    if (level <= KG_DASH_LOG_WARN)
        fprintf(stderr, "dashboard: %s\n", msg);
}

static int start_dashboard(const demo_args *a, kg_dashboard_t **dash)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = a->dashboard_port;
    o.bind = a->bind;
    o.token = a->token;
    o.log = dashboard_log;
    cli_history_fill(&a->hist, &o);   /* history */
    kg_error_t err = {0};
    if (kg_dashboard_new(&o, dash, &err) != 0) {
        fprintf(stderr, "kgmon demo: cannot start the dashboard on %s:%d: %s\n", a->bind,
                a->dashboard_port, err.message);
        return KGMON_FAILED;
    }
    return 0;
}

static void print_dashboard_url(const demo_args *a, kg_dashboard_t *dash)
{
    const char *host = strcmp(a->bind, "0.0.0.0") == 0 ? "127.0.0.1" : a->bind;
    printf("Dashboard: http://%s:%d/%s%s\n", host, kg_dashboard_port(dash),
           a->token ? "?token=" : "", a->token ? a->token : "");
    fflush(stdout);
}

/* history: where the dashboard keeps runs (printed once, at start). */
static void print_history(const demo_args *a)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    cli_history_fill(&a->hist, &o);
    char line[1200];
    cli_history_describe(&o, line, sizeof line);
    printf("%s\n", line);
}

/* ---- running -------------------------------------------------------------------------- */

static long long shared_int(json_t *shared, const char *key)
{
    return (long long)json_integer_value(json_object_get(shared, key));
}

static void run_once(kg_node_t *graph, const demo_args *a, unsigned i, demo_totals *t)
{
    json_t *shared = demo_shared_new(a->wf.seed, i);
    kg_result_t res;
    double t0 = kg_clock_mono();
    int rc = kg_run(graph, shared, &res);
    double dt = kg_clock_mono() - t0;
    const char *status = json_string_value(json_object_get(shared, "status"));
    json_t *agg = json_object_get(shared, "aggregates");
    t->runs++;
    t->seconds += dt;
    t->generated += shared_int(shared, "generated");
    t->valid += shared_int(shared, "valid");
    t->invalid += shared_int(shared, "invalid");
    t->processed += (long long)json_integer_value(json_object_get(agg, "count"));
    t->fallback += (long long)json_integer_value(json_object_get(agg, "fallback_records"));
    if (rc < 0)
        t->failed++;
    else if (status && strcmp(status, "success") == 0)
        t->ok++;
    else
        t->handled++;
    char count[32];
    if (a->iterations)
        snprintf(count, sizeof count, "%u/%llu", i + 1, a->iterations);
    else
        snprintf(count, sizeof count, "%u", i + 1);
    if (a->quiet && cli_is_tty(STDERR_FILENO)) {
        fprintf(stderr, "\r  run %s: %u ok, %u handled, %u failed ", count, t->ok, t->handled,
                t->failed);
        fflush(stderr);
    }
    if (!a->quiet) {
        const char *sid = json_string_value(json_object_get(shared, "storage_id"));
        const char *error = json_string_value(json_object_get(shared, "error"));
        printf("[%s] %-7s generated %lld, valid %lld, invalid %lld, %s %s, %.2f ms\n", count,
               rc < 0 ? "FAILED" : status && strcmp(status, "success") == 0 ? "ok" : "handled",
               shared_int(shared, "generated"), shared_int(shared, "valid"),
               shared_int(shared, "invalid"), sid ? "storage" : "error",
               sid ? sid : rc < 0 ? res.error.message : error ? error : "-", dt * 1000);
        fflush(stdout);
    }
    json_decref(shared);
}

static void print_breakdown(json_t *by_name, const char *title)
{
    printf("%s\n", title);
    const char *k;
    json_t *v;
    json_object_foreach(by_name, k, v) printf("  %-22s %lld\n", k, (long long)json_integer_value(v));
}

static void print_backend_report(const demo_args *a, kg_backend_t *mock)
{
    if (mock) {
        json_t *by_name = kg_mock_backend_breakdown(mock);
        print_breakdown(by_name, "Events by name (mock backend):");
        json_decref(by_name);
        return;
    }
    if (strcmp(a->backend, "redis") != 0)
        return;
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.host = a->redis_host;
    o.port = a->redis_port;
    if (a->redis_prefix)
        o.prefix = a->redis_prefix;
    kg_redis_reader_t *r = NULL;
    json_t *counters = NULL;
    kg_error_t err = {0};
    if (kg_redis_reader_new(&o, &r, &err) == 0 && kg_redis_reader_counters(r, &counters, &err) == 0) {
        print_breakdown(counters, "Redis counters (kaygraph:monitoring:metrics:events:*):");
        json_decref(counters);
    } else {
        printf("Redis counters: unavailable (%s)\n", err.message);
    }
    kg_redis_reader_free(r);
}

/* Why the webhook's last request failed ("" when it has not), so that a
 * timeout or a refused redirect reads as such in the summary. */
static void http_failure(kg_backend_t *http, char *buf, size_t size)
{
    buf[0] = '\0';
    if (http && !kg_http_backend_last_error(http, buf, size))
        buf[0] = '\0';
}

static void print_summary(const demo_args *a, const demo_totals *t, const kg_monitor_stats *s,
                          const char *failure)
{
    printf("\n=== Summary ===\n");
    printf("Runs: %u in %.3f s (%u succeeded, %u handled by error_handler, %u failed)\n", t->runs,
           t->seconds, t->ok, t->handled, t->failed);
    printf("Success rate: %.1f%%\n", t->runs ? 100.0 * t->ok / t->runs : 0.0);
    printf("Records: %lld generated, %lld valid, %lld invalid, %lld processed (%lld by fallback)\n",
           t->generated, t->valid, t->invalid, t->processed, t->fallback);
    printf("Dispatcher: backend %s%s %s, circuit %s, queue %zu/%zu, batch buffer %zu,\n"
           "            emitted %llu, sent %llu, dropped %llu, failed batches %llu\n",
           a->backend, a->dashboard ? " + dashboard" : "", s->backend_connected ? "connected" : "NOT connected",
           kg_circuit_state_str(s->circuit), s->queue_size, s->queue_capacity, s->batch_buffer,
           (unsigned long long)s->emitted, (unsigned long long)s->sent,
           (unsigned long long)(s->dropped_full + s->dropped_shutdown),
           (unsigned long long)s->failed_batches);
    if (s->failed_batches && *failure)
        printf("            last failure: %s\n", failure);
}

/* How long the final flush may take: what a healthy backend needs many
 * times over, and for a webhook at least one whole request (its timeout
 * covers the connection too, plus 0.5 s), so that a request that times out
 * has been counted as a failed batch when the statistics are printed, and a
 * slow receiver given a longer --webhook-timeout gets to answer. */
static double flush_bound(const demo_args *a)
{
    if (strcmp(a->backend, "http") != 0)
        return 3;
    kg_http_options o;
    kg_http_options_init(&o);
    double request = (a->webhook_timeout > 0 ? a->webhook_timeout : o.timeout) + 0.5;
    return request > 3 ? request : 3;
}

static int demo_monitor(const demo_args *a, kg_backend_t *backend, kg_monitor_t **mon)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = backend;
    cfg.enable_data_snapshots = a->snapshots;
    cfg.sample_rate = a->sample_rate;
    cfg.shutdown_timeout = 3;
    if (a->dashboard) {
        cfg.flush_interval = 0.05;   /* live view: deliver within 50 ms */
        cfg.metrics_interval = 1;
    }
    if (a->capture_set)
        cfg.capture = a->capture;
    cfg.log_level = a->log_level;
    kg_error_t err = {0};
    if (kg_monitor_new(&cfg, mon, &err) != 0) {
        fprintf(stderr, "kgmon demo: cannot start monitoring: %s\n", err.message);
        return KGMON_FAILED;
    }
    return 0;
}

static int demo_run(const demo_args *a)
{
    kg_error_t err = {0};
    kg_backend_t *backend = demo_backend(a, &err);
    if (!backend)
        return cli_usage_error("demo", "%s backend: %s", a->backend, err.message);
    kg_backend_t *mock = strcmp(a->backend, "mock") == 0 ? backend : NULL;
    kg_backend_t *http = strcmp(a->backend, "http") == 0 ? backend : NULL;
    kg_dashboard_t *dash = NULL;
    if (a->dashboard) {
        int rc = start_dashboard(a, &dash);
        if (rc) {
            kg_backend_free(backend);
            return rc;
        }
        kg_backend_t *both[2] = {backend, kg_dashboard_backend_new(dash)};
        backend = kg_tee_backend_new(both, 2, &err);
        print_dashboard_url(a, dash);
        print_history(a);
    }
    kg_monitor_t *mon = NULL;
    int rc = backend ? demo_monitor(a, backend, &mon) : KGMON_FAILED;
    kg_node_t *graph = rc == 0 ? demo_graph_new(&a->wf) : NULL;
    if (rc == 0 && !graph)
        rc = KGMON_FAILED;
    if (rc) {
        kg_monitor_free(mon);
        kg_dashboard_free(dash);
        return rc;
    }
    kg_monitor_attach(mon, graph);
    printf("Running %s%s workflow%s%s: %s backend, %u records per run%s\n",
           a->iterations ? "" : "the ", a->wf.parallel ? "parallel" : "sequential",
           a->wf.graph != DEMO_GRAPH_PIPELINE ? " --graph " : "",
           a->wf.graph != DEMO_GRAPH_PIPELINE ? demo_graph_name(a->wf.graph) : "", a->backend,
           a->wf.batch_size, a->iterations ? "" : ", until Ctrl-C");
    demo_totals t = {0};
    for (unsigned i = 0; (a->iterations == 0 || i < a->iterations) && !cli_interrupted; i++)
        run_once(graph, a, i, &t);

    if (a->quiet && cli_is_tty(STDERR_FILENO))
        fputc('\n', stderr);
    /* Everything emitted so far is delivered, or it is lost. */
    bool lost = kg_monitor_flush(mon, flush_bound(a)) != 0;
    kg_monitor_stats s;
    kg_monitor_stats_get(mon, &s);
    lost = lost || s.dropped_full > 0;
    char failure[512];
    http_failure(http, failure, sizeof failure);
    print_summary(a, &t, &s, failure);
    print_backend_report(a, mock);
    if (lost)
        fprintf(stderr, "kgmon demo: %llu of %llu monitoring events were not delivered: %s backend %s%s%s\n",
                (unsigned long long)(s.emitted - s.sent), (unsigned long long)s.emitted, a->backend,
                s.backend_connected ? "failed" : "unreachable", *failure ? ": " : "", failure);
    if (dash && !cli_interrupted) {
        print_dashboard_url(a, dash);
        printf("Serving the dashboard; press Ctrl-C to stop.\n");
        fflush(stdout);
        while (!cli_sleep_interruptible(3600)) {
        }
    }
    kg_monitor_free(mon);   /* before the dashboard: the monitor feeds it */
    kg_dashboard_free(dash);
    kg_node_free(graph);
    return t.failed ? KGMON_FAILED : lost ? KGMON_UNDELIVERED : KGMON_OK;
}

int cmd_demo(int argc, char **argv)
{
    demo_args a;
    int rc = demo_parse(&a, argc, argv);
    if (rc == -1) {
        demo_usage(stdout);
        rc = KGMON_OK;
    } else if (rc == 0) {
        cli_catch_signals();
        rc = demo_run(&a);
    }
    free(a.redis_host);
    cli_history_free(&a.hist);
    return rc;
}
