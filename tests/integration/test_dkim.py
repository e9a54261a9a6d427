#!/usr/bin/python3
"""The dkim filter in the real daemon, between a real client, the test
DNS server and a Capture backend.  Keys are made at test time: RSA with
opendkim-genkey (it makes RSA only), ed25519 with dkimpy's dknewkey.

Verifying: messages signed by dkimpy (rsa-sha256, ed25519-sha256) and by
Debian's opendkim (the milter's test mode signs rsa-sha256 and
ed25519-sha256) pass, and the Authentication-Results field the authres
filter writes says so; opendkim-testmsg signs rsa-sha1 only, and those,
like dkimpy's rsa-sha1, fail (RFC 8301); tampered body or header fail;
NXDOMAIN and unparsable keys are permerror, SERVFAIL temperror; 100
signatures cost at most max_signatures key lookups; a 100 KB header line
is fine.  Signing: what sluice signs with rsa-sha256 and ed25519-sha256
verifies with dkimpy, with the opendkim milter (test mode, keys from a
file) and with opendkim-testmsg (real DNS lookups: run in a private
network namespace with its own resolv.conf, so only as root)."""
import base64
import json
import os
import re
import shutil
import subprocess
import time

import dkim

import sluicetest
from sluicetest import *

DOMAIN = "example.org"
OPENDKIM = "/usr/sbin/opendkim"
GENKEY = "/usr/sbin/opendkim-genkey"
TESTMSG = "/usr/sbin/opendkim-testmsg"
ED25519_PKCS8 = bytes.fromhex("302e020100300506032b657004220420")

HEAD = (b"From: Alice <alice@example.org>\r\n"
        b"To: bob@example.net\r\n"
        b"Subject: dkim test\r\n"
        b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        b"Message-ID: <1@example.org>\r\n")
BODY = b"Hello Bob,\r\n\r\n.a line that starts with a dot\r\ntrailing  \r\n"
MSG = HEAD + b"\r\n" + BODY


# ---------------------------------------------------------------- keys

class Keys:
    """An RSA key (opendkim-genkey, 2048 bits) and an ed25519 key
    (dknewkey) for DOMAIN, with their DNS records and PEM files."""

    def __init__(self, dir):
        need_program(GENKEY)
        dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([GENKEY, "-b", "2048", "-d", DOMAIN, "-s", "rsa",
                        "-D", str(dir)], check=True, timeout=scaled(60))
        self.rsa_path = dir / "rsa.private"
        self.rsa_pem = self.rsa_path.read_bytes()
        txt = (dir / "rsa.txt").read_text()
        self.rsa_record = "".join(re.findall(r'"([^"]*)"', txt))
        assert "p=" in self.rsa_record and "h=sha256" in self.rsa_record, txt
        # The same key without h=sha256, for the rsa-sha1 tests.
        self.rsa_any_record = self.rsa_record.replace("h=sha256; ", "")
        subprocess.run([PYTHON, "-m", "dkim.dknewkey", "--ktype", "ed25519",
                        str(dir / "ed")], check=True, cwd=dir,
                       capture_output=True, timeout=scaled(30))
        self.ed_seed = (dir / "ed.key").read_bytes().strip()
        self.ed_record = (dir / "ed.dns").read_text().strip()
        der = ED25519_PKCS8 + base64.b64decode(self.ed_seed)
        self.ed_path = dir / "ed.pem"
        self.ed_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" +
                                 base64.b64encode(der) +
                                 b"\n-----END PRIVATE KEY-----\n")
        for p in (self.rsa_path, self.ed_path):
            os.chmod(p, 0o644)   # read again by nobody at a reload

    def records(self, **extra):
        """Zone records: rsa, ed, sha1 (the RSA key without h=), extra."""
        recs = [["rsa._domainkey." + DOMAIN, "TXT", self.rsa_record],
                ["ed._domainkey." + DOMAIN, "TXT", self.ed_record],
                ["sha1._domainkey." + DOMAIN, "TXT", self.rsa_any_record]]
        for sel, value in extra.items():
            recs.append([sel + "._domainkey." + DOMAIN, "TXT", value])
        return recs

    def lookup(self, name, timeout=None):
        """dkimpy's dnsfunc: the records above."""
        name = name.decode() if isinstance(name, bytes) else name
        for n, _, v in self.records():
            if name.rstrip(".") == n:
                return v.encode()
        return None


