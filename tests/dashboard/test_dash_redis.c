/* test_dash_redis.c - the Redis source against a real redis-server: events
 * published by the Redis backend (and by hand) reach WebSocket clients, and the
 * subscription survives a server restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kaygraph/backends.h"
#include "kaygraph/dashboard.h"
#include "redis_server.h"
#include "testutil.h"
#include "wsclient.h"

static kg_redis_server g_redis;

static int setup(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        return 0;
    return kg_redis_server_start(&g_redis, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kg_redis_server_stop(&g_redis);
    return 0;
}

static kg_dashboard_t *start_with_redis(void)
{
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    o.redis_host = "127.0.0.1";
    o.redis_port = g_redis.port;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    if (kg_dashboard_new(&o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.redis_connected), 10));
    return d;
}

static void test_redis_backend_to_ws(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_dashboard_t *d = start_with_redis();
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
    char *m = kg_tws_wait_for(&c, "\"initial\"", 5);
    assert_non_null(m);
    free(m);

    /* The real producer side: the Redis backend publishing a batch. */
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = g_redis.port;
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&ro, &err);
    assert_non_null(b);
    kg_backend_connect(b, 1);
    char *texts[2];
    kg_event_view v[2];
    for (int i = 0; i < 2; i++) {
        char id[32];
        snprintf(id, sizeof id, "rb-%d", i);
        texts[i] = kg_tevent(id, i ? "node_completed" : "node_started", "lifecycle", "n", "run-R",
                             (unsigned)i, NULL);
        v[i] = (kg_event_view){.json = texts[i], .json_len = strlen(texts[i]),
                               .event_id = id, .event_type = "lifecycle",
                               .event_name = i ? "node_completed" : "node_started",
                               .node_id = "n", .workflow_id = "run-R",
                               .timestamp_ms = 1795800973123LL, .seq = (uint64_t)i};
        /* event_id must outlive the call: point it into the text instead. */
        v[i].event_id = strstr(texts[i], "rb-");
    }
    kg_batch batch = {.events = v, .count = 2};
    assert_int_equal(kg_backend_send_batch(b, 0, &batch), 0);
    m = kg_tws_wait_for(&c, "\"rb-1\"", 10);
    assert_non_null(m);
    free(m);
    kg_backend_disconnect(b);
    kg_backend_free(b);
    for (int i = 0; i < 2; i++)
        free(texts[i]);

    kg_dashboard_stats st;
    kg_dashboard_stats_get(d, &st);
    assert_true(st.redis_messages >= 2);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

static void test_redis_restart(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_dashboard_t *d = start_with_redis();
    kg_tclient c;
    assert_int_equal(kg_tws_connect(&c, kg_dashboard_port(d), "/ws", NULL), 101);
    free(kg_tws_wait_for(&c, "\"initial\"", 5));

    kg_redis_server_kill(&g_redis);
    kg_dashboard_stats st;
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), !st.redis_connected), 10));
    assert_int_equal(kg_redis_server_restart(&g_redis), 0);

    /* Publish until the resubscribed dashboard forwards one (Pub/Sub keeps
     * nothing for an absent subscriber, so early ones may be lost). */
    redisContext *rc = kg_redis_server_client(&g_redis);
    assert_non_null(rc);
    char *m = NULL;
    double deadline = kg_test_now() + 15;
    for (int i = 0; !m && kg_test_now() < deadline; i++) {
        char id[32];
        snprintf(id, sizeof id, "after-%d", i);
        char *e = kg_tevent(id, "node_started", "lifecycle", "n", "run-S", (unsigned)i, NULL);
        redisReply *r = kg_redis_cmd(rc, "PUBLISH kaygraph:monitoring:all %s", e);
        if (r)
            freeReplyObject(r);
        free(e);
        m = kg_tws_wait_for(&c, "\"after-", 0.5);
    }
    assert_non_null(m);
    free(m);
    /* Garbage on the channel is rejected, not fatal. */
    redisReply *r = kg_redis_cmd(rc, "PUBLISH kaygraph:monitoring:all %s", "{not json");
    if (r)
        freeReplyObject(r);
    assert_true(KG_WAIT_UNTIL((kg_dashboard_stats_get(d, &st), st.rejected >= 1), 5));
    redisFree(rc);
    kg_tws_close(&c);
    kg_dashboard_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_backend_to_ws),
        cmocka_unit_test(test_redis_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
