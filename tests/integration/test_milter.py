#!/usr/bin/python3
"""The milter client filter against real milters: Debian's opendkim signing
(dkimpy verifies what the backend got), a libmilter test milter
(tests/milters/testmilter) that rejects, tempfails and edits on request, and
a hand-written milter on a socket for what libmilter never does (garbage,
huge frames, silence, a socket closed mid-message, actions not offered),
plus the exact frames sluice sends.  Each effect is checked where it lands:
the client's replies, the backend's bytes and envelope, the log."""

import base64
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import warnings
from pathlib import Path

import sluicetest
from sluicetest import *

OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"
QUEUED = re.compile(rb"^250 2\.0\.0 ")
DISCARDED = b"250 2.0.0 Ok: message discarded by policy\r\n"
TEMPFAIL_451 = b"451 4.7.1 Service temporarily unavailable, try again later\r\n"


# ---------------------------------------------------------------- milters

def _unescape(s):
    """testmilter's value escapes: \\n \\r \\t \\\\ \\xHH."""
    out, i = bytearray(), 0
    b = s.encode()
    while i < len(b):
        if b[i:i + 1] == b"\\" and i + 1 < len(b):
            c = b[i + 1:i + 2]
            if c == b"x":
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            out += {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(c, c)
            i += 2
            continue
        out += b[i:i + 1]
        i += 1
    return bytes(out)


class LibmilterService(sluicetest.Service):
    """A libmilter program: SIGTERM makes smfi_main() return only within
    5 s (its check interval), so stop it with SIGKILL; it keeps no state."""

    def stop(self, timeout=None):
        rc, _ = self._terminate(scaled(5), sig=signal.SIGKILL)
        return rc


class TestMilter(LibmilterService):
    """tests/milters/testmilter (libmilter) on a free loopback port, or on
    dir/m.sock with unix=True; events() parses its log."""

    name = "testmilter"

    def __init__(self, dir, steps=None, connect=None, unix=False):
        prog = sluicetest._builddir() / "tests" / "milters" / "testmilter"
        need_program(prog)
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.dir / "events.log"
        if unix:
            self.path = self.dir / "m.sock"
            conn = "unix:%s" % self.path
        else:
            self.port = free_port()
            conn = "inet:%d@127.0.0.1" % self.port
        cmd = [prog, "-s", conn, "-l", self.events_path]
        if steps:
            cmd += ["-p", ",".join(steps)]
        if connect:
            cmd += ["-C", connect]
        self._spawn(cmd, self.dir / "testmilter.log")
        wait_for(lambda: self.events("ready") or not self.running(),
                 what="testmilter ready")
        if not self.running():
            raise HardError("testmilter did not start:\n%s" % self.log_tail())
        if unix:
            os.chmod(self.path, 0o666)
            reachable(self.dir)
        self.address = conn

    def events(self, kind=None, last_session=False):
        """[(event, {key: value})]; values unescaped to bytes, macros as
        'macro:NAME' keys.  last_session: only those since the last
        negotiation (the harness's readiness probe is a session too)."""
        try:
            lines = self.events_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        if last_session:
            starts = [i for i, l in enumerate(lines) if l.startswith("negotiate ")]
            lines = lines[starts[-1]:] if starts else []
        out = []
        for line in lines:
            parts = line.split(" ")
            fields = {}
            for p in parts[1:]:
                k, _, v = p.partition("=")
                fields[k] = _unescape(v)
            if kind is None or parts[0] == kind:
                out.append((parts[0], fields))
        return out


class OpenDkim(LibmilterService):
    """Debian's opendkim daemon signing for example.org (selector "test")
    with a fresh key, on a free loopback port."""

    name = "opendkim"

    def __init__(self, dir, canon="relaxed/relaxed"):
        need_program(OPENDKIM)
        need_program(GENKEY)
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([GENKEY, "-D", str(self.dir), "-d", "example.org", "-s", "test"],
                       check=True, timeout=scaled(30))
        key = self.dir / "test.private"
        txt = (self.dir / "test.txt").read_text()
        self.txt = "".join(re.findall(r'"([^"]*)"', txt)).encode()
        self.port = free_port()
        conf = ["Syslog no", "Socket inet:%d@127.0.0.1" % self.port, "Mode s",
                "Domain example.org", "Selector test", "KeyFile %s" % key,
                "Canonicalization %s" % canon, "RequireSafeKeys no"]
        if os.geteuid() == 0:
            pw = pwd.getpwnam(DAEMON_USER)
            os.chown(key, pw.pw_uid, pw.pw_gid)
            conf.append("UserID %s" % DAEMON_USER)
            reachable(self.dir)
        (self.dir / "opendkim.conf").write_text("\n".join(conf) + "\n")
        self._spawn([OPENDKIM, "-f", "-x", self.dir / "opendkim.conf"],
                    self.dir / "opendkim.log")
        wait_for(lambda: self._listening() or not self.running(),
                 what="opendkim listening")
        if not self.running():
            raise HardError("opendkim did not start:\n%s" % self.log_tail())
        self.address = "inet:%d@127.0.0.1" % self.port

    def _listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        except OSError:
            return False

    def verify(self, message):
        import dkim
        return dkim.verify(message, dnsfunc=lambda name, timeout=5: self.txt)


# Steps that go unanswered when the milter asked so (NR_*), by command.
NR = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000, b"R": 0x8000, b"T": 0x10000,
      b"L": 0x80, b"N": 0x40000, b"B": 0x80000}


