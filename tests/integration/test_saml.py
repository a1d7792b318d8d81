"""SAML 2.0 sign-in per tenant (docs/saml.md).

Part one: a real IdP — Debian's SimpleSAMLphp under `php -S` — and a full
SP-initiated login driven by requests (our signed AuthnRequest, the IdP's
login form, its signed Response posted to our ACS).

Part two: every check of a Response, each with a response that is valid
and validly signed except for the one thing under test, made here and
signed with xmlsec1 under a test IdP key ("forge" tenants).
"""
import base64
import concurrent.futures
import os
import re
import secrets
import subprocess
import sys
import zlib
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit, urlencode

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "idp"))
from conftest import (API, BROWSER, SESSION_COOKIE, WHOAMI,  # noqa: E402
                      free_port, input_value, run_cli)
from ssp import SimpleSAMLphp, make_key  # noqa: E402

SAML_COOKIE = "__Host-gatehouse-saml"
NS_P = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_A = "urn:oasis:names:tc:SAML:2.0:assertion"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
FORGE_IDP = "https://idp.forge.test/metadata"


def cli(gw, *args):
    p = run_cli(args, data=gw.data)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout


def sp_urls(gw, tenant):
    base = gw.origin + "/.gatehouse/saml/" + tenant
    return base + "/metadata", base + "/acs"


# ---- fixtures -------------------------------------------------------------

@pytest.fixture(scope="module")
def ssp(gateway, tmp_path_factory):
    """Tenant acme signs in through a running SimpleSAMLphp."""
    cli(gateway, "tenant", "add", "acme")
    cli(gateway, "user", "add", "--tenant", "acme", "--email",
        "alice@acme.test", "--name", "Alice")
    idp = SimpleSAMLphp(tmp_path_factory.mktemp("ssp"), free_port(),
                        {"alice": ("alicepass", "alice@acme.test"),
                         "mallory": ("mallorypass", "mallory@acme.test")})
    idp.start()
    try:
        md = os.path.join(gateway.base, "ssp-idp.xml")
        with open(md, "w") as f:
            f.write(idp.metadata())
        cli(gateway, "idp", "add", "--tenant", "acme", "--metadata", md)
        cli(gateway, "tenant", "set", "--tenant", "acme", "--signin", "saml")
        r = gateway.get("/.gatehouse/saml/acme/metadata")
        assert r.status_code == 200, r.text
        idp.add_sp(r.text)
        yield idp
    finally:
        idp.stop()


def ssp_login(gw, idp, user, password, rd="/app/page"):
    """The browser's whole round trip; returns (session, ACS response)."""
    s = gw.session()
    r = gw.get("/.gatehouse/saml/acme/login", s, params={"rd": rd})
    assert r.status_code == 302, r.text
    loc = r.headers["Location"]
    assert loc.startswith(idp.url + "/saml2/idp/SSOService.php?"), loc
    # the IdP: its login form, then the auto-submitting form to our ACS
    r = s.get(loc, timeout=20)
    assert r.status_code == 200, idp.log()
    form_url = r.url
    state = input_value(r.text, "AuthState")
    assert state, r.text[:2000]
    r = s.post(form_url, data={"username": user, "password": password,
                               "AuthState": state}, timeout=20)
    assert r.status_code == 200, idp.log()
    action = re.search(r'<form[^>]*action="([^"]+)"', r.text)
    resp = input_value(r.text, "SAMLResponse")
    assert action and resp, r.text[:2000]
    assert action.group(1).replace("&#x3a;", ":") .startswith(gw.origin) or \
        "gatehouse" in action.group(1)
    fields = {"SAMLResponse": resp}
    relay = input_value(r.text, "RelayState")
    if relay is not None:
        fields["RelayState"] = relay
    r = gw.post("/.gatehouse/saml/acme/acs", s, data=fields)
    return s, r


# ---- part one: the real IdP ---------------------------------------------------

def test_sp_metadata_names_entity_acs_slo_and_signing_key(gateway, ssp):
    entity, acs = sp_urls(gateway, "acme")
    r = gateway.get("/.gatehouse/saml/acme/metadata")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert 'entityID="%s"' % entity in r.text
    assert 'AuthnRequestsSigned="true"' in r.text
    assert re.search(r'AssertionConsumerService[^>]*HTTP-POST"[^>]*Location="%s"'
                     % re.escape(acs), r.text)
    assert "SingleLogoutService" in r.text
    assert "<ds:X509Certificate>" in r.text


def test_metadata_of_a_tenant_without_saml_is_404(gateway, ssp):
    r = gateway.get("/.gatehouse/saml/demo/metadata", headers=API)
    assert r.status_code == 404
    assert r.json()["error"] == "saml_not_configured"


