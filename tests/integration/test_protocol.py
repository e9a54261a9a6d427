#!/usr/bin/python3
"""SMTP server behaviour of sluice: greeting, EHLO, sequence and syntax
errors, limits, timeouts, pipelining and the per-transaction log line."""

import re
import time

from sluicetest import *

FAST_BACKEND = {"connect_timeout": "2s", "command_timeout": "2s",
                "data_timeout": "5s"}


# ---------------------------------------------------------------- helpers

def daemon(tmp, script=None, limits=None, listener=None):
    """relay() with short backend timeouts: (cap, s)."""
    return relay(tmp, script, limits=limits, listener=listener,
                 backend_options=dict(FAST_BACKEND))


def codes(replies):
    return [r.code for r in replies]


def expect_each(c, cases):
    """cases: (line, expected reply prefix) sent one at a time."""
    for line, want in cases:
        r = c.cmd(line)
        assert r.first.startswith(want), \
            "%r: expected %r, got %r" % (line, want, r.text)


def open_data(c):
    """MAIL, RCPT and DATA, each accepted: the message text may follow."""
    expect_each(c, [("MAIL FROM:<a@example.org>", "250"),
                    ("RCPT TO:<b@example.net>", "250"),
                    ("DATA", "354")])


def expect_timeout(c):
    """421 4.4.2 once a 1 s timeout ran out (not much sooner, nor much
    later), then the close."""
    t0 = time.monotonic()
    r = c.read_reply(timeout=scaled(5))
    waited = time.monotonic() - t0
    assert r.code == 421 and r.enhanced == "4.4.2", r.text
    assert 0.7 <= waited <= scaled(3), waited
    c.expect_closed(timeout=scaled(3))


# ---------------------------------------------------------------- greeting

def test_greeting_ehlo_helo_exact(tmp):
    with daemon(tmp, limits={"message_size": "1M"}) as (cap, s):
        with RawClient(s.port) as c:
            assert c.read_reply().raw == b"220 mx.test ESMTP sluice\r\n"
            r = c.cmd("EHLO client.test")
            assert r.raw == (b"250-mx.test\r\n"
                             b"250-PIPELINING\r\n"
                             b"250-SIZE 1048576\r\n"
                             b"250-8BITMIME\r\n"
                             b"250-ENHANCEDSTATUSCODES\r\n"
                             b"250-SMTPUTF8\r\n"
                             b"250 DSN\r\n"), r.raw
            assert c.cmd("HELO client.test").raw == b"250 mx.test\r\n"
            # lower case verbs are the same verbs
            assert c.cmd("ehlo other.test").code == 250
            assert c.cmd("QUIT").raw == b"221 2.0.0 Bye\r\n"
            c.expect_closed()
        with smtp_client(s.port) as c:
            code, _ = c.ehlo()
            assert code == 250
            assert set(c.esmtp_features) == {
                "pipelining", "size", "8bitmime", "enhancedstatuscodes",
                "smtputf8", "dsn"}, c.esmtp_features
            assert c.esmtp_features["size"] == "1048576"


def test_listener_hostname_and_banner(tmp):
    with daemon(tmp, limits={"message_size": 0},
                listener={"hostname": "edge.test",
                          "banner": "ESMTP ready"}) as (cap, s):
        with RawClient(s.port) as c:
            assert c.read_reply().raw == b"220 edge.test ESMTP ready\r\n"
            r = c.cmd("EHLO client.test")
            assert r.lines[0] == "edge.test"
            assert "SIZE 0" in r.lines, r.lines
            assert c.cmd("HELO client.test").raw == b"250 edge.test\r\n"


def test_helo_needs_argument(tmp):
    with daemon(tmp) as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            expect_each(c, [("EHLO", "501 5.5.4"), ("HELO", "501 5.5.4"),
                            ("HELO   ", "501 5.5.4"),
                            ("MAIL FROM:<a@example.org>", "503 5.5.1"),
                            ("HELO " + "h" * 256, "501 5.5.4"),
                            ("MAIL FROM:<a@example.org>", "503 5.5.1"),
                            ("HELO client.test", "250 mx.test")])


# ---------------------------------------------------------------- sequence

