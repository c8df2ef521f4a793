/* busid.c - what ties a data directory to its bus (see busid.h). */
#include "busid.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The id written in path into out ("" when the file does not exist). */
static int read_bound(const char *path, char out[SB_ULID_SIZE], struct sb_err *err)
{
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : sb_err_errno(err, SB_EIO, "cannot read %s", path);
    char buf[64] = { 0 };
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return sb_err_errno(err, SB_EIO, "cannot read %s", path);
    buf[strcspn(buf, "\r\n")] = 0;
    if (strlen(buf) != SB_ULID_SIZE - 1)
        return sb_err_set(err, SB_ECONFIG, "%s does not hold a bus id: remove it or fix it", path);
    memcpy(out, buf, SB_ULID_SIZE);
    return 0;
}

/* id into path, durably (written beside it, fsync'd, renamed). */
static int write_bound(const char *path, const char *id, struct sb_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
    char line[SB_ULID_SIZE + 1];
    int n = snprintf(line, sizeof line, "%s\n", id);
    int rc = 0;
    if (write(fd, line, (size_t)n) != n || fsync(fd) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = sb_err_errno(err, SB_EIO, "cannot rename %s to %s", tmp, path);
    if (rc)
        unlink(tmp);
    return rc;
}

int sbd_bind_data_dir(const char *data_dir, struct sbd_store *st, char bus_id[SB_ULID_SIZE],
                      struct sb_err *err)
{
    bus_id[0] = 0;
    char id[SB_ULID_SIZE];
    int rc = sbd_store_bus_id(st, id, err);
    if (rc == SB_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return sb_err_errno(err, SB_EIO, "cannot create data directory %s", data_dir);
    char path[4096], bound[SB_ULID_SIZE];
    if (snprintf(path, sizeof path, "%s/bus_id", data_dir) >= (int)sizeof path)
        return sb_err_set(err, SB_EINVAL, "--data-dir is too long");
    if ((rc = read_bound(path, bound, err)))
        return rc;
    if (!bound[0] && (rc = write_bound(path, id, err)))
        return rc;
    if (bound[0] && strcmp(bound, id) != 0)
        return sb_err_set(err, SB_ECONFIG,
                          "the data directory %s belongs to bus %s (its file bus_id), but the store "
                          "is bus %s: a data directory serves one bus; give this store a data "
                          "directory of its own (or remove %s if this one really moved to it)",
                          data_dir, bound, id, path);
    memcpy(bus_id, id, SB_ULID_SIZE);
    return 0;
}