class MilterPeer:
    """One connection to RawMilter, as the milter sees it."""

    def __init__(self, sock, owner, number):
        self.sock = sock
        self.owner = owner
        self.number = number        # connections accepted before this one
        self.protocol = 0

    def _read(self, n, deadline):
        buf = b""
        while len(buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(n - len(buf))
            except (socket.timeout, OSError):
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def frame(self, timeout=10):
        """(code, data) of the next command, None at EOF or timeout."""
        deadline = time.monotonic() + scaled(timeout)
        head = self._read(4, deadline)
        if head is None:
            return None
        body = self._read(struct.unpack(">I", head)[0], deadline)
        if body is None:
            return None
        with self.owner.lock:
            self.owner.frames.append((self.number, body[:1], body[1:]))
        return body[:1], body[1:]

    def send(self, code, data=b""):
        self.raw(struct.pack(">I", len(data) + 1) + code + data)

    def raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def negotiate(self, actions=0x1ff, protocol=0, version=6, lists=b""):
        f = self.frame()
        assert f is not None and f[0] == b"O", f
        self.protocol = protocol
        self.send(b"O", struct.pack(">III", version, actions, protocol) + lists)

    def answers(self, code):
        """Whether sluice waits for an answer to this command."""
        if code in (b"D", b"A", b"Q", b"K"):
            return False
        return not (self.protocol & NR.get(code, 0))

    def until(self, stop=()):
        """Answer continue to every command until one in stop (returned) or EOF."""
        while True:
            f = self.frame()
            if f is None or f[0] in stop:
                return f
            if self.answers(f[0]):
                self.send(b"c")


class RawMilter:
    """A milter written by hand: handler(peer) runs for each connection in
    a thread; every frame received is in frames, in order."""

    def __init__(self, handler):
        self.handler = handler
        self.frames = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.address = "inet:%d@127.0.0.1" % self.port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.stopping = False
        self.peers = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            peer = MilterPeer(s, self, len(self.peers))
            self.peers.append(peer)
            t = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, peer):
        try:
            self.handler(peer)
        except (AssertionError, OSError):
            pass

    def codes(self, number=None):
        with self.lock:
            return [c for n, c, _ in self.frames if number in (None, n)]

    def session(self, number):
        """[(code, data)] of one connection."""
        with self.lock:
            return [(c, d) for n, c, d in self.frames if n == number]

    def close(self):
        self.stopping = True
        self.sock.close()
        for p in self.peers:
            try:
                p.sock.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(scaled(5))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------- helpers

def milter(address, **opts):
    f = {"module": "milter", "address": address, "timeout": "30s"}
    f.update(opts)
    return {"m": f}


def run(tmp, address, **opts):
    """relay() with one milter instance "m" on the listener."""
    return relay(tmp, filters=milter(address, **opts), chain=["m"])


def after_received(data):
    """The message without sluice's Received: field (the first one)."""
    assert data.startswith(b"Received: "), data[:80]
    i = 0
    while True:
        i = data.index(b"\r\n", i) + 2
        if data[i:i + 1] not in (b" ", b"\t"):
            return data[i:]


def send(c, body, sender="a@example.org", rcpts=("b@example.net",)):
    return transaction(c, body, sender=sender, rcpts=rcpts)


def frames_of(frames, code):
    return [d for c, d in frames if c == code]


# ---------------------------------------------------------------- libmilter

