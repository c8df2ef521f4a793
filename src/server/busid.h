/* busid.h - what ties a data directory to its bus.
 *
 * A store that keeps a bus id (PostgreSQL's meta table: made when its schema
 * was created) is bound at sysbusd's first start to the data directory:
 * <data-dir>/bus_id holds the id. A later start of that data directory on a
 * store of another bus (another database or schema given by mistake, two
 * deployments pointed at one database) is refused instead of mixing the
 * two. A SQLite store keeps no id: its file in the data directory is the
 * bus. */
#ifndef SBD_BUSID_H
#define SBD_BUSID_H

#include "common/err.h"
#include "common/ulid.h"

struct sbd_store;

/* 0 with bus_id = the store's id ("" when it keeps none) once the data
 * directory is bound to it (written at its first start); SB_ECONFIG with err
 * naming both ids when it is bound to another bus; SB_EIO, or the store's
 * error. */
int sbd_bind_data_dir(const char *data_dir, struct sbd_store *st, char bus_id[SB_ULID_SIZE],
                      struct sb_err *err);

#endif
