/* util/list.h - an intrusive doubly linked list (the dashboard's LRU orders,
 * connection and client lists).  A head is a kg_link whose prev/next point
 * to itself when empty. */
#ifndef KG_UTIL_LIST_H
#define KG_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kg_link {
    struct kg_link *prev, *next;
} kg_link;

#define KG_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void kg_list_init(kg_link *head)
{
    head->prev = head->next = head;
}

static inline void kg_list_push_back(kg_link *head, kg_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

/* Unlink `l` (it then links to itself, so removing it twice is harmless). */
static inline void kg_list_remove(kg_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

static inline bool kg_list_empty(const kg_link *head)
{
    return head->next == head;
}

#endif
