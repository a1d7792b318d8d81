"""The tamper-evident audit log against a running gateway: the records a
scripted session leaves, live shipping to syslog, a hot backup under load
that restores and verifies, and kill -9 of workers during writes."""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import threading
import time

import pytest

from conftest import (API, ADMIN_PASSWORD, LOGOUT, SESSION_COOKIE, WHOAMI,
                      cli_ok, run_cli)

EXAMPLE_POLICY = os.path.join(os.path.dirname(__file__), "..", "..", "conf",
                              "policy.example.yaml")
PW = "bob's long password 77"
WRONG = "not bob's password 13"


def export(data, *args):
    p = cli_ok(["audit", "export"] + list(args), data)
    lines = [l for l in p.stdout.split("\n") if l]
    return [json.loads(l) for l in lines], p.stdout


def records(data):
    return [e["record"] for e in export(data)[0]]


def wait_for(data, pred, timeout=10.0):
    """The records once pred(records) holds (denials are written by the
    thread pool, shortly after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = records(data)
        if pred(recs):
            return recs
        if time.monotonic() > deadline:
            pytest.fail("audit records never matched: %r"
                        % [r["action"] for r in recs])
        time.sleep(0.1)


def session_ref(cookie):
    """What the log records for a session: SHA-256 of the domain and the
    store key (itself SHA-256 of the cookie's 32 bytes), 16 bytes in hex."""
    raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    key = hashlib.sha256(raw).digest()
    return hashlib.sha256(b"gatehouse-audit-session" + key).hexdigest()[:32]


def verify(data):
    return run_cli(["audit", "verify"], data=data)


# ---- a scripted session ------------------------------------------------------

def test_scripted_session_leaves_the_expected_records_in_order(make_gateway):
    gw = make_gateway()
    cli_ok(["policy", "apply", EXAMPLE_POLICY], gw.data)
    start = len(records(gw.data))
    gw.add_user("bob@example.com", PW, roles="member")

    s, r = gw.login(email="bob@example.com", password=WRONG)
    assert r.status_code == 401
    s = gw.logged_in("bob@example.com", PW)
    cookie = s.cookies.get(SESSION_COOKIE)
    ref = session_ref(cookie)

    # denials, written by the thread pool: the policy's, and a hostile
    # path's (refused before any rule)
    r = gw.get("/admin-tools/x", s, headers=API)
    assert r.status_code == 403
    wait_for(gw.data, lambda rs: any(x["action"] == "access.deny" for x in rs))
    r = gw.get("/admin-tools/%0d%0a{\"action\":\"forged\"}", s, headers=API)
    assert r.status_code == 400
    wait_for(gw.data, lambda rs: len([x for x in rs
                                      if x["action"] == "access.deny"]) == 2)

    cli_ok(["role", "grant", "--tenant", "demo", "--email", "bob@example.com",
            "admin"], gw.data)
    assert gw.get("/admin-tools/ok", s, headers=API).status_code == 200
    cli_ok(["role", "revoke", "--tenant", "demo", "--email",
            "bob@example.com", "admin"], gw.data)
    assert gw.post(LOGOUT, s).status_code == 303
    cli_ok(["user", "disable", "--email", "bob@example.com"], gw.data)

    entries, text = export(gw.data)
    recs = [e["record"] for e in entries][start:]
    assert [x["action"] for x in recs] == [
        "user.add", "password.set", "login.failure", "login.success",
        "access.deny", "access.deny", "role.grant", "role.revoke", "logout",
        "user.disable"], recs

    add, _, fail, ok, deny, odd, grant, revoke, out, disable = recs
    assert add["target"] == "bob@example.com"
    assert add["actor"]["user"].startswith("cli:")
    assert fail["actor"]["user"] == "bob@example.com"
    assert fail["result"] == "failure" and fail["reason"] == "bad_password"
    assert fail["actor"]["addr"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", fail["request_id"])
    assert ok["result"] == "success" and ok["actor"]["session"] == ref
    assert deny["result"] == "denied"
    assert deny["reason"] == "no_matching_rule"
    assert deny["actor"]["user"] == "bob@example.com"
    assert deny["actor"]["session"] == ref
    assert deny["target"] == "admin-tools GET /admin-tools/x"
    assert odd["reason"] == "ambiguous_path"
    assert odd["target"].startswith("admin-tools GET /admin-tools/")
    assert "\r\n" in odd["target"]            # kept, but only as JSON escapes
    assert grant["details"]["before"] == "member"
    assert grant["details"]["after"] == "member,admin"
    assert revoke["details"]["before"] == "member,admin"
    assert revoke["details"]["after"] == "member"
    assert out["actor"]["session"] == ref and out["result"] == "success"
    assert disable["details"] == {"before": "enabled", "after": "disabled",
                                  "text": "every session of the user ended"}
    # one line per record, never a forged one; sequence numbers contiguous
    lines = text.split("\n")[:-1]
    assert len(lines) == len(entries)
    assert all("forged" not in json.dumps(e["record"]["action"])
               for e in entries)
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, len(seqs) + 1))
    # no secret anywhere
    for secret in (PW, WRONG, ADMIN_PASSWORD, cookie):
        assert secret not in text

    p = verify(gw.data)
    assert p.returncode == 0, p.stderr
    assert "audit log intact" in p.stdout


