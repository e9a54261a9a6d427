"""chain - the filter chain bench.py measures as "sluice+chain".

The built-in filters an inbound mail exchanger would run, in the order
sluice.conf(5) recommends: relay, ratelimit, spf and dkim (verify only),
with every DNS answer coming from the integration tests' dns_server.py.
The envelope is chosen so that each of them has real work and lets the
message through:

  relay      the recipient user@example.net is in a local domain (no
             `networks`, so the address is parsed and matched: reason=local)
  ratelimit  messages per client IP in the memory store, limit 10^12 per
             day: counts every message, never refuses
  spf        skip_networks = {} (the default skips loopback clients, which
             would measure nothing); MAIL FROM bench@example.org and HELO
             mail.example.org both have "v=spf1 ip4:127.0.0.0/8 -all": pass
  dkim       verify = true; unsigned messages (result=none) and, when
             openssl(1) is there, a message signed here with rsa-sha256
             and a 2048-bit key (result=pass)

Also here: the signed message (signed_message()), and the check of a
debug-level log that every filter ran (check_log()).  Standard library
and openssl(1) only.
"""

import base64
import hashlib
import re
import subprocess
import time

SENDER = "bench@example.org"
RECIPIENT = "user@example.net"
HELO = "mail.example.org"  # not .test: unbound answers that TLD itself
SPF_RECORD = "v=spf1 ip4:127.0.0.0/8 -all"
SELECTOR = "bench"
SIGN_DOMAIN = "example.org"
DNS_TTL = 3600          # sluice's resolver caches answers this long
RATE_LIMIT = 10 ** 12   # the largest limit ratelimit takes
RATE_WINDOW = "1d"      # longer than any run: the count never restarts

# Instance names; the chain runs them in this order.
INSTANCES = ("relay", "ratelimit", "spf", "dkim")


def filters(limit=RATE_LIMIT):
    """make_config() filters: (module, instance, options) tuples."""
    from sluicetest import Raw
    return [
        ("relay", "relay", {"domains": [RECIPIENT.split("@")[1]]}),
        ("ratelimit", "ratelimit", {"key": "ip", "count": "messages",
                                    "limit": limit,
                                    "window": Raw(RATE_WINDOW),
                                    "store": "memory"}),
        ("spf", "spf", {"skip_networks": [], "hostname": "sluice.bench"}),
        ("dkim", "dkim", {"verify": True}),
    ]


def resolver(forwarder):
    """The global resolver section: everything from the test server."""
    from sluicetest import Raw
    return {"forwarders": [forwarder], "timeout": Raw("5s")}


def zone(dkim_record=None):
    """dns_server.py's zone: SPF for the sender domain and the HELO name,
    and the DKIM key when there is one."""
    records = [[SENDER.split("@")[1], "TXT", SPF_RECORD],
               [HELO, "TXT", SPF_RECORD]]
    if dkim_record:
        records.append(["%s._domainkey.%s" % (SELECTOR, SIGN_DOMAIN), "TXT",
                        dkim_record])
    return {"records": records, "ttl": DNS_TTL}


# ---------------------------------------------------------------- signing

def _relaxed_header(name, value):
    """RFC 6376 3.4.2: lowercase name, unfolded value, WSP runs as one SP,
    no WSP around the colon or at the end."""
    value = re.sub(r"\r?\n", "", value)
    value = re.sub(r"[ \t]+", " ", value).strip(" ")
    return name.strip().lower() + ":" + value


def _relaxed_body(lines):
    """RFC 6376 3.4.4: WSP runs as one SP, none at line ends, no empty
    lines at the end; every line ends with CRLF."""
    out = [re.sub(r"[ \t]+", " ", l).rstrip(" ") for l in lines]
    while out and out[-1] == "":
        out.pop()
    return "".join(l + "\r\n" for l in out)


