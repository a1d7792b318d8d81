"""Integration harness: the real nginx with the built (sanitizer) module.

Each test module gets a gateway of its own (fixture `gateway`): a fresh data
directory initialised by the CLI with cheap Argon2id parameters, free
loopback ports, a recording backend in a thread, nginx in the foreground with
ASan preloaded. At teardown nginx is stopped (by its pid only) and the run
fails if a sanitizer report, an [alert] or an [emerg] appeared.

A module may set GATEWAY_OPTIONS = {...} (keyword arguments of Gateway) for
its shared gateway; a test that needs settings of its own (a 2 s idle
timeout, a backend it stops) uses the function-scoped `make_gateway`.
Extra nginx directives go in with http_directives=[...] (http block, e.g.
"gatehouse_trusted_proxies 127.0.0.1;") and server_directives=[...] (the
gateway's server block, e.g. a second listen).

Environment: GATEHOUSE_BUILD (default <root>/build/san) holds
ngx_http_gatehouse_module.so and the gatehouse CLI.
"""
import contextlib
import glob
import html
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))
from backend import RecordingBackend  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("GATEHOUSE_BUILD",
                                       os.path.join(ROOT, "build", "san")))
MODULE = os.path.join(BUILD, "ngx_http_gatehouse_module.so")
CLI = os.path.join(BUILD, "gatehouse")
RENDER = os.path.join(ROOT, "scripts", "render-conf.sh")
NGINX = os.environ.get("GATEHOUSE_NGINX", "/usr/sbin/nginx")

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple 42"

LOGIN = "/.gatehouse/login"
LOGOUT = "/.gatehouse/logout"
WHOAMI = "/.gatehouse/whoami"
HEALTHZ = "/.gatehouse/healthz"
SESSION_COOKIE = "__Host-gatehouse"
CSRF_COOKIE = "__Host-gatehouse-csrf"
HSTS = "max-age=31536000; includeSubDomains"
API = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}

HTTP_TIMEOUT = 10          # seconds, every request
START_TIMEOUT = 15         # seconds for nginx to answer healthz
STOP_TIMEOUT = 10          # seconds for each stop signal to take effect
CLI_TIMEOUT = 60

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "[alert]", "[emerg]")


def _libasan():
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                         capture_output=True, text=True, timeout=30)
    path = out.stdout.strip()
    return path if out.returncode == 0 and os.path.isabs(path) else None


LIBASAN = _libasan()


def free_port():
    """A loopback port free right now (bind :0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the CLI -------------------------------------------------------------

def cli_env(leaks=False, extra=None):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("GATEHOUSE_DATA", None)
    env["ASAN_OPTIONS"] = "detect_leaks=%d:abort_on_error=0" % (1 if leaks else 0)
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    if extra:
        env.update(extra)
    return env


def run_cli(args, data=None, input=None, leaks=False, env=None):
    """Run the CLI; never lets a sanitizer report pass unnoticed. Returns
    the CompletedProcess (text mode)."""
    if not os.access(CLI, os.X_OK):
        pytest.fail("CLI not built: %s" % CLI)
    argv = [CLI] + (["--data", str(data)] if data is not None else []) + list(args)
    p = subprocess.run(argv, input=input, capture_output=True, text=True,
                       timeout=CLI_TIMEOUT, env=cli_env(leaks, env))
    for mark in ("Sanitizer", "runtime error:"):
        if mark in p.stderr:
            pytest.fail("sanitizer report from %s:\n%s" % (argv, p.stderr))
    return p


def cli_ok(args, data, input=None):
    p = run_cli(args, data=data, input=input)
    assert p.returncode == 0, "%s -> %d\nstdout: %s\nstderr: %s" % (
        args, p.returncode, p.stdout, p.stderr)
    return p


def init_data(data, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, passes=1,
              memory_mib=8):
    cli_ok(["init", "--admin-email", email, "--password-stdin",
            "--argon2-passes", str(passes), "--argon2-memory-mib",
            str(memory_mib), "--cert-cn", "127.0.0.1"],
           data, input=password + "\n")


# ---- HTML / header helpers -------------------------------------------------

def input_value(page, name):
    """value of <input name="NAME" ...> in page (HTML-unescaped), or None."""
    for tag in re.findall(r"<input\b[^>]*>", page, re.I):
        if re.search(r'\bname="%s"' % re.escape(name), tag):
            m = re.search(r'\bvalue="([^"]*)"', tag)
            return html.unescape(m.group(1)) if m else ""
    return None


def set_cookies(resp):
    """{name: (value, {attr-lower: value-or-True})} of the Set-Cookie
    headers of a requests response (every header, duplicates kept in a
    list under '_all')."""
    out = {"_all": []}
    for raw in resp.raw.headers.getlist("Set-Cookie"):
        out["_all"].append(raw)
        parts = [p.strip() for p in raw.split(";")]
        name, _, value = parts[0].partition("=")
        attrs = {}
        for a in parts[1:]:
            k, eq, v = a.partition("=")
            attrs[k.strip().lower()] = v.strip() if eq else True
        out[name] = (value, attrs)
    return out


def header_values(resp, name):
    return resp.raw.headers.getlist(name)


def assert_hsts(resp):
    vals = header_values(resp, "Strict-Transport-Security")
    assert vals == [HSTS], "status %d: HSTS headers %r" % (resp.status_code, vals)


# ---- the gateway ------------------------------------------------------------

@contextlib.contextmanager
def raw_store(gw, db):
    """A write transaction on one database of gw's store, behind the
    gateway's back (python3-lmdb): for what the clock cannot do under a
    running gateway, e.g. make an account look inactive."""
    import lmdb
    env = lmdb.open(os.path.join(gw.data, "gatehouse.mdb"), max_dbs=32,
                    subdir=True, lock=True)
    try:
        with env.begin(write=True, db=env.open_db(db, create=False)) as txn:
            yield txn
    finally:
        env.close()


def user_id(gw, email):
    for line in gw.cli("user", "list").stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f[2]
    raise AssertionError("no user %s" % email)


def plant_last_login(gw, email, days_ago):
    """Record the account's last sign-in days_ago days back."""
    with raw_store(gw, b"admin") as txn:
        txn.put(b"l:" + user_id(gw, email).encode(),
                str(int(time.time()) - days_ago * 86400).encode())


