/* test_store.c - the run history on real SQLite files (store.c, store_sqlite.c).
 *
 * Restart with the same database keeps every run, its summary and node
 * executions; replays and twins are stored once (dedup by event_id); the
 * summaries do not depend on arrival order; retention by age and by size
 * removes what it should and nothing else; a newer schema or a file that is
 * not a database is reported while the live view goes on; a locked file
 * pushes back (503 + Retry-After) and then reports itself failing, and
 * loses nothing it acknowledged; events that do not fit while the store is
 * failing are counted.  Disk full and kill -9 are in test_store_faults.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store.h"
#include "store_testutil.h"
#include "testutil.h"
#include "wsclient.h"

static char g_dir[64];
static char g_db[128];

static int setup(void **state)
{
    (void)state;
    kg_tmpdir(g_dir, sizeof g_dir);
    snprintf(g_db, sizeof g_db, "%s/history.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kg_trmdir(g_dir);
    return 0;
}

static json_t *run_page(int port, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/api/runs/%s", id);
    return kg_tget(port, path, 200, NULL);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* ---- restart ------------------------------------------------------------------------------ */

static void test_restart_keeps_runs(void **state)
{
    (void)state;
    int64_t t0 = kg_tnow_ms() - 60000;
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    char ids[12][32];
    size_t events = 0;
    for (int i = 0; i < 12; i++) {
        snprintf(ids[i], sizeof ids[i], "run-%02d", i);
        kg_trun r = {.run_id = ids[i], .start_ms = t0 + i * 1000, .fail = i % 4 == 1,
                     .running = i == 11, .retries = i == 2 ? 2 : 0};
        size_t n;
        char **ev = kg_trun_events(&r, &n);
        kg_tevents_free(ev, n);
        events += n;
        kg_tdash_run(d, &r, 7);
    }
    kg_tdash_sync(d);
    kg_dashboard_free(d);
    assert_true(kg_tsql_ok(g_db));
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events"), (long long)events);

    /* A new process, the same file: every run, newest first. */
    d = kg_tdash(g_db, NULL);
    int port = kg_dashboard_port(d);
    json_t *list = kg_tget(port, "/api/runs?limit=500", 200, NULL);
    json_t *runs = json_object_get(list, "runs");
    assert_int_equal(json_array_size(runs), 12);
    for (int i = 0; i < 12; i++) {
        json_t *r = json_array_get(runs, (size_t)(11 - i));
        assert_string_equal(jstr(r, "run_id"), ids[i]);
        assert_string_equal(jstr(r, "graph"), "pipeline");
        assert_string_equal(jstr(r, "status"),
                            i == 11 ? "running" : i % 4 == 1 ? "failed" : "success");
        assert_int_equal(jint(json_object_get(r, "source"), "pid"), 4242);
        assert_int_equal(jint(r, "started_ms"), t0 + i * 1000);
    }
    assert_true(json_is_null(json_object_get(list, "next_cursor")));
    json_decref(list);

    /* The run page: summary, topology, node executions with retries, errors. */
    json_t *p = run_page(port, "run-02");
    json_t *run = json_object_get(p, "run");
    assert_int_equal(jint(run, "event_count"), 13);   /* 1 + 3 * 3 + 2 retries + 1 */
    assert_int_equal(jint(run, "error_count"), 2);
    assert_int_equal(jint(run, "node_executions"), 3);
    assert_int_equal(json_array_size(json_object_get(json_object_get(run, "topology"), "nodes")),
                     3);
    json_t *nodes = json_object_get(p, "nodes");
    assert_int_equal(json_array_size(nodes), 3);
    json_t *n0 = json_array_get(nodes, 0);
    assert_string_equal(jstr(n0, "node"), "n0");
    assert_string_equal(jstr(n0, "status"), "completed");
    assert_int_equal(jint(n0, "attempts"), 3);
    assert_string_equal(jstr(n0, "error"), "flaky 1");   /* the last of its errors */
    assert_string_equal(jstr(n0, "action"), "default");
    assert_int_equal(json_array_size(json_object_get(p, "errors")), 2);
    json_decref(p);
    p = run_page(port, "run-05");
    run = json_object_get(p, "run");
    assert_string_equal(jstr(run, "status"), "failed");
    assert_string_equal(jstr(run, "error"), "it broke");
    json_t *last = json_array_get(json_object_get(p, "nodes"), 2);
    assert_string_equal(jstr(last, "status"), "failed");
    assert_string_equal(jstr(last, "error_type"), "BrokenError");
    json_decref(p);
    json_decref(kg_tget(port, "/api/runs/nope", 404, NULL));
    kg_dashboard_free(d);
}

