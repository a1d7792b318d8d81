/* gatehouse — session tokens and their lifetime.
 *
 * A token is 32 random bytes, sent to the browser base64url-encoded (43
 * characters) in the __Host-gatehouse cookie. The store only ever sees the
 * SHA-256 of the raw 32 bytes, so a copy of the database lets nobody ride a
 * session. A token is valid while now < created + lifetime and
 * now < last_seen + idle.
 */
#ifndef GATEHOUSE_SESSION_H
#define GATEHOUSE_SESSION_H

#include <stdint.h>
#include <stddef.h>
#include "gatehouse/store.h"

#define GH_TOKEN_BYTES   32
#define GH_TOKEN_LEN     43      /* base64url, no padding */
#define GH_COOKIE_NAME   "__Host-gatehouse"

#define GH_SESSION_IDLE_DEFAULT      (30 * 60)
#define GH_SESSION_LIFETIME_DEFAULT  (12 * 3600)

typedef struct {
    int64_t idle;       /* seconds without a request before expiry */
    int64_t lifetime;   /* seconds from login, whatever the activity */
} gh_session_policy_t;

/* A fresh token (text, NUL-terminated) and the store key for it. */
void gh_token_new(char token[GH_TOKEN_LEN + 1], uint8_t key[32]);

/* Turn cookie text into the store key. GH_EINVAL unless the text is exactly
 * GH_TOKEN_LEN base64url characters decoding to GH_TOKEN_BYTES bytes. */
int gh_token_key(const char *token, size_t len, uint8_t key[32]);

/* 0 if the session is live at now; GH_EEXPIRED otherwise. */
int gh_session_live(const gh_session_t *s, const gh_session_policy_t *pol,
                    int64_t now);

/* 1 when last_seen is old enough that it should be written back (we only
 * write last_seen every so often: min(60 s, idle / 10), at least 1 s). */
int gh_session_needs_touch(const gh_session_t *s,
                           const gh_session_policy_t *pol, int64_t now);

/* Create and store a session for user u; writes the cookie token. */
int gh_session_create(gh_store_t *st, const gh_user_t *u, const char *amr,
                      int64_t now, char token[GH_TOKEN_LEN + 1]);
/* The same with session flags (GH_SESSION_PWCHANGE: a session that may
 * only change its password). */
int gh_session_start(gh_store_t *st, const gh_user_t *u, const char *amr,
                     unsigned flags, int64_t now,
                     char token[GH_TOKEN_LEN + 1]);

/* The access-path check: token text -> live session and enabled user.
 * Returns 0, GH_EINVAL (malformed token), GH_ENOTFOUND, GH_EEXPIRED or
 * GH_EDISABLED. key_out (may be NULL) receives the store key. */
int gh_session_resolve(gh_store_t *st, const char *token, size_t len,
                       const gh_session_policy_t *pol, int64_t now,
                       gh_session_t *s, gh_user_t *u, uint8_t key_out[32]);
/* The same from the store key (gh_token_key), reading the policy and
 * key-set versions in the same transaction (vers[0], vers[1]: valid on
 * success and on GH_ENOTFOUND, GH_EDISABLED, GH_EEXPIRED). s and u are
 * written in place (zeroed on failure). Uses gh_request_read: one thread
 * per store handle. */
int gh_session_resolve_key(gh_store_t *st, const uint8_t key[32],
                           const gh_session_policy_t *pol, int64_t now,
                           gh_session_t *s, gh_user_t *u, uint64_t vers[2]);

#endif