def test_command_sequence_errors(tmp):
    script = {"rules": [{"phase": "rcpt", "match": "nouser@",
                         "reply": "550 5.1.1 No such user"}]}
    with daemon(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            expect_each(c, [
                ("MAIL FROM:<a@example.org>", "503 5.5.1"),
                ("RCPT TO:<b@example.net>", "503 5.5.1"),
                ("DATA", "503 5.5.1"),
                ("EHLO client.test", "250"),
                ("RCPT TO:<b@example.net>", "503 5.5.1"),
                ("DATA", "503 5.5.1"),
                ("MAIL FROM:<a@example.org>", "250 2.1.0"),
                ("MAIL FROM:<a@example.org>", "503 5.5.1"),
                ("DATA", "554 5.5.1"),
                ("RCPT TO:<nouser@example.net>", "550 5.1.1 No such user"),
                ("DATA", "554 5.5.1"),
                ("DATA now", "501 5.5.4"),
                ("RCPT TO:<b@example.net>", "250 2.1.5"),
                ("DATA", "354"),
            ])
            c.send(b"Subject: seq\r\n\r\nbody\r\n.\r\n")
            c.expect("250 2.0.0")
            # after the message the transaction is over: MAIL works again
            expect_each(c, [("RCPT TO:<b@example.net>", "503 5.5.1"),
                            ("MAIL FROM:<a@example.org>", "250"),
                            ("RSET", "250 2.0.0"),
                            ("MAIL FROM:<a@example.org>", "250"),
                            ("HELO client.test", "250"),
                            ("RCPT TO:<b@example.net>", "503 5.5.1"),
                            ("QUIT", "221 2.0.0")])
        msgs = cap.wait_messages(1)
        assert len(msgs) == 1
        assert msgs[0].rcpts == ["b@example.net"]
        verbs = [c.split(" ", 1)[0].upper() for c in cap.commands()]
        # the nested MAIL and the refused DATAs never reached the backend
        assert verbs[:6] == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA",
                             "MAIL"], verbs
        assert verbs.count("DATA") == 1, verbs
        # RSET and HELO inside a transaction reset the backend too
        assert verbs[6:9] == ["RSET", "MAIL", "RSET"], verbs


# ---------------------------------------------------------------- syntax

