/* gatehouse — the password login step, shared by the gateway and tests.
 *
 * Unknown user, wrong password, missing credential and disabled account all
 * take the same path: one Argon2id verification (against a dummy hash when
 * there is nothing real to verify) and the same GH_EDENIED result, so neither
 * the answer nor its timing tells them apart.
 *
 * Runs Argon2id: call from a thread-pool thread or the CLI only.
 */
#ifndef GATEHOUSE_LOGIN_H
#define GATEHOUSE_LOGIN_H

#include "gatehouse/password.h"
#include "gatehouse/session.h"

typedef struct {
    gh_pwhash_params_t params;
    char               dummy_hash[GH_HASH_MAX];  /* made with params */
} gh_login_ctx_t;

/* Load the hashing parameters from the store and make the dummy hash
 * (one Argon2id computation). */
int gh_login_ctx_init(gh_login_ctx_t *ctx, gh_store_t *st);

typedef struct {
    gh_user_t user;
    char      token[GH_TOKEN_LEN + 1];
    int       rehashed;      /* 1 when the stored hash was upgraded */
} gh_login_result_t;

/* Check email + password; on success create a session ("pwd") and fill res.
 * Returns 0, GH_EDENIED (any authentication failure), or a store error. */
int gh_login_password(gh_store_t *st, const gh_login_ctx_t *ctx,
                      const char *email, size_t email_len,
                      const char *pw, size_t pw_len, int64_t now,
                      gh_login_result_t *res);

#endif
