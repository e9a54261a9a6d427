#!/usr/bin/python3
"""Connection limits and listening: the global, per-listener and per-IP
connection caps answer 421 and close, IPv4 and IPv6 listeners both serve,
and running out of file descriptors pauses accepting instead of spinning
or crashing, then recovers."""

import os
import socket
import time

from sluicetest import *


def greeted(port, host="127.0.0.1", family=socket.AF_INET):
    """A connection that has read its 220 greeting."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(scaled(5))
    s.connect((host, port))
    line = s.recv(512)
    assert line.startswith(b"220 "), line
    return s


def refused_line(port):
    """Connect and read what a refused connection gets before the close."""
    s = socket.socket()
    s.settimeout(scaled(5))
    s.connect(("127.0.0.1", port))
    data = b""
    while True:
        chunk = s.recv(512)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def test_per_ip_limit(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(standard_config(cap.address,
                                globals={"max_connections_per_ip": 2}),
                tmp / "s") as s:
        a, b = greeted(s.port), greeted(s.port)
        assert refused_line(s.port) == (b"421 4.7.0 %s Error: too many connections "
                                        b"from your address, try again later\r\n"
                                        % HOSTNAME.encode())
        s.wait_log(r"refuse client=127\.0\.0\.1 listener=in reason=max_connections_per_ip")
        closes = s.log().count("close client=")
        a.close()
        # The slot comes back once the session has ended.
        wait_for(lambda: s.log().count("close client=") > closes, what="session close")
        c = greeted(s.port)
        for sock in (b, c):
            sock.close()


def test_global_limit(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(standard_config(cap.address,
                                globals={"max_connections": 3,
                                         "max_connections_per_ip": 0}),
                tmp / "s") as s:
        socks = [greeted(s.port) for _ in range(3)]
        assert refused_line(s.port).startswith(b"421 4.7.0 %s Error: too many "
                                               b"connections, try" % HOSTNAME.encode())
        s.wait_log(r"reason=max_connections\b")
        closes = s.log().count("close client=")
        for sock in socks:
            sock.close()
        wait_for(lambda: s.log().count("close client=") >= closes + 3, what="closes")
        greeted(s.port).close()


def test_listener_limit(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(standard_config(cap.address, listener={"max_connections": 1},
                                globals={"max_connections_per_ip": 0}),
                tmp / "s") as s:
        a = greeted(s.port)
        assert refused_line(s.port).startswith(b"421 4.7.0 ")
        s.wait_log(r"reason=listener_max_connections")
        a.close()


def test_ipv4_and_ipv6_listeners(tmp):
    if not socket.has_ipv6:
        skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        skip("::1 not configured")
    p4, p6 = free_port(), free_port("::1")
    with Capture(tmp / "cap") as cap:
        conf = standard_config(cap.address, listener={
            "listen": ["127.0.0.1:%d" % p4, "[::1]:%d" % p6]})
        with Sluice(conf, tmp / "s") as s:
            for host, port, fam in (("127.0.0.1", p4, socket.AF_INET),
                                    ("::1", p6, socket.AF_INET6)):
                with RawClient(port, host=host) as c:
                    c.expect("220 %s" % HOSTNAME)
                    c.cmd("EHLO client.test")
                    c.send(b"MAIL FROM:<a@example.org>\r\n")
                    c.expect(250)
                    c.send(b"RCPT TO:<b@example.net>\r\n")
                    c.expect(250)
                    c.send(b"DATA\r\n")
                    c.expect(354)
                    c.send(b"Subject: v%d\r\n\r\nx\r\n.\r\n" % (6 if fam ==
                                                                socket.AF_INET6 else 4))
                    c.expect(250)
            msgs = cap.wait_messages(2)
            assert len(msgs) == 2
            s.wait_log(r"connect client=::1 port=\d+ listener=in local=::1:%d" % p6)
            s.wait_log(r"connect client=127\.0\.0\.1 port=\d+ listener=in "
                       r"local=127\.0\.0\.1:%d" % p4)


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LimitedSluice(Sluice):
    """The daemon started under a small RLIMIT_NOFILE (soft and hard)."""

    nofile = 40

    def _command(self, args):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile), "--"] + \
            super()._command(args)


def test_out_of_descriptors_pauses_and_recovers(tmp):
    need_program("/usr/bin/prlimit")
    with Capture(tmp / "cap") as cap, \
         LimitedSluice(standard_config(cap.address,
                                       globals={"max_connections_per_ip": 0}),
                       tmp / "s") as s:
        socks = []
        for _ in range(LimitedSluice.nofile + 10):
            c = socket.socket()
            c.settimeout(scaled(5))
            c.connect(("127.0.0.1", s.port))   # the kernel completes the handshake
            socks.append(c)
        s.wait_log(r"accept on 127\.0\.0\.1:%d failed: Too many open files; pausing"
                   % s.port)
        # Paused, not spinning: little CPU while the backlog waits.
        before = _cpu_seconds(s.pid)
        time.sleep(1.0)
        assert _cpu_seconds(s.pid) - before < 0.5
        for c in socks:
            c.close()
        # Accepting resumed: a new client is served start to end.
        with RawClient(s.port) as c:
            c.expect("220 %s" % HOSTNAME, timeout=scaled(10))
            c.cmd("EHLO client.test")
            c.send(b"QUIT\r\n")
            c.expect(221)


run_tests(globals())