MAIL_ERRORS = [
    ("MAIL FROM:a@example.org", "501 5.1.7"),             # no brackets
    ("MAIL FROM:<a@example.org", "501 5.1.7"),            # unclosed
    ("MAIL FROM <a@example.org>", "501 5.5.4"),           # no colon
    ("MAIL <a@example.org>", "501 5.5.4"),
    ("MAIL", "501 5.5.4"),
    ("MAIL TO:<a@example.org>", "501 5.5.4"),
    ("MAIL FROM:<a>", "501 5.1.7"),                       # no domain
    ("MAIL FROM:<a@>", "501 5.1.7"),
    ("MAIL FROM:<@example.org>", "501 5.1.7"),
    ("MAIL FROM:<a@exa_mple.org>", "501 5.1.7"),          # bad domain
    ("MAIL FROM:<a@-example.org>", "501 5.1.7"),
    ("MAIL FROM:<a@example-.org>", "501 5.1.7"),
    ("MAIL FROM:<a@example..org>", "501 5.1.7"),
    ("MAIL FROM:<a@example.org.>", "501 5.1.7"),          # trailing dot
    ("MAIL FROM:<a.@example.org>", "501 5.1.7"),
    ("MAIL FROM:<a@[300.1.2.3]>", "501 5.1.7"),           # bad literals
    ("MAIL FROM:<a@[1.2.3]>", "501 5.1.7"),
    ("MAIL FROM:<a@[IPv6:zz::1]>", "501 5.1.7"),
    ("MAIL FROM:<a@[]>", "501 5.1.7"),
    ("MAIL FROM:<a@[1.2.3.4>", "501 5.1.7"),
    ("MAIL FROM:<a@example.org>junk", "501 5.1.7"),
    ("MAIL FROM:<a b@example.org>", "501 5.1.7"),
    ("MAIL FROM:<j\u00f6rg@example.org>", "553 5.6.7"),   # UTF-8, no SMTPUTF8
    ("MAIL FROM:<a@ex\u00e4mple.org>", "553 5.6.7"),
    ("MAIL FROM:<\udcff@example.org> SMTPUTF8", "553 5.6.7"),  # not UTF-8
    ("MAIL FROM:<a@example.org> FOO=bar", "555 5.5.4"),   # unknown param
    ("MAIL FROM:<a@example.org> XYZ", "555 5.5.4"),
    ("MAIL FROM:<a@example.org> SIZE=1048577", "552 5.3.4"),
    ("MAIL FROM:<a@example.org> SIZE=9999999999999999999", "552 5.3.4"),
    ("MAIL FROM:<a@example.org> SIZE=99999999999999999999", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> SIZE=abc", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> SIZE", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> BODY=9BIT", "555 5.5.4"),
    ("MAIL FROM:<a@example.org> BODY=7BIT BODY=8BITMIME", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> SMTPUTF8=yes", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> RET=ALL", "501 5.5.4"),
    ("MAIL FROM:<a@example.org> ENVID=a+zz", "501 5.5.4"),
]

RCPT_ERRORS = [
    ("RCPT TO:<>", "501 5.1.3"),                          # <> as RCPT
    ("RCPT TO:b@example.net", "501 5.1.3"),               # no brackets
    ("RCPT TO <b@example.net>", "501 5.5.4"),             # no colon
    ("RCPT FROM:<b@example.net>", "501 5.5.4"),
    ("RCPT", "501 5.5.4"),
    ("RCPT TO:<b>", "501 5.1.3"),
    ("RCPT TO:<b@example.net.>", "501 5.1.3"),            # trailing dot
    ("RCPT TO:<b@exa_mple.net>", "501 5.1.3"),
    ("RCPT TO:<b@[1.2.3]>", "501 5.1.3"),                 # bad literal
    ("RCPT TO:<b@[IPv6:1::2::3]>", "501 5.1.3"),
    ("RCPT TO:<postmaster@>", "501 5.1.3"),
    ("RCPT TO:<@x.test:>", "501 5.1.3"),
    ("RCPT TO:<b\u00fc@example.net>", "553 5.6.7"),       # UTF-8 w/o SMTPUTF8
    ("RCPT TO:<b@example.net> FOO=1", "555 5.5.4"),
    ("RCPT TO:<b@example.net> SIZE=10", "555 5.5.4"),
    ("RCPT TO:<b@example.net> NOTIFY=", "501 5.1.3"),
    ("RCPT TO:<b@example.net> ORCPT=rfc822", "501 5.5.4"),
]


def test_malformed_mail_and_rcpt(tmp):
    with daemon(tmp, limits={"message_size": "1M", "errors": 1000}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            expect_each(c, MAIL_ERRORS)
            # nothing so far opened a transaction at the backend
            assert not any("MAIL" in conn.verbs()
                           for conn in cap.connections())
            expect_each(c, [("MAIL FROM:<>", "250 2.1.0")])
            expect_each(c, RCPT_ERRORS)
            expect_each(c, [("RCPT TO:<Postmaster>", "250"),
                            ("RCPT TO:<b@[127.0.0.1]>", "250"),
                            ("RCPT TO:<b@[IPv6:::1]>", "250"),
                            ("DATA", "354")])
            c.send(b"Subject: x\r\n\r\n.\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<>"
        # "postmaster" without a domain is case-insensitive (RFC 5321 4.5.1)
        assert m.rcpt_lines == ["RCPT TO:<postmaster>",
                                "RCPT TO:<b@[127.0.0.1]>",
                                "RCPT TO:<b@[IPv6:::1]>"], m.rcpt_lines


def test_parameters_after_helo(tmp):
    with daemon(tmp, limits={"errors": 100}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, verb="HELO")
            expect_each(c, [
                ("MAIL FROM:<a@example.org> BODY=8BITMIME", "555 5.5.4"),
                ("MAIL FROM:<a@example.org> SIZE=100", "555 5.5.4"),
                ("MAIL FROM:<a@example.org> RET=HDRS", "555 5.5.4"),
                # SMTPUTF8 needs EHLO: the address stays non-ASCII
                ("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8", "553 5.6.7"),
                ("MAIL FROM:<a@example.org>", "250"),
                # RCPT parameters need EHLO just as much
                ("RCPT TO:<b@example.net> NOTIFY=NEVER", "555 5.5.4"),
                ("RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net",
                 "555 5.5.4"),
                ("RCPT TO:<b@example.net>", "250"),
            ])
        cmds = cap.commands()
        assert [c for c in cmds if c.startswith(("MAIL", "RCPT"))] == [
            "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>"], cmds


def test_bad_bytes_in_commands(tmp):
    with daemon(tmp, limits={"errors": 100}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            for line in [b"NOOP\x00", b"NO\x00OP", b"\x00", b"NOOP \x01",
                         b"NOOP\x7f", b"NOOP\rx", b"\x1b[1mNOOP",
                         b"N\xc3\x96OP", b"\xff\xfe",
                         b"MAIL FROM:<a\x00@example.org>",
                         b"", b"   ", b"\t"]:
                c.send(line + b"\r\n")
                r = c.read_reply()
                assert r.code == 500 and r.enhanced == "5.5.2", \
                    "%r -> %r" % (line, r.text)
            for line in [b"FOO", b"FOO bar", b"MAIL\tFROM:<a@example.org>",
                         b"NOOPX", b"X" * 100]:
                r = c.cmd(line)
                assert r.first == "500 5.5.2 Error: command not recognized", \
                    "%r -> %r" % (line, r.text)
            # the session is still fine
            assert c.cmd("NOOP").raw == b"250 2.0.0 Ok\r\n"
            # a NUL inside a transaction is no command either
            assert c.cmd("MAIL FROM:<a@example.org>").code == 250
            c.send(b"RCPT TO:<b@example.net>\x00\r\n")
            c.expect("500 5.5.2")
            assert c.cmd("DATA").code == 554
        s.wait_log(r"error reason=nul_in_command client=127\.0\.0\.1",
                   since=mark)
        s.wait_log(r"error reason=bad_character client=127\.0\.0\.1",
                   since=mark)
        s.wait_log(r"error reason=unknown_command verb=FOO client=",
                   since=mark)
        assert not any("RCPT" in conn.verbs() for conn in cap.connections())


def test_http_request_closes(tmp):
    with daemon(tmp) as (cap, s):
        mark = s.log_mark()
        for req in (b"GET / HTTP/1.0\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: mx.test\r\n\r\n",
                    b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"):
            with RawClient(s.port) as c:
                c.expect(220)
                c.send(req)
                r = c.read_reply()
                assert r.code == 221 and r.enhanced == "2.7.0", r.text
                c.expect_closed()
        with RawClient(s.port) as c:
            hello(c)
            c.send(b"CONNECT mx.test:25 HTTP/1.1\r\nNOOP\r\n")
            c.expect("221 2.7.0")
            c.expect_closed()
        s.wait_log(r"disconnect reason=non_smtp_command client=127\.0\.0\.1",
                   since=mark)


def test_other_verbs(tmp):
    with daemon(tmp, limits={"errors": 100}) as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            expect_each(c, [
                ("VRFY postmaster", "252 2.5.0"),
                ("VRFY", "252 2.5.0"),
                ("HELP", "214 2.0.0"),
                ("HELP MAIL", "214 2.0.0"),
                ("EXPN staff", "502 5.5.1"),
                ("BDAT 0 LAST", "502 5.5.1"),
                ("STARTTLS", "502 5.5.1"),
                ("AUTH PLAIN AHVzZXIAcGFzcw==", "502 5.5.1"),
                ("AUTH LOGIN", "502 5.5.1"),
                ("XCLIENT ADDR=192.0.2.1", "502 5.5.1"),
                ("XFORWARD ADDR=192.0.2.1", "502 5.5.1"),
                ("NOOP", "250 2.0.0"),
                ("NOOP with some arguments", "250 2.0.0"),
                ("noop", "250 2.0.0"),
                ("RSET", "250 2.0.0"),
                ("RSET now", "501 5.5.4"),
                ("QUIT now", "501 5.5.4"),
                ("EHLO client.test", "250"),
                ("MAIL FROM:<a@example.org>", "250"),
                ("RSET", "250 2.0.0"),
                ("MAIL FROM:<a@example.org>", "250"),
                ("NOOP", "250 2.0.0"),
                ("RCPT TO:<b@example.net>", "250"),
            ])
            r = c.cmd("QUIT")
            assert r.raw == b"221 2.0.0 Bye\r\n"
            c.expect_closed()
        # the AUTH data went nowhere near the log
        assert "AHVzZXIAcGFzcw" not in s.log()
        assert cap.messages(include_incomplete=True) == []


# ---------------------------------------------------------------- line length

def test_overlong_command_lines(tmp):
    with daemon(tmp, limits={"command_line": 512, "errors": 100}) \
            as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            # exactly the limit (CRLF included) is fine, one more is not
            assert c.cmd("NOOP " + "x" * 505).code == 250
            r = c.cmd("NOOP " + "x" * 506)
            assert r.first == "500 5.5.2 Error: line too long", r.text
            assert c.cmd("NOOP").code == 250
            # with the line end in the same write: the tail ("QUIT") is
            # part of the long line, never a command
            c.send(b"X" * 600 + b"QUIT\r\nNOOP\r\n")
            assert codes(c.read_replies(2)) == [500, 250]
            # without the line end: refused at once, the rest skipped
            c.send(b"Y" * 600 + b"QUIT")
            c.expect("500 5.5.2")
            time.sleep(0.2)
            c.send(b" more QUIT\r\nNOOP\r\n")
            c.expect("250 2.0.0")
            # split so that the first part is under the limit
            c.send(b"NOOP " + b"z" * 400)
            time.sleep(0.2)
            c.send(b"z" * 200 + b"\r\nNOOP\r\n")
            assert codes(c.read_replies(2)) == [500, 250]
            # a huge line in one write: one 500, not one per chunk
            c.send(b"Z" * 200000)
            c.expect("500 5.5.2")
            c.send(b"QUIT\r\nNOOP\r\n")
            c.expect(250)
            # a line of exactly the limit arriving in pieces still passes
            c.send(b"NOOP " + b"w" * 505 + b"\r")
            time.sleep(0.2)
            c.send(b"\n")
            c.expect(250)
            r = c.cmd("QUIT")
            assert r.code == 221
            rest = c.read_until_closed()
            assert rest == b"", rest
            # replies after the greeting: exactly these, nothing more
            lines = [l for l in bytes(c.received).split(b"\r\n") if l]
            assert [l[:3] for l in lines if not l.startswith(b"250-")] == \
                [b"220", b"250", b"250", b"500", b"250", b"500", b"250",
                 b"500", b"250", b"500", b"250", b"500", b"250", b"250",
                 b"221"], lines
        s.wait_log(r"error reason=line_too_long limit=512 client=", since=mark)


def test_overlong_line_in_transaction(tmp):
    with daemon(tmp, limits={"command_line": 1024, "errors": 100}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            c.cmd("MAIL FROM:<a@example.org>")
            r = c.cmd("RCPT TO:<" + "b" * 1100 + "@example.net>")
            assert r.first.startswith("500 5.5.2"), r.text
            c.send(b"RCPT TO:<" + b"c" * 1100 + b"\r\nDATA\r\n")
            assert codes(c.read_replies(2)) == [500, 554]
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"x\r\n.\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>"]


# ---------------------------------------------------------------- limits

def test_errors_limit_closes(tmp):
    with daemon(tmp, limits={"errors": 3}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            c.expect(220)
            c.send(b"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nNOOP\r\n")
            replies = read_all_replies(c)
            assert codes(replies) == [500, 500, 500, 421], \
                [r.text for r in replies]
            assert replies[3].enhanced == "4.7.0"
        s.wait_log(r"disconnect reason=too_many_errors errors=3 "
                   r"client=127\.0\.0\.1", since=mark)
        # different kinds of error count together
        with RawClient(s.port) as c:
            c.expect(220)
            assert c.cmd("MAIL FROM:<a@example.org>").code == 503
            assert c.cmd("EHLO client.test").code == 250
            assert c.cmd("MAIL FROM:a@example.org").code == 501
            assert c.cmd("NOOP").code == 250
            c.send(b"EXPN x\r\nNOOP\r\n")
            replies = read_all_replies(c)
            assert codes(replies) == [502, 421], [r.text for r in replies]


def test_recipients_limit(tmp):
    with daemon(tmp, limits={"recipients": 2}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            expect_each(c, [("MAIL FROM:<a@example.org>", "250"),
                            ("RCPT TO:<r1@example.net>", "250"),
                            ("RCPT TO:<r2@example.net>", "250"),
                            ("RCPT TO:<r3@example.net>", "452 4.5.3"),
                            ("RCPT TO:<r4@example.net>", "452 4.5.3"),
                            ("DATA", "354")])
            c.send(b"Subject: r\r\n\r\nx\r\n.\r\n")
            c.expect(250)
            # the next transaction starts counting from zero
            expect_each(c, [("MAIL FROM:<a@example.org>", "250"),
                            ("RCPT TO:<r5@example.net>", "250"),
                            ("RCPT TO:<r6@example.net>", "250"),
                            ("RCPT TO:<r7@example.net>", "452 4.5.3")])
        m = cap.wait_messages(1)[0]
        assert m.rcpts == ["r1@example.net", "r2@example.net"]
        assert m.rcpt_lines == ["RCPT TO:<r1@example.net>",
                                "RCPT TO:<r2@example.net>"]


# ---------------------------------------------------------------- timeouts

def test_idle_timeout(tmp):
    with daemon(tmp, limits={"idle_timeout": "1s"}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            c.expect(220)
            # each command restarts the clock
            for _ in range(4):
                time.sleep(0.5)
                assert c.cmd("NOOP").code == 250
            expect_timeout(c)
        s.wait_log(r"timeout phase=command client=127\.0\.0\.1", since=mark)


def test_data_timeout_delivers_nothing(tmp):
    with daemon(tmp, limits={"data_timeout": "1s",
                             "idle_timeout": "30s"}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            open_data(c)
            c.send(b"Subject: stalled\r\n\r\nthe client stops mid-li")
            expect_timeout(c)
        s.wait_log(r"timeout phase=data client=127\.0\.0\.1", since=mark)
        s.wait_log(r"done txn=1 result=aborted ", since=mark)
        time.sleep(0.3)
        assert cap.messages(include_incomplete=True) == []
        assert not any("DATA" in conn.verbs() for conn in cap.connections())


def test_data_time_limit(tmp):
    with daemon(tmp, limits={"data_time_limit": "2s",
                             "data_timeout": "10s"}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            open_data(c)
            t0 = time.monotonic()
            c.send(b"Subject: trickle\r\n\r\n")
            reply = None
            for _ in range(40):  # 40 * 0.25 s at most
                try:
                    c.send(b"x\r\n")
                except OSError:
                    break
                try:
                    reply = c.read_reply(timeout=0.25)
                    break
                except ReplyTimeout:
                    continue
                except ConnectionClosed:
                    break
            if reply is None:
                reply = c.read_reply(timeout=scaled(2))
            waited = time.monotonic() - t0
            assert reply.code == 421 and reply.enhanced == "4.4.2", \
                reply.text
            assert "time limit" in reply.text, reply.text
            assert 1.7 <= waited <= scaled(5), waited
            c.read_until_closed(timeout=scaled(3))
        s.wait_log(r"timeout phase=data limit=data_time_limit "
                   r"client=127\.0\.0\.1", since=mark)
        time.sleep(0.3)
        assert cap.messages(include_incomplete=True) == []


# ---------------------------------------------------------------- pipelining

def test_whole_transaction_in_one_write(tmp):
    body = b"Subject: pipelined\r\n\r\nline 1\r\n..line 2\r\n"
    with daemon(tmp) as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            c.send(b"EHLO client.test\r\n"
                   b"MAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<b@example.net>\r\n"
                   b"RCPT TO:<c@example.net>\r\n"
                   b"DATA\r\n" + body + b".\r\n"
                   b"QUIT\r\n")
            replies = read_all_replies(c)
        assert codes(replies) == [250, 250, 250, 250, 354, 250, 221], \
            [r.text for r in replies]
        assert len(replies[0].lines) == 7          # the EHLO reply
        assert replies[1].enhanced == "2.1.0"
        assert replies[2].enhanced == replies[3].enhanced == "2.1.5"
        assert re.match(r"^2\.0\.0 Ok: queued as C\d+T1$", replies[5].lines[0])
        m, = cap.wait_messages(1)
        assert m.rcpts == ["b@example.net", "c@example.net"]
        assert m.data.endswith(body)
        assert m.data.count(b"Received:") == 1


def test_two_transactions_in_one_write(tmp):
    with daemon(tmp) as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            one = (b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                   b"RCPT TO:<bad@example.net>\r\nDATA\r\n"
                   b"Subject: one\r\n\r\n1\r\n.\r\n")
            two = (b"MAIL FROM:<x@example.org>\r\nRCPT TO:<y@example.net>\r\n"
                   b"DATA\r\nSubject: two\r\n\r\n2\r\n.\r\n")
            c.send(b"EHLO client.test\r\n" + one + b"NOOP\r\nRSET\r\n" +
                   two + b"QUIT\r\n")
            replies = read_all_replies(c)
        assert codes(replies) == [250, 250, 250, 250, 354, 250, 250, 250,
                                  250, 250, 354, 250, 221], \
            [r.text for r in replies]
        msgs = cap.wait_messages(2)
        assert [m.mail_from for m in msgs] == ["a@example.org",
                                               "x@example.org"]
        assert msgs[0].data.endswith(b"Subject: one\r\n\r\n1\r\n")
        assert msgs[1].data.endswith(b"Subject: two\r\n\r\n2\r\n")


# ---------------------------------------------------------------- log

DONE = (r"(?m)^\S+ sluice\[\d+\]: (?P<sid>[0-9a-f]{16}) done txn=%d "
        r"result=%s client=127\.0\.0\.1 helo=client\.test from=<%s> "
        r"rcpts=%s nrcpt=%d size=%d filters=\"\" backend=%s "
        r"time=\d+\.\d{3}ms$")


def test_done_log_line(tmp):
    body = b"Subject: logged\r\n\r\nsome text\r\n"
    script = {"rules": [{"phase": "data_end", "match": "SPAM-MARK",
                         "reply": "554 5.7.1 Looks like spam"}]}
    with daemon(tmp, script=script) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            port = c.sock.getsockname()[1]
            expect_each(c, [("MAIL FROM:<a@example.org>", "250"),
                            ("RCPT TO:<b@example.net>", "250"),
                            ("RCPT TO:<c@example.net>", "250"),
                            ("DATA", "354")])
            c.send(body + b".\r\n")
            qid = re.search(r"queued as (C\d+T\d+)", c.expect(250).text)[1]
            expect_each(c, [("MAIL FROM:<>", "250"),
                            ("RCPT TO:<d@example.net>", "250"),
                            ("RSET", "250")])
            spam = b"Subject: SPAM-MARK\r\n\r\nbuy\r\n"
            expect_each(c, [("MAIL FROM:<e@example.org>", "250"),
                            ("RCPT TO:<f@example.net>", "250"),
                            ("DATA", "354")])
            c.send(spam + b".\r\n")
            c.expect("554 5.7.1 Looks like spam")
            c.cmd("QUIT")
        m1 = s.wait_log(DONE % (1, "accepted", r"a@example\.org",
                                r"<b@example\.net>,<c@example\.net>", 2,
                                len(body),
                                r"\"250 2\.0\.0 Ok: queued as %s\"" % qid),
                        since=mark)
        m2 = s.wait_log(DONE % (2, "aborted", "", r"<d@example\.net>", 1, 0,
                                "-"), since=mark)
        m3 = s.wait_log(DONE % (3, "rejected", r"e@example\.org",
                                r"<f@example\.net>", 1, len(spam),
                                r"\"554 5\.7\.1 Looks like spam\""),
                        since=mark)
        sid = m1["sid"]
        assert m2["sid"] == sid and m3["sid"] == sid
        # the same session id as the connection it belongs to
        s.wait_log(r"%s connect client=127\.0\.0\.1 port=%d listener=in "
                   r"local=127\.0\.0\.1:%d" % (sid, port, s.port), since=mark)
        s.wait_log(r"%s close client=127\.0\.0\.1 transactions=3 errors=1 "
                   r"time=" % sid, since=mark)


run_tests(globals())
