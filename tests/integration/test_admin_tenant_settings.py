"""A tenant's access settings in the console: networks and sign-in (with a
fresh second factor), session lifetimes, email domains. The tenant record
is what decisions read: a change applies to the next request of every
worker, without a reload; `policy apply` copies what its file states into
the record."""
import json
import os
import time

import pytest

from conftest import API, BROWSER, CSRF_COOKIE, input_value
from test_admin_console import enrol_totp

PW = "tenant access settings password 8"
PAGE = "/.gatehouse/admin/tenants"
STEPUP = "/.gatehouse/mfa?rd="
GATEWAY_OPTIONS = {"workers": 2}

MIN_LIFETIME = 60        # GH_TENANT_IDLE_MIN: the shortest a record takes


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    assert gateway.cli("tenant", "add", "other").returncode == 0


@pytest.fixture(scope="module")
def old_session(gateway, tenants):
    """A session of tenant other started when the module starts: by the
    lifetime test it is older than the shortest lifetime a record may
    hold. (Another tenant's, so the managers of demo keep theirs.)"""
    gateway.add_user("old@other.example", PW, tenant="other", roles="member")
    s = gateway.logged_in("old@other.example", PW)
    return s, time.monotonic()


@pytest.fixture(scope="module")
def manager(gateway, old_session):
    """A manager of demo with a fresh second factor."""
    gateway.add_user("amgr@demo.example", PW, roles="manager")
    m = gateway.logged_in("amgr@demo.example", PW)
    enrol_totp(gateway, m)
    return m


def post(gw, s, origin=True, **form):
    page = gw.get(PAGE, s, headers=BROWSER)
    assert page.status_code == 200, page.status_code
    token = input_value(page.text, "csrf")
    if token is None:       # a page without forms: any console form's
        token = csrf_anywhere(gw, s)
    form.setdefault("csrf", token)
    if form["csrf"] is None:
        del form["csrf"]
    headers = dict(BROWSER)
    headers["Origin"] = gw.origin if origin is True else origin
    return gw.post(PAGE, s, data=form, headers=headers)


def csrf_anywhere(gw, s):
    """The token a form would carry: the double-submit cookie's value."""
    token = s.cookies.get(CSRF_COOKIE)
    assert token, "no CSRF cookie"
    return token


def show(gw, tenant="demo"):
    p = gw.cli("tenant", "show", "--tenant", tenant)
    assert p.returncode == 0, p.stderr
    return p.stdout


def app_request(gw, s):
    """An app request of session s: (status, reason)."""
    r = gw.get("/settings-probe", s, headers=API)
    try:
        reason = r.json().get("reason")
    except ValueError:
        reason = None
    return r.status_code, reason


def audit_records(gw, action):
    p = gw.cli("audit", "export")
    assert p.returncode == 0, p.stderr
    out = []
    for line in p.stdout.splitlines():
        r = json.loads(line)["record"] if line else {}
        if r.get("action") != action:
            continue
        det = r.get("details", {})
        out.append({"user": r["actor"].get("user"), "target": r["target"],
                    "result": r["result"], "before": det.get("before"),
                    "after": det.get("after"), "detail": det.get("text")})
    return out


def member(gw, tag):
    email = "%s@demo.example" % tag
    gw.add_user(email, PW, roles="member")
    return gw.logged_in(email, PW)


# ---- who may ---------------------------------------------------------------

def test_networks_and_signin_need_a_fresh_second_factor(gateway):
    gateway.add_user("smgr@demo.example", PW, roles="manager")
    m = gateway.logged_in("smgr@demo.example", PW)
    for form in ({"action": "networks", "networks": "10.0.0.0/8"},
                 {"action": "signin", "value": "password+otp"},
                 {"action": "domain-add", "domain": "stale.example"}):
        r = post(gateway, m, tenant="demo", **form)
        assert r.status_code == 303, (form, r.status_code)
        assert r.headers["Location"].startswith(STEPUP), form
    out = show(gateway)
    assert "networks: policy file" in out
    assert "mfa           optional" in out
    # lifetimes are settings, not sign-in: no step-up asked
    r = post(gateway, m, tenant="demo", action="session", idle="",
             lifetime="")
    assert r.status_code == 303 and r.headers["Location"] == PAGE


