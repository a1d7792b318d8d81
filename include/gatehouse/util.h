/* gatehouse — small shared helpers: clock, randomness, encodings, hashing,
 * input normalisation. No allocation unless stated; every output buffer has
 * an explicit size and functions fail with GH_ETOOBIG rather than truncate.
 */
#ifndef GATEHOUSE_UTIL_H
#define GATEHOUSE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Named input limits (bytes, without the terminating NUL). */
#define GH_EMAIL_MAX     254
#define GH_NAME_MAX      127   /* a person's display name */
#define GH_TENANT_MAX     63   /* tenant identifier: [a-z0-9-], starts alnum */
#define GH_ROLES_MAX    2079   /* comma-separated role names (32 x 64) */
#define GH_ID_HEXLEN      32   /* user ids: 16 random bytes as lower-case hex */

/* Wall clock in seconds since the epoch. Tests may override it with
 * gh_clock_set() (0 restores the real clock). */
int64_t gh_now(void);
void gh_clock_set(int64_t fixed);

/* Fill buf with len bytes from libsodium's CSPRNG. */
void gh_random(void *buf, size_t len);

/* Overwrite a buffer that held a secret; never optimised away. */
void gh_wipe(void *buf, size_t len);

/* Constant-time equality of two equal-length buffers: 1 equal, 0 not. */
int gh_ct_equal(const void *a, const void *b, size_t len);

/* SHA-256 of data into out[32]. */
void gh_sha256(const void *data, size_t len, uint8_t out[32]);

/* base64url without padding. encode: out must hold 4*ceil(n/3) + 1 bytes;
 * returns the length written (NUL-terminated). decode: returns bytes written
 * or GH_EINVAL on a character outside the alphabet / bad length,
 * GH_ETOOBIG if outcap is too small. */
int gh_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outcap);
int gh_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap);

/* Lower-case hex; out must hold 2n + 1 bytes. */
void gh_hex(const uint8_t *in, size_t n, char *out);

/* A fresh user id: GH_ID_HEXLEN hex characters + NUL. */
void gh_new_id(char out[GH_ID_HEXLEN + 1]);

/* Normalise an email address into out (lower-cased, trimmed of surrounding
 * spaces) and validate it: one '@', a non-empty local part, a domain of
 * dot-separated labels [a-z0-9-] with at least one dot, no control or space
 * characters, at most GH_EMAIL_MAX bytes. Returns 0 or GH_EBADEMAIL. */
int gh_email_normalize(const char *in, size_t len, char out[GH_EMAIL_MAX + 1]);

/* 1 if s is a valid tenant identifier: 1..GH_TENANT_MAX of [a-z0-9-],
 * first character a letter or digit. */
int gh_tenant_name_valid(const char *s);

/* A duration as the policy file writes it: integer seconds, or N followed
 * by s, m, h or d (len bytes). 0; GH_EINVAL when malformed, GH_ETOOBIG
 * when 0 or past GH_DURATION_MAX (ten years). */
#define GH_DURATION_MAX (3650LL * 86400)
int gh_duration_parse(const char *s, size_t len, int64_t *out);
/* Back to text in the largest unit that divides it ("30m", "12h", "90s");
 * cap >= 24. */
void gh_duration_format(int64_t secs, char *out, size_t cap);

#endif
