"""Password policy per tenant, brute-force defence and the password
lifecycle, against the real nginx + module and the CLI (issue 3).

Every security property has its negative test: weak passwords refused by
the CLI and the change page with the same sentences, 429 + Retry-After
without the password being looked at, the same answer (and time) for
accounts that exist and accounts that do not, a restricted session that
reaches nothing but the change page, other sessions ended by a change.
"""
import os
import re
import statistics
import subprocess
import time
from urllib.parse import quote

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, BROWSER, CLI, LIBASAN,
                      LOGIN, LOGOUT, MODULE, NGINX, SESSION_COOKIE, WHOAMI,
                      cli_env, cli_ok, free_port, init_data, input_value,
                      local_location, run_cli, set_cookies)

PASSWORD_PAGE = "/.gatehouse/account/password"
GENERIC = "Incorrect email or password."
GOOD_PW = "a long and quiet river 7"
OTHER_PW = "the orchard behind the mill"
THIRD_PW = "lanterns over the harbour"
NO_THROTTLE = "gatehouse_login_throttle failures=100 lockout=100 address=off;"
NO_ADDRESS_LIMIT = "gatehouse_login_throttle address=off;"

POLICY_MFA = """version: 1
tenants:
  demo:
    mfa: required
apps:
  demo:
    tenants: [demo]
    rules:
      - name: all
        effect: allow
        roles: [member, manager, gatehouse-admin]
"""


# ---- helpers -------------------------------------------------------------

def one_line_refusal(p):
    """The CLI's refusal: exit 1 and exactly one stderr line."""
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def normalise(page):
    """A page with the per-browser csrf token and the echoed username
    blanked out."""
    page = re.sub(r'(name="csrf" value=")[^"]*"', r'\1CSRF"', page)
    page = re.sub(r'(name="username"[^>]*value=")[^"]*"', r'\1USER"', page)
    return page


def verdict_items(page):
    """The <li> sentences of the change page's verdict list."""
    m = re.search(r'<ul id="verdict">(.*?)</ul>', page, re.S)
    return re.findall(r"<li>(.*?)</li>", m.group(1)) if m else []


def post_login(gw, s, csrf, email, password, rd="/"):
    return gw.post(LOGIN, s, data={"username": email, "password": password,
                                   "csrf": csrf, "rd": rd}, headers=BROWSER)


def change_form(gw, s, rd=None):
    """GET the change page (200) and return (page, csrf, rd)."""
    params = {"rd": rd} if rd is not None else None
    r = gw.get(PASSWORD_PAGE, s, params=params, headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r, input_value(r.text, "csrf"), input_value(r.text, "rd")


def post_change(gw, s, current, new, confirm=None, rd=None, csrf=None,
                headers=None):
    page, token, page_rd = change_form(gw, s, rd)
    form = {"current": current, "new": new,
            "confirm": new if confirm is None else confirm,
            "csrf": token if csrf is None else csrf,
            "rd": page_rd if rd is None else rd}
    return gw.post(PASSWORD_PAGE, s, data=form,
                   headers=headers or BROWSER)


# The audit log's actions, as the event names gh_audit() is called with.
AUDIT_EVENTS = {"login.success": "login", "login.failure": "login_failure",
                "login.throttled": "login_throttled",
                "login.lockout": "lockout", "user.unlock": "unlock",
                "password.change": "password_change",
                "password.set": "password_set",
                "password.refused": "password_refused",
                "tenant.password_policy": "password_policy_change",
                "policy.apply": "policy_apply"}


def audit_export_text(gw):
    return cli_ok(["audit", "export"], gw.data).stdout


def audit_records(gw):
    """The audit log (gatehouse audit export) in the shape these tests
    check: event, actor, tenant, addr, request_id, detail."""
    import json
    out = []
    for line in audit_export_text(gw).split("\n"):
        if not line:
            continue
        r = json.loads(line)["record"]
        out.append({"event": AUDIT_EVENTS.get(r["action"], r["action"]),
                    "actor": r["actor"]["user"],
                    "tenant": r["actor"]["tenant"],
                    "addr": r["actor"]["addr"],
                    "request_id": r["request_id"],
                    "detail": r["details"].get("text", "")})
    return out


def age_password(data, uid, days):
    """Move the credential's `updated` time `days` into the past, behind
    the store's back (lmdb-utils; no test hook in the product)."""
    env = os.path.join(data, "gatehouse.mdb")
    dump = subprocess.run(["mdb_dump", "-p", "-s", "credentials", env],
                          capture_output=True, text=True, timeout=30,
                          check=True).stdout
    lines = dump.splitlines()
    out, i, done = [], 0, False
    while i < len(lines):
        out.append(lines[i])
        if lines[i].strip() == uid and i + 1 < len(lines):
            rec = lines[i + 1]
            m = re.search(r'"u":(\d+)', rec)
            assert m, rec
            rec = rec.replace(m.group(0),
                              '"u":%d' % (int(m.group(1)) - days * 86400))
            out.append(rec)
            i += 2
            done = True
            continue
        i += 1
    assert done, "no credential for %s" % uid
    subprocess.run(["mdb_load", "-s", "credentials", env],
                   input="\n".join(out) + "\n", text=True, timeout=30,
                   check=True, capture_output=True)


def user_id(gw, email):
    p = gw.cli("user", "list")
    for line in p.stdout.splitlines():
        cols = line.split("\t")
        if cols[0] == email:
            return cols[2]
    raise AssertionError("no user %s in %s" % (email, p.stdout))


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    init_data(str(d))
    return str(d)


# ---- the CLI applies the tenant's policy ------------------------------------

def test_cli_refuses_a_weak_password_with_every_reason_on_one_line(data):
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "carol@example.com", "--password-stdin"], data=data,
                input="password\n")
    line = one_line_refusal(p)
    assert line == ("gatehouse: password refused: too short: 8 of at least "
                    "15 characters; found in a list of common passwords")
    # nothing was written: no password-less user left behind
    assert "carol@example.com" not in cli_ok(["user", "list"], data).stdout


