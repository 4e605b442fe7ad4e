/* dashboard/event.h - one event as the dashboard validated it, and the tables of
 * event names and types (event.c).  Everything above reads events through this. */
#ifndef KG_DASH_EVENT_H
#define KG_DASH_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kaygraph/error.h"

#define KG__ID_MAX 256   /* longest node / workflow / correlation id accepted */
#define KG__PATH_MAX 2048   /* longest node_path accepted */

/* A validated event: every pointer borrows from `root`. */
typedef struct kg__event {
    json_t *root;
    const char *event_id, *timestamp, *node_id, *node_type;
    const char *node_path;   /* "" when the producer sends none */
    const char *event_type, *event_name, *correlation_id, *workflow_id;
    json_t *data;
    int type;      /* kg_event_type, or -1 */
    int name;      /* kg_event_name, or -1 */
    uint64_t seq;
    bool has_seq;
    int64_t ts_ms; /* -1 when the timestamp did not parse */
} kg__event;

/* Check the schema of `root` (borrowed) and fill `ev`.  0 or KG_EPARSE. */
int kg__event_check(json_t *root, kg__event *ev, kg_error_t *err);

/* Event-name / type tables (ours, from monitor.h's X-macros). */
int kg__event_type_index(const char *s);
int kg__event_name_index(const char *s);
const char *kg__event_name_at(int i);
const char *kg__event_type_at(int i);
int kg__event_name_count(void);

#endif
