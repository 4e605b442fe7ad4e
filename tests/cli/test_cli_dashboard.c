/* test_cli_dashboard.c - `kgmon dashboard` as a process (ingest, query,
 * SIGINT) and `kgmon tail --url` against it: the recent events of the
 * "initial" message, live events, filters, the token, Ctrl-C, and a
 * dashboard that restarts under a running tail. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#include "cli_assert.h"
#include "kgmon_run.h"
#include "wsclient.h"

#define RUN_TIMEOUT 60.0

typedef struct dash {
    kgm_proc p;
    int port;
    char url[64];
} dash;

/* `kgmon dashboard --port PORT extra...` (`extra` NULL-terminated, or NULL);
 * PORT 0 = any (read back from its output). */
static void dash_start(dash *d, int port, const char *const *extra)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[8] = {"dashboard", "--port", portstr};
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(3 + i < sizeof argv / sizeof argv[0] - 1);
        argv[3 + i] = extra[i];
    }
    assert_int_equal(kgm_start(&d->p, false, argv), 0);
    if (!kgm_wait_stdout(&d->p, "Press Ctrl-C to stop.", 30)) {
        char *err = kgm_stderr(&d->p);
        fail_msg("kgmon dashboard did not start:\n%s", err);
    }
    char *out = kgm_stdout(&d->p);
    d->port = kgm_dashboard_port(out);
    free(out);
    assert_true(d->port > 0);
    if (port)
        assert_int_equal(d->port, port);
    snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
}

static void dash_stop(dash *d)
{
    kgm_signal(&d->p, SIGINT);
    assert_true(kgm_wait(&d->p, 30));
    char *err = kgm_stderr(&d->p);
    assert_exit(d->p.status, 0, err);
    assert_contains(err, "shutting down");
    free(err);
    kgm_cleanup(&d->p);
}

static void ingest(const dash *d, const char *event, const char *token)
{
    char headers[256];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s%s%s",
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    kg_thttp_resp r;
    int status = kg_thttp(d->port, "POST", "/api/ingest", headers, event, strlen(event), &r);
    if (status != 200)
        fail_msg("POST /api/ingest: %d %s", status, r.body ? r.body : "");
    kg_thttp_resp_free(&r);
}

static char *ev(const char *id, const char *name, const char *type, const char *node)
{
    return kg_tevent(id, name, type, node, "wf-0001-abcdef12", 1, "\"next_action\":\"process\"");
}

/* Start a tail on the dashboard and wait until the dashboard has counted it
 * as a client (its "initial" message is then on its way). */
static void tail_start(kgm_proc *t, dash *d, const char *const *extra)
{
    const char *argv[24] = {"tail", "--url", d->url};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char *before = kgm_stderr(&d->p);
    size_t connects = kgm_count(before, " connected (");
    free(before);
    assert_int_equal(kgm_start(t, false, argv), 0);
    char *err = NULL;
    bool ok = KG_WAIT_UNTIL((free(err), err = kgm_stderr(&d->p),
                             kgm_count(err, " connected (") > connects), 30);
    free(err);
    if (!ok) {
        err = kgm_stderr(t);
        fail_msg("kgmon tail did not connect; its stderr:\n%s", err);
    }
}

static char *tail_finish(kgm_proc *t, int expected)
{
    if (!kgm_wait(t, 60))
        fail_msg("kgmon tail did not exit");
    char *err = kgm_stderr(t);
    assert_exit(t->status, expected, err);
    free(err);
    char *out = kgm_stdout(t);
    kgm_cleanup(t);
    return out;
}

static void test_dashboard_ingest_and_query(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, NULL);
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(d.port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
    char *e = ev("ing-1", "node_completed", "lifecycle", "validator");
    ingest(&d, e, NULL);
    assert_int_equal(kg_thttp(d.port, "GET", "/api/events?limit=10", NULL, NULL, 0, &r), 200);
    assert_contains(r.body, "\"ing-1\"");
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(d.port, "GET", "/api/metrics", NULL, NULL, 0, &r), 200);
    json_error_t je;
    json_t *m = json_loads(r.body, 0, &je);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "total_events")), 1);
    json_decref(m);
    kg_thttp_resp_free(&r);
    free(e);
    dash_stop(&d);
}

