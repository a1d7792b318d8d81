/* gatehouse — secrets at rest, sealed with AES-256-GCM under the master key
 * (include/gatehouse/keys.h). A sealed blob is
 *     "v1." base64url(iv[12] || ciphertext || tag[16])
 * with a fresh random IV per blob. The label is bound as additional data,
 * so a blob sealed for one purpose ("jwt-key:<kid>") cannot be replayed as
 * another.
 */
#ifndef GATEHOUSE_SEAL_H
#define GATEHOUSE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define GH_SEAL_OVERHEAD  (12 + 16)
/* Text length of a sealed blob of n plaintext bytes, with its NUL. */
#define GH_SEAL_TEXT_LEN(n)  (3 + 4 * (((n) + GH_SEAL_OVERHEAD + 2) / 3) + 1)

/* Seal in (n bytes) into out (cap bytes, NUL-terminated text).
 * 0, GH_ETOOBIG or GH_ECRYPTO. */
int gh_seal(const uint8_t key[32], const char *label, const uint8_t *in,
            size_t n, char *out, size_t cap);
/* Open a sealed blob; *outlen gets the plaintext length. GH_EINVAL for a
 * malformed blob, GH_EDENIED when authentication fails (wrong key, wrong
 * label, tampered), GH_ETOOBIG when cap is too small. */
int gh_unseal(const uint8_t key[32], const char *label, const char *blob,
              uint8_t *out, size_t cap, size_t *outlen);

#endif
