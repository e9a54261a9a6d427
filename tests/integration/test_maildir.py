#!/usr/bin/python3
"""The embedded maildir backend: one file per accepted message in new/,
Return-Path first, LF line ends, dot-stuffing undone, named in the 250
reply; a maildir that cannot be written gives 451, never 250."""

import re
import subprocess
from pathlib import Path

from sluicetest import *

NAME = re.compile(r"^\d+\.M\d+P\d+Q\d+\.mx\.test$")


# ---------------------------------------------------------------- helpers

def maildir_config(maildir, listener=None):
    lst = {"listen": ["127.0.0.1:%d" % free_port()], "backend": "md"}
    lst.update(listener or {})
    be = {"type": "maildir", "maildir": str(maildir)}
    return {"listeners": {"in": lst}, "backends": {"md": be},
            "globals": standard_globals()}


def start(tmp, listener=None, maildir=None):
    """The daemon in front of tmp/mail/Maildir (or maildir)."""
    if maildir is None:
        maildir = give_to_daemon(tmp / "mail") / "Maildir"
    return Sluice(maildir_config(maildir, listener), tmp / "sluice"), maildir


def listing(maildir, sub):
    d = Path(maildir) / sub
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def delivered_name(text):
    m = re.search(r"delivered as (\S+)$", text)
    assert m, "no file name in %r" % text
    assert NAME.match(m[1]), m[1]
    return m[1]


def smtplib_deliver(c, mail, rcpts, data):
    """MAIL/RCPT/DATA through smtplib (which dot-stuffs); (code, text)."""
    code, resp = c.mail(mail)
    assert code == 250, resp
    for r in rcpts:
        code, resp = c.rcpt(r)
        assert code == 250, resp
    code, resp = c.data(data)
    return code, resp.decode("utf-8", "replace")


# ---------------------------------------------------------------- delivery

def test_smtplib_delivery(tmp):
    data = (b"Subject: maildir test\r\nFrom: <a@example.org>\r\n\r\n"
            b".leading dot\r\n..two dots\r\n.\r\nplain \xc3\xa9\r\n"
            b"last line\r\n")
    s, maildir = start(tmp, listener={"received_header": False})
    with s:
        mark = s.log_mark()
        with smtp_client(s.port) as c:
            c.ehlo()
            code, text = smtplib_deliver(c, "a@example.org",
                                         ["b@example.net", "c@example.net"],
                                         data)
            assert code == 250, text
            assert text.startswith("2.0.0 Ok: delivered as "), text
            name = delivered_name(text)
        assert listing(maildir, "new") == [name]
        assert listing(maildir, "tmp") == []
        assert listing(maildir, "cur") == []
        got = (maildir / "new" / name).read_bytes()
        assert got == (b"Return-Path: <a@example.org>\n"
                       b"Subject: maildir test\nFrom: <a@example.org>\n\n"
                       b".leading dot\n..two dots\n.\nplain \xc3\xa9\n"
                       b"last line\n"), got
        s.wait_log(r"delivered maildir=%s file=%s" % (
            re.escape(str(maildir)), re.escape(name)), since=mark)
        s.wait_log(r"done txn=1 result=accepted client=127\.0\.0\.1 "
                   r"helo=client\.test from=<a@example\.org> "
                   r"rcpts=<b@example\.net>,<c@example\.net> nrcpt=2 "
                   r"size=\d+ filters=\"\" "
                   r"backend=\"250 2\.0\.0 Ok: delivered as %s\" "
                   % re.escape(name), since=mark)