def test_header_and_body_changes_reach_backend_exactly(tmp):
    body = (b"X-Drop: one\r\nSubject: original\r\nFrom: a@example.org\r\n"
            b"X-Drop: two\r\n"
            b"X-Milter-Test: add X-Added added value\r\n"
            b"X-Milter-Test: insert 0 X-Top top\r\n"
            b"X-Milter-Test: change Subject 1 changed subject\r\n"
            b"X-Milter-Test: delete X-Drop 2\r\n"
            b"X-Milter-Test: add X-Folded line one\\n\\tline two\r\n"
            b"X-Milter-Test: body replaced body\\n.second line\r\n"
            b"\r\noriginal body\r\n")
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, body)
            assert QUEUED.match(r.raw), r.raw
            ask(c, "QUIT", 221)
        msg, = cap.wait_messages(1)
        assert after_received(msg.data) == (
            b"X-Top: top\r\nX-Drop: one\r\nSubject: changed subject\r\n"
            b"From: a@example.org\r\n"
            b"X-Milter-Test: add X-Added added value\r\n"
            b"X-Milter-Test: insert 0 X-Top top\r\n"
            b"X-Milter-Test: change Subject 1 changed subject\r\n"
            b"X-Milter-Test: delete X-Drop 2\r\n"
            b"X-Milter-Test: add X-Folded line one\\n\\tline two\r\n"
            b"X-Milter-Test: body replaced body\\n.second line\r\n"
            b"X-Added: added value\r\nX-Folded: line one\r\n\tline two\r\n"
            b"\r\nreplaced body\r\n..second line\r\n"), msg.data
        s.wait_log(r"filter=m milter changes address=%s headers_added=3 "
                   r"headers_changed=1 headers_deleted=1 rcpts_added=0 rcpts_removed=0 "
                   r"sender_changed=no body_replaced=yes quarantined=no refused=0"
                   % re.escape(m.address))


def test_sendmail_rules_for_indexes_past_the_end(tmp):
    body = (b"Subject: s\r\nX-One: 1\r\n"
            b"X-Milter-Test: insert 999 X-Late late\r\n"
            b"X-Milter-Test: change X-None 3 added by change\r\n"
            b"X-Milter-Test: delete X-Missing 1\r\n"
            b"X-Milter-Test: change X-One 0 one\r\n"
            b"X-Milter-Test: delrcpt <nobody@example.net>\r\n\r\nx\r\n")
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
        msg, = cap.wait_messages(1)
        head = after_received(msg.header_block())
        assert head.startswith(b"Subject: s\r\nX-One: one\r\n"), head
        assert head.endswith(b"X-Late: late\r\nX-None: added by change\r\n\r\n"), head
        assert msg.rcpts == ["b@example.net"]
        s.wait_log(r"headers_added=1 headers_changed=2 headers_deleted=0 rcpts_added=0 "
                   r"rcpts_removed=0 sender_changed=no body_replaced=no quarantined=no "
                   r"refused=0")


def test_big_replacement_body(tmp):
    line = b"0123456789012345678901234567890123456789012345678\r\n"
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: big\r\nX-Milter-Test: bigbody 306000\r\n\r\nsmall\r\n")
            assert QUEUED.match(r.raw), r.raw
        msg, = cap.wait_messages(1)
        assert msg.data.endswith(b"\r\n\r\n" + line * 6000), len(msg.data)
    with TestMilter(tmp / "tm2") as m, \
            run(tmp / "2", m.address, max_body_size="100k") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: big\r\nX-Milter-Test: bigbody 306000\r\n\r\nsmall\r\n")
            assert r.raw == TEMPFAIL_451, r.raw
        s.wait_log(r'error="replaced the body with more than 102400 bytes"')


def test_envelope_changes_reach_backend(tmp):
    body = (b"Subject: envelope\r\n"
            b"X-Milter-Test: addrcpt <added@example.net>\r\n"
            b"X-Milter-Test: delrcpt <b@example.net>\r\n"
            b"X-Milter-Test: chgfrom <bounce@example.org>\r\n"
            b"X-Milter-Test: addrcpt_par <par@example.net>\r\n"
            b"\r\nbody\r\n")
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, body, rcpts=("b@example.net", "c@example.net"))
            assert QUEUED.match(r.raw), r.raw
        msg, = cap.wait_messages(1)
        assert msg.mail_from == "bounce@example.org", msg.mail
        assert msg.rcpts == ["c@example.net", "added@example.net", "par@example.net"], \
            msg.rcpt_lines
        s.wait_log(r"rcpts_added=2 rcpts_removed=1 sender_changed=yes")


