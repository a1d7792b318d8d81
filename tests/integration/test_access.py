"""Access without and with a session: 302/401, the login page, a successful
login and what the backend then sees, whoami and healthz."""
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, BROWSER, CSRF_COOKIE,
                      HEALTHZ, HSTS, LOGIN,
                      SESSION_COOKIE, WHOAMI, input_value, local_location,
                      set_cookies)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def identity_headers(record):
    """{lower-case name: [values]} of the X-Gatehouse-* headers a backend
    request carried."""
    out = {}
    for k, v in record["headers"]:
        if k.lower().startswith("x-gatehouse-"):
            out.setdefault(k.lower(), []).append(v)
    return out


# ---- 1. no session ----------------------------------------------------------

def test_no_session_browser_is_redirected_to_login_with_rd(gateway, backend):
    r = gateway.get("/app/page?x=1&y=two", headers=BROWSER)
    assert r.status_code == 302
    loc = r.headers["Location"]
    parts = urlsplit(loc)
    assert parts.scheme == "" and parts.netloc == "", loc
    assert parts.path == LOGIN
    q = parse_qs(parts.query, keep_blank_values=True)
    assert list(q) == ["rd"], loc
    # the whole original target, query included, rides in one parameter
    assert q["rd"] == ["/app/page?x=1&y=two"], loc
    assert "&y=" not in parts.query, "the original query leaked unencoded: %r" % loc
    assert backend.requests() == []


def test_no_session_api_client_gets_401_json(gateway, backend):
    for headers in (API, {"Accept": "*/*"}, {}):
        r = gateway.get("/api/things", headers=headers)
        assert r.status_code == 401, (headers, r.status_code)
        assert r.headers["Content-Type"].startswith("application/json")
        body = r.json()
        assert body["error"] == "unauthenticated"
        assert "Location" not in r.headers
    r = gateway.post("/api/things", headers=API, data=b"{}")
    assert r.status_code == 401
    assert backend.requests() == []


def test_browser_flow_returns_to_the_original_page(gateway, backend):
    s = gateway.session()
    r = gateway.get("/deep/link?q=a%20b&n=1", s, headers=BROWSER)
    assert r.status_code == 302
    login_url = r.headers["Location"]
    page = gateway.get(login_url, s, headers=BROWSER)
    assert page.status_code == 200
    rd = input_value(page.text, "rd")
    assert rd == "/deep/link?q=a%20b&n=1"
    r = gateway.post(LOGIN, s, data={
        "username": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
        "csrf": input_value(page.text, "csrf"), "rd": rd})
    assert r.status_code == 303
    assert local_location(r, gateway.port) == "/deep/link?q=a%20b&n=1"
    r = gateway.get("/deep/link?q=a%20b&n=1", s, headers=BROWSER)
    assert r.status_code == 200
    assert [x["path"] for x in backend.requests()] == ["/deep/link?q=a%20b&n=1"]


# ---- 2. the login page --------------------------------------------------------

def test_login_page_form_and_csrf_cookie(gateway):
    s = gateway.session()
    r = gateway.get(LOGIN, s, headers=BROWSER)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert re.search(r'<form\b[^>]*method="post"', page, re.I)
    for name in ("username", "password", "rd"):
        assert input_value(page, name) is not None, "no input %s" % name
    m = re.search(r'<input type="hidden" name="csrf" value="([^"]*)">', page)
    assert m, "no <input type=\"hidden\" name=\"csrf\" value=\"...\">"
    assert TOKEN.match(m.group(1)), m.group(1)
    pw = re.search(r'<input\b[^>]*name="password"[^>]*>', page).group(0)
    assert 'type="password"' in pw

    cookies = set_cookies(r)
    assert CSRF_COOKIE in cookies, cookies["_all"]
    value, attrs = cookies[CSRF_COOKIE]
    assert value == m.group(1), "double-submit: cookie and field must agree"
    assert attrs.get("secure") is True
    assert attrs.get("httponly") is True
    assert str(attrs.get("samesite")).lower() == "lax"
    assert attrs.get("path") == "/"
    assert "domain" not in attrs
    assert SESSION_COOKIE not in cookies

    # a second view with the cookie keeps the same token (no new cookie)
    r2 = gateway.get(LOGIN, s, headers=BROWSER)
    assert input_value(r2.text, "csrf") == value
    assert CSRF_COOKIE not in set_cookies(r2)


