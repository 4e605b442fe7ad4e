/* test_cli_runs.c - `kgmon runs` and `kgmon run` against a real `kgmon dashboard`,
 * and run history across restarts of `kgmon demo --dashboard`.
 *
 * The dashboard runs with --db in the test's directory; runs are posted
 * over HTTP; the commands print a table (or JSON Lines with --json), one
 * run's summary, node executions and errors, or its events (--events).
 * Then: the demo with its embedded dashboard, stopped (Ctrl-C) and a
 * dashboard started again on the same database, still lists its runs. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli_assert.h"
#include "kgmon_run.h"
#include "store_events.h"
#include "wsclient.h"

#define RUN_TIMEOUT 60.0

typedef struct dash {
    kgm_proc p;
    int port;
    char url[64];
} dash;

static void dash_start(dash *d, const char *db, const char *token)
{
    const char *argv[10] = {"dashboard", "--port", "0", "--db", db};
    if (token) {
        argv[5] = "--token";
        argv[6] = token;
    }
    assert_int_equal(kgm_start(&d->p, false, argv), 0);
    if (!kgm_wait_stdout(&d->p, "Press Ctrl-C to stop.", 30)) {
        char *err = kgm_stderr(&d->p);
        fail_msg("kgmon dashboard did not start:\n%s", err);
    }
    char *out = kgm_stdout(&d->p);
    assert_contains(out, "History: ");
    assert_contains(out, db);
    d->port = kgm_dashboard_port(out);
    free(out);
    assert_true(d->port > 0);
    snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
}

static void dash_stop(dash *d)
{
    kgm_signal(&d->p, SIGINT);
    assert_true(kgm_wait(&d->p, 30));
    char *err = kgm_stderr(&d->p);
    assert_exit(d->p.status, 0, err);
    free(err);
    kgm_cleanup(&d->p);
}

static void post_run(const dash *d, const kg_trun *r, const char *token)
{
    size_t n;
    char **ev = kg_trun_events(r, &n);
    char *body = kg_tbatch(ev, 0, n);
    char headers[256];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s%s%s",
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    kg_thttp_resp resp;
    int st = kg_thttp(d->port, "POST", "/api/ingest", headers, body, strlen(body), &resp);
    if (st != 200)
        fail_msg("POST /api/ingest: %d %s", st, resp.body ? resp.body : "");
    kg_thttp_resp_free(&resp);
    free(body);
    kg_tevents_free(ev, n);
}

/* Poll `kgmon runs` until it lists `want` runs (the writer commits within
 * 200 ms; the test does not rely on that). */
static char *runs_until(const dash *d, size_t want, const char *extra)
{
    double deadline = kg_test_now() + 20;
    for (;;) {
        char *out = NULL, *err = NULL;
        int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d->url, "--json", "--limit",
                          "500", extra, NULL);
        assert_exit(rc, 0, err);
        free(err);
        if (kgm_count(out, "\"run_id\"") == want)
            return out;
        if (kg_test_now() > deadline)
            fail_msg("kgmon runs listed %zu runs, wanted %zu:\n%s", kgm_count(out, "\"run_id\""),
                     want, out);
        free(out);
        kg_test_sleep(0.1);
    }
}

static void test_runs_and_run(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, kgm_path("runs.db"), NULL);
    int64_t t0 = kg_tnow_ms() - 600000;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "cli-run-%d", i);
        kg_trun r = {.run_id = id, .graph = i < 3 ? "etl" : "report", .start_ms = t0 + i * 1000,
                     .fail = i == 1, .retries = i == 2 ? 2 : 0};
        post_run(&d, &r, NULL);
    }
    free(runs_until(&d, 5, NULL));

    char *out = NULL, *err = NULL;
    /* The table, newest first. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, NULL), 0, err);
    assert_contains(out, "STARTED (UTC)");
    assert_contains(out, "cli-run-4");
    assert_true(strstr(out, "cli-run-4") < strstr(out, "cli-run-0"));
    assert_contains(out, "failed");
    free(out);
    free(err);
    /* Filters. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, "--status", "failed",
                         NULL),
                0, err);
    assert_contains(out, "cli-run-1");
    assert_not_contains(out, "cli-run-0");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, "--graph", "report",
                         "--json", NULL),
                0, err);
    assert_int_equal(kgm_count(out, "\n"), 2);
    json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    assert_string_equal(json_string_value(json_object_get(line, "run_id")), "cli-run-4");
    json_decref(line);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, "--since", "1h",
                         "--limit", "2", NULL),
                0, err);
    assert_contains(out, "cli-run-4");
    assert_contains(out, "cli-run-3");
    assert_contains(out, "(more: kgmon runs --cursor ");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, "--graph", "nope",
                         NULL),
                0, err);
    assert_contains(out, "No runs match");
    free(out);
    free(err);

    /* One run: summary, nodes with attempts, errors. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "cli-run-2", "--url", d.url, NULL), 0,
                err);
    assert_contains(out, "Run       cli-run-2");
    assert_contains(out, "Graph     etl");
    assert_contains(out, "Status    success");
    assert_contains(out, "Node executions (3)");
    assert_contains(out, "Errors (2):");
    assert_contains(out, "FlakyError: flaky 1");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "cli-run-1", "--url", d.url, NULL), 0,
                err);
    assert_contains(out, "Status    failed");
    assert_contains(out, "BrokenError: it broke");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "cli-run-1", "--url", d.url, "--json",
                         NULL),
                0, err);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "nodes")), 3);
    json_decref(j);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "cli-run-0", "--url", d.url,
                         "--events", NULL),
                0, err);
    assert_int_equal(kgm_count(out, "\n"), 11);
    assert_int_equal(kgm_count(out, "\"workflow_id\":\"cli-run-0\""), 11);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "no-such-run", "--url", d.url, NULL), 1,
                err);
    assert_contains(err, "unknown run");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "no-such-run", "--url", d.url,
                         "--events", NULL),
                1, err);
    assert_contains(err, "unknown run");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, "--status", "weird",
                         NULL),
                1, err);
    assert_contains(err, "HTTP 400");
    free(out);
    free(err);

    /* The dashboard restarts on the same file: same history. */
    dash_stop(&d);
    dash_start(&d, kgm_path("runs.db"), NULL);
    free(runs_until(&d, 5, NULL));
    dash_stop(&d);
}

