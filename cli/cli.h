/* gatehouse CLI — helpers shared by the command files under cli/. */
#ifndef GATEHOUSE_CLI_H
#define GATEHOUSE_CLI_H

#include "gatehouse/netset.h"
#include "gatehouse/password.h"
#include "gatehouse/policy.h"
#include "gatehouse/store.h"
#include "gatehouse/util.h"

#define EXIT_USAGE 2

/* "gatehouse: <message>" as exactly one line on stderr; returns code. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: one line, returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report the getopt failure for the option just scanned. */
int bad_option(int c, char **argv);
/* Decimal integer in [min, max] with full strtol checks: 0 or -1. */
int parse_long(const char *s, long min, long max, long *out);
/* Open the store, or print why not and return 1. */
int open_store(const char *dir, gh_store_t **st);
/* Normalise an email argument, or print why not and return 1. */
int email_arg(const char *in, char out[GH_EMAIL_MAX + 1]);
/* Find a user by email (optionally within tenant), or print and return 1. */
int find_user(gh_store_t *st, const char *email, const char *tenant,
              gh_user_t *u);

/* cli/policy.c */
int cmd_policy(const char *dir, int argc, char **argv);
int cmd_role(const char *dir, int argc, char **argv);
/* Store the built-in default policy (used by init). 0 or a GH_E* code. */
int policy_store_default(gh_store_t *st, const char *tenant);

/* cli/tenant.c */
/* tenant set with --networks, --idle or --lifetime. */
int tenant_set_is_access(int argc, char **argv);
int cmd_tenant_access(const char *dir, int argc, char **argv);
/* Set (and audit) networks (NULL keep, "none" unset) and lifetimes
 * (GH_TENANT_KEEP keep, 0 unset); src: "" or where they came from. */
int tenant_access_set(gh_store_t *st, const char *dir, const char *tenant,
                      const char *nets, int64_t idle, int64_t lifetime,
                      const char *src);
/* policy apply: the access settings a tenant section states, into the
 * record. 0 or 1. */
int tenant_access_from_policy(gh_store_t *st, const gh_policy_tenant_t *t);
/* policy apply, before anything is written: 1 (with its line printed)
 * when what the section states could not go into the record as it is. */
int tenant_access_check(const gh_policy_tenant_t *t, void *st);
/* policy explain: the record's networks compiled, or NULL when unset. */
int tenant_nets_load(gh_store_t *st, const char *tenant, gh_netset_t **out);

/* cli/admin.c */
int cmd_apitoken(const char *dir, int argc, char **argv);
int cmd_breakglass(const char *dir, int argc, char **argv);

/* cli/keys.c */
int cmd_keys(const char *dir, int argc, char **argv);
int cmd_jwt(const char *dir, int argc, char **argv);
/* A new signing key (sealed under DIR/master.key), signing from sign_from.
 * Prints its own error; 0 or 1. */
int keys_create(gh_store_t *st, const char *dir, int64_t sign_from,
                char kid_out[44]);

/* The data directory of this run (set by main) and whether it exists yet
 * (audit records go there). */
extern const char *cli_datadir;
extern int cli_datadir_ready;
/* The usage summary on stdout. */
void print_usage(void);

/* cli/passwords.c */
/* tenant set|show (sub), options after the subcommand. */
int cmd_tenant_pw(const char *dir, const char *sub, int argc, char **argv);
/* Check pw (len bytes) for user u (email, name, tenant filled; cred: the
 * current credential for the history rule, or NULL) against the tenant's
 * stored policy and hash its NFC form into hash; *keep receives how many
 * earlier hashes the history needs. Prints the verdict line: 0 or 1. */
int password_accept(gh_store_t *st, const gh_user_t *u,
                    const gh_credential_t *cred, const char *pw, size_t len,
                    char hash[GH_HASH_MAX], unsigned *keep);
/* The check alone, against given settings (init: before the store
 * exists). keep may be NULL. 0 or 1 (verdict line printed). */
int password_verdict(const gh_pwsettings_t *pws, int mfa, const gh_user_t *u,
                     const char *tenant_display, const gh_credential_t *cred,
                     const char *pw, size_t len, unsigned *keep);
/* Hash the NFC form of pw. 0 or 1 (error printed). */
int password_hash_nfc(const gh_pwhash_params_t *params, const char *pw,
                      size_t len, char hash[GH_HASH_MAX]);
/* policy apply: a stated password_profile into the tenant record. */
int tenant_profile_from_policy(gh_store_t *st, const char *tenant,
                               const char *profile);
/* user unlock. */
int user_unlock(gh_store_t *st, const char *dir, const gh_user_t *u);
/* One audit record from the CLI (actor "cli:<login>"); a failure is a
 * warning on stderr. */
void cli_audit(const char *dir, const char *tenant, const char *event,
               const char *detail);

/* cli/audit.c */
int cmd_audit(const char *dir, int argc, char **argv);
int cmd_backup(const char *dir, int argc, char **argv);
int cmd_restore(const char *dir, int argc, char **argv);
/* The record of an administrative action (actor cli:<login>): target,
 * result ("success"/"failure"), free text and the state before and after
 * (NULL when not applicable). st: the command's store (its signing key
 * signs a due checkpoint) or NULL. A failure is a warning on stderr. */
void cli_audit_admin(gh_store_t *st, const char *dir, const char *tenant,
                     const char *action, const char *target,
                     const char *result, const char *detail,
                     const char *before, const char *after);
/* u's role bindings as text, for before/after. */
void cli_roles_text(const gh_user_t *u, char *out, size_t cap);
/* "cli:<login>" (cli/passwords.c). */
const char *cli_actor(void);

/* cli/policy.c: the tenant's MFA requirement in the live policy (0 when
 * no policy was applied or it does not name the tenant). Prints its own
 * error: 0 or 1. */
int tenant_mfa_required(gh_store_t *st, const char *tenant, int *mfa);

/* cli/saml.c: idp add|show; tenant set --signin (alone). */
int cmd_idp(const char *dir, int argc, char **argv);
int tenant_set_is_signin(int argc, char **argv);
int cmd_tenant_signin(const char *dir, int argc, char **argv);

#endif
