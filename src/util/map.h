/* util/map.h - a string-keyed hash map (chained, power-of-two buckets).
 *
 * Keys are copied into the entries; values are borrowed (the map never
 * frees them).  Not thread-safe: the dashboard's aggregation and store use
 * it under their own locks.  A zero-initialised kg_map is empty. */
#ifndef KG_UTIL_MAP_H
#define KG_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kg_map_entry {
    struct kg_map_entry *next;
    uint64_t hash;
    void *val;
    char key[];
} kg_map_entry;

typedef struct kg_map {
    kg_map_entry **b;   /* buckets, nb of them */
    size_t nb, n;
} kg_map;

/* FNV-1a with a final mix: the low bits (the bucket) depend on every byte. */
uint64_t kg_hash(const char *s, size_t n);
void kg_map_free(kg_map *m);                            /* entries, not values */
void *kg_map_get(const kg_map *m, const char *key);     /* NULL when absent */
int kg_map_put(kg_map *m, const char *key, void *val);  /* 0 or KG_ENOMEM */
void *kg_map_del(kg_map *m, const char *key);           /* the value it had */

#endif
