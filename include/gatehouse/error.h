/* gatehouse — one error convention for the whole library.
 *
 * Every function returns 0 (GH_OK) or a negative GH_E* code; gh_strerror()
 * turns a code into one short, lower-case phrase fit for a CLI line or a log
 * record. Library codes (LMDB, OpenSSL, libsodium) are translated at the edge
 * of the module that calls them and never leak out.
 */
#ifndef GATEHOUSE_ERROR_H
#define GATEHOUSE_ERROR_H

enum {
    GH_OK        =   0,
    GH_ENOMEM    =  -1,  /* out of memory */
    GH_EINVAL    =  -2,  /* malformed or out-of-range input */
    GH_ENOTFOUND =  -3,  /* no such record */
    GH_EEXIST    =  -4,  /* record already exists */
    GH_ESTORE    =  -5,  /* the LMDB store failed */
    GH_ECRYPTO   =  -6,  /* a cryptographic primitive failed */
    GH_EIO       =  -7,  /* file system error */
    GH_EDENIED   =  -8,  /* authentication or authorization refused */
    GH_EEXPIRED  =  -9,  /* session or token past its lifetime */
    GH_EDISABLED = -10,  /* account disabled */
    GH_ETOOBIG   = -11,  /* input longer than its named limit */
    GH_ESCHEMA   = -12,  /* store schema newer or older than this build */
    GH_ENOTINIT  = -13,  /* data directory not initialised */
    GH_EBADTENANT = -14, /* unknown tenant */
    GH_EBADEMAIL = -15,  /* not an acceptable email address */
    GH_EFULL     = -16,  /* store map full */
};

const char *gh_strerror(int err);

#endif
