/* gatehouse — the audit trail, for now JSON lines in DATA/audit.log (see
 * include/gatehouse/audit.h; the audit issue replaces the body of
 * gh_audit with the hash-chained store). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "gatehouse/audit.h"
#include "gatehouse/error.h"
#include "gatehouse/util.h"

#define AUDIT_VALUE_MAX 1024    /* bytes of one field; longer is cut */

/* The process's audit file: opened once, written without a lock. */
static int audit_fd = -1;

int gh_audit_open(const char *datadir)
{
    char path[PATH_MAX];
    int n, fd;

    if (datadir == NULL || datadir[0] == '\0')
        return GH_EINVAL;
    if (audit_fd >= 0)
        return 0;
    n = snprintf(path, sizeof path, "%s/%s", datadir, GH_AUDIT_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return GH_ETOOBIG;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0)
        return GH_EIO;
    audit_fd = fd;
    return 0;
}

void gh_audit_close(void)
{
    if (audit_fd >= 0)
        close(audit_fd);
    audit_fd = -1;
}

/* s as a JSON string: at most AUDIT_VALUE_MAX bytes, bytes that are not
 * part of valid UTF-8 replaced by '?' (jansson refuses invalid UTF-8, and
 * a user-supplied email must still be recorded). NULL -> "". */
static json_t *audit_str(const char *s)
{
    char buf[AUDIT_VALUE_MAX + 1];
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strnlen((const char *)p, AUDIT_VALUE_MAX), i = 0, o = 0, len, k;

    while (i < n) {
        unsigned char c = p[i];
        uint32_t cp, min;

        if (c < 0x80) {
            buf[o++] = (char)c;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2; cp = c & 0x1f; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3; cp = c & 0x0f; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4; cp = c & 0x07; min = 0x10000;
        } else {
            buf[o++] = '?';
            i++;
            continue;
        }
        for (k = 1; k < len && i + k < n && (p[i + k] & 0xc0) == 0x80; k++)
            cp = cp << 6 | (p[i + k] & 0x3f);
        if (k < len || cp < min || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            buf[o++] = '?';
            i++;
            continue;
        }
        memcpy(buf + o, p + i, len);
        o += len;
        i += len;
    }
    return json_stringn(buf, o);
}

/* One event as one JSON line, one write(2). */
int gh_audit(const char *actor, const char *tenant, const char *addr,
             const char *request_id, const char *event, const char *detail)
{
    json_t *o;
    char *line;
    size_t n;
    ssize_t w;
    int rc = 0;

    if (audit_fd < 0)
        return GH_ENOTINIT;
    o = json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
                  "time", (json_int_t)gh_now(),
                  "actor", audit_str(actor), "tenant", audit_str(tenant),
                  "addr", audit_str(addr), "request_id", audit_str(request_id),
                  "event", audit_str(event), "detail", audit_str(detail));
    if (o == NULL)
        return GH_ENOMEM;
    line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line == NULL)
        return GH_ENOMEM;
    n = strlen(line);
    line[n] = '\n';   /* json_dumps leaves room: we overwrite its NUL */
    do {
        w = write(audit_fd, line, n + 1);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(n + 1))
        rc = GH_EIO;
    free(line);
    return rc;
}
