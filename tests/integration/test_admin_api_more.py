"""The rest of the admin API (/.gatehouse/api/v1/): access reviews, the
audit log with cursor pagination, break-glass (two administrators, each
with a fresh second factor: never an API token), tenant creation, and API
tokens made over the API and the console (administrators only, step-up,
stored hashed, shown once) — with the console's authorisation and audit."""
import json
import re

from conftest import ADMIN_EMAIL, BROWSER, input_value
from test_admin_api import (PW, audit_records, call, new_user,  # noqa: F401
                            tenants, token_for, user_row)
from test_admin_console import enrol_totp
from test_admin_review import plant_last_login

TOKENS_PAGE = "/.gatehouse/admin/tokens"


def fresh_session(gw, email):
    """A console session with a second factor proven just now, and its
    CSRF cookie value (for API writes made with the session)."""
    s = gw.logged_in(email, PW)
    enrol_totp(gw, s)
    gw.get("/.gatehouse/admin/", s, headers=BROWSER)
    csrf = s.cookies.get("__Host-gatehouse-csrf")
    assert csrf
    return s, {"X-CSRF-Token": csrf, "Origin": gw.origin}


def review_rows(gw, tok, query="limit=200"):
    r = call(gw, "GET", "reviews?" + query, token=tok)
    assert r.status_code == 200, r.text
    return r.json()


# ---- access reviews -------------------------------------------------------

def test_review_flags_inactive_and_bulk_disable_takes_only_the_flagged(
        gateway, backend):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    stale = new_user(gateway, tag="stale")
    fresh = new_user(gateway, tag="fresh")
    ss = gateway.logged_in(stale, PW)
    gateway.logged_in(fresh, PW)
    plant_last_login(gateway, stale, 200)
    tok = token_for(gateway, mgr)
    people = {p["email"]: p for p in review_rows(gateway, tok)["people"]}
    assert people[stale]["flagged"] is True
    assert people[stale]["last_login"] is not None
    assert people[fresh]["flagged"] is False
    assert people[mgr]["roles"] == ["manager"]
    # with a ten-year window nobody is inactive
    assert review_rows(gateway, tok, "days=3650&limit=200")["flagged"] == 0
    assert gateway.get("/app", ss, headers={"Accept": "application/json"}
                       ).status_code == 200
    r = call(gateway, "POST", "reviews/demo/disable-flagged", token=tok)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] >= 1
    assert user_row(gateway, stale)[4] == "disabled"
    assert user_row(gateway, fresh)[4] == "enabled"
    assert user_row(gateway, mgr)[4] == "enabled"
    # the disabled account's session ends on its next request
    r = gateway.get("/app", ss, headers={"Accept": "application/json"})
    assert r.status_code in (401, 303)
    recs = [x for x in audit_records(gateway) if x["action"] ==
            "user.disable" and x["target"] == stale]
    assert recs and recs[-1]["result"] == "success"
    assert recs[-1]["actor"]["user"] == mgr
    assert "admin api" in recs[-1]["details"]["text"]
    # nothing left to do: a second call disables nobody
    r = call(gateway, "POST", "reviews/demo/disable-flagged", token=tok)
    assert r.status_code == 200 and r.json()["disabled"] == 0


def test_review_pages_by_cursor_cover_every_role_holder(gateway):
    for i in range(3):
        new_user(gateway, tenant="other", tag="rp")
    tok = token_for(gateway, ADMIN_EMAIL)
    seen, after = [], None
    for _ in range(20):
        q = "tenant=other&limit=2" + ("&after=" + after if after else "")
        page = review_rows(gateway, tok, q)
        seen += [p["email"] for p in page["people"]]
        after = page.get("next")
        if not after:
            break
    everyone = [p["email"] for p in
                review_rows(gateway, tok, "tenant=other&limit=200")["people"]]
    assert seen == everyone and len(everyone) >= 3


