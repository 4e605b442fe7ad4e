/* test_cli_args.c - kgmon's command line: help, unknown commands, and every
 * flag of demo, dashboard, bench and tail accepted when right and rejected
 * when wrong (exit status 2 and a one-line message naming the flag).
 *
 * Each case runs the real binary ($KGMON).  Accepted flags are shown to be
 * parsed by a run that gets past parsing: demo completes, dashboard serves,
 * bench prints, tail reaches its source (or says it cannot: exit 1, not 2). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli_assert.h"
#include "kgmon_run.h"

#define RUN_TIMEOUT 60.0

typedef struct bad_case {
    const char *argv[10];
    const char *needle;   /* the message names this (the flag, or the value) */
} bad_case;

static void check_bad(const bad_case *c)
{
    char *out = NULL, *err = NULL;
    int rc = kgm_run(RUN_TIMEOUT, &out, &err, c->argv);
    bool ok = rc == 2 && strstr(err, c->needle) && strstr(err, "kgmon") && kgm_count(err, "\n") == 1;
    /* Copied so the test leaks nothing when it fails (fail_msg does not return). */
    static char seen[2048];
    snprintf(seen, sizeof seen, "%s", err);
    free(out);
    free(err);
    if (!ok) {
        char cmd[512] = "";
        for (size_t i = 0; c->argv[i]; i++)
            snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " '%s'", c->argv[i]);
        fail_msg("kgmon%s: exit %d (expected 2), stderr should be one line naming \"%s\":\n%s",
                 cmd, rc, c->needle, seen);
    }
}

/* ---- top level ------------------------------------------------------------------------ */

static void test_no_command(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, NULL);
    assert_exit(rc, 2, err);
    assert_contains(err, "usage: kgmon");
    free(out);
    free(err);
}

static void test_unknown_command(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "frobnicate", NULL);
    assert_exit(rc, 2, err);
    assert_contains(err, "unknown command 'frobnicate'");
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void test_top_help_and_version(void **state)
{
    (void)state;
    static const char *const forms[] = {"--help", "-h", "help"};
    for (size_t i = 0; i < 3; i++) {
        char *out, *err;
        int rc = kgm_runl(RUN_TIMEOUT, &out, &err, forms[i], NULL);
        assert_exit(rc, 0, err);
        assert_contains(out, "usage: kgmon <command>");
        static const char *const cmds[] = {"demo", "dashboard", "bench", "tail"};
        for (size_t k = 0; k < 4; k++)
            assert_contains(out, cmds[k]);
        free(out);
        free(err);
    }
    char *out, *err;
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "--version", NULL), 0, err);
    assert_contains(out, "kgmon ");
    free(out);
    free(err);
}

/* `--help` (and -h) on every command: exit 0, usage on stdout, nothing run. */
static void test_command_help(void **state)
{
    (void)state;
    static const char *const cmds[] = {"demo", "dashboard", "bench", "tail"};
    static const char *const flags[] = {"--help", "-h"};
    for (size_t i = 0; i < 4; i++) {
        for (size_t f = 0; f < 2; f++) {
            char *out, *err, want[64];
            int rc = kgm_runl(RUN_TIMEOUT, &out, &err, cmds[i], flags[f], NULL);
            assert_exit(rc, 0, err);
            snprintf(want, sizeof want, "usage: kgmon %s", cmds[i]);
            assert_contains(out, want);
            assert_string_equal(err, "");
            free(out);
            free(err);
        }
    }
}

