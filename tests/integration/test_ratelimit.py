#!/usr/bin/python3
"""The ratelimit filter and the counter store behind it, on the real daemon:
limits on connections, messages and recipients per client address (and
prefix), sender, recipient domain; the memory store (per process, kept
across a reload, window reset); a real redis-server shared by two sluice
processes (one count); Redis down with on_store_error accept and tempfail;
a server that accepts but never answers (the timeout, no reconnect storm);
Redis restarted (reconnection); observe mode; bad options refused."""

import re
import socket
import time

from sluicetest import *
from sluicetest import Service

BODY = b"Subject: rate\r\nFrom: a@example.org\r\n\r\nbody\r\n"


# ---------------------------------------------------------------- helpers

def rl(**opts):
    """A ratelimit instance's options."""
    d = {"module": "ratelimit"}
    d.update(opts)
    return d


def limited(tmp, filters, **kw):
    """relay() with the given ratelimit instances as the chain."""
    return relay(tmp, filters=filters, chain=list(filters), **kw)


def config(cap, filters, **kw):
    return standard_config(cap.address, filters=filters, chain=list(filters),
                           **kw)


def attempt(c, sender="a@example.org", rcpts=("b@example.net",)):
    """One transaction on a greeted client: the first reply that is not
    a success (MAIL, RCPT or the final dot), or the final 250.  Leaves
    the session ready for the next transaction."""
    r = ask(c, "MAIL FROM:<%s>" % sender, [250, 451, 450])
    if r.code != 250:
        return r
    for rcpt in rcpts:
        r = ask(c, "RCPT TO:<%s>" % rcpt, [250, 451, 450])
        if r.code != 250:
            ask(c, "RSET", 250)
            return r
    ask(c, "DATA", 354)
    c.send(BODY + b".\r\n")
    return c.read_reply()


def one_message(port, **kw):
    """A session with one transaction; returns attempt()'s reply."""
    with RawClient(port) as c:
        hello(c)
        r = attempt(c, **kw)
        ask(c, "QUIT", 221)
        return r


TOO_MANY = re.compile(r"^451 4\.7\.1 Too many messages from 127\.0\.0\.1 "
                      r"\(limit (\d+) per 1h\), try again later\r\n$")


def assert_limited(r, limit):
    m = TOO_MANY.match(r.raw.decode())
    assert m and int(m.group(1)) == limit, r.raw


def store_url(redis, params=""):
    """A redis:// store spec with a timeout generous enough for slow runs
    (valgrind): the tests that are about the timeout set their own."""
    return "%s%s%stimeout=%dms" % (redis.url, params, "&" if "?" in params
                                   else "?", int(scaled(2) * 1000))


def counter_key(instance, key, prefix="sluice:"):
    """The Redis key of a counter."""
    return "%s{rl:%s:%s}" % (prefix, instance, key)


