#!/usr/bin/python3
"""Tests of the integration harness itself: capture_server.py and
sluicetest.py.  Needs no sluice binary (the Sluice class is exercised
against a small fake daemon)."""

import base64
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from sluicetest import *
import sluicetest

EHLO = b"EHLO client.test\r\n"


def open_transaction(c, mail="MAIL FROM:<a@example.org>",
                     rcpts=("RCPT TO:<b@example.net>",)):
    c.expect(220)
    c.send(EHLO)
    c.expect(250)
    c.send(mail.encode() + b"\r\n")
    c.expect(250)
    for r in rcpts:
        c.send(r.encode() + b"\r\n")
        c.expect(250)
    c.send(b"DATA\r\n")
    c.expect(354)


def import_capture_server():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "capture_server", HERE / "capture_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- bytes

TRICKY_BODY = (
    b"Subject: tricky\r\n"
    b"X-Eight: caf\xc3\xa9 \x80\xff\xfe\r\n"
    b"\r\n"
    b"..a dot-stuffed line\r\n"
    b"..\r\n"  # a line that is one dot, stuffed
    b"...\r\n"
    + b"x" * 998 + b"\r\n" +  # the longest legal line
    b"bare LF then dot\n.\r\n"  # not a terminator
    b"CRLF dot LF\r\n.\n"  # not a terminator either
    b"lone CR\r.\r\n"
    b"NUL \x00 byte\r\n"
    b"the last line; its CRLF is the one before the dot\r\n")


def test_byte_exact(tmp):
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            open_transaction(c, "MAIL FROM:<a@example.org> BODY=8BITMIME "
                             "SIZE=4096", ["RCPT TO:<b@example.net> "
                                           "NOTIFY=NEVER", "rcpt to:<c@x>"])
            c.send(TRICKY_BODY + b".\r\n")
            c.expect("250 2.0.0")
            c.send(b"QUIT\r\n")
            c.expect(221)
            c.expect_closed()
        m, = cap.wait_messages(1)
        assert m.data == TRICKY_BODY, (m.data, TRICKY_BODY)
        eml = (cap.outdir / m.rec["eml"]).read_bytes()
        assert eml == TRICKY_BODY
        assert m.size == len(TRICKY_BODY) and not m.truncated
        assert m.mail == "MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=4096"
        assert m.mail_from == "a@example.org"
        assert m.mail_params == "BODY=8BITMIME SIZE=4096"
        assert m.rcpt_lines == ["RCPT TO:<b@example.net> NOTIFY=NEVER",
                                "rcpt to:<c@x>"]
        assert m.rcpts == ["b@example.net", "c@x"]
        assert m.helo == "EHLO client.test"
        assert m.reply.startswith("250 ") and m.accepted
        assert m.unstuffed().startswith(b"Subject: tricky\r\n")
        assert b"\r\n.a dot-stuffed line\r\n.\r\n..\r\n" in m.unstuffed()
        conn, = cap.wait_connections(1, closed=True)
        assert conn.close_reason == "quit"
        assert conn.transcript.endswith(TRICKY_BODY + b".\r\nQUIT\r\n")
        assert conn.verbs() == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA",
                                "QUIT"]
        assert conn.messages == [m.serial]


def test_empty_and_minimal_messages(tmp):
    """.CRLF right after 354 is an empty message; the CRLF before the dot
    belongs to the message."""
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            open_transaction(c)
            c.send(b".\r\n")
            c.expect(250)
            c.send(b"MAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\n")
            c.expect(250)
            c.expect(250)
            c.expect(354)
            c.send(b"abc\r\n.\r\n")
            c.expect(250)
        a, b = cap.wait_messages(2)
        assert a.data == b"" and a.size == 0
        assert b.data == b"abc\r\n" and b.mail_from == ""


def feed_pieces(scanner, pieces):
    """Feed pieces until the scanner finds the end: (consumed, length)."""
    pos = 0
    for piece in pieces:
        off = 0
        while off < len(piece):
            consumed, length = scanner.feed(piece[off:])
            off += consumed
            pos += consumed
            if length is not None:
                return pos, length
    return pos, None


def test_scanner_every_split():
    """The terminator is found wherever the stream is cut: at every single
    cut, byte by byte, and in random pieces."""
    import random
    cs = import_capture_server()
    rng = random.Random(7)
    streams = [b".\r\n", b"a\r\n.\r\n", TRICKY_BODY + b".\r\nNEXT",
               b"\r\n.\r\n", b"x\r\n.\rn\r\n.\r\nQUIT\r\n",
               b"\n.\r\n\r\n.\r\n", b"..\r\n.\r\n"]
    for stream in streams:
        p = (b"\r\n" + stream).find(b"\r\n.\r\n")
        want = (p + 3, p)  # (bytes consumed, message length)
        splits = [[stream[:c], stream[c:]] for c in range(len(stream) + 1)]
        splits.append([stream[i:i + 1] for i in range(len(stream))])
        for _ in range(50):
            cuts = sorted(rng.sample(range(len(stream) + 1),
                                     min(5, len(stream))))
            splits.append([stream[a:b] for a, b in
                           zip([0] + cuts, cuts + [len(stream)])])
        for pieces in splits:
            got = feed_pieces(cs.DataScanner(), pieces)
            assert got == want, (stream, pieces, got, want)


