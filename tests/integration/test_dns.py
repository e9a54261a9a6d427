#!/usr/bin/python3
"""The resolver (proxy/dns.c) seen through a filter: the dnsprobe test
plugin answers HELO with what sluice_dns_query (async, from the loop) or
sluice_dns_lookup (blocking, in the pool) returned for the HELO name, so
each test reads the resolver's answer in the 550 reply text."""
import re
import time

from sluicetest import *

ZONE = {
    "records": [
        ["mx.example.org", "MX", "20 mx2.example.org"],
        ["mx.example.org", "MX", "10 mx1.example.org"],
        ["host.example.org", "A", "192.0.2.7"],
        ["host.example.org", "A", "192.0.2.8"],
        ["host.example.org", "AAAA", "2001:db8::25"],
        ["txt.example.org", "TXT", "v=spf1 -all"],
        ["split.example.org", "TXT", ["v=spf1 ", "ip4:192.0.2.0/24", " -all"]],
        ["big.example.org", "TXT", "x" * 3000],
        ["alias.example.org", "CNAME", "host.example.org"],
        ["7.2.0.10.in-addr.arpa", "PTR", "host.example.org"],
        ["sub.nodata.example.org", "A", "192.0.2.9"],
    ],
    "servfail": ["broken.example.org"],
    "refused": ["refused.example.org"],
    "timeout": ["silent.example.org"],
}


def _plugin():
    path = sluice_binary().resolve().parent.parent / "tests" / "plugins" / \
        ".libs" / "dnsprobe.so"
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def _config(dns, cap, rtype="A", sync=False, timeout="1s"):
    return standard_config(
        cap.address, chain=["probe"],
        filters={"probe": {"module": "dnsprobe", "type": rtype, "sync": sync,
                           "timeout": "10s"}},
        globals={"load": [str(_plugin())],
                 "resolver": {"forwarders": [dns.forwarder],
                              "timeout": timeout}})


def _ask(s, name):
    with RawClient(s.port) as c:
        c.expect(220)
        r = c.cmd("EHLO %s" % name)
        assert r.code == 550, r
        return r.text if hasattr(r, "text") else str(r)


def _text(r):
    m = re.search(r"dns status=.*", r)
    assert m, r
    return m.group(0)


def _probe(tmp, cases, sync=False):
    with DnsServer(tmp / "dns", ZONE) as dns, Capture(tmp / "cap") as cap:
        for rtype, name, want in cases:
            cfgdir = tmp / ("s-%s-%s" % (rtype, name))
            with Sluice(_config(dns, cap, rtype, sync), cfgdir) as s:
                got = _text(_ask(s, name))
                assert re.fullmatch(want, got), (rtype, name, got, want)


CASES = [
    ("MX", "mx.example.org",
     r"dns status=ok rcode=0 n=2 (\[10 mx1\.example\.org\] \[20 mx2\.example\.org\]|"
     r"\[20 mx2\.example\.org\] \[10 mx1\.example\.org\])"),
    ("A", "host.example.org",
     r"dns status=ok rcode=0 n=2 \[192\.0\.2\.[78]\] \[192\.0\.2\.[78]\]"),
    ("AAAA", "host.example.org", r"dns status=ok rcode=0 n=1 \[2001:db8::25\]"),
    ("TXT", "txt.example.org", r"dns status=ok rcode=0 n=1 \[len=11 v=spf1 -all\]"),
    # character strings are concatenated without separators (RFC 7208 3.3)
    ("TXT", "split.example.org",
     r"dns status=ok rcode=0 n=1 \[len=28 v=spf1 ip4:192\.0\.2\.0/24 -all\]"),
    # over 512 bytes: truncated over UDP, unbound retries over TCP
    ("TXT", "big.example.org", r"dns status=ok rcode=0 n=1 \[len=3000 x{40}\]"),
    ("A", "alias.example.org",
     r"dns status=ok rcode=0 n=2 \[192\.0\.2\.[78]\] \[192\.0\.2\.[78]\]"),
    ("PTR", "7.2.0.10.in-addr.arpa", r"dns status=ok rcode=0 n=1 \[host\.example\.org\]"),
    ("MX", "host.example.org", r"dns status=nodata rcode=0 n=0"),
    # an empty non-terminal exists: NODATA, not NXDOMAIN
    ("A", "nodata.example.org", r"dns status=nodata rcode=0 n=0"),
    ("A", "nothere.example.org", r"dns status=nxdomain rcode=3 n=0"),
]


def test_records_async(tmp):
    _probe(tmp, CASES)


def test_records_sync_from_pool(tmp):
    _probe(tmp, CASES[:4] + CASES[8:], sync=True)


def test_servfail_refused_and_timeout(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, Capture(tmp / "cap") as cap:
        for sync in (False, True):
            with Sluice(_config(dns, cap, "A", sync, timeout="1s"),
                        tmp / ("s%d" % sync)) as s:
                assert re.match(r"dns status=servfail", _text(_ask(s, "broken.example.org")))
                assert re.match(r"dns status=servfail", _text(_ask(s, "refused.example.org")))
                t0 = time.monotonic()
                got = _text(_ask(s, "silent.example.org"))
                took = time.monotonic() - t0
                assert got.startswith("dns status=timeout"), got
                # the resolver's timeout (1 s), not unbound's own retries
                assert 0.8 < took < scaled(5), took
                # and the daemon still answers the next one
                assert _text(_ask(s, "host.example.org")).startswith("dns status=ok")


def test_answers_are_cached(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, Capture(tmp / "cap") as cap:
        cfg = _config(dns, cap, "A")
        cfg["globals"]["workers"] = 1
        with Sluice(cfg, tmp / "s") as s:
            for _ in range(3):
                assert _text(_ask(s, "host.example.org")).startswith("dns status=ok")
        asked = [q for q in dns.queries() if q == ("host.example.org", "A")]
        assert len(asked) == 1, dns.queries()


def test_bad_forwarder_refused_at_load(tmp):
    cfg = standard_config("127.0.0.1:25",
                          globals={"resolver": {"forwarders": ["not-an-ip@53"]}})
    rc, out = check_config(cfg, tmp / "a")
    assert rc == 1, out
    path = tmp / "a" / "sluice.conf"
    assert re.search(r"^%s:\d+: .*forwarder \"not-an-ip@53\" is not an IP address"
                     % re.escape(str(path)), out, re.M), out
    cfg = standard_config("127.0.0.1:25",
                          globals={"resolver": {"forwarders": ["127.0.0.1@70000"]}})
    rc, out = check_config(cfg, tmp / "b")
    assert rc == 1 and "127.0.0.1@70000" in out, out


def test_missing_trust_anchor_refused(tmp):
    cfg = standard_config("127.0.0.1:25",
                          globals={"resolver": {"dnssec": True,
                                                "trust_anchor": str(tmp / "none.key")}})
    rc, out = check_config(cfg, tmp / "a")
    assert rc == 1 and "trust_anchor" in out, out


run_tests(globals())
