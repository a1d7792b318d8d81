"""The admin API, /.gatehouse/api/v1/: bearer tokens and sessions, the same
authorisation as the console (tenant isolation, platform roles, step-up),
JSON errors {status, message}, cursor pagination, CSRF for session writes,
and the audit trail."""
import itertools
import json

import pytest

from conftest import ADMIN_EMAIL, BROWSER

PW = "admin api test password 808"
API = "/.gatehouse/api/v1/"
_seq = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    p = gateway.cli("tenant", "add", "other")
    assert p.returncode == 0, p.stderr


def new_user(gw, tenant="demo", roles="member", tag="u"):
    email = "%s%d@%s.example" % (tag, next(_seq), tenant)
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def token_for(gw, email, *extra):
    p = gw.cli("api-token", "create", "--email", email, *extra)
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    assert tok.startswith("ghk_") and len(tok) == 47
    return tok


def user_row(gw, email):
    for line in gw.cli("user", "list").stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f
    return None


def call(gw, method, path, token=None, s=None, body=None, headers=None):
    h = {"Accept": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    if headers:
        h.update(headers)
    kw = {"headers": h, "allow_redirects": False, "timeout": 10}
    if body is not None:
        kw["data"] = json.dumps(body)
        h["Content-Type"] = "application/json"
    return (s or gw.session()).request(method, gw.url(API + path), **kw)


def audit_records(gw):
    p = gw.cli("audit", "export")
    return [json.loads(l)["record"] for l in p.stdout.splitlines() if l]


def test_no_or_bad_credentials_are_401_with_a_json_error(gateway):
    r = call(gateway, "GET", "users")
    assert r.status_code == 401
    assert r.json()["status"] == 401 and r.json()["message"]
    r = call(gateway, "GET", "users", token="ghk_" + "A" * 43)
    assert r.status_code == 401
    r = call(gateway, "GET", "users", headers={"Authorization": "Basic x"})
    assert r.status_code == 401


def test_member_token_is_403(gateway):
    tok = token_for(gateway, new_user(gateway, tag="mem"))
    r = call(gateway, "GET", "users", token=tok)
    assert r.status_code == 403 and r.json()["status"] == 403


def test_member_token_cannot_act_on_a_person_of_its_own_tenant(gateway):
    tok = token_for(gateway, new_user(gateway, tag="mem"))
    person = new_user(gateway, tag="victim")
    pid = user_row(gateway, person)[2]
    for path in ("disable", "logout", "pwreset", "mfareset"):
        r = call(gateway, "POST", "users/%s/%s" % (pid, path), token=tok)
        assert r.status_code == 403, (path, r.status_code)
    r = call(gateway, "POST", "users/%s/roles" % pid, token=tok,
             body={"role": "manager"})
    assert r.status_code == 403
    r = call(gateway, "DELETE", "users/%s/roles/member" % pid, token=tok)
    assert r.status_code == 403
    assert user_row(gateway, person)[3:5] == ["member", "enabled"]


def test_manager_of_tenant_a_gets_404_for_tenant_b(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    mine = new_user(gateway, tag="mine")
    theirs = new_user(gateway, tenant="other", tag="theirs")
    tid = user_row(gateway, theirs)[2]
    tok = token_for(gateway, mgr)
    r = call(gateway, "GET", "users?limit=200", token=tok)
    assert r.status_code == 200
    emails = [u["email"] for u in r.json()["users"]]
    assert mine in emails and theirs not in emails
    assert call(gateway, "GET", "users?tenant=other",
                token=tok).status_code == 404
    assert call(gateway, "GET", "users/" + tid, token=tok).status_code == 404
    for path in ("disable", "logout", "pwreset", "mfareset"):
        r = call(gateway, "POST", "users/%s/%s" % (tid, path), token=tok)
        assert r.status_code == 404, (path, r.status_code)
    r = call(gateway, "POST", "users/%s/roles" % tid, token=tok,
             body={"role": "member"})
    assert r.status_code == 404
    r = call(gateway, "DELETE", "users/%s/roles/member" % tid, token=tok)
    assert r.status_code == 404
    assert user_row(gateway, theirs)[3:5] == ["member", "enabled"]
    tenants = call(gateway, "GET", "tenants", token=tok).json()["tenants"]
    assert [t["name"] for t in tenants] == ["demo"]


def test_grant_and_revoke_apply_on_the_next_request_and_are_audited(
        gateway, backend):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    person = new_user(gateway, roles="visitor", tag="p")
    pid = user_row(gateway, person)[2]
    ps = gateway.logged_in(person, PW)
    assert gateway.get("/app", ps, headers={"Accept": "application/json"}
                       ).status_code == 403
    tok = token_for(gateway, mgr)
    r = call(gateway, "POST", "users/%s/roles" % pid, token=tok,
             body={"role": "member", "until": "2099-01-01"})
    assert r.status_code == 200, r.text
    assert "member" in r.json()["after"]
    assert gateway.get("/app", ps, headers={"Accept": "application/json"}
                       ).status_code == 200
    r = call(gateway, "DELETE", "users/%s/roles/member" % pid, token=tok)
    assert r.status_code == 200
    assert gateway.get("/app", ps, headers={"Accept": "application/json"}
                       ).status_code == 403
    recs = [x for x in audit_records(gateway) if x["target"] ==
            "%s role member" % person]
    assert [x["action"] for x in recs] == ["role.grant", "role.revoke"]
    assert all(x["details"]["text"] == "admin api" and
               x["actor"]["user"] == mgr and
               x["actor"]["session"].startswith("token:") for x in recs)


def test_granting_manager_with_a_token_needs_step_up(gateway):
    person = new_user(gateway, tag="p")
    tok = token_for(gateway, ADMIN_EMAIL)
    r = call(gateway, "POST", "users/%s/roles" % user_row(gateway, person)[2],
             token=tok, body={"role": "manager"})
    assert r.status_code == 403
    assert "step_up_required" in r.json()["message"]
    assert user_row(gateway, person)[3] == "member"


def test_cursor_pagination(gateway):
    for i in range(5):
        gateway.add_user("page%d@other.example" % i, PW, tenant="other")
    tok = token_for(gateway, ADMIN_EMAIL)
    seen, after = [], None
    for _ in range(10):
        q = "users?tenant=other&q=page&limit=2" + \
            ("&after=" + after if after else "")
        r = call(gateway, "GET", q, token=tok).json()
        seen += [u["email"] for u in r["users"]]
        after = r.get("next")
        if not after:
            break
    assert seen == ["page%d@other.example" % i for i in range(5)]


def test_session_writes_need_the_csrf_header_and_our_origin(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    target = new_user(gateway, tag="t")
    tid = user_row(gateway, target)[2]
    s = gateway.logged_in(mgr, PW)
    gateway.get("/.gatehouse/admin/", s, headers=BROWSER)
    csrf = s.cookies.get("__Host-gatehouse-csrf")
    assert csrf
    assert call(gateway, "GET", "users/" + tid, s=s).status_code == 200
    r = call(gateway, "POST", "users/%s/disable" % tid, s=s)
    assert r.status_code == 403
    r = call(gateway, "POST", "users/%s/disable" % tid, s=s,
             headers={"X-CSRF-Token": csrf,
                      "Origin": "https://evil.example"})
    assert r.status_code == 403
    assert user_row(gateway, target)[4] == "enabled"
    r = call(gateway, "POST", "users/%s/disable" % tid, s=s,
             headers={"X-CSRF-Token": csrf, "Origin": gateway.origin})
    assert r.status_code == 200, r.text
    assert user_row(gateway, target)[4] == "disabled"
    # a form-encoded body is refused outright
    r = (s).post(gateway.url(API + "users/%s/enable" % tid),
                 data={"x": "1"}, headers={"X-CSRF-Token": csrf},
                 timeout=10, allow_redirects=False)
    assert r.status_code == 415
    assert user_row(gateway, target)[4] == "disabled"


def test_space_admin_invitation_does_nothing_until_approved(gateway):
    sa = new_user(gateway, roles="space-admin", tag="sa")
    m2 = new_user(gateway, roles="manager", tag="m2")
    email = "apiinv%d@demo.example" % next(_seq)
    r = call(gateway, "POST", "invitations", token=token_for(gateway, sa),
             body={"email": email, "roles": "member"})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    assert r.json()["state"] == "pending"
    assert user_row(gateway, email) is None
    # the space-admin cannot approve; a manager can
    r = call(gateway, "POST", "invitations/%s/approve" % iid,
             token=token_for(gateway, sa))
    assert r.status_code == 403
    assert user_row(gateway, email) is None
    r = call(gateway, "POST", "invitations/%s/approve" % iid,
             token=token_for(gateway, m2))
    assert r.status_code == 200, r.text
    assert r.json()["link"].startswith("/.gatehouse/join?token=")
    assert user_row(gateway, email)[3] == "member"
    lst = call(gateway, "GET", "invitations",
               token=token_for(gateway, m2)).json()["invitations"]
    assert [i["state"] for i in lst if i["email"] == email] == ["approved"]


def test_revoked_or_disabled_tokens_stop_working(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    tok = token_for(gateway, mgr)
    assert call(gateway, "GET", "users", token=tok).status_code == 200
    tid = [l.split("\t")[0] for l in gateway.cli("api-token", "list")
           .stdout.splitlines() if mgr in l][0]
    assert gateway.cli("api-token", "revoke", "--id", tid).returncode == 0
    assert call(gateway, "GET", "users", token=tok).status_code == 401
    tok2 = token_for(gateway, mgr)
    assert gateway.cli("user", "disable", "--email", mgr).returncode == 0
    assert call(gateway, "GET", "users", token=tok2).status_code == 401


def test_one_user_shows_its_active_sessions_and_state(gateway):
    email = new_user(gateway, tag="sess")
    uid = user_row(gateway, email)[2]
    tok = token_for(gateway, ADMIN_EMAIL)
    r = call(gateway, "GET", "users/" + uid, token=tok)
    assert r.status_code == 200, r.text
    assert r.json()["sessions"] == {"active": 0, "pending": 0}
    assert r.json()["state"] == "enabled" and r.json()["expires"] is None
    for _ in range(2):
        gateway.logged_in(email, PW)
    assert call(gateway, "GET", "users/" + uid, token=tok
                ).json()["sessions"]["active"] == 2
    assert call(gateway, "POST", "users/%s/logout" % uid, token=tok
                ).status_code == 200
    assert call(gateway, "GET", "users/" + uid, token=tok
                ).json()["sessions"]["active"] == 0
