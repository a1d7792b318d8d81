/* gatehouse — session tokens and their lifetime.
 *
 * The cookie carries 32 random bytes; the store is keyed by their SHA-256,
 * so neither a database copy nor a log of store keys lets anyone ride a
 * session. Every check here fails closed: a token that is not exactly the
 * canonical shape is refused before any store access.
 */
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/session.h"

#define TOUCH_MAX_INTERVAL 60   /* seconds */
#define B64_BUF (4 * ((GH_TOKEN_BYTES + 2) / 3) + 1)

/* 1 for a base64url alphabet character. */
static int
b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A fresh token and its store key. The raw bytes exist only on this stack
 * frame and are wiped before returning. */
void
gh_token_new(char token[GH_TOKEN_LEN + 1], uint8_t key[32])
{
    uint8_t raw[GH_TOKEN_BYTES];
    char text[B64_BUF];

    gh_random(raw, sizeof raw);
    /* Cannot fail: text is sized for the encoding of GH_TOKEN_BYTES. */
    (void)gh_b64url_encode(raw, sizeof raw, text, sizeof text);
    memcpy(token, text, GH_TOKEN_LEN);
    token[GH_TOKEN_LEN] = '\0';
    gh_sha256(raw, sizeof raw, key);
    gh_wipe(raw, sizeof raw);
    gh_wipe(text, sizeof text);
}

/* Cookie text -> store key. Accepts exactly GH_TOKEN_LEN base64url
 * characters (no padding, no whitespace) in canonical form; everything else
 * is GH_EINVAL, with key zeroed. */
int
gh_token_key(const char *token, size_t len, uint8_t key[32])
{
    uint8_t raw[GH_TOKEN_BYTES + 3];
    size_t i;
    int rc, n;

    if (key == NULL)
        return GH_EINVAL;
    memset(key, 0, 32);
    if (token == NULL || len != GH_TOKEN_LEN) {
        rc = GH_EINVAL;
        goto out;
    }
    for (i = 0; i < len; i++) {
        if (!b64url_char((unsigned char)token[i])) {
            rc = GH_EINVAL;
            goto out;
        }
    }
    /* The decoder refuses non-zero trailing bits, so each 32-byte token has
     * exactly one accepted spelling. */
    n = gh_b64url_decode(token, len, raw, sizeof raw);
    if (n != GH_TOKEN_BYTES) {
        rc = GH_EINVAL;
        goto out;
    }
    gh_sha256(raw, GH_TOKEN_BYTES, key);
    rc = 0;
out:
    gh_wipe(raw, sizeof raw);
    return rc;
}

/* *sum = a + b, or 0 on int64 overflow (callers then treat the session as
 * expired: a corrupt timestamp must not mean "forever"). */
static int
add_ok(int64_t a, int64_t b, int64_t *sum)
{
    return !__builtin_add_overflow(a, b, sum);
}

/* 0 while now < created + lifetime and now < last_seen + idle; GH_EEXPIRED
 * at or after either boundary, for a non-positive idle or lifetime, or on
 * arithmetic overflow. A NULL pol means the defaults. */
int
gh_session_live(const gh_session_t *s, const gh_session_policy_t *pol,
                int64_t now)
{
    gh_session_policy_t def = { GH_SESSION_IDLE_DEFAULT,
                                GH_SESSION_LIFETIME_DEFAULT };
    int64_t hard, soft;

    if (s == NULL)
        return GH_EEXPIRED;
    if (pol == NULL)
        pol = &def;
    if (pol->idle <= 0 || pol->lifetime <= 0)
        return GH_EEXPIRED;
    if (!add_ok(s->created, pol->lifetime, &hard) || now >= hard)
        return GH_EEXPIRED;
    if (!add_ok(s->last_seen, pol->idle, &soft) || now >= soft)
        return GH_EEXPIRED;
    /* a session waiting for its second factor is short-lived */
    if ((s->flags & GH_SESSION_MFA) &&
        (!add_ok(s->created, GH_MFA_PENDING_TTL, &hard) || now >= hard))
        return GH_EEXPIRED;
    return 0;
}

/* 1 when now - last_seen >= min(60, idle / 10) (at least 1 s): writing
 * last_seen on every request would make every request a durable write, and
 * this granularity costs at most a tenth of the idle window. 0 otherwise,
 * including when last_seen is in the future (clock step back). */
int
gh_session_needs_touch(const gh_session_t *s,
                       const gh_session_policy_t *pol, int64_t now)
{
    int64_t idle = pol != NULL ? pol->idle : GH_SESSION_IDLE_DEFAULT;
    int64_t interval = idle / 10;

    if (s == NULL || now <= s->last_seen)
        return 0;
    if (interval > TOUCH_MAX_INTERVAL)
        interval = TOUCH_MAX_INTERVAL;
    if (interval < 1)
        interval = 1;
    /* now > last_seen here; the difference fits unless last_seen is absurd. */
    if (s->last_seen < 0 && now > INT64_MAX + s->last_seen)
        return 1;
    return now - s->last_seen >= interval;
}

/* Store a new session for u (its id and tenant, amr, created = last_seen =
 * now) and write the cookie token. Returns 0, GH_EINVAL / GH_ETOOBIG for
 * bad arguments, or the store's error; token is "" on failure. A key
 * collision (GH_EEXIST) is retried once with a fresh token. */