def test_verdicts_at_every_stage_one_connection(tmp):
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        # The harness's readiness probe is a session too: let its milter
        # connection close first, or its late "close" lands in ours.
        wait_for(lambda: len(m.events("close")) == len(m.events("negotiate")),
                 what="the probe's milter session closed")
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<reject-mail@example.org>",
                "550 5.7.1 Sender address rejected: access denied")
            ask(c, "MAIL FROM:<tempfail-mail@example.org>",
                "451 4.7.1 Service temporarily unavailable")
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<reject@example.net>",
                "550 5.7.1 Recipient address rejected: access denied")
            ask(c, "RCPT TO:<tempfail@example.net>", "450 4.7.1 ")
            r = ask(c, "RCPT TO:<replycode@example.net>", 550)
            assert r.raw == b"550 5.1.1 No such user here\r\n", r.raw
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(b"Subject: 1\r\nX-Milter-Test: reply 451 4.7.0 Try again later\r\n"
                   b"\r\nx\r\n.\r\n")
            r = c.expect(451)
            assert r.raw == b"451 4.7.0 Try again later\r\n", r.raw
            for instr, want in ((b"mlreply", b"550 5.7.1 first line second line\r\n"),
                                (b"reject", b"550 5.7.1 Message content rejected\r\n"),
                                (b"tempfail", TEMPFAIL_451),
                                (b"discard", DISCARDED)):
                r = send(c, b"Subject: 2\r\nX-Milter-Test: " + instr + b"\r\n\r\nx\r\n")
                assert r.raw == want, (instr, r.raw)
            r = send(c, b"Subject: 3\r\nX-Milter-Test: accept\r\n\r\nkept\r\n")
            assert QUEUED.match(r.raw), r.raw
            ask(c, "QUIT", 221)
        msg, = cap.wait_messages(1)
        assert msg.data.endswith(b"\r\nkept\r\n")
        time.sleep(0.2)
        assert len(cap.messages(include_incomplete=True)) == 1
        wait_for(lambda: m.events("close", last_session=True), what="milter close")
        # One milter connection for the whole session, reused by each transaction.
        kinds = [e for e, _ in m.events(last_session=True)]
        assert kinds.count("connect") == 1 and kinds.count("close") == 1, kinds
        assert kinds[-1] == "close" and kinds.count("mail") == 8, kinds
        ids = {f["macro:i"] for _, f in m.events("mail")}
        assert len(ids) == 8, ids


def test_helo_refused_holds_for_the_session(tmp):
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            c.expect("220 ")
            ask(c, "EHLO reject.helo", "550 5.7.1 Helo command rejected")
            # Refused at HELO: the milter's answer holds for the session.
            ask(c, "EHLO client.test", "550 5.7.1 Helo command rejected")
            ask(c, "QUIT", 221)
        assert len(m.events("helo")) == 1
        assert m.events("mail") == []


