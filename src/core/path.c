/* path.c - node paths: the ids from the outermost graph down to a node,
 * joined by "/" ("outer/inner/validator"), so nodes with the same id in two
 * sub-graphs can be told apart in events.
 *
 * A node belongs to at most one graph, so its path follows from the owner
 * chain alone.  It is built once and cached on the node as a shared text:
 * monitoring keeps a reference per queued event instead of copying or
 * formatting it on the node's thread, and the text outlives the graph if
 * the graph is freed while its events are still queued.  A run started at
 * an inner graph names nodes from that graph down: the cached text is the
 * same, the run skips its leading part (kg_run_state.path_skip). */
#include <string.h>

#include "core/desc.h"
#include "core/internal.h"

/* Components are escaped ("%" -> "%25", "/" -> "%2F") so splitting a path
 * on "/" always gives the ids back. */
static size_t escaped_len(const char *id)
{
    size_t n = 0;
    for (const char *p = id; *p; p++)
        n += (*p == '/' || *p == '%') ? 3 : 1;
    return n;
}

static char *escape_into(char *out, const char *id)
{
    for (const char *p = id; *p; p++) {
        if (*p == '%' || *p == '/') {
            memcpy(out, *p == '%' ? "%25" : "%2F", 3);
            out += 3;
        } else {
            *out++ = *p;
        }
    }
    return out;
}

static kg_text *path_build(const kg_node_t *node)
{
    size_t len = 0;
    for (const kg_node_t *n = node; n; n = n->owner)
        len += escaped_len(n->id) + (n->owner ? 1 : 0);
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    /* Written from the end: the node's own id last, each owner before it. */
    char *end = buf + len;
    for (const kg_node_t *n = node; n; n = n->owner) {
        size_t k = escaped_len(n->id);
        end -= k;
        escape_into(end, n->id);
        if (n->owner)
            *--end = '/';
    }
    kg_text *t = kg_text_new(buf, len);
    free(buf);
    return t;
}

kg_text *kg__node_path_text(const kg_node_t *node)
{
    if (!node)
        return NULL;
    kg_node_t *n = (kg_node_t *)node;   /* only the cache slot changes */
    kg_text *cached = atomic_load_explicit(&n->path_text, memory_order_acquire);
    if (cached)
        return cached;
    kg_text *built = path_build(node);
    if (!built)
        return NULL;
    /* As with the topology: concurrent first uses may both build it, one
     * wins, and release publishes the finished text. */
    if (!atomic_compare_exchange_strong_explicit(&n->path_text, &cached, built,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        kg_text_unref(built);
        return cached;
    }
    return built;
}

const char *kg_node_path(const kg_node_t *node)
{
    kg_text *t = kg__node_path_text(node);
    return t ? t->data : NULL;
}

size_t kg__path_skip(const kg_node_t *root)
{
    if (!root->owner)
        return 0;
    kg_text *t = kg__node_path_text(root->owner);
    return t ? t->len + 1 : SIZE_MAX;
}

const char *kg__node_path_at(const kg_node_t *node, size_t skip)
{
    kg_text *t = kg__node_path_text(node);
    return t && skip < t->len ? t->data + skip : NULL;
}

/* A node's path changes when it (or a graph above it) joins a graph.
 * Building is single-threaded and happens before runs (node.h), so a plain
 * exchange is enough. */
void kg__path_invalidate(kg_node_t *node)
{
    kg_text_unref(atomic_exchange(&node->path_text, NULL));
    kg__desc_invalidate(node);   /* the descriptor holds the old path */
    for (size_t i = 0; i < node->n_children; i++)
        kg__path_invalidate(node->children[i]);
}
