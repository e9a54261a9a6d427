#!/usr/bin/python3
"""The filter chain through the built-in "access" filter: a verdict at every
phase and what the client and the backend see, PENDING and timeouts,
on_error, observe mode, header changes, per-listener chains, the summary
line, and loading plugins."""

import re
import time

from sluicetest import *

BODY = b"Subject: hello\r\nFrom: a@example.org\r\n\r\nbody\r\n"


# ---------------------------------------------------------------- helpers

def access(phase, **opts):
    """An access filter instance's options."""
    d = {"module": "access", "phase": phase}
    d.update(opts)
    return d


def chained(tmp, filters, **kw):
    """relay() with a listener whose chain is the given filters in order."""
    return relay(tmp, filters=filters, chain=list(filters), **kw)


def multi(backend, listeners, filters):
    """Several listeners: {name: chain}; returns (config, {name: port})."""
    ports = {name: free_port() for name in listeners}
    ls = {}
    for name, chain in listeners.items():
        ls[name] = {"listen": ["127.0.0.1:%d" % ports[name]],
                    "backend": "out"}
        if chain:
            ls[name]["chain"] = list(chain)
    return {"listeners": ls,
            "backends": {"out": {"type": "smtp", "servers": [backend]}},
            "filters": filters, "globals": standard_globals()}, ports


def no_message(cap, s):
    """Nothing reached the backend (checked after the daemon is idle)."""
    time.sleep(0.2)
    msgs = cap.messages(include_incomplete=True)
    assert msgs == [], msgs


# ---------------------------------------------------------------- phases

def test_reject_at_connect(tmp):
    with chained(tmp, {"gate": access("connect")}) as (cap, s):
        with RawClient(s.port) as c:
            r = c.read_reply()
            assert r.raw == b"554 %s Access denied\r\n" % \
                HOSTNAME.encode(), r.raw
            ask(c, "EHLO client.test", "503 5.7.1 ")
            ask(c, "MAIL FROM:<a@example.org>", "503 5.7.1 ")
            ask(c, "RCPT TO:<b@example.net>", "503 5.7.1 ")
            ask(c, "DATA", "503 5.7.1 ")
            ask(c, "QUIT", "221 ")
            c.expect_closed()
        s.wait_log(r"reject filter=gate phase=connect client=127\.0\.0\.1 ")
        assert cap.connections() == []


def test_connect_patterns_and_custom_reply(tmp):
    filters = {"gate": access("connect", match=["10.*", "192.0.2.*"]),
               "gate2": access("connect", match=["127.0.0.*"],
                               reply="550 5.7.1 You are not welcome")}
    cfg, ports = multi("127.0.0.1:9", {"a": ["gate"], "b": ["gate2"]},
                       filters)
    with Sluice(cfg, tmp / "sluice") as s:
        with RawClient(ports["a"]) as c:   # no pattern matches 127.0.0.1
            c.expect("220 %s ESMTP sluice" % HOSTNAME)
            ask(c, "QUIT", 221)
        with RawClient(ports["b"]) as c:
            r = c.read_reply()
            assert r.raw == b"550 %s You are not welcome\r\n" % \
                HOSTNAME.encode(), r.raw
            ask(c, "HELO x", "503 ")
            ask(c, "QUIT", 221)
        s.wait_log(r"reject filter=gate2 phase=connect client=127\.0\.0\.1 "
                   r"code=550 reason=\"You are not welcome\"")


def test_reject_at_helo(tmp):
    with chained(tmp, {"h": access("helo", match=["*.bad.test"])}) \
            as (cap, s):
        with RawClient(s.port) as c:
            c.expect(220)
            r = ask(c, "EHLO host.bad.test", 550)
            assert r.raw == b"550 5.7.1 Helo command rejected: access " \
                b"denied\r\n", r.raw
            # a refused HELO leaves no HELO behind
            ask(c, "MAIL FROM:<a@example.org>", "503 5.5.1 ")
            ask(c, "HELO good.test", "250 " + HOSTNAME)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        s.wait_log(r"reject filter=h phase=helo client=127\.0\.0\.1 ")