def test_sp_private_key_is_sealed_at_rest(gateway, ssp):
    mdb = os.path.join(gateway.data, "gatehouse.mdb", "data.mdb")
    with open(mdb, "rb") as f:
        raw = f.read()
    assert b"BEGIN CERTIFICATE" in raw          # the public half is there
    assert b"PRIVATE KEY" not in raw            # the private one only sealed


def test_authn_request_is_signed_with_rsa_sha256(gateway, ssp):
    r = gateway.get("/.gatehouse/saml/acme/login", params={"rd": "/x"})
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["SigAlg"] == [RSA_SHA256]
    assert q["Signature"][0]
    xml = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()
    entity, acs = sp_urls(gateway, "acme")
    assert "AuthnRequest" in xml and entity in xml
    assert "RelayState" not in q or q["RelayState"][0] != "/x"
    # the login cookie that binds the response to this browser
    assert SAML_COOKIE in r.headers.get("Set-Cookie", "")
    assert "SameSite=None" in r.headers["Set-Cookie"]


def test_full_sp_initiated_login_through_simplesamlphp(gateway, ssp):
    s, r = ssp_login(gateway, ssp, "alice", "alicepass", rd="/app/page")
    assert r.status_code == 303, (r.status_code, r.text, gateway.logs())
    assert r.headers["Location"] == "/app/page"
    assert s.cookies.get(SESSION_COOKIE)
    who = gateway.get(WHOAMI, s, headers=API)
    assert who.status_code == 200, who.text
    body = who.json()
    assert body["email"] == "alice@acme.test"
    assert body["tenant"] == "acme"
    assert "saml" in body.get("amr", body.get("auth", "saml"))


def test_idp_user_without_account_gets_no_session(gateway, ssp):
    """No provisioning: the IdP vouches for mallory, who has no account."""
    s, r = ssp_login(gateway, ssp, "mallory", "mallorypass")
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "unknown_user"
    assert not s.cookies.get(SESSION_COOKIE)


def test_password_login_refused_for_a_saml_tenant(gateway, ssp):
    p = run_cli(["user", "passwd", "--email", "alice@acme.test",
                 "--password-stdin"], data=gateway.data,
                input="a perfectly long local password 77\n")
    assert p.returncode == 0, p.stderr
    s, r = gateway.login(email="alice@acme.test",
                         password="a perfectly long local password 77")
    assert r.status_code != 303
    assert not s.cookies.get(SESSION_COOKIE)


def test_saml_tenant_password_refusal_looks_like_a_wrong_password(gateway, ssp):
    """The refusal of a correct local password gives the same answer as a
    wrong one: no oracle in status or text."""
    p = run_cli(["user", "passwd", "--email", "alice@acme.test",
                 "--password-stdin"], data=gateway.data,
                input="another long local password 78\n")
    assert p.returncode == 0, p.stderr
    _, right = gateway.login(email="alice@acme.test",
                             password="another long local password 78")
    _, wrong = gateway.login(email="alice@acme.test",
                             password="not the password at all 79")
    assert right.status_code == wrong.status_code == 401, \
        (right.status_code, wrong.status_code)
    assert "Incorrect email or password." in right.text
    assert "Incorrect email or password." in wrong.text
    assert SESSION_COOKIE not in right.headers.get("Set-Cookie", "")


def test_saml_tenant_correct_password_counts_as_a_failure(gateway, ssp):
    """The throttle is no oracle either: a correct local password of a SAML
    tenant's user is a failed attempt like any other, so repeating it runs
    into the back-off (were it checked, each success would reset the count
    and it never would)."""
    pw = "carol's own long local password 80"
    p = run_cli(["user", "add", "--tenant", "acme", "--email",
                 "carol@acme.test", "--password-stdin"], data=gateway.data,
                input=pw + "\n")
    assert p.returncode == 0, p.stderr
    statuses = []
    for _ in range(8):
        s, r = gateway.login(email="carol@acme.test", password=pw)
        statuses.append(r.status_code)
        assert not s.cookies.get(SESSION_COOKIE)
        if r.status_code == 429:
            break
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses


# ---- part two: crafted responses --------------------------------------------

def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def sig_template(ref_id, cert, sigalg=RSA_SHA256, digest=SHA256):
    return ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
            '<ds:SignedInfo><ds:CanonicalizationMethod Algorithm='
            '"http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '<ds:SignatureMethod Algorithm="%s"/><ds:Reference URI="#%s">'
            '<ds:Transforms><ds:Transform Algorithm='
            '"http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
            '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            '</ds:Transforms><ds:DigestMethod Algorithm="%s"/><ds:DigestValue/>'
            '</ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo>'
            '<ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate>'
            '</ds:X509Data></ds:KeyInfo></ds:Signature>'
            % (sigalg, ref_id, digest, cert))


