#!/usr/bin/python3
"""The built-in "relay" filter on the real daemon: the classic open-relay
test vectors (abuse.net / MAPS relay-test / DSBL relaytest / nmap
smtp-open-relay, plus the percent, bang, quote, literal and trailing-dot
forms) refused for a client outside networks, by the filter (554 5.7.1) or
by the core's parser (501 5.1.3), with nothing reaching the backend; the
same vectors relayed for a client in networks; plain local recipients and
<postmaster> accepted from anyone, whatever the case; senders that never
open the relay; domains_file read at start and at each reload (a broken
file keeps the old generation); observe mode; a 4xx reply; IPv6 clients;
config errors with file:line.

Authenticated relay (allow_authenticated) cannot be driven here until the
daemon offers AUTH; the decision with the flag is unit-tested in
tests/unit/test_relay.c."""

import os
import re
import time

from sluicetest import *

LOCAL = "local.example.org"
EXT = "ext.example.com"
IP = "192.0.2.1"
BODY = b"Subject: relay test\r\nFrom: a@example.org\r\n\r\nbody\r\n"

DENIED = "554 5.7.1 Relay access denied"
BAD = "501 5.1.3 Bad recipient address syntax: "
P_DOMAIN = BAD + "Invalid or missing domain name"
P_ROUTE = BAD + "Source route is invalid"
P_LITERAL = BAD + "Address literal is invalid"
P_BRACKETS = BAD + "Path must be enclosed in angle brackets"
P_EMPTY = BAD + "empty address"

# (RCPT argument after "TO:", reply to a client outside networks, the
# filter's reason or None when the parser answers, the mailbox the filter
# and the backend see: the core drops a source route, RFC 5321 C).
VECTORS = [
    # nmap smtp-open-relay / abuse.net relay test
    ("<relaytest@%s>" % EXT, DENIED, "not-local", "relaytest@" + EXT),
    ("<relaytest%%%s@[%s]>" % (EXT, IP), DENIED, "percent-hack", None),
    ("<relaytest%%%s@%s>" % (EXT, LOCAL), DENIED, "percent-hack", None),
    ('<"relaytest@%s">' % EXT, P_DOMAIN, None, None),
    ('<"relaytest%%%s">' % EXT, P_DOMAIN, None, None),
    ("<relaytest@%s@[%s]>" % (EXT, IP), P_DOMAIN, None, None),
    ('<"relaytest@%s"@[%s]>' % (EXT, IP), DENIED, "quoted-local-part", None),
    ("<relaytest@%s@%s>" % (EXT, LOCAL), P_DOMAIN, None, None),
    ("<@[%s]:relaytest@%s>" % (IP, EXT), P_ROUTE, None, None),
    ("<@%s:relaytest@%s>" % (LOCAL, EXT), DENIED, "not-local",
     "relaytest@" + EXT),
    ("<%s!relaytest>" % EXT, P_DOMAIN, None, None),
    ("<%s!relaytest@[%s]>" % (EXT, IP), DENIED, "bang-path", None),
    ("<%s!relaytest@%s>" % (EXT, LOCAL), DENIED, "bang-path", None),
    # DSBL relaytest, MAPS relay-test
    ("relaytest@%s" % EXT, P_BRACKETS, None, None),
    ("<relaytest%%%s>" % EXT, P_DOMAIN, None, None),
    ('<"relaytest@%s"@%s>' % (EXT, LOCAL), DENIED, "quoted-local-part", None),
    ('<"relaytest%%%s"@%s>' % (EXT, LOCAL), DENIED, "quoted-local-part", None),
    ("<relaytest@[127.0.0.1]>", DENIED, "ip-literal", None),
    ("<relaytest@localhost>", DENIED, "not-local", None),
    # the list
    ("<user%host.ext@[127.0.0.1]>", DENIED, "percent-hack", None),
    ("<host!user@%s>" % LOCAL, DENIED, "bang-path", None),
    ("<@a.example,@b.example:user@c.example>", DENIED, "not-local",
     "user@c.example"),
    ('<"user!ext"@%s>' % LOCAL, DENIED, "quoted-local-part", None),
    ('<"user\\@ext"@%s>' % LOCAL, DENIED, "quoted-local-part", None),
    ("<user@[%s]>" % IP, DENIED, "ip-literal", None),
    ("<user@[IPv6:::1]>", DENIED, "ip-literal", None),
    ("<user@[tag:content]>", DENIED, "ip-literal", None),
    ("<user@[300.1.1.1]>", P_LITERAL, None, None),
    ("<user@%s.>" % LOCAL, P_DOMAIN, None, None),
    ("<user@LOCAL.Example.ORG.>", P_DOMAIN, None, None),
    ("<user@>", P_DOMAIN, None, None),
    ("<user>", P_DOMAIN, None, None),
    ("<>", P_EMPTY, None, None),
    # suffix tricks and neighbours of the local domain
    ("<user@%s.%s>" % (LOCAL, EXT), DENIED, "not-local", None),
    ("<user@x%s>" % LOCAL, DENIED, "not-local", None),
    ("<user@sub.%s>" % LOCAL, DENIED, "not-local", None),
    ("<postmaster@%s>" % EXT, DENIED, "not-local", None),
    ("<user@%s%%%s>" % (EXT, LOCAL), P_DOMAIN, None, None),
]