def test_manager_of_one_tenant_gets_404_for_another(gateway, manager):
    for form in ({"action": "networks", "networks": "10.0.0.0/8"},
                 {"action": "session", "idle": "5m", "lifetime": "1h"},
                 {"action": "signin", "value": "password"},
                 {"action": "domain-add", "domain": "x.example"}):
        r = post(gateway, manager, tenant="other", **form)
        assert r.status_code == 404, (form, r.status_code)
    out = show(gateway, "other")
    assert "networks: policy file" in out
    assert "session: idle policy file, lifetime policy file" in out
    page = gateway.get(PAGE, manager, headers=BROWSER).text
    assert 'id="tenant-other"' not in page


def test_auditor_may_look_not_change(gateway):
    gateway.add_user("aud@demo.example", PW, roles="auditor")
    a = gateway.logged_in("aud@demo.example", PW)
    r = post(gateway, a, tenant="demo", action="session", idle="5m",
             lifetime="1h")
    assert r.status_code == 403
    assert "session: idle policy file, lifetime policy file" in show(gateway)
    denied = [x for x in audit_records(gateway, "tenant.session")
              if x.get("user") == "aud@demo.example"]
    assert denied and denied[-1]["result"] == "denied", denied


def test_missing_csrf_or_foreign_origin_is_refused(gateway, manager):
    r = post(gateway, manager, tenant="demo", action="networks",
             networks="10.0.0.0/8", csrf=None)
    assert r.status_code == 403
    r = post(gateway, manager, origin="https://evil.example", tenant="demo",
             action="networks", networks="10.0.0.0/8")
    assert r.status_code == 403
    assert "networks: policy file" in show(gateway)


# ---- networks ----------------------------------------------------------------

def test_networks_apply_to_the_next_request_without_reload(gateway, manager):
    s = member(gateway, "netuser")
    assert app_request(gateway, s) == (200, None)
    r = post(gateway, manager, tenant="demo", action="networks",
             networks="10.0.0.0/8, 192.0.2.1")
    assert r.status_code == 303 and r.headers["Location"] == PAGE
    assert "networks: 10.0.0.0/8,192.0.2.1" in show(gateway)
    # two workers: each one refreshes at its next request
    for _ in range(4):
        assert app_request(gateway, s) == (403, "network_not_allowed")
    page = gateway.get(PAGE, manager, headers=BROWSER).text
    assert 'value="10.0.0.0/8,192.0.2.1"' in page
    # the console itself stays reachable to put it right
    r = post(gateway, manager, tenant="demo", action="networks",
             networks="127.0.0.0/8")
    assert r.status_code == 303
    for _ in range(4):
        assert app_request(gateway, s) == (200, None)
    r = post(gateway, manager, tenant="demo", action="networks", networks="")
    assert r.status_code == 303
    assert "networks: policy file" in show(gateway)
    recs = audit_records(gateway, "tenant.networks")
    ok = [x for x in recs if x["result"] == "success"
          and x.get("user") == "amgr@demo.example"]
    assert [(x["before"], x["after"]) for x in ok] == [
        ("policy file", "10.0.0.0/8,192.0.2.1"),
        ("10.0.0.0/8,192.0.2.1", "127.0.0.0/8"),
        ("127.0.0.0/8", "policy file")], ok
    assert all(x["target"] == "demo" for x in ok)


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "10.0.0.0/33", "example.com",
                                 "10.0.0.0/8,,nonsense"])
def test_bad_networks_are_refused(gateway, manager, bad):
    r = post(gateway, manager, tenant="demo", action="networks",
             networks=bad)
    assert r.status_code == 400, (bad, r.status_code)
    assert "networks: policy file" in show(gateway)


# ---- session lifetimes -----------------------------------------------------

def test_bad_lifetimes_are_refused(gateway, manager):
    for idle, lifetime in (("2h", "1h"), ("10s", ""), ("soon", "1h"),
                           ("", "3651d")):
        r = post(gateway, manager, tenant="demo", action="session",
                 idle=idle, lifetime=lifetime)
        assert r.status_code == 400, (idle, lifetime, r.status_code)
    assert "session: idle policy file, lifetime policy file" in show(gateway)