def _openssl(args, data=None, timeout=60):
    r = subprocess.run(["openssl"] + args, input=data, capture_output=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise OSError("openssl %s: %s" % (args[0], r.stderr.decode(
            errors="replace").strip()[:200]))
    return r.stdout


def signed_message(dir, size):
    """Write dir/signed.eml, a message of about size bytes signed with
    rsa-sha256 (relaxed/relaxed) by a new 2048-bit key, in the form
    smtp-source -F sends (LF line ends: it sends CRLF).  Returns (path,
    DKIM TXT record, size on the wire).  Raises OSError without openssl."""
    key = dir / "dkim.pem"
    _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt",
              "rsa_keygen_bits:2048", "-out", str(key)])
    spki = _openssl(["pkey", "-in", str(key), "-pubout", "-outform", "DER"])
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()
    head = [("From", "Bench <%s>" % SENDER),
            ("To", "<%s>" % RECIPIENT),
            ("Subject", "sluice benchmark, signed"),
            ("Date", time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                   time.gmtime())),
            ("Message-ID", "<bench.%d@%s>" % (time.time(), SIGN_DOMAIN))]
    line = "X" * 78
    body = ["%04d %s" % (i, line[5:]) for i in range(max(1, size // 80))]
    bh = base64.b64encode(hashlib.sha256(
        _relaxed_body(body).encode()).digest()).decode()
    tags = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=%s; t=%d; " \
        "h=%s; bh=%s; b=" % (SIGN_DOMAIN, SELECTOR, time.time(),
                             ":".join(n.lower() for n, _ in head), bh)
    data = "".join(_relaxed_header(n, v) + "\r\n" for n, v in head)
    data += _relaxed_header("DKIM-Signature", tags)
    sig = _openssl(["dgst", "-sha256", "-sign", str(key)], data.encode())
    lines = ["DKIM-Signature: " + tags + base64.b64encode(sig).decode()]
    lines += ["%s: %s" % hv for hv in head] + [""] + body
    path = dir / "signed.eml"
    path.write_text("".join(l + "\n" for l in lines))
    return path, record, sum(len(l) + 2 for l in lines)


# ---------------------------------------------------------------- checks

def _esc(s):
    return re.escape(s)


def check_log(text, unsigned, signed):
    """Did every filter run on each of the unsigned + signed messages of a
    debug-level check run?  (problems, summary): problems is a list of
    sentences, empty when all is well."""
    total = unsigned + signed
    ip = r"127\.0\.0\.1"
    problems = []

    def count(regex):
        return len(re.findall(regex, text, re.M))

    def need(what, regex, n):
        got = count(regex)
        if got != n:
            problems.append("%s: %d log lines, wanted %d" % (what, got, n))

    need("relay allowed (local domain)",
         r"filter=relay relay allowed rcpt=<%s> client=%s reason=local\b" % (
             _esc(RECIPIENT), ip), total)
    counts = [int(c) for c in re.findall(
        r"filter=ratelimit ratelimit count key=ip:%s count=(\d+) "
        r"limit=%d\b" % (ip, RATE_LIMIT), text)]
    if counts != list(range(1, total + 1)):
        problems.append("ratelimit counts %s, wanted 1..%d" % (counts, total))
    need("ratelimit check at MAIL",
         r"filter=ratelimit ratelimit check key=ip:%s " % ip, total)
    need("spf mailfrom pass",
         r"filter=spf spf identity=mailfrom result=pass domain=%s "
         r"client=%s " % (_esc(SENDER.split("@")[1]), ip), total)
    need("spf helo pass (one connection per message)",
         r"filter=spf spf identity=helo result=pass domain=%s client=%s " % (
             _esc(HELO), ip), total)
    need("dkim none (unsigned)", r"filter=dkim dkim result=none$", unsigned)
    need("dkim pass (signed)",
         r"filter=dkim dkim result=pass header\.d=%s header\.s=%s "
         r"header\.a=rsa-sha256 " % (_esc(SIGN_DOMAIN), SELECTOR), signed)
    need("accepted with every filter answering continue",
         r" result=accepted .* filters=\"%s\" " % ",".join(
             "%s=continue" % i for i in INSTANCES), total)
    bad = re.findall(r"^.*\b(?:reject|tempfail|would_\w+|error)\b.*$", text,
                     re.M)
    if bad:
        problems.append("refusals or errors in the log: %s" % bad[0][:200])
    summary = "%d messages: relay allowed reason=local, ratelimit count " \
        "1..%d, spf pass (mailfrom and helo), dkim none" % (total, total)
    if signed:
        summary += " / pass (signed)"
    return problems, summary
