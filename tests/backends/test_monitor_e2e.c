/* test_monitor_e2e.c - workflows monitored into real servers, through the
 * whole pipeline (engine -> monitor -> dispatcher -> backend -> server), with
 * the servers failing under a continuously emitting workflow:
 *
 *   - redis-server SIGKILLed mid-run and restarted: runs keep succeeding
 *     without slowing, the breaker opens, and afterwards every event emitted
 *     is in Redis (counted by distinct event keys; the server runs with an
 *     fsync-always AOF so what it acknowledged survives the kill).  Delivery
 *     is at-least-once (see src/backends/redis.c): duplicates are counted
 *     through the per-type counters and reported, not forbidden.
 *   - the webhook answering 500, then recovering; and stalling past the
 *     client timeout, then recovering: every event arrives exactly once
 *     (rejected and timed-out requests were not stored by the receiver).
 *   - several processes publishing into one Redis: every event arrives,
 *     workflow_ids do not collide, `source` tells the processes apart. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_receiver.h"
#include "kaygraph/backends.h"
#include "kaygraph/monitor.h"
#include "kaygraph/redis_reader.h"
#include "redis_server.h"
#include "testutil.h"

#define PFX "kaygraph:monitoring:"

/* ---- a small workflow ------------------------------------------------------------- */

static int step_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    (void)ctx;
    (void)prep_res;
    *exec_res = json_integer(42);
    return 0;
}

static const kg_node_ops step_ops = {.type_name = "E2ENode", .exec = step_exec};

static kg_node_t *make_graph(void)
{
    kg_node_t *g = kg_graph_new("e2e_graph", NULL, NULL);
    assert_non_null(g);
    kg_node_t *a = kg_graph_add(g, kg_node_new("extract", &step_ops, NULL));
    kg_node_t *b = kg_graph_add(g, kg_node_new("transform", &step_ops, NULL));
    kg_node_t *c = kg_graph_add(g, kg_node_new("load", &step_ops, NULL));
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(kg_node_connect(a, NULL, b), 0);
    assert_int_equal(kg_node_connect(b, NULL, c), 0);
    return g;
}

static kg_monitor_t *make_monitor(kg_backend_t *backend, const char *host)
{
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = backend;
    cfg.metrics_interval = 0;          /* only workflow events: exact counts */
    cfg.buffer_size = 1u << 18;
    cfg.flush_interval = 0.02;
    cfg.circuit_breaker_reset = 0.2;
    cfg.retry_backoff_max = 0.1;
    cfg.shutdown_timeout = 20;
    cfg.async_workers = 2;
    cfg.source_host = host;
    kg_monitor_t *m = NULL;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &m, &err) != 0)
        fail_msg("kg_monitor_new: %s", err.message);
    return m;
}

/* A thread running the workflow back to back (about a run per ms). */
typedef struct emitter {
    kg_node_t *graph;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint runs;
    atomic_uint failed_runs;
    _Atomic double max_run;            /* seconds, slowest kg_run */
} emitter;

static void *emit_main(void *arg)
{
    emitter *e = arg;
    while (!atomic_load(&e->stop)) {
        double t0 = kg_test_now();
        kg_result_t res;
        int rc = kg_run(e->graph, NULL, &res);
        double took = kg_test_now() - t0;
        if (rc != 0)
            atomic_fetch_add(&e->failed_runs, 1);
        if (took > atomic_load(&e->max_run))
            atomic_store(&e->max_run, took);
        atomic_fetch_add(&e->runs, 1);
        kg_test_sleep(0.001);
    }
    return NULL;
}

static void emitter_start(emitter *e, kg_node_t *g)
{
    memset(e, 0, sizeof *e);
    e->graph = g;
    assert_int_equal(pthread_create(&e->thread, NULL, emit_main, e), 0);
}

static void emitter_stop(emitter *e)
{
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
}

static kg_monitor_stats stats_of(kg_monitor_t *m)
{
    kg_monitor_stats s;
    kg_monitor_stats_get(m, &s);
    return s;
}

