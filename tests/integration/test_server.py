"""The server around the gateway: the plain-HTTP port only redirects, the
demo echo backend, Argon2id off the event loop, state across restarts."""
import http.client
import json
import statistics
import threading
import time

from conftest import (ADMIN_EMAIL, API, HEALTHZ, HSTS,
                      SESSION_COOKIE, WHOAMI)


def _plain(port, method, path, headers=()):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True,
                        skip_host=any(k.lower() == "host" for k, _ in headers))
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def _h(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# ---- plain HTTP only redirects -------------------------------------------------

def test_plain_http_only_redirects_to_https(make_gateway):
    gw = make_gateway(http=True)
    s = gw.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    for method, path in (("GET", "/x?y=1"), ("GET", "/"), ("POST", "/.gatehouse/login"),
                         ("GET", "/.gatehouse/whoami"), ("HEAD", "/a/b")):
        status, headers, body = _plain(gw.http_port, method, path, [
            ("Accept", "text/html"), ("Cookie", "%s=%s" % (SESSION_COOKIE, token)),
            ("X-Gatehouse-User", "attacker")])
        assert status in (301, 302, 307, 308), (method, path, status)
        assert _h(headers, "Location") == ["https://127.0.0.1:%d%s" % (gw.port, path)]
        assert b"attacker" not in body and ADMIN_EMAIL.encode() not in body
        assert _h(headers, "Set-Cookie") == []
    # a hostile Host header does not steer the redirect elsewhere
    status, headers, _ = _plain(gw.http_port, "GET", "/z", [("Host", "evil.example")])
    assert _h(headers, "Location") == ["https://127.0.0.1:%d/z" % gw.port]
    assert gw.backend.requests() == [], "plain HTTP reached the backend"


# ---- the demo echo backend --------------------------------------------------------

def test_echo_backend_answers_what_it_received(gateway):
    hdrs = [("X-One", "1"), ("X-Dup", "a"), ("X-Dup", "b"),
            ("X-Quote", 'say "hi" \\ there'), ("X-" + "L" * 300, "long name")]
    hdrs += [("X-Many-%d" % i, "v%d" % i) for i in range(150)]
    status, _, body = _plain(gateway.echo_port, "GET", "/echo?q=1", hdrs)
    assert status == 200
    doc = json.loads(body)
    assert doc["method"] == "GET" and doc["path"] == "/echo?q=1"
    h = doc["headers"]
    assert h["x-one"] == "1"
    assert h["x-dup"] == "a, b"
    assert h["x-quote"] == 'say "hi" \\ there'
    assert h["x-many-149"] == "v149"
    assert gateway.get(HEALTHZ).status_code == 200


# ---- Argon2id runs in the thread pool, not on the event loop -------------------

def test_login_storm_does_not_stall_other_requests(make_gateway):
    # the throttle would answer most of the storm with 429 before any
    # Argon2id ran: out of the way, so the storm really loads the pool
    gw = make_gateway(argon2_passes=3, argon2_memory_mib=64,
                      http_directives=["gatehouse_login_throttle "
                                       "failures=100 lockout=100 "
                                       "address=off;"])
    s = gw.logged_in()
    stop = threading.Event()
    login_times = []
    errors = []

    def storm():
        sess = gw.session()
        try:
            _, csrf = gw.login_page(sess)
            while not stop.is_set():
                t0 = time.perf_counter()
                r = gw.post("/.gatehouse/login", sess, data={
                    "username": ADMIN_EMAIL, "password": "wrong",
                    "csrf": csrf})
                login_times.append(time.perf_counter() - t0)
                if r.status_code != 401:
                    errors.append(r.status_code)
        except Exception as e:           # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=storm, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    fast = []
    deadline = time.monotonic() + 10
    while len(fast) < 20 and time.monotonic() < deadline:
        t0 = time.perf_counter()
        r = gw.get(WHOAMI, s, headers=API)
        fast.append(time.perf_counter() - t0)
        assert r.status_code == 200
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert not errors, errors
    assert len(login_times) >= 4, login_times
    med_login = statistics.median(login_times)
    med_fast = statistics.median(fast)
    assert med_login > 0.05, "Argon2id too cheap to tell: %.3f" % med_login
    assert med_fast < 0.25 * med_login, \
        "authenticated requests waited for hashing: %.3fs vs login %.3fs" % (
            med_fast, med_login)


# ---- state survives a restart ---------------------------------------------------

def test_sessions_survive_a_restart(make_gateway):
    gw = make_gateway()
    s = gw.logged_in()
    assert gw.get(WHOAMI, s).status_code == 200
    gw.restart()
    assert gw.get(WHOAMI, s).status_code == 200
    r = gw.get("/after-restart", s, headers=API)
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"] == HSTS
