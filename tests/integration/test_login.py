"""The login form under attack: failures that look alike, CSRF, hostile
return targets, session fixation, logout and malformed input."""
import os
import re
import secrets
import statistics
import time

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, BROWSER,
                      HEALTHZ, LOGIN, LOGOUT, SESSION_COOKIE, WHOAMI,
                      assert_hsts, input_value, local_location, set_cookies)

GENERIC = "Incorrect email or password."

# These tests fail logins on purpose, many times over, to prove other
# properties; the login throttle (tested in test_password_policy.py) is
# set as far out of their way as it goes.
NO_THROTTLE = ["gatehouse_login_throttle failures=100 lockout=100 "
               "address=off;"]
GATEWAY_OPTIONS = {"http_directives": NO_THROTTLE}
USER_PW = "user password 123"
DISABLED_PW = "disabled password 123"


@pytest.fixture(scope="module")
def users(gateway):
    gateway.add_user("user@example.com", USER_PW, roles="member")
    gateway.add_user("disabled@example.com", DISABLED_PW, roles="member")
    gateway.cli("user", "disable", "--email", "disabled@example.com")
    return gateway


def no_session_cookie(r):
    assert SESSION_COOKIE not in set_cookies(r), set_cookies(r)["_all"]


def _normalise(page):
    """The login page with the per-browser csrf token and the echoed
    username blanked out."""
    page = re.sub(r'(name="csrf" value=")[^"]*"', r'\1CSRF"', page)
    page = re.sub(r'(name="username"[^>]*value=")[^"]*"', r'\1USER"', page)
    return page


# ---- 4. failures look and take alike -----------------------------------------

def _post_fail(gw, s, csrf, email, password):
    r = gw.post(LOGIN, s, data={"username": email, "password": password,
                                "csrf": csrf, "rd": "/"})
    return r


def test_login_failures_are_indistinguishable(users):
    gw = users
    cases = {
        "wrong password": (ADMIN_EMAIL, "wrong password"),
        "unknown user": ("nobody@example.com", "wrong password"),
        "disabled user": ("disabled@example.com", DISABLED_PW),
        "not an email": ("not-an-email", "x"),
        "empty password": (ADMIN_EMAIL, ""),
    }
    bodies = {}
    for what, (email, pw) in cases.items():
        s = gw.session()
        _, csrf = gw.login_page(s)
        r = _post_fail(gw, s, csrf, email, pw)
        assert r.status_code == 401, (what, r.status_code, r.text[:300])
        no_session_cookie(r)
        assert GENERIC in r.text, what
        assert input_value(r.text, "csrf"), what
        assert r.headers["Content-Type"].startswith("text/html")
        bodies[what] = _normalise(r.text)
    ref = bodies["wrong password"]
    for what, body in bodies.items():
        assert body == ref, "%s differs from wrong password" % what
    for word in ("disabled", "unknown", "not found", "no such"):
        assert word not in ref.lower()


def test_disabled_user_cannot_log_in_but_enabled_user_can(users):
    gw = users
    s, r = gw.login(email="user@example.com", password=USER_PW)
    assert r.status_code == 303
    s, r = gw.login(email="disabled@example.com", password=DISABLED_PW)
    assert r.status_code == 401
    no_session_cookie(r)


def test_unknown_user_takes_as_long_as_wrong_password(make_gateway):
    """Verification against a dummy hash: with Argon2id made expensive
    enough to dominate a request, an unknown user is not answered much
    faster than a wrong password (or a disabled account)."""
    gw = make_gateway(argon2_passes=3, argon2_memory_mib=64,
                      http_directives=NO_THROTTLE)
    gw.add_user("off@example.com", DISABLED_PW, roles="member")
    gw.cli("user", "disable", "--email", "off@example.com")
    s = gw.session()
    _, csrf = gw.login_page(s)
    cases = {"wrong": (ADMIN_EMAIL, "wrong password"),
             "unknown": ("nobody@example.com", "wrong password"),
             "disabled": ("off@example.com", DISABLED_PW)}
    times = {k: [] for k in cases}
    _post_fail(gw, s, csrf, ADMIN_EMAIL, "warm up")
    deadline = time.monotonic() + 30
    for _ in range(7):
        for k, (email, pw) in cases.items():
            t0 = time.perf_counter()
            r = _post_fail(gw, s, csrf, email, pw)
            times[k].append(time.perf_counter() - t0)
            assert r.status_code == 401, (k, r.status_code)
        assert time.monotonic() < deadline, "login attempts too slow"
    med = {k: statistics.median(v) for k, v in times.items()}
    # sanity: the hash must dominate, or the comparison says nothing
    assert med["wrong"] > 0.02, med
    assert med["unknown"] > 0.5 * med["wrong"], med
    assert med["disabled"] > 0.5 * med["wrong"], med