def dkimpy_sign(keys, msg, selector="rsa", alg=b"rsa-sha256",
                canon=(b"relaxed", b"simple"), headers=None):
    """msg with a dkimpy DKIM-Signature on top."""
    key = keys.ed_seed if alg == b"ed25519-sha256" else keys.rsa_pem
    sig = dkim.sign(msg, selector.encode(), DOMAIN.encode(), key,
                    canonicalize=canon, signature_algorithm=alg,
                    include_headers=headers, linesep=b"\r\n")
    return sig + msg


def opendkim_conf(tmp, name, lines):
    path = tmp / name
    path.write_text("".join(l + "\n" for l in lines + ["Syslog no"]))
    return path


def opendkim_sign(tmp, keys, msg, ed25519=False):
    """msg signed by the opendkim milter in test mode (relaxed/relaxed)."""
    need_program(OPENDKIM)
    conf = opendkim_conf(tmp, "sign-%d.conf" % ed25519, [
        "Mode s", "Domain " + DOMAIN, "Selector " + ("ed" if ed25519 else "rsa"),
        "KeyFile %s" % (keys.ed_path if ed25519 else keys.rsa_path),
        "SignatureAlgorithm " + ("ed25519-sha256" if ed25519 else "rsa-sha256"),
        "Canonicalization relaxed/relaxed", "RequireSafeKeys no"])
    (tmp / "to-sign.eml").write_bytes(msg)
    r = subprocess.run([OPENDKIM, "-x", str(conf), "-vvv", "-t",
                        str(tmp / "to-sign.eml")], capture_output=True,
                       timeout=scaled(30))
    out = r.stdout.decode() + r.stderr.decode()
    m = re.search(r"INSHEADER: idx=0 hname='DKIM-Signature' hvalue='([^']*)'", out)
    assert m, out
    return b"DKIM-Signature: " + m.group(1).replace("\n", "\r\n").encode() + \
        b"\r\n" + msg


def opendkim_verify(tmp, keys, msg):
    """The opendkim milter's test-mode verdict, keys from a file."""
    need_program(OPENDKIM)
    kf = tmp / "opendkim-keys"
    kf.write_text("".join("%s %s\n" % (n, v) for n, _, v in keys.records()))
    conf = opendkim_conf(tmp, "verify.conf", ["Mode v", "TestPublicKeys %s" % kf])
    (tmp / "to-verify.eml").write_bytes(msg)
    r = subprocess.run([OPENDKIM, "-x", str(conf), "-t", str(tmp / "to-verify.eml")],
                       capture_output=True, timeout=scaled(30))
    return r.stdout.decode() + r.stderr.decode()


NS_SCRIPT = """set -e
ip link set lo up
mount --bind "$1" /etc/resolv.conf
"$2" "$3" --port 53 --zone "$4" --log "$5" --ready-file "$6" &
pid=$!
i=0
while [ ! -f "$6" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
rc=0
"$7" < "$8" || rc=$?
kill $pid
exit $rc
"""