/* Every flag named in each command's --help is one the tests below exercise. */
static void test_help_lists_flags(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        const char *flags[28];
    } cases[] = {
        {"demo", {"--backend", "--iterations", "--batch-size", "--parallel", "--workers",
                  "--sample-rate", "--no-snapshots", "--capture", "--log-level", "--redis-host",
                  "--redis-port",
                  "--redis-prefix", "--redis-stream", "--webhook-url", "--webhook-timeout",
                  "--webhook-connect-timeout", "--file", "--dashboard", "--bind", "--token",
                  "--node-delay", "--seed", "--quiet"}},
        {"dashboard", {"--port", "--bind", "--redis", "--redis-prefix", "--redis-replay", "--stale-after",
                       "--token", "--allow-origin", "--max-connections", "--max-clients",
                       "--max-clients-per-ip", "--body-timeout", "--ws-idle-timeout",
                       "--max-user-series"}},
        {"bench", {"--only", "--seconds", "--quick"}},
        {"tail", {"--redis", "--redis-prefix", "--url", "--token", "--type", "--name", "--node",
                  "--workflow", "--json", "--no-color", "--count", "--timeout"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, cases[i].cmd, "--help", NULL), 0, err);
        for (size_t k = 0; cases[i].flags[k]; k++)
            assert_contains(out, cases[i].flags[k]);
        free(out);
        free(err);
    }
}

/* ---- demo ---------------------------------------------------------------------------- */