def xmlsec_sign(xml, key, workdir, node):
    src = os.path.join(workdir, "in-%s.xml" % secrets.token_hex(4))
    dst = src + ".signed"
    with open(src, "w") as f:
        f.write(xml)
    p = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", key,
                        "--id-attr:ID", node, "--output", dst, src],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with open(dst) as f:
        return f.read()


class Forge:
    """Makes responses from the test IdP FORGE_IDP for a gateway tenant."""

    def __init__(self, gw, workdir):
        self.gw = gw
        self.dir = str(workdir)
        self.key, _, self.cert = make_key(self.dir, "forge", "forge-idp")
        self.other_key, _, self.other_cert = make_key(self.dir, "other",
                                                      "not-the-idp")
        self.metadata = os.path.join(self.dir, "forge-idp.xml")
        with open(self.metadata, "w") as f:
            f.write('<?xml version="1.0"?>\n<md:EntityDescriptor xmlns:md='
                    '"urn:oasis:names:tc:SAML:2.0:metadata" entityID="%s">'
                    '<md:IDPSSODescriptor protocolSupportEnumeration='
                    '"urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor '
                    'use="signing"><ds:KeyInfo xmlns:ds='
                    '"http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
                    '<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data>'
                    '</ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService '
                    'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
                    ' Location="https://idp.forge.test/slo"/>'
                    '<md:SingleSignOnService '
                    'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
                    ' Location="https://idp.forge.test/sso"/>'
                    '</md:IDPSSODescriptor></md:EntityDescriptor>\n'
                    % (FORGE_IDP, self.cert))

    def register(self, tenant, *flags):
        cli(self.gw, "idp", "add", "--tenant", tenant, "--metadata",
            self.metadata, *flags)

    def start(self, tenant, s=None, rd="/landing"):
        """SP-initiated start: (session with the SAML cookie, request id)."""
        s = s or self.gw.session()
        r = self.gw.get("/.gatehouse/saml/%s/login" % tenant, s,
                        params={"rd": rd})
        assert r.status_code == 302, r.text
        q = parse_qs(urlsplit(r.headers["Location"]).query)
        xml = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15)
        rid = re.search(rb'\bID="([^"]+)"', xml).group(1).decode()
        return s, rid

    def response(self, tenant, rid, email="bob@forge.test", **o):
        """A signed Response; o overrides one detail at a time."""
        now = datetime.now(timezone.utc)
        entity, acs = sp_urls(self.gw, tenant)
        aid = o.get("aid", "_a" + secrets.token_hex(16))
        rsp = "_r" + secrets.token_hex(16)
        irt = '' if rid is None else ' InResponseTo="%s"' % rid
        nb = o.get("not_before", iso(now - timedelta(seconds=30)))
        na = o.get("not_on_or_after", iso(now + timedelta(minutes=5)))
        scd_na = o.get("scd_not_on_or_after", iso(now + timedelta(minutes=5)))
        sigalg = o.get("sigalg", RSA_SHA256)
        digest = o.get("digest", SHA256)
        assertion = (
            '<saml:Assertion xmlns:saml="%(A)s" ID="%(aid)s" Version="2.0" '
            'IssueInstant="%(now)s"><saml:Issuer>%(idp)s</saml:Issuer>'
            '%(sig)s<saml:Subject><saml:NameID Format='
            '"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
            '%(email)s</saml:NameID><saml:SubjectConfirmation Method='
            '"urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            '<saml:SubjectConfirmationData NotOnOrAfter="%(scdna)s" '
            'Recipient="%(recipient)s"%(irt)s/></saml:SubjectConfirmation>'
            '</saml:Subject><saml:Conditions NotBefore="%(nb)s" '
            'NotOnOrAfter="%(na)s"><saml:AudienceRestriction><saml:Audience>'
            '%(aud)s</saml:Audience></saml:AudienceRestriction>'
            '</saml:Conditions><saml:AuthnStatement AuthnInstant="%(now)s" '
            'SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>'
            'urn:oasis:names:tc:SAML:2.0:ac:classes:Password'
            '</saml:AuthnContextClassRef></saml:AuthnContext>'
            '</saml:AuthnStatement></saml:Assertion>') % {
            "A": NS_A, "aid": aid, "now": iso(now), "idp": FORGE_IDP,
            "sig": "" if o.get("unsigned_assertion") else
                   sig_template(aid, o.get("keyinfo_cert", self.cert),
                                sigalg, digest),
            "email": email, "scdna": scd_na,
            "recipient": o.get("recipient", acs), "irt": irt, "nb": nb,
            "na": na, "aud": o.get("audience", entity)}
        doc = (
            '%(doctype)s<samlp:Response xmlns:samlp="%(P)s" xmlns:saml="%(A)s" '
            'ID="%(rsp)s" Version="2.0" IssueInstant="%(now)s" '
            'Destination="%(dest)s"%(irt)s><saml:Issuer>%(idp)s</saml:Issuer>'
            '<samlp:Status><samlp:StatusCode Value='
            '"urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            '%(assertion)s</samlp:Response>') % {
            "doctype": o.get("doctype", ""), "P": NS_P, "A": NS_A,
            "rsp": rsp, "now": iso(now), "dest": o.get("destination", acs),
            "irt": irt, "idp": FORGE_IDP, "assertion": assertion}
        if not o.get("unsigned_assertion"):
            doc = xmlsec_sign(doc, o.get("assertion_key", self.key), self.dir,
                              NS_A + ":Assertion")
        if o.get("sign_response_with"):
            doc = doc.replace("</saml:Issuer><samlp:Status>",
                              "</saml:Issuer>%s<samlp:Status>"
                              % sig_template(rsp, self.cert), 1)
            doc = xmlsec_sign(doc, o["sign_response_with"], self.dir,
                              NS_P + ":Response")
        if o.get("tamper"):
            doc = o["tamper"](doc)
        return base64.b64encode(doc.encode()).decode()

    def post(self, tenant, s, b64, relay=None):
        data = {"SAMLResponse": b64}
        if relay is not None:
            data["RelayState"] = relay
        return self.gw.post("/.gatehouse/saml/%s/acs" % tenant, s, data=data,
                            headers=API)


