/* util/text.h - an immutable, reference-counted string shared across threads.
 *
 * One copy of an event's JSON is shared by the dashboard's stores, its
 * broadcast ring and every client; a graph's topology and a node's path are
 * computed once and referenced by every queued event (or by a descriptor
 * that events point to).  The counts are C11
 * atomics: jansson's own reference counts live in the uninstrumented system
 * library, where ThreadSanitizer cannot see them, which is why a json_t is
 * never what crosses threads here.
 *
 * Ownership: kg_text_new and kg_text_ref return a reference the caller owns;
 * kg_text_unref gives one back (the last frees). */
#ifndef KG_UTIL_TEXT_H
#define KG_UTIL_TEXT_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct kg_text {
    atomic_size_t refs;
    size_t len;
    char data[];   /* len bytes and a NUL */
} kg_text;

/* A copy of s[0..len) with one reference, or NULL when out of memory. */
kg_text *kg_text_new(const char *s, size_t len);
kg_text *kg_text_ref(kg_text *t);
void kg_text_unref(kg_text *t);                /* NULL is a no-op */
void kg_text_unref_n(kg_text *t, size_t n);    /* n references at once */

#endif
