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
#include "util/clock.h"
#include "util/iso8601.h"

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

/* Two hex digits per byte from a table: formatting nibble by nibble was
 * most of a UUID's cost. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static inline void hex_byte(char *out, uint64_t word, int shift)
{
    memcpy(out, hex_pairs + ((word >> shift) & 0xFF) * 2, 2);
}

/* The 8 hex digits of a 32-bit value, most significant first, computed in
 * one 64-bit word: spread the nibbles into bytes, then map 0-9/10-15 to
 * '0'-'9'/'a'-'f' for all eight at once. */
static inline void hex_u32(char *out, uint32_t v)
{
    uint64_t x = v;
    x = ((x & 0xFFFF0000u) << 16) | (x & 0xFFFFu);
    x = ((x & 0x0000FF000000FF00u) << 8) | (x & 0x000000FF000000FFu);
    x = ((x & 0x00F000F000F000F0u) << 4) | (x & 0x000F000F000F000Fu);
    /* Now byte k (from the least significant) holds nibble k; the output
     * wants the most significant nibble first, i.e. the bytes reversed. */
    uint64_t letters = ((x + 0x0606060606060606u) >> 4) & 0x0101010101010101u;
    x += 0x3030303030303030u + letters * 0x27;
    x = __builtin_bswap64(x);
    memcpy(out, &x, 8);
}

static void uuid_format(char out[37], uint64_t hi, uint64_t lo)
{
    hex_byte(out + 0, hi, 56);
    hex_byte(out + 2, hi, 48);
    hex_byte(out + 4, hi, 40);
    hex_byte(out + 6, hi, 32);
    out[8] = '-';
    hex_byte(out + 9, hi, 24);
    hex_byte(out + 11, hi, 16);
    out[13] = '-';
    hex_byte(out + 14, hi, 8);
    hex_byte(out + 16, hi, 0);
    out[18] = '-';
    hex_byte(out + 19, lo, 56);
    hex_byte(out + 21, lo, 48);
    out[23] = '-';
    hex_byte(out + 24, lo, 40);
    hex_byte(out + 26, lo, 32);
    hex_byte(out + 28, lo, 24);
    hex_byte(out + 30, lo, 16);
    hex_byte(out + 32, lo, 8);
    hex_byte(out + 34, lo, 0);
    out[36] = '\0';
}

/* The 48-bit time of a v7 UUID is its first 12 hex digits and a dash
 * (13 chars); consecutive events mostly share the millisecond. */
