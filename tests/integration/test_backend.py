#!/usr/bin/python3
"""Transparent mode against real backends: the backend's verdicts reach the
client, every backend failure becomes a 4xx (never 5xx on its behalf, never
a false 250), failover, connection reuse and limits, client identity by
XCLIENT/XFORWARD, LMTP, and a throughput run against Postfix's smtp-sink."""

import re
import threading
import time

from sluicetest import *

BODY = b"Subject: test\r\nFrom: a@example.org\r\n\r\nhello\r\n"


# ---------------------------------------------------------------- helpers

def timed(fn, *args):
    t0 = time.monotonic()
    r = fn(*args)
    return r, time.monotonic() - t0


def assert_4xx(reply, prefix):
    assert reply.code // 100 == 4, "expected a 4xx, got %r" % reply.text
    assert reply.first.startswith(prefix), "expected %r, got %r" % (
        prefix, reply.text)


# ---------------------------------------------------------------- verdicts

def test_rcpt_verdicts_relayed(tmp):
    script = {"rules": [
        {"phase": "rcpt", "match": "bad@",
         "reply": "550 5.1.1 <bad@example.net>: Recipient address rejected: "
                  "User unknown"},
        {"phase": "rcpt", "match": "later@",
         "reply": "451 4.2.0 <later@example.net>: Mailbox busy"},
        {"phase": "rcpt", "match": "multi@",
         "reply": ["550-5.7.1 first line", "550 5.7.1 second line"]},
    ]}
    with relay(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", "250 2.1.0")
            ask(c, "RCPT TO:<good@example.net>", "250 2.1.5")
            r = ask(c, "RCPT TO:<bad@example.net>", 550)
            assert r.raw == (b"550 5.1.1 <bad@example.net>: Recipient "
                             b"address rejected: User unknown\r\n"), r.raw
            r = ask(c, "RCPT TO:<later@example.net>", 451)
            assert r.raw == (b"451 4.2.0 <later@example.net>: Mailbox "
                             b"busy\r\n"), r.raw
            r = ask(c, "RCPT TO:<multi@example.net>", 550)
            assert r.raw == (b"550-5.7.1 first line\r\n"
                             b"550 5.7.1 second line\r\n"), r.raw
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            r = c.expect("250 2.0.0 Ok: queued as ")
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpts == ["good@example.net"], m.rcpts
        assert r.first == m.reply, (r.first, m.reply)
        assert m.data.endswith(BODY)
        s.wait_log(r"reject phase=rcpt by=backend code=550 "
                   r"rcpt=<bad@example.net>")
        s.wait_log(r"done txn=1 result=accepted .* nrcpt=1 ")


def test_data_end_verdicts_relayed(tmp):
    script = {"rules": [
        {"phase": "data_end", "match": "tx-reject",
         "reply": "554 5.7.1 Rejected by content policy"},
        {"phase": "data_end", "match": "tx-later",
         "reply": "451 4.3.0 Try again later please"},
    ]}
    with relay(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, body=b"Subject: tx-reject\r\n\r\nx\r\n")
            assert r.raw == b"554 5.7.1 Rejected by content policy\r\n", r.raw
            r = transaction(c, body=b"Subject: tx-later\r\n\r\nx\r\n")
            assert r.raw == b"451 4.3.0 Try again later please\r\n", r.raw
            r = transaction(c, body=b"Subject: fine\r\n\r\nx\r\n")
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(3)
        assert [m.reply for m in msgs] == [
            "554 5.7.1 Rejected by content policy",
            "451 4.3.0 Try again later please", r.first], msgs
        # the backend's own queue id text, unchanged
        assert re.match(r"^250 2\.0\.0 Ok: queued as C\d+T3$", r.first), r.first
        s.wait_log(r"done txn=1 result=rejected .*backend=\"554 5\.7\.1 "
                   r"Rejected by content policy\"")
        s.wait_log(r"done txn=2 result=tempfail ")
        s.wait_log(r"done txn=3 result=accepted .*backend=\"%s\"" %
                   re.escape(r.first))


# ---------------------------------------------------------------- failures

def test_backend_not_listening(tmp):
    dead = free_port()
    with Sluice(standard_config("127.0.0.1:%d" % dead),
                tmp / "sluice") as s:
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@example.org>", 451)
            assert r.first.startswith("451 4.4.1 "), r.text
            # no transaction is open, the session goes on
            ask(c, "RCPT TO:<b@example.net>", "503 5.5.1")
            ask(c, "RSET", 250)
            r = ask(c, "MAIL FROM:<a@example.org>", 451)
            assert r.first.startswith("451 4.4.1 "), r.text
            ask(c, "QUIT", 221)
        s.wait_log(r"backend=out server=127\.0\.0\.1:%d marked down" % dead)
        s.wait_log(r"done txn=1 result=tempfail ")


def test_backend_hangs_at_greeting(tmp):
    with relay(tmp, script={"greeting_delay": 30}, backend_options={
             "connect_timeout": "1s", "command_timeout": "2s"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r, took = timed(ask, c, "MAIL FROM:<a@example.org>", 451)
            assert_4xx(r, "451 4.4.")
            assert 0.8 <= took <= scaled(6), took
            cap.set_script({})
            ask(c, "RSET", 250)
            r = transaction(c, BODY)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1


def test_backend_hangs_at_rcpt(tmp):
    script = {"rules": [{"phase": "rcpt", "action": "hang", "times": 1}]}
    with relay(tmp, script=script, backend_options={
             "command_timeout": "1s"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r, took = timed(ask, c, "RCPT TO:<b@example.net>", 451)
            assert_4xx(r, "451 4.4.")
            assert 0.8 <= took <= scaled(6), took
            # the transaction cannot go on, but the session can
            r = ask(c, "DATA", 451)
            ask(c, "RSET", 250)
            r = transaction(c, BODY)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(1)
        assert len(msgs) == 1 and msgs[0].connection == 2, msgs


def test_backend_hangs_after_dot(tmp):
    script = {"rules": [{"phase": "data_end", "action": "hang", "times": 1}]}
    with relay(tmp, script=script, backend_options={
             "data_timeout": "1s", "command_timeout": "2s"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r, took = timed(transaction, c, BODY)
            assert_4xx(r, "451 4.4.")
            assert 0.8 <= took <= scaled(6), took
            ask(c, "RSET", 250)
            r = transaction(c, BODY)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        first, second = cap.wait_messages(2)
        assert first.reply is None and second.accepted, (first, second)
        s.wait_log(r"done txn=1 result=tempfail ")
        s.wait_log(r"done txn=2 result=accepted ")


def test_backend_drops_mid_data(tmp):
    script = {"rules": [{"phase": "mid_data", "after_bytes": 2000,
                         "action": "drop", "times": 1}]}
    big = b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 3000
    with relay(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, body=big)
            assert_4xx(r, "451 4.4.")
            # the next transaction on the same client connection works
            r = transaction(c, body=big)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(1)
        assert len(msgs) == 1 and msgs[0].data.endswith(big), msgs
        partial = [m for m in cap.messages(include_incomplete=True)
                   if not m.complete]
        assert len(partial) == 1, partial
        s.wait_log(r"done txn=1 result=tempfail ")


def test_backend_garbage(tmp):
    garbage_ehlo = {"rules": [{"phase": "ehlo", "action": "garbage",
                               "bytes": "HTTP/1.1 400 Bad Request\r\n\r\n"}]}
    garbage_rcpt = {"rules": [{"phase": "rcpt", "action": "garbage",
                               "bytes": "\u0000junk\u00ff\r\n"}]}
    with relay(tmp, script=garbage_ehlo, backend_options={
             "command_timeout": "2s"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@example.org>", 451)
            assert r.first.startswith("451 4.4.1 "), r.text
            cap.set_script(garbage_rcpt)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r = ask(c, "RCPT TO:<b@example.net>", 451)
            assert r.first.startswith("451 4.4.1 "), r.text
            ask(c, "RSET", 250)
            cap.set_script({})
            r = transaction(c, BODY)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1


def test_backend_421_becomes_451(tmp):
    script = {"rules": [
        {"phase": "mail", "reply": "421 4.3.2 Service shutting down",
         "close": True, "times": 1},
        {"phase": "data_end", "match": "second",
         "reply": "421 4.3.2 Going away", "close": True, "times": 1},
    ]}
    with relay(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@example.org>", 451)
            assert r.first.startswith("451 4.4."), r.text
            ask(c, "NOOP", 250)  # the session stays open
            r = transaction(c, body=b"Subject: second\r\n\r\nx\r\n")
            assert_4xx(r, "451 4.4.")
            ask(c, "NOOP", 250)
            r = transaction(c, body=b"Subject: third\r\n\r\nx\r\n")
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        s.wait_log(r"backend closing code=421")
        msgs = cap.wait_messages(2)
        assert [m.accepted for m in msgs] == [False, True], msgs


def test_failover_to_second_server(tmp):
    dead = free_port()
    with Capture(tmp / "cap") as cap, \
         Sluice(standard_config(["127.0.0.1:%d" % dead, cap.address]),
                tmp / "sluice") as s:
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, BODY)
            assert r.code == 250, r.text
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.data.endswith(BODY)
        s.wait_log(r"backend=out server=127\.0\.0\.1:%d marked down for "
                   r"\d+ms failures=1" % dead)


# ---------------------------------------------------------------- pooling

def test_connection_reuse(tmp):
    # One worker: the pool is per worker, and the test needs to know which.
    with relay(tmp, globals={"workers": 1},
               backend_options={"max_age": "1h"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        s.wait_log(r"close client=127\.0\.0\.1 transactions=2 ")
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(3)
        conns = cap.connections()
        assert len(conns) == 1, conns
        assert [m.connection for m in msgs] == [conns[0].id] * 3, msgs
        assert conns[0].verbs().count("EHLO") == 1, conns[0].commands


def test_connection_max_age(tmp):
    with relay(tmp, globals={"workers": 1},
               backend_options={"max_age": "1s"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        s.wait_log(r"close client=127\.0\.0\.1 transactions=1 ")
        time.sleep(1.3)
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        msgs = cap.wait_messages(2)
        assert msgs[0].connection != msgs[1].connection, msgs
        assert len(cap.connections()) == 2


def test_max_connections_limit(tmp):
    with relay(tmp, backend_options={"max_connections": 1}) as (cap, s):
        with RawClient(s.port) as a, RawClient(s.port) as b:
            hello(a)
            hello(b)
            ask(a, "MAIL FROM:<a@example.org>", 250)
            r = ask(b, "MAIL FROM:<b@example.org>", 451)
            assert r.first.startswith("451 4.3.2 "), r.text
            ask(a, "RCPT TO:<x@example.net>", 250)
            ask(a, "DATA", 354)
            a.send(BODY + b".\r\n")
            a.expect(250)
            ask(a, "QUIT", 221)
            ask(b, "QUIT", 221)
        s.wait_log(r"backend=out connection limit 1 reached")
        assert len(cap.wait_messages(1)) == 1
        assert len(cap.connections()) == 1


# ---------------------------------------------------------------- identity

def test_xclient(tmp):
    script = {"xclient": "NAME ADDR PORT PROTO HELO"}
    with relay(tmp, script=script) as (cap, s):
        with RawClient(s.port) as c:
            port = c.sock.getsockname()[1]
            hello(c, helo="client.helo.test")
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        conn, = [x for x in cap.connections() if x.id == m.connection]
        # NAME: the verified reverse name (unbound answers 127.0.0.1 itself)
        want = ("XCLIENT NAME=localhost ADDR=127.0.0.1 PORT=%d "
                "PROTO=ESMTP HELO=client.helo.test" % port)
        assert conn.commands[:4] == [
            "EHLO %s" % HOSTNAME, want, "EHLO client.helo.test",
            "MAIL FROM:<a@example.org>"], conn.commands
        assert m.xclient == [want], m.xclient
        assert m.helo == "EHLO client.helo.test", m.helo


def test_xclient_helo_client_says_smtp(tmp):
    # without the reverse lookup the name is unavailable
    with relay(tmp, script={"xclient": True},
               listener={"reverse_lookup": False}) as (cap, s):
        with RawClient(s.port) as c:
            port = c.sock.getsockname()[1]
            c.expect(220)
            ask(c, "HELO old.client.test", "250 " + HOSTNAME)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        line = m.xclient[-1]
        assert line.startswith("XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 "
                               "PORT=%d PROTO=SMTP HELO=old.client.test "
                               % port), line
        assert " DESTADDR=127.0.0.1 DESTPORT=%d" % s.port in line, line


def test_identity_none(tmp):
    script = {"xclient": True, "xforward": True}
    with relay(tmp, script=script,
               backend_options={"identity": "none"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        conn, = cap.connections()
        assert conn.verbs()[:4] == ["EHLO", "MAIL", "RCPT", "DATA"], \
            conn.commands
        assert "XCLIENT" not in conn.verbs() and \
            "XFORWARD" not in conn.verbs(), conn.commands
        assert m.xclient == [] and m.xforward == [], (m.xclient, m.xforward)
        assert m.helo == "EHLO " + HOSTNAME, m.helo


def test_xforward(tmp):
    with relay(tmp, script={"xforward": True}) as (cap, s):
        with RawClient(s.port) as c:
            port = c.sock.getsockname()[1]
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        conn, = cap.connections()
        verbs = conn.verbs()
        assert verbs[:3] == ["EHLO", "XFORWARD", "MAIL"], conn.commands
        line, = m.xforward
        mt = re.match(r"^XFORWARD NAME=localhost ADDR=127\.0\.0\.1 "
                      r"PORT=%d PROTO=ESMTP HELO=client\.test "
                      r"IDENT=([0-9a-f]{16}) SOURCE=REMOTE$" % port, line)
        assert mt, line
        # IDENT is the session id the log lines carry
        s.wait_log(r"%s connect client=127\.0\.0\.1 port=%d " % (
            mt.group(1), port))


# ---------------------------------------------------------------- LMTP

def test_lmtp(tmp):
    script = {"rules": [{"phase": "data_end_rcpt", "match": "refuse@",
                         "reply": "550 5.2.1 <refuse@example.net> Mailbox "
                                  "disabled"}]}
    with relay(tmp, lmtp=True, script=script) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<ok@example.net>", 250)
            ask(c, "RCPT TO:<second@example.net>", "452 4.5.3 ")
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            ok = c.expect(250)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<refuse@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            bad = c.expect(550)
            assert bad.raw == (b"550 5.2.1 <refuse@example.net> Mailbox "
                               b"disabled\r\n"), bad.raw
            ask(c, "QUIT", 221)
        m1, m2 = cap.wait_messages(2)
        assert m1.rcpts == ["ok@example.net"], m1.rcpt_lines
        assert m1.reply == [ok.first], (m1.reply, ok.first)
        assert ok.first.startswith("250 2.1.5 <ok@example.net> Ok"), ok.first
        assert m2.reply == [bad.first]
        conn = [x for x in cap.connections() if x.id == m1.connection][0]
        assert conn.verbs()[0] == "LHLO", conn.commands
        assert "EHLO" not in conn.verbs()
        assert not any("second@" in l for l in conn.commands), conn.commands
        s.wait_log(r"done txn=2 result=rejected ")


# ---------------------------------------------------------------- load

def test_smtp_sink_200_messages(tmp):
    threads, per_thread = 10, 20
    with SmtpSink(tmp / "sink") as sink, \
         Sluice(standard_config(sink.address), tmp / "sluice") as s:
        results = []
        lock = threading.Lock()

        def worker(n):
            ok, errors = 0, []
            try:
                with smtp_client(s.port, timeout=scaled(20)) as c:
                    for i in range(per_thread):
                        try:
                            refused = c.sendmail(
                                "t%d@example.org" % n,
                                ["r%d-%d@example.net" % (n, i)],
                                b"Subject: load %d %d\r\n\r\nbody\r\n" %
                                (n, i))
                            if refused:
                                errors.append(refused)
                            else:
                                ok += 1
                        except Exception as e:
                            errors.append(repr(e))
                            break
            except Exception as e:
                errors.append(repr(e))
            with lock:
                results.append((ok, errors))

        ts = [threading.Thread(target=worker, args=(n,), daemon=True)
              for n in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(scaled(60))
        assert not any(t.is_alive() for t in ts), "client threads hung"
        errors = [e for _, errs in results for e in errs]
        assert not errors, errors[:5]
        sent = sum(ok for ok, _ in results)
        assert sent == threads * per_thread, sent
        sink.wait_count(sent, timeout=scaled(20))
        time.sleep(0.3)
        assert sink.count() == sent, (sink.count(), sent)


def test_pooled_connection_not_reused_before_its_rset_reply(tmp):
    """A client leaving while an end-of-message hook waits puts its backend
    connection back with an RSET in flight; the next session must not get
    that connection (and the RSET's reply) until the reply came."""
    f = {"slow": {"module": "access", "phase": "eom", "verdict": "continue",
                  "delay": "300ms"}}
    # the backend answers RSET late, so the window is wide open
    script = {"rules": [{"phase": "rset", "delay": 0.5,
                         "reply": "250 2.0.0 reset-done"}]}
    with relay(tmp, script=script, filters=f, chain=["slow"],
               globals={"workers": 1}) as (cap, s):
        bad = []
        for i in range(6):
            with RawClient(s.port) as c:
                hello(c)
                c.send(b"MAIL FROM:<a@example.org>\r\n")
                r = c.read_reply()
                # the RSET's late reply taken for MAIL's: desynchronised
                if r.code != 250 or "reset-done" in str(r):
                    bad.append((i, r))
                    continue
                ask(c, "RCPT TO:<b@example.net>", 250)
                ask(c, "DATA", 354)
                c.send(BODY + b".\r\n")
                time.sleep(0.05)    # leave while the hook still waits
            time.sleep(0.35)        # the hook ends: RSET sent, reply pending
        assert not bad, bad


run_tests(globals())
