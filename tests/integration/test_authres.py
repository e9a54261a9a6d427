#!/usr/bin/python3
"""The authres filter in the real daemon: incoming Authentication-Results
fields that claim our authserv-id are removed wherever they stand and
however they are written (comments, folding, quotes, case, a final dot,
obsolete white space before the colon), everyone else's are kept byte for
byte, and one field of ours with the recorded results goes on top.  The
results come from the arstub plugin of test_dmarc.py and from the dmarc
filter itself."""
import re
import socket

from sluicetest import *
from test_dmarc import build_stub, zone

ID = HOSTNAME   # "mx.test"

FORGED = [
    b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.org\r\n",
    b"authentication-results:   (comment) MX.Test ;\r\n dkim=pass header.d=example.org\r\n",
    b"Authentication-Results: \"mx.test\"; dmarc=pass header.from=example.org\r\n",
    b"Authentication-Results:\r\n\tmx.test.;\r\n\tarc=pass\r\n",
    b"Authentication-Results : mx.test; spf=pass\r\n",
    b"AUTHENTICATION-RESULTS: (a (nested) comment)\r\n mx.test 1; dkim=pass\r\n",
    b"Authentication-Results: junk mx.test; spf=pass\r\n",
    b"Authentication-Results: \"mx\\.test\"; spf=pass\r\n",
]

KEPT = [
    b"Authentication-Results: other.example; spf=fail smtp.mailfrom=mx.test\r\n",
    b"Authentication-Results: mx.test.evil.example; spf=pass\r\n",
    b"Authentication-Results: evil-mx.test; dkim=pass\r\n",
    b"Authentication-Results: sub.mx.test;\r\n\tdmarc=pass\r\n",
]

TAIL = (b"From: Alice <alice@example.org>\r\nSubject: authres\r\n\r\n"
        b"Authentication-Results: mx.test; spf=pass (in the body: untouched)\r\n")


def config(cap, stub, results=(), chain=("stub", "ar"), ar=None, dns=None,
           dmarc=None):
    filters = {"stub": {"module": "arstub", "results": list(results)},
               "ar": dict({"module": "authres", "authserv_id": ID}, **(ar or {}))}
    g = {"load": [str(stub)]}
    if dns is not None:
        filters["dmarc"] = dict({"module": "dmarc", "timeout": "10s"}, **(dmarc or {}))
        g["resolver"] = {"forwarders": [dns.forwarder], "timeout": "1s"}
    return standard_config(cap.address, chain=list(chain), filters=filters, globals=g)


def send(s, body, sender="bounce@example.org"):
    with RawClient(s.port) as c:
        hello(c)
        r = transaction(c, body, sender=sender)
        ask(c, "QUIT", 221)
    return r


def after_ours(m, ours):
    """The message bytes after our field, which must be the first one, or
    come right after the Received: field sluice adds."""
    data = m.unstuffed()
    i = data.find(ours)
    assert i >= 0, (ours, data[:600])
    assert i == 0 or re.fullmatch(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*",
                                  data[:i]), data[:i + len(ours)]
    return data[i + len(ours):]


def test_forged_removed_others_kept(tmp):
    stub = build_stub(tmp / "stub")
    head = b"Received: from relay.example by mx.example; Mon, 1 Jan 2024\r\n"
    body = head
    for i in range(max(len(FORGED), len(KEPT))):
        body += FORGED[i] if i < len(FORGED) else b""
        body += KEPT[i] if i < len(KEPT) else b""
    body += TAIL
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub), tmp / "sluice") as s:
        assert send(s, body).code == 250
        m, = cap.wait_messages(1)
        rest = after_ours(m, b"Authentication-Results: mx.test; none\r\n")
        assert rest == head + b"".join(KEPT) + TAIL, rest
        s.wait_log(r"filter=ar authres removed=%d authserv_id=mx\.test" % len(FORGED))


def test_results_merged_and_folded(tmp):
    stub = build_stub(tmp / "stub")
    res = ["spf pass smtp.mailfrom=bounce@example.org",
           "dkim pass header.d=example.org header.s=selector2024 header.b=Ab12/+xyz",
           "dkim fail header.d=other.example|signature did not \"verify\""]
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, res), tmp / "sluice") as s:
        assert send(s, TAIL).code == 250
        m, = cap.wait_messages(1)
        ours = (b"Authentication-Results: mx.test; spf=pass "
                b"smtp.mailfrom=bounce@example.org;\r\n"
                b"\tdkim=pass header.d=example.org header.s=selector2024 "
                b"header.b=\"Ab12/+xyz\";\r\n"
                b"\tdkim=fail reason=\"signature did not \\\"verify\\\"\" "
                b"header.d=other.example\r\n")
        assert after_ours(m, ours) == TAIL
        for line in ours.split(b"\r\n"):
            assert len(line) <= 78, line