def test_connect_verdicts(tmp):
    with TestMilter(tmp / "tm", connect="reject") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            c.expect("554 %s Access denied" % HOSTNAME)
            ask(c, "MAIL FROM:<a@example.org>", "503 5.7.1 ")
            ask(c, "QUIT", 221)
    with TestMilter(tmp / "tm2", connect="tempfail") as m, \
            run(tmp / "2", m.address) as (cap, s):
        with RawClient(s.port) as c:
            c.expect("421 4.7.0 ")
            c.expect_closed()
    with TestMilter(tmp / "tm3", connect="accept") as m, \
            run(tmp / "3", m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: x\r\nX-Milter-Test: reject\r\n\r\nx\r\n")
            assert QUEUED.match(r.raw), r.raw
        cap.wait_messages(1)
        # Accepted at connect: the milter hears nothing more of the session.
        assert m.events("helo") == [] and m.events("mail") == []


def test_observe_mode_changes_and_refuses_nothing(tmp):
    body = (b"Subject: watched\r\nX-Milter-Test: add X-Added yes\r\n"
            b"X-Milter-Test: body other body\r\nX-Milter-Test: addrcpt <x@example.net>\r\n"
            b"\r\nkept body\r\n")
    with TestMilter(tmp / "tm") as m, run(tmp, m.address, mode="observe") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<reject-mail@example.org>", 250)
            ask(c, "RSET", 250)
            r = send(c, body)
            assert QUEUED.match(r.raw), r.raw
        msg, = cap.wait_messages(1)
        assert after_received(msg.data) == body and msg.rcpts == ["b@example.net"]
        s.wait_log(r"would_reject filter=m phase=mail ")
        s.wait_log(r"filter=m milter would_change address=\S+ headers_added=1 headers_changed=0 "
                   r"headers_deleted=0 rcpts_added=1 rcpts_removed=0 sender_changed=no "
                   r"body_replaced=yes quarantined=no refused=0")


def test_macros_and_arguments_per_stage(tmp):
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org> BODY=8BITMIME", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(b"Subject: m\r\n\r\nx\r\n.\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        wait_for(lambda: m.events("close", last_session=True), what="milter close")
        (_, conn), = m.events("connect", last_session=True)
        assert conn["macro:j"] == HOSTNAME.encode()
        assert conn["macro:{daemon_name}"] == b"in"
        assert conn["macro:{daemon_addr}"] == b"127.0.0.1"
        assert conn["macro:{daemon_port}"] == str(s.port).encode()
        assert conn["macro:{client_addr}"] == b"127.0.0.1"
        assert conn["macro:{client_name}"]
        assert conn["addr"] == b"127.0.0.1" and conn["port"] == conn["macro:{client_port}"]
        assert conn["macro:v"].startswith(b"sluice ")
        assert "macro:i" not in conn and "macro:{mail_addr}" not in conn
        (_, mail), = m.events("mail")
        assert mail["argv"] == b"<a@example.org> BODY=8BITMIME", mail
        assert mail["macro:{mail_addr}"] == b"a@example.org"
        assert re.match(rb"^[0-9a-f]{16}\.1$", mail["macro:i"]), mail
        assert "macro:{rcpt_addr}" not in mail
        (_, rcpt), = m.events("rcpt")
        assert rcpt["argv"] == b"<b@example.net>"
        assert rcpt["macro:{rcpt_addr}"] == b"b@example.net"
        assert "macro:{tls_version}" not in rcpt and "macro:{auth_authen}" not in rcpt
        (_, eom), = m.events("eom")
        assert eom["macro:i"] == mail["macro:i"]
        # The queue id is the one in our Received: field.
        msg, = cap.wait_messages(1)
        assert b"id " + mail["macro:i"] in msg.data


def test_tls_macros(tmp):
    """After STARTTLS the HELO macros carry the TLS facts (none before)."""
    from tlstest import make_pki, tls_listener, start_tls
    pki = make_pki(tmp)
    lst = tls_listener(pki, tls_ca_file=str(pki / "ca.pem"))
    with TestMilter(tmp / "tm") as m, \
         relay(tmp, filters=milter(m.address), chain=["m"], listener=lst) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            start_tls(c, pki, cert="client")
            ask(c, "EHLO client.test", 250)
            ask(c, "QUIT", 221)
        wait_for(lambda: m.events("close", last_session=True), what="milter close")
        (_, clear), (_, tls) = m.events("helo", last_session=True)
        assert "macro:{tls_version}" not in clear and "macro:{cipher}" not in clear, clear
        assert tls["macro:{tls_version}"] == b"TLSv1.3", tls
        assert tls["macro:{cipher}"].startswith(b"TLS_"), tls
        assert int(tls["macro:{cipher_bits}"]) >= 128, tls
        assert tls["macro:{cert_subject}"] == b"CN=client.test", tls
        assert tls["macro:{cert_issuer}"] == b"CN=Sluice Test CA", tls


def test_protocol_options_skip_steps_and_replies(tmp):
    body = (b"Subject:  two spaces\r\n folded\r\n"
            b"X-Milter-Test: add X-Added v\r\n\r\n" + b"x" * 98 + b"\r\n") * 1
    steps = ["NOHELO", "NODATA", "NR_HDR", "NR_RCPT", "NR_EOH", "NR_BODY", "LEADSPC"]
    with TestMilter(tmp / "tm", steps=steps) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<reject@example.net>", 250)    # no answer asked: accepted
            ask(c, "DATA", 354)
            c.send(body + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        msg, = cap.wait_messages(1)
        assert msg.data.endswith(b"X-Added: v\r\n\r\n" + b"x" * 98 + b"\r\n"), msg.data
        wait_for(lambda: m.events("close", last_session=True), what="milter close")
        assert m.events("helo") == [] and m.events("data") == []
        heads = m.events("header")
        # Leading space kept as negotiated; folding as LF, as Sendmail sends it.
        assert heads[0][1]["value"] == b"  two spaces\n folded", heads[0]


def test_body_in_chunks_and_skip(tmp):
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 200    # 200000 bytes
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
        wait_for(lambda: m.events("eom"), what="eom")
        lens = [int(e[1]["len"]) for e in m.events("body")]
        assert lens == [65535, 65535, 65535, 3395], lens
    with TestMilter(tmp / "tm2", steps=["SKIP"]) as m, run(tmp / "2", m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
        wait_for(lambda: m.events("eom"), what="eom")
        lens = [int(e[1]["len"]) for e in m.events("body")]
        assert lens == [65535], lens
        msg, = cap.wait_messages(1)
        assert msg.data.endswith(body)


def test_quarantine_becomes_a_header(tmp):
    body = b"Subject: q\r\nX-Milter-Test: quarantine looks suspicious\r\n\r\nx\r\n"
    with TestMilter(tmp / "tm") as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
        msg, = cap.wait_messages(1)
        assert msg.header_block().endswith(
            b"X-Sluice-Quarantine: looks suspicious\r\n\r\n"), msg.data
        s.wait_log(r'filter=m milter quarantine address=\S+ reason="looks suspicious"')


def test_ten_thousand_headers_fail_cleanly(tmp):
    body = b"Subject: flood\r\nX-Milter-Test: headers 10000\r\n\r\nx\r\n"
    with TestMilter(tmp / "tm") as m, run(tmp, m.address, on_error="accept") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
            ask(c, "QUIT", 221)
        msg, = cap.wait_messages(1)
        assert b"X-Flood" not in msg.data, msg.data[:300]
        s.wait_log(r'milter failed address=\S+ error="asked for more than 1000 header '
                   r'changes"')
        s.wait_log(r"filter=m phase=eom error=\"milter asked for more than 1000 header "
                   r"changes\" action=accept")
    with TestMilter(tmp / "tm2") as m, run(tmp / "2", m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert send(c, body).raw == TEMPFAIL_451
            # The session goes on; the milter stays failed for it (Postfix does so).
            ask(c, "MAIL FROM:<a@example.org>", 451)
            ask(c, "NOOP", 250)
            ask(c, "QUIT", 221)


def test_progress_restarts_the_timer_silence_does_not(tmp):
    opts = {"timeout_content": "1s"}
    with TestMilter(tmp / "tm") as m, run(tmp, m.address, **opts) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: p\r\nX-Milter-Test: progress 5\r\n\r\nx\r\n")
            assert QUEUED.match(r.raw), r.raw
            t = time.monotonic()
            r = send(c, b"Subject: p\r\nX-Milter-Test: sleep 4000\r\n\r\nx\r\n")
            assert r.raw == TEMPFAIL_451, r.raw
            assert time.monotonic() - t < 3.5     # the milter's answer never came
            ask(c, "QUIT", 221)
        s.wait_log(r'error="did not answer end of message within 1000ms"')
        assert len(cap.wait_messages(1)) == 1


def test_our_timer_fires_before_the_core_timeout(tmp):
    core = int(scaled(1) * 1000)
    sleep = 2 * core + 500
    with TestMilter(tmp / "tm") as m, \
            run(tmp, m.address, timeout="%dms" % core) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: p\r\nX-Milter-Test: sleep %d\r\n\r\nx\r\n" % sleep)
            assert r.raw == TEMPFAIL_451, r.raw
            ask(c, "QUIT", 221)
        s.wait_log(r'filter=m phase=eom error="milter did not answer end of message before '
                   r'the filter\'s timeout \(%dms\)" action=tempfail' % core)
        assert "timeout after %dms" % core not in s.log()


def test_unix_socket(tmp):
    with TestMilter(tmp / "tm", unix=True) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, b"Subject: u\r\nX-Milter-Test: add X-Unix yes\r\n\r\nx\r\n")
            assert QUEUED.match(r.raw), r.raw
        msg, = cap.wait_messages(1)
        assert b"\r\nX-Unix: yes\r\n" in msg.data


def test_milter_down(tmp):
    address = "inet:%d@127.0.0.1" % free_port()
    with run(tmp, address) as (cap, s):
        with RawClient(s.port) as c:
            c.expect("421 4.7.0 ")
        s.wait_log(r'milter failed address=%s error="cannot connect to %s: connect: '
                   r'Connection refused"' % (re.escape(address), re.escape(address)))
    with run(tmp / "2", address, on_error="accept") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, b"Subject: x\r\n\r\nx\r\n").raw)
        cap.wait_messages(1)


# ---------------------------------------------------------------- opendkim

def _dkim_roundtrip(tmp, canon):
    body = (b"From: Alice <a@example.org>\r\nTo: b@example.net\r\n"
            b"Subject: signed\r\n\tand folded\r\nDate: Sun, 29 Nov 2026 04:00:00 +0000\r\n"
            b"Message-ID: <1@example.org>\r\n\r\nHello,\r\n..dot line\r\n\r\n\r\n")
    with OpenDkim(tmp / "dkim", canon) as d, run(tmp, d.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = send(c, body)
            assert QUEUED.match(r.raw), r.raw
        msg, = cap.wait_messages(1)
        data = msg.unstuffed()
        assert b"\r\nDKIM-Signature: v=1; a=rsa-sha256; c=%s; d=example.org; s=test;" % \
            canon.encode() in data, data[:600]
        assert d.verify(data), data
        # A changed body no longer verifies: the check can fail.
        assert not d.verify(data.replace(b"Hello,", b"Hallo,"))


def test_opendkim_signs_relaxed(tmp):
    _dkim_roundtrip(tmp, "relaxed/relaxed")


def test_opendkim_signs_simple(tmp):
    _dkim_roundtrip(tmp, "simple/simple")


# ---------------------------------------------------------------- bad milters

def _bad(tmp, handler, lines, want, opts=None, log=None):
    """A RawMilter running handler; the client sends lines (the last one's
    reply must match want); then the session goes on (RSET, QUIT)."""
    with RawMilter(handler) as m, run(tmp, m.address, **(opts or {})) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            for line in lines[:-1]:
                c.send(line)
                c.read_reply()
            c.send(lines[-1])
            r = c.expect(want)
            ask(c, "RSET", 250)
            ask(c, "QUIT", 221)
        if log:
            s.wait_log(log % {"addr": re.escape(m.address)})
        return m, r


ENVELOPE = [b"MAIL FROM:<a@example.org>\r\n", b"RCPT TO:<b@example.net>\r\n", b"DATA\r\n"]
MESSAGE = b"Subject: bad\r\n\r\n" + b"z" * 100 + b"\r\n.\r\n"


def test_milter_closes_mid_message(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"B"])
        p.sock.close()
    _bad(tmp, handler, ENVELOPE + [MESSAGE], "451 4.7.1 ",
         log=r'milter failed address=%(addr)s error="closed the connection while we '
             r'waited for the answer to body"')


def test_milter_answers_garbage(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"M"])
        p.raw(b"\x00\x00\x00\x05Zjunk")
        p.frame()
    _bad(tmp, handler, [b"MAIL FROM:<a@example.org>\r\n"], "451 4.7.1 ",
         log=r'milter failed address=%(addr)s error="answered with unknown code 0x5a"')


