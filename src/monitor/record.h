/* monitor/record.h - the record a node thread puts on the queue: 56 bytes,
 * so that with the queue's state word a cell is one cache line.
 *
 * The producer stores only what it has at hand (ids, a clock reading, one
 * number, pointers); everything costly -- UUIDs, ISO timestamps, JSON text --
 * is derived from it later on a dispatcher thread (serialize.c).  The node
 * is named by its descriptor (core/desc.h: id, type, path), which the record
 * keeps alive: a graph may be freed while its events are still queued.  A
 * run started at an inner graph names nodes by the part of the path below
 * it: path_off says where that starts.
 *
 * One record can carry two events that happen at the same moment
 * (node_started and node_preparing; data_input and node_executing;
 * data_output and execution_time; error_suppressed and node_completed):
 * they take two consecutive queue positions, i.e. seqs, but one cell and
 * one reservation.  The second event's name follows from the first
 * (kg_record_follows), its payload is the first's alone. */
#ifndef KG_MONITOR_RECORD_H
#define KG_MONITOR_RECORD_H

#include <jansson.h>
#include <stdint.h>

#include "core/desc.h"
#include "core/shared_text.h"
#include "kaygraph/monitor.h"

typedef enum kg_payload_kind {
    KG_PAYLOAD_NONE = 0,
    KG_PAYLOAD_GRAPH,      /* shared: the topology's JSON text (a reference) */
    KG_PAYLOAD_FIELDS,     /* json: an object whose members join "data" */
    KG_PAYLOAD_SNAPSHOT,   /* snapshot: a data snapshot, owned */
    KG_PAYLOAD_ACTION,     /* action: one of desc->actions (borrowed from desc) */
    KG_PAYLOAD_TEXT,       /* text: an action matching none of them, owned */
    KG_PAYLOAD_RUN_END,    /* run_end: workflow_completed's action and error, owned */
} kg_payload_kind;

typedef enum kg_phase { KG_PHASE_NONE, KG_PHASE_PREP, KG_PHASE_EXEC, KG_PHASE_POST } kg_phase;

/* A data snapshot: the JSON text of the value, cut to max_snapshot_size. */
typedef struct kg_snapshot {
    uint32_t original_size;
    bool truncated;        /* text is a prefix (its UTF-8 tail may be cut) */
    char text[];
} kg_snapshot;

/* workflow_completed: its final action (NULL: none) and error fields. */
typedef struct kg_run_end {
    json_t *fields;        /* NULL, or error/error_type/error_code */
    char *action;          /* points into the same allocation, or NULL */
} kg_run_end;

typedef struct kg_record {
    int64_t ts_ns;             /* CLOCK_MONOTONIC ns: the dispatcher makes it wall time */
    uint64_t run_id;
    uint64_t exec_id;          /* workflow_* events: the parent run's id, or 0 */
    union {
        double value;          /* seconds, or a metric's value */
        struct {
            uint16_t attempt, max_retries;   /* retry/fallback events */
        } retry;
    } v;
    kg_node_desc *desc;        /* a reference; NULL for dispatcher metrics */
    union {
        json_t *json;
        kg_text *shared;
        kg_snapshot *snapshot;
        const char *action;
        char *text;
        kg_run_end *run_end;
    } payload;
    int32_t item;              /* batch item or -1 */
    uint8_t name;              /* kg_event_name of the first event */
    uint8_t bits;              /* KG_REC_* flags, kg_phase, kg_payload_kind: kg_rec_* */
    uint16_t path_off;         /* node_path starts at desc->path->text + path_off;
                                * KG_REC_NO_PATH: the event has none */
} kg_record;

_Static_assert(sizeof(kg_record) == 56, "a record and the cell's state word make one cache line");

#define KG_REC_FAILED 0x01       /* workflow_completed: status failed */
#define KG_REC_SUPPRESSED 0x02   /* node_completed after error_suppressed */
#define KG_REC_HAS_DATA 0x04     /* data_input/output: the value was not none */
#define KG_REC_NO_PATH UINT16_MAX

/* The flags (3 bits), phase (2) and payload kind (3) share one byte, written
 * at once by the producer. */
static inline uint8_t kg_rec_bits(unsigned flags, unsigned phase, unsigned kind)
{
    return (uint8_t)((flags & 7u) | (phase & 3u) << 3 | kind << 5);
}
static inline unsigned kg_rec_flags(const kg_record *r)
{
    return r->bits & 7u;
}
static inline unsigned kg_rec_phase(const kg_record *r)
{
    return (r->bits >> 3) & 3u;
}
static inline unsigned kg_rec_kind(const kg_record *r)
{
    return (unsigned)r->bits >> 5;
}

/* The event that a record's second event is, after `first`; -1 when a
 * record starting with `first` carries one event only. */
int kg_record_follows(kg_event_name first);

/* Release what a record owns: its payload and its descriptor reference, or
 * the payload only (the dispatcher drops descriptor references in runs). */
void kg_record_release(kg_record *r);
void kg_record_release_payload(kg_record *r);

#endif
