/* bgthread.c - background thread helper (see bgthread.h). */
#include "bgthread.h"

#include <time.h>

int sb_bg_start(struct sb_bg *bg, void *(*fn)(void *), void *arg, const char *what,
                struct sb_err *err)
{
    pthread_mutex_init(&bg->lock, NULL);
    /* Waits are timed on the monotonic clock: a wall-clock step back must
     * not stall a background loop. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&bg->cond, &attr);
    pthread_condattr_destroy(&attr);
    bg->stop = 0;
    if (pthread_create(&bg->thread, NULL, fn, arg) != 0) {
        pthread_mutex_destroy(&bg->lock);
        pthread_cond_destroy(&bg->cond);
        return sb_err_errno(err, SB_EIO, "cannot start the %s thread", what);
    }
    bg->started = 1;
    return 0;
}

void sb_bg_stop(struct sb_bg *bg)
{
    if (!bg->started)
        return;
    pthread_mutex_lock(&bg->lock);
    bg->stop = 1;
    pthread_cond_broadcast(&bg->cond);
    pthread_mutex_unlock(&bg->lock);
    pthread_join(bg->thread, NULL);
    pthread_mutex_destroy(&bg->lock);
    pthread_cond_destroy(&bg->cond);
    bg->started = 0;
}

void sb_bg_wait_ms(struct sb_bg *bg, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&bg->cond, &bg->lock, &ts);
}

void sb_bg_signal(struct sb_bg *bg)
{
    pthread_mutex_lock(&bg->lock);
    pthread_cond_signal(&bg->cond);
    pthread_mutex_unlock(&bg->lock);
}