def test_milter_malformed_reply_code(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"R"])
        p.send(b"y", b"250 ok\0")
        p.frame()
    _bad(tmp, handler, ENVELOPE[:2], "450 4.7.1 ",
         log=r'milter failed address=%(addr)s error="sent a malformed reply code '
             r'\'250 ok\'"')


def test_milter_frame_too_long(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"R"])
        p.raw(b"\x7f\xff\xff\xff" + b"c" * 1000)
        p.frame()
    _bad(tmp, handler, ENVELOPE[:2], "450 4.7.1 ",
         log=r'milter failed address=%(addr)s error="frame longer than the protocol '
             r'allows while we waited for the answer to rcpt"')


def test_milter_never_answers(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"M"])
        p.frame(timeout=5)
    t = time.monotonic()
    _bad(tmp, handler, [b"MAIL FROM:<a@example.org>\r\n"], "451 4.7.1 ",
         opts={"timeout_command": "500ms"},
         log=r'filter=m phase=mail error="milter did not answer mail within 500ms" '
             r'action=tempfail')
    assert time.monotonic() - t < scaled(8)


def test_milter_negotiates_actions_not_offered(tmp):
    def handler(p):
        p.negotiate(actions=0x3ff)
        p.frame()
    with RawMilter(handler) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            c.expect("421 4.7.0 ")
        s.wait_log(r'error="negotiated actions 0x3ff that were not offered \(0x1ff\)"')


