"""The audit log viewer (/.gatehouse/admin/audit) and the visitors view:
filters by actor, target, action and time; a manager sees only records of
actors of their own tenant; members get 403; values are escaped."""
import itertools
import re

import pytest

from conftest import BROWSER

PW = "audit viewer test password 11"
AUDIT = "/.gatehouse/admin/audit"
_seq = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    assert gateway.cli("tenant", "add", "other").returncode == 0


def new_user(gw, tenant="demo", roles="member", tag="u"):
    email = "%s%d@%s.example" % (tag, next(_seq), tenant)
    gw.add_user(email, PW, tenant=tenant, roles=roles)
    return email


def rows(page):
    return re.findall(r'<tr class="record">(.*?)</tr>', page, re.S)


def test_filters_and_tenant_scope(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    omgr = new_user(gateway, tenant="other", roles="manager", tag="omgr")
    gateway.logged_in(mgr, PW)
    gateway.logged_in(omgr, PW)
    s = gateway.logged_in()
    r = gateway.get(AUDIT, s, params={"action": "login.success",
                                      "actor": mgr}, headers=BROWSER)
    assert r.status_code == 200
    got = rows(r.text)
    assert got and all(mgr in x and "login.success" in x for x in got)
    r = gateway.get(AUDIT, s, params={"target": "no-such-target-xyz"},
                    headers=BROWSER)
    assert rows(r.text) == []
    # a day in the past shows nothing of today
    r = gateway.get(AUDIT, s, params={"from": "2000-01-01",
                                      "to": "2000-01-02"}, headers=BROWSER)
    assert r.status_code == 200 and rows(r.text) == []
    # the manager of demo does not see other's actors
    m = gateway.logged_in(mgr, PW)
    r = gateway.get(AUDIT, m, params={"action": "login.success"},
                    headers=BROWSER)
    assert r.status_code == 200
    assert mgr in r.text and omgr not in r.text


def test_members_and_space_admins_get_403(gateway):
    for roles in ("member", "space-admin"):
        s = gateway.logged_in(new_user(gateway, roles=roles, tag="x"), PW)
        assert gateway.get(AUDIT, s, headers=BROWSER).status_code == 403


def test_bad_filters_are_400_and_values_escaped(gateway):
    s = gateway.logged_in()
    r = gateway.get(AUDIT, s, params={"from": "yesterday"}, headers=BROWSER)
    assert r.status_code == 400
    r = gateway.get(AUDIT, s, params={"actor": "<script>x"}, headers=BROWSER)
    assert r.status_code == 200 and "<script>x" not in r.text
    assert "&lt;script&gt;x" in r.text


def test_visitors_view_lists_only_visitors(gateway):
    v = new_user(gateway, roles="visitor", tag="vis")
    m = new_user(gateway, roles="member", tag="mem")
    s = gateway.logged_in()
    r = gateway.get("/.gatehouse/admin/", s,
                    params={"visitors": "1", "tenant": "demo"},
                    headers=BROWSER)
    assert r.status_code == 200
    assert v in r.text and m not in r.text
    # and says which apps they reach: the live policy's apps open to
    # visitors (none in the test policy)
    apps = re.search(r'<span id="visitor-apps">(.*?)</span>', r.text)
    assert apps and "they reach no app" in apps.group(1)


def test_visitors_view_names_the_apps_open_to_visitors(gateway):
    """The live policy decides; the view follows an apply at once."""
    path = "%s/visitors-policy.yaml" % gateway.base
    with open(path, "w") as f:
        f.write("""\
version: 1
apps:
  demo:
    tenants: [demo, other]
    rules:
      - {name: staff, effect: allow, roles: [member]}
  lobby:
    tenants: [demo]
    visitors: true
    rules:
      - {name: look, effect: allow, methods: [GET]}
  back-office:
    tenants: [demo]
    rules:
      - {name: staff, effect: allow, roles: [member]}
""")
    p = gateway.cli("policy", "apply", path)
    assert p.returncode == 0, p.stderr
    s = gateway.logged_in()
    r = gateway.get("/.gatehouse/admin/", s, params={"visitors": "1"},
                    headers=BROWSER)
    apps = re.search(r'<span id="visitor-apps">(.*?)</span>', r.text)
    assert apps and apps.group(1) == "<code>lobby</code>", r.text[:2000]