def test_raw_wire_forms(tmp):
    """Exact wire bytes in, exact file out: stuffing undone only where a
    line starts with a dot, CRLF made LF, nothing else touched."""
    cases = [
        (b"..x\r\n..\r\n...\r\n.\r\n", b".x\n.\n..\n"),
        (b".\r\n", b""),
        (b"abc\r\n.\r\n", b"abc\n"),
        (b"Subject: h\r\nX: y\r\n.\r\n", b"Subject: h\nX: y\n"),
        (b"a\x00b\xff\r\n\r\n\r\n.\r\n", b"a\x00b\xff\n\n\n"),
        (b"tab\t \r\n x. .\r\n.\r\n", b"tab\t \n x. .\n"),
    ]
    s, maildir = start(tmp, listener={"received_header": False})
    with s:
        names = []
        with RawClient(s.port) as c:
            c.expect(220)
            c.cmd("EHLO client.test")
            for wire, _ in cases:
                assert c.cmd("MAIL FROM:<a@example.org>").code == 250
                assert c.cmd("RCPT TO:<b@example.net>").code == 250
                assert c.cmd("DATA").code == 354
                c.send(wire)
                r = c.read_reply()
                assert r.code == 250 and r.enhanced == "2.0.0", r.text
                names.append(delivered_name(r.text))
            assert c.cmd("MAIL FROM:<>").code == 250
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
            r = c.read_reply()
            assert r.code == 250
            bounce = delivered_name(r.text)
        assert len(set(names + [bounce])) == len(cases) + 1
        assert listing(maildir, "new") == sorted(names + [bounce])
        assert listing(maildir, "tmp") == []
        for name, (wire, want) in zip(names, cases):
            got = (maildir / "new" / name).read_bytes()
            assert got == b"Return-Path: <a@example.org>\n" + want, \
                (wire, got)
        assert (maildir / "new" / bounce).read_bytes() == \
            b"Return-Path: <>\nSubject: bounce\n\nx\n"


def test_received_header_in_maildir(tmp):
    s, maildir = start(tmp)
    with s:
        with smtp_client(s.port) as c:
            c.ehlo()
            code, text = smtplib_deliver(c, "a@example.org",
                                         ["b@example.net"],
                                         b"Subject: r\r\n\r\nbody\r\n")
            assert code == 250, text
            name = delivered_name(text)
        got = (maildir / "new" / name).read_bytes()
        assert b"\r" not in got, got
        assert re.match(
            rb"^Return-Path: <a@example\.org>\n"
            rb"Received: from client\.test \(localhost \[127\.0\.0\.1\]\)\n"
            rb"\tby mx\.test \(sluice\) with ESMTP id [0-9a-f]{16}\.1\n"
            rb"\tfor <b@example\.net>;\n"
            rb"\t\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\n"
            rb"Subject: r\n\nbody\n\Z", got), got


def test_one_file_per_message(tmp):
    s, maildir = start(tmp, listener={"received_header": False})
    with s:
        names = []
        with smtp_client(s.port) as c:
            c.ehlo()
            for i in range(5):
                code, text = smtplib_deliver(
                    c, "s%d@example.org" % i, ["b@example.net"],
                    b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i))
                assert code == 250, text
                names.append(delivered_name(text))
            # a refused transaction leaves no file
            c.mail("x@example.org")
            c.rcpt("b@example.net")
            c.rset()
        assert len(set(names)) == 5
        assert listing(maildir, "new") == sorted(names)
        assert listing(maildir, "tmp") == []
        for i, name in enumerate(names):
            assert (maildir / "new" / name).read_bytes() == (
                b"Return-Path: <s%d@example.org>\nSubject: %d\n\n"
                b"message %d\n" % (i, i, i))


def test_swaks_delivery(tmp):
    need_program("/usr/bin/swaks")
    s, maildir = start(tmp, listener={"received_header": False})
    with s:
        rc, out = swaks("--server", "127.0.0.1", "--port", s.port,
                        "--helo", "client.test", "--from", "a@example.org",
                        "--to", "b@example.net",
                        "--header", "Subject: from swaks",
                        "--body", ".dot line\nsecond line",
                        timeout=scaled(30))
        assert rc == 0, out
        m = re.search(r"(?m)^<[-~]  250 2\.0\.0 Ok: delivered as (\S+)$", out)
        assert m, out
        name = m[1]
        assert NAME.match(name), name
        assert listing(maildir, "new") == [name]
        assert listing(maildir, "tmp") == []
        got = (maildir / "new" / name).read_bytes()
        assert got.startswith(b"Return-Path: <a@example.org>\n"), got
        assert b"\r" not in got, got
        assert b"\nSubject: from swaks\n" in got, got
        # swaks stuffed the dot; the file has it once
        assert b"\n\n.dot line\nsecond line\n" in got, got
        assert b"..dot line" not in got


