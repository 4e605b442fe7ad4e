/* test_cli_demo.c - `kgmon demo` end to end with each backend but Redis
 * (test_cli_redis.c): mock (report, event breakdown, determinism with
 * --seed), file (the JSON Lines written), HTTP (a real receiver gets the
 * batches; a slow receiver with --webhook-timeout), an unreachable Redis (the
 * workflow completes, exit 3) and the embedded dashboard (answers HTTP while
 * it serves, SIGINT stops it). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli_assert.h"
#include "http_receiver.h"
#include "kgmon_run.h"
#include "wsclient.h"

#define RUN_TIMEOUT 120.0

/* The number after `key` in `text` (e.g. ", sent "), or -1. */
static long long number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* Sum of the "  name   N" lines after `title`. */
static long long breakdown_sum(const char *out, const char *title, size_t *lines)
{
    const char *p = strstr(out, title);
    long long sum = 0;
    *lines = 0;
    if (!p)
        return -1;
    p = strchr(p, '\n');
    while (p && p[1] == ' ' && p[2] == ' ') {
        char name[64];
        long long n;
        if (sscanf(p + 1, " %63s %lld", name, &n) != 2)
            break;
        sum += n;
        (*lines)++;
        p = strchr(p + 1, '\n');
    }
    return sum;
}

static void test_demo_mock(void **state)
{
    (void)state;
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "3", "--batch-size", "20",
                      "--node-delay", "0", NULL);
    assert_exit(rc, 0, err);
    assert_contains(out, "mock backend, 20 records per run");
    assert_contains(out, "[1/3] ");
    assert_contains(out, "[3/3] ");
    assert_contains(out, "Runs: 3 in");
    assert_contains(out, "Records: 60 generated");
    assert_contains(out, "circuit closed");
    assert_contains(out, "dropped 0");
    static const char *const names[] = {"workflow_started", "node_started", "node_preparing",
                                        "node_executing", "node_completed", "workflow_completed",
                                        "data_input", "data_output", "execution_time"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_contains(out, names[i]);
    /* The breakdown accounts for every event sent. */
    size_t lines;
    long long sum = breakdown_sum(out, "Events by name (mock backend):", &lines);
    long long sent = number_after(out, ", sent ");
    assert_true(lines >= 9);
    assert_true(sent > 0);
    assert_int_equal(sum, sent);
    assert_int_equal(number_after(out, "emitted "), sent);
    assert_int_equal(number_after(out, "workflow_started"), 3);
    free(out);
    free(err);
}

/* The per-iteration lines with the timing (", 1.23 ms") cut off. */
static char *iteration_lines(const char *out)
{
    size_t cap = strlen(out) + 1, n = 0;
    char *r = malloc(cap);
    assert_non_null(r);
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (p[0] == '[') {
            const char *ms = p + len;
            while (ms > p && ms[-1] != ',')
                ms--;
            size_t keep = ms > p ? (size_t)(ms - p) : len;
            memcpy(r + n, p, keep);
            n += keep;
            r[n++] = '\n';
        }
        p += len + (nl ? 1 : 0);
    }
    r[n] = '\0';
    return r;
}

static char *demo_lines(const char *seed)
{
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--iterations", "6", "--batch-size", "50",
                      "--seed", seed, NULL);
    assert_exit(rc, 0, err);
    char *lines = iteration_lines(out);
    free(out);
    free(err);
    return lines;
}

static void test_demo_deterministic(void **state)
{
    (void)state;
    char *a = demo_lines("7"), *b = demo_lines("7"), *c = demo_lines("8");
    assert_int_equal(kgm_count(a, "\n"), 6);
    assert_string_equal(a, b);   /* same seed, same runs */
    if (strcmp(a, c) == 0)
        fail_msg("seeds 7 and 8 gave the same runs:\n%s", a);
    free(a);
    free(b);
    free(c);
}

static const char *const required[] = {"event_id", "timestamp", "node_id", "node_type",
                                       "event_type", "event_name", "data", "correlation_id",
                                       "workflow_id"};

static void check_event(json_t *ev, size_t line, bool want_snapshots, size_t *snapshots)
{
    if (!json_is_object(ev))
        fail_msg("line %zu is not a JSON object", line);
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!json_object_get(ev, required[i]))
            fail_msg("line %zu has no \"%s\"", line, required[i]);
    const char *type = json_string_value(json_object_get(ev, "event_type"));
    assert_non_null(type);
    if (strcmp(type, "lifecycle") && strcmp(type, "data") && strcmp(type, "error") &&
        strcmp(type, "metric"))
        fail_msg("line %zu: event_type \"%s\"", line, type);
    if (json_object_get(json_object_get(ev, "data"), "snapshot"))
        (*snapshots)++;
    if (!want_snapshots && *snapshots)
        fail_msg("line %zu has a snapshot despite --no-snapshots", line);
}

