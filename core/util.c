/* gatehouse — small shared helpers (see include/gatehouse/util.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gatehouse/error.h"
#include "gatehouse/util.h"

#define GH_EMAIL_LOCAL_MAX 64   /* RFC 5321 §4.5.3.1.1 */
#define GH_DNS_LABEL_MAX   63   /* RFC 1035 §2.3.4 */

/* 0 means "use the real clock"; tests pin time with gh_clock_set(). Atomic
 * because thread-pool threads read it while a test thread may write it. */
static _Atomic int64_t gh_clock_fixed;

/* Wall clock seconds, or the value pinned by gh_clock_set(). */
int64_t gh_now(void)
{
    int64_t fixed = atomic_load(&gh_clock_fixed);
    struct timespec ts;

    if (fixed != 0)
        return fixed;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* Pin the clock for tests (0 restores the real clock). */
void gh_clock_set(int64_t fixed)
{
    atomic_store(&gh_clock_fixed, fixed);
}

static pthread_once_t gh_sodium_once = PTHREAD_ONCE_INIT;
static int gh_sodium_ok;

static void gh_sodium_init(void)
{
    gh_sodium_ok = sodium_init() >= 0;
}

/* Fill buf from libsodium's CSPRNG. sodium_init() runs once first so the
 * generator is seeded before the first use in any thread; if libsodium cannot
 * initialise there is no safe fallback, so abort rather than hand out
 * predictable bytes. */
void gh_random(void *buf, size_t len)
{
    pthread_once(&gh_sodium_once, gh_sodium_init);
    if (!gh_sodium_ok)
        abort();
    randombytes_buf(buf, len);
}

/* Wipe a secret; sodium_memzero is not optimised away. */
void gh_wipe(void *buf, size_t len)
{
    if (buf != NULL && len > 0)
        sodium_memzero(buf, len);
}

/* Constant-time comparison: 1 equal, 0 different. */
int gh_ct_equal(const void *a, const void *b, size_t len)
{
    if (len == 0)
        return 1;
    return sodium_memcmp(a, b, len) == 0;
}

/* SHA-256 (libsodium's implementation, no allocation). */
void gh_sha256(const void *data, size_t len, uint8_t out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)data, len);
}

static const char gh_b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encode n bytes as unpadded base64url into out (outcap bytes including the
 * NUL). Returns the text length or GH_ETOOBIG. */
