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
