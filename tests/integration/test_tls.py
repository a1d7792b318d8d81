"""TLS: 1.2 and 1.3 only, modern ciphers, HTTP/2 offered by ALPN."""
import os
import socket
import ssl
import threading
import warnings

import pytest


def _handshake(gw, ctx):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.selected_alpn_protocol(), tls.cipher()


def _ctx(gw, lo, hi):
    ctx = gw.ssl_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # TLSv1, TLSv1_1
        ctx.minimum_version = lo
        ctx.maximum_version = hi
    return ctx


def _client_can_speak(gw, ctx):
    """Control for a refusal test: does this client context complete a
    handshake with a permissive local server using the same key pair?"""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv.minimum_version = ssl.TLSVersion.TLSv1
    srv.set_ciphers("ALL:@SECLEVEL=0")
    srv.load_cert_chain(gw.cert, os.path.join(gw.data, "tls", "gateway.key"))
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(10)
    result = {}

    def serve():
        try:
            conn, _ = lsock.accept()
            with srv.wrap_socket(conn, server_side=True) as tls:
                result["version"] = tls.version()
        except (OSError, ssl.SSLError) as e:
            result["error"] = e

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(lsock.getsockname(), timeout=10) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                pass
        ok = True
    except (OSError, ssl.SSLError):
        ok = False
    t.join(timeout=10)
    lsock.close()
    return ok


@pytest.mark.parametrize("ver,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                      (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_12_and_13_accepted(gateway, ver, name):
    version, _, _ = _handshake(gateway, _ctx(gateway, ver, ver))
    assert version == name


@pytest.mark.parametrize("ver", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                         ids=["TLSv1.0", "TLSv1.1"])
def test_old_tls_refused(gateway, ver):
    ctx = _ctx(gateway, ssl.TLSVersion.TLSv1, ver)
    # let the client offer the old protocol at all (OpenSSL 3 hides it at
    # security level >= 1); the server must still refuse it
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if not _client_can_speak(gateway, ctx):
        pytest.skip("this client's OpenSSL cannot offer %s at all" % ver.name)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(gateway, ctx)


@pytest.mark.parametrize("cipher", [
    "ECDHE-ECDSA-AES128-SHA",       # CBC
    "ECDHE-ECDSA-AES256-SHA384",    # CBC
    "AES128-GCM-SHA256",            # no forward secrecy
])
def test_weak_tls12_ciphers_refused(gateway, cipher):
    ctx = _ctx(gateway, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    if cipher.startswith("ECDHE-ECDSA") and not _client_can_speak(gateway, ctx):
        pytest.skip("this client cannot use %s at all" % cipher)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(gateway, ctx)


def test_tls12_uses_forward_secret_aead(gateway):
    ctx = _ctx(gateway, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    _, _, (name, _, _) = _handshake(gateway, ctx)
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


def test_http2_offered_by_alpn(gateway):
    ctx = gateway.ssl_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _, alpn, _ = _handshake(gateway, ctx)
    assert alpn == "h2"


def test_certificate_verifies_for_127_0_0_1(gateway):
    ctx = gateway.ssl_context()
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    _handshake(gateway, ctx)        # raises on a bad certificate
