"""Adversarial catalogue, part 2 (issue 11): return targets after login and
logout, CSRF on every state-changing endpoint, sessions and cookies, the
client address chain, and size and time limits.

Like part 1 (test_adversarial.py), each variant is one parametrised case
that must not get through; docs/security-testing.md lists the catalogue and
scripts/security-report.sh counts it. Variants already in test_login.py
(HOSTILE_RD, the basic CSRF refusals) are not repeated.
"""
import os
import re
import secrets
import socket
import ssl
import time
from urllib.parse import quote, urlsplit

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, BROWSER, CSRF_COOKIE,
                      HEALTHZ, HSTS, LOGIN, LOGOUT, SESSION_COOKIE, WHOAMI,
                      Gateway, free_port, input_value, set_cookies,
                      start_gateway)

PW = "an adversarial session password 5"
PASSWORD_PAGE = "/.gatehouse/account/password"
ALLOWED_HOST = "app.example.com"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = start_gateway(tmp_path_factory.mktemp("advs"), http_directives=[
        "gatehouse_redirect_hosts  %s;" % ALLOWED_HOST,
        "gatehouse_login_throttle  failures=100 lockout=100 address=off;"])
    yield g
    g.finish()


def offsite(loc, port):
    """Why a Location leaves this origin (or could, once a browser or a
    backend repairs it), or None when it is safe."""
    if loc is None:
        return "no Location"
    if any(c in loc for c in "\\\r\n\t") or any(ord(c) < 0x20 or ord(c) > 0x7e for c in loc):
        return "odd byte"
    if loc.startswith("//") or loc.startswith("/%2f") or loc.startswith("/%2F"):
        return "protocol-relative"
    parts = urlsplit(loc)
    if parts.scheme or parts.netloc:
        if parts.scheme != "https" or parts.netloc not in ("127.0.0.1:%d" % port, ALLOWED_HOST):
            return "absolute to %s://%s" % (parts.scheme, parts.netloc)
    elif not loc.startswith("/"):
        return "not a path"
    return None


# ---- 5. return targets (rd) after login, logout and password change ------------

# From published open-redirect bugs of oauth2-proxy (CVE-2020-5233,
# CVE-2020-4037, CVE-2021-21291, GHSA-j7rx-... tab and backslash tricks),
# Authelia (CVE-2021-32637 and the 4.x redirect fixes: encoded slashes,
# userinfo, scheme-relative) and mod_auth_mellon (CVE-2019-3877,
# CVE-2019-13038, CVE-2021-3639: "///", "/\\", "http:", unicode); the ones
# test_login.py HOSTILE_RD already has are left out.
RD_VARIANTS = [
    "////evil.example", "/\\/evil.example", "\\/\\/evil.example", "https:/evil.example",
    "https:///evil.example", "https:\\\\evil.example", "https:\\/\\/evil.example",
    "%09//evil.example", "/%09/evil.example", "/%0d%0a//evil.example",
    "%0d%0a//evil.example", "/%2F/evil.example", "/%2f%2e%2e%2fevil.example", "/.//evil.example",
    "/./\\evil.example", "/..//evil.example", "/%2e%2e//evil.example", "/%2e/%2fevil.example",
    "https://%s@evil.example/" % ALLOWED_HOST, "https://%s.evil.example/" % ALLOWED_HOST,
    "https://evil%s/" % ALLOWED_HOST, "https://%s:443.evil.example/" % ALLOWED_HOST,
    "https://%s%%2e.evil.example/" % ALLOWED_HOST, "https://%s\\@evil.example/" % ALLOWED_HOST,
    "https://evil.example/%s" % ALLOWED_HOST, "https://evil.example?%s" % ALLOWED_HOST,
    "https://evil.example#%s" % ALLOWED_HOST, "https://%s%%2f@evil.example" % ALLOWED_HOST,
    "https://%s%%40evil.example/" % ALLOWED_HOST, "https://%s:8443/" % ALLOWED_HOST,
    "http://%s/" % ALLOWED_HOST, "HtTp://%s/" % ALLOWED_HOST, "ftp://evil.example/",
    "https://xn--80ak6aa92e.com/", "https://\u0430pp.example.com/", "https://app\u3002example.com/",
    "https://app.example.com\uff0fevil.example", "https://[::1]/", "https://0x7f000001/",
    "https://2130706433/", "//evil.example%%00.%s" % ALLOWED_HOST, "/ /evil.example",
    "\t//evil.example", "//evil.example\\@%s" % ALLOWED_HOST, "https:evil.example@%s" % ALLOWED_HOST,
    "//%65vil.example", "/%5C%5Cevil.example", "/\u2215\u2215evil.example",
    "/x/../..//evil.example", "/" + "a" * 3000 + "//evil.example",
    "/" + "%2F" * 700 + "evil.example", "/x%0d%0aLocation:%20https://evil.example",
    "javascript://%0aalert(1)", "jAvAsCrIpT:alert(1)", "vbscript:msgbox(1)",
    "data:,x", "/\x00//evil.example", "\x00//evil.example", "https://evil.example\x00.%s" % ALLOWED_HOST,
]


