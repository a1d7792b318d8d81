"""Tenant settings over the admin API (/.gatehouse/api/v1/tenants/{name}/…):
the console's tenant job, so the same decisions (networks, sign-in and
domains need a fresh second factor — never an API token), checks and audit
records; the effects (a network list, a sign-in method) apply to the next
request."""
from conftest import API as JSON_ACCEPT
from test_admin_api import (PW, audit_records, call, new_user,  # noqa: F401
                            tenants, token_for)
from test_admin_api_more import fresh_session


def test_settings_read_and_password_profile_with_a_token(gateway):
    mgr = new_user(gateway, roles="manager", tag="tmgr")
    tok = token_for(gateway, mgr)
    r = call(gateway, "GET", "tenants/demo", token=tok)
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["networks"] is None and t["idle"] is None
    assert t["signin"] == "password" and isinstance(t["domains"], list)
    # a plain setting: a token is enough
    r = call(gateway, "POST", "tenants/demo/profile", token=tok,
             body={"value": "classes"})
    assert r.status_code == 200, r.text
    assert r.json() == {"tenant": "demo", "setting": "profile",
                        "before": "nist", "after": "classes"}
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["password_profile"] == "classes"
    r = call(gateway, "POST", "tenants/demo/profile", token=tok,
             body={"value": "nist"})
    assert r.status_code == 200
    # lifetimes: also a plain setting
    r = call(gateway, "POST", "tenants/demo/session", token=tok,
             body={"idle": "30m", "lifetime": "12h"})
    assert r.status_code == 200, r.text
    t = call(gateway, "GET", "tenants/demo", token=tok).json()
    assert (t["idle"], t["lifetime"]) == (1800, 43200)
    assert call(gateway, "POST", "tenants/demo/session", token=tok,
                body={"idle": "", "lifetime": ""}).status_code == 200
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["lifetime"] is None
    recs = [x for x in audit_records(gateway)
            if x["action"] in ("tenant.password_policy", "tenant.session")
            and x["actor"]["user"] == mgr]
    assert len(recs) == 4 and all("admin api" in x["details"]["text"]
                                  for x in recs)
    assert recs[0]["details"]["before"] == "nist"
    assert recs[0]["details"]["after"] == "classes"


def test_bad_values_are_400_and_change_nothing(gateway):
    tok = token_for(gateway, new_user(gateway, roles="manager", tag="bmgr"))
    for path, body in (("tenants/demo/profile", {"value": "weak"}),
                       ("tenants/demo/profile", {}),
                       ("tenants/demo/profile", {"value": 3}),
                       ("tenants/demo/session", {"idle": "soon"}),
                       ("tenants/demo/session", {"idle": "12h",
                                                 "lifetime": "1h"})):
        r = call(gateway, "POST", path, token=tok, body=body)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert r.json()["status"] == 400 and r.json()["message"]
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["idle"] is None
    for path in ("tenants/demo/nope", "tenants/demo/create",
                 "tenants/demo/domains/x.example/extra"):
        r = call(gateway, "POST", path, token=tok, body={"value": "x"})
        assert r.status_code == 404, (path, r.status_code)