@pytest.fixture(scope="module")
def forge(gateway, tmp_path_factory):
    f = Forge(gateway, tmp_path_factory.mktemp("forge"))
    for t in ("forge", "forge2"):
        cli(gateway, "tenant", "add", t)
        f.register(t)
        cli(gateway, "tenant", "set", "--tenant", t, "--signin", "saml")
    cli(gateway, "user", "add", "--tenant", "forge", "--email",
        "bob@forge.test")
    cli(gateway, "user", "add", "--tenant", "forge2", "--email",
        "carol@forge2.test")
    return f


def refused(r, reason):
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"] == reason, r.text
    assert SESSION_COOKIE not in r.headers.get("Set-Cookie", "")


def test_crafted_valid_response_opens_a_session(gateway, forge):
    """The control: the same recipe unmodified is accepted."""
    s, rid = forge.start("forge", rd="/wiki/home")
    r = forge.post("forge", s, forge.response("forge", rid))
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/wiki/home"
    who = gateway.get(WHOAMI, s, headers=API).json()
    assert who["email"] == "bob@forge.test" and who["tenant"] == "forge"


def test_saml_login_replaces_the_browsers_previous_session(gateway, forge):
    s, rid = forge.start("forge")
    assert forge.post("forge", s, forge.response("forge", rid)).status_code == 303
    old = s.cookies.get(SESSION_COOKIE)
    s, rid = forge.start("forge", s=s)
    assert forge.post("forge", s, forge.response("forge", rid)).status_code == 303
    assert s.cookies.get(SESSION_COOKIE) != old
    fresh = gateway.session()
    fresh.cookies.set(SESSION_COOKIE, old)
    assert gateway.get(WHOAMI, fresh, headers=API).status_code == 401
    assert gateway.get(WHOAMI, s, headers=API).status_code == 200


def test_unsigned_response_and_assertion_refused(gateway, forge):
    s, rid = forge.start("forge")
    r = forge.post("forge", s, forge.response("forge", rid,
                                              unsigned_assertion=True))
    assert r.status_code == 403
    assert r.json()["error"] in ("unsigned", "signature")


def test_assertion_signed_by_another_key_refused(gateway, forge):
    s, rid = forge.start("forge")
    r = forge.post("forge", s, forge.response(
        "forge", rid, assertion_key=forge.other_key))
    refused(r, "signature")
    # also when the message carries that key's own certificate: only the
    # registered metadata's keys count
    s, rid = forge.start("forge")
    r = forge.post("forge", s, forge.response(
        "forge", rid, assertion_key=forge.other_key,
        keyinfo_cert=forge.other_cert))
    refused(r, "signature")


def test_tampered_signed_assertion_refused(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, tamper=lambda d: d.replace(
        "bob@forge.test", "admin@forge.test"))
    refused(forge.post("forge", s, b64), "signature")


def test_invalid_response_signature_fails_even_with_valid_assertion(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, sign_response_with=forge.other_key)
    refused(forge.post("forge", s, b64), "signature")


