/* desc.c - node descriptors (see desc.h). */
#include <stdlib.h>
#include <string.h>

#include "core/desc.h"
#include "core/internal.h"

/* `path` is a reference the descriptor takes over (NULL: none). */
static kg_node_desc *desc_build(const char *id, const char *type, kg_text *path,
                                const kg_edge *edges, size_t n_edges)
{
    size_t id_len = strlen(id), type_len = strlen(type), size = sizeof(kg_node_desc);
    size += n_edges * sizeof(char *) + id_len + 1 + type_len + 1;
    for (size_t i = 0; i < n_edges; i++)
        size += strlen(edges[i].action) + 1;
    kg_node_desc *d = calloc(1, size);
    if (!d) {
        kg_text_unref(path);
        return NULL;
    }
    atomic_init(&d->refs, 1);
    d->path = path;
    const char **actions = (const char **)(void *)d->storage;
    char *p = d->storage + n_edges * sizeof(char *);
    d->id = memcpy(p, id, id_len + 1);
    d->id_len = (uint32_t)id_len;
    p += id_len + 1;
    d->type = memcpy(p, type, type_len + 1);
    d->type_len = (uint32_t)type_len;
    p += type_len + 1;
    for (size_t i = 0; i < n_edges; i++) {
        size_t n = strlen(edges[i].action);
        actions[i] = memcpy(p, edges[i].action, n + 1);
        p += n + 1;
    }
    d->actions = actions;
    d->n_actions = (uint32_t)n_edges;
    return d;
}

kg_node_desc *kg__desc_new(const char *id, const char *type, const char *path)
{
    kg_text *p = path ? kg_text_new(path, strlen(path)) : NULL;
    if (path && !p)
        return NULL;
    return desc_build(id ? id : "", type ? type : "", p, NULL, 0);
}

kg_node_desc *kg__node_desc_build(const kg_node_t *node)
{
    kg_node_t *n = (kg_node_t *)node;   /* only the cache slot changes */
    kg_node_desc *cached = NULL;
    kg_text *path = kg__node_path_text(node);
    kg_node_desc *built = desc_build(node->id, node->type_name,
                                     path ? kg_text_ref(path) : NULL, node->edges,
                                     node->n_edges);
    if (!built)
        return NULL;
    /* As with the topology: concurrent first uses may both build one; the
     * loser's is dropped, and release publishes the finished descriptor. */
    if (!atomic_compare_exchange_strong_explicit(&n->desc, &cached, built, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        kg__desc_unref(built, 1);
        return cached;
    }
    return built;
}

void kg__desc_ref(kg_node_desc *d, size_t n)
{
    atomic_fetch_add_explicit(&d->refs, n, memory_order_relaxed);
}

void kg__desc_unref(kg_node_desc *d, size_t n)
{
    /* acq_rel: the thread that frees sees every other holder's reads done. */
    if (d && atomic_fetch_sub_explicit(&d->refs, n, memory_order_acq_rel) == n) {
        kg_text_unref(atomic_load_explicit(&d->rendered, memory_order_acquire));
        kg_text_unref(d->path);
        free(d);
    }
}

/* Building a graph is single-threaded and happens before runs (node.h). */
void kg__desc_invalidate(kg_node_t *node)
{
    kg__desc_unref(atomic_exchange(&node->desc, NULL), 1);
}

int kg__desc_action(const kg_node_desc *d, const char *action)
{
    for (uint32_t i = 0; i < d->n_actions; i++)
        if (strcmp(d->actions[i], action) == 0)
            return (int)i;
    return -1;
}
