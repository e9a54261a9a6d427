#!/usr/bin/python3
"""PROXY protocol listeners (HAProxy send-proxy / send-proxy-v2): raw
sockets send v1 and v2 headers, then SMTP.  The real client address from
the header reaches the log, XCLIENT, Received, the connect hook and the
per-IP limit; a source outside proxy_trusted, a malformed header and a
silent connection are closed without a greeting; a header in many small
writes works; SMTP bytes sent with the header in one packet are
processed exactly once; --explain skips the header."""

import re
import socket
import struct
import subprocess
import time

from sluicetest import *

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
BODY = b"Subject: proxied\r\n\r\nhello\r\n"


def v1(src, dst="198.51.100.1", sport=40000, dport=25):
    proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(src, dst, sport=40000, dport=25, tlvs=b"", command=1):
    """A v2 PROXY (command=1) or LOCAL (command=0) header with TLVs."""
    if ":" in src:
        fam, addrs = 0x21, socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam, addrs = 0x11, socket.inet_aton(src) + socket.inet_aton(dst)
    block = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(block)) + block


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def proxy_config(cap, listener=None, globals=None, **kw):
    lst = {"proxy_protocol": "any", "reverse_lookup": False}
    lst.update(listener or {})
    return standard_config(getattr(cap, "address", cap), listener=lst, globals=globals, **kw)


def start(cfg, tmp):
    # No greeting probe: a PROXY listener greets only after a header.
    return Sluice(cfg, tmp / "s", ready="log")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), scaled(5))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(s):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_reply(s):
    """One whole reply (its lines), from a raw socket."""
    lines = []
    while True:
        line = read_line(s)
        assert line, "closed after %r" % lines
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)


def closed_silently(s, timeout=5):
    """Everything until the close (a reset counts); must be nothing."""
    s.settimeout(scaled(timeout))
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    return data


def transaction(s):
    """EHLO (unless done), MAIL, RCPT, DATA on a greeted socket."""
    for line, want in ((b"MAIL FROM:<a@example.org>\r\n", b"250"),
                       (b"RCPT TO:<b@example.net>\r\n", b"250"),
                       (b"DATA\r\n", b"354")):
        s.sendall(line)
        r = read_reply(s)
        assert r.startswith(want), (line, r)
    s.sendall(BODY + b".\r\n")
    r = read_reply(s)
    assert r.startswith(b"250"), r
    s.sendall(b"QUIT\r\n")
    assert read_reply(s).startswith(b"221")
    s.close()


def test_v1_client_address_everywhere(tmp):
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         start(proxy_config(cap, {"proxy_protocol": "v1",
                                  "proxy_trusted": ["127.0.0.0/8"]}), tmp) as s:
        c = connect(s.port)
        hdr = v1("192.0.2.7", sport=41000)
        c.sendall(hdr)
        assert read_reply(c).startswith(b"220 " + HOSTNAME.encode())
        c.sendall(b"EHLO client.test\r\n")
        assert read_reply(c).startswith(b"250")
        transaction(c)
        m, = cap.wait_messages(1)
        assert any("ADDR=192.0.2.7" in x for x in m.xclient), m.xclient
        assert not any("127.0.0.1" in x for x in m.xclient), m.xclient
        assert b"Received: from client.test ([192.0.2.7])" in m.data.split(b"\r\n\r\n")[0], m.data
        assert m.data.endswith(BODY)
        s.wait_log(r"proxy version=1 command=proxy client=192\.0\.2\.7 port=41000 "
                   r"proxy=127\.0\.0\.1:\d+ bytes=%d" % len(hdr))
        s.wait_log(r"connect client=192\.0\.2\.7 port=41000 listener=in "
                   r"local=198\.51\.100\.1:25")


