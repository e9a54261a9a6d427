#!/usr/bin/python3
"""Byte-exact forwarding (DESIGN.md invariants 2 and 3): what the client
sends between DATA and the final dot reaches the backend unchanged; the
Received field is the only addition; no input makes the backend see a
message boundary sluice did not see (SMTP smuggling); envelope
parameters go along only when the backend can take them."""

import hashlib
import os
import re
import time
from pathlib import Path

from sluicetest import *

FAST_BACKEND = {"connect_timeout": "2s", "command_timeout": "2s",
                "data_timeout": "10s"}
BARE_EOL = re.compile(rb"\r(?!\n)|(?<!\r)\n")


# ---------------------------------------------------------------- helpers

def daemon(tmp, script=None, limits=None, listener=None):
    """relay() with short backend timeouts: (cap, s)."""
    return relay(tmp, script, limits=limits, listener=listener,
                 backend_options=dict(FAST_BACKEND))


def exact(**more):
    """Listener options for byte-exact comparisons: no Received field."""
    d = {"received_header": False}
    d.update(more)
    return d


def send_message(c, wire, mail="<a@example.org>", rcpts=("<b@example.net>",),
                 timeout=None):
    """MAIL, RCPT..., DATA, then wire (which carries its own final
    ".\\r\\n"); returns the reply to the final dot."""
    r = c.cmd("MAIL FROM:" + mail)
    assert r.code == 250, r.text
    for rcpt in rcpts:
        r = c.cmd("RCPT TO:" + rcpt)
        assert r.code == 250, r.text
    r = c.cmd("DATA")
    assert r.code == 354, r.text
    c.send(wire)
    return c.read_reply(timeout)


def content_of(wire):
    """What the backend records for wire: everything before the final
    ".\\r\\n" (the CRLF before the dot belongs to the content)."""
    assert wire.endswith(b".\r\n") and (wire == b".\r\n" or
                                        wire.endswith(b"\r\n.\r\n"))
    return wire[:-3]


def spool_files(pid, spool):
    """Files of the daemon that live in its spool directory."""
    spool = str(Path(spool).resolve())
    found = []
    fddir = Path("/proc/%d/fd" % pid)
    try:
        entries = list(fddir.iterdir())
    except OSError:
        return found
    for fd in entries:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(spool + "/"):
            found.append(target)
    return found


# ---------------------------------------------------------------- exact bytes

ALL_BYTES = bytes(b for b in range(256) if b not in (10, 13))

EXACT_MESSAGES = [
    # dot-stuffed lines: "..x" is ".x", ".." is ".", "..." is ".."
    b"Subject: dots\r\n\r\n..x\r\n..\r\n...\r\n.....\r\nend\r\n.\r\n",
    # a stuffed dot on the very first line of DATA
    b"..first line starts with a dot\r\n.\r\n",
    b"..\r\n.\r\n",
    # 998 characters + CRLF = 1000 bytes: the longest line allowed
    b"Subject: long\r\n\r\n" + (b"a" * 998 + b"\r\n") * 3 + b".\r\n",
    b"X-Long: " + b"h" * 990 + b"\r\n\r\nbody\r\n.\r\n",
    # every byte value but CR and LF, NUL and 8-bit included
    b"Subject: bytes\r\n\r\n" + ALL_BYTES + b"\r\n" + ALL_BYTES[::-1] +
    b"\r\n\x00\r\n\xff\r\n.\r\n",
    b"Subject: \x00\x80\xff\r\nX-8bit: \xc3\xa9\xe2\x82\xac\r\n\r\n"
    b"caf\xc3\xa9\r\n.\r\n",
    # the empty message
    b".\r\n",
    # a lone empty line
    b"\r\n.\r\n",
    # "abc" without a line end of its own: the CRLF is the terminator's
    b"abc\r\n.\r\n",
    # header section only, no empty line, no body
    b"Subject: only headers\r\nFrom: <a@example.org>\r\n.\r\n",
    # things that look like an end but are not
    b"x\r\n. \r\n.x\r\n .\r\n\t.\r\n..\r\n.\r\n",
    # lines that look like SMTP commands
    b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n"
    b"QUIT\r\n.\r\n",
    # trailing white space and a header without a space after the colon
    b"Subject:x  \r\nX:\t\r\n\r\ntrailing   \r\n\t\r\n.\r\n",
]


