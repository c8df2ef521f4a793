/* secretfile.c - a secret read from a file, with the permission policy of
 * secretfile.h. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_mode(int fd, const char *path, struct sb_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return sb_err_errno(err, SB_EIO, "cannot stat %s", path);
    if (S_ISDIR(st.st_mode))
        return sb_err_set(err, SB_ECONFIG, "%s is a directory, not a file", path);
    if (!S_ISREG(st.st_mode))
        return 0; /* a pipe or device: nothing to judge */
    if (st.st_mode & (S_IRWXO | S_IWGRP))
        return sb_err_set(err, SB_ECONFIG,
                          "%s can be %s by other users (mode %04o): a secret file must not be; "
                          "fix: chmod 600 %s (or 640 to share it with one group)",
                          path, (st.st_mode & S_IROTH) ? "read" : "changed",
                          (unsigned)(st.st_mode & 07777), path);
    return 0;
}

static int read_all(int fd, const char *path, char *buf, size_t cap, size_t *got,
                    struct sb_err *err)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sb_err_errno(err, SB_EIO, "cannot read %s", path);
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap)
            return sb_err_set(err, SB_ECONFIG, "%s is larger than %d bytes", path,
                              SB_SECRET_FILE_MAX);
    }
    *got = n;
    return 0;
}

int sb_secret_file_read(const char *path, char **out, struct sb_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return sb_err_errno(err, errno == ENOENT ? SB_ECONFIG : SB_EIO, "cannot open %s", path);
    int rc = check_mode(fd, path, err);
    /* one byte more than allowed: a full buffer means the file is too big */
    char *buf = rc ? NULL : malloc(SB_SECRET_FILE_MAX + 1);
    size_t n = 0;
    if (!rc && !buf)
        rc = sb_err_set(err, SB_ENOMEM, "out of memory");
    if (!rc)
        rc = read_all(fd, path, buf, SB_SECRET_FILE_MAX + 1, &n, err);
    close(fd);
    while (!rc && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (!rc && n == 0)
        rc = sb_err_set(err, SB_ECONFIG, "%s is empty", path);
    if (!rc && memchr(buf, '\0', n))
        rc = sb_err_set(err, SB_ECONFIG, "%s contains a NUL byte", path);
    if (rc) {
        if (buf)
            explicit_bzero(buf, SB_SECRET_FILE_MAX + 1);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

void sb_secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}
