/* gatehouse — client addresses and compiled network allowlists.
 *
 * Every address is held as 16 bytes: IPv4 as the v4-mapped IPv6 address
 * ::ffff:a.b.c.d, so "10.0.0.0/8" and a v4-mapped peer on a dual-stack
 * socket are one and the same. A set is compiled once (sorted, merged
 * ranges) and answers membership by binary search: no allocation, no
 * system call on the request path.
 */
#ifndef GATEHOUSE_NETSET_H
#define GATEHOUSE_NETSET_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define GH_ADDR_TEXT_MAX 46   /* INET6_ADDRSTRLEN */

typedef struct {
    uint8_t b[16];
} gh_addr_t;

/* Parse a literal address (IPv4 dotted quad, IPv6, v4-mapped IPv6), len
 * bytes, no surrounding spaces, no zone id. 0 or GH_EINVAL. */
int gh_addr_parse(const char *s, size_t len, gh_addr_t *out);
/* From a socket address (AF_INET or AF_INET6). 0 or GH_EINVAL. */
int gh_addr_from_sockaddr(const struct sockaddr *sa, gh_addr_t *out);
/* Text form: dotted quad for v4-mapped addresses, RFC 5952 otherwise. */
void gh_addr_format(const gh_addr_t *a, char out[GH_ADDR_TEXT_MAX]);

typedef struct gh_netset gh_netset_t;

gh_netset_t *gh_netset_new(void);
void gh_netset_free(gh_netset_t *s);
/* Add "ADDR/PREFIX" or a bare address (a host route), len bytes. GH_EINVAL
 * for a malformed network, a prefix out of range, or host bits set below
 * the prefix ("10.0.0.1/8" is refused: it is usually a typo). */
int gh_netset_add(gh_netset_t *s, const char *cidr, size_t len);
/* Add each network of a list ("10.0.0.0/8, 192.0.2.1": separated by
 * commas and/or spaces) of at most max networks. canon (cap bytes, may be
 * NULL) gets the networks joined by ",". Returns how many were added (0 for
 * an empty list), GH_EINVAL for a bad network, GH_ETOOBIG past max or cap;
 * the set is then partly filled: discard it. */
int gh_netset_add_list(gh_netset_t *s, const char *list, size_t max,
                       char *canon, size_t cap);
/* Sort and merge; required before gh_netset_contains. Idempotent. */
int gh_netset_compile(gh_netset_t *s);
/* 1 when a is inside one of the networks, else 0. */
int gh_netset_contains(const gh_netset_t *s, const gh_addr_t *a);
/* Number of networks added (0: an empty set, which callers read as
 * "no restriction at this level"). */
size_t gh_netset_count(const gh_netset_t *s);

#endif