def test_login_page_has_no_external_assets(gateway):
    page = gateway.get(LOGIN, headers=BROWSER).text
    for m in re.finditer(r'\b(?:src|href|action)\s*=\s*"([^"]*)"', page, re.I):
        url = m.group(1)
        assert not re.match(r"(?i)\s*(https?:)?//", url), url
    assert not re.search(r"<script\b", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|url\(", page, re.I)


def test_login_page_escapes_reflected_values(gateway):
    s = gateway.session()
    evil = '/x"><script>alert(1)</script>'
    r = gateway.get(LOGIN, s, params={"rd": evil}, headers=BROWSER)
    assert r.status_code == 200
    assert "<script" not in r.text.lower()
    csrf = input_value(r.text, "csrf")
    # a failed login echoes the username back into the form
    r = gateway.post(LOGIN, s, data={
        "username": '"><script>alert(2)</script>@example.com',
        "password": "nope", "csrf": csrf, "rd": evil})
    assert r.status_code == 401
    assert "<script" not in r.text.lower()
    assert input_value(r.text, "username") == '"><script>alert(2)</script>@example.com'


# ---- 3. login success and the identity the backend sees -----------------------

def test_login_success_sets_session_and_forwards_identity(gateway, backend):
    s, r = gateway.login(rd="/somewhere?x=1")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert local_location(r, gateway.port) == "/somewhere?x=1"
    cookies = set_cookies(r)
    assert SESSION_COOKIE in cookies, cookies["_all"]
    value, attrs = cookies[SESSION_COOKIE]
    assert TOKEN.match(value), value
    raw = [c for c in cookies["_all"] if c.startswith(SESSION_COOKIE + "=")][0]
    assert raw == "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax" % (
        SESSION_COOKIE, value), raw

    ids = []
    for _ in range(2):
        r = gateway.get("/somewhere?x=1", s, headers=API)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert r.json()["ok"] is True
    recs = backend.requests()
    assert [x["path"] for x in recs] == ["/somewhere?x=1"] * 2
    for rec in recs:
        idh = identity_headers(rec)
        assert HEX32.match(idh["x-gatehouse-user"][0])
        assert idh["x-gatehouse-email"] == [ADMIN_EMAIL]
        assert idh["x-gatehouse-tenant"] == ["demo"]
        assert idh["x-gatehouse-roles"] == ["gatehouse-admin,manager"]
        assert idh["x-gatehouse-auth"] == ["pwd"]
        assert len(idh["x-gatehouse-request-id"]) == 1
        assert HEX32.match(idh["x-gatehouse-request-id"][0])
        for name, vals in idh.items():
            assert len(vals) == 1, (name, vals)
        ids.append(idh["x-gatehouse-request-id"][0])
    assert ids[0] != ids[1], "request id must differ per request"
    assert identity_headers(recs[0])["x-gatehouse-user"] == \
        identity_headers(recs[1])["x-gatehouse-user"]


# ---- 7. forged identity headers -----------------------------------------------

FORGED = [
    ("X-Gatehouse-User", "attacker"),
    ("x-gatehouse-user", "attacker"),
    ("X-Gatehouse-User", "attacker2"),
    ("X-GATEHOUSE-EMAIL", "attacker@evil.example"),
    ("X_Gatehouse_User", "attacker"),
    ("X-Gatehouse-Tenant", "attacker-tenant"),
    ("X-Gatehouse-Roles", "attacker,gatehouse-admin"),
    ("X-Gatehouse-Name", "attacker"),
    ("X-Gatehouse-Auth", "attacker"),
    ("X-Gatehouse-Request-Id", "attacker"),
    ("X-Gatehouse-Assertion", "attacker.jwt.value"),
    ("X-Gatehouse-Anything-Else", "attacker"),
    ("x_gatehouse_roles", "attacker"),
]


def _cookie_header(s):
    return "; ".join("%s=%s" % (c.name, c.value) for c in s.cookies)


def test_forged_identity_headers_never_authenticate(gateway, backend):
    # before login: nothing reaches the backend and nothing is believed
    for path in ("/", "/app"):
        status, _, body = gateway.raw("GET", path, FORGED + [("Accept", "application/json")])
        assert status == 401, (path, status, body)
    status, _, body = gateway.raw("GET", WHOAMI, FORGED)
    assert status == 401, body
    status, _, body = gateway.raw("GET", LOGIN, FORGED + [("Accept", "text/html")])
    assert status == 200
    assert b"attacker" not in body
    assert backend.requests() == []


def test_forged_identity_headers_are_stripped_after_login(gateway, backend):
    s = gateway.logged_in()
    me = gateway.get(WHOAMI, s).json()
    status, _, body = gateway.raw("GET", "/forged?h=1", FORGED + [
        ("Cookie", _cookie_header(s)),
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "http")])
    assert status == 200, body
    status, _, body = gateway.raw("GET", WHOAMI,
                                  FORGED + [("Cookie", _cookie_header(s))])
    assert status == 200
    assert json.loads(body)["user"] == me["user"]
    assert b"attacker" not in body

    recs = backend.requests()
    assert len(recs) == 1, recs
    rec = recs[0]
    for k, v in rec["headers"]:
        assert "attacker" not in v.lower(), (k, v)
        assert "gatehouse" not in k.lower().replace("-", "_") or \
            k.lower().startswith("x-gatehouse-"), (k, v)
    idh = identity_headers(rec)
    assert idh["x-gatehouse-user"] == [me["user"]]
    assert idh["x-gatehouse-email"] == [ADMIN_EMAIL]
    assert idh["x-gatehouse-tenant"] == ["demo"]
    assert idh["x-gatehouse-roles"] == ["gatehouse-admin,manager"]
    # the one assertion is the gateway's own signed JWT, never the forgery
    assert len(idh["x-gatehouse-assertion"]) == 1
    assert idh["x-gatehouse-assertion"][0].count(".") == 2
    assert "attacker" not in idh["x-gatehouse-assertion"][0]
    assert "x-gatehouse-anything-else" not in idh
    # the client's own claims about its address and scheme are replaced
    fwd = [v for k, v in rec["headers"] if k.lower() == "x-forwarded-for"]
    assert fwd == ["127.0.0.1"], fwd
    proto = [v for k, v in rec["headers"] if k.lower() == "x-forwarded-proto"]
    assert proto == ["https"], proto
    assert HEX32.match(idh["x-gatehouse-request-id"][0])


def test_forged_headers_do_not_fill_an_empty_identity_field(gateway, backend):
    """A user without a display name: the gateway has no X-Gatehouse-Name
    to send, and a forged one must not slip into the empty slot."""
    gateway.add_user("noname@example.com", "no name pw 1234", roles="member")
    s = gateway.logged_in("noname@example.com", "no name pw 1234")
    assert gateway.get(WHOAMI, s).json()["name"] == ""
    status, _, body = gateway.raw("GET", "/name-check", FORGED + [
        ("Cookie", _cookie_header(s)),
        ("X-Gatehouse-Name", "Mallory"), ("x-gatehouse-name", "Mallory")])
    assert status == 200, body
    recs = backend.requests()
    assert len(recs) == 1
    idh = identity_headers(recs[0])
    assert idh.get("x-gatehouse-name", [""]) == [""], idh
    assert idh["x-gatehouse-email"] == ["noname@example.com"]
    assert idh["x-gatehouse-roles"] == ["member"]
    for k, v in recs[0]["headers"]:
        assert "attacker" not in v.lower() and "Mallory" not in v, (k, v)


# ---- 13. whoami, 14. healthz ---------------------------------------------------

def test_whoami_without_session_is_401_json(gateway):
    for headers in (API, BROWSER):
        r = gateway.get(WHOAMI, headers=headers)
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"] == "unauthenticated"


def test_whoami_with_session(gateway, backend):
    s = gateway.logged_in()
    r = gateway.get(WHOAMI, s)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    me = r.json()
    assert HEX32.match(me["user"])
    assert me["email"] == ADMIN_EMAIL
    assert me["tenant"] == "demo"
    assert me["roles"] == ["gatehouse-admin", "manager"]
    assert me["auth"] == "pwd"
    assert backend.requests() == [], "whoami must be answered by the gateway"


def test_healthz(gateway, backend):
    r = gateway.get(HEALTHZ)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}
    assert backend.requests() == []


