#!/usr/bin/python3
"""The spf filter in the real daemon, with DNS from a test DNS server:
pass, fail (550 5.7.23, never at the backend), the policy table for
softfail/neutral/none, temperror from SERVFAIL and from a server that
never answers (451 4.7.24 within the resolver timeout), malformed records
(permerror), big TXT answers over TCP, the HELO identity, the null
sender, Received-SPF and Authentication-Results, observe mode,
skip_networks, and bad configuration values."""

import re
import socket
import time

from sluicetest import *

BODY = b"Subject: spf\r\nFrom: a@example.org\r\n\r\nbody\r\n"

ZONE = {
    "records": [
        ["pass.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"],
        ["fail.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"],
        ["exp.example", "TXT", "v=spf1 -all exp=why.exp.example"],
        ["why.exp.example", "TXT", "%{i} may not send for %{d}, see %{d}/spf"],
        ["soft.example", "TXT", "v=spf1 ~all"],
        ["neutral.example", "TXT", "v=spf1 ?all"],
        ["none.example", "TXT", "just some text"],
        ["nested.example", "TXT", "v=spf1 a:broken.example -all"],
        ["bad.example", "TXT", "v=spf1 ip4:127.0.0.1/99 -all"],
        ["badmech.example", "TXT", "v=spf1 a:example -all"],
        ["two.example", "TXT", "v=spf1 -all"],
        ["two.example", "TXT", "v=spf1 +all"],
        ["helo-fail.example", "TXT", "v=spf1 -all"],
        ["helo-pass.example", "TXT", "v=spf1 a -all"],
        ["helo-pass.example", "A", "127.0.0.1"],
        ["alt.example", "TXT", "v=spf1 ip4:127.0.0.2 -all"],
    ],
    "servfail": ["servfail.example", "broken.example"],
    "timeout": ["silent.example"],
}


def spf_filter(**opts):
    """An spf instance; loopback is checked unless the test says not."""
    d = {"module": "spf", "skip_networks": [], "hostname": "mx.test",
         "timeout": "10s"}
    d.update(opts)
    return d


def spf_relay(tmp, dns, chain=("spf",), filters=None, resolver_timeout="2s",
              **opts):
    """A Capture and a Sluice with the given spf options, DNS from dns."""
    filters = filters or {"spf": spf_filter(**opts)}
    return relay(tmp, filters=filters, chain=list(chain),
                 globals={"resolver": {"forwarders": [dns.forwarder],
                                       "timeout": resolver_timeout}})


def no_mail_for(cap, address):
    """The backend never heard of address (checked once sluice is idle)."""
    time.sleep(0.2)
    for conn in cap.connections():
        for line in conn.commands:
            assert address not in line, (address, conn.commands)


def txt_queries(dns, name):
    return [q for q in dns.queries() if q == (name, "TXT")]


class SourceClient(RawClient):
    """A RawClient connecting from a chosen loopback source address."""

    def __init__(self, port, source, timeout=None):
        self.timeout = scaled(10) if timeout is None else timeout
        self.strict = True
        self.sock = socket.create_connection(("127.0.0.1", port), self.timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.received = bytearray()
        self.eof = False


# ---------------------------------------------------------------- results

def test_pass_reaches_backend_with_results(tmp):
    filters = {"spf": spf_filter(received_spf_header=True),
               "ar": {"module": "authres", "authserv_id": "mx.test"}}
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, chain=("spf", "ar"), filters=filters) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="client.test")
            assert transaction(c, BODY, sender="a@pass.example").code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "a@pass.example"
        head = m.header_block().decode()
        fields = re.findall(r"^([A-Za-z-]+):", head, re.M)
        # ours on top, below sluice's own Received:, then the client's
        assert fields[0] == "Received", fields
        assert fields[1:3] in (["Received-SPF", "Authentication-Results"],
                              ["Authentication-Results", "Received-SPF"]), fields
        rcv = re.search(r"^Received-SPF: (.*?)\r\n(?![ \t])", head, re.M | re.S)
        assert rcv, head
        value = re.sub(r"\r\n[ \t]", " ", rcv.group(1))
        assert value.startswith("pass (mx.test: domain of pass.example, client "
                                "127.0.0.1) client-ip=127.0.0.1; "
                                "envelope-from=\"a@pass.example\"; "
                                "helo=client.test; identity=mailfrom; "
                                "receiver=mx.test"), value
        ar = re.search(r"^Authentication-Results: (.*?)\r\n(?![ \t])", head,
                       re.M | re.S).group(1)
        assert "spf=pass smtp.mailfrom=pass.example" in re.sub(r"\s+", " ", ar), ar
        s.wait_log(r"filter=spf spf identity=mailfrom result=pass "
                   r"domain=pass\.example client=127\.0\.0\.1 lookups=1 ")
        # client.test has no record: none, recorded for the HELO identity
        s.wait_log(r"filter=spf spf identity=helo result=none domain=client\.test ")
        assert ("pass.example", "TXT") in dns.queries()
        assert not [q for q in dns.queries() if q[1] == "SPF"]