def test_byte_by_byte_over_tcp(tmp):
    body = b"Subject: slow\r\n\r\n..\r\n..x\r\nend\r"
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            open_transaction(c)
            wire = body + b"\n.\r\n"
            for i in range(len(wire)):
                c.send(wire[i:i + 1])
                time.sleep(0.002)
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.data == body + b"\n", m.data


def test_truncation_is_noted(tmp):
    with Capture(tmp / "cap", max_bytes=1000) as cap:
        body = b"y" * 78 + b"\r\n"
        with RawClient(cap.port) as c:
            open_transaction(c)
            c.send(body * 100 + b".\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.truncated and m.size == 8000 and len(m.data) == 1000
        assert m.data == (body * 100)[:1000]


# ---------------------------------------------------------------- LMTP

def test_lmtp_per_recipient_replies(tmp):
    script = {"rules": [
        {"phase": "rcpt", "match": "nouser@",
         "reply": "550 5.1.1 No such user"},
        {"phase": "data_end_rcpt", "match": "full@",
         "reply": "452 4.2.2 Mailbox full"},
    ]}
    with Capture(tmp / "cap", lmtp=True, script=script) as cap:
        with RawClient(cap.port) as c:
            greet = c.expect(220)
            assert "LMTP" in greet.text
            c.send(EHLO)
            c.expect(500)  # LMTP wants LHLO
            c.send(b"LHLO client.test\r\n")
            c.expect(250)
            c.send(b"MAIL FROM:<a@x>\r\n")
            c.expect(250)
            for r, code in ((b"ok1@x", 250), (b"nouser@x", 550),
                            (b"full@x", 250), (b"ok2@x", 250)):
                c.send(b"RCPT TO:<" + r + b">\r\n")
                c.expect(code)
            c.send(b"DATA\r\n")
            c.expect(354)
            c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n")
            r1, r2, r3 = c.read_replies(3)
            assert r1.code == 250 and "<ok1@x>" in r1.text
            assert r2.code == 452 and r2.enhanced == "4.2.2"
            assert r3.code == 250 and "<ok2@x>" in r3.text
            c.send(b"NOOP\r\n")
            c.expect(250)  # exactly three, nothing more
        m, = cap.wait_messages(1)
        assert m.lmtp and m.rcpts == ["ok1@x", "full@x", "ok2@x"]
        assert [r[:3] for r in m.reply] == ["250", "452", "250"]
        assert not m.accepted
        assert m.rcpt_records[1]["reply"] == "550 5.1.1 No such user"


# ---------------------------------------------------------------- script

def test_reject_by_rcpt_with_smtplib(tmp):
    script = {"rules": [{"phase": "rcpt", "match": "reject@",
                         "reply": "550 5.1.1 No such user"}]}
    with Capture(tmp / "cap", script=script) as cap:
        with smtp_client(cap.port) as c:
            refused = c.sendmail("a@x", ["ok@y", "Reject@y"],
                                 b"Subject: r\r\n\r\nbody\r\n")
        assert refused == {"Reject@y": (550, b"5.1.1 No such user")}
        m, = cap.wait_messages(1)
        assert m.rcpts == ["ok@y"]
        assert [r["accepted"] for r in m.rcpt_records] == [True, False]


def test_data_end_451(tmp):
    script = {"rules": [{"phase": "data_end",
                         "reply": "451 4.3.0 Try again later"}]}
    with Capture(tmp / "cap", script=script) as cap:
        with smtp_client(cap.port) as c:
            try:
                c.sendmail("a@x", ["b@y"], b"Subject: t\r\n\r\nx\r\n")
                raise AssertionError("451 not raised")
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 451
        m, = cap.wait_messages(1)
        assert m.complete and m.reply == "451 4.3.0 Try again later"
        assert not m.accepted


def test_drop_mid_data(tmp):
    script = {"rules": [{"phase": "mid_data", "after_bytes": 100,
                         "action": "drop"}]}
    with Capture(tmp / "cap", script=script) as cap:
        with RawClient(cap.port) as c:
            open_transaction(c)
            try:
                c.send(b"z" * 78 + b"\r\n" + b"q" * 900 + b"\r\n")
            except OSError:
                pass
            c.expect_closed()
        m, = cap.wait_messages(1, include_incomplete=True)
        assert not m.complete and m.size == 100 and m.reply is None
        assert m.data == (b"z" * 78 + b"\r\n" + b"q" * 900)[:100]
        assert cap.messages() == []
        conn, = cap.wait_connections(1, closed=True)
        assert conn.close_reason == "drop"


def test_drop_after_dot_and_rst(tmp):
    script = {"rules": [{"phase": "data_end", "action": "drop",
                         "rst": True}]}
    with Capture(tmp / "cap", script=script) as cap:
        with RawClient(cap.port) as c:
            open_transaction(c)
            c.send(b"x\r\n.\r\n")
            try:
                c.read_reply()
                raise AssertionError("got a reply")
            except ConnectionClosed:
                pass
        m, = cap.wait_messages(1)
        assert m.complete and m.reply is None and not m.accepted


def test_hang_client_times_out(tmp):
    script = {"rules": [{"phase": "mail", "action": "hang"}]}
    with Capture(tmp / "cap", script=script) as cap:
        with RawClient(cap.port, timeout=1) as c:
            c.expect(220)
            c.send(EHLO)
            c.expect(250)
            c.send(b"MAIL FROM:<a@x>\r\n")
            t0 = time.monotonic()
            try:
                c.read_reply()
                raise AssertionError("got a reply from a hanging server")
            except ReplyTimeout:
                pass
            elapsed = time.monotonic() - t0
            assert 0.9 < elapsed < 3, elapsed
            c.send(b"NOOP\r\n")
            try:
                c.read_reply(timeout=0.3)
                raise AssertionError("hang answered NOOP")
            except ReplyTimeout:
                pass
        conn, = cap.wait_connections(1, closed=True)
        assert conn.transcript.endswith(b"MAIL FROM:<a@x>\r\nNOOP\r\n")
        assert any(e["ev"] == "action" and e.get("text") == "hang"
                   for e in conn.events)


def test_garbage_reply(tmp):
    junk = "\x00garbage\xff\r\n"
    script = {"rules": [{"phase": "rcpt", "action": "garbage",
                         "bytes": junk},
                        {"phase": "rset", "action": "garbage",
                         "bytes_b64": base64.b64encode(b"2").decode(),
                         "close": True}]}
    with Capture(tmp / "cap", script=script) as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO + b"MAIL FROM:<a@x>\r\n")
            c.read_replies(2)
            c.send(b"RCPT TO:<b@y>\r\n")
            try:
                c.read_reply()
                raise AssertionError("garbage parsed as a reply")
            except ProtocolError:
                pass
            assert c.received.endswith(junk.encode("latin-1"))
            c.buf.clear()
            c.send(b"RSET\r\n")
            assert c.read_until_closed() == b"2"