def test_sign_in_settings_need_a_fresh_second_factor_not_a_token(gateway,
                                                                 backend):
    mgr = new_user(gateway, roles="manager", tag="smgr")
    tok = token_for(gateway, mgr)
    for path, body in (("tenants/demo/networks", {"networks": "10.0.0.0/8"}),
                       ("tenants/demo/signin", {"value": "password+otp"}),
                       ("tenants/demo/mfa", {"value": "required"}),
                       ("tenants/demo/domains", {"domain": "demo.example"})):
        r = call(gateway, "POST", path, token=tok, body=body)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert r.json()["message"].startswith("step_up_required")
    r = call(gateway, "DELETE", "tenants/demo/domains/demo.example", token=tok)
    assert r.status_code == 403
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["networks"] is None

    # with a console session that just proved its second factor
    s, h = fresh_session(gateway, mgr)
    member = new_user(gateway, tag="netm")
    ms = gateway.logged_in(member, PW)
    assert gateway.get("/app", ms, headers=JSON_ACCEPT).status_code == 200
    r = call(gateway, "POST", "tenants/demo/networks", s=s, headers=h,
             body={"networks": "192.0.2.0/24"})
    assert r.status_code == 200, r.text
    assert r.json()["after"] == "192.0.2.0/24"
    r = gateway.get("/app", ms, headers=JSON_ACCEPT)
    assert r.status_code == 403 and "network_not_allowed" in r.text
    r = call(gateway, "POST", "tenants/demo/networks", s=s, headers=h,
             body={"networks": "10.0.0.0/8,bogus"})
    assert r.status_code == 400 and "Networks" in r.json()["message"]
    r = call(gateway, "POST", "tenants/demo/networks", s=s, headers=h,
             body={"networks": ""})
    assert r.status_code == 200, r.text
    assert gateway.get("/app", ms, headers=JSON_ACCEPT).status_code == 200
    # without the CSRF header the session's write is refused
    r = call(gateway, "POST", "tenants/demo/networks", s=s,
             headers={"Origin": gateway.origin},
             body={"networks": "192.0.2.0/24"})
    assert r.status_code == 403
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["networks"] is None
    # SAML without an identity provider: 409, nothing changes
    r = call(gateway, "POST", "tenants/demo/signin", s=s, headers=h,
             body={"value": "saml"})
    assert r.status_code == 409, r.text
    # domains: add, list, another tenant's refused, remove
    r = call(gateway, "POST", "tenants/demo/domains", s=s, headers=h,
             body={"domain": "Demo-Corp.Example"})
    assert r.status_code == 200, r.text
    assert "demo-corp.example" in call(gateway, "GET", "tenants/demo",
                                       token=tok).json()["domains"]
    r = call(gateway, "DELETE", "tenants/demo/domains/nothere.example", s=s,
             headers=h)
    assert r.status_code == 400
    r = call(gateway, "DELETE", "tenants/demo/domains/demo-corp.example",
             s=s, headers=h)
    assert r.status_code == 200, r.text
    assert call(gateway, "GET", "tenants/demo", token=tok
                ).json()["domains"] == []
    recs = [x for x in audit_records(gateway) if x["actor"]["user"] == mgr
            and x["action"] in ("tenant.networks", "tenant.domain")]
    assert [x["result"] for x in recs] == ["success", "failure", "success",
                                           "success", "failure", "success"]


def test_other_tenants_are_404_and_auditors_403(gateway):
    omgr = new_user(gateway, tenant="other", roles="manager", tag="omgr")
    otok = token_for(gateway, omgr)
    for path, body in (("tenants/demo/profile", {"value": "classes"}),
                       ("tenants/demo/session", {"idle": "5m"}),
                       ("tenants/nosuch/profile", {"value": "classes"})):
        r = call(gateway, "POST", path, token=otok, body=body)
        assert r.status_code == 404, (path, r.status_code, r.text)
    assert call(gateway, "GET", "tenants/demo", token=otok
                ).status_code == 404
    atok = token_for(gateway, new_user(gateway, roles="auditor", tag="taud"))
    assert call(gateway, "GET", "tenants/demo", token=atok).status_code == 200
    r = call(gateway, "POST", "tenants/demo/profile", token=atok,
             body={"value": "classes"})
    assert r.status_code == 403
    assert any(x["action"] == "tenant.password_policy"
               and x["result"] == "denied" and x["target"] == "demo"
               for x in audit_records(gateway))
    # an administrator: an unknown tenant is 404 after the decision
    r = call(gateway, "POST", "tenants/nosuch/profile",
             token=token_for(gateway, "admin@example.com"),
             body={"value": "classes"})
    assert r.status_code == 404, r.text
