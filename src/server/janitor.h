/* janitor.h - retention: ended runs (with their steps) and events older than
 * the retention period are deleted in small batches, one batch per group
 * commit, so the purge never holds the writer for long and never stalls
 * dispatch. Runs every purge-interval; when a batch was full it goes again
 * after a short pause until nothing old is left. */
#ifndef SBD_JANITOR_H
#define SBD_JANITOR_H

#include "common/err.h"

struct sbd;
struct sbd_janitor;

int sbd_janitor_start(struct sbd *sbd, struct sbd_janitor **out, struct sb_err *err);
void sbd_janitor_stop(struct sbd_janitor *j);

#endif