void kg_uuid_v7_cached(char out[37], int64_t unix_ms, kg_rng *rng, kg_uuid_ms_cache *c)
{
    if (c->ms != unix_ms || !c->text[0]) {
        uint64_t hi = (uint64_t)unix_ms << 16;
        hex_byte(c->text + 0, hi, 56);
        hex_byte(c->text + 2, hi, 48);
        hex_byte(c->text + 4, hi, 40);
        hex_byte(c->text + 6, hi, 32);
        c->text[8] = '-';
        hex_byte(c->text + 9, hi, 24);
        hex_byte(c->text + 11, hi, 16);
        c->text[13] = '-';
        c->ms = unix_ms;
    }
    uint64_t r1 = kg_rng_next(rng), r2 = kg_rng_next(rng);
    uint64_t lo = (r2 & 0x3FFFFFFFFFFFFFFFu) | 0x8000000000000000u;
    /* "7xxx-yyyy" from 0x7xxx << 16 | lo's top 16 bits, then the rest. */
    char mid[8];
    hex_u32(mid, (uint32_t)((0x7000u | (r1 & 0x0FFFu)) << 16 | (lo >> 48)));
    memcpy(out, c->text, 14);
    memcpy(out + 14, mid, 4);
    out[18] = '-';
    memcpy(out + 19, mid + 4, 4);
    out[23] = '-';
    hex_u32(out + 24, (uint32_t)(lo >> 16));
    hex_byte(out + 32, lo, 8);
    hex_byte(out + 34, lo, 0);
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


/* ---- events ------------------------------------------------------------------- */

/* The writer below reserves an event's worst case once and then writes
 * through a cursor: appending fragment by fragment, with a strlen and a
 * capacity check each, was a third of the dispatcher's instructions. */
#define W_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) += sizeof(lit) - 1)


/* Seconds and metric values: nanosecond precision, written without printf
 * for the usual non-negative range (at most 31 bytes). */
static char *w_seconds(char *o, double v)
{
    if (!(v >= 0 && v < 1e9))
        return o + snprintf(o, 32, "%.9g", isfinite(v) ? v : 0.0);
    uint64_t ns = (uint64_t)llround(v * 1e9);
    o = kg_write_u64(o, ns / 1000000000u);
    uint32_t frac = (uint32_t)(ns % 1000000000u);
    if (!frac)
        return o;
    /* All nine digits, then the trailing zeros taken back. */
    *o = '.';
    char *p = o + 9;
    memcpy(p - 1, kg_digit_pairs + (frac % 100) * 2, 2);
    memcpy(p - 3, kg_digit_pairs + (frac / 100 % 100) * 2, 2);
    memcpy(p - 5, kg_digit_pairs + (frac / 10000 % 100) * 2, 2);
    memcpy(p - 7, kg_digit_pairs + (frac / 1000000 % 100) * 2, 2);
    p[-8] = (char)('0' + frac / 100000000);
    int len = 9;
    while (o[len] == '0')
        len--;
    return o + len + 1;
}

/* kg_iso8601_format with the date-time part cached per second: gmtime_r and the
 * formatting dominate otherwise.  Writes the quoted timestamp (29 bytes). */
static char *w_timestamp(kg_serializer *s, char *o, int64_t unix_ns)
{
    int64_t sec = unix_ns / 1000000000;
    if (sec != s->cached_sec || !s->cached_prefix[0]) {
        char full[32];
        kg_iso8601_format(full, unix_ns);
        memcpy(s->cached_prefix, full, 19);   /* "YYYY-MM-DDTHH:MM:SS" */
        s->cached_prefix[19] = '\0';
        s->cached_sec = sec;
    }
    unsigned us = (unsigned)((unix_ns % 1000000000) / 1000);
    *o++ = '"';
    memcpy(o, s->cached_prefix, 19);
    o[19] = '.';
    o += 20;
    memcpy(o, kg_digit_pairs + (us / 10000) * 2, 2);
    memcpy(o + 2, kg_digit_pairs + (us / 100 % 100) * 2, 2);
    memcpy(o + 4, kg_digit_pairs + (us % 100) * 2, 2);
    o += 6;
    *o++ = 'Z';
    *o++ = '"';
    return o;
}

static const char *phase_str(uint8_t phase)
{
    static const char *const names[] = {NULL, "prep", "exec", "post"};
    return phase < 4 ? names[phase] : NULL;
}

/* Members of a FIELDS object (error details), appended inside "data". */
static void fields_members(kg_buf *b, json_t *o)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        kg_buf_puts(b, ",");
        kg_buf_json_string(b, key, strlen(key));
        kg_buf_puts(b, ":");
        size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n && kg_buf_reserve(b, n)) {
            json_dumpb(v, b->data + b->len, n, JSON_COMPACT | JSON_ENCODE_ANY);
            b->len += n;
            b->data[b->len] = '\0';
        }
    }
}

static void snapshot_member(kg_buf *b, const kg_snapshot *snap)
{
    if (snap->truncated) {
        kg_buf_printf(b, ",\"snapshot\":{\"truncated\":true,\"original_size\":%u,\"preview\":",
                      snap->original_size);
        kg_buf_json_string(b, snap->text, strlen(snap->text));
        kg_buf_puts(b, "}");
    } else {
        kg_buf_puts(b, ",\"snapshot\":{\"truncated\":false,\"data\":");
        kg_buf_puts(b, snap->text);
        kg_buf_puts(b, "}");
    }
}

/* Free-form members of the record's first event: the topology, error
 * details, a data snapshot. */
static void payload_members(kg_buf *b, const kg_record *r)
{
    switch (kg_rec_kind(r)) {
    case KG_PAYLOAD_GRAPH:
        kg_buf_puts(b, ",\"graph\":");
        kg_buf_append(b, r->payload.shared->data, r->payload.shared->len);
        break;
    case KG_PAYLOAD_FIELDS:
        fields_members(b, r->payload.json);
        break;
    case KG_PAYLOAD_RUN_END:
        if (r->payload.run_end->fields)
            fields_members(b, r->payload.run_end->fields);
        break;
    case KG_PAYLOAD_SNAPSHOT:
        snapshot_member(b, r->payload.snapshot);
        break;
    default:
        break;
    }
}

/* The bytes the fixed part of an event can take, node names excluded: the
 * longest key set (workflow_completed, node_completed) with every number at
 * its longest, an action, the UUIDs, the timestamp. */
#define KG__EVENT_FIXED_MAX (768 + 6 * KG_ACTION_MAX)

