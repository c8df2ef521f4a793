/* backup.h - `sysbusd backup`, `restore` and `migrate` (backup.c). */
#ifndef SBD_BACKUP_H
#define SBD_BACKUP_H

/* argv[0] is "backup", "restore" or "migrate"; the rest are its flags. The exit code. */
int sbd_backup_main(int argc, char **argv);

#endif
