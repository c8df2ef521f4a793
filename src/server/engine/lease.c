/* lease.c - concurrency slots that survive a crash.
 *
 * A worker goes on running a call after sysbusd dies: the response is lost,
 * not the work. So a call that takes a concurrency slot is *leased* first:
 * its queue row gets lease_until (now + the call's timeout) and the slot
 * keys, committed before the call is made (lease_begin -> writer ->
 * MSG_LEASED -> the call). The call's end clears the lease (lease_end).
 * The same write stores a throttle key's new theoretical arrival time when
 * a throttle admitted the call, so a restart cannot hand out a start twice.
 *
 * At start, a queue row with a live lease means that call may still be
 * running on the worker: its slots are held by a *ghost* until
 * min(lease_until, start + --orphan-hold), and the run's retry of that call
 * waits for a slot like any other. So a limit of N never shows N+1 calls
 * executing, even across kill -9 (for calls shorter than --orphan-hold).
 *
 * Threads: lease_begin, lease_end, engine_handle_leased and lease_sweep run
 * on the engine thread, lease_restore at start (before the engine thread
 * exists); lease_apply_in_txn in the writer's transaction and lease_done on
 * the writer thread after the commit (it only posts MSG_LEASED). A lease_op
 * carries copies: it never points into a run or an item. */
#include "engine_internal.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "server/sbd.h"
#include "server/store/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ghost {
    struct slot *slot[2];
    int64_t until;
};

struct lease_op {
    struct sbd_wop wop;
    struct sbd_engine *e;
    char run_id[SB_ULID_SIZE];
    int64_t item_id;
    bool set_lease;     /* write the queue row's lease: */
    int64_t until;      /*   0 clears it */
    char *keys;         /*   JSON array of slot keys */
    char *throttle_key; /* and/or a throttle's new tat */
    int64_t throttle_tat;
    bool notify; /* MSG_LEASED when stored: the call waits for it */
};

static int lease_apply_in_txn(struct sbd_store *st, struct sbd_wop *w, struct sb_err *err)
{
    struct lease_op *op = (struct lease_op *)w;
    int rc = 0;
    if (op->set_lease)
        rc = sbd_store_queue_lease(st, op->item_id, op->until, op->keys, err);
    if (!rc && op->throttle_key)
        rc = sbd_store_throttle_put(st, op->throttle_key, op->throttle_tat, err);
    return rc;
}

static void lease_done(struct sbd_wop *w, int rc, const struct sb_err *err)
{
    struct lease_op *op = (struct lease_op *)w;
    if (rc)
        SB_LOGK(SB_WARN, "lease_write_failed", ((struct sb_lf[]){ LF_S("run_id", op->run_id) }),
                "could not %s the lease of a call of run %s: %s", op->notify ? "store" : "clear",
                op->run_id, err ? err->msg : "?");
    struct sbd_inbox_msg *m = op->notify ? engine_inbox_msg(MSG_LEASED) : NULL;
    if (m) { /* the engine makes the call (or retries the lease) */
        memcpy(m->leased.run_id, op->run_id, sizeof m->leased.run_id);
        m->leased.qi_id = op->item_id;
        m->leased.rc = rc;
        engine_inbox_post(op->e, m);
    } else if (op->notify) {
        SB_LOG(SB_ERROR, "oom", "lost the answer to a lease of run %s", op->run_id);
    }
    free(op->keys);
    free(op->throttle_key);
    free(op);
}

/* Submits op to the writer (op may be NULL: out of memory). */
static bool lease_submit(struct sbd_engine *e, struct lease_op *op)
{
    if (!op)
        return false;
    op->wop.apply = lease_apply_in_txn;
    op->wop.done = lease_done;
    op->e = e;
    sbd_writer_submit(e->sbd->writer, &op->wop);
    return true;
}

/* The op clearing item_id's lease (NULL when out of memory). */
static struct lease_op *clear_op(const char *run_id, int64_t item_id)
{
    struct lease_op *op = calloc(1, sizeof *op);
    if (op) {
        memcpy(op->run_id, run_id, sizeof op->run_id);
        op->item_id = item_id;
        op->set_lease = true;
    }
    return op;
}