/* --stale-after: a run that starts and falls silent (its process died) is
 * marked stale after that many seconds instead of staying "running". */
static void test_dashboard_stale_after(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, (const char *const[]){"--stale-after", "0.5", NULL});
    char *started = kg_tevent("st-1", "workflow_started", "lifecycle", "", "wf-silent", 1,
                              "\"graph\":{\"nodes\":[{\"id\":\"n1\",\"type\":\"T\"}],"
                              "\"edges\":[],\"start\":\"n1\"}");
    char *node = kg_tevent("st-2", "node_started", "lifecycle", "n1", "wf-silent", 2, NULL);
    ingest(&d, started, NULL);
    ingest(&d, node, NULL);
    assert_int_equal(kg_thttp_json_int(d.port, "/api/metrics", "workflows", "running"), 1);
    assert_true(KG_WAIT_UNTIL(kg_thttp_json_int(d.port, "/api/metrics", "workflows", "stale") == 1, 10));
    assert_int_equal(kg_thttp_json_int(d.port, "/api/metrics", "workflows", "running"), 0);
    free(started);
    free(node);
    dash_stop(&d);
}

/* The event ingested before the tail started comes in "initial"; the one
 * ingested after, live; each printed exactly as ingested. */
static void test_tail_url_initial_and_live(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, NULL);
    char *e1 = ev("ev-1", "node_started", "lifecycle", "validator");
    char *e2 = ev("ev-2", "node_completed", "lifecycle", "validator");
    ingest(&d, e1, NULL);
    kgm_proc t;
    const char *extra[] = {"--count", "2", NULL};
    tail_start(&t, &d, extra);
    ingest(&d, e2, NULL);
    char *out = tail_finish(&t, 0);
    char want[4096];
    snprintf(want, sizeof want, "%s\n%s\n", e1, e2);
    assert_string_equal(out, want);
    free(out);
    free(e1);
    free(e2);
    dash_stop(&d);
}

static void test_tail_url_filters(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, NULL);
    char *a = ev("f-1", "node_started", "lifecycle", "n1");
    char *b = ev("f-2", "node_failed", "error", "n1");
    char *c = ev("f-3", "node_failed", "error", "n2");
    ingest(&d, a, NULL);
    ingest(&d, b, NULL);
    kgm_proc t;
    const char *extra[] = {"--type", "error", "--node", "n2", "--name", "node_failed",
                           "--workflow", "wf-0001-abcdef12", "--count", "1", NULL};
    tail_start(&t, &d, extra);
    ingest(&d, a, NULL);   /* duplicates are the dashboard's business; none match anyway */
    ingest(&d, c, NULL);
    char *out = tail_finish(&t, 0);
    char want[2048];
    snprintf(want, sizeof want, "%s\n", c);
    assert_string_equal(out, want);
    free(out);
    /* Nothing matches: --timeout ends it with status 1. */
    const char *none[] = {"--node", "absent", "--timeout", "0.5", NULL};
    tail_start(&t, &d, none);
    out = tail_finish(&t, 1);
    assert_string_equal(out, "");
    free(out);
    free(a);
    free(b);
    free(c);
    dash_stop(&d);
}

