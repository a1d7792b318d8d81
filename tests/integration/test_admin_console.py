"""The admin console, /.gatehouse/admin/: who gets in, tenant isolation,
CSRF and Origin, step-up for granting manager, actions that apply on the
next request, the audit trail, and cursor pagination.

Every test here fails if the protection it names is removed: each checks
the refusal *and* that the state did not change.
"""
import html
import itertools
import json
import re

import pyotp
import pytest

from conftest import ADMIN_EMAIL, API, BROWSER, input_value

PW = "admin console test password 9"
ADMIN = "/.gatehouse/admin/"
USER = "/.gatehouse/admin/user"
MFA = "/.gatehouse/mfa"
ENROL = "/.gatehouse/mfa/enroll"

_seq = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    for t in ("other", "pag"):
        p = gateway.cli("tenant", "add", t)
        assert p.returncode == 0, p.stderr


def new_user(gw, tenant="demo", roles="member", tag="u"):
    email = "%s%d@%s.example" % (tag, next(_seq), tenant)
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def uid_of(gw, email):
    p = gw.cli("user", "list")
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f[2]
    raise AssertionError("no user %s" % email)


def user_row(gw, email):
    p = gw.cli("user", "list")
    for line in p.stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f
    raise AssertionError("no user %s" % email)


def roles_of(gw, email):
    return user_row(gw, email)[3]


def audit_records(gw):
    p = gw.cli("audit", "export")
    assert p.returncode == 0, p.stderr
    return [json.loads(l)["record"] for l in p.stdout.splitlines() if l]


def person(gw, s, uid):
    return gw.get(USER, s, params={"id": uid}, headers=BROWSER)


def act(gw, s, uid, action, csrf=None, origin="same", **fields):
    """POST one console action as the page's form would."""
    if csrf is None:
        page = gw.get(ADMIN, s, headers=BROWSER)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        csrf = input_value(page.text, "csrf") or \
            s.cookies.get("__Host-gatehouse-csrf")
    form = {"id": uid, "action": action}
    if csrf is not False:
        form["csrf"] = csrf
    form.update(fields)
    headers = dict(BROWSER)
    if origin == "same":
        headers["Origin"] = gw.origin
    elif origin:
        headers["Origin"] = origin
    return gw.post(USER, s, data=form, headers=headers)