@pytest.mark.parametrize("rd", RD_VARIANTS, ids=lambda v: repr(v)[:48])
def test_hostile_rd_after_login_stays_on_site(gw, rd):
    s = gw.session()
    page = gw.get(LOGIN, s, params={"rd": rd}, headers=BROWSER)
    assert page.status_code == 200
    kept = input_value(page.text, "rd") or ""
    assert offsite(kept or "/", gw.port) is None, kept
    csrf = input_value(page.text, "csrf")
    r = gw.post(LOGIN, s, data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                "csrf": csrf, "rd": rd})
    assert r.status_code == 303, (r.status_code, r.text[:200])
    why = offsite(r.headers.get("Location"), gw.port)
    assert why is None, (why, r.headers.get("Location"))
    assert "evil" not in r.headers["Location"]


@pytest.mark.parametrize("rd", RD_VARIANTS, ids=lambda v: repr(v)[:48])
def test_hostile_rd_on_logout_is_ignored(gw, rd):
    """Logout takes no return target: whatever rd says, in the query or the
    form, it goes to the login page."""
    s = gw.logged_in()
    r = gw.post(LOGOUT + "?rd=" + quote(rd, safe=""), s, data={"rd": rd})
    assert r.status_code == 303
    assert r.headers["Location"] == LOGIN, r.headers["Location"]


@pytest.mark.parametrize("rd", RD_VARIANTS[::4], ids=lambda v: repr(v)[:48])
def test_hostile_rd_on_the_password_page_is_dropped(gw, rd):
    s = gw.logged_in()
    page = gw.get(PASSWORD_PAGE, s, params={"rd": rd}, headers=BROWSER)
    assert page.status_code == 200
    kept = input_value(page.text, "rd") or "/"
    assert offsite(kept, gw.port) is None and "evil" not in kept, kept


# ---- 6. CSRF on every state-changing endpoint ---------------------------------------

MFA_PAGE = "/.gatehouse/mfa"
MFA_ENROL_PAGE = "/.gatehouse/mfa/enroll"

# Every endpoint that changes state and the field names its form posts, with
# a `changed` probe; every variant below runs against each. The admin
# console and API (/.gatehouse/admin/, /.gatehouse/api/v1/) have their own
# CSRF tests (test_admin*.py).
def _login_form(gw, s):
    return {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}


def _login_changed(gw, s, r):
    return SESSION_COOKIE in set_cookies(r)


def _password_form(gw, s):
    return {"current": PW, "new": PW + " new", "confirm": PW + " new"}


def _password_changed(gw, s, r):
    # a change ends the user's other sessions: the witness session survives
    # only if nothing changed
    return gw.get(WHOAMI, s.witness).status_code != 200


def _logout_changed(gw, s, r):
    return gw.get(WHOAMI, s).status_code != 200 or SESSION_COOKIE in set_cookies(r)