def testmsg_verify(tmp, keys, msg):
    """opendkim-testmsg's verdict (exit 0 = a signature passed), asking
    DNS as it always does: in a private network namespace where
    /etc/resolv.conf names a DNS server of ours on 127.0.0.1:53."""
    need_program(TESTMSG)
    if os.geteuid() != 0 or shutil.which("unshare") is None or \
            shutil.which("ip") is None:
        skip("opendkim-testmsg asks the DNS of /etc/resolv.conf: needs root "
             "and unshare(1) for a private one")
    d = tmp / "ns"
    d.mkdir(exist_ok=True)
    for f in ("ready", "queries.log"):
        if (d / f).exists():
            (d / f).unlink()
    (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (d / "zone.json").write_text(json.dumps({"records": keys.records()}))
    (d / "msg.eml").write_bytes(msg)
    r = subprocess.run(["unshare", "-m", "-n", "/bin/sh", "-c", NS_SCRIPT, "ns",
                        str(d / "resolv.conf"), PYTHON, str(sluicetest.DNS_SERVER),
                        str(d / "zone.json"), str(d / "queries.log"),
                        str(d / "ready"), TESTMSG, str(d / "msg.eml")],
                       capture_output=True, timeout=scaled(30))
    if r.returncode not in (0, 70):
        skip("no private network namespace here: %s" % r.stderr.decode()[-200:])
    asked = (d / "queries.log").read_text() if (d / "queries.log").exists() else ""
    assert "_domainkey.%s TXT" % DOMAIN in asked, (asked, r.stderr)
    return r.returncode, r.stderr.decode()


# ---------------------------------------------------------------- sluice

def dkim_config(cap, dns, chain=("dkim", "ar"), limits=None, port=None, **opts):
    filters = {"dkim": dict({"module": "dkim", "timeout": "20s"}, **opts),
               "ar": {"module": "authres", "authserv_id": HOSTNAME}}
    return standard_config(
        cap.address, chain=list(chain), filters=filters, limits=limits, port=port,
        globals={"resolver": {"forwarders": [dns.forwarder], "timeout": "2s"}})


def stuff(data):
    """Dot-stuff message bytes for the wire."""
    return re.sub(rb"(^|\r\n)\.", rb"\1..", data)


def send(s, msg, sender="alice@example.org"):
    with RawClient(s.port, timeout=scaled(30)) as c:
        hello(c)
        r = transaction(c, stuff(msg), sender=sender)
        ask(c, "QUIT", 221)
    return r


def our_ar(m):
    """Our Authentication-Results field, unfolded."""
    fields = re.findall(rb"(?mi)^Authentication-Results: mx\.test;((?:.|\r\n[ \t])*)\r\n",
                        m.unstuffed())
    assert len(fields) == 1, m.unstuffed()[:2000]
    return re.sub(rb"\r\n[ \t]+", b" ", fields[0]).decode()


def dkim_results(ar):
    """[(result, props...)] of the dkim entries in an A-R value."""
    return [e.strip() for e in ar.split(";") if e.strip().startswith("dkim=")]


def original(m):
    """The message as the backend got it, minus the fields sluice added
    on top (Received, Authentication-Results)."""
    data = m.unstuffed()
    while True:
        mt = re.match(rb"(?:Received|Authentication-Results): [^\r\n]*\r\n"
                      rb"(?:[ \t][^\r\n]*\r\n)*", data)
        if not mt:
            return data
        data = data[mt.end():]


def dns_keys_asked(dns):
    return [n for n, t in dns.queries() if n.lower().endswith("._domainkey." + DOMAIN)]


# ---------------------------------------------------------------- verify

def test_dkimpy_rsa_and_ed25519_pass(tmp):
    keys = Keys(tmp / "keys")
    msg = dkimpy_sign(keys, MSG, "rsa", b"rsa-sha256")
    msg = dkimpy_sign(keys, msg, "ed", b"ed25519-sha256", (b"relaxed", b"relaxed"))
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, msg).code == 250
        m, = cap.wait_messages(1)
        assert original(m) == msg          # nothing else touched
        res = dkim_results(our_ar(m))
        assert len(res) == 2, res
        assert re.fullmatch(r'dkim=pass header\.d=example\.org header\.s=ed '
                            r'header\.a=ed25519-sha256 header\.b="?[A-Za-z0-9+/]{8}"?',
                            res[0]), res
        assert re.fullmatch(r'dkim=pass header\.d=example\.org header\.s=rsa '
                            r'header\.a=rsa-sha256 header\.b="?[A-Za-z0-9+/]{8}"?',
                            res[1]), res
        s.wait_log(r"filter=dkim dkim result=pass header\.d=example\.org "
                   r"header\.s=rsa header\.a=rsa-sha256 header\.b=\S{8} "
                   r"key_bits=2048 reason=\"signature verified\"")
        assert sorted(dns_keys_asked(dns)) == ["ed._domainkey.example.org",
                                               "rsa._domainkey.example.org"]