# ---------------------------------------------------------------- failures

def refused_delivery(port, tries=2):
    """Deliver a message, expecting 451 4.3.0 each time."""
    with smtp_client(port) as c:
        c.ehlo()
        for _ in range(tries):
            code, text = smtplib_deliver(c, "a@example.org",
                                         ["b@example.net"],
                                         b"Subject: nope\r\n\r\nx\r\n")
            assert (code, text[:5]) == (451, "4.3.0"), (code, text)


def test_unwritable_new_dir(tmp):
    s, maildir = start(tmp)
    for sub in ("", "tmp", "new", "cur"):
        give_to_daemon(maildir / sub if sub else maildir)
    (maildir / "new").chmod(0)
    try:
        with s:
            mark = s.log_mark()
            refused_delivery(s.port)
            s.wait_log(r"maildir delivery to %s failed" %
                       re.escape(str(maildir)), since=mark)
            s.wait_log(r"done txn=1 result=tempfail ", since=mark)
            (maildir / "new").chmod(0o700)
            assert listing(maildir, "new") == []
            assert listing(maildir, "tmp") == []
            # once it is writable again, delivery works
            with smtp_client(s.port) as c:
                c.ehlo()
                code, text = smtplib_deliver(c, "a@example.org",
                                             ["b@example.net"],
                                             b"Subject: ok\r\n\r\nx\r\n")
                assert code == 250, text
                assert listing(maildir, "new") == [delivered_name(text)]
    finally:
        (maildir / "new").chmod(0o700)


def test_unwritable_tmp_dir(tmp):
    s, maildir = start(tmp)
    for sub in ("", "tmp", "new", "cur"):
        give_to_daemon(maildir / sub if sub else maildir)
    (maildir / "tmp").chmod(0o500)
    try:
        with s:
            refused_delivery(s.port)
            assert listing(maildir, "new") == []
    finally:
        (maildir / "tmp").chmod(0o700)


def test_maildir_under_a_file(tmp):
    blocker = tmp / "afile"
    blocker.write_bytes(b"not a directory\n")
    s, maildir = start(tmp, maildir=blocker / "Maildir")
    with s:
        mark = s.log_mark()
        refused_delivery(s.port)
        s.wait_log(r"maildir delivery to .*afile/Maildir failed", since=mark)
        assert blocker.read_bytes() == b"not a directory\n"


def test_maildir_created_on_first_delivery(tmp):
    s, maildir = start(tmp, listener={"received_header": False})
    assert not maildir.exists()
    with s:
        with smtp_client(s.port) as c:
            c.ehlo()
            code, text = smtplib_deliver(c, "a@example.org",
                                         ["b@example.net"],
                                         b"Subject: first\r\n\r\nx\r\n")
            assert code == 250, text
        assert sorted(p.name for p in maildir.iterdir()) == \
            ["cur", "new", "tmp"]
        assert listing(maildir, "new") == [delivered_name(text)]


# ---------------------------------------------------------------- quickstart

def test_quickstart_config_checks(tmp):
    conf = HERE.parent.parent / "conf" / "quickstart.conf"
    if not conf.exists():
        skip("%s does not exist" % conf)
    binary = sluice_binary()
    if not binary.exists():
        raise HardError("%s does not exist: build it (make) or set "
                        "SLUICE_BIN" % binary)
    p = subprocess.run([str(binary), "-t", "-c", str(conf)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=scaled(30),
                       cwd=str(tmp))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "configuration is valid" in out, out
    # sluice -o shows its maildir backend
    p = subprocess.run([str(binary), "-o", "-c", str(conf)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=scaled(30),
                       cwd=str(tmp))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "(maildir /var/tmp/sluice-quickstart/Maildir)" in out, out


run_tests(globals())