static const bad_case demo_bad[] = {
    {{"demo", "--backend", "kafka", NULL}, "--backend"},
    {{"demo", "--backend", NULL}, "--backend"},
    {{"demo", "--iterations", "-1", NULL}, "--iterations"},
    {{"demo", "--iterations", "2x", NULL}, "--iterations"},
    {{"demo", "--batch-size", "0", NULL}, "--batch-size"},
    {{"demo", "--batch-size", "1000001", NULL}, "--batch-size"},
    {{"demo", "--parallel=yes", NULL}, "--parallel"},
    {{"demo", "--workers", "0", NULL}, "--workers"},
    {{"demo", "--workers", "257", NULL}, "--workers"},
    {{"demo", "--sample-rate", "1.5", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "-0.1", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "half", NULL}, "--sample-rate"},
    {{"demo", "--no-snapshots=1", NULL}, "--no-snapshots"},
    {{"demo", "--capture", "bogus", "--iterations", "1", NULL}, "--capture"},
    {{"demo", "--log-level", "loud", NULL}, "--log-level"},
    {{"demo", "--log-level", NULL}, "--log-level"},
    {{"demo", "--redis-host", NULL}, "--redis-host"},
    {{"demo", "--redis-port", "0", NULL}, "--redis-port"},
    {{"demo", "--redis-port", "65536", NULL}, "--redis-port"},
    {{"demo", "--redis-port", "http", NULL}, "--redis-port"},
    {{"demo", "--backend", "http", "--webhook-url", "ftp://x", NULL}, "ftp://x"},
    {{"demo", "--redis-prefix", NULL}, "--redis-prefix"},
    {{"demo", "--redis-stream", "0", NULL}, "--redis-stream"},
    {{"demo", "--redis-stream", "100000001", NULL}, "--redis-stream"},
    {{"demo", "--redis-stream", "lots", NULL}, "--redis-stream"},
    {{"demo", "--webhook-url", NULL}, "--webhook-url"},
    {{"demo", "--file", NULL}, "--file"},
    {{"demo", "--dashboard=port", NULL}, "--dashboard"},
    {{"demo", "--dashboard=70000", NULL}, "--dashboard"},
    {{"demo", "--bind", NULL}, "--bind"},
    {{"demo", "--token", NULL}, "--token"},
    {{"demo", "--node-delay", "-5", NULL}, "--node-delay"},
    {{"demo", "--node-delay", "60001", NULL}, "--node-delay"},
    {{"demo", "--seed", "-1", NULL}, "--seed"},
    {{"demo", "--seed", "0x10", NULL}, "--seed"},
    {{"demo", "--quiet=1", NULL}, "--quiet"},
    {{"demo", "--bogus", NULL}, "--bogus"},
    {{"demo", "stray", NULL}, "stray"},
    /* Lists with empty words (they used to capture nothing, silently). */
    {{"demo", "--capture", ",,,", NULL}, ",,,"},
    {{"demo", "--capture", "lifecycle,", NULL}, "--capture"},
    {{"demo", "--capture", " , error", NULL}, "--capture"},
    /* Numbers that are not written as numbers are (" 1" used to pass). */
    {{"demo", "--iterations", " 1", NULL}, "' 1'"},
    {{"demo", "--iterations", "1 ", NULL}, "--iterations"},
    {{"demo", "--iterations", "01", NULL}, "--iterations"},
    {{"demo", "--iterations", "+1", NULL}, "--iterations"},
    {{"demo", "--iterations", "1e2", NULL}, "--iterations"},
    {{"demo", "--batch-size", "\t5", NULL}, "--batch-size"},
    {{"demo", "--sample-rate", " 0.5", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "0.5 ", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", ".5", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "5e-1", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "0x1p-1", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "+0.5", NULL}, "--sample-rate"},
    {{"demo", "--sample-rate", "nan", NULL}, "--sample-rate"},
    {{"demo", "--node-delay", "1e3", NULL}, "--node-delay"},
    {{"demo", "--node-delay", "1.", NULL}, "--node-delay"},
    {{"demo", "--seed", "007", NULL}, "--seed"},
    {{"demo", "--redis-port", "06379", NULL}, "--redis-port"},
    {{"demo", "--redis-stream", " 10", NULL}, "--redis-stream"},
    {{"demo", "--dashboard= 8080", NULL}, "--dashboard"},
    /* URLs that cannot work are refused before anything runs. */
    {{"demo", "--backend", "http", "--webhook-url", "http://", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://", NULL}, "'http://'"},
    {{"demo", "--webhook-url", "https://", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http:///ingest", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://host:0/", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://host:port/", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://host:99999/", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://ho st/", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "http://[::1/", NULL}, "--webhook-url"},
    {{"demo", "--webhook-url", "127.0.0.1:8080/api/ingest", NULL}, "--webhook-url"},
    {{"demo", "--webhook-timeout", "0", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-timeout", "-1", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-timeout", "5s", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-timeout", " 5", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-timeout", "3601", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-timeout", NULL}, "--webhook-timeout"},
    {{"demo", "--webhook-connect-timeout", "0.001", NULL}, "--webhook-connect-timeout"},
    {{"demo", "--webhook-connect-timeout", "soon", NULL}, "--webhook-connect-timeout"},
};

static void test_demo_bad_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof demo_bad / sizeof demo_bad[0]; i++)
        check_bad(&demo_bad[i]);
}

/* Each flag on its own, with a value that is right: the run completes.  The
 * flags with a visible effect are checked for it. */
static void demo_ok(const char *flag, const char *value, const char *expect_out)
{
    const char *argv[12] = {"demo", "--iterations", "1", "--batch-size", "4", "--node-delay", "0"};
    size_t n = 7;
    argv[n++] = flag;
    if (value)
        argv[n++] = value;
    argv[n] = NULL;
    char *out, *err;
    int rc = kgm_run(RUN_TIMEOUT, &out, &err, argv);
    if (rc != 0)
        fail_msg("kgmon demo %s %s: exit %d\n%s", flag, value ? value : "", rc, err);
    if (expect_out)
        assert_contains(out, expect_out);
    free(out);
    free(err);
}

static void test_demo_flags_accepted(void **state)
{
    (void)state;
    demo_ok("--backend", "mock", "mock backend");
    demo_ok("--iterations", "2", "Runs: 2 ");
    demo_ok("--batch-size", "7", "generated 7,");
    demo_ok("--parallel", NULL, "parallel workflow");
    demo_ok("--workers", "2", "Runs: 1 ");
    demo_ok("--sample-rate", "0.5", "Runs: 1 ");
    demo_ok("--no-snapshots", NULL, "Runs: 1 ");
    demo_ok("--capture", "lifecycle,error", "node_completed");
    demo_ok("--redis-host", "127.0.0.1", "Runs: 1 ");   /* unused by the mock backend */
    demo_ok("--redis-port", "6390", "Runs: 1 ");
    demo_ok("--redis-prefix", "other:", "Runs: 1 ");
    demo_ok("--redis-stream", "1000", "Runs: 1 ");
    demo_ok("--webhook-url", "http://127.0.0.1:9/ingest", "Runs: 1 ");
    demo_ok("--webhook-url", "https://user:pw@example.test:8443/hook?x=1#f", "Runs: 1 ");
    demo_ok("--webhook-url", "http://[::1]:8080/ingest", "Runs: 1 ");
    demo_ok("--webhook-timeout", "2.5", "Runs: 1 ");
    demo_ok("--webhook-connect-timeout", "1", "Runs: 1 ");
    demo_ok("--capture", "lifecycle, error", "node_completed");
    demo_ok("--sample-rate", "0", "Runs: 1 ");
    demo_ok("--file", "unused.jsonl", "Runs: 1 ");
    demo_ok("--node-delay", "1", "Runs: 1 ");
    demo_ok("--seed", "18446744073709551615", "Runs: 1 ");
    demo_ok("--quiet", NULL, "=== Summary ===");
    demo_ok("--parallel", NULL, "Runs: 1 ");
    /* --dashboard, --bind and --token: test_cli_demo (embedded dashboard). */
}

/* --iterations 0 runs until Ctrl-C, then reports and exits 0. */
static void test_demo_until_interrupted(void **state)
{
    (void)state;
    const char *argv[] = {"demo", "--iterations", "0", "--batch-size", "3", NULL};
    kgm_proc p;
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "until Ctrl-C", 30));
    assert_true(kgm_wait_stdout(&p, "[3] ", 30));   /* three runs and counting */
    kgm_signal(&p, SIGINT);
    assert_true(kgm_wait(&p, 30));
    char *out = kgm_stdout(&p), *err = kgm_stderr(&p);
    assert_exit(p.status, 0, err);
    assert_contains(out, "=== Summary ===");
    assert_contains(out, "Events by name (mock backend):");
    free(out);
    free(err);
    kgm_cleanup(&p);
}

static void test_demo_flag_effects(void **state)
{
    (void)state;
    char *out, *err;
    /* --quiet: no per-iteration lines. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "2", "--quiet", NULL), 0, err);
    assert_not_contains(out, "[1/2]");
    free(out);
    free(err);
    /* --capture lifecycle: only lifecycle events reach the backend. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "1", "--capture",
                         "lifecycle", NULL), 0, err);
    assert_contains(out, "workflow_started");
    assert_not_contains(out, "data_input");
    assert_not_contains(out, "execution_time");
    free(out);
    free(err);
    /* --capture lifecycle includes node_progress (the processor's), not
     * node_log; --log-level warning: only warnings and errors of the nodes'
     * own lines (the validator warns about invalid records). */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "1", "--capture",
                         "lifecycle", NULL), 0, err);
    assert_contains(out, "node_progress");
    assert_not_contains(out, "node_log");
    free(out);
    free(err);
    const char *path = kgm_path("levels.jsonl");
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "2", "--backend", "file",
                         "--file", path, "--log-level", "warning", NULL), 0, err);
    free(out);
    free(err);
    char *text = kgm_read_file(path, NULL);
    assert_non_null(text);
    assert_true(kgm_count(text, "\"event_name\":\"node_log\"") >= 1);
    assert_true(kgm_count(text, "\"level\":\"warning\"") >= 1);
    assert_int_equal(kgm_count(text, "\"level\":\"info\""), 0);
    assert_int_equal(kgm_count(text, "\"level\":\"debug\""), 0);
    free(text);
    /* --sample-rate 0: no run is monitored (no lifecycle events at all). */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "3", "--sample-rate", "0",
                         NULL), 0, err);
    assert_not_contains(out, "workflow_started");
    assert_contains(out, "Runs: 3 ");
    free(out);
    free(err);
}

