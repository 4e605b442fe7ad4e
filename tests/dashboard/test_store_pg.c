/* test_store_pg.c - the run history in a real PostgreSQL (store_pg.c).
 *
 * The test starts its own server (tests/backends/pg_server.c).  A restart
 * of the dashboard keeps every run; two dashboards writing the same events
 * at the same time into one database store each event once and count it
 * once in the summaries; two dashboards subscribed to one Redis do the
 * same with events published there; the database server killed and
 * restarted under a writing dashboard: the store reports it and reconnects,
 * nothing acknowledged is lost; retention by age. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "pg_server.h"
#include "redis_server.h"
#include "store_testutil.h"
#include "testutil.h"
#include "wsclient.h"

static kg_pg_server g_pg;
static int g_dbn;
static char g_uri[256];

static int group_setup(void **state)
{
    (void)state;
    char why[256];
    if (!kg_pg_server_available(why, sizeof why)) {
        fprintf(stderr, "skipping: %s\n", why);
        return 0;
    }
    if (kg_pg_server_start(&g_pg) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kg_pg_server_stop(&g_pg);
    return 0;
}

/* A fresh database per test. */
static int setup(void **state)
{
    (void)state;
    if (!g_pg.pid)
        return 0;
    char name[32];
    snprintf(name, sizeof name, "hist%d", ++g_dbn);
    return kg_pg_server_createdb(&g_pg, name, g_uri, sizeof g_uri);
}

#define NEED_PG()                 \
    do {                          \
        if (!g_pg.pid)            \
            skip();               \
    } while (0)

static long long pg(const char *sql)
{
    return kg_pg_int(g_uri, sql);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void test_pg_restart_keeps_runs(void **state)
{
    (void)state;
    NEED_PG();
    int64_t t0 = kg_tnow_ms() - 600000;
    kg_dashboard_t *d = kg_tdash(g_uri, NULL);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "pg-%d", i);
        kg_trun r = {.run_id = id, .start_ms = t0 + i * 1000, .fail = i == 2, .retries = i == 1};
        kg_tdash_run(d, &r, 4);
    }
    kg_tdash_sync(d);
    kg_dashboard_free(d);
    d = kg_tdash(g_uri, NULL);
    int port = kg_dashboard_port(d);
    json_t *h = kg_thistory(port);
    assert_string_equal(jstr(h, "engine"), "postgres");
    assert_string_equal(jstr(h, "state"), "ok");
    json_decref(h);
    json_t *list = kg_tget(port, "/api/runs?limit=4", 200, NULL);
    json_t *runs = json_object_get(list, "runs");
    assert_int_equal(json_array_size(runs), 4);
    assert_string_equal(jstr(json_array_get(runs, 0), "run_id"), "pg-5");
    char path[128];
    snprintf(path, sizeof path, "/api/runs?limit=4&cursor=%s", jstr(list, "next_cursor"));
    json_t *list2 = kg_tget(port, path, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(list2, "runs")), 2);
    assert_string_equal(jstr(json_array_get(json_object_get(list2, "runs"), 1), "run_id"),
                        "pg-0");
    json_decref(list);
    json_decref(list2);
    json_t *p = kg_tget(port, "/api/runs/pg-1", 200, NULL);
    assert_int_equal(jint(json_object_get(p, "run"), "event_count"), 12);
    assert_int_equal(jint(json_array_get(json_object_get(p, "nodes"), 0), "attempts"), 2);
    json_decref(p);
    p = kg_tget(port, "/api/runs?status=failed", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "runs")), 1);
    json_decref(p);
    p = kg_tget(port, "/api/runs?q=pg-3", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "runs")), 1);
    json_decref(p);
    p = kg_tget(port, "/api/graphs", 200, NULL);
    assert_int_equal(jint(json_array_get(json_object_get(p, "graphs"), 0), "runs"), 6);
    json_decref(p);
    p = kg_tget(port, "/api/nodes/pipeline/n0/stats", 200, NULL);
    assert_int_equal(jint(p, "count"), 6);
    json_decref(p);
    p = kg_tget(port, "/api/runs/pg-1/events?limit=5", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "events")), 5);
    json_decref(p);
    json_decref(kg_tget(port, "/api/runs/none", 404, NULL));
    kg_dashboard_free(d);
    assert_int_equal(pg("SELECT count(*) FROM kg_events"), 6 * 11 + 1);
}

/* ---- two dashboards, one database ----------------------------------------------------------- */

typedef struct feeder {
    kg_dashboard_t *d;
    char **ev;
    size_t n, batch;
    bool reverse;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    for (size_t i = 0; i < f->n; i += f->batch) {
        size_t k = f->n - i < f->batch ? f->n - i : f->batch;
        size_t from = f->reverse ? f->n - i - k : i;
        char *body = kg_tbatch(f->ev, from, k);
        int rc;
        double deadline = kg_test_now() + 30;
        while ((rc = kg_dashboard_ingest(f->d, body, strlen(body), NULL)) == KG_EFULL &&
               kg_test_now() < deadline)
            kg_test_sleep(0.01);
        assert_int_equal(rc, 0);
        free(body);
    }
    return NULL;
}