/* ---- dedup ----------------------------------------------------------------------------------- */

static void test_dedup_replay(void **state)
{
    (void)state;
    kg_trun r = {.run_id = "dup-run", .start_ms = kg_tnow_ms() - 5000, .retries = 1};
    size_t n;
    char **ev = kg_trun_events(&r, &n);
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    kg_tdash_run(d, &r, 5);
    kg_tdash_sync(d);
    kg_dashboard_free(d);

    /* After a restart the live view has forgotten the ids: only the store
     * can tell a replay (Redis stream, webhook retry) from new events.  (A
     * twin in one batch is caught by the live view's own check.) */
    d = kg_tdash(g_db, NULL);
    char *body = kg_tbatch(ev, 0, n);
    assert_int_equal(kg_tingest(d, body), 0);
    free(body);
    char *twins[2] = {ev[3], ev[3]};
    body = kg_tbatch(twins, 0, 2);
    assert_int_equal(kg_tingest(d, body), 0);
    free(body);
    kg_tdash_sync(d);
    int port = kg_dashboard_port(d);
    json_t *h = kg_thistory(port);
    assert_int_equal(jint(h, "written"), 0);
    assert_int_equal(jint(h, "duplicates"), (long long)n);   /* the twin was a live duplicate */
    json_decref(h);
    json_t *p = run_page(port, "dup-run");
    assert_int_equal(jint(json_object_get(p, "run"), "event_count"), (long long)n);
    assert_int_equal(jint(json_array_get(json_object_get(p, "nodes"), 0), "attempts"), 2);
    json_decref(p);
    kg_dashboard_free(d);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events"), (long long)n);
    kg_tevents_free(ev, n);
}

/* ---- order --------------------------------------------------------------------------------------- */

static void test_order_independent(void **state)
{
    (void)state;
    kg_trun r = {.run_id = "ordered", .start_ms = kg_tnow_ms() - 5000, .nodes = 4, .fail = true,
                 .retries = 3};
    size_t n;
    char **ev = kg_trun_events(&r, &n);
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    kg_tdash_run(d, &r, 1000);
    kg_tdash_sync(d);
    json_t *want = run_page(kg_dashboard_port(d), "ordered");
    kg_dashboard_free(d);

    /* The same events, reversed and in batches of 3 split over two
     * processes, into another file. */
    char db2[160];
    snprintf(db2, sizeof db2, "%s/reversed.db", g_dir);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = ev[i];
        ev[i] = ev[n - 1 - i];
        ev[n - 1 - i] = t;
    }
    for (int part = 0; part < 2; part++) {
        d = kg_tdash(db2, NULL);
        size_t from = part ? n / 2 : 0, to = part ? n : n / 2;
        for (size_t i = from; i < to; i += 3) {
            char *body = kg_tbatch(ev, i, to - i < 3 ? to - i : 3);
            assert_int_equal(kg_tingest(d, body), 0);
            free(body);
        }
        kg_tdash_sync(d);
        if (part)
            break;
        kg_dashboard_free(d);
    }
    json_t *got = run_page(kg_dashboard_port(d), "ordered");
    /* last_event_* and everything else must agree. */
    if (!json_equal(want, got)) {
        char *a = json_dumps(want, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("in order:\n%s\nreversed:\n%s", a, b);
    }
    json_decref(want);
    json_decref(got);
    kg_dashboard_free(d);
    kg_tevents_free(ev, n);
}

