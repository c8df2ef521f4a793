/* heap.c - min-heap of queue items by (due_at, id); see heap.h for its
 * invariants. Engine thread (the queue and the slots are the engine's). */
#include "heap.h"
#include "engine_internal.h"
#include "common/log.h"

#include <assert.h>
#include <stdlib.h>

static bool item_before(const struct sbd_item *a, const struct sbd_item *b)
{
    return a->due_at < b->due_at || (a->due_at == b->due_at && a->id < b->id);
}

static void swap(struct sbd_iheap *h, size_t i, size_t j)
{
    struct sbd_item *t = h->v[i];
    h->v[i] = h->v[j];
    h->v[j] = t;
    h->v[i]->heap_idx = i;
    h->v[j]->heap_idx = j;
}

static void sift_up(struct sbd_iheap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_before(h->v[i], h->v[p]))
            break;
        swap(h, i, p);
        i = p;
    }
}

static void sift_down(struct sbd_iheap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && item_before(h->v[l], h->v[m]))
            m = l;
        if (r < h->n && item_before(h->v[r], h->v[m]))
            m = r;
        if (m == i)
            return;
        swap(h, i, m);
        i = m;
    }
}

void iheap_push(struct sbd_iheap *h, struct sbd_item *it)
{
    if (it->heap)
        return;
    assert(!it->call && !it->leasing); /* its turn is under way: not waiting for it */
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        struct sbd_item **nv = realloc(h->v, nc * sizeof *nv);
        if (!nv) {
            SB_LOG(SB_ERROR, "oom", "cannot grow a queue heap");
            abort(); /* a daemon may exit on allocation failure; the queue is durable */
        }
        h->v = nv;
        h->cap = nc;
    }
    it->heap = h;
    it->heap_idx = h->n;
    h->v[h->n++] = it;
    sift_up(h, it->heap_idx);
}

void iheap_remove(struct sbd_item *it)
{
    struct sbd_iheap *h = it->heap;
    if (!h)
        return;
    size_t i = it->heap_idx;
    assert(i < h->n && h->v[i] == it);
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        h->v[i]->heap_idx = i;
        sift_down(h, i);
        sift_up(h, i);
    }
    it->heap = NULL;
}

struct sbd_item *iheap_top(const struct sbd_iheap *h)
{
    return h->n ? h->v[0] : NULL;
}

void iheap_free(struct sbd_iheap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

int iheap_check(const struct sbd_iheap *h, struct sb_err *err)
{
    if (h->n > h->cap)
        return sb_err_set(err, SB_EINTERNAL, "heap holds %zu items in room for %zu", h->n, h->cap);
    for (size_t i = 0; i < h->n; i++) {
        const struct sbd_item *it = h->v[i];
        if (it->heap != h || it->heap_idx != i)
            return sb_err_set(err, SB_EINTERNAL,
                              "item %lld at %zu of a heap says it is at %zu of %s heap",
                              (long long)it->id, i, it->heap_idx, it->heap ? "another" : "no");
        if (i > 0 && item_before(it, h->v[(i - 1) / 2]))
            return sb_err_set(err, SB_EINTERNAL, "item %lld at %zu is before its parent %lld",
                              (long long)it->id, i, (long long)h->v[(i - 1) / 2]->id);
        if (it->call || it->leasing)
            return sb_err_set(err, SB_EINTERNAL, "item %lld is in a heap with its %s under way",
                              (long long)it->id, it->call ? "call" : "lease");
    }
    return 0;
}
