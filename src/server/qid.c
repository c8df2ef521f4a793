/* qid.c - queue item ids (see qid.h). */
#include "qid.h"
#include "store/store.h"

int sbd_qids_load(struct sbd_qids *q, struct sbd_store *st, struct sb_err *err)
{
    int64_t max_id;
    int rc = sbd_store_queue_max_id(st, &max_id, err);
    if (rc)
        return rc;
    __atomic_store_n(&q->next, max_id + 1, __ATOMIC_RELAXED);
    return 0;
}

int64_t sbd_qid_new(struct sbd_qids *q)
{
    return __atomic_fetch_add(&q->next, 1, __ATOMIC_RELAXED);
}
