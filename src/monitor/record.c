/* record.c - what a record owns, and which events share a record. */
#include <stdlib.h>

#include "monitor/record.h"

int kg_record_follows(kg_event_name first)
{
    switch (first) {
    case KG_EV_NODE_STARTED:
        return KG_EV_NODE_PREPARING;
    case KG_EV_DATA_INPUT:
        return KG_EV_NODE_EXECUTING;
    case KG_EV_DATA_OUTPUT:
        return KG_EV_EXECUTION_TIME;
    case KG_EV_ERROR_SUPPRESSED:
        return KG_EV_NODE_COMPLETED;
    default:
        return -1;
    }
}

void kg_record_release_payload(kg_record *r)
{
    switch (kg_rec_kind(r)) {
    case KG_PAYLOAD_GRAPH:
        kg_text_unref(r->payload.shared);
        break;
    case KG_PAYLOAD_FIELDS:
        json_decref(r->payload.json);
        break;
    case KG_PAYLOAD_SNAPSHOT:
        free(r->payload.snapshot);
        break;
    case KG_PAYLOAD_TEXT:
        free(r->payload.text);
        break;
    case KG_PAYLOAD_RUN_END:
        json_decref(r->payload.run_end->fields);
        free(r->payload.run_end);
        break;
    default:
        break;
    }
    r->bits = kg_rec_bits(kg_rec_flags(r), kg_rec_phase(r), KG_PAYLOAD_NONE);
}

void kg_record_release(kg_record *r)
{
    kg_record_release_payload(r);
    kg__desc_unref(r->desc, 1);
    r->desc = NULL;
}
