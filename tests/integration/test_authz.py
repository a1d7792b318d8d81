"""Authorization on a running gateway (issue 6): role grants and revocations
that apply to the very next request, time-limited grants, tenant isolation,
network allowlists with trusted and untrusted X-Forwarded-For, path tricks
that must never reach a denied prefix, policy apply (atomic, no reload),
`policy explain` agreeing with the gateway, and the decision log.

Every test applies the policy it needs: the policy is global to a gateway,
and the tests of this module share theirs."""
import datetime
import http.client
import itertools
import json
import os
import posixpath
import re
import shutil
import socket
import ssl
import subprocess
import time
from urllib.parse import unquote

import pytest

from conftest import (API, BROWSER, HTTP_TIMEOUT, SESSION_COOKIE, WHOAMI,
                      start_gateway)

PW = "an authz test password 7"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
DECISION = re.compile(r"^decision: (allow|deny) \(([a-z_]+)(?:, HTTP (\d+))?\)"
                      r"(?: by rule (\S+))?$")
LOG_WAIT = 5            # seconds for a decision record to appear

_seq = itertools.count(1)

EXAMPLE_POLICY = os.path.join(os.path.dirname(__file__), "..", "..", "conf",
                              "policy.example.yaml")

# Members may use the demo app, except under /admin.
PATHS_POLICY = """\
version: 1
roles: [admin]
apps:
  demo:
    display: Demo backend
    tenants: [demo]
    paths_case_insensitive: %(ci)s
    rules:
      - name: members
        effect: allow
        roles: [member, gatehouse-admin]
        paths: [/]
      - name: no-admin
        effect: deny
        roles: [member]
        paths: [/admin]
"""

OPEN_POLICY = """\
version: 1
roles: [admin]
apps:
  demo:
    tenants: [demo]
    rules:
      - name: staff
        effect: allow
        roles: [member, manager, gatehouse-admin, admin]
"""


# ---- helpers ---------------------------------------------------------------

def apply_policy(gw, text):
    """Write text to a file and apply it; the policy is live when this
    returns. Returns the file's path."""
    path = os.path.join(gw.base, "policy-%d.yaml" % next(_seq))
    with open(path, "w") as f:
        f.write(text)
    p = gw.cli("policy", "apply", path)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert re.search(r"^policy version \d+ is live$", p.stdout, re.M), p.stdout
    return path


def new_user(gw, roles="member", tenant="demo", tag="u"):
    email = "%s%d@example.com" % (tag, next(_seq))
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def cookie(s):
    token = s.cookies.get(SESSION_COOKIE)
    assert token, "no session cookie"
    return ("Cookie", "%s=%s" % (SESSION_COOKIE, token))


def body_json(body):
    try:
        return json.loads(body)
    except ValueError:
        return None


def raw_api(gw, s, path, method="GET", headers=()):
    """One request with the raw target `path` exactly as given (http.client
    does not normalise), as an API client of session s. Returns (status,
    json body or None, headers)."""
    hdrs = [cookie(s), ("Accept", "application/json")] + list(headers)
    body = b"" if method in ("POST", "PUT", "PATCH") else None
    st, h, b = gw.raw(method, path, hdrs, body=body)
    return st, body_json(b), h


def outcome(status, body):
    """(decision, reason) of a gateway answer, in explain's terms; the
    reason is None for a 400 that nginx itself sent (no JSON body)."""
    if status == 200:
        return ("allow", "allowed")
    assert status in (400, 403), (status, body)
    if status == 400 and body is None:
        return ("deny", None)
    assert body is not None, status
    return ("deny", body["reason"] if status == 403 else body["error"])


def agree(status, body, d, reason, http_status):
    """Whether a gateway answer and explain's decision line agree."""
    got = outcome(status, body)
    if status == 400:
        return d == "deny" and http_status == 400 and got[1] in (None, reason)
    return got == (d, reason) and http_status is None


def denied(r, reason):
    """A requests response is a JSON 403 with that reason and a request
    id."""
    assert r.status_code == 403, (r.status_code, r.text[:300])
    j = r.json()
    assert j["error"] == "forbidden", j
    assert j["reason"] == reason, j
    assert HEX32.match(j["request_id"]), j
    return j


def backend_header(rec, name):
    vals = [v for k, v in rec["headers"] if k.lower() == name.lower()]
    assert len(vals) == 1, (name, rec["headers"])
    return vals[0]


def last_record(gw, path):
    recs = [r for r in gw.backend.requests() if r["path"] == path]
    assert recs, "the backend never saw %s: %r" % (
        path, [r["path"] for r in gw.backend.requests()])
    return recs[-1]


