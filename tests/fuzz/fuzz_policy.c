/* Fuzz the policy YAML loader (authz/policy.c) and, when a file compiles,
 * one decision per app-ish name. Properties: an error always comes with a
 * message; a decision is allow or deny with a reason; a request for an app
 * the file does not define is denied. */
#include <string.h>

#include "fuzz.h"
#include "gatehouse/netset.h"
#include "gatehouse/policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const roles[] = { "member", "admin" };
    static const char *const apps[] = { "demo", "admin-tools", "a" };
    gh_policy_t *p = NULL;
    gh_request_t req;
    gh_decision_t d;
    gh_addr_t addr;
    char err[256];
    size_t i;
    int rc;

    if (size > 64 * 1024)
        return 0;
    err[0] = '\0';
    rc = gh_policy_compile((const char *)data, size, &p, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(p == NULL && err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(gh_addr_parse("10.1.2.3", 8, &addr) == 0);
    memset(&req, 0, sizeof req);
    req.tenant = "demo";
    req.roles = roles;
    req.nroles = 2;
    req.method = GH_M_GET;
    req.path = "/admin/x";
    req.path_len = 8;
    req.addr = &addr;
    for (i = 0; i < sizeof apps / sizeof apps[0]; i++) {
        rc = gh_policy_decide(p, apps[i], &req, &d, NULL, NULL);
        FUZZ_CHECK(d.reason != NULL);
        FUZZ_CHECK(d.allow == 0 || d.allow == 1);
        if (rc != 0)
            FUZZ_CHECK(d.allow == 0);
    }
    rc = gh_policy_decide(p, "no-such-app-in-any-seed", &req, &d, NULL, NULL);
    FUZZ_CHECK(d.allow == 0);
    gh_policy_free(p);
    return 0;
}