def test_byte_exact_without_received(tmp):
    with daemon(tmp, listener=exact()) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            for i, wire in enumerate(EXACT_MESSAGES):
                r = send_message(c, wire)
                assert r.code == 250, "message %d: %r" % (i, r.text)
            assert c.cmd("QUIT").code == 221
        msgs = cap.wait_messages(len(EXACT_MESSAGES))
        assert len(msgs) == len(EXACT_MESSAGES)
        for i, (m, wire) in enumerate(zip(msgs, EXACT_MESSAGES)):
            assert m.data == content_of(wire), \
                "message %d: sent %r, backend got %r" % (i, wire, m.data)
            assert m.accepted


def test_byte_exact_split_writes(tmp):
    """The same bytes fed in small pieces, cutting across every CR, LF
    and dot (the scanner keeps state between reads)."""
    wire = (b"Subject: pieces\r\n\r\n..a\r\n.\x00\r\nb\r\n..\r\n" +
            ALL_BYTES + b"\r\n" + b"c" * 998 + b"\r\n.\r\n")
    with daemon(tmp, listener=exact()) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            for step in (1, 2, 3, 7):
                assert c.cmd("MAIL FROM:<a@example.org>").code == 250
                assert c.cmd("RCPT TO:<b@example.net>").code == 250
                assert c.cmd("DATA").code == 354
                pieces = [wire[i:i + step] for i in range(0, len(wire), step)]
                # small pieces, but not one syscall each for all of them
                for i, p in enumerate(pieces):
                    c.send(p)
                    if i < 40:
                        time.sleep(0.005)
                r = c.read_reply()
                assert r.code == 250, r.text
        msgs = cap.wait_messages(4)
        for m in msgs:
            assert m.data == content_of(wire), m.data


def test_line_length_limit(tmp):
    ok_line = b"a" * 998 + b"\r\n"              # 1000 bytes: allowed
    long_line = b"b" * 999 + b"\r\n"            # 1001 bytes: refused
    # 1001 bytes on the wire, 1000 once the stuffing dot is removed
    stuffed = b"." + b"." + b"c" * 997 + b"\r\n"
    with daemon(tmp, listener=exact(), limits={"text_line": 1000}) \
            as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            r = send_message(c, b"Subject: ok\r\n\r\n" + ok_line + b".\r\n")
            assert r.code == 250, r.text
            r = send_message(c, b"Subject: long\r\n\r\n" + long_line +
                             b"tail\r\n.\r\n", mail="<long@example.org>")
            assert r.code == 550 and r.enhanced == "5.5.2", r.text
            # the long line as the very last line, and in two writes
            assert c.cmd("MAIL FROM:<long2@example.org>").code == 250
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: long\r\n\r\n" + long_line[:600])
            time.sleep(0.1)
            c.send(long_line[600:] + b".\r\n")
            r = c.read_reply()
            assert r.code == 550 and r.enhanced == "5.5.2", r.text
            r = send_message(c, b"Subject: stuffed\r\n\r\n" + stuffed +
                             b".\r\n", mail="<stuffed@example.org>")
            assert r.code == 250, r.text
            r = send_message(c, b"Subject: after\r\n\r\nfine\r\n.\r\n",
                             mail="<after@example.org>")
            assert r.code == 250, r.text
        msgs = cap.wait_messages(3)
        time.sleep(0.2)
        msgs = cap.messages(include_incomplete=True)
        assert [m.mail_from for m in msgs] == [
            "a@example.org", "stuffed@example.org", "after@example.org"]
        assert msgs[0].data == b"Subject: ok\r\n\r\n" + ok_line
        assert msgs[1].data == b"Subject: stuffed\r\n\r\n" + stuffed
        s.wait_log(r"reject phase=data reason=line_too_long limit=1000 "
                   r"client=127\.0\.0\.1", since=mark)
        # the refused transactions were opened at the backend and reset
        cmds = cap.commands()
        assert "MAIL FROM:<long@example.org>" in cmds
        i = cmds.index("MAIL FROM:<long@example.org>")
        assert cmds[i + 1:i + 3] == ["RCPT TO:<b@example.net>", "RSET"], cmds