def test_milter_bad_version(tmp):
    def handler(p):
        p.negotiate(version=7)
        p.frame()
    with RawMilter(handler) as m, run(tmp, m.address, on_error="accept") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, b"Subject: x\r\n\r\nx\r\n").raw)
        s.wait_log(r'error="speaks protocol version 7, not 2 to 6"')
        cap.wait_messages(1)


def test_milter_change_outside_end_of_message(tmp):
    def handler(p):
        p.negotiate()
        p.until([b"R"])
        p.send(b"h", b"X-Early\0v\0")
        p.frame()
    _bad(tmp, handler, ENVELOPE[:2], "450 4.7.1 ",
         log=r'error="sent addheader in answer to rcpt \(changes come only at end of '
             r'message\)"')


def test_milter_change_not_negotiated(tmp):
    def handler(p):
        p.negotiate(actions=0)
        p.until([b"E"])
        p.send(b"h", b"X-Sneaky\0v\0")
        p.send(b"c")
        p.frame()
    m, r = _bad(tmp, handler, ENVELOPE + [MESSAGE], "451 4.7.1 ",
                log=r'error="sent addheader without having negotiated it"')


def test_milter_answers_unasked(tmp):
    def handler(p):
        p.negotiate(protocol=0x8000)      # NR_RCPT: no answer to RCPT
        p.until([b"R"])
        p.send(b"c")                      # ... but one comes anyway
        p.frame()
    with RawMilter(handler) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            s.wait_log(r'error="sent continue without being asked"')
            ask(c, "DATA", "451 4.7.1 ")
            ask(c, "QUIT", 221)