@pytest.mark.parametrize("pw,sentence", [
    ("carol carol carol", None),                      # fine: a phrase
    ("Carol2024!!!!!!!!", "contains your email name"),
    ("Demo Demo Demo 2024", None),
    ("demo12345678901234", "contains the organisation's name"),
    ("Lovelace123456789", "contains your name"),
    ("iloveyou iloveyou", None),
    ("iloveyou!!!!!!!!!!", "found in a list of common passwords"),
    ("tab\there is not ok", "contains control characters"),
])
def test_cli_context_blocklist_and_characters(data, pw, sentence):
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "carol@example.com", "--name", "Ada Lovelace",
                 "--password-stdin"], data=data, input=pw + "\n")
    if sentence is None:
        assert p.returncode == 0, p.stderr
    else:
        line = one_line_refusal(p)
        assert line.startswith("gatehouse: password refused: "), line
        assert sentence in line, line


def test_cli_refuses_invalid_utf8_clearly(data):
    argv = [CLI, "--data", data, "user", "add", "--tenant", "demo",
            "--email", "carol@example.com", "--password-stdin"]
    p = subprocess.run(argv, input=b"caf\xe9 au lait, long enough\n",
                       capture_output=True, timeout=60, env=cli_env())
    assert p.returncode == 1
    assert p.stderr == b"gatehouse: password refused: not valid UTF-8 text\n"


def test_tenant_set_switches_profile_and_show_reports_the_rules(data):
    cli_ok(["user", "add", "--tenant", "demo", "--email", "dan@example.com",
            "--password-stdin"], data, input=GOOD_PW + "\n")
    p = cli_ok(["tenant", "set", "--tenant", "demo", "--password-profile",
                "classes"], data)
    assert p.stdout.strip() == (
        "tenant demo password policy: classes: 8 to 256 characters with at "
        "least 3 of: lower case, upper case, digits, others, blocklist on, "
        "no reuse of the last 5, no expiry")
    # 9 characters, 3 classes: fine under classes (refused under nist)
    cli_ok(["user", "passwd", "--email", "dan@example.com",
            "--password-stdin"], data, input="Kq7xmWp2z\n")
    p = run_cli(["user", "passwd", "--email", "dan@example.com",
                 "--password-stdin"], data=data, input="kq7xmwp2zz\n")
    assert one_line_refusal(p) == (
        "gatehouse: password refused: too few kinds of characters: 2 of at "
        "least 3 (lower case, upper case, digits, others)")
    # parameters on top of the profile; back to nist resets them
    cli_ok(["tenant", "set", "--tenant", "demo", "--password-min", "12",
            "--password-history", "2", "--password-max-age", "90"], data)
    show = cli_ok(["tenant", "show", "--tenant", "demo"], data).stdout
    assert "profile       classes" in show
    assert "min length    12\n" in show
    assert "history       2\n" in show
    assert "max age days  90\n" in show
    assert "min classes   3 (profile default)" in show
    cli_ok(["tenant", "set", "--tenant", "demo", "--password-profile", "nist"],
           data)
    show = cli_ok(["tenant", "show", "--tenant", "demo"], data).stdout
    assert "min length    15 (profile default)" in show
    assert "max age days  0 (profile default)" in show