def test_delays_and_greeting_delay(tmp):
    script = {"greeting_delay": 0.4,
              "rules": [{"phase": "rcpt", "delay": 0.3}]}
    with Capture(tmp / "cap", script=script) as cap:
        t0 = time.monotonic()
        with RawClient(cap.port) as c:
            c.expect(220)
            assert time.monotonic() - t0 >= 0.4
            c.send(EHLO + b"MAIL FROM:<a@x>\r\n")
            c.read_replies(2)
            t1 = time.monotonic()
            c.send(b"RCPT TO:<b@y>\r\n")
            c.expect("250 2.1.5")
            assert time.monotonic() - t1 >= 0.3


def test_refuse_connections(tmp):
    with Capture(tmp / "cap",
                 script={"rules": [{"phase": "connect",
                                    "action": "drop"}]}) as cap:
        with RawClient(cap.port) as c:
            c.expect_closed()
        cap.set_script({"rules": [{"phase": "greeting",
                                   "reply": "554 5.3.2 No service"}]})
        with RawClient(cap.port) as c:
            c.expect(554)
            c.send(EHLO)
            c.expect(503)
            c.send(b"QUIT\r\n")
            c.expect(221)
            c.expect_closed()
        cap.set_script({"rules": [{"phase": "greeting", "close": True,
                                   "reply": "421 4.3.2 Go away"}]})
        with RawClient(cap.port) as c:
            c.expect("421 4.3.2")
            c.expect_closed()
        conns = cap.wait_connections(3, closed=True)
        assert [x.close_reason for x in conns] == [
            "drop", "quit", "close_after_reply"]


