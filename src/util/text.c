/* util/text.c - see text.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

kg_text *kg_text_new(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(kg_text) - 1)
        return NULL;
    kg_text *t = malloc(sizeof *t + len + 1);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->len = len;
    if (len)
        memcpy(t->data, s, len);
    t->data[len] = '\0';
    return t;
}

kg_text *kg_text_ref(kg_text *t)
{
    /* Relaxed: taking a reference publishes nothing; whoever handed the
     * pointer over already synchronised with its creation. */
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void kg_text_unref_n(kg_text *t, size_t n)
{
    /* acq_rel: the last owner sees every other owner's reads finished. */
    if (t && n && atomic_fetch_sub_explicit(&t->refs, n, memory_order_acq_rel) == n)
        free(t);
}

void kg_text_unref(kg_text *t)
{
    kg_text_unref_n(t, 1);
}
