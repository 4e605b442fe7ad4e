/* record.c - ownership of a record's payload and path. */
#include <stdlib.h>

#include "monitor/record.h"

void kg_record_release(kg_record *r)
{
    switch (r->payload_kind) {
    case KG_PAYLOAD_GRAPH:
        kg_shared_text_unref(r->payload.shared);
        break;
    case KG_PAYLOAD_FIELDS:
        json_decref(r->payload.json);
        break;
    case KG_PAYLOAD_SNAPSHOT:
        free(r->payload.text);
        break;
    default:
        break;
    }
    r->payload_kind = KG_PAYLOAD_NONE;
    kg_shared_text_unref(r->path);
    r->path = NULL;
}

void kg_records_release(kg_record *r, size_t n)
{
    /* A node execution's events are mostly consecutive in a batch and share
     * one path text: dropping their references in one step touches the
     * counter's cache line once per run of them, not once per event, so the
     * node thread taking references meanwhile rarely finds it gone. */
    kg_shared_text *path = NULL;
    size_t refs = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].path != path) {
            kg_shared_text_unref_n(path, refs);
            path = r[i].path;
            refs = 0;
        }
        refs += path != NULL;
        r[i].path = NULL;
        kg_record_release(&r[i]);
    }
    kg_shared_text_unref_n(path, refs);
}