def test_dkimpy_simple_canonicalization_pass(tmp):
    keys = Keys(tmp / "keys")
    msg = dkimpy_sign(keys, MSG, "rsa", b"rsa-sha256", (b"simple", b"simple"))
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, msg).code == 250
        m, = cap.wait_messages(1)
        assert dkim_results(our_ar(m))[0].startswith("dkim=pass header.d=example.org "
                                                     "header.s=rsa ")


def test_opendkim_signed_pass(tmp):
    keys = Keys(tmp / "keys")
    rsa = opendkim_sign(tmp, keys, MSG)
    ed = opendkim_sign(tmp, keys, MSG, ed25519=True)
    assert b"a=rsa-sha256;" in rsa and b"a=ed25519-sha256;" in ed
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, rsa).code == 250
        assert send(s, ed).code == 250
        m1, m2 = cap.wait_messages(2)
        assert dkim_results(our_ar(m1))[0].startswith(
            "dkim=pass header.d=example.org header.s=rsa header.a=rsa-sha256 ")
        assert dkim_results(our_ar(m2))[0].startswith(
            "dkim=pass header.d=example.org header.s=ed header.a=ed25519-sha256 ")


def test_rsa_sha1_fails(tmp):
    """opendkim-testmsg signs rsa-sha1 only (relaxed/simple, no option);
    opendkim itself passes it, sluice fails it (RFC 8301), as it does
    dkimpy's rsa-sha1; with on_fail = reject that is a 550 5.7.20."""
    keys = Keys(tmp / "keys")
    need_program(TESTMSG)
    r = subprocess.run([TESTMSG, "-C", "-d", DOMAIN, "-s", "sha1", "-k",
                        str(keys.rsa_path)], input=MSG, capture_output=True,
                       timeout=scaled(30))
    assert r.returncode == 0, r.stderr
    by_testmsg = r.stdout
    assert b"a=rsa-sha1;" in by_testmsg, by_testmsg[:300]
    assert "verification (s=sha1, d=example.org, 2048-bit key) succeeded" in \
        opendkim_verify(tmp, keys, by_testmsg)
    by_dkimpy = dkimpy_sign(keys, MSG, "sha1", b"rsa-sha1")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        for msg in (by_testmsg, by_dkimpy):
            assert send(s, msg).code == 250
        for m in cap.wait_messages(2):
            res = dkim_results(our_ar(m))
            assert len(res) == 1 and res[0].startswith(
                'dkim=fail reason="rsa-sha1 is not acceptable (RFC 8301)" '
                'header.d=example.org header.s=sha1 header.a=rsa-sha1'), res
    with DnsServer(tmp / "dns2", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap2") as cap, \
            Sluice(dkim_config(cap, dns, on_fail="reject"), tmp / "sluice2") as s:
        r = send(s, by_testmsg)
        assert r.raw == b"550 5.7.20 No passing DKIM signature found\r\n", r.raw
        s.wait_log(r"reject filter=dkim phase=eom .*code=550")
        time.sleep(0.2)
        assert cap.messages(include_incomplete=True) == []


def test_tampered_fail(tmp):
    keys = Keys(tmp / "keys")
    signed = dkimpy_sign(keys, MSG, "rsa", b"rsa-sha256", (b"relaxed", b"relaxed"))
    body = signed.replace(b"Hello Bob", b"Hello Eve")
    header = signed.replace(b"Subject: dkim test", b"Subject: dkim test!")
    refolded = signed.replace(b"Subject: dkim test", b"Subject:  dkim\r\n\ttest")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        for msg in (body, header, refolded):
            assert send(s, msg).code == 250   # on_fail = continue by default
        m1, m2, m3 = cap.wait_messages(3)
        assert dkim_results(our_ar(m1))[0].startswith(
            'dkim=fail reason="body hash mismatch" header.d=example.org')
        assert dkim_results(our_ar(m2))[0].startswith(
            'dkim=fail reason="signature verification failed" header.d=example.org')
        assert dkim_results(our_ar(m3))[0].startswith("dkim=pass ")   # relaxed
        s.wait_log(r"dkim result=fail header\.d=example\.org header\.s=rsa "
                   r"header\.a=rsa-sha256 header\.b=\S+ key_bits=2048 "
                   r"reason=\"body hash mismatch\"")


def test_key_problems(tmp):
    """NXDOMAIN and unparsable keys: permerror; SERVFAIL: temperror,
    which on_temperror = tempfail turns into 451 4.4.3."""
    keys = Keys(tmp / "keys")
    zone = {"records": keys.records(garbage="v=DKIM1; k=rsa; p=!!!not*base64!!!",
                                    junk="\x01\x02 binary ; = ;"),
            "servfail": ["broken._domainkey." + DOMAIN]}
    cases = [("missing", "permerror", "no key for signature"),
             ("garbage", "permerror", "key record unusable"),
             ("junk", "permerror", "key record unusable"),
             ("broken", "temperror", "key lookup failed temporarily")]
    with DnsServer(tmp / "dns", zone) as dns, Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        for sel, _, _ in cases:
            assert send(s, dkimpy_sign(keys, MSG, sel)).code == 250
        msgs = cap.wait_messages(len(cases))
        for (sel, result, reason), m in zip(cases, msgs):
            res = dkim_results(our_ar(m))
            assert res[0].startswith('dkim=%s reason="%s" header.d=example.org '
                                     'header.s=%s ' % (result, reason, sel)), res
        s.wait_log(r"dkim result=temperror header\.d=example\.org header\.s=broken "
                   r".*reason=\"key lookup failed temporarily: servfail")
    with DnsServer(tmp / "dns2", zone) as dns, Capture(tmp / "cap2") as cap, \
            Sluice(dkim_config(cap, dns, on_temperror="tempfail"), tmp / "sluice2") as s:
        r = send(s, dkimpy_sign(keys, MSG, "broken"))
        assert r.raw == b"451 4.4.3 DKIM key lookup failed, try again later\r\n", r.raw
        r = send(s, dkimpy_sign(keys, MSG, "rsa"))
        assert r.code == 250


def test_slow_keys_asked_in_parallel(tmp):
    """Ten signatures whose key queries all time out: they are asked at
    once at the end of the header, so the message waits about one
    resolver timeout (2 s here), not ten (20 s, the filter's timeout), and
    no pool thread waits on DNS."""
    keys = Keys(tmp / "keys")
    msg = MSG
    for i in range(10):
        msg = dkimpy_sign(keys, msg, "slow%d" % i)
    zone = {"records": keys.records(),
            "timeout": ["slow%d._domainkey.%s" % (i, DOMAIN) for i in range(10)]}
    with DnsServer(tmp / "dns", zone) as dns, Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        t0 = time.monotonic()
        assert send(s, msg).code == 250
        took = time.monotonic() - t0
        m, = cap.wait_messages(1)
        res = dkim_results(our_ar(m))
        assert len(res) == 10 and all(
            r.startswith('dkim=temperror reason="key lookup failed temporarily"')
            for r in res), res
        assert took < scaled(6), took
        s.wait_log(r"dkim result=temperror header\.d=example\.org header\.s=slow9 .*"
                   r"reason=\"key lookup failed temporarily: timeout")


def test_hundred_signatures_bounded(tmp):
    """100 DKIM-Signature fields with 100 selectors: the top 10 are
    verified (one passes), 10 keys asked at most, the rest logged."""
    keys = Keys(tmp / "keys")
    sig = dkimpy_sign(keys, MSG, "rsa")[:-len(MSG)]
    sigs = [sig.replace(b"s=rsa;", b"s=x%d;" % i) for i in range(99)]
    msg = sig + b"".join(sigs) + MSG
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, msg).code == 250
        m, = cap.wait_messages(1)
        res = dkim_results(our_ar(m))
        assert len(res) == 10, res
        assert res[0].startswith("dkim=pass header.d=example.org header.s=rsa ")
        assert all(r.startswith('dkim=permerror reason="no key for signature"')
                   for r in res[1:]), res
        s.wait_log(r"filter=dkim dkim signatures=100 verified_at_most=10 skipped=90")
        asked = set(dns_keys_asked(dns))
        assert len(asked) == 10, asked
        assert original(m) == msg


