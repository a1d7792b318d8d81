"""Invitations: a space-admin's or a manager's invitation does nothing
until a second manager approves; approval yields a one-time link that
sets a password under the tenant's rules, once."""
import html
import itertools
import json
import re

import pytest

from conftest import API, BROWSER, input_value

PW = "invitation test password 77"
NEW_PW = "a brand new password for the invitee 31"
INVITES = "/.gatehouse/admin/invites"
JOIN = "/.gatehouse/join"

_seq = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    p = gateway.cli("tenant", "add", "other")
    assert p.returncode == 0, p.stderr


def new_user(gw, tenant="demo", roles="member", tag="u"):
    email = "%s%d@%s.example" % (tag, next(_seq), tenant)
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def user_row(gw, email):
    p = gw.cli("user", "list")
    for line in p.stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f
    return None


def audit_records(gw):
    p = gw.cli("audit", "export")
    assert p.returncode == 0, p.stderr
    return [json.loads(l)["record"] for l in p.stdout.splitlines() if l]


def post(gw, s, data, origin=True):
    page = gw.get(INVITES, s, headers=BROWSER)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    form = {"csrf": input_value(page.text, "csrf")}
    form.update(data)
    headers = dict(BROWSER)
    if origin:
        headers["Origin"] = gw.origin
    return gw.post(INVITES, s, data=form, headers=headers)


def invite(gw, s, email, roles="member"):
    return post(gw, s, {"action": "create", "email": email, "name": "New One",
                        "roles": roles})


def invite_id(gw, s, email):
    page = gw.get(INVITES, s, headers=BROWSER).text
    for row in re.findall(r'<tr class="invite">(.*?)</tr>', page):
        if "<td>%s</td>" % email in row:
            m = re.search(r'name="id" value="([0-9a-f]{32})"', row)
            return m.group(1) if m else None
    return None


def link_token(page):
    m = re.search(r'id="invite-link">[^<]*\?token=([A-Za-z0-9_-]{43})<', page)
    return html.unescape(m.group(1)) if m else None


def join(gw, token, password):
    s = gw.session()
    r = gw.get(JOIN, s, params={"token": token}, headers=BROWSER)
    if r.status_code != 200:
        return r
    return gw.post(JOIN, s, data={"token": token, "password": password,
                                  "csrf": input_value(r.text, "csrf")},
                   headers={"Origin": gw.origin, **BROWSER})


def test_space_admin_invitation_does_nothing_until_a_manager_approves(
        gateway, backend):
    sa = new_user(gateway, roles="space-admin", tag="sa")
    mgr = new_user(gateway, roles="manager", tag="mgr")
    email = "invitee%d@demo.example" % next(_seq)
    s = gateway.logged_in(sa, PW)
    r = invite(gateway, s, email)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert "waits for a manager" in r.text
    # pending: nobody exists, nobody can sign in, no link
    assert user_row(gateway, email) is None
    _, r = gateway.login(email=email, password=NEW_PW)
    assert r.status_code == 401
    # the space-admin cannot approve
    iid = invite_id(gateway, s, email)
    assert iid
    r = post(gateway, s, {"action": "approve", "id": iid})
    assert r.status_code == 403
    assert user_row(gateway, email) is None
    # a manager approves: the person exists, with the proposed roles
    m = gateway.logged_in(mgr, PW)
    r = post(gateway, m, {"action": "approve", "id": iid})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    token = link_token(r.text)
    assert token
    row = user_row(gateway, email)
    assert row and row[3] == "member"
    # the link sets the password; the person signs in and reaches the app
    r = join(gateway, token, NEW_PW)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    ps = gateway.logged_in(email, NEW_PW)
    assert gateway.get("/app", ps, headers=API).status_code == 200
    actions = [(x["action"], x["result"]) for x in audit_records(gateway)
               if x["target"] == email]
    assert ("invite.create", "success") in actions
    assert ("invite.approve", "denied") in actions
    assert ("invite.approve", "success") in actions
    assert ("invite.accept", "success") in actions


