#!/usr/bin/python3
"""The dmarc filter in the real daemon, with the test DNS server holding
the _dmarc records and the Capture backend: p=reject / quarantine / none,
alignment through SPF and DKIM results, the organizational-domain
fallback and sp, pct, DNS failures, bad From fields, the actions and the
dmarc= result in the Authentication-Results field (authres filter last).

The SPF and DKIM results come from "arstub", a ten-line plugin built here
that records the results it is configured with (sluice_authres_add), so
each test states exactly what SPF and DKIM said; the real spf filter is
used too when the daemon has it."""
import base64
import re
import shutil
import subprocess
import time
from pathlib import Path

from sluicetest import *

SRCDIR = Path(__file__).resolve().parent.parent.parent

FROM_BODY = (b"From: Alice <alice@example.org>\r\nTo: b@example.net\r\n"
             b"Subject: dmarc\r\n\r\nbody\r\n")

STUB_C = r"""
#include <stdlib.h>
#include <string.h>
#include "sluice_filter.h"

/* Records "method result [props...][|reason]" entries at MAIL. */
static const struct sluice_option opts[] = {
	{ "results", SLUICE_OPT_STRING_LIST, "{}", 0, "method result props|reason" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
stub_init(struct sluice_filter *f, void **inst, char *err, size_t errlen)
{
	size_t	 i, n = sluice_option_list_count(f, "results");
	char	**r = calloc(n + 1, sizeof(*r));

	for (i = 0; r != NULL && i < n; i++)
		r[i] = strdup(sluice_option_list_item(f, "results", i));
	*inst = r;
	return r != NULL ? 0 : -1;
}

static void
stub_fini(void *inst)
{
	char	**r = inst;
	size_t	 i;

	for (i = 0; r[i] != NULL; i++)
		free(r[i]);
	free(r);
}

static enum sluice_verdict
stub_mail(struct sluice_ctx *ctx)
{
	char	**r = sluice_instance(ctx), buf[1000], *m, *res, *props, *reason;
	size_t	 i;

	for (i = 0; r[i] != NULL; i++) {
		strncpy(buf, r[i], sizeof(buf) - 1);
		buf[sizeof(buf) - 1] = '\0';
		if ((reason = strchr(buf, '|')) != NULL)
			*reason++ = '\0';
		m = strtok(buf, " ");
		res = strtok(NULL, " ");
		props = strtok(NULL, "");
		if (m != NULL && res != NULL)
			sluice_authres_add(ctx, m, res, reason, props);
	}
	return SLUICE_CONTINUE;
}

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "arstub",
	.description = "records fixed authentication results (tests)",
	.options = opts,
	.init = stub_init,
	.fini = stub_fini,
	.on_mail = stub_mail,
};
"""


# ---------------------------------------------------------------- helpers