def test_allows_are_recorded_only_when_configured(make_gateway):
    gw = make_gateway(http_directives=["gatehouse_audit_allows on;"])
    s = gw.logged_in()
    assert gw.get("/allowed/path", s, headers=API).status_code == 200
    recs = wait_for(gw.data,
                    lambda rs: any(x["action"] == "access.allow" for x in rs))
    allow = [x for x in recs if x["action"] == "access.allow"][0]
    assert allow["target"] == "demo GET /allowed/path"
    assert allow["result"] == "success"


def test_editing_the_log_on_disk_is_detected(make_gateway, tmp_path):
    """The store file itself, edited by someone with write access to the
    data directory: verify names the record and fails."""
    gw = make_gateway()
    for i in range(3):
        gw.login(email="nobody%d@example.com" % i, password=WRONG)
    wait_for(gw.data, lambda rs: len(rs) >= 3)
    gw.stop()
    path = os.path.join(gw.data, "audit.mdb", "data.mdb")
    with open(path, "rb") as f:
        blob = f.read()
    # every copy (LMDB keeps superseded pages until it reuses them)
    assert b"nobody1@example.com" in blob
    with open(path, "wb") as f:
        f.write(blob.replace(b"nobody1@example.com", b"nobodyX@example.com"))
    p = verify(gw.data)
    assert p.returncode == 1
    # seq 1 is gatehouse.init; nobody0..2 are 2..4
    assert "first bad sequence number 3" in p.stderr, p.stderr
    assert len(p.stderr.strip().split("\n")) == 1


def test_a_rollback_with_its_checkpoints_is_caught_by_a_hash_held_outside(
        tmp_path):
    """Replacing the whole log by an older copy (checkpoints and all) leaves
    a chain that verifies on its own; the hash of a later record, as a SIEM
    received it, shows the cut."""
    data = str(tmp_path / "d")
    cli_ok(["init", "--password-stdin", "--argon2-passes", "1",
            "--argon2-memory-mib", "8"], data, input=ADMIN_PASSWORD + "\n")
    cli_ok(["audit", "config", "--checkpoint-records", "1"], data)
    for i in range(3):
        cli_ok(["user", "add", "--tenant", "demo", "--email",
                "u%d@example.com" % i], data)
    old = str(tmp_path / "old-audit")
    shutil.copytree(os.path.join(data, "audit.mdb"), old)
    kept = len(records(data))
    for i in range(3, 6):
        cli_ok(["user", "add", "--tenant", "demo", "--email",
                "u%d@example.com" % i], data)
    last = export(data)[0][-1]
    shutil.rmtree(os.path.join(data, "audit.mdb"))
    shutil.copytree(old, os.path.join(data, "audit.mdb"))

    assert verify(data).returncode == 0          # consistent on its own
    p = run_cli(["audit", "verify", "--expect",
                 "%d:%s" % (last["seq"], last["hash"])], data=data)
    assert p.returncode == 1
    assert "first bad sequence number %d" % (kept + 1) in p.stderr, p.stderr
    p = run_cli(["audit", "verify", "--expect", "1:" + "0" * 64], data=data)
    assert p.returncode == 1 and "first bad sequence number 1" in p.stderr
    p = run_cli(["audit", "verify", "--expect", "x:y"], data=data)
    assert p.returncode == 1 and len(p.stderr.strip().split("\n")) == 1


def test_expect_accepts_only_a_held_hash_of_exactly_64_hex_digits(tmp_path):
    """--expect passes with the hash the log holds for that record and is
    refused (exit 1, one line) when the hash is one digit short or long or
    carries a non-hex character, never read as a prefix."""
    data = str(tmp_path / "d")
    cli_ok(["init", "--password-stdin", "--argon2-passes", "1",
            "--argon2-memory-mib", "8"], data, input=ADMIN_PASSWORD + "\n")
    last = export(data)[0][-1]
    seq, h = last["seq"], last["hash"]
    p = run_cli(["audit", "verify", "--expect", "%d:%s" % (seq, h)], data=data)
    assert p.returncode == 0, p.stderr
    for bad in (h[:63], h + "0", "g" + h[1:], h[:62] + " 0"):
        p = run_cli(["audit", "verify", "--expect", "%d:%s" % (seq, bad)],
                    data=data)
        assert p.returncode == 1, bad
        assert len(p.stderr.strip().split("\n")) == 1, p.stderr