bool lease_begin(struct sbd_engine *e, struct sbd_item *it, int64_t now)
{
    bool held = it->held[0] || it->held[1];
    if (!held && !it->throttle_tat)
        return false; /* nothing that must survive a crash */
    struct lease_op *op = calloc(1, sizeof *op);
    if (op && held) {
        json_t *keys = json_array();
        for (int i = 0; i < 2; i++)
            if (it->held[i])
                json_array_append_new(keys, json_string(admit_slot_key(it->held[i])));
        op->keys = sb_json_dumps(keys, NULL);
        json_decref(keys);
        /* as long as the call may last (call.c caps it the same way) */
        int64_t until = now + e->sbd->cfg.call_timeout_ms;
        if (it->run->deadline && it->run->deadline->due_at < until)
            until = it->run->deadline->due_at;
        op->set_lease = true;
        op->until = until > now ? until : now + 1;
    }
    if (op && it->throttle_tat && it->run->flow_keys[2]) {
        op->throttle_key = strdup(it->run->flow_keys[2]);
        op->throttle_tat = it->throttle_tat;
    }
    if (op && ((held && !op->keys) || (it->throttle_tat && !op->throttle_key))) {
        free(op->keys);
        free(op->throttle_key);
        free(op);
        op = NULL;
    }
    if (op) {
        memcpy(op->run_id, it->run->id, sizeof op->run_id);
        op->item_id = it->id;
        op->notify = true;
    }
    it->throttle_tat = 0;
    if (!lease_submit(e, op)) {
        SB_LOG(SB_ERROR, "oom", "cannot lease a call of run %s: calling without a lease",
               it->run->id);
        return false;
    }
    it->leasing = true;
    it->lease_row = held;
    return true;
}

static struct sbd_item *find_item(struct sbd_engine *e, const char *run_id, int64_t id)
{
    struct sbd_run *r = engine_run_find(e, run_id);
    for (struct sbd_item *it = r ? r->items : NULL; it; it = it->next)
        if (it->id == id)
            return it;
    return NULL;
}

void engine_handle_leased(struct sbd_engine *e, struct sbd_inbox_msg *m)
{
    struct sbd_item *it = find_item(e, m->leased.run_id, m->leased.qi_id);
    if (!it || !it->leasing) {
        /* the item went meanwhile (its run ended or was rebuilt): if its row
         * is still there, it must not look like a call in flight */
        if (!it && !m->leased.rc)
            lease_submit(e, clear_op(m->leased.run_id, m->leased.qi_id));
        return;
    }
    it->leasing = false;
    if (m->leased.rc) { /* not stored: give the slots back and try again shortly */
        admit_release(e, it);
        it->due_at = sb_now_ms() + 1000;
    } else {
        it->leased = true;
    }
    engine_heap_push(e, it);
}

void lease_end(struct sbd_engine *e, struct sbd_item *it)
{
    if (!it->leased)
        return;
    it->leased = false;
    if (!it->lease_row)
        return; /* only a throttle was stored */
    it->lease_row = false;
    /* when this fails the row keeps a stale lease, which costs at most
     * --orphan-hold of that slot after a crash */
    lease_submit(e, clear_op(it->run->id, it->id));
}

void lease_restore(struct sbd_engine *e, const struct sbd_qitem_rec *q, int64_t now)
{
    if (q->lease_until <= now || !q->lease_keys)
        return;
    json_t *keys = sb_json_parse(q->lease_keys, strlen(q->lease_keys), NULL);
    struct ghost g = { { NULL, NULL }, q->lease_until };
    if (now + e->sbd->cfg.orphan_hold_ms < g.until)
        g.until = now + e->sbd->cfg.orphan_hold_ms;
    for (size_t i = 0; i < 2 && i < json_array_size(keys); i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        if (k && (g.slot[i] = admit_slot(e, k)))
            admit_slot_hold(g.slot[i]);
    }
    json_decref(keys);
    if (!g.slot[0] && !g.slot[1])
        return;
    struct ghost *ng = realloc(e->ghosts, (e->nghosts + 1) * sizeof *ng);
    if (!ng) { /* cannot remember it: give the slots back now */
        for (int i = 0; i < 2; i++)
            if (g.slot[i])
                admit_slot_unhold(e, g.slot[i]);
        return;
    }
    e->ghosts = ng;
    e->ghosts[e->nghosts++] = g;
    char until[40];
    sb_time_format_iso(g.until, until, sizeof until);
    SB_LOGK(SB_WARN, "call_orphaned",
            ((struct sb_lf[]){ LF_S("run_id", q->run_id), LF_S("held_until", until) }),
            "a call of run %s was in flight when sysbusd stopped; the worker may still be "
            "running it, so its concurrency slot stays taken until %s",
            q->run_id, until);
}

void lease_sweep(struct sbd_engine *e, int64_t now)
{
    for (size_t i = 0; i < e->nghosts;) {
        struct ghost *g = &e->ghosts[i];
        if (g->until > now) {
            i++;
            continue;
        }
        for (int k = 0; k < 2; k++)
            if (g->slot[k])
                admit_slot_unhold(e, g->slot[k]);
        e->ghosts[i] = e->ghosts[--e->nghosts];
    }
}

void lease_free(struct sbd_engine *e)
{
    free(e->ghosts);
    e->ghosts = NULL;
    e->nghosts = 0;
}
