/* test_cli_redis.c - kgmon against a real redis-server (started on a free
 * loopback port by the backends' fixture): `demo --backend redis` writes
 * docs/redis.md's layout and prints the counters; `tail --redis` follows what is
 * published (JSON Lines exactly as published, filters, --timeout, Ctrl-C,
 * the coloured terminal line, unreachable Redis); and `tail --redis` against
 * peers that are not Redis (tests/backends/fake_peer.c). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#include "cli_assert.h"
#include "fake_peer.h"
#include "kgmon_run.h"
#include "redis_server.h"
#include "wsclient.h"

#define RUN_TIMEOUT 120.0

static kg_redis_server server;
static redisContext *rc_;
static char hostport[32], portstr[16];

static int group_setup(void **state)
{
    (void)state;
    if (!kg_redis_server_available() || kg_redis_server_start(&server, NULL) != 0)
        return -1;
    rc_ = kg_redis_server_client(&server);
    snprintf(hostport, sizeof hostport, "127.0.0.1:%d", server.port);
    snprintf(portstr, sizeof portstr, "%d", server.port);
    return rc_ ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (rc_)
        redisFree(rc_);
    kg_redis_server_stop(&server);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    redisReply *r = kg_redis_cmd(rc_, "FLUSHALL");
    if (r)
        freeReplyObject(r);
    return r ? 0 : -1;
}

static long long number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* Subscribers of a channel (PUBSUB NUMSUB). */
static long long numsub(const char *channel)
{
    redisReply *r = kg_redis_cmd(rc_, "PUBSUB NUMSUB %s", channel);
    long long n = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static void publish(const char *channel, const char *text)
{
    redisReply *r = kg_redis_cmd(rc_, "PUBLISH %s %s", channel, text);
    assert_non_null(r);
    freeReplyObject(r);
}

/* ---- demo --backend redis ---------------------------------------------------------- */

static void test_demo_redis(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--backend", "redis", "--redis-host",
                      "127.0.0.1", "--redis-port", portstr, "--iterations", "2", "--batch-size", "10",
                      NULL);
    assert_exit(rc, 0, err);
    assert_contains(out, "backend redis connected");
    assert_contains(out, "Redis counters (kaygraph:monitoring:metrics:events:*):");
    long long sent = number_after(out, ", sent ");
    assert_true(sent > 0);
    /* The counters printed are the ones in Redis, and add up to what was sent. */
    static const char *const types[] = {"lifecycle", "data", "error", "metric"};
    long long sum = 0;
    for (size_t i = 0; i < 4; i++) {
        char line[64];
        redisReply *r = kg_redis_cmd(rc_, "GET kaygraph:monitoring:metrics:events:%s", types[i]);
        long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        if (r)
            freeReplyObject(r);
        snprintf(line, sizeof line, "  %-22s %lld\n", types[i], v);
        assert_contains(out, line);
        sum += v;
    }
    assert_int_equal(sum, sent);
    assert_int_equal(kg_redis_count_keys(rc_, "kaygraph:monitoring:event:*"), sent);
    assert_int_equal(kg_redis_count_keys(rc_, "kaygraph:monitoring:workflow:*"), 2);
    assert_true(kg_redis_count_keys(rc_, "kaygraph:monitoring:node:*") >= 6);
    assert_int_equal(kg_redis_int(rc_, "SCARD kaygraph:monitoring:active:workflows"), 0);
    free(out);
    free(err);
}

static void test_demo_redis_prefix(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--backend", "redis", "--redis-port",
                      portstr, "--redis-prefix", "other:", "--iterations", "1", "--quiet", NULL);
    assert_exit(rc, 0, err);
    assert_int_equal(kg_redis_count_keys(rc_, "kaygraph:monitoring:*"), 0);
    assert_int_equal(kg_redis_count_keys(rc_, "other:event:*"), number_after(out, ", sent "));
    free(out);
    free(err);
}

/* `dashboard --redis-replay N`: started after a demo that wrote the stream,
 * the dashboard replays exactly the newest N entries. */