/* ---- Redis helpers ----------------------------------------------------------------- */

static kg_backend_t *redis_backend(const kg_redis_server *s)
{
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.port = s->port;
    o.connect_timeout = 0.5;
    o.command_timeout = 1.0;
    kg_error_t err;
    kg_backend_t *b = kg_redis_backend_new(&o, &err);
    if (!b)
        fail_msg("redis backend: %s", err.message);
    return b;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_redis_end_to_end(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server srv;
    assert_int_equal(kg_redis_server_start(&srv, NULL), 0);
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.port = srv.port;
    kg_redis_reader_t *rd = NULL;
    assert_int_equal(kg_redis_reader_new(&ro, &rd, NULL), 0);
    assert_int_equal(kg_redis_reader_subscribe(rd, NULL, false, NULL), 0);

    kg_node_t *g = make_graph();
    kg_monitor_t *m = make_monitor(redis_backend(&srv), "e2e-host");
    kg_monitor_attach(m, g);
    for (int i = 0; i < 20; i++)
        assert_int_equal(kg_run(g, NULL, NULL), 0);
    assert_int_equal(kg_monitor_flush(m, 10), 0);
    kg_monitor_stats st = stats_of(m);
    assert_true(st.sent > 0);
    assert_int_equal(st.sent, st.emitted);

    /* The live feed carried every event once. */
    json_t *ids = json_object();
    json_t *workflows = json_object();
    for (uint64_t i = 0; i < st.sent; i++) {
        char *json = NULL;
        size_t len;
        assert_int_equal(kg_redis_reader_next(rd, 5, &json, &len, NULL, NULL), 0);
        json_t *ev = json_loads(json, 0, NULL);
        assert_non_null(ev);
        json_object_set_new(ids, json_string_value(json_object_get(ev, "event_id")), json_true());
        json_object_set_new(workflows, json_string_value(json_object_get(ev, "workflow_id")),
                            json_true());
        json_decref(ev);
        free(json);
    }
    char *extra = NULL;
    size_t extra_len;
    assert_int_equal(kg_redis_reader_next(rd, 0.1, &extra, &extra_len, NULL, NULL), KG_ETIMEOUT);
    assert_int_equal(json_object_size(ids), st.sent);
    assert_int_equal(json_object_size(workflows), 20);

    /* Each run's events are indexed under its workflow_id, complete. */
    const char *wid;
    json_t *v;
    size_t per_run = st.sent / 20;
    json_object_foreach(workflows, wid, v) {
        json_t *evs = NULL;
        assert_int_equal(kg_redis_reader_workflow_events(rd, wid, 0, &evs, NULL), 0);
        assert_int_equal(json_array_size(evs), per_run);
        int started = 0, completed = 0;
        size_t i;
        json_t *ev;
        json_array_foreach(evs, i, ev) {
            const char *name = json_string_value(json_object_get(ev, "event_name"));
            started += strcmp(name, "workflow_started") == 0;
            completed += strcmp(name, "workflow_completed") == 0;
        }
        assert_int_equal(started, 1);
        assert_int_equal(completed, 1);
        json_decref(evs);
    }
    json_t *active = NULL;
    assert_int_equal(kg_redis_reader_active_nodes(rd, &active, NULL), 0);
    assert_int_equal(json_array_size(active), 0);
    json_decref(active);
    assert_int_equal(kg_redis_reader_active_workflows(rd, &active, NULL), 0);
    assert_int_equal(json_array_size(active), 0);
    json_decref(active);

    json_decref(ids);
    json_decref(workflows);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_redis_reader_free(rd);
    kg_redis_server_stop(&srv);
}

static void test_redis_kill_restart_mid_run(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server srv;
    kg_redis_server_opts so = {.persist = true};
    assert_int_equal(kg_redis_server_start(&srv, &so), 0);
    kg_node_t *g = make_graph();
    kg_monitor_t *m = make_monitor(redis_backend(&srv), NULL);
    kg_monitor_attach(m, g);
    emitter e;
    emitter_start(&e, g);

    assert_true(KG_WAIT_UNTIL(stats_of(m).sent > 500, 10));
    double before = atomic_load(&e.max_run);
    kg_redis_server_kill(&srv);
    uint64_t emitted_at_kill = stats_of(m).emitted;
    double killed_at = kg_test_now();
    /* The breaker opens while the workflow keeps running. */
    assert_true(KG_WAIT_UNTIL(stats_of(m).circuit_opens >= 1, 10));
    assert_true(KG_WAIT_UNTIL(kg_test_now() - killed_at > 1.0, 2));
    assert_false(stats_of(m).backend_connected);
    uint64_t emitted_in_outage = stats_of(m).emitted - emitted_at_kill;
    assert_true(emitted_in_outage > 100);
    assert_int_equal(kg_redis_server_restart(&srv), 0);

    assert_true(KG_WAIT_UNTIL(stats_of(m).circuit == KG_CIRCUIT_CLOSED, 10));
    kg_test_sleep(0.2);
    emitter_stop(&e);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    kg_monitor_stats st = stats_of(m);

    /* The workflow never failed nor waited for Redis: no run took anywhere
     * near the command timeout (1 s) while Redis was gone. */
    assert_int_equal(atomic_load(&e.failed_runs), 0);
    double worst = atomic_load(&e.max_run);
    print_message("runs %u, slowest run %.1f ms (before the kill %.1f ms), events emitted %llu "
                  "(%llu during the outage), failed batches %llu, breaker opened %llu times\n",
                  atomic_load(&e.runs), worst * 1e3, before * 1e3,
                  (unsigned long long)st.emitted, (unsigned long long)emitted_in_outage,
                  (unsigned long long)st.failed_batches, (unsigned long long)st.circuit_opens);
    assert_true(worst < 0.25);
    assert_int_equal(st.dropped_full, 0);
    assert_int_equal(st.dropped_shutdown, 0);
    assert_int_equal(st.sent, st.emitted);

    /* Every event emitted is stored, exactly once per event id. */
    redisContext *c = kg_redis_server_client(&srv);
    assert_non_null(c);
    long long distinct = kg_redis_count_keys(c, PFX "event:*");
    long long counted = kg_redis_counters_sum(c, PFX);
    print_message("distinct events in Redis %lld of %llu emitted; counters say %lld "
                  "(%lld duplicates from batches replayed after a mid-pipeline failure)\n",
                  distinct, (unsigned long long)st.emitted, counted, counted - distinct);
    assert_int_equal(distinct, (long long)st.emitted);
    assert_true(counted >= distinct);
    redisFree(c);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_redis_server_stop(&srv);
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static kg_backend_t *http_backend(kg_http_receiver_t *rx, double timeout)
{
    kg_http_options o;
    kg_http_options_init(&o);
    o.url = kg_http_receiver_url(rx);
    o.timeout = timeout;
    o.connect_timeout = timeout;
    kg_error_t err;
    kg_backend_t *b = kg_http_backend_new(&o, &err);
    if (!b)
        fail_msg("http backend: %s", err.message);
    return b;
}

/* Every event id the receiver accepted, once, and the total count. */
static size_t distinct_received(kg_http_receiver_t *rx, size_t *total)
{
    json_t *ids = json_object();
    *total = 0;
    for (size_t i = 0; i < kg_http_receiver_kept(rx); i++) {
        const kg_http_request *q = kg_http_receiver_request(rx, i);
        json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
        json_t *events = json_object_get(body, "events");
        size_t k;
        json_t *ev;
        json_array_foreach(events, k, ev) {
            json_object_set_new(ids, json_string_value(json_object_get(ev, "event_id")),
                                json_true());
            (*total)++;
        }
        json_decref(body);
    }
    size_t n = json_object_size(ids);
    json_decref(ids);
    return n;
}

static void http_outage(kg_http_receiver_mode mode, double timeout)
{
    kg_http_receiver_t *rx = kg_http_receiver_start();
    assert_non_null(rx);
    kg_http_receiver_set_stall(rx, 5);
    kg_node_t *g = make_graph();
    kg_monitor_t *m = make_monitor(http_backend(rx, timeout), NULL);
    kg_monitor_attach(m, g);
    emitter e;
    emitter_start(&e, g);
    assert_true(KG_WAIT_UNTIL(stats_of(m).sent > 300, 10));
    kg_http_receiver_set_mode(rx, mode);
    assert_true(KG_WAIT_UNTIL(stats_of(m).circuit_opens >= 1, 15));
    uint64_t failed = stats_of(m).failed_batches;
    kg_http_receiver_set_mode(rx, KG_HTTP_RECEIVER_OK);
    assert_true(KG_WAIT_UNTIL(stats_of(m).circuit == KG_CIRCUIT_CLOSED, 10));
    kg_test_sleep(0.1);
    emitter_stop(&e);
    assert_int_equal(kg_monitor_flush(m, 20), 0);
    kg_monitor_stats st = stats_of(m);
    size_t total = 0;
    size_t distinct = distinct_received(rx, &total);
    print_message("%s: runs %u, slowest %.1f ms, emitted %llu, failed batches %llu, "
                  "received %zu (%zu distinct), rejected/timed-out requests %zu\n",
                  mode == KG_HTTP_RECEIVER_FAIL ? "500" : "stall", atomic_load(&e.runs),
                  atomic_load(&e.max_run) * 1e3, (unsigned long long)st.emitted,
                  (unsigned long long)failed, total, distinct, kg_http_receiver_rejected(rx));
    assert_int_equal(atomic_load(&e.failed_runs), 0);
    assert_true(atomic_load(&e.max_run) < 0.25);
    assert_true(failed >= 1);
    assert_int_equal(st.dropped_full + st.dropped_shutdown, 0);
    assert_int_equal(st.sent, st.emitted);
    /* No loss: every event arrived.  Duplicates can only come from a request
     * the receiver accepted but whose answer came after the client's timeout
     * (at-least-once, see src/backends/http.c): with a 2 s timeout against
     * a loopback receiver that does not happen, with 0.2 s under a sanitizer
     * it may. */
    assert_int_equal(distinct, st.emitted);
    assert_true(total >= st.emitted);
    if (timeout >= 1.0)
        assert_int_equal(total, st.emitted);
    assert_int_equal(kg_http_receiver_events(rx), total);
    assert_int_equal(kg_monitor_free(m), 0);
    kg_node_free(g);
    kg_http_receiver_stop(rx);
}

static void test_http_500_then_recovery(void **state)
{
    (void)state;
    http_outage(KG_HTTP_RECEIVER_FAIL, 2.0);
}

static void test_http_stall_past_timeout(void **state)
{
    (void)state;
    http_outage(KG_HTTP_RECEIVER_STALL, 0.3);
}

/* ---- several processes, one Redis ------------------------------------------------------- */

#define PROCS 3
#define RUNS_PER_PROC 30

/* The child process (this binary re-executed with --child): its own
 * monitor and runs; prints how many events it emitted, exits 0 when all of
 * them were delivered.  exec rather than a bare fork, so each child is a
 * fresh process, as on separate machines (and ThreadSanitizer allows it). */
static int child_main(int port, const char *host)
{
    kg_redis_server srv;
    memset(&srv, 0, sizeof srv);
    srv.port = port;
    kg_node_t *g = make_graph();
    kg_monitor_t *m = make_monitor(redis_backend(&srv), host);
    kg_monitor_attach(m, g);
    int bad = 0;
    for (int i = 0; i < RUNS_PER_PROC; i++)
        bad |= kg_run(g, NULL, NULL) != 0;
    bad |= kg_monitor_flush(m, 20) != 0;
    kg_monitor_stats st = stats_of(m);
    bad |= st.sent != st.emitted;
    bad |= kg_monitor_free(m) != 0;
    kg_node_free(g);
    printf("%llu\n", (unsigned long long)st.emitted);
    return bad ? 1 : 0;
}

static void test_processes_share_redis(void **state)
{
    (void)state;
    if (!kg_redis_server_available())
        skip();
    kg_redis_server srv;
    assert_int_equal(kg_redis_server_start(&srv, NULL), 0);
    int fds[PROCS][2];
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        char port[16], host[32];
        snprintf(port, sizeof port, "%d", srv.port);
        snprintf(host, sizeof host, "proc-%d", p);
        char *argv[] = {"/proc/self/exe", "--child", port, host, NULL};
        assert_int_equal(pipe(fds[p]), 0);
        kids[p] = fork();
        assert_true(kids[p] >= 0);
        if (kids[p] == 0) {
            dup2(fds[p][1], 1);
            close(fds[p][0]);
            close(fds[p][1]);
            execv(argv[0], argv);
            _exit(127);
        }
        close(fds[p][1]);
    }
    unsigned long long total = 0;
    for (int p = 0; p < PROCS; p++) {
        int status = -1;
        double deadline = kg_test_now() + 60;
        pid_t got;
        while ((got = waitpid(kids[p], &status, WNOHANG)) == 0 && kg_test_now() < deadline)
            kg_test_sleep(0.01);
        if (got != kids[p]) {
            kill(kids[p], SIGKILL);
            waitpid(kids[p], NULL, 0);
            fail_msg("child %d did not finish", p);
        }
        char out[64] = "";
        ssize_t n = read(fds[p][0], out, sizeof out - 1);
        close(fds[p][0]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_true(n > 0);
        unsigned long long emitted = strtoull(out, NULL, 10);
        assert_true(emitted > 0);
        total += emitted;
    }

    redisContext *c = kg_redis_server_client(&srv);
    assert_int_equal(kg_redis_count_keys(c, PFX "event:*"), (long long)total);
    assert_int_equal(kg_redis_count_keys(c, PFX "workflow:*"), PROCS * RUNS_PER_PROC);
    assert_int_equal(kg_redis_counters_sum(c, PFX), (long long)total);

    /* `source` tells the processes apart: 3 hosts, 3 pids, each with
     * RUNS_PER_PROC workflow_started events. */
    json_t *sources = json_object();
    char cursor[32] = "0";
    do {
        redisReply *r = kg_redis_cmd(c, "SCAN %s MATCH " PFX "event:* COUNT 1000", cursor);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            redisReply *v = kg_redis_cmd(c, "GET %s", r->element[1]->element[i]->str);
            json_t *ev = json_loads(v->str, 0, NULL);
            assert_non_null(ev);
            json_t *src = json_object_get(ev, "source");
            char key[128];
            snprintf(key, sizeof key, "%s/%lld", json_string_value(json_object_get(src, "host")),
                     (long long)json_integer_value(json_object_get(src, "pid")));
            if (strcmp(json_string_value(json_object_get(ev, "event_name")),
                       "workflow_started") == 0) {
                json_t *n = json_object_get(sources, key);
                json_object_set_new(sources, key,
                                    json_integer(n ? json_integer_value(n) + 1 : 1));
            }
            json_decref(ev);
            freeReplyObject(v);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    assert_int_equal(json_object_size(sources), PROCS);
    const char *k;
    json_t *n;
    json_object_foreach(sources, k, n) {
        assert_int_equal(strncmp(k, "proc-", 5), 0);
        assert_int_equal(json_integer_value(n), RUNS_PER_PROC);
    }
    json_decref(sources);
    redisFree(c);
    kg_redis_server_stop(&srv);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(atoi(argv[2]), argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_end_to_end),
        cmocka_unit_test(test_processes_share_redis),
        cmocka_unit_test(test_redis_kill_restart_mid_run),
        cmocka_unit_test(test_http_500_then_recovery),
        cmocka_unit_test(test_http_stall_past_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
