/* gatehouse — one-time passwords (HOTP, RFC 4226; TOTP, RFC 6238) over
 * liboath, and what goes with a second factor: the otpauth:// URI, its QR
 * code as SVG, and recovery codes.
 *
 * liboath computes codes; it does not remember which codes were used, so
 * gh_otp_match() only answers "which counter does this code belong to".
 * Refusing a replay (a counter at or below the last accepted one) is the
 * caller's job, inside the store transaction that records the new counter
 * (authn/mfa.c).
 *
 * No function here logs; secrets are wiped from every buffer this file
 * owns.
 */
#ifndef GATEHOUSE_OTP_H
#define GATEHOUSE_OTP_H

#include <stddef.h>
#include <stdint.h>

enum { GH_OTP_TOTP = 0, GH_OTP_HOTP = 1 };
enum { GH_OTP_SHA1 = 0, GH_OTP_SHA256 = 1, GH_OTP_SHA512 = 2 };

#define GH_OTP_SECRET_MAX    64     /* bytes (SHA512: a 64-byte seed) */
#define GH_OTP_SECRET_MIN    20     /* 160 bits, RFC 4226 R6 */
#define GH_OTP_B32_MAX       104    /* base32 of GH_OTP_SECRET_MAX, + NUL */
#define GH_OTP_CODE_MAX      8      /* digits */
#define GH_OTP_PERIOD        30     /* TOTP seconds */
#define GH_OTP_TOTP_WINDOW   1      /* default: steps either side */
#define GH_OTP_HOTP_WINDOW   10     /* default: look-ahead */
#define GH_OTP_RESYNC_WINDOW 1000   /* HOTP resynchronisation reach */
#define GH_OTP_URI_MAX       1024

#define GH_RECOVERY_CODES    10
#define GH_RECOVERY_LEN      19     /* "xxxx-xxxx-xxxx-xxxx": 16 base32
                                       characters, 80 bits */
#define GH_RECOVERY_HASH_LEN 64     /* hex SHA-256 */

/* One factor's parameters. */
typedef struct {
    int      type;       /* GH_OTP_TOTP | GH_OTP_HOTP */
    int      algo;       /* GH_OTP_SHA*; HOTP is SHA1 only */
    int      digits;     /* 6 or 8 */
    int      period;     /* TOTP step in seconds (GH_OTP_PERIOD) */
} gh_otp_params_t;

/* Call once per process before anything else here (oath_init). */
int gh_otp_init(void);

/* 0 when the combination is supported, GH_EINVAL otherwise. */
int gh_otp_params_check(const gh_otp_params_t *p);

/* The secret size we generate for an algorithm: 20, 32 or 64 bytes (the
 * seed sizes of RFC 6238 Appendix B). */
size_t gh_otp_secret_size(int algo);

/* The code for a counter (HOTP counter, or TOTP step number T =
 * floor(time / period)): digits decimal characters and a NUL.
 * 0, GH_EINVAL or GH_ECRYPTO. */
int gh_otp_code(const gh_otp_params_t *p, const uint8_t *secret, size_t len,
                uint64_t counter, char out[GH_OTP_CODE_MAX + 1]);

/* Which counter in [from, to] (inclusive, to - from < 100000) has this
 * code? Every candidate is computed and compared in constant time, so the
 * time taken does not depend on where (or whether) it matched. Returns 0
 * and *counter, GH_EDENIED when none matches, GH_EINVAL for a code that
 * is not exactly p->digits digits. */
int gh_otp_match(const gh_otp_params_t *p, const uint8_t *secret, size_t len,
                 const char *code, size_t code_len, uint64_t from, uint64_t to,
                 uint64_t *counter);

/* A code as typed: spaces and dashes dropped. 0, or GH_EINVAL when what
 * is left is not 6..8 digits. out has room for GH_OTP_CODE_MAX + 1. */
int gh_otp_clean(const char *in, size_t len, char out[GH_OTP_CODE_MAX + 1],
                 size_t *out_len);

/* RFC 4648 base32, upper case, no padding. out must hold
 * GH_OTP_B32_MAX. Returns the length or GH_ETOOBIG. */
int gh_base32(const uint8_t *in, size_t n, char *out, size_t cap);

/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=...
 * &digits=...&period=... (HOTP: &counter=N instead of period). Issuer and
 * account are percent-encoded. 0 or GH_ETOOBIG. */
int gh_otpauth_uri(const gh_otp_params_t *p, const char *issuer,
                   const char *account, const char *secret_b32,
                   uint64_t counter, char *out, size_t cap);

/* The QR code of text as a standalone SVG element (malloc'd, caller
 * frees). 0, GH_ENOMEM or GH_EINVAL (text too long for a QR code). */
int gh_qr_svg(const char *text, char **svg, size_t *len);

/* Ten fresh recovery codes (text, "xxxx-xxxx-xxxx-xxxx", lower case) and
 * their hashes (hex SHA-256 of salt || the 16 characters). */
void gh_recovery_new(const uint8_t salt[16],
                     char codes[GH_RECOVERY_CODES][GH_RECOVERY_LEN + 1],
                     char hashes[GH_RECOVERY_CODES][GH_RECOVERY_HASH_LEN + 1]);

/* The hash of a typed recovery code (case, spaces and dashes ignored).
 * GH_EINVAL when it is not 16 base32 characters. */
int gh_recovery_hash(const uint8_t salt[16], const char *in, size_t len,
                     char out[GH_RECOVERY_HASH_LEN + 1]);

/* 1 when the text looks like a recovery code rather than an OTP (it has
 * letters): decides which check a typed "code" gets. */
int gh_recovery_shaped(const char *in, size_t len);

#endif
