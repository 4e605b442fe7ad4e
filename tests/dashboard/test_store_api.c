/* test_store_api.c - the run-history routes over real HTTP (api_runs.c), SQLite.
 *
 * /api/runs: cursor pagination (every run once, newest first), the status,
 * graph, since/until, q (run id prefix) and nested filters, "stale", bad
 * parameters (400); /api/runs/<id>: nested runs' executions and children;
 * /events pagination and ?type=error; /export (JSON Lines, a download);
 * unknown runs (404); /api/graphs and /api/nodes/<graph>/<node>/stats
 * figures; the token; a dashboard with --db none (404, "off"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_testutil.h"
#include "testutil.h"
#include "wsclient.h"

static char g_dir[64];
static char g_db[128];
static kg_dashboard_t *g_d;
static int g_port;
static int64_t g_t0;

#define NRUNS 25

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* 25 top-level runs a minute apart (run-00 oldest): graph alpha for even,
 * beta for odd; every fifth (i % 5 == 3) failed; run-24 still running and
 * idle for 30 minutes (stale after 60 s); run-00 has a nested run whose
 * nodes carry node_path; alpha runs carry node_path too. */
static int group_setup(void **state)
{
    (void)state;
    kg_tmpdir(g_dir, sizeof g_dir);
    snprintf(g_db, sizeof g_db, "%s/history.db", g_dir);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.stale_after = 60;
    g_d = kg_tdash(g_db, &o);
    g_port = kg_dashboard_port(g_d);
    g_t0 = kg_tnow_ms() - 3 * 3600 * 1000;
    for (int i = 0; i < NRUNS; i++) {
        char id[32];
        snprintf(id, sizeof id, "run-%02d", i);
        kg_trun r = {.run_id = id,
                     .graph = i % 2 ? "beta" : "alpha",
                     .start_ms = g_t0 + (int64_t)i * 60000,
                     .fail = i % 5 == 3,
                     .running = i == NRUNS - 1,
                     .retries = i == 4 ? 1 : 0,
                     .node_path = i % 2 ? NULL : "alpha"};
        kg_tdash_run(g_d, &r, 6);
    }
    kg_trun child = {.run_id = "run-00-inner", .graph = "inner", .start_ms = g_t0 + 20,
                     .parent = "run-00", .node_path = "alpha/inner"};
    kg_tdash_run(g_d, &child, 6);
    kg_tdash_sync(g_d);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kg_dashboard_free(g_d);
    kg_trmdir(g_dir);
    return 0;
}

static json_t *get(const char *path, int status)
{
    return kg_tget(g_port, path, status, NULL);
}