def _mfa_changed(gw, s, r):
    # a passed second step replaces the session (new cookie, "otp" added)
    return SESSION_COOKIE in set_cookies(r) or \
        "otp" in gw.get(WHOAMI, s).json().get("auth", "")


def _enrol_changed(gw, s, r):
    # a started enrolment is stored (and its page shows the secret)
    p = gw.cli("user", "mfa-status", "--email", s.email)
    return "pending" in p.stdout or "otpauth://" in r.text


STATE_CHANGING = {
    "login": (LOGIN, _login_form, _login_changed, False),
    "password": (PASSWORD_PAGE, _password_form, _password_changed, True),
    "logout": (LOGOUT, lambda gw, s: {}, _logout_changed, True),
    "mfa": (MFA_PAGE, lambda gw, s: {"code": "123456"}, _mfa_changed, True),
    "mfa_enroll": (MFA_ENROL_PAGE, lambda gw, s: {"action": "start"},
                   _enrol_changed, True),
}
# logout carries no token by design (a backend page cannot know it: our
# cookies never reach backends); it is protected by POST-only, the Origin
# check and SameSite=Lax. The token variants apply to the others.
TOKENED = ("login", "password", "mfa", "mfa_enroll")


def _setup(gw, endpoint, signed_in):
    s = gw.session()
    if signed_in:
        email = "csrf%s@example.com" % secrets.token_hex(4)
        gw.add_user(email, PW, roles="member")
        s = gw.logged_in(email, PW)
        s.witness = gw.logged_in(email, PW)
        s.email = email
    # the page that hands out the token (both second-factor forms share the
    # enrolment page's)
    page = gw.get(LOGIN if endpoint == "login" else PASSWORD_PAGE if endpoint == "password"
                  else MFA_ENROL_PAGE if endpoint.startswith("mfa")
                  else WHOAMI, s, headers=BROWSER)
    csrf = input_value(page.text, "csrf") if endpoint in TOKENED else None
    return s, csrf


def _other_token(gw):
    _, csrf = gw.login_page(gw.session())
    return csrf


CSRF_VARIANTS = {
    "no token": lambda gw, s, t: ({}, {}),
    "empty token": lambda gw, s, t: ({"csrf": ""}, {}),
    "wrong token": lambda gw, s, t: ({"csrf": "A" * len(t)}, {}),
    "token of another session": lambda gw, s, t: ({"csrf": _other_token(gw)}, {}),
    "token one char short": lambda gw, s, t: ({"csrf": t[:-1]}, {}),
    "token plus a char": lambda gw, s, t: ({"csrf": t + "A"}, {}),
    "token in another case": lambda gw, s, t: ({"csrf": t.swapcase()}, {}),
    "no csrf cookie": lambda gw, s, t: ({"csrf": t}, {"drop_cookie": True}),
    "foreign Origin": lambda gw, s, t: ({"csrf": t}, {"Origin": "https://evil.example"}),
    "Origin null": lambda gw, s, t: ({"csrf": t}, {"Origin": "null"}),
    "Origin over http": lambda gw, s, t: ({"csrf": t}, {"Origin": "http://127.0.0.1:%d" % gw.port}),
    "Origin other port": lambda gw, s, t: ({"csrf": t}, {"Origin": "https://127.0.0.1:1"}),
    "Origin suffix": lambda gw, s, t: ({"csrf": t}, {"Origin": "https://127.0.0.1:%d.evil.example" % gw.port}),
    "Origin with path": lambda gw, s, t: ({"csrf": t}, {"Origin": "https://127.0.0.1:%d/x" % gw.port}),
}


CSRF_CASES = [(e, v) for e in STATE_CHANGING for v in CSRF_VARIANTS
              if e in TOKENED or "Origin" in v]


