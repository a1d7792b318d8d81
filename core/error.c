/* gatehouse — error codes to text. */
#include "gatehouse/error.h"

/* One short lower-case phrase per GH_E* code, fit to follow "gatehouse: ..."
 * on a CLI line or to sit in a log record. Unknown codes get a generic
 * phrase rather than NULL so callers can always print the result. */
const char *gh_strerror(int err)
{
    switch (err) {
    case GH_OK:         return "success";
    case GH_ENOMEM:     return "out of memory";
    case GH_EINVAL:     return "invalid input";
    case GH_ENOTFOUND:  return "not found";
    case GH_EEXIST:     return "already exists";
    case GH_ESTORE:     return "store error";
    case GH_ECRYPTO:    return "cryptographic failure";
    case GH_EIO:        return "i/o error";
    case GH_EDENIED:    return "access denied";
    case GH_EEXPIRED:   return "expired";
    case GH_EDISABLED:  return "account disabled";
    case GH_ETOOBIG:    return "input too long";
    case GH_ESCHEMA:    return "store schema version mismatch";
    case GH_ENOTINIT:   return "not initialised (run gatehouse init)";
    case GH_EBADTENANT: return "unknown tenant";
    case GH_EBADEMAIL:  return "not a valid email address";
    case GH_EFULL:      return "store full";
    }
    return "unknown error";
}