/* Run ids of /api/runs?<query>, following every cursor; checks the order. */
static size_t list_all(const char *query, char ids[64][32])
{
    size_t n = 0;
    char path[512], cursor[64] = "";
    long long prev = -1;
    for (int page = 0; page < 64; page++) {
        snprintf(path, sizeof path, "/api/runs?%s%s%s", query, cursor[0] ? "&cursor=" : "",
                 cursor);
        json_t *j = get(path, 200);
        json_t *runs = json_object_get(j, "runs");
        for (size_t i = 0; i < json_array_size(runs); i++) {
            json_t *r = json_array_get(runs, i);
            assert_true(n < 64);
            snprintf(ids[n++], 32, "%s", jstr(r, "run_id"));
            long long ms = jint(r, "started_ms");
            assert_true(prev < 0 || ms <= prev);   /* newest first */
            prev = ms;
        }
        const char *next = jstr(j, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(j);
        if (!cursor[0])
            return n;
    }
    fail_msg("more than 64 pages");
    return n;
}

static bool has(char ids[64][32], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return true;
    return false;
}

static void test_list_pages(void **state)
{
    (void)state;
    char ids[64][32];
    size_t n = list_all("limit=10", ids);
    assert_int_equal(n, NRUNS);
    for (int i = 0; i < NRUNS; i++) {
        char id[32];
        snprintf(id, sizeof id, "run-%02d", NRUNS - 1 - i);
        assert_string_equal(ids[i], id);
    }
    /* Pages of one, too. */
    assert_int_equal(list_all("limit=1", ids), NRUNS);
    json_t *j = get("/api/runs?limit=10", 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 10);
    assert_int_equal(jint(j, "limit"), 10);
    json_decref(j);
    j = get("/api/runs", 200);   /* the default page is 50 */
    assert_int_equal(json_array_size(json_object_get(j, "runs")), NRUNS);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
}

static void test_list_filters(void **state)
{
    (void)state;
    char ids[64][32], q[256], iso[40];
    size_t n = list_all("status=failed", ids);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_true(atoi(ids[i] + 4) % 5 == 3);
    assert_int_equal(list_all("status=failed,success", ids), NRUNS - 1);
    assert_int_equal(list_all("status=stale", ids), 1);
    assert_string_equal(ids[0], "run-24");
    assert_int_equal(list_all("status=running", ids), 0);
    assert_int_equal(list_all("graph=alpha&limit=4", ids), 13);
    assert_int_equal(list_all("graph=beta&status=failed", ids), 3);   /* 3, 13, 23 */
    kg_tiso(g_t0 + 20 * 60000, iso);
    snprintf(q, sizeof q, "since=%s", iso);
    assert_int_equal(list_all(q, ids), 5);
    assert_true(has(ids, 5, "run-20") && !has(ids, 5, "run-19"));
    kg_tiso(g_t0 + 5 * 60000, iso);
    snprintf(q, sizeof q, "until=%s&limit=2", iso);
    assert_int_equal(list_all(q, ids), 5);
    assert_true(has(ids, 5, "run-00") && !has(ids, 5, "run-05"));
    snprintf(q, sizeof q, "since=%lld", (long long)(g_t0 + 10 * 60000) / 1000);   /* Unix s */
    assert_int_equal(list_all(q, ids), 15);
    assert_int_equal(list_all("since=4h", ids), NRUNS);
    assert_int_equal(list_all("since=2h", ids), 0);
    assert_int_equal(list_all("q=run-1", ids), 10);   /* run-10 .. run-19 */
    assert_int_equal(list_all("q=run-00", ids), 1);
    assert_int_equal(list_all("q=zzz", ids), 0);
    n = list_all("nested=1", ids);
    assert_int_equal(n, NRUNS + 1);
    assert_true(has(ids, n, "run-00-inner"));
    assert_int_equal(list_all("status=&graph=", ids), NRUNS);   /* empty = any */

    static const char *const bad[] = {
        "/api/runs?limit=0",        "/api/runs?limit=501",         "/api/runs?limit=abc",
        "/api/runs?status=bogus",   "/api/runs?since=yesterday",   "/api/runs?until=-5",
        "/api/runs?cursor=zzz",     "/api/runs?cursor=12",         "/api/graphs?window=abc",
        "/api/runs/run-00/events?limit=0",  "/api/runs/run-00/events?type=lifecycle",
        "/api/nodes/alpha/n0/stats?buckets=0", "/api/nodes/alpha/n0/stats?since=2h&until=3h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = get(bad[i], 400);
        assert_non_null(jstr(j, "error"));
        json_decref(j);
    }
}

static void test_run_page(void **state)
{
    (void)state;
    json_t *j = get("/api/runs/run-00", 200);
    json_t *run = json_object_get(j, "run");
    assert_string_equal(jstr(run, "graph"), "alpha");
    assert_string_equal(jstr(run, "status"), "success");
    assert_true(json_is_object(json_object_get(run, "topology")));
    /* Its own 3 executions and the nested run's 3, each with its run. */
    json_t *nodes = json_object_get(j, "nodes");
    assert_int_equal(json_array_size(nodes), 6);
    int inner = 0;
    for (size_t i = 0; i < 6; i++) {
        json_t *x = json_array_get(nodes, i);
        if (strcmp(jstr(x, "run_id"), "run-00-inner") == 0) {
            inner++;
            assert_non_null(strstr(jstr(x, "node"), "inner/"));   /* path under alpha */
        }
        assert_true(i == 0 || jint(x, "started_ms") >= jint(json_array_get(nodes, i - 1),
                                                            "started_ms"));
    }
    assert_int_equal(inner, 3);
    json_t *kids = json_object_get(j, "children");
    assert_int_equal(json_array_size(kids), 1);
    assert_string_equal(jstr(json_array_get(kids, 0), "parent_workflow_id"), "run-00");
    assert_string_equal(jstr(json_array_get(kids, 0), "workflow_id"), "run-00-inner");
    json_decref(j);

    j = get("/api/runs/run-03", 200);
    assert_string_equal(jstr(json_object_get(j, "run"), "status"), "failed");
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 1);
    assert_string_equal(jstr(json_array_get(errs, 0), "event_name"), "node_failed");
    json_decref(j);

    j = get("/api/runs/nope", 404);
    assert_non_null(strstr(jstr(j, "error"), "unknown run"));
    json_decref(j);
    json_decref(get("/api/runs/nope/events", 404));
    json_decref(get("/api/runs/nope/export", 404));
    json_decref(get("/api/runs/run%2D00", 200));   /* an encoded id */
}