int
gh_session_create(gh_store_t *st, const gh_user_t *u, const char *amr,
                  int64_t now, char token[GH_TOKEN_LEN + 1])
{
    return gh_session_start(st, u, amr, 0, now, token);
}

/* gh_session_create with session flags (GH_SESSION_*). */
int
gh_session_start(gh_store_t *st, const gh_user_t *u, const char *amr,
                 unsigned flags, int64_t now, char token[GH_TOKEN_LEN + 1])
{
    gh_session_t s;
    uint8_t key[32];
    size_t amr_len;
    int rc, attempt;

    if (token != NULL)
        token[0] = '\0';
    if (st == NULL || u == NULL || amr == NULL || token == NULL)
        return GH_EINVAL;
    amr_len = strlen(amr);
    if (amr_len == 0)
        return GH_EINVAL;
    if (amr_len > GH_AMR_MAX)
        return GH_ETOOBIG;
    if (strnlen(u->id, sizeof u->id) != GH_ID_HEXLEN ||
        !gh_tenant_name_valid(u->tenant) || (flags & ~GH_SESSION_FLAGS) != 0)
        return GH_EINVAL;

    memset(&s, 0, sizeof s);
    memcpy(s.uid, u->id, sizeof s.uid);
    memcpy(s.tenant, u->tenant, sizeof s.tenant);
    memcpy(s.amr, amr, amr_len + 1);
    s.created = now;
    s.last_seen = now;
    s.flags = flags;

    rc = GH_EEXIST;
    for (attempt = 0; attempt < 2 && rc == GH_EEXIST; attempt++) {
        gh_token_new(token, key);
        rc = gh_session_put(st, key, &s);
    }
    if (rc != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        gh_wipe(token, GH_TOKEN_LEN + 1);
    gh_wipe(key, sizeof key);
    return rc;
}

/* The checks of the access path once the token is a store key: a live
 * session of an enabled user of the same tenant, read into s and u (both
 * zeroed on failure) by gh_session_read, or by gh_request_read with the
 * versions when vers is not NULL. */
static int
resolve_key(gh_store_t *st, const uint8_t key[32],
            const gh_session_policy_t *pol, int64_t now, gh_session_t *s,
            gh_user_t *u, uint64_t *vers)
{
    int rc;

    if (vers != NULL)
        rc = gh_request_read(st, key, s, u, &vers[0], &vers[1]);
    else
        rc = gh_session_read(st, key, s, u);
    if (rc != 0)
        goto out;
    /* Defence in depth: the store joins on uid, but a session must never
     * carry a user into another tenant, whatever went wrong upstream. */
    if (strcmp(s->uid, u->id) != 0 || strcmp(s->tenant, u->tenant) != 0) {
        rc = GH_ENOTFOUND;
        goto out;
    }
    if (gh_user_off(u, now)) {
        rc = GH_EDISABLED;
        goto out;
    }
    rc = gh_session_live(s, pol, now);
out:
    if (rc != 0) {
        memset(s, 0, sizeof *s);
        memset(u, 0, sizeof *u);
    }
    return rc;
}

/* The access-path check: token text -> live session of an enabled user of
 * the same tenant. Returns 0, GH_EINVAL (malformed token), GH_ENOTFOUND (no
 * such session or user, or a session whose uid/tenant disagrees with its
 * user), GH_EDISABLED, GH_EEXPIRED, or a store error. s and u (may be NULL)
 * are filled only on success and zeroed otherwise; key_out (may be NULL) is
 * filled whenever the token was well-formed, so the caller can delete an
 * expired session. */
int
gh_session_resolve(gh_store_t *st, const char *token, size_t len,
                   const gh_session_policy_t *pol, int64_t now,
                   gh_session_t *s, gh_user_t *u, uint8_t key_out[32])
{
    gh_session_t ls;
    gh_user_t lu;
    uint8_t key[32];
    int rc;

    if (key_out != NULL)
        memset(key_out, 0, 32);
    if (st == NULL) {
        rc = GH_EINVAL;
        goto out;
    }
    rc = gh_token_key(token, len, key);
    if (rc != 0)
        goto out;
    if (key_out != NULL)
        memcpy(key_out, key, 32);

    rc = resolve_key(st, key, pol, now, &ls, &lu, NULL);
    if (rc != 0)
        goto out;
    if (s != NULL)
        *s = ls;
    if (u != NULL)
        *u = lu;
out:
    if (rc != 0) {
        if (s != NULL)
            memset(s, 0, sizeof *s);
        if (u != NULL)
            memset(u, 0, sizeof *u);
    }
    gh_wipe(key, sizeof key);
    return rc;
}

/* The gateway's form: the key already made from the token (gh_token_key),
 * s and u written in place, and the policy and key-set versions read in the
 * same transaction (gh_request_read; one thread per store handle). */
int
gh_session_resolve_key(gh_store_t *st, const uint8_t key[32],
                       const gh_session_policy_t *pol, int64_t now,
                       gh_session_t *s, gh_user_t *u, uint64_t vers[2])
{
    if (st == NULL || key == NULL || s == NULL || u == NULL || vers == NULL)
        return GH_EINVAL;
    return resolve_key(st, key, pol, now, s, u, vers);
}
