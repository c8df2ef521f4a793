/* syncer.h - app syncs initiated by the server: PUT <app url>, after which
 * the worker's SDK registers its functions (POST /fn/register).
 *
 * One thread. It re-syncs every known app URL every sync-interval (unchanged
 * apps are cheap: registration compares checksums), and performs on-demand
 * syncs for POST /v1/apps and POST /v1/apps/{id}/sync. A failed PUT is
 * recorded on the app (sync_error), so `sysbus apps`/`doctor` can show
 * "Unable to reach SDK URL" with the reason. */
#ifndef SBD_SYNCER_H
#define SBD_SYNCER_H

#include "common/err.h"

struct sbd;
struct sbd_syncer;

int sbd_syncer_start(struct sbd *sbd, struct sbd_syncer **out, struct sb_err *err);
void sbd_syncer_stop(struct sbd_syncer *s);

/* Syncs url now (on the syncer thread). cb(ctx, rc, status, message) runs on
 * that thread: rc 0 when the worker answered the PUT (status and message are
 * from its reply), else the transport error in message. */
void sbd_syncer_request(struct sbd_syncer *s, const char *url,
                        void (*cb)(void *ctx, int rc, long status, const char *message), void *ctx);

/* One synchronous PUT (used by the thread; exposed for the probe endpoint). */
int sbd_sync_put(struct sbd *sbd, const char *url, long *status, char *msg, size_t msgsz);

#endif