def test_invalid_assertion_signature_fails_under_valid_response_signature(gateway, forge):
    """lasso skips an assertion's signature when the response's verified:
    we do not."""
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, assertion_key=forge.other_key,
                         sign_response_with=forge.key)
    refused(forge.post("forge", s, b64), "signature")


def test_valid_response_signature_covers_unsigned_assertion(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, unsigned_assertion=True,
                         sign_response_with=forge.key)
    r = forge.post("forge", s, b64)
    assert r.status_code == 303, r.text


def test_sha1_signature_refused_unless_allowed(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, sigalg=RSA_SHA1, digest=SHA1)
    refused(forge.post("forge", s, b64), "signature_algorithm")
    forge.register("forge", "--allow-sha1")
    try:
        s, rid = forge.start("forge")
        b64 = forge.response("forge", rid, sigalg=RSA_SHA1, digest=SHA1)
        assert forge.post("forge", s, b64).status_code == 303
    finally:
        forge.register("forge")


def test_expired_but_genuinely_signed_assertion_refused(gateway, forge):
    now = datetime.now(timezone.utc)
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         not_before=iso(now - timedelta(minutes=10)),
                         not_on_or_after=iso(now - timedelta(seconds=90)))
    refused(forge.post("forge", s, b64), "expired")


def test_clock_skew_of_60_seconds_is_tolerated(gateway, forge):
    now = datetime.now(timezone.utc)
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         not_on_or_after=iso(now - timedelta(seconds=20)))
    assert forge.post("forge", s, b64).status_code == 303


def test_not_yet_valid_assertion_refused(gateway, forge):
    now = datetime.now(timezone.utc)
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         not_before=iso(now + timedelta(minutes=5)),
                         not_on_or_after=iso(now + timedelta(minutes=10)))
    refused(forge.post("forge", s, b64), "not_yet_valid")


def test_wrong_audience_refused(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         audience="https://other-sp.example/metadata")
    refused(forge.post("forge", s, b64), "audience")


def test_wrong_recipient_refused(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         recipient=sp_urls(gateway, "forge2")[1])
    refused(forge.post("forge", s, b64), "recipient")


def test_expired_subject_confirmation_refused(gateway, forge):
    now = datetime.now(timezone.utc)
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, scd_not_on_or_after=iso(
        now - timedelta(seconds=90)))
    refused(forge.post("forge", s, b64), "expired")


def test_wrong_destination_refused(gateway, forge):
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid,
                         destination="https://evil.example/acs")
    refused(forge.post("forge", s, b64), "destination")


def test_unknown_in_response_to_refused(gateway, forge):
    s, _ = forge.start("forge")
    b64 = forge.response("forge", "_" + secrets.token_hex(16))
    refused(forge.post("forge", s, b64), "in_response_to")


def test_request_id_is_consumed_once(gateway, forge):
    s, rid = forge.start("forge")
    assert forge.post("forge", s, forge.response("forge", rid)).status_code == 303
    refused(forge.post("forge", s, forge.response("forge", rid)),
            "in_response_to")


def test_unsolicited_response_refused_unless_idp_initiated_allowed(gateway, forge):
    s = gateway.session()
    refused(forge.post("forge", s, forge.response("forge", None)),
            "unsolicited")
    forge.register("forge", "--allow-idp-initiated")
    try:
        r = forge.post("forge", s, forge.response("forge", None))
        assert r.status_code == 303, r.text
        assert r.headers["Location"] == "/"
    finally:
        forge.register("forge")


def test_same_assertion_never_opens_two_sessions(gateway, forge):
    forge.register("forge", "--allow-idp-initiated")
    try:
        b64 = forge.response("forge", None)
        assert forge.post("forge", gateway.session(), b64).status_code == 303
        refused(forge.post("forge", gateway.session(), b64), "replay")
        # the same assertion id inside another, solicited response
        aid = "_a" + secrets.token_hex(16)
        s, rid = forge.start("forge")
        assert forge.post("forge", s, forge.response(
            "forge", rid, aid=aid)).status_code == 303
        s, rid = forge.start("forge")
        refused(forge.post("forge", s, forge.response("forge", rid, aid=aid)),
                "replay")
    finally:
        forge.register("forge")


def test_same_assertion_posted_twice_at_once_opens_one_session(gateway, forge):
    forge.register("forge", "--allow-idp-initiated")
    try:
        for _ in range(3):
            b64 = forge.response("forge", None)
            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                rs = list(ex.map(lambda _: forge.post(
                    "forge", gateway.session(), b64), range(4)))
            codes = sorted(r.status_code for r in rs)
            assert codes == [303, 403, 403, 403], codes
            assert all(r.json()["error"] == "replay"
                       for r in rs if r.status_code == 403)
    finally:
        forge.register("forge")