/* The record's action, or NULL (see record.h for where it lives). */
static const char *record_action(const kg_record *r)
{
    switch (kg_rec_kind(r)) {
    case KG_PAYLOAD_ACTION:
        return r->payload.action;
    case KG_PAYLOAD_TEXT:
        return r->payload.text;
    case KG_PAYLOAD_RUN_END:
        return r->payload.run_end->action;
    default:
        return NULL;
    }
}

static char *w_action(char *o, const char *action, const char *none)
{
    if (action)
        return kg_write_json_string(o, action, strnlen(action, KG_ACTION_MAX - 1));
    size_t n = strlen(none);
    memcpy(o, none, n);
    return o + n;
}

/* The "data" object of event `name` up to (not including) its payload
 * members and closing brace: what each event carries (docs/events.md). */
static char *w_data_head(kg_serializer *s, char *o, const kg_record *r, kg_event_name name)
{
    switch (name) {
    case KG_EV_WORKFLOW_STARTED:
        W_LIT(o, "{\"state\":\"running\"");
        if (r->exec_id) {   /* the parent run */
            W_LIT(o, ",\"parent_workflow_id\":\"");
            kg_uuid_from_ids(o, s->instance, r->exec_id);
            o += 36;
            *o++ = '"';
        }
        break;
    case KG_EV_WORKFLOW_COMPLETED:
        if (kg_rec_flags(r) & KG_REC_FAILED)
            W_LIT(o, "{\"status\":\"failed\",\"final_action\":");
        else
            W_LIT(o, "{\"status\":\"success\",\"final_action\":");
        o = w_action(o, record_action(r), "null");
        W_LIT(o, ",\"duration\":");
        o = w_seconds(o, r->v.value);
        break;
    case KG_EV_NODE_STARTED:
        W_LIT(o, "{\"state\":\"started\"");
        break;
    case KG_EV_NODE_PREPARING:
        W_LIT(o, "{\"state\":\"preparing\"");
        break;
    case KG_EV_NODE_EXECUTING:
        W_LIT(o, "{\"state\":\"executing\"");
        break;
    case KG_EV_NODE_COMPLETED:
        /* The action the graph routes on: "default" when post gave none. */
        W_LIT(o, "{\"state\":\"completed\",\"next_action\":");
        o = w_action(o, record_action(r), "\"" KG_DEFAULT_ACTION "\"");
        W_LIT(o, ",\"total_execution_time\":");
        o = w_seconds(o, r->v.value);
        if (kg_rec_flags(r) & KG_REC_SUPPRESSED)
            W_LIT(o, ",\"error_suppressed\":true");
        break;
    case KG_EV_DATA_INPUT:
    case KG_EV_DATA_OUTPUT:
        if (kg_rec_flags(r) & KG_REC_HAS_DATA)
            W_LIT(o, "{\"has_data\":true");
        else
            W_LIT(o, "{\"has_data\":false");
        break;
    case KG_EV_NODE_FAILED:
        W_LIT(o, "{\"state\":\"failed\",\"total_execution_time\":");
        o = w_seconds(o, r->v.value);
        break;
    case KG_EV_RETRY_ATTEMPTED:
    case KG_EV_FALLBACK_TRIGGERED:
        W_LIT(o, "{\"attempt\":");
        o = kg_write_u64(o, r->v.retry.attempt);
        W_LIT(o, ",\"max_retries\":");
        o = kg_write_u64(o, r->v.retry.max_retries);
        break;
    case KG_EV_ERROR_SUPPRESSED:
        W_LIT(o, "{\"suppressed\":true");
        break;
    case KG_EV_EXECUTION_TIME:
        W_LIT(o, "{\"value\":");
        o = w_seconds(o, r->v.value);
        W_LIT(o, ",\"unit\":\"seconds\"");
        break;
    case KG_EV_QUEUE_DEPTH:
        W_LIT(o, "{\"value\":");
        o = w_seconds(o, r->v.value);
        W_LIT(o, ",\"unit\":\"events\",\"capacity\":");
        o = kg_write_u64(o, s->capacity);
        break;
    case KG_EV_THROUGHPUT_METRIC:
        W_LIT(o, "{\"value\":");
        o = w_seconds(o, r->v.value);
        W_LIT(o, ",\"unit\":\"events/s\"");
        break;
    case KG_EV_EVENTS_DROPPED:
        W_LIT(o, "{\"value\":");
        o = w_seconds(o, r->v.value);
        W_LIT(o, ",\"unit\":\"events\"");
        break;
    default:
        *o++ = '{';
        break;
    }
    const char *phase = phase_str((uint8_t)kg_rec_phase(r));
    if (phase) {
        W_LIT(o, ",\"phase\":\"");
        size_t n = strlen(phase);
        memcpy(o, phase, n);
        o += n;
        *o++ = '"';
    }
    if (r->item >= 0) {
        W_LIT(o, ",\"item\":");
        o = kg_write_u64(o, (uint64_t)r->item);
    }
    return o;
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

/* "event_type" and "event_name" of every name, rendered once, and the
 * strings a view names them by. */
static void fragments_init(kg_serializer *s)
{
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++) {
        kg_event_name n = (kg_event_name)i;
        s->type_str[i] = kg_event_type_str(kg_event_name_type(n));
        s->name_str[i] = kg_event_name_str(n);
        int len = snprintf(s->frag[i], sizeof s->frag[i],
                           ",\"event_type\":\"%s\",\"event_name\":\"%s\",\"data\":",
                           s->type_str[i], s->name_str[i]);
        s->frag_len[i] = (uint8_t)len;
    }
    s->source_len = strlen(s->source_json);
}