def test_ten_signatures_big_body(tmp):
    """Ten signatures over a 2 MB body: the hashing goes to the pool in
    64 KiB steps (the loop stays free), and all ten pass."""
    keys = Keys(tmp / "keys")
    body = b"".join(b"line %06d of a long body, with  some   spaces \r\n" % i
                    for i in range(40000))
    msg = HEAD + b"\r\n" + body
    canons = [(b"relaxed", b"relaxed"), (b"relaxed", b"simple"), (b"simple", b"simple"),
              (b"simple", b"relaxed")]
    for i in range(10):
        msg = dkimpy_sign(keys, msg, "k%d" % i, canon=canons[i % 4])
    extra = {"k%d" % i: keys.rsa_record for i in range(10)}
    with DnsServer(tmp / "dns", {"records": keys.records(**extra)}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, msg).code == 250
        m, = cap.wait_messages(1)
        res = dkim_results(our_ar(m))
        assert len(res) == 10 and all(r.startswith("dkim=pass ") for r in res), res
        assert original(m) == msg


def test_hundred_kb_header_line(tmp):
    keys = Keys(tmp / "keys")
    long = b"X-Long: " + b"x" * (100 * 1000) + b"\r\n"
    msg = dkimpy_sign(keys, long + MSG, "rsa", headers=[b"from", b"x-long", b"subject"])
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns, limits={"text_line": "110k"}),
                   tmp / "sluice") as s:
        assert send(s, msg).code == 250
        bad = msg.replace(b"x" * 10 + b"\r\n", b"y" * 10 + b"\r\n", 1)
        assert send(s, bad).code == 250
        m1, m2 = cap.wait_messages(2)
        assert original(m1) == msg
        assert dkim_results(our_ar(m1))[0].startswith("dkim=pass header.d=example.org ")
        assert dkim_results(our_ar(m2))[0].startswith(
            'dkim=fail reason="signature verification failed"')


