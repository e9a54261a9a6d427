#!/usr/bin/python3
"""sluice-milter's modifications, checked byte for byte at the far end.
The chain behind sluice-milter changes the message (the envprobe test
plugin: recipients, sender, header removal, body; the access module's
add_header; authres's insert; a tiny fake milter in that chain for a
recipient with ESMTP arguments and a header changed in place) and the
MTA in front applies what sluice-milter asks for: sluice's own milter
filter for the header and body cases, a private Postfix for the
envelope ones.  The Capture behind the MTA records the MAIL and RCPT
lines and the message bytes."""
import re
import socket
import struct
import threading

import sluicetest
from sluicetest import *

# test_sluice_milter runs its own tests when imported: borrow its helpers
# with run_tests made a no-op for the import.
_run_tests, sluicetest.run_tests = sluicetest.run_tests, lambda *a, **k: None
try:
    import test_sluice_milter as tsm
finally:
    sluicetest.run_tests = _run_tests
from test_sluice_milter import LOCAL, SluiceMilter, Postfix

SENDER = "a@ok.example"
RCPT = "u@" + LOCAL


def _plugin():
    path = sluicetest._builddir() / "tests" / "plugins" / ".libs" / "envprobe.so"
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def _mconfig(chain, filters):
    """sluice-milter's config: chain of filters, envprobe loaded."""
    return standard_config("127.0.0.9:9", chain=list(chain), filters=filters,
                           globals={"load": [str(_plugin())]})


def _env(**opts):
    return dict({"module": "envprobe", "timeout": "10s"}, **opts)


def _add(header):
    return {"module": "access", "phase": "eom", "match": ["*"],
            "verdict": "continue", "add_header": header}


def _front(tmp, milter):
    """A sluice calling sluice-milter, without a Received field of its
    own, in front of a Capture."""
    filters = {"m": {"module": "milter", "address": milter.address,
                     "timeout": "30s"}}
    return relay(tmp, chain=["m"], filters=filters,
                 listener={"received_header": False})


def _one(cap, timeout=10):
    wait_for(lambda: any(x.accepted for x in cap.messages()),
             timeout=scaled(timeout), what="message at the backend")
    msgs = cap.messages()
    assert len(msgs) == 1 and msgs[0].accepted, msgs
    return msgs[0]


def _through_front(tmp, mcfg, body, rcpts=(RCPT,), sender=SENDER):
    """body through front sluice -> sluice-milter: the captured message
    and sluice-milter's log."""
    with SluiceMilter(mcfg, tmp / "milter") as m, _front(tmp / "f", m) as (cap, s):
        try:
            step, r = tsm._session(s.port, sender, list(rcpts), body)
            assert step == "data" and r.code == 250, (step, r)
            return _one(cap), m.log()
        except BaseException:
            print(m.log_tail(60))
            print(s.log_tail(60))
            raise


# ------------------------------------------------------------ fake milter

class FakeMilter:
    """A milter server on loopback that says continue to everything and
    at the end of the message sends the modifications in `mods` (a list
    of (command letter, payload bytes)), then continue."""

    def __init__(self, mods):
        self.mods = mods
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.errors = []
        self.eoms = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port

    def _serve(self):
        while not self.stop_event.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    @staticmethod
    def _recv(c, n):
        data = b""
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    @staticmethod
    def _frame(cmd, data=b""):
        return struct.pack(">I", len(data) + 1) + cmd + data

    def _conn(self, c):
        c.settimeout(scaled(30))
        try:
            for _ in range(10000):
                n, = struct.unpack(">I", self._recv(c, 4))
                if n < 1 or n > 1 << 20:
                    raise ValueError("frame length %d" % n)
                frame = self._recv(c, n)
                cmd, data = frame[:1], frame[1:]
                if cmd == b"O":
                    ver, act, proto = struct.unpack(">III", data[:12])
                    c.sendall(self._frame(b"O", struct.pack(">III", 6, act, 0)))
                elif cmd in (b"D", b"A"):
                    continue
                elif cmd == b"Q":
                    return
                elif cmd == b"E":
                    self.eoms += 1
                    for mc, payload in self.mods:
                        c.sendall(self._frame(mc, payload))
                    # continue, not accept: the rest of the chain runs
                    c.sendall(self._frame(b"c"))
                else:
                    c.sendall(self._frame(b"c"))
        except (EOFError, OSError):
            pass
        except Exception as e:      # a protocol surprise: the test says so
            self.errors.append(repr(e))
        finally:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.sock.close()
        self.thread.join(scaled(5))


def _fake(m):
    return {"module": "milter", "address": m.address, "timeout": "10s"}


# ------------------------------------------- sluice's milter filter as MTA

HEAD = (b"From: a@ok.example\r\n"
        b"X-Keep: 1\r\n"
        b"X-Drop: old\r\n"
        b"Subject: mods\r\n")


