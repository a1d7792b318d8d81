/* Fuzz the gateway's form-body parser gh_form_field and the cookie
 * attribute builder (gateway/ngx_http_gatehouse_pages.c, included so the
 * real code runs; tests/fuzz/ngx_stub.h supplies the nginx it needs).
 * Input: one byte selecting the field, then the urlencoded body. Properties:
 * a found field is at most `max` bytes, NUL-terminated, and no longer than
 * the raw body; gh_urlencode's output holds only unreserved characters and
 * '%XX', so a refusal page's Location can carry no CR, LF or quote. */
#include <stdlib.h>
#include <string.h>

#include "../../gateway/ngx_http_gatehouse_pages.c"

#include "gatehouse/login.h"
#include "gatehouse/redirect.h"

#include "fuzz.h"
#include "ngx_stub.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct { const char *name; size_t max; } fields[] = {
        { "csrf", GH_TOKEN_LEN }, { "rd", GH_RD_MAX },
        { "username", GH_EMAIL_MAX * 3 }, { "password", GH_PASSWORD_MAX },
        { "", 16 },
    };
    ngx_str_t   body, out, enc;
    ngx_int_t   rc;
    size_t      i;

    if (size < 1 || size > GH_FORM_MAX + 1) {
        return 0;
    }
    i = data[0] % (sizeof(fields) / sizeof(fields[0]));
    /* an exact-size heap copy, so ASan sees any read past the body */
    body.len = size - 1;
    body.data = ngx_pnalloc(NULL, body.len);
    if (body.data == NULL) {
        return 0;
    }
    ngx_memcpy(body.data, data + 1, body.len);

    rc = gh_form_field(NULL, &body, fields[i].name, fields[i].max, &out);
    FUZZ_CHECK(rc == NGX_OK || rc == NGX_DECLINED || rc == NGX_ERROR);
    if (rc == NGX_OK) {
        FUZZ_CHECK(out.len <= fields[i].max && out.len <= body.len);
        FUZZ_CHECK(out.data[out.len] == '\0');
    }

    rc = gh_urlencode(NULL, &body, &enc);
    FUZZ_CHECK(rc == NGX_OK && enc.len <= 3 * body.len);
    for (i = 0; i < enc.len; i++) {
        u_char c = enc.data[i];
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                   || (c >= '0' && c <= '9') || c == '-' || c == '.'
                   || c == '_' || c == '~' || c == '/' || c == '%');
    }
    fuzz_pool_reset();
    return 0;
}
