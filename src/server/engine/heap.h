/* heap.h - a min-heap of queue items by (due_at, id). The engine's queue is
 * one; each concurrency slot keeps one of the items parked on it (admit.c).
 *
 * Invariants (iheap_check tests them all; the O(1) ones are asserted where
 * an item goes in or out):
 *  - order: no item is before its parent (item_before: due_at, then id);
 *  - an item is in at most one heap at a time and knows which: for every i,
 *    v[i]->heap == h and v[i]->heap_idx == i; an item in no heap has
 *    heap == NULL;
 *  - an item in a heap has no call in flight and no lease being written
 *    (it is waiting for its turn, not taking it). */
#ifndef SBD_ENGINE_HEAP_H
#define SBD_ENGINE_HEAP_H

#include <stddef.h>

#include "common/err.h"

struct sbd_item;

struct sbd_iheap {
    struct sbd_item **v;
    size_t n, cap;
};

/* Adds it to h; nothing when it is already in a heap. Aborts when out of
 * memory (the queue is durable: a restart rebuilds it). */
void iheap_push(struct sbd_iheap *h, struct sbd_item *it);
/* Removes it from the heap it is in, if any. */
void iheap_remove(struct sbd_item *it);
/* The first item, or NULL. */
struct sbd_item *iheap_top(const struct sbd_iheap *h);
void iheap_free(struct sbd_iheap *h);
/* Walks h: 0 when every invariant above holds, else SB_EINTERNAL with err
 * naming the first one broken. O(n): for tests and debug builds, never the
 * hot path. */
int iheap_check(const struct sbd_iheap *h, struct sb_err *err);

#endif