def test_fail_rejected_never_at_backend(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, spf_relay(tmp, dns) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@fail.example>", 550)
            assert r.raw == b"550 5.7.23 SPF validation failed: 127.0.0.1 is " \
                b"not one of fail.example's designated mail servers\r\n", r.raw
            ask(c, "RCPT TO:<b@example.net>", "503 ")
            # the domain's own explanation, macros expanded
            r = ask(c, "MAIL FROM:<a@exp.example>", 550)
            assert r.raw == b"550 5.7.23 SPF validation failed: 127.0.0.1 may " \
                b"not send for exp.example, see exp.example/spf\r\n", r.raw
            assert transaction(c, BODY, sender="a@pass.example").code == 250
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        no_mail_for(cap, "fail.example")
        no_mail_for(cap, "exp.example")
        s.wait_log(r"filter=spf spf identity=mailfrom result=fail "
                   r"domain=fail\.example client=127\.0\.0\.1 ")
        s.wait_log(r"reject filter=spf phase=mail client=127\.0\.0\.1 code=550 "
                   r"reason=\"SPF validation failed: ")


def test_policy_table(tmp):
    opts = {"on_softfail": "550 5.7.23 Soft {result} for {domain} from {ip}",
            "on_neutral": "tempfail", "on_none": "continue",
            "on_pass": "continue"}
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, check_helo=False, **opts) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@soft.example>", 550)
            assert r.raw == b"550 5.7.23 Soft softfail for soft.example from " \
                b"127.0.0.1\r\n", r.raw
            r = ask(c, "MAIL FROM:<a@neutral.example>", 451)
            assert r.raw == b"451 4.7.1 SPF result neutral for neutral.example, " \
                b"try again later\r\n", r.raw
            assert transaction(c, BODY, sender="a@none.example").code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "a@none.example"
        s.wait_log(r"spf identity=mailfrom result=none domain=none\.example ")
        s.wait_log(r"spf identity=mailfrom result=neutral domain=neutral\.example ")
        no_mail_for(cap, "soft.example")


def test_softfail_and_permerror_continue_by_default(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, spf_relay(tmp, dns) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="a@soft.example").code == 250
            assert transaction(c, BODY, sender="a@bad.example").code == 250
            ask(c, "QUIT", 221)
        assert len(cap.wait_messages(2)) == 2
        s.wait_log(r"spf identity=mailfrom result=softfail domain=soft\.example ")
        s.wait_log(r"spf identity=mailfrom result=permerror domain=bad\.example ")


# ---------------------------------------------------------------- DNS trouble

