"""The same guarantees over HTTP/2 (curl with nghttp2: requests speaks
only HTTP/1.1): no session -> 302/401, login, forged identity headers
stripped, our cookies kept from the backend, HSTS."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, CSRF_COOKIE, HSTS,
                      LOGIN, SESSION_COOKIE, WHOAMI, input_value)

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl not installed")


def curl(gw, path, headers=(), data=None, tmp=None):
    """One HTTP/2 request; returns (http_version, status, [(k, v)], body)."""
    hfile = os.path.join(tmp, "h")
    bfile = os.path.join(tmp, "b")
    argv = [CURL, "-sS", "--http2", "--max-time", "10", "--noproxy", "*",
            "--cacert", gw.cert, "-D", hfile, "-o", bfile,
            "-w", "%{http_version}"]
    for k, v in headers:
        argv += ["-H", "%s: %s" % (k, v)]
    if data is not None:
        argv += ["--data-raw", data]
    argv.append(gw.url(path))
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy")}
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       env=env)
    assert p.returncode == 0, p.stderr
    with open(hfile, "rb") as f:
        raw = f.read().decode("latin-1")
    with open(bfile, "rb") as f:
        body = f.read().decode("utf-8", "replace")
    lines = raw.split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = [tuple(part.strip() for part in l.split(":", 1))
            for l in lines[1:] if ":" in l]
    return p.stdout.strip(), status, hdrs, body


def hget(hdrs, name):
    return [v for k, v in hdrs if k.lower() == name.lower()]


@pytest.fixture
def h2tmp(tmp_path):
    return str(tmp_path)


def _h2_login(gw, tmp):
    ver, status, hdrs, body = curl(gw, LOGIN, [("Accept", "text/html")],
                                   tmp=tmp)
    assert ver == "2" and status == 200
    csrf = input_value(body, "csrf")
    form = "username=%s&password=%s&csrf=%s&rd=%%2Fh2" % (
        ADMIN_EMAIL.replace("@", "%40"), ADMIN_PASSWORD.replace(" ", "+"), csrf)
    ver, status, hdrs, body = curl(gw, LOGIN, [
        ("Cookie", "%s=%s" % (CSRF_COOKIE, csrf)),
        ("Content-Type", "application/x-www-form-urlencoded")],
        data=form, tmp=tmp)
    assert ver == "2"
    assert status == 303, (status, body[:300])
    assert hget(hdrs, "location") == ["/h2"]
    cookie = [c for c in hget(hdrs, "set-cookie")
              if c.startswith(SESSION_COOKIE + "=")]
    assert len(cookie) == 1
    return cookie[0].split(";")[0].split("=", 1)[1], csrf


def test_h2_no_session(gateway, backend, h2tmp):
    ver, status, hdrs, _ = curl(gateway, "/p?q=1", [("Accept", "text/html")],
                                tmp=h2tmp)
    assert (ver, status) == ("2", 302)
    assert hget(hdrs, "location")[0].startswith(LOGIN + "?rd=")
    assert hget(hdrs, "strict-transport-security") == [HSTS]
    ver, status, hdrs, body = curl(gateway, "/p", list(API.items()), tmp=h2tmp)
    assert (ver, status) == ("2", 401)
    assert '"unauthenticated"' in body
    assert backend.requests() == []


def test_h2_login_and_forged_headers(gateway, backend, h2tmp):
    token, csrf = _h2_login(gateway, h2tmp)
    ver, status, hdrs, body = curl(gateway, "/h2", [
        ("Accept", "application/json"),
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token)),
        ("Cookie", "app=1"),                  # a second crumb
        ("X-Gatehouse-User", "attacker"),
        ("x-gatehouse-email", "attacker@evil.example"),
        ("X-Gatehouse-Assertion", "attacker"),
        ("X-Gatehouse-Roles", "attacker")], tmp=h2tmp)
    assert (ver, status) == ("2", 200), body
    assert hget(hdrs, "strict-transport-security") == [HSTS]
    recs = backend.requests()
    assert len(recs) == 1
    users = [v for k, v in recs[0]["headers"] if k.lower() == "x-gatehouse-user"]
    assert len(users) == 1 and re.match(r"^[0-9a-f]{32}$", users[0])
    for k, v in recs[0]["headers"]:
        assert "attacker" not in v, (k, v)
        assert token not in v, "session token forwarded in %s" % k
    cookies = [v for k, v in recs[0]["headers"] if k.lower() == "cookie"]
    assert cookies == ["app=1"], cookies
    ver, status, _, body = curl(gateway, WHOAMI, [
        ("Cookie", "%s=%s" % (SESSION_COOKIE, token))], tmp=h2tmp)
    assert status == 200 and ADMIN_EMAIL in body