# Accepted from anyone: (RCPT argument, the line the backend gets).
LOCAL_RCPTS = [
    ("<user@%s>" % LOCAL, "RCPT TO:<user@%s>" % LOCAL),
    ("<User@LOCAL.Example.ORG>", "RCPT TO:<User@LOCAL.Example.ORG>"),
    ("<postmaster>", "RCPT TO:<postmaster>"),
    ("<POSTMASTER>", "RCPT TO:<postmaster>"),
    ("<postmaster@%s>" % LOCAL, "RCPT TO:<postmaster@%s>" % LOCAL),
    ('<"john smith"@%s>' % LOCAL, 'RCPT TO:<"john smith"@%s>' % LOCAL),
    ("<first.last+tag@%s>" % LOCAL, "RCPT TO:<first.last+tag@%s>" % LOCAL),
    ("<user@tree.example>", "RCPT TO:<user@tree.example>"),
    ("<user@a.b.TREE.example>", "RCPT TO:<user@a.b.TREE.example>"),
    # a source route to a local address is dropped, not refused
    ("<@%s:user@%s>" % (EXT, LOCAL), "RCPT TO:<user@%s>" % LOCAL),
]


# ---------------------------------------------------------------- helpers

def relay_filter(**opts):
    d = {"module": "relay", "domains": [LOCAL, ".tree.example"]}
    d.update(opts)
    return d


def session(tmp, networks, filter_opts=None, **kw):
    """relay() with a relay filter "r" first in the chain; a prober makes
    many errors, so the listener allows them."""
    f = relay_filter(networks=networks, **(filter_opts or {}))
    return relay(tmp, filters={"r": f}, chain=["r"],
                 limits={"errors": 200}, **kw)


def rcpt_commands(cap):
    return [c for c in cap.commands() if c.upper().startswith("RCPT")]


def log_rcpt_re(mailbox):
    return re.escape(mailbox.replace("<", "?").replace(">", "?"))


def mailbox_of(arg):
    """The mailbox of "<...>" as the filter sees it (no route)."""
    inner = arg[1:-1]
    if inner.startswith("@") and ":" in inner:
        inner = inner.split(":", 1)[1]
    return inner


# ---------------------------------------------------------------- tests

def test_vectors_refused_outside_networks(tmp):
    with session(tmp, ["192.0.2.0/24"]) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            for arg, want, reason, mailbox in VECTORS:
                mark = s.log_mark()
                r = c.cmd("RCPT TO:" + arg)
                assert r.raw == (want + "\r\n").encode(), (arg, r.raw)
                if reason is not None:
                    s.wait_log(r"filter=r relay refused rcpt=<%s> "
                               r"client=127\.0\.0\.1 reason=%s$" % (
                                   log_rcpt_re(mailbox or mailbox_of(arg)),
                                   re.escape(reason)), since=mark)
            # the session still works, for a local recipient only
            ask(c, "RCPT TO:<user@%s>" % LOCAL, 250)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<user@%s>" % LOCAL], m.rcpt_lines
        assert rcpt_commands(cap) == ["RCPT TO:<user@%s>" % LOCAL], \
            rcpt_commands(cap)
        refused = sum(1 for v in VECTORS if v[2] is not None)
        log = s.log()
        assert len(re.findall(r" relay refused ", log)) == refused
        assert len(re.findall(r" reject filter=r phase=rcpt "
                              r"client=127\.0\.0\.1 code=554 "
                              r"reason=\"Relay access denied\"", log)) == \
            refused


def test_vectors_relayed_inside_networks(tmp):
    with session(tmp, ["192.0.2.0/24", "127.0.0.0/8"]) as (cap, s):
        want_lines = []
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            for arg, want, reason, mailbox in VECTORS:
                r = c.cmd("RCPT TO:" + arg)
                if reason is None:      # the parser's answer, for everyone
                    assert r.raw == (want + "\r\n").encode(), (arg, r.raw)
                    continue
                assert r.raw == b"250 2.1.5 Ok\r\n", (arg, r.raw)
                want_lines.append("RCPT TO:<%s>" %
                                  (mailbox or mailbox_of(arg)))
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == want_lines, (m.rcpt_lines, want_lines)
        assert m.data.endswith(BODY)
        assert " relay refused " not in s.log()
        s.wait_log(r"relay allowed rcpt=<relaytest@%s> client=127\.0\.0\.1 "
                   r"reason=network" % re.escape(EXT))


