#!/usr/bin/python3
"""Envelope and header changes by filters at the end of the message
(sluice_rcpt_add, sluice_rcpt_remove, sluice_mail_change,
sluice_header_remove) and authentication results (sluice_authres_*),
through the envprobe test plugin: what the backend (SMTP, LMTP, maildir)
sees and gets, what the client hears, and what is logged; also from a
PENDING end of message, and refused outside it."""

import re
import time

from sluicetest import *

BODY = b"Subject: envelope\r\nFrom: a@example.org\r\n\r\nbody\r\n"
SENDER = "a@example.org"
QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as C\d+T\d+\r\n$")
REPLAY_451 = (b"451 4.3.0 Message could not be handed on after a filter "
              b"changed its envelope, try again later\r\n")
DISCARDED = b"250 2.0.0 Ok: message discarded by policy\r\n"


# ---------------------------------------------------------------- helpers

def _plugin():
    path = sluice_binary().resolve().parent.parent / "tests" / "plugins" / \
        ".libs" / "envprobe.so"
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def _filters(**opts):
    f = {"module": "envprobe", "timeout": "10s"}
    f.update(opts)
    return {"env": f}


def _config(cap, lmtp=False, listener=None, **opts):
    return standard_config(cap.address, lmtp=lmtp, chain=["env"],
                           filters=_filters(**opts), listener=listener,
                           globals={"load": [str(_plugin())]})


def _maildir_config(maildir, **opts):
    lst = {"listen": ["127.0.0.1:%d" % free_port()], "backend": "md",
           "chain": ["env"], "received_header": False}
    return {"listeners": {"in": lst},
            "backends": {"md": {"type": "maildir", "maildir": str(maildir)}},
            "filters": _filters(**opts),
            "globals": standard_globals(load=[str(_plugin())])}


def _send(s, rcpts, body=BODY, sender=SENDER):
    """One session, one transaction; the reply to the final dot."""
    with RawClient(s.port) as c:
        hello(c)
        r = transaction(c, body, sender=sender, rcpts=rcpts)
        ask(c, "QUIT", 221)
    return r


def _conn_of(cap, m):
    conn, = [c for c in cap.connections() if m.serial in c.messages]
    return conn


def _upto_data(conn):
    """The connection's command lines up to and including its first DATA
    (XCLIENT/XFORWARD left out)."""
    out = []
    for cmd in conn.commands:
        verb = cmd.split(" ", 1)[0].upper()
        if verb in ("XCLIENT", "XFORWARD"):
            continue
        out.append(cmd)
        if verb == "DATA":
            return out
    raise AssertionError("no DATA in %r" % conn.commands)


def _no_message(cap):
    time.sleep(0.3)
    msgs = cap.messages(include_incomplete=True)
    assert msgs == [], msgs


def _op(phase, op, arg, rc):
    """The envprobe log line for one call."""
    return r"filter=env envprobe phase=%s op=%s arg=%s rc=%s$" % (
        re.escape(phase), re.escape(op), re.escape(arg), re.escape(str(rc)))


# ---------------------------------------------------------------- adding