/* ---- retention -------------------------------------------------------------------------------------- */

static void test_retention_age(void **state)
{
    (void)state;
    int64_t now = kg_tnow_ms(), day = 86400000;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.retain_days = 30;
    kg_dashboard_t *d = kg_tdash(g_db, &o);
    /* old-*: 40 days old; new-*: a day old; long: started 40 days ago but
     * still active yesterday (kept: retention goes by the last event). */
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "old-%d", i);
        kg_trun r = {.run_id = id, .start_ms = now - 40 * day + i};
        kg_tdash_run(d, &r, 100);
        snprintf(id, sizeof id, "new-%d", i);
        kg_trun r2 = {.run_id = id, .start_ms = now - day + i};
        kg_tdash_run(d, &r2, 100);
    }
    kg_trun lr = {.run_id = "long", .start_ms = now - 40 * day, .running = true};
    kg_tdash_run(d, &lr, 100);
    char late[512], ts[40];
    kg_tiso(now - day, ts);
    snprintf(late, sizeof late,
             "{\"event_id\":\"long-late\",\"timestamp\":\"%s\",\"node_id\":\"n0\","
             "\"node_type\":\"T\",\"event_type\":\"lifecycle\",\"event_name\":\"node_progress\","
             "\"data\":{\"done\":1,\"total\":2},\"correlation_id\":\"long-x0\","
             "\"workflow_id\":\"long\",\"seq\":999}",
             ts);
    assert_int_equal(kg_tingest(d, late), 0);
    kg_tdash_sync(d);
    int port = kg_dashboard_port(d);
    /* The first retention step runs a second after start. */
    bool done = KG_WAIT_UNTIL(({
                                  json_t *h = kg_thistory(port);
                                  long long runs = jint(h, "retained_runs");
                                  json_decref(h);
                                  runs >= 5;
                              }),
                              20);
    assert_true(done);
    json_t *h = kg_thistory(port);
    assert_int_equal(jint(h, "retained_runs"), 5);
    assert_int_equal(jint(h, "retained_events"), 5 * 11);
    json_decref(h);
    json_t *list = kg_tget(port, "/api/runs?limit=500", 200, NULL);
    json_t *runs = json_object_get(list, "runs");
    assert_int_equal(json_array_size(runs), 6);
    for (size_t i = 0; i < json_array_size(runs); i++) {
        const char *id = jstr(json_array_get(runs, i), "run_id");
        assert_true(strncmp(id, "new-", 4) == 0 || strcmp(id, "long") == 0);
    }
    json_decref(list);
    json_decref(kg_tget(port, "/api/runs/old-3", 404, NULL));
    kg_dashboard_free(d);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events e WHERE NOT EXISTS "
                                       "(SELECT 1 FROM kg_runs r WHERE r.rid = e.rid)"),
                     0);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_execs x WHERE NOT EXISTS "
                                       "(SELECT 1 FROM kg_runs r WHERE r.rid = x.rid)"),
                     0);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events"), 5 * 11 + 10 + 1);
    assert_true(kg_tsql_ok(g_db));
}