def test_unsigned_and_on_none(tmp):
    keys = Keys(tmp / "keys")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns), tmp / "sluice") as s:
        assert send(s, MSG).code == 250
        m, = cap.wait_messages(1)
        assert dkim_results(our_ar(m)) == ["dkim=none"]
        assert dns_keys_asked(dns) == []
    with DnsServer(tmp / "dns2", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap2") as cap, \
            Sluice(dkim_config(cap, dns, on_none="reject"), tmp / "sluice2") as s:
        r = send(s, MSG)
        assert r.raw == b"550 5.7.20 No passing DKIM signature found\r\n", r.raw


# ---------------------------------------------------------------- sign

def sign_config(cap, dns, keys, **opts):
    o = dict(sign=True, sign_domains=[DOMAIN], selector="rsa",
             key_file=str(keys.rsa_path), selector2="ed", key_file2=str(keys.ed_path))
    o.update(opts)
    return dkim_config(cap, dns, chain=("dkim",), **o)


def dkimpy_verifies(data, idx, keys):
    """dkimpy's verdict on the idx-th DKIM-Signature field."""
    try:
        return dkim.DKIM(data).verify(idx=idx, dnsfunc=keys.lookup)
    except dkim.ValidationError:
        return False


def our_signatures(m):
    """The DKIM-Signature fields on top of the message (below the
    Received and Authentication-Results fields sluice adds), and the rest."""
    data = m.unstuffed()
    rest = data
    while True:
        mt = re.match(rb"(?:Received|Authentication-Results): [^\r\n]*\r\n"
                      rb"(?:[ \t][^\r\n]*\r\n)*", rest)
        if not mt:
            break
        rest = rest[mt.end():]
    sigs = []
    while True:
        mt = re.match(rb"DKIM-Signature: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", rest)
        if not mt:
            return sigs, rest
        sigs.append(mt.group(0))
        rest = rest[mt.end():]


def test_signed_verifies_everywhere(tmp):
    keys = Keys(tmp / "keys")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(sign_config(cap, dns, keys), tmp / "sluice") as s:
        assert send(s, MSG).code == 250
        m, = cap.wait_messages(1)
        s.wait_log(r"filter=dkim dkim signed d=example\.org s=rsa a=rsa-sha256")
        s.wait_log(r"filter=dkim dkim signed d=example\.org s=ed a=ed25519-sha256")
    (rsa, ed), rest = our_signatures(m)
    assert rest == MSG
    assert b"a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa;" in rsa, rsa
    assert b"a=ed25519-sha256;" in ed, ed
    assert b"h=From:From:Subject:Date:To:Message-ID;" in rsa.replace(b"\r\n\t ", b""), rsa
    for line in (rsa + ed).split(b"\r\n"):
        assert len(line) <= 998, line
    signed = m.unstuffed()
    # dkimpy, both signatures (idx counts DKIM-Signature fields only).
    assert dkimpy_verifies(signed, 0, keys), "rsa"
    assert dkimpy_verifies(signed, 1, keys), "ed25519"
    assert not dkimpy_verifies(signed.replace(b"Hello Bob", b"Hello Eve"), 0, keys)
    assert not dkimpy_verifies(signed.replace(b"Subject: dkim", b"Subject: DKIM"), 1, keys)
    # The opendkim milter and opendkim-testmsg, each signature alone.
    for only, sel in ((rsa, "rsa"), (ed, "ed")):
        one = only + rest
        out = opendkim_verify(tmp, keys, one)
        assert "verification (s=%s, d=example.org" % sel in out and "succeeded" in out, out
        rc, err = testmsg_verify(tmp, keys, one)
        assert rc == 0, (sel, err)
        rc, err = testmsg_verify(tmp, keys, one.replace(b"Hello Bob", b"Hello Eve"))
        assert rc == 70 and "Bad signature" in err, (sel, rc, err)


def test_sign_only_our_mail(tmp):
    keys = Keys(tmp / "keys")
    other = MSG.replace(b"alice@example.org", b"alice@other.example")
    two = MSG.replace(b"<alice@example.org>", b"<alice@example.org>, bob@example.org")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(sign_config(cap, dns, keys, verify=False, selector2=None,
                               key_file2=None), tmp / "sluice") as s:
        for msg in (other, two, MSG):
            assert send(s, msg).code == 250
        m1, m2, m3 = cap.wait_messages(3)
        assert our_signatures(m1) == ([], other)
        assert our_signatures(m2) == ([], two)
        sigs, rest = our_signatures(m3)
        assert len(sigs) == 1 and rest == MSG
        assert b"a=rsa-sha256;" in sigs[0]
        assert dkimpy_verifies(m3.unstuffed(), 0, keys)
        s.wait_log(r"dkim not signing: from_domain=other\.example authenticated=no")
        s.wait_log(r"dkim not signing: no single From address")


def test_verify_then_sign(tmp):
    """A message signed elsewhere, verified and then signed by one
    instance: the result is about the original signature only."""
    keys = Keys(tmp / "keys")
    incoming = dkimpy_sign(keys, MSG, "rsa")
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(dkim_config(cap, dns, chain=("dkim", "ar"), sign=True,
                               sign_domains=[DOMAIN], selector="ed",
                               key_file=str(keys.ed_path)), tmp / "sluice") as s:
        assert send(s, incoming).code == 250
        m, = cap.wait_messages(1)
        res = dkim_results(our_ar(m))
        assert len(res) == 1 and res[0].startswith("dkim=pass header.d=example.org "
                                                   "header.s=rsa "), res
        data = m.unstuffed()
        sigs, rest = our_signatures(m)
        assert len(sigs) == 2 and b"a=ed25519-sha256;" in sigs[0], sigs
        assert sigs[1] + rest == incoming
        assert data.count(b"DKIM-Signature:") == 2
        assert dkimpy_verifies(data, 0, keys)    # ours
        assert dkimpy_verifies(data, 1, keys)    # the original


def test_keys_read_again_at_reload(tmp):
    """At a reload the key files are read again, by the user the daemon
    runs as: a new key is used from then on, a bad one fails the reload
    and the running keys stay."""
    keys = Keys(tmp / "keys")
    (tmp / "junk.pem").write_text("not a key\n")
    os.chmod(tmp / "junk.pem", 0o644)
    one = dict(selector2=None, key_file2=None, verify=False, port=free_port())
    with DnsServer(tmp / "dns", {"records": keys.records()}) as dns, \
            Capture(tmp / "cap") as cap, \
            Sluice(sign_config(cap, dns, keys, **one), tmp / "sluice") as s:
        assert send(s, MSG).code == 250
        mark = s.log_mark()
        s.reload(sign_config(cap, dns, keys, selector="ed", key_file=str(keys.ed_path),
                             **one))
        s.wait_log(r"reload done generation=2", since=mark)
        assert send(s, MSG).code == 250
        mark = s.log_mark()
        s.reload(sign_config(cap, dns, keys, key_file=str(tmp / "junk.pem"), **one))
        s.wait_log(r"reload failed: .*junk\.pem: not an unencrypted RSA or ed25519", since=mark)
        s.wait_log(r"reload failed: keeping the running configuration", since=mark)
        assert send(s, MSG).code == 250
        m1, m2, m3 = cap.wait_messages(3)
    for m, alg in ((m1, b"rsa-sha256"), (m2, b"ed25519-sha256"), (m3, b"ed25519-sha256")):
        sigs, rest = our_signatures(m)
        assert len(sigs) == 1 and b"a=" + alg + b";" in sigs[0], sigs
        assert dkimpy_verifies(m.unstuffed(), 0, keys)


def test_bad_key_files_refused(tmp):
    keys = Keys(tmp / "keys")
    (tmp / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nbm90\n-----END PRIVATE KEY-----\n")
    with DnsServer(tmp / "dns", {"records": []}) as dns, Capture(tmp / "cap") as cap:
        cases = [(str(tmp / "missing.pem"), "missing.pem: No such file or directory"),
                 (str(tmp / "junk.pem"), "not an unencrypted RSA or ed25519 private key"),
                 (str(keys.rsa_path), None)]
        for path, want in cases:
            rc, out = check_config(sign_config(cap, dns, keys, key_file=path,
                                               selector2=None, key_file2=None),
                                   tmp / ("check-%d" % cases.index((path, want))))
            if want is None:
                assert rc == 0, out
            else:
                assert rc != 0 and want in out, out
                assert re.search(r"sluice\.conf:\d+: .*key_file", out), out
        rc, out = check_config(dkim_config(cap, dns, max_signatures=0), tmp / "check-x")
        assert rc != 0 and "max_signatures must be 1 to 50" in out, out
        rc, out = check_config(dkim_config(cap, dns, verify=False), tmp / "check-y")
        assert rc != 0 and "verify and sign are both false" in out, out


run_tests(globals())