def test_script_changes_between_transactions(tmp):
    """The script is re-read at each connection and at each MAIL."""
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO)
            c.expect(250)
            c.send(b"MAIL FROM:<a@x>\r\n")
            c.expect(250)
            cap.set_script({"rules": [{"phase": "rcpt",
                                       "reply": "451 4.0.0 later"}]})
            c.send(b"RCPT TO:<b@y>\r\n")
            c.expect(250)  # same transaction: old script
            c.send(b"RSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
            c.expect(250)
            c.expect(250)
            c.expect(451)  # next transaction: new script
        cap.set_script({"rules": [{"phase": "rcpt", "on_transaction": 2,
                                   "reply": "452 4.5.3 second only"},
                                  {"phase": "mail", "times": 1,
                                   "reply": "421 4.0.0 once"}]})
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO + b"MAIL FROM:<a@x>\r\n")
            c.expect(250)
            c.expect(421)  # "times": 1
            c.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\n"
                   b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n")
            codes = [r.code for r in c.read_replies(5)]
            # on_transaction counts MAIL commands, the refused one too
            assert codes == [250, 452, 250, 250, 250], codes


def test_bad_script_is_refused(tmp):
    with Capture(tmp / "cap") as cap:
        for bad in ({"rules": [{"phase": "rcpt", "reply": "hello"}]},
                    {"rules": [{"phase": "nonsense"}]},
                    {"rulez": []},
                    {"rules": [{"phase": "mid_data", "action": "drop"}]}):
            try:
                cap.set_script(bad)
                raise AssertionError("accepted %r" % bad)
            except ValueError:
                pass
        # a broken file written behind the library's back keeps the old one
        cap.script_path.write_text("{not json")
        with RawClient(cap.port) as c:
            c.expect(220)
        conn, = cap.wait_connections(1)
        assert "keeping the previous one" in conn.script_error


# ---------------------------------------------------------------- protocol

def test_xclient_regreeting_and_xforward(tmp):
    with Capture(tmp / "cap", script={"xclient": True,
                                      "xforward": True}) as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO)
            ehlo = c.expect(250)
            assert "XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR " \
                "DESTPORT" in ehlo.lines
            assert "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE" \
                in ehlo.lines
            c.send(b"XCLIENT NAME=bad.example ADDR=192.0.2.1 BOGUS=1\r\n")
            c.expect("501 5.5.4")
            line = b"XCLIENT NAME=client.example ADDR=192.0.2.1 PORT=4711"
            c.send(line + b"\r\n")
            c.expect(220)  # a new greeting, as Postfix
            c.send(b"MAIL FROM:<a@x>\r\n")
            c.expect(503)  # EHLO needed again
            c.send(EHLO)
            c.expect(250)
            fwd = b"XFORWARD NAME=c.example ADDR=192.0.2.1 PROTO=ESMTP"
            c.send(fwd + b"\r\n")
            c.expect(250)
            c.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            c.read_replies(3)
            c.send(b"XCLIENT NAME=x\r\n")  # now part of the data
            c.send(b".\r\n")
            c.expect(250)
            c.send(b"MAIL FROM:<a@x>\r\nXCLIENT NAME=x\r\n")
            c.expect(250)
            c.expect(503)  # not inside a transaction
        m, = cap.wait_messages(1)
        assert m.xclient == [line.decode()]
        assert m.xforward == [fwd.decode()]
        assert m.data == b"XCLIENT NAME=x\r\n"
    with Capture(tmp / "cap2") as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO)
            assert not any(l.startswith("XCLIENT")
                           for l in c.expect(250).lines)
            c.send(b"XCLIENT NAME=x\r\n")
            c.expect(500)  # not offered, not accepted


def test_pipelined_transaction_in_one_write(tmp):
    script = {"rules": [{"phase": "rcpt", "match": "reject@",
                         "reply": "550 5.1.1 No"}]}
    with Capture(tmp / "cap", script=script) as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(EHLO + b"MAIL FROM:<a@x> SIZE=10\r\nRCPT TO:<b@y>\r\n"
                   b"RCPT TO:<reject@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n"
                   b"body\r\n.\r\nMAIL FROM:<d@x>\r\nRCPT TO:<e@y>\r\n"
                   b"DATA\r\n.\r\nQUIT\r\n")
            replies = c.read_replies(11)
            codes = [r.code for r in replies]
            assert codes == [250, 250, 250, 550, 250, 354, 250, 250, 250,
                             354, 250], codes
            c.expect(221)
            c.expect_closed()
        a, b = cap.wait_messages(2)
        assert a.data == b"body\r\n" and a.rcpts == ["b@y", "c@y"]
        assert b.data == b"" and b.mail_from == "d@x"


