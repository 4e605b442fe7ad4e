/* test_store_redis.c - run history with a Redis source, across a dashboard restart.
 *
 * Producers publish each event and append it to the Redis stream (what the
 * Redis backend does with stream_maxlen).  A dashboard stores ten runs and
 * stops; five more runs are produced while it is down (Pub/Sub drops them,
 * the stream keeps them); a new dashboard on the same database replays the
 * stream: the five runs are added, the ten it already had are recognised
 * by event_id, and no summary counts anything twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sqlite3.h>

#include "redis_server.h"
#include "store_testutil.h"
#include "testutil.h"
#include "wsclient.h"

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static size_t produce(redisContext *c, int from, int to, int64_t t0)
{
    size_t total = 0;
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof id, "red-%02d", i);
        kg_trun r = {.run_id = id, .start_ms = t0 + i * 1000, .retries = i % 2};
        size_t n;
        char **ev = kg_trun_events(&r, &n);
        for (size_t k = 0; k < n; k++) {
            freeReplyObject(kg_redis_cmd(c, "XADD kaygraph:monitoring:stream * event %s", ev[k]));
            freeReplyObject(kg_redis_cmd(c, "PUBLISH kaygraph:monitoring:all %s", ev[k]));
        }
        total += n;
        kg_tevents_free(ev, n);
    }
    return total;
}

/* A dashboard on `db` subscribed to Redis, once its first replay is done. */
static kg_dashboard_t *dash_with(const char *db, kg_dashboard_options *o)
{
    kg_dashboard_t *d = kg_tdash(db, o);
    assert_true(KG_WAIT_UNTIL(({
                                  kg_dashboard_stats s;
                                  kg_dashboard_stats_get(d, &s);
                                  s.redis_connected && s.redis_replays > 0;
                              }),
                              30));
    return d;
}

static kg_dashboard_t *dash(const char *db, int redis_port)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.redis_host = "127.0.0.1";
    o.redis_port = redis_port;
    return dash_with(db, &o);
}

static void test_restart_with_redis(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server rs;
    assert_int_equal(kg_redis_server_start(&rs, NULL), 0);
    redisContext *c = kg_redis_server_client(&rs);
    char dir[64], db[128];
    kg_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/h.db", dir);
    int64_t t0 = kg_tnow_ms() - 600000;

    kg_dashboard_t *d = dash(db, rs.port);
    size_t first = produce(c, 0, 10, t0);
    assert_true(KG_WAIT_UNTIL(({
                                  kg_dashboard_stats s;
                                  kg_dashboard_stats_get(d, &s);
                                  s.events == first;
                              }),
                              30));
    kg_tdash_sync(d);
    kg_dashboard_free(d);

    size_t second = produce(c, 10, 15, t0);   /* nobody subscribed */
    d = dash(db, rs.port);
    kg_tdash_sync(d);
    int port = kg_dashboard_port(d);
    json_t *h = kg_thistory(port);
    printf("after restart: %lld written, %lld duplicates (replay of %zu + %zu)\n",
           jint(h, "written"), jint(h, "duplicates"), first, second);
    assert_int_equal(jint(h, "written"), (long long)second);
    assert_int_equal(jint(h, "duplicates"), (long long)first);
    json_decref(h);
    json_t *list = kg_tget(port, "/api/runs?limit=100", 200, NULL);
    json_t *runs = json_object_get(list, "runs");
    assert_int_equal(json_array_size(runs), 15);
    for (size_t i = 0; i < 15; i++) {
        json_t *r = json_array_get(runs, i);
        int k = 14 - (int)i;
        assert_int_equal(jint(r, "event_count"), 11 + k % 2);
        assert_string_equal(json_string_value(json_object_get(r, "status")), "success");
    }
    json_decref(list);
    kg_dashboard_free(d);
    assert_int_equal(kg_tsql_int(db, "SELECT count(*) FROM kg_events"), (long long)(first + second));
    assert_int_equal(kg_tsql_int(db, "SELECT sum(retries) FROM kg_execs"), 7);
    redisFree(c);
    kg_redis_server_stop(&rs);
    kg_trmdir(dir);
}

/* A history that cannot write (its file locked by another program) must not
 * hold back the Pub/Sub feed: Redis disconnects a subscriber that falls
 * behind, and everything published until it resubscribes would be lost to
 * the live view too.  Every event reaches the live view at once, none is
 * refused; the history keeps what its queue holds and counts the rest. */
static void test_stuck_history_does_not_hold_pubsub(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server rs;
    assert_int_equal(kg_redis_server_start(&rs, NULL), 0);
    redisContext *c = kg_redis_server_client(&rs);
    char dir[64], db[128];
    kg_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/h.db", dir);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.redis_host = "127.0.0.1";
    o.redis_port = rs.port;
    o.history_queue = 8;
    kg_dashboard_t *d = dash_with(db, &o);
    int port = kg_dashboard_port(d);

    sqlite3 *lock;
    assert_int_equal(sqlite3_open(db, &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 10000);
    assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    size_t n = produce(c, 0, 5, kg_tnow_ms() - 60000);   /* 57 events */
    assert_true(KG_WAIT_UNTIL(({
                                  kg_dashboard_stats s;
                                  kg_dashboard_stats_get(d, &s);
                                  s.events == n;
                              }),
                              30));
    json_t *h = kg_thistory(port);
    assert_int_equal(jint(h, "refused"), 0);
    json_decref(h);

    sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(lock);
    kg_tdash_sync(d);
    h = kg_thistory(port);
    long long dropped = jint(h, "dropped");
    json_decref(h);
    kg_dashboard_free(d);
    long long stored = kg_tsql_int(db, "SELECT count(*) FROM kg_events");
    printf("%zu published: %lld stored, %lld counted as not stored\n", n, stored, dropped);
    assert_true(dropped > 0);
    assert_int_equal(stored + dropped, (long long)n);
    redisFree(c);
    kg_redis_server_stop(&rs);
    kg_trmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_with_redis),
        cmocka_unit_test(test_stuck_history_does_not_hold_pubsub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
