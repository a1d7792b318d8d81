"""Signed identity for backends (issue 7): the X-Gatehouse-Assertion header
(an ES256 JWT per session and app), /.gatehouse/jwks.json, the signing
counters at /.gatehouse/metrics, key rotation, `gatehouse jwt verify`, and
the Python snippet of docs/backend-verification.md run for real.

The backend here verifies the way a real one would: PyJWT (python3-jwt)
with the key taken from the JWKS fetched from the gateway, by the token
header's kid; the algorithm pinned to ES256; audience = the app, issuer =
the gateway's gatehouse_public_url (https://127.0.0.1:PORT).

The module's gateway runs one worker, so that /.gatehouse/metrics (per
worker) counts every signature."""
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import (ADMIN_EMAIL, API, LIBASAN, LOGOUT, NGINX,
                      SESSION_COOKIE, WHOAMI)

GATEWAY_OPTIONS = {"workers": 1}

PW = "a jwt test password 9"
ASSERTION = "X-Gatehouse-Assertion"
JWKS = "/.gatehouse/jwks.json"
METRICS = "/.gatehouse/metrics"
LIFETIME = 300                   # gatehouse_jwt_lifetime 5m in the template
REQUIRED = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti"]
CLAIM_NAMES = {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "email",
               "name", "tenant", "roles", "amr", "auth_time"}
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
METRIC = re.compile(r'^(gatehouse_jwt_[a-z_]+)\{pid="(\d+)"\} (\d+)$', re.M)
KEY_ROW = re.compile(r"^([A-Za-z0-9_-]{43})\t(signing|next|published|retired)"
                     r"\t(\S+)\t(\S+)\t(\S+)$")
ROTATED = re.compile(r"^new key ([A-Za-z0-9_-]{43}) is published now and "
                     r"signs from (\S+)\n$")
DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                   "backend-verification.md")
EXAMPLE_POLICY = os.path.join(os.path.dirname(__file__), "..", "..", "conf",
                              "policy.example.yaml")

_seq = itertools.count(1)


# ---- helpers ---------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk):
    """RFC 7638 thumbprint of an EC JWK: SHA-256 over the required members
    in lexicographic order, no whitespace."""
    canon = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"],
                        "y": jwk["y"]}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canon.encode()).digest())


def parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), s


def kid_of(token):
    return jwt.get_unverified_header(token)["kid"]