/* ---- dashboard ----------------------------------------------------------------------- */

static const bad_case dashboard_bad[] = {
    {{"dashboard", "--port", "65536", NULL}, "--port"},
    {{"dashboard", "--port", "-1", NULL}, "--port"},
    {{"dashboard", "--port", "http", NULL}, "--port"},
    {{"dashboard", "--port", NULL}, "--port"},
    {{"dashboard", "--bind", NULL}, "--bind"},
    {{"dashboard", "--redis", "", NULL}, "--redis"},
    {{"dashboard", "--redis", "host:0", NULL}, "--redis"},
    {{"dashboard", "--redis", "host:port", NULL}, "--redis"},
    {{"dashboard", "--redis", NULL}, "--redis"},
    {{"dashboard", "--redis-prefix", NULL}, "--redis-prefix"},
    {{"dashboard", "--redis-replay", "1000001", NULL}, "--redis-replay"},
    {{"dashboard", "--max-user-series", "0", NULL}, "--max-user-series"},
    {{"dashboard", "--redis-replay", "-1", NULL}, "--redis-replay"},
    {{"dashboard", "--redis-replay", "many", NULL}, "--redis-replay"},
    {{"dashboard", "--redis-replay", NULL}, "--redis-replay"},
    {{"dashboard", "--stale-after", "0", NULL}, "--stale-after"},
    {{"dashboard", "--stale-after", "soon", NULL}, "--stale-after"},
    {{"dashboard", "--stale-after", "nan", NULL}, "--stale-after"},
    {{"dashboard", "--stale-after", NULL}, "--stale-after"},
    {{"dashboard", "--token", NULL}, "--token"},
    {{"dashboard", "--allow-origin", NULL}, "--allow-origin"},
    {{"dashboard", "--max-connections", "1", NULL}, "--max-connections"},
    {{"dashboard", "--max-connections", "lots", NULL}, "--max-connections"},
    {{"dashboard", "--max-clients", "0", NULL}, "--max-clients"},
    {{"dashboard", "--max-clients", "100", "--max-connections", "100", NULL}, "--max-clients"},
    {{"dashboard", "--max-clients-per-ip", "-1", NULL}, "--max-clients-per-ip"},
    {{"dashboard", "--body-timeout", "0", NULL}, "--body-timeout"},
    {{"dashboard", "--ws-idle-timeout", "0.5", NULL}, "--ws-idle-timeout"},
    {{"dashboard", "--bogus", NULL}, "--bogus"},
    {{"dashboard", "stray", NULL}, "stray"},
    {{"dashboard", "--port", " 8080", NULL}, "--port"},
    {{"dashboard", "--port", "08080", NULL}, "--port"},
    {{"dashboard", "--redis", "h: 6379", NULL}, "--redis"},
    {{"dashboard", "--redis", "h:06379", NULL}, "--redis"},
    {{"dashboard", "--redis-replay", "+5", NULL}, "--redis-replay"},
    {{"dashboard", "--stale-after", "1e3", NULL}, "--stale-after"},
    {{"dashboard", "--stale-after", "inf", NULL}, "--stale-after"},
    {{"dashboard", "--allow-origin", ",,,", NULL}, "--allow-origin"},
    {{"dashboard", "--allow-origin", "http://a.test,", NULL}, "--allow-origin"},
    {{"dashboard", "--allow-origin", "http://a.test/path", NULL}, "--allow-origin"},
    {{"dashboard", "--allow-origin", "ftp://a.test", NULL}, "--allow-origin"},
    {{"dashboard", "--allow-origin", "a.test", NULL}, "--allow-origin"},
};