@pytest.mark.parametrize("args,message", [
    (["--password-min", "7"], "the minimum length must be 8 to 256"),
    (["--password-max", "63"], "the maximum length must be 64 to 256"),
    (["--password-max", "300"], "the maximum length must be 64 to 256"),
    (["--password-classes", "5"],
     "the number of character classes must be 0 to 4"),
    (["--password-history", "25"], "the password history must be 0 to 24"),
    (["--password-max-age", "-1"], "must be 0 to 100000 or default"),
    (["--password-min", "100", "--password-max", "64"],
     "the minimum length (100) is above the maximum (64)"),
    (["--password-profile", "strong"], "unknown password profile"),
    (["--blocklist", "maybe"], "--blocklist must be on, off or default"),
    (["--password-min", "12x"], "--password-min must be"),
])
def test_tenant_set_refuses_out_of_range_values(data, args, message):
    p = run_cli(["tenant", "set", "--tenant", "demo"] + args, data=data)
    line = one_line_refusal(p)
    assert message in line, line


def test_tenant_set_usage_errors(data):
    assert run_cli(["tenant", "set", "--tenant", "demo"], data=data
                   ).returncode == 2
    assert run_cli(["tenant", "set", "--password-min", "9"], data=data
                   ).returncode == 2
    p = run_cli(["tenant", "set", "--tenant", "nope", "--password-min", "9"],
                data=data)
    assert one_line_refusal(p) == "gatehouse: unknown tenant: nope"


def test_nist_minimum_follows_the_tenant_mfa_requirement(data, tmp_path):
    eight = "kq7#zt!m"            # 8 characters, in no list
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "eve@example.com", "--password-stdin"], data=data,
                input=eight + "\n")
    assert "too short: 8 of at least 15 characters" in one_line_refusal(p)
    policy = tmp_path / "mfa.yaml"
    policy.write_text(POLICY_MFA)
    cli_ok(["policy", "apply", str(policy)], data)
    cli_ok(["user", "add", "--tenant", "demo", "--email", "eve@example.com",
            "--password-stdin"], data, input=eight + "\n")
    assert "min length    8 (profile default)" in cli_ok(
        ["tenant", "show", "--tenant", "demo"], data).stdout


def test_policy_apply_copies_a_stated_password_profile(data, tmp_path):
    stated = tmp_path / "classes.yaml"
    stated.write_text(POLICY_MFA.replace("    mfa: required\n",
                                         "    password_profile: classes\n"))
    p = cli_ok(["policy", "apply", str(stated)], data)
    assert "tenant demo: password profile classes" in p.stdout
    assert "profile       classes" in cli_ok(
        ["tenant", "show", "--tenant", "demo"], data).stdout
    # a file that does not state it leaves the tenant's choice alone
    silent = tmp_path / "silent.yaml"
    silent.write_text(POLICY_MFA.replace("    mfa: required\n",
                                         "    mfa: optional\n"))
    cli_ok(["policy", "apply", str(silent)], data)
    assert "profile       classes" in cli_ok(
        ["tenant", "show", "--tenant", "demo"], data).stdout


def test_cli_enforces_history(data):
    cli_ok(["user", "add", "--tenant", "demo", "--email", "fay@example.com",
            "--password-stdin"], data, input=GOOD_PW + "\n")
    cli_ok(["user", "passwd", "--email", "fay@example.com",
            "--password-stdin"], data, input=OTHER_PW + "\n")
    for old in (GOOD_PW, OTHER_PW):
        p = run_cli(["user", "passwd", "--email", "fay@example.com",
                     "--password-stdin"], data=data, input=old + "\n")
        assert one_line_refusal(p) == ("gatehouse: password refused: used "
                                       "before (one of your last 5 passwords)")
    cli_ok(["tenant", "set", "--tenant", "demo", "--password-history", "0"],
           data)
    cli_ok(["user", "passwd", "--email", "fay@example.com",
            "--password-stdin"], data, input=GOOD_PW + "\n")


def test_operator_blocklist_from_the_environment(data, tmp_path):
    extra = tmp_path / "ours.txt"
    extra.write_text("#!comment: our own words\nNorthwind Traders Forever\n")
    env = {"GATEHOUSE_PASSWORD_BLOCKLIST": str(extra)}
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "gil@example.com", "--password-stdin"], data=data,
                input="northwind traders forever\n", env=env)
    assert one_line_refusal(p) == ("gatehouse: password refused: found in a "
                                   "list of common passwords")
    missing = {"GATEHOUSE_PASSWORD_BLOCKLIST": str(tmp_path / "nope.txt")}
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "gil@example.com", "--password-stdin"], data=data,
                input=GOOD_PW + "\n", env=missing)
    assert "cannot read password blocklist" in one_line_refusal(p)
    # without the blocklist rule the lists are not needed at all
    cli_ok(["tenant", "set", "--tenant", "demo", "--blocklist", "off"], data)
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "gil@example.com", "--password-stdin"], data=data,
                input="northwind traders forever\n", env=missing)
    assert p.returncode == 0, p.stderr