def test_command_sequence_errors(tmp):
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            for cmd, want in ((b"MAIL FROM:<a@x>", 503), (b"HELO", 501),
                              (b"EHLO c", 250), (b"RCPT TO:<b@y>", 503),
                              (b"DATA", 503), (b"MAIL FROM:<a@x>", 250),
                              (b"MAIL FROM:<a@x>", 503),
                              (b"DATA", 554), (b"MAIL TO:<x>", 503),
                              (b"RCPT FROM:<x>", 501), (b"VRFY x", 500),
                              (b"NOOP", 250), (b"RSET", 250),
                              (b"RCPT TO:<b@y>", 503), (b"HELO c", 250)):
                c.send(cmd + b"\r\n")
                c.expect(want)
                # the record is rewritten before the reply leaves
                assert cap.commands()[-1] == cmd.decode(), cap.commands()
            c.send(b"QUIT\r\n")
            c.expect(221)
            assert cap.commands()[-1] == "QUIT", cap.commands()


def test_bad_clients_do_not_hurt(tmp):
    with Capture(tmp / "cap") as cap:
        with RawClient(cap.port) as c:
            c.expect(220)
            c.send(b"\x00\xff\xfe junk\r\n")
            c.expect(500)
            c.send(b"A" * 70000)
            c.send(b"\r\n")
            c.expect("500 5.5.2")
            c.send(b"\r\n")
            c.expect(500)
        with RawClient(cap.port) as c:  # vanish in the middle of DATA
            open_transaction(c)
            c.send(b"partial")
        with RawClient(cap.port) as c:  # vanish in the middle of a line
            c.expect(220)
            c.send(b"EHL")
        with RawClient(cap.port) as c:  # and still works
            open_transaction(c)
            c.send(b"fine\r\n.\r\n")
            c.expect(250)
        msgs = cap.wait_messages(1)
        assert msgs[0].data == b"fine\r\n"
        cap.wait_connections(4, closed=True)
        partial = cap.messages(include_incomplete=True)
        partial.sort(key=lambda m: m.complete)
        assert [m.complete for m in partial] == [False, True]
        assert partial[0].data == b"partial"
        assert all(c.error is None for c in cap.connections())
        assert cap.running()


