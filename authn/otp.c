/* gatehouse — HOTP/TOTP over liboath, otpauth URIs, QR codes as SVG, and
 * recovery codes. See include/gatehouse/otp.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <qrencode.h>

#include "gatehouse/error.h"
#include "gatehouse/otp.h"
#include "gatehouse/util.h"

int gh_otp_init(void)
{
    return oath_init() == OATH_OK ? 0 : GH_ECRYPTO;
}

int gh_otp_params_check(const gh_otp_params_t *p)
{
    if (p == NULL || (p->digits != 6 && p->digits != 8))
        return GH_EINVAL;
    switch (p->type) {
    case GH_OTP_TOTP:
        if (p->algo < GH_OTP_SHA1 || p->algo > GH_OTP_SHA512 ||
            p->period < 10 || p->period > 300)
            return GH_EINVAL;
        return 0;
    case GH_OTP_HOTP:
        return p->algo == GH_OTP_SHA1 ? 0 : GH_EINVAL;
    default:
        return GH_EINVAL;
    }
}

size_t gh_otp_secret_size(int algo)
{
    return algo == GH_OTP_SHA512 ? 64 : algo == GH_OTP_SHA256 ? 32 : 20;
}

int gh_otp_code(const gh_otp_params_t *p, const uint8_t *secret, size_t len,
                uint64_t counter, char out[GH_OTP_CODE_MAX + 1])
{
    int rc, flags;

    if (gh_otp_params_check(p) != 0 || secret == NULL || len == 0 ||
        len > GH_OTP_SECRET_MAX || out == NULL)
        return GH_EINVAL;
    if (p->type == GH_OTP_HOTP || p->algo == GH_OTP_SHA1) {
        rc = oath_hotp_generate((const char *)secret, len, counter,
                                (unsigned)p->digits, false,
                                OATH_HOTP_DYNAMIC_TRUNCATION, out);
    } else {
        /* liboath computes T from a time: give it the start of step T
         * (a TOTP code is the HOTP of T; only the HMAC differs). */
        if (counter > (uint64_t)INT64_MAX / (uint64_t)p->period)
            return GH_EINVAL;
        flags = p->algo == GH_OTP_SHA256 ? OATH_TOTP_HMAC_SHA256
                                         : OATH_TOTP_HMAC_SHA512;
        rc = oath_totp_generate2((const char *)secret, len,
                                 (time_t)(counter * (uint64_t)p->period),
                                 (unsigned)p->period, 0,
                                 (unsigned)p->digits, flags, out);
    }
    if (rc != OATH_OK) {
        gh_wipe(out, GH_OTP_CODE_MAX + 1);
        return GH_ECRYPTO;
    }
    return 0;
}

int gh_otp_clean(const char *in, size_t len, char out[GH_OTP_CODE_MAX + 1],
                 size_t *out_len)
{
    size_t i, n = 0;

    if (in == NULL)
        return GH_EINVAL;
    for (i = 0; i < len; i++) {
        if (in[i] == ' ' || in[i] == '-' || in[i] == '\t')
            continue;
        if (in[i] < '0' || in[i] > '9' || n == GH_OTP_CODE_MAX)
            return GH_EINVAL;
        out[n++] = in[i];
    }
    out[n] = '\0';
    if (n < 6)
        return GH_EINVAL;
    *out_len = n;
    return 0;
}