static void test_events_and_export(void **state)
{
    (void)state;
    /* run-04: 1 + 3 * 3 + 1 retry + 1 = 12 events, read 5 at a time. */
    char path[256], cursor[64] = "";
    long long seqs[64];
    size_t n = 0;
    for (int page = 0; page < 10; page++) {
        snprintf(path, sizeof path, "/api/runs/run-04/events?limit=5%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *j = get(path, 200);
        json_t *ev = json_object_get(j, "events");
        for (size_t i = 0; i < json_array_size(ev); i++)
            seqs[n++] = jint(json_array_get(ev, i), "seq");
        const char *next = jstr(j, "next_cursor");
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(j);
        if (!cursor[0])
            break;
    }
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seqs[i], (long long)i + 1);
    json_t *j = get("/api/runs/run-04/events?type=error", 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 1);
    json_decref(j);

    kg_thttp_resp r;
    assert_int_equal(kg_thttp(g_port, "GET", "/api/runs/run-04/export", NULL, NULL, 0, &r), 200);
    char v[256];
    assert_true(kg_thttp_header(&r, "content-type", v, sizeof v));
    assert_string_equal(v, "application/x-ndjson");
    assert_true(kg_thttp_header(&r, "content-disposition", v, sizeof v));
    assert_string_equal(v, "attachment; filename=\"run-run-04.jsonl\"");
    size_t lines = 0;
    for (char *p = r.body, *nl; (nl = strchr(p, '\n')); p = nl + 1, lines++) {
        json_t *e = json_loadb(p, (size_t)(nl - p), 0, NULL);
        assert_non_null(e);
        assert_string_equal(jstr(e, "workflow_id"), "run-04");
        json_decref(e);
    }
    assert_int_equal(lines, 12);
    kg_thttp_resp_free(&r);
    /* HEAD: the headers only. */
    assert_int_equal(kg_thttp(g_port, "HEAD", "/api/runs/run-04", NULL, NULL, 0, &r), 200);
    kg_thttp_resp_free(&r);
}

