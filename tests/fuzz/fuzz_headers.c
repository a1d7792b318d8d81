/* Fuzz the gateway's own header parsers (gateway/ngx_http_gatehouse_module.c,
 * included so the real statics run; tests/fuzz/ngx_stub.h supplies the
 * nginx they need):
 *   - gh_filter_cookie_header: taking our cookies out of a Cookie header
 *     before it is proxied. Property: no pair left (split on ';' and ',',
 *     as nginx reads them) is one of our cookies in any spelling nginx
 *     accepts, and the output is no longer than the input.
 *   - gh_cookie (pages.c): the session cookie lookup. Property: a value
 *     found sits right after the exact-case name and '='.
 *   - gh_forbidden_header: the identity-header name check. Property: any
 *     name that starts with "x-gatehouse-" once '_' reads as '-' (any case)
 *     is forbidden; otherwise only "x-" routing overrides are.
 *   - gh_client_addr: the X-Forwarded-For chain from a trusted proxy (peer
 *     127.0.0.1, trusted 127.0.0.0/8 and 10.0.0.0/8). Property: the address
 *     chosen is the peer or a hop of the chain, and never a trusted hop
 *     unless every hop was trusted.
 * Input: lines; the first is a Cookie value, the second a header name, the
 * rest X-Forwarded-For values (at most 10). */
#define _GNU_SOURCE      /* gettid(), as nginx's own build defines it */
#include <stdlib.h>
#include <string.h>

#include "../../gateway/ngx_http_gatehouse_module.c"
#include "../../gateway/ngx_http_gatehouse_pages.c"

#include "fuzz.h"
#include "ngx_stub.h"

static int
own_pair(const u_char *p, size_t n)
{
    static const char *own[] = { "__host-gatehouse", "__host-gatehouse-csrf" };
    size_t i, k, m;

    for (k = 0; k < 2; k++) {
        m = strlen(own[k]);
        if (n < m) {
            continue;
        }
        for (i = 0; i < m; i++) {
            u_char c = p[i];
            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;
            }
            if (c != (u_char) own[k][i]) {
                break;
            }
        }
        if (i < m) {
            continue;
        }
        while (i < n && (p[i] == ' ' || p[i] == '\t')) {
            i++;
        }
        if (i == n || p[i] == '=') {
            return 1;
        }
    }
    return 0;
}

static void
check_cookie(const uint8_t *v, size_t n)
{
    ngx_http_request_t  r;
    ngx_table_elt_t     h;
    u_char             *p, *end, *semi;
    ngx_int_t           rc;

    memset(&r, 0, sizeof(r));
    memset(&h, 0, sizeof(h));
    h.value.len = n;
    h.value.data = ngx_pnalloc(NULL, n ? n : 1);
    if (h.value.data == NULL) {
        return;
    }
    ngx_memcpy(h.value.data, v, n);
    rc = gh_filter_cookie_header(&r, &h);
    FUZZ_CHECK(rc == 0 || rc == 1);
    FUZZ_CHECK(h.value.len <= n);
    FUZZ_CHECK((rc == 1) == (h.value.len == 0));
    p = h.value.data;
    end = p + h.value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';' || *p == ',')) {
            p++;
        }
        for (semi = p; semi < end && *semi != ';' && *semi != ','; semi++) { }
        FUZZ_CHECK(!own_pair(p, semi - p));
        p = semi;
    }

    /* gh_cookie: a value it finds lies inside the header, right after the
     * exact-case name, blanks and '=' */
    {
        ngx_table_elt_t   *one[1];
        ngx_str_t          val;

        h.value.len = n;
        h.value.data = ngx_pnalloc(NULL, n ? n : 1);
        if (h.value.data == NULL) {
            return;
        }
        ngx_memcpy(h.value.data, v, n);
        one[0] = &h;
        r.headers_in.cookies.elts = one;
        r.headers_in.cookies.nelts = 1;
        r.headers_in.cookies.size = sizeof(one[0]);
        r.headers_in.cookies.nalloc = 1;
        if (gh_cookie(&r, GH_COOKIE_NAME, &val) == NGX_OK) {
            u_char *e = val.data;
            FUZZ_CHECK(val.data >= h.value.data
                       && val.data + val.len <= h.value.data + n);
            while (e > h.value.data && (e[-1] == ' ' || e[-1] == '\t')) {
                e--;
            }
            FUZZ_CHECK(e > h.value.data && e[-1] == '=');
            e--;
            while (e > h.value.data && (e[-1] == ' ' || e[-1] == '\t')) {
                e--;
            }
            FUZZ_CHECK(e - h.value.data >= (ptrdiff_t) strlen(GH_COOKIE_NAME));
            FUZZ_CHECK(memcmp(e - strlen(GH_COOKIE_NAME), GH_COOKIE_NAME,
                              strlen(GH_COOKIE_NAME)) == 0);
            FUZZ_CHECK(memchr(val.data, ';', val.len) == NULL
                       && memchr(val.data, ',', val.len) == NULL);
        }
    }
}