static void test_dashboard_bad_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dashboard_bad / sizeof dashboard_bad[0]; i++)
        check_bad(&dashboard_bad[i]);
}

/* All flags at once with right values: it serves (its URL is printed and
 * /healthz is not needed here), and SIGINT ends it with status 0. */
static void test_dashboard_flags_accepted(void **state)
{
    (void)state;
    char redis[32];
    int hold;
    snprintf(redis, sizeof redis, "127.0.0.1:%d", kg_test_refused_port(&hold));
    const char *argv[] = {"dashboard", "--port", "0", "--bind", "127.0.0.1", "--redis", redis,
                          "--redis-prefix", "test:prefix:", "--redis-replay", "0",
                          "--stale-after", "2.5", "--token", "s3cret",
                          "--allow-origin", "http://example.test:1234", "--max-connections", "200",
                          "--max-clients", "20", "--max-clients-per-ip", "0", "--body-timeout", "5",
                          "--ws-idle-timeout", "90", NULL};
    kgm_proc p;
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "Press Ctrl-C to stop.", 30));
    char *out = kgm_stdout(&p);
    assert_contains(out, "?token=s3cret");
    assert_contains(out, "Subscribed to Redis at 127.0.0.1:");
    assert_true(kgm_dashboard_port(out) > 0);
    free(out);
    kgm_signal(&p, SIGINT);
    bool exited = kgm_wait(&p, 30);
    char *err = kgm_stderr(&p);
    if (!exited)
        fail_msg("kgmon dashboard did not exit within 30 s of SIGINT; its stderr:\n%s", err);
    assert_exit(p.status, 0, err);
    assert_contains(err, "shutting down");
    free(err);
    kgm_cleanup(&p);
    close(hold);
}