def test_response_for_tenant_a_refused_at_tenant_b(gateway, forge):
    """forge and forge2 trust the same IdP: a response made for forge's SP
    (and its request) must not open a session at forge2's ACS."""
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, email="carol@forge2.test")
    r = forge.post("forge2", s, b64)
    assert r.status_code == 403
    assert r.json()["error"] in ("destination", "recipient", "audience",
                                 "in_response_to")


def test_relaystate_is_never_a_redirect_target(gateway, forge):
    s, rid = forge.start("forge", rd="/stored/path")
    r = forge.post("forge", s, forge.response("forge", rid),
                   relay="https://evil.example/steal")
    assert r.status_code == 303
    assert r.headers["Location"] == "/stored/path"


def test_doctype_refused_before_parsing(gateway, forge):
    s, rid = forge.start("forge")
    doctype = ('<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">'
               '<!ENTITY x "xx">]>')
    b64 = forge.response("forge", rid, doctype=doctype)
    refused(forge.post("forge", s, b64), "doctype")
    # an internal subset alone is refused as well
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid, doctype="<!DOCTYPE samlp:Response>")
    refused(forge.post("forge", s, b64), "doctype")


def test_response_from_another_browser_refused(gateway, forge):
    """Login CSRF: the response for one browser's request, posted by a
    browser without that request's cookie."""
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid)
    refused(forge.post("forge", gateway.session(), b64), "browser_mismatch")


def test_saml_endpoints_refuse_a_tenant_that_does_not_use_saml(gateway, forge):
    r = gateway.get("/.gatehouse/saml/demo/login", headers=API)
    assert r.status_code == 404
    r = gateway.post("/.gatehouse/saml/demo/acs", headers=API,
                     data={"SAMLResponse": forge.response("forge", None)})
    refused(r, "saml_not_configured")


def test_malformed_response_is_400_or_403_never_a_session(gateway, forge):
    s, _ = forge.start("forge")
    for junk in ("", "%%%not base64%%%", base64.b64encode(b"<x/>").decode(),
                 base64.b64encode(b"\x00\x01garbage").decode()):
        r = gateway.post("/.gatehouse/saml/forge/acs", s, headers=API,
                         data={"SAMLResponse": junk})
        assert r.status_code in (400, 403), (junk, r.status_code, r.text)
        assert SESSION_COOKIE not in r.headers.get("Set-Cookie", "")


def test_oversized_response_is_413_before_parsing(gateway, forge):
    """The ACS body is bounded (GH_SAML_POST_MAX) before lasso sees it: a
    genuinely signed response padded past the limit opens no session."""
    s, rid = forge.start("forge")
    b64 = forge.response("forge", rid)
    r = forge.post("forge", s, b64 + "A" * (300 * 1024))
    assert r.status_code == 413, (r.status_code, r.text)
    assert r.json()["error"] == "too_large", r.text
    assert SESSION_COOKIE not in r.headers.get("Set-Cookie", "")
    who = gateway.get(WHOAMI, s, headers=API)
    assert who.status_code == 401, who.text


def test_certificate_rollover_by_re_adding_the_idp(gateway, forge, tmp_path):
    """Metadata listing the old and the new certificate accepts both; once
    only the new one is registered, the old key is refused."""
    kd = ('<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds='
          '"http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
          '<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data>'
          '</ds:KeyInfo></md:KeyDescriptor>')
    with open(forge.metadata) as f:
        base_md = f.read()
    both = tmp_path / "both.xml"
    both.write_text(base_md.replace(kd % forge.cert,
                                    kd % forge.cert + kd % forge.other_cert))
    new_only = tmp_path / "new.xml"
    new_only.write_text(base_md.replace(kd % forge.cert, kd % forge.other_cert))
    assert (kd % forge.cert) in base_md
    try:
        cli(gateway, "idp", "add", "--tenant", "forge", "--metadata", str(both))
        for key in (forge.key, forge.other_key):
            s, rid = forge.start("forge")
            r = forge.post("forge", s, forge.response("forge", rid,
                                                      assertion_key=key))
            assert r.status_code == 303, r.text
        cli(gateway, "idp", "add", "--tenant", "forge", "--metadata",
            str(new_only))
        s, rid = forge.start("forge")
        refused(forge.post("forge", s, forge.response("forge", rid)),
                "signature")
        s, rid = forge.start("forge")
        r = forge.post("forge", s, forge.response(
            "forge", rid, assertion_key=forge.other_key))
        assert r.status_code == 303, r.text
    finally:
        forge.register("forge")