def build_stub(tmp):
    """Compile the arstub plugin into tmp; its path."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        skip("no C compiler for the arstub test plugin")
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    src, so = tmp / "arstub.c", tmp / "arstub.so"
    src.write_text(STUB_C)
    r = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-I", str(SRCDIR / "filters"),
                        "-o", str(so), str(src)], capture_output=True,
                       timeout=scaled(60))
    if r.returncode != 0:
        raise HardError("cannot build arstub: %s" % r.stderr.decode())
    reachable(so)
    return so


def config(cap, dns, stub, results=(), dmarc=None, chain=("stub", "dmarc", "ar"),
           extra_filters=None, resolver_timeout="1s"):
    """A listener whose chain records results, runs dmarc, then authres."""
    filters = {
        "stub": {"module": "arstub", "results": list(results)},
        "dmarc": dict({"module": "dmarc", "timeout": "10s"}, **(dmarc or {})),
        "ar": {"module": "authres", "authserv_id": HOSTNAME},
    }
    filters.update(extra_filters or {})
    return standard_config(
        cap.address, chain=list(chain), filters=filters,
        globals={"load": [str(stub)],
                 "resolver": {"forwarders": [dns.forwarder],
                              "timeout": resolver_timeout}})


def zone(*records, **kw):
    """A zone with TXT records given as (name, text) pairs."""
    z = {"records": [[n, "TXT", t] for n, t in records]}
    z.update(kw)
    return z


def send(s, body=FROM_BODY, sender="bounce@example.org"):
    """One transaction; the reply to the final dot."""
    with RawClient(s.port) as c:
        hello(c)
        r = transaction(c, body, sender=sender)
        ask(c, "QUIT", 221)
    return r


def fields(msg, name):
    """The unfolded values of the header fields called name (any case)."""
    out, cur = [], None
    for line in msg.header_block().split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur[1] += b"\r\n" + line
            continue
        if cur is not None:
            out.append(cur)
        n, _, v = line.partition(b":")
        cur = [n.strip(), v[1:] if v.startswith(b" ") else v] if _ else None
    if cur is not None:
        out.append(cur)
    return [v.decode() for n, v in out if n.lower() == name.lower().encode()]


def authres(msg):
    """Our Authentication-Results value, unfolded."""
    ars = [v for v in fields(msg, "Authentication-Results")
           if v.startswith(HOSTNAME + ";")]
    assert len(ars) == 1, fields(msg, "Authentication-Results")
    return re.sub(r"\r\n[ \t]+", " ", ars[0])


def dmarc_queries(dns):
    """The _dmarc names asked, in order, each once (the resolver may retry)."""
    out = []
    for n, t in dns.queries():
        if n.startswith("_dmarc.") and n not in out:
            out.append(n)
    return out


def no_message(cap):
    time.sleep(0.2)
    assert cap.messages(include_incomplete=True) == []


# ---------------------------------------------------------------- policy

def test_reject_spf_fail_no_dkim(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, ["spf fail smtp.mailfrom=example.org"]),
                   tmp / "sluice") as s:
        r = send(s)
        assert r.raw == b"550 5.7.1 Rejected by the DMARC policy of " \
            b"example.org\r\n", r.raw
        s.wait_log(r"filter=dmarc dmarc result=fail domain=example\.org "
                   r"policy=reject action=reject spf_aligned=no dkim_aligned=no")
        s.wait_log(r"reject filter=dmarc phase=eom client=127\.0\.0\.1 code=550")
        assert dmarc_queries(dns) == ["_dmarc.example.org"]
        no_message(cap)


def test_quarantine_adds_header(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=quarantine"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Sluice-DMARC") == ["quarantine"], m.header_block()
        assert authres(m) == "mx.test; dmarc=fail header.from=example.org"
        s.wait_log(r"dmarc result=fail domain=example\.org policy=quarantine "
                   r"action=quarantine")
        # the body is what the client sent
        assert m.unstuffed().endswith(b"\r\n\r\nbody\r\n")


def test_none_passes_with_fail_recorded(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=none; rua=mailto:r@example.org"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, ["spf fail smtp.mailfrom=example.org"]),
                   tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; spf=fail smtp.mailfrom=example.org; " \
            "dmarc=fail header.from=example.org"
        assert fields(m, "X-Sluice-DMARC") == []
        s.wait_log(r"dmarc result=fail domain=example\.org policy=none "
                   r"action=continue")


def test_aligned_spf_pass(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    res = ["spf pass smtp.mailfrom=bounce@mail.example.org"]
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, res), tmp / "sluice") as s:
        assert send(s, sender="bounce@mail.example.org").code == 250
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; spf=pass smtp.mailfrom=bounce@mail.example.org; " \
            "dmarc=pass header.from=example.org"
        s.wait_log(r"dmarc result=pass domain=example\.org policy=reject "
                   r"action=continue spf_aligned=yes dkim_aligned=no")


def test_aligned_dkim_pass_spf_fail(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    res = ["spf fail smtp.mailfrom=other.example",
           "dkim fail header.d=example.org header.s=old",
           "dkim pass header.d=example.org header.s=sel"]
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, res), tmp / "sluice") as s:
        assert send(s, sender="x@other.example").code == 250
        m, = cap.wait_messages(1)
        assert "dmarc=pass header.from=example.org" in authres(m)
        s.wait_log(r"dmarc result=pass .*spf_aligned=no dkim_aligned=yes")


def test_unaligned_passes_are_not_enough(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    res = ["spf pass smtp.mailfrom=evil.example",
           "dkim pass header.d=evil.example"]
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, res), tmp / "sluice") as s:
        assert send(s, sender="x@evil.example").code == 550
        no_message(cap)


def test_strict_spf_alignment(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject; aspf=s"))
    stub = build_stub(tmp / "stub")
    res = ["spf pass smtp.mailfrom=bounce@mail.example.org"]
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, res), tmp / "sluice") as s:
        assert send(s, sender="bounce@mail.example.org").code == 550
        s.wait_log(r"dmarc result=fail domain=example\.org policy=reject "
                   r"action=reject spf_aligned=no")


def test_org_domain_fallback_and_sp(tmp):
    body = FROM_BODY.replace(b"alice@example.org", b"alice@news.sub.example.org")
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject; sp=quarantine"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s, body).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Sluice-DMARC") == ["quarantine"]
        assert authres(m) == "mx.test; dmarc=fail header.from=news.sub.example.org"
        # the author domain first, then the organizational domain only
        assert dmarc_queries(dns) == ["_dmarc.news.sub.example.org",
                                      "_dmarc.example.org"]
        s.wait_log(r"dmarc result=fail domain=news\.sub\.example\.org "
                   r"policy=quarantine action=quarantine")


def test_record_at_author_domain_uses_p(tmp):
    body = FROM_BODY.replace(b"alice@example.org", b"alice@sub.example.org")
    z = zone(("_dmarc.sub.example.org", "v=DMARC1; p=reject; sp=none"),
             ("_dmarc.example.org", "v=DMARC1; p=none"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s, body).code == 550
        assert dmarc_queries(dns) == ["_dmarc.sub.example.org"]


def test_public_suffix_is_respected(tmp):
    """a.co.uk's record is looked up at a.co.uk, never at co.uk."""
    body = FROM_BODY.replace(b"alice@example.org", b"alice@mail.a.co.uk")
    z = zone(("_dmarc.co.uk", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s, body).code == 250
        assert dmarc_queries(dns) == ["_dmarc.mail.a.co.uk", "_dmarc.a.co.uk"]
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; dmarc=none header.from=mail.a.co.uk"


def test_no_record_is_none(tmp):
    z = zone(("_dmarc.example.org", "v=spf1 -all"),
             ("example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; dmarc=none header.from=example.org"
        s.wait_log(r"dmarc result=none domain=example\.org policy=absent "
                   r"action=continue")
        assert dmarc_queries(dns) == ["_dmarc.example.org"]


def test_pct_zero_softens_reject(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject; pct=0"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Sluice-DMARC") == ["quarantine"]
        s.wait_log(r"dmarc result=fail domain=example\.org policy=reject "
                   r"action=quarantine spf_aligned=no dkim_aligned=no pct=0 "
                   r"sampled_out=yes")


# ---------------------------------------------------------------- errors

def test_bad_record_is_permerror(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=bogus"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert authres(m).startswith("mx.test; dmarc=permerror reason=\"bad DMARC "
                                     "record at _dmarc.example.org: "), authres(m)
        assert authres(m).endswith(" header.from=example.org")


def test_several_records_is_permerror(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"),
             ("_dmarc.example.org", "v=DMARC1; p=none"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; dmarc=permerror reason=\"several DMARC " \
            "records at _dmarc.example.org\" header.from=example.org"


def test_servfail_continues_as_temperror(tmp):
    z = zone(servfail=["_dmarc.example.org"])
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert authres(m).startswith("mx.test; dmarc=temperror reason=\"DNS servfail "
                                     "for _dmarc.example.org"), authres(m)
        s.wait_log(r"dmarc result=temperror domain=example\.org policy=absent "
                   r"action=continue reason=\"DNS servfail")
        # no fallback to the organizational domain after a failure
        assert dmarc_queries(dns) == ["_dmarc.example.org"]


def test_timeout_with_on_temperror_error_tempfails(tmp):
    body = FROM_BODY.replace(b"alice@example.org", b"alice@sub.example.org")
    z = zone(timeout=["_dmarc.example.org"])
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"on_temperror": "error"}),
                   tmp / "sluice") as s:
        t0 = time.monotonic()
        r = send(s, body)
        assert r.code == 451, r
        assert time.monotonic() - t0 < scaled(8)
        s.wait_log(r"filter=dmarc phase=eom error=\"dmarc DNS timeout for "
                   r"_dmarc\.example\.org.*\" action=tempfail")
        assert dmarc_queries(dns)[:1] == ["_dmarc.sub.example.org"]
        no_message(cap)


def test_on_error_accept_lets_temperror_through(tmp):
    z = zone(servfail=["_dmarc.example.org"])
    stub = build_stub(tmp / "stub")
    dm = {"on_temperror": "error", "on_error": "accept"}
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc=dm), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert "dmarc=temperror" in authres(m)


def test_hook_timeout_before_the_answer(tmp):
    """The filter's timeout ends the wait (on_error); the late answer is
    dropped and the daemon goes on."""
    z = zone(("_dmarc.example.org", "v=DMARC1; p=none"), timeout=["_dmarc.slow.example"])
    body = FROM_BODY.replace(b"alice@example.org", b"a@slow.example")
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"timeout": "300ms"},
                          resolver_timeout="1500ms"), tmp / "sluice") as s:
        r = send(s, body)
        assert r.code == 451, r
        s.wait_log(r"filter=dmarc phase=eom error=\"timeout after 300ms\" "
                   r"action=tempfail")
        time.sleep(scaled(2))     # the resolver gives up meanwhile
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert "dmarc=fail header.from=example.org" in authres(m)


