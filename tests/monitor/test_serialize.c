/* test_serialize.c - the event writer's building blocks: JSON string escaping
 * (control characters, quotes, invalid UTF-8), UUIDs, timestamps, integers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "monitor/serialize.h"
#include "util/iso8601.h"
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
    /* The cached form writes the same UUID for the same random bits. */
    kg_uuid_ms_cache cache = {0};
    for (int64_t ms = 1700000000000; ms < 1700000000003; ms++) {
        for (int i = 0; i < 3; i++) {
            kg_rng copy = rng;
            kg_uuid_v7(a, ms, &rng);
            kg_uuid_v7_cached(b, ms, &copy, &cache);
            assert_string_equal(a, b);
        }
    }
    kg_uuid_from_ids(a, 0x123456789abcdef0u, 42);
    kg_uuid_from_ids(b, 0x123456789abcdef0u, 42);
    assert_string_equal(a, b);       /* stable */
    assert_int_equal(a[14], '8');
    char ts[32];
    kg_iso8601_format(ts, 1795887373123456789LL);
    assert_string_equal(ts, "2026-11-28T17:36:13.123456Z");
    kg_buf buf = {0};
    kg_buf_u64(&buf, 0);
    kg_buf_u64(&buf, 18446744073709551615u);
    assert_string_equal(buf.data, "018446744073709551615");
    kg_buf_free(&buf);
    /* Every digit count, at each power of ten and either side of it. */
    uint64_t p = 1;
    for (int i = 0; i < 20; i++, p *= (i < 20 ? 10 : 1)) {
        uint64_t around[3] = {p - 1, p, p + 1};
        for (int k = 0; k < 3; k++) {
            char want[32];
            snprintf(want, sizeof want, "%llu", (unsigned long long)around[k]);
            kg_buf_u64(&buf, around[k]);
            assert_string_equal(buf.data, want);
            kg_buf_free(&buf);
        }
    }
}

/* Seconds are written with nanosecond precision and no trailing zeros
 * (from 1e9 s on, as %.9g); the value read back is the input to the
 * nanosecond. */
static void test_seconds_round_trip(void **state)
{
    static const double values[] = {0, 1, 2.5, 0.000000001, 0.0000005, 0.000123456789, 12.5,
                                    999999999.999999999, 1e9, 3e10, 0.1 + 0.2};
    static const char *const texts[] = {"0", "1", "2.5", "0.000000001", "0.0000005",
                                        "0.000123457", "12.5", "1e+09", "1e+09", "3e+10",
                                        "0.3"};
    kg_serializer s;
    kg_serializer_init(&s, 1, "{}", 16);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        kg_record r = {.run_id = 1, .exec_id = 2, .v.value = values[i], .item = -1,
                       .name = KG_EV_EXECUTION_TIME};
        kg_buf b = {0};
        kg_event_view view;
        kg_view_strings str;
        kg_serialize_event(&s, &r, KG_EV_EXECUTION_TIME, 7, true, &b, &view, &str);
        kg_view_fix(&view, &str, &b);
        json_t *ev = json_loadb(view.json, view.json_len, 0, NULL);
        assert_non_null(ev);
        json_t *v = json_object_get(json_object_get(ev, "data"), "value");
        assert_true(fabs(json_number_value(v) - values[i]) <= 1e-9 * (values[i] > 1 ? values[i] : 1));
        if (texts[i]) {
            char want[64];
            snprintf(want, sizeof want, "\"value\":%s,", texts[i]);
            assert_non_null(strstr(view.json, want));
        }
        assert_int_equal(view.seq, 7);
        json_decref(ev);
        kg_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string_escaping),
        cmocka_unit_test(test_uuids_and_time),
        cmocka_unit_test(test_seconds_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