static void
check_name(const uint8_t *v, size_t n)
{
    static const char prefix[] = "x-gatehouse-";
    ngx_http_gatehouse_main_conf_t  mcf;
    ngx_table_elt_t                 h;
    size_t                          i;
    int                             ours = n >= sizeof(prefix) - 1;

    for (i = 0; ours && i < sizeof(prefix) - 1; i++) {
        u_char c = v[i];
        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }
        if (c == '_') {
            c = '-';
        }
        ours = c == (u_char) prefix[i];
    }
    memset(&mcf, 0, sizeof(mcf));
    memset(&h, 0, sizeof(h));
    h.key.len = n;
    h.key.data = (u_char *) v;
    /* our prefix is always forbidden; besides it, only the routing
     * override names are (which all begin with "x-") */
    if (ours) {
        FUZZ_CHECK(gh_forbidden_header(&mcf, &h) == 1);
    } else if (gh_forbidden_header(&mcf, &h)) {
        FUZZ_CHECK(n > 2 && (v[0] | 0x20) == 'x' && (v[1] == '-' || v[1] == '_'));
    }
}

static void
check_xff(const uint8_t **lines, const size_t *lens, size_t nlines)
{
    static gh_netset_t                *trusted;
    ngx_http_gatehouse_main_conf_t     mcf;
    ngx_http_gatehouse_ctx_t           ctx;
    ngx_http_request_t                 r;
    ngx_connection_t                   c;
    struct sockaddr_in                 sin;
    ngx_table_elt_t                    h[10];
    ngx_list_part_t                   *part;
    gh_addr_t                          peer, hop;
    size_t                             i, k;
    int                                seen;

    if (trusted == NULL) {
        trusted = gh_netset_new();
        FUZZ_CHECK(trusted != NULL);
        FUZZ_CHECK(gh_netset_add(trusted, "127.0.0.0/8", 11) == 0);
        FUZZ_CHECK(gh_netset_add(trusted, "10.0.0.0/8", 10) == 0);
        FUZZ_CHECK(gh_netset_compile(trusted) == 0);
    }
    memset(&mcf, 0, sizeof(mcf));
    memset(&ctx, 0, sizeof(ctx));
    memset(&r, 0, sizeof(r));
    memset(&c, 0, sizeof(c));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000001);
    c.sockaddr = (struct sockaddr *) &sin;
    r.connection = &c;
    mcf.trusted_set = trusted;

    part = &r.headers_in.headers.part;
    part->elts = h;
    part->nelts = 0;
    r.headers_in.headers.last = part;
    r.headers_in.headers.size = sizeof(ngx_table_elt_t);
    r.headers_in.headers.nalloc = 10;
    for (i = 0; i < nlines && i < 10; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        ngx_str_set(&h[i].key, "X-Forwarded-For");
        h[i].value.len = lens[i];
        h[i].value.data = (u_char *) lines[i];
        part->nelts++;
    }

    if (gh_client_addr(&r, &mcf, &ctx) != NGX_OK) {
        return;
    }
    FUZZ_CHECK(gh_addr_from_sockaddr(c.sockaddr, &peer) == 0);
    if (memcmp(&ctx.addr, &peer, sizeof(peer)) == 0) {
        return;
    }
    /* otherwise it is one of the hops, as written */
    seen = 0;
    for (i = 0; i < part->nelts && !seen; i++) {
        const u_char *s = h[i].value.data, *e = s + h[i].value.len, *a, *b;
        for (a = s; a <= e && !seen; a = b + 1) {
            for (b = a; b < e && *b != ','; b++) { }
            {
                const u_char *x = a, *y = b;
                while (x < y && (*x == ' ' || *x == '\t')) x++;
                while (y > x && (y[-1] == ' ' || y[-1] == '\t')) y--;
                if (gh_addr_parse((const char *) x, y - x, &hop) == 0
                    && memcmp(&hop, &ctx.addr, sizeof(hop)) == 0)
                {
                    seen = 1;
                }
            }
            if (b == e) {
                break;
            }
        }
    }
    FUZZ_CHECK(seen);
    if (gh_netset_contains(trusted, &ctx.addr)) {
        /* a trusted address is chosen only when the whole chain is (an
         * empty header line adds no hop) */
        for (i = 0; i < part->nelts; i++) {
            const u_char *s = h[i].value.data, *e = s + h[i].value.len, *a, *b;
            if (s == e) {
                continue;
            }
            for (a = s; a <= e; a = b + 1) {
                for (b = a; b < e && *b != ','; b++) { }
                {
                    const u_char *x = a, *y = b;
                    while (x < y && (*x == ' ' || *x == '\t')) x++;
                    while (y > x && (y[-1] == ' ' || y[-1] == '\t')) y--;
                    FUZZ_CHECK(gh_addr_parse((const char *) x, y - x, &hop) == 0
                               && gh_netset_contains(trusted, &hop));
                }
                if (b == e) {
                    break;
                }
            }
        }
    }
    (void) k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t  *lines[12];
    size_t          lens[12], n = 0, off = 0, end;

    if (size > 65536) {
        return 0;
    }
    while (off <= size && n < 12) {
        for (end = off; end < size && data[end] != '\n'; end++) { }
        /* exact-size heap copies: ASan sees any read past a value */
        {
            uint8_t *copy = ngx_pnalloc(NULL, end - off ? end - off : 1);
            if (copy == NULL) {
                fuzz_pool_reset();
                return 0;
            }
            memcpy(copy, data + off, end - off);
            lines[n] = copy;
        }
        lens[n++] = end - off;
        off = end + 1;
    }
    if (n >= 1) {
        check_cookie(lines[0], lens[0]);
    }
    if (n >= 2) {
        check_name(lines[1], lens[1]);
    }
    if (n >= 3) {
        check_xff(lines + 2, lens + 2, n - 2);
    }
    fuzz_pool_reset();
    return 0;
}