class SilentServer(Service):
    """Accepts TCP connections on a free port, reads, never answers (a
    Redis that hangs); one line per accepted connection in accepts.log."""

    name = "silent-server"
    SCRIPT = r"""
import os, socket, sys, threading
port, ready, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
open(ready + ".tmp", "w").close()
os.rename(ready + ".tmp", ready)
def drain(c):
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
held = []
while True:
    c, peer = s.accept()
    held.append(c)
    with open(log, "a") as f:
        f.write("%s:%d\n" % peer)
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""

    def __init__(self, dir):
        self.dir = dir
        dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        ready = dir / "ready"
        self.accepts_log = dir / "accepts.log"
        self._spawn([PYTHON, "-c", self.SCRIPT, self.port, ready,
                     self.accepts_log], dir / "silent.log")
        wait_for(lambda: ready.exists() or not self.running(),
                 what="the silent server")
        if not ready.exists():
            raise HardError("silent server did not start:\n" + self.log_tail())
        self.url = "redis://127.0.0.1:%d" % self.port

    def accepts(self):
        try:
            return len(self.accepts_log.read_text().splitlines())
        except OSError:
            return 0


class SourceClient(RawClient):
    """A RawClient connecting from a chosen loopback source address."""

    def __init__(self, port, source, timeout=None):
        self.timeout = scaled(10) if timeout is None else timeout
        self.strict = True
        self.sock = socket.create_connection(("127.0.0.1", port), self.timeout,
                                             source_address=(source, 0))
        self.buf = bytearray()
        self.received = bytearray()
        self.eof = False


# ---------------------------------------------------------------- memory store

def test_messages_per_ip_memory(tmp):
    f = {"per-ip": rl(key="ip", count="messages", limit=2, window="1h")}
    with limited(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert attempt(c).code == 250
            assert attempt(c).code == 250
            # the third is refused at MAIL, before its body is sent
            assert_limited(attempt(c), 2)
            ask(c, "RCPT TO:<b@example.net>", "503 ")
            ask(c, "QUIT", 221)
        s.wait_log(r"filter=per-ip ratelimit exceeded key=ip:127\.0\.0\.1 "
                   r"count=3 limit=2 window=3600s$")
        s.wait_log(r"tempfail filter=per-ip phase=mail client=127\.0\.0\.1 "
                   r"code=451 ")
        assert len(cap.wait_messages(2)) == 2
        time.sleep(0.2)
        assert len(cap.messages(include_incomplete=True)) == 2
        # another session from the same address is still over the limit
        assert_limited(one_message(s.port), 2)


def test_refused_and_abandoned_messages_do_not_count(tmp):
    """Messages are counted at the end of data: a transaction reset before
    DATA, or refused by a filter before this one, uses up nothing."""
    f = {"no-spam": {"module": "access", "phase": "rcpt",
                     "match": ["*@spam.example"]},
         "per-ip": rl(limit=1)}
    with limited(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<x@spam.example>", 550)
            ask(c, "RSET", 250)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "RSET", 250)
            assert attempt(c).code == 250   # the one allowed message
            assert_limited(attempt(c), 1)
            ask(c, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1


def test_connections_per_ip(tmp):
    f = {"conn": rl(key="ip", count="connections", limit=2, window="1h")}
    with Capture(tmp / "cap") as cap, \
         Sluice(config(cap, f), tmp / "sluice", ready="log") as s:
        for _ in range(2):
            with RawClient(s.port) as c:
                c.expect("220 ")
                ask(c, "QUIT", 221)
        with RawClient(s.port) as c:
            r = c.read_reply()
            assert r.raw == b"421 4.7.0 Too many connections from 127.0.0.1 " \
                b"(limit 2 per 1h), try again later\r\n", r.raw
            c.expect_closed()
        s.wait_log(r"filter=conn ratelimit exceeded key=ip:127\.0\.0\.1 "
                   r"count=3 limit=2 window=3600s$")


def test_ipv4_prefix_shares_a_counter(tmp):
    """prefix4 = 24: 127.0.0.1 and 127.0.0.2 share one counter; with the
    default /32 each address has its own."""
    f = {"net": rl(key="ip", prefix4=24, count="recipients", limit=2),
         "host": rl(key="ip", count="recipients", limit=1)}
    with limited(tmp, f) as (cap, s):
        with SourceClient(s.port, "127.0.0.1") as c:
            hello(c)
            assert attempt(c).code == 250       # net 1, host .1: 1
        with SourceClient(s.port, "127.0.0.2") as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)      # net 2, host .2: 1
            r = ask(c, "RCPT TO:<c@example.net>", 451)  # net 3
            assert r.first == "451 4.7.1 Too many recipients from " \
                "127.0.0.0/24 (limit 2 per 1h), try again later", r.raw
            ask(c, "QUIT", 221)
        s.wait_log(r"filter=net ratelimit exceeded key=ip:127\.0\.0\.0/24 "
                   r"count=3 limit=2 window=3600s$")
        s.wait_log(r"filter=host ratelimit count key=ip:127\.0\.0\.2 "
                   r"count=1 ")
        assert "filter=host ratelimit exceeded" not in s.log()


def test_recipients_per_sender_folded(tmp):
    f = {"rcpts": rl(key="sender", count="recipients", limit=3)}
    with limited(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<Alice@Example.ORG>", 250)
            for i in range(3):
                ask(c, "RCPT TO:<r%d@example.net>" % i, 250)
            r = ask(c, "RCPT TO:<r3@example.net>", 451)
            assert r.raw == b"451 4.7.1 Too many recipients from " \
                b"<alice@example.org> (limit 3 per 1h), try again later\r\n", \
                r.raw
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            # the same sender in another case is the same counter
            ask(c, "MAIL FROM:<alice@EXAMPLE.org>", 250)
            ask(c, "RCPT TO:<r4@example.net>", 451)
            ask(c, "RSET", 250)
            # another sender has its own
            assert attempt(c, sender="bob@example.org").code == 250
            ask(c, "QUIT", 221)
        m1, m2 = cap.wait_messages(2)
        assert m1.rcpts == ["r0@example.net", "r1@example.net",
                            "r2@example.net"], m1.rcpts
        s.wait_log(r"ratelimit exceeded key=sender:alice@example\.org count=4 "
                   r"limit=3 window=3600s$")


def test_messages_per_recipient_domain(tmp):
    """A recipient's key is checked at RCPT and counted once per message."""
    f = {"dom": rl(key="recipient_domain", limit=1)}
    with limited(tmp, f) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert attempt(c, rcpts=("x@d1.test", "y@D1.test",
                                     "z@d2.test")).code == 250
            ask(c, "MAIL FROM:<a@example.org>", 250)
            r = ask(c, "RCPT TO:<a@d1.test>", 451)
            assert r.first == "451 4.7.1 Too many messages to d1.test " \
                "(limit 1 per 1h), try again later", r.raw
            ask(c, "RCPT TO:<b@d3.test>", 250)
            ask(c, "DATA", 354)
            c.send(BODY + b".\r\n")
            c.expect(250)
            ask(c, "QUIT", 221)
        m1, m2 = cap.wait_messages(2)
        assert m2.rcpts == ["b@d3.test"], m2.rcpts
        log = s.log()
        # d1 was counted once for the message with two d1 recipients
        assert len(re.findall(r"ratelimit count key=recipient_domain:d1\.test "
                              r"count=1 ", log)) == 1, log
        assert not re.search(r"count key=recipient_domain:d1\.test count=2 ",
                             log), log