static void test_retention_size(void **state)
{
    (void)state;
    int64_t t0 = kg_tnow_ms() - 3600000;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.retain_mb = 1;
    kg_dashboard_t *d = kg_tdash(g_db, &o);
    /* About 3 MiB: 300 runs of 11 events of ~1 KiB. */
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof id, "sz-%03d", i);
        kg_trun r = {.run_id = id, .start_ms = t0 + i * 1000, .nodes = 3};
        size_t n;
        char **ev = kg_trun_events(&r, &n);
        for (size_t k = 0; k < n; k++) {
            /* pad each event with 700 bytes in data */
            char *pad = malloc(strlen(ev[k]) + 800);
            char *data = strstr(ev[k], "\"data\":{");
            size_t head = (size_t)(data - ev[k]) + 8;
            memcpy(pad, ev[k], head);
            size_t o2 = head + (size_t)sprintf(pad + head, "\"pad\":\"%0700d\",", 0);
            strcpy(pad + o2, ev[k] + head);
            free(ev[k]);
            ev[k] = pad;
        }
        char *body = kg_tbatch(ev, 0, n);
        assert_int_equal(kg_tingest(d, body), 0);
        free(body);
        kg_tevents_free(ev, n);
    }
    kg_tdash_sync(d);
    int port = kg_dashboard_port(d);
    bool under = KG_WAIT_UNTIL(({
                                   json_t *h = kg_thistory(port);
                                   long long b = jint(h, "db_bytes"), r = jint(h, "retained_runs");
                                   json_decref(h);
                                   r > 0 && b <= (1 << 20);
                               }),
                               60);
    json_t *h = kg_thistory(port);
    long long retained = jint(h, "retained_runs"), bytes = jint(h, "db_bytes");
    json_decref(h);
    if (!under)
        fail_msg("still %lld bytes after removing %lld runs", bytes, retained);
    /* What is left is the newest runs, without a gap. */
    json_t *list = kg_tget(port, "/api/runs?limit=500", 200, NULL);
    json_t *runs = json_object_get(list, "runs");
    size_t left = json_array_size(runs);
    assert_int_equal((long long)left + retained, 300);
    assert_true(left > 10);
    for (size_t i = 0; i < left; i++) {
        char id[32];
        snprintf(id, sizeof id, "sz-%03zu", 299 - i);
        assert_string_equal(jstr(json_array_get(runs, i), "run_id"), id);
    }
    json_decref(list);
    kg_dashboard_free(d);
    assert_true(kg_tsql_ok(g_db));
}

/* ---- a bad file -------------------------------------------------------------------------------------- */

static bool history_state(int port, const char *want, char *error, size_t errlen)
{
    json_t *j = kg_tget(port, "/healthz", 200, NULL);
    json_t *h = json_object_get(j, "history");
    bool ok = jstr(h, "state") && strcmp(jstr(h, "state"), want) == 0;
    if (error)
        snprintf(error, errlen, "%s", jstr(h, "error") ? jstr(h, "error") : "");
    json_decref(j);
    return ok;
}

static void live_view_works(kg_dashboard_t *d, const char *id)
{
    int port = kg_dashboard_port(d);
    char *e = kg_tevent(id, "node_started", "lifecycle", "a", "live-run", 1, NULL);
    assert_int_equal(kg_tingest(d, e), 0);
    free(e);
    json_t *ev = kg_tget(port, "/api/events?limit=1", 200, NULL);
    assert_string_equal(jstr(json_array_get(json_object_get(ev, "events"), 0), "event_id"), id);
    json_decref(ev);
}