# ---- our cookies stay between the browser and the gateway ---------------------

def _cookies_seen(record):
    return [v for k, v in record["headers"] if k.lower() == "cookie"]


def test_gatehouse_cookies_are_not_forwarded(gateway, backend):
    s = gateway.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    csrf = s.cookies.get(CSRF_COOKIE)
    assert token and csrf
    # only ours: the Cookie header disappears
    r = gateway.get("/only-ours", s, headers=API)
    assert r.status_code == 200
    # ours between the backend's own cookies: theirs pass unchanged
    status, _, _ = gateway.raw("GET", "/mixed", [
        ("Accept", "application/json"),
        ("Cookie", "app=1; %s=%s; %s=%s; other=two"
         % (SESSION_COOKIE, token, CSRF_COOKIE, csrf))])
    assert status == 200
    # two Cookie header lines
    status, _, _ = gateway.raw("GET", "/two-lines", [
        ("Accept", "application/json"), ("Cookie", "app=1"),
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token))])
    assert status == 200
    recs = {r["path"]: r for r in backend.requests()}
    assert _cookies_seen(recs["/only-ours"]) == []
    assert _cookies_seen(recs["/mixed"]) == ["app=1; other=two"]
    assert _cookies_seen(recs["/two-lines"]) == ["app=1"]
    for rec in recs.values():
        for k, v in rec["headers"]:
            assert token not in v and csrf not in v, (rec["path"], k)