static void test_dashboard_replays_stream(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--backend", "redis", "--redis-port",
                      portstr, "--redis-stream", "100000", "--iterations", "2", "--quiet", NULL);
    assert_exit(rc, 0, err);
    assert_true(number_after(out, ", sent ") > 5);
    free(out);
    free(err);
    const char *argv[] = {"dashboard", "--port", "0", "--redis", hostport, "--redis-replay", "5", NULL};
    kgm_proc p;
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "Press Ctrl-C to stop.", 30));
    out = kgm_stdout(&p);
    int port = kgm_dashboard_port(out);
    free(out);
    assert_true(port > 0);
    assert_true(KG_WAIT_UNTIL(kg_thttp_json_int(port, "/api/metrics", "server", "redis_replays") >= 1, 30));
    assert_int_equal(kg_thttp_json_int(port, "/api/metrics", "total_events", NULL), 5);
    kgm_signal(&p, SIGINT);
    assert_true(kgm_wait(&p, 30));
    assert_int_equal(p.status, 0);
    kgm_cleanup(&p);
}

/* ---- tail --redis ------------------------------------------------------------------- */

/* Start `kgmon tail --redis ... extra` and wait until it is subscribed. */
static void start_tail(kgm_proc *p, bool tty, const char *channel, const char *const *extra)
{
    const char *argv[32] = {"tail", "--redis", hostport};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    long long before = numsub(channel);
    assert_int_equal(kgm_start(p, tty, argv), 0);
    if (!KG_WAIT_UNTIL(numsub(channel) > before || p->pid == 0 || kill(p->pid, 0) != 0, 30) ||
        numsub(channel) <= before) {
        char *err = kgm_stderr(p);
        fail_msg("kgmon tail did not subscribe to %s; stderr:\n%s", channel, err);
    }
}

static char *finish(kgm_proc *p, int expected_status)
{
    if (!kgm_wait(p, 60))
        fail_msg("kgmon tail did not exit");
    char *err = kgm_stderr(p);
    assert_exit(p->status, expected_status, err);
    free(err);
    char *out = kgm_stdout(p);
    kgm_cleanup(p);
    return out;
}

/* Events published by `kgmon demo --backend redis`, as JSON Lines. */
static void test_tail_follows_demo(void **state)
{
    (void)state;
    kgm_proc t;
    const char *extra[] = {"--count", "25", NULL};
    start_tail(&t, false, "kaygraph:monitoring:all", extra);
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--backend", "redis", "--redis-port",
                      portstr, "--iterations", "2", "--batch-size", "5", NULL);
    assert_exit(rc, 0, err);
    free(out);
    free(err);
    out = finish(&t, 0);
    assert_int_equal(kgm_count(out, "\n"), 25);
    size_t i = 0;
    for (char *p = out; *p; i++) {
        char *nl = strchr(p, '\n');
        json_error_t je;
        json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!ev)
            fail_msg("line %zu is not JSON: %s", i + 1, je.text);
        assert_non_null(json_object_get(ev, "event_id"));
        assert_non_null(json_object_get(ev, "workflow_id"));
        assert_non_null(json_object_get(ev, "event_name"));
        json_decref(ev);
        p = nl + 1;
    }
    free(out);
}

static char *event_text(const char *id, const char *name, const char *type, const char *node,
                        const char *wf, const char *data)
{
    char *s = malloc(1024);
    assert_non_null(s);
    snprintf(s, 1024,
             "{\"event_id\":\"%s\",\"timestamp\":\"2026-11-27T17:36:13.123456Z\",\"node_id\":\"%s\","
             "\"node_type\":\"T\",\"event_type\":\"%s\",\"event_name\":\"%s\",\"data\":%s,"
             "\"correlation_id\":\"c\",\"workflow_id\":\"%s\",\"seq\":1,\"real\":0.1}",
             id, node, type, name, data, wf);
    return s;
}