def test_client_gone_while_waiting(tmp):
    """Sessions that end while the lookup is out leave nothing behind."""
    z = zone(timeout=["_dmarc.slow.example"])
    body = FROM_BODY.replace(b"alice@example.org", b"a@slow.example")
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, resolver_timeout="1s"), tmp / "sluice") as s:
        for _ in range(3):
            c = RawClient(s.port)
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", 250)
            ask(c, "RCPT TO:<b@example.net>", 250)
            ask(c, "DATA", 354)
            c.send(body + b".\r\n")
            wait_for(lambda: "_dmarc.slow.example" in dmarc_queries(dns))
            c.close()
            # Let the backend's reply to the core's RSET arrive before the
            # next session takes the pooled connection (a core race, reported).
            time.sleep(0.3)
        # the answers (timeouts) come for sessions that are gone: dropped
        time.sleep(scaled(1.5))
        assert "domain=slow.example" not in s.log()
        assert send(s, FROM_BODY.replace(b"example.org", b"other.example")).code == 250
        assert len(cap.wait_messages(1)) == 1


# ---------------------------------------------------------------- From

def test_several_from_fields_rejected(tmp):
    body = b"From: a@example.org\r\nFrom: x@evil.example\r\nSubject: s\r\n\r\nb\r\n"
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        r = send(s, body)
        assert r.raw == b"550 5.7.1 Message refused: several From fields\r\n", r.raw
        s.wait_log(r"dmarc result=permerror domain=- policy=absent action=reject "
                   r"reason=\"several From fields\"")
        assert dmarc_queries(dns) == []
        no_message(cap)


