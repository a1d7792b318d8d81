"""The CLI: errors are one line on stderr with a non-zero exit; the
commands the gateway relies on work; no leaks under LeakSanitizer."""
import os
import shutil

import pytest

from conftest import ADMIN_EMAIL, init_data, run_cli

PW = "cli test password 1\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "data"
    init_data(str(d))
    return str(d)


def one_line_error(p, what):
    assert p.returncode != 0, "%s: exit 0\nstdout: %s" % (what, p.stdout)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, "%s: stderr is not one line: %r" % (what, p.stderr)
    assert lines[0].startswith("gatehouse:"), (what, lines[0])
    assert len(lines[0]) > len("gatehouse: "), (what, lines[0])
    return lines[0]


def test_init_made_a_usable_data_dir(data):
    assert os.path.isdir(os.path.join(data, "gatehouse.mdb"))
    key = os.path.join(data, "master.key")
    assert os.stat(key).st_mode & 0o077 == 0, "master.key readable by others"
    assert os.path.getsize(key) == 32
    assert os.path.exists(os.path.join(data, "tls", "gateway.crt"))
    tls_key = os.path.join(data, "tls", "gateway.key")
    assert os.stat(tls_key).st_mode & 0o077 == 0
    p = run_cli(["user", "list"], data=data)
    assert p.returncode == 0, p.stderr
    assert ADMIN_EMAIL in p.stdout


def test_unknown_tenant(data):
    p = run_cli(["user", "add", "--tenant", "no-such-tenant", "--email",
                 "x@example.com", "--password-stdin"], data=data, input=PW)
    one_line_error(p, "unknown tenant")


@pytest.mark.parametrize("email", [ADMIN_EMAIL, "ADMIN@Example.COM",
                                   " admin@example.com "])
def test_duplicate_email(data, email):
    p = run_cli(["user", "add", "--tenant", "demo", "--email", email,
                 "--password-stdin"], data=data, input=PW)
    one_line_error(p, "duplicate email %r" % email)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@example.com",
                                   "a@@example.com", "a b@example.com",
                                   "", "a@example.com\nsecond line",
                                   "x" * 300 + "@example.com"])
def test_bad_email(data, email):
    p = run_cli(["user", "add", "--tenant", "demo", "--email", email,
                 "--password-stdin"], data=data, input=PW)
    one_line_error(p, "bad email %r" % email)


def test_missing_data_dir(tmp_path):
    p = run_cli(["user", "list"], data=str(tmp_path / "does" / "not" / "exist"))
    one_line_error(p, "missing data dir")


def test_uninitialised_data_dir(tmp_path):
    p = run_cli(["user", "list"], data=str(tmp_path))
    one_line_error(p, "empty data dir")


def test_data_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("not a directory\n")
    p = run_cli(["user", "list"], data=str(f))
    one_line_error(p, "data dir is a file")


def test_corrupt_store(data, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(data, copy)
    mdb = os.path.join(copy, "gatehouse.mdb", "data.mdb")
    assert os.path.exists(mdb)
    with open(mdb, "wb") as f:
        f.write(os.urandom(64 * 1024))
    p = run_cli(["user", "list"], data=copy)
    one_line_error(p, "corrupt store")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_data_dir(data, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(data, copy)
    os.chmod(copy, 0)
    try:
        p = run_cli(["user", "list"], data=copy)
        one_line_error(p, "unreadable data dir")
    finally:
        os.chmod(copy, 0o700)


def test_no_data_dir_given():
    p = run_cli(["user", "list"])
    one_line_error(p, "no --data and no GATEHOUSE_DATA")


def test_gatehouse_data_environment(data):
    p = run_cli(["user", "list"], env={"GATEHOUSE_DATA": data})
    assert p.returncode == 0, p.stderr
    assert ADMIN_EMAIL in p.stdout


def test_init_twice_is_refused(data):
    p = run_cli(["init", "--admin-email", "other@example.com",
                 "--password-stdin", "--argon2-passes", "1",
                 "--argon2-memory-mib", "8", "--cert-cn", "127.0.0.1"],
                data=data, input=PW)
    one_line_error(p, "init over an existing store")
    assert "other@example.com" not in run_cli(["user", "list"], data=data).stdout


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["user"],
    ["user", "frobnicate"],
    ["user", "add", "--email", "x@example.com"],
    ["user", "disable", "--email", "nobody@example.com"],
    ["user", "enable", "--email", "nobody@example.com"],
    ["tenant", "add", "Bad Name!"],
    ["tenant", "add", "demo"],
    ["user", "list", "--tenant", "no-such-tenant", "--bogus"],
])
def test_other_errors_are_one_line(data, args):
    p = run_cli(args, data=data, input=PW)
    one_line_error(p, " ".join(args))


def test_add_disable_enable_list(data):
    p = run_cli(["tenant", "add", "cli-co"], data=data)
    assert p.returncode == 0, p.stderr
    p = run_cli(["user", "add", "--tenant", "cli-co", "--email",
                 "Carol@Cli-Co.example", "--name", "Carol", "--roles",
                 "member", "--password-stdin"], data=data, input=PW)
    assert p.returncode == 0, p.stderr
    p = run_cli(["user", "list", "--tenant", "cli-co"], data=data)
    assert p.returncode == 0, p.stderr
    assert "carol@cli-co.example" in p.stdout      # stored normalised
    assert ADMIN_EMAIL not in p.stdout             # other tenant
    for cmd in ("disable", "enable"):
        p = run_cli(["user", cmd, "--email", "carol@cli-co.example"], data=data)
        assert p.returncode == 0, (cmd, p.stderr)


@pytest.mark.parametrize("args,stdin,ok", [
    (["user", "list"], None, True),
    (["tenant", "add", "leak-co"], None, True),
    (["user", "add", "--tenant", "demo", "--email", "leak@example.com",
      "--password-stdin"], PW, True),
    (["user", "disable", "--email", "leak@example.com"], None, True),
    (["user", "enable", "--email", "leak@example.com"], None, True),
    (["user", "add", "--tenant", "nope", "--email", "x@example.com",
      "--password-stdin"], PW, False),
])
def test_cli_has_no_leaks(data, args, stdin, ok):
    p = run_cli(args, data=data, input=stdin, leaks=True)   # fails on a report
    assert (p.returncode == 0) == ok, (args, p.returncode, p.stderr)


def test_init_has_no_leaks(tmp_path):
    p = run_cli(["init", "--admin-email", ADMIN_EMAIL, "--password-stdin",
                 "--argon2-passes", "1", "--argon2-memory-mib", "8",
                 "--cert-cn", "127.0.0.1"], data=str(tmp_path / "d"),
                input=PW, leaks=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("name", ["a\r\nX-Gatehouse-User: evil", "tab\there",
                                  "nul?\x01", "x" * 500])
def test_display_name_with_control_characters_is_refused(data, name):
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "ctl%d@example.com" % len(name), "--name", name,
                 "--password-stdin"], data=data, input=PW)
    one_line_error(p, "name %r" % name)


@pytest.mark.parametrize("roles", ["Admin", "a b", "a,,b", ",a", "a\r\nb",
                                   "x" * 300])
def test_bad_roles_are_refused(data, roles):
    p = run_cli(["user", "add", "--tenant", "demo", "--email",
                 "roles%d@example.com" % len(roles), "--roles", roles,
                 "--password-stdin"], data=data, input=PW)
    one_line_error(p, "roles %r" % roles)
