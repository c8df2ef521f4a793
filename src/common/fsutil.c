/* fsutil.c - mkdir -p, directory fsync and atomic file replacement (see fsutil.h). */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sb_mkdir_p(const char *dir, mode_t mode, struct sb_err *err)
{
    char path[PATH_MAX];
    if (!dir || !*dir)
        return sb_err_set(err, SB_EINVAL, "empty directory path");
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return sb_err_set(err, SB_EINVAL, "directory path is too long: %s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, mode) != 0 && errno != EEXIST)
            return sb_err_errno(err, SB_EIO, "cannot create directory %s", path);
        *p = '/';
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return sb_err_errno(err, SB_EIO, "cannot create directory %s", path);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return sb_err_set(err, SB_EIO, "%s is not a directory", path);
    return 0;
}

int sb_fsync_dir(const char *dir, struct sb_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot open directory %s", dir);
    int rc = fsync(fd) == 0 ? 0 : sb_err_errno(err, SB_EIO, "fsync of directory %s", dir);
    close(fd);
    return rc;
}

int sb_fsync_parent(const char *path, struct sb_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return sb_err_set(err, SB_EINVAL, "path is too long: %s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    return sb_fsync_dir(dir, err);
}

int sb_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int sb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         struct sb_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return sb_err_set(err, SB_EINVAL, "path is too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return sb_err_errno(err, SB_EIO, "cannot create %s", tmp);
    if (sb_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0) {
        int rc = sb_err_errno(err, SB_EIO, "cannot write %s", tmp);
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int rc = sb_err_errno(err, SB_EIO, "cannot rename %s to %s", tmp, path);
        unlink(tmp);
        return rc;
    }
    return sb_fsync_parent(path, err);
}