@pytest.mark.parametrize("endpoint,variant", CSRF_CASES, ids=lambda v: v)
def test_csrf_variant_changes_nothing(gw, endpoint, variant):
    path, form_of, changed, signed_in = STATE_CHANGING[endpoint]
    s, token = _setup(gw, endpoint, signed_in)
    fields, extra = CSRF_VARIANTS[variant](gw, s, token or "x" * 43)
    form = form_of(gw, s)
    form.update(fields)
    headers = dict(BROWSER)
    if extra.pop("drop_cookie", False):
        s.cookies.set(CSRF_COOKIE, None, domain="127.0.0.1", path="/")
    headers.update(extra)
    r = gw.post(path, s, data=form, headers=headers)
    assert r.status_code == 403, (endpoint, variant, r.status_code)
    assert not changed(gw, s, r), (endpoint, variant)


def test_two_origin_headers_one_foreign_are_refused(gw):
    s = gw.logged_in()
    st, _, _ = gw.raw("POST", LOGOUT, [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, s.cookies.get(SESSION_COOKIE))),
        ("Origin", gw.origin), ("Origin", "https://evil.example")], body=b"")
    assert st == 403
    assert gw.get(WHOAMI, s).status_code == 200


def test_cross_site_logout_as_a_browser_sends_it_changes_nothing(gw):
    """A form on another site: Origin is that site, and the SameSite=Lax
    session cookie is not sent."""
    s = gw.logged_in()
    r = gw.post(LOGOUT, gw.session(), headers={"Origin": "https://evil.example",
                                               "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and SESSION_COOKIE not in set_cookies(r)
    assert gw.get(WHOAMI, s).status_code == 200


# ---- 7. sessions and cookies ------------------------------------------------------

def _cookie_req(gw, value, path="/probe"):
    gw.backend.clear()
    st, _, _ = gw.raw("GET", path, [("Accept", "application/json"), ("Cookie", value)])
    return st, gw.backend.requests()


@pytest.mark.parametrize("fmt", [
    "a=b, __Host-gatehouse=%s", "a=b,__Host-gatehouse=%s", "__Host-gatehouse =%s",
    "__Host-gatehouse\t=%s", "__Host-gatehouse= %s", "x=1;__Host-gatehouse=%s",
    "__Host-gatehouse=%s, a=b", "__HOST-GATEHOUSE=%s", "__host-gatehouse=%s",
    "a=1; __Host-gatehouse-csrf=z, __Host-gatehouse=%s; b=2",
], ids=repr)
def test_session_token_in_any_spelling_never_reaches_the_backend(gw, fmt):
    """The backend must never receive a replayable session token, whatever
    separator or spelling the Cookie header uses (a front proxy may join
    cookie crumbs with ', ')."""
    token = gw.logged_in().cookies.get(SESSION_COOKIE)
    st, recs = _cookie_req(gw, fmt % token)
    assert st in (200, 401), st
    for rec in recs:
        for k, v in rec["headers"]:
            assert token not in v, "session token forwarded in %s: %r" % (k, v)


@pytest.mark.parametrize("fmt", ["__HOST-GATEHOUSE=%s", "__host-gatehouse=%s",
                                 "__Host-Gatehouse=%s", "gatehouse=%s",
                                 "__Secure-gatehouse=%s", "Host-gatehouse=%s"], ids=repr)
def test_tossed_cookie_names_are_not_read_as_the_session(gw, fmt):
    """A sibling host can set a cookie whose name only looks like ours
    (browsers enforce the __Host- prefix as written): it must not sign
    anyone in."""
    token = gw.logged_in().cookies.get(SESSION_COOKIE)
    st, recs = _cookie_req(gw, fmt % token)
    assert st == 401 and recs == [], (st, recs)


def test_two_session_cookies_are_no_session(gw):
    """Cookie tossing: the attacker's session planted next to the victim's.
    With two different values the gateway does not guess."""
    victim = gw.logged_in().cookies.get(SESSION_COOKIE)
    attacker = gw.logged_in().cookies.get(SESSION_COOKIE)
    for value in ("%s=%s; %s=%s" % (SESSION_COOKIE, attacker, SESSION_COOKIE, victim),
                  "%s=%s; %s=%s" % (SESSION_COOKIE, victim, SESSION_COOKIE, attacker)):
        st, recs = _cookie_req(gw, value)
        assert st == 401 and recs == [], (st, recs)
    # the same value twice is one session
    st, _ = _cookie_req(gw, "%s=%s; %s=%s" % (SESSION_COOKIE, victim, SESSION_COOKIE, victim))
    assert st == 200


@pytest.mark.parametrize("value", [
    SESSION_COOKIE + "=" + "A" * 43,                       # well-formed, unknown
    SESSION_COOKIE + "=" + "A" * 42 + "B",                  # non-canonical base64url
    SESSION_COOKIE + "=" + "A" * 4000,                      # long
    SESSION_COOKIE + "=" + "\x7f\x01\x02" * 14 + "x",       # control bytes
    SESSION_COOKIE + "=" + "é" * 21 + "x",                  # non-ASCII
    SESSION_COOKIE + "=",                                   # empty
    SESSION_COOKIE,                                         # no '='
    "; ".join("c%d=%d" % (i, i) for i in range(3000)),      # many cookies
    "; ".join([SESSION_COOKIE + "=" + "A" * 43] * 500),     # many of ours
    SESSION_COOKIE + "=" + "%41" * 43,                      # percent-encoded
    SESSION_COOKIE + '="' + "A" * 43 + '"',                 # quoted
], ids=["unknown", "non-canonical", "long", "control", "non-ascii", "empty", "no equals",
        "3000 cookies", "500 of ours", "percent-encoded", "quoted"])
def test_malformed_session_cookie_is_no_session(gw, value):
    st, recs = _cookie_req(gw, value.encode("utf-8").decode("latin-1"))
    assert st in (400, 401), st
    assert recs == []
    assert gw.get(HEALTHZ).status_code == 200


def test_session_cookie_is_host_only_and_prefixed(gw):
    s, r = gw.login()
    value, attrs = set_cookies(r)[SESSION_COOKIE]
    assert "domain" not in attrs and attrs.get("path") == "/" and attrs.get("secure")
    assert attrs.get("httponly") and attrs.get("samesite", "").lower() in ("lax", "strict")


def test_fixated_cookie_is_replaced_at_login(gw):
    """The attacker's own, valid session planted in the victim's browser is
    replaced (never kept) when the victim signs in."""
    attacker = gw.logged_in().cookies.get(SESSION_COOKIE)
    victim = gw.session()
    victim.cookies.set(SESSION_COOKIE, attacker, domain="127.0.0.1", path="/")
    s, r = gw.login(s=victim)
    assert r.status_code == 303
    fresh = set_cookies(r)[SESSION_COOKIE][0]
    assert fresh and fresh != attacker
    probe = gw.session()
    probe.cookies.set(SESSION_COOKIE, attacker, domain="127.0.0.1", path="/")
    assert gw.get(WHOAMI, probe).status_code == 401, "the planted session lives on"


def test_logged_out_session_replayed_is_refused(gw):
    s = gw.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    assert gw.post(LOGOUT, s).status_code == 303
    st, recs = _cookie_req(gw, "%s=%s" % (SESSION_COOKIE, token))
    assert st == 401 and recs == []


def test_cookie_replayed_on_another_server_block_gets_no_more(tmp_path_factory):
    """Two server blocks share one store: the gateway's and other.example on
    a second port, whose app admits only the role admin. Browsers never send
    the host-only __Host- cookie to the other host; a copied cookie is the
    same session there and opens only what that block's app grants the
    user (a member: nothing), and revoking it (disable) ends it on both."""
    base = str(tmp_path_factory.mktemp("advtwo"))
    port2 = free_port()
    data = os.path.join(base, "data")
    other = ("server { listen 127.0.0.1:%d ssl; server_name other.example; "
             "ssl_certificate %s/tls/gateway.crt; ssl_certificate_key %s/tls/gateway.key; "
             "gatehouse on; gatehouse_hsts on; "
             "location / { gatehouse_app b-app; proxy_pass http://demo_backend; } }"
             % (port2, data, data))
    g = Gateway(base, http_directives=[other])
    try:
        g.start()
        policy = os.path.join(base, "two.yaml")
        with open(policy, "w") as f:
            f.write("version: 1\nroles: [admin]\napps:\n"
                    "  demo:\n    tenants: [demo]\n    rules:\n"
                    "      - {name: staff, effect: allow, roles: [member, gatehouse-admin]}\n"
                    "  b-app:\n    tenants: [demo]\n    rules:\n"
                    "      - {name: admins, effect: allow, roles: [admin]}\n")
        p = g.cli("policy", "apply", policy)
        assert p.returncode == 0, p.stderr
        g.add_user("twice@example.com", PW, roles="member")
        token = g.logged_in("twice@example.com", PW).cookies.get(SESSION_COOKIE)

        def status(port, path, host="127.0.0.1"):
            import http.client
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                            context=ssl.create_default_context(cafile=g.cert))
            try:
                c.request("GET", path, headers={"Host": host, "Accept": "application/json",
                                                "Cookie": "%s=%s" % (SESSION_COOKIE, token)})
                return c.getresponse().status
            finally:
                c.close()

        g.backend.clear()
        assert status(g.port, "/a") == 200
        assert status(port2, "/b", "other.example") == 403
        assert [r["path"] for r in g.backend.requests()] == ["/a"]
        p = g.cli("user", "disable", "--email", "twice@example.com")
        assert p.returncode == 0, p.stderr
        assert status(g.port, "/a") == 401
        assert status(port2, WHOAMI, "other.example") == 401
        assert [r["path"] for r in g.backend.requests()] == ["/a"]
    finally:
        g.finish()


# ---- 8. the client address chain from a trusted proxy ----------------------------

XFF_BAD = [", 127.0.0.2", ",127.0.0.2", " , 127.0.0.2", "127.0.0.2,", "127.0.0.2, ,127.0.0.3",
           "unknown, 127.0.0.2", "127.0.0.2:80", "[127.0.0.2]", "127.0.0.2 127.0.0.3",
           "0x7f.0.0.2", "127.1", "::ffff:127.0.0.2%eth0", "_, 127.0.0.2"]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    g = start_gateway(tmp_path_factory.mktemp("advxff"), http_directives=[
        "gatehouse_trusted_proxies  127.0.0.0/8;"])
    yield g
    g.finish()


@pytest.mark.parametrize("xff", XFF_BAD, ids=repr)
def test_unreadable_forwarded_chain_from_a_trusted_proxy_is_refused(proxied, xff):
    s = proxied.logged_in()
    proxied.backend.clear()
    st, _, body = proxied.raw("GET", "/xff", [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, s.cookies.get(SESSION_COOKIE))),
        ("Accept", "application/json"), ("X-Forwarded-For", xff)])
    assert st == 400 and b"bad_forwarded_for" in body, (st, body[:200])
    assert proxied.backend.requests() == []