/* ---- bench --------------------------------------------------------------------------- */

static const bad_case bench_bad[] = {
    {{"bench", "--only", "everything", NULL}, "--only"},
    {{"bench", "--only", NULL}, "--only"},
    {{"bench", "--seconds", "0", NULL}, "--seconds"},
    {{"bench", "--seconds", "601", NULL}, "--seconds"},
    {{"bench", "--seconds", "soon", NULL}, "--seconds"},
    {{"bench", "--quick=1", NULL}, "--quick"},
    {{"bench", "--bogus", NULL}, "--bogus"},
    {{"bench", "stray", NULL}, "stray"},
    {{"bench", "--seconds", " 1", NULL}, "--seconds"},
    {{"bench", "--seconds", "1e0", NULL}, "--seconds"},
};

static void test_bench_bad_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bench_bad / sizeof bench_bad[0]; i++)
        check_bad(&bench_bad[i]);
}

static void test_bench_flags_accepted(void **state)
{
    (void)state;
    static const char *const only[] = {"engine", "monitor", "throughput", "memory"};
    for (size_t i = 0; i < 4; i++) {
        char *out, *err, key[32];
        int rc = kgm_runl(120, &out, &err, "bench", "--quick", "--seconds", "0.1", "--only",
                          only[i], NULL);
        assert_exit(rc, 0, err);
        snprintf(key, sizeof key, "\"%s\"", only[i]);
        assert_contains(out, key);
        for (size_t k = 0; k < 4; k++)
            if (k != i) {
                snprintf(key, sizeof key, "\"%s\":", only[k]);
                assert_not_contains(out, key);
            }
        free(out);
        free(err);
    }
}

/* `bench --quick --only engine`: one JSON document with the engine figures. */
static void test_bench_engine_json(void **state)
{
    (void)state;
    char *out, *err;
    assert_exit(kgm_runl(120, &out, &err, "bench", "--quick", "--only", "engine", NULL), 0, err);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    if (!doc)
        fail_msg("bench output is not JSON (%s):\n%s", je.text, out);
    assert_int_equal(json_object_size(doc), 1);
    json_t *engine = json_object_get(doc, "engine");
    assert_string_equal(json_string_value(json_object_get(engine, "benchmark")), "engine_overhead");
    json_t *results = json_object_get(engine, "results");
    assert_true(json_array_size(results) > 0);
    static const char *const keys[] = {"work_us", "ns_per_node_execution", "engine_overhead_ns",
                                       "runs"};
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        for (size_t k = 0; k < 4; k++)
            if (!json_is_number(json_object_get(r, keys[k])))
                fail_msg("results[%zu] has no number \"%s\"", i, keys[k]);
        assert_true(json_integer_value(json_object_get(r, "runs")) > 0);
    }
    json_decref(doc);
    free(out);
    free(err);
}