/* Each line of the file one valid event; returns the number of lines. */
static size_t check_jsonl(const char *path, bool want_snapshots)
{
    size_t len;
    char *text = kgm_read_file(path, &len);
    assert_non_null(text);
    size_t lines = 0, snapshots = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("the file does not end with a newline");
        json_error_t je;
        json_t *ev = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!ev)
            fail_msg("line %zu is not JSON: %s", lines + 1, je.text);
        check_event(ev, ++lines, want_snapshots, &snapshots);
        json_decref(ev);
        p = nl + 1;
    }
    if (want_snapshots)
        assert_true(snapshots > 0);
    free(text);
    return lines;
}

static void demo_file(bool snapshots)
{
    const char *path = kgm_path(snapshots ? "events.jsonl" : "events-nosnap.jsonl");
    const char *argv[] = {"demo", "--backend", "file", "--file", path, "--iterations", "3",
                          "--batch-size", "10", snapshots ? "--quiet" : "--no-snapshots", NULL};
    char *out, *err;
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, argv), 0, err);
    assert_contains(out, "backend file connected");
    long long sent = number_after(out, ", sent ");
    assert_true(sent > 0);
    assert_int_equal(check_jsonl(path, snapshots), (size_t)sent);
    free(out);
    free(err);
}

static void test_demo_file(void **state)
{
    (void)state;
    demo_file(true);
    demo_file(false);
}

static void test_demo_http(void **state)
{
    (void)state;
    kg_http_receiver_t *r = kg_http_receiver_start();
    assert_non_null(r);
    const char *argv[] = {"demo", "--backend", "http", "--webhook-url", kg_http_receiver_url(r),
                          "--iterations", "3", "--batch-size", "10", NULL};
    char *out, *err;
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, argv), 0, err);
    long long sent = number_after(out, ", sent ");
    assert_true(sent > 0);
    assert_true(kg_http_receiver_accepted(r) >= 1);
    assert_int_equal(kg_http_receiver_events(r), (size_t)sent);
    assert_int_equal(kg_http_receiver_rejected(r), 0);
    const kg_http_request *req = kg_http_receiver_request(r, 0);
    assert_non_null(req);
    assert_string_equal(req->method, "POST");
    char ctype[128];
    assert_true(kg_http_request_header(req, "Content-Type", ctype, sizeof ctype));
    assert_contains(ctype, "application/json");
    /* A batch is the webhook body of docs/webhook.md. */
    json_error_t je;
    json_t *body = json_loadb(req->body, req->body_len, 0, &je);
    assert_non_null(body);
    if (json_object_get(body, "events"))
        assert_int_equal(json_integer_value(json_object_get(body, "batch_size")),
                         json_array_size(json_object_get(body, "events")));
    else
        assert_non_null(json_object_get(body, "event_id"));
    json_decref(body);
    free(out);
    free(err);
    kg_http_receiver_stop(r);
}


/* Every accepted request carries an Idempotency-Key equal to its body's
 * batch_id; returns how many requests repeated a key seen before. */
static size_t repeated_keys(kg_http_receiver_t *r)
{
    size_t n = kg_http_receiver_kept(r), repeats = 0;
    for (size_t i = 0; i < n; i++) {
        const kg_http_request *q = kg_http_receiver_request(r, i);
        char key[128];
        assert_true(kg_http_request_header(q, "Idempotency-Key", key, sizeof key));
        json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(body, "batch_id"));
        if (!id || strcmp(id, key) != 0)
            fail_msg("request %zu: Idempotency-Key %s, batch_id %s", i, key, id ? id : "(none)");
        json_decref(body);
        for (size_t k = 0; k < i; k++) {
            char other[128];
            if (kg_http_request_header(kg_http_receiver_request(r, k), "Idempotency-Key", other,
                                       sizeof other) &&
                strcmp(other, key) == 0) {
                repeats++;
                break;
            }
        }
    }
    return repeats;
}

/* A receiver that takes 1.5 s to answer: with --webhook-timeout 5 every
 * batch is acknowledged once; with 0.5 each POST times out, the timeouts
 * are counted as failed batches and shown so (with the reason), the run
 * exits 3 within its bounds (flush: 3 s, at least the request timeout +
 * 0.5 s; then shutdown_timeout 3 s), and the copies the receiver stored carry the same
 * Idempotency-Key as the batch they repeat. */