void kg_serializer_clock(kg_serializer *s)
{
    struct timespec real, mono;
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    s->wall_offset_ns = ((int64_t)real.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
                        (real.tv_nsec - mono.tv_nsec);
}

void kg_serializer_init(kg_serializer *s, uint64_t instance, const char *source_json,
                        size_t capacity)
{
    memset(s, 0, sizeof *s);
    s->instance = instance;
    s->source_json = source_json;
    s->capacity = capacity;
    kg_serializer_clock(s);
    kg_rng_seed(&s->rng);
    fragments_init(s);
}

/* The node's names as JSON members, rendered once per descriptor by
 * whichever worker needs them first and kept in the descriptor: the text is
 * `"node_id":…,"node_type":…` then a NUL then `,"node_path":…` for the
 * whole path (empty when the node has none).  NULL when out of memory. */
static const kg_text *node_members(const kg_node_desc *d)
{
    kg_node_desc *nd = (kg_node_desc *)d;   /* only the cache slot changes */
    kg_text *t = atomic_load_explicit(&nd->rendered, memory_order_acquire);
    if (t)
        return t;
    kg_buf b = {0};
    kg_buf_puts(&b, "\"node_id\":");
    kg_buf_json_string(&b, d->id, d->id_len);
    kg_buf_puts(&b, ",\"node_type\":");
    kg_buf_json_string(&b, d->type, d->type_len);
    kg_buf_append(&b, "", 1);
    if (d->path) {
        kg_buf_puts(&b, ",\"node_path\":");
        kg_buf_json_string(&b, d->path->data, d->path->len);
    }
    t = b.failed ? NULL : kg_text_new(b.data, b.len);
    kg_buf_free(&b);
    if (!t)
        return NULL;
    kg_text *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&nd->rendered, &expected, t,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        kg_text_unref(t);
        return expected;
    }
    return t;
}

/* The node members of an event: id and type, then its path -- the whole
 * one as rendered, or, for a run started at an inner graph, the part of it
 * below that graph. */
static char *w_node(char *o, const kg_record *r, const kg_text *node)
{
    size_t ids = strlen(node->data);
    memcpy(o, node->data, ids);
    o += ids;
    if (r->path_off == KG_REC_NO_PATH || !r->desc->path)
        return o;
    if (r->path_off == 0) {
        size_t n = node->len - ids - 1;
        memcpy(o, node->data + ids + 1, n);
        return o + n;
    }
    W_LIT(o, ",\"node_path\":");
    return kg_write_json_string(o, r->desc->path->data + r->path_off, r->desc->path->len - r->path_off);
}

#define KG__DISPATCHER_MEMBERS "\"node_id\":\"dispatcher\",\"node_type\":\"EventDispatcher\""

/* The dispatcher's own metric events: the only ones without a node. */
static bool dispatcher_metric(kg_event_name name)
{
    return name == KG_EV_QUEUE_DEPTH || name == KG_EV_THROUGHPUT_METRIC ||
           name == KG_EV_EVENTS_DROPPED;
}