# ---- syslog --------------------------------------------------------------------

def test_records_are_shipped_to_syslog_as_rfc5424(make_gateway):
    gw = make_gateway()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    cli_ok(["audit", "config", "--syslog",
            "udp:127.0.0.1:%d" % udp.getsockname()[1]], gw.data)
    try:
        # workers read the setting at every write: no reload needed
        s, r = gw.login(email="eve@example.com\r\nforged", password=WRONG)
        assert r.status_code == 401
        # the first is the record of the configuration change itself
        first = udp.recv(65536).decode("ascii")
        assert " audit.config [" in first
        msg = udp.recv(65536).decode("ascii")
    finally:
        udp.close()
    m = re.fullmatch(r"<(\d+)>1 (\S+) (\S+) gatehouse (\d+) (\S+) "
                     r"\[gatehouse@32473 seq=\"(\d+)\" hash=\"([0-9a-f]{64})\"\] "
                     r"(\{.*\})", msg)
    assert m, msg
    assert m.group(1) == str(10 * 8 + 4)          # authpriv.warning
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m.group(2))
    assert m.group(5) == "login.failure"
    assert "\n" not in msg and "\r" not in msg
    rec = json.loads(m.group(8))
    assert rec["actor"]["user"] == "(not an email address)"
    # the same record, the same hash as the log holds
    entries, _ = export(gw.data)
    by_seq = {e["seq"]: e for e in entries}
    assert by_seq[int(m.group(6))]["hash"] == m.group(7)
    assert by_seq[int(m.group(6))]["record"] == rec

    # TCP, octet-counted (RFC 6587): the CLI ships too
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)
    cli_ok(["audit", "config", "--syslog",
            "tcp:127.0.0.1:%d" % srv.getsockname()[1]], gw.data)
    frames = []

    def accept():
        # each CLI run connects anew: read whole connections, split frames
        for _ in range(3):
            c, _ = srv.accept()
            c.settimeout(10)
            buf = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
            c.close()
            while buf:
                length, rest = buf.split(b" ", 1)
                frames.append((int(length), rest[:int(length)]))
                buf = rest[int(length):]
            if any(b" user.add [" in f for _, f in frames):
                return

    t = threading.Thread(target=accept)
    t.start()
    cli_ok(["user", "add", "--tenant", "demo", "--email", "tcp@example.com"],
           gw.data)
    t.join(15)
    srv.close()
    assert frames and all(n == len(f) for n, f in frames)
    rest = [f for _, f in frames if b" user.add [" in f][0].decode("ascii")
    assert " user.add [gatehouse@32473 " in rest
    assert rest.startswith("<85>1 ")                # authpriv.notice


def test_records_are_shipped_to_a_local_syslog_socket(tmp_path):
    data = str(tmp_path / "d")
    cli_ok(["init", "--password-stdin", "--argon2-passes", "1",
            "--argon2-memory-mib", "8"], data, input=ADMIN_PASSWORD + "\n")
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        cli_ok(["audit", "config", "--syslog", "unix:" + path], data)
        cli_ok(["user", "disable", "--email", "admin@example.com"], data)
        msgs = [sock.recv(65536).decode("ascii") for _ in range(2)]
    finally:
        sock.close()
    assert " audit.config [" in msgs[0]
    assert msgs[1].startswith("<85>1 ") and " user.disable [" in msgs[1]


def test_bad_syslog_targets_are_refused(make_gateway, tmp_path):
    data = str(tmp_path / "d")
    cli_ok(["init", "--password-stdin", "--argon2-passes", "1",
            "--argon2-memory-mib", "8"], data, input=ADMIN_PASSWORD + "\n")
    for bad in ("udp:nohost", "ftp:1.2.3.4:5", "udp:1.2.3.4:0",
                "tcp:a\nb:1"):
        p = run_cli(["audit", "config", "--syslog", bad], data=data)
        assert p.returncode == 1, bad
        assert len(p.stderr.strip().split("\n")) == 1


# ---- backup and restore ----------------------------------------------------------

