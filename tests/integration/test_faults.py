"""Faults (issue 11): the gateway fails closed and keeps running.

- disk full under the store (a small tmpfs): whatever needs a write
  (sign-in, sign-out) answers 503 and creates nothing; nothing is let
  through undecided; the failure is logged; freeing space recovers;
- store missing, corrupt or unreadable by the workers (after a reload):
  every protected request 503, never 200; logged as an alert; recovers;
- backend down, resetting, hanging or speaking garbage: 502/504 pages with
  HSTS (the plain "stopped backend" case is test_hsts.py's);
- nginx reload during a bounded load: no request fails;
- kill -9 of a worker during a bounded load (logins included): the other
  worker keeps serving, the master replaces it, the store stays usable.

- LMDB map full (a 96 KiB map through the GATEHOUSE_TEST_MAPSIZE test
  hook): sign-ins answer 503 with no cookie once no page is left, nothing
  undecided passes, the signed-in keep reading, "store full" is logged.

SAML does not exist yet, so "IdP unreachable" has no test.
"""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, BROWSER, HEALTHZ, HSTS,
                      LOGIN, LOGOUT, SESSION_COOKIE, WHOAMI, Gateway,
                      start_gateway)

STORE_DIR = "gatehouse.mdb"
LOAD_SECONDS = 6
LOAD_THREADS = 4


def consume_expected(gw, *allowed):
    """Take the log lines the fault was expected to cause out of the
    harness's problem check, failing on anything else (a sanitizer report,
    an unexpected alert)."""
    text = gw.problems(consume=True)
    bad = [l for l in text.splitlines()
           if l and not l.startswith("== ") and not any(a in l for a in allowed)]
    assert not bad, "unexpected problems:\n" + "\n".join(bad)
    return text


def wait_for(pred, timeout=15, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def healthz(gw):
    try:
        return gw.get(HEALTHZ, timeout=3).status_code
    except requests.RequestException:
        return None


def reload_nginx(gw):
    gw.proc.send_signal(signal.SIGHUP)


def worker_pids(gw):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(gw.proc.pid)],
                         capture_output=True, text=True, timeout=10).stdout
    return [int(x) for x in out.split()]


def errlog_text(gw):
    with open(gw.errlog, errors="replace") as f:
        return f.read()


# ---- disk full -----------------------------------------------------------------

def _mount_tmpfs(path, size):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size,
                        "tmpfs", path], capture_output=True, text=True, timeout=30)
    return p.returncode == 0


