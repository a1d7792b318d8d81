/* gatehouse — key material kept on disk beside the store.
 *
 * The master key (32 random bytes, file mode 0600, outside the database)
 * seals secrets at rest in later features. The TLS key pair for the demo is a
 * self-signed ECDSA P-256 certificate.
 */
#ifndef GATEHOUSE_KEYS_H
#define GATEHOUSE_KEYS_H

#include <stdint.h>

#define GH_MASTER_KEY_FILE  "master.key"
#define GH_MASTER_KEY_BYTES 32

/* Create path with 32 fresh random bytes, mode 0600, failing with GH_EEXIST
 * rather than overwriting an existing key. */
int gh_master_key_create(const char *path);
/* Load it; GH_EINVAL when the file is not exactly 32 bytes, GH_EDENIED when
 * its mode allows group or other access. */
int gh_master_key_load(const char *path, uint8_t key[GH_MASTER_KEY_BYTES]);

/* Write a self-signed ECDSA P-256 certificate for cn (also as DNS SAN, plus
 * IP SAN 127.0.0.1 and ::1) valid for days, with its key (mode 0600). */
int gh_selfsigned_create(const char *key_path, const char *cert_path,
                         const char *cn, int days);

#endif