def test_large_message_through_spool_file(tmp):
    """5 MiB with spool_memory = 64k: the body goes to a temporary file
    and comes back out byte for byte."""
    lines = []
    n = 0
    i = 0
    while n < 5 * 1024 * 1024:
        if i % 97 == 0:
            line = b".." + b"%08d dot-stuffed" % i
        elif i % 89 == 0:
            line = bytes((i * 7 + k) % 256 for k in range(200)) \
                .replace(b"\r", b"R").replace(b"\n", b"N")
        else:
            line = b"%08d " % i + b"abcdefghij" * 7
        lines.append(line + b"\r\n")
        n += len(lines[-1])
        i += 1
    body = b"Subject: big\r\n\r\n" + b"".join(lines)
    digest = hashlib.sha256(body).hexdigest()
    with daemon(tmp, listener=exact(),
                limits={"spool_memory": "64k", "message_size": "20M"}) \
            as (cap, s):
        spool = s.workdir / "spool"
        with RawClient(s.port, timeout=scaled(30)) as c:
            hello(c)
            assert c.cmd("MAIL FROM:<a@example.org> SIZE=%d" %
                         len(body)).code == 250
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(body)
            # mid-DATA the daemon holds an (unlinked) file in spool_dir
            files = wait_for(lambda: spool_files(s.pid, spool),
                             timeout=scaled(10),
                             what="a spool file held by sluice")
            assert files, files
            c.send(b".\r\n")
            r = c.read_reply(timeout=scaled(60))
            assert r.code == 250, r.text
            assert c.cmd("QUIT").code == 221
        m, = cap.wait_messages(1, timeout=scaled(30))
        assert m.size == len(body)
        assert hashlib.sha256(m.data).hexdigest() == digest
        assert m.data == body
        # the file went away with the transaction
        wait_for(lambda: not spool_files(s.pid, spool), timeout=scaled(5),
                 what="the spool file to be closed")
        assert list(spool.iterdir()) == []


# ---------------------------------------------------------------- Received

RECEIVED = (rb"^Received: from (?P<from>\S+) \(localhost \[127\.0\.0\.1\]\)\r\n"
            rb"\tby mx\.test \(sluice\) with (?P<with>[A-Z0-9]+) "
            rb"id (?P<sid>[0-9a-f]{16})\.(?P<txn>\d+)"
            rb"(?:\r\n\tfor <(?P<for>[^>\r\n]*)>)?;\r\n"
            rb"\t(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
            rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
            rb"\d{4} \d{2}:\d{2}:\d{2} \+0000\r\n")


def split_received(data, wire):
    """data = one Received field + exactly the content of wire."""
    content = content_of(wire)
    assert data.endswith(content), (data, content)
    prefix = data[:len(data) - len(content)]
    m = re.match(RECEIVED + rb"\Z", prefix)
    assert m, "not exactly one Received field: %r" % prefix
    assert prefix.count(b"Received:") == 1
    return m


