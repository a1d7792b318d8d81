/* Fuzz the store's record decoders (core/store.c, included so its statics
 * run): what a worker reads from LMDB — tenants, users, credentials,
 * sessions, throttle counters, JWT keys. A damaged or planted data file must
 * decode strictly or not at all. Property: a record that decodes, encoded
 * again and decoded again, encodes to the same text (no field is half-read
 * or read two ways). Input: one byte choosing the decoder, then the value. */
#include "../../core/store.c"

#include "fuzz.h"

#define ROUND_TRIP(type, decode, encode)                                      \
    do {                                                                      \
        type a, b;                                                            \
        char *t1 = NULL, *t2 = NULL;                                          \
        size_t l1 = 0, l2 = 0;                                                \
        MDB_val w;                                                            \
        if (decode(&v, &a) != 0)                                              \
            break;                                                            \
        FUZZ_CHECK(encode(&a, &t1, &l1) == 0);                                \
        w.mv_data = t1;                                                       \
        w.mv_size = l1;                                                       \
        FUZZ_CHECK(decode(&w, &b) == 0);                                      \
        FUZZ_CHECK(encode(&b, &t2, &l2) == 0);                                \
        FUZZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0);                      \
        free(t1);                                                             \
        free(t2);                                                             \
    } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MDB_val v;
    char id[GH_ID_HEXLEN + 1];

    if (size < 1 || size > GH_RECORD_MAX + 1)
        return 0;
    v.mv_data = (void *)(data + 1);
    v.mv_size = size - 1;
    switch (data[0] % 7) {
    case 0: ROUND_TRIP(gh_tenant_t, tenant_decode, tenant_encode); break;
    case 1: ROUND_TRIP(gh_user_t, user_decode, user_encode); break;
    case 2: ROUND_TRIP(gh_credential_t, cred_decode, cred_encode); break;
    case 3: ROUND_TRIP(gh_session_t, session_decode, session_encode); break;
    case 4: ROUND_TRIP(gh_throttle_rec_t, throttle_decode, throttle_encode); break;
    case 5: ROUND_TRIP(gh_jwtkey_t, jwtkey_decode, jwtkey_encode); break;
    default:
        if (index_decode(&v, id) == 0)
            FUZZ_CHECK(strlen(id) == GH_ID_HEXLEN && memcmp(id, v.mv_data, GH_ID_HEXLEN) == 0);
        break;
    }
    return 0;
}