def test_added_rcpt_reaches_backend_in_one_transaction(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_add=["added@example.net",
                                       "second@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail_from == SENDER
        assert m.rcpts == ["b@example.net", "added@example.net",
                           "second@example.net"], m.rcpts
        assert m.data.endswith(BODY), m.data
        cmds = _upto_data(_conn_of(cap, m))
        verbs = [c.split(" ", 1)[0].upper() for c in cmds]
        # no RSET, one MAIL: the added ones simply follow
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA"], cmds
        assert cmds[3:5] == ["RCPT TO:<added@example.net>",
                             "RCPT TO:<second@example.net>"], cmds
        assert len(cap.messages()) == 1
        s.wait_log(_op("eom", "rcpt_add", "<added@example.net>", 0))
        s.wait_log(r"filter=env rcpt_add rcpt=<second@example\.net>$")
        s.wait_log(r"done txn=1 result=accepted .*rcpts=<b@example\.net>,"
                   r"<added@example\.net>,<second@example\.net> nrcpt=3 ")


def test_invalid_added_rcpt_refused(tmp):
    """Mailboxes a client could not have sent are refused with -1 and
    never reach the backend."""
    bad = ["with space@example.net", "<angle@example.net>", "",
           "x" * 300 + "@example.net"]
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_add=bad), tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>"], m.rcpt_lines
        for b in bad:
            s.wait_log(_op("eom", "rcpt_add", "<%s>" % b, -1))


def test_added_rcpt_refused_5xx_is_dropped(tmp):
    script = {"rules": [{"phase": "rcpt", "match": "added@",
                         "reply": "550 5.1.1 No such user here"}]}
    with Capture(tmp / "cap", script=script) as cap, \
         Sluice(_config(cap, rcpt_add=["added@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.rcpts == ["b@example.net", "c@example.net"], m.rcpts
        assert [x["accepted"] for x in m.rcpt_records] == [True, True, False]
        s.wait_log(r"envelope added rcpt=<added@example\.net> refused "
                   r"code=550 text=\"[^\"]*No such user here\" dropped")
        s.wait_log(r"done txn=1 result=accepted .*rcpts=<b@example\.net>,"
                   r"<c@example\.net> nrcpt=2 ")


def test_added_rcpt_tempfailed_makes_message_451(tmp):
    """A 4xx to an added recipient: the client retries the whole message
    (451 4.3.0), the backend gets none of it; the session goes on and
    the next transaction is delivered."""
    script = {"rules": [{"phase": "rcpt", "match": "added@", "times": 1,
                         "reply": "450 4.2.0 Mailbox busy"}]}
    with Capture(tmp / "cap", script=script) as cap, \
         Sluice(_config(cap, rcpt_add=["added@example.net"]),
                tmp / "s") as s:
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, BODY, rcpts=["b@example.net"])
            assert r.raw == REPLAY_451, r.raw
            s.wait_log(r"envelope replay failed step=rcpt error=\S+ code=450")
            s.wait_log(r"done txn=1 result=tempfail ")
            _no_message(cap)
            # the same session, a second transaction: delivered
            r = transaction(c, BODY, rcpts=["b@example.net"])
            assert QUEUED.match(r.raw), r.raw
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpts == ["b@example.net", "added@example.net"], m.rcpts


# ---------------------------------------------------------------- removing

def test_removed_rcpt_restarts_backend_transaction(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_remove=["c@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net", "d@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.rcpts == ["b@example.net", "d@example.net"], m.rcpts
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>",
                                "RCPT TO:<d@example.net>"], m.rcpt_lines
        cmds = _upto_data(_conn_of(cap, m))
        verbs = [c.split(" ", 1)[0].upper() for c in cmds]
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RSET",
                         "MAIL", "RCPT", "RCPT", "DATA"], cmds
        # the sender goes again exactly as it went first
        assert cmds[6] == cmds[1], cmds
        assert len(cap.messages(include_incomplete=True)) == 1
        s.wait_log(_op("eom", "rcpt_remove", "<c@example.net>", 0))
        s.wait_log(r"done txn=1 result=accepted .*rcpts=<b@example\.net>,"
                   r"<d@example\.net> nrcpt=2 ")


def test_remove_unknown_rcpt_changes_nothing(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_remove=["nobody@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        verbs = [c.split(" ", 1)[0].upper()
                 for c in _upto_data(_conn_of(cap, m))]
        assert verbs == ["EHLO", "MAIL", "RCPT", "DATA"], verbs
        s.wait_log(_op("eom", "rcpt_remove", "<nobody@example.net>", -1))


def test_remove_then_add(tmp):
    """A removal and an addition together: one restart, the final list."""
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_remove=["b@example.net"],
                        rcpt_add=["new@example.net"]), tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<c@example.net>",
                                "RCPT TO:<new@example.net>"], m.rcpt_lines


def test_rcpt_refused_after_restart_makes_message_451(tmp):
    """The client was told 250 for b; if the backend refuses it on the
    replay, the message cannot be delivered as promised: 451."""
    script = {"rules": [{"phase": "rcpt", "match": "b@",
                         "on_transaction": 2,
                         "reply": "550 5.1.1 Gone meanwhile"}]}
    with Capture(tmp / "cap", script=script) as cap, \
         Sluice(_config(cap, rcpt_remove=["c@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert r.raw == REPLAY_451, r.raw
        s.wait_log(r"envelope replay failed step=rcpt error=\S+ code=550")
        _no_message(cap)


def test_removing_every_rcpt_discards(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, rcpt_remove=["b@example.net", "c@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert r.raw == DISCARDED, r.raw
        s.wait_log(r"discard txn=1 client=127\.0\.0\.1 "
                   r"reason=no-recipients-left")
        s.wait_log(r"done txn=1 result=discarded ")
        _no_message(cap)
        # the backend's open transaction was reset, not left behind
        conn, = cap.connections()
        verbs = conn.verbs()
        assert verbs[:5] == ["EHLO", "MAIL", "RCPT", "RCPT", "RSET"], verbs
        assert set(verbs[5:]) <= {"RSET", "QUIT"}, verbs


# ---------------------------------------------------------------- sender

def test_mail_change(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, mail_change="new@example.org"),
                tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<new@example.org>", m.mail
        assert m.rcpts == ["b@example.net", "c@example.net"], m.rcpts
        cmds = _upto_data(_conn_of(cap, m))
        verbs = [c.split(" ", 1)[0].upper() for c in cmds]
        assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "RSET", "MAIL",
                         "RCPT", "RCPT", "DATA"], cmds
        assert cmds[1] == "MAIL FROM:<a@example.org>", cmds
        s.wait_log(_op("eom", "mail_change", "<new@example.org>", 0))
        s.wait_log(r"done txn=1 result=accepted .*from=<new@example\.org> ")


def test_mail_change_to_null_sender(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, mail_change=""), tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<>", m.mail
        s.wait_log(_op("eom", "mail_change", "<>", 0))


# ---------------------------------------------------------------- LMTP

def test_lmtp_added_rcpt_gets_own_reply(tmp):
    with Capture(tmp / "cap", lmtp=True) as cap, \
         Sluice(_config(cap, lmtp=True, rcpt_add=["added@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert r.code == 250, r.raw
        m, = cap.wait_messages(1)
        assert m.rcpts == ["b@example.net", "added@example.net"], m.rcpts
        assert len(m.reply) == 2 and all(x.startswith("250 ")
                                         for x in m.reply), m.reply
        assert "<added@example.net>" in m.reply[1], m.reply


def test_lmtp_added_rcpt_failing_at_data_end(tmp):
    """The added recipient's own LMTP reply counts: one 452 and one 250
    cannot be said in one reply, so 451 (duplicates, never loss)."""
    script = {"rules": [{"phase": "data_end_rcpt", "match": "added@",
                         "reply": "452 4.2.2 Mailbox full"}]}
    with Capture(tmp / "cap", lmtp=True, script=script) as cap, \
         Sluice(_config(cap, lmtp=True, rcpt_add=["added@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert r.raw.startswith(b"451 4.3.0 "), r.raw
        s.wait_log(r"backend mixed lmtp replies ok=1")


def test_lmtp_replaced_rcpt(tmp):
    """LMTP takes one recipient per transaction from the client; a filter
    replacing it restarts the backend transaction with the new one."""
    with Capture(tmp / "cap", lmtp=True) as cap, \
         Sluice(_config(cap, lmtp=True, rcpt_remove=["b@example.net"],
                        rcpt_add=["new@example.net"]), tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert r.code == 250, r.raw
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<new@example.net>"], m.rcpt_lines
        assert len(m.reply) == 1 and m.reply[0].startswith("250 "), m.reply
        verbs = [c.split(" ", 1)[0].upper()
                 for c in _upto_data(_conn_of(cap, m))]
        assert verbs == ["LHLO", "MAIL", "RCPT", "RSET", "MAIL", "RCPT",
                         "DATA"], verbs


# ---------------------------------------------------------------- PENDING

def test_changes_from_pending_eom(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, listener={"received_header": False},
                        pending=True, mail_change="new@example.org",
                        rcpt_add=["added@example.net"],
                        rcpt_remove=["c@example.net"],
                        header_remove="X-Drop"), tmp / "s") as s:
        body = b"X-Drop: yes\r\nSubject: p\r\n\r\nbody\r\n"
        r = _send(s, ["b@example.net", "c@example.net"], body=body)
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<new@example.org>", m.mail
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>",
                                "RCPT TO:<added@example.net>"], m.rcpt_lines
        assert m.data == b"Subject: p\r\n\r\nbody\r\n", m.data
        for op, arg in (("mail_change", "<new@example.org>"),
                        ("rcpt_remove", "<c@example.net>"),
                        ("rcpt_add", "<added@example.net>"),
                        ("header_remove", "X-Drop")):
            s.wait_log(_op("eom-pending", op, arg, 0))


def test_no_changes_after_pending_eom_timed_out(tmp):
    """The hook's timeout (5 ms) expires before its timer (20 ms): the
    message goes on unchanged (on_error accept) and sluice_pending_ctx()
    gives the late timer nothing to change."""
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, pending=True, timeout="5ms", on_error="accept",
                        mail_change="new@example.org",
                        rcpt_add=["added@example.net"]), tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<a@example.org>", m.mail
        assert m.rcpt_lines == ["RCPT TO:<b@example.net>"], m.rcpt_lines
        s.wait_log(r"filter=env phase=eom error=\"timeout after 5ms\" "
                   r"action=accept")
        s.wait_log(r"^envprobe: pending ctx gone, nothing changed$")
        assert "phase=eom-pending" not in s.log()


# ---------------------------------------------------------------- headers

def test_header_remove(tmp):
    body = (b"X-Drop: first\r\nX-Keep: 2\r\nx-drop: second\r\n"
            b"Subject: h\r\n\r\nX-Drop: in the body\r\n")
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, listener={"received_header": False},
                        header_remove="X-Drop"), tmp / "s") as s:
        r = _send(s, ["b@example.net"], body=body)
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        # only the first field of that name, whatever its case
        assert m.data == (b"X-Keep: 2\r\nx-drop: second\r\nSubject: h\r\n"
                          b"\r\nX-Drop: in the body\r\n"), m.data
        s.wait_log(_op("eom", "header_remove", "X-Drop", 0))


def test_header_remove_absent(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, listener={"received_header": False},
                        header_remove="X-Absent"), tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.data == BODY, m.data
        s.wait_log(_op("eom", "header_remove", "X-Absent", -1))


# ---------------------------------------------------------------- authres

AUTHRES = "spf pass smtp.mailfrom=example.org"
SEEN = b"X-Authres-Seen: 1 spf=pass (smtp.mailfrom=example.org)\r\n"


def test_authres_visible_at_eom_and_cleared(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, listener={"received_header": False},
                        authres=AUTHRES), tmp / "s") as s:
        with RawClient(s.port) as c:
            hello(c)
            for _ in range(2):      # each transaction starts empty
                r = transaction(c, BODY, rcpts=["b@example.net"])
                assert QUEUED.match(r.raw), r.raw
            # a transaction ended by RSET leaves nothing behind either
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RSET", 250)
            r = transaction(c, BODY, rcpts=["b@example.net"])
            assert QUEUED.match(r.raw), r.raw
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(3)
        for m in msgs:
            head = m.header_block()
            assert head == b"Subject: envelope\r\nFrom: a@example.org\r\n" + \
                SEEN + b"\r\n", head
        log = s.log()
        assert len(re.findall(_op("mail", "authres_add", "spf", 0), log,
                              re.M)) == 4, log
        assert len(re.findall(r"op=authres_seen arg=\"1 spf=pass "
                              r"\(smtp\.mailfrom=example\.org\)\" rc=0$",
                              log, re.M)) == 3, log


# ---------------------------------------------------------------- outside EOM

def test_changes_refused_outside_eom(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(_config(cap, listener={"received_header": False},
                        outside=True), tmp / "s") as s:
        r = _send(s, ["b@example.net", "c@example.net"])
        assert QUEUED.match(r.raw), r.raw
        m, = cap.wait_messages(1)
        assert m.mail == "MAIL FROM:<a@example.org>", m.mail
        assert m.rcpts == ["b@example.net", "c@example.net"], m.rcpts
        assert m.data == BODY, m.data
        log = s.log()
        for phase in ("mail", "rcpt", "data"):
            for op in ("rcpt_add", "mail_change"):
                assert re.search(_op(phase, op, "<outside@x>", -1), log,
                                 re.M), (phase, op, log)
            assert re.search(_op(phase, "header_add", "X-Outside", -1), log,
                             re.M), (phase, log)
        # at the second RCPT and at DATA there is a recipient to remove
        assert re.search(_op("rcpt", "rcpt_remove", "<b@example.net>", -1),
                         log, re.M), log
        assert re.search(_op("data", "rcpt_remove", "<b@example.net>", -1),
                         log, re.M), log
        assert not re.search(r"op=\S+ arg=\S+ rc=0$", log, re.M), log


# ---------------------------------------------------------------- maildir

def test_maildir_mail_change_sets_return_path(tmp):
    maildir = give_to_daemon(tmp / "mail") / "Maildir"
    with Sluice(_maildir_config(maildir, mail_change="new@example.org"),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert r.code == 250, r.raw
        files = sorted((maildir / "new").iterdir())
        assert len(files) == 1, files
        got = files[0].read_bytes()
        assert got.startswith(b"Return-Path: <new@example.org>\n"), got


def test_maildir_removing_every_rcpt_discards(tmp):
    maildir = give_to_daemon(tmp / "mail") / "Maildir"
    with Sluice(_maildir_config(maildir, rcpt_remove=["b@example.net"]),
                tmp / "s") as s:
        r = _send(s, ["b@example.net"])
        assert r.raw == DISCARDED, r.raw
        s.wait_log(r"discard txn=1 client=127\.0\.0\.1 "
                   r"reason=no-recipients-left")
        new = maildir / "new"
        assert not new.exists() or list(new.iterdir()) == [], \
            list(new.iterdir())


run_tests(globals())