def test_received_header_default(tmp):
    wires = [b"Subject: one\r\n\r\n..stuffed\r\nbody\r\n.\r\n",
             b"Subject: two\r\n\r\n\x00\xff\r\n.\r\n",
             b".\r\n",
             b"no header at all\r\n.\r\n"]
    with daemon(tmp) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            port = c.sock.getsockname()[1]
            r = send_message(c, wires[0])
            assert r.code == 250
            r = send_message(c, wires[1], rcpts=("<b@example.net>",
                                                 "<c@example.net>"))
            assert r.code == 250
            r = send_message(c, wires[2], mail="<>")
            assert r.code == 250
            assert c.cmd("QUIT").code == 221
        with RawClient(s.port) as c:
            hello(c, "not_a_hostname", verb="HELO")
            r = send_message(c, wires[3])
            assert r.code == 250
        with RawClient(s.port) as c:
            hello(c)
            r = send_message(c, b"Subject: utf8\r\n\r\nx\r\n.\r\n",
                             mail="<j\u00f6rg@example.org> SMTPUTF8")
            assert r.code == 250
        msgs = cap.wait_messages(5)
        sid = s.wait_log(r"([0-9a-f]{16}) connect client=127\.0\.0\.1 "
                         r"port=%d " % port, since=mark)[1].encode()
        m = split_received(msgs[0].data, wires[0])
        assert (m["from"], m["with"], m["sid"], m["txn"], m["for"]) == \
            (b"client.test", b"ESMTP", sid, b"1", b"b@example.net")
        m = split_received(msgs[1].data, wires[1])
        assert (m["sid"], m["txn"], m["for"]) == (sid, b"2", None)
        m = split_received(msgs[2].data, wires[2])
        assert (m["txn"], m["for"]) == (b"3", b"b@example.net")
        m = split_received(msgs[3].data, wires[3])
        assert (m["from"], m["with"], m["txn"]) == (b"unknown", b"SMTP", b"1")
        assert m["sid"] != sid
        m = split_received(msgs[4].data, b"Subject: utf8\r\n\r\nx\r\n.\r\n")
        assert m["with"] == b"UTF8SMTP"


# ---------------------------------------------------------------- smuggling

# Each is an end of data for some MTA (SMTP smuggling, SEC Consult 2023,
# and variants): none of them contains CRLF "." CRLF.
VECTORS = [
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r.\n",
    b"\r.\r", b"\n.\r", b"\n\n.\n\n", b"\r\r\n.\n", b"\r\n.\r\r\n",
    b"\n.\n\r\n", b"\r\n.\n\n", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n",
    b"\r\n.\r\x00\n", b"\n..\n", b"\r\n\r.\r\n", b"\r\n.\t\r\n",
]


