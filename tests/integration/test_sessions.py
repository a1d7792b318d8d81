"""Session lifetime: idle timeout, absolute lifetime, and `user disable`
taking effect on a running gateway."""
import time

import pytest

from conftest import API, BROWSER, SESSION_COOKIE, WHOAMI

PW = "a user's password 1"


def _ok(gw, s, path="/keepalive"):
    return gw.get(path, s, headers=API).status_code


# ---- 10. idle timeout and absolute lifetime ---------------------------------

@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """A gateway with a 2 s idle timeout and a 6 s absolute lifetime."""
    from conftest import start_gateway
    gw = start_gateway(tmp_path_factory.mktemp("gw-short"), idle="2s",
                       lifetime="6s")
    yield gw
    gw.finish()


def test_idle_session_expires(short):
    s = short.logged_in()
    assert _ok(short, s) == 200
    time.sleep(3.5)
    assert _ok(short, s) == 401
    assert short.get(WHOAMI, s).status_code == 401
    r = short.get("/keepalive", s, headers=BROWSER)
    assert r.status_code == 302


def test_activity_keeps_the_session_alive(short):
    s = short.logged_in()
    t0 = time.monotonic()
    seen = []
    # a request every 0.7 s for 4 s: twice the idle timeout
    while time.monotonic() - t0 < 4.0:
        seen.append(_ok(short, s))
        time.sleep(0.7)
    assert seen and all(code == 200 for code in seen), seen


def test_absolute_lifetime_ends_an_active_session(short):
    s = short.logged_in()
    t0 = time.monotonic()
    codes = []
    while time.monotonic() - t0 < 8.0:
        codes.append((round(time.monotonic() - t0, 1), _ok(short, s)))
        if codes[-1][1] != 200:
            break
        time.sleep(0.7)
    early = [c for t, c in codes if t < 4.5]
    assert early and all(c == 200 for c in early), codes
    assert codes[-1][1] == 401, "still alive past the 6 s lifetime: %r" % codes
    assert codes[-1][0] >= 4.5, codes


# ---- 12. user disable on a running gateway ----------------------------------

def test_user_disable_kills_sessions_and_enable_does_not_revive_them(gateway,
                                                                   backend):
    email = "leaver@example.com"
    gateway.add_user(email, PW, roles="member", name="Lea Ver")
    s = gateway.logged_in(email, PW)
    token = s.cookies.get(SESSION_COOKIE)
    assert gateway.get(WHOAMI, s).json()["email"] == email
    assert _ok(gateway, s, "/before-disable") == 200

    other = gateway.logged_in()         # someone else stays signed in

    gateway.cli("user", "disable", "--email", email)
    assert _ok(gateway, s, "/after-disable") == 401
    assert gateway.get(WHOAMI, s).status_code == 401
    assert _ok(gateway, other, "/other-user") == 200
    s2, r = gateway.login(email=email, password=PW)
    assert r.status_code == 401, "a disabled user must not log in"

    listing = gateway.cli("user", "list").stdout
    assert email in listing

    gateway.cli("user", "enable", "--email", email)
    replay = gateway.session()
    replay.cookies.set(SESSION_COOKIE, token, domain="127.0.0.1", path="/")
    assert _ok(gateway, replay, "/after-enable-old") == 401, \
        "disabling must delete sessions, not just hide them"
    fresh = gateway.logged_in(email, PW)
    assert fresh.cookies.get(SESSION_COOKIE) != token
    assert _ok(gateway, fresh, "/after-enable-new") == 200

    paths = [r["path"] for r in backend.requests()]
    assert paths == ["/before-disable", "/other-user", "/after-enable-new"]
    for rec in backend.requests():
        if rec["path"] == "/after-enable-new":
            names = {k.lower(): v for k, v in rec["headers"]}
            assert names["x-gatehouse-email"] == email
            assert names["x-gatehouse-roles"] == "member"


def test_cli_user_added_while_running_can_log_in(gateway):
    gateway.cli("tenant", "add", "acme")
    gateway.add_user("bob@acme.example", PW, tenant="acme", roles="member")
    s = gateway.logged_in("bob@acme.example", PW)
    me = gateway.get(WHOAMI, s).json()
    assert me["tenant"] == "acme"
    assert me["roles"] == ["member"]
