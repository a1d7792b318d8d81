/* gatehouse — login throttling (see include/gatehouse/throttle.h). The
 * rule is in gh_throttle_judge, a pure function on two records; the rest
 * runs it inside one store write transaction. */
#include <string.h>
#include <time.h>

#include "gatehouse/error.h"
#include "gatehouse/throttle.h"
#include "gatehouse/util.h"

void gh_throttle_conf_default(gh_throttle_conf_t *c)
{
    c->free_failures = GH_THROTTLE_FREE;
    c->lockout = GH_THROTTLE_LOCKOUT;
    c->delay_first = GH_THROTTLE_DELAY_FIRST;
    c->delay_max = GH_THROTTLE_DELAY_MAX;
    c->addr_limit = GH_THROTTLE_ADDR_LIMIT;
    c->addr_window = GH_THROTTLE_ADDR_WINDOW;
    c->decay = GH_THROTTLE_DECAY;
}

int gh_throttle_conf_check(const gh_throttle_conf_t *c)
{
    if (c == NULL || c->free_failures < 1 || c->lockout < c->free_failures ||
        c->lockout > GH_THROTTLE_LOCKOUT_MAX || c->delay_first < 1 ||
        c->delay_max < c->delay_first || c->delay_max > 24 * 3600 * 1000LL ||
        (c->addr_limit > 0 && c->addr_window < 1000) ||
        c->addr_window > 24 * 3600 * 1000LL || c->decay < 1)
        return GH_EINVAL;
    return 0;
}

int64_t gh_throttle_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gh_throttle_delay(const gh_throttle_conf_t *c, uint32_t fails)
{
    int64_t d;
    uint32_t i;

    if (fails < c->free_failures)
        return 0;
    d = c->delay_first;
    for (i = c->free_failures; i < fails && d < c->delay_max; i++)
        d *= 2;
    return d < c->delay_max ? d : c->delay_max;
}

/* Whole seconds until t, at least 1 (a Retry-After of 0 invites a storm). */
static int64_t seconds_until(int64_t t, int64_t now)
{
    int64_t s = (t - now + 999) / 1000;

    return s < 1 ? 1 : s;
}

void gh_throttle_judge(const gh_throttle_conf_t *c, gh_throttle_rec_t *acct,
                       gh_throttle_rec_t *addr, int64_t now,
                       gh_throttle_verdict_t *v)
{
    int64_t retry = 0, r;

    memset(v, 0, sizeof *v);
    if (acct != NULL && !acct->locked && acct->fails > 0 &&
        acct->fails < c->free_failures && now - acct->last > c->decay)
        memset(acct, 0, sizeof *acct);     /* a small count, forgotten */
    if (addr != NULL && (addr->since == 0 || now >= addr->since + c->addr_window
                         || now < addr->since)) {
        memset(addr, 0, sizeof *addr);     /* a new window */
        addr->since = now;
    }

    if (acct != NULL && acct->locked) {
        v->why = "account_locked";
        retry = seconds_until(now + c->delay_max, now);
    } else if (acct != NULL && acct->until > now) {
        v->why = "account_backoff";
        retry = seconds_until(acct->until, now);
    }
    if (addr != NULL && c->addr_limit > 0 && addr->fails >= c->addr_limit) {
        r = seconds_until(addr->since + c->addr_window, now);
        if (v->why == NULL)
            v->why = "address_limit";
        if (r > retry)
            retry = r;
    }
    if (v->why != NULL) {
        v->retry_after = retry;
        if (addr != NULL && addr->fails == 0)
            memset(addr, 0, sizeof *addr);   /* nothing worth writing */
        return;
    }

    v->allowed = 1;
    if (acct != NULL) {
        if (acct->fails < UINT32_MAX)
            acct->fails++;
        acct->last = now;
        if (acct->fails >= c->free_failures)
            acct->until = now + gh_throttle_delay(c, acct->fails);
        if (acct->fails >= c->lockout) {
            acct->locked = 1;
            v->locks = acct->fails == c->lockout;
        }
        v->failures = acct->fails;
    }
    if (addr != NULL) {
        if (addr->fails < UINT32_MAX)
            addr->fails++;
        addr->last = now;
    }
}

void gh_throttle_judge_success(const gh_throttle_conf_t *c,
                               gh_throttle_rec_t *acct,
                               gh_throttle_rec_t *addr, int64_t now)
{
    if (acct != NULL)
        memset(acct, 0, sizeof *acct);
    if (addr != NULL && addr->fails > 0 && now >= addr->since &&
        now < addr->since + c->addr_window)
        addr->fails--;
}