def test_window_restarts(tmp):
    f = {"short": rl(limit=1, window="2s")}
    with limited(tmp, f) as (cap, s):
        assert one_message(s.port).code == 250
        r = one_message(s.port)
        assert r.code == 451 and "(limit 1 per 2s)" in r.first, r.raw
        # once the window has ended the client may send again
        deadline = time.monotonic() + scaled(10)
        while True:
            r = one_message(s.port)
            if r.code == 250 or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert r.code == 250, r.raw
        assert len(cap.wait_messages(2)) == 2


def test_memory_counts_per_process_and_survive_reload(tmp):
    f = {"per-ip": rl(limit=2)}
    with Capture(tmp / "cap") as cap, \
         Sluice(config(cap, f), tmp / "a") as a, \
         Sluice(config(cap, f), tmp / "b") as b:
        for _ in range(2):
            assert one_message(a.port).code == 250
        assert_limited(one_message(a.port), 2)
        # the other process has its own memory store
        for _ in range(2):
            assert one_message(b.port).code == 250
        assert_limited(one_message(b.port), 2)
        # a reload builds a new generation; the counts stay
        mark = a.log_mark()
        a.reload()
        a.wait_log(r"generation=2", since=mark)
        assert_limited(one_message(a.port), 2)
        assert len(cap.wait_messages(4)) == 4


def test_observe_mode(tmp):
    f = {"watch": rl(limit=1, mode="observe")}
    with limited(tmp, f) as (cap, s):
        assert one_message(s.port).code == 250
        assert one_message(s.port).code == 250
        s.wait_log(r"filter=watch ratelimit exceeded key=ip:127\.0\.0\.1 "
                   r"count=2 limit=1 window=3600s$")
        s.wait_log(r"would_tempfail filter=watch phase=mail client=127\.0\.0\.1 "
                   r"code=451 ")
        assert len(cap.wait_messages(2)) == 2


