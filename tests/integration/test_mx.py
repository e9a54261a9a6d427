#!/usr/bin/python3
"""Delivery-destination resolution (proxy/mx.c, proxy/mx_plan.c) through
the real resolver (proxy/dns.c on libunbound) against dns_server.py: the
tests/unit/mx_probe helper resolves one destination and prints the
candidate list, which each test reads.

No daemon path uses mx.c yet (the relay scheduler will), hence the probe."""
import re
import subprocess

from sluicetest import *

ZONE = {
    "records": [
        ["mx.example", "MX", "20 mx2.mx.example"],
        ["mx.example", "MX", "10 mx1.mx.example"],
        ["mx1.mx.example", "A", "127.0.0.2"],
        ["mx2.mx.example", "A", "127.0.0.3"],
        ["mx2.mx.example", "AAAA", "::1"],
        ["eq.example", "MX", "10 a.eq.example"],
        ["eq.example", "MX", "10 b.eq.example"],
        ["eq.example", "MX", "10 c.eq.example"],
        ["a.eq.example", "A", "127.0.0.11"],
        ["b.eq.example", "A", "127.0.0.12"],
        ["c.eq.example", "A", "127.0.0.13"],
        ["plain.example", "A", "127.0.0.4"],
        ["plain.example", "AAAA", "::1"],
        ["null.example", "MX", "0 ."],
        ["broken.example", "A", "127.0.0.5"],
        ["alias.example", "CNAME", "mx.example"],
        ["viacname.example", "MX", "10 mxalias.example"],
        ["mxalias.example", "CNAME", "mx1.mx.example"],
        ["half.example", "MX", "10 gone.half.example"],
        ["half.example", "MX", "20 mx1.mx.example"],
        ["allgone.example", "MX", "10 gone.allgone.example"],
        ["sick.example", "MX", "10 gone.sick.example"],
        ["sick.example", "MX", "20 broken.example"],
        ["numeric.example", "MX", "10 127.0.0.9"],
        ["noaddr.example", "TXT", "no address here"],
    ],
    "servfail": ["broken.example"],
    "timeout": ["silent.example"],
}


def _probe_bin():
    path = sluice_binary().resolve().parent.parent / "tests" / "unit" / "mx_probe"
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def probe(dns, dest, *opts):
    """mx_probe's output lines for dest."""
    cmd = [str(_probe_bin())] + [str(o) for o in opts] + [dns.forwarder, dest]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0, (cmd, out.stdout, out.stderr)
    return out.stdout.splitlines()


def status(lines):
    m = re.match(r'status=(\w+) dsn=(\S+) implicit=(\d) reason="(.*)" warning="(.*)"$',
                 lines[0])
    assert m, lines
    return m.groups()


def hosts(lines):
    return [l[5:] for l in lines if l.startswith("host ")]


def test_mx_preference_order(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "mx.example")
        assert status(out)[:3] == ("ok", "2.0.0", "0"), out
        assert hosts(out) == ["10 mx1.mx.example[127.0.0.2]:25",
                              "20 mx2.mx.example[::1]:25,[127.0.0.3]:25"], out
        # IPv4 first, and IPv4 only
        assert hosts(probe(dns, "mx.example", "-V"))[1] == \
            "20 mx2.mx.example[127.0.0.3]:25,[::1]:25"
        assert hosts(probe(dns, "mx.example", "-4"))[1] == "20 mx2.mx.example[127.0.0.3]:25"
        assert ("mx2.mx.example", "AAAA") in dns.queries()


def test_equal_preference_every_order(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "eq.example", "-4", "-n", "60")
        orders = [l[6:] for l in out if l.startswith("order ")]
        assert len(orders) == 60, out
        assert len(set(orders)) == 6, sorted(set(orders))
        # the same seed gives the same order
        again = [l[6:] for l in probe(dns, "eq.example", "-4", "-n", "60") if
                 l.startswith("order ")]
        assert again == orders


def test_no_mx_falls_back_to_a_and_aaaa(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "plain.example")
        assert status(out)[:3] == ("ok", "2.0.0", "1"), out
        assert hosts(out) == ["0 plain.example[::1]:25,[127.0.0.4]:25"], out
        q = dns.queries()
        assert ("plain.example", "MX") in q and ("plain.example", "A") in q and \
            ("plain.example", "AAAA") in q, q
        # exists, but neither MX nor address: bounce
        out = probe(dns, "noaddr.example")
        assert status(out)[:2] == ("perm", "5.4.4"), out


def test_nxdomain_and_null_mx_are_permanent(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "nothere.example")
        assert status(out)[:2] == ("perm", "5.1.2"), out
        out = probe(dns, "null.example")
        st = status(out)
        assert st[:2] == ("perm", "5.1.10"), out
        assert st[3] == "domain null.example does not accept mail (null MX, RFC 7505)", st
        assert ("null.example", "A") not in dns.queries()


