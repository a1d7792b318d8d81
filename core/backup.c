/* gatehouse — hot backups and restores (see include/gatehouse/backup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "gatehouse/audit.h"
#include "gatehouse/backup.h"
#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/seal.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#define COPY_BUF 65536

static const char *const envs[] = { GH_STORE_FILE, GH_AUDIT_DIR };

static int join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    return n < 0 || (size_t)n >= cap ? GH_ETOOBIG : 0;
}

static int exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

static void fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* dest: absent (created 0700) or an empty directory. */
static int prepare_dest(const char *dest)
{
    DIR *d;
    struct dirent *de;
    int empty = 1;

    if (mkdir(dest, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return GH_EIO;
    d = opendir(dest);
    if (d == NULL)
        return GH_EIO;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty ? 0 : GH_EEXIST;
}

/* A compacted snapshot of the environment src (a directory) into dst. */
static int copy_env(const char *src, const char *dst)
{
    MDB_env *env = NULL;
    char data[PATH_MAX];
    int rc;

    if (mkdir(dst, 0700) != 0)
        return GH_EIO;
    if ((rc = mdb_env_create(&env)) != 0)
        return GH_ESTORE;
    rc = mdb_env_set_maxdbs(env, 16);
    if (rc == 0)
        rc = mdb_env_open(env, src, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_env_copy2(env, dst, MDB_CP_COMPACT);
    mdb_env_close(env);
    if (rc != 0)
        return rc == ENOENT ? GH_ENOTINIT : GH_ESTORE;
    if (join(data, sizeof data, dst, "data.mdb") != 0)
        return GH_ETOOBIG;
    (void)chmod(data, 0600);
    fsync_path(data, 0);
    fsync_path(dst, 1);
    return 0;
}

/* Copy the file src to dst (created with mode, never over an existing
 * file or through a link), fsync'd. */
static int copy_file(const char *src, const char *dst, mode_t mode)
{
    char *buf = malloc(COPY_BUF);
    int in = -1, out = -1, rc = GH_EIO;
    ssize_t n;

    if (buf == NULL)
        return GH_ENOMEM;
    in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) {
        rc = errno == ENOENT ? GH_ENOTFOUND : GH_EIO;
        goto out;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               mode);
    if (out < 0)
        goto out;
    if (fchmod(out, mode) != 0)
        goto out;
    while ((n = read(in, buf, COPY_BUF)) != 0) {
        ssize_t w, off = 0;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        while (off < n) {
            w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += w;
        }
    }
    if (fsync(out) != 0)
        goto out;
    rc = 0;
out:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = GH_EIO;
    if (rc != 0 && out >= 0)
        unlink(dst);
    free(buf);
    return rc;
}

int gh_backup(const char *datadir, const char *dest, int with_key)
{
    char src[PATH_MAX], dst[PATH_MAX], man[PATH_MAX], text[128];
    int rc, fd;

    if (datadir == NULL || dest == NULL || dest[0] == '\0')
        return GH_EINVAL;
    if (join(src, sizeof src, datadir, GH_STORE_FILE) != 0)
        return GH_ETOOBIG;
    if (!exists(src))
        return GH_ENOTINIT;
    rc = prepare_dest(dest);
    if (rc != 0)
        return rc;
    /* the store first, the audit log second: see backup.h */
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        if (join(src, sizeof src, datadir, envs[i]) != 0 ||
            join(dst, sizeof dst, dest, envs[i]) != 0)
            return GH_ETOOBIG;
        if (i > 0 && !exists(src))
            continue;   /* no audit log yet */
        rc = copy_env(src, dst);
        if (rc != 0)
            return rc;
    }
    if (with_key) {
        if (join(src, sizeof src, datadir, GH_MASTER_KEY_FILE) != 0 ||
            join(dst, sizeof dst, dest, GH_MASTER_KEY_FILE) != 0)
            return GH_ETOOBIG;
        rc = copy_file(src, dst, 0600);
        if (rc != 0)
            return rc;
    }
    if (join(man, sizeof man, dest, GH_BACKUP_MANIFEST) != 0)
        return GH_ETOOBIG;
    snprintf(text, sizeof text, "{\"format\":1,\"time\":%lld,\"master_key\":%s}\n",
             (long long)gh_now(), with_key ? "true" : "false");
    fd = open(man, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return GH_EIO;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
        fsync(fd) != 0) {
        close(fd);
        return GH_EIO;
    }
    close(fd);
    fsync_path(dest, 1);
    return 0;
}

pid_t gh_data_in_use(const char *datadir)
{
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        struct flock fl;
        char sub[PATH_MAX];
        int fd;

        if (join(sub, sizeof sub, datadir, envs[i]) != 0 ||
            join(path, sizeof path, sub, "lock.mdb") != 0)
            return GH_ETOOBIG;
        fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return GH_EIO;
        }
        /* every process with the environment open holds a shared lock on
         * its first byte (LMDB's liveness lock) */
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = 0;
        fl.l_len = 1;
        if (fcntl(fd, F_GETLK, &fl) != 0) {
            close(fd);
            return GH_EIO;
        }
        close(fd);
        if (fl.l_type != F_UNLCK)
            return fl.l_pid > 0 ? fl.l_pid : 1;
    }
    return 0;
}