def test_init_applies_the_default_policy(tmp_path):
    p = run_cli(["init", "--admin-email", ADMIN_EMAIL, "--password-stdin",
                 "--argon2-passes", "1", "--argon2-memory-mib", "8",
                 "--cert-cn", "127.0.0.1"], data=str(tmp_path / "d"),
                input="admin1234567890\n")
    assert "contains your email name" in one_line_refusal(p)
    assert not os.path.exists(str(tmp_path / "d" / "gatehouse.mdb"))


def test_passwd_and_unlock_usage(data):
    assert run_cli(["user", "passwd", "--email", ADMIN_EMAIL],
                   data=data).returncode == 2
    assert run_cli(["user", "add", "--tenant", "demo", "--email",
                    "x@example.com", "--must-change"], data=data
                   ).returncode == 2
    assert run_cli(["user", "unlock", "--email", ADMIN_EMAIL,
                    "--must-change"], data=data).returncode == 2
    p = run_cli(["user", "unlock", "--email", "nobody@example.com"],
                data=data)
    assert one_line_refusal(p) == "gatehouse: no such user: nobody@example.com"
    p = cli_ok(["user", "unlock", "--email", ADMIN_EMAIL], data)
    assert "was not locked" in p.stdout


# ---- the gateway's configuration ----------------------------------------------

def nginx_test(tmp_path, data, directives):
    """`nginx -t` on a minimal gatehouse configuration with directives in
    the http block. Returns (exit status, output)."""
    conf = tmp_path / "nginx.conf"
    conf.write_text("""
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
load_module %(m)s;
thread_pool gatehouse threads=1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(d)s/tmp;
    gatehouse_data %(data)s;
    %(x)s
    server {
        listen 127.0.0.1:%(port)d;
        gatehouse on;
    }
}
""" % {"d": tmp_path, "m": MODULE, "data": data, "x": "\n    ".join(directives),
       "port": free_port()})
    env = dict(os.environ, LD_PRELOAD=LIBASAN,
               ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf),
                        "-e", str(tmp_path / "error.log")],
                       capture_output=True, text=True, timeout=60, env=env)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("directive,message", [
    ("gatehouse_login_throttle lockout=101;", "has inconsistent values"),
    ("gatehouse_login_throttle failures=0;", "has inconsistent values"),
    ("gatehouse_login_throttle failures=9 lockout=8;", "inconsistent"),
    ("gatehouse_login_throttle address=10;", 'invalid "address=10"'),
    ("gatehouse_login_throttle speed=fast;", 'invalid "speed=fast"'),
    ("gatehouse_password_blocklist /nonexistent/blocklist.txt;",
     "cannot read password blocklist /nonexistent/blocklist.txt"),
])
def test_bad_throttle_or_blocklist_settings_stop_nginx(data, tmp_path,
                                                      directive, message):
    rc, out = nginx_test(tmp_path, data, [directive])
    assert rc != 0, out
    assert message in out, out


def test_good_throttle_and_blocklist_settings_pass(data, tmp_path):
    extra = tmp_path / "ours.txt"
    extra.write_text("northwind traders forever\n")
    rc, out = nginx_test(tmp_path, data, [
        "gatehouse_login_throttle failures=3 lockout=50 max_delay=5m "
        "address=100/1h;",
        "gatehouse_password_blocklist %s;" % extra])
    assert rc == 0, out


# ---- login defence ---------------------------------------------------------

