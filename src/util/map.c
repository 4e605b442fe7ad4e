/* util/map.c - see map.h. */
#include <stdlib.h>
#include <string.h>

#include "kaygraph/error.h"
#include "util/map.h"

uint64_t kg_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void kg_map_free(kg_map *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        kg_map_entry *e = m->b[i];
        while (e) {
            kg_map_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

static kg_map_entry **map_slot(const kg_map *m, const char *key, uint64_t h)
{
    if (!m->nb)
        return NULL;
    kg_map_entry **pp = &m->b[h & (m->nb - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *kg_map_get(const kg_map *m, const char *key)
{
    kg_map_entry **pp = map_slot(m, key, kg_hash(key, strlen(key)));
    return pp && *pp ? (*pp)->val : NULL;
}

static int map_grow(kg_map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    kg_map_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return KG_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        kg_map_entry *e = m->b[i];
        while (e) {
            kg_map_entry *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int kg_map_put(kg_map *m, const char *key, void *val)
{
    size_t klen = strlen(key);
    uint64_t h = kg_hash(key, klen);
    kg_map_entry **pp = map_slot(m, key, h);
    if (pp && *pp) {
        (*pp)->val = val;
        return 0;
    }
    if (m->n + 1 > m->nb && map_grow(m) != 0)
        return KG_ENOMEM;
    kg_map_entry *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return KG_ENOMEM;
    e->hash = h;
    e->val = val;
    memcpy(e->key, key, klen + 1);
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    m->n++;
    return 0;
}

void *kg_map_del(kg_map *m, const char *key)
{
    kg_map_entry **pp = map_slot(m, key, kg_hash(key, strlen(key)));
    if (!pp || !*pp)
        return NULL;
    kg_map_entry *e = *pp;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->n--;
    return v;
}