def test_review_complete_is_recorded_and_auditors_cannot(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    aud = new_user(gateway, roles="auditor", tag="aud")
    tok = token_for(gateway, mgr)
    r = call(gateway, "POST", "reviews/demo/complete", token=tok)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "completed"
    last = review_rows(gateway, tok)["last_review"]
    assert last["by"] == mgr and last["at"] > 0
    assert any(x["action"] == "review.complete" and
               x["actor"]["user"] == mgr and x["target"] == "demo"
               for x in audit_records(gateway))
    atok = token_for(gateway, aud)
    assert review_rows(gateway, atok, "tenant=other")["tenant"] == "other"
    for path in ("reviews/demo/complete", "reviews/demo/disable-flagged"):
        r = call(gateway, "POST", path, token=atok)
        assert r.status_code == 403, (path, r.status_code)
        assert r.json()["status"] == 403
    assert review_rows(gateway, tok)["last_review"]["by"] == mgr


def test_manager_of_tenant_a_gets_404_for_tenant_b(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    victim = new_user(gateway, tenant="other", tag="ovictim")
    plant_last_login(gateway, victim, 400)
    tok = token_for(gateway, mgr)
    r = call(gateway, "GET", "reviews?tenant=other", token=tok)
    assert r.status_code == 404 and r.json()["message"] == "not found"
    for path in ("reviews/other/complete", "reviews/other/disable-flagged"):
        assert call(gateway, "POST", path, token=tok).status_code == 404
    assert user_row(gateway, victim)[4] == "enabled"
    assert call(gateway, "GET", "tenants/other", token=tok).status_code == 404
    r = call(gateway, "GET", "tenants/demo", token=tok)
    assert r.status_code == 200 and r.json()["name"] == "demo"
    assert call(gateway, "GET", "reviews?days=0", token=tok
                ).status_code == 400


# ---- audit ----------------------------------------------------------------

def test_audit_filters_and_cursor_pages_are_disjoint_and_complete(gateway):
    who = new_user(gateway, tag="auditee")
    for _ in range(5):
        gateway.logged_in(who, PW)
    tok = token_for(gateway, ADMIN_EMAIL)
    r = call(gateway, "GET", "audit?limit=100&action=login.success&actor="
             + who, token=tok)
    assert r.status_code == 200, r.text
    every = r.json()["records"]
    assert len(every) == 5 and r.json()["next"] is None
    assert all(x["actor"]["user"] == who and x["action"] == "login.success"
               for x in every)
    seqs = [x["seq"] for x in every]
    assert seqs == sorted(seqs, reverse=True)
    pages, before = [], None
    for _ in range(10):
        q = "audit?limit=2&actor=" + who + ("&before=%d" % before
                                            if before else "")
        page = call(gateway, "GET", q, token=tok).json()
        pages.append([x["seq"] for x in page["records"]
                      if x["action"] == "login.success"])
        before = page["next"]
        if before is None:
            break
    got = [s for p in pages for s in p]
    assert len(got) == len(set(got)) and sorted(got) == sorted(seqs)
    assert len(pages) >= 3
    # a filter that matches nothing, and a day long past
    r = call(gateway, "GET", "audit?target=no-such-target-xyz", token=tok)
    assert r.json()["records"] == []
    r = call(gateway, "GET", "audit?from=2000-01-01&to=2000-01-02",
             token=tok)
    assert r.status_code == 200 and r.json()["records"] == []
    for bad in ("limit=0", "limit=101", "before=abc", "before=-3",
                "from=yesterday", "from=2030-01-02&to=2030-01-01"):
        r = call(gateway, "GET", "audit?" + bad, token=tok)
        assert r.status_code == 400, bad
        assert r.json()["status"] == 400


def test_audit_manager_sees_only_actors_of_their_tenant(gateway):
    mgr = new_user(gateway, roles="manager", tag="mgr")
    omgr = new_user(gateway, tenant="other", roles="manager", tag="omgr")
    gateway.logged_in(mgr, PW)
    gateway.logged_in(omgr, PW)
    r = call(gateway, "GET", "audit?action=login.success&limit=100",
             token=token_for(gateway, mgr))
    assert r.status_code == 200
    recs = r.json()["records"]
    actors = {x["actor"]["user"] for x in recs}
    assert mgr in actors and omgr not in actors
    assert all(x["actor"]["tenant"] == "demo" for x in recs)
    r = call(gateway, "GET", "audit?action=login.success&limit=100",
             token=token_for(gateway, ADMIN_EMAIL))
    assert omgr in {x["actor"]["user"] for x in r.json()["records"]}
    r = call(gateway, "GET", "audit",
             token=token_for(gateway, new_user(gateway, roles="space-admin",
                                               tag="sa")))
    assert r.status_code == 403


# ---- break-glass ----------------------------------------------------------

def test_break_glass_over_the_api_needs_two_fresh_administrators(gateway):
    account = new_user(gateway, tag="emergency")
    a1 = new_user(gateway, roles="gatehouse-admin", tag="bga")
    a2 = new_user(gateway, roles="gatehouse-admin", tag="bgb")
    assert gateway.cli("breakglass", "setup", "--email", account
                       ).returncode == 0
    tok = token_for(gateway, a1)
    r = call(gateway, "GET", "breakglass", token=tok)
    assert r.status_code == 200 and r.json()["state"] == "off"
    assert r.json()["account"] == account
    # a token is never a fresh second factor
    r = call(gateway, "POST", "breakglass/request", token=tok)
    assert r.status_code == 403
    assert "step_up_required" in r.json()["message"]
    assert call(gateway, "GET", "breakglass", token=tok
                ).json()["state"] == "off"
    mtok = token_for(gateway, new_user(gateway, roles="manager", tag="m"))
    assert call(gateway, "GET", "breakglass", token=mtok).status_code == 403
    s1, h1 = fresh_session(gateway, a1)
    r = call(gateway, "POST", "breakglass/request", s=s1)
    assert r.status_code == 403                       # no CSRF header
    r = call(gateway, "POST", "breakglass/request", s=s1, headers=h1)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "requested"
    # the one who asked cannot approve
    r = call(gateway, "POST", "breakglass/approve", s=s1, headers=h1)
    assert r.status_code in (403, 409)
    assert user_row(gateway, account)[4] == "disabled"
    s2, h2 = fresh_session(gateway, a2)
    r = call(gateway, "POST", "breakglass/approve", s=s2, headers=h2)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "on" and r.json()["until"] > 0
    assert user_row(gateway, account)[4] == "enabled"
    e = gateway.logged_in(account, PW)
    assert gateway.get("/.gatehouse/admin/", e, headers=BROWSER
                       ).status_code == 200
    st = call(gateway, "GET", "breakglass", token=tok).json()
    assert st["state"] == "on" and st["approved_by"] == a2
    recs = [(x["action"], x["result"], x["actor"]["user"])
            for x in audit_records(gateway)
            if x["action"] in ("breakglass.request", "breakglass.approve")]
    assert recs[-3:] == [("breakglass.request", "success", a1),
                         ("breakglass.approve", "denied", a1),
                         ("breakglass.approve", "success", a2)]
    r = call(gateway, "POST", "breakglass/end", token=tok)
    assert r.status_code == 403                       # step-up, too
    assert user_row(gateway, account)[4] == "enabled"
    r = call(gateway, "POST", "breakglass/end", s=s2, headers=h2)
    assert r.status_code == 200 and r.json()["state"] == "off"
    assert user_row(gateway, account)[4] == "disabled"
    assert call(gateway, "POST", "breakglass/nonsense", token=tok
                ).status_code == 404


# ---- tenants --------------------------------------------------------------

def test_tenant_create_for_administrators_only(gateway):
    tok = token_for(gateway, ADMIN_EMAIL)
    r = call(gateway, "POST", "tenants", token=tok,
             body={"name": "newco", "display": "New Co"})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "newco", "display": "New Co"}
    names = [t["name"] for t in
             call(gateway, "GET", "tenants", token=tok).json()["tenants"]]
    assert "newco" in names
    assert call(gateway, "GET", "tenants/newco", token=tok
                ).json()["display"] == "New Co"
    r = call(gateway, "POST", "tenants", token=tok,
             body={"name": "newco", "display": "Again"})
    assert r.status_code == 409
    for bad in ({"name": "Bad Name!"}, {"name": ""}, {"display": "x"},
                {"name": 7}, {"name": "x" * 64}):
        r = call(gateway, "POST", "tenants", token=tok, body=bad)
        assert r.status_code == 400, (bad, r.status_code)
        assert r.json()["status"] == 400
    mtok = token_for(gateway, new_user(gateway, roles="manager", tag="m"))
    r = call(gateway, "POST", "tenants", token=mtok, body={"name": "mine"})
    assert r.status_code == 403
    names = [t["name"] for t in
             call(gateway, "GET", "tenants", token=tok).json()["tenants"]]
    assert "mine" not in names
    recs = [x for x in audit_records(gateway) if x["action"] == "tenant.add"
            and x["details"].get("text") == "admin api"]
    assert [(x["target"], x["result"]) for x in recs
            if x["target"] == "newco"] == [("newco", "success"),
                                           ("newco", "failure")]
    assert call(gateway, "GET", "tenants/nosuch", token=tok
                ).status_code == 404


# ---- API tokens -----------------------------------------------------------

def test_tokens_admin_only_step_up_shown_once_and_revocable(gateway):
    owner = new_user(gateway, roles="manager", tag="owner")
    mtok = token_for(gateway, new_user(gateway, roles="manager", tag="m"))
    assert call(gateway, "GET", "tokens", token=mtok).status_code == 403
    r = call(gateway, "POST", "tokens", token=mtok,
             body={"email": owner, "name": "x", "days": 5})
    assert r.status_code == 403
    atok = token_for(gateway, ADMIN_EMAIL)
    # a token cannot mint tokens
    r = call(gateway, "POST", "tokens", token=atok,
             body={"email": owner, "name": "x", "days": 5})
    assert r.status_code == 403
    assert "step_up_required" in r.json()["message"]
    admin2 = new_user(gateway, roles="gatehouse-admin", tag="tokadm")
    s, h = fresh_session(gateway, admin2)
    r = call(gateway, "POST", "tokens", s=s,
             body={"email": owner, "name": "ci", "days": 5})
    assert r.status_code == 403                       # no CSRF header
    for bad in ({"email": owner, "days": 400}, {"email": owner, "days": 0},
                {"email": owner, "days": "5"}, {"email": "not-an-email"},
                {"email": owner, "name": "n" * 64}, {}):
        r = call(gateway, "POST", "tokens", s=s, headers=h, body=bad)
        assert r.status_code == 400, (bad, r.status_code)
    r = call(gateway, "POST", "tokens", s=s, headers=h,
             body={"email": "nobody@demo.example"})
    assert r.status_code == 404
    r = call(gateway, "POST", "tokens", s=s, headers=h,
             body={"email": owner, "name": "ci", "days": 5})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"].startswith("ghk_") and len(new["token"]) == 47
    assert new["email"] == owner and new["name"] == "ci"
    assert r.headers["Cache-Control"] == "no-store"
    r = call(gateway, "GET", "users", token=new["token"])
    assert r.status_code == 200
    lst = call(gateway, "GET", "tokens", token=atok)
    assert lst.status_code == 200
    assert new["token"] not in lst.text and new["token"][4:] not in lst.text
    mine = [t for t in lst.json()["tokens"] if t["id"] == new["id"]]
    assert mine and mine[0]["email"] == owner and "token" not in mine[0]
    r = call(gateway, "DELETE", "tokens/" + new["id"], token=atok)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert call(gateway, "GET", "users", token=new["token"]
                ).status_code == 401
    assert call(gateway, "DELETE", "tokens/" + new["id"], token=atok
                ).status_code == 404
    assert call(gateway, "DELETE", "tokens/zz", token=atok
                ).status_code == 404
    recs = audit_records(gateway)
    made = [x for x in recs if x["action"] == "apitoken.create" and
            x["target"] == owner and x["result"] == "success"]
    assert made and made[-1]["actor"]["user"] == admin2
    assert new["id"] in made[-1]["details"]["after"]
    gone = [x for x in recs if x["action"] == "apitoken.revoke" and
            x["target"] == new["id"]]
    assert gone and gone[-1]["actor"]["user"] == ADMIN_EMAIL
    assert all(new["token"] not in json.dumps(x) for x in recs)
    assert new["token"] not in open(gateway.errlog).read()


def test_console_tokens_page_makes_shows_once_and_revokes(gateway):
    owner = new_user(gateway, roles="manager", tag="cowner")
    admin3 = new_user(gateway, roles="gatehouse-admin", tag="cadm")
    m = gateway.logged_in(new_user(gateway, roles="manager", tag="cm"), PW)
    r = gateway.get(TOKENS_PAGE, m, headers=BROWSER)
    assert r.status_code == 403
    assert 'id="nav-tokens"' not in gateway.get(
        "/.gatehouse/admin/", m, headers=BROWSER).text
    s = gateway.logged_in(admin3, PW)
    page = gateway.get(TOKENS_PAGE, s, headers=BROWSER)
    assert page.status_code == 200 and 'id="nav-tokens"' in page.text
    form = {"action": "create", "email": owner, "name": "console",
            "days": "7", "csrf": input_value(page.text, "csrf")}
    # no fresh second factor yet: sent to the step-up, nothing made
    r = gateway.post(TOKENS_PAGE, s, data=form,
                     headers={"Origin": gateway.origin, **BROWSER})
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/.gatehouse/mfa")
    enrol_totp(gateway, s)
    page = gateway.get(TOKENS_PAGE, s, headers=BROWSER)
    form["csrf"] = input_value(page.text, "csrf")
    r = gateway.post(TOKENS_PAGE, s, data=form,
                     headers={"Origin": "https://evil.example", **BROWSER})
    assert r.status_code == 403
    r = gateway.post(TOKENS_PAGE, s, data=form,
                     headers={"Origin": gateway.origin, **BROWSER})
    assert r.status_code == 200, r.text[:300]
    tok = re.search(r'id="new-token">(ghk_[A-Za-z0-9_-]{43})<', r.text)
    assert tok
    tok = tok.group(1)
    assert call(gateway, "GET", "users", token=tok).status_code == 200
    page = gateway.get(TOKENS_PAGE, s, headers=BROWSER)
    assert tok not in page.text and owner in page.text
    ids = re.findall(r'name="id" value="([0-9a-f]{16})"', page.text)
    lst = call(gateway, "GET", "tokens",
               token=token_for(gateway, ADMIN_EMAIL)).json()["tokens"]
    tid = [t["id"] for t in lst if t["name"] == "console"][0]
    assert tid in ids
    r = gateway.post(TOKENS_PAGE, s, data={
        "action": "revoke", "id": tid, "csrf": input_value(page.text, "csrf")},
        headers={"Origin": gateway.origin, **BROWSER})
    assert r.status_code == 303
    assert call(gateway, "GET", "users", token=tok).status_code == 401