def test_servfail_and_timeout_defer_without_a_fallback(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "broken.example", "-t", "1000")
        st = status(out)
        assert st[:2] == ("temp", "4.4.3") and "servfail" in st[3], out
        assert ("broken.example", "A") not in dns.queries()
        out = probe(dns, "silent.example", "-t", "1000")
        st = status(out)
        assert st[:2] == ("temp", "4.4.3") and "timeout" in st[3], out


def test_cname_followed(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        # the domain is a CNAME to a domain with MX records
        out = probe(dns, "alias.example", "-4")
        assert status(out)[0] == "ok", out
        assert [h.split("[")[0] for h in hosts(out)] == ["10 mx1.mx.example",
                                                          "20 mx2.mx.example"], out
        # an MX target that is a CNAME (not allowed, but it works everywhere)
        out = probe(dns, "viacname.example", "-4")
        assert hosts(out) == ["10 mxalias.example[127.0.0.2]:25"], out


def test_mx_host_without_address(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "half.example", "-4")
        assert hosts(out) == ["20 mx1.mx.example[127.0.0.2]:25"], out
        out = probe(dns, "allgone.example")
        st = status(out)
        assert st[:2] == ("perm", "5.4.4"), out
        assert "no MX host for allgone.example has an address" in st[3], st
        # a host whose lookup failed temporarily makes it a deferral
        out = probe(dns, "sick.example", "-t", "1000")
        assert status(out)[:2] == ("temp", "4.4.3"), out


def test_numeric_mx_used_with_warning(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "numeric.example")
        st = status(out)
        assert st[0] == "ok" and "numeric domain name" in st[4], out
        assert hosts(out) == ["10 127.0.0.9[127.0.0.9]:25"], out
        assert ("127.0.0.9", "A") not in dns.queries()


def test_smart_hosts_and_ports(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "[mx1.mx.example]:2525", "-S")
        assert hosts(out) == ["0 mx1.mx.example[127.0.0.2]:2525"], out
        assert ("mx1.mx.example", "MX") not in dns.queries()
        out = probe(dns, "mx.example:2526", "-S", "-4")
        assert hosts(out) == ["10 mx1.mx.example[127.0.0.2]:2526",
                              "20 mx2.mx.example[127.0.0.3]:2526"], out
        out = probe(dns, "[127.0.0.7]:26", "-S")
        assert hosts(out) == ["0 127.0.0.7[127.0.0.7]:26"], out
        out = probe(dns, "[IPv6:::1]", "-S", "-P", "2527")
        assert hosts(out) == ["0 ::1[::1]:2527"], out
        # delivery_port replaces 25, never an explicit port
        out = probe(dns, "mx.example", "-4", "-P", "2528")
        assert hosts(out)[0] == "10 mx1.mx.example[127.0.0.2]:2528", out
        # a smart host that does not resolve defers (configuration error)
        out = probe(dns, "[nothere.example]", "-S")
        assert status(out)[0] == "temp", out
        out = probe(dns, "bad host", "-S")
        assert out[0].startswith("dest error:"), out


def test_loop_back_to_myself(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "mx.example", "-4", "-L", "127.0.0.3:25")
        assert hosts(out) == ["10 mx1.mx.example[127.0.0.2]:25"], out
        out = probe(dns, "mx.example", "-4", "-L", "127.0.0.2:25")
        st = status(out)
        assert st[:2] == ("temp", "4.4.6"), out
        assert st[3] == "mail for mx.example loops back to myself", st
        # another port is someone else
        out = probe(dns, "mx.example", "-4", "-L", "127.0.0.2:2525")
        assert status(out)[0] == "ok", out


def test_cancel_never_calls_back(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns:
        out = probe(dns, "mx.example", "-c")
        assert out == ["cancelled", "callbacks=0"], out
        out = probe(dns, "silent.example", "-c", "-t", "500")
        assert out == ["cancelled", "callbacks=0"], out
        # nothing to ask: the result was due on the next loop turn
        out = probe(dns, "[127.0.0.7]:26", "-S", "-c")
        assert out == ["cancelled", "callbacks=0"], out


def test_config_options(tmp):
    """The relay resolution options: accepted, and bad values named with file:line."""
    good = standard_config("127.0.0.1:1", globals={
        "delivery_port": 2525, "inet_protocols": "ipv4",
        "address_preference": "ipv4", "smart_host": "[relay.example]:587"})
    rc, out = check_config(good, tmp / "good")
    assert rc == 0, out
    for key, value, want in [
            ("delivery_port", 70000, "delivery_port = 70000 is out of range"),
            ("inet_protocols", "ipv5", 'inet_protocols "ipv5" is not valid'),
            ("address_preference", "any", 'address_preference "any" is not valid'),
            ("smart_host", "[relay.example", 'smart_host "[relay.example": missing'),
            ("smart_host", "relay.example:0", "bad port"),
            ("smart_host", "bad host", "bad host name")]:
        rc, out = check_config(standard_config("127.0.0.1:1", globals={key: value}),
                               tmp / ("bad-%s-%s" % (key, len(str(value)))))
        assert rc != 0 and re.search(r"sluice\.conf:\d+: .*" + re.escape(want), out), out


run_tests(globals())