# ---- 9. limits: sizes and slow clients ----------------------------------------------

def _tls(gw):
    ctx = gw.ssl_context()
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def _send_tolerant(gw, req, quiet=1.0):
    """Like gw.exchange, but nginx may answer and close while the request
    is still being sent (that is the point): keep what came back."""
    out = b""
    sk = _tls(gw)
    try:
        try:
            sk.sendall(req)
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        sk.settimeout(quiet)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sk.recv(65536)
            except (socket.timeout, TimeoutError, ConnectionError, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            out += chunk
    finally:
        sk.close()
    return out


@pytest.mark.parametrize("what,req", [
    ("huge header", b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"),
    ("huge cookie", b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a=" + b"b" * 70000 + b"\r\n\r\n"),
    ("huge request line", b"GET /" + b"p" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ("many headers", b"GET /many HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"),
    ("many cookie lines", b"GET /many HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     + b"".join(b"Cookie: c%d=v\r\n" % i for i in range(3000)) + b"\r\n"),
    ("huge body", b"POST /body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n"
     + b"x" * 100000),
    ("huge login body", b"POST " + LOGIN.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 50000000\r\n\r\n"
     + b"a" * 100000),
    ("huge chunked login", b"POST " + LOGIN.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"10000\r\n" + b"a" * 0x10000 + b"\r\n" + b"10000\r\n" + b"a" * 0x10000 + b"\r\n"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_oversized_input_is_refused_not_crashed(gw, what, req):
    gw.backend.clear()
    out = _send_tolerant(gw, req)
    st = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]
    assert (st[:1] and 400 <= st[0] < 500) or out == b"", (what, out[:200])
    assert gw.backend.requests() == []
    assert gw.get(HEALTHZ).status_code == 200


SLOW = 3          # client_header_timeout / client_body_timeout for the test


@pytest.fixture(scope="module")
def slowgw(tmp_path_factory):
    g = start_gateway(tmp_path_factory.mktemp("advslow"), http_directives=[
        "client_header_timeout %ds;" % SLOW, "client_body_timeout %ds;" % SLOW,
        "send_timeout %ds;" % SLOW])
    yield g
    g.finish()


@pytest.mark.parametrize("phase", ["headers", "body", "login body", "tls handshake"])
def test_slow_client_is_cut_off_and_others_are_served(slowgw, phase):
    """Slowloris: clients that trickle (or stop) are closed after the
    configured timeout, and the gateway keeps serving others meanwhile."""
    gw = slowgw
    socks = []
    try:
        for _ in range(20):
            if phase == "tls handshake":
                sk = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
                sk.sendall(b"\x16\x03\x01")          # a TLS record header, then silence
            else:
                sk = _tls(gw)
                if phase == "headers":
                    sk.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
                elif phase == "body":
                    sk.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nab")
                else:
                    sk.sendall(b"POST " + LOGIN.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Type: application/x-www-form-urlencoded\r\n"
                               b"Content-Length: 1000\r\n\r\nusername=")
            socks.append(sk)
        # others are served while those hang
        t0 = time.monotonic()
        assert gw.get(HEALTHZ).status_code == 200
        assert time.monotonic() - t0 < 2
        # header trickles are cut at the total header timeout, silent ones
        # at the read timeouts
        deadline = time.monotonic() + SLOW * 4
        open_ = list(socks)
        while open_ and time.monotonic() < deadline:
            for sk in list(open_):
                try:
                    if phase == "headers":
                        sk.sendall(b"a")             # trickle: never a whole header
                    sk.settimeout(0.05)
                    data = sk.recv(4096)
                    if data == b"":
                        open_.remove(sk)
                        continue
                except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                    pass
                except (ConnectionError, ssl.SSLError, OSError):
                    open_.remove(sk)
                    continue
            time.sleep(0.2)
        assert not open_, "%d slow connections still open after %ds" % (len(open_), SLOW * 4)
    finally:
        for sk in socks:
            try:
                sk.close()
            except OSError:
                pass
    assert gw.get(HEALTHZ).status_code == 200
    r = gw.get("/after-slow", headers=BROWSER)
    assert r.status_code == 302 and r.headers.get("Strict-Transport-Security") == HSTS


# ---- 10. password rules that compare case-insensitively ---------------------------

@pytest.mark.parametrize("name,password", [
    ("".join(chr(0x13A0 + i) for i in range(16)), "".join(chr(0xAB70 + i) for i in range(16))),
    ("".join(chr(0xAB70 + i) for i in range(16)), "".join(chr(0x13A0 + i) for i in range(16))),
], ids=["capital name, small password", "small name, capital password"])
def test_password_on_the_name_in_the_other_case_is_refused(gw, name, password):
    """Cherokee letters fold to capitals but capitals back to small ones in
    GLib: the context rule must still see the password is the name."""
    p = gw.cli("user", "add", "--tenant", "demo", "--email",
               "cherokee%s@example.com" % secrets.token_hex(3), "--name", name,
               "--password-stdin", input=password + "\n")
    assert p.returncode != 0 and "contains your name" in p.stderr, (p.returncode, p.stderr)