def header_values(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


def one_header(rec, name):
    vals = header_values(rec, name)
    assert len(vals) == 1, (name, rec["headers"])
    return vals[0]


def path():
    return "/jwt-%d" % next(_seq)


def proxied(gw, s, target=None, method="GET", headers=None):
    """One request through the gateway that must reach the backend; returns
    (the X-Gatehouse-Assertion the backend got, its record)."""
    target = target or path()
    before = len(gw.backend.requests())
    r = (s or gw.session()).request(method, gw.url(target),
                                    headers=headers or API, timeout=10,
                                    allow_redirects=False)
    assert r.status_code == 200, (target, r.status_code, r.text[:300])
    recs = [x for x in gw.backend.requests()[before:] if x["path"] == target]
    assert len(recs) == 1, [x["path"] for x in gw.backend.requests()[before:]]
    return one_header(recs[0], ASSERTION), recs[0]


def fetch_jwks(gw):
    r = gw.get(JWKS)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.json()


def kids(jwks):
    return [k["kid"] for k in jwks["keys"]]


class Backend:
    """What a backend does with the header: PyJWT, key from the gateway's
    JWKS by kid, ES256 only, audience and issuer checked."""

    def __init__(self, gw):
        self.gw = gw
        self.jwks = fetch_jwks(gw)

    def refresh(self):
        self.jwks = fetch_jwks(self.gw)

    def key(self, kid):
        entries = [k for k in self.jwks["keys"] if k.get("kid") == kid]
        if len(entries) != 1:
            raise LookupError("kid %r: %d entries in the JWKS"
                              % (kid, len(entries)))
        return jwt.PyJWK(entries[0]).key

    def verify(self, token, audience="demo", issuer=None):
        key = self.key(jwt.get_unverified_header(token).get("kid"))
        return jwt.decode(token, key, algorithms=["ES256"], audience=audience,
                          issuer=issuer or self.gw.origin,
                          options={"require": REQUIRED})


def metrics(gw):
    """{metric: value} from /.gatehouse/metrics (one worker: one pid)."""
    r = gw.get(METRICS)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    rows = METRIC.findall(r.text)
    assert len({pid for _, pid, _ in rows}) == 1, r.text
    return {name: int(v) for name, _, v in rows}


def apply_policy(gw, text):
    p = os.path.join(gw.base, "policy-%d.yaml" % next(_seq))
    with open(p, "w") as f:
        f.write(text)
    r = gw.cli("policy", "apply", p)
    assert r.returncode == 0, (r.stdout, r.stderr)


def new_user(gw, roles="member", name=None, tag="jwt"):
    email = "%s%d@example.com" % (tag, next(_seq))
    gw.add_user(email, PW, roles=roles, name=name)
    return email


def keys_list(gw):
    """[(kid, state, created, signs_from, retires)] in the CLI's order."""
    p = gw.cli("keys", "list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "kid\tstate\tcreated\tsigns_from\tretires", lines
    rows = []
    for line in lines[1:]:
        m = KEY_ROW.match(line)
        assert m, line
        rows.append(m.groups())
    return rows


def states(gw):
    return {row[0]: row[1] for row in keys_list(gw)}


def rotate(gw, *args):
    p = gw.cli("keys", "rotate", *args)
    assert p.returncode == 0, (p.stdout, p.stderr)
    m = ROTATED.match(p.stdout)
    assert m, p.stdout
    return m.group(1)


def wait_state(gw, kid, state, timeout=5):
    """Poll `keys list` (bounded) until kid is in state."""
    deadline = time.monotonic() + timeout
    while True:
        now = states(gw)
        if now.get(kid) == state or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def utc(text):
    return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
               - time.timezone)


def retire_schedule_problems(rows, lifetime=LIFETIME):
    """Every key but the last to start must leave the JWKS a token lifetime
    and a minute after the key that supersedes it starts; the last one
    must not retire. Returns the rows that break this, as text."""
    order = sorted(rows, key=lambda r: utc(r[3]))
    bad = []
    for cur, nxt in zip(order, order[1:]):
        if cur[4] == "-" or utc(cur[4]) != utc(nxt[3]) + lifetime + 60:
            bad.append("%s (signs from %s) retires %s, but %s takes over "
                       "at %s" % (cur[0], cur[3], cur[4], nxt[0], nxt[3]))
    if order and order[-1][4] != "-":
        bad.append("%s, the last to start, retires %s" % (order[-1][0],
                                                           order[-1][4]))
    return "; ".join(bad)


def cli_verify(gw, token, *args):
    return gw.cli("jwt", "verify", *args, input=token + "\n")


def refused(p, reason):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", p.stdout
    assert p.stderr == "gatehouse: token refused: %s\n" % reason, p.stderr


@pytest.fixture(scope="module", autouse=True)
def example_policy(gateway):
    """The example policy: demo for staff, admin-tools for role admin."""
    with open(EXAMPLE_POLICY) as f:
        apply_policy(gateway, f.read())


# ---- the JWKS document -----------------------------------------------------

def test_jwks_is_public_and_well_formed(gateway):
    r = gateway.get(JWKS)           # no session at all
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    cc = [d.strip() for d in r.headers.get("Cache-Control", "").split(",")]
    assert "public" in cc, cc
    ages = [int(d.split("=", 1)[1]) for d in cc if d.startswith("max-age=")]
    assert len(ages) == 1 and 60 <= ages[0] <= 3600, cc
    doc = r.json()
    assert list(doc) == ["keys"] and len(doc["keys"]) >= 1, doc
    for k in doc["keys"]:
        assert set(k) == {"kty", "crv", "alg", "use", "kid", "x", "y"}, k
        assert (k["kty"], k["crv"], k["alg"], k["use"]) == \
            ("EC", "P-256", "ES256", "sig"), k
        for c in ("x", "y"):
            assert len(k[c]) == 43 and B64URL.match(k[c]), k
            assert len(b64url_decode(k[c])) == 32
        assert k["kid"] == thumbprint(k), k
        # a point on P-256, and the coordinates are the key's own
        pub = jwt.PyJWK(k).key
        nums = pub.public_numbers()
        assert isinstance(pub.curve, ec.SECP256R1)
        assert b64url(nums.x.to_bytes(32, "big")) == k["x"]
        assert b64url(nums.y.to_bytes(32, "big")) == k["y"]
    # the same set from the CLI's point of view
    assert sorted(kids(doc)) == sorted(row[0] for row in keys_list(gateway)
                                       if row[1] != "retired")
    # a HEAD is fine, a POST is not
    assert gateway.session().head(gateway.url(JWKS), timeout=10).status_code \
        == 200
    assert gateway.post(JWKS, data="x").status_code == 405


def test_metrics_answer_loopback(gateway):
    r = gateway.get(METRICS)        # from 127.0.0.1, no session
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    m = metrics(gateway)
    assert set(m) == {"gatehouse_jwt_signatures_total",
                      "gatehouse_jwt_reused_total", "gatehouse_jwt_keys"}, m
    assert m["gatehouse_jwt_keys"] == len(fetch_jwks(gateway)["keys"])
    assert "# TYPE gatehouse_jwt_signatures_total counter" in r.text


# ---- the assertion on every proxied request --------------------------------

def test_every_proxied_request_carries_one_verified_assertion(gateway,
                                                              backend):
    name = "Zo\u00eb \"Q\" O'Brien \u2713"
    email = new_user(gateway, roles="member", name=name, tag="claims")
    t0 = int(time.time())
    s = gateway.logged_in(email, PW)
    t1 = int(time.time())
    be = Backend(gateway)
    seen = []
    for method, target in (("GET", "/a"), ("POST", "/b/c?x=1"), ("PUT", "/d"),
                           ("DELETE", "/e"), ("HEAD", "/f"), ("GET", "/")):
        token, rec = proxied(gateway, s, target, method=method)
        assert rec["method"] == method
        seen.append(token)
        claims = be.verify(token)
        hdr, _, sig = parts(token)
        assert hdr["alg"] == "ES256" and hdr.get("typ", "JWT") == "JWT", hdr
        assert set(hdr) <= {"alg", "typ", "kid"}, hdr
        assert hdr["kid"] in [thumbprint(k) for k in be.jwks["keys"]], hdr
        assert len(b64url_decode(sig)) == 64          # raw r||s, not DER
        assert set(claims) == CLAIM_NAMES, claims
        user = one_header(rec, "X-Gatehouse-User")
        assert claims["sub"] == user and claims["sub"] != email, claims
        assert claims["email"] == email == one_header(rec, "X-Gatehouse-Email")
        assert claims["name"] == name
        assert claims["tenant"] == "demo" == one_header(rec,
                                                        "X-Gatehouse-Tenant")
        assert claims["roles"] == one_header(rec, "X-Gatehouse-Roles") \
            .split(",") == ["member"], claims
        assert claims["amr"] == ["pwd"], claims
        assert claims["aud"] == "demo" and claims["iss"] == gateway.origin
        assert claims["iat"] == claims["nbf"], claims
        assert claims["exp"] - claims["iat"] == LIFETIME, claims
        assert t0 - 1 <= claims["auth_time"] <= t1 + 1, (t0, t1, claims)
        assert claims["auth_time"] <= claims["iat"] <= int(time.time()) + 1
        assert HEX32.match(claims["jti"]), claims
    # one session, one app: one token
    assert len(set(seen)) == 1, seen
    # the same user's whoami agrees on who this is
    assert gateway.get(WHOAMI, s).json()["email"] == email


def test_jti_and_token_differ_across_sessions(gateway, backend):
    be = Backend(gateway)
    other = new_user(gateway, tag="jti")
    sessions = [gateway.logged_in() for _ in range(3)] + \
        [gateway.logged_in(other, PW) for _ in range(2)]
    tokens = [proxied(gateway, s)[0] for s in sessions]
    claims = [be.verify(t) for t in tokens]
    assert len(set(tokens)) == len(tokens)
    assert len({c["jti"] for c in claims}) == len(claims), claims
    # the same user is the same sub in every session; another user is not
    subs = [c["sub"] for c in claims]
    assert len(set(subs[:3])) == 1 and len(set(subs[3:])) == 1, subs
    assert subs[0] != subs[3]
    assert claims[0]["email"] == ADMIN_EMAIL and claims[3]["email"] == other


def test_aud_differs_per_app(gateway, backend):
    be = Backend(gateway)
    email = new_user(gateway, roles="member", tag="aud")
    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    s = gateway.logged_in(email, PW)
    demo, _ = proxied(gateway, s, "/x")
    tools, rec = proxied(gateway, s, "/admin-tools/x")
    assert demo != tools
    cd, ct = be.verify(demo, "demo"), be.verify(tools, "admin-tools")
    assert cd["aud"] == "demo" and ct["aud"] == "admin-tools"
    assert cd["sub"] == ct["sub"] and cd["jti"] != ct["jti"]
    assert ct["roles"] == one_header(rec, "X-Gatehouse-Roles").split(",")
    assert "admin" in ct["roles"]
    # a token for one app is refused by another
    with pytest.raises(jwt.InvalidAudienceError):
        be.verify(demo, "admin-tools")
    with pytest.raises(jwt.InvalidAudienceError):
        be.verify(tools, "demo")
    with pytest.raises(jwt.InvalidIssuerError):
        be.verify(demo, "demo", issuer="https://127.0.0.1:1")
    refused(cli_verify(gateway, demo, "--aud", "admin-tools"),
            "wrong audience")
    assert cli_verify(gateway, tools, "--aud", "admin-tools").returncode == 0


def test_audience_override(make_gateway):
    """gatehouse_jwt_audience replaces the app name as aud, per location;
    the same app under two audiences gets two tokens."""
    gw = make_gateway(workers=1, server_directives=[
        "location /svc/ { gatehouse_app demo; "
        "gatehouse_jwt_audience https://svc.internal.example; "
        "proxy_pass http://demo_backend; }"])
    be = Backend(gw)
    s = gw.logged_in()
    plain, _ = proxied(gw, s, "/plain")
    svc, _ = proxied(gw, s, "/svc/x")
    assert plain != svc
    assert be.verify(plain, "demo")["aud"] == "demo"
    assert be.verify(svc, "https://svc.internal.example")["aud"] == \
        "https://svc.internal.example"
    with pytest.raises(jwt.InvalidAudienceError):
        be.verify(svc, "demo")
    refused(cli_verify(gw, svc, "--aud", "demo"), "wrong audience")
    # each keeps its own cached token
    assert proxied(gw, s, "/plain2")[0] == plain
    assert proxied(gw, s, "/svc/y")[0] == svc


# ---- signed once per (session, app) ----------------------------------------

def test_signed_once_per_session_and_app(gateway, backend):
    email = new_user(gateway, roles="member", tag="once")
    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    s = gateway.logged_in(email, PW)
    m0 = metrics(gateway)
    tokens = [proxied(gateway, s)[0] for _ in range(20)]
    m1 = metrics(gateway)
    assert len(set(tokens)) == 1, "a new token within one session and app"
    assert m1["gatehouse_jwt_signatures_total"] - \
        m0["gatehouse_jwt_signatures_total"] == 1, (m0, m1)
    assert m1["gatehouse_jwt_reused_total"] - \
        m0["gatehouse_jwt_reused_total"] == 19, (m0, m1)

    # our own endpoints and refused requests sign nothing
    assert gateway.get(WHOAMI, s).status_code == 200
    assert gateway.get(JWKS, s).status_code == 200
    assert gateway.get("/x", headers=API).status_code == 401
    m2 = metrics(gateway)
    assert m2["gatehouse_jwt_signatures_total"] == \
        m1["gatehouse_jwt_signatures_total"], (m1, m2)

    # a second app for the same session: one more signature, then reuse
    tools = [proxied(gateway, s, "/admin-tools/p%d" % i)[0] for i in range(5)]
    m3 = metrics(gateway)
    assert len(set(tools)) == 1 and tools[0] != tokens[0]
    assert m3["gatehouse_jwt_signatures_total"] - \
        m2["gatehouse_jwt_signatures_total"] == 1, (m2, m3)
    # and the first app still has its token
    assert proxied(gateway, s)[0] == tokens[0]
    assert metrics(gateway)["gatehouse_jwt_signatures_total"] == \
        m3["gatehouse_jwt_signatures_total"]
    Backend(gateway).verify(tools[0], "admin-tools")


def test_concurrent_requests_of_one_session_sign_once(gateway, backend):
    s = gateway.logged_in(new_user(gateway, tag="burst"), PW)
    cookie = s.cookies.get(SESSION_COOKIE)
    m0 = metrics(gateway)

    def one(i):
        c = gateway.session()
        c.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1", path="/")
        return proxied(gateway, c, "/burst-%d" % i)[0]

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = list(pool.map(one, range(30)))
    m1 = metrics(gateway)
    assert len(set(tokens)) == 1
    assert m1["gatehouse_jwt_signatures_total"] - \
        m0["gatehouse_jwt_signatures_total"] == 1, (m0, m1)


# ---- what the token asserts stays current ----------------------------------

def test_role_change_appears_in_the_next_token(gateway, backend):
    be = Backend(gateway)
    email = new_user(gateway, roles="member", tag="roles")
    s = gateway.logged_in(email, PW)
    t1, _ = proxied(gateway, s)
    assert be.verify(t1)["roles"] == ["member"]
    assert proxied(gateway, s)[0] == t1

    p = gateway.cli("role", "grant", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    t2, rec = proxied(gateway, s)
    assert t2 != t1, "the grant did not produce a new token"
    c2 = be.verify(t2)
    assert c2["roles"] == ["member", "admin"] == \
        one_header(rec, "X-Gatehouse-Roles").split(","), c2
    assert c2["jti"] != be.verify(t1)["jti"]
    assert proxied(gateway, s)[0] == t2, "not reused after the change"

    p = gateway.cli("role", "revoke", "--tenant", "demo", "--email", email,
                    "admin")
    assert p.returncode == 0, p.stderr
    t3, rec = proxied(gateway, s)
    assert t3 != t2
    c3 = be.verify(t3)
    assert c3["roles"] == ["member"] == \
        one_header(rec, "X-Gatehouse-Roles").split(","), c3


def test_logout_ends_the_assertions(gateway, backend):
    s = gateway.logged_in(new_user(gateway, tag="bye"), PW)
    cookie = s.cookies.get(SESSION_COOKIE)
    token, _ = proxied(gateway, s)
    assert gateway.post(LOGOUT, s).status_code == 303
    replay = gateway.session()
    replay.cookies.set(SESSION_COOKIE, cookie, domain="127.0.0.1", path="/")
    before = len(backend.requests())
    r = gateway.get("/after-logout", replay, headers=API)
    assert r.status_code == 401
    assert ASSERTION.lower() not in {k.lower() for k in r.headers}
    assert len(backend.requests()) == before, "a dead session reached the app"
    # a new session of the same user: a new token
    s2 = gateway.logged_in()
    assert proxied(gateway, s2)[0] != token


def test_disabled_user_gets_no_assertion(gateway, backend):
    email = new_user(gateway, tag="off")
    s = gateway.logged_in(email, PW)
    proxied(gateway, s)
    p = gateway.cli("user", "disable", "--email", email)
    assert p.returncode == 0, p.stderr
    before = len(backend.requests())
    assert gateway.get("/after-disable", s, headers=API).status_code == 401
    assert len(backend.requests()) == before


# ---- a client cannot bring its own -----------------------------------------

def test_forged_assertion_never_reaches_the_backend(gateway, backend):
    be = Backend(gateway)
    victim = gateway.logged_in(new_user(gateway, tag="victim"), PW)
    stolen, _ = proxied(gateway, victim)        # a real, valid token
    s = gateway.logged_in(new_user(gateway, tag="mallory"), PW)
    own, _ = proxied(gateway, s)
    cookie = s.cookies.get(SESSION_COOKIE)
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
    for extra in ([(ASSERTION, stolen)],
                  [("x-gatehouse-assertion", forged)],
                  [(ASSERTION, forged), (ASSERTION.upper(), stolen)],
                  [("X-Gatehouse-Assertion ", forged)]):
        target = path()
        hdrs = [("Cookie", "%s=%s" % (SESSION_COOKIE, cookie)),
                ("Accept", "application/json")] + extra
        status, _, body = gateway.raw("GET", target, hdrs)
        if status == 400:           # a malformed header name: nginx refuses
            continue
        assert status == 200, (status, body[:200])
        rec = [r for r in backend.requests() if r["path"] == target][0]
        got = one_header(rec, ASSERTION)
        assert got == own, "the client's header reached the backend"
        assert be.verify(got)["sub"] == one_header(rec, "X-Gatehouse-User")
    # and without a session, a forged header gets nobody anywhere
    before = len(backend.requests())
    status, _, _ = gateway.raw("GET", path(), [(ASSERTION, stolen),
                                               ("Accept", "application/json")])
    assert status == 401
    assert len(backend.requests()) == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_forged_assertion_over_http2(gateway, backend, tmp_path):
    s = gateway.logged_in()
    own, _ = proxied(gateway, s)
    target = path()
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy")}
    p = subprocess.run(
        ["curl", "-sS", "--http2", "--max-time", "10", "--noproxy", "*",
         "--cacert", gateway.cert, "-o", str(tmp_path / "b"),
         "-w", "%{http_version} %{http_code}",
         "-H", "Cookie: %s=%s" % (SESSION_COOKIE,
                                  s.cookies.get(SESSION_COOKIE)),
         "-H", "x-gatehouse-assertion: forged.forged.forged",
         "-H", "Accept: application/json", gateway.url(target)],
        capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0 and p.stdout == "2 200", (p.stdout, p.stderr)
    rec = [r for r in backend.requests() if r["path"] == target][0]
    assert one_header(rec, ASSERTION) == own


# ---- gatehouse jwt verify --------------------------------------------------

def forge(header, claims, signature=b""):
    signing_input = "%s.%s" % (b64url(json.dumps(header).encode()),
                               b64url(json.dumps(claims).encode()))
    if callable(signature):
        signature = signature(signing_input.encode())
    return signing_input + "." + b64url(signature)


def test_cli_verify_accepts_a_gateway_token(gateway, backend):
    token, _ = proxied(gateway, gateway.logged_in())
    p = cli_verify(gateway, token, "--aud", "demo", "--iss", gateway.origin)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert json.loads(p.stdout) == Backend(gateway).verify(token)
    # without --iss the issuer is not checked; no trailing newline is fine
    p = gateway.cli("jwt", "verify", "--aud", "demo", input=token)
    assert p.returncode == 0, p.stderr
    # --aud is required
    p = gateway.cli("jwt", "verify", input=token)
    assert p.returncode == 2 and "--aud" in p.stderr, p.stderr


def test_cli_verify_refuses(gateway, backend):
    token, _ = proxied(gateway, gateway.logged_in())
    hdr, claims, sig = parts(token)
    be = Backend(gateway)
    entry = [k for k in be.jwks["keys"] if k["kid"] == hdr["kid"]][0]
    pem = jwt.PyJWK(entry).key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    ok = ["--aud", "demo", "--iss", gateway.origin]

    refused(cli_verify(gateway, token, "--aud", "admin-tools"),
            "wrong audience")
    refused(cli_verify(gateway, token, "--aud", "demo", "--iss",
                       gateway.origin + "/"), "wrong issuer")

    # the signature altered (a byte in the middle: the last character of
    # base64url carries padding bits)
    raw = bytearray(b64url_decode(sig))
    raw[10] ^= 0x01
    h, p, _ = token.split(".")
    bad_sig = "%s.%s.%s" % (h, p, b64url(bytes(raw)))
    refused(cli_verify(gateway, bad_sig, *ok), "bad signature")
    with pytest.raises(jwt.InvalidSignatureError):
        be.verify(bad_sig)

    # the claims altered, the signature kept
    more = dict(claims, roles=["member", "admin", "gatehouse-admin"])
    bad_claims = "%s.%s.%s" % (h, b64url(json.dumps(
        more, separators=(",", ":")).encode()), sig)
    refused(cli_verify(gateway, bad_claims, *ok), "bad signature")
    with pytest.raises(jwt.InvalidSignatureError):
        be.verify(bad_claims)

    # HS256 keyed with our public key (PEM, as libjwt would be handed it)
    for key in (pem, pem.rstrip(b"\n")):
        hs = forge({"alg": "HS256", "typ": "JWT", "kid": hdr["kid"]}, claims,
                   lambda m: hmac.new(key, m, hashlib.sha256).digest())
        refused(cli_verify(gateway, hs, *ok), "algorithm is not ES256")
        with pytest.raises(jwt.InvalidAlgorithmError):
            be.verify(hs)

    # alg none, with and without a signature part
    for alg in ("none", "None", "NONE"):
        none = forge({"alg": alg, "typ": "JWT", "kid": hdr["kid"]}, claims)
        refused(cli_verify(gateway, none, *ok), "algorithm is not ES256")
        with pytest.raises(jwt.InvalidAlgorithmError):
            be.verify(none)
    # ES256 claimed, nothing to check
    empty = forge(hdr, claims)
    refused(cli_verify(gateway, empty, *ok), "bad signature")

    # signed by a key of our own: under the gateway's kid, or under its own
    mine = ec.generate_private_key(ec.SECP256R1())
    for kid, why in ((hdr["kid"], "bad signature"),
                     (b64url(os.urandom(32)), "unknown key id")):
        t = jwt.encode(claims, mine, algorithm="ES256", headers={"kid": kid})
        refused(cli_verify(gateway, t, *ok), why)
    # ... even with the key embedded in the header (RFC 7515 "jwk")
    pub = mine.public_key().public_numbers()
    t = jwt.encode(claims, mine, algorithm="ES256", headers={
        "kid": hdr["kid"], "jwk": {"kty": "EC", "crv": "P-256",
                                   "x": b64url(pub.x.to_bytes(32, "big")),
                                   "y": b64url(pub.y.to_bytes(32, "big"))}})
    refused(cli_verify(gateway, t, *ok), "bad signature")
    with pytest.raises(jwt.InvalidSignatureError):
        be.verify(t)

    for junk in ("", "a.b", "a.b.c.d", token + "!", " " + token):
        refused(cli_verify(gateway, junk, *ok), "malformed token")


# ---- key rotation ----------------------------------------------------------

def test_rotation(make_gateway):
    gw = make_gateway(workers=1)
    s1 = gw.logged_in()
    be = Backend(gw)
    t1, _ = proxied(gw, s1)
    k1 = kid_of(t1)
    assert kids(be.jwks) == [k1]
    assert states(gw) == {k1: "signing"}
    be.verify(t1)

    # --grace 0s: the new key signs at once (at worst one second after the
    # first key, which init made moments ago)
    k2 = rotate(gw, "--grace", "0s")
    assert k2 != k1
    assert wait_state(gw, k2, "signing") == {k1: "published", k2: "signing"}
    jwks = fetch_jwks(gw)
    assert sorted(kids(jwks)) == sorted([k1, k2])
    assert all(k["kid"] == thumbprint(k) for k in jwks["keys"])
    be.refresh()
    # the gateway dropped its cached tokens: the same session and app gets
    # a new one, signed by the new key
    t2, _ = proxied(gw, s1)
    assert t2 != t1 and kid_of(t2) == k2
    assert be.verify(t2)["sub"] == be.verify(t1)["sub"]
    # a token signed by the old key before the rotation still verifies
    be.verify(t1)
    assert cli_verify(gw, t1, "--aud", "demo", "--iss", gw.origin) \
        .returncode == 0
    # new sessions too
    s2 = gw.logged_in()
    assert kid_of(proxied(gw, s2)[0]) == k2
    # the old key retires a token lifetime and a minute after the new one
    # took over; the new one does not retire
    rows = {r[0]: r for r in keys_list(gw)}
    assert rows[k2][4] == "-"
    assert utc(rows[k1][4]) == utc(rows[k2][3]) + LIFETIME + 60, rows

    # default grace (1h): published now, signing only later
    k1_retires = rows[k1][4]
    k3 = rotate(gw)
    assert states(gw) == {k1: "published", k2: "signing", k3: "next"}
    rows = {r[0]: r for r in keys_list(gw)}
    assert utc(rows[k3][3]) >= int(time.time()) + 3600 - 5, rows[k3]
    jwks = fetch_jwks(gw)
    assert sorted(kids(jwks)) == sorted([k1, k2, k3])
    be.refresh()
    for s in (s1, s2, gw.logged_in()):
        t, _ = proxied(gw, s)
        assert kid_of(t) == k2, "signed with the key of the grace period"
        be.verify(t)
    be.verify(t1)
    be.verify(t2)
    # k1's retirement is not pushed back by the later rotation
    assert rows[k1][4] == k1_retires, rows
    assert not retire_schedule_problems(keys_list(gw))


def test_emergency_rotation_after_a_scheduled_one_signs_now(make_gateway):
    """A `keys rotate --grace 0s` (a leaked key) while a scheduled rotation
    is pending signs with the new key at once, not an hour later; and when
    the scheduled key takes over in its turn, the emergency key leaves the
    JWKS a token lifetime later, like every superseded key."""
    gw = make_gateway(workers=1)
    k1 = states(gw).popitem()[0]
    k2 = rotate(gw)                         # scheduled, 1 h
    k3 = rotate(gw, "--grace", "0s")        # emergency
    st = wait_state(gw, k3, "signing", timeout=3)
    token, _ = proxied(gw, gw.logged_in())
    assert st.get(k3) == "signing" and kid_of(token) == k3, (
        "keys rotate --grace 0s after a pending rotation: states %r, the "
        "gateway signs with %s (k1=%s k2=%s k3=%s)"
        % (st, kid_of(token), k1, k2, k3))
    Backend(gw).verify(token)
    # k2 still takes over at its own start; then k3, like k1 now, must
    # leave the JWKS once its last token has expired
    assert not retire_schedule_problems(keys_list(gw))


def test_many_keys_stay_published_and_the_newest_signs(make_gateway):
    """Every key that is not retired is in the JWKS, and the newest key
    whose start has passed signs, however many keys the store holds
    (retired keys are never deleted, so they pile up over the years)."""
    gw = make_gateway(workers=1)
    for _ in range(17):
        rotate(gw, "--grace", "0s")
    rows = keys_list(gw)
    live = sorted(r[0] for r in rows if r[1] != "retired")
    assert len(rows) == 18 and len(live) == 18
    assert not retire_schedule_problems(rows)
    newest = max(rows, key=lambda r: utc(r[3]))[0]
    jwks = fetch_jwks(gw)
    published = sorted(kids(jwks))
    missing = sorted(set(live) - set(published))
    # the newest key starts signing at most ~17 s from now
    st = wait_state(gw, newest, "signing", timeout=25)
    assert st[newest] == "signing"
    token, _ = proxied(gw, gw.logged_in())
    assert not missing and kid_of(token) == newest, (
        "%d of %d live keys published (missing %r); token signed by %s, "
        "newest is %s" % (len(published), len(live), missing, kid_of(token),
                          newest))


def test_cli_handles_many_keys(make_gateway):
    """`keys list`, `keys rotate` and `jwt verify` keep working when the
    store holds more keys than fit a fixed array (here 70)."""
    gw = make_gateway(workers=1)
    token, _ = proxied(gw, gw.logged_in())
    failures = []
    for i in range(69):
        p = gw.cli("keys", "rotate", "--grace", "0s")
        if p.returncode != 0:
            failures.append(("with %d keys stored" % (i + 1),
                             p.stderr.strip()))
            break
    p = gw.cli("keys", "list")
    v = cli_verify(gw, token, "--aud", "demo")
    assert not failures and p.returncode == 0 and v.returncode == 0, (
        "rotate: %r; keys list -> %d %s; jwt verify -> %d %s"
        % (failures, p.returncode, p.stderr.strip(), v.returncode,
           v.stderr.strip()))
    assert len(p.stdout.splitlines()) == 1 + 70


# ---- lifetime and re-signing -----------------------------------------------

def test_token_is_resigned_a_minute_before_it_expires(make_gateway):
    """gatehouse_jwt_lifetime 2m (the minimum): the token is reused for a
    minute, then replaced. Takes about a minute."""
    gw = make_gateway(workers=1)
    with open(gw.conf) as f:
        text = f.read()
    assert text.count("gatehouse_jwt_lifetime      5m;") == 1
    with open(gw.conf, "w") as f:
        f.write(text.replace("gatehouse_jwt_lifetime      5m;",
                             "gatehouse_jwt_lifetime      2m;"))
    gw.restart()
    be = Backend(gw)
    s = gw.logged_in()
    t1, _ = proxied(gw, s)
    c1 = be.verify(t1)
    assert c1["exp"] - c1["iat"] == 120, c1
    # reused while more than a minute is left
    while time.time() < c1["iat"] + 55:
        time.sleep(min(5, max(0.1, c1["iat"] + 55 - time.time())))
        assert proxied(gw, s)[0] == t1
    # then a fresh one
    time.sleep(max(0, c1["iat"] + 61 - time.time()))
    t2, _ = proxied(gw, s)
    c2 = be.verify(t2)
    assert t2 != t1 and c2["iat"] >= c1["iat"] + 60, (c1, c2)
    assert c2["exp"] - c2["iat"] == 120 and c2["jti"] != c1["jti"]


def test_lifetime_below_two_minutes_is_refused(make_gateway, tmp_path):
    gw = make_gateway(workers=1)
    with open(gw.conf) as f:
        text = f.read()
    conf = str(tmp_path / "short.conf")
    assert text.count(gw.errlog) == 1
    with open(conf, "w") as f:      # its [emerg] goes to a log of its own
        f.write(text.replace("gatehouse_jwt_lifetime      5m;",
                             "gatehouse_jwt_lifetime      90s;")
                .replace(gw.errlog, str(tmp_path / "t.log")))
    env = dict(os.environ, LD_PRELOAD=LIBASAN,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
    p = subprocess.run([NGINX, "-t", "-p", os.path.join(gw.data, "nginx"),
                        "-c", conf, "-e", str(tmp_path / "t.log")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode != 0, p.stderr
    assert "gatehouse_jwt_lifetime must be at least 2m" in p.stderr, p.stderr


# ---- metrics access --------------------------------------------------------

def test_metrics_refused_outside_the_allowed_networks(make_gateway):
    gw = make_gateway(workers=1, http_directives=[
        "gatehouse_metrics_allow 10.0.0.0/8;",
        "gatehouse_trusted_proxies 127.0.0.1;"])
    r = gw.get(METRICS)                 # 127.0.0.1 is not in 10/8
    assert r.status_code == 403, r.text
    assert "gatehouse_jwt" not in r.text
    assert r.json()["error"] == "forbidden"
    r = gw.get(METRICS, headers={"X-Forwarded-For": "10.1.2.3"})
    assert r.status_code == 200 and "gatehouse_jwt_signatures_total" in r.text
    assert gw.get(METRICS, headers={"X-Forwarded-For": "192.0.2.7"}) \
        .status_code == 403
    # the key set stays public
    assert gw.get(JWKS).status_code == 200


def test_metrics_default_is_loopback_only_even_behind_a_proxy(make_gateway):
    gw = make_gateway(workers=1, http_directives=[
        "gatehouse_trusted_proxies 127.0.0.1;"])
    assert gw.get(METRICS).status_code == 200
    # a client forwarded by a trusted local proxy is not loopback
    r = gw.get(METRICS, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403, r.text


# ---- the documented Python verifier, for real ------------------------------

def doc_python():
    """The ```python blocks of docs/backend-verification.md, in order."""
    with open(DOC) as f:
        text = f.read()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)
    assert len(blocks) >= 2, "the doc lost its Python snippets"
    return blocks


@pytest.fixture
def no_proxy_env(monkeypatch):
    for k in list(os.environ):
        if k.lower().endswith("_proxy"):
            monkeypatch.delenv(k)


def test_doc_python_snippet_verifies(gateway, backend, no_proxy_env):
    ns = {}
    for block in doc_python():
        exec(compile(block, DOC, "exec"), ns)
    Verifier = ns["GatehouseVerifier"]
    v = Verifier(gateway.origin, "demo", cafile=gateway.cert)
    s = gateway.logged_in()
    token, rec = proxied(gateway, s)
    claims = v.verify(token)
    assert claims["sub"] == one_header(rec, "X-Gatehouse-User")
    assert claims == Backend(gateway).verify(token)

    hdr, body, _ = parts(token)
    with pytest.raises(jwt.InvalidTokenError):
        Verifier(gateway.origin, "admin-tools", cafile=gateway.cert) \
            .verify(token)
    with pytest.raises(jwt.InvalidTokenError):
        Verifier("https://127.0.0.1:%d/" % gateway.port, "demo",
                 cafile=gateway.cert).verify(token)
    pem = Backend(gateway).key(hdr["kid"]).public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (
            forge(dict(hdr, alg="HS256"), body,
                  lambda m: hmac.new(pem, m, hashlib.sha256).digest()),
            forge(dict(hdr, alg="none"), body),
            token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8),
            "", None, "garbage"):
        with pytest.raises(jwt.InvalidTokenError):
            v.verify(bad)

    # the WSGI middleware of the doc
    seen = {}

    def app(environ, start_response):
        seen.update(environ["gatehouse.claims"])
        start_response("200 OK", [])
        return [b"ok"]

    mw = ns["require_assertion"](app, v)
    status = []
    assert mw({"HTTP_X_GATEHOUSE_ASSERTION": token},
              lambda st, h: status.append(st)) == [b"ok"]
    assert status == ["200 OK"] and seen["sub"] == claims["sub"]
    # two headers, joined by the server: refused
    assert mw({"HTTP_X_GATEHOUSE_ASSERTION": token + "," + token},
              lambda st, h: status.append(st)) != [b"ok"]
    assert mw({}, lambda st, h: status.append(st)) != [b"ok"]
    assert status[1:] == ["401 Unauthorized"] * 2


def test_doc_python_snippet_follows_a_rotation(make_gateway, no_proxy_env):
    ns = {}
    exec(compile(doc_python()[0], DOC, "exec"), ns)
    gw = make_gateway(workers=1)
    # min_refetch=0: an unknown kid refetches at once (the default 30 s
    # would make this test wait)
    v = ns["GatehouseVerifier"](gw.origin, "demo", cafile=gw.cert,
                                min_refetch=0)
    s = gw.logged_in()
    t1, _ = proxied(gw, s)
    v.verify(t1)
    k2 = rotate(gw, "--grace", "0s")
    wait_state(gw, k2, "signing")
    t2, _ = proxied(gw, s)
    assert kid_of(t2) == k2
    assert v.verify(t2)["sub"] == v.verify(t1)["sub"]
    # an unknown kid, refetched once, still refused
    with pytest.raises(jwt.InvalidTokenError):
        v.verify(jwt.encode({"sub": "x"}, ec.generate_private_key(
            ec.SECP256R1()), algorithm="ES256",
            headers={"kid": b64url(os.urandom(32))}))