def test_none_without_results(tmp):
    stub = build_stub(tmp / "stub")
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, chain=("ar",)), tmp / "sluice") as s:
        assert send(s, TAIL).code == 250
        m, = cap.wait_messages(1)
        assert after_ours(m, b"Authentication-Results: mx.test; none\r\n") == TAIL


def test_dmarc_result_included(tmp):
    stub = build_stub(tmp / "stub")
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    res = ["spf pass smtp.mailfrom=example.org",
           "dkim pass header.d=example.org header.s=sel"]
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, res, chain=("stub", "dmarc", "ar"), dns=dns),
                   tmp / "sluice") as s:
        assert send(s, FORGED[0] + TAIL).code == 250
        m, = cap.wait_messages(1)
        ours = (b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.org;\r\n"
                b"\tdkim=pass header.d=example.org header.s=sel; dmarc=pass\r\n"
                b"\theader.from=example.org\r\n")
        assert after_ours(m, ours) == TAIL


def test_first_in_chain_still_removes(tmp):
    """Placed before dmarc the filter still removes forgeries, but its
    field misses what later filters record: that is why it goes last."""
    stub = build_stub(tmp / "stub")
    z = zone(("_dmarc.example.org", "v=DMARC1; p=none"))
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, ["spf pass smtp.mailfrom=x.example"],
                          chain=("stub", "ar", "dmarc"), dns=dns), tmp / "sluice") as s:
        assert send(s, FORGED[1] + KEPT[0] + TAIL).code == 250
        m, = cap.wait_messages(1)
        rest = after_ours(m, b"Authentication-Results: mx.test; spf=pass "
                          b"smtp.mailfrom=x.example\r\n")
        assert rest == KEPT[0] + TAIL
        s.wait_log(r"filter=dmarc dmarc result=fail domain=example\.org")


def test_transactions_counted_separately(tmp):
    """The positions of the fields restart with each message."""
    stub = build_stub(tmp / "stub")
    first = KEPT[0] + KEPT[1] + KEPT[2] + TAIL
    second = KEPT[3] + FORGED[0] + TAIL
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, chain=("ar",)), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, first).code == 250
            ask(c, "RSET", 250)
            assert transaction(c, second).code == 250
            assert transaction(c, FORGED[2] + TAIL).code == 250
            ask(c, "QUIT", 221)
        m1, m2, m3 = cap.wait_messages(3)
        none = b"Authentication-Results: mx.test; none\r\n"
        assert after_ours(m1, none) == first
        assert after_ours(m2, none) == KEPT[3] + TAIL
        assert after_ours(m3, none) == TAIL


def test_many_forged_interleaved(tmp):
    stub = build_stub(tmp / "stub")
    body, kept = b"", b""
    for i in range(60):
        body += FORGED[i % len(FORGED)]
        k = b"Authentication-Results: relay%d.example; spf=none\r\n" % i
        body += k + b"X-Seq: %d\r\n" % i
        kept += k + b"X-Seq: %d\r\n" % i
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, chain=("ar",)), tmp / "sluice") as s:
        assert send(s, body + TAIL).code == 250
        m, = cap.wait_messages(1)
        rest = after_ours(m, b"Authentication-Results: mx.test; none\r\n")
        assert rest == kept + TAIL
        s.wait_log(r"authres removed=60 ")


def test_default_authserv_id_is_the_host_name(tmp):
    host = socket.gethostname()
    stub = build_stub(tmp / "stub")
    forged = b"Authentication-Results: %s; spf=pass\r\n" % host.encode()
    with Capture(tmp / "cap") as cap, \
            Sluice(config(cap, stub, chain=("ar",), ar={"authserv_id": None}),
                   tmp / "sluice") as s:
        assert send(s, forged + KEPT[0] + TAIL).code == 250
        m, = cap.wait_messages(1)
        ours = b"Authentication-Results: %s; none\r\n" % host.encode()
        assert after_ours(m, ours) == KEPT[0] + TAIL


def test_bad_authserv_id_refused(tmp):
    stub = build_stub(tmp / "stub")
    with Capture(tmp / "cap") as cap:
        for i, bad in enumerate(["mx test", "mx.test;", "\"mx\"", "x" * 256]):
            rc, out = check_config(config(cap, stub, ar={"authserv_id": bad}),
                                   tmp / ("c%d" % i))
            assert rc != 0, out
            assert re.search(r"sluice\.conf:\d+: .*authserv_id must be a token", out), out


if __name__ == "__main__":
    run_tests(globals())