def test_header_delete_and_append(tmp):
    """envprobe removes X-Drop (smfi_chgheader with no value, a field in
    the middle), access appends X-Added (smfi_addheader)."""
    cfg = _mconfig(["env", "add"], {"env": _env(header_remove="X-Drop"),
                                    "add": _add("X-Added: yes")})
    msg, log = _through_front(tmp, cfg, HEAD + b"\r\nbody\r\n")
    assert msg.unstuffed() == (b"From: a@ok.example\r\nX-Keep: 1\r\n"
                               b"Subject: mods\r\nX-Added: yes\r\n\r\nbody\r\n"), msg.data
    assert "envprobe phase=eom op=header_remove arg=X-Drop rc=0" in log, log


def test_header_change_in_place(tmp):
    """The last field removed (envprobe) and one of the same name
    appended (access): sluice-milter pairs them as one change
    (smfi_chgheader X-Drop 1); the second test below has a field in the
    middle changed.  Also a first X-Drop among two removed (delete)."""
    cfg = _mconfig(["env", "add"], {"env": _env(header_remove="X-Drop"),
                                    "add": _add("X-Drop: new value")})
    msg, _ = _through_front(tmp / "a", cfg, b"From: a@ok.example\r\nX-Keep: 1\r\n"
                            b"X-Drop: old\r\n\r\nb\r\n")
    assert msg.header_block() == (b"From: a@ok.example\r\nX-Keep: 1\r\n"
                                  b"X-Drop: new value\r\n\r\n"), msg.data
    head = b"From: a@ok.example\r\nX-Drop: old\r\nX-Keep: 1\r\nX-Drop: second\r\n"
    msg, _ = _through_front(tmp / "b", cfg, head + b"\r\nb\r\n")
    assert msg.header_block() == (b"From: a@ok.example\r\nX-Keep: 1\r\n"
                                  b"X-Drop: second\r\nX-Drop: new value\r\n\r\n"), msg.data


def test_header_change_by_fake_milter(tmp):
    """A milter in sluice-milter's chain changes the 2nd X-Multi field in
    place (SMFIR_CHGHEADER): sluice-milter passes on exactly that field."""
    head = (b"From: a@ok.example\r\nX-Multi: one\r\nSubject: s\r\n"
            b"X-Multi: two\r\nX-Multi: three\r\nTo: u@local.test\r\n")
    mods = [(b"m", struct.pack(">I", 2) + b"X-Multi\0changed two\0")]
    with FakeMilter(mods) as fm:
        cfg = _mconfig(["fake"], {"fake": _fake(fm)})
        msg, _ = _through_front(tmp, cfg, head + b"\r\nb\r\n")
        assert fm.errors == [] and fm.eoms == 1, (fm.errors, fm.eoms)
    assert msg.header_block() == (b"From: a@ok.example\r\nX-Multi: one\r\nSubject: s\r\n"
                                  b"X-Multi: changed two\r\nX-Multi: three\r\n"
                                  b"To: u@local.test\r\n\r\n"), msg.data


def test_header_insert_top_and_middle(tmp):
    """authres inserts at 0 (smfi_insheader 0); a fake milter inserts in
    the middle (SMFIR_INSHEADER at 2) and folds a value over two lines."""
    mods = [(b"i", struct.pack(">I", 2) + b"X-Mid\0a\n\tb\0")]
    with FakeMilter(mods) as fm:
        cfg = _mconfig(["fake", "ar"], {
            "fake": _fake(fm),
            "ar": {"module": "authres", "authserv_id": HOSTNAME}})
        msg, _ = _through_front(tmp, cfg, HEAD + b"\r\nbody\r\n")
    head = msg.header_block()
    first, rest = head.split(b"\r\n", 1)
    assert first.startswith(b"Authentication-Results: %s;" % HOSTNAME.encode()), head
    # authres may fold its field: skip its continuation lines
    while rest[:1] in (b" ", b"\t"):
        rest = rest.split(b"\r\n", 1)[1]
    assert rest == (b"From: a@ok.example\r\nX-Keep: 1\r\nX-Mid: a\r\n\tb\r\n"
                    b"X-Drop: old\r\nSubject: mods\r\n\r\n"), head


def test_body_replacement(tmp):
    """envprobe replaces the body (smfi_replacebody): new bytes exactly,
    a line starting with a dot stuffed on the wire, headers untouched."""
    cfg = _mconfig(["env"], {"env": _env(body_replace="new body\n.dot\nend\n")})
    msg, log = _through_front(tmp, cfg, HEAD + b"\r\nold body\r\nmore\r\n")
    assert msg.data == HEAD + b"\r\nnew body\r\n..dot\r\nend\r\n", msg.data
    assert "envprobe phase=eom op=body_replace arg=21 rc=0" in log, log


def test_body_replacement_large(tmp):
    """A new body over libmilter's 64 KiB chunk: sent in pieces, arrives whole."""
    line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\n"
    text = line * 2100                 # 136500 bytes with CRLF
    cfg = _mconfig(["env"], {"env": _env(body_replace=text)})
    msg, _ = _through_front(tmp, cfg, HEAD + b"\r\nold\r\n")
    want = text.replace("\n", "\r\n").encode()
    body = msg.unstuffed()[len(HEAD) + 2:]
    assert len(body) == len(want) and body == want, (len(body), len(want))