def test_bad_options_refused(tmp):
    cases = [
        (rl(limit=5, key="sender", count="connections"),
         r'count = "connections" needs key = "ip"'),
        (rl(limit=5, key="domain"), r"key must be ip, sender"),
        (rl(limit=5, count="bytes"), r"count must be connections, messages"),
        (rl(limit=0), r"limit must be 1 to"),
        (rl(limit=5, window="500ms"), r"window must be 1s to 366d"),
        (rl(limit=5, prefix4=33), r"prefix4 must be 0 to 32"),
        (rl(limit=5, prefix6=129), r"prefix6 must be 0 to 128"),
        (rl(limit=5, on_store_error="reject"),
         r"on_store_error must be accept or tempfail"),
        (rl(limit=5, store="mysql://127.0.0.1"), r'store must be "memory" or'),
        (rl(limit=5, store="redis://127.0.0.1:0"), r"redis port must be 1 to"),
        (rl(limit=5, store="redis://127.0.0.1?timeout=0"),
         r"redis timeout must be a duration"),
        (rl(limit=5, store="redis://127.0.0.1?prefix={x}"), r"redis prefix"),
        (rl(limit=5, store="redis://127.0.0.1?db=1"),
         r"unknown redis parameter"),
        (rl(), r"limit"),
    ]
    for n, (opts, want) in enumerate(cases):
        cfg = standard_config("127.0.0.1:9", filters={"x": opts}, chain=["x"])
        rc, out = check_config(cfg, tmp / ("c%d" % n))
        assert rc != 0, (opts, out)
        assert re.search(want, out), (opts, want, out)
    rc, out = check_config(standard_config(
        "127.0.0.1:9", filters={"x": rl(limit=5, store="redis://127.0.0.1:6399/2"
                                         "?timeout=100ms&prefix=mx:")},
        chain=["x"]), tmp / "good")
    assert rc == 0, out


# ---------------------------------------------------------------- redis

def test_redis_one_limit_for_two_sluices(tmp):
    with RedisServer(tmp / "redis") as redis, Capture(tmp / "cap") as cap:
        f = {"per-ip": rl(limit=5, store=store_url(redis))}
        with Sluice(config(cap, f), tmp / "a") as a, \
             Sluice(config(cap, f), tmp / "b") as b:
            ports = [a.port, b.port]
            for i in range(5):
                assert one_message(ports[i % 2]).code == 250, i
            # the sixth, whichever process gets it, is over the shared limit
            assert_limited(one_message(ports[1]), 5)
            assert_limited(one_message(ports[0]), 5)
            key = counter_key("per-ip", "ip:127.0.0.1")
            assert redis.command("GET", key) == b"5"
            ttl = redis.command("PTTL", key)
            assert 0 < ttl <= 3600000, ttl
            b.wait_log(r"filter=per-ip ratelimit exceeded key=ip:127\.0\.0\.1 "
                       r"count=6 limit=5 window=3600s$")
        assert len(cap.wait_messages(5)) == 5
        time.sleep(0.2)
        assert len(cap.messages(include_incomplete=True)) == 5


def test_redis_db_and_prefix(tmp):
    with RedisServer(tmp / "redis") as redis, Capture(tmp / "cap") as cap:
        url = store_url(redis, "/3?prefix=mx1:")
        f = {"rcpt-rate": rl(key="recipient", count="recipients", limit=1,
                             window="10m", store=url)}
        with Sluice(config(cap, f), tmp / "s") as s:
            with RawClient(s.port) as c:
                hello(c)
                ask(c, "MAIL FROM:<a@example.org>", 250)
                ask(c, "RCPT TO:<Bob@Example.NET>", 250)
                r = ask(c, "RCPT TO:<bob@example.net>", 451)
                assert "(limit 1 per 10m)" in r.first, r.raw
                ask(c, "QUIT", 221)
        key = counter_key("rcpt-rate", "recipient:bob@example.net", "mx1:")
        assert redis.command("GET", key) is None        # not in db 0
        redis_db3 = redis.command("EVAL", "redis.call('SELECT', 3) "
                                  "return redis.call('GET', KEYS[1])", 1, key)
        assert redis_db3 == b"2", redis_db3
        ttl = redis.command("EVAL", "redis.call('SELECT', 3) "
                            "return redis.call('PTTL', KEYS[1])", 1, key)
        assert 0 < ttl <= 600000, ttl


def test_redis_down_fail_open(tmp):
    with RedisServer(tmp / "redis") as redis, Capture(tmp / "cap") as cap:
        f = {"per-ip": rl(limit=1, store=store_url(redis),
                          on_store_error="accept")}
        with Sluice(config(cap, f), tmp / "s") as s:
            assert one_message(s.port).code == 250
            assert_limited(one_message(s.port), 1)
            redis.stop()
            # the store fails: the limit is not applied, and that is logged
            assert one_message(s.port).code == 250
            assert one_message(s.port).code == 250
            s.wait_log(r"filter=per-ip ratelimit store error key=ip:127\.0\.0\.1 "
                       r"error=\"redis[^\"]*\" action=accept$")
            s.wait_log(r"store redis=redis://127\.0\.0\.1:\d+/0\?timeout=\d+ms&"
                       r"prefix=sluice: worker=\d+ error=\"[^\"]+\" retry_in=\d+ms")
        assert len(cap.wait_messages(3)) == 3