static void test_token_and_unreachable(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, kgm_path("tok.db"), "tok-9");
    kg_trun r = {.run_id = "tok-run", .start_ms = kg_tnow_ms() - 1000};
    post_run(&d, &r, "tok-9");
    char *out = NULL, *err = NULL;
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, NULL), 1, err);
    assert_contains(err, "wants a token");
    free(out);
    free(err);
    out = err = NULL;
    char url[128];
    snprintf(url, sizeof url, "%s/?token=tok-9", d.url);
    double deadline = kg_test_now() + 20;
    do {
        free(out);
        free(err);
        assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", url, NULL), 0, err);
    } while (!strstr(out, "tok-run") && kg_test_now() < deadline);
    assert_contains(out, "tok-run");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "tok-run", "--url", d.url, "--token",
                         "tok-9", NULL),
                0, err);
    assert_contains(out, "Run       tok-run");
    free(out);
    free(err);
    dash_stop(&d);

    int fd;
    int port = kg_test_refused_port(&fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", url, NULL), 1, err);
    assert_contains(err, "cannot reach the dashboard");
    free(out);
    free(err);
    close(fd);
}

static void test_usage(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--help", NULL), 0, err);
    assert_contains(out, "usage: kgmon runs");
    assert_contains(out, "--status");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", "--help", NULL), 0, err);
    assert_contains(out, "usage: kgmon run <run-id>");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", NULL), 2, err);
    assert_contains(err, "which run?");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--limit", "0", NULL), 2, err);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", "ftp://x", NULL), 2, err);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "extra", NULL), 2, err);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "dashboard", "--retain-days", "-1", NULL), 2,
                err);
    assert_contains(err, "--retain-days");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "dashboard", "--db", "", NULL), 2, err);
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "dashboard", "--help", NULL), 0, err);
    assert_contains(out, "--retain-mb");
    free(out);
    free(err);
}

/* The "done when": the demo's runs outlive it. */
static void test_demo_history_survives(void **state)
{
    (void)state;
    const char *db = kgm_path("demo.db");
    kgm_proc p;
    const char *argv[] = {"demo", "--dashboard=0", "--iterations", "2", "--node-delay", "0",
                          "--quiet", "--db", db, NULL};
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "Serving the dashboard", 60));
    char *out = kgm_stdout(&p);
    assert_contains(out, "History: ");
    free(out);
    kgm_signal(&p, SIGINT);
    assert_true(kgm_wait(&p, 30));
    char *err = kgm_stderr(&p);
    assert_exit(p.status, 0, err);
    free(err);
    kgm_cleanup(&p);

    dash d;
    dash_start(&d, db, NULL);
    out = runs_until(&d, 2, NULL);
    assert_int_equal(kgm_count(out, "\"graph\":\"data_pipeline\""), 2);
    json_t *first = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    char id[128];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(first, "run_id")));
    json_decref(first);
    free(out);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "run", id, "--url", d.url, NULL), 0, err);
    assert_contains(out, "Graph     data_pipeline");
    assert_contains(out, "data_source");
    assert_contains(out, "storage");
    free(out);
    free(err);
    dash_stop(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_runs_and_run),
        cmocka_unit_test(test_token_and_unreachable),
        cmocka_unit_test(test_demo_history_survives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