def test_v2_tlvs_and_smtp_in_the_same_packet(tmp):
    hdr = v2("2001:db8::7", "2001:db8::1", 50000, 587,
             tlv(0x05, b"unique-id-123") + tlv(0x20, b"\x01" + b"\x00" * 40) + tlv(0x04, b""))
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         start(proxy_config(cap, {"proxy_protocol": "v2"}), tmp) as s:
        c = connect(s.port)
        # Header, EHLO and NOOP in one write, before the greeting.
        c.sendall(hdr + b"EHLO client.test\r\nNOOP\r\n")
        assert read_reply(c).startswith(b"220 ")
        ehlo = read_reply(c)
        assert ehlo.startswith(b"250-" + HOSTNAME.encode()), ehlo
        assert read_reply(c).startswith(b"250 2.0.0"), "NOOP reply expected once"
        # Nothing else is queued: the next reply answers the next command.
        c.sendall(b"RSET\r\n")
        assert read_reply(c).startswith(b"250 2.0.0")
        transaction(c)
        m, = cap.wait_messages(1)
        assert any("ADDR=IPV6:2001:db8::7" in x for x in m.xclient), m.xclient
        assert b"[IPv6:2001:db8::7]" in m.data, m.data
        assert m.helo.endswith("client.test"), m.helo
        s.wait_log(r"proxy version=2 command=proxy client=2001:db8::7 port=50000 .* bytes=%d"
                   % len(hdr))
        assert "error reason=" not in s.log()


def test_header_in_many_small_writes(tmp):
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         start(proxy_config(cap), tmp) as s:
        for hdr, addr in ((v1("203.0.113.5"), "203.0.113.5"),
                          (v2("203.0.113.6", "198.51.100.1", tlvs=tlv(0xe0, b"x" * 20)),
                           "203.0.113.6")):
            c = connect(s.port)
            for i in range(len(hdr)):
                c.sendall(hdr[i:i + 1])
                time.sleep(0.002)
            assert read_reply(c).startswith(b"220 ")
            c.sendall(b"EHLO client.test\r\n")
            assert read_reply(c).startswith(b"250")
            transaction(c)
            s.wait_log(r"connect client=%s " % addr.replace(".", r"\."))
        msgs = cap.wait_messages(2)
        assert all(m.data.endswith(BODY) for m in msgs)


def test_per_ip_limit_counts_header_address(tmp):
    with Capture(tmp / "cap") as cap, \
         start(proxy_config(cap, globals={"max_connections_per_ip": 2}), tmp) as s:
        held = []
        for _ in range(2):
            c = connect(s.port)
            c.sendall(v1("192.0.2.1"))
            assert read_reply(c).startswith(b"220 ")
            held.append(c)
        # Same header address, same loopback source: over the limit.
        c = connect(s.port)
        c.sendall(v2("192.0.2.1", "198.51.100.1"))
        assert read_reply(c) == (b"421 4.7.0 %s Error: too many connections from your "
                                 b"address, try again later\r\n" % HOSTNAME.encode())
        c.close()
        s.wait_log(r"refuse client=192\.0\.2\.1 listener=in reason=max_connections_per_ip")
        # Another header address through the same loopback source: its own count.
        c = connect(s.port)
        c.sendall(v1("192.0.2.2"))
        assert read_reply(c).startswith(b"220 ")
        held.append(c)
        closes = s.log().count("close client=")
        for c in held:
            c.sendall(b"QUIT\r\n")
            assert read_reply(c).startswith(b"221")
            c.close()
        # The header address's slots come back when its sessions end.
        wait_for(lambda: s.log().count("close client=") >= closes + 3, what="closes")
        for _ in range(2):
            c = connect(s.port)
            c.sendall(v1("192.0.2.1"))
            assert read_reply(c).startswith(b"220 ")
            held.append(c)
        for c in held[-2:]:
            c.close()
        s.assert_running()


def test_untrusted_source_refused(tmp):
    with Capture(tmp / "cap") as cap, \
         start(proxy_config(cap, {"proxy_trusted": ["10.0.0.0/8", "2001:db8::/32"]}),
               tmp) as s:
        c = connect(s.port)
        c.sendall(v1("192.0.2.7") + b"EHLO client.test\r\n")
        assert closed_silently(c) == b""
        s.wait_log(r"refuse client=127\.0\.0\.1 listener=in reason=proxy_untrusted")
        assert "connect client=" not in s.log()
        assert cap.connections() == []