static void test_demo_http_slow_receiver(void **state)
{
    (void)state;
    kg_http_receiver_t *r = kg_http_receiver_start();
    assert_non_null(r);
    kg_http_receiver_set_stall(r, 1.5);
    kg_http_receiver_set_mode(r, KG_HTTP_RECEIVER_SLOW);
    const char *patient[] = {"demo", "--backend", "http", "--webhook-url", kg_http_receiver_url(r),
                             "--iterations", "1", "--batch-size", "5", "--webhook-timeout", "5",
                             NULL};
    char *out, *err;
    assert_exit(kgm_run(RUN_TIMEOUT, &out, &err, patient), 0, err);
    long long sent = number_after(out, ", sent ");
    assert_true(sent > 0);
    assert_contains(out, "failed batches 0");
    assert_int_equal(kg_http_receiver_events(r), (size_t)sent);
    assert_int_equal(repeated_keys(r), 0);
    free(out);
    free(err);

    kg_http_receiver_clear(r);
    const char *hasty[] = {"demo", "--backend", "http", "--webhook-url", kg_http_receiver_url(r),
                           "--iterations", "1", "--batch-size", "5", "--webhook-timeout", "0.5",
                           "--webhook-connect-timeout", "0.5", NULL};
    double t0 = kg_test_now();
    int rc = kgm_run(RUN_TIMEOUT, &out, &err, hasty);
    double took = kg_test_now() - t0;
    print_message("demo against a 1.5 s receiver with --webhook-timeout 0.5: exit %d after %.1f s\n%s%s",
                  rc, took, strstr(out, "Dispatcher:") ? strstr(out, "Dispatcher:") : out, err);
    assert_exit(rc, 3, err);
    long long failed = number_after(out, "failed batches ");
    assert_true(failed >= 1);
    assert_contains(out, "NOT connected");
    assert_contains(out, "last failure: ");
    assert_contains(out, "timed out");
    assert_contains(err, "not delivered");
    assert_contains(err, "timed out");
    /* flush 3 s, shutdown 3 s, the run itself and process start. */
    assert_true(took < 12);
    assert_true(kg_http_receiver_accepted(r) >= 2);
    assert_true(repeated_keys(r) >= 1);
    free(out);
    free(err);
    kg_http_receiver_stop(r);
}

/* Monitoring never stops the workflow: every iteration runs, then the
 * command says events were not delivered and exits 3. */
static void test_demo_redis_unreachable(void **state)
{
    (void)state;
    char port[16];
    int hold;
    snprintf(port, sizeof port, "%d", kg_test_refused_port(&hold));
    char *out, *err;
    int rc = kgm_runl(RUN_TIMEOUT, &out, &err, "demo", "--backend", "redis", "--redis-port", port,
                      "--iterations", "4", "--batch-size", "10", NULL);
    close(hold);
    assert_exit(rc, 3, err);
    assert_contains(out, "[4/4] ");
    assert_contains(out, "Runs: 4 in");
    assert_contains(out, ", 0 failed)");
    assert_contains(err, "not delivered");
    assert_contains(err, "redis");
    free(out);
    free(err);
}

static void test_demo_embedded_dashboard(void **state)
{
    (void)state;
    int port = kg_test_free_port();
    char dash[32];
    snprintf(dash, sizeof dash, "--dashboard=%d", port);
    const char *argv[] = {"demo", dash, "--iterations", "2", "--node-delay", "0", "--bind",
                          "127.0.0.1", "--token", "tok123", NULL};
    kgm_proc p;
    assert_int_equal(kgm_start(&p, false, argv), 0);
    assert_true(kgm_wait_stdout(&p, "Serving the dashboard", 60));
    char *out = kgm_stdout(&p);
    assert_int_equal(kgm_dashboard_port(out), port);
    assert_contains(out, "?token=tok123");
    long long sent = number_after(out, ", sent ");

    kg_thttp_resp r;
    assert_int_equal(kg_thttp(port, "GET", "/healthz", NULL, NULL, 0, &r), 200);   /* no token needed */
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", NULL, NULL, 0, &r), 401);
    kg_thttp_resp_free(&r);
    assert_int_equal(kg_thttp(port, "GET", "/api/metrics", "Authorization: Bearer tok123\r\n", NULL,
                              0, &r), 200);
    json_error_t je;
    json_t *m = json_loads(r.body, 0, &je);
    assert_non_null(m);
    /* The embedded dashboard saw every event the monitor had sent (and
     * perhaps periodic metric events since). */
    long long total = json_integer_value(json_object_get(m, "total_events"));
    if (sent <= 0 || total < sent)
        fail_msg("dashboard total_events %lld, demo sent %lld", total, sent);
    json_decref(m);
    kg_thttp_resp_free(&r);
    free(out);

    kgm_signal(&p, SIGINT);
    assert_true(kgm_wait(&p, 30));
    char *err = kgm_stderr(&p);
    assert_exit(p.status, 0, err);
    free(err);
    kgm_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_mock),
        cmocka_unit_test(test_demo_deterministic),
        cmocka_unit_test(test_demo_file),
        cmocka_unit_test(test_demo_http),
        cmocka_unit_test(test_demo_http_slow_receiver),
        cmocka_unit_test(test_demo_redis_unreachable),
        cmocka_unit_test(test_demo_embedded_dashboard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