static void test_stats(void **state)
{
    (void)state;
    json_t *j = get("/api/graphs", 200);
    json_t *graphs = json_object_get(j, "graphs");
    assert_int_equal(json_array_size(graphs), 2);
    json_t *alpha = json_array_get(graphs, 0), *beta = json_array_get(graphs, 1);
    assert_string_equal(jstr(alpha, "graph"), "alpha");
    assert_int_equal(jint(alpha, "runs"), 13);
    assert_int_equal(jint(alpha, "failed"), 2);   /* 8, 18 */
    assert_int_equal(jint(beta, "failed"), 3);
    assert_int_equal(jint(beta, "running"), 0);
    assert_int_equal(jint(alpha, "running"), 1);   /* run-24 */
    assert_true(fabs(json_real_value(json_object_get(alpha, "success_rate")) - 10.0 / 12.0) <
                1e-6);
    /* Durations (store_events.c: 10 ms per event before workflow_completed):
     * 0.10 s for 3 nodes, failed or not; run-04 with its retry 0.11 s. */
    assert_true(fabs(json_number_value(json_object_get(alpha, "p50_duration")) - 0.10) < 1e-9);
    assert_true(fabs(json_number_value(json_object_get(alpha, "p95_duration")) - 0.11) < 1e-9);
    json_decref(j);
    j = get("/api/graphs?window=1h", 200);
    assert_int_equal(json_array_size(json_object_get(j, "graphs")), 0);
    json_decref(j);

    /* n2 of alpha (node_path alpha/n2): 13 runs, 12 reach it (run-24 still
     * running did too: its nodes all ran); 2 failed. */
    j = get("/api/nodes/alpha/n2/stats?buckets=4&since=4h", 200);
    assert_int_equal(jint(j, "count"), 13);
    assert_int_equal(jint(j, "failed"), 2);
    json_t *b = json_object_get(j, "buckets");
    assert_int_equal(json_array_size(b), 4);
    long long sum = 0;
    for (size_t i = 0; i < 4; i++)
        sum += jint(json_array_get(b, i), "count");
    assert_int_equal(sum, 13);
    assert_true(fabs(json_number_value(json_object_get(j, "p50")) - 0.02) < 1e-9);
    json_decref(j);
    /* beta has no node_path: the node is found by its id under the run's graph. */
    j = get("/api/nodes/beta/n0/stats", 200);
    assert_int_equal(jint(j, "count"), 12);
    json_decref(j);
    /* A nested node by its path under the root graph. */
    j = get("/api/nodes/alpha/inner%2Fn1/stats", 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    j = get("/api/nodes/alpha/inner/n1/stats", 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    j = get("/api/nodes/alpha/nope/stats", 200);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);
    json_decref(get("/api/nodes/alpha/stats", 404));
    json_decref(get("/api/nodes/alpha", 404));
}

static void test_auth_methods_off(void **state)
{
    (void)state;
    kg_thttp_resp r;
    assert_int_equal(kg_thttp(g_port, "POST", "/api/runs", "Content-Type: application/json\r\n",
                              "{}", 2, &r),
                     405);
    kg_thttp_resp_free(&r);

    char dir[64], db[128];
    kg_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/t.db", dir);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = "s3cret";
    kg_dashboard_t *d = kg_tdash(db, &o);
    int port = kg_dashboard_port(d);
    json_decref(kg_tget(port, "/api/runs", 401, NULL));
    json_decref(kg_tget(port, "/api/runs/x", 401, NULL));
    json_decref(kg_tget(port, "/api/graphs", 401, NULL));
    json_decref(kg_tget(port, "/api/nodes/a/b/stats", 401, NULL));
    json_t *j = kg_tget(port, "/api/runs", 200, "Authorization: Bearer s3cret\r\n");
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 0);
    json_decref(j);
    j = kg_tget(port, "/healthz", 200, NULL);   /* no token needed, no details */
    assert_string_equal(jstr(json_object_get(j, "history"), "state"), "ok");
    assert_null(json_object_get(json_object_get(j, "history"), "db"));
    json_decref(j);
    kg_dashboard_free(d);

    d = kg_tdash("none", NULL);
    port = kg_dashboard_port(d);
    j = kg_tget(port, "/api/runs", 404, NULL);
    assert_non_null(strstr(jstr(j, "error"), "history is off"));
    json_decref(j);
    j = kg_tget(port, "/healthz", 200, NULL);
    assert_string_equal(jstr(json_object_get(j, "history"), "state"), "off");
    json_decref(j);
    kg_dashboard_free(d);
    kg_trmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_pages),        cmocka_unit_test(test_list_filters),
        cmocka_unit_test(test_run_page),          cmocka_unit_test(test_events_and_export),
        cmocka_unit_test(test_stats),             cmocka_unit_test(test_auth_methods_off),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
