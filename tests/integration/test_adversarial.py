"""Adversarial catalogue, part 1 (issue 11): request framing and smuggling,
identity spoofing, path tricks, Host tricks.

Every case is one parametrised variant; none may get through. "Through"
means: the recording backend saw a request the gateway did not decide on
(a smuggled one, or one without a session), saw a forged identity, address,
host or path, or a denied path; or the gateway crashed (the harness fails a
test on any sanitizer report, [alert] or [emerg]).

The variants already covered elsewhere are not repeated here: path tricks
against a denied prefix (test_authz.py PATH_TRICKS), refused bodies read
as requests (test_login.py), forged identity headers basics
(test_access.py, test_http2.py). docs/security-testing.md lists the whole
catalogue; scripts/security-report.sh counts it.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import (ADMIN_EMAIL, BROWSER, LOGIN, SESSION_COOKIE, Gateway,
                      start_gateway)

PW = "an adversarial test password 9"

# Members and the administrator may use the demo app, but nobody /admin
# (in any case: the backend is taken to ignore case, as IIS does); the
# admin-tools app (location /admin-tools/) only from 10.0.0.0/8.
POLICY = """\
version: 1
apps:
  demo:
    tenants: [demo]
    paths_case_insensitive: true
    rules:
      - {name: staff, effect: allow, roles: [member, gatehouse-admin], paths: [/]}
      - {name: no-admin, effect: deny, roles: [member, gatehouse-admin], paths: [/admin]}
  admin-tools:
    tenants: [demo]
    networks: [10.0.0.0/8]
    rules:
      - {name: net-only, effect: allow, roles: [member, gatehouse-admin]}