# ---- 5. CSRF ---------------------------------------------------------------------

def _good_form(csrf):
    return {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf": csrf,
            "rd": "/"}


def test_csrf_missing_field_is_refused(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    form = _good_form(csrf)
    del form["csrf"]
    r = gateway.post(LOGIN, s, data=form)
    assert r.status_code == 403
    no_session_cookie(r)
    assert gateway.get(WHOAMI, s).status_code == 401


def test_csrf_wrong_field_is_refused(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    for bad in ("", "x", secrets.token_urlsafe(32), csrf[:-1],
                csrf[:-1] + ("A" if csrf[-1] != "A" else "B"), csrf + "A"):
        r = gateway.post(LOGIN, s, data=dict(_good_form(csrf), csrf=bad))
        assert r.status_code == 403, (bad, r.status_code)
        no_session_cookie(r)
    assert gateway.get(WHOAMI, s).status_code == 401


def test_csrf_without_cookie_is_refused(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    s.cookies.clear()
    r = gateway.post(LOGIN, s, data=_good_form(csrf))
    assert r.status_code == 403
    no_session_cookie(r)
    # a token of another browser is no good either
    s2 = gateway.session()
    gateway.login_page(s2)
    r = gateway.post(LOGIN, s2, data=_good_form(csrf))
    assert r.status_code == 403
    no_session_cookie(r)


def test_csrf_cross_origin_post_is_refused(gateway):
    for origin in ("https://evil.example", "null",
                   "http://127.0.0.1:%d" % gateway.port,
                   "https://127.0.0.1:%d.evil.example" % gateway.port,
                   "https://127.0.0.1:%d" % (gateway.port + 1)):
        s = gateway.session()
        _, csrf = gateway.login_page(s)
        r = gateway.post(LOGIN, s, data=_good_form(csrf),
                         headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.status_code)
        no_session_cookie(r)
    # control: our own origin is fine
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    r = gateway.post(LOGIN, s, data=_good_form(csrf),
                     headers={"Origin": gateway.origin})
    assert r.status_code == 303


# ---- 6. hostile return targets ---------------------------------------------------

HOSTILE_RD = [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "https://evil.example",
    "https://evil.example/",
    "HTTPS://EVIL.EXAMPLE/",
    "http://evil.example",
    "https://127.0.0.1@evil.example/",
    "/\\evil.example",
    "\\\\evil",
    "\\/evil.example",
    "http:evil",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil",
    "/%2F%2Fevil",
    "/%2f%2fevil",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/\tevil.example",
    "/\t/evil.example",
    "/x\r\nLocation: https://evil.example",
    "/\nevil.example",
    "/x\rSet-Cookie: a=b",
    " //evil.example",
    "/x/../../evil.example",
    "evil.example",
    "/" + "a" * 2048,
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("rd", HOSTILE_RD, ids=lambda v: repr(v)[:40])
def test_hostile_rd_falls_back_to_root(gateway, rd):
    # through the query string of the login page...
    s = gateway.session()
    page, csrf = gateway.login_page(s, rd=rd)
    assert "evil" not in (input_value(page.text, "rd") or "")
    # ...and posted straight in the form
    r = gateway.post(LOGIN, s, data={"username": ADMIN_EMAIL,
                                     "password": ADMIN_PASSWORD,
                                     "csrf": csrf, "rd": rd})
    assert r.status_code == 303, (r.status_code, r.text[:200])
    loc = r.headers["Location"]
    assert local_location(r, gateway.port) == "/", loc
    assert "evil" not in loc
    # and the session works: the fallback is a login, not an error
    assert gateway.get(WHOAMI, s).status_code == 200


@pytest.mark.parametrize("rd", ["/", "/somewhere?x=1", "/a/b?c=d&e=f#frag",
                                "/caf%C3%A9", "/x?next=//evil.example"])
def test_safe_rd_is_kept(gateway, rd):
    s, r = gateway.login(rd=rd)
    assert r.status_code == 303
    assert r.headers["Location"] == rd


# ---- 9. session fixation --------------------------------------------------------

def test_planted_cookie_never_becomes_a_session(gateway):
    planted = secrets.token_urlsafe(32)
    assert len(planted) == 43
    s = gateway.session()
    s.cookies.set(SESSION_COOKIE, planted, domain="127.0.0.1", path="/",
                  secure=True)
    s, r = gateway.login(s)
    assert r.status_code == 303
    issued = set_cookies(r)[SESSION_COOKIE][0]
    assert issued != planted
    # the new one works, the planted one does not
    s2 = gateway.session()
    s2.cookies.set(SESSION_COOKIE, issued, domain="127.0.0.1", path="/")
    assert gateway.get(WHOAMI, s2).status_code == 200
    s3 = gateway.session()
    s3.cookies.set(SESSION_COOKIE, planted, domain="127.0.0.1", path="/")
    assert gateway.get(WHOAMI, s3).status_code == 401
    assert gateway.get("/after-fixation", s3, headers=API).status_code == 401


def test_login_over_a_live_session_replaces_it(users):
    """An attacker's own valid session planted in a victim's browser: the
    victim's login yields a new id and the old one dies."""
    gw = users
    attacker = gw.logged_in("user@example.com", USER_PW)
    old = attacker.cookies.get(SESSION_COOKIE)
    victim = gw.session()
    victim.cookies.set(SESSION_COOKIE, old, domain="127.0.0.1", path="/")
    victim, r = gw.login(victim)
    assert r.status_code == 303
    new = set_cookies(r)[SESSION_COOKIE][0]
    assert new != old
    assert gw.get(WHOAMI, victim).json()["email"] == ADMIN_EMAIL
    replay = gw.session()
    replay.cookies.set(SESSION_COOKIE, old, domain="127.0.0.1", path="/")
    assert gw.get(WHOAMI, replay).status_code == 401


# ---- 11. logout -----------------------------------------------------------------

def test_logout_clears_and_kills_the_session(gateway):
    s = gateway.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    assert gateway.get(WHOAMI, s).status_code == 200
    r = gateway.post(LOGOUT, s)
    assert r.status_code == 303
    assert local_location(r, gateway.port) == LOGIN
    value, attrs = set_cookies(r)[SESSION_COOKIE]
    assert value == ""
    assert attrs.get("max-age") == "0"
    assert attrs.get("path") == "/" and attrs.get("secure") is True
    assert s.cookies.get(SESSION_COOKIE) is None
    # the old value, replayed by hand, is dead server-side
    replay = gateway.session()
    replay.cookies.set(SESSION_COOKIE, token, domain="127.0.0.1", path="/")
    assert gateway.get(WHOAMI, replay).status_code == 401
    assert gateway.get("/after-logout", replay, headers=API).status_code == 401
    r = gateway.get("/after-logout", replay, headers=BROWSER)
    assert r.status_code == 302


def test_logout_needs_post(gateway):
    s = gateway.logged_in()
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        r = s.request(method, gateway.url(LOGOUT), allow_redirects=False,
                      timeout=10)
        assert r.status_code == 405, (method, r.status_code)
    assert gateway.get(WHOAMI, s).status_code == 200, \
        "a non-POST logout must not end the session"


def test_cross_origin_logout_is_refused(gateway):
    s = gateway.logged_in()
    r = gateway.post(LOGOUT, s, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert SESSION_COOKIE not in set_cookies(r)
    assert gateway.get(WHOAMI, s).status_code == 200


def test_logout_without_session_is_harmless(gateway):
    r = gateway.post(LOGOUT)
    assert r.status_code == 303
    assert local_location(r, gateway.port) == LOGIN


# ---- 17. bad input never crashes the gateway ----------------------------------

def _healthy(gw):
    r = gw.get(HEALTHZ)
    assert r.status_code == 200, "gateway unhealthy after bad input"


def test_oversized_login_body_is_413(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    big = "username=%s&password=%s&csrf=%s&pad=%s" % (
        ADMIN_EMAIL, "x", csrf, "A" * 100 * 1024)
    r = gateway.post(LOGIN, s, data=big, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert_hsts(r)
    no_session_cookie(r)

    def chunks():
        yield ("username=%s&password=%s&csrf=%s&pad=" % (
            ADMIN_EMAIL, ADMIN_PASSWORD, csrf)).encode()
        for _ in range(25):
            yield b"B" * 4096

    r = gateway.post(LOGIN, s, data=chunks(), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413, "chunked body of 100 KB"
    no_session_cookie(r)
    _healthy(gateway)


def test_non_form_content_type_is_415(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    for ctype, body in (
            ("application/json", '{"username":"%s","password":"%s","csrf":"%s"}'
             % (ADMIN_EMAIL, ADMIN_PASSWORD, csrf)),
            ("multipart/form-data; boundary=x", "--x--"),
            ("text/plain", "username=%s&password=%s&csrf=%s"
             % (ADMIN_EMAIL, ADMIN_PASSWORD, csrf))):
        r = gateway.post(LOGIN, s, data=body, headers={
            "Content-Type": ctype, "Connection": "close"})
        assert r.status_code == 415, (ctype, r.status_code)
        no_session_cookie(r)
    r = gateway.post(LOGIN, s, data=b"", headers={"Connection": "close"})
    assert r.status_code == 415, "no content type"
    _healthy(gateway)


@pytest.mark.parametrize("ctype,ok", [
    ("application/x-www-form-urlencoded", True),
    ("application/x-www-form-urlencoded; charset=UTF-8", True),
    ("Application/X-WWW-Form-Urlencoded", True),
    ("application/x-www-form-urlencodedX", False),
    ("application/x-www-form-urlencoded-json", False),
    ("application/x-www-form-urlencoded+xml", False),
])
def test_form_content_type_is_matched_exactly(gateway, ctype, ok):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    body = "username=%s&password=%s&csrf=%s" % (
        "admin%40example.com", ADMIN_PASSWORD.replace(" ", "+"), csrf)
    r = gateway.post(LOGIN, s, data=body, headers={
        "Content-Type": ctype, "Connection": "close"})
    assert r.status_code == (303 if ok else 415), (ctype, r.status_code)


@pytest.mark.parametrize("tamper", [
    "username=%zz",
    "username=admin%40example.com%",
    "username=admin%40example.com%4",
    "password=%G0",
    "password=abc%",
    "username=%00",
    "password=%00%00",
    "username=%C0%AF",
    "username=&username=" + ADMIN_EMAIL,
])
def test_malformed_form_is_not_a_server_error(gateway, tamper):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    fields = {"username": "admin%40example.com", "password": "wrong",
              "csrf": csrf, "rd": "%2F"}
    k, _, v = tamper.partition("=")
    fields[k] = v
    if tamper.startswith("username=&"):
        body = "%s&password=%s&csrf=%s" % (tamper, "wrong", csrf)
    else:
        body = "&".join("%s=%s" % kv for kv in fields.items())
    r = gateway.post(LOGIN, s, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code in (400, 401), (tamper, r.status_code, r.text[:200])
    no_session_cookie(r)
    _healthy(gateway)


def test_malformed_rd_with_good_credentials_goes_to_root(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    body = "username=%s&password=%s&csrf=%s&rd=%%2" % (
        "admin%40example.com", ADMIN_PASSWORD.replace(" ", "+"), csrf)
    r = gateway.post(LOGIN, s, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code in (303, 400), r.status_code
    if r.status_code == 303:
        assert local_location(r, gateway.port) == "/"


def test_garbage_session_cookies_are_401(gateway, backend):
    rnd = os.urandom(64)
    raw = bytes(b for b in rnd if b not in b"\r\n\0;")[:43]
    garbage = [
        raw.decode("latin-1"),
        "!" * 43,
        "*" * 42 + "=",
        "A" * 42,
        "A" * 44,
        "A" * 43 + " ",
        "=" * 43,
        "%41" * 43,
        "A" * 6000,
    ]
    for g in garbage:
        status, headers, body = gateway.raw("GET", "/x", [
            ("Accept", "application/json"),
            ("Cookie", "%s=%s" % (SESSION_COOKIE, g))])
        assert status == 401, (g[:50], status, body[:200])
    # 10 KB: over nginx's header line buffer — refused by nginx itself
    status, headers, body = gateway.raw("GET", "/x", [
        ("Accept", "application/json"),
        ("Cookie", "%s=%s" % (SESSION_COOKIE, "A" * 10240))])
    assert status in (400, 401), status
    assert ("Strict-Transport-Security",
            "max-age=31536000; includeSubDomains") in headers
    # several cookies of our name: none of them garbage-authenticates
    status, _, _ = gateway.raw("GET", "/x", [
        ("Accept", "application/json"),
        ("Cookie", "%s=%s; %s=%s" % (SESSION_COOKIE, "!" * 43, SESSION_COOKIE,
                                    "B" * 43))])
    assert status == 401
    assert backend.requests() == []
    _healthy(gateway)


SMUGGLED = b"GET /.gatehouse/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("method,path,ctype,extra", [
    ("POST", LOGIN, "text/plain", ""),                       # 415
    ("PUT", LOGIN, "application/x-www-form-urlencoded", ""),  # 405
    ("DELETE", LOGIN, "text/plain", ""),                      # 405
    ("GET", LOGIN, "text/plain", ""),                         # 200 page
    ("GET", LOGOUT, "text/plain", ""),                        # 405
    ("POST", LOGOUT, "text/plain", "Origin: https://evil.example\r\n"),  # 403
    ("POST", LOGOUT, "text/plain", ""),                       # 303
    ("POST", "/.gatehouse/nope", "text/plain", ""),           # 404
    ("POST", WHOAMI, "text/plain", ""),                       # 401
    ("POST", HEALTHZ, "text/plain", ""),                      # 200
    ("POST", "/app", "text/plain", ""),                       # 401
])
def test_refused_request_body_is_never_read_as_a_request(gateway, method,
                                                          path, ctype, extra):
    """A body the gateway does not want must be consumed (or the connection
    closed), never parsed as the next request on the connection: that is
    request smuggling behind any shared front proxy."""
    head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Type: %s\r\n"
            "Content-Length: %d\r\n\r\n" % (method, path, gateway.port, extra,
                                            ctype, len(SMUGGLED)))
    out = gateway.exchange(head.encode() + SMUGGLED)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", out)
    assert len(statuses) == 1, \
        "the body was answered as a request of its own: %r" % statuses


def test_oversized_form_body_is_never_read_as_a_request(gateway):
    pad = b"a=" + b"x" * 20000
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
            "application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % (LOGIN, gateway.port, len(pad) + len(SMUGGLED)))
    out = gateway.exchange(head.encode() + pad + SMUGGLED)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", out)
    assert statuses[:1] == [b"413"], statuses
    assert len(statuses) == 1, \
        "the rest of a refused body was parsed as requests: %r" % statuses


def test_email_is_case_insensitive_at_login(gateway):
    s, r = gateway.login(email=ADMIN_EMAIL.upper())
    assert r.status_code == 303
    assert gateway.get(WHOAMI, s).json()["email"] == ADMIN_EMAIL


@pytest.mark.parametrize("email,password", [
    (ADMIN_EMAIL, "x" * 1025),
    (ADMIN_EMAIL, ADMIN_PASSWORD + "\0"),
    (ADMIN_EMAIL, ADMIN_PASSWORD + " "),
    ("a" * 700 + "@example.com", "x"),
    (ADMIN_EMAIL + "\0", ADMIN_PASSWORD),
    ("\u00e4dmin@example.com", ADMIN_PASSWORD),
])
def test_odd_credentials_are_plain_failures(gateway, email, password):
    s, r = gateway.login(email=email, password=password)
    assert r.status_code == 401, (r.status_code, r.text[:200])
    no_session_cookie(r)
    assert GENERIC in r.text