def test_temperror_from_servfail(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, spf_relay(tmp, dns) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@servfail.example>", 451)
            assert r.raw == b"451 4.7.24 SPF temporary error for " \
                b"servfail.example, try again later\r\n", r.raw
            # a SERVFAIL inside the record (a:broken.example) too
            r = ask(c, "MAIL FROM:<a@nested.example>", 451)
            assert r.raw.startswith(b"451 4.7.24 "), r.raw
            ask(c, "QUIT", 221)
        no_mail_for(cap, "servfail.example")
        s.wait_log(r"spf identity=mailfrom result=temperror "
                   r"domain=servfail\.example ")


def test_temperror_from_silent_server_within_timeout(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, resolver_timeout="1s", check_helo=False) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            start = time.monotonic()
            r = ask(c, "MAIL FROM:<a@silent.example>", 451)
            took = time.monotonic() - start
            assert r.raw.startswith(b"451 4.7.24 SPF temporary error for "
                                    b"silent.example"), r.raw
            assert 0.9 <= took < 3.0, took
            ask(c, "QUIT", 221)
        assert txt_queries(dns, "silent.example")


def test_dns_server_down(tmp):
    """No DNS server at all: temperror, not a hang or an accept."""
    with DnsServer(tmp / "dns", ZONE) as dns:
        pass    # stopped: its port answers nothing now
    with spf_relay(tmp, dns, resolver_timeout="1s", check_helo=False) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@pass.example>", 451)
            assert r.raw.startswith(b"451 4.7.24 "), r.raw
            ask(c, "QUIT", 221)


def test_malformed_records_permerror_action(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, on_permerror="reject") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            for domain in ("bad.example", "badmech.example", "two.example"):
                r = ask(c, "MAIL FROM:<a@%s>" % domain, 550)
                assert r.raw == b"550 5.7.24 SPF record of %s is not valid\r\n" \
                    % domain.encode(), r.raw
            ask(c, "QUIT", 221)
        # libspf2 alone takes a:example (no top label) and gives fail
        s.wait_log(r"spf identity=mailfrom result=permerror domain=badmech\.example "
                   r".*reason=\".*does not end in a top label")


def test_big_txt_answers_over_tcp(tmp):
    terms = " ".join("ip4:10.%d.%d.128/25" % (i // 250, i % 250) for i in range(30))
    record = "v=spf1 %s ip4:127.0.0.1 -all" % terms
    assert len(record) > 500
    huge = "v=spf1 " + " ".join("ip4:10.%d.%d.0/24" % (i // 250, i % 250)
                                for i in range(230)) + " ip4:127.0.0.1 -all"
    assert len(huge) > 4000
    zone = dict(ZONE)
    zone["records"] = ZONE["records"] + [
        ["big.example", "TXT", record],
        ["big.example", "TXT", "x" * 4000],           # 4000 bytes of other TXT
        ["huge.example", "TXT", huge],
    ]
    with DnsServer(tmp / "dns", zone) as dns, \
            spf_relay(tmp, dns, check_helo=False, on_permerror="reject") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="a@big.example").code == 250
            # libspf2 would silently drop the terms past its limit (neutral)
            r = ask(c, "MAIL FROM:<a@huge.example>", 550)
            assert r.raw.startswith(b"550 5.7.24 "), r.raw
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        s.wait_log(r"spf identity=mailfrom result=pass domain=big\.example ")
        s.wait_log(r"spf identity=mailfrom result=permerror domain=huge\.example "
                   r".*too large for libspf2")


# ---------------------------------------------------------------- identities

def test_helo_identity(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, spf_relay(tmp, dns) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="helo-fail.example")
            r = ask(c, "MAIL FROM:<a@pass.example>", 550)
            assert r.raw == b"550 5.7.23 SPF validation of HELO helo-fail.example " \
                b"failed: 127.0.0.1 is not one of helo-fail.example's designated " \
                b"mail servers\r\n", r.raw
            ask(c, "QUIT", 221)
        # a HELO fail decides alone: MAIL FROM was not looked up
        assert not txt_queries(dns, "pass.example"), dns.queries()
        s.wait_log(r"spf identity=helo result=fail domain=helo-fail\.example ")
        no_mail_for(cap, "pass.example")


def test_helo_check_off_and_helo_cached(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, check_helo=False) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="helo-fail.example")
            assert transaction(c, BODY, sender="a@pass.example").code == 250
            ask(c, "QUIT", 221)
        assert not txt_queries(dns, "helo-fail.example")
    zone = dict(ZONE, ttl=0)    # nothing cached by the resolver
    with DnsServer(tmp / "dns2", zone) as dns, \
            spf_relay(tmp / "2", dns) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="helo-pass.example")
            for _ in range(3):
                assert transaction(c, BODY, sender="a@pass.example").code == 250
            ask(c, "QUIT", 221)
        assert len(cap.wait_messages(3)) == 3
        # one HELO check for the session, three MAIL FROM checks
        assert len(txt_queries(dns, "helo-pass.example")) == 1, dns.queries()
        assert len(txt_queries(dns, "pass.example")) == 3, dns.queries()


def test_null_sender(tmp):
    filters = {"spf": spf_filter(),
               "ar": {"module": "authres", "authserv_id": "mx.test"}}
    with DnsServer(tmp / "dns", dict(ZONE, ttl=0)) as dns, \
            spf_relay(tmp, dns, chain=("spf", "ar"), filters=filters) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="helo-pass.example")
            assert transaction(c, BODY, sender="").code == 250
            ask(c, "QUIT", 221)
        with RawClient(s.port) as c:
            hello(c, helo="helo-fail.example")
            r = ask(c, "MAIL FROM:<>", 550)
            assert r.raw.startswith(b"550 5.7.23 SPF validation of HELO "
                                    b"helo-fail.example failed"), r.raw
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        ar = m.parsed()["Authentication-Results"]
        assert "spf=pass smtp.helo=helo-pass.example" in re.sub(r"\s+", " ", ar), ar
        # postmaster@helo is the same check: asked once
        assert len(txt_queries(dns, "helo-pass.example")) == 1, dns.queries()
    with DnsServer(tmp / "dns2", ZONE) as dns, \
            spf_relay(tmp / "2", dns, check_helo=False) as (cap, s):
        with RawClient(s.port) as c:
            hello(c, helo="helo-fail.example")
            r = ask(c, "MAIL FROM:<>", 550)   # MAIL FROM:<> is postmaster@HELO
            assert r.raw.startswith(b"550 5.7.23 SPF validation failed: "), r.raw
            ask(c, "QUIT", 221)