/* Filters, and the text printed is byte for byte the text published. */
static void test_tail_filters_exact(void **state)
{
    (void)state;
    char *e1 = event_text("e1", "node_started", "lifecycle", "n1", "wf-aaaa-11111111", "{}");
    char *e2 = event_text("e2", "node_failed", "error", "n1", "wf-aaaa-11111111",
                          "{\"error\":\"boom\"}");
    char *e3 = event_text("e3", "node_failed", "error", "n2", "wf-bbbb-22222222",
                          "{\"error\":\"bang\" , \"x\": [1, 2.50, {}]}");
    char *e4 = event_text("e4", "retry_attempted", "error", "n2", "wf-bbbb-22222222", "{}");
    const char *extra[] = {"--redis-prefix", "t1:", "--type", "error", "--node", "n2",
                           "--name", "node_failed,node_completed", "--count", "1", NULL};
    kgm_proc t;
    start_tail(&t, false, "t1:all", extra);
    publish("t1:lifecycle", e3);   /* another channel: not followed */
    publish("t1:all", "not json at all");
    publish("t1:all", e1);
    publish("t1:all", e2);
    publish("t1:all", e4);
    publish("t1:all", e3);
    char *out = finish(&t, 0);
    char want[1100];
    snprintf(want, sizeof want, "%s\n", e3);
    assert_string_equal(out, want);
    free(out);

    /* --workflow by its short id (the end), any of repeated --type values. */
    const char *extra2[] = {"--redis-prefix", "t1:", "--workflow", "22222222", "--workflow",
                            "nope", "--type", "lifecycle", "--type", "error", "--count", "2", NULL};
    start_tail(&t, false, "t1:all", extra2);
    publish("t1:all", e1);
    publish("t1:all", e2);
    publish("t1:all", e3);
    publish("t1:all", e4);
    out = finish(&t, 0);
    snprintf(want, sizeof want, "%s\n%s\n", e3, e4);
    assert_string_equal(out, want);
    free(out);
    free(e1);
    free(e2);
    free(e3);
    free(e4);
}

static void test_tail_timeout(void **state)
{
    (void)state;
    const char *extra[] = {"--timeout", "0.5", "--type", "error", NULL};
    kgm_proc t;
    double t0 = kg_test_now();
    start_tail(&t, false, "kaygraph:monitoring:all", extra);
    char *ev = event_text("x1", "node_started", "lifecycle", "n", "w", "{}");
    publish("kaygraph:monitoring:all", ev);   /* does not match: the timer goes on */
    free(ev);
    assert_true(kgm_wait(&t, 30));
    assert_true(kg_test_now() - t0 >= 0.5);
    char *err = kgm_stderr(&t), *out = kgm_stdout(&t);
    assert_exit(t.status, 1, err);
    assert_contains(err, "no matching event in 0.5 s");
    assert_string_equal(out, "");
    free(err);
    free(out);
    kgm_cleanup(&t);
}

static void test_tail_interrupt(void **state)
{
    (void)state;
    kgm_proc t;
    start_tail(&t, false, "kaygraph:monitoring:all", NULL);
    kgm_signal(&t, SIGINT);
    char *out = finish(&t, 0);
    free(out);
}

