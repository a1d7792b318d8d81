/* gatehouse — AES-256-GCM sealing of secrets at rest (see seal.h). */
#include <string.h>

#include <openssl/evp.h>

#include "gatehouse/error.h"
#include "gatehouse/seal.h"
#include "gatehouse/util.h"

#define IV_LEN   12
#define TAG_LEN  16
#define BLOB_MAX 8192

/* Encrypt or decrypt with AES-256-GCM; one function so both directions set
 * the cipher up the same way. Returns 0 or GH_ECRYPTO / GH_EDENIED. */
static int gcm(int enc, const uint8_t key[32], const uint8_t iv[IV_LEN],
               const char *label, const uint8_t *in, size_t n, uint8_t *out,
               uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len, rc = GH_ECRYPTO;

    if (c == NULL)
        return GH_ENOMEM;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)label,
                         (int)strlen(label)) != 1)
        goto out;
    if (n > 0 && EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + n, &len) != 1) {
        rc = enc ? GH_ECRYPTO : GH_EDENIED;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int gh_seal(const uint8_t key[32], const char *label, const uint8_t *in,
            size_t n, char *out, size_t cap)
{
    uint8_t buf[BLOB_MAX];
    int rc, w;

    if (key == NULL || label == NULL || (in == NULL && n > 0) || out == NULL)
        return GH_EINVAL;
    if (n + IV_LEN + TAG_LEN > sizeof buf || cap < GH_SEAL_TEXT_LEN(n))
        return GH_ETOOBIG;
    gh_random(buf, IV_LEN);
    rc = gcm(1, key, buf, label, in, n, buf + IV_LEN, buf + IV_LEN + n);
    if (rc != 0)
        goto out;
    memcpy(out, "v1.", 3);
    w = gh_b64url_encode(buf, IV_LEN + n + TAG_LEN, out + 3, cap - 3);
    rc = w < 0 ? w : 0;
out:
    gh_wipe(buf, sizeof buf);
    return rc;
}

int gh_unseal(const uint8_t key[32], const char *label, const char *blob,
              uint8_t *out, size_t cap, size_t *outlen)
{
    uint8_t buf[BLOB_MAX];
    size_t bl;
    int n, rc;

    if (key == NULL || label == NULL || blob == NULL || out == NULL)
        return GH_EINVAL;
    bl = strnlen(blob, 2 * BLOB_MAX);
    if (bl < 3 || memcmp(blob, "v1.", 3) != 0)
        return GH_EINVAL;
    n = gh_b64url_decode(blob + 3, bl - 3, buf, sizeof buf);
    if (n < 0)
        return n == GH_ETOOBIG ? GH_EINVAL : n;
    if ((size_t)n < IV_LEN + TAG_LEN)
        return GH_EINVAL;
    n -= IV_LEN + TAG_LEN;
    if ((size_t)n + TAG_LEN > cap) {
        rc = GH_ETOOBIG;
        goto out;
    }
    /* decrypt in place into out; tag after the ciphertext in buf */
    rc = gcm(0, key, buf, label, buf + IV_LEN, (size_t)n, out,
             buf + IV_LEN + n);
    if (rc != 0) {
        gh_wipe(out, (size_t)n);
        goto out;
    }
    *outlen = (size_t)n;
out:
    gh_wipe(buf, sizeof buf);
    return rc;
}