"""

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Smuggled: 1\r\n\r\n"
CURL_H2 = shutil.which("curl")


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = start_gateway(tmp_path_factory.mktemp("adv"))
    path = os.path.join(g.base, "policy.yaml")
    with open(path, "w") as f:
        f.write(POLICY)
    p = g.cli("policy", "apply", path)
    assert p.returncode == 0, p.stderr
    g.add_user("member@example.com", PW, roles="member")
    yield g
    g.finish()


@pytest.fixture(scope="module")
def token(gw):
    s = gw.logged_in("member@example.com", PW)
    return s.cookies.get(SESSION_COOKIE)


@pytest.fixture
def seen(gw):
    gw.backend.clear()
    return gw.backend


def statuses(out):
    return [int(s) for s in re.findall(rb"HTTP/1\.[01] (\d{3}) ", out)]


def assert_clean_after(gw, token):
    """A fresh request through the same upstream keepalive pool reaches
    the backend as exactly itself: no leftover bytes of an earlier request
    were glued to it."""
    gw.backend.clear()
    st, _, _ = gw.raw("GET", "/after-check", [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token)), ("Accept", "application/json")])
    assert st == 200, st
    recs = gw.backend.requests()
    assert [(r["method"], r["path"]) for r in recs] == [("GET", "/after-check")], recs


# ---- 1. request framing and smuggling ----------------------------------------

def _cl(body):
    return b"Content-Length: %d\r\n" % len(body)


CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED
# (name, header lines, body): every one tries to make something after the
# framing the gateway uses be a request of its own.
FRAMING = [
    ("CL.TE", lambda b: _cl(b) + b"Transfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    ("TE.CL", lambda b: b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
     b"5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    ("two different Content-Length", lambda b: b"Content-Length: 0\r\n" + _cl(b), SMUGGLED),
    ("two equal Content-Length", lambda b: _cl(b) + _cl(b), SMUGGLED),
    ("Content-Length list", lambda b: b"Content-Length: 0, %d\r\n" % len(b), SMUGGLED),
    ("Content-Length +N", lambda b: b"Content-Length: +%d\r\n" % len(b), SMUGGLED),
    ("Content-Length hex", lambda b: b"Content-Length: 0x%x\r\n" % len(b), SMUGGLED),
    ("Content-Length negative", lambda b: b"Content-Length: -1\r\n", SMUGGLED),
    ("Content-Length overflow", lambda b: b"Content-Length: 99999999999999999999\r\n", SMUGGLED),
    ("TE chunked, chunked", lambda b: b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_SMUGGLE),
    ("TE Chunked", lambda b: b"Transfer-Encoding: Chunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE trailing space", lambda b: b"Transfer-Encoding: chunked \r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE tab before value", lambda b: b"Transfer-Encoding:\tchunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE x-chunked", lambda b: b"Transfer-Encoding: x-chunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE identity, chunked", lambda b: b"Transfer-Encoding: identity, chunked\r\n" + _cl(b),
     CHUNKED_SMUGGLE),
    ("TE chunked, identity", lambda b: b"Transfer-Encoding: chunked, identity\r\n", CHUNKED_SMUGGLE),
    ("TE vertical tab", lambda b: b"Transfer-Encoding:\x0bchunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE space before colon", lambda b: b"Transfer-Encoding : chunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("TE underscore name", lambda b: b"Transfer_Encoding: chunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("two TE headers", lambda b: b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
     CHUNKED_SMUGGLE),
    ("TE obs-fold", lambda b: b"Transfer-Encoding: identity\r\n chunked\r\n" + _cl(b), CHUNKED_SMUGGLE),
    ("obs-fold hides TE", lambda b: b"X-Pad: a\r\n Transfer-Encoding: chunked\r\n" + _cl(b),
     CHUNKED_SMUGGLE),
    ("obs-fold on Content-Length", lambda b: b"Content-Length: 0\r\n %d\r\n" % len(b), SMUGGLED),
    ("bare CR in header", lambda b: b"X-Pad: a\rTransfer-Encoding: chunked\r\n" + _cl(b),
     CHUNKED_SMUGGLE),
    ("chunk size 0x10", lambda b: b"Transfer-Encoding: chunked\r\n", b"0x10\r\n" + SMUGGLED),
    ("chunk size +5", lambda b: b"Transfer-Encoding: chunked\r\n", b"+5\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk size _", lambda b: b"Transfer-Encoding: chunked\r\n", b"_\r\n" + SMUGGLED),
    ("chunk size -1", lambda b: b"Transfer-Encoding: chunked\r\n", b"-1\r\n" + SMUGGLED),
    ("chunk size overflow", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"10000000000000005\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk size with space", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"5 \r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk data longer than size", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"2\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("oversized chunk extension", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"5;" + b"e" * 20000 + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("chunk extension with LF", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"5;a\nb\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    ("trailer smuggles a header", lambda b: b"Transfer-Encoding: chunked\r\n",
     b"5\r\nhello\r\n0\r\nX-Gatehouse-User: forged\r\n\r\n" + SMUGGLED),
]


def _request(head_line, headers, body, cookie):
    lines = [head_line, b"Host: 127.0.0.1\r\n"]
    if cookie:
        lines.append(b"Cookie: " + cookie.encode() + b"\r\n")
    lines.append(b"Accept: application/json\r\n")
    return b"".join(lines) + headers + b"\r\n" + body


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("name,headers,body", FRAMING, ids=[f[0] for f in FRAMING])
def test_framing_never_smuggles_a_request_to_the_backend(gw, token, seen, name,
                                                         headers, body, auth):
    cookie = "%s=%s" % (SESSION_COOKIE, token) if auth else None
    out = gw.exchange(_request(b"POST /framing HTTP/1.1\r\n", headers(body), body,
                               cookie), quiet=0.5)
    assert statuses(out), "no answer at all: %r" % out[:200]
    recs = seen.requests()
    paths = [r["path"] for r in recs]
    assert "/smuggled" not in paths, "smuggled request reached the backend"
    for r in recs:
        assert not any(k.lower() == "x-smuggled" for k, _ in r["headers"]), r
        assert b"GET /smuggled" not in r["body"] or auth, r
    if not auth:
        assert recs == [], "an undecided request reached the backend: %r" % paths
    else:
        assert paths in ([], ["/framing"]), paths
        for r in recs:
            assert all(k.lower() != "transfer-encoding" or v == "chunked"
                       for k, v in r["headers"]), r["headers"]
    assert_clean_after(gw, token)


@pytest.mark.parametrize("variant", [
    b"POST /framing HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n",
    b"POST /framing HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n",
    b"POST /framing HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
    b"Transfer-Encoding: chunked\r\n",
], ids=["TE", "TE+CL", "TE keep-alive"])
def test_http10_with_transfer_encoding_is_refused(gw, token, seen, variant):
    req = variant.replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nCookie: %s=%s\r\n"
                          % (SESSION_COOKIE.encode(), token.encode()))
    out = gw.exchange(req + b"\r\n" + CHUNKED_SMUGGLE, quiet=0.5)
    assert statuses(out)[:1] == [400], out[:200]
    assert seen.requests() == []
    assert_clean_after(gw, token)


@pytest.mark.parametrize("raw", [
    b"GET /lf HTTP/1.1\nHost: 127.0.0.1\nCookie: C\n\nGET /smuggled HTTP/1.1\nHost: x\n\n",
    b"GET /cr HTTP/1.1\rHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET /crlf-mixed HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: C\n\rGET /smuggled HTTP/1.1\r\n\r\n",
    b"GET /sp HTTP/1.1 \r\nHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET  /double-space HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET /nul\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET /hdrnul HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x00b\r\nCookie: C\r\n\r\n",
    b"GET /ver HTTP/1.10\r\nHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET /ver HTTP/2.0\r\nHost: 127.0.0.1\r\nCookie: C\r\n\r\n",
    b"GET /http09\r\n\r\n",
], ids=["bare LF + pipelined", "bare CR in request line", "LF CR", "space before CRLF",
        "double space", "NUL in target", "NUL in header", "HTTP/1.10", "HTTP/2.0 text",
        "HTTP/0.9"])
def test_odd_line_endings_are_one_request_or_refused(gw, token, seen, raw):
    """Bare LF is read by nginx like CRLF (RFC 9112 allows it); what counts
    is that each request the backend sees was decided with the session, and
    that an unauthenticated one never arrives."""
    out = gw.exchange(raw.replace(b"Cookie: C", b"Cookie: %s=%s" % (
        SESSION_COOKIE.encode(), token.encode())), quiet=0.5)
    # (HTTP/0.9 gets a bare body: no status line to count)
    assert statuses(out) or out == b"" or raw.startswith(b"GET /http09"), out[:200]
    paths = [r["path"] for r in seen.requests()]
    assert "/smuggled" not in paths
    assert all(not p.startswith("/smuggled") for p in paths), paths
    assert_clean_after(gw, token)


H2_FRAMING = [
    ("TE chunked", [("Transfer-Encoding", "chunked")], CHUNKED_SMUGGLE),
    ("CL shorter than data", [("Content-Length", "1")], SMUGGLED),
    ("CL longer than data", [("Content-Length", "500")], SMUGGLED),
    ("CL zero with data", [("Content-Length", "0")], SMUGGLED),
    ("two CL", [("Content-Length", "0"), ("Content-Length", str(len(SMUGGLED)))], SMUGGLED),
    ("Connection header", [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")], SMUGGLED),
    ("Upgrade header", [("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")], SMUGGLED),
]


@pytest.mark.skipif(CURL_H2 is None, reason="curl not installed")
@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("name,headers,body", H2_FRAMING, ids=[f[0] for f in H2_FRAMING])
def test_h2_framing_never_smuggles_a_request_to_the_backend(gw, token, seen, name, headers,
                                                            body, auth, tmp_path):
    """HTTP/2 to the gateway, HTTP/1.1 to the backend (H2.CL, H2.TE): the
    gateway re-frames the body, so nothing in it becomes a request."""
    data = tmp_path / "body"
    data.write_bytes(body)
    hdrs = [("Accept", "application/json")] + headers
    if auth:
        hdrs.append(("Cookie", "%s=%s" % (SESSION_COOKIE, token)))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    argv = [CURL_H2, "-sS", "--http2", "--max-time", "10", "--noproxy", "*",
            "--cacert", gw.cert, "-o", os.devnull, "-w", "%{http_version} %{http_code}",
            "--data-binary", "@%s" % data]
    for k, v in hdrs:
        argv += ["-H", "%s: %s" % (k, v)]
    argv.append(gw.url("/h2-framing"))
    subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    recs = seen.requests()
    paths = [r["path"] for r in recs]
    assert "/smuggled" not in paths
    if not auth:
        assert recs == [], paths
    for r in recs:
        assert not any(k.lower() in ("x-smuggled", "transfer-encoding", "upgrade")
                       for k, _ in r["headers"]), r["headers"]
        cl = [v for k, v in r["headers"] if k.lower() == "content-length"]
        assert cl in ([], [str(len(r["body"]))]), (cl, len(r["body"]))
    assert_clean_after(gw, token)


# ---- 2. identity spoofing ---------------------------------------------------------

FORGED_NAMES = [
    "X-Gatehouse-User", "x-gatehouse-user", "X-GATEHOUSE-USER", "x-GaTeHoUsE-uSeR",
    "X_Gatehouse_User", "X-Gatehouse_User", "x_gatehouse-user",
    "X-Gatehouse-Email", "X-Gatehouse-Tenant", "X-Gatehouse-Roles", "X-Gatehouse-Auth",
    "X-Gatehouse-Name", "X-Gatehouse-Request-Id", "X-Gatehouse-Assertion",
    "X-Gatehouse-Admin", "X-Gatehouse-", "X-Gatehouse-User ", "X-Gatehouse-User\t",
]
MARK = "forged-7f3a"


def _forged_seen(rec):
    """Header lines in a backend record that carry the forged marker."""
    return [(k, v) for k, v in rec["headers"] if MARK in v or MARK in k]


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("name", FORGED_NAMES, ids=repr)
def test_forged_identity_header_never_reaches_the_backend_h1(gw, token, seen, name, auth):
    cookie = ("Cookie: %s=%s\r\n" % (SESSION_COOKIE, token)) if auth else ""
    # written by hand: names with a trailing space or tab, and duplicates
    req = ("GET /spoof HTTP/1.1\r\nHost: 127.0.0.1\r\n%sAccept: application/json\r\n"
           "%s: %s-1\r\n%s: %s-2\r\nConnection: close\r\n\r\n"
           % (cookie, name, MARK, name, MARK)).encode()
    out = gw.exchange(req, quiet=0.5)
    st = statuses(out)
    assert st, out[:200]
    recs = seen.requests()
    if not auth:
        assert recs == [] and st[0] in (400, 401), (st, recs)
        return
    assert st[0] in (200, 400), st
    for rec in recs:
        assert _forged_seen(rec) == [], _forged_seen(rec)
        users = [v for k, v in rec["headers"] if k.lower() == "x-gatehouse-user"]
        assert len(users) == 1 and users[0], rec["headers"]


CURL = shutil.which("curl")


def _curl_h2(gw, path, headers, tmp):
    out = os.path.join(str(tmp), "b")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    argv = [CURL, "-sS", "--http2", "--max-time", "10", "--noproxy", "*",
            "--cacert", gw.cert, "-o", out, "-w", "%{http_version} %{http_code}"]
    for k, v in headers:
        argv += ["-H", "%s: %s" % (k, v)]
    argv.append(gw.url(path))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    if p.returncode != 0:
        return None, None      # the connection was refused (a protocol error)
    ver, code = p.stdout.split()
    return ver, int(code)


@pytest.mark.skipif(CURL is None, reason="curl not installed")
@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("name", [n for n in FORGED_NAMES if not n[-1].isspace()], ids=repr)
def test_forged_identity_header_never_reaches_the_backend_h2(gw, token, seen, name, auth,
                                                             tmp_path):
    hdrs = [("Accept", "application/json"), (name, MARK + "-1"), (name, MARK + "-2")]
    if auth:
        hdrs.append(("Cookie", "%s=%s" % (SESSION_COOKIE, token)))
    ver, code = _curl_h2(gw, "/spoof-h2", hdrs, tmp_path)
    assert ver in (None, "2"), ver
    recs = seen.requests()
    if not auth:
        assert recs == [] and code in (None, 400, 401), (code, recs)
        return
    assert code in (None, 200, 400), code
    for rec in recs:
        assert _forged_seen(rec) == [], _forged_seen(rec)


# Headers that try to move the decision's address, host or path. The app
# /admin-tools/ admits only 10.0.0.0/8; the peer is 127.0.0.1 and no proxy
# is trusted; /admin is denied by rule.
ADDRESS_SPOOFS = [
    ("X-Forwarded-For", "10.0.0.1"),
    ("X-Forwarded-For", "10.0.0.1, 10.0.0.2"),
    ("X-Real-IP", "10.0.0.1"),
    ("Forwarded", "for=10.0.0.1"),
    ("Forwarded", 'for="[::ffff:10.0.0.1]";proto=https'),
    ("True-Client-IP", "10.0.0.1"),
    ("X-Client-IP", "10.0.0.1"),
    ("CF-Connecting-IP", "10.0.0.1"),
    ("X-Cluster-Client-IP", "10.0.0.1"),
    ("Client-IP", "10.0.0.1"),
]


@pytest.mark.parametrize("name,value", ADDRESS_SPOOFS, ids=lambda v: v)
def test_spoofed_client_address_does_not_open_a_network_allowlist(gw, token, seen,
                                                                 name, value):
    st, _, body = gw.raw("GET", "/admin-tools/x", [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token)), ("Accept", "application/json"),
        (name, value)])
    assert st == 403 and b"network_not_allowed" in body, (st, body[:200])
    assert seen.requests() == []


PATH_OVERRIDES = [
    ("X-Original-URL", "/admin/secret"),
    ("X-Rewrite-URL", "/admin/secret"),
    ("X-Original-URI", "/admin/secret"),
    ("X-Override-URL", "/admin/secret"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
]


@pytest.mark.parametrize("name,value", PATH_OVERRIDES, ids=lambda v: v)
def test_path_override_headers_never_reach_the_backend(gw, token, seen, name, value):
    """The gateway decides on "/", so a backend that routes by
    X-Original-URL / X-Rewrite-URL (IIS, Symfony, Zend) or honours a method
    override would serve what nobody decided on: these headers are removed."""
    st, _, _ = gw.raw("GET", "/allowed", [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token)), ("Accept", "application/json"),
        (name, value), (name.lower().replace("-", "_"), value)])
    assert st in (200, 400), st
    for rec in seen.requests():
        got = [(k, v) for k, v in rec["headers"]
               if k.lower().replace("_", "-") == name.lower()]
        assert got == [], got


@pytest.mark.parametrize("name,value", [
    ("X-Forwarded-Host", "evil.example"),
    ("X-Host", "evil.example"),
    ("X-Forwarded-Server", "evil.example"),
    ("Forwarded", "host=evil.example"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Port", "80"),
    ("X-Forwarded-Prefix", "//evil.example"),
], ids=lambda v: v)
def test_host_override_headers_change_no_redirect_or_cookie(gw, seen, name, value):
    s = gw.session()
    r = gw.get("/somewhere", s, headers=dict(BROWSER, **{name: value}))
    assert r.status_code == 302
    assert r.headers["Location"].startswith(LOGIN + "?rd="), r.headers["Location"]
    r = gw.get(LOGIN, s, headers={name: value, **BROWSER})
    assert r.status_code == 200
    assert "evil" not in r.text
    s2, r = gw.login(email=ADMIN_EMAIL, rd="/back", headers={name: value})
    assert r.status_code == 303
    assert r.headers["Location"] == "/back"
    for c in r.raw.headers.getlist("Set-Cookie"):
        assert "evil" not in c and "domain" not in c.lower(), c
    assert seen.requests() == []


# ---- 3. paths against a protected prefix --------------------------------------------

# Raw targets that a backend could read as /admin (denied). Variants not
# already in test_authz.py PATH_TRICKS.
PATH_VARIANTS = [
    "/admin.", "/admin./", "/admin..", "/admin%2e", "/admin/.", "/admin/.%2e",
    "/%c0%af/admin", "/x%c0%af..%c0%afadmin", "/%c0%ae%c0%ae/admin", "/x/%c0%ae%c0%ae/admin",
    "/%e0%80%afadmin", "/%252e%252e/admin", "/x/%252e%252e/admin", "/%252fadmin",
    "/admin%252f", "/x/..%252fadmin", "/admin%00.html", "/admin%0a", "/admin%0d%0a",
    "/admin%09", "/admin%20", "/admin ", "/adm%00in", "/x/%2E./admin", "/x/..%5cadmin",
    "/x/..\\admin", "/x/.%00./admin", "/admin#x", "/x#/../admin", "/%23/../admin",
    "/admin;/", "/;/admin", "/admin%3b", "/ADMIN%2F..%2F", "///admin", "/./admin",
    "/x/./../admin", "/admin/", "/Admin", "/ADMIN", "/adm%69n", "/%61%64%6d%69%6e",
    "/admin%ef%bc%8fx", "/admin\u2215x", "/admin%u002f", "/admin%%32%66",
    "/admin?", "/admin??", "/admin/..", "/admin/../admin",
]


@pytest.mark.parametrize("target", PATH_VARIANTS, ids=repr)
def test_path_variant_never_reaches_the_protected_prefix(gw, token, seen, target):
    raw = target.encode("utf-8")
    out = gw.exchange(b"GET " + raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: "
                      + ("%s=%s" % (SESSION_COOKIE, token)).encode()
                      + b"\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                      quiet=0.5)
    st = statuses(out)
    assert st, out[:200]
    for rec in seen.requests():
        assert not _reads_as_admin(rec["path"]), (target, rec["path"])


def _reads_as_admin(path):
    """Whether any plausible backend reading of a proxied path is /admin or
    below (decoded up to three times, '\\' as '/', dot and empty segments
    resolved, case folded, trailing dots, ';' params, NUL cut)."""
    import posixpath
    from urllib.parse import unquote
    p = path.split("?", 1)[0].split("#", 1)[0]
    readings = set()
    for _ in range(4):
        readings.add(p)
        p = unquote(p, errors="replace")
    # overlong UTF-8 as lenient decoders read it
    for r in list(readings):
        readings.add(r.replace("\xc0\xaf", "/").replace("\xc0\xae", "."))
    out = set()
    for r in readings:
        r = r.replace("\\", "/")
        r = r.split("\x00", 1)[0]
        r = re.sub(r";[^/]*", "", r)
        r = re.sub(r"/+", "/", r)
        r = posixpath.normpath(r) if r else r
        r = re.sub(r"\.+(?=/|$)", "", r).rstrip(" \t\r\n")
        out.add(r.lower())
    return any(r == "/admin" or r.startswith("/admin/") for r in out)


@pytest.mark.parametrize("target", [
    "*", "https://127.0.0.1/admin", "http://127.0.0.1/admin", "https://evil.example/admin",
    "HTTPS://127.0.0.1/ADMIN", "//127.0.0.1/admin", "https://127.0.0.1:1@evil/admin",
    "https://127.0.0.1/x/../admin", "https://127.0.0.1/%2e%2e/admin",
], ids=repr)
def test_odd_request_target_forms_never_reach_the_protected_prefix(gw, token, seen, target):
    for method in (b"GET", b"OPTIONS"):
        out = gw.exchange(method + b" " + target.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Cookie: " + ("%s=%s" % (SESSION_COOKIE, token)).encode()
                          + b"\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                          quiet=0.5)
        assert statuses(out), out[:200]
    for rec in seen.requests():
        assert not _reads_as_admin(rec["path"]), (target, rec["path"])
        assert not rec["path"].startswith("*")


# ---- 4. Host -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"GET /h HTTP/1.1\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: 127.0.0.1\r\nhost: 127.0.0.1\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: evil.example/x\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: a b\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: ..\r\nAccept: text/html\r\n\r\n",
    b"GET /h HTTP/1.1\r\nHost: \r\nAccept: text/html\r\n\r\n",
], ids=["missing", "duplicated", "duplicated same", "with slash", "with space", "dot-dot",
        "empty"])
def test_malformed_host_is_refused(gw, seen, raw):
    out = gw.exchange(raw, quiet=0.5)
    assert statuses(out)[:1] == [400], out[:300]
    assert b"evil" not in out
    assert seen.requests() == []


@pytest.mark.parametrize("target,host", [
    ("https://evil.example/h", "127.0.0.1"),
    ("https://127.0.0.1/h", "evil.example"),
    ("http://evil.example:80/h", "127.0.0.1"),
    ("/h", "evil.example"),
    ("/h", "evil.example\\x"),
    ("/h", "evil.example@127.0.0.1"),
], ids=["absolute evil", "Host evil", "absolute http", "origin-form Host evil",
        "Host with backslash", "Host with userinfo"])
def test_unchecked_host_builds_no_redirect_or_cookie(gw, seen, target, host):
    """With the catch-all server_name of the demo configuration, any Host
    is served; nginx takes the host from an absolute-form target. The
    gateway's answers are relative (Location) and host-less (cookies), so no
    spelling of the host reaches a redirect, a cookie or the backend.
    (Refusing unknown hosts is the server_name's job: see the next test.)"""
    out = gw.exchange(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\n"
                       "Connection: close\r\n\r\n" % (target, host)).encode(), quiet=0.5)
    st = statuses(out)
    assert st[:1] in ([302], [400]), out[:300]
    head = out.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith((b"location:", b"set-cookie:")):
            assert b"evil" not in line, line
            assert not line.lower().startswith(b"location: http"), line
    assert seen.requests() == []


