/* gatehouse — just enough of nginx for drivers that include a gateway .c
 * file (h2o's t/00unit style: the statics under test become reachable).
 * The nginx headers come from the configured tree of the sanitizer build;
 * nginx's own .c files are not shipped, so the few functions the parsers
 * under test call are provided here, and every other nginx symbol the
 * included file references is left unresolved at link time (they are never
 * called: -Wl,--unresolved-symbols=ignore-all). */
#ifndef GATEHOUSE_FUZZ_NGX_STUB_H
#define GATEHOUSE_FUZZ_NGX_STUB_H

/* A pool that frees everything at the end of one input. */
#define FUZZ_POOL_MAX 4096
static void   *fuzz_blocks[FUZZ_POOL_MAX];
static size_t  fuzz_nblocks;

void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    void *p;

    (void) pool;
    if (fuzz_nblocks == FUZZ_POOL_MAX) {
        return NULL;
    }
    p = malloc(size ? size : 1);
    if (p != NULL) {
        fuzz_blocks[fuzz_nblocks++] = p;
    }
    return p;
}

void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}

void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void *p = ngx_pnalloc(pool, size);

    if (p != NULL) {
        memset(p, 0, size);
    }
    return p;
}

void *
ngx_list_push(ngx_list_t *l)
{
    void             *elt;
    ngx_list_part_t  *last;

    last = l->last;
    if (last->nelts == l->nalloc) {
        last = ngx_palloc(l->pool, sizeof(ngx_list_part_t));
        if (last == NULL) {
            return NULL;
        }
        last->elts = ngx_palloc(l->pool, l->nalloc * l->size);
        if (last->elts == NULL) {
            return NULL;
        }
        last->nelts = 0;
        last->next = NULL;
        l->last->next = last;
        l->last = last;
    }
    elt = (char *) last->elts + l->size * last->nelts;
    last->nelts++;
    return elt;
}

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    c2 = (ngx_uint_t) *s2++;
    c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
    last -= n;
    do {
        do {
            if (s1 >= last) {
                return NULL;
            }
            c1 = (ngx_uint_t) *s1++;
            c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        } while (c1 != c2);
    } while (ngx_strncasecmp(s1, s2, n) != 0);
    return --s1;
}

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;
        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
        if (c1 == c2) {
            if (c1) {
                n--;
                continue;
            }
            return 0;
        }
        return c1 - c2;
    }
    return 0;
}

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    (void) level; (void) log; (void) err; (void) fmt;
}

static void
fuzz_pool_reset(void)
{
    while (fuzz_nblocks > 0) {
        free(fuzz_blocks[--fuzz_nblocks]);
    }
}

#endif
