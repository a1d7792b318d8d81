#!/usr/bin/python3
"""Real password logins against a gatehouse front, for bench/run.sh.

    login.py cookie BASE CERT EMAIL
        one login (GET the login page for the CSRF cookie and field, POST
        the form); prints the value of the __Host-gatehouse session cookie.
    login.py storm BASE CERT EMAIL RATE SECONDS OUT.json
        a login storm: RATE logins per second, started on a fixed schedule
        (not back-to-back: a slow login does not lower the rate) for SECONDS,
        each on a fresh connection; writes a JSON summary to OUT.json.

The password is read from the first line of standard input. Every request
has a timeout and the storm is bounded (RATE x SECONDS logins at most,
joined with a deadline), so this always ends.
"""
import concurrent.futures
import html
import json
import re
import sys
import time

import requests

LOGIN = "/.gatehouse/login"
COOKIE = "__Host-gatehouse"
BROWSER = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
TIMEOUT = 20


def input_value(page, name):
    for tag in re.findall(r"<input\b[^>]*>", page, re.I):
        if re.search(r'\bname="%s"' % re.escape(name), tag):
            m = re.search(r'\bvalue="([^"]*)"', tag)
            return html.unescape(m.group(1)) if m else ""
    return None


def login(base, cert, email, password):
    """(session cookie or None, HTTP status of the POST)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = cert
    r = s.get(base + LOGIN, headers=BROWSER, allow_redirects=False,
              timeout=TIMEOUT)
    if r.status_code != 200:
        return None, r.status_code
    csrf = input_value(r.text, "csrf")
    form = {"username": email, "password": password, "csrf": csrf or "",
            "rd": input_value(r.text, "rd") or "/"}
    r = s.post(base + LOGIN, data=form, headers=BROWSER,
               allow_redirects=False, timeout=TIMEOUT)
    return s.cookies.get(COOKIE), r.status_code


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def storm(base, cert, email, password, rate, seconds, out):
    n = max(1, int(round(rate * seconds)))
    lat, codes, errors = [], {}, 0
    t0 = time.monotonic()

    def one():
        a = time.monotonic()
        try:
            cookie, code = login(base, cert, email, password)
        except requests.RequestException as e:
            return None, "error: %s" % type(e).__name__, time.monotonic() - a
        return cookie, code, time.monotonic() - a

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        futs = []
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futs.append(pool.submit(one))
        done, _ = concurrent.futures.wait(futs, timeout=TIMEOUT * 2 + 5)
        for f in done:
            cookie, code, dt = f.result()
            codes[str(code)] = codes.get(str(code), 0) + 1
            if cookie and code == 303:
                lat.append(dt * 1000.0)
            else:
                errors += 1
        errors += len(futs) - len(done)
        for f in futs:
            f.cancel()
    wall = time.monotonic() - t0
    res = {"planned": n, "rate": rate, "seconds": seconds, "ok": len(lat),
           "failed": errors, "codes": codes, "wall_s": round(wall, 2),
           "login_ms_p50": pct(lat, 50), "login_ms_p99": pct(lat, 99),
           "login_ms_max": max(lat) if lat else None}
    with open(out, "w") as f:
        json.dump(res, f)
    return 0 if errors == 0 else 1


def main(argv):
    requests.packages.urllib3.disable_warnings()
    password = sys.stdin.readline().rstrip("\r\n")
    if len(argv) == 5 and argv[1] == "cookie":
        cookie, code = login(argv[2], argv[3], argv[4], password)
        if not cookie or code != 303:
            print("login failed: HTTP %s" % code, file=sys.stderr)
            return 1
        print(cookie)
        return 0
    if len(argv) == 8 and argv[1] == "storm":
        return storm(argv[2], argv[3], argv[4], password, float(argv[5]),
                     float(argv[6]), argv[7])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
