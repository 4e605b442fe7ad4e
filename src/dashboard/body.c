/* dashboard/body.c - a long text made of shared texts.
 *
 * A response or a WebSocket reply that lists stored events costs a list of
 * references to the events' texts, not a copy: the text is copied out piece
 * by piece as the socket drains (see kg__body in body.h). */
#include <stdlib.h>
#include <string.h>

#include "body.h"

void kg__body_init(kg__body *b)
{
    memset(b, 0, sizeof *b);
}

void kg__body_free(kg__body *b)
{
    for (size_t i = 0; i < b->n; i++)
        kg_text_unref(b->v[i].m);
    free(b->v);
    kg__body_init(b);
}

void kg__body_add(kg__body *b, kg_text *m, bool comma)
{
    if (b->oom || !m)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        kg__part *v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].m = kg_text_ref(m);
    b->v[b->n].comma = comma;
    b->n++;
    b->len += m->len + (comma ? 1 : 0);
}

void kg__body_text(kg__body *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    kg_text *m = kg_text_new(p, n);
    if (!m) {
        b->oom = true;
        return;
    }
    kg__body_add(b, m, false);
    kg_text_unref(m);
}

size_t kg__body_copy(kg__body *b, kg_buf *out, size_t max)
{
    size_t copied = 0;
    while (b->i < b->n && copied < max && !out->failed) {
        const kg__part *pt = &b->v[b->i];
        /* Byte 0 of a part that follows a comma is the comma. */
        size_t plen = pt->m->len + (pt->comma ? 1 : 0);
        if (b->off == 0 && pt->comma) {
            kg_buf_append(out, ",", 1);
            b->off = 1;
            copied++;
            continue;
        }
        size_t from = b->off - (pt->comma ? 1 : 0);
        size_t n = plen - b->off;
        if (n > max - copied)
            n = max - copied;
        kg_buf_append(out, pt->m->data + from, n);
        b->off += n;
        copied += n;
        if (b->off == plen) {
            /* Written out: let the text go now rather than with the body. */
            kg_text_unref(b->v[b->i].m);
            b->v[b->i].m = NULL;
            b->i++;
            b->off = 0;
        }
    }
    b->sent += copied;
    return copied;
}