def test_local_recipients_accepted_from_anyone(tmp):
    with session(tmp, ["192.0.2.0/24"]) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            for arg, _ in LOCAL_RCPTS:
                r = c.cmd("RCPT TO:" + arg)
                assert r.raw == b"250 2.1.5 Ok\r\n", (arg, r.raw)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == [line for _, line in LOCAL_RCPTS], m.rcpt_lines
        assert " relay refused " not in s.log()
        s.wait_log(r"relay allowed rcpt=<postmaster> client=127\.0\.0\.1 "
                   r"reason=postmaster")
        s.wait_log(r"relay allowed rcpt=<User@LOCAL\.Example\.ORG> "
                   r"client=127\.0\.0\.1 reason=local")


def test_sender_never_opens_the_relay(tmp):
    # The relay testers vary the sender: null, local, localhost, a literal
    # of the server.  Only the recipient and the client decide.
    senders = ["<>", "<postmaster@%s>" % LOCAL, "<spamtest@%s>" % LOCAL,
               "<spamtest@localhost>", "<spamtest@[127.0.0.1]>",
               "<relaytest@%s>" % EXT]
    with session(tmp, ["192.0.2.0/24"]) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            for sender in senders:
                ask(c, "MAIL FROM:" + sender, 250)
                r = c.cmd("RCPT TO:<relaytest@%s>" % EXT)
                assert r.raw == (DENIED + "\r\n").encode(), (sender, r.raw)
                ask(c, "RSET", 250)
            # unqualified and bang senders are not even taken
            ask(c, "MAIL FROM:<spamtest>", "501 5.1.7 ")
            ask(c, "MAIL FROM:<%s!nobody>" % EXT, "501 5.1.7 ")
            ask(c, "QUIT", 221)
        assert rcpt_commands(cap) == []
        assert cap.messages(include_incomplete=True) == []


def _write_domains(path, text):
    path.write_text(text)
    path.chmod(0o644)
    reachable(path)


def _probe(port, rcpts):
    """One transaction: the reply code to each RCPT, then RSET and QUIT."""
    codes = {}
    with RawClient(port) as c:
        hello(c)
        ask(c, "MAIL FROM:<a@example.org>", 250)
        for r in rcpts:
            codes[r] = c.cmd("RCPT TO:<%s>" % r).code
        ask(c, "RSET", 250)
        ask(c, "QUIT", 221)
    return codes


def test_domains_file_and_reload(tmp):
    dfile = tmp / "local-domains"
    _write_domains(dfile, "# local domains\n\nfile.example   # one\n"
                   "\t.branch.example\r\n")
    probe = ["a@file.example", "a@x.branch.example", "a@branch.example",
             "a@new.example", "a@" + LOCAL]
    opts = {"domains_file": str(dfile)}
    with session(tmp, ["192.0.2.0/24"], opts) as (cap, s):
        assert _probe(s.port, probe) == {
            "a@file.example": 250, "a@x.branch.example": 250,
            "a@branch.example": 250, "a@new.example": 554,
            "a@" + LOCAL: 250}
        # a changed file is read at the reload, with no change to the config
        _write_domains(dfile, "new.example\n")
        mark = s.log_mark()
        s.reload()
        s.wait_log(r"reload done generation=2 ", since=mark)
        assert _probe(s.port, probe) == {
            "a@file.example": 554, "a@x.branch.example": 554,
            "a@branch.example": 554, "a@new.example": 250,
            "a@" + LOCAL: 250}
        # a broken file fails the reload and the running policy stays
        _write_domains(dfile, "new.example\nbad.example.\n")
        mark = s.log_mark()
        s.reload()
        s.wait_log(r"reload failed: .*relay \"r\": %s:2: domains: "
                   r"\"bad\.example\.\" ends with a dot" %
                   re.escape(str(dfile)), since=mark)
        s.wait_log(r"reload failed: keeping the running configuration",
                   since=mark)
        os.unlink(dfile)
        mark = s.log_mark()
        s.reload()
        s.wait_log(r"reload failed: .*domains_file %s: No such file or "
                   r"directory" % re.escape(str(dfile)), since=mark)
        assert _probe(s.port, ["a@new.example", "a@file.example"]) == {
            "a@new.example": 250, "a@file.example": 554}
        assert [c for c in rcpt_commands(cap) if "file.example" in c] == \
            ["RCPT TO:<a@file.example>"]