def test_the_inviting_manager_cannot_approve_their_own_invitation(gateway):
    m1 = new_user(gateway, roles="manager", tag="m1")
    m2 = new_user(gateway, roles="manager", tag="m2")
    email = "foureyes%d@demo.example" % next(_seq)
    s1 = gateway.logged_in(m1, PW)
    assert invite(gateway, s1, email).status_code == 200
    iid = invite_id(gateway, s1, email)
    r = post(gateway, s1, {"action": "approve", "id": iid})
    assert r.status_code == 409
    assert user_row(gateway, email) is None
    s2 = gateway.logged_in(m2, PW)
    r = post(gateway, s2, {"action": "reject", "id": iid})
    assert r.status_code == 200
    assert user_row(gateway, email) is None
    # decided once
    r = post(gateway, s2, {"action": "approve", "id": iid})
    assert r.status_code == 409
    assert user_row(gateway, email) is None


def test_link_works_once_and_a_weak_password_is_refused(gateway):
    m1 = new_user(gateway, roles="manager", tag="m1")
    m2 = new_user(gateway, roles="manager", tag="m2")
    email = "once%d@demo.example" % next(_seq)
    assert invite(gateway, gateway.logged_in(m1, PW), email).status_code == 200
    s2 = gateway.logged_in(m2, PW)
    r = post(gateway, s2, {"action": "approve",
                           "id": invite_id(gateway, s2, email)})
    token = link_token(r.text)
    assert token
    r = join(gateway, token, "short")
    assert r.status_code == 400
    _, r = gateway.login(email=email, password="short")
    assert r.status_code == 401
    assert join(gateway, token, NEW_PW).status_code == 200
    r = join(gateway, token, NEW_PW + "x")
    assert r.status_code == 410
    gateway.logged_in(email, NEW_PW)
    # a made-up token opens nothing
    assert join(gateway, "A" * 43, NEW_PW).status_code == 410
    assert join(gateway, "bad", NEW_PW).status_code == 400


def test_manager_of_another_tenant_sees_and_decides_nothing(gateway):
    m1 = new_user(gateway, roles="manager", tag="m1")
    other = new_user(gateway, tenant="other", roles="manager", tag="om")
    email = "iso%d@demo.example" % next(_seq)
    s1 = gateway.logged_in(m1, PW)
    assert invite(gateway, s1, email).status_code == 200
    iid = invite_id(gateway, s1, email)
    so = gateway.logged_in(other, PW)
    page = gateway.get(INVITES, so, headers=BROWSER)
    assert page.status_code == 200 and email not in page.text
    r = post(gateway, so, {"action": "approve", "id": iid})
    assert r.status_code == 404
    assert user_row(gateway, email) is None


def test_invitation_forms_need_csrf_and_same_origin(gateway):
    m1 = new_user(gateway, roles="manager", tag="m1")
    s = gateway.logged_in(m1, PW)
    email = "csrf%d@demo.example" % next(_seq)
    gateway.get(INVITES, s, headers=BROWSER)
    r = gateway.post(INVITES, s, data={"action": "create", "email": email},
                     headers=BROWSER)
    assert r.status_code == 403
    r = post(gateway, s, {"action": "create", "email": email},
             origin=False)
    assert r.status_code == 200          # no Origin: the token decides
    email2 = "csrf%d@demo.example" % next(_seq)
    page = gateway.get(INVITES, s, headers=BROWSER)
    r = gateway.post(INVITES, s, data={
        "action": "create", "email": email2,
        "csrf": input_value(page.text, "csrf")},
        headers={"Origin": "https://evil.example", **BROWSER})
    assert r.status_code == 403
    assert invite_id(gateway, s, email2) is None


def test_platform_roles_cannot_be_proposed_by_a_manager(gateway):
    m1 = new_user(gateway, roles="manager", tag="m1")
    s = gateway.logged_in(m1, PW)
    email = "plat%d@demo.example" % next(_seq)
    r = invite(gateway, s, email, roles="member,gatehouse-admin")
    assert r.status_code == 403
    assert invite_id(gateway, s, email) is None
    r = invite(gateway, s, email, roles="no-such-role")
    assert r.status_code == 400
    assert invite_id(gateway, s, email) is None