static void test_tail_unreachable(void **state)
{
    (void)state;
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", kg_test_free_port());
    char *out, *err;
    assert_exit(kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--redis", hp, NULL), 1, err);
    assert_contains(err, "cannot reach Redis at ");
    assert_contains(err, hp);
    free(out);
    free(err);
}

/* On a terminal: one coloured line per event; --no-color; --json; and
 * control characters from the event never reach the terminal. */
static void test_tail_terminal(void **state)
{
    (void)state;
    char *ev = event_text("t1", "node_failed", "error", "evil\\u001b[2Jnode", "wf-cccc-33333333",
                          "{\"error\":\"disk full\",\"error_type\":\"IOError\",\"phase\":\"exec\","
                          "\"attempt\":2,\"max_retries\":3}");
    const char *color[] = {"--count", "1", NULL};
    const char *plain[] = {"--count", "1", "--no-color", NULL};
    const char *json[] = {"--count", "1", "--json", NULL};
    const char *const *modes[] = {color, plain, json};
    for (size_t m = 0; m < 3; m++) {
        kgm_proc t;
        start_tail(&t, true, "kaygraph:monitoring:all", modes[m]);
        publish("kaygraph:monitoring:all", ev);
        char *out = finish(&t, 0);
        if (m == 2) {
            assert_contains(out, "\"event_id\":\"t1\"");
        } else {
            assert_contains(out, "17:36:13.123");
            assert_contains(out, "node_failed");
            assert_contains(out, "IOError: disk full");
            assert_contains(out, "attempt 2/3");
            assert_contains(out, "33333333");
            assert_contains(out, "evil?[2Jnode");
            assert_not_contains(out, "\033[2J");
            if (m == 0)
                assert_contains(out, "\033[");
            else
                assert_not_contains(out, "\033");
        }
        free(out);
    }
    free(ev);
}

/* Redis restarts under a running tail: it says so, reconnects (its
 * subscription included) and goes on. */
static void test_tail_redis_restart(void **state)
{
    (void)state;
    kgm_proc t;
    const char *extra[] = {"--count", "1", NULL};
    start_tail(&t, false, "kaygraph:monitoring:all", extra);
    kg_redis_server_kill(&server);
    assert_true(kgm_wait_stderr(&t, "lost Redis at", 30));
    assert_int_equal(kg_redis_server_restart(&server), 0);
    redisFree(rc_);
    rc_ = kg_redis_server_client(&server);
    assert_non_null(rc_);
    assert_true(kgm_wait_stderr(&t, "reconnected to Redis", 30));
    assert_true(KG_WAIT_UNTIL(numsub("kaygraph:monitoring:all") == 1, 30));
    char *ev = event_text("after", "node_started", "lifecycle", "n", "w", "{}");
    publish("kaygraph:monitoring:all", ev);
    char *out = finish(&t, 0);
    assert_contains(out, "\"after\"");
    free(out);
    free(ev);
}


/* A peer that is not Redis (garbage, or an HTTP server) from the start: tail
 * says so at once, as for a closed port (exit 1, one line naming the
 * protocol error), after one connection; it used to report "following" and
 * reconnect thousands of times a second. */
static void test_tail_not_redis(void **state)
{
    (void)state;
    static const kg_fake_script scripts[] = {KG_FAKE_GARBAGE, KG_FAKE_HTTP};
    for (size_t i = 0; i < 2; i++) {
        kg_fake_peer *p = kg_fake_peer_start(scripts[i], scripts[i], NULL);
        assert_non_null(p);
        char hp[32];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", kg_fake_peer_port(p));
        char *out, *err;
        int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--redis", hp, "--timeout", "5", NULL);
        unsigned conns = kg_fake_peer_connections(p);
        kg_fake_peer_stop(p);
        assert_exit(rc, 1, err);
        assert_contains(err, "cannot reach Redis at ");
        assert_contains(err, "protocol error");
        assert_contains(err, "not a Redis server?");
        assert_int_equal(kgm_count(err, "\n"), 1);
        assert_int_equal(conns, 1);
        free(out);
        free(err);
    }
}

/* Redis (one connection: a confirmed subscription and one event) replaced by
 * a peer that answers garbage: tail prints the event, says the connection
 * was lost, and then backs off (0.1 s doubling: at most 6 more connections
 * in 4 s), reporting the protocol error about once per backoff step. */
static void test_tail_redis_turns_bad(void **state)
{
    (void)state;
    char *ev = event_text("before", "node_started", "lifecycle", "n", "w", "{}");
    kg_fake_peer *p = kg_fake_peer_start(KG_FAKE_SUB_MESSAGE_CLOSE, KG_FAKE_GARBAGE, ev);
    assert_non_null(p);
    char hp[32];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", kg_fake_peer_port(p));
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "tail", "--redis", hp, "--json", "--timeout", "4",
                      NULL);
    unsigned conns = kg_fake_peer_connections(p);
    kg_fake_peer_stop(p);
    print_message("tail: %u connections; stderr:\n%s", conns, err);
    assert_exit(rc, 1, err);   /* --timeout: nothing matched after the first event */
    assert_contains(out, "\"event_id\":\"before\"");
    assert_int_equal(kgm_count(err, "lost Redis at"), 1);
    assert_true(kgm_count(err, "protocol error") >= 1);
    assert_true(kgm_count(err, "\n") <= 6);
    assert_true(conns >= 3 && conns <= 8);
    free(out);
    free(err);
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_demo_redis, setup),
        cmocka_unit_test_setup(test_demo_redis_prefix, setup),
        cmocka_unit_test_setup(test_dashboard_replays_stream, setup),
        cmocka_unit_test_setup(test_tail_follows_demo, setup),
        cmocka_unit_test_setup(test_tail_filters_exact, setup),
        cmocka_unit_test_setup(test_tail_timeout, setup),
        cmocka_unit_test_setup(test_tail_interrupt, setup),
        cmocka_unit_test_setup(test_tail_unreachable, setup),
        cmocka_unit_test_setup(test_tail_terminal, setup),
        cmocka_unit_test_setup(test_tail_redis_restart, setup),
        cmocka_unit_test(test_tail_not_redis),
        cmocka_unit_test(test_tail_redis_turns_bad),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