def test_disk_full_fails_closed_and_recovers(tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("diskfull"))
    store = os.path.join(gw.data, STORE_DIR)
    saved = os.path.join(gw.base, "store-copy")
    mounted = False
    try:
        s = gw.logged_in()
        # move the store onto a 2 MiB tmpfs, with nginx stopped
        gw._stop_nginx()
        shutil.copytree(store, saved)
        if not _mount_tmpfs(store, "2m"):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted = True
        for name in os.listdir(saved):
            shutil.copy2(os.path.join(saved, name), os.path.join(store, name))
        gw._launch()
        assert gw.get(WHOAMI, s).status_code == 200
        # fill the file system
        filler = os.path.join(store, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # sign-ins until the store runs out of pages it can reuse: each one
        # either works completely or answers 503 with no session
        outcomes = []
        for _ in range(40):
            t = gw.session()
            _, r = gw.login(s=t)
            got_cookie = bool(t.cookies.get(SESSION_COOKIE))
            outcomes.append(r.status_code)
            assert r.status_code in (303, 503), r.status_code
            if r.status_code == 503:
                assert not got_cookie, "a session cookie from a failed sign-in"
                assert r.headers.get("Strict-Transport-Security") == HSTS
                break
            assert gw.get(WHOAMI, t).status_code == 200
        assert outcomes[-1] == 503, "the store never ran out of space: %r" % outcomes
        # nothing undecided passes: no session -> 302/401, never 200
        r = gw.get("/protected", headers=BROWSER)
        assert r.status_code == 302
        r = gw.get("/protected", headers=API)
        assert r.status_code == 401
        assert gw.backend.requests() == [] or all(
            rec["path"] != "/protected" for rec in gw.backend.requests())
        # a sign-out that cannot be recorded says so, and keeps nothing
        r = gw.post(LOGOUT, s)
        assert r.status_code in (303, 503), r.status_code
        # the failure is in the error log, in plain words
        assert wait_for(lambda: "login could not be checked" in errlog_text(gw), 5), \
            errlog_text(gw)[-2000:]
        # free the space: sign-in works again
        os.unlink(filler)
        _, r = gw.login()
        assert r.status_code == 303
        consume_expected(gw)
    finally:
        gw._stop_nginx()
        if mounted:
            subprocess.run(["umount", store], timeout=30)
        gw.stop()
        bad = gw.problems(consume=True)
        assert not bad, bad


# ---- LMDB map full ---------------------------------------------------------------

MAP_PAGES = 24          # 96 KiB: init uses 16 pages of 4 KiB


class _SmallMapGateway(Gateway):
    """The store opened with a tiny LMDB map (GATEHOUSE_TEST_MAPSIZE, the
    test hook of core/store.c), passed on to nginx's workers."""

    def _render(self):
        super()._render()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("\nevents {", "\nenv GATEHOUSE_TEST_MAPSIZE;\n\nevents {", 1)
        with open(self.conf, "w") as f:
            f.write(text)


def test_map_full_fails_closed(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GATEHOUSE_TEST_MAPSIZE", str(MAP_PAGES * 4096))
    gw = _SmallMapGateway(str(tmp_path_factory.mktemp("mapfull")))
    try:
        gw.start()
        s = gw.logged_in()
        outcomes = []
        for _ in range(800):
            t = gw.session()
            _, r = gw.login(s=t)
            outcomes.append(r.status_code)
            assert r.status_code in (303, 503), r.status_code
            if r.status_code == 503:
                assert not t.cookies.get(SESSION_COOKIE), "a cookie from a failed sign-in"
                assert r.headers.get("Strict-Transport-Security") == HSTS
                break
            assert gw.get(WHOAMI, t).status_code == 200
        assert outcomes[-1] == 503, "the map never filled: %d sign-ins" % len(outcomes)
        # at the edge, pages freed by earlier transactions may let one more
        # through: each try works completely or fails with no cookie
        for _ in range(5):
            t = gw.session()
            _, r = gw.login(s=t)
            assert r.status_code in (303, 503), r.status_code
            assert bool(t.cookies.get(SESSION_COOKIE)) == (r.status_code == 303)
        # nothing undecided passes
        gw.backend.clear()
        assert gw.get("/protected", headers=API).status_code == 401
        assert gw.get("/protected", headers=BROWSER).status_code == 302
        assert gw.backend.requests() == []
        # reads need no pages: the signed-in keep their access
        assert gw.get("/still", s, headers=API).status_code == 200
        assert healthz(gw) == 200
        assert wait_for(lambda: "store full" in errlog_text(gw), 5), errlog_text(gw)[-2000:]
        consume_expected(gw)
    finally:
        gw.stop()
        bad = gw.problems(consume=True)
        assert not bad, bad


# ---- store missing, corrupt, unreadable ----------------------------------------

@pytest.fixture(scope="module")
def reloadable(tmp_path_factory):
    gw = start_gateway(tmp_path_factory.mktemp("storefault"))
    yield gw
    gw.finish()


def _break_store(gw, how):
    store = os.path.join(gw.data, STORE_DIR)
    away = store + ".away"
    shutil.copytree(store, away)
    undo = []
    if how == "missing":
        shutil.rmtree(store)
        undo.append(lambda: shutil.copytree(away, store))
    elif how == "corrupt":
        # a new file in its place (running workers keep the old inode)
        bad = os.path.join(store, "data.mdb.bad")
        with open(os.path.join(store, "data.mdb"), "rb") as f, open(bad, "wb") as g:
            g.write(os.urandom(16384))       # both meta pages
            f.seek(16384)
            g.write(f.read())
        os.rename(bad, os.path.join(store, "data.mdb"))
        undo.append(lambda: shutil.copy2(os.path.join(away, "data.mdb"),
                                         os.path.join(store, "data.mdb")))
    elif how == "unreadable":
        # root ignores file modes: make the workers someone else instead
        with open(gw.conf) as f:
            conf = f.read()
        assert "user root root;" in conf or "user " not in conf.split("events")[0]
        with open(gw.conf, "w") as f:
            f.write(conf.replace("user root root;", "user nobody nogroup;"))
        undo.append(lambda: open(gw.conf, "w").write(conf))
    return away, undo


@pytest.mark.parametrize("how", ["missing", "corrupt", "unreadable"])
def test_store_fault_fails_closed_with_503_and_recovers(reloadable, how):
    gw = reloadable
    if how == "unreadable" and os.geteuid() != 0:
        pytest.skip("needs root to run the workers as another user")
    s = gw.logged_in()
    gw.backend.clear()
    away, undo = _break_store(gw, how)
    try:
        reload_nginx(gw)
        assert wait_for(lambda: healthz(gw) == 503), "healthz never said 503"
        # give the old workers time to finish: every answer is now a new one's
        time.sleep(1.0)
        for _ in range(5):
            r = gw.get("/protected", s, headers=API)
            assert r.status_code == 503, r.status_code
            r = gw.get("/protected", s, headers=BROWSER)
            assert r.status_code == 503, r.status_code
            assert r.headers.get("Strict-Transport-Security") == HSTS
        r = gw.get("/protected", headers=API)
        assert r.status_code == 503
        r = gw.post(LOGIN, data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                 "csrf": "x" * 43}, headers=BROWSER,
                    cookies={"__Host-gatehouse-csrf": "x" * 43})
        assert r.status_code in (403, 503), r.status_code
        assert SESSION_COOKIE not in r.cookies
        assert [rec["path"] for rec in gw.backend.requests()] == []
        assert "cannot open store" in errlog_text(gw)
    finally:
        for u in undo:
            u()
        shutil.rmtree(away, ignore_errors=True)
        reload_nginx(gw)
    assert wait_for(lambda: healthz(gw) == 200), "no recovery after the fix"
    time.sleep(1.0)
    assert gw.get(WHOAMI, s).status_code == 200
    consume_expected(gw, "cannot open store", "cannot open the audit log",
                     "cannot prepare password login")


# ---- backend faults ---------------------------------------------------------------

class FakeBackend:
    """A TCP server on a given port that misbehaves in one way."""

    def __init__(self, port, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop_ = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            try:
                c.settimeout(2)
                c.recv(65536)
                if self.mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    c.close()
                elif self.mode == "garbage":
                    c.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
                    c.close()
                elif self.mode == "plant":
                    c.sendall(b"HTTP/1.1 200 OK\r\n"
                              b"Set-Cookie: __Host-gatehouse=planted; Path=/; Secure\r\n"
                              b"Set-Cookie:  __HOST-GATEHOUSE =planted2; Path=/\r\n"
                              b"Set-Cookie: __Host-gatehouse-csrf=planted3; Path=/\r\n"
                              b"Set-Cookie: app=1; Path=/\r\n"
                              b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
                    c.close()
                elif self.mode == "raw-status":
                    c.sendall(b" HTTP/1.1 200 OK\r\nSet-Cookie: __Host-gatehouse=planted\r\n"
                              b"\r\n<script>evil()</script>")
                    c.close()
                elif self.mode == "half":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
                    c.close()
                # "hang": keep it open, say nothing
            except OSError:
                pass

    def close(self):
        self.stop_.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


@pytest.mark.parametrize("mode,statuses", [
    ("reset", (502,)), ("garbage", (None,)), ("raw-status", (None,)), ("hang", (504,)),
    ("half", (200, 502)),
])
def test_backend_fault_gives_an_error_page_with_hsts(make_gateway, mode, statuses):
    """A backend with no valid status line would be relayed raw by nginx
    (HTTP/0.9), past HSTS and every header check: the gateway cuts the
    connection instead (None: no answer)."""
    gw = make_gateway(server_directives=["proxy_read_timeout 2s;",
                                         "proxy_connect_timeout 2s;"])
    s = gw.logged_in()
    port = gw.backend.port
    gw.backend.stop()
    fake = FakeBackend(port, mode)
    try:
        try:
            r = gw.get("/fault", s, headers=BROWSER, timeout=15)
        except requests.exceptions.ConnectionError:
            assert statuses == (None,), mode
            assert healthz(gw) == 200
            return
        assert r.status_code in statuses, r.status_code
        assert r.headers.get("Strict-Transport-Security") == HSTS
        if r.status_code == 200:       # a truncated body is cut, never padded
            assert len(r.content) < 100
        assert healthz(gw) == 200
    except requests.exceptions.ChunkedEncodingError:
        assert mode == "half"          # the truncated body: the client sees it cut
    finally:
        fake.close()
        consume_expected(gw)


def test_backend_cannot_plant_a_gatehouse_cookie(make_gateway):
    """Session fixation by a backend: a Set-Cookie for our cookies, in any
    spelling, is dropped; the backend's own cookies pass."""
    gw = make_gateway()
    s = gw.logged_in()
    token = s.cookies.get(SESSION_COOKIE)
    port = gw.backend.port
    gw.backend.stop()
    fake = FakeBackend(port, "plant")
    try:
        r = gw.get("/plant", s, headers=BROWSER, timeout=15)
        assert r.status_code == 200
        cookies = r.raw.headers.getlist("Set-Cookie")
        assert cookies == ["app=1; Path=/"], cookies
        assert s.cookies.get(SESSION_COOKIE) == token
    finally:
        fake.close()
    consume_expected(gw)


# ---- reload and worker death under load -------------------------------------------

def _load(gw, token, stop, results, login_every=0):
    """One client thread: fresh connections (Connection: close), so a
    failure is the server's, not a keep-alive race."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            if login_every and n % login_every == 0:
                t = gw.session()
                t.headers["Connection"] = "close"
                _, r = gw.login(s=t)
                results.append(("login", r.status_code))
            else:
                r = requests.get(gw.url("/load"), verify=gw.cert, allow_redirects=False,
                                 timeout=10, headers={"Connection": "close",
                                                      "Accept": "application/json",
                                                      "Cookie": "%s=%s" % (SESSION_COOKIE, token)})
                results.append(("get", r.status_code))
        except requests.RequestException as e:
            results.append(("error", repr(e)[:120]))
        time.sleep(0.01)


def _run_load(gw, token, during, login_every=0):
    stop = threading.Event()
    results = []
    threads = [threading.Thread(target=_load, args=(gw, token, stop, results, login_every),
                                daemon=True) for _ in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    try:
        during()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return results


def test_reload_under_load_fails_no_request(make_gateway):
    gw = make_gateway(workers=2)
    token = gw.logged_in().cookies.get(SESSION_COOKIE)

    def reloads():
        for _ in range(3):
            time.sleep(LOAD_SECONDS / 4)
            reload_nginx(gw)
        time.sleep(LOAD_SECONDS / 4)

    results = _run_load(gw, token, reloads, login_every=25)
    gets = [r for r in results if r[0] == "get"]
    failed = [r for r in results if r[0] == "error" or r[1] not in (200, 303)]
    assert len(gets) > 50, "too little load to mean anything: %d" % len(gets)
    assert not failed, failed[:10]
    consume_expected(gw)


def test_killed_worker_leaves_the_others_serving(make_gateway):
    gw = make_gateway(workers=2)
    token = gw.logged_in().cookies.get(SESSION_COOKIE)
    before = worker_pids(gw)
    assert len(before) == 2, before
    killed = []

    def kill_one():
        time.sleep(LOAD_SECONDS / 3)
        os.kill(before[0], signal.SIGKILL)        # a worker of our own nginx
        killed.append(time.monotonic())
        time.sleep(LOAD_SECONDS * 2 / 3)

    results = _run_load(gw, token, kill_one, login_every=20)
    errors = [r for r in results if r[0] == "error"]
    bad = [r for r in results if r[0] != "error" and r[1] not in (200, 303)]
    # only requests in flight on the killed worker may fail: at most one per
    # client thread
    assert len(errors) <= LOAD_THREADS, errors
    assert not bad, bad[:10]
    ok_after = [r for r in results[-40:] if r[0] != "error" and r[1] == 200]
    assert len(ok_after) >= 20, results[-40:]
    # the master replaced the worker; the store is usable (a write works)
    assert wait_for(lambda: len(worker_pids(gw)) == 2 and before[0] not in worker_pids(gw))
    _, r = gw.login()
    assert r.status_code == 303
    assert gw.get(WHOAMI, gw.logged_in()).status_code == 200
    consume_expected(gw, "exited on signal 9")