def test_bad_headers_close_without_greeting(tmp):
    cases = (
        (b"EHLO client.test\r\n", "no PROXY protocol header"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 040000 25\r\n", "bad v1 port"),
        (b"PROXY TCP6 192.0.2.7 198.51.100.1 4 25\r\n", "bad v1 address for the protocol"),
        (b"PROXY UNKNOWN " + b"x" * 120, "v1 line without CRLF within 107 bytes"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 4 25\n", "v1 line not ended by CRLF"),
        (V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12, "v2 version is not 2"),
        (V2_SIG + b"\x21\x11\xff\xff", "v2 length over the limit"),
        (v2("192.0.2.7", "198.51.100.1", tlvs=b"\x05\x00\x09abc"),
         "v2 TLV runs past the header"),
    )
    with Capture(tmp / "cap") as cap, \
         start(proxy_config(cap, {"proxy_timeout": "1s"}), tmp) as s:
        for data, reason in cases:
            c = connect(s.port)
            c.sendall(data)
            assert closed_silently(c) == b"", data
            s.wait_log(r'proxy error reason="%s" proxy=127\.0\.0\.1:\d+ listener=in'
                       % re.escape(reason))
        # Silence, and a header cut short: the proxy_timeout ends both.
        for data in (b"", v1("192.0.2.7")[:20]):
            c = connect(s.port)
            c.sendall(data)
            assert closed_silently(c) == b""
        wait_for(lambda: s.log().count('proxy error reason=timeout ') == 2,
                 what="two timeouts")
        assert "connect client=" not in s.log()
        assert cap.connections() == []
        # The daemon still serves.
        c = connect(s.port)
        c.sendall(v1("192.0.2.9"))
        assert read_reply(c).startswith(b"220 ")
        c.close()
        s.assert_running()


def test_local_and_unknown_use_socket_address(tmp):
    with Capture(tmp / "cap") as cap, start(proxy_config(cap), tmp) as s:
        for hdr in (V2_SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n",
                    v2("192.0.2.7", "198.51.100.1", command=0)):
            c = connect(s.port)
            c.sendall(hdr)
            assert read_reply(c).startswith(b"220 ")
            c.sendall(b"QUIT\r\n")
            assert read_reply(c).startswith(b"221")
            c.close()
        wait_for(lambda: len(re.findall(r"connect client=127\.0\.0\.1 ", s.log())) == 3,
                 what="three connects from the socket address")
        assert "192.0.2.7" not in s.log()



def test_connect_hook_sees_header_address(tmp):
    gate = {"module": "access", "phase": "connect", "match": ["192.0.2.66"],
            "verdict": "reject"}
    with Capture(tmp / "cap") as cap, \
         start(proxy_config(cap, chain=["gate"], filters={"gate": gate}), tmp) as s:
        c = connect(s.port)
        c.sendall(v2("192.0.2.66", "198.51.100.1"))
        assert read_reply(c).startswith(b"554 "), "the header's address is refused"
        c.close()
        s.wait_log(r"reject filter=gate phase=connect client=192\.0\.2\.66 ")
        c = connect(s.port)
        c.sendall(v2("192.0.2.67", "198.51.100.1"))
        assert read_reply(c).startswith(b"220 "), "another header address is not"
        c.close()


def test_explain_skips_the_header(tmp):
    """sluice --explain runs a proxy listener's session over a socketpair."""
    cfg = proxy_config("127.0.0.1:9")
    path = tmp / "sluice.conf"
    path.write_text(make_config(**cfg))
    p = subprocess.run([str(sluice_binary()), "--explain", "-c", str(path), "--client",
                        "192.0.2.7", "--helo", "client.example", "--from", "a@example.org",
                        "--to", "b@example.net"], input=b"Subject: x\n\nhi\n",
                       capture_output=True, timeout=scaled(60))
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode())
    assert "result: accepted" in out, out
    assert "proxy error" not in p.stderr.decode()


run_tests(globals())