/* Up to "data": event id, timestamp, node, type and name. */
static char *w_head(kg_serializer *s, char *o, const kg_record *r, int64_t wall_ns,
                    kg_event_name name, const kg_view_strings *str, const kg_text *node)
{
    W_LIT(o, "{\"event_id\":\"");
    memcpy(o, str->event_id, 36);
    o += 36;
    W_LIT(o, "\",\"timestamp\":");
    o = w_timestamp(s, o, wall_ns);
    *o++ = ',';
    if (node) {
        o = w_node(o, r, node);
    } else {
        if (dispatcher_metric(name))
            W_LIT(o, KG__DISPATCHER_MEMBERS);
        else   /* a node event whose descriptor could not be made (no memory) */
            W_LIT(o, "\"node_id\":\"\",\"node_type\":\"\"");
    }
    /* A fixed-size copy (the whole slot; the buffer has room for it) is a
     * few vector moves; the length only decides where the next one goes. */
    memcpy(o, s->frag[name], sizeof s->frag[name]);
    return o + s->frag_len[name];
}

/* After "data": correlation id, workflow id, seq, source. */
static char *w_tail(kg_serializer *s, char *o, const kg_record *r, kg_event_name name,
                    uint64_t seq, const kg_view_strings *str)
{
    /* A node execution's events share its id; a run's own events (workflow
     * started/completed) use the run's id, as the run is their execution.
     * Dispatcher metrics have no run: empty ids. */
    bool run_event = name == KG_EV_WORKFLOW_STARTED || name == KG_EV_WORKFLOW_COMPLETED;
    uint64_t corr = run_event ? r->run_id : r->exec_id;
    W_LIT(o, ",\"correlation_id\":\"");
    if (corr) {
        memcpy(o, uuid_cached(s, &s->exec_cache, corr), 36);
        o += 36;
    }
    W_LIT(o, "\",\"workflow_id\":\"");
    if (r->run_id) {
        memcpy(o, str->workflow_id, 36);
        o += 36;
    }
    W_LIT(o, "\",\"seq\":");
    o = kg_write_u64(o, seq);
    W_LIT(o, ",\"source\":");
    memcpy(o, s->source_json, s->source_len);
    o += s->source_len;
    *o++ = '}';
    return o;
}

void kg_serialize_event(kg_serializer *s, const kg_record *r, kg_event_name name, uint64_t seq,
                        bool first, kg_buf *b, kg_event_view *view, kg_view_strings *str)
{
    if ((unsigned)name >= KG_EVENT_NAME_COUNT)
        name = KG_EV_QUEUE_DEPTH;   /* never produced; keeps the tables in bounds */
    int64_t wall_ns = r->ts_ns + s->wall_offset_ns;
    int64_t ms = wall_ns / 1000000;
    const kg_text *node = r->desc ? node_members(r->desc) : NULL;

    kg_uuid_v7_cached(str->event_id, ms, &s->rng, &s->v7_cache);
    if (r->run_id)
        memcpy(str->workflow_id, uuid_cached(s, &s->run_cache, r->run_id), 37);
    else
        str->workflow_id[0] = '\0';
    str->json_off = b->len;

    /* The path below an inner graph is escaped here: 6 bytes a byte at most. */
    size_t path = r->desc && r->desc->path && r->path_off != KG_REC_NO_PATH ? r->desc->path->len : 0;
    size_t need = KG__EVENT_FIXED_MAX + s->source_len + (node ? node->len : 0) + 6 * path;
    if (!kg_buf_reserve(b, need))
        return;
    char *o = w_head(s, b->data + b->len, r, wall_ns, name, str, node);
    o = w_data_head(s, o, r, name);
    b->len = (size_t)(o - b->data);
    /* Free-form members go through the growing buffer. */
    if (first && kg_rec_kind(r) != KG_PAYLOAD_NONE)
        payload_members(b, r);
    if (!kg_buf_reserve(b, KG__EVENT_FIXED_MAX + s->source_len))
        return;
    o = b->data + b->len;
    *o++ = '}';
    o = w_tail(s, o, r, name, seq, str);
    view->json_len = (size_t)(o - b->data) - str->json_off;
    *o++ = '\0';   /* each event's text is NUL-terminated in place */
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';

    view->event_type = s->type_str[name];
    view->event_name = s->name_str[name];
    view->node_id = r->desc ? r->desc->id : dispatcher_metric(name) ? "dispatcher" : "";
    view->timestamp_ms = ms;
    view->seq = seq;
}

void kg_view_fix(kg_event_view *view, const kg_view_strings *str, const kg_buf *out)
{
    view->event_id = str->event_id;
    view->workflow_id = str->workflow_id;
    view->json = out->data + str->json_off;
}
