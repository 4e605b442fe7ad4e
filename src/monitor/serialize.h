/* monitor/serialize.h - turning queued records into the JSON events of docs/events.md,
 * on dispatcher threads.
 *
 * The event schema is fixed, so events are written straight into a byte
 * buffer instead of being built as a jansson tree and dumped: building the
 * tree costs about ten allocations per event, and the dispatcher's budget is
 * a few hundred nanoseconds per event.  jansson still serialises the
 * free-form parts (graph topology, error fields) via json_dumpb. */
#ifndef KG_MONITOR_SERIALIZE_H
#define KG_MONITOR_SERIALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaygraph/backend.h"
#include "kaygraph/monitor.h"
#include "monitor/record.h"
#include "util/buf.h"

/* A small, fast, non-cryptographic generator for the random bits of UUIDs
 * (xoshiro256**), one per dispatcher thread; seeded from getrandom(2). */
typedef struct kg_rng {
    uint64_t s[4];
} kg_rng;
void kg_rng_seed(kg_rng *r);
uint64_t kg_rng_next(kg_rng *r);

/* UUID text (36 chars + NUL).  v7: time-ordered (RFC 9562) from `unix_ms` and
 * random bits.  From ids: a stable v8 UUID for a (process instance, counter)
 * pair, so every event of one run carries the same workflow_id without the
 * producer formatting anything. */
void kg_uuid_v7(char out[37], int64_t unix_ms, kg_rng *rng);
typedef struct kg_uuid_ms_cache {
    int64_t ms;
    char text[16];   /* the first 14 chars of a v7 UUID of that ms */
} kg_uuid_ms_cache;
/* kg_uuid_v7 with the time part kept from the previous call of the same ms. */
void kg_uuid_v7_cached(char out[37], int64_t unix_ms, kg_rng *rng, kg_uuid_ms_cache *c);
void kg_uuid_from_ids(char out[37], uint64_t instance, uint64_t id);


typedef struct kg_uuid_cache {
    uint64_t id;
    char text[37];
} kg_uuid_cache;

/* What a serialiser needs beyond the record. */
typedef struct kg_serializer {
    uint64_t instance;       /* random per monitor: makes ids globally unique */
    const char *source_json; /* pre-rendered "source" object (borrowed) */
    size_t source_len;
    size_t capacity;         /* the queue's, for queue_depth events */
    int64_t wall_offset_ns;  /* CLOCK_REALTIME - CLOCK_MONOTONIC, see kg_serializer_clock */
    kg_rng rng;
    int64_t cached_sec;      /* kg_iso8601_format cache: second of cached_prefix */
    char cached_prefix[24];
    kg_uuid_cache run_cache, exec_cache;
    kg_uuid_ms_cache v7_cache;
    /* ,"event_type":"…","event_name":"…","data": of each event name */
    char frag[KG_EVENT_NAME_COUNT][80];
    uint8_t frag_len[KG_EVENT_NAME_COUNT];
    const char *type_str[KG_EVENT_NAME_COUNT], *name_str[KG_EVENT_NAME_COUNT];
} kg_serializer;

/* Records carry CLOCK_MONOTONIC readings (the engine's own); events say
 * wall-clock time.  The offset between the clocks is read once per batch,
 * so an event's timestamp is its monotonic reading plus the offset at the
 * time it is written: events stay in order even when the wall clock is
 * stepped, and follow the step from the next batch on. */
void kg_serializer_clock(kg_serializer *s);

/* Seeds the generator and renders the per-name fragments. */
void kg_serializer_init(kg_serializer *s, uint64_t instance, const char *source_json,
                        size_t capacity);

/* Append the JSON of event `name` of record `rec` (its first event when
 * `first`: only that one carries the record's payload) with sequence number
 * `seq` to `out`, and describe it in `view`.  The view's pointers point into
 * `strings` (ids, filled here), into the record's descriptor, and into
 * `out` by offset: call kg_view_fix() after the buffer stops growing. */
typedef struct kg_view_strings {
    char event_id[37];
    char workflow_id[37];
    size_t json_off;
} kg_view_strings;

void kg_serialize_event(kg_serializer *s, const kg_record *rec, kg_event_name name, uint64_t seq,
                        bool first, kg_buf *out, kg_event_view *view, kg_view_strings *strings);
void kg_view_fix(kg_event_view *view, const kg_view_strings *strings, const kg_buf *out);

#endif