/* 0 when every signing key of the store in dir unseals with mk. */
typedef struct {
    const uint8_t *mk;
    int bad, n;
} unseal_t;

static int try_unseal(const gh_jwtkey_t *k, void *arg)
{
    unseal_t *u = arg;
    char label[64];
    uint8_t out[1024];
    size_t n;

    snprintf(label, sizeof label, "jwt-key:%s", k->kid);
    if (gh_unseal(u->mk, label, k->sealed, out, sizeof out, &n) != 0)
        u->bad++;
    gh_wipe(out, sizeof out);
    u->n++;
    return 0;
}

static int keys_match(const char *dir, const uint8_t mk[32])
{
    gh_store_t *st = NULL;
    unseal_t u = { mk, 0, 0 };
    int rc = gh_store_open(&st, dir, GH_STORE_RDONLY);

    if (rc != 0)
        return rc;
    rc = gh_jwtkey_list(st, try_unseal, &u);
    gh_store_close(st);
    if (rc == 0 && u.bad > 0)
        rc = GH_EDENIED;
    return rc;
}

typedef struct {
    char (*ids)[GH_ID_HEXLEN + 1];
    size_t n, cap;
} ids_t;

static int collect_id(const gh_user_t *u, void *arg)
{
    ids_t *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->ids, cap * sizeof *l->ids);

        if (p == NULL)
            return GH_ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    memcpy(l->ids[l->n++], u->id, GH_ID_HEXLEN + 1);
    return 0;
}

static int end_sessions(const char *datadir, int *ended)
{
    gh_store_t *st = NULL;
    ids_t l = { NULL, 0, 0 };
    int rc = gh_store_open(&st, datadir, 0);

    *ended = 0;
    if (rc != 0)
        return rc;
    rc = gh_user_list(st, NULL, collect_id, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        int n = gh_session_del_user(st, l.ids[i]);

        if (n < 0)
            rc = n;
        else
            *ended += n;
    }
    free(l.ids);
    gh_store_close(st);
    return rc;
}

int gh_restore(const char *src, const char *datadir, int *sessions_ended)
{
    char a[PATH_MAX], b[PATH_MAX], sub[PATH_MAX], keep[PATH_MAX + 32];
    uint8_t mk[GH_MASTER_KEY_BYTES], mk2[GH_MASTER_KEY_BYTES];
    int have_src_key, have_dst_key, rc;
    pid_t pid;

    *sessions_ended = 0;
    if (src == NULL || datadir == NULL)
        return GH_EINVAL;
    if (join(sub, sizeof sub, src, GH_STORE_FILE) != 0 ||
        join(a, sizeof a, sub, "data.mdb") != 0)
        return GH_ETOOBIG;
    if (!exists(a))
        return GH_ENOTINIT;
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST)
        return GH_EIO;
    pid = gh_data_in_use(datadir);
    if (pid != 0)
        return pid < 0 ? (int)pid : GH_EDENIED;

    /* the master key: the backup's signing keys must open with it */
    if (join(a, sizeof a, src, GH_MASTER_KEY_FILE) != 0 ||
        join(b, sizeof b, datadir, GH_MASTER_KEY_FILE) != 0)
        return GH_ETOOBIG;
    have_src_key = gh_master_key_load(a, mk) == 0;
    have_dst_key = gh_master_key_load(b, mk2) == 0;
    rc = 0;
    if (have_src_key && have_dst_key && !gh_ct_equal(mk, mk2, sizeof mk))
        rc = GH_EDENIED;
    else if (!have_src_key && !have_dst_key)
        rc = GH_ENOTFOUND;
    else
        rc = keys_match(src, have_src_key ? mk : mk2);
    gh_wipe(mk, sizeof mk);
    gh_wipe(mk2, sizeof mk2);
    if (rc != 0)
        return rc;
    if (have_src_key && !have_dst_key) {
        rc = copy_file(a, b, 0600);
        if (rc != 0)
            return rc;
    }

    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        char tmp[PATH_MAX + 16];

        if (join(sub, sizeof sub, src, envs[i]) != 0 ||
            join(a, sizeof a, sub, "data.mdb") != 0 ||
            join(sub, sizeof sub, datadir, envs[i]) != 0 ||
            join(b, sizeof b, sub, "data.mdb") != 0)
            return GH_ETOOBIG;
        if (!exists(a))
            continue;   /* a backup taken before there was an audit log */
        if (mkdir(sub, 0700) != 0 && errno != EEXIST)
            return GH_EIO;
        snprintf(tmp, sizeof tmp, "%s.restoring", b);
        snprintf(keep, sizeof keep, "%s.before-restore", b);
        (void)unlink(tmp);
        rc = copy_file(a, tmp, 0600);
        if (rc != 0)
            return rc;
        if (exists(b)) {
            (void)unlink(keep);
            if (link(b, keep) != 0) {
                unlink(tmp);
                return GH_EIO;
            }
        }
        if (rename(tmp, b) != 0) {
            unlink(tmp);
            return GH_EIO;
        }
        /* the old reader table belongs to the replaced file */
        if (join(b, sizeof b, sub, "lock.mdb") != 0)
            return GH_ETOOBIG;
        (void)unlink(b);
        fsync_path(sub, 1);
    }
    return end_sessions(datadir, sessions_ended);
}