def test_idp_add_refuses_unusable_metadata(gateway, forge, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY a "b">]><x/>')
    p = run_cli(["idp", "add", "--tenant", "forge", "--metadata", str(bad)],
                data=gateway.data)
    assert p.returncode == 1 and "not usable IdP metadata" in p.stderr
    p = run_cli(["idp", "add", "--tenant", "nosuch", "--metadata",
                 forge.metadata], data=gateway.data)
    assert p.returncode == 1


# ---- single logout ------------------------------------------------------------

def csrf_for(gw, s):
    r = gw.get("/.gatehouse/login", s, headers=BROWSER)
    token = input_value(r.text, "csrf")
    assert token, (r.status_code, r.text[:300])
    return token


def test_sp_initiated_single_logout_through_simplesamlphp(gateway, ssp):
    s, r = ssp_login(gateway, ssp, "alice", "alicepass")
    assert r.status_code == 303, r.text
    cookie = s.cookies.get(SESSION_COOKIE)
    r = gateway.post("/.gatehouse/saml/acme/slo", s,
                     data={"csrf": csrf_for(gateway, s)})
    assert r.status_code == 302, r.text
    loc = r.headers["Location"]
    assert loc.startswith(ssp.url + "/saml2/idp/SingleLogoutService.php?"), loc
    q = parse_qs(urlsplit(loc).query)
    assert q["SigAlg"] == [RSA_SHA256] and q["Signature"][0]
    # the session is gone at once, whatever the IdP does
    fresh = gateway.session()
    fresh.cookies.set(SESSION_COOKIE, cookie)
    assert gateway.get(WHOAMI, fresh, headers=API).status_code == 401
    # the IdP accepts our signed request and answers at our SLO endpoint
    r = s.get(loc, allow_redirects=False, timeout=20)
    for _ in range(5):      # SimpleSAMLphp hops through its own pages
        assert r.status_code in (302, 303), (r.status_code, ssp.log())
        back = r.headers["Location"]
        if back.startswith(gateway.origin):
            break
        r = s.get(back, allow_redirects=False, timeout=20)
    assert back.startswith(gateway.origin + "/.gatehouse/saml/acme/slo?"), back
    assert "SAMLResponse=" in back
    r = s.get(back, allow_redirects=False, timeout=20)
    assert r.status_code == 303, r.text
    assert r.headers["Location"] == "/"


def test_sign_out_post_needs_csrf(gateway, ssp):
    s, r = ssp_login(gateway, ssp, "alice", "alicepass")
    assert r.status_code == 303
    r = gateway.post("/.gatehouse/saml/acme/slo", s, data={"csrf": "x"},
                     headers=API)
    assert r.status_code == 403
    assert gateway.get(WHOAMI, s, headers=API).status_code == 200


def test_idp_initiated_logout_ends_the_session(gateway, ssp):
    s, r = ssp_login(gateway, ssp, "alice", "alicepass")
    assert r.status_code == 303, r.text
    cookie = s.cookies.get(SESSION_COOKIE)
    r = s.get(ssp.url + "/saml2/idp/initSLO.php",
              params={"RelayState": ssp.url + "/"}, allow_redirects=False,
              timeout=20)
    hops = 0
    saw_request = False
    while r.status_code in (301, 302, 303) and hops < 10:
        loc = r.headers["Location"]
        if loc.startswith(gateway.origin) and "SAMLRequest=" in loc:
            saw_request = True
        r = s.get(loc, allow_redirects=False, timeout=20)
        hops += 1
    assert saw_request, ssp.log()
    fresh = gateway.session()
    fresh.cookies.set(SESSION_COOKIE, cookie)
    assert gateway.get(WHOAMI, fresh, headers=API).status_code == 401