def test_session_token_never_reaches_the_backend_under_another_spelling(
        gateway, backend):
    s = gateway.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    for name in ("__HOST-GATEHOUSE", "__host-gatehouse", "__Host-Gatehouse"):
        status, _, _ = gateway.raw("GET", "/spelling", [
            ("Accept", "application/json"),
            ("Cookie", "%s=%s; z=1" % (name, token))])
        assert status in (200, 401), (name, status)
    for rec in backend.requests():
        for k, v in rec["headers"]:
            assert token not in v, "token forwarded in %s: %s" % (k, v)


@pytest.mark.parametrize("pairs", [10, 200, 2500])
def test_cookie_rewrite_with_many_short_cookies(gateway, backend, pairs):
    """Removing our cookie re-joins the others with "; ": input written
    with bare ';' grows. It must neither overflow nor drop a cookie."""
    s = gateway.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    value = "%s=%s;" % (SESSION_COOKIE, token) + ";".join(["a"] * pairs)
    status, _, _ = gateway.raw("GET", "/many-cookies", [
        ("Accept", "application/json"), ("Cookie", value)])
    assert status == 200
    recs = backend.requests()
    assert len(recs) == 1
    seen = _cookies_seen(recs[0])
    assert len(seen) == 1 and token not in seen[0]
    assert [c.strip() for c in seen[0].split(";")] == ["a"] * pairs


# ---- odd request targets and odd identities ------------------------------------

def test_redirect_target_cannot_inject_headers(gateway, backend):
    for target in ("/x%0d%0aSet-Cookie:%20a=b", "/x%0aLocation:%20https://evil.example",
                   "/%ff%fe?q=%00", "/x?rd=https://evil.example"):
        status, headers, _ = gateway.raw("GET", target, [("Accept", "text/html")])
        assert status == 302, (target, status)
        names = [k.lower() for k, _ in headers]
        assert "set-cookie" not in names
        locs = [v for k, v in headers if k.lower() == "location"]
        assert len(locs) == 1 and locs[0].startswith(LOGIN + "?rd="), locs
        assert "\r" not in locs[0] and "\n" not in locs[0]
        assert not re.search(r"[\x00-\x20\x7f-\xff]", locs[0]), locs[0]
    # raw bytes outside ASCII in the request line
    out = gateway.exchange(b"GET /\xff\xfe\x80?q=\xc3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Accept: text/html\r\nConnection: close\r\n\r\n")
    head = out.split(b"\r\n\r\n")[0]
    status = int(re.match(rb"HTTP/1\.1 (\d{3})", head).group(1))
    assert status in (302, 400), head
    for line in head.split(b"\r\n")[1:]:
        assert all(0x20 <= c < 0x7f for c in line), line
    assert backend.requests() == []