/* The events of `runs` runs, concatenated. */
static char **many_runs(int runs, const char *prefix, size_t *n)
{
    char **all = NULL;
    *n = 0;
    for (int i = 0; i < runs; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%03d", prefix, i);
        kg_trun r = {.run_id = id, .start_ms = kg_tnow_ms() - 60000 + i, .retries = i % 3,
                     .fail = i % 7 == 0};
        size_t k;
        char **ev = kg_trun_events(&r, &k);
        all = realloc(all, (*n + k) * sizeof *all);
        memcpy(all + *n, ev, k * sizeof *ev);
        *n += k;
        free(ev);
    }
    return all;
}

static void check_summaries(const char *prefix, int runs)
{
    /* Each run's stored count equals its events; nothing twice. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM kg_runs r WHERE r.run_id LIKE '%s-%%' AND r.events <> "
             "(SELECT count(*) FROM kg_events e WHERE e.rid = r.rid)",
             prefix);
    assert_int_equal(pg(sql), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM kg_execs x JOIN kg_runs r ON r.rid = x.rid WHERE r.run_id "
             "LIKE '%s-%%' AND x.events <> (SELECT count(*) FROM kg_events e WHERE e.rid = x.rid "
             "AND e.body LIKE '%%\"correlation_id\":\"' || x.corr || '\"%%')",
             prefix);
    assert_int_equal(pg(sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM kg_runs WHERE run_id LIKE '%s-%%'", prefix);
    assert_int_equal(pg(sql), runs);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM kg_runs WHERE run_id LIKE '%s-%%' AND status = 2", prefix);
    assert_int_equal(pg(sql), (runs + 6) / 7);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(sum(retries), 0) FROM kg_execs x JOIN kg_runs r ON r.rid = x.rid "
             "WHERE r.run_id LIKE '%s-%%'",
             prefix);
    long long want = 0;
    for (int i = 0; i < runs; i++)
        want += i % 3;
    assert_int_equal(pg(sql), want);
}

static void test_pg_two_dashboards_same_events(void **state)
{
    (void)state;
    NEED_PG();
    size_t n;
    char **ev = many_runs(60, "two", &n);
    kg_dashboard_t *a = kg_tdash(g_uri, NULL), *b = kg_tdash(g_uri, NULL);
    /* Same events, one forwards in batches of 50, one backwards in 37. */
    feeder fa = {.d = a, .ev = ev, .n = n, .batch = 50};
    feeder fb = {.d = b, .ev = ev, .n = n, .batch = 37, .reverse = true};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, feed, &fa);
    pthread_create(&tb, NULL, feed, &fb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    kg_tdash_sync(a);
    kg_tdash_sync(b);
    json_t *ha = kg_thistory(kg_dashboard_port(a)), *hb = kg_thistory(kg_dashboard_port(b));
    printf("two dashboards: %lld + %lld written, %lld + %lld duplicates, %lld + %lld failures\n",
           jint(ha, "written"), jint(hb, "written"), jint(ha, "duplicates"), jint(hb, "duplicates"),
           jint(ha, "failures"), jint(hb, "failures"));
    assert_int_equal(jint(ha, "written") + jint(hb, "written"), (long long)n);
    assert_int_equal(jint(ha, "duplicates") + jint(hb, "duplicates"), (long long)n);
    json_decref(ha);
    json_decref(hb);
    assert_int_equal(pg("SELECT count(*) FROM kg_events"), (long long)n);
    check_summaries("two", 60);
    /* Both serve the same history. */
    json_t *ra = kg_tget(kg_dashboard_port(a), "/api/runs/two-005", 200, NULL);
    json_t *rb = kg_tget(kg_dashboard_port(b), "/api/runs/two-005", 200, NULL);
    assert_true(json_equal(ra, rb));
    json_decref(ra);
    json_decref(rb);
    kg_dashboard_free(a);
    kg_dashboard_free(b);
    kg_tevents_free(ev, n);
}