static void test_bad_files(void **state)
{
    (void)state;
    /* A database from a newer version. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    int port = kg_dashboard_port(d);
    char err[256];
    assert_true(history_state(port, "unavailable", err, sizeof err));
    assert_non_null(strstr(err, "newer"));
    live_view_works(d, "bad-1");
    json_t *j = kg_tget(port, "/api/runs", 503, NULL);
    assert_non_null(strstr(jstr(j, "error"), "history unavailable"));
    json_decref(j);
    kg_dashboard_free(d);

    /* Not a database at all. */
    char junk[160];
    snprintf(junk, sizeof junk, "%s/junk.db", g_dir);
    FILE *f = fopen(junk, "w");
    for (int i = 0; i < 512; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    d = kg_tdash(junk, NULL);
    port = kg_dashboard_port(d);
    assert_true(history_state(port, "unavailable", err, sizeof err));
    assert_non_null(strstr(err, "not a database"));
    live_view_works(d, "bad-2");
    kg_dashboard_free(d);

    /* A directory that does not exist. */
    snprintf(junk, sizeof junk, "%s/no/such/dir/h.db", g_dir);
    d = kg_tdash(junk, NULL);
    assert_true(history_state(kg_dashboard_port(d), "unavailable", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    kg_dashboard_free(d);
}

/* ---- a locked file: backpressure, then failing, then nothing lost --------------------------------- */

static int post_one(int port, int i, kg_thttp_resp *r)
{
    char id[32], wf[32];
    snprintf(id, sizeof id, "lk-%d", i);
    snprintf(wf, sizeof wf, "lock-run-%d", i % 3);
    char *e = kg_tevent(id, "node_started", "lifecycle", "a", wf, (unsigned long long)i, NULL);
    int status = kg_thttp(port, "POST", "/api/ingest", "Content-Type: application/json\r\n", e,
                          strlen(e), r);
    free(e);
    return status;
}

static void test_locked_file(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.history_queue = 16;
    kg_dashboard_t *d = kg_tdash(g_db, &o);
    int port = kg_dashboard_port(d);
    kg_tdash_sync(d);
    sqlite3 *lock;
    assert_int_equal(sqlite3_open(g_db, &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 10000);   /* a retention step may hold the lock a moment */
    assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

    /* The first is accepted; the writer cannot commit it; once it has waited
     * KG__STORE_ADMIT_AGE, ingest pushes back. */
    kg_thttp_resp r;
    assert_int_equal(post_one(port, 0, &r), 200);
    kg_thttp_resp_free(&r);
    int acked = 1, i = 1;
    kg_test_sleep(KG__STORE_ADMIT_AGE + 0.2);
    assert_int_equal(post_one(port, i, &r), 503);
    char v[64];
    assert_true(kg_thttp_header(&r, "retry-after", v, sizeof v));
    assert_string_equal(v, "1");
    assert_non_null(strstr(r.body, "history store is behind"));
    kg_thttp_resp_free(&r);

    /* After the busy retries the store says it is failing, and ingest
     * accepts again (the live view goes on; the queue keeps the events). */
    char err[256];
    assert_true(KG_WAIT_UNTIL(history_state(port, "failing", err, sizeof err), 30));
    assert_non_null(strstr(err, "locked"));
    for (; acked < 10; i++) {
        int st = post_one(port, i, &r);
        kg_thttp_resp_free(&r);
        assert_int_equal(st, 200);
        acked++;
    }
    live_view_works(d, "lk-live");
    acked++;

    /* The lock goes away: every acknowledged event is written. */
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    assert_true(KG_WAIT_UNTIL(history_state(port, "ok", NULL, 0), 30));
    kg_tdash_sync(d);
    json_t *h = kg_thistory(port);
    assert_int_equal(jint(h, "dropped"), 0);
    assert_true(jint(h, "refused") >= 1);
    assert_true(jint(h, "failures") >= 1);
    json_decref(h);
    kg_dashboard_free(d);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events"), acked);
}

static void test_failing_overflow_counted(void **state)
{
    (void)state;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.history_queue = 8;
    kg_dashboard_t *d = kg_tdash(g_db, &o);
    int port = kg_dashboard_port(d);
    kg_tdash_sync(d);
    sqlite3 *lock;
    assert_int_equal(sqlite3_open(g_db, &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 10000);   /* a retention step may hold the lock a moment */
    assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    kg_thttp_resp r;
    assert_int_equal(post_one(port, 0, &r), 200);
    kg_thttp_resp_free(&r);
    assert_true(KG_WAIT_UNTIL(history_state(port, "failing", NULL, 0), 30));
    /* 1 in the writer's hands + 8 queued fit; the other 12 are counted. */
    for (int i = 1; i < 21; i++) {
        assert_int_equal(post_one(port, i, &r), 200);
        kg_thttp_resp_free(&r);
    }
    json_t *h = kg_thistory(port);
    assert_int_equal(jint(h, "dropped"), 12);
    json_decref(h);
    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    assert_true(KG_WAIT_UNTIL(history_state(port, "ok", NULL, 0), 30));
    kg_tdash_sync(d);
    kg_dashboard_free(d);
    assert_int_equal(kg_tsql_int(g_db, "SELECT count(*) FROM kg_events"), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_keeps_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_overflow_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
