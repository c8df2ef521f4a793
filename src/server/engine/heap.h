/* heap.h - a min-heap of queue items by (due_at, id). The engine's queue is
 * one; each concurrency slot keeps one of the items parked on it (admit.c).
 * An item is in at most one heap at a time and knows which (item->heap). */
#ifndef SBD_ENGINE_HEAP_H
#define SBD_ENGINE_HEAP_H

#include <stddef.h>

struct item;

struct iheap {
    struct item **v;
    size_t n, cap;
};

/* Adds it to h; nothing when it is already in a heap. Aborts when out of
 * memory (the queue is durable: a restart rebuilds it). */
void iheap_push(struct iheap *h, struct item *it);
/* Removes it from the heap it is in, if any. */
void iheap_remove(struct item *it);
/* The first item, or NULL. */
struct item *iheap_top(const struct iheap *h);
void iheap_free(struct iheap *h);

#endif