def smuggling_session(s, i, vector):
    """One session: a message carrying vector + a smuggled transaction,
    then the real end, then a legitimate second message, then QUIT.
    Returns (replies after the 354, the first message's DATA bytes)."""
    smuggled = (b"MAIL FROM:<smuggled-%d@evil.test>\r\n"
                b"RCPT TO:<victim@example.net>\r\n"
                b"DATA\r\n"
                b"Subject: smuggled\r\n\r\nsmuggled body" % i)
    first = b"Subject: first\r\n\r\nhello" + vector + smuggled + b"\r\n.\r\n"
    assert b"\r\n.\r\n" not in b"\r\n" + first[:-5]
    second = (b"MAIL FROM:<legit2-%d@example.org>\r\n"
              b"RCPT TO:<rcpt@example.net>\r\n"
              b"DATA\r\n"
              b"Subject: second\r\n\r\nsecond body\r\n.\r\n" % i)
    with RawClient(s.port) as c:
        hello(c)
        assert c.cmd("MAIL FROM:<legit1-%d@example.org>" % i).code == 250
        assert c.cmd("RCPT TO:<rcpt@example.net>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(first + second + b"QUIT\r\n")
        return read_all_replies(c, limit=200), first


def no_smuggled_envelope(cap):
    for conn in cap.connections():
        for cmd in conn.commands:
            assert "smuggled-" not in cmd, \
                "the backend got %r on %r" % (cmd, conn)


def backend_in_step(cap):
    """The backend never answered 500: it never saw a line it did not
    take for a command, which is what a boundary disagreement looks like."""
    for conn in cap.connections():
        assert not re.search(rb"(?m)^50[0-2][ -]", conn.sent), \
            "backend refused a command: %r" % conn.sent


def test_smuggling_strict(tmp):
    with daemon(tmp, listener=exact()) as (cap, s):
        mark = s.log_mark()
        seen = 0
        for i, vector in enumerate(VECTORS):
            replies, first = smuggling_session(s, i, vector)
            bare = BARE_EOL.search(first) is not None
            got = [(r.code, r.enhanced) for r in replies]
            if bare:
                want = [(550, "5.5.2"), (250, "2.1.0"), (250, "2.1.5"),
                        (354, None), (250, "2.0.0"), (221, "2.0.0")]
            else:
                want = [(250, "2.0.0"), (250, "2.1.0"), (250, "2.1.5"),
                        (354, None), (250, "2.0.0"), (221, "2.0.0")]
            assert got == want, "vector %r: replies %r" % (
                vector, [r.text for r in replies])
            msgs = cap.wait_messages(seen + (1 if bare else 2))
            new = msgs[seen:]
            time.sleep(0.05)
            assert len(cap.messages(include_incomplete=True)) == \
                seen + len(new), "vector %r: extra messages" % vector
            if bare:
                assert len(new) == 1, (vector, new)
            else:
                assert len(new) == 2, (vector, new)
                assert new[0].mail_from == "legit1-%d@example.org" % i
                assert new[0].data == content_of(first)
            last = new[-1]
            assert last.mail_from == "legit2-%d@example.org" % i, \
                (vector, new)
            assert last.rcpts == ["rcpt@example.net"]
            assert last.data == b"Subject: second\r\n\r\nsecond body\r\n"
            seen += len(new)
        no_smuggled_envelope(cap)
        backend_in_step(cap)
        s.wait_log(r"reject phase=data reason=bare_lf client=", since=mark)
        s.wait_log(r"reject phase=data reason=bare_cr client=", since=mark)


def normalized_first(first):
    """The first message as sluice sees it in normalize mode: every bare
    CR or LF made CRLF, cut at the first CRLF "." CRLF."""
    norm = re.sub(rb"\r\n|\r|\n", b"\r\n", first)
    comb = b"\r\n" + norm
    p = comb.find(b"\r\n.\r\n")
    assert p >= 0
    return comb[2:p + 2]


def test_smuggling_normalize(tmp):
    with daemon(tmp, listener=exact(data_line_endings="normalize")) \
            as (cap, s):
        seen = 0
        for i, vector in enumerate(VECTORS):
            replies, first = smuggling_session(s, i, vector)
            texts = [r.text for r in replies]
            queued = [re.search(r"queued as (C\d+T\d+)", r.text)[1]
                      for r in replies if r.code == 250 and
                      "queued as" in r.text]
            assert replies[-1].code == 221, (vector, texts)
            # the first message and the legitimate second one at least
            assert len(queued) >= 2, (vector, texts)
            msgs = cap.wait_messages(seen + len(queued))
            time.sleep(0.05)
            msgs = cap.messages(include_incomplete=True)
            new = msgs[seen:]
            # one to one: every backend message is one sluice said 250 to
            backend_ids = [re.search(r"queued as (C\d+T\d+)", m.reply)[1]
                           for m in new]
            assert backend_ids == queued, (vector, backend_ids, texts)
            for m in new:
                assert m.complete and m.accepted, (vector, m)
                assert not BARE_EOL.search(m.data), (vector, m.data)
            assert new[0].mail_from == "legit1-%d@example.org" % i
            assert new[0].data == normalized_first(first), \
                (vector, new[0].data)
            assert new[-1].mail_from == "legit2-%d@example.org" % i
            assert new[-1].data == b"Subject: second\r\n\r\nsecond body\r\n"
            seen += len(new)
        backend_in_step(cap)


# ---------------------------------------------------------------- parameters

def test_envelope_parameters_forwarded(tmp):
    with daemon(tmp, listener=exact(), limits={"message_size": "1M"}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send_message(
                c, b"Subject: dsn\r\n\r\n8bit \xc3\xa9\r\n.\r\n",
                mail="<a@example.org> SIZE=1234 BODY=8BITMIME RET=HDRS "
                     "ENVID=QQ314159+2B",
                rcpts=("<b@example.net> NOTIFY=SUCCESS,FAILURE "
                       "ORCPT=rfc822;b@example.net",
                       "<c@example.net> NOTIFY=NEVER"))
            assert r.code == 250, r.text
            r = send_message(
                c, "Subject: caf\u00e9\r\n\r\n\u00fcber\r\n.\r\n"
                   .encode("utf-8"),
                mail="<j\u00f6rg@ex\u00e4mple.org> SMTPUTF8 BODY=8BITMIME",
                rcpts=("<\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@"
                       "\u03c0\u03b1\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3"
                       "\u03bc\u03b1.\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae>",))
            assert r.code == 250, r.text
            r = send_message(c, b"Subject: 7bit\r\n\r\nx\r\n.\r\n",
                             mail="<> BODY=7BIT")
            assert r.code == 250, r.text
        msgs = cap.wait_messages(3)
        # SIZE is checked by sluice against its own limit, not forwarded
        assert msgs[0].mail == ("MAIL FROM:<a@example.org> BODY=8BITMIME "
                                "RET=HDRS ENVID=QQ314159+2B"), msgs[0].mail
        assert msgs[0].rcpt_lines == [
            "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE "
            "ORCPT=rfc822;b@example.net",
            "RCPT TO:<c@example.net> NOTIFY=NEVER"], msgs[0].rcpt_lines
        assert msgs[0].data == b"Subject: dsn\r\n\r\n8bit \xc3\xa9\r\n"
        assert raw(msgs[1].mail) == \
            "MAIL FROM:<j\u00f6rg@ex\u00e4mple.org> SMTPUTF8 BODY=8BITMIME" \
            .encode("utf-8")
        assert raw(msgs[1].rcpt_lines[0]) == (
            "RCPT TO:<\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@\u03c0\u03b1"
            "\u03c1\u03ac\u03b4\u03b5\u03b9\u03b3\u03bc\u03b1.\u03b4\u03bf"
            "\u03ba\u03b9\u03bc\u03ae>").encode("utf-8")
        assert msgs[1].data == "Subject: caf\u00e9\r\n\r\n\u00fcber\r\n" \
            .encode("utf-8")
        assert msgs[2].mail == "MAIL FROM:<> BODY=7BIT"


def test_parameters_refused_when_backend_lacks_them(tmp):
    script = {"capabilities": ["PIPELINING", "ENHANCEDSTATUSCODES"]}
    with daemon(tmp, script=script, listener=exact(),
                limits={"errors": 100}) as (cap, s):
        mark = s.log_mark()
        with RawClient(s.port) as c:
            hello(c)
            for mail, what in [
                    ("MAIL FROM:<a@example.org> BODY=8BITMIME",
                     "BODY=8BITMIME"),
                    ("MAIL FROM:<a@example.org> SMTPUTF8", "SMTPUTF8"),
                    ("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8",
                     "SMTPUTF8"),
                    ("MAIL FROM:<a@example.org> RET=FULL", "DSN"),
                    ("MAIL FROM:<a@example.org> ENVID=x1", "DSN")]:
                r = c.cmd(mail)
                assert r.code == 555 and r.enhanced == "5.5.4", \
                    (mail, r.text)
                assert what in r.text, (mail, r.text)
            assert c.cmd("MAIL FROM:<a@example.org> BODY=7BIT").code == 250
            for rcpt in ["RCPT TO:<b@example.net> NOTIFY=NEVER",
                         "RCPT TO:<b@example.net> ORCPT=rfc822;b@example.net"]:
                r = c.cmd(rcpt)
                assert r.code == 555 and r.enhanced == "5.5.4", \
                    (rcpt, r.text)
            assert c.cmd("RCPT TO:<b@example.net>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(b"Subject: plain\r\n\r\nx\r\n.\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<a@example.org> BODY=7BIT"
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>"]
        cmds = cap.commands()
        assert [x for x in cmds if x.startswith(("MAIL", "RCPT"))] == \
            ["MAIL FROM:<a@example.org> BODY=7BIT",
             "RCPT TO:<b@example.net>"], cmds
        s.wait_log(r"reject phase=mail reason=backend_lacks_extension "
                   r"extension=\"DSN parameters\"", since=mark)


run_tests(globals())
