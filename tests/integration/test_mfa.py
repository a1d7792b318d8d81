"""Second factor: enrolment by the pages, TOTP and HOTP codes computed
independently with pyotp from the otpauth URI, replay refusal (also under
concurrency), recovery codes, tenant requirement, step-up, throttling,
administrator reset, and the secret never stored in clear."""
import base64
import glob
import html
import itertools
import os
import re
import subprocess
import threading
import time
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pyotp
import pytest

from conftest import (API, BROWSER, LIBASAN, LOGOUT, NGINX, SESSION_COOKIE,
                      WHOAMI, assert_hsts, input_value)

PW = "mfa test password 2026!"
MFA = "/.gatehouse/mfa"
ENROL = "/.gatehouse/mfa/enroll"
_seq = itertools.count(1)

# Every test signs in from 127.0.0.1: the per-address limit would add up
# the whole module's deliberate failures. The per-account rule is the one
# under test here (test_login covers the address rule).
GATEWAY_OPTIONS = {"http_directives": [
    "gatehouse_login_throttle address=1000/10m;"]}

POLICY = """\
version: 1
roles: [admin]
tenants:
  demo:
    display: Demo
  strict:
    display: Strict Corp
apps:
  demo:
    tenants: [demo, strict]
    rules:
      - name: staff
        effect: allow
        roles: [member, gatehouse-admin, admin]
  admin-tools:
    tenants: [demo, strict]
    mfa: required
    rules:
      - name: tools
        effect: allow
        roles: [member, admin]
"""


@pytest.fixture(scope="module", autouse=True)
def policy(gateway):
    path = os.path.join(gateway.base, "mfa-policy.yaml")
    with open(path, "w") as f:
        f.write(POLICY)
    p = gateway.cli("policy", "apply", path)
    assert p.returncode == 0, p.stderr


def new_user(gw, tenant="demo", roles="member"):
    email = "mfa%d@example.com" % next(_seq)
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def code_element(page, elem_id):
    m = re.search(r'id="%s">([^<]*)<' % elem_id, page)
    return html.unescape(m.group(1)) if m else None


def audit_text(gw):
    """The whole audit log, as `gatehouse audit export` prints it."""
    p = gw.cli("audit", "export")
    assert p.returncode == 0, p.stderr
    return p.stdout


def whoami(gw, s):
    r = gw.get(WHOAMI, s, headers=API)
    return r.status_code, (r.json() if r.status_code == 200 else None)