int gh_throttle_expired(const gh_throttle_conf_t *c, int kind,
                        const gh_throttle_rec_t *r, int64_t now)
{
    if (r->locked)
        return 0;
    if (kind == GH_THROTTLE_ADDRESS)
        return now >= r->since + c->addr_window || now < r->since;
    return r->fails < c->free_failures && now - r->last > c->decay;
}

/* ---- on the store ---- */

typedef struct {
    const gh_throttle_conf_t *c;
    int64_t                   now;
    int                       have_acct, have_addr;
    gh_throttle_verdict_t    *v;
} judge_arg_t;

static int judge_fn(gh_throttle_rec_t *recs, void *arg)
{
    judge_arg_t *a = arg;
    gh_throttle_rec_t *acct = a->have_acct ? &recs[0] : NULL;
    gh_throttle_rec_t *addr = a->have_addr ? &recs[a->have_acct] : NULL;

    if (a->v != NULL)
        gh_throttle_judge(a->c, acct, addr, a->now, a->v);
    else
        gh_throttle_judge_success(a->c, acct, addr, a->now);
    return 0;
}

static int expired_fn(int kind, const gh_throttle_rec_t *r, void *arg)
{
    const judge_arg_t *a = arg;

    return gh_throttle_expired(a->c, kind, r, a->now);
}

/* The address's counter key: an IPv4 address, or an IPv6 /64 (one host
 * usually holds a whole /64 and can pick any address in it). */
static void addr_id(const gh_addr_t *a, uint8_t out[16])
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0xff, 0xff };

    memcpy(out, a->b, 16);
    if (memcmp(a->b, v4mapped, sizeof v4mapped) != 0)
        memset(out + 8, 0, 8);
}

static size_t make_keys(gh_throttle_key_t keys[2], const char *email,
                        const gh_addr_t *addr, uint8_t id[16])
{
    size_t n = 0;

    if (email != NULL && email[0] != '\0') {
        keys[n].kind = GH_THROTTLE_ACCOUNT;
        keys[n].id = email;
        keys[n].len = strnlen(email, GH_EMAIL_MAX + 1);
        n++;
    }
    if (addr != NULL) {
        addr_id(addr, id);
        keys[n].kind = GH_THROTTLE_ADDRESS;
        keys[n].id = id;
        keys[n].len = 16;
        n++;
    }
    return n;
}

static int run(gh_store_t *st, const gh_throttle_conf_t *c, const char *email,
               const gh_addr_t *addr, int64_t now, gh_throttle_verdict_t *v)
{
    gh_throttle_key_t keys[2];
    uint8_t id[16];
    judge_arg_t a;
    size_t n;

    if (st == NULL || c == NULL ||
        (email != NULL && strnlen(email, GH_EMAIL_MAX + 1) > GH_EMAIL_MAX))
        return GH_EINVAL;
    n = make_keys(keys, email, addr, id);
    a.c = c;
    a.now = now;
    a.have_acct = email != NULL && email[0] != '\0';
    a.have_addr = addr != NULL;
    a.v = v;
    if (n == 0) {
        if (v != NULL) {
            memset(v, 0, sizeof *v);
            v->allowed = 1;
        }
        return 0;
    }
    return gh_throttle_update(st, keys, n, judge_fn, expired_fn,
                              v != NULL ? GH_THROTTLE_SWEEP : 0, &a);
}

int gh_throttle_begin(gh_store_t *st, const gh_throttle_conf_t *c,
                      const char *email, const gh_addr_t *addr, int64_t now,
                      gh_throttle_verdict_t *v)
{
    if (v == NULL)
        return GH_EINVAL;
    memset(v, 0, sizeof *v);
    return run(st, c, email, addr, now, v);
}

int gh_throttle_success(gh_store_t *st, const gh_throttle_conf_t *c,
                        const char *email, const gh_addr_t *addr,
                        int64_t now)
{
    return run(st, c, email, addr, now, NULL);
}

int gh_throttle_unlock(gh_store_t *st, const char *email)
{
    gh_throttle_key_t k;

    if (st == NULL || email == NULL || email[0] == '\0' ||
        strnlen(email, GH_EMAIL_MAX + 1) > GH_EMAIL_MAX)
        return GH_EINVAL;
    k.kind = GH_THROTTLE_ACCOUNT;
    k.id = email;
    k.len = strlen(email);
    return gh_throttle_del(st, &k);
}

int gh_throttle_account(gh_store_t *st, const char *email,
                        gh_throttle_rec_t *out)
{
    gh_throttle_key_t k;

    if (st == NULL || email == NULL || out == NULL || email[0] == '\0' ||
        strnlen(email, GH_EMAIL_MAX + 1) > GH_EMAIL_MAX)
        return GH_EINVAL;
    k.kind = GH_THROTTLE_ACCOUNT;
    k.id = email;
    k.len = strlen(email);
    return gh_throttle_get(st, &k, out);
}