def test_from_in_two_domains_rejected(tmp):
    body = b"From: a@example.org, x@evil.example\r\nSubject: s\r\n\r\nb\r\n"
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", zone()) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        r = send(s, body)
        assert r.raw == b"550 5.7.1 Message refused: From addresses in several " \
            b"domains\r\n", r.raw


def test_display_name_cannot_hide_the_domain(tmp):
    body = (b"From: \"alice@example.org, x\" <x@evil.example>\r\n"
            b"Subject: s\r\n\r\nb\r\n")
    z = zone(("_dmarc.evil.example", "v=DMARC1; p=reject"),
             ("_dmarc.example.org", "v=DMARC1; p=none"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        assert send(s, body).code == 550
        assert dmarc_queries(dns) == ["_dmarc.evil.example"]


def test_no_from_continue_records_none(tmp):
    body = b"Subject: no author\r\n\r\nb\r\n"
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", zone()) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"on_bad_from": "continue"}),
                   tmp / "sluice") as s:
        assert send(s, body).code == 250
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; dmarc=none reason=\"no From field\""
        assert dmarc_queries(dns) == []


def test_bad_from_quarantine(tmp):
    body = b"From: undisclosed:;\r\nSubject: s\r\n\r\nb\r\n"
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", zone()) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"on_bad_from": "quarantine"}),
                   tmp / "sluice") as s:
        assert send(s, body).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Sluice-DMARC") == ["quarantine"]
        assert authres(m) == "mx.test; dmarc=permerror reason=\"no address in the " \
            "From field\""


# ---------------------------------------------------------------- actions

def test_on_reject_quarantine_and_custom_header(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    dm = {"on_reject": "quarantine", "quarantine_header": "X-Spam-Flag: YES"}
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc=dm), tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Spam-Flag") == ["YES"]
        assert fields(m, "X-Sluice-DMARC") == []
        s.wait_log(r"dmarc result=fail domain=example\.org policy=reject "
                   r"action=quarantine")


def test_on_quarantine_continue(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=quarantine"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"on_quarantine": "continue"}),
                   tmp / "sluice") as s:
        assert send(s).code == 250
        m, = cap.wait_messages(1)
        assert fields(m, "X-Sluice-DMARC") == []
        assert "dmarc=fail" in authres(m)


def test_custom_reject_reply(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    dm = {"reject_reply": "550 5.7.26 Unauthenticated email is not accepted"}
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc=dm), tmp / "sluice") as s:
        r = send(s)
        assert r.raw == b"550 5.7.26 Unauthenticated email is not accepted\r\n", r.raw


def test_observe_mode_only_logs(tmp):
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, dmarc={"mode": "observe"}),
                   tmp / "sluice") as s:
        assert send(s).code == 250
        cap.wait_messages(1)
        s.wait_log(r"dmarc result=fail domain=example\.org policy=reject "
                   r"action=reject")
        s.wait_log(r"would_reject filter=dmarc phase=eom")