int gh_otp_match(const gh_otp_params_t *p, const uint8_t *secret, size_t len,
                 const char *code, size_t code_len, uint64_t from, uint64_t to,
                 uint64_t *counter)
{
    char want[GH_OTP_CODE_MAX + 1];
    uint64_t c, found = 0;
    int hit = 0, rc;

    if (gh_otp_params_check(p) != 0 || code == NULL || counter == NULL ||
        from > to || to - from >= 100000)
        return GH_EINVAL;
    if (code_len != (size_t)p->digits)
        return GH_EINVAL;
    for (c = from;; c++) {
        rc = gh_otp_code(p, secret, len, c, want);
        if (rc != 0) {
            gh_wipe(want, sizeof want);
            return rc;
        }
        /* no early exit: every candidate costs the same */
        if (gh_ct_equal(want, code, code_len) & !hit) {
            found = c;
            hit = 1;
        }
        if (c == to)
            break;
    }
    gh_wipe(want, sizeof want);
    if (!hit)
        return GH_EDENIED;
    *counter = found;
    return 0;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int gh_base32(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;
    unsigned bits = 0, acc = 0;

    if ((n * 8 + 4) / 5 + 1 > cap)
        return GH_ETOOBIG;
    for (i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    acc = 0;
    return (int)o;
}

/* Percent-encode s (everything but unreserved) at out + *o. */
static int pct(const char *s, char *out, size_t cap, size_t *o)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;

    for (; *u; u++) {
        if ((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
            (*u >= '0' && *u <= '9') || *u == '-' || *u == '.' ||
            *u == '_' || *u == '~') {
            if (*o + 1 >= cap)
                return GH_ETOOBIG;
            out[(*o)++] = (char)*u;
        } else {
            if (*o + 3 >= cap)
                return GH_ETOOBIG;
            out[(*o)++] = '%';
            out[(*o)++] = hex[*u >> 4];
            out[(*o)++] = hex[*u & 15];
        }
    }
    out[*o] = '\0';
    return 0;
}

/* Append literal text. */
static int lit(const char *s, char *out, size_t cap, size_t *o)
{
    size_t n = strlen(s);

    if (*o + n >= cap)
        return GH_ETOOBIG;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return 0;
}

int gh_otpauth_uri(const gh_otp_params_t *p, const char *issuer,
                   const char *account, const char *secret_b32,
                   uint64_t counter, char *out, size_t cap)
{
    static const char *const algos[] = { "SHA1", "SHA256", "SHA512" };
    char tail[96];
    size_t o = 0;

    if (gh_otp_params_check(p) != 0 || issuer == NULL || account == NULL ||
        secret_b32 == NULL || out == NULL || cap == 0)
        return GH_EINVAL;
    if (p->type == GH_OTP_TOTP)
        snprintf(tail, sizeof tail, "&algorithm=%s&digits=%d&period=%d",
                 algos[p->algo], p->digits, p->period);
    else
        snprintf(tail, sizeof tail, "&algorithm=SHA1&digits=%d&counter=%llu",
                 p->digits, (unsigned long long)counter);
    if (lit(p->type == GH_OTP_TOTP ? "otpauth://totp/" : "otpauth://hotp/",
            out, cap, &o) != 0 ||
        pct(issuer, out, cap, &o) != 0 || lit(":", out, cap, &o) != 0 ||
        pct(account, out, cap, &o) != 0 ||
        lit("?secret=", out, cap, &o) != 0 ||
        lit(secret_b32, out, cap, &o) != 0 ||
        lit("&issuer=", out, cap, &o) != 0 ||
        pct(issuer, out, cap, &o) != 0 || lit(tail, out, cap, &o) != 0) {
        gh_wipe(out, cap);
        return GH_ETOOBIG;
    }
    return 0;
}

int gh_qr_svg(const char *text, char **svg, size_t *len)
{
    QRcode *qr;
    char *buf, *p;
    size_t cap;
    int x, y, w, quiet = 4, n;

    if (text == NULL || svg == NULL || len == NULL)
        return GH_EINVAL;
    *svg = NULL;
    qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL)
        return GH_EINVAL;
    w = qr->width;
    /* one "M x yh1v1h-1z" per dark module at most, plus the frame */
    cap = 512 + (size_t)w * (size_t)w * 24;
    buf = malloc(cap);
    if (buf == NULL) {
        QRcode_free(qr);
        return GH_ENOMEM;
    }
    p = buf;
    n = snprintf(p, cap, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                 "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                 "shape-rendering=\"crispEdges\" role=\"img\" "
                 "aria-label=\"QR code\" id=\"otpauth-qr\">"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>"
                 "<path fill=\"#000\" d=\"",
                 w + 2 * quiet, w + 2 * quiet, (w + 2 * quiet) * 6,
                 (w + 2 * quiet) * 6);
    p += n;
    for (y = 0; y < w; y++) {
        for (x = 0; x < w; x++) {
            if (qr->data[y * w + x] & 1) {
                n = snprintf(p, cap - (size_t)(p - buf), "M%d %dh1v1h-1z",
                             x + quiet, y + quiet);
                p += n;
            }
        }
    }
    n = snprintf(p, cap - (size_t)(p - buf), "\"/></svg>");
    p += n;
    QRcode_free(qr);
    *svg = buf;
    *len = (size_t)(p - buf);
    return 0;
}

/* The 16 base32 characters of a typed code, lower-cased; -1 if malformed. */
static int recovery_clean(const char *in, size_t len, char out[17])
{
    size_t i, n = 0;
    char c;

    for (i = 0; i < len; i++) {
        c = in[i];
        if (c == ' ' || c == '-' || c == '\t')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) || n == 16)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == 16 ? 0 : -1;
}

static void recovery_digest(const uint8_t salt[16], const char clean[16],
                            char out[GH_RECOVERY_HASH_LEN + 1])
{
    uint8_t buf[32], md[32];

    memcpy(buf, salt, 16);
    memcpy(buf + 16, clean, 16);
    gh_sha256(buf, sizeof buf, md);
    gh_hex(md, sizeof md, out);
    gh_wipe(buf, sizeof buf);
}

void gh_recovery_new(const uint8_t salt[16],
                     char codes[GH_RECOVERY_CODES][GH_RECOVERY_LEN + 1],
                     char hashes[GH_RECOVERY_CODES][GH_RECOVERY_HASH_LEN + 1])
{
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t raw[16];
    char clean[17];
    int i, j, o;

    for (i = 0; i < GH_RECOVERY_CODES; i++) {
        gh_random(raw, sizeof raw);
        for (j = 0; j < 16; j++)
            clean[j] = lower[raw[j] & 31];   /* 5 bits of each byte */
        clean[16] = '\0';
        for (j = 0, o = 0; j < 16; j++) {
            if (j > 0 && j % 4 == 0)
                codes[i][o++] = '-';
            codes[i][o++] = clean[j];
        }
        codes[i][o] = '\0';
        recovery_digest(salt, clean, hashes[i]);
    }
    gh_wipe(raw, sizeof raw);
    gh_wipe(clean, sizeof clean);
}

int gh_recovery_hash(const uint8_t salt[16], const char *in, size_t len,
                     char out[GH_RECOVERY_HASH_LEN + 1])
{
    char clean[17];

    if (in == NULL || recovery_clean(in, len, clean) != 0) {
        gh_wipe(clean, sizeof clean);
        return GH_EINVAL;
    }
    recovery_digest(salt, clean, out);
    gh_wipe(clean, sizeof clean);
    return 0;
}

int gh_recovery_shaped(const char *in, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (in[i] != ' ' && in[i] != '-' && in[i] != '\t')
            n++;
    return n > GH_OTP_CODE_MAX;
}