static void test_pg_two_dashboards_one_redis(void **state)
{
    (void)state;
    NEED_PG();
    if (!kg_redis_server_available())
        skip();
    kg_redis_server rs;
    assert_int_equal(kg_redis_server_start(&rs, NULL), 0);
    kg_dashboard_options o1, o2;
    kg_dashboard_options_init(&o1);
    o1.redis_host = "127.0.0.1";
    o1.redis_port = rs.port;
    o2 = o1;
    kg_dashboard_t *a = kg_tdash(g_uri, &o1), *b = kg_tdash(g_uri, &o2);
    assert_true(KG_WAIT_UNTIL(({
                                  kg_dashboard_stats s1, s2;
                                  kg_dashboard_stats_get(a, &s1);
                                  kg_dashboard_stats_get(b, &s2);
                                  s1.redis_connected && s2.redis_connected;
                              }),
                              20));
    size_t n;
    char **ev = many_runs(30, "red", &n);
    redisContext *c = kg_redis_server_client(&rs);
    assert_non_null(c);
    /* Both must be subscribed before the first publish. */
    assert_true(KG_WAIT_UNTIL(({
                                  redisReply *r = kg_redis_cmd(
                                      c, "PUBSUB NUMSUB kaygraph:monitoring:all");
                                  long long subs = r && r->elements == 2
                                                       ? r->element[1]->integer
                                                       : 0;
                                  freeReplyObject(r);
                                  subs == 2;
                              }),
                              20));
    for (size_t i = 0; i < n; i++)
        freeReplyObject(kg_redis_cmd(c, "PUBLISH kaygraph:monitoring:all %s", ev[i]));
    assert_true(KG_WAIT_UNTIL(({
                                  kg_dashboard_stats s1, s2;
                                  kg_dashboard_stats_get(a, &s1);
                                  kg_dashboard_stats_get(b, &s2);
                                  s1.events == n && s2.events == n;
                              }),
                              30));
    kg_tdash_sync(a);
    kg_tdash_sync(b);
    assert_int_equal(pg("SELECT count(*) FROM kg_events"), (long long)n);
    check_summaries("red", 30);
    redisFree(c);
    kg_dashboard_free(a);
    kg_dashboard_free(b);
    kg_redis_server_stop(&rs);
    kg_tevents_free(ev, n);
}

/* ---- the database goes away -------------------------------------------------------------------- */

static const char *state_of(kg_dashboard_t *d)
{
    static char st[32];
    json_t *h = kg_thistory(kg_dashboard_port(d));
    snprintf(st, sizeof st, "%s", jstr(h, "state"));
    json_decref(h);
    return st;
}

static void test_pg_server_restart(void **state)
{
    (void)state;
    NEED_PG();
    size_t n;
    char **ev = many_runs(20, "crash", &n);
    kg_dashboard_t *d = kg_tdash(g_uri, NULL);
    feeder f = {.d = d, .ev = ev, .n = n / 2, .batch = 10};
    feed(&f);
    kg_tdash_sync(d);
    assert_int_equal(kg_pg_server_restart(&g_pg), 0);
    /* The next write finds the connection gone: failing, then reconnected. */
    feeder f2 = {.d = d, .ev = ev + n / 2, .n = n - n / 2, .batch = 10};
    feed(&f2);
    assert_true(KG_WAIT_UNTIL(strcmp(state_of(d), "ok") == 0, 30));
    kg_tdash_sync(d);
    json_t *h = kg_thistory(kg_dashboard_port(d));
    printf("postgres restart: %lld failures, %lld dropped\n", jint(h, "failures"),
           jint(h, "dropped"));
    assert_true(jint(h, "failures") >= 1);
    assert_int_equal(jint(h, "dropped"), 0);
    json_decref(h);
    /* Queries reconnect too. */
    json_t *p = kg_tget(kg_dashboard_port(d), "/api/runs/crash-019", 200, NULL);
    json_decref(p);
    kg_dashboard_free(d);
    assert_int_equal(pg("SELECT count(*) FROM kg_events"), (long long)n);
    check_summaries("crash", 20);
    kg_tevents_free(ev, n);
}

static void test_pg_retention(void **state)
{
    (void)state;
    NEED_PG();
    int64_t now = kg_tnow_ms(), day = 86400000;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.retain_days = 7;
    kg_dashboard_t *d = kg_tdash(g_uri, &o);
    kg_trun old = {.run_id = "ret-old", .start_ms = now - 10 * day};
    kg_trun young = {.run_id = "ret-new", .start_ms = now - day};
    kg_tdash_run(d, &old, 100);
    kg_tdash_run(d, &young, 100);
    kg_tdash_sync(d);
    assert_true(KG_WAIT_UNTIL(pg("SELECT count(*) FROM kg_runs") == 1, 30));
    assert_int_equal(pg("SELECT count(*) FROM kg_runs WHERE run_id = 'ret-new'"), 1);
    assert_int_equal(pg("SELECT count(*) FROM kg_events"), 11);
    assert_int_equal(pg("SELECT count(*) FROM kg_execs"), 3);
    kg_dashboard_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pg_restart_keeps_runs, setup),
        cmocka_unit_test_setup(test_pg_two_dashboards_same_events, setup),
        cmocka_unit_test_setup(test_pg_two_dashboards_one_redis, setup),
        cmocka_unit_test_setup(test_pg_server_restart, setup),
        cmocka_unit_test_setup(test_pg_retention, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