def test_absolute_form_request_target_stays_local(gateway, backend):
    status, headers, _ = gateway.raw("GET", "https://evil.example/x?y=1",
                                     [("Accept", "text/html")])
    if status == 302:
        loc = [v for k, v in headers if k.lower() == "location"][0]
        assert loc.startswith(LOGIN + "?rd="), loc
        rd = parse_qs(urlsplit(loc).query)["rd"][0]
        # whatever rd carries, logging in with it must land on this origin
        s, r = gateway.login(rd=rd)
        assert r.status_code == 303
        assert "evil" not in r.headers["Location"]
        local_location(r, gateway.port)
    else:
        assert status in (400, 401), status
    assert backend.requests() == []


def test_very_long_path_redirects_and_falls_back_to_root(gateway, backend):
    path = "/" + "p" * 6000 + "?q=1"
    r = gateway.get(path, headers=BROWSER)
    assert r.status_code == 302
    rd = parse_qs(urlsplit(r.headers["Location"]).query)["rd"][0]
    assert rd == path
    s, r = gateway.login(rd=rd)
    assert r.status_code == 303
    assert local_location(r, gateway.port) == "/"     # over GH_RD_MAX


def test_http10_without_host_is_handled(gateway, backend):
    for req in (b"GET / HTTP/1.0\r\nAccept: text/html\r\n\r\n",
                b"GET /x HTTP/1.0\r\n\r\n",
                b"GET /.gatehouse/login HTTP/1.0\r\n\r\n",
                b"GET /.gatehouse/whoami HTTP/1.0\r\n\r\n",
                b"POST /.gatehouse/logout HTTP/1.0\r\nOrigin: https://evil.example\r\n"
                b"Content-Length: 0\r\n\r\n",
                b"POST /.gatehouse/login HTTP/1.0\r\nContent-Type: "
                b"application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nusername="):
        out = gateway.exchange(req)
        m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
        assert m, (req, out[:200])
        assert int(m.group(1)) < 500, (req, out[:300])
        assert b"Strict-Transport-Security: " + HSTS.encode() in out
    assert backend.requests() == []
    assert gateway.get(HEALTHZ).status_code == 200


def test_many_forged_headers_are_all_stripped(gateway, backend):
    s = gateway.logged_in()
    forged = []
    for i in range(40):
        forged.append(("X-Gatehouse-User", "attacker%d" % i))
        forged.append(("X-Ordinary-%d" % i, "ok%d" % i))
    status, _, body = gateway.raw("GET", "/many-forged",
                                  forged + [("Cookie", _cookie_header(s))])
    assert status == 200, body
    rec = backend.requests()[0]
    idh = identity_headers(rec)
    assert len(idh["x-gatehouse-user"]) == 1
    assert HEX32.match(idh["x-gatehouse-user"][0])
    ordinary = [k for k, _ in rec["headers"] if k.lower().startswith("x-ordinary-")]
    assert len(ordinary) == 40, "other headers must pass untouched"
    for k, v in rec["headers"]:
        assert "attacker" not in v


def test_identity_with_odd_characters_is_encoded_safely(gateway, backend):
    name = 'Zo\u00eb "Q" \\ </script> \U0001F600'
    gateway.add_user("odd@example.com", "odd name pw 123", roles="member",
                     name=name)
    s = gateway.logged_in("odd@example.com", "odd name pw 123")
    r = gateway.get(WHOAMI, s)
    assert r.status_code == 200
    assert r.json()["name"] == name
    assert "</script>" not in r.text or r.headers["Content-Type"].startswith(
        "application/json")
    r = gateway.get("/odd", s, headers=API)
    assert r.status_code == 200
    rec = backend.requests()[0]
    names = [v for k, v in rec["headers"] if k.lower() == "x-gatehouse-name"]
    assert len(names) == 1
    # http.server decodes header bytes as latin-1: undo that to compare
    assert names[0].encode("latin-1").decode("utf-8") == name