def enrol_totp(gw, s):
    """Enrol TOTP through the pages for session s (which then holds a fresh
    second factor)."""
    r = gw.get(ENROL, s, headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    r = gw.post(ENROL, s, data={"action": "start",
                                "csrf": input_value(r.text, "csrf"),
                                "rd": input_value(r.text, "rd")},
                headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    m = re.search(r'id="otpauth-uri">([^<]*)<', r.text)
    otp = pyotp.parse_uri(html.unescape(m.group(1)))
    r = gw.post(ENROL, s, data={"action": "activate", "code": otp.now(),
                                "csrf": input_value(r.text, "csrf"),
                                "rd": input_value(r.text, "rd")},
                headers=BROWSER)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return otp


# ---- who gets in ---------------------------------------------------------------

def test_no_session_is_sent_to_login_or_401(gateway):
    r = gateway.get(ADMIN, headers=BROWSER)
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/login?rd=")
    r = gateway.get(ADMIN, headers=API)
    assert r.status_code == 401


@pytest.mark.parametrize("roles", ["member", "visitor"])
def test_member_and_visitor_get_403(gateway, roles):
    email = new_user(gateway, roles=roles, tag="plain")
    target = uid_of(gateway, ADMIN_EMAIL)
    s = gateway.logged_in(email, PW)
    assert gateway.get(ADMIN, s, headers=BROWSER).status_code == 403
    assert person(gateway, s, target).status_code == 403
    r = act(gateway, s, target, "disable", csrf=s.cookies.get(
        "__Host-gatehouse-csrf") or "x" * 43)
    assert r.status_code == 403
    assert user_row(gateway, ADMIN_EMAIL)[4] == "enabled"


def test_manager_sees_own_tenant_people_only(gateway):
    mine = new_user(gateway, tag="mine")
    theirs = new_user(gateway, tenant="other", tag="theirs")
    mgr = new_user(gateway, roles="manager", tag="mgr")
    s = gateway.logged_in(mgr, PW)
    r = gateway.get(ADMIN, s, headers=BROWSER)
    assert r.status_code == 200
    assert mine in r.text and theirs not in r.text
    # asking for the other tenant by name changes nothing for a manager
    r = gateway.get(ADMIN, s, params={"tenant": "other"}, headers=BROWSER)
    assert r.status_code == 404 and theirs not in r.text


def test_manager_of_tenant_a_gets_404_for_a_person_of_tenant_b(gateway):
    theirs = new_user(gateway, tenant="other", tag="victim")
    uid = uid_of(gateway, theirs)
    mgr = new_user(gateway, roles="manager", tag="mgr")
    s = gateway.logged_in(mgr, PW)
    r = person(gateway, s, uid)
    assert r.status_code == 404
    assert theirs not in r.text
    for action, extra in (("disable", {}), ("logout", {}),
                          ("grant", {"role": "member"}),
                          ("revoke", {"role": "member"}),
                          ("pwreset", {}), ("mfareset", {})):
        r = act(gateway, s, uid, action, **extra)
        assert r.status_code == 404, (action, r.status_code)
    row = user_row(gateway, theirs)
    assert row[4] == "enabled" and row[3] == "member"
    # the gatehouse-admin reaches every tenant
    a = gateway.logged_in()
    assert person(gateway, a, uid).status_code == 200


def test_space_admin_and_auditor_cannot_change_anyone(gateway):
    target = new_user(gateway, tag="tgt")
    uid = uid_of(gateway, target)
    for role in ("space-admin", "auditor"):
        who = new_user(gateway, roles=role, tag=role.replace("-", ""))
        s = gateway.logged_in(who, PW)
        assert person(gateway, s, uid).status_code == 200
        for action, extra in (("disable", {}), ("grant", {"role": "member"}),
                              ("revoke", {"role": "member"})):
            r = act(gateway, s, uid, action, **extra)
            assert r.status_code == 403, (role, action, r.status_code)
    row = user_row(gateway, target)
    assert row[4] == "enabled" and row[3] == "member"
    denied = [r for r in audit_records(gateway)
              if r["action"] == "user.disable" and r["result"] == "denied"
              and r["target"] == target]
    assert len(denied) == 2, denied


def test_manager_cannot_grant_platform_roles(gateway):
    target = new_user(gateway, tag="plat")
    mgr = new_user(gateway, roles="manager", tag="mgr")
    s = gateway.logged_in(mgr, PW)
    r = act(gateway, s, uid_of(gateway, target), "grant", role="auditor")
    assert r.status_code == 403
    assert roles_of(gateway, target) == "member"


def test_nobody_disables_themselves(gateway):
    s = gateway.logged_in()
    r = act(gateway, s, uid_of(gateway, ADMIN_EMAIL), "disable")
    assert r.status_code == 403
    assert user_row(gateway, ADMIN_EMAIL)[4] == "enabled"


# ---- forms -----------------------------------------------------------------------

def test_post_without_csrf_token_is_refused(gateway):
    target = new_user(gateway, tag="csrf")
    uid = uid_of(gateway, target)
    s = gateway.logged_in()
    gateway.get(ADMIN, s, headers=BROWSER)
    r = act(gateway, s, uid, "disable", csrf=False)
    assert r.status_code == 403
    r = act(gateway, s, uid, "disable", csrf="A" * 43)
    assert r.status_code == 403
    assert user_row(gateway, target)[4] == "enabled"


def test_post_from_a_foreign_origin_is_refused(gateway):
    target = new_user(gateway, tag="origin")
    uid = uid_of(gateway, target)
    s = gateway.logged_in()
    r = act(gateway, s, uid, "disable", origin="https://evil.example")
    assert r.status_code == 403
    assert user_row(gateway, target)[4] == "enabled"
    # the same form from our own origin works
    r = act(gateway, s, uid, "disable")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert user_row(gateway, target)[4] == "disabled"


def test_every_value_is_html_escaped(gateway):
    email = new_user(gateway, tag="esc")
    p = gateway.cli("user", "add", "--tenant", "demo", "--email",
                    "x%d@demo.example" % next(_seq),
                    "--name", "<script>alert(1)</script>")
    assert p.returncode == 0, p.stderr
    s = gateway.logged_in()
    r = gateway.get(ADMIN, s, params={"q": "x"}, headers=BROWSER)
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;" in r.text
    r = gateway.get(ADMIN, s, params={"q": '"><b>'}, headers=BROWSER)
    assert "<b>" not in r.text
    assert email


# ---- step-up -----------------------------------------------------------------------

def test_granting_manager_requires_a_fresh_second_factor(gateway):
    target = new_user(gateway, tag="stepup")
    uid = uid_of(gateway, target)
    mgr = new_user(gateway, roles="manager", tag="stepmgr")
    s = gateway.logged_in(mgr, PW)
    r = act(gateway, s, uid, "grant", role="manager")
    assert r.status_code == 303
    assert r.headers["Location"].startswith(MFA + "?rd=")
    assert "admin%2Fuser" in r.headers["Location"] or \
        "admin/user" in r.headers["Location"]
    assert roles_of(gateway, target) == "member"
    # an ordinary role needs no step-up
    r = act(gateway, s, uid, "grant", role="space-admin")
    assert r.status_code == 303 and r.headers["Location"].startswith(USER)
    # with a second factor just proven, the grant goes through
    enrol_totp(gateway, s)
    r = act(gateway, s, uid, "grant", role="manager")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(USER)
    assert "manager" in roles_of(gateway, target).split(",")
    rec = [x for x in audit_records(gateway) if x["action"] == "role.grant"
           and x["target"] == "%s role manager" % target]
    assert rec and rec[-1]["result"] == "success"
    assert rec[-1]["actor"]["user"] == mgr
    assert "manager" not in rec[-1]["details"]["before"]
    assert "manager" in rec[-1]["details"]["after"]


# ---- effects -------------------------------------------------------------------------

def test_granted_role_reaches_the_app_and_revoked_role_is_403_next(gateway,
                                                                  backend):
    person_email = new_user(gateway, roles="visitor", tag="reach")
    uid = uid_of(gateway, person_email)
    ps = gateway.logged_in(person_email, PW)
    assert gateway.get("/app", ps, headers=API).status_code == 403
    s = gateway.logged_in()
    r = act(gateway, s, uid, "grant", role="member", until="2099-12-31")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert gateway.get("/app", ps, headers=API).status_code == 200
    page = person(gateway, s, uid)
    assert "2100-01-01" in page.text    # until: the end of 2099-12-31
    r = act(gateway, s, uid, "revoke", role="member")
    assert r.status_code == 303
    assert gateway.get("/app", ps, headers=API).status_code == 403


def test_disable_ends_sessions_and_enable_restores_login(gateway, backend):
    email = new_user(gateway, tag="dis")
    uid = uid_of(gateway, email)
    ps = gateway.logged_in(email, PW)
    assert gateway.get("/app", ps, headers=API).status_code == 200
    s = gateway.logged_in()
    assert act(gateway, s, uid, "disable").status_code == 303
    assert gateway.get("/app", ps, headers=API).status_code == 401
    assert "disabled" in person(gateway, s, uid).text
    assert act(gateway, s, uid, "enable").status_code == 303
    gateway.logged_in(email, PW)
    recs = [r for r in audit_records(gateway) if r["target"] == email
            and r["action"] in ("user.disable", "user.enable")]
    assert [r["action"] for r in recs] == ["user.disable", "user.enable"]
    assert recs[0]["details"]["before"].startswith("enabled")
    assert recs[0]["details"]["after"].startswith("disabled")


def test_end_sessions_and_force_password_change(gateway, backend):
    email = new_user(gateway, tag="end")
    uid = uid_of(gateway, email)
    ps = gateway.logged_in(email, PW)
    s = gateway.logged_in()
    assert act(gateway, s, uid, "logout").status_code == 303
    assert gateway.get("/app", ps, headers=API).status_code == 401
    assert act(gateway, s, uid, "pwreset").status_code == 303
    ps, r = gateway.login(email=email, password=PW)
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/account/password")


def test_person_page_counts_and_lists_active_sessions(gateway, backend):
    email = new_user(gateway, tag="sess")
    uid = uid_of(gateway, email)
    s = gateway.logged_in()

    def sessions():
        r = person(gateway, s, uid)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        m = re.search(r'<p id="sessions">(\d+) active session', r.text)
        assert m, r.text[:2000]
        return int(m.group(1)), r.text

    assert sessions()[0] == 0
    ps = [gateway.logged_in(email, PW) for _ in range(3)]
    n, page = sessions()
    assert n == 3
    assert len(re.findall(r"<td>pwd</td>", page)) == 3
    # a signed-out session is gone from the count at once
    gateway.post("/.gatehouse/logout", ps[0], data={
        "csrf": ps[0].cookies.get("__Host-gatehouse-csrf")},
        headers={"Origin": gateway.origin, **BROWSER})
    assert gateway.get("/app", ps[0], headers=API).status_code == 401
    assert sessions()[0] == 2
    # other people's sessions are not counted here
    assert gateway.get("/app", ps[1], headers=API).status_code == 200
    assert act(gateway, s, uid, "logout").status_code == 303
    assert sessions()[0] == 0
    assert gateway.get("/app", ps[2], headers=API).status_code == 401


# ---- pagination ------------------------------------------------------------------------

def test_people_list_pages_with_a_cursor(gateway):
    emails = sorted("p%03d@pag.example" % i for i in range(61))
    for e in emails:
        p = gateway.cli("user", "add", "--tenant", "pag", "--email", e)
        assert p.returncode == 0, p.stderr
    s = gateway.logged_in()
    seen = []
    params = {"tenant": "pag"}
    for _ in range(5):              # bounded: 61 people, 50 a page
        r = gateway.get(ADMIN, s, params=params, headers=BROWSER)
        assert r.status_code == 200
        seen += re.findall(r'class="person" href="[^"]*">([^<]*)<', r.text)
        m = re.search(r'id="next"', r.text)
        if not m:
            break
        href = html.unescape(re.search(r'href="([^"]*)" id="next"',
                                       r.text).group(1))
        params = dict(p.split("=", 1) for p in href.split("?", 1)[1]
                      .split("&"))
        from urllib.parse import unquote
        params = {k: unquote(v) for k, v in params.items()}
    assert seen == emails
    # search by prefix
    r = gateway.get(ADMIN, s, params={"tenant": "pag", "q": "p01"},
                    headers=BROWSER)
    got = re.findall(r'class="person" href="[^"]*">([^<]*)<', r.text)
    assert got == [e for e in emails if e.startswith("p01")]