/* ---- tail ---------------------------------------------------------------------------- */

static const bad_case tail_bad[] = {
    {{"tail", NULL}, "--redis"},                                    /* no source */
    {{"tail", "--redis", "h", "--url", "http://h:1", NULL}, "--url"},
    {{"tail", "--redis", "", NULL}, "--redis"},
    {{"tail", "--redis", "h:0", NULL}, "--redis"},
    {{"tail", "--redis", "h:99999", NULL}, "--redis"},
    {{"tail", "--redis", NULL}, "--redis"},
    {{"tail", "--redis-prefix", "p:", "--url", "http://h:1", NULL}, "--redis-prefix"},
    {{"tail", "--redis", "h", "--redis-prefix", "", NULL}, "--redis-prefix"},
    {{"tail", "--url", "ftp://h", NULL}, "--url"},
    {{"tail", "--url", "https://h", NULL}, "TLS"},
    {{"tail", "--url", "http://", NULL}, "--url"},
    {{"tail", "--url", "http://h:0", NULL}, "--url"},
    {{"tail", "--url", "http://h:x", NULL}, "--url"},
    {{"tail", "--url", "http://[::1", NULL}, "--url"},
    {{"tail", "--url", NULL}, "--url"},
    {{"tail", "--token", "t", "--redis", "h", NULL}, "--token"},
    {{"tail", "--url", "http://h:1", "--token", "", NULL}, "--token"},
    {{"tail", "--redis", "h", "--type", "warning", NULL}, "--type"},
    {{"tail", "--redis", "h", "--type", "error,", NULL}, "--type"},
    {{"tail", "--redis", "h", "--type", "", NULL}, "--type"},
    {{"tail", "--redis", "h", "--name", "", NULL}, "--name"},
    {{"tail", "--redis", "h", "--name", "a,,b", NULL}, "--name"},
    {{"tail", "--redis", "h", "--node", "", NULL}, "--node"},
    {{"tail", "--redis", "h", "--workflow", "", NULL}, "--workflow"},
    {{"tail", "--redis", "h", "--json=1", NULL}, "--json"},
    {{"tail", "--redis", "h", "--no-color=1", NULL}, "--no-color"},
    {{"tail", "--redis", "h", "--count", "0", NULL}, "--count"},
    {{"tail", "--redis", "h", "--count", "-3", NULL}, "--count"},
    {{"tail", "--redis", "h", "--count", "many", NULL}, "--count"},
    {{"tail", "--redis", "h", "--timeout", "0", NULL}, "--timeout"},
    {{"tail", "--redis", "h", "--timeout", "-1", NULL}, "--timeout"},
    {{"tail", "--redis", "h", "--timeout", "later", NULL}, "--timeout"},
    {{"tail", "--redis", "h", "--bogus", NULL}, "--bogus"},
    {{"tail", "--redis", "h", "stray", NULL}, "stray"},
    {{"tail", "--redis", "h: 6379", NULL}, "--redis"},
    {{"tail", "--redis", "h:+1", NULL}, "--redis"},
    {{"tail", "--redis", "h", "--count", " 3", NULL}, "--count"},
    {{"tail", "--redis", "h", "--count", "03", NULL}, "--count"},
    {{"tail", "--redis", "h", "--timeout", "1e1", NULL}, "--timeout"},
    {{"tail", "--redis", "h", "--type", ",,,", NULL}, "--type"},
    {{"tail", "--redis", "h", "--type", "error, ,metric", NULL}, "--type"},
    {{"tail", "--redis", "h", "--name", ",,,", NULL}, "--name"},
    {{"tail", "--redis", "h", "--name", "node_failed, ", NULL}, "--name"},
    {{"tail", "--url", "http:///x", NULL}, "--url"},
    {{"tail", "--url", "http://h:80x", NULL}, "--url"},
    {{"tail", "--url", "http://h: 80", NULL}, "--url"},
    {{"tail", "--url", "http://h:080", NULL}, "--url"},
    {{"tail", "--url", "http://u@h:80", NULL}, "--url"},
};