def test_five_failures_give_429_and_the_right_password_waits(make_gateway):
    gw = make_gateway()
    gw.add_user("hal@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    for i in range(5):
        r = post_login(gw, s, csrf, "hal@example.com", "wrong %d" % i)
        assert r.status_code == 401, (i, r.status_code)
    r = post_login(gw, s, csrf, "hal@example.com", GOOD_PW)
    assert r.status_code == 429, r.status_code
    assert r.headers["Retry-After"] == "1"
    assert "Too many sign-in attempts. Please wait 1 second" in r.text
    assert SESSION_COOKIE not in set_cookies(r)
    time.sleep(1.2)
    r = post_login(gw, s, csrf, "hal@example.com", GOOD_PW)
    assert r.status_code == 303, r.status_code
    assert SESSION_COOKIE in set_cookies(r)
    # the success reset the counter: one failure is a plain 401 again
    s2 = gw.session()
    _, csrf2 = gw.login_page(s2)
    assert post_login(gw, s2, csrf2, "hal@example.com", "x").status_code == 401


def test_backoff_grows_and_answers_alike_for_unknown_accounts(make_gateway):
    gw = make_gateway()
    gw.add_user("ivy@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    answers = {}
    for email in ("ivy@example.com", "ghost@example.com"):
        for i in range(5):
            assert post_login(gw, s, csrf, email, "no").status_code == 401
        r = post_login(gw, s, csrf, email, GOOD_PW)
        assert r.status_code == 429
        answers[email] = (r.headers["Retry-After"], normalise(r.text))
        time.sleep(1.1)
        assert post_login(gw, s, csrf, email, "no").status_code == 401
        r = post_login(gw, s, csrf, email, GOOD_PW)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2"         # doubled
    assert answers["ivy@example.com"] == answers["ghost@example.com"]
    assert "ghost" not in answers["ghost@example.com"][1]


def test_per_address_limit_spans_accounts(make_gateway):
    gw = make_gateway(http_directives=[
        "gatehouse_login_throttle address=4/1m;"])
    gw.add_user("jo@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    for i in range(4):
        r = post_login(gw, s, csrf, "spray%d@example.com" % i, "Winter2024!")
        assert r.status_code == 401, (i, r.status_code)
    r = post_login(gw, s, csrf, "jo@example.com", GOOD_PW)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # a success does not count against the address: only failures do
    assert SESSION_COOKIE not in set_cookies(r)


def test_address_comes_from_forwarded_for_only_via_trusted_proxy(make_gateway):
    limit = "gatehouse_login_throttle address=3/1m;"
    trusted = make_gateway(http_directives=[
        limit, "gatehouse_trusted_proxies 127.0.0.1;"])
    direct = make_gateway(http_directives=[limit])
    for gw in (trusted, direct):
        s = gw.session()
        _, csrf = gw.login_page(s)
        for i in range(3):
            r = gw.post(LOGIN, s, data={"username": "k%d@example.com" % i,
                                        "password": "x", "csrf": csrf},
                        headers={"X-Forwarded-For": "203.0.113.1"})
            assert r.status_code == 401
        r = gw.post(LOGIN, s, data={"username": "k9@example.com",
                                    "password": "x", "csrf": csrf},
                    headers={"X-Forwarded-For": "203.0.113.2"})
        if gw is trusted:
            # another client behind the proxy: its own counter
            assert r.status_code == 401
        else:
            # a forged header from an untrusted peer changes nothing
            assert r.status_code == 429


def test_lockout_holds_until_an_administrator_unlocks(make_gateway):
    gw = make_gateway(http_directives=[
        "gatehouse_login_throttle lockout=7;"])
    gw.add_user("kim@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    locked = {}
    for email in ("kim@example.com", "phantom@example.com"):
        for i in range(7):
            while True:
                r = post_login(gw, s, csrf, email, "guess %d" % i)
                if r.status_code != 429:
                    break
                time.sleep(int(r.headers["Retry-After"]))
            assert r.status_code == 401
        r = post_login(gw, s, csrf, email, GOOD_PW)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "900"
        assert "ask your administrator" in r.text
        locked[email] = normalise(r.text)
    # locked known and locked unknown accounts look the same
    assert locked["kim@example.com"] == locked["phantom@example.com"]
    p = gw.cli("user", "unlock", "--email", "kim@example.com")
    assert p.returncode == 0, p.stderr
    assert "was locked; 7 consecutive failures forgotten" in p.stdout
    r = post_login(gw, s, csrf, "kim@example.com", GOOD_PW)
    assert r.status_code == 303
    events = [(e["event"], e["actor"]) for e in audit_records(gw)]
    assert ("lockout", "kim@example.com") in events
    assert ("lockout", "phantom@example.com") in events
    assert ("unlock", "cli:" + __import__("pwd").getpwuid(os.geteuid())[0]) \
        in events


# ---- no enumeration --------------------------------------------------------

def test_unknown_and_wrong_password_answers_are_identical(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    s = gw.session()
    _, csrf = gw.login_page(s)
    # the very same email, before and after the account exists: the same
    # bytes (the csrf token is the browser's own and does not change)
    before = post_login(gw, s, csrf, "liz@example.com", "wrong password 1")
    gw.add_user("liz@example.com", GOOD_PW, roles="member")
    after = post_login(gw, s, csrf, "liz@example.com", "wrong password 1")
    assert before.status_code == after.status_code == 401
    assert before.text == after.text
    assert GENERIC in after.text
    names = lambda r: sorted(k.lower() for k in r.headers  # noqa: E731
                             if k.lower() not in ("date",))
    assert names(before) == names(after)
    # unknown, wrong, disabled, no password: one answer
    gw.add_user("off@example.com", GOOD_PW, roles="member")
    gw.cli("user", "disable", "--email", "off@example.com")
    gw.cli("user", "add", "--tenant", "demo", "--email", "nopw@example.com")
    bodies = {}
    for what, (email, pw) in {"wrong": ("liz@example.com", "nope nope"),
                              "unknown": ("nobody@example.com", "nope nope"),
                              "disabled": ("off@example.com", GOOD_PW),
                              "no password": ("nopw@example.com", "x")
                              }.items():
        s = gw.session()
        _, csrf = gw.login_page(s)
        r = post_login(gw, s, csrf, email, pw)
        assert r.status_code == 401, what
        bodies[what] = normalise(r.text)
    assert len(set(bodies.values())) == 1, bodies.keys()


def test_unknown_user_and_wrong_password_medians_within_20_percent(
        make_gateway):
    """30 tries each, interleaved; Argon2id made to dominate a request."""
    gw = make_gateway(argon2_passes=2, argon2_memory_mib=32,
                      http_directives=[NO_THROTTLE])
    gw.add_user("mo@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    for _ in range(3):                                   # warm up
        post_login(gw, s, csrf, "mo@example.com", "warm up")
    times = {"unknown": [], "wrong": []}
    deadline = time.monotonic() + 90
    for i in range(30):
        for kind, email in (("unknown", "nobody%d@example.com" % i),
                            ("wrong", "mo@example.com")):
            t0 = time.perf_counter()
            r = post_login(gw, s, csrf, email, "not the password %d" % i)
            times[kind].append(time.perf_counter() - t0)
            assert r.status_code == 401, (kind, r.status_code)
        assert time.monotonic() < deadline, "login attempts too slow"
    med = {k: statistics.median(v) for k, v in times.items()}
    print("login medians over 30 tries: unknown %.1f ms, wrong %.1f ms"
          % (med["unknown"] * 1000, med["wrong"] * 1000))
    assert med["wrong"] > 0.02, med           # the hash dominates
    assert abs(med["unknown"] - med["wrong"]) <= 0.2 * med["wrong"], med


# ---- the password lifecycle -------------------------------------------------

def test_forced_change_reaches_nothing_but_the_change_page(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    gw.backend.clear()
    cli_ok(["user", "add", "--tenant", "demo", "--email", "ned@example.com",
            "--roles", "member", "--password-stdin", "--must-change"],
           gw.data, input=GOOD_PW + "\n")
    s, r = gw.login(email="ned@example.com", password=GOOD_PW, rd="/app/x")
    assert r.status_code == 303
    assert local_location(r, gw.port) == PASSWORD_PAGE + "?rd=/app/x"
    restricted = s.cookies.get(SESSION_COOKIE)
    assert restricted
    # nothing else is reachable with that session
    r = gw.get("/app/x", s, headers=BROWSER)
    assert r.status_code == 302
    assert local_location(r, gw.port) == PASSWORD_PAGE + "?rd=/app/x"
    r = gw.get("/app/x", s, headers=API)
    assert r.status_code == 403
    assert r.json()["error"] == "password_change_required"
    assert gw.get(WHOAMI, s, headers=API).status_code == 401
    assert gw.backend.requests() == []
    # the page (where the redirect led: rd travels along)
    page, csrf, rd = change_form(gw, s, rd="/app/x")
    assert "Your password must be changed before you continue." in page.text
    assert 'id="rules">Password rules: nist: 15 to 256 characters' in \
        page.text
    assert rd == "/app/x"
    # refusals
    r = post_change(gw, s, "not my password", OTHER_PW)
    assert r.status_code == 400
    assert "The current password is not correct." in r.text
    r = post_change(gw, s, GOOD_PW, OTHER_PW, confirm=OTHER_PW + "x")
    assert r.status_code == 400
    assert "The new password and its confirmation differ." in r.text
    r = post_change(gw, s, GOOD_PW, GOOD_PW)
    assert r.status_code == 400
    assert verdict_items(r.text) == [
        "used before (one of your last 5 passwords)"]
    r = post_change(gw, s, GOOD_PW, "password")
    assert r.status_code == 400
    assert verdict_items(r.text) == [
        "too short: 8 of at least 15 characters",
        "found in a list of common passwords"]
    # the same words as the CLI
    p = run_cli(["user", "passwd", "--email", "ned@example.com",
                 "--password-stdin"], data=gw.data, input="password\n")
    assert one_line_refusal(p) == (
        "gatehouse: password refused: " + "; ".join(verdict_items(r.text)))
    # success: a new full session, on to rd
    r = post_change(gw, s, GOOD_PW, OTHER_PW, rd="/app/x")
    assert r.status_code == 303
    assert local_location(r, gw.port) == "/app/x"
    assert s.cookies.get(SESSION_COOKIE) != restricted
    r = gw.get("/app/x", s, headers=API)
    assert r.status_code == 200, r.status_code
    seen = {k.lower(): v for k, v in gw.backend.requests()[-1]["headers"]}
    assert seen["x-gatehouse-email"] == "ned@example.com"
    # the restricted session is gone
    old = gw.session()
    old.cookies.set(SESSION_COOKIE, restricted)
    assert gw.get(PASSWORD_PAGE, old, headers=API).status_code == 401
    # next login: no detour
    _, r = gw.login(email="ned@example.com", password=OTHER_PW, rd="/y")
    assert local_location(r, gw.port) == "/y"


def test_admin_forced_reset_ends_sessions_and_detours_next_login(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    gw.add_user("ola@example.com", GOOD_PW, roles="member")
    s = gw.logged_in("ola@example.com", GOOD_PW)
    assert gw.get(WHOAMI, s, headers=API).status_code == 200
    p = gw.cli("user", "passwd", "--email", "ola@example.com", "--must-change")
    assert p.returncode == 0, p.stderr
    assert "must change the password at next login (1 session ended)" in \
        p.stdout
    assert gw.get(WHOAMI, s, headers=API).status_code == 401
    _, r = gw.login(email="ola@example.com", password=GOOD_PW)
    assert local_location(r, gw.port).startswith(PASSWORD_PAGE + "?rd=")
    # an administrator's temporary password, to be changed at first use
    p = gw.cli("user", "passwd", "--email", "ola@example.com",
               "--password-stdin", "--must-change", input=THIRD_PW + "\n")
    assert p.returncode == 0, p.stderr
    _, r = gw.login(email="ola@example.com", password=THIRD_PW)
    assert local_location(r, gw.port).startswith(PASSWORD_PAGE)


def test_expired_password_forces_the_change_page(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    gw.add_user("pia@example.com", GOOD_PW, roles="member")
    cli_ok(["tenant", "set", "--tenant", "demo", "--password-max-age", "30"],
           gw.data)
    _, r = gw.login(email="pia@example.com", password=GOOD_PW)
    assert local_location(r, gw.port) == "/"            # 0 days old
    age_password(gw.data, user_id(gw, "pia@example.com"), 31)
    s, r = gw.login(email="pia@example.com", password=GOOD_PW, rd="/z")
    assert local_location(r, gw.port) == PASSWORD_PAGE + "?rd=/z"
    assert gw.get("/z", s, headers=API).status_code == 403
    r = post_change(gw, s, GOOD_PW, OTHER_PW, rd="/z")
    assert local_location(r, gw.port) == "/z"
    _, r = gw.login(email="pia@example.com", password=OTHER_PW)
    assert local_location(r, gw.port) == "/"


def test_changing_the_password_ends_the_users_other_sessions(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    gw.add_user("quin@example.com", GOOD_PW, roles="member")
    gw.add_user("rex@example.com", OTHER_PW, roles="member")
    a = gw.logged_in("quin@example.com", GOOD_PW)
    b = gw.logged_in("quin@example.com", GOOD_PW)
    c = gw.logged_in("rex@example.com", OTHER_PW)
    old_a = a.cookies.get(SESSION_COOKIE)
    r = post_change(gw, a, GOOD_PW, THIRD_PW, rd="/done")
    assert r.status_code == 303
    assert local_location(r, gw.port) == "/done"
    assert a.cookies.get(SESSION_COOKIE) != old_a        # rotated
    assert gw.get(WHOAMI, a, headers=API).status_code == 200
    assert gw.get(WHOAMI, b, headers=API).status_code == 401
    assert gw.get(WHOAMI, c, headers=API).status_code == 200   # another user
    stale = gw.session()
    stale.cookies.set(SESSION_COOKIE, old_a)
    assert gw.get(WHOAMI, stale, headers=API).status_code == 401
    # the old password is gone, the new one works
    s = gw.session()
    _, csrf = gw.login_page(s)
    assert post_login(gw, s, csrf, "quin@example.com", GOOD_PW
                      ).status_code == 401
    assert post_login(gw, s, csrf, "quin@example.com", THIRD_PW
                      ).status_code == 303


def test_change_page_needs_a_session_and_a_valid_form(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    anon = gw.session()
    r = gw.get(PASSWORD_PAGE, anon, headers=BROWSER)
    assert r.status_code == 302
    assert local_location(r, gw.port) == (
        LOGIN + "?rd=" + quote(PASSWORD_PAGE, safe=""))
    assert gw.get(PASSWORD_PAGE, anon, headers=API).status_code == 401
    r = gw.post(PASSWORD_PAGE, anon, data={"current": "x", "new": "y",
                                           "confirm": "y"}, headers=API)
    assert r.status_code == 401
    s = gw.logged_in()
    r = post_change(gw, s, ADMIN_PASSWORD, OTHER_PW, csrf="")
    assert r.status_code == 403
    r = post_change(gw, s, ADMIN_PASSWORD, OTHER_PW,
                    headers=dict(BROWSER, Origin="https://evil.example"))
    assert r.status_code == 403
    assert gw.post(PASSWORD_PAGE, s, data="x",
                   headers={"Content-Type": "text/plain"}).status_code == 415
    r = s.request("PUT", gw.url(PASSWORD_PAGE), data="x", timeout=10,
                  allow_redirects=False)
    assert r.status_code == 405
    # a hostile rd falls back to "/"
    r = post_change(gw, s, ADMIN_PASSWORD, OTHER_PW, rd="https://evil.example/")
    assert r.status_code == 303
    assert local_location(r, gw.port) == "/"
    # signing out works from the page's own form
    r = gw.post(LOGOUT, s)
    assert r.status_code == 303


def test_change_page_refuses_oversized_passwords(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    s = gw.logged_in()
    huge = "x" * 1025                       # over GH_PASSWORD_MAX bytes
    r = post_change(gw, s, ADMIN_PASSWORD, huge)
    assert r.status_code == 400
    assert "A password is longer than the gateway accepts." in r.text
    long = "correct horse " * 19            # 266 characters: the rule says
    r = post_change(gw, s, ADMIN_PASSWORD, long)
    assert r.status_code == 400
    assert verdict_items(r.text) == [
        "too long: 266 of at most 256 characters"]
    assert gw.get(WHOAMI, s, headers=API).status_code == 200


def test_change_is_throttled_like_a_login(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    s = gw.logged_in()
    for i in range(5):
        r = post_change(gw, s, "guess %d" % i, OTHER_PW)
        assert r.status_code == 400
    r = post_change(gw, s, ADMIN_PASSWORD, OTHER_PW)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    time.sleep(1.1)
    r = post_change(gw, s, ADMIN_PASSWORD, OTHER_PW)
    assert r.status_code == 303


# ---- the audit trail ---------------------------------------------------------

def test_audit_records_security_events_without_secrets(make_gateway):
    gw = make_gateway(http_directives=[NO_ADDRESS_LIMIT])
    gw.add_user("sam@example.com", GOOD_PW, roles="member")
    s = gw.session()
    _, csrf = gw.login_page(s)
    post_login(gw, s, csrf, "sam@example.com", "wrong secret 1")
    post_login(gw, s, csrf, "nobody@example.com", "wrong secret 2")
    for _ in range(4):
        post_login(gw, s, csrf, "sam@example.com", "wrong secret 3")
    post_login(gw, s, csrf, "sam@example.com", GOOD_PW)         # 429
    time.sleep(1.1)
    s = gw.logged_in("sam@example.com", GOOD_PW)
    assert post_change(gw, s, GOOD_PW, OTHER_PW).status_code == 303
    cli_ok(["tenant", "set", "--tenant", "demo", "--password-history", "3"],
           gw.data)
    recs = audit_records(gw)
    by_event = {}
    for e in recs:
        by_event.setdefault(e["event"], []).append(e)
    fails = by_event["login_failure"]
    assert any(e["actor"] == "sam@example.com" and e["tenant"] == "demo" and
               e["detail"].startswith("bad_password") for e in fails)
    assert any(e["actor"] == "nobody@example.com" and
               e["detail"].startswith("unknown_user") for e in fails)
    for e in fails:
        assert e["addr"] == "127.0.0.1"
        assert re.fullmatch(r"[0-9a-f]{32}", e["request_id"]), e
    assert by_event["login_throttled"][0]["detail"].startswith(
        "account_backoff")
    assert by_event["login"][-1]["actor"] == "sam@example.com"
    assert by_event["password_change"][0]["detail"].startswith(
        "self-service")
    assert "no reuse of the last 3" in \
        by_event["password_policy_change"][-1]["detail"]
    audit = audit_export_text(gw)
    with open(gw.errlog) as f:
        errlog = f.read()
    for secret in ("wrong secret", GOOD_PW, OTHER_PW):
        assert secret not in audit
        assert secret not in errlog


def test_password_typed_into_the_email_field_never_reaches_the_audit_log(
        make_gateway):
    """People type their password into the email field by mistake; the
    audit trail records only well-formed addresses."""
    gw = make_gateway()
    s = gw.session()
    _, csrf = gw.login_page(s)
    secret = "my secret passphrase 42"
    r = post_login(gw, s, csrf, secret, "anything at all here")
    assert r.status_code == 401
    r = post_login(gw, s, csrf, "Ghost@Example.COM", "anything at all here")
    assert r.status_code == 401
    records = audit_records(gw)
    text = repr(records)
    assert secret not in text
    failures = [rec for rec in records if rec.get("event") == "login_failure"]
    assert len(failures) >= 2, records
    actors = [rec.get("actor") for rec in failures]
    assert "(not an email address)" in actors, actors
    assert "ghost@example.com" in actors, actors
