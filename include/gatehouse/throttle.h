/* gatehouse — login throttling: per account and per client address.
 *
 * Per account (keyed by the normalised email string as submitted, whether
 * or not such a user exists, so the answers never reveal which accounts
 * exist): the first GH_THROTTLE_FREE consecutive failures cost nothing;
 * from then on each failure closes the account for a back-off of 1 s,
 * 2 s, 4 s ... capped at 15 minutes, during which attempts are refused
 * (429 + Retry-After) without the password being evaluated; the
 * GH_THROTTLE_LOCKOUT-th consecutive failure locks the account until an
 * administrator unlocks it (NIST SP 800-63B 5.2.2: at most 100). A success
 * resets the account's counter. A count below the back-off threshold is
 * forgotten after 24 hours without a failure.
 *
 * Per client address (IPv4 address, or IPv6 /64): at most `addr_limit`
 * failed logins across all accounts in a fixed window of `addr_window`;
 * further attempts from there are refused until the window ends.
 *
 * An attempt is counted as a failure before its password is evaluated and
 * taken back when it succeeds: parallel guesses can never run past a
 * limit. The counters live in the LMDB store, shared by every nginx worker.
 * Every function that writes commits durably: call it from a thread-pool
 * thread or the CLI.
 */
#ifndef GATEHOUSE_THROTTLE_H
#define GATEHOUSE_THROTTLE_H

#include <stdint.h>
#include "gatehouse/netset.h"
#include "gatehouse/store.h"

#define GH_THROTTLE_FREE           5        /* failures before back-off */
#define GH_THROTTLE_LOCKOUT      100        /* failures that lock */
#define GH_THROTTLE_LOCKOUT_MAX  100        /* NIST's ceiling */
#define GH_THROTTLE_DELAY_FIRST  1000       /* ms */
#define GH_THROTTLE_DELAY_MAX    (15 * 60 * 1000)
#define GH_THROTTLE_ADDR_LIMIT   30         /* failures per window */
#define GH_THROTTLE_ADDR_WINDOW  (10 * 60 * 1000)
#define GH_THROTTLE_DECAY        (24 * 3600 * 1000LL)
#define GH_THROTTLE_SWEEP        8          /* stale records cleaned per write */

typedef struct {
    unsigned free_failures;   /* 1..lockout */
    unsigned lockout;         /* free_failures..GH_THROTTLE_LOCKOUT_MAX */
    int64_t  delay_first;     /* ms */
    int64_t  delay_max;       /* ms */
    unsigned addr_limit;      /* 0: no per-address limit */
    int64_t  addr_window;     /* ms */
    int64_t  decay;           /* ms */
} gh_throttle_conf_t;

void gh_throttle_conf_default(gh_throttle_conf_t *c);
/* 0 when c is coherent (ranges above), GH_EINVAL otherwise. */
int gh_throttle_conf_check(const gh_throttle_conf_t *c);

/* Wall clock in milliseconds (the counters' time base). */
int64_t gh_throttle_now_ms(void);

/* The back-off after `fails` consecutive failures: 0 below free_failures,
 * then delay_first doubling per failure, capped at delay_max. */
int64_t gh_throttle_delay(const gh_throttle_conf_t *c, uint32_t fails);

typedef struct {
    int         allowed;      /* 1: evaluate the password */
    const char *why;          /* refused: "account_locked",
                                 "account_backoff" or "address_limit" */
    int64_t     retry_after;  /* refused: seconds, >= 1 */
    uint32_t    failures;     /* allowed: the account's count with this
                                 attempt counted as failed */
    int         locks;        /* allowed: this attempt, if it fails,
                                 locks the account */
} gh_throttle_verdict_t;

/* The rule itself, on records (either may be NULL), no store: decide
 * whether an attempt at now may go ahead and, if so, count it as failed in
 * advance. gh_throttle_begin runs it inside one write transaction. */
void gh_throttle_judge(const gh_throttle_conf_t *c, gh_throttle_rec_t *acct,
                       gh_throttle_rec_t *addr, int64_t now,
                       gh_throttle_verdict_t *v);
/* A success: the account counter back to nothing, the address's advance
 * failure taken back. */
void gh_throttle_judge_success(const gh_throttle_conf_t *c,
                               gh_throttle_rec_t *acct,
                               gh_throttle_rec_t *addr, int64_t now);
/* 1 when a record may be deleted (a forgotten count, an ended window). */
int gh_throttle_expired(const gh_throttle_conf_t *c, int kind,
                        const gh_throttle_rec_t *r, int64_t now);

/* Before evaluating a password: email is the normalised address (NULL when
 * the input is no email: no account counter), addr the client (NULL: no
 * address counter). Returns 0 with v filled, or a store error (callers
 * refuse: 503). */
int gh_throttle_begin(gh_store_t *st, const gh_throttle_conf_t *c,
                      const char *email, const gh_addr_t *addr, int64_t now,
                      gh_throttle_verdict_t *v);
/* After the password proved right (same email and addr as begin). */
int gh_throttle_success(gh_store_t *st, const gh_throttle_conf_t *c,
                        const char *email, const gh_addr_t *addr,
                        int64_t now);
/* An administrator's unlock: the account's counter is forgotten.
 * GH_ENOTFOUND when there was none. */
int gh_throttle_unlock(gh_store_t *st, const char *email);
/* The account's counter (zero and GH_ENOTFOUND when none). */
int gh_throttle_account(gh_store_t *st, const char *email,
                        gh_throttle_rec_t *out);

#endif