class Gateway:
    """nginx + module + recording backend over a fresh data directory."""

    live = []       # running gateways, checked after every test

    def __init__(self, base, idle="30m", lifetime="12h", argon2_passes=1,
                 argon2_memory_mib=8, workers=1, http=False,
                 http_directives=(), server_directives=()):
        self.base = str(base)
        self.data = os.path.join(self.base, "data")
        self.idle = idle
        self.lifetime = lifetime
        self.passes = argon2_passes
        self.memory = argon2_memory_mib
        self.workers = workers
        self.http = http
        self.http_directives = list(http_directives)
        self.server_directives = list(server_directives)
        self.http_port = None
        self.proc = None
        self.backend = None
        self.port = None
        self.echo_port = None
        self.errlog = os.path.join(self.data, "nginx", "error.log")
        self.outlog = os.path.join(self.base, "nginx.out")
        self._seen = {}         # log file -> bytes already checked

    # -- life cycle --
    def start(self):
        if not os.path.exists(MODULE):
            pytest.fail("module not built: %s" % MODULE)
        # load a private copy: a rebuild that overwrites the .so in place
        # would crash a running nginx that has it mapped
        os.makedirs(self.base, exist_ok=True)
        self.module = os.path.join(self.base, os.path.basename(MODULE))
        shutil.copy2(MODULE, self.module)
        if LIBASAN is None:
            pytest.fail("gcc -print-file-name=libasan.so found nothing")
        os.makedirs(self.data, exist_ok=True)
        init_data(self.data, passes=self.passes, memory_mib=self.memory)
        self.cert = os.path.join(self.data, "tls", "gateway.crt")
        assert os.path.exists(self.cert), "init made no certificate"

        self.backend = RecordingBackend().start()
        self.port = free_port()
        self.echo_port = free_port()
        if self.http:
            self.http_port = free_port()
        os.makedirs(os.path.join(self.data, "nginx"), exist_ok=True)
        self._render()
        self._launch()
        return self

    def _render(self):
        conf = subprocess.run(
            [RENDER, self.data, self.module, "127.0.0.1:%d" % self.port,
             self.backend.address, "127.0.0.1:%d" % self.echo_port,
             "127.0.0.1:%d" % self.http_port if self.http_port else "",
             self.idle, self.lifetime, self.errlog, str(self.workers)],
            capture_output=True, text=True, timeout=30)
        assert conf.returncode == 0, conf.stderr
        text = conf.stdout
        if self.http_directives:
            anchor = "\nhttp {\n"
            assert text.count(anchor) == 1, "no unique http block to extend"
            text = text.replace(anchor, anchor + "".join(
                "    %s\n" % d for d in self.http_directives))
        if self.server_directives:
            anchor = "        gatehouse_hsts  on;\n"
            assert text.count(anchor) == 1, "no unique gateway server block"
            text = text.replace(anchor, anchor + "".join(
                "        %s\n" % d for d in self.server_directives))
        self.conf = os.path.join(self.data, "nginx", "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(text)

    def _launch(self):
        env = dict(os.environ)
        env["LD_PRELOAD"] = LIBASAN
        env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=0:log_path=%s"
                               % os.path.join(self.data, "asan"))
        env["UBSAN_OPTIONS"] = ("print_stacktrace=1:log_path=%s"
                                % os.path.join(self.data, "ubsan"))
        self._out = open(self.outlog, "ab")
        self.proc = subprocess.Popen(
            [NGINX, "-p", os.path.join(self.data, "nginx"), "-c", self.conf,
             "-e", self.errlog, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT, env=env)
        if self not in Gateway.live:
            Gateway.live.append(self)
        self._wait_ready()

    def restart(self):
        """Stop nginx and start it again on the same data, ports and
        backend (after a crash, so that later tests get a sound gateway)."""
        self._stop_nginx()
        self._launch()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        s = self.session()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("nginx exited with %s at start\n%s"
                            % (self.proc.returncode, self.logs()))
            try:
                r = s.get(self.url(HEALTHZ), timeout=2)
                if r.status_code == 200:
                    return
                last = "healthz %d %s" % (r.status_code, r.text)
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        self.stop()
        pytest.fail("gateway not ready after %ds: %s\n%s"
                    % (START_TIMEOUT, last, self.logs()))

    def stop(self):
        """Stop nginx, then the backend."""
        if self in Gateway.live:
            Gateway.live.remove(self)
        self._stop_nginx()
        if self.backend is not None:
            self.backend.stop()

    def _stop_nginx(self):
        """Stop nginx (our pid only): SIGQUIT, then SIGTERM, then SIGKILL,
        each with a bounded wait."""
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
                try:
                    self.proc.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if getattr(self, "_out", None):
            self._out.close()
            self._out = None

    def problems(self, consume=False):
        """Sanitizer reports and fatal log lines not reported before, as
        text ('' if none). consume=True marks them reported."""
        found = []
        for pat in ("asan*", "ubsan*"):
            for f in sorted(glob.glob(os.path.join(self.data, pat))):
                with open(f, errors="replace") as fh:
                    found.append("== %s\n%s" % (f, fh.read()))
                if consume:
                    os.rename(f, os.path.join(self.base, "reported-%s"
                                              % os.path.basename(f)))
        for f in (self.errlog, self.outlog):
            if not os.path.exists(f):
                continue
            with open(f, "rb") as fh:
                fh.seek(self._seen.get(f, 0))
                chunk = fh.read()
            lines = [l for l in chunk.decode(errors="replace").splitlines(True)
                     if any(m in l for m in SANITIZER_MARKS)]
            if consume:
                self._seen[f] = self._seen.get(f, 0) + len(chunk)
            if lines:
                found.append("== %s\n%s" % (f, "".join(lines)))
        return "\n".join(found)

    def logs(self, tail=60):
        out = []
        for f in (self.errlog, self.outlog):
            if os.path.exists(f):
                with open(f, errors="replace") as fh:
                    out.append("== %s\n%s" % (f, "".join(fh.readlines()[-tail:])))
        return "\n".join(out)

    def finish(self):
        self.stop()
        bad = self.problems(consume=True)
        if bad:
            pytest.fail("gateway at %s reported problems:\n%s"
                        % (self.data, bad), pytrace=False)

    # -- HTTP --
    @property
    def origin(self):
        return "https://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.origin + path

    def session(self):
        """A requests session that trusts only our certificate (and ignores
        the environment's CA bundle and proxies)."""
        s = requests.Session()
        s.trust_env = False
        s.verify = self.cert
        return s

    def get(self, path, s=None, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return (s or self.session()).get(self.url(path), **kw)

    def post(self, path, s=None, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return (s or self.session()).post(self.url(path), **kw)

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def raw(self, method, path, headers=(), body=None):
        """One request on a fresh connection with exactly the headers given
        (duplicates and odd names allowed). Returns (status, [(k, v)],
        body bytes)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                           timeout=HTTP_TIMEOUT,
                                           context=self.ssl_context())
        try:
            conn.putrequest(method, path, skip_accept_encoding=True,
                            skip_host=any(k.lower() == "host"
                                          for k, _ in headers))
            for k, v in headers:
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def exchange(self, data, quiet=1.0, alpn="http/1.1"):
        """Send raw bytes on one TLS connection and return every byte the
        server sends back until it closes or stays quiet for `quiet`
        seconds (bounded: at most 10 s in all)."""
        ctx = self.ssl_context()
        ctx.set_alpn_protocols([alpn])
        out = b""
        deadline = time.monotonic() + 10
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=HTTP_TIMEOUT) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                tls.sendall(data)
                tls.settimeout(quiet)
                while time.monotonic() < deadline:
                    try:
                        chunk = tls.recv(65536)
                    except (socket.timeout, TimeoutError):
                        break
                    except (ConnectionError, ssl.SSLError):
                        break
                    if not chunk:
                        break
                    out += chunk
        return out

    # -- login --
    def login_page(self, s, rd=None):
        params = {"rd": rd} if rd is not None else None
        r = self.get(LOGIN, s, params=params, headers=BROWSER)
        assert r.status_code == 200, (r.status_code, r.text[:500])
        csrf = input_value(r.text, "csrf")
        assert csrf, "no csrf input on the login page"
        return r, csrf

    def login(self, s=None, email=ADMIN_EMAIL, password=ADMIN_PASSWORD,
              rd=None, fields=None, headers=None):
        """GET the login page (for the csrf cookie and token), POST the
        form. Returns (session, response) without following redirects."""
        s = s or self.session()
        page, csrf = self.login_page(s, rd)
        form = {"username": email, "password": password, "csrf": csrf,
                "rd": input_value(page.text, "rd") or ""}
        if rd is not None:
            form["rd"] = rd
        if fields:
            form.update(fields)
        r = self.post(LOGIN, s, data=form, headers=headers)
        return s, r

    def logged_in(self, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
        s, r = self.login(email=email, password=password)
        assert r.status_code == 303, (r.status_code, r.text[:500])
        assert s.cookies.get(SESSION_COOKIE), "no session cookie after login"
        return s

    # -- CLI against our data dir --
    def cli(self, *args, input=None):
        return run_cli(args, data=self.data, input=input)

    def add_user(self, email, password, tenant="demo", roles=None, name=None):
        args = ["user", "add", "--tenant", tenant, "--email", email,
                "--password-stdin"]
        if roles is not None:
            args += ["--roles", roles]
        if name is not None:
            args += ["--name", name]
        return cli_ok(args, self.data, input=password + "\n")


def start_gateway(base, **opts):
    gw = Gateway(base, **opts)
    try:
        gw.start()
    except BaseException:
        gw.stop()
        raise
    return gw


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, request):
    opts = getattr(request.module, "GATEWAY_OPTIONS", {})
    gw = start_gateway(tmp_path_factory.mktemp("gw"), **opts)
    yield gw
    gw.finish()


@pytest.fixture
def make_gateway(tmp_path_factory):
    """Start gateways with settings of their own; all stopped and checked
    when the test ends."""
    started = []

    def make(**opts):
        gw = start_gateway(tmp_path_factory.mktemp("gw"), **opts)
        started.append(gw)
        return gw

    yield make
    errors = []
    for gw in started:
        gw.stop()
        bad = gw.problems(consume=True)
        if bad:
            errors.append("gateway at %s:\n%s" % (gw.data, bad))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def _sanitizer_watch():
    """Pin a sanitizer report or a crash on the test that caused it, then
    restart that nginx so that the tests after it still run."""
    yield
    if not Gateway.live:
        return
    time.sleep(0.02)        # let a dying worker finish its report
    found = []
    for gw in list(Gateway.live):
        bad = gw.problems(consume=True)
        if bad:
            found.append(bad)
            gw.restart()
    if found:
        pytest.fail("the gateway reported problems during this test:\n%s"
                    % "\n".join(found), pytrace=False)


@pytest.fixture
def backend(gateway):
    """The shared gateway's recording backend, emptied for this test."""
    gateway.backend.clear()
    return gateway.backend


def local_location(resp, port):
    """The path+query of a same-origin Location, failing on anything that
    leaves this origin."""
    loc = resp.headers.get("Location")
    assert loc is not None, "no Location (status %d)" % resp.status_code
    parts = urlsplit(loc)
    if parts.scheme or parts.netloc:
        assert parts.scheme == "https" and parts.netloc == "127.0.0.1:%d" % port, \
            "Location leaves the origin: %r" % loc
    assert not loc.startswith("//") and "\\" not in loc, loc
    path = parts.path + ("?" + parts.query if parts.query else "")
    return path
