/* dashboard/body.h - a long text made of shared texts (body.c). */
#ifndef KG_DASH_BODY_H
#define KG_DASH_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/text.h"

/* A long text made of shared texts (events held by the stores) so that a
 * response or a reply costs a list of references, not a copy: it is copied
 * out piece by piece as the socket drains.  A part may be preceded by a
 * comma (JSON arrays of events). */
typedef struct kg__part {
    kg_text *m;
    bool comma;
} kg__part;

typedef struct kg__body {
    kg__part *v;
    size_t n, cap;
    size_t len;       /* bytes in all */
    size_t sent;      /* bytes copied out so far */
    size_t i, off;    /* where the next copy starts */
    bool oom;
} kg__body;

void kg__body_init(kg__body *b);
void kg__body_free(kg__body *b);
void kg__body_add(kg__body *b, kg_text *m, bool comma);      /* takes a reference */
void kg__body_text(kg__body *b, const char *p, size_t n);    /* copies p */
/* Append up to `max` bytes from where the last copy stopped; returns how
 * many.  Parts copied out in full are released at once. */
size_t kg__body_copy(kg__body *b, kg_buf *out, size_t max);
static inline size_t kg__body_left(const kg__body *b)
{
    return b->len - b->sent;
}


#endif
