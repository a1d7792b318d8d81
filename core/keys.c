/* gatehouse — key material on disk (see include/gatehouse/keys.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gatehouse/error.h"
#include "gatehouse/keys.h"
#include "gatehouse/util.h"

#define GH_CN_MAX        64      /* X.520 ub-common-name */
#define GH_CERT_DAYS_MAX 3650
#define GH_SERIAL_BYTES  16

/* fsync the directory holding path so a freshly created file's directory
 * entry survives a crash too. Best effort: some file systems refuse. */
static void fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;
    int fd;

    if (slash == NULL) {
        dir[0] = '.';
        n = 1;
    } else {
        n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
    }
    dir[n] = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Write all len bytes to fd, retrying on EINTR and short writes. */
static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return GH_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Create a new secret file: never follow a symlink, never reuse an existing
 * file (an attacker-planted file could have other owners or links), and
 * force 0600 whatever the umask. Returns the fd or GH_EEXIST / GH_EIO. */
static int create_secret_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600);

    if (fd < 0)
        return errno == EEXIST ? GH_EEXIST : GH_EIO;
    if (fchmod(fd, 0600) != 0) {
        close(fd);
        unlink(path);
        return GH_EIO;
    }
    return fd;
}

/* Create the master key file with 32 fresh random bytes (see keys.h). */
int gh_master_key_create(const char *path)
{
    uint8_t key[GH_MASTER_KEY_BYTES];
    int fd = -1, rc;

    if (path == NULL || path[0] == '\0')
        return GH_EINVAL;
    fd = create_secret_file(path);
    if (fd < 0)
        return fd;
    gh_random(key, sizeof key);
    rc = write_all(fd, key, sizeof key);
    if (rc == 0 && fsync(fd) != 0)
        rc = GH_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = GH_EIO;
    fd = -1;
    if (rc != 0)
        goto out;
    fsync_parent(path);
out:
    if (rc != 0)
        unlink(path);
    gh_wipe(key, sizeof key);
    return rc;
}

/* Load the master key. Refuses a key others may read (GH_EDENIED): a key
 * that has been exposed must be treated as lost, not silently used. */
int gh_master_key_load(const char *path, uint8_t key[GH_MASTER_KEY_BYTES])
{
    struct stat sb;
    uint8_t buf[GH_MASTER_KEY_BYTES + 1];
    size_t got = 0;
    int fd = -1, rc;

    if (path == NULL || key == NULL)
        return GH_EINVAL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? GH_ENOTFOUND :
             errno == EACCES || errno == ELOOP ? GH_EDENIED : GH_EIO;
        goto out;
    }
    if (fstat(fd, &sb) != 0) {
        rc = GH_EIO;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = GH_EINVAL;
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        rc = GH_EDENIED;
        goto out;
    }
    /* Read one byte more than expected to notice a longer file. */
    while (got < sizeof buf) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = GH_EIO;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != GH_MASTER_KEY_BYTES) {
        rc = GH_EINVAL;
        goto out;
    }
    memcpy(key, buf, GH_MASTER_KEY_BYTES);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    gh_wipe(buf, sizeof buf);
    return rc;
}

/* 1 when cn is a plain host name (letters, digits, '-', '.') or an IP
 * literal. It goes into an OpenSSL config-style SAN string, so nothing that
 * could add another entry (',' ':' etc. outside an IPv6 literal) passes. */
