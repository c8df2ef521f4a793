/* bgthread.h - a background thread with its lock, condition variable and
 * stop flag: the shape shared by sysbusd's syncer, waiters and janitor (and
 * any daemon loop that sleeps until signalled or until a deadline).
 *
 * The owner embeds struct sb_bg, starts it with its loop function, and in
 * the loop holds bg->lock, checks bg->stop and sleeps with sb_bg_wait_ms.
 * sb_bg_stop sets stop, wakes the loop, joins it and destroys the lock. */
#ifndef SB_BGTHREAD_H
#define SB_BGTHREAD_H

#include <pthread.h>
#include <stdint.h>

#include "err.h"

struct sb_bg {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop; /* guarded by lock */
    int started;
};

/* Initialises bg and starts fn(arg). what names the thread in errors. */
int sb_bg_start(struct sb_bg *bg, void *(*fn)(void *), void *arg, const char *what,
                struct sb_err *err);
/* Sets stop, signals, joins and destroys; safe on a never-started bg. */
void sb_bg_stop(struct sb_bg *bg);
/* With bg->lock held: waits until signalled or ms milliseconds passed. */
void sb_bg_wait_ms(struct sb_bg *bg, int64_t ms);
/* Wakes the loop (takes the lock). */
void sb_bg_signal(struct sb_bg *bg);

#endif
