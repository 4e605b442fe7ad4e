/* core/desc.h - a node's identity as events name it, immutable and shared:
 * its id, type name, path (core/path.c) and the action names of its edges.
 *
 * Monitoring queues a node's events and writes them out later on another
 * thread, and the graph may be freed in between.  Instead of copying the
 * strings into every queued record (which made a record span five cache
 * lines), a record points to the node's descriptor and keeps it alive with
 * a reference.  The descriptor is built once per node and cached on the node
 * like its topology; a change to the node's edges or graph membership
 * replaces it, and records queued before keep the old one.
 *
 * `rendered` is a cache slot for the monitor: the ids as JSON text, written
 * once by whichever dispatcher thread first needs it. */
#ifndef KG_CORE_DESC_H
#define KG_CORE_DESC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/shared_text.h"
#include "kaygraph/node.h"

typedef struct kg_node_desc {
    atomic_size_t refs;
    _Atomic(kg_text *) rendered;   /* monitor's rendering, or NULL */
    const char *id, *type;
    uint32_t id_len, type_len;
    kg_text *path;                 /* a reference to the node's path text, or NULL */
    uint32_t n_actions;
    const char *const *actions;           /* the edges' action names */
    char storage[];
} kg_node_desc;

/* The node's descriptor, built on first use: borrowed (the node holds a
 * reference until it changes or is freed), NULL when out of memory.
 * `slot` is the node's cache slot (core/internal.h); the fast path is
 * inline because it runs for every monitored event. */
kg_node_desc *kg__node_desc_build(const kg_node_t *node);
#define kg__node_desc(node) kg__node_desc_cached((node), &(node)->desc)
static inline kg_node_desc *kg__node_desc_cached(const kg_node_t *node,
                                                 _Atomic(struct kg_node_desc *) const *slot)
{
    kg_node_desc *d = atomic_load_explicit((_Atomic(struct kg_node_desc *) *)slot,
                                           memory_order_acquire);
    return d ? d : kg__node_desc_build(node);
}

/* A descriptor for an id, type and path given as strings (events built by
 * hand, without a node; `path` may be NULL), with one reference.  NULL when
 * out of memory. */
kg_node_desc *kg__desc_new(const char *id, const char *type, const char *path);

void kg__desc_ref(kg_node_desc *d, size_t n);
void kg__desc_unref(kg_node_desc *d, size_t n);   /* frees at zero; NULL is a no-op */

/* The node changed: later events get a new descriptor. */
void kg__desc_invalidate(kg_node_t *node);

/* The index of `action` among d->actions, or -1. */
int kg__desc_action(const kg_node_desc *d, const char *action);

#endif
