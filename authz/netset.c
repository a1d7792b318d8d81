/* gatehouse — client addresses and compiled network allowlists (see
 * include/gatehouse/netset.h).
 *
 * An address is a 128-bit number (IPv4 mapped into ::ffff:0:0/96); a
 * network is the closed range [lo, hi] of such numbers. Compiling sorts the
 * ranges and merges overlapping and adjacent ones, so membership is one
 * binary search over disjoint, ordered ranges.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gatehouse/error.h"
#include "gatehouse/netset.h"

#define GH_NETSET_MAX   (1u << 20)   /* networks in one set */

typedef struct {
    uint64_t hi, lo;
} u128;

struct range {
    u128 lo, hi;
};

struct gh_netset {
    struct range *r;
    size_t nr;        /* ranges held (merged after compile) */
    size_t cap;
    size_t added;     /* networks added, what gh_netset_count reports */
    int compiled;     /* r[0..nr) sorted, disjoint, non-adjacent */
};

static const uint8_t v4mapped_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static u128 addr_to_u128(const gh_addr_t *a)
{
    u128 v = { 0, 0 };
    int i;

    for (i = 0; i < 8; i++)
        v.hi = (v.hi << 8) | a->b[i];
    for (i = 8; i < 16; i++)
        v.lo = (v.lo << 8) | a->b[i];
    return v;
}

static int u128_cmp(u128 a, u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

/* The mask of a /prefix (0..128): prefix leading one bits. */
static u128 prefix_mask(unsigned prefix)
{
    u128 m = { 0, 0 };

    if (prefix >= 64) {
        m.hi = ~(uint64_t)0;
        m.lo = prefix == 64 ? 0 : ~(uint64_t)0 << (128 - prefix);
    } else if (prefix > 0) {
        m.hi = ~(uint64_t)0 << (64 - prefix);
    }
    return m;
}

/* Parse a literal address of len bytes. The copy is bounded, so input need
 * not be NUL-terminated; spaces, zone ids ("%eth0") and embedded NULs are
 * refused before inet_pton sees the text. */
int gh_addr_parse(const char *s, size_t len, gh_addr_t *out)
{
    char buf[GH_ADDR_TEXT_MAX];
    struct in_addr v4;
    size_t i;
    int is6 = 0;

    if (s == NULL || out == NULL || len == 0 || len >= sizeof buf)
        return GH_EINVAL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            is6 = 1;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                   (c >= 'A' && c <= 'F') || c == '.'))
            return GH_EINVAL;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (is6) {
        if (inet_pton(AF_INET6, buf, out->b) != 1)
            return GH_EINVAL;
        return 0;
    }
    /* glibc's inet_pton(AF_INET) takes exactly four decimal parts and
     * refuses leading zeros, so "1.2.3" and "010.0.0.1" fail here. */
    if (inet_pton(AF_INET, buf, &v4) != 1)
        return GH_EINVAL;
    memcpy(out->b, v4mapped_prefix, sizeof v4mapped_prefix);
    memcpy(out->b + 12, &v4.s_addr, 4);
    return 0;
}

/* The peer of an accepted socket, as the 16-byte form. */
int gh_addr_from_sockaddr(const struct sockaddr *sa, gh_addr_t *out)
{
    if (sa == NULL || out == NULL)
        return GH_EINVAL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(out->b, v4mapped_prefix, sizeof v4mapped_prefix);
        memcpy(out->b + 12, &sin->sin_addr.s_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, sin6->sin6_addr.s6_addr, 16);
        return 0;
    }
    return GH_EINVAL;
}

/* Dotted quad for v4-mapped addresses; otherwise RFC 5952: lower-case hex,
 * no leading zeros, the longest run (first on a tie) of two or more zero
 * groups as "::". Written by hand because glibc's inet_ntop prints
 * "::0.2.0.3" for ::2:3. */
void gh_addr_format(const gh_addr_t *a, char out[GH_ADDR_TEXT_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    int best = -1, bestlen = 0, i, j;
    size_t n = 0;

    if (memcmp(a->b, v4mapped_prefix, sizeof v4mapped_prefix) == 0) {
        if (inet_ntop(AF_INET, a->b + 12, out, GH_ADDR_TEXT_MAX) == NULL)
            out[0] = '\0';
        return;
    }
    for (i = 0; i < 8; i++)
        w[i] = (unsigned)a->b[2 * i] << 8 | a->b[2 * i + 1];
    for (i = 0; i < 8; i = j) {
        for (j = i; j < 8 && w[j] == 0; j++)
            ;
        if (j - i >= 2 && j - i > bestlen) {
            best = i;
            bestlen = j - i;
        }
        if (j == i)
            j++;
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            out[n++] = ':';
            if (i == 0)
                out[n++] = ':';
            i += bestlen - 1;
            continue;
        }
        int started = 0, sh;
        for (sh = 12; sh >= 0; sh -= 4) {
            unsigned d = (w[i] >> sh) & 0xf;
            if (d != 0 || started || sh == 0) {
                out[n++] = hex[d];
                started = 1;
            }
        }
        if (i != 7)
            out[n++] = ':';
    }
    out[n] = '\0';
}

gh_netset_t *gh_netset_new(void)
{
    return calloc(1, sizeof(gh_netset_t));
}

void gh_netset_free(gh_netset_t *s)
{
    if (s == NULL)
        return;
    free(s->r);
    free(s);
}

/* A prefix length: 1..3 decimal digits, no sign, no leading zero ("08" is
 * refused: canonical text only), at most max. -1 when malformed. */
