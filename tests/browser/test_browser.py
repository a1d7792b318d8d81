"""The admin console in Debian's chromium, driven by playwright-core
(tests/browser/admin_flow.js). Screenshots of each main screen go to
GATEHOUSE_BROWSER_OUT (default build/browser-screenshots).

playwright-core is installed (pinned by package-lock.json) into
tests/browser/node_modules with npm from Debian, never downloading a
browser."""
import json
import os
import subprocess

import pytest

from gh_integration_conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, ROOT,
                                     plant_last_login)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("GATEHOUSE_BROWSER_OUT",
                     os.path.join(ROOT, "build", "browser-screenshots"))
CHROMIUM = "/usr/bin/chromium"
PW = "browser test manager password 64"
M1, M2 = "m1@acme.example", "m2@acme.example"
STALE = "stale@acme.example"
SCENARIO_TIMEOUT = 180

POLICY = """\
version: 1
tenants:
  acme:
    mfa: required
apps:
  demo:
    tenants: [demo, acme]
    rules:
      - {name: staff, effect: allow, roles: [member, manager, gatehouse-admin]}
"""


def ensure_playwright():
    if os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        return
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, "npm ci failed:\n%s\n%s" % (p.stdout, p.stderr)


@pytest.fixture(scope="module")
def acme(gateway):
    assert os.path.exists(CHROMIUM), "chromium is missing (scripts/deps.sh)"
    ensure_playwright()
    os.makedirs(OUT, exist_ok=True)
    assert gateway.cli("tenant", "add", "acme").returncode == 0
    path = os.path.join(gateway.base, "browser-policy.yaml")
    with open(path, "w") as f:
        f.write(POLICY)
    p = gateway.cli("policy", "apply", path)
    assert p.returncode == 0, p.stderr
    for email in (M1, M2):
        gateway.add_user(email, PW, tenant="acme", roles="manager")
    gateway.add_user(STALE, PW, tenant="acme", roles="member")
    return gateway


def run(gw, scenario):
    env = dict(os.environ, GH_URL=gw.origin, GH_OUT=OUT, GH_PW=PW, GH_M1=M1,
               GH_M2=M2, GH_STALE=STALE, GH_ADMIN=ADMIN_EMAIL,
               GH_ADMIN_PW=ADMIN_PASSWORD, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
               GH_STATE=os.path.join(gw.base, "browser-totp.json"))
    p = subprocess.run(["node", os.path.join(HERE, "admin_flow.js"),
                        scenario], cwd=HERE, env=env, capture_output=True,
                       text=True, timeout=SCENARIO_TIMEOUT)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert lines, "no result from node (%d):\n%s\n%s" % (
        p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    res = json.loads(lines[-1])
    assert res["ok"], res.get("error")
    assert p.returncode == 0
    return res


def user_state(gw, email):
    for l in gw.cli("user", "list").stdout.splitlines():
        f = l.split("\t")
        if f[0] == email:
            return f[3], f[4]
    return None


def test_invite_approve_join_enrol_grant_and_revoke_in_the_browser(acme,
                                                                    backend):
    res = run(acme, "invite")
    roles, state = user_state(acme, res["invitee"])
    assert state == "enabled" and "member" not in roles.split(",")
    for name in ("01-people", "02-invitation-pending",
                 "03-invitation-approved", "04-join", "05-enrol-totp",
                 "06-person", "07-revoked-403"):
        assert os.path.getsize(os.path.join(OUT, name + ".png")) > 1000


def test_access_review_flags_and_bulk_disables_in_the_browser(acme):
    plant_last_login(acme, STALE, 200)
    run(acme, "review")
    assert user_state(acme, STALE)[1] == "disabled"
    assert user_state(acme, M1)[1] == "enabled"


def test_administrator_screens_render_in_the_browser(acme):
    run(acme, "screens")
    for name in ("10-tenants", "11-audit-log", "12-api-tokens",
                 "13-break-glass", "14-visitors"):
        assert os.path.getsize(os.path.join(OUT, name + ".png")) > 1000
