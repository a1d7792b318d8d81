"""A real SAML IdP for the tests: Debian's SimpleSAMLphp under `php -S` on a
free loopback port, configured entirely from files written here (config,
authsources with exampleauth users, saml20-idp-hosted, saml20-sp-remote
with the gateway's SP metadata). Stopped by its pid only."""
import os
import re
import secrets
import signal
import subprocess
import time

import requests

SSP_WWW = "/usr/share/simplesamlphp/www"
PHP = "/usr/bin/php"
START_TIMEOUT = 15


def make_key(dirpath, name, cn):
    """An RSA key and self-signed certificate (PEM files); returns
    (key_path, cert_path, cert_base64_der)."""
    key = os.path.join(dirpath, name + ".key")
    crt = os.path.join(dirpath, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "30",
                    "-subj", "/CN=" + cn], check=True, capture_output=True,
                   timeout=60)
    with open(crt) as f:
        pem = f.read()
    b64 = "".join(pem.strip().splitlines()[1:-1])
    return key, crt, b64


def php_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SimpleSAMLphp:
    def __init__(self, base, port, users):
        """users: {username: (password, mail)}"""
        self.base = str(base)
        self.port = port
        self.users = users
        self.url = "http://127.0.0.1:%d" % port
        self.entity = self.url + "/saml2/idp/metadata.php"
        self.proc = None
        self.sps = {}
        os.makedirs(self.base, exist_ok=True)
        for d in ("cert", "log", "data", "tmp", "metadata", "sessions"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        self.key, self.crt, self.cert_b64 = make_key(
            os.path.join(self.base, "cert"), "idp", "ssp-test-idp")
        self._write_config()

    def _write(self, rel, text):
        with open(os.path.join(self.base, rel), "w") as f:
            f.write(text)

    def _write_config(self):
        b = self.base
        self._write("config.php", """<?php
$config = [
    'baseurlpath' => %s,
    'certdir' => %s,
    'loggingdir' => %s,
    'datadir' => %s,
    'tempdir' => %s,
    'metadata.sources' => [['type' => 'flatfile', 'directory' => %s]],
    'technicalcontact_name' => 'gatehouse tests',
    'technicalcontact_email' => 'tests@example.org',
    'timezone' => 'UTC',
    'secretsalt' => %s,
    'auth.adminpassword' => %s,
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,
    'logging.level' => SimpleSAML\\Logger::WARNING,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'store.type' => 'phpsession',
    'session.cookie.secure' => false,
    'session.phpsession.savepath' => %s,
    'language.default' => 'en',
];
""" % (php_str(self.url + "/"), php_str(b + "/cert/"), php_str(b + "/log/"),
       php_str(b + "/data/"), php_str(b + "/tmp"),
       php_str(b + "/metadata"), php_str(secrets.token_hex(16)),
       php_str(secrets.token_hex(16)), php_str(b + "/sessions")))
        users = "".join("        %s => ['uid' => [%s], 'mail' => [%s]],\n" % (
            php_str("%s:%s" % (u, pw)), php_str(u), php_str(mail))
            for u, (pw, mail) in self.users.items())
        self._write("authsources.php", """<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
%s    ],
];
""" % users)
        self._write("metadata/saml20-idp-hosted.php", """<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__',
    'privatekey' => %s,
    'certificate' => %s,
    'auth' => 'example-userpass',
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
];
""" % (php_str(self.key), php_str(self.crt)))
        self._write_sps()

    def _write_sps(self):
        out = ["<?php\n"]
        for entity, sp in self.sps.items():
            out.append("""$metadata[%s] = [
    'AssertionConsumerService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'Location' => %s]],
    'SingleLogoutService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', 'Location' => %s]],
    'certData' => %s,
    'validate.authnrequest' => true,
    'sign.response' => false,
    'sign.assertion' => true,
    'sign.logout' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'mail',
];
""" % (php_str(entity), php_str(sp["acs"]), php_str(sp["slo"]),
       php_str(sp["cert"])))
        self._write("metadata/saml20-sp-remote.php", "".join(out))

    def add_sp(self, sp_metadata_xml):
        """Trust one of the gateway's SPs, from its metadata XML."""
        entity = re.search(r'entityID="([^"]+)"', sp_metadata_xml).group(1)
        acs = re.search(r'AssertionConsumerService[^>]*Location="([^"]+)"',
                        sp_metadata_xml).group(1)
        slo = re.search(r'SingleLogoutService[^>]*Location="([^"]+)"',
                        sp_metadata_xml).group(1)
        cert = re.search(r"<ds:X509Certificate>([^<]+)<",
                         sp_metadata_xml).group(1)
        self.sps[entity] = {"acs": acs, "slo": slo, "cert": cert}
        self._write_sps()

    def metadata(self):
        """The IdP's own metadata XML (what `idp add` registers)."""
        r = requests.get(self.entity, timeout=10)
        r.raise_for_status()
        return r.text

    def start(self):
        env = dict(os.environ)
        env["SIMPLESAMLPHP_CONFIG_DIR"] = self.base
        self._out = open(os.path.join(self.base, "php.out"), "ab")
        self.proc = subprocess.Popen(
            [PHP, "-S", "127.0.0.1:%d" % self.port, "-t", SSP_WWW],
            cwd=SSP_WWW, env=env, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                r = requests.get(self.entity, timeout=2)
                if r.status_code == 200 and "EntityDescriptor" in r.text:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("SimpleSAMLphp did not start: %s" % self.log())

    def log(self):
        out = []
        for p in ("php.out", "log/simplesamlphp.log"):
            try:
                with open(os.path.join(self.base, p), errors="replace") as f:
                    out.append(f.read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
