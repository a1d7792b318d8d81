"""Break-glass: the emergency account is disabled until one administrator
requests it and a second, different administrator approves — each with a
fresh second factor; it then holds gatehouse-admin for 4 hours; every step
and every console request of the account is logged at critical level."""
import json
import time

from conftest import API, BROWSER, input_value, raw_store
from test_admin_console import enrol_totp

PW = "break glass test password 4242"
BG = "/.gatehouse/admin/breakglass"
ACCOUNT = "emergency@demo.example"
ADMIN2 = "second-admin@demo.example"


def user_row(gw, email):
    for line in gw.cli("user", "list").stdout.splitlines():
        f = line.split("\t")
        if f[0] == email:
            return f
    return None


def act(gw, s, action):
    page = gw.get(BG, s, headers=BROWSER)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    return gw.post(BG, s, data={"action": action,
                                "csrf": input_value(page.text, "csrf")},
                   headers={"Origin": gw.origin, **BROWSER})


def set_user_end(gw, email, end):
    """Move the account's end (its "z" member) behind the gateway's back:
    the clock cannot be moved under a running gateway."""
    uid = user_row(gw, email)[2].encode()
    with raw_store(gw, b"users") as txn:
        rec = json.loads(txn.get(uid))
        assert rec["z"] > time.time() + 3 * 3600   # 4 h from approval
        rec["z"] = end
        txn.put(uid, json.dumps(rec, separators=(",", ":")).encode())


def audit_records(gw):
    p = gw.cli("audit", "export")
    return [json.loads(l)["record"] for l in p.stdout.splitlines() if l]


def test_break_glass_needs_two_different_administrators(gateway):
    gateway.add_user(ACCOUNT, PW, roles="member")
    gateway.add_user(ADMIN2, PW, roles="gatehouse-admin")
    p = gateway.cli("breakglass", "setup", "--email", ACCOUNT)
    assert p.returncode == 0, p.stderr
    assert user_row(gateway, ACCOUNT)[4] == "disabled"
    _, r = gateway.login(email=ACCOUNT, password=PW)
    assert r.status_code == 401

    a = gateway.logged_in()
    # no fresh second factor: sent to the step-up first, nothing changes
    r = act(gateway, a, "request")
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/mfa?rd=")
    assert "state requested" not in gateway.cli("breakglass", "status").stdout
    enrol_totp(gateway, a)
    r = act(gateway, a, "request")
    assert r.status_code == 303 and r.headers["Location"] == BG
    assert "state requested" in gateway.cli("breakglass", "status").stdout
    # the same administrator cannot approve
    r = act(gateway, a, "approve")
    assert r.status_code == 403
    assert user_row(gateway, ACCOUNT)[4] == "disabled"
    # a manager cannot even see the page
    gateway.add_user("bgmgr@demo.example", PW, roles="manager")
    m = gateway.logged_in("bgmgr@demo.example", PW)
    assert gateway.get(BG, m, headers=BROWSER).status_code == 403
    # a second administrator approves
    b = gateway.logged_in(ADMIN2, PW)
    enrol_totp(gateway, b)
    r = act(gateway, b, "approve")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    row = user_row(gateway, ACCOUNT)
    assert row[4] == "enabled" and "gatehouse-admin" in row[3]
    roles = gateway.cli("role", "list", "--email", ACCOUNT).stdout
    until = [l for l in roles.splitlines() if "gatehouse-admin" in l][0]
    assert "\t-\t" not in until            # it ends by itself
    # the account works, and its console use is logged at critical level
    e = gateway.logged_in(ACCOUNT, PW)
    assert gateway.get("/.gatehouse/admin/", e, headers=BROWSER
                       ).status_code == 200
    time.sleep(0.2)
    log = open(gateway.errlog).read()
    assert "[crit]" in log and "break-glass account %s in use" % ACCOUNT in log
    assert "break-glass account %s signed in" % ACCOUNT in log
    recs = [x for x in audit_records(gateway)
            if x["action"].startswith("breakglass.")]
    assert [(x["action"], x["result"]) for x in recs if
            x["action"] != "breakglass.setup"] == [
        ("breakglass.request", "success"), ("breakglass.approve", "denied"),
        ("breakglass.approve", "success"), ("breakglass.use", "success")]
    assert all(x["details"].get("text", "").startswith("critical")
               for x in recs[1:])
    # its requests to the apps are critical lines too, allowed or not
    assert gateway.get("/app", e, headers=API).status_code in (200, 403)
    time.sleep(0.2)
    assert "break-glass account %s in use: GET /app" % ACCOUNT in \
        open(gateway.errlog).read()
    # ended: disabled at once
    r = act(gateway, b, "end")
    assert r.status_code == 303
    assert user_row(gateway, ACCOUNT)[4] == "disabled"
    assert gateway.get("/.gatehouse/admin/", e, headers=BROWSER
                       ).status_code in (303, 401)


def test_break_glass_account_ends_by_itself_at_the_deadline(gateway, backend):
    """Not only the role: at the deadline the account itself stops — its
    session is refused and it cannot sign in — with no job run then."""
    acct, adm3, adm4 = ("emergency2@demo.example", "third-admin@demo.example",
                        "fourth-admin@demo.example")
    gateway.add_user(acct, PW, roles="member")
    gateway.add_user(adm3, PW, roles="gatehouse-admin")
    gateway.add_user(adm4, PW, roles="gatehouse-admin")
    assert gateway.cli("breakglass", "setup", "--email", acct
                       ).returncode == 0
    a = gateway.logged_in(adm3, PW)
    enrol_totp(gateway, a)
    assert act(gateway, a, "request").status_code == 303
    b = gateway.logged_in(adm4, PW)
    enrol_totp(gateway, b)
    assert act(gateway, b, "approve").status_code == 303
    e = gateway.logged_in(acct, PW)
    assert gateway.get("/app", e, headers=API).status_code == 200
    set_user_end(gateway, acct, int(time.time()) + 2)
    assert gateway.get("/app", e, headers=API).status_code == 200
    time.sleep(3)
    assert gateway.get("/app", e, headers=API).status_code == 401
    assert gateway.get("/.gatehouse/admin/", e, headers=API
                       ).status_code == 401
    _, r = gateway.login(email=acct, password=PW)
    assert r.status_code == 401
    assert user_row(gateway, acct)[4] == "expired"
    page = gateway.get("/.gatehouse/admin/", a, params={"q": "emergency2"},
                       headers=BROWSER)
    assert '<td class="off">ended</td>' in page.text, page.text[:2000]