def test_random_junk_never_kills_the_server(tmp):
    import random
    rng = random.Random(1)
    words = [b"EHLO x\r\n", b"LHLO x\r\n", b"MAIL FROM:<a@b>\r\n",
             b"RCPT TO:<c@d>\r\n", b"DATA\r\n", b"\r\n.\r\n", b".\r\n",
             b"XCLIENT NAME=x\r\n", b"RSET\r\n", b"\r", b"\n", b"\x00",
             b"\xff" * 3, b"A" * 300]
    for lmtp in (False, True):
        script = {"xclient": True, "xforward": True}
        with Capture(tmp / ("cap%d" % lmtp), lmtp=lmtp,
                     script=script) as cap:
            for _ in range(25):
                with RawClient(cap.port, timeout=2) as c:
                    junk = b"".join(rng.choice(words) if rng.random() < 0.7
                                    else bytes(rng.randrange(256) for _ in
                                               range(rng.randrange(40)))
                                    for _ in range(rng.randrange(1, 40)))
                    try:
                        c.send(junk)
                    except OSError:
                        pass
            with RawClient(cap.port) as c:
                c.expect(220)
                c.cmd("LHLO x" if lmtp else "EHLO x")
                c.send(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
                c.read_replies(3)
                c.send(b"ok\r\n.\r\n")
                c.expect(250)
            conns = cap.wait_connections(26, closed=True)
            reasons = {x.close_reason for x in conns}
            assert reasons <= {"peer_closed", "socket_error", "quit"}, \
                [x.error for x in conns]
            assert cap.running()
            assert cap.messages()[-1].data == b"ok\r\n"


def test_readme_script_example_is_valid():
    text = (HERE / "README.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    sluicetest.validate_script(json.loads(block))


def test_unix_socket_listener(tmp):
    with Capture(tmp / "u", unix=True) as cap:
        assert cap.address.startswith("unix:") and cap.port is None
        with RawClient(None, unix=cap.path) as c:
            c.expect(220)
            c.send(EHLO + b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n")
            c.read_replies(4)
            c.send(b"unix\r\n.\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.data == b"unix\r\n"
    assert not os.path.exists(cap.path)


def test_sigterm_records_open_connections(tmp):
    cap = Capture(tmp / "cap")
    c = RawClient(cap.port)
    c.expect(220)
    c.send(EHLO)
    c.expect(250)
    cap.wait_connections(1)
    assert cap.stop() == 0
    conn, = cap.connections()
    assert not conn.open and conn.close_reason == "server_stop"
    assert not cap.ready_path.exists()
    c.expect_closed()
    c.close()


# ---------------------------------------------------------------- smtp-sink

def test_smtp_sink_receives(tmp):
    with SmtpSink(tmp / "sink") as sink:
        with smtp_client(sink.port) as c:
            c.sendmail("a@x", ["b@y", "c@y"], b"Subject: one\r\n\r\n1\r\n")
            c.sendmail("a@x", ["b@y"], b"Subject: two\r\n\r\n2\r\n")
        assert sink.wait_count(2) == 2
        msgs = sink.messages()
        assert len(msgs) == 2
        assert any(b"Subject: one" in m and b"X-Rcpt-Args: <c@y>" in m
                   for m in msgs)
        assert sink.stop() is not None
    assert not sink.running()


# ---------------------------------------------------------------- swaks

def test_swaks_against_capture(tmp):
    with Capture(tmp / "cap") as cap:
        rc, out = swaks("--server", "127.0.0.1", "--port", cap.port,
                        "--from", "a@example.org", "--to", "b@example.net",
                        "--helo", "client.test", "--body", "hello swaks")
        assert rc == 0, out
        m, = cap.wait_messages(1)
        assert b"hello swaks" in m.data and m.rcpts == ["b@example.net"]


# ---------------------------------------------------------------- config

def test_quote_and_make_config():
    assert quote('a"b\\c${HOME}\n\t\x01') == \
        '"a\\"b\\\\c\\${HOME}\\n\\t\\x01"'
    text = make_config(
        globals={"hostname": "mx.test", "workers": 1,
                 "log": {"target": "stderr", "level": "debug"},
                 "include": "extra.conf", "pidfile": None},
        listeners={"mx": {"listen": ["127.0.0.1:2525", "[::1]:2525"],
                          "backend": "b", "received_header": False,
                          "limits": {"idle_timeout": Raw("5s")}}},
        backends={"b": {"type": "lmtp", "servers": ["unix:/tmp/x"]}},
        filters={"block": {"module": "access", "timeout": "5s"}})
    want = textwrap.dedent('''\
        hostname = "mx.test"
        workers = 1
        log {
        \ttarget = "stderr"
        \tlevel = "debug"
        }
        include("extra.conf")

        listener "mx" {
        \tlisten = { "127.0.0.1:2525", "[::1]:2525" }
        \tbackend = "b"
        \treceived_header = false
        \tlimits {
        \t\tidle_timeout = 5s
        \t}
        }

        backend "b" {
        \ttype = "lmtp"
        \tservers = { "unix:/tmp/x" }
        }

        access "block" {
        \ttimeout = "5s"
        }
        ''')
    assert text == want, text
    for bad in ({"globals": {"bad key": 1}},
                {"filters": {"x": {"timeout": 1}}},
                {"globals": {"x": "nul\0"}}):
        try:
            make_config(**bad)
            raise AssertionError("accepted %r" % bad)
        except ValueError:
            pass


LIBCONFUSE_ECHO = r'''
#include <stdio.h>
#include <confuse.h>
int
main(int argc, char **argv)
{
	cfg_opt_t opts[] = {
		CFG_STR_LIST("s", NULL, CFGF_NONE),
		CFG_END()
	};
	cfg_t *cfg = cfg_init(opts, CFGF_NONE);
	unsigned int i;

	if (cfg_parse(cfg, argv[1]) != CFG_SUCCESS)
		return 1;
	for (i = 0; i < cfg_size(cfg, "s"); i++) {
		fputs(cfg_getnstr(cfg, "s", i), stdout);
		putchar(0);
	}
	cfg_free(cfg);
	return 0;
}
'''


def test_quote_round_trips_through_libconfuse(tmp):
    """What quote() writes, libconfuse reads back unchanged."""
    if not shutil.which("gcc") or not shutil.which("pkg-config"):
        skip("gcc or pkg-config missing")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libconfuse"],
                           capture_output=True, text=True)
    if flags.returncode != 0:
        skip("libconfuse development files missing")
    src, exe = tmp / "echo.c", tmp / "echo"
    src.write_text(LIBCONFUSE_ECHO)
    subprocess.run(["gcc", "-o", str(exe), str(src)] + flags.stdout.split(),
                   check=True)
    values = ['plain', 'with "quotes"', 'back\\slash\\', '${HOME} and $x',
              "tab\tnew\nline\r", "ctl\x01\x1f\x7f", "caf\u00e9 \u2603",
              "'single'", "# not a comment", "/* nor this */", "a,b={}()",
              "\\x41 \\101", ""]
    cfg = tmp / "t.conf"
    cfg.write_text(make_config(globals={"s": values}), encoding="utf-8")
    out = subprocess.run([str(exe), str(cfg)], capture_output=True,
                         env={"HOME": "/should/not/appear"})
    assert out.returncode == 0, out
    got = out.stdout.decode("utf-8").split("\0")[:-1]
    assert got == values, (got, values)


# ---------------------------------------------------------------- Sluice

FAKE_SLUICE = r'''#!/usr/bin/python3
# A stand-in for sluice: listens where the config says, greets, logs.
import re, signal, socket, sys, threading, time
args = sys.argv[1:]
path = args[args.index("-c") + 1]
text = open(path).read()
if "-t" in args:
    ok = "backend" in text
    print("config ok" if ok else "%s:1: no backend" % path)
    sys.exit(0 if ok else 1)
if "CRASH" in text:
    print("crashing", file=sys.stderr, flush=True)
    sys.exit(3)
ports = [int(p) for m in re.finditer(r"listen\s*=\s*\{([^}]*)\}", text)
         for p in re.findall(r"127\.0\.0\.1:(\d+)", m.group(1))]
time.sleep(0.3)          # the harness must wait, not race
socks = []
for p in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p))
    s.listen(5)
    socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"220 fake ESMTP\r\n")
        c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
def hup(sig, frame):
    print("reload generation=2", file=sys.stderr, flush=True)
def term(sig, frame):
    print("stopping", file=sys.stderr, flush=True)
    sys.exit(0 if "STUBBORN" not in text else 5)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
print("started version=fake", file=sys.stderr, flush=True)
while True:
    time.sleep(1)
'''


@contextlib.contextmanager
def sluice_bin(path):
    """SLUICE_BIN=path while the block runs, then as it was."""
    saved = os.environ.get("SLUICE_BIN")
    os.environ["SLUICE_BIN"] = str(path)
    try:
        yield path
    finally:
        if saved is None:
            os.environ.pop("SLUICE_BIN", None)
        else:
            os.environ["SLUICE_BIN"] = saved


def user_of(config_text):
    """The value of the global `user` option, or None."""
    m = re.search(r'(?m)^user = "([^"]*)"$', config_text)
    return m and m.group(1)


def fake_sluice(tmp):
    exe = tmp / "fake-sluice"
    exe.write_text(FAKE_SLUICE)
    exe.chmod(0o755)
    return exe


def test_sluice_class_with_a_fake_daemon(tmp):
    with sluice_bin(fake_sluice(tmp)):
        p1, p2 = free_port(), free_port()
        assert p1 != p2
        cfg = basic_config("127.0.0.1:1", port=p1,
                           listener={"listen": ["127.0.0.1:%d" % p1,
                                                "127.0.0.1:%d" % p2]})
        with Sluice(cfg, tmp / "s") as s:
            assert s.ports == [p1, p2]
            text = (tmp / "s" / "sluice.conf").read_text()
            assert 'target = "stderr"' in text and "spool_dir" in text
            assert (tmp / "s" / "spool").is_dir()
            # as root, the daemon's user, who can get to what it needs
            want_user = DAEMON_USER if os.geteuid() == 0 else None
            assert user_of(text) == want_user, text
            if want_user:
                for d in (tmp, tmp / "s", tmp / "s" / "spool"):
                    assert d.stat().st_mode & stat.S_IXOTH, d
                assert s.config_path.stat().st_mode & stat.S_IROTH
            with RawClient(s.port) as c:
                c.expect("220 fake")
            mark = s.log_mark()
            s.reload()
            s.wait_log(r"reload generation=(\d+)", since=mark)
            try:
                s.wait_log("never logged", timeout=0.2)
                raise AssertionError("wait_log matched nothing")
            except AssertionError as e:
                assert "did not log" in str(e)
            assert s.check_config() == (0, "config ok\n")
            pid = s.pid
        assert s.proc.returncode == 0
        try:
            os.kill(pid, 0)
            raise AssertionError("fake sluice still running")
        except ProcessLookupError:
            pass
        # raw text config, the port found by a regex
        p3 = free_port()
        raw_cfg = 'listen = { "127.0.0.1:%d" }\nbackend "b" {}\n' % p3
        with Sluice(raw_cfg, tmp / "raw") as s:
            assert s.port == p3
            assert s.wait_log("started")
            assert user_of(s.config_text) == want_user, s.config_text
        # a user the test chose, none, or no defaults at all: as given
        for g, defaults, want in (({"user": "daemon"}, True, "daemon"),
                                  ({"user": None}, True, None),
                                  ({}, False, None)):
            s = Sluice(basic_config("127.0.0.1:1", globals=g), tmp / "u",
                       defaults=defaults, start=False)
            assert user_of(s.config_text) == want, s.config_text
        given = give_to_daemon(tmp / "given" / "maildir")
        assert given.is_dir()
        if want_user:
            assert given.stat().st_uid == pwd.getpwnam(want_user).pw_uid
        with Sluice(raw_cfg, tmp / "k", ready="log") as s:
            assert s.kill() == -signal.SIGKILL  # the test's own business
        rc, out = check_config("nothing here\n", tmp / "bad")
        assert rc == 1 and "no backend" in out
        # start-up failure: a test failure carrying the log tail
        try:
            Sluice("CRASH\n" + raw_cfg, tmp / "crash")
            raise AssertionError("start did not fail")
        except AssertionError as e:
            assert "crashing" in str(e) and "exited with 3" in str(e)
        # a non-zero exit after SIGTERM fails the test at the end
        try:
            with Sluice("# STUBBORN\n" + raw_cfg, tmp / "stub"):
                pass
            raise AssertionError("exit 5 not reported")
        except AssertionError as e:
            assert "exited with 5" in str(e)
        # dies during the test
        try:
            with Sluice(raw_cfg, tmp / "die", ready="log") as s:
                os.kill(s.pid, signal.SIGKILL)
                s.proc.wait()
            raise AssertionError("death not reported")
        except AssertionError as e:
            assert "died during the test" in str(e)


def test_sluice_missing_binary_is_a_hard_error(tmp):
    with sluice_bin(tmp / "nonexistent"):
        try:
            Sluice(basic_config("127.0.0.1:1"), tmp)
            raise AssertionError("no error")
        except HardError:
            pass


def test_real_sluice_check_config(tmp):
    """With a built daemon: the rendered config passes sluice -t."""
    if not sluice_binary().exists():
        skip("%s not built" % sluice_binary())
    with Capture(tmp / "cap") as cap:
        rc, out = check_config(basic_config(cap.address), tmp / "s")
        assert rc == 0, out


# ---------------------------------------------------------------- ports

def test_free_port_is_free_and_unique():
    ports = {free_port() for _ in range(50)}
    assert len(ports) == 50
    for p in ports:
        s = socket.socket()
        s.bind(("127.0.0.1", p))
        s.close()


# ---------------------------------------------------------------- runner

RUNNER_SCRIPT = r'''#!/usr/bin/python3
import os, sys, time
sys.path.insert(0, %(here)r)
from sluicetest import *
mode = os.environ["MODE"]
def test_a(tmp):
    open(os.environ["OUT"] + "/a", "w").write(str(tmp))
    if mode == "fail":
        cap = Capture(tmp / "cap")
        open(os.environ["OUT"] + "/pid", "w").write(str(cap.pid))
        assert False, "boom"
    if mode in ("skip", "someskip"):
        skip("not today")
    if mode == "hard":
        raise HardError("no tool")
    if mode == "slow":
        time.sleep(30)
def test_b():
    if mode == "skip":
        skip("nor tomorrow")
run_tests(globals())
'''


def run_runner(tmp, mode, extra_env=None):
    script = tmp / "t_runner.py"
    script.write_text(RUNNER_SCRIPT % {"here": str(HERE)})
    out = Path(tempfile.mkdtemp(prefix="out-%s-" % mode, dir=tmp))
    env = dict(os.environ, MODE=mode, OUT=str(out), SLUICE_TEST_KEEP="0")
    for var in ("SLUICE_TAP", "SLUICE_TEST_ONLY", "SLUICE_TEST_TIMEOUT"):
        env.pop(var, None)
    env.update(extra_env or {})
    p = subprocess.run([PYTHON, str(script)], capture_output=True,
                       text=True, env=env, timeout=60)
    return p.returncode, p.stdout, out


def test_runner_exit_codes_and_cleanup(tmp):
    rc, out, _ = run_runner(tmp, "pass")
    assert rc == 0, out
    assert out.startswith("1..2\nok 1 - test_a\nok 2 - test_b"), out
    rc, out, d = run_runner(tmp, "fail")
    assert rc == 1 and "not ok 1 - test_a" in out and "boom" in out, out
    assert "capture_server pid" in out  # diagnostics of its services
    pid = int((d / "pid").read_text())
    try:
        os.kill(pid, 0)
        raise AssertionError("capture_server left running")
    except ProcessLookupError:
        pass
    assert not os.path.exists((d / "a").read_text())  # temp dir removed
    rc, out, _ = run_runner(tmp, "skip")
    assert rc == 77 and "# SKIP not today" in out, out
    rc, out, _ = run_runner(tmp, "skip", {"SLUICE_TAP": "1"})
    assert rc == 0, out
    rc, out, _ = run_runner(tmp, "someskip")
    assert rc == 0, out
    rc, out, _ = run_runner(tmp, "hard")
    assert rc == 99 and "hard error" in out, out
    t0 = time.monotonic()
    rc, out, _ = run_runner(tmp, "slow", {"SLUICE_TEST_TIMEOUT": "1"})
    assert rc == 1 and "timed out" in out, out
    assert time.monotonic() - t0 < 20
    rc, out, d = run_runner(tmp, "pass", {"SLUICE_TEST_KEEP": "1"})
    kept = (d / "a").read_text()
    assert os.path.isdir(kept) and "# kept " + kept in out, out
    for line in out.splitlines():
        if line.startswith("# kept "):
            shutil.rmtree(line[7:])


if __name__ == "__main__":
    run_tests(globals())