def test_redis_down_fail_closed(tmp):
    with RedisServer(tmp / "redis") as redis, Capture(tmp / "cap") as cap:
        f = {"per-ip": rl(limit=10, store=store_url(redis),
                          on_store_error="tempfail"),
             "conn": rl(count="connections", limit=10, store=store_url(redis),
                        on_store_error="tempfail")}
        with Sluice(config(cap, f), tmp / "s", ready="log") as s:
            assert one_message(s.port).code == 250
            redis.stop()
            with RawClient(s.port) as c:
                r = c.read_reply()
                assert r.raw == b"421 4.7.0 Rate limit service unavailable, " \
                    b"try again later\r\n", r.raw
                c.expect_closed()
            s.wait_log(r"filter=conn ratelimit store error key=ip:127\.0\.0\.1 "
                       r"error=\"[^\"]+\" action=tempfail$")
        # the same without the connection rule: MAIL is refused
        f = {"per-ip": f["per-ip"]}
        with Sluice(config(cap, f), tmp / "s2") as s:
            with RawClient(s.port) as c:
                hello(c)
                r = ask(c, "MAIL FROM:<a@example.org>", 451)
                assert r.raw == b"451 4.7.1 Rate limit service unavailable, " \
                    b"try again later\r\n", r.raw
                ask(c, "QUIT", 221)
            s.wait_log(r"filter=per-ip ratelimit store error key=ip:127\.0\.0\.1 "
                       r"error=\"[^\"]+\" action=tempfail$")
        assert len(cap.wait_messages(1)) == 1


def test_redis_never_answers(tmp):
    with SilentServer(tmp / "silent") as silent, Capture(tmp / "cap") as cap:
        f = {"per-ip": rl(limit=5, store=silent.url + "?timeout=300ms",
                          on_store_error="tempfail")}
        with Sluice(config(cap, f, globals={"workers": 1},
                           limits={"errors": 100}), tmp / "s") as s:
            with RawClient(s.port) as c:
                hello(c)
                t0 = time.monotonic()
                r = ask(c, "MAIL FROM:<a@example.org>", 451)
                elapsed = time.monotonic() - t0
                assert r.first.startswith("451 4.7.1 Rate limit service "
                                          "unavailable"), r.raw
                # the store's own timeout answered, well before the filter's
                assert 0.2 < elapsed < scaled(5), elapsed
                s.wait_log(r"ratelimit store error key=ip:127\.0\.0\.1 "
                           r"error=\"timeout\" action=tempfail$")
                # more requests do not open a connection each: backoff
                for _ in range(20):
                    ask(c, "MAIL FROM:<a@example.org>", 451)
                ask(c, "QUIT", 221)
            s.wait_log(r"error=\"redis down: timeout: no reply \(retry in "
                       r"\d+ms\)\" action=tempfail$")
            # a storm would be a connection per request
            assert 1 <= silent.accepts() <= 5, silent.accepts()
        assert cap.messages(include_incomplete=True) == []


def test_redis_restart_reconnects(tmp):
    with Capture(tmp / "cap") as cap:
        redis = RedisServer(tmp / "redis1")
        port = redis.port
        f = {"per-ip": rl(limit=2, store=store_url(redis),
                          on_store_error="accept")}
        # one worker, one connection: the first success shows it is back
        with Sluice(config(cap, f, globals={"workers": 1}), tmp / "s") as s:
            assert one_message(s.port).code == 250
            key = counter_key("per-ip", "ip:127.0.0.1")
            assert redis.command("GET", key) == b"1"
            redis.stop()
            assert one_message(s.port).code == 250       # fail open
            s.wait_log(r"ratelimit store error .* action=accept$")
            # a new, empty server on the same port: counting resumes there
            redis = RedisServer(tmp / "redis2", port=port)
            deadline = time.monotonic() + scaled(20)
            while redis.command("GET", key) is None:
                assert time.monotonic() < deadline, "never counted again"
                assert one_message(s.port).code == 250
                time.sleep(0.2)
            assert redis.command("GET", key) == b"1"
            assert one_message(s.port).code == 250
            assert_limited(one_message(s.port), 2)
            assert redis.command("GET", key) == b"2"
            redis.stop()


run_tests(globals())