def test_shorter_lifetime_ends_an_older_session_at_its_next_request(
        gateway, old_session):
    s, started = old_session
    admin = gateway.logged_in()
    # alive: the app is demo's only, so other's users are refused by it
    assert app_request(gateway, s) == (403, "tenant_not_allowed")
    wait = started + MIN_LIFETIME + 1 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    gateway.add_user("young@other.example", PW, tenant="other",
                     roles="member")
    young = gateway.logged_in("young@other.example", PW)
    r = post(gateway, admin, tenant="other", action="session", idle="1m",
             lifetime="1m")
    assert r.status_code == 303, r.status_code
    assert "session: idle 1m, lifetime 1m" in show(gateway, "other")
    assert app_request(gateway, s)[0] == 401
    assert app_request(gateway, young) == (403, "tenant_not_allowed")
    # idle longer than the lifetime is refused, even as half a change
    r = post(gateway, admin, tenant="other", action="session", idle="2m",
             lifetime="1m")
    assert r.status_code == 400
    r = post(gateway, admin, tenant="other", action="session", idle="",
             lifetime="")
    assert r.status_code == 303
    assert "session: idle policy file, lifetime policy file" in show(
        gateway, "other")
    recs = [(x["before"], x["after"])
            for x in audit_records(gateway, "tenant.session")
            if x["result"] == "success" and x["target"] == "other"]
    assert ("idle policy file, lifetime policy file",
            "idle 1m, lifetime 1m") in recs, recs


# ---- sign-in and domains ---------------------------------------------------

def test_saml_signin_is_refused_without_an_identity_provider(gateway,
                                                            manager):
    r = post(gateway, manager, tenant="demo", action="signin", value="saml")
    assert r.status_code == 409
    assert "identity provider" in r.text
    r = post(gateway, manager, tenant="demo", action="signin", value="magic")
    assert r.status_code == 400
    r = post(gateway, manager, tenant="demo", action="signin",
             value="password+otp")
    assert r.status_code == 303
    assert "mfa           required" in show(gateway)
    recs = [x for x in audit_records(gateway, "tenant.signin")
            if x["result"] == "success"]
    assert (recs[-1]["before"], recs[-1]["after"]) == ("password",
                                                      "password+otp")
    r = post(gateway, manager, tenant="demo", action="signin",
             value="password")
    assert r.status_code == 303
    assert gateway.cli("tenant", "set", "--tenant", "demo", "--mfa",
                       "optional").returncode == 0


def test_domains_are_added_and_removed_and_another_tenants_refused(
        gateway, manager):
    assert gateway.cli("tenant", "set", "--tenant", "other", "--domain",
                       "other.example").returncode == 0
    def domain(action, name, status):
        r = post(gateway, manager, tenant="demo", action=action, domain=name)
        assert r.status_code == status, (action, name, r.status_code)
        return gateway.get(PAGE, manager, headers=BROWSER).text

    domain("domain-add", "Other.Example", 409)
    domain("domain-add", "not a domain", 400)
    page = domain("domain-add", "Demo.Example", 303)
    row = page[page.index('id="tenant-demo"'):]
    assert '<li class="domain">demo.example' in row
    assert "other.example" not in page
    # another tenant's domain cannot be removed from here either
    domain("domain-del", "other.example", 400)
    page = domain("domain-del", "demo.example", 303)
    assert '<li class="domain">' not in page
    recs = [(x["result"], x["before"], x["after"])
            for x in audit_records(gateway, "tenant.domain")
            if x.get("user") == "amgr@demo.example"]
    assert ("success", "-", "demo.example") in recs, recs
    assert ("success", "demo.example", "-") in recs, recs
    assert ("failure", "-", "-") in recs, recs


# ---- the policy file and the CLI -------------------------------------------

POLICY = """\
version: 1
tenants:
  demo:
    networks: [10.9.0.0/16]
    session: {idle: 20m, lifetime: 8h}
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member, manager]}
"""

OPEN = """\
version: 1
apps:
  demo:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member, manager]}
"""


def apply(gw, text, name):
    path = os.path.join(gw.base, name)
    with open(path, "w") as f:
        f.write(text)
    p = gw.cli("policy", "apply", path)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p


