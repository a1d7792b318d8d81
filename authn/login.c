/* gatehouse — the password login step.
 *
 * Every attempt with a well-sized password does exactly one Argon2id
 * verification — against the user's hash, or against a dummy hash made with
 * the same parameters when there is no user, no credential or no valid
 * email — so neither the result nor the time taken says which case it was
 * (OpenSSH's fakepw()). Disabled users verify their real hash and are then
 * denied, for the same reason.
 */
#include <string.h>

#include "gatehouse/error.h"
#include "gatehouse/login.h"

#define DUMMY_PW_BYTES 32
#define DUMMY_PW_TEXT  (4 * ((DUMMY_PW_BYTES + 2) / 3) + 1)

/* Load the hashing parameters and make the dummy hash from a random
 * password nobody ever sees. Returns 0, a params error (GH_EINVAL for
 * malformed meta), a store error or GH_ECRYPTO. */
int
gh_login_ctx_init(gh_login_ctx_t *ctx, gh_store_t *st)
{
    uint8_t raw[DUMMY_PW_BYTES];
    char pw[DUMMY_PW_TEXT];
    int rc, n;

    if (ctx == NULL || st == NULL)
        return GH_EINVAL;
    memset(ctx, 0, sizeof *ctx);
    gh_random(raw, sizeof raw);
    n = gh_b64url_encode(raw, sizeof raw, pw, sizeof pw);
    if (n < 0) {
        rc = n;
        goto out;
    }
    rc = gh_pwhash_params_load(st, &ctx->params);
    if (rc != 0)
        goto out;
    rc = gh_password_hash(&ctx->params, pw, (size_t)n, ctx->dummy_hash);
out:
    if (rc != 0)
        memset(ctx, 0, sizeof *ctx);
    gh_wipe(raw, sizeof raw);
    gh_wipe(pw, sizeof pw);
    return rc;
}

/* Upgrade the stored hash after a successful verification when it was made
 * with other parameters. Returns 1 when upgraded, 0 otherwise: a failure
 * here must not turn a correct password into a failed login. */
static int
maybe_rehash(gh_store_t *st, const gh_login_ctx_t *ctx, const char *uid,
             const char *hash, const char *pw, size_t pw_len)
{
    char fresh[GH_HASH_MAX];
    int done = 0;

    if (!gh_password_needs_rehash(hash, &ctx->params))
        goto out;
    if (gh_password_hash(&ctx->params, pw, pw_len, fresh) != 0)
        goto out;
    if (gh_credential_set(st, uid, fresh) != 0)
        goto out;
    done = 1;
out:
    gh_wipe(fresh, sizeof fresh);
    return done;
}

/* Check email + password; on success store a "pwd" session and fill res.
 * Returns 0; GH_EDENIED for any authentication failure (bad email, unknown
 * user, no credential, wrong password, disabled account, password longer
 * than GH_PASSWORD_MAX); GH_EINVAL for missing arguments; or a store error
 * from the lookup or the session write, which the gateway answers with 500
 * and never lets through. res is zeroed unless 0 is returned. */
int
gh_login_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                  const char *email, size_t email_len,
                  const char *pw, size_t pw_len, int64_t now,
                  gh_login_result_t *res)
{
    char norm[GH_EMAIL_MAX + 1];
    char hash[GH_HASH_MAX];
    gh_user_t user;
    const char *target;
    int rc, real = 0, verified;

    memset(&user, 0, sizeof user);
    hash[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (st == NULL || ctx == NULL || res == NULL || ctx->dummy_hash[0] == '\0' ||
        (email == NULL && email_len > 0) || (pw == NULL && pw_len > 0)) {
        rc = GH_EINVAL;
        goto out;
    }
    /* Refused before any lookup, so its timing depends on nothing secret;
     * it also bounds Argon2id input. */
    if (pw_len > GH_PASSWORD_MAX) {
        rc = GH_EDENIED;
        goto out;
    }

    target = ctx->dummy_hash;
    if (email != NULL && gh_email_normalize(email, email_len, norm) == 0) {
        rc = gh_login_lookup(st, norm, &user, hash);
        if (rc != 0 && rc != GH_ENOTFOUND)
            goto out;
        if (rc == 0 && hash[0] != '\0') {
            target = hash;
            real = 1;
        }
    }

    verified = gh_password_verify(target, pw, pw_len) == 0;
    if (!real || !verified || user.disabled) {
        rc = GH_EDENIED;
        goto out;
    }

    res->rehashed = maybe_rehash(st, ctx, user.id, hash, pw, pw_len);
    rc = gh_session_create(st, &user, "pwd", now, res->token);
    if (rc != 0)
        goto out;
    res->user = user;
    rc = 0;
out:
    if (rc != 0 && res != NULL) {
        gh_wipe(res->token, sizeof res->token);
        memset(res, 0, sizeof *res);
    }
    gh_wipe(hash, sizeof hash);
    return rc;
}