def enrol_start(gw, s, rd=None, **choice):
    r = gw.get(ENROL, s, params={"rd": rd} if rd else None, headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    form = {"action": "start", "csrf": input_value(r.text, "csrf"),
            "rd": input_value(r.text, "rd")}
    form.update(choice)
    r = gw.post(ENROL, s, data=form, headers=BROWSER)
    return r


def enrol(gw, s, rd=None, **choice):
    """Enrol through the pages; returns (pyotp object, uri, recovery codes,
    the activation response)."""
    r = enrol_start(gw, s, rd, **choice)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    uri = code_element(r.text, "otpauth-uri")
    assert uri and uri.startswith("otpauth://"), r.text[:1000]
    otp = pyotp.parse_uri(uri)
    csrf = input_value(r.text, "csrf")
    rd_field = input_value(r.text, "rd")
    if isinstance(otp, pyotp.HOTP):
        code = otp.at(0)
    else:
        code = otp.now()
    r = gw.post(ENROL, s, data={"action": "activate", "code": code,
                                "csrf": csrf, "rd": rd_field},
                headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    codes = re.findall(r"<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})"
                       r"</li>", r.text)
    return otp, uri, codes, r


def submit_code(gw, s, code, rd=None):
    r = gw.get(MFA, s, params={"rd": rd} if rd else None, headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return gw.post(MFA, s, data={"code": code, "csrf": input_value(r.text, "csrf"),
                                 "rd": input_value(r.text, "rd")},
                   headers=BROWSER)


def password_step(gw, email, rd=None):
    """Sign in with the password; returns (session, response)."""
    s, r = gw.login(email=email, password=PW, rd=rd)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return s, r


def logout(gw, s):
    r = gw.post(LOGOUT, s, headers={"Origin": gw.origin})
    assert r.status_code == 303


def future_code(otp, steps=1):
    return otp.at(time.time() + 30 * steps)


# ---- enrolment and sign-in ---------------------------------------------------

def test_enrol_totp_then_sign_in_with_a_fresh_code(gateway, backend):
    email = new_user(gateway)
    s, r = password_step(gateway, email)
    assert r.headers["Location"] == "/"                 # no factor yet
    status, me = whoami(gateway, s)
    assert status == 200 and me["auth"] == "pwd"

    page = enrol_start(gateway, s)
    assert page.status_code == 200
    assert_hsts(page)
    uri = code_element(page.text, "otpauth-uri")
    parts = urlsplit(uri)
    q = parse_qs(parts.query)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Demo:" + email
    assert q["issuer"] == ["Demo"] and q["algorithm"] == ["SHA1"]
    assert q["digits"] == ["6"] and q["period"] == ["30"]
    secret = q["secret"][0]
    assert code_element(page.text, "secret") == secret
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) * 8 >= 160
    assert '<svg ' in page.text and 'id="otpauth-qr"' in page.text

    # not active until a code confirms it: a new sign-in needs no code
    s2, r2 = password_step(gateway, email)
    assert r2.headers["Location"] == "/"

    # a wrong code does not activate it
    otp = pyotp.TOTP(secret)
    bad = str((int(otp.now()) + 1) % 1000000).zfill(6)
    r = gateway.post(ENROL, s, data={"action": "activate", "code": bad,
                                     "csrf": input_value(page.text, "csrf"),
                                     "rd": "/"}, headers=BROWSER)
    assert r.status_code == 401
    r = gateway.post(ENROL, s, data={"action": "activate", "code": otp.now(),
                                     "csrf": input_value(page.text, "csrf"),
                                     "rd": "/"}, headers=BROWSER)
    assert r.status_code == 200, r.text[:500]
    codes = re.findall(r"<li>([a-z2-7-]{19})</li>", r.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'id="recovery-codes"' in r.text
    # the enrolment proved the factor: the session now has it
    status, me = whoami(gateway, s)
    assert status == 200 and me["auth"] == "pwd+otp" and me["mfa_time"] > 0

    # sign out, sign in: the password alone opens no session
    logout(gateway, s)
    s, r = password_step(gateway, email, rd="/hello")
    assert r.headers["Location"] == MFA + "?rd=/hello"
    assert whoami(gateway, s)[0] == 401
    backend.clear()
    r = gateway.get("/hello", s, headers=BROWSER)
    assert r.status_code == 302 and r.headers["Location"].startswith(MFA + "?rd=")
    r = gateway.get("/hello", s, headers=API)
    assert r.status_code == 401 and r.json()["error"] == "second_factor_required"
    assert backend.requests() == []

    pending = s.cookies.get(SESSION_COOKIE)
    code = future_code(otp)
    r = submit_code(gateway, s, code, rd="/hello")
    assert r.status_code == 303 and r.headers["Location"] == "/hello"
    assert s.cookies.get(SESSION_COOKIE) != pending      # a new session
    r = gateway.get("/hello", s, headers=API)
    assert r.status_code == 200
    seen = dict(backend.requests()[-1]["headers"])
    assert seen["X-Gatehouse-Auth"] == "pwd+otp"
    claims = jwt.decode(seen["X-Gatehouse-Assertion"],
                        options={"verify_signature": False})
    assert claims["amr"] == ["pwd", "otp"] and claims["sub"]
    # the pending cookie died with the step
    s_old = gateway.session()
    s_old.cookies.set(SESSION_COOKIE, pending)
    assert gateway.get("/hello", s_old, headers=API).status_code == 401

    # the same code again: refused
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    r = submit_code(gateway, s, code)
    assert r.status_code == 401 and "not valid" in r.text
    assert whoami(gateway, s)[0] == 401


def test_two_parallel_submissions_of_one_code_give_one_session(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, _, _, _ = enrol(gateway, s)
    logout(gateway, s)

    code = future_code(otp)
    sessions = []
    for _ in range(2):
        s, _ = password_step(gateway, email)
        r = gateway.get(MFA, s, headers=BROWSER)
        sessions.append((s, input_value(r.text, "csrf")))
    results = [None, None]
    barrier = threading.Barrier(2)

    def go(i):
        s, csrf = sessions[i]
        barrier.wait(5)
        results[i] = gateway.post(MFA, s, data={"code": code, "csrf": csrf,
                                                "rd": "/"},
                                  headers=BROWSER).status_code

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [303, 401], results
    granted = [s for (s, _), st in zip(sessions, results) if st == 303]
    refused = [s for (s, _), st in zip(sessions, results) if st == 401]
    assert whoami(gateway, granted[0])[0] == 200
    assert whoami(gateway, refused[0])[0] == 401


def test_recovery_code_works_once_and_says_how_many_remain(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    _, _, codes, _ = enrol(gateway, s)
    assert len(codes) == 10
    logout(gateway, s)

    s, _ = password_step(gateway, email)
    r = submit_code(gateway, s, codes[3].upper().replace("-", " "))
    assert r.status_code == 200, r.text[:300]
    assert "9 recovery codes left" in r.text
    status, me = whoami(gateway, s)
    assert status == 200 and "otp" in me["auth"]
    audit = audit_text(gateway)
    assert '"action":"mfa.recovery_used"' in audit
    assert codes[3] not in audit
    logout(gateway, s)

    s, _ = password_step(gateway, email)
    r = submit_code(gateway, s, codes[3])
    assert r.status_code == 401
    assert whoami(gateway, s)[0] == 401
    r = submit_code(gateway, s, codes[4])
    assert r.status_code == 200 and "8 recovery codes left" in r.text


def test_hotp_enrol_replay_and_resynchronisation(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, uri, _, _ = enrol(gateway, s, type="hotp")
    assert uri.startswith("otpauth://hotp/") and "counter=0" in uri
    assert isinstance(otp, pyotp.HOTP)
    logout(gateway, s)

    s, _ = password_step(gateway, email)
    assert submit_code(gateway, s, otp.at(1)).status_code == 303
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    assert submit_code(gateway, s, otp.at(1)).status_code == 401   # replay
    # within the look-ahead of 10: counter 2 + 9
    assert submit_code(gateway, s, otp.at(11)).status_code == 303
    logout(gateway, s)
    # far ahead (counter 40): the page asks for the next one
    s, _ = password_step(gateway, email)
    r = submit_code(gateway, s, otp.at(40))
    assert r.status_code == 401 and "next code" in r.text
    assert whoami(gateway, s)[0] == 401
    # a code that is not the next one does not finish it
    assert submit_code(gateway, s, otp.at(45)).status_code == 401
    r = submit_code(gateway, s, otp.at(40))
    assert r.status_code == 401 and "next code" in r.text
    assert submit_code(gateway, s, otp.at(41)).status_code == 303
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    assert submit_code(gateway, s, otp.at(41)).status_code == 401
    assert submit_code(gateway, s, otp.at(42)).status_code == 303


@pytest.mark.parametrize("algorithm,digits", [("sha256", "8"), ("sha512", "6")])
def test_totp_sha2_factors(gateway, algorithm, digits):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, uri, _, _ = enrol(gateway, s, algorithm=algorithm, digits=digits)
    q = parse_qs(urlsplit(uri).query)
    assert q["algorithm"] == [algorithm.upper()] and q["digits"] == [digits]
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    assert submit_code(gateway, s, future_code(otp)).status_code == 303


def test_bad_enrolment_choices_are_refused(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    for choice in ({"type": "hotp", "algorithm": "sha256"},
                   {"type": "sms"}, {"digits": "7"}, {"algorithm": "md5"}):
        r = enrol_start(gateway, s, **choice)
        assert r.status_code == 400, choice


# ---- who may enrol ----------------------------------------------------------

def test_password_alone_cannot_replace_an_existing_factor(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    enrol(gateway, s)
    logout(gateway, s)

    s, _ = password_step(gateway, email)           # pending: password only
    r = gateway.get(ENROL, s, headers=BROWSER)
    assert r.status_code == 303 and r.headers["Location"].startswith(MFA)
    page = gateway.get(MFA, s, headers=BROWSER)
    r = gateway.post(ENROL, s, data={"action": "start",
                                     "csrf": input_value(page.text, "csrf"),
                                     "rd": "/"}, headers=BROWSER)
    assert r.status_code == 403 and r.json()["error"] == "mfa_enrolled"


def test_second_factor_forms_need_csrf(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, _, _, _ = enrol(gateway, s)
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    page = gateway.get(MFA, s, headers=BROWSER)
    csrf = input_value(page.text, "csrf")
    other = gateway.session()
    other_csrf = input_value(gateway.get("/.gatehouse/login", other,
                                         headers=BROWSER).text, "csrf")
    code = future_code(otp)
    cases = [
        ({"code": code}, {}),                                     # no token
        ({"code": code, "csrf": "x" * 43}, {}),                   # wrong
        ({"code": code, "csrf": other_csrf}, {}),                 # other's
        ({"code": code, "csrf": csrf}, {"Origin": "https://evil.example"}),
    ]
    for form, headers in cases:
        h = dict(BROWSER)
        h.update(headers)
        r = gateway.post(MFA, s, data=form, headers=h)
        assert r.status_code == 403, (form, headers, r.status_code)
        r = gateway.post(ENROL, s, data=dict(form, action="start"), headers=h)
        assert r.status_code == 403, (form, headers, r.status_code)
    assert whoami(gateway, s)[0] == 401
    # the code was never consumed by the refused posts
    assert submit_code(gateway, s, code).status_code == 303


def test_no_session_no_second_factor_pages(gateway):
    s = gateway.session()
    for path in (MFA, ENROL):
        r = gateway.get(path, s, headers=API)
        assert r.status_code == 401
        r = gateway.get(path, s, headers=BROWSER)
        assert r.status_code == 302 and "/.gatehouse/login" in r.headers["Location"]
        r = gateway.post(path, s, data={"code": "123456"}, headers=API)
        assert r.status_code == 401


def test_user_disabled_while_waiting_for_the_code_cannot_finish(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, _, _, _ = enrol(gateway, s)
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    r = gateway.get(MFA, s, headers=BROWSER)
    assert r.status_code == 200
    form = {"code": future_code(otp), "csrf": input_value(r.text, "csrf"),
            "rd": input_value(r.text, "rd")}
    p = gateway.cli("user", "disable", "--email", email)
    assert p.returncode == 0, p.stderr
    # a valid, unused code is not enough once the account is disabled
    r = gateway.post(MFA, s, data=form, headers=BROWSER)
    assert r.status_code == 302, (r.status_code, r.headers.get("Location"))
    assert r.headers["Location"].startswith("/.gatehouse/login")
    assert whoami(gateway, s)[0] == 401


# ---- throttling ---------------------------------------------------------------

def test_wrong_codes_are_throttled_per_account(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, _, _, _ = enrol(gateway, s)
    logout(gateway, s)
    s, _ = password_step(gateway, email)
    good = future_code(otp)
    wrong = str((int(good) + 500000) % 1000000).zfill(6)
    statuses = []
    for _ in range(9):
        r = submit_code(gateway, s, wrong)
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            break
    assert 429 in statuses, statuses
    # a fresh password does not buy fresh guesses: still throttled
    s2, r = gateway.login(email=email, password=PW)
    if r.status_code == 303:
        r = submit_code(gateway, s2, wrong)
    assert r.status_code == 429
    audit = audit_text(gateway)
    assert '"action":"mfa.failure"' in audit
    assert '"action":"mfa.throttled"' in audit
    gateway.cli("user", "unlock", "--email", email)


# ---- tenant requirement, step-up, off ---------------------------------------

def test_tenant_required_forces_enrolment_before_any_session(gateway, backend):
    p = gateway.cli("tenant", "set", "--tenant", "strict", "--mfa", "required")
    assert p.returncode == 0, p.stderr
    assert "strict mfa: required" in p.stdout
    email = new_user(gateway, tenant="strict")
    s, r = password_step(gateway, email, rd="/x")
    assert r.headers["Location"] == ENROL + "?rd=/x"
    assert whoami(gateway, s)[0] == 401
    backend.clear()
    assert gateway.get("/x", s, headers=API).status_code == 401
    assert backend.requests() == []
    otp, _, codes, r = enrol(gateway, s, rd="/x")
    assert len(codes) == 10
    assert 'href="/x"' in r.text
    r = gateway.get("/x", s, headers=API)
    assert r.status_code == 200
    status, me = whoami(gateway, s)
    assert me["auth"] == "pwd+otp"


def test_tenant_required_applies_to_live_sessions_at_once(gateway, backend):
    email = new_user(gateway, tenant="strict")
    gateway.cli("tenant", "set", "--tenant", "strict", "--mfa", "optional")
    s = gateway.logged_in(email=email, password=PW)
    assert gateway.get("/y", s, headers=API).status_code == 200
    p = gateway.cli("tenant", "set", "--tenant", "strict", "--mfa", "required")
    assert p.returncode == 0
    r = gateway.get("/y", s, headers=API)
    assert r.status_code == 403 and r.json()["reason"] == "mfa_required"
    r = gateway.get("/y", s, headers=BROWSER)
    assert r.status_code == 302 and r.headers["Location"] == MFA + "?rd=/y"
    p = gateway.cli("tenant", "show", "--tenant", "strict")
    assert re.search(r"^  mfa\s+required$", p.stdout, re.M), p.stdout


def test_step_up_on_an_mfa_app_continues_without_signing_in_again(gateway, backend):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    backend.clear()
    r = gateway.get("/admin-tools/report", s, headers=API)
    assert r.status_code == 403 and r.json()["reason"] == "mfa_required"
    r = gateway.get("/admin-tools/report", s, headers=BROWSER)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc == MFA + "?rd=/admin-tools/report"
    r = gateway.get(loc, s, headers=BROWSER)          # no factor: enrol first
    assert r.status_code == 303
    assert r.headers["Location"] == ENROL + "?rd=/admin-tools/report"
    assert backend.requests() == []
    otp, _, _, r = enrol(gateway, s, rd="/admin-tools/report")
    assert 'href="/admin-tools/report"' in r.text
    r = gateway.get("/admin-tools/report", s, headers=API)
    assert r.status_code == 200
    assert dict(backend.requests()[-1]["headers"])["X-Gatehouse-Auth"] == "pwd+otp"

    # and a user with a factor proves it at sign-in, then reaches it directly
    logout(gateway, s)
    s, _ = password_step(gateway, email, rd="/admin-tools/")
    r = submit_code(gateway, s, future_code(otp), rd="/admin-tools/")
    assert r.status_code == 303 and r.headers["Location"] == "/admin-tools/"
    assert gateway.get("/admin-tools/", s, headers=API).status_code == 200


def test_tenant_off_refuses_enrolment_and_skips_the_second_step(gateway):
    p = gateway.cli("tenant", "add", "lax")
    assert p.returncode == 0, p.stderr
    email = new_user(gateway, tenant="lax")
    p = gateway.cli("tenant", "set", "--tenant", "lax", "--mfa", "off")
    assert p.returncode == 0, p.stderr
    s = gateway.logged_in(email=email, password=PW)
    r = gateway.get(ENROL, s, headers=BROWSER)
    assert r.status_code == 403 and r.json()["error"] == "mfa_off"
    assert whoami(gateway, s)[1]["auth"] == "pwd"


def test_policy_file_level_is_copied_into_the_tenant(gateway):
    path = os.path.join(gateway.base, "mfa-policy-2.yaml")
    with open(path, "w") as f:
        f.write(POLICY.replace("    display: Strict Corp\n",
                               "    display: Strict Corp\n    mfa: off\n"))
    p = gateway.cli("policy", "apply", path)
    assert p.returncode == 0, p.stderr
    assert "tenant strict: mfa off" in p.stdout
    p = gateway.cli("tenant", "show", "--tenant", "strict")
    assert re.search(r"^  mfa\s+off$", p.stdout, re.M), p.stdout
    p = gateway.cli("tenant", "set", "--tenant", "strict", "--mfa", "sometimes")
    assert p.returncode == 1 and p.stderr.count("\n") == 1
    # back to the module's policy
    p = gateway.cli("policy", "apply", os.path.join(gateway.base,
                                                     "mfa-policy.yaml"))
    assert p.returncode == 0


@pytest.mark.parametrize("directive,message", [
    ("gatehouse_mfa_totp_window 11;", "gatehouse_mfa_totp_window must be 0 to 10"),
    ("gatehouse_mfa_totp_window -1;", "directive invalid number"),
    ("gatehouse_mfa_hotp_window 0;", "gatehouse_mfa_hotp_window must be 1 to 100"),
    ("gatehouse_mfa_hotp_window 101;", "gatehouse_mfa_hotp_window must be 1 to 100"),
])
def test_code_windows_out_of_range_stop_nginx(gateway, tmp_path, directive,
                                               message):
    with open(gateway.conf) as f:
        text = f.read()
    throttle = "gatehouse_login_throttle address=1000/10m;"
    assert text.count(throttle) == 1 and text.count(gateway.errlog) == 1
    conf = str(tmp_path / "window.conf")
    with open(conf, "w") as f:      # its [emerg] goes to a log of its own
        f.write(text.replace(throttle, throttle + "\n    " + directive)
                .replace(gateway.errlog, str(tmp_path / "t.log")))
    env = dict(os.environ, LD_PRELOAD=LIBASAN,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
    p = subprocess.run([NGINX, "-t", "-p", os.path.join(gateway.data, "nginx"),
                        "-c", conf, "-e", str(tmp_path / "t.log")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode != 0, p.stderr
    assert message in p.stderr, p.stderr


# ---- administration -------------------------------------------------------------

def test_admin_reset_removes_the_factor(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    enrol(gateway, s)
    p = gateway.cli("user", "mfa-status", "--email", email)
    assert p.returncode == 0 and "totp SHA1, 6 digits" in p.stdout
    assert "10 recovery codes left" in p.stdout
    p = gateway.cli("user", "mfa-reset", "--email", email)
    assert p.returncode == 0, p.stderr
    audit = audit_text(gateway)
    assert '"action":"mfa.reset"' in audit
    s, r = password_step(gateway, email)
    assert r.headers["Location"] == "/"            # no second step any more
    p = gateway.cli("user", "mfa-reset", "--email", email)
    assert p.returncode == 1 and "has no second factor" in p.stderr
    p = gateway.cli("user", "mfa-status", "--email", email)
    assert "no second factor" in p.stdout
    p = gateway.cli("user", "mfa-reset", "--email", "nobody@example.com")
    assert p.returncode == 1


# ---- secrets at rest ---------------------------------------------------------------

def test_secret_is_not_findable_in_the_data_files(gateway):
    email = new_user(gateway)
    s = gateway.logged_in(email=email, password=PW)
    otp, uri, codes, _ = enrol(gateway, s, algorithm="sha512")
    secret_b32 = parse_qs(urlsplit(uri).query)["secret"][0]
    raw = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    assert len(raw) == 64
    needles = [secret_b32.encode(), secret_b32.lower().encode(), raw,
               raw[:16], raw[-16:], base64.b64encode(raw)[:40],
               raw.hex().encode()[:40]]
    needles += [c.encode() for c in codes] + [c.replace("-", "").encode()
                                              for c in codes]
    files = [f for f in glob.glob(os.path.join(gateway.base, "**"),
                                  recursive=True) if os.path.isfile(f)]
    assert any(f.endswith("data.mdb") for f in files)
    for f in files:
        with open(f, "rb") as fh:
            blob = fh.read()
        for n in needles:
            assert n not in blob, "secret material in %s" % f
