/* fsutil.h - the file-system operations every sysbus binary needs, written
 * once: mkdir -p, fsync of a directory (so a create or rename is durable),
 * and atomic replacement of a small file (temp file, fsync, rename, fsync
 * of the directory), so that a crash leaves either the old or the new
 * content, never a torn file. */
#ifndef SB_FSUTIL_H
#define SB_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Creates dir and any missing parents; what it creates gets mode (through
 * the umask, as mkdir(2)). An existing directory is fine. SB_EIO/SB_EINVAL. */
int sb_mkdir_p(const char *dir, mode_t mode, struct sb_err *err);
/* fsync(2) of a directory. */
int sb_fsync_dir(const char *dir, struct sb_err *err);
/* fsync(2) of the directory that holds path ("." when path has no slash). */
int sb_fsync_parent(const char *path, struct sb_err *err);
/* Writes all of data to fd, retrying short writes and EINTR. 0 or -1 (errno). */
int sb_write_all(int fd, const void *data, size_t len);
/* Replaces path with data: writes "<path>.tmp" (created with mode, never
 * following a symlink), fsyncs it, renames it over path and fsyncs the
 * directory. Concurrent writers of the same path must serialise (every
 * caller holds a lock or is the only writer); on failure the temp file is
 * removed and path is untouched. */
int sb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct sb_err *err);

#endif
