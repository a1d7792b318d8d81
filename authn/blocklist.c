/* gatehouse — the list of common passwords, as a hash set.
 *
 * Loaded once per process (the CLI per command, each nginx worker at
 * start) from Debian's john-data list plus an optional operator file; then
 * immutable, so thread-pool threads share it without a lock. Entries are
 * kept in their comparison form (case-folded NFC) back to back in one
 * arena; an open-addressing table of arena offsets (FNV-1a, linear
 * probing, at most half full) answers a lookup in well under a
 * microsecond. The lists are the operator's, not the attacker's, so a
 * keyed hash is not needed against flooding.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "gatehouse/error.h"
#include "gatehouse/password.h"
#include "gatehouse/pwpolicy.h"

#define COMMENT_PREFIX "#!comment"
#define CORE_MIN 4             /* code points a core needs to be looked up */
#define ARENA_MAX ((size_t)UINT32_MAX - 1)

struct gh_blocklist {
    char     *arena;     /* NUL-terminated entries */
    size_t    used, cap;
    uint32_t *slots;     /* arena offset + 1; 0 = empty */
    size_t    nslots;    /* a power of two */
    size_t    count;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t find_slot(const gh_blocklist_t *bl, const char *s, size_t n)
{
    size_t mask = bl->nslots - 1, i = (size_t)fnv1a(s, n) & mask;
    const char *e;

    while (bl->slots[i] != 0) {
        e = bl->arena + bl->slots[i] - 1;
        if (strncmp(e, s, n) == 0 && e[n] == '\0')
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int grow_table(gh_blocklist_t *bl)
{
    size_t n = bl->nslots ? bl->nslots * 2 : 1024, i, j, mask = n - 1;
    uint32_t *t = calloc(n, sizeof *t);
    const char *e;

    if (t == NULL)
        return GH_ENOMEM;
    for (i = 0; i < bl->nslots; i++) {
        if (bl->slots[i] == 0)
            continue;
        e = bl->arena + bl->slots[i] - 1;
        j = (size_t)fnv1a(e, strlen(e)) & mask;
        while (t[j] != 0)
            j = (j + 1) & mask;
        t[j] = bl->slots[i];
    }
    free(bl->slots);
    bl->slots = t;
    bl->nslots = n;
    return 0;
}

/* Add a folded entry (n bytes) unless present. */
static int insert(gh_blocklist_t *bl, const char *s, size_t n)
{
    size_t i;
    int rc;

    if ((bl->count + 1) * 2 > bl->nslots && (rc = grow_table(bl)) != 0)
        return rc;
    i = find_slot(bl, s, n);
    if (bl->slots[i] != 0)
        return 0;
    if (bl->used + n + 1 > bl->cap) {
        size_t cap = bl->cap ? bl->cap * 2 : 65536;
        char *a;

        while (cap < bl->used + n + 1)
            cap *= 2;
        if (cap > ARENA_MAX)
            return GH_ENOMEM;
        a = realloc(bl->arena, cap);
        if (a == NULL)
            return GH_ENOMEM;
        bl->arena = a;
        bl->cap = cap;
    }
    memcpy(bl->arena + bl->used, s, n);
    bl->arena[bl->used + n] = '\0';
    bl->slots[i] = (uint32_t)(bl->used + 1);
    bl->used += n + 1;
    bl->count++;
    return 0;
}

static int load_file(gh_blocklist_t *bl, const char *path, char *err,
                     size_t errlen)
{
    FILE *f;
    char *line = NULL, *fold = NULL;
    size_t cap = 0, flen;
    ssize_t n;
    int rc = 0;

    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read password blocklist %s: %s", path,
                 strerror(errno));
        return GH_EIO;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0 || n > GH_PASSWORD_MAX ||
            strncmp(line, COMMENT_PREFIX, sizeof COMMENT_PREFIX - 1) == 0)
            continue;
        if (gh_pw_fold(line, (size_t)n, &fold, &flen) != 0)
            continue;   /* invalid UTF-8 can never match a valid password */
        rc = insert(bl, fold, flen);
        free(fold);
        fold = NULL;
        if (rc != 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read password blocklist %s", path);
        rc = GH_EIO;
    } else if (rc != 0) {
        snprintf(err, errlen, "password blocklist %s: %s", path,
                 gh_strerror(rc));
    }
    free(line);
    fclose(f);
    return rc;
}

int gh_blocklist_load(gh_blocklist_t **out, const char *const *paths,
                      size_t npaths, char *err, size_t errlen)
{
    gh_blocklist_t *bl;
    size_t i;
    int rc = 0;

    if (out == NULL || (paths == NULL && npaths > 0) || err == NULL)
        return GH_EINVAL;
    *out = NULL;
    err[0] = '\0';
    bl = calloc(1, sizeof *bl);
    if (bl == NULL)
        return GH_ENOMEM;
    rc = grow_table(bl);
    for (i = 0; rc == 0 && i < npaths; i++)
        rc = load_file(bl, paths[i], err, errlen);
    if (rc != 0) {
        gh_blocklist_free(bl);
        return rc;
    }
    *out = bl;
    return 0;
}

static int lookup(const gh_blocklist_t *bl, const char *s, size_t n)
{
    return n > 0 && bl->slots[find_slot(bl, s, n)] != 0;
}

/* The folded candidate, then its core: the letters between the non-letters
 * at either end ("Password123!" -> "password"). */
int gh_blocklist_contains(const gh_blocklist_t *bl, const char *pw,
                          size_t len)
{
    const char *p, *start = NULL, *end = NULL;
    char *fold = NULL;
    size_t flen = 0;
    long cps;
    int hit;

    if (bl == NULL || pw == NULL || gh_pw_fold(pw, len, &fold, &flen) != 0)
        return 0;
    hit = lookup(bl, fold, flen);
    for (p = fold; !hit && *p != '\0'; p = g_utf8_next_char(p)) {
        if (g_unichar_isalpha(g_utf8_get_char(p))) {
            if (start == NULL)
                start = p;
            end = g_utf8_next_char(p);
        }
    }
    if (!hit && start != NULL && (start != fold || *end != '\0')) {
        cps = g_utf8_strlen(start, end - start);
        if (cps >= CORE_MIN)
            hit = lookup(bl, start, (size_t)(end - start));
    }
    gh_pw_free(fold, flen);
    return hit;
}

size_t gh_blocklist_size(const gh_blocklist_t *bl)
{
    return bl ? bl->count : 0;
}

void gh_blocklist_free(gh_blocklist_t *bl)
{
    if (bl == NULL)
        return;
    free(bl->arena);
    free(bl->slots);
    free(bl);
}