static void test_tail_bad_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tail_bad / sizeof tail_bad[0]; i++)
        check_bad(&tail_bad[i]);
    /* --node given more than 16 times. */
    const char *argv[40] = {"tail", "--redis", "h"};
    size_t n = 3;
    for (int i = 0; i < 17; i++) {
        argv[n++] = "--node";
        argv[n++] = "x";
    }
    argv[n] = NULL;
    char *out, *err;
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, argv), 2, err);
    assert_contains(err, "--node given more than 16 times");
    free(out);
    free(err);
}

/* Every tail flag with a right value gets past parsing: against a closed
 * port the command says the source is unreachable (exit 1), never 2. */
static void test_tail_flags_accepted(void **state)
{
    (void)state;
    char hp[32], url[64];
    int port = kg_test_free_port();
    snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?token=abc", port);
    const char *redis[] = {"tail", "--redis", hp, "--redis-prefix", "p:", "--type", "error",
                           "--type", "lifecycle,metric", "--name", "node_failed,node_started",
                           "--node", "validator", "--workflow", "abc", "--json", "--no-color",
                           "--count", "3", "--timeout", "5", NULL};
    char *out, *err;
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, redis), 1, err);
    assert_contains(err, "cannot reach Redis at 127.0.0.1:");
    assert_int_equal(kgm_count(err, "\n"), 1);
    free(out);
    free(err);
    const char *ws[] = {"tail", "--url", url, "--token", "t", "--type", "data", "--count", "1",
                        NULL};
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, ws), 1, err);
    assert_contains(err, "cannot reach the dashboard at http://127.0.0.1:");
    assert_int_equal(kgm_count(err, "\n"), 1);
    free(out);
    free(err);
    /* A host name, a path and an IPv6 literal are accepted forms too. */
    char u2[64], u3[64];
    snprintf(u2, sizeof u2, "http://localhost:%d/base/", port);
    snprintf(u3, sizeof u3, "ws://[::1]:%d", port);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", u2, NULL), 1, err);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", u3, NULL), 1, err);
    free(out);
    free(err);
}

/* Wrong values that are only found out when the server starts: --bind to
 * an address this host does not have fails at once (it used to "serve"
 * nothing until Ctrl-C), and an empty --token is a usage error. */
static void test_bad_bind_and_empty_values(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(30, &out, &err, "dashboard", "--port", "0", "--bind", "192.0.2.1", NULL);
    assert_exit(rc, 1, err);
    assert_contains(err, "192.0.2.1");
    free(out);
    free(err);
    rc = kgm_runl(30, &out, &err, "demo", "--dashboard=0", "--bind", "192.0.2.1", "--iterations",
                  "1", NULL);
    assert_exit(rc, 1, err);
    free(out);
    free(err);
    rc = kgm_runl(30, &out, &err, "dashboard", "--port", "0", "--token=", NULL);
    assert_exit(rc, 2, err);
    assert_contains(err, "--token");
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_command),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_top_help_and_version),
        cmocka_unit_test(test_command_help),
        cmocka_unit_test(test_help_lists_flags),
        cmocka_unit_test(test_demo_bad_flags),
        cmocka_unit_test(test_demo_flags_accepted),
        cmocka_unit_test(test_demo_flag_effects),
        cmocka_unit_test(test_demo_until_interrupted),
        cmocka_unit_test(test_dashboard_bad_flags),
        cmocka_unit_test(test_dashboard_flags_accepted),
        cmocka_unit_test(test_bench_bad_flags),
        cmocka_unit_test(test_bench_flags_accepted),
        cmocka_unit_test(test_bench_engine_json),
        cmocka_unit_test(test_tail_bad_flags),
        cmocka_unit_test(test_tail_flags_accepted),
        cmocka_unit_test(test_bad_bind_and_empty_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
