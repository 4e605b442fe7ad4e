/* core/shared_text.h - a graph's topology and a node's path, cached on the
 * graph/node as shared texts (util/text.h).
 *
 * Monitoring sends a graph's topology with every workflow_started; the
 * producer only takes a reference, the dispatcher thread writes the text and
 * drops the reference.  A jansson value cannot be shared like that here:
 * jansson's atomic reference counts live in the uninstrumented system
 * library, so ThreadSanitizer would flag every incref/decref pair across
 * threads. */
#ifndef KG_CORE_SHARED_TEXT_H
#define KG_CORE_SHARED_TEXT_H

#include "kaygraph/node.h"
#include "util/text.h"

/* kg_graph_topology() as compact JSON text: a new reference, or NULL when
 * `graph` is not a graph or memory ran out.  Cached like the topology. */
kg_text *kg__graph_topology_text(const kg_node_t *graph);

/* kg_node_path() as the cached shared text: borrowed (take a reference to
 * keep it beyond the node's life), NULL for a NULL node or out of memory. */
kg_text *kg__node_path_text(const kg_node_t *node);

#endif
