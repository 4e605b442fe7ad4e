/* test_serialize.c - the event writer's building blocks: JSON string escaping
 * (control characters, quotes, invalid UTF-8), UUIDs, timestamps, integers. */
#include <string.h>

#include "monitor/serialize.h"
#include "testutil.h"

static void assert_json_string(const char *in, size_t n, const char *expected)
{
    kg_buf b = {0};
    kg_buf_json_string(&b, in, n);
    assert_string_equal(b.data, expected);
    json_error_t err;
    json_t *parsed = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
    assert_non_null(parsed);   /* always valid JSON */
    json_decref(parsed);
    kg_buf_free(&b);
}

static void test_json_string_escaping(void **state)
{
    assert_json_string("plain", 5, "\"plain\"");
    assert_json_string("q\"b\\", 4, "\"q\\\"b\\\\\"");
    assert_json_string("a\nb\t\x01", 5, "\"a\\nb\\t\\u0001\"");
    assert_json_string("<script>alert(1)</script>", 25, "\"<script>alert(1)</script>\"");
    assert_json_string("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");                 /* valid UTF-8 kept */
    assert_json_string("bad\xff\xfe", 5, "\"bad\xef\xbf\xbd\xef\xbf\xbd\""); /* replaced */
    assert_json_string("cut\xe2\x82", 5, "\"cut\xef\xbf\xbd\xef\xbf\xbd\""); /* truncated sequence */
    assert_json_string("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");  /* surrogate */
}

static void test_uuids_and_time(void **state)
{
    kg_rng rng;
    kg_rng_seed(&rng);
    char a[37], b[37];
    kg_uuid_v7(a, 1700000000000, &rng);
    kg_uuid_v7(b, 1700000000001, &rng);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '7');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_true(strcmp(a, b) < 0);   /* time-ordered */
    kg_uuid_from_ids(a, 0x123456789abcdef0u, 42);
    kg_uuid_from_ids(b, 0x123456789abcdef0u, 42);
    assert_string_equal(a, b);       /* stable */
    assert_int_equal(a[14], '8');
    char ts[32];
    kg_iso8601(ts, 1795887373123456789LL);
    assert_string_equal(ts, "2026-11-28T17:36:13.123456Z");
    kg_buf buf = {0};
    kg_buf_u64(&buf, 0);
    kg_buf_u64(&buf, 18446744073709551615u);
    assert_string_equal(buf.data, "018446744073709551615");
    kg_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_uuids_and_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
