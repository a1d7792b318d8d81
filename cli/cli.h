/* gatehouse CLI — helpers shared by the command files under cli/. */
#ifndef GATEHOUSE_CLI_H
#define GATEHOUSE_CLI_H

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

#endif
