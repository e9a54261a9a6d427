#!/usr/bin/python3
"""The client's verified host name (proxy/rdns.c): forward-confirmed
reverse DNS before the greeting, seen in XCLIENT NAME= and the Received
field.  Clients connect from 127.0.0.x source addresses; the resolver's
built-in local zones are switched off so the test DNS server answers for
127.in-addr.arpa."""
import socket
import time

from sluicetest import *

ZONE = {
    "records": [
        ["2.0.0.127.in-addr.arpa", "PTR", "mail.client.example"],
        ["mail.client.example", "A", "127.0.0.2"],
        # a PTR whose name points elsewhere
        ["3.0.0.127.in-addr.arpa", "PTR", "liar.client.example"],
        ["liar.client.example", "A", "192.0.2.99"],
        # two PTR names, the second confirms
        ["4.0.0.127.in-addr.arpa", "PTR", "a.client.example"],
        ["4.0.0.127.in-addr.arpa", "PTR", "b.client.example"],
        ["b.client.example", "A", "127.0.0.4"],
        ["a.client.example", "A", "192.0.2.1"],
        ["6.0.0.127.in-addr.arpa", "PTR", "slow.client.example"],
    ],
    "timeout": ["7.0.0.127.in-addr.arpa", "slow.client.example"],
}


def _client(port, source):
    sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(15),
                                    source_address=(source, 0))
    return sock


def _dialogue(port, source):
    """Send one message from source; return the time to the greeting."""
    sock = _client(port, source)
    f = sock.makefile("rb")
    t0 = time.monotonic()
    line = f.readline()
    took = time.monotonic() - t0
    assert line.startswith(b"220 "), line
    for cmd, want in ((b"HELO client.test", b"250"), (b"MAIL FROM:<a@example.org>", b"250"),
                      (b"RCPT TO:<b@example.net>", b"250"), (b"DATA", b"354"),
                      (b"Subject: x\r\n\r\nbody\r\n.", b"250"), (b"QUIT", b"221")):
        sock.sendall(cmd + b"\r\n")
        reply = f.readline()
        assert reply.startswith(want), (cmd, reply)
    sock.close()
    return took


def _name_for(cap, source, n):
    msgs = cap.wait_messages(n)
    m = msgs[-1]
    line = m.xclient[-1]
    assert " ADDR=%s " % source in line, line
    return line.split()[1], m.data


def test_forward_confirmed_names(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            Capture(tmp / "cap", script={"xclient": True}) as cap:
        cfg = standard_config(cap.address, globals={"resolver": {
            "forwarders": [dns.forwarder], "timeout": "1s", "local_zones": False}})
        with Sluice(cfg, tmp / "s") as s:
            cases = [("127.0.0.2", "NAME=mail.client.example"),
                     ("127.0.0.3", "NAME=[UNAVAILABLE]"),
                     ("127.0.0.4", "NAME=b.client.example"),
                     ("127.0.0.5", "NAME=[UNAVAILABLE]")]     # no PTR at all
            for n, (source, want) in enumerate(cases, 1):
                _dialogue(s.port, source)
                name, data = _name_for(cap, source, n)
                assert name == want, (source, name, want)
            # the Received field names the verified host, or only the address
            _, data = _name_for(cap, "127.0.0.5", 4)
            assert data.startswith(b"Received: from client.test ([127.0.0.5])"), data[:80]
            msgs = cap.wait_messages(4)
            assert msgs[0].data.startswith(
                b"Received: from client.test (mail.client.example [127.0.0.2])"), \
                msgs[0].data[:80]
            s.wait_log(r"rdns client=127\.0\.0\.3 name=unknown reason=\"name does not "
                       r"point back\"")


def test_timeouts_bound_the_greeting_delay(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            Capture(tmp / "cap", script={"xclient": True}) as cap:
        cfg = standard_config(cap.address, globals={"resolver": {
            "forwarders": [dns.forwarder], "timeout": "1s", "local_zones": False}})
        with Sluice(cfg, tmp / "s") as s:
            # PTR never answers: unknown after the resolver timeout
            took = _dialogue(s.port, "127.0.0.7")
            assert 0.8 < took < scaled(5), took
            name, _ = _name_for(cap, "127.0.0.7", 1)
            assert name == "NAME=[UNAVAILABLE]", name
            # PTR answers, the forward lookup never does
            took = _dialogue(s.port, "127.0.0.6")
            assert 0.8 < took < scaled(5), took
            name, _ = _name_for(cap, "127.0.0.6", 2)
            assert name == "NAME=[UNAVAILABLE]", name


def test_early_input_waits_for_the_greeting(tmp):
    """A client that talks during the lookup is held, not answered early."""
    with DnsServer(tmp / "dns", ZONE) as dns, Capture(tmp / "cap") as cap:
        cfg = standard_config(cap.address, globals={"resolver": {
            "forwarders": [dns.forwarder], "timeout": "1s", "local_zones": False}})
        with Sluice(cfg, tmp / "s") as s:
            sock = _client(s.port, "127.0.0.7")
            sock.sendall(b"NOOP\r\n")
            f = sock.makefile("rb")
            first = f.readline()
            assert first.startswith(b"220 "), first
            assert f.readline().startswith(b"250"), "NOOP answered after the greeting"
            sock.close()


def test_switched_off(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            Capture(tmp / "cap", script={"xclient": True}) as cap:
        cfg = standard_config(cap.address, listener={"reverse_lookup": False},
                              globals={"resolver": {"forwarders": [dns.forwarder],
                                                    "local_zones": False}})
        with Sluice(cfg, tmp / "s") as s:
            _dialogue(s.port, "127.0.0.2")
            name, _ = _name_for(cap, "127.0.0.2", 1)
            assert name == "NAME=[UNAVAILABLE]", name
        assert not [q for q in dns.queries() if q[0].endswith("in-addr.arpa")], \
            dns.queries()


run_tests(globals())