class _StrictHostGateway(Gateway):
    """The gateway as production should run it: server_name names the
    public host, and a default server refuses every other Host (421)."""

    def _render(self):
        super()._render()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("server_name  _;", "server_name  127.0.0.1 gw.example;")
        default = ("    server {\n        listen 127.0.0.1:%d ssl http2 default_server;\n"
                   "        ssl_certificate %s/tls/gateway.crt;\n"
                   "        ssl_certificate_key %s/tls/gateway.key;\n"
                   "        return 421;\n    }\n" % (self.port, self.data, self.data))
        text = text.replace("\nhttp {\n", "\nhttp {\n" + default, 1)
        with open(self.conf, "w") as f:
            f.write(text)


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    g = _StrictHostGateway(str(tmp_path_factory.mktemp("stricthost")))
    try:
        g.start()
    except BaseException:
        g.stop()
        raise
    yield g
    g.finish()


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "gw.example.evil",
                                  "localhost", "127.0.0.2", "[::1]", "xn--gw-xyz",
                                  "evil.example\\x", "evil.example@127.0.0.1",
                                  "gw.example@evil.example", "evil.example:443"],
                         ids=repr)
def test_host_not_configured_is_refused(strict, host):
    strict.backend.clear()
    st, headers, body = strict.raw("GET", "/h", [("Host", host), ("Accept", "text/html")])
    assert st == 421, st
    assert not any(k.lower() in ("location", "set-cookie") for k, _ in headers), headers
    st, _, _ = strict.raw("POST", LOGIN, [("Host", host)], body=b"username=x")
    assert st == 421, st
    assert strict.backend.requests() == []
    # an absolute-form target names the host nginx selects by: a foreign
    # one is refused even when Host is ours
    out = strict.exchange(("GET https://%s/h HTTP/1.1\r\nHost: gw.example\r\n"
                           "Accept: text/html\r\nConnection: close\r\n\r\n" % host).encode(),
                          quiet=0.5)
    assert statuses(out)[:1] in ([421], [400]), out[:200]
    assert strict.backend.requests() == []
    # the configured names still work (DNS case and trailing dot are the
    # same name)
    for good in ("gw.example", "GW.EXAMPLE.", "127.0.0.1"):
        st, _, _ = strict.raw("GET", "/h", [("Host", good), ("Accept", "text/html")])
        assert st == 302, (good, st)