def test_observe_mode_logs_and_passes(tmp):
    with session(tmp, ["192.0.2.0/24"], {"mode": "observe"}) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = transaction(c, BODY, rcpts=["relaytest%%%s@%s" % (EXT, LOCAL),
                                            "relaytest@" + EXT])
            assert r.code == 250, r.raw
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.rcpt_lines == ["RCPT TO:<relaytest%%%s@%s>" % (EXT, LOCAL),
                                "RCPT TO:<relaytest@%s>" % EXT]
        s.wait_log(r"filter=r relay refused rcpt=<relaytest%%%s@%s> "
                   r"client=127\.0\.0\.1 reason=percent-hack" % (
                       re.escape(EXT), re.escape(LOCAL)))
        s.wait_log(r"would_reject filter=r phase=rcpt client=127\.0\.0\.1 "
                   r"code=554 reason=\"Relay access denied\"")
        assert " reject filter=r " not in s.log()
        s.wait_log(r"done txn=1 result=accepted ")


def test_tempfail_reply(tmp):
    opts = {"reply": "450 4.7.1 Relaying is being set up, try later"}
    with session(tmp, ["192.0.2.0/24"], opts) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r = c.cmd("RCPT TO:<relaytest@%s>" % EXT)
            assert r.raw == b"450 4.7.1 Relaying is being set up, try " \
                b"later\r\n", r.raw
            ask(c, "RCPT TO:<user@%s>" % LOCAL, 250)
            ask(c, "QUIT", 221)
        s.wait_log(r"tempfail filter=r phase=rcpt client=127\.0\.0\.1 "
                   r"code=450 ")
        assert rcpt_commands(cap) == ["RCPT TO:<user@%s>" % LOCAL]


def test_ipv6_client(tmp):
    port = free_port("::1")
    listener = {"listen": ["[::1]:%d" % port]}
    for n, (networks, want) in enumerate(((["::1/128"], 250),
                                          (["127.0.0.0/8"], 554),
                                          (["2001:db8::/32", "::1"], 250))):
        with session(tmp / ("v6-%d" % n), networks,
                     listener=listener) as (cap, s):
            with RawClient(port, host="::1") as c:
                hello(c)
                ask(c, "MAIL FROM:<a@example.org>", 250)
                r = c.cmd("RCPT TO:<relaytest@%s>" % EXT)
                assert r.code == want, (networks, r.raw)
                ask(c, "QUIT", 221)
            if want == 554:
                s.wait_log(r"relay refused rcpt=<relaytest@%s> client=::1 "
                           r"reason=not-local" % re.escape(EXT))


def test_config_errors(tmp):
    cases = [
        ({"networks": ["192.0.2.1/24"]},
         r"networks: \"192\.0\.2\.1/24\" has bits set past the prefix"),
        ({"networks": ["0.0.0.0/0"]}, r"would let every client relay"),
        ({"networks": ["mx.example.org"]}, r"is not an address"),
        ({"networks": ["::1/129"]}, r"prefix must be a number from 1 to 128"),
        ({"domains": ["example.org."]}, r"\"example\.org\.\" ends with a dot"),
        ({"domains": ["*.example.org"]}, r"no wildcards"),
        ({"domains": ["user@example.org"]}, r"is an address"),
        ({"domains_file": "relative/file"}, r"must be an absolute path"),
        ({"domains_file": str(tmp / "missing")},
         r"domains_file .*missing: No such file or directory"),
        ({"reply": "554 4.7.1 mismatch"}, r"reply must be"),
        ({"reply": "250 2.0.0 ok"}, r"reply must be"),
        ({"allow_authenticated": "maybe"}, r"allow_authenticated"),
    ]
    for n, (opts, want) in enumerate(cases):
        f = relay_filter(**opts)
        cfg = standard_config("127.0.0.1:9", filters={"r": f}, chain=["r"])
        rc, out = check_config(cfg, tmp / ("c%d" % n))
        assert rc != 0, (opts, out)
        assert re.search(r"sluice\.conf:\d+: ", out), (opts, out)
        assert re.search(want, out), (opts, out)
    # and a good one passes
    rc, out = check_config(standard_config(
        "127.0.0.1:9", filters={"r": relay_filter(
            networks=["192.0.2.0/24", "[2001:db8::]/32", "::1"],
            allow_authenticated=False, reply="550 5.7.1 No relaying")},
        chain=["r"]), tmp / "good")
    assert rc == 0, out


run_tests(globals())