def logout_request_query(gw, tenant, session_index, key=None):
    """An IdP LogoutRequest (HTTP-Redirect) from FORGE_IDP; signed with
    key (PEM path) when given."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    now = datetime.now(timezone.utc)
    xml = ('<samlp:LogoutRequest xmlns:samlp="%s" xmlns:saml="%s" ID="_l%s" '
           'Version="2.0" IssueInstant="%s" Destination="%s">'
           '<saml:Issuer>%s</saml:Issuer><saml:NameID Format='
           '"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
           'bob@forge.test</saml:NameID><samlp:SessionIndex>%s'
           '</samlp:SessionIndex></samlp:LogoutRequest>'
           % (NS_P, NS_A, secrets.token_hex(16), iso(now),
              gw.origin + "/.gatehouse/saml/%s/slo" % tenant, FORGE_IDP,
              session_index))
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = co.compress(xml.encode()) + co.flush()
    q = urlencode({"SAMLRequest": base64.b64encode(raw).decode()})
    if key is None:
        return q
    q += "&" + urlencode({"SigAlg": RSA_SHA256})
    with open(key, "rb") as f:
        pk = serialization.load_pem_private_key(f.read(), None)
    sig = pk.sign(q.encode(), padding.PKCS1v15(), hashes.SHA256())
    return q + "&" + urlencode({"Signature": base64.b64encode(sig).decode()})


def test_idp_logout_request_must_be_validly_signed(gateway, forge):
    s, rid = forge.start("forge")
    assert forge.post("forge", s, forge.response("forge", rid)).status_code == 303
    assert gateway.get(WHOAMI, s, headers=API).status_code == 200
    for key, reason in ((None, "unsigned"), (forge.other_key, "signature")):
        q = logout_request_query(gateway, "forge", "_s1", key)
        r = gateway.get("/.gatehouse/saml/forge/slo?" + q, headers=API)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == reason
        assert gateway.get(WHOAMI, s, headers=API).status_code == 200
    # the genuine one ends the session and answers with a LogoutResponse
    q = logout_request_query(gateway, "forge", "_s1", forge.key)
    r = gateway.get("/.gatehouse/saml/forge/slo?" + q)
    assert r.status_code == 302, r.text
    assert "SAMLResponse=" in r.headers["Location"]
    assert gateway.get(WHOAMI, s, headers=API).status_code == 401


# ---- home-realm discovery -----------------------------------------------------

def test_login_form_sends_a_saml_domain_to_its_idp(gateway, ssp):
    cli(gateway, "tenant", "set", "--tenant", "acme", "--domain", "Acme.Test")
    for password in ("", "typed anyway, never checked"):
        s = gateway.session()
        _, csrf = gateway.login_page(s, rd="/app/x")
        r = gateway.post("/.gatehouse/login", s, data={
            "username": "Alice@ACME.test", "password": password,
            "csrf": csrf, "rd": "/app/x"})
        assert r.status_code == 303, r.text
        assert r.headers["Location"] == \
            "/.gatehouse/saml/acme/login?rd=/app/x"
        assert not s.cookies.get(SESSION_COOKIE)
    # and from there on to the IdP, and back with a session
    r = gateway.get(r.headers["Location"], s)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(ssp.url)


def test_login_form_asks_a_password_domain_for_the_password(gateway, ssp):
    cli(gateway, "tenant", "set", "--tenant", "demo", "--domain",
        "example.com")
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    r = gateway.post("/.gatehouse/login", s, data={
        "username": "admin@example.com", "csrf": csrf})
    assert r.status_code == 200, r.text
    assert "Enter your password." in r.text
    assert 'name="password"' in r.text
    assert input_value(r.text, "username") == "admin@example.com"
    # with the password the login goes on as always
    s, r = gateway.login()
    assert r.status_code == 303
    assert s.cookies.get(SESSION_COOKIE)


def test_login_page_takes_the_email_first_once_a_domain_is_mapped(gateway, ssp):
    cli(gateway, "tenant", "set", "--tenant", "acme", "--domain", "acme.test")
    s = gateway.session()
    page, csrf = gateway.login_page(s, rd="/app/y")
    assert input_value(page.text, "username") is not None
    assert input_value(page.text, "password") is None      # email only
    assert ">Continue</button>" in page.text
    # an email no domain names: the password comes next, nothing counted
    before = cli(gateway, "audit", "export").count("login.failure")
    r = gateway.post("/.gatehouse/login", s, data={
        "username": "someone@elsewhere.example", "csrf": csrf,
        "rd": "/app/y"})
    assert r.status_code == 200, r.text
    assert input_value(r.text, "password") == ""
    assert input_value(r.text, "username") == "someone@elsewhere.example"
    assert input_value(r.text, "rd") == "/app/y"
    assert not s.cookies.get(SESSION_COOKIE)
    assert cli(gateway, "audit", "export").count("login.failure") \
        == before
    # the SAML domain goes straight to its IdP
    r = gateway.post("/.gatehouse/login", s, data={
        "username": "bob@acme.test", "csrf": csrf, "rd": "/app/y"})
    assert r.status_code == 303
    assert r.headers["Location"] == "/.gatehouse/saml/acme/login?rd=/app/y"


def test_tenant_set_domain_validates(gateway, ssp):
    p = run_cli(["tenant", "set", "--tenant", "acme", "--domain",
                 "not a domain"], data=gateway.data)
    assert p.returncode == 1 and "not a domain name" in p.stderr
    p = run_cli(["tenant", "set", "--tenant", "nosuch", "--domain",
                 "x.example"], data=gateway.data)
    assert p.returncode == 1