static int cn_ok(const char *cn, int *is_ip)
{
    unsigned char tmp[16];
    size_t n = strnlen(cn, GH_CN_MAX + 1), i;

    *is_ip = 0;
    if (n == 0 || n > GH_CN_MAX)
        return 0;
    if (inet_pton(AF_INET, cn, tmp) == 1 || inet_pton(AF_INET6, cn, tmp) == 1) {
        *is_ip = 1;
        return 1;
    }
    if (cn[0] == '-' || cn[0] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        char c = cn[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Add one v3 extension given in OpenSSL's config syntax. */
static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return GH_ECRYPTO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : GH_ECRYPTO;
}

/* Write pkey (PKCS#8) or, when pkey is NULL, certificate x as PEM to a new
 * file (O_EXCL): mode 0600 when secret, else 0644. Removed on failure. */
static int write_pem(const char *path, int secret, EVP_PKEY *pkey, X509 *x)
{
    FILE *fp = NULL;
    int fd, rc = GH_EIO;

    if (secret) {
        fd = create_secret_file(path);
    } else {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
        if (fd < 0)
            fd = errno == EEXIST ? GH_EEXIST : GH_EIO;
    }
    if (fd < 0)
        return fd;
    fp = fdopen(fd, "w");
    if (fp == NULL) {
        close(fd);
        goto out;
    }
    if (pkey != NULL) {
        /* PEM_write_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"). */
        if (!PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL)) {
            rc = GH_ECRYPTO;
            goto out;
        }
    } else if (!PEM_write_X509(fp, x)) {
        rc = GH_ECRYPTO;
        goto out;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        goto out;
    rc = 0;
out:
    if (fp != NULL && fclose(fp) != 0 && rc == 0)
        rc = GH_EIO;
    if (rc != 0)
        unlink(path);
    else
        fsync_parent(path);
    return rc;
}

/* Self-signed ECDSA P-256 certificate for cn, SHA-256 signed, with SANs
 * cn (DNS, or IP when cn is an address literal), 127.0.0.1 and ::1;
 * basicConstraints CA:FALSE so it cannot sign anything else. Neither file
 * may exist beforehand (GH_EEXIST). */
int gh_selfsigned_create(const char *key_path, const char *cert_path,
                         const char *cn, int days)
{
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    X509_NAME *name;
    BIGNUM *bn = NULL;
    uint8_t serial[GH_SERIAL_BYTES];
    char san[3 * GH_CN_MAX];
    int rc = GH_ECRYPTO, is_ip, n, key_written = 0;

    if (key_path == NULL || cert_path == NULL || cn == NULL ||
        days < 1 || days > GH_CERT_DAYS_MAX || !cn_ok(cn, &is_ip))
        return GH_EINVAL;

    pkey = EVP_EC_gen("P-256");
    if (pkey == NULL)
        goto out;
    x = X509_new();
    if (x == NULL)
        goto out;
    if (!X509_set_version(x, 2))   /* v3 */
        goto out;
    /* Positive, non-zero 127-bit random serial (RFC 5280 §4.1.2.2). */
    gh_random(serial, sizeof serial);
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    /* Back-date a little to tolerate clock skew between hosts. */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) == NULL)
        goto out;
    if (!X509_set_pubkey(x, pkey))
        goto out;
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_issuer_name(x, name))
        goto out;

    if (is_ip && (strcmp(cn, "127.0.0.1") == 0 || strcmp(cn, "::1") == 0))
        n = snprintf(san, sizeof san, "IP:127.0.0.1,IP:::1");
    else
        n = snprintf(san, sizeof san, "%s:%s,IP:127.0.0.1,IP:::1",
                     is_ip ? "IP" : "DNS", cn);
    if (n < 0 || (size_t)n >= sizeof san)
        goto out;
    if ((rc = add_ext(x, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
        (rc = add_ext(x, NID_key_usage, "critical,digitalSignature")) != 0 ||
        (rc = add_ext(x, NID_ext_key_usage, "serverAuth")) != 0 ||
        (rc = add_ext(x, NID_subject_key_identifier, "hash")) != 0 ||
        (rc = add_ext(x, NID_subject_alt_name, san)) != 0)
        goto out;
    rc = GH_ECRYPTO;
    if (X509_sign(x, pkey, EVP_sha256()) <= 0)
        goto out;

    rc = write_pem(key_path, 1, pkey, NULL);
    if (rc != 0)
        goto out;
    key_written = 1;
    rc = write_pem(cert_path, 0, NULL, x);
out:
    if (rc != 0 && key_written)
        unlink(key_path);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}