# ---------------------------------------------------------------- modes

def test_observe_mode_logs_would_reject(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, mode="observe") as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="a@fail.example").code == 250
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.mail_from == "a@fail.example"
        s.wait_log(r"would_reject filter=spf phase=mail client=127\.0\.0\.1 "
                   r"code=550 reason=\"SPF validation failed: 127\.0\.0\.1 is not "
                   r"one of fail\.example's designated mail servers\"")


def test_skip_networks(tmp):
    # by default loopback is not checked: no DNS question at all
    filters = {"spf": {"module": "spf", "hostname": "mx.test"}}
    with DnsServer(tmp / "dns", ZONE) as dns, \
            spf_relay(tmp, dns, filters=filters) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, BODY, sender="a@fail.example").code == 250
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        s.wait_log(r"filter=spf spf skipped client=127\.0\.0\.1: skip_networks")
        assert dns.queries() == []
    with DnsServer(tmp / "dns2", ZONE) as dns, \
            spf_relay(tmp / "2", dns, skip_networks=["127.0.0.2/32", "2001:db8::/32"],
                      check_helo=False) as (cap, s):
        with SourceClient(s.port, "127.0.0.2") as c:
            hello(c)
            assert transaction(c, BODY, sender="a@fail.example").code == 250
            ask(c, "QUIT", 221)
        with SourceClient(s.port, "127.0.0.3") as c:
            hello(c)
            r = ask(c, "MAIL FROM:<a@alt.example>", 550)
            assert b"127.0.0.3 is not one of alt.example's" in r.raw, r.raw
            ask(c, "QUIT", 221)
        cap.wait_messages(1)
        assert not txt_queries(dns, "fail.example")


# ---------------------------------------------------------------- config

def test_bad_config_refused(tmp):
    cases = [
        ({"on_fail": "550 4.7.1 class mismatch"}, r"on_fail must be continue, "
         r"reject, tempfail or a reply"),
        ({"on_softfail": "discard"}, r"on_softfail must be"),
        ({"on_none": "550 5.7.1 no {nosuch} field"}, r"on_none reply text may name"),
        ({"skip_networks": ["10.0.0.0/33"]}, r"skip_networks: \"10\.0\.0\.0/33\": "
         r"the prefix must be a number from 1 to 32"),
        ({"skip_networks": ["192.0.2.7/24"]}, r"skip_networks: \"192\.0\.2\.7/24\" "
         r"has bits set past the prefix; write the network address, 192\.0\.2\.0/24"),
        ({"explanation": "bad %{q} macro"}, r"invalid macro letter"),
        ({"max_void_lookups": 1000}, r"max_void_lookups must be"),
        ({"max_time": "10ms"}, r"max_time must be"),
        ({"hostname": "bad host"}, r"hostname \"bad host\" is not a host name"),
    ]
    for n, (opts, want) in enumerate(cases):
        cfg = standard_config("127.0.0.1:9", chain=["spf"],
                              filters={"spf": spf_filter(**opts)})
        rc, out = check_config(cfg, tmp / ("c%d" % n))
        assert rc != 0, (opts, out)
        assert re.search(r"sluice\.conf:\d+: .*" + want, out), (opts, out)
    rc, out = check_config(standard_config(
        "127.0.0.1:9", chain=["spf"], filters={"spf": spf_filter(
            on_pass="continue", on_fail="tempfail", on_permerror="reject",
            on_temperror="451 4.7.24 Later {domain}", skip_networks=["::1"])}),
        tmp / "good")
    assert rc == 0, out


run_tests(globals())
