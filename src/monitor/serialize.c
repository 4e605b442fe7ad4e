/* serialize.c - records to JSON events; UUIDs and timestamps.  See
 * serialize.h for why events are written directly instead of via jansson. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kaygraph/monitor.h"
#include "monitor/serialize.h"

/* ---- buffer ------------------------------------------------------------------ */

static bool buf_reserve(kg_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void kg_buf_reset(kg_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

void kg_buf_free(kg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void kg_buf_append(kg_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void kg_buf_puts(kg_buf *b, const char *s)
{
    kg_buf_append(b, s, strlen(s));
}

void kg_buf_printf(kg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void kg_buf_u64(kg_buf *b, uint64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    kg_buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Most strings (ids, names) need no escaping: copy them in one go. */
static bool json_plain(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] >= 0x80 || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

void kg_buf_json_string(kg_buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (json_plain(s, n)) {
        if (!buf_reserve(b, n + 2))
            return;
        char *o = b->data + b->len;
        o[0] = '"';
        memcpy(o + 1, s, n);
        o[n + 1] = '"';
        b->len += n + 2;
        b->data[b->len] = '\0';
        return;
    }
    /* Worst case every byte becomes \u00XX (6) or U+FFFD (3). */
    if (!buf_reserve(b, n * 6 + 2))
        return;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            *o++ = (char)c;
            i++;
        } else if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (esc) {
                memcpy(o, esc, 2);
                o += 2;
            } else {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            }
            i++;
        } else {
            size_t len = utf8_seq_len(s + i, n - i);
            if (len) {
                memcpy(o, s + i, len);
                o += len;
                i += len;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                i++;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

/* ---- ids and time ------------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t kg_rng_next(kg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void kg_rng_seed(kg_rng *r)
{
    if (getrandom(r->s, sizeof r->s, 0) != (ssize_t)sizeof r->s) {
        /* No entropy source: fall back to clock and address bits, enough
         * for ids that only need to be unlikely to collide. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->s[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
        r->s[1] = (uint64_t)(uintptr_t)r ^ 0x9E3779B97F4A7C15u;
        r->s[2] = r->s[0] * 0xBF58476D1CE4E5B9u;
        r->s[3] = r->s[1] ^ 0x94D049BB133111EBu;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static void uuid_format(char out[37], uint64_t hi, uint64_t lo)
{
    static const char hex[] = "0123456789abcdef";
    int pos = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[pos++] = '-';
        uint64_t word = i < 16 ? hi : lo;
        int shift = 60 - 4 * (i % 16);
        out[pos++] = hex[(word >> shift) & 15];
    }
    out[36] = '\0';
}

void kg_uuid_v7(char out[37], int64_t unix_ms, kg_rng *rng)
{
    uint64_t r1 = kg_rng_next(rng), r2 = kg_rng_next(rng);
    uint64_t hi = ((uint64_t)unix_ms << 16) | 0x7000u | (r1 & 0x0FFFu);
    uint64_t lo = (r2 & 0x3FFFFFFFFFFFFFFFu) | 0x8000000000000000u;
    uuid_format(out, hi, lo);
}

void kg_uuid_from_ids(char out[37], uint64_t instance, uint64_t id)
{
    /* Version 8 ("custom"): 48 bits of the instance, the version nibble,
     * 12 more instance bits, the variant, then the 62-bit counter. */
    uint64_t hi = (instance & 0xFFFFFFFFFFFF0000u) | 0x8000u | (instance & 0x0FFFu);
    uint64_t lo = (id & 0x3FFFFFFFFFFFFFFFu) | 0x8000000000000000u;
    uuid_format(out, hi, lo);
}

void kg_iso8601(char out[32], int64_t unix_ns)
{
    time_t sec = (time_t)(unix_ns / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%06ldZ", date, (long)((unix_ns % 1000000000) / 1000));
}

/* kg_iso8601 with the date-time part cached per second: gmtime_r and the
 * formatting dominate otherwise. */
static void timestamp_cached(kg_serializer *s, int64_t unix_ns, kg_buf *out)
{
    int64_t sec = unix_ns / 1000000000;
    if (sec != s->cached_sec || !s->cached_prefix[0]) {
        char full[32];
        kg_iso8601(full, unix_ns);
        memcpy(s->cached_prefix, full, 19);   /* "YYYY-MM-DDTHH:MM:SS" */
        s->cached_prefix[19] = '\0';
        s->cached_sec = sec;
    }
    unsigned us = (unsigned)((unix_ns % 1000000000) / 1000);
    char frac[8];
    for (int i = 5; i >= 0; i--) {
        frac[i] = (char)('0' + us % 10);
        us /= 10;
    }
    kg_buf_append(out, "\"", 1);
    kg_buf_append(out, s->cached_prefix, 19);
    kg_buf_append(out, ".", 1);
    kg_buf_append(out, frac, 6);
    kg_buf_append(out, "Z\"", 2);
}

/* ---- events ------------------------------------------------------------------- */

static const char *phase_str(uint8_t phase)
{
    static const char *const names[] = {NULL, "prep", "exec", "post"};
    return phase < 4 ? names[phase] : NULL;
}

static void key_string(kg_buf *b, const char *key, const char *value)
{
    kg_buf_puts(b, key);
    kg_buf_json_string(b, value, strlen(value));
}

/* Seconds and metric values: nanosecond precision, written without printf
 * (it dominated the writer's profile) for the usual non-negative range. */
static void key_double(kg_buf *b, const char *key, double v)
{
    kg_buf_puts(b, key);
    if (!(v >= 0 && v < 1e9)) {
        kg_buf_printf(b, "%.9g", isfinite(v) ? v : 0.0);
        return;
    }
    uint64_t ns = (uint64_t)llround(v * 1e9);
    kg_buf_u64(b, ns / 1000000000u);
    uint64_t frac = ns % 1000000000u;
    if (!frac)
        return;
    char digits[10] = ".";
    int len = 9;
    while (frac % 10 == 0) {
        frac /= 10;
        len--;
    }
    for (int i = len; i >= 1; i--, frac /= 10)
        digits[i] = (char)('0' + frac % 10);
    kg_buf_append(b, digits, (size_t)len + 1);
}

/* Members of a FIELDS/GRAPH payload object, appended inside "data". */
static void payload_members(kg_buf *b, const kg_record *r)
{
    if (r->payload_kind == KG_PAYLOAD_GRAPH) {
        kg_buf_puts(b, ",\"graph\":");
        kg_buf_append(b, r->payload.shared->text, r->payload.shared->len);
        return;
    }
    json_t *o = r->payload.json;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        kg_buf_puts(b, ",");
        kg_buf_json_string(b, key, strlen(key));
        kg_buf_puts(b, ":");
        size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n && buf_reserve(b, n)) {
            json_dumpb(v, b->data + b->len, n, JSON_COMPACT | JSON_ENCODE_ANY);
            b->len += n;
            b->data[b->len] = '\0';
        }
    }
}

static void snapshot_member(kg_buf *b, const kg_record *r)
{
    const char *text = r->payload.text;
    if (r->flags & KG_REC_TRUNCATED) {
        kg_buf_printf(b, ",\"snapshot\":{\"truncated\":true,\"original_size\":%u,\"preview\":",
                      r->snapshot_size);
        kg_buf_json_string(b, text, strlen(text));
        kg_buf_puts(b, "}");
    } else {
        kg_buf_puts(b, ",\"snapshot\":{\"truncated\":false,\"data\":");
        kg_buf_puts(b, text);
        kg_buf_puts(b, "}");
    }
}

static void action_member(kg_buf *b, const char *key, const kg_record *r)
{
    if (r->flags & KG_REC_HAS_ACTION)
        key_string(b, key, r->action);
    else {
        kg_buf_puts(b, key);
        kg_buf_puts(b, "null");
    }
}

/* The "data" object: what each event name carries (DESIGN.md's table). */
static void data_object(kg_serializer *s, const kg_record *r, kg_buf *b)
{
    const char *phase = phase_str(r->phase);
    switch ((kg_event_name)r->name) {
    case KG_EV_WORKFLOW_STARTED:
        kg_buf_puts(b, "{\"state\":\"running\"");
        if (r->parent_run_id) {
            char parent[37];
            kg_uuid_from_ids(parent, s->instance, r->parent_run_id);
            key_string(b, ",\"parent_workflow_id\":", parent);
        }
        break;
    case KG_EV_WORKFLOW_COMPLETED:
        kg_buf_puts(b, r->flags & KG_REC_FAILED ? "{\"status\":\"failed\"" : "{\"status\":\"success\"");
        action_member(b, ",\"final_action\":", r);
        key_double(b, ",\"duration\":", r->value);
        break;
    case KG_EV_NODE_STARTED:
        kg_buf_puts(b, "{\"state\":\"started\"");
        break;
    case KG_EV_NODE_PREPARING:
        kg_buf_puts(b, "{\"state\":\"preparing\"");
        break;
    case KG_EV_NODE_EXECUTING:
        kg_buf_puts(b, "{\"state\":\"executing\"");
        break;
    case KG_EV_NODE_COMPLETED:
        kg_buf_puts(b, "{\"state\":\"completed\"");
        /* The action the graph routes on: "default" when post gave none. */
        key_string(b, ",\"next_action\":",
                   r->flags & KG_REC_HAS_ACTION ? r->action : KG_DEFAULT_ACTION);
        key_double(b, ",\"total_execution_time\":", r->value);
        if (r->flags & KG_REC_SUPPRESSED)
            kg_buf_puts(b, ",\"error_suppressed\":true");
        break;
    case KG_EV_DATA_INPUT:
    case KG_EV_DATA_OUTPUT:
        kg_buf_puts(b, r->flags & KG_REC_HAS_DATA ? "{\"has_data\":true" : "{\"has_data\":false");
        break;
    case KG_EV_NODE_FAILED:
        kg_buf_puts(b, "{\"state\":\"failed\"");
        key_double(b, ",\"total_execution_time\":", r->value);
        break;
    case KG_EV_RETRY_ATTEMPTED:
    case KG_EV_FALLBACK_TRIGGERED:
        kg_buf_printf(b, "{\"attempt\":%u,\"max_retries\":%u", r->attempt, r->max_retries);
        break;
    case KG_EV_ERROR_SUPPRESSED:
        kg_buf_puts(b, "{\"suppressed\":true");
        break;
    case KG_EV_EXECUTION_TIME:
        key_double(b, "{\"value\":", r->value);
        kg_buf_puts(b, ",\"unit\":\"seconds\"");
        break;
    case KG_EV_QUEUE_DEPTH:
        key_double(b, "{\"value\":", r->value);
        kg_buf_printf(b, ",\"unit\":\"events\",\"capacity\":%u", r->snapshot_size);
        break;
    case KG_EV_THROUGHPUT_METRIC:
        key_double(b, "{\"value\":", r->value);
        kg_buf_puts(b, ",\"unit\":\"events/s\"");
        break;
    case KG_EV_EVENTS_DROPPED:
        key_double(b, "{\"value\":", r->value);
        kg_buf_puts(b, ",\"unit\":\"events\"");
        break;
    default:
        kg_buf_puts(b, "{");
        break;
    }
    if (phase)
        key_string(b, ",\"phase\":", phase);
    if (r->item >= 0)
        kg_buf_printf(b, ",\"item\":%d", r->item);
    if (r->payload_kind == KG_PAYLOAD_SNAPSHOT)
        snapshot_member(b, r);
    else if (r->payload_kind != KG_PAYLOAD_NONE)
        payload_members(b, r);
    kg_buf_puts(b, "}");
}

/* Consecutive events of a partition mostly share their run and execution, so
 * the last id's text is kept rather than formatted again. */
static const char *uuid_cached(kg_serializer *s, kg_uuid_cache *c, uint64_t id)
{
    if (c->id != id || !c->text[0]) {
        kg_uuid_from_ids(c->text, s->instance, id);
        c->id = id;
    }
    return c->text;
}

void kg_serialize_record(kg_serializer *s, const kg_record *r, kg_buf *b, kg_event_view *view,
                         kg_view_strings *str)
{
    kg_event_name name = (kg_event_name)r->name;
    const char *type = kg_event_type_str(kg_event_name_type(name));
    int64_t ms = r->ts_ns / 1000000;

    kg_uuid_v7(str->event_id, ms, &s->rng);
    if (r->run_id)
        memcpy(str->workflow_id, uuid_cached(s, &s->run_cache, r->run_id), 37);
    else
        str->workflow_id[0] = '\0';
    str->json_off = b->len;

    key_string(b, "{\"event_id\":", str->event_id);
    kg_buf_puts(b, ",\"timestamp\":");
    timestamp_cached(s, r->ts_ns, b);
    key_string(b, ",\"node_id\":", r->node_id);
    key_string(b, ",\"node_type\":", r->node_type);
    if (r->path) {
        kg_buf_puts(b, ",\"node_path\":");
        kg_buf_json_string(b, r->path->text + r->path_off, r->path->len - r->path_off);
    }
    kg_buf_puts(b, ",\"event_type\":\"");
    kg_buf_puts(b, type);
    kg_buf_puts(b, "\",\"event_name\":\"");
    kg_buf_puts(b, kg_event_name_str(name));
    kg_buf_puts(b, "\",\"data\":");
    data_object(s, r, b);
    /* A node execution's events share its id; a run's own events (workflow
     * started/completed) use the run's id, as the run is their execution. */
    if (r->exec_id || r->run_id) {
        kg_buf_puts(b, ",\"correlation_id\":\"");
        kg_buf_append(b, uuid_cached(s, &s->exec_cache, r->exec_id ? r->exec_id : r->run_id), 36);
        kg_buf_puts(b, "\"");
    } else {
        kg_buf_puts(b, ",\"correlation_id\":\"\"");   /* dispatcher metrics: no run */
    }
    key_string(b, ",\"workflow_id\":", str->workflow_id);
    kg_buf_puts(b, ",\"seq\":");
    kg_buf_u64(b, r->seq);
    kg_buf_puts(b, ",\"source\":");
    kg_buf_puts(b, s->source_json);
    kg_buf_puts(b, "}");
    view->json_len = b->len - str->json_off;
    kg_buf_append(b, "", 1);   /* each event's text is NUL-terminated in place */

    view->event_type = type;
    view->event_name = kg_event_name_str(name);
    view->node_id = r->node_id;
    view->timestamp_ms = ms;
    view->seq = r->seq;
}

void kg_view_fix(kg_event_view *view, const kg_view_strings *str, const kg_buf *out)
{
    view->event_id = str->event_id;
    view->workflow_id = str->workflow_id;
    view->json = out->data + str->json_off;
}