static void test_tail_url_token(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, (const char *const[]){"--token", "tok-42", NULL});
    char *e = ev("tk-1", "node_started", "lifecycle", "n1");
    ingest(&d, e, "tok-42");
    char *out, *err;
    /* Without the token: refused, exit 1, and the message says why. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", d.url, NULL), 1, err);
    assert_contains(err, "cannot reach the dashboard at");
    assert_contains(err, "--token");
    free(out);
    free(err);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", d.url, "--token", "wrong",
                         "--count", "1", NULL), 1, err);
    assert_contains(err, "wrong --token");
    free(out);
    free(err);
    /* With it, as a flag or in the URL the dashboard prints. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", d.url, "--token", "tok-42",
                         "--count", "1", NULL), 0, err);
    assert_contains(out, "\"tk-1\"");
    free(out);
    free(err);
    char url[128];
    snprintf(url, sizeof url, "%s/?token=tok-42", d.url);
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", url, "--count", "1", NULL), 0, err);
    assert_contains(out, "\"tk-1\"");
    free(out);
    free(err);
    free(e);
    dash_stop(&d);
}

/* $KGMON_TOKEN is the token of every command that takes --token: the
 * dashboard requires it, tail and runs send it, and it never has to be on a
 * command line. */
static void test_token_from_environment(void **state)
{
    (void)state;
    setenv("KGMON_TOKEN", "env-tok-7", 1);
    dash d;
    dash_start(&d, 0, (const char *const[]){"--db", "none", NULL});
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(d.port, "GET", "/api/events", NULL, NULL, 0, &r), 401);
    kg_thttp_resp_free(&r);
    char *e = ev("env-1", "node_started", "lifecycle", "n1");
    ingest(&d, e, "env-tok-7");
    char *out, *err;
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", d.url, "--count", "1", NULL), 0, err);
    assert_contains(out, "\"env-1\"");
    free(out);
    free(err);
    /* --token wins over the environment. */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--url", d.url, "--token", "other",
                         "--count", "1", NULL), 1, err);
    assert_contains(err, "wrong --token");
    free(out);
    free(err);
    /* runs is let in (history is off here, and the answer says that). */
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, NULL), 1, err);
    assert_contains(err, "run history is off");
    free(out);
    free(err);
    unsetenv("KGMON_TOKEN");
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "runs", "--url", d.url, NULL), 1, err);
    assert_contains(err, "wants a token");
    free(out);
    free(err);
    free(e);
    dash_stop(&d);
}

static void test_tail_url_interrupt(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, NULL);
    kgm_proc t;
    tail_start(&t, &d, NULL);
    kgm_signal(&t, SIGINT);
    char *out = tail_finish(&t, 0);
    free(out);
    dash_stop(&d);
}

/* The dashboard goes away and comes back on the same port: the tail says
 * so, reconnects, and prints what arrives after, without repeating. */
static void test_tail_url_reconnects(void **state)
{
    (void)state;
    dash d;
    dash_start(&d, 0, NULL);
    int port = d.port;
    char *e1 = ev("rc-1", "node_started", "lifecycle", "n1");
    char *e2 = ev("rc-2", "node_completed", "lifecycle", "n1");
    ingest(&d, e1, NULL);
    kgm_proc t;
    const char *extra[] = {"--count", "2", NULL};
    tail_start(&t, &d, extra);
    assert_true(kgm_wait_stdout(&t, "\"rc-1\"", 30));
    dash_stop(&d);
    assert_true(kgm_wait_stderr(&t, "lost the dashboard", 30));
    dash_start(&d, port, NULL);
    assert_true(kgm_wait_stderr(&t, "reconnected to the dashboard", 30));
    ingest(&d, e2, NULL);
    char *out = tail_finish(&t, 0);
    char want[4096];
    snprintf(want, sizeof want, "%s\n%s\n", e1, e2);
    assert_string_equal(out, want);
    free(out);
    free(e1);
    free(e2);
    dash_stop(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard_ingest_and_query),
        cmocka_unit_test(test_dashboard_stale_after),
        cmocka_unit_test(test_tail_url_initial_and_live),
        cmocka_unit_test(test_tail_url_filters),
        cmocka_unit_test(test_tail_url_token),
        cmocka_unit_test(test_token_from_environment),
        cmocka_unit_test(test_tail_url_interrupt),
        cmocka_unit_test(test_tail_url_reconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