int gh_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outcap)
{
    size_t need, i, o = 0;

    if (n > (size_t)(INT32_MAX / 4 * 3))
        return GH_ETOOBIG;
    need = n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
    if (outcap < need + 1)
        return GH_ETOOBIG;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = gh_b64url_alpha[v >> 18 & 63];
        out[o++] = gh_b64url_alpha[v >> 12 & 63];
        out[o++] = gh_b64url_alpha[v >> 6 & 63];
        out[o++] = gh_b64url_alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = gh_b64url_alpha[v >> 18 & 63];
        out[o++] = gh_b64url_alpha[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = gh_b64url_alpha[v >> 18 & 63];
        out[o++] = gh_b64url_alpha[v >> 12 & 63];
        out[o++] = gh_b64url_alpha[v >> 6 & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* Value of one base64url character, or -1. */
static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decode unpadded base64url. Strict: no padding, no whitespace, no '+' or
 * '/', and the unused low bits of the last character must be zero, so every
 * byte string has exactly one accepted encoding (a token cannot be varied
 * into a second cookie value for the same session). Returns the byte count,
 * GH_EINVAL or GH_ETOOBIG. */
int gh_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap)
{
    size_t need, i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return GH_EINVAL;
    if (n > (size_t)INT32_MAX)
        return GH_ETOOBIG;
    need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    for (i = 0; i < n; i++)
        if (b64url_val((unsigned char)in[i]) < 0)
            return GH_EINVAL;
    if (outcap < need)
        return GH_ETOOBIG;
    for (i = 0; i < n; i++) {
        acc = (acc << 6 | (uint32_t)b64url_val((unsigned char)in[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return GH_EINVAL;
    return (int)o;
}

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void gh_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A fresh random user id (128 bits: collisions are not a practical concern,
 * and the store refuses to overwrite anyway). */
void gh_new_id(char out[GH_ID_HEXLEN + 1])
{
    uint8_t raw[GH_ID_HEXLEN / 2];

    gh_random(raw, sizeof raw);
    gh_hex(raw, sizeof raw, out);
}

/* Characters allowed in the local part: printable ASCII minus space and the
 * RFC 5322 specials, which are only valid inside quoted local parts that we
 * do not accept (they would also be awkward in headers and logs). */
static int email_local_char_ok(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return strchr("\"(),:;<>@[\\]", c) == NULL;
}

/* Normalise and validate an email address (see util.h). Surrounding blanks
 * are trimmed; the result is lower-cased ASCII: we accept no IDN/UTF-8
 * addresses, so two spellings can never map to one account. */
int gh_email_normalize(const char *in, size_t len, char out[GH_EMAIL_MAX + 1])
{
    size_t b = 0, e = len, i, at = 0, nat = 0, label = 0, dots = 0;
    char buf[GH_EMAIL_MAX + 1];
    int rc = GH_EBADEMAIL;

    if (in == NULL || out == NULL)
        return GH_EBADEMAIL;
    while (b < e && (in[b] == ' ' || in[b] == '\t'))
        b++;
    while (e > b && (in[e - 1] == ' ' || in[e - 1] == '\t'))
        e--;
    if (e - b == 0 || e - b > GH_EMAIL_MAX)
        goto out;
    for (i = b; i < e; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c == '@') {
            at = i - b;
            nat++;
        }
        buf[i - b] = (char)c;
    }
    buf[e - b] = '\0';
    len = e - b;
    if (nat != 1 || at == 0 || at > GH_EMAIL_LOCAL_MAX || at + 1 >= len)
        goto out;
    for (i = 0; i < at; i++)
        if (!email_local_char_ok((unsigned char)buf[i]))
            goto out;
    /* Domain: dot-separated labels of [a-z0-9-], none empty, none starting
     * or ending with '-', at least two labels. */
    for (i = at + 1; i <= len; i++) {
        char c = buf[i];
        /* the end is i == len: a NUL inside the input is no separator */
        if (c == '.' || i == len) {
            if (label == 0 || label > GH_DNS_LABEL_MAX || buf[i - 1] == '-')
                goto out;
            if (c == '.')
                dots++;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            if (c == '-' && label == 0)
                goto out;
            label++;
        } else {
            goto out;
        }
    }
    if (dots == 0)
        goto out;
    memcpy(out, buf, len + 1);
    rc = 0;
out:
    return rc;
}

/* 1 for a valid tenant identifier (see util.h), else 0. */
int gh_tenant_name_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || s[0] == '-')
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (i >= GH_TENANT_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

int gh_duration_parse(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0, mul = 1;
    size_t i;

    if (s == NULL || out == NULL)
        return GH_EINVAL;
    if (len > 0) {
        switch (s[len - 1]) {
        case 's': mul = 1; len--; break;
        case 'm': mul = 60; len--; break;
        case 'h': mul = 3600; len--; break;
        case 'd': mul = 86400; len--; break;
        default: break;
        }
    }
    if (len == 0 || len > 12)
        return GH_EINVAL;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GH_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v == 0 || v > GH_DURATION_MAX / mul)
        return GH_ETOOBIG;
    *out = v * mul;
    return 0;
}

void gh_duration_format(int64_t secs, char *out, size_t cap)
{
    static const struct { int64_t n; char u; } units[] = {
        { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
    };
    size_t i;

    for (i = 0; i + 1 < sizeof units / sizeof units[0]; i++)
        if (secs != 0 && secs % units[i].n == 0)
            break;
    snprintf(out, cap, "%lld%c", (long long)(secs / units[i].n), units[i].u);
}
