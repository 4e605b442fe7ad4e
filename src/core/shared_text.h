/* core/shared_text.h - an immutable, reference-counted string that threads
 * pass around, and the graph topology cached in that form.
 *
 * Monitoring sends a graph's topology with every workflow_started; the
 * producer only takes a reference, the dispatcher thread writes the text and
 * drops the reference.  A jansson value cannot be shared like that here:
 * jansson's atomic reference counts live in the uninstrumented system
 * library, so ThreadSanitizer would flag every incref/decref pair across
 * threads.  These counts are C11 atomics it can see. */
#ifndef KG_CORE_SHARED_TEXT_H
#define KG_CORE_SHARED_TEXT_H

#include <stdatomic.h>
#include <stddef.h>

#include "kaygraph/node.h"

/* The count is written by every thread that takes or drops a reference
 * (monitoring: the node thread once per event, the dispatcher once per run
 * of events, kg_records_release); the text is only read.  They sit on
 * different cache lines, so the serialiser reading the text does not take
 * the counter's line away from the node thread.  (With one line and one
 * decrement per event, perf put the node thread's increment at ~13% of a
 * monitored 5-node run's CPU time.) */
typedef struct kg_shared_text {
    _Alignas(64) atomic_size_t refs;
    _Alignas(64) size_t len;
    char text[];
} kg_shared_text;

/* A copy of s[0..len) with one reference, or NULL when out of memory. */
kg_shared_text *kg_shared_text_new(const char *s, size_t len);
kg_shared_text *kg_shared_text_ref(kg_shared_text *t);
void kg_shared_text_unref(kg_shared_text *t);   /* NULL is a no-op */
void kg_shared_text_unref_n(kg_shared_text *t, size_t n);   /* n references at once */

/* kg_graph_topology() as compact JSON text: a new reference, or NULL when
 * `graph` is not a graph or memory ran out.  Cached like the topology. */
kg_shared_text *kg__graph_topology_text(const kg_node_t *graph);

/* kg_node_path() as the cached shared text: borrowed (take a reference to
 * keep it beyond the node's life), NULL for a NULL node or out of memory. */
kg_shared_text *kg__node_path_text(const kg_node_t *node);

#endif