def test_exact_frames_with_noreply_steps(tmp):
    """What sluice sends, frame by frame, to a milter that asked for no
    replies to headers, end of headers and body chunks and no HELO."""
    protocol = 0x80 | 0x40000 | 0x80000 | 0x2        # NR_HDR NR_EOH NR_BODY NOHELO
    body = (b"Subject: one\r\n two\r\nX-B: b\r\n\r\n" +
            (b"w" * 998 + b"\r\n") * 70)           # 70000 body bytes

    def handler(p):
        p.negotiate(protocol=protocol)
        p.until([b"Q"])
    with RawMilter(handler) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, body).raw)
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        # Connection 0 was the harness's probe (greeting, QUIT).
        assert b"".join(m.codes(0)) == b"ODCQ", m.codes(0)
        wait_for(lambda: b"Q" in m.codes(1), what="SMFIC_QUIT")
        codes = b"".join(m.codes(1))
        assert codes == b"ODCDMDRDTLLDNBBDEAQ", codes
        f = m.session(1)
        assert f[0][1] == struct.pack(">III", 6, 0x1ff, 0x1ff7ff)
        assert f[1][1].startswith(b"Cj\0mx.test\0{daemon_name}\0in\0")
        host, rest = f[2][1].split(b"\0", 1)
        assert rest[:1] == b"4" and rest[3:] == b"127.0.0.1\0", f[2]
        assert f[4][1] == b"<a@example.org>\0"
        assert f[6][1] == b"<b@example.net>\0"
        assert f[7][1].startswith(b"Ti\0")
        assert f[9][1] == b"Subject\0one\n two\0", f[9]
        assert f[10][1] == b"X-B\0b\0"
        assert [len(d) for c, d in f if c == b"B"] == [65535, 70000 - 65535]
        assert f[11][1].startswith(b"Ni\0") and f[15][1].startswith(b"Ei\0")


def test_macro_lists_asked_by_the_milter(tmp):
    lists = struct.pack(">I", 0) + b"{client_addr} {unknown} j\0" + \
        struct.pack(">I", 2) + b"{mail_addr}\0"

    def handler(p):
        p.negotiate(actions=0x1ff, lists=lists)
        p.until([b"Q"])
    with RawMilter(handler) as m, run(tmp, m.address) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert QUEUED.match(send(c, b"Subject: x\r\n\r\nx\r\n").raw)
            ask(c, "QUIT", 221)
        wait_for(lambda: b"Q" in m.codes(1), what="SMFIC_QUIT")
        macros = frames_of(m.session(1), b"D")
        assert macros[0] == b"C{client_addr}\x00127.0.0.1\x00j\x00mx.test\x00", macros[0]
        assert macros[1] == b"M{mail_addr}\0a@example.org\0", macros[1]


def test_auth_macros(tmp):
    """{auth_type} and {auth_authen} carry the SMTP AUTH identity."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    users = tmp / "users"
    users.write_text("alice:%s\n" % crypt.crypt("pw-1", crypt.mksalt(crypt.METHOD_SHA512)))
    users.chmod(0o644)
    reachable(users)
    listener = {"auth": "offer", "auth_backend": "u", "auth_plaintext": True,
                "auth_fail_delay": Raw("0s")}
    glob = {"auth": Titled({"u": {"type": "passwd_file", "path": str(users)}})}
    with TestMilter(tmp / "tm") as m, \
         relay(tmp, filters=milter(m.address), chain=["m"], listener=listener,
               globals=glob) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "AUTH PLAIN " + base64.b64encode(b"\0alice\0pw-1").decode(), 235)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "QUIT", 221)
        wait_for(lambda: m.events("close", last_session=True), what="milter close")
        (_, mail), = m.events("mail")
        assert mail["macro:{auth_authen}"] == b"alice", mail
        assert mail["macro:{auth_type}"] == b"PLAIN", mail


run_tests(globals())