static int parse_prefix(const char *p, size_t len, unsigned max)
{
    unsigned v = 0;
    size_t i;

    if (len == 0 || len > 3 || (len > 1 && p[0] == '0'))
        return -1;
    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v > max ? -1 : (int)v;
}

/* Add one network. The address part is parsed as v4 or v6; a v4 /p becomes
 * the v6 /(96+p) of the mapped range. Host bits below the prefix are an
 * error rather than silently cleared: "10.0.0.1/8" is usually a typo. */
int gh_netset_add(gh_netset_t *s, const char *cidr, size_t len)
{
    const char *slash;
    gh_addr_t a;
    size_t alen;
    unsigned prefix = 128;
    u128 v, m;
    struct range r;
    int p;

    if (s == NULL || cidr == NULL || len == 0)
        return GH_EINVAL;
    slash = memchr(cidr, '/', len);
    alen = slash ? (size_t)(slash - cidr) : len;
    if (gh_addr_parse(cidr, alen, &a) != 0)
        return GH_EINVAL;
    if (slash) {
        int is4 = memchr(cidr, ':', alen) == NULL;
        p = parse_prefix(slash + 1, len - alen - 1, is4 ? 32 : 128);
        if (p < 0)
            return GH_EINVAL;
        prefix = is4 ? 96 + (unsigned)p : (unsigned)p;
    }
    v = addr_to_u128(&a);
    m = prefix_mask(prefix);
    if ((v.hi & ~m.hi) != 0 || (v.lo & ~m.lo) != 0)
        return GH_EINVAL;
    r.lo = v;
    r.hi.hi = v.hi | ~m.hi;
    r.hi.lo = v.lo | ~m.lo;

    if (s->nr == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        struct range *nr;
        if (ncap > GH_NETSET_MAX)
            return GH_ETOOBIG;
        nr = realloc(s->r, ncap * sizeof *nr);
        if (nr == NULL)
            return GH_ENOMEM;
        s->r = nr;
        s->cap = ncap;
    }
    s->r[s->nr++] = r;
    s->added++;
    s->compiled = 0;
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    int c = u128_cmp(x->lo, y->lo);

    return c != 0 ? c : u128_cmp(x->hi, y->hi);
}

/* hi + 1 == lo, i.e. the two ranges touch (hi is never all-ones here:
 * callers check that first). */
static int adjacent(u128 hi, u128 lo)
{
    u128 n = hi;

    if (++n.lo == 0)
        n.hi++;
    return u128_cmp(n, lo) == 0;
}

/* Sort by low end and merge every range that overlaps or touches the one
 * before it. */
int gh_netset_compile(gh_netset_t *s)
{
    size_t i, out = 0;

    if (s == NULL)
        return GH_EINVAL;
    if (s->compiled || s->nr == 0) {
        s->compiled = 1;
        return 0;
    }
    qsort(s->r, s->nr, sizeof *s->r, range_cmp);
    for (i = 1; i < s->nr; i++) {
        struct range *cur = &s->r[out];
        const struct range *nx = &s->r[i];
        int all_ones = cur->hi.hi == ~(uint64_t)0 && cur->hi.lo == ~(uint64_t)0;
        if (all_ones || u128_cmp(nx->lo, cur->hi) <= 0 ||
            adjacent(cur->hi, nx->lo)) {
            if (u128_cmp(nx->hi, cur->hi) > 0)
                cur->hi = nx->hi;
        } else {
            s->r[++out] = *nx;
        }
    }
    s->nr = out + 1;
    s->compiled = 1;
    return 0;
}

/* Binary search for the last range whose low end is <= a. A set not yet
 * compiled is scanned linearly, so the answer is right either way. */
int gh_netset_contains(const gh_netset_t *s, const gh_addr_t *a)
{
    u128 v;
    size_t lo, hi, i;

    if (s == NULL || a == NULL || s->nr == 0)
        return 0;
    v = addr_to_u128(a);
    if (!s->compiled) {
        for (i = 0; i < s->nr; i++)
            if (u128_cmp(v, s->r[i].lo) >= 0 && u128_cmp(v, s->r[i].hi) <= 0)
                return 1;
        return 0;
    }
    lo = 0;
    hi = s->nr;            /* invariant: answer index in [lo, hi) or none */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u128_cmp(s->r[mid].lo, v) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    return u128_cmp(v, s->r[lo - 1].hi) <= 0;
}

static int list_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

int gh_netset_add_list(gh_netset_t *s, const char *list, size_t max,
                       char *canon, size_t cap)
{
    size_t off = 0, n, count = 0;
    int rc;

    if (s == NULL || list == NULL || (canon != NULL && cap == 0))
        return GH_EINVAL;
    if (canon != NULL)
        canon[0] = '\0';
    for (; *list != '\0'; list += n) {
        while (list_sep(*list))
            list++;
        for (n = 0; list[n] != '\0' && !list_sep(list[n]); n++)
            ;
        if (n == 0)
            break;
        if (++count > max)
            return GH_ETOOBIG;
        if ((rc = gh_netset_add(s, list, n)) != 0)
            return rc;
        if (canon == NULL)
            continue;
        if (off + n + 2 > cap)
            return GH_ETOOBIG;
        if (off > 0)
            canon[off++] = ',';
        memcpy(canon + off, list, n);
        off += n;
        canon[off] = '\0';
    }
    return (int)count;
}

size_t gh_netset_count(const gh_netset_t *s)
{
    return s ? s->added : 0;
}