def test_policy_apply_copies_networks_and_lifetimes_into_the_record(
        gateway, manager):
    s = member(gateway, "applied")
    p = apply(gateway, POLICY, "tenant-settings.yaml")
    assert "tenant demo networks: 10.9.0.0/16 (from the policy file)" \
        in p.stdout
    out = show(gateway)
    assert "networks: 10.9.0.0/16" in out
    assert "session: idle 20m, lifetime 8h" in out
    assert app_request(gateway, s) == (403, "network_not_allowed")
    # the console overrides it until the next apply
    r = post(gateway, manager, tenant="demo", action="networks",
             networks="127.0.0.1")
    assert r.status_code == 303
    assert app_request(gateway, s) == (200, None)
    apply(gateway, POLICY, "tenant-settings-again.yaml")
    assert "networks: 10.9.0.0/16" in show(gateway)
    assert app_request(gateway, s) == (403, "network_not_allowed")
    # a file that states nothing leaves the record alone
    apply(gateway, OPEN, "open.yaml")
    assert "networks: 10.9.0.0/16" in show(gateway)
    exp = gateway.cli("policy", "explain", "--tenant", "demo", "--email",
                      "applied@demo.example", "--url", "/x")
    assert "decision: deny (network_not_allowed" in exp.stdout, exp.stdout
    assert gateway.cli("tenant", "set", "--tenant", "demo", "--networks",
                       "none", "--idle", "none", "--lifetime",
                       "none").returncode == 0
    out = show(gateway)
    assert "networks: policy file" in out
    assert "session: idle policy file, lifetime policy file" in out
    assert app_request(gateway, s) == (200, None)
    recs = audit_records(gateway, "tenant.networks")
    assert any(x.get("detail") == "policy file"
               and x["after"] == "10.9.0.0/16" for x in recs), recs


def test_policy_apply_that_cannot_fit_the_record_changes_nothing(gateway):
    """The tenant copy is checked against the records before anything is
    written: a file whose idle exceeds the record's lifetime, or whose
    networks cannot be stored, must not leave half of itself applied."""
    assert gateway.cli("tenant", "set", "--tenant", "demo", "--networks",
                       "none", "--idle", "none", "--lifetime",
                       "1h").returncode == 0
    ver = gateway.cli("policy", "show").stdout
    for name, section in (("idle-too-long.yaml",
                           "    networks: [10.7.0.0/16]\n"
                           "    session: {idle: 2h}\n"),
                          ("65-networks.yaml",   # the file may, a record not
                           "    networks: [%s]\n" % ", ".join(
                               "10.7.0.%d" % i for i in range(1, 66)) +
                           "    session: {idle: 20m}\n")):
        path = os.path.join(gateway.base, name)
        with open(path, "w") as f:
            f.write("version: 1\ntenants:\n  demo:\n" + section +
                    "apps:\n  demo:\n    tenants: [demo]\n    rules:\n"
                    "      - {name: staff, effect: allow, roles: [member]}\n")
        p = gateway.cli("policy", "apply", path)
        assert p.returncode == 1, (name, p.stdout, p.stderr)
        assert "nothing applied" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        out = show(gateway)
        assert "networks: policy file" in out, (name, out)
        assert "session: idle policy file, lifetime 1h" in out, (name, out)
        assert gateway.cli("policy", "show").stdout == ver
    assert gateway.cli("tenant", "set", "--tenant", "demo", "--lifetime",
                       "none").returncode == 0


@pytest.mark.parametrize("args", [
    ["--networks", "bad"], ["--networks", "10.0.0.1/8"],
    ["--idle", "soon"], ["--idle", "2h", "--lifetime", "1h"],
    ["--lifetime", "10s"]])
def test_cli_refuses_bad_settings_in_one_line(gateway, args):
    p = gateway.cli("tenant", "set", "--tenant", "demo", *args)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatehouse: "), p.stderr
    assert "networks: policy file" in show(gateway)


def test_cli_sets_networks_and_lifetimes_audited(gateway):
    p = gateway.cli("tenant", "set", "--tenant", "other", "--networks",
                    "192.0.2.0/24 2001:db8::/32", "--idle", "15m",
                    "--lifetime", "2h")
    assert p.returncode == 0, p.stderr
    out = show(gateway, "other")
    assert "networks: 192.0.2.0/24,2001:db8::/32" in out
    assert "session: idle 15m, lifetime 2h" in out
    recs = [x for x in audit_records(gateway, "tenant.session")
            if x.get("target") == "other"]
    assert recs and recs[-1]["after"] == "idle 15m, lifetime 2h", recs
    assert gateway.cli("tenant", "set", "--tenant", "nosuch", "--networks",
                       "none").returncode != 0