def decision_records(gw, ids, timeout=LOG_WAIT):
    """{request_id: [records]} from DATA/nginx/decisions.log for the ids
    given, waiting (bounded) until each has appeared."""
    path = os.path.join(gw.data, "nginx", "decisions.log")
    deadline = time.monotonic() + timeout
    while True:
        found = {i: [] for i in ids}
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().split("\n")
            # the last piece is "" or a record still being written
            for line in lines[:-1]:
                rec = json.loads(line)
                if rec.get("request_id") in found:
                    found[rec["request_id"]].append(rec)
        if all(found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def explain(gw, email, path, app="demo", tenant="demo", method="GET", ip=None,
            mfa=False):
    """(decision, reason, http status or None, rule or None, full output)
    of `gatehouse policy explain`."""
    args = ["policy", "explain", "--app", app, "--tenant", tenant, "--email",
            email, "--method", method, "--url", "https://127.0.0.1" + path]
    if ip is not None:
        args += ["--ip", ip]
    if mfa:
        args.append("--mfa")
    p = gw.cli(*args)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    lines = p.stdout.rstrip("\n").split("\n")
    m = DECISION.match(lines[-1])
    assert m, "no decision line at the end:\n" + p.stdout
    assert sum(1 for l in lines if l.startswith("decision:")) == 1, p.stdout
    status = int(m.group(3)) if m.group(3) else None
    return m.group(1), m.group(2), status, m.group(4), p.stdout


def under(path, prefix="/admin", ci=False):
    """Whether any plausible backend reading of the raw path is `prefix` or
    below it on a '/' boundary: percent-decoded (twice), backslashes as
    slashes, empty and dot segments resolved."""
    readings = set()
    p = path.split("?", 1)[0]
    for _ in range(3):
        readings.add(p)
        p = unquote(p)
    for r in list(readings):
        r = r.replace("\\", "/")
        r = re.sub(r"/+", "/", r)
        readings.add(posixpath.normpath(r) if r else r)
    for r in readings:
        a, b = (r.lower(), prefix.lower()) if ci else (r, prefix)
        if a == b or a.startswith(b + "/"):
            return True
    return False


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """A gateway that trusts X-Forwarded-For from 127.0.0.1."""
    gw = start_gateway(tmp_path_factory.mktemp("gw-proxied"),
                       http_directives=["gatehouse_trusted_proxies 127.0.0.1;"])
    yield gw
    gw.finish()


# ---- grant, revoke, expiry ---------------------------------------------------

def test_grant_opens_the_same_session_and_revoke_closes_it(gateway, backend):
    apply_policy(gateway, open(EXAMPLE_POLICY).read())
    email = new_user(gateway, roles="member", tag="granted")
    s = gateway.logged_in(email, PW)
    token = s.cookies.get(SESSION_COOKIE)

    # member: the demo app yes, admin-tools no (default deny)
    assert gateway.get("/member-page", s, headers=API).status_code == 200
    j = denied(gateway.get("/admin-tools/x", s, headers=API), "no_matching_rule")
    page = gateway.get("/admin-tools/x", s, headers=BROWSER)
    assert page.status_code == 403
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<code id="reason">no_matching_rule</code>' in page.text
    m = re.search(r'<code id="request-id">([0-9a-f]{32})</code>', page.text)
    assert m and m.group(1) != j["request_id"], "a fresh id per request"
    assert "admins-only" not in page.text, "the page must not show the policy"
    assert [r["path"] for r in backend.requests()] == ["/member-page"]

    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    r = gateway.get("/admin-tools/x", s, headers=API)
    assert r.status_code == 200, r.text
    assert s.cookies.get(SESSION_COOKIE) == token, "no new login"
    assert SESSION_COOKIE not in r.headers.get("Set-Cookie", "")
    rec = last_record(gateway, "/admin-tools/x")
    assert "admin" in backend_header(rec, "X-Gatehouse-Roles").split(","), \
        rec["headers"]
    assert gateway.get(WHOAMI, s).json()["roles"] == ["member", "admin"]

    p = gateway.cli("role", "revoke", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    backend.clear()
    # the very next request, on the same keep-alive connection
    denied(gateway.get("/admin-tools/y", s, headers=API), "no_matching_rule")
    assert gateway.get("/still-member", s, headers=API).status_code == 200
    assert [r["path"] for r in backend.requests()] == ["/still-member"]
    rec = last_record(gateway, "/still-member")
    assert backend_header(rec, "X-Gatehouse-Roles") == "member"

    # revoking what is not held is an error, and changes nothing
    p = gateway.cli("role", "revoke", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and "does not hold" in p.stderr, p.stderr


def test_revoking_the_only_role_denies_the_next_request(gateway, backend):
    apply_policy(gateway, OPEN_POLICY)
    email = new_user(gateway, roles="member", tag="lastrole")
    s = gateway.logged_in(email, PW)
    assert gateway.get("/before", s, headers=API).status_code == 200
    p = gateway.cli("role", "revoke", "--tenant", "demo", "--email", email,
                    "member")
    assert p.returncode == 0, p.stderr
    # no role at all is a visitor: least privilege
    denied(gateway.get("/after", s, headers=API), "visitors_not_allowed")
    assert "/after" not in [r["path"] for r in backend.requests()]


def test_time_limited_grants(gateway, backend):
    apply_policy(gateway, open(EXAMPLE_POLICY).read())
    email = new_user(gateway, roles="member", tag="until")
    s = gateway.logged_in(email, PW)

    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin", "--until", "2020-01-01")
    assert p.returncode == 0, p.stderr
    assert "already ended" in p.stdout, p.stdout
    denied(gateway.get("/admin-tools/past", s, headers=API), "no_matching_rule")
    rows = gateway.cli("role", "list", "--email", email).stdout.splitlines()
    assert "%s\tdemo\tadmin\t2020-01-01\texpired" % email in rows, rows
    assert "%s\tdemo\tmember\t-\tactive" % email in rows, rows
    # an expired binding is not an active role for the backend either
    assert gateway.get("/plain", s, headers=API).status_code == 200
    assert backend_header(last_record(gateway, "/plain"),
                          "X-Gatehouse-Roles") == "member"

    future = (datetime.datetime.now(datetime.timezone.utc).date()
              + datetime.timedelta(days=365)).isoformat()
    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin", "--until", future)
    assert p.returncode == 0, p.stderr
    assert "already ended" not in p.stdout
    assert gateway.get("/admin-tools/future", s, headers=API).status_code == 200
    rows = gateway.cli("role", "list", "--tenant", "demo",
                       "--email", email).stdout.splitlines()
    assert "%s\tdemo\tadmin\t%s\tactive" % (email, future) in rows, rows
    assert not any("expired" in r for r in rows), rows

    # and back to the past: the re-grant replaces the binding
    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin", "--until", "2020-01-01")
    assert p.returncode == 0, p.stderr
    denied(gateway.get("/admin-tools/again", s, headers=API),
           "no_matching_rule")
    assert [r["path"] for r in backend.requests()
            if r["path"].startswith("/admin-tools/")] == ["/admin-tools/future"]


@pytest.mark.parametrize("args, message", [
    (["--tenant", "demo", "--email", "{email}", "superuser"], "unknown role"),
    (["--tenant", "demo", "--email", "{email}", "Admin"], "unknown role"),
    (["--tenant", "nosuch", "--email", "{email}", "admin"], "unknown tenant"),
    (["--tenant", "demo", "--email", "nobody@example.com", "admin"],
     "no such user"),
    (["--tenant", "other", "--email", "{email}", "admin"], "no such user"),
    # impossible calendar days must not roll over into a longer grant
    (["--tenant", "demo", "--email", "{email}", "admin", "--until",
      "2030-02-30"], "not a date"),
    (["--tenant", "demo", "--email", "{email}", "admin", "--until",
      "2030-04-31"], "not a date"),
    (["--tenant", "demo", "--email", "{email}", "admin", "--until",
      "2029-02-29"], "not a date"),
    (["--tenant", "demo", "--email", "{email}", "admin", "--until",
      "tomorrow"], "not a date"),
], ids=["unknown-role", "role-wrong-case", "unknown-tenant", "unknown-email",
        "email-in-another-tenant", "until-feb-30", "until-apr-31",
        "until-feb-29-non-leap", "until-not-a-date"])
def test_bad_grants_are_refused_and_change_nothing(gateway, args, message):
    apply_policy(gateway, open(EXAMPLE_POLICY).read())
    if gateway.cli("tenant", "list").stdout.find("\nother\t") < 0:
        assert gateway.cli("tenant", "add", "other").returncode == 0
    email = new_user(gateway, roles="member", tag="badgrant")
    s = gateway.logged_in(email, PW)
    argv = ["role", "grant"] + [a.format(email=email) for a in args]
    p = gateway.cli(*argv)
    assert p.returncode != 0, p.stdout
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1, "one line: %r" % p.stderr
    assert p.stderr.startswith("gatehouse: ") and message in p.stderr, p.stderr
    rows = gateway.cli("role", "list", "--email", email).stdout.splitlines()
    assert rows[1:] == ["%s\tdemo\tmember\t-\tactive" % email], rows
    denied(gateway.get("/admin-tools/x", s, headers=API), "no_matching_rule")


def test_roles_the_policy_does_not_define_grant_nothing(gateway, backend):
    """A binding to a role the live policy no longer defines is ignored."""
    apply_policy(gateway, open(EXAMPLE_POLICY).read())
    email = new_user(gateway, roles="member", tag="undef")
    gateway.cli("role", "grant", "--tenant", "demo", "--email", email, "admin")
    gateway.cli("role", "revoke", "--tenant", "demo", "--email", email,
                "member")
    s = gateway.logged_in(email, PW)
    assert gateway.get("/admin-tools/ok", s, headers=API).status_code == 200
    # the same file without the custom role: admin now means nothing
    apply_policy(gateway, """\
version: 1
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member]}
  admin-tools:
    tenants: [demo]
    visitors: true
    rules:
      - {name: members, effect: allow, roles: [member]}
""")
    denied(gateway.get("/admin-tools/gone", s, headers=API),
           "no_matching_rule")
    denied(gateway.get("/demo", s, headers=API), "visitors_not_allowed")
    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode != 0 and "unknown role" in p.stderr, p.stderr


# ---- tenant isolation --------------------------------------------------------

def test_same_named_role_in_another_tenant_does_not_pass(gateway, backend):
    apply_policy(gateway, """\
version: 1
roles: [admin]
tenants:
  ta:
    display: Tenant A
  tb:
    display: Tenant B
apps:
  demo:
    tenants: [ta]
    rules:
      - name: a-admins
        effect: allow
        roles: [admin]
""")
    listing = gateway.cli("tenant", "list").stdout
    assert "\nta\t" in listing and "\ntb\t" in listing, listing
    a_admin = new_user(gateway, roles="admin", tenant="ta", tag="a-admin")
    a_member = new_user(gateway, roles="member", tenant="ta", tag="a-member")
    b_admin = new_user(gateway, roles="admin", tenant="tb", tag="b-admin")
    b_granted = new_user(gateway, roles="member", tenant="tb", tag="b-granted")
    p = gateway.cli("role", "grant", "--tenant", "tb", "--email", b_granted,
                    "admin")
    assert p.returncode == 0, p.stderr
    # a tenant-b user cannot be granted through tenant a's name
    p = gateway.cli("role", "grant", "--tenant", "ta", "--email", b_granted,
                    "admin")
    assert p.returncode != 0 and "no such user" in p.stderr, p.stderr

    sa = gateway.logged_in(a_admin, PW)
    r = gateway.get("/tenant-a", sa, headers=API)
    assert r.status_code == 200, r.text
    assert backend_header(last_record(gateway, "/tenant-a"),
                          "X-Gatehouse-Tenant") == "ta"
    denied(gateway.get("/tenant-a-member", gateway.logged_in(a_member, PW),
                       headers=API), "no_matching_rule")
    for email in (b_admin, b_granted):
        sb = gateway.logged_in(email, PW)
        denied(gateway.get("/tenant-b", sb, headers=API), "tenant_not_allowed")
        d, reason, _, _, out = explain(gateway, email, "/tenant-b",
                                       tenant="tb")
        assert (d, reason) == ("deny", "tenant_not_allowed"), out
    # the admin of the tenant that owns the default install: not in [ta]
    denied(gateway.get("/tenant-demo", gateway.logged_in(), headers=API),
           "tenant_not_allowed")
    paths = [r["path"] for r in backend.requests()]
    assert paths == ["/tenant-a"], paths


# ---- networks and X-Forwarded-For -------------------------------------------

NETWORK_POLICIES = {
    "global": """\
version: 1
networks: [10.0.0.0/8]
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""",
    "tenant": """\
version: 1
tenants:
  demo:
    networks: [10.0.0.0/8]
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""",
    "app": """\
version: 1
apps:
  demo:
    tenants: [demo]
    networks: [10.0.0.0/8]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""",
    "rule": """\
version: 1
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member], networks: [10.0.0.0/8]}
""",
}
NETWORK_REASON = {"global": "network_not_allowed",
                  "tenant": "network_not_allowed",
                  "app": "network_not_allowed",
                  "rule": "no_matching_rule"}


@pytest.fixture
def tenant_networks_reset(proxied):
    """A file's tenant networks are copied into the tenant record, which a
    later file that does not state them leaves as it is: put the record
    back to "the policy file's" for the tests after."""
    yield
    p = proxied.cli("tenant", "set", "--tenant", "demo", "--networks", "none")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("level", sorted(NETWORK_POLICIES))
def test_allowlist_with_trusted_forwarded_for(proxied, level,
                                              tenant_networks_reset):
    gw = proxied
    apply_policy(gw, NETWORK_POLICIES[level])
    reason = NETWORK_REASON[level]
    s = gw.logged_in(new_user(gw, tag="net-" + level), PW)
    gw.backend.clear()

    def ask(path, *xff):
        st, j, _ = raw_api(gw, s, path,
                           headers=[("X-Forwarded-For", v) for v in xff])
        return st, j

    # the peer itself, 127.0.0.1, is not in 10/8
    st, j = ask("/direct")
    assert (st, j["reason"]) == (403, reason), (st, j)
    # a trusted proxy vouches for 10.1.2.3
    st, j = ask("/forwarded", "10.1.2.3")
    assert st == 200, (st, j)
    rec = last_record(gw, "/forwarded")
    assert backend_header(rec, "X-Forwarded-For") == "10.1.2.3"
    # right to left: the first untrusted hop is the client
    st, j = ask("/chain-untrusted-last", "10.1.2.3, 192.0.2.9")
    assert (st, j["reason"]) == (403, reason), (st, j)
    st, j = ask("/chain-allowed-last", "192.0.2.9, 10.1.2.3")
    assert st == 200, (st, j)
    assert backend_header(last_record(gw, "/chain-allowed-last"),
                          "X-Forwarded-For") == "10.1.2.3"
    # trusted hops are skipped
    st, j = ask("/chain-through-proxy", " 10.1.2.3 ,127.0.0.1")
    assert st == 200, (st, j)
    assert backend_header(last_record(gw, "/chain-through-proxy"),
                          "X-Forwarded-For") == "10.1.2.3"
    # only trusted hops: the last one read is the client
    st, j = ask("/only-proxies", "127.0.0.1")
    assert (st, j["reason"]) == (403, reason), (st, j)
    # several headers are one list, in order
    st, j = ask("/two-headers", "10.1.2.3", "192.0.2.9")
    assert (st, j["reason"]) == (403, reason), (st, j)
    st, j = ask("/two-headers-ok", "192.0.2.9", "10.1.2.3")
    assert st == 200, (st, j)
    # a chain we cannot read is refused, not guessed
    for bad in ("10.1.2.3, garbage", "10.1.2.3,", "10.1.2.3:8080",
                "10.1.2.3 10.1.2.4", "010.1.2.3"):
        st, j = ask("/bad-xff", bad)
        assert st == 400 and j["error"] == "bad_forwarded_for", (bad, st, j)

    paths = [r["path"] for r in gw.backend.requests()]
    assert paths == ["/forwarded", "/chain-allowed-last",
                     "/chain-through-proxy", "/two-headers-ok"], paths
    for rec in gw.backend.requests():
        assert backend_header(rec, "X-Forwarded-For") == "10.1.2.3"


def test_forwarded_address_is_the_logged_address(proxied):
    gw = proxied
    apply_policy(gw, NETWORK_POLICIES["app"])
    s = gw.logged_in(new_user(gw, tag="netlog"), PW)
    gw.backend.clear()
    st, _, _ = raw_api(gw, s, "/logged", headers=[("X-Forwarded-For",
                                                   "10.9.8.7")])
    assert st == 200
    rid = backend_header(last_record(gw, "/logged"), "X-Gatehouse-Request-Id")
    st, j, _ = raw_api(gw, s, "/logged-deny", headers=[("X-Forwarded-For",
                                                        "192.0.2.77")])
    assert st == 403
    recs = decision_records(gw, [rid, j["request_id"]])
    assert [r["addr"] for r in recs[rid]] == ["10.9.8.7"], recs
    assert [(r["addr"], r["reason"]) for r in recs[j["request_id"]]] == \
        [("192.0.2.77", "network_not_allowed")], recs


def test_untrusted_forwarded_for_is_ignored(gateway, backend):
    """No gatehouse_trusted_proxies: the TCP peer decides, and a client's
    X-Forwarded-For never reaches the backend."""
    apply_policy(gateway, NETWORK_POLICIES["app"])
    s = gateway.logged_in(new_user(gateway, tag="noproxy"), PW)
    for xff in (["10.1.2.3"], ["10.1.2.3", "10.1.2.4"], ["garbage"]):
        st, j, _ = raw_api(gateway, s, "/spoofed",
                           headers=[("X-Forwarded-For", v) for v in xff])
        assert st == 403 and j["reason"] == "network_not_allowed", (xff, st, j)
    assert backend.requests() == []

    apply_policy(gateway, OPEN_POLICY)
    st, _, _ = raw_api(gateway, s, "/open", headers=[
        ("X-Forwarded-For", "10.9.9.9"), ("X-Forwarded-For", "10.8.8.8")])
    assert st == 200
    assert backend_header(last_record(gateway, "/open"),
                          "X-Forwarded-For") == "127.0.0.1"


def _v6_request(port, cafile, path, token):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False       # the certificate names 127.0.0.1
    conn = http.client.HTTPSConnection("::1", port, timeout=HTTP_TIMEOUT,
                                       context=ctx)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Cookie", "%s=%s" % (SESSION_COOKIE, token))
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        r = conn.getresponse()
        return r.status, body_json(r.read())
    finally:
        conn.close()


def test_ipv6_allowlist(make_gateway):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sk:
        sk.bind(("::1", 0))
        port6 = sk.getsockname()[1]
    gw = make_gateway(server_directives=["listen [::1]:%d ssl;" % port6])
    apply_policy(gw, """\
version: 1
apps:
  demo:
    tenants: [demo]
    networks: ["::1/128"]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""")
    email = new_user(gw, tag="v6")
    s = gw.logged_in(email, PW)
    token = s.cookies.get(SESSION_COOKIE)
    st, j = _v6_request(port6, gw.cert, "/over-v6", token)
    assert st == 200, (st, j)
    assert backend_header(last_record(gw, "/over-v6"),
                          "X-Forwarded-For") == "::1"
    denied(gw.get("/over-v4", s, headers=API), "network_not_allowed")
    d, reason, _, _, out = explain(gw, email, "/x", ip="::1")
    assert (d, reason) == ("allow", "allowed"), out

    # a v4 list does not admit ::1, nor does a v4-mapped spelling trick it
    apply_policy(gw, """\
version: 1
apps:
  demo:
    tenants: [demo]
    networks: [127.0.0.0/8]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""")
    st, j = _v6_request(port6, gw.cert, "/v6-into-v4-list", token)
    assert (st, j and j.get("reason")) == (403, "network_not_allowed"), (st, j)
    assert gw.get("/v4-ok", s, headers=API).status_code == 200
    paths = [r["path"] for r in gw.backend.requests()]
    assert paths == ["/over-v6", "/v4-ok"], paths


# ---- paths ---------------------------------------------------------------------

# raw target -> (status, reason) under PATHS_POLICY with case-sensitive rules
PATH_TRICKS = [
    ("/x/../admin", 400, "ambiguous_path"),
    ("/x/..%2fadmin", 400, "ambiguous_path"),
    ("/x/%2e%2e/admin", 400, "ambiguous_path"),
    ("/x/.%2e/admin", 400, "ambiguous_path"),
    ("/x/%2E%2E/admin", 400, "ambiguous_path"),
    # above the root: nginx itself refuses these (its own 400 page)
    ("/%2e%2e/admin", 400, None),
    ("/.%2e/admin", 400, None),
    ("/%2E%2E/admin", 400, None),
    ("/../admin", 400, None),
    ("/./admin", 400, "ambiguous_path"),
    ("/admin/./x", 400, "ambiguous_path"),
    ("//admin", 400, "ambiguous_path"),
    ("/x//admin/../../admin", 400, "ambiguous_path"),
    ("/admin%2F", 400, "ambiguous_path"),
    ("/admin%2fx", 400, "ambiguous_path"),
    ("/%2fadmin", 400, "ambiguous_path"),
    ("/admin%5cx", 400, "ambiguous_path"),
    ("/x\\..\\admin", 400, "ambiguous_path"),
    ("/admin%00", 400, None),
    ("/adm%69n", 403, "denied_by_rule"),
    ("/%61dmin/x", 403, "denied_by_rule"),
    ("/ad%6Din/", 403, "denied_by_rule"),
    ("/admin/..;/x", 400, "ambiguous_path"),   # ";" is refused
    ("/admin", 403, "denied_by_rule"),
    ("/admin/", 403, "denied_by_rule"),
    ("/admin/x", 403, "denied_by_rule"),
    ("/admin?x=/../ok", 403, "denied_by_rule"),
    ("/ADMIN", 200, None),
    ("/Admin/x", 200, None),
    ("/%41DMIN", 200, None),
    ("/administrator", 200, None),
    ("/admins/x", 200, None),
    ("/x/admin", 200, None),
    ("/", 200, None),
]
PATH_TRICKS_CI = {"/ADMIN": (403, "denied_by_rule"),
                  "/Admin/x": (403, "denied_by_rule"),
                  "/%41DMIN": (403, "denied_by_rule")}


@pytest.mark.parametrize("ci", [False, True], ids=["case-sensitive",
                                                   "case-insensitive"])
def test_path_tricks_never_reach_a_denied_prefix(gateway, backend, ci):
    apply_policy(gateway, PATHS_POLICY % {"ci": "true" if ci else "false"})
    email = new_user(gateway, tag="paths")
    s = gateway.logged_in(email, PW)
    wrong = []
    for target, status, reason in PATH_TRICKS:
        if ci and target in PATH_TRICKS_CI:
            status, reason = PATH_TRICKS_CI[target]
        for method in ("GET", "HEAD", "POST"):
            st, j, _ = raw_api(gateway, s, target, method=method)
            got = (st, None if j is None else j.get("reason") if st == 403
                   else j.get("error"))
            want = (status, reason)
            if st != status or (reason is not None and method != "HEAD"
                                and got[1] != reason):
                wrong.append((method, target, got, want))
    assert not wrong, "\n".join(map(repr, wrong))

    seen = [r["path"] for r in backend.requests()]
    leaked = [p for p in seen if under(p, ci=ci)]
    assert not leaked, "a denied prefix reached the backend: %r" % leaked
    allowed = [t for t, st, _ in PATH_TRICKS
               if st == 200 and not (ci and t in PATH_TRICKS_CI)]
    assert sorted(set(seen)) == sorted(allowed), seen
    # the proxied path is the raw one, byte for byte
    assert all(p in allowed for p in seen)


# nginx and the policy read '/admin;x=1' as one segment 'admin;x=1', but
# servlet containers and several frameworks strip ';' path parameters and
# serve /admin: gh_path_canonical refuses ';' (400 ambiguous_path).
@pytest.mark.parametrize("target", ["/admin;x=1", "/admin;/x", "/admin%3Bx"])
def test_path_parameters_do_not_reach_a_denied_prefix(gateway, backend,
                                                      target):
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    s = gateway.logged_in(new_user(gateway, tag="semicolon"), PW)
    st, j, _ = raw_api(gateway, s, target)
    assert st in (400, 403), (st, j)
    assert backend.requests() == []


def test_path_tricks_over_http2(gateway, backend, tmp_path):
    """The same checks with HTTP/2's :path, sent as-is by curl."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    s = gateway.logged_in(new_user(gateway, tag="h2paths"), PW)
    token = s.cookies.get(SESSION_COOKIE)
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy")}
    wrong = []
    for target, status, _ in PATH_TRICKS:
        if "\\" in target or "#" in target:
            continue
        out = tmp_path / "body"
        p = subprocess.run(
            [curl, "-sS", "--http2", "--path-as-is", "--max-time", "10",
             "--noproxy", "*", "--cacert", gateway.cert, "-o", str(out),
             "-H", "Cookie: %s=%s" % (SESSION_COOKIE, token),
             "-H", "Accept: application/json",
             "-w", "%{http_version} %{http_code}", gateway.url(target)],
            capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 0, (target, p.stderr)
        version, code = p.stdout.split()
        assert version == "2", p.stdout
        if int(code) != status:
            wrong.append((target, int(code), status))
    assert not wrong, wrong
    leaked = [r["path"] for r in backend.requests() if under(r["path"])]
    assert not leaked, leaked


def test_explain_agrees_on_path_tricks(gateway):
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    email = new_user(gateway, tag="pathexplain")
    s = gateway.logged_in(email, PW)
    for target, _, _ in PATH_TRICKS:
        if "\\" in target or "?" in target or "%00" in target:
            continue
        st, j, _ = raw_api(gateway, s, target)
        d, reason, http_status, _, out = explain(gateway, email, target)
        assert agree(st, j, d, reason, http_status), (target, st, j, out)


# ---- policy apply ---------------------------------------------------------------

GOOD = OPEN_POLICY
# Would deny every member if any of it went live; each has one error.
BROKEN = [
    ("unknown key", GOOD.replace("    rules:\n",
                                 "    owner: me\n    rules:\n") + """\
      - {name: deny-all, effect: deny}
""", r"line 6, column 5: unknown key 'owner'"),
    ("unknown top-level key", "colour: blue\n" + GOOD,
     r"line 1, column 1: unknown key 'colour'"),
    ("undefined role", GOOD + """\
      - {name: deny-all, effect: deny, roles: [ghosts]}
""", r"line 10, column \d+: .*ghosts"),
    ("bad cidr", GOOD + """\
      - {name: deny-all, effect: deny, networks: [10.0.0.0/33]}
""", r"line 10, column \d+: .*10\.0\.0\.0/33"),
    ("bad method", GOOD + """\
      - {name: deny-all, effect: deny, methods: [get]}
""", r"line 10, column \d+: "),
    ("duplicate rule", GOOD + """\
      - {name: staff, effect: deny}
""", r"line 10, column \d+: .*staff"),
    ("yaml syntax", GOOD + """\
      - {name: deny-all, effect: deny
""", r"line \d+, column \d+: "),
    ("wrong version", GOOD.replace("version: 1", "version: 2") + """\
      - {name: deny-all, effect: deny}
""", r"line 1, column \d+: "),
    ("mfa on a deny rule", GOOD + """\
      - {name: deny-all, effect: deny, mfa: required}
""", r"line 10, column \d+: "),
]


@pytest.mark.parametrize("name, text, message", BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_apply_with_an_error_leaves_the_old_policy_live(gateway, backend, name,
                                                        text, message):
    good_path = apply_policy(gateway, GOOD)
    s = gateway.logged_in(new_user(gateway, tag="apply"), PW)
    assert gateway.get("/before", s, headers=API).status_code == 200
    shown = gateway.cli("policy", "show")
    assert shown.returncode == 0 and shown.stdout == GOOD

    bad = os.path.join(gateway.base, "broken-%d.yaml" % next(_seq))
    with open(bad, "w") as f:
        f.write(text)
    p = gateway.cli("policy", "apply", bad)
    assert p.returncode != 0, p.stdout
    assert "is live" not in p.stdout
    assert p.stderr.count("\n") == 1, "one line: %r" % p.stderr
    assert re.search(message, p.stderr), p.stderr
    assert bad in p.stderr, "the message names the file: %r" % p.stderr

    r = gateway.get("/after", s, headers=API)
    assert r.status_code == 200, r.text
    assert gateway.cli("policy", "show").stdout == GOOD
    with open(good_path) as f:
        assert f.read() == GOOD
    assert [x["path"] for x in backend.requests()] == ["/before", "/after"]


def test_a_broken_file_creates_no_tenant(gateway):
    apply_policy(gateway, GOOD)
    bad = os.path.join(gateway.base, "broken-tenant.yaml")
    with open(bad, "w") as f:
        f.write(GOOD.replace("apps:\n", "tenants:\n  fresh-tenant:\n"
                             "    display: Fresh\napps:\n")
                + "      - {name: x, effect: allow, roles: [nobody]}\n")
    p = gateway.cli("policy", "apply", bad)
    assert p.returncode != 0 and "nobody" in p.stderr, (p.stdout, p.stderr)
    assert "created tenant" not in p.stdout
    assert "fresh-tenant" not in gateway.cli("tenant", "list").stdout
    assert gateway.cli("policy", "show").stdout == GOOD


@pytest.mark.parametrize("what", ["missing", "directory", "too big", "empty"])
def test_apply_of_an_unusable_file_is_refused(gateway, backend, what):
    apply_policy(gateway, GOOD)
    s = gateway.logged_in(new_user(gateway, tag="unusable"), PW)
    path = os.path.join(gateway.base, "unusable-%d" % next(_seq))
    if what == "directory":
        os.mkdir(path)
    elif what == "too big":
        with open(path, "w") as f:
            f.write(GOOD + "      - {name: deny-all, effect: deny}\n")
            f.write(("#" * 1023 + "\n") * (4 * 1024 + 1))
    elif what == "empty":
        open(path, "w").close()
    p = gateway.cli("policy", "apply", path)
    assert p.returncode != 0 and p.stdout == "", (p.stdout, p.stderr)
    assert p.stderr.count("\n") == 1, p.stderr
    assert gateway.cli("policy", "show").stdout == GOOD
    assert gateway.get("/still", s, headers=API).status_code == 200


def test_apply_takes_effect_without_reload(gateway, backend):
    apply_policy(gateway, GOOD)
    s = gateway.logged_in(new_user(gateway, tag="noreload"), PW)
    pid = gateway.proc.pid
    assert gateway.get("/one", s, headers=API).status_code == 200
    apply_policy(gateway, GOOD + """\
      - name: members-out
        effect: deny
        roles: [member]
""")
    j = denied(gateway.get("/two", s, headers=API), "denied_by_rule")
    rid = j["request_id"]
    assert decision_records(gateway, [rid])[rid][0]["rule"] == "members-out"
    apply_policy(gateway, GOOD)
    assert gateway.get("/three", s, headers=API).status_code == 200
    assert gateway.proc.pid == pid and gateway.proc.poll() is None
    assert [r["path"] for r in backend.requests()] == ["/one", "/three"]


def test_every_worker_uses_the_new_policy(make_gateway):
    gw = make_gateway(workers=3)
    apply_policy(gw, GOOD)
    s = gw.logged_in(new_user(gw, tag="workers"), PW)
    # fresh connections, so that every worker gets a share
    for i in range(12):
        st, _, _ = raw_api(gw, s, "/warm-%d" % i)
        assert st == 200
    apply_policy(gw, GOOD.replace("roles: [member, ", "roles: ["))
    codes = []
    for i in range(24):
        st, j, _ = raw_api(gw, s, "/after-%d" % i)
        codes.append((st, j and j.get("reason")))
    assert set(codes) == {(403, "no_matching_rule")}, codes
    assert not any(r["path"].startswith("/after-")
                   for r in gw.backend.requests())


# ---- explain agrees with the gateway ----------------------------------------------

EXPLAIN_POLICY = """\
version: 1
roles: [admin, writer]
apps:
  demo:
    tenants: [demo]
    rules:
      - name: read
        effect: allow
        roles: [member]
        methods: [GET, HEAD]
      - name: write-from-office
        effect: allow
        roles: [writer]
        methods: "*"
        networks: [10.0.0.0/8, "2001:db8::/32"]
      - name: no-admin
        effect: deny
        roles: [member, writer]
        paths: [/admin]
      - name: secure-change
        effect: allow
        roles: [member]
        methods: [PUT]
        paths: [/secure]
        mfa: required
  admin-tools:
    tenants: [demo]
    rules:
      - {name: admins-only, effect: allow, roles: [admin]}
"""


def test_explain_agrees_with_the_gateway(proxied):
    gw = proxied
    apply_policy(gw, EXPLAIN_POLICY)
    users = {
        "member": new_user(gw, roles="member", tag="x-member"),
        "writer": new_user(gw, roles="writer", tag="x-writer"),
        "both": new_user(gw, roles="member,writer", tag="x-both"),
        "visitor": new_user(gw, roles="visitor", tag="x-visitor"),
        "admin": new_user(gw, roles="admin", tag="x-admin"),
    }
    sessions = {k: gw.logged_in(v, PW) for k, v in users.items()}
    # (user, method, path, ip, app, expected (decision, reason, rule))
    cases = [
        ("member", "GET", "/docs", "127.0.0.1", "demo",
         ("allow", "allowed", "read")),
        ("member", "HEAD", "/docs", "10.0.0.1", "demo",
         ("allow", "allowed", "read")),
        ("member", "POST", "/docs", "127.0.0.1", "demo",
         ("deny", "no_matching_rule", None)),
        ("member", "GET", "/admin/x", "127.0.0.1", "demo",
         ("deny", "denied_by_rule", "no-admin")),
        ("member", "GET", "/adm%69n", "127.0.0.1", "demo",
         ("deny", "denied_by_rule", "no-admin")),
        ("member", "GET", "/administrator", "127.0.0.1", "demo",
         ("allow", "allowed", "read")),
        ("member", "PUT", "/secure/x", "127.0.0.1", "demo",
         ("deny", "mfa_required", "secure-change")),
        ("writer", "POST", "/docs", "10.1.2.3", "demo",
         ("allow", "allowed", "write-from-office")),
        ("writer", "DELETE", "/docs", "2001:db8::7", "demo",
         ("allow", "allowed", "write-from-office")),
        ("writer", "POST", "/docs", "192.0.2.9", "demo",
         ("deny", "no_matching_rule", None)),
        ("writer", "POST", "/admin", "10.1.2.3", "demo",
         ("deny", "denied_by_rule", "no-admin")),
        ("both", "PUT", "/secure", "10.1.2.3", "demo",
         ("allow", "allowed", "write-from-office")),
        ("both", "PUT", "/secure", "127.0.0.1", "demo",
         ("deny", "mfa_required", "secure-change")),
        ("visitor", "GET", "/docs", "127.0.0.1", "demo",
         ("deny", "visitors_not_allowed", None)),
        ("admin", "GET", "/docs", "127.0.0.1", "demo",
         ("deny", "no_matching_rule", None)),
        ("admin", "GET", "/admin-tools/x", "127.0.0.1", "admin-tools",
         ("allow", "allowed", "admins-only")),
        ("member", "GET", "/admin-tools/x", "10.1.2.3", "admin-tools",
         ("deny", "no_matching_rule", None)),
        ("member", "GET", "/x/%2e%2e/admin", "127.0.0.1", "demo",
         ("deny", "ambiguous_path", None)),
        ("member", "GET", "/x//admin", "10.1.2.3", "demo",
         ("deny", "ambiguous_path", None)),
    ]
    gw.backend.clear()
    ids = {}
    for i, (who, method, path, ip, app, want) in enumerate(cases):
        xff = [] if ip == "127.0.0.1" else [("X-Forwarded-For", ip)]
        st, j, _ = raw_api(gw, sessions[who], path, method=method, headers=xff)
        d, reason, http_status, rule, out = explain(
            gw, users[who], path, app=app, method=method, ip=ip)
        assert agree(st, j, d, reason, http_status), \
            (who, method, path, ip, st, j, out)
        assert (d, reason, rule) == want, (who, method, path, ip, out)
        if st == 403:
            ids[i] = j["request_id"]
        elif st == 200:
            recs = [r for r in gw.backend.requests()
                    if r["path"] == path and r["method"] == method]
            ids[i] = backend_header(recs[-1], "X-Gatehouse-Request-Id")
        else:
            assert http_status == st, out
    # the gateway's rule, from its decision log, is explain's rule too
    recs = decision_records(gw, list(ids.values()))
    for i, rid in ids.items():
        assert len(recs[rid]) == 1, (cases[i], recs[rid])
        rec = recs[rid][0]
        assert (rec["decision"], rec["reason"], rec["rule"] or None) == \
            cases[i][5], (cases[i], rec)


# ---- the decision log ----------------------------------------------------------

def test_decision_log_has_one_record_per_decided_request(gateway, backend):
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    email = new_user(gateway, tag="declog")
    s = gateway.logged_in(email, PW)
    uid = gateway.get(WHOAMI, s).json()["user"]
    backend.clear()

    allows, denies = [], []
    for path in ("/log/a", "/log/b?q=1"):
        assert gateway.get(path, s, headers=API).status_code == 200
        rec = [r for r in backend.requests() if r["path"] == path][-1]
        allows.append((backend_header(rec, "X-Gatehouse-Request-Id"), "GET",
                       path.split("?")[0]))
    st, j, _ = raw_api(gateway, s, "/admin/secret", method="DELETE")
    assert st == 403
    denies.append((j["request_id"], "DELETE", "/admin/secret", "no-admin",
                   "denied_by_rule"))
    j = denied(gateway.get("/admin", s, headers=API), "denied_by_rule")
    denies.append((j["request_id"], "GET", "/admin", "no-admin",
                   "denied_by_rule"))
    page = gateway.get("/admin/page", s, headers=BROWSER)
    assert page.status_code == 403
    m = re.search(r'<code id="request-id">([0-9a-f]{32})</code>', page.text)
    assert m, page.text
    denies.append((m.group(1), "GET", "/admin/page", "no-admin",
                   "denied_by_rule"))
    # an unknown app for this policy
    j = denied(gateway.get("/admin-tools/x", s, headers=API), "unknown_app")
    denies.append((j["request_id"], "GET", "/admin-tools/x", "",
                   "unknown_app"))

    ids = [a[0] for a in allows] + [d[0] for d in denies]
    assert len(set(ids)) == len(ids) and all(HEX32.match(i) for i in ids)
    recs = decision_records(gateway, ids)
    common = {"tenant": "demo", "user": uid, "addr": "127.0.0.1"}
    for rid, method, path in allows:
        assert len(recs[rid]) == 1, (rid, recs[rid])
        rec = recs[rid][0]
        assert {k: rec[k] for k in common} == common, rec
        assert (rec["decision"], rec["reason"], rec["rule"], rec["app"],
                rec["method"], rec["path"], rec["status"]) == \
            ("allow", "allowed", "members", "demo", method, path, 200), rec
        assert isinstance(rec["time"], int) and \
            abs(rec["time"] - time.time()) < 300, rec
    for rid, method, path, rule, reason in denies:
        assert len(recs[rid]) == 1, (rid, recs[rid])
        rec = recs[rid][0]
        assert {k: rec[k] for k in common} == common, rec
        app = "admin-tools" if path.startswith("/admin-tools/") else "demo"
        assert (rec["decision"], rec["reason"], rec["rule"], rec["app"],
                rec["method"], rec["path"], rec["status"]) == \
            ("deny", reason, rule, app, method, path, 403), rec
    # the backend never saw the ids of the denied requests
    seen = {backend_header(r, "X-Gatehouse-Request-Id")
            for r in backend.requests()}
    assert seen == {a[0] for a in allows}


def test_decision_log_escapes_a_hostile_path(gateway, backend):
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    s = gateway.logged_in(new_user(gateway, tag="hostile"), PW)
    target = "/log/%22%7D,%22evil%22:%22x"      # /log/"},"evil":"x decoded
    st, _, _ = raw_api(gateway, s, target)
    assert st == 200
    rid = backend_header(last_record(gateway, target), "X-Gatehouse-Request-Id")
    recs = decision_records(gateway, [rid])
    assert len(recs[rid]) == 1, recs
    assert recs[rid][0]["path"] == '/log/"},"evil":"x'
    assert "evil" not in recs[rid][0]


@pytest.mark.parametrize("target, status", [("/log/%ff%fe", 200),
                                            ("/admin/%ff", 403)])
def test_decision_log_records_a_path_that_is_not_utf8(gateway, backend, target,
                                                      status):
    """Every decision is written, one record per request: a path that is
    not UTF-8 must not make a decision (here one that reached the backend,
    or a denied probe) vanish from the log."""
    apply_policy(gateway, PATHS_POLICY % {"ci": "false"})
    s = gateway.logged_in(new_user(gateway, tag="latin1"), PW)
    st, j, _ = raw_api(gateway, s, target)
    assert st == status, (st, j)
    if st == 200:
        rid = backend_header(last_record(gateway, target),
                             "X-Gatehouse-Request-Id")
    else:
        rid = j["request_id"]
    recs = decision_records(gateway, [rid])
    assert len(recs[rid]) == 1, \
        "no decision record for %s (request %s); error log:\n%s" % (
            target, rid, gateway.logs(tail=5))
    assert recs[rid][0]["decision"] == ("allow" if st == 200 else "deny")


# ---- disabled users and MFA --------------------------------------------------------

def test_disabled_user_loses_the_session_and_explain_says_so(gateway, backend):
    apply_policy(gateway, OPEN_POLICY)
    email = new_user(gateway, tag="disabled")
    s = gateway.logged_in(email, PW)
    assert gateway.get("/before-disable", s, headers=API).status_code == 200
    d, reason, _, _, out = explain(gateway, email, "/x")
    assert (d, reason) == ("allow", "allowed"), out

    assert gateway.cli("user", "disable", "--email", email).returncode == 0
    r = gateway.get("/after-disable", s, headers=API)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthenticated"
    d, reason, _, _, out = explain(gateway, email, "/x")
    assert (d, reason) == ("deny", "account_disabled"), out
    assert "disabled" in out.split("decision:")[0], out
    rows = gateway.cli("role", "list", "--email", email).stdout
    assert "(account disabled)" in rows, rows
    # a grant does not bring the session back
    gateway.cli("role", "grant", "--tenant", "demo", "--email", email, "admin")
    assert gateway.get("/after-grant", s, headers=API).status_code == 401
    assert [x["path"] for x in backend.requests()] == ["/before-disable"]
    gateway.cli("user", "enable", "--email", email)


def test_mfa_required_rule_denies_a_password_only_session(gateway, backend):
    apply_policy(gateway, """\
version: 1
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: strong, effect: allow, roles: [member], paths: [/strong],
         mfa: required}
      - {name: plain, effect: allow, roles: [member], paths: [/plain]}
""")
    email = new_user(gateway, tag="mfa")
    s = gateway.logged_in(email, PW)
    assert gateway.get(WHOAMI, s).json()["auth"] == "pwd"
    j = denied(gateway.get("/strong/x", s, headers=API), "mfa_required")
    assert gateway.get("/plain/x", s, headers=API).status_code == 200
    denied(gateway.get("/other", s, headers=API), "no_matching_rule")
    assert [r["path"] for r in backend.requests()] == ["/plain/x"]
    rec = decision_records(gateway, [j["request_id"]])[j["request_id"]]
    assert [(r["reason"], r["rule"]) for r in rec] == [("mfa_required",
                                                        "strong")]
    d, reason, _, rule, out = explain(gateway, email, "/strong/x")
    assert (d, reason, rule) == ("deny", "mfa_required", "strong"), out
    d, reason, _, rule, out = explain(gateway, email, "/strong/x", mfa=True)
    assert (d, reason, rule) == ("allow", "allowed", "strong"), out


def test_tenant_requiring_mfa_denies_a_password_only_session(gateway, backend):
    mfa_policy = """\
version: 1
tenants:
  demo:
    mfa: %s
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member]}
"""
    apply_policy(gateway, mfa_policy % "optional")
    email = new_user(gateway, tag="tmfa")
    s = gateway.logged_in(email, PW)
    assert gateway.get("/anything", s, headers=API).status_code == 200
    backend.clear()
    apply_policy(gateway, mfa_policy % "required")
    # the live password-only session: refused at once
    denied(gateway.get("/anything", s, headers=API), "mfa_required")
    # a new sign-in gets only a session waiting for the second factor
    s2, r = gateway.login(email=email, password=PW)
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/mfa/enroll")
    r = gateway.get("/anything", s2, headers=API)
    assert r.status_code == 401 and r.json()["error"] == "second_factor_required"
    assert backend.requests() == []
    apply_policy(gateway, mfa_policy % "optional")
    assert gateway.get("/anything", s, headers=API).status_code == 200