def test_envelope_through_front(tmp):
    """Recipient removed, one added, sender changed: the front sluice
    restarts the backend transaction with the final envelope."""
    cfg = _mconfig(["env"], {"env": _env(rcpt_remove=["gone@" + LOCAL],
                                         rcpt_add=["new@" + LOCAL],
                                         mail_change="changed@ok.example")})
    msg, _ = _through_front(tmp, cfg, HEAD + b"\r\nb\r\n",
                            rcpts=[RCPT, "gone@" + LOCAL])
    assert msg.mail_from == "changed@ok.example", msg.mail
    assert msg.rcpts == [RCPT, "new@" + LOCAL], msg.rcpt_lines
    assert msg.rcpt_lines == ["RCPT TO:<%s>" % RCPT, "RCPT TO:<new@%s>" % LOCAL], \
        msg.rcpt_lines


def test_rcpt_add_with_args_through_front(tmp):
    """A recipient added with ESMTP arguments (SMFIR_ADDRCPT_PAR from a
    milter in sluice-milter's chain): smfi_addrcpt_par, and the front
    sluice's RCPT to its backend carries the argument."""
    mods = [(b"2", b"<par@local.test>\0NOTIFY=NEVER\0")]
    with FakeMilter(mods) as fm:
        cfg = _mconfig(["fake"], {"fake": _fake(fm)})
        msg, log = _through_front(tmp, cfg, HEAD + b"\r\nb\r\n")
        assert fm.errors == [] and fm.eoms == 1, (fm.errors, fm.eoms)
    assert msg.rcpts == [RCPT, "par@" + LOCAL], msg.rcpt_lines
    assert msg.rcpt_lines[-1] == "RCPT TO:<par@local.test> NOTIFY=NEVER", msg.rcpt_lines


# ---------------------------------------------------------------- Postfix

def _postfix_run(tmp, mcfg, rcpts, fake=None):
    with SluiceMilter(mcfg, tmp / "milter") as m, \
            Capture(tmp / "cap") as cap, \
            Postfix(tmp / "pf", cap.address, m.address) as pf:
        try:
            assert tsm._send(pf.port, SENDER, list(rcpts), HEAD + b"\r\nb\r\n") == {}
            return _one(cap, 30), pf.log()
        except BaseException:
            print(pf.log()[-3000:])
            print(m.log_tail(60))
            raise


def test_postfix_envelope_changes(tmp):
    """Through Postfix: a recipient removed (smfi_delrcpt), one added
    (smfi_addrcpt), the sender changed (smfi_chgfrom); Postfix relays
    with exactly the new envelope."""
    cfg = _mconfig(["env"], {"env": _env(rcpt_remove=["gone@" + LOCAL],
                                         rcpt_add=["new@" + LOCAL],
                                         mail_change="changed@ok.example")})
    msg, _ = _postfix_run(tmp, cfg, [RCPT, "gone@" + LOCAL])
    assert msg.mail_from == "changed@ok.example", msg.mail
    # Postfix's SIZE is its own estimate: only its form is checked
    assert re.fullmatch(r"MAIL FROM:<changed@ok\.example> SIZE=\d+", msg.mail), msg.mail
    assert sorted(msg.rcpts) == sorted([RCPT, "new@" + LOCAL]), msg.rcpt_lines
    # Postfix adds ORCPT (the Capture offers DSN); gone@ is not there
    assert sorted(msg.rcpt_lines) == [
        "RCPT TO:<new@local.test> ORCPT=rfc822;new@local.test",
        "RCPT TO:<u@local.test> ORCPT=rfc822;u@local.test"], msg.rcpt_lines


def test_postfix_rcpt_add_with_args(tmp):
    """Through Postfix: smfi_addrcpt_par with NOTIFY=NEVER; Postfix keeps
    the DSN request of the added recipient (its delivery says so in the
    RCPT it relays when the backend offers DSN, and in its log)."""
    mods = [(b"2", b"<par@local.test>\0NOTIFY=NEVER\0")]
    with FakeMilter(mods) as fm:
        cfg = _mconfig(["fake"], {"fake": _fake(fm)})
        msg, pflog = _postfix_run(tmp, cfg, [RCPT])
        assert fm.errors == [] and fm.eoms == 1, (fm.errors, fm.eoms)
    assert sorted(msg.rcpts) == sorted([RCPT, "par@" + LOCAL]), msg.rcpt_lines
    # the NOTIFY=NEVER of the added recipient is what Postfix relays
    assert sorted(msg.rcpt_lines) == [
        "RCPT TO:<par@local.test> ORCPT=rfc822;par@local.test NOTIFY=NEVER",
        "RCPT TO:<u@local.test> ORCPT=rfc822;u@local.test"], (msg.mail, msg.rcpt_lines)


run_tests(globals())
