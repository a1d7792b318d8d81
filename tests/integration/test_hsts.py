"""HSTS on every response of the gateway: proxied, gatehouse pages,
redirects, errors, and a 502 when the backend is gone."""
import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, API, BROWSER, HEALTHZ, HSTS,
                      LOGIN, LOGOUT, WHOAMI, assert_hsts)


def test_hsts_on_proxied_200(gateway, backend):
    s = gateway.logged_in()
    r = gateway.get("/page", s, headers=BROWSER)
    assert r.status_code == 200
    assert_hsts(r)
    assert len(backend.requests()) == 1


def test_backend_hsts_is_replaced_by_ours(gateway, backend):
    s = gateway.logged_in()
    r = gateway.get("/backend-hsts", s, headers=API)
    assert r.status_code == 200
    assert_hsts(r)


@pytest.mark.parametrize("what,method,path,headers,status", [
    ("healthz", "GET", HEALTHZ, API, 200),
    ("login page", "GET", LOGIN, BROWSER, 200),
    ("browser without session", "GET", "/x?y=1", BROWSER, 302),
    ("api without session", "GET", "/x", API, 401),
    ("whoami without session", "GET", WHOAMI, API, 401),
    ("unknown endpoint", "GET", "/.gatehouse/nope", API, 404),
    ("logout by GET", "GET", LOGOUT, API, 405),
    ("csrf failure", "POST", LOGIN, API, 403),
    ("bad content type", "POST", LOGIN, {"Content-Type": "text/plain"}, 415),
    ("HEAD healthz", "HEAD", HEALTHZ, API, 200),
])
def test_hsts_on_gateway_responses(gateway, what, method, path, headers, status):
    kw = {"headers": dict(headers, Connection="close")}
    if what == "csrf failure":
        kw["data"] = {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    if what == "bad content type":
        kw["data"] = "x"
    r = gateway.session().request(method, gateway.url(path),
                                  allow_redirects=False, timeout=10, **kw)
    assert r.status_code == status, (what, r.status_code)
    assert_hsts(r)


def test_hsts_on_login_and_logout_redirects(gateway):
    s, r = gateway.login(rd="/x")
    assert r.status_code == 303
    assert_hsts(r)
    r = gateway.post(LOGOUT, s)
    assert r.status_code == 303
    assert_hsts(r)


def test_hsts_on_failed_login(gateway):
    s, r = gateway.login(password="wrong")
    assert r.status_code == 401
    assert_hsts(r)


def test_hsts_on_413(gateway):
    s = gateway.session()
    _, csrf = gateway.login_page(s)
    r = gateway.post(LOGIN, s, data="csrf=%s&pad=%s" % (csrf, "x" * 20000),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Connection": "close"})
    assert r.status_code == 413
    assert_hsts(r)


def test_hsts_on_502_when_backend_is_down(make_gateway):
    gw = make_gateway()
    s = gw.logged_in()
    assert gw.get("/up", s, headers=API).status_code == 200
    gw.backend.stop()
    r = gw.get("/down", s, headers=BROWSER)
    assert r.status_code == 502, r.status_code
    assert_hsts(r)
    # a gatehouse page still works with the backend gone
    r = gw.get(HEALTHZ)
    assert r.status_code == 200
    assert_hsts(r)


def test_hsts_value_is_exact(gateway):
    r = gateway.get(HEALTHZ)
    assert r.headers["Strict-Transport-Security"] == HSTS
