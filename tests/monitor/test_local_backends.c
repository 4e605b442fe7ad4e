/* test_local_backends.c - the in-process backends: mock (fault injection,
 * breakdown, kept events), file (JSON Lines, errors), tee (no duplicates to a
 * healthy backend when a sibling fails). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"

static kg_event_view views[3];

static kg_batch make_batch(uint64_t first_seq)
{
    static const char *const json[] = {"{\"event_name\":\"node_started\",\"n\":1}",
                                       "{\"event_name\":\"node_completed\",\"n\":2}",
                                       "{\"event_name\":\"node_started\",\"n\":3}"};
    for (int i = 0; i < 3; i++) {
        views[i] = (kg_event_view){.json = json[i], .json_len = strlen(json[i]),
                                   .event_id = "00000000-0000-7000-8000-000000000000",
                                   .event_type = "lifecycle",
                                   .event_name = i == 1 ? "node_completed" : "node_started",
                                   .node_id = "n", .workflow_id = "", .seq = first_seq + (uint64_t)i};
    }
    return (kg_batch){.events = views, .count = 3};
}

static uint64_t events_of(kg_backend_t *mock)
{
    kg_mock_stats s;
    kg_mock_backend_stats(mock, &s);
    return s.events;
}

static void test_mock_counts_keeps_and_fails_on_demand(void **state)
{
    kg_backend_t *mock = kg_mock_backend_new(NULL, NULL);
    kg_batch b = make_batch(1);
    kg_mock_backend_fail(mock, 2);
    assert_int_equal(kg_backend_send_batch(mock, 0, &b), KG_EBACKEND);
    assert_int_equal(kg_backend_send_batch(mock, 0, &b), KG_EBACKEND);
    assert_int_equal(kg_backend_send_batch(mock, 0, &b), 0);
    kg_mock_stats s;
    kg_mock_backend_stats(mock, &s);
    assert_int_equal(s.failed_batches, 2);
    assert_int_equal(s.events, 3);
    json_t *by_name = kg_mock_backend_breakdown(mock);
    assert_int_equal(json_integer_value(json_object_get(by_name, "node_started")), 2);
    assert_int_equal(json_integer_value(json_object_get(by_name, "node_completed")), 1);
    json_decref(by_name);
    json_t *kept = kg_mock_backend_events(mock, 2);
    assert_int_equal(json_array_size(kept), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(kept, 1), "n")), 3);
    json_decref(kept);
    kg_mock_backend_set_connected(mock, false);
    assert_false(kg_backend_is_connected(mock));
    assert_int_equal(kg_backend_send_batch(mock, 0, &b), KG_EBACKEND);
    kg_mock_backend_clear(mock);
    assert_int_equal(events_of(mock), 0);
    kg_backend_free(mock);
}

static void test_file_writes_one_line_per_event(void **state)
{
    char path[] = "/tmp/kg_file_XXXXXX";
    close(mkstemp(path));
    kg_backend_t *file = kg_file_backend_new(path, NULL);
    assert_int_equal(kg_backend_connect(file, 2), 0);
    kg_batch b = make_batch(1);
    assert_int_equal(kg_backend_send_batch(file, 1, &b), 0);
    assert_int_equal(kg_backend_send_batch(file, 0, &b), 0);
    kg_backend_free(file);
    FILE *fp = fopen(path, "r");
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        json_decref(ev);
        n++;
    }
    fclose(fp);
    unlink(path);
    assert_int_equal(n, 6);
}

static void test_file_reports_unwritable_path(void **state)
{
    kg_error_t err;
    assert_null(kg_file_backend_new("", &err));
    assert_int_equal(err.code, KG_EINVAL);
    kg_backend_t *file = kg_file_backend_new("/nonexistent-dir/x.jsonl", NULL);
    assert_int_equal(kg_backend_connect(file, 1), KG_EIO);
    kg_batch b = make_batch(1);
    assert_int_equal(kg_backend_send_batch(file, 0, &b), KG_EIO);
    assert_false(kg_backend_is_connected(file));
    kg_backend_free(file);
}

static void test_tee_does_not_duplicate_on_retry(void **state)
{
    kg_backend_t *healthy = kg_mock_backend_new(NULL, NULL);
    kg_backend_t *flaky = kg_mock_backend_new(NULL, NULL);
    kg_backend_t *both[2] = {healthy, flaky};
    kg_backend_t *tee = kg_tee_backend_new(both, 2, NULL);
    assert_int_equal(kg_backend_connect(tee, 1), 0);
    kg_mock_backend_fail(flaky, 1);
    kg_batch b = make_batch(10);
    assert_int_equal(kg_backend_send_batch(tee, 0, &b), KG_EBACKEND);
    assert_int_equal(kg_backend_send_batch(tee, 0, &b), 0);   /* the retry */
    assert_int_equal(events_of(healthy), 3);
    assert_int_equal(events_of(flaky), 3);
    kg_batch next = make_batch(13);   /* a new batch goes to both */
    assert_int_equal(kg_backend_send_batch(tee, 0, &next), 0);
    assert_int_equal(events_of(healthy), 6);
    assert_int_equal(events_of(flaky), 6);
    kg_backend_free(tee);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mock_counts_keeps_and_fails_on_demand),
        cmocka_unit_test(test_file_writes_one_line_per_event),
        cmocka_unit_test(test_file_reports_unwritable_path),
        cmocka_unit_test(test_tee_does_not_duplicate_on_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