def test_backup_during_login_load_restores_and_verifies(make_gateway,
                                                         tmp_path):
    gw = make_gateway(workers=2)
    gw.add_user("load@example.com", PW, roles="member")
    stop = threading.Event()
    done = []

    def load():
        t0 = time.monotonic()
        while not stop.is_set() and time.monotonic() - t0 < 20 and \
                len(done) < 400:
            s, r = gw.login(email="load@example.com",
                            password=PW if len(done) % 3 else WRONG)
            done.append(r.status_code)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    dest = str(tmp_path / "backup")
    p = run_cli(["backup", dest], data=gw.data)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert p.returncode == 0, p.stderr
    assert "audit log intact" in p.stdout
    assert 303 in done and 401 in done
    assert not os.path.exists(os.path.join(dest, "master.key"))

    # a live data directory is never overwritten
    p = run_cli(["restore", dest], data=gw.data)
    assert p.returncode == 1
    assert "in use" in p.stderr and "stop the gateway" in p.stderr

    # into a stopped, fresh directory: needs the master key beside it
    fresh = str(tmp_path / "restored")
    p = run_cli(["restore", dest], data=fresh)
    assert p.returncode == 1 and "master.key" in p.stderr
    os.makedirs(fresh, mode=0o700, exist_ok=True)
    shutil.copy2(os.path.join(gw.data, "master.key"),
                 os.path.join(fresh, "master.key"))
    p = run_cli(["restore", dest], data=fresh)
    assert p.returncode == 0, p.stderr
    assert "audit log intact" in p.stdout
    p = verify(fresh)
    assert p.returncode == 0, p.stderr
    # the backup holds the record of its own making, and the logins before
    recs = records(fresh)
    actions = [r["action"] for r in recs]
    assert "backup.create" in actions and "login.success" in actions
    assert actions[-1] == "backup.restore"
    # and it is a working store: the user is there
    p = cli_ok(["user", "list"], fresh)
    assert "load@example.com" in p.stdout

    # a backup with a foreign master key is refused
    other = str(tmp_path / "other")
    cli_ok(["init", "--password-stdin", "--argon2-passes", "1",
            "--argon2-memory-mib", "8"], other, input=ADMIN_PASSWORD + "\n")
    p = run_cli(["restore", dest], data=other)
    assert p.returncode == 1 and "do not open" in p.stderr


def test_backup_refuses_a_non_empty_directory(make_gateway, tmp_path):
    gw = make_gateway()
    dest = tmp_path / "full"
    dest.mkdir()
    (dest / "x").write_text("x")
    p = run_cli(["backup", str(dest)], data=gw.data)
    assert p.returncode == 1 and "not empty" in p.stderr
    p = run_cli(["backup", "--with-key", str(tmp_path / "k")], data=gw.data)
    assert p.returncode == 0, p.stderr
    assert oct(os.stat(tmp_path / "k" / "master.key").st_mode & 0o777) == \
        "0o600"


# ---- crash safety ------------------------------------------------------------------

def _workers(gw):
    path = "/proc/%d/task/%d/children" % (gw.proc.pid, gw.proc.pid)
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def test_kill_9_of_workers_during_writes_loses_no_acknowledged_write(
        make_gateway):
    """50 rounds: a few concurrent logins, one worker killed with SIGKILL
    while they run. Every login that was answered 303 has its session in
    the store and its login.success record in an intact chain."""
    gw = make_gateway(workers=2)
    gw.add_user("crash@example.com", PW, roles="member")
    acked = []
    lock = threading.Lock()

    def one():
        try:
            s, r = gw.login(email="crash@example.com", password=PW)
        except Exception:
            return        # the connection died with its worker: no ack
        if r.status_code == 303 and s.cookies.get(SESSION_COOKIE):
            with lock:
                acked.append(s)

    t_end = time.monotonic() + 120
    kills = 0
    for rnd in range(50):
        assert time.monotonic() < t_end, "kill loop too slow (%d rounds)" % rnd
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.02 + 0.01 * (rnd % 5))
        ws = _workers(gw)
        if ws:
            os.kill(ws[rnd % len(ws)], signal.SIGKILL)
            kills += 1
        for t in threads:
            t.join(20)
        # the master starts a new worker; wait until it serves
        deadline = time.monotonic() + 10
        while len(_workers(gw)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert kills == 50
    assert len(acked) >= 20, len(acked)
    time.sleep(0.5)       # the master logs the last exit asynchronously
    print("kill -9 loop: %d kills, %d acknowledged logins" % (kills,
                                                              len(acked)))

    # the master logged each killed worker at [alert]: expected here
    bad = [l for l in gw.problems(consume=True).split("\n")
           if l and not l.startswith("==")
           and "exited on signal 9" not in l]
    assert not bad, bad

    p = verify(gw.data)
    assert p.returncode == 0, p.stderr
    logged = {r["actor"]["session"] for r in records(gw.data)
              if r["action"] == "login.success"}
    for s in acked:
        assert session_ref(s.cookies.get(SESSION_COOKIE)) in logged
        assert gw.get(WHOAMI, s).status_code == 200
