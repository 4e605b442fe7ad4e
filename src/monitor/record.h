/* monitor/record.h - the fixed-size record a node thread puts on the queue.
 *
 * The producer copies only what it has at hand (ids, names, clocks, one
 * number) into this record; everything costly -- UUIDs, ISO timestamps, JSON
 * text -- is derived from it later on a dispatcher thread (serialize.c).
 * Node ids and types are copied, not pointed to, because a graph may be freed
 * while its events are still queued.  The node's path is longer and of any
 * length, so it is not copied: the record holds a reference to the node's
 * cached path text (core/shared_text.h) -- one atomic increment on the node
 * thread; the dispatcher drops references once per run of records with the
 * same path (kg_records_release) -- and the offset where this run's path
 * starts in it (a run started at an inner graph skips the graphs above). */
#ifndef KG_MONITOR_RECORD_H
#define KG_MONITOR_RECORD_H

#include <jansson.h>
#include <stdint.h>

#include "core/shared_text.h"
#include "kaygraph/node.h"

typedef enum kg_payload_kind {
    KG_PAYLOAD_NONE = 0,
    KG_PAYLOAD_GRAPH,      /* shared: the topology's JSON text (a reference of the cache) */
    KG_PAYLOAD_FIELDS,     /* json: an object whose members join "data" */
    KG_PAYLOAD_SNAPSHOT,   /* text: malloc'd JSON of the value, see snapshot_* */
} kg_payload_kind;

typedef enum kg_phase { KG_PHASE_NONE, KG_PHASE_PREP, KG_PHASE_EXEC, KG_PHASE_POST } kg_phase;

typedef struct kg_record {
    uint64_t seq;              /* queue position + 1: per-process order */
    int64_t ts_ns;             /* CLOCK_REALTIME, ns since the epoch */
    uint64_t run_id, parent_run_id, exec_id;
    double value;              /* seconds, or the metric's value */
    union {
        json_t *json;
        char *text;
        kg_shared_text *shared;
    } payload;
    uint32_t snapshot_size;    /* SNAPSHOT: original length of the JSON text */
    uint8_t payload_kind;      /* kg_payload_kind */
    uint8_t name;              /* kg_event_name */
    uint8_t phase;             /* kg_phase */
    uint8_t flags;             /* KG_REC_* */
    uint16_t attempt, max_retries;
    int32_t item;              /* batch item or -1 */
    kg_shared_text *path;      /* reference, or NULL: no node_path */
    uint32_t path_off;         /* node_path is path->text + path_off */
    char action[KG_ACTION_MAX];
    char node_id[KG_ID_MAX];
    char node_type[KG_ID_MAX];
} kg_record;

#define KG_REC_HAS_ACTION 0x01   /* action[] is meaningful (else null) */
#define KG_REC_FAILED 0x02       /* workflow_completed: status failed */
#define KG_REC_SUPPRESSED 0x04   /* node_completed after error_suppressed */
#define KG_REC_TRUNCATED 0x08    /* SNAPSHOT: text is a prefix */
#define KG_REC_HAS_DATA 0x10     /* data_input/output: the value was not none */

/* Release what a record owns (its payload and path). */
void kg_record_release(kg_record *r);
/* The same for r[0..n), with one reference count update per run of
 * consecutive records that share a path. */
void kg_records_release(kg_record *r, size_t n);

#endif