def test_transactions_are_independent(tmp):
    """A session's second message is judged on its own From and results."""
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"),
             ("_dmarc.other.example", "v=DMARC1; p=none"))
    other = FROM_BODY.replace(b"alice@example.org", b"o@other.example")
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            hello(c)
            assert transaction(c, FROM_BODY).code == 550
            assert transaction(c, other).code == 250
            ask(c, "RSET", 250)
            assert transaction(c, FROM_BODY).code == 550
            ask(c, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert authres(m) == "mx.test; dmarc=fail header.from=other.example"


def test_config_errors(tmp):
    stub = build_stub(tmp / "stub")
    cases = [
        ({"on_reject": "bounce"}, "on_reject must be reject, quarantine or continue"),
        ({"on_temperror": "tempfail"}, "on_temperror must be continue or error"),
        ({"on_bad_from": "error"}, "on_bad_from must be reject, quarantine or continue"),
        ({"quarantine_header": "no colon"}, "quarantine_header must be"),
        ({"reject_reply": "450 4.7.1 later"}, "reject_reply must be"),
        ({"public_suffix_list": "/nonexistent/psl.dat"},
         'public_suffix_list "/nonexistent/psl.dat": No such file'),
    ]
    with DnsServer(tmp / "dns", zone()) as dns, Capture(tmp / "cap") as cap:
        for i, (opts, want) in enumerate(cases):
            rc, out = check_config(config(cap, dns, stub, dmarc=opts), tmp / ("c%d" % i))
            assert rc != 0 and want in out, (opts, rc, out)
            assert re.search(r"sluice\.conf:\d+: ", out), out


# ---------------------------------------------------------------- real SPF

def _have_module(tmp, module):
    cfg = standard_config("127.0.0.1:9", chain=["x"], filters={"x": {"module": module}})
    rc, out = check_config(cfg, tmp / ("probe-" + module))
    return "no such option '%s'" % module not in out


def test_with_real_spf_filter(tmp):
    if not _have_module(tmp, "spf"):
        skip("the spf filter is not built in yet")
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"),
             ("example.org", "v=spf1 ip4:127.0.0.1 -all"),
             ("evil.example", "v=spf1 -all"))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, chain=("spf", "dmarc", "ar"),
                          extra_filters={"spf": {"module": "spf",
                                                  "skip_networks": []}}),
                   tmp / "sluice") as s:
        assert send(s, sender="bounce@example.org").code == 250
        m, = cap.wait_messages(1)
        assert "spf=pass" in authres(m) and "dmarc=pass" in authres(m), authres(m)


def _dkim_key(tmp):
    """(private key PEM bytes, DNS TXT value) of a fresh 2048-bit RSA key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip("no openssl to make a DKIM key")
    key = Path(tmp) / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True, timeout=scaled(60))
    der = subprocess.run([openssl, "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=scaled(60)).stdout
    return key.read_bytes(), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def test_with_real_dkim_filter(tmp):
    if not _have_module(tmp, "dkim"):
        skip("the dkim filter is not built in yet")
    try:
        import dkim
    except ImportError:
        skip("python3-dkim is missing")
    pem, txt = _dkim_key(tmp)
    sig = dkim.sign(FROM_BODY, b"sel", b"example.org", pem,
                    include_headers=[b"From", b"To", b"Subject"])
    good = sig + FROM_BODY
    bad = sig + FROM_BODY.replace(b"body", b"tampered body")
    z = zone(("_dmarc.example.org", "v=DMARC1; p=reject"),
             ("sel._domainkey.example.org", txt))
    stub = build_stub(tmp / "stub")
    with DnsServer(tmp / "dns", z) as dns, Capture(tmp / "cap") as cap, \
            Sluice(config(cap, dns, stub, ["spf fail smtp.mailfrom=other.example"],
                          chain=("stub", "dkim", "dmarc", "ar"),
                          extra_filters={"dkim": {"module": "dkim"}}),
                   tmp / "sluice") as s:
        assert send(s, good, sender="x@other.example").code == 250
        m, = cap.wait_messages(1)
        ar = authres(m)
        assert "dkim=pass" in ar and "header.d=example.org" in ar, ar
        assert ar.endswith("dmarc=pass header.from=example.org"), ar
        s.wait_log(r"dmarc result=pass .*spf_aligned=no dkim_aligned=yes")
        assert send(s, bad, sender="x@other.example").code == 550
        s.wait_log(r"dmarc result=fail domain=example\.org policy=reject action=reject")


if __name__ == "__main__":
    run_tests(globals())