def test_reject_at_mail(tmp):
    with chained(tmp, {"acl": access("mail", match=["*@spam.example"])}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<x@SPAM.example>", 550)
            assert r.raw == b"550 5.7.1 Sender address rejected: access " \
                b"denied\r\n", r.raw
            ask(c, "RCPT TO:<b@example.net>", "503 5.5.1 ")
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        s.wait_log(r"done txn=1 result=rejected client=127\.0\.0\.1 "
                   r"helo=client\.test from=<x@SPAM\.example> rcpts=- "
                   r"nrcpt=0 size=0 filters=\"acl=reject@mail\" backend=- ")
        s.wait_log(r"done txn=2 result=accepted .*filters=\"acl=continue\"")
        m, = cap.wait_messages(1)
        assert not any("spam" in l.lower()
                       for conn in cap.connections() for l in conn.commands)


def test_reject_at_rcpt_with_custom_text(tmp):
    f = {"rcpt-acl": access("rcpt", match=["abuse@*", "*@blocked.example"],
                            reply="550 5.7.1 Recipient refused by local "
                                  "policy")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r = ask(c, "RCPT TO:<abuse@example.net>", 550)
            assert r.raw == b"550 5.7.1 Recipient refused by local policy" \
                b"\r\n", r.raw
            ask(c, "RCPT TO:<ok@example.net>", 250)
            r = ask(c, "RCPT TO:<x@blocked.example>", 550)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<ok@example.net>"], m.rcpt_lines
        s.wait_log(r"reject filter=rcpt-acl phase=rcpt client=127\.0\.0\.1 "
                   r"code=550 reason=\"Recipient refused by local policy\"")
        s.wait_log(r"done txn=1 result=accepted .*rcpts=<ok@example\.net> "
                   r"nrcpt=1 .*filters=\"rcpt-acl=reject@rcpt\"")


def test_reject_at_data(tmp):
    with chained(tmp, {"d": access("data", match=["*@nodata.example"])}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<x@nodata.example>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            r = ask(c, "DATA", 554)
            assert r.raw == b"554 5.7.1 Access denied\r\n", r.raw
            ask(c, "RSET", 250)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "a@example.org"
        conn, = cap.connections()
        assert conn.verbs().count("DATA") == 1, conn.commands


def test_reject_at_header(tmp):
    with chained(tmp, {"hdr": access("header", match=["Subject: *spam*"])}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, body=b"From: a@example.org\r\nSubject: buy "
                            b"SPAM now\r\n\r\nbody\r\n")
            assert r.raw == b"550 5.7.1 Message content rejected\r\n", r.raw
            # the backend transaction was reset: the next one is clean
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.data.endswith(BODY)
        assert len(cap.messages(include_incomplete=True)) == 1
        s.wait_log(r"reject filter=hdr phase=header ")
        s.wait_log(r"done txn=1 result=rejected .*filters=\"hdr=reject@header\"")


def test_reject_at_eom(tmp):
    with chained(tmp, {"e": access("eom", match=["*@late.example"])}) \
            as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, BODY, sender="x@late.example")
            assert r.raw == b"550 5.7.1 Message content rejected\r\n", r.raw
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        time.sleep(0.2)
        assert [m.mail_from for m in cap.messages(include_incomplete=True)] \
            == ["a@example.org"]
        s.wait_log(r"done txn=1 result=rejected .*filters=\"e=reject@eom\"")


# ---------------------------------------------------------------- verdicts

def test_tempfail_codes(tmp):
    f = {"tm": access("mail", match=["*@temp.example"], verdict="tempfail"),
         "tr": access("rcpt", match=["busy@*"], verdict="tempfail"),
         "tc": access("rcpt", match=["full@*"], verdict="tempfail",
                      reply="452 4.2.2 Mailbox full"),
         "th": access("header", match=["Subject: later*"],
                      verdict="tempfail")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<x@temp.example>", 451)
            assert r.raw == b"451 4.7.1 Service temporarily unavailable, " \
                b"try again later\r\n", r.raw
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<busy@example.net>", "450 4.7.1 Service "
                "temporarily unavailable")
            r = ask(c, "RCPT TO:<full@example.net>", 452)
            assert r.raw == b"452 4.2.2 Mailbox full\r\n", r.raw
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(b"Subject: later please\r\n\r\nx\r\n.\r\n")
            c.expect("451 4.7.1 ")
            ask(c, "QUIT", 221)
        s.wait_log(r"done txn=1 result=tempfail .*filters=\"tm=tempfail@mail")
        no_message(cap, s)


def test_disconnect(tmp):
    f = {"kick": access("rcpt", match=["bye@*"], verdict="disconnect")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r = ask(c, "RCPT TO:<bye@example.net>", 421)
            assert r.raw == b"421 4.7.0 Closing connection\r\n", r.raw
            c.expect_closed()
        s.wait_log(r"disconnect filter=kick phase=rcpt ")
        s.wait_log(r"done txn=1 result=aborted ")
        no_message(cap, s)
        # the daemon is fine
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)


def test_discard(tmp):
    f = {"bin": access("mail", match=["*@discard.example"],
                       verdict="discard")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, BODY, sender="x@discard.example")
            assert r.raw == b"250 2.0.0 Ok: message discarded by policy\r\n", \
                r.raw
            # the next transaction is delivered as usual
            r2 = transaction(c, BODY)
            assert r2.first.startswith("250 2.0.0 Ok: queued as "), r2.text
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        time.sleep(0.2)
        assert len(cap.messages(include_incomplete=True)) == 1
        assert m.mail_from == "a@example.org"
        conn, = cap.connections()
        assert conn.verbs()[:5] == ["EHLO", "MAIL", "RCPT", "RSET", "MAIL"], \
            conn.commands
        s.wait_log(r"discard txn=1 client=127\.0\.0\.1")
        s.wait_log(r"done txn=1 result=discarded ")


def test_accept_skips_later_filters(tmp):
    f = {"allow": access("mail", match=["vip@*"], verdict="accept"),
         "block": access("mail"),
         "rblock": access("rcpt", match=["blocked@*"])}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<other@example.org>", "550 5.7.1 ")
            ask(c, "MAIL FROM:<vip@example.org>", 250)
            # accept covered MAIL only: the RCPT filter still judges
            ask(c, "RCPT TO:<blocked@example.net>", "550 5.7.1 ")
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "vip@example.org"
        s.wait_log(r"done txn=1 result=rejected .*filters=\"allow=continue,"
                   r"block=reject@mail,rblock=continue\"")
        s.wait_log(r"done txn=2 result=accepted .*rblock=reject@rcpt\"")


def test_summary_keeps_accept(tmp):
    """An ACCEPT shows in the summary as name=accept@phase, even though the
    filter's hooks of later phases answered CONTINUE."""
    f = {"allow": access("mail", match=["vip@*"], verdict="accept"),
         "block": access("mail")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="vip@example.org").code == 250
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        s.wait_log(r"done txn=1 result=accepted .*filters=\"allow=accept@mail,"
                   r"block=continue\"")


# ---------------------------------------------------------------- PENDING

def test_pending_delay(tmp):
    f = {"slow": access("mail", match=["*@slow.example"], delay="300ms",
                        timeout="5s")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            t0 = time.monotonic()
            r = ask(c, "MAIL FROM:<x@slow.example>", 550)
            took = time.monotonic() - t0
            assert 0.28 <= took < scaled(3), took
            assert r.raw == b"550 5.7.1 Sender address rejected: access " \
                b"denied\r\n", r.raw
            # not matching: CONTINUE, also after the delay
            t0 = time.monotonic()
            ask(c, "MAIL FROM:<a@example.org>", 250)
            took = time.monotonic() - t0
            assert 0.28 <= took < scaled(3), took
            ask(c, "RSET", 250)
            ask(c, "QUIT", 221)


def _on_error_listeners(tmp, opts, error_re):
    """One listener per on_error value, each with its own failing filter."""
    filters = {}
    for action in ("tempfail", "accept", "reject"):
        d = access("mail", verdict="reject", on_error=action)
        d.update(opts)
        filters["f-" + action] = d
    with Capture(tmp / "cap") as cap:
        cfg, ports = multi(cap.address, {a: ["f-" + a] for a in
                                         ("tempfail", "accept", "reject")},
                           filters)
        with Sluice(cfg, tmp / "sluice") as s:
            t0 = time.monotonic()
            want = {"tempfail": b"451 4.7.1 Service temporarily unavailable, "
                                b"try again later\r\n",
                    "accept": None,
                    "reject": b"550 5.7.1 Sender address rejected: access "
                              b"denied\r\n"}
            for action, raw_reply in want.items():
                with RawClient(ports[action]) as c:
                    hello(c)
                    if raw_reply is None:
                        assert transaction(c, BODY).code == 250
                    else:
                        r = ask(c, "MAIL FROM:<a@example.org>",
                                int(raw_reply[:3]))
                        assert r.raw == raw_reply, (action, r.raw)
                    ask(c, "QUIT", 221)
                s.wait_log(r"filter=f-%s phase=mail error=%s action=%s" % (
                    action, error_re, action))
            # a late answer after a timeout is dropped, harmlessly
            time.sleep(max(0.0, 1.2 - (time.monotonic() - t0)))
            with RawClient(ports["accept"]) as c:
                hello(c)
                ask(c, "NOOP", 250)
                ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)


def test_timeout_applies_on_error(tmp):
    _on_error_listeners(tmp, {"delay": "1s", "timeout": "300ms"},
                        r"\"timeout after 300ms\"")


def test_simulate_error_applies_on_error(tmp):
    _on_error_listeners(tmp, {"simulate_error": True},
                        r"\"simulated error\"")


def test_simulate_error_when_pending(tmp):
    _on_error_listeners(tmp, {"simulate_error": True, "delay": "100ms"},
                        r"\"simulated error\"")


def test_observe_mode(tmp):
    f = {"watch": access("mail", match=["*@spam.example"], mode="observe")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="x@spam.example").code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "x@spam.example"
        s.wait_log(r"would_reject filter=watch phase=mail "
                   r"client=127\.0\.0\.1 ")
        s.wait_log(r"done txn=1 result=accepted ")


# ---------------------------------------------------------------- changes

def test_add_header(tmp):
    f = {"tag": access("mail", match=["tag@*"], verdict="continue",
                       add_header="X-Sluice-Tag: tagged; yes")}
    body = (b"Subject: hi\r\nFrom: tag@example.org\r\n"
            b"X-Folded: a\r\n\tb\r\n\r\n"
            b"body line\r\n..dotted\r\n\r\nSubject: not a header\r\n")
    with chained(tmp, f, listener={"received_header": False}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, body,
                               sender="tag@example.org").code == 250
            assert transaction(c, body,
                               sender="plain@example.org").code == 250
            ask(c, "QUIT", 221)
        m1, m2 = cap.wait_messages(2)
        assert m1.data == (b"Subject: hi\r\nFrom: tag@example.org\r\n"
                           b"X-Folded: a\r\n\tb\r\n"
                           b"X-Sluice-Tag: tagged; yes\r\n\r\n"
                           b"body line\r\n..dotted\r\n\r\n"
                           b"Subject: not a header\r\n"), m1.data
        assert m2.data == body, m2.data  # untouched: byte for byte


def test_add_header_with_received(tmp):
    f = {"tag": access("mail", verdict="continue", add_header="X-Tag: 1")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY).code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.data.startswith(b"Received: from client.test (localhost [127.0.0.1])"
                                 b"\r\n\tby mx.test (sluice) with ESMTP id ")
        assert m.data.endswith(b"\r\nSubject: hello\r\nFrom: a@example.org\r\n"
                               b"X-Tag: 1\r\n\r\nbody\r\n"), m.data


# ---------------------------------------------------------------- listeners

def test_two_listeners_two_chains(tmp):
    f = {"strict-mail": access("mail", match=["*@example.org"]),
         "rcpt-tag": access("rcpt", match=["nobody@*"])}
    with Capture(tmp / "cap") as cap:
        cfg, ports = multi(cap.address, {"strict": ["strict-mail"],
                                         "open": [],
                                         "rcpt": ["rcpt-tag"]}, f)
        with Sluice(cfg, tmp / "sluice") as s:
            with RawClient(ports["strict"]) as c:
                hello(c)
                ask(c, "MAIL FROM:<a@example.org>", "550 5.7.1 ")
                ask(c, "QUIT", 221)
            with RawClient(ports["open"]) as c:
                hello(c)
                assert transaction(c, BODY).code == 250
                ask(c, "QUIT", 221)
            with RawClient(ports["rcpt"]) as c:
                hello(c)
                ask(c, "MAIL FROM:<a@example.org>", 250)
                ask(c, "RCPT TO:<nobody@example.net>", "550 5.7.1 ")
                ask(c, "RSET", 250)
                ask(c, "QUIT", 221)
            s.wait_log(r"connect client=127\.0\.0\.1 port=\d+ listener=strict "
                       r"local=127\.0\.0\.1:%d" % ports["strict"])
        assert len(cap.wait_messages(1)) == 1


def test_summary_filters_field(tmp):
    f = {"first": access("helo", match=["never.test"]),
         "second": access("rcpt", match=["bad@*"]),
         "third": access("eom", match=["nobody@*"], verdict="tempfail")}
    with chained(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<bad@example.net>", 550)
            ask(c, "RCPT TO:<good@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            r = c.expect(250)
            ask(c, "QUIT", 221)
        m = s.wait_log(r"done txn=1 result=accepted client=127\.0\.0\.1 "
                       r"helo=client\.test from=<a@example\.org> "
                       r"rcpts=<good@example\.net> nrcpt=1 size=(\d+) "
                       r"filters=\"first=continue,second=reject@rcpt,"
                       r"third=continue\" backend=\"(.*)\" time=[0-9.]+ms$")
        assert m.group(2) == r.first, (m.group(2), r.first)
        msg, = cap.wait_messages(1)
        assert int(m.group(1)) == len(BODY), m.group(1)


# ---------------------------------------------------------------- plugins

def _plugin(name):
    path = sluice_binary().resolve().parent.parent / "tests" / "plugins" / \
        ".libs" / (name + ".so")
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def test_plugin_loads(tmp):
    good = _plugin("good")
    cfg = standard_config("127.0.0.1:25", globals={"load": [str(good)]})
    rc, out = check_config(cfg, tmp / "a")
    assert rc == 0, out
    assert "configuration is valid" in out, out
    # and an instance of it, with its required option
    cfg = standard_config("127.0.0.1:25", chain=["g1"],
                          filters={"g1": {"module": "good", "secret": "s3"}},
                          globals={"load": [str(good)]})
    rc, out = check_config(cfg, tmp / "b")
    assert rc == 0, out
    # the daemon loads it, initialises the instance and serves with it
    with Capture(tmp / "cap") as cap:
        cfg["backends"]["out"]["servers"] = [cap.address]
        with Sluice(cfg, tmp / "sluice") as s:
            with RawClient(s.port) as c:
                hello(c)
                assert transaction(c, BODY).code == 250
                ask(c, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1
    # without the required option it is refused
    cfg = standard_config("127.0.0.1:25", chain=["g1"],
                          filters={"g1": {"module": "good"}},
                          globals={"load": [str(good)]})
    rc, out = check_config(cfg, tmp / "c")
    assert rc == 1 and "secret" in out, out


def test_plugin_abi_mismatch_refused(tmp):
    bad = _plugin("abi_mismatch")
    cfg = standard_config("127.0.0.1:25", globals={"load": [str(bad)]})
    rc, out = check_config(cfg, tmp / "a")
    path = tmp / "a" / "sluice.conf"
    n = [i for i, l in enumerate(path.read_text().splitlines(), 1)
         if l.startswith("load")][0]
    assert rc == 1, out
    m = re.search(r"^%s:%d: (.*)$" % (re.escape(str(path)), n), out, re.M)
    assert m, out
    sentence = m.group(1)
    assert "abi_mismatch.so" in sentence and "ABI version" in sentence, \
        sentence
    assert out.rstrip().endswith("configuration is not valid"), out


run_tests(globals())
