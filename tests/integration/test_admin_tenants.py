"""Tenants in the console: administrators create them; a tenant's managers
set its password profile and (with a fresh second factor) its MFA level;
nothing of another tenant."""
import pytest

from conftest import BROWSER, input_value
from test_admin_console import enrol_totp

PW = "tenant settings test password 6"
PAGE = "/.gatehouse/admin/tenants"


@pytest.fixture(scope="module", autouse=True)
def tenants(gateway):
    assert gateway.cli("tenant", "add", "other").returncode == 0


def post(gw, s, **form):
    page = gw.get(PAGE, s, headers=BROWSER)
    assert page.status_code == 200, page.status_code
    form.setdefault("csrf", input_value(page.text, "csrf"))
    if form["csrf"] is None:
        del form["csrf"]
    return gw.post(PAGE, s, data=form,
                   headers={"Origin": gw.origin, **BROWSER})


def show(gw, tenant):
    p = gw.cli("tenant", "show", "--tenant", tenant)
    return p.stdout


def test_only_administrators_create_tenants(gateway):
    gateway.add_user("tmgr@demo.example", PW, roles="manager")
    m = gateway.logged_in("tmgr@demo.example", PW)
    r = post(gateway, m, action="create", tenant="mgrco", display="X")
    assert r.status_code == 403
    assert "mgrco" not in gateway.cli("tenant", "list").stdout
    a = gateway.logged_in()
    r = post(gateway, a, action="create", tenant="newco", display="New Co")
    assert r.status_code == 303
    assert "newco\tNew Co" in gateway.cli("tenant", "list").stdout
    r = post(gateway, a, action="create", tenant="Bad Name")
    assert r.status_code == 400


def test_manager_sets_own_profile_not_anothers(gateway):
    gateway.add_user("tmgr2@demo.example", PW, roles="manager")
    m = gateway.logged_in("tmgr2@demo.example", PW)
    page = gateway.get(PAGE, m, headers=BROWSER).text
    assert "<td>other</td>" not in page
    r = post(gateway, m, action="profile", tenant="other", value="classes")
    assert r.status_code == 404
    assert "profile       nist" in show(gateway, "other")
    r = post(gateway, m, action="profile", tenant="demo", value="classes")
    assert r.status_code == 303
    assert "profile       classes" in show(gateway, "demo")
    r = post(gateway, m, action="profile", tenant="demo", value="nist",
             csrf=None)
    assert r.status_code == 403
    assert "profile       classes" in show(gateway, "demo")
    post(gateway, m, action="profile", tenant="demo", value="nist")


def test_mfa_level_needs_a_fresh_second_factor(gateway):
    gateway.add_user("tmgr3@demo.example", PW, roles="manager")
    m = gateway.logged_in("tmgr3@demo.example", PW)
    r = post(gateway, m, action="mfa", tenant="demo", value="off")
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/mfa?rd=")
    assert "mfa           optional" in show(gateway, "demo")
    enrol_totp(gateway, m)
    r = post(gateway, m, action="mfa", tenant="demo", value="off")
    assert r.status_code == 303 and r.headers["Location"] == PAGE
    assert "mfa           off" in show(gateway, "demo")
    assert gateway.cli("tenant", "set", "--tenant", "demo", "--mfa",
                       "optional").returncode == 0
