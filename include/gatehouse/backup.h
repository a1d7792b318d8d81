/* gatehouse — hot backups of a data directory, and restoring one.
 *
 * A backup is a directory holding compacted copies of both LMDB
 * environments (gatehouse.mdb/ and audit.mdb/, taken with mdb_env_copy2
 * and MDB_CP_COMPACT: consistent snapshots, writers never blocked, so the
 * gateway keeps serving), and master.key only when asked for. The store is
 * copied first, the audit log second, so the audit copy holds the record
 * of every action the store copy holds.
 */
#ifndef GATEHOUSE_BACKUP_H
#define GATEHOUSE_BACKUP_H

#include <sys/types.h>

#define GH_BACKUP_MANIFEST "backup.json"

/* Copy datadir into dest, which must not exist or be an empty directory
 * (created 0700). with_key also copies master.key (0600). 0, GH_EEXIST
 * (dest not empty), GH_ENOTINIT (no store in datadir), GH_EIO, GH_ESTORE.
 * Never while this process has either environment of datadir open. */
int gh_backup(const char *datadir, const char *dest, int with_key);

/* The pid of a process that has datadir's store or audit log open (their
 * LMDB lock files' shared locks), 0 when none, or a negative GH_E* code.
 * Every nginx worker of a running gateway holds one. */
pid_t gh_data_in_use(const char *datadir);

/* Replace datadir's store and audit log with the backup in src. Refuses
 * (GH_EDENIED) while datadir is in use; the master key must be the
 * backup's (GH_EDENIED when the backup's signing keys do not unseal with
 * the one in datadir or src; GH_ENOTFOUND when neither has one). The
 * replaced files are kept beside as data.mdb.before-restore. Every
 * restored session is ended (*sessions_ended gets the count): a backup must
 * not bring back a session revoked since. */
int gh_restore(const char *src, const char *datadir, int *sessions_ended);

#endif
