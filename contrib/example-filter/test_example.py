#!/usr/bin/python3
"""test_example.py - the example plugin in an installed sluice, between a
real client, a DNS server serving a test blocklist and an SMTP backend.

Needs nothing of sluice's build tree:
  SLUICE               the installed daemon (.../sbin/sluice)
  EXAMPLE_SO           the module to load (default: ./example.so)
  SLUICE_TEST_SCRIPTS  a directory holding dns_server.py and
                       capture_server.py (sluice's tests/integration)
  KEEP=1               keep the work directory

Clients connect from 127.0.0.N (any address of 127/8 is local on Linux),
so each N plays one kind of client.  Output is TAP; exit 0 when all
passed, 1 when one failed, 99 when the test could not run.
"""
import base64
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SLUICE = os.environ.get("SLUICE", "")
MODULE = os.path.abspath(os.environ.get("EXAMPLE_SO") or
                         os.path.join(HERE, "example.so"))
SCRIPTS = os.path.abspath(os.environ.get("SLUICE_TEST_SCRIPTS") or
                          os.path.join(HERE, "..", "..", "tests", "integration"))
PYTHON = "/usr/bin/python3"
TIMEOUT = 10.0
ZONE = "bl.example.net"
V6_LOOPBACK_NAME = ".".join("1" + "0" * 31) + "." + ZONE

# 127.0.0.1 unlisted, .2 listed with a TXT, .4 listed without one, .3 the
# zone fails, .5 it never answers, .6 it answers a "query refused" code,
# .9 is in skip and never asked about.
DNS_ZONE = {
    "records": [
        ["2.0.0.127." + ZONE, "A", "127.0.0.2"],
        ["2.0.0.127." + ZONE, "TXT", "Listed for testing, see http://bl.example.net/?127.0.0.2"],
        ["4.0.0.127." + ZONE, "A", "127.0.0.4"],
        ["6.0.0.127." + ZONE, "A", "127.255.255.254"],
        [V6_LOOPBACK_NAME, "A", "127.0.0.2"],
    ],
    "servfail": ["3.0.0.127." + ZONE],
    "timeout": ["5.0.0.127." + ZONE],
}

BODY = b"From: a@example.org\r\nSubject: test\r\n\r\nhello\r\n"


class Closed(AssertionError):
    pass


# ------------------------------------------------------------- processes

class Processes:
    """Every child we start, stopped by its PID at the end."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, log):
        out = open(log, "wb")
        p = subprocess.Popen([str(a) for a in argv], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for _, p in reversed(self.procs):
            self.stop(p)


def free_port(family=socket.AF_INET, host="127.0.0.1", udp_too=False):
    """A port free for TCP (and UDP), below the ephemeral range so that no
    outgoing connection takes it meanwhile."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        socks = []
        try:
            for kind in [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp_too else []):
                s = socket.socket(family, kind)
                socks.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def wait_for(what, predicate, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ------------------------------------------------------------- SMTP client

class Client:
    """A line-level SMTP client connecting from a chosen source address."""

    def __init__(self, port, source="127.0.0.1", host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""

    def reply(self):
        """(code, [texts]) of the next reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise Closed("connection closed after %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), [l[4:] for l in lines]

    def cmd(self, line, want=None):
        self.sock.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if want is not None:
            assert code == want, "%s: wanted %d, got %d %s" % (line, want, code, text)
        return code, text

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def deliver(port, source, sender, host="127.0.0.1"):
    c = Client(port, source, host)
    try:
        code, text = c.reply()
        assert code == 220, "greeting %d %s" % (code, text)
        c.cmd("EHLO client.test", 250)
        c.cmd("MAIL FROM:<%s>" % sender, 250)
        c.cmd("RCPT TO:<rcpt@example.net>", 250)
        c.cmd("DATA", 354)
        c.sock.sendall(BODY + b".\r\n")
        code, text = c.reply()
        assert code == 250, "end of data %d %s" % (code, text)
        c.cmd("QUIT", 221)
    finally:
        c.close()


# ------------------------------------------------------------- the setup

class Setup:
    def __init__(self, work):
        self.work = work
        self.procs = Processes()
        self.root = os.geteuid() == 0
        if self.root:
            # the daemon runs as nobody: it must reach its files (mkdtemp is 0700)
            os.chmod(work, 0o755)
        self.ipv6 = ipv6_loopback()

    def start_dns(self):
        d = os.path.join(self.work, "dns")
        os.mkdir(d)
        zone = os.path.join(d, "zone.json")
        with open(zone, "w") as f:
            json.dump(DNS_ZONE, f)
        self.query_log = os.path.join(d, "queries.log")
        ready = os.path.join(d, "ready")
        for _ in range(5):
            port = free_port(udp_too=True)
            p = self.procs.start("dns", [PYTHON, os.path.join(SCRIPTS, "dns_server.py"),
                                         "--port", port, "--zone", zone, "--log",
                                         self.query_log, "--ready-file", ready],
                                 os.path.join(d, "dns.log"))
            try:
                wait_for("the DNS server", lambda: os.path.exists(ready) or p.poll() is not None)
            except AssertionError:
                pass
            if os.path.exists(ready):
                self.dns_port = port
                return
            self.procs.stop(p)
        raise RuntimeError("dns_server.py did not start:\n" + tail(os.path.join(d, "dns.log")))

    def start_backend(self):
        d = os.path.join(self.work, "backend")
        os.mkdir(d)
        ready = os.path.join(d, "ready.json")
        self.capture_dir = os.path.join(d, "out")
        os.mkdir(self.capture_dir)
        p = self.procs.start("backend", [PYTHON, os.path.join(SCRIPTS, "capture_server.py"),
                                         "--listen", "127.0.0.1:0", "--dir", self.capture_dir,
                                         "--ready-file", ready], os.path.join(d, "capture.log"))
        wait_for("the backend", lambda: os.path.exists(ready) or p.poll() is not None)
        if not os.path.exists(ready):
            raise RuntimeError("capture_server.py did not start:\n" +
                               tail(os.path.join(d, "capture.log")))
        with open(ready) as f:
            self.backend = json.load(f)["address"]

    def config(self, instances, listeners):
        lines = ['hostname = "mx.test"',
                 'workers = 2',
                 'spool_dir = "%s"' % os.path.join(self.work, "spool"),
                 'log { target = "stderr" level = "debug" }',
                 'load = { "%s" }' % MODULE,
                 'resolver { forwarders = { "127.0.0.1@%d" } timeout = "1s" }'
                 % getattr(self, "dns_port", 53)]
        if self.root:
            lines.append('user = "nobody"')
        lines += instances
        for name, addr, chain in listeners:
            lines.append('listener "%s" { listen = { "%s" } backend = "out" chain = { "%s" } }'
                         % (name, addr, chain))
        lines.append('backend "out" { type = "smtp" servers = { "%s" } }'
                     % getattr(self, "backend", "127.0.0.1:25"))
        return "\n".join(lines) + "\n"

    def write_config(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def start_sluice(self):
        os.mkdir(os.path.join(self.work, "spool"))
        self.ports = {"in": free_port(), "obs": free_port()}
        listeners = [("in", "127.0.0.1:%d" % self.ports["in"], "bl"),
                     ("obs", "127.0.0.1:%d" % self.ports["obs"], "bl-observe")]
        if self.ipv6:
            self.ports["in6"] = free_port(socket.AF_INET6, "::1")
            listeners.append(("in6", "[::1]:%d" % self.ports["in6"], "bl"))
        conf = self.write_config("sluice.conf", self.config([
            'example "bl" { zone = "%s." skip = { "127.0.0.8/31" } }' % ZONE,
            'example "bl-observe" { zone = "%s" listed = { "127.0.0.2" }'
            ' mode = "observe" on_error = "accept" }' % ZONE], listeners))
        self.log = os.path.join(self.work, "sluice.log")
        self.sluice = self.procs.start("sluice", [SLUICE, "-f", "-c", conf], self.log)
        for name, port in self.ports.items():
            host = "::1" if name == "in6" else "127.0.0.1"
            wait_for("sluice on %s port %d" % (host, port),
                     lambda: self.sluice.poll() is not None or greets(host, port))
            if self.sluice.poll() is not None:
                raise RuntimeError("sluice exited:\n" + tail(self.log))

    def sluice_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def queries(self):
        try:
            with open(self.query_log) as f:
                return f.read().split("\n")
        except OSError:
            return []

    def message(self, sender):
        """The message the backend received from sender, as bytes."""
        def find():
            for path in glob.glob(os.path.join(self.capture_dir, "msg-*.json")):
                with open(path) as f:
                    rec = json.load(f)
                if rec.get("mail_from") == sender:
                    return base64.b64decode(rec["data_b64"])
            return None
        return wait_for("the message from %s at the backend" % sender, find)

    def backend_senders(self):
        senders = []
        for path in glob.glob(os.path.join(self.capture_dir, "msg-*.json")):
            with open(path) as f:
                senders.append(json.load(f).get("mail_from"))
        return senders


def greets(host, port):
    try:
        c = Client(port, host, host)
    except OSError:
        return False
    try:
        return c.reply()[0] > 0
    except (OSError, AssertionError):
        return False
    finally:
        c.close()


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return str(e)


def header_fields(data):
    """[(name, value)] of the message's header section."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + "\r\n" + line)
        else:
            name, _, value = line.partition(":")
            fields.append((name, value.strip()))
    return fields


# ------------------------------------------------------------- the tests

def check_delivered(st, port, source, sender, want):
    """The client gets through and the message carries one X-DNSBL field,
    above the client's own fields, saying want."""
    deliver(port, source, sender, "::1" if ":" in source else "127.0.0.1")
    fields = header_fields(st.message(sender))
    names = [n.lower() for n, _ in fields]
    got = [v for n, v in fields if n.lower() == "x-dnsbl"]
    assert got == [want], "X-DNSBL fields %r, wanted [%r]" % (got, want)
    assert names.index("x-dnsbl") < names.index("from"), names


def check_refused(st, port, source, text, host="127.0.0.1"):
    """A listed client: 554 greeting with the text, then 503 to the rest."""
    c = Client(port, source, host)
    try:
        code, lines = c.reply()
        assert code == 554, "greeting %d %s" % (code, lines)
        assert lines[-1] == "mx.test " + text, lines
        c.cmd("EHLO client.test", 503)
        c.cmd("MAIL FROM:<never@example.org>", 503)
        c.cmd("QUIT", 221)
    finally:
        c.close()


def check_tempfailed(st, port, source, status):
    """A DNS failure: on_error = tempfail, so 421 and close; the log says why."""
    c = Client(port, source)
    try:
        code, lines = c.reply()
        assert code == 421, "greeting %d %s" % (code, lines)
        assert c.closed(), "still open after 421"
    finally:
        c.close()
    pattern = r"filter=bl phase=connect error=\"?dnsbl .*%s.*action=tempfail" % status
    assert re.search(pattern, st.sluice_log()), "no log line matching %r" % pattern


def tests(st):
    z = ZONE
    yield "unlisted client reaches the backend with X-DNSBL: pass", lambda: (
        check_delivered(st, st.ports["in"], "127.0.0.1", "pass@example.org",
                        "pass zone=%s client=127.0.0.1" % z),
        assert_true("1.0.0.127.%s A" % z in st.queries(), st.queries()))
    yield "listed client gets 554 with the zone's TXT", lambda: (
        check_refused(st, st.ports["in"], "127.0.0.2",
                      "Client host [127.0.0.2] blocked using %s; Listed for testing, "
                      "see http://bl.example.net/?127.0.0.2" % z),
        assert_true(re.search(r"filter=bl dnsbl result=listed client=127\.0\.0\.2 "
                              r"zone=bl\.example\.net code=127\.0\.0\.2 txt=\"Listed",
                              st.sluice_log()), "no result=listed log line"),
        assert_true("2.0.0.127.%s TXT" % z in st.queries(), st.queries()))
    yield "listed client without TXT gets the default text", lambda: check_refused(
        st, st.ports["in"], "127.0.0.4", "Client host [127.0.0.4] blocked using %s" % z)
    yield "SERVFAIL applies on_error (tempfail)", lambda: check_tempfailed(
        st, st.ports["in"], "127.0.0.3", "status=servfail")
    yield "no DNS answer applies on_error (tempfail)", lambda: check_tempfailed(
        st, st.ports["in"], "127.0.0.5", "status=timeout")
    yield "a 127.255.255.x answer is an error, not a listing", lambda: check_tempfailed(
        st, st.ports["in"], "127.0.0.6", r"unexpected answer 127\.255\.255\.254")
    yield "a client in skip is not looked up", lambda: (
        check_delivered(st, st.ports["in"], "127.0.0.9", "skip@example.org",
                        "skipped zone=%s client=127.0.0.9" % z),
        assert_true(not [q for q in st.queries() if q.startswith("9.0.0.127.")],
                    st.queries()))
    yield "observe mode: a listed client passes, tagged listed", lambda: (
        check_delivered(st, st.ports["obs"], "127.0.0.2", "observe@example.org",
                        "listed zone=%s client=127.0.0.2 code=127.0.0.2" % z),
        assert_true(re.search(r"would_reject filter=bl-observe phase=connect "
                              r"client=127\.0\.0\.2 code=554", st.sluice_log()),
                    "no would_reject log line"))
    yield "listed = {...}: other answers are a pass", lambda: check_delivered(
        st, st.ports["obs"], "127.0.0.4", "other-code@example.org",
        "pass zone=%s client=127.0.0.4" % z)
    yield "on_error = accept: SERVFAIL passes, tagged error", lambda: check_delivered(
        st, st.ports["obs"], "127.0.0.3", "error@example.org",
        "error zone=%s client=127.0.0.3" % z)
    if st.ipv6:
        yield "IPv6 client looked up by nibbles and refused", lambda: (
            check_refused(st, st.ports["in6"], "::1",
                          "Client host [::1] blocked using %s" % z, "::1"),
            assert_true(V6_LOOPBACK_NAME + " A" in st.queries(), st.queries()))
    yield "only the passing clients reached the backend", lambda: assert_true(
        sorted(st.backend_senders()) == sorted(["pass@example.org", "skip@example.org",
                                                "observe@example.org",
                                                "other-code@example.org",
                                                "error@example.org"]),
        st.backend_senders())
    yield "sluice stops cleanly", lambda: assert_true(
        st.procs.stop(st.sluice, 40) == 0, "exit code %s" % st.sluice.returncode)


BAD_OPTIONS = [
    ('zone = "bl..example.test"', r'zone "bl\.\.example\.test" is not a DNS name'),
    ('zone = "%s" skip = { "10.0.0.0/33" }' % ZONE, r'skip "10\.0\.0\.0/33" is not'),
    ('zone = "%s" listed = { "10.0.0.2" }' % ZONE, r'listed "10\.0\.0\.2" is not'),
    ('zone = "%s" header = "X DNSBL"' % ZONE, r'header "X DNSBL" is not a field name'),
    ('', r'zone'),
]


def config_tests(st):
    for i, (body, want) in enumerate(BAD_OPTIONS):
        def run(body=body, want=want, i=i):
            conf = st.write_config("bad%d.conf" % i, st.config(
                ['example "bad" { %s }' % body],
                [("in", "127.0.0.1:%d" % free_port(), "bad")]))
            r = subprocess.run([SLUICE, "-t", "-c", conf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=TIMEOUT)
            out = r.stdout.decode("utf-8", "replace")
            assert r.returncode != 0, "sluice -t accepted it:\n" + out
            assert re.search(r"bad%d\.conf:\d+: " % i, out), out
            assert re.search(want, out), out
        yield "sluice -t refuses %s" % (body or "a missing zone"), run


def assert_true(value, why):
    assert value, why
    return value


def main():
    if not SLUICE or not os.path.isfile(SLUICE):
        print("Bail out! SLUICE=%r is not the installed sluice daemon" % SLUICE)
        return 99
    for path in (MODULE, os.path.join(SCRIPTS, "dns_server.py"),
                 os.path.join(SCRIPTS, "capture_server.py")):
        if not os.path.isfile(path):
            print("Bail out! %s does not exist (EXAMPLE_SO, SLUICE_TEST_SCRIPTS)" % path)
            return 99
    work = tempfile.mkdtemp(prefix="sluice-example-")
    st = Setup(work)
    failed = 0
    try:
        try:
            st.start_dns()
            st.start_backend()
            st.start_sluice()
        except Exception as e:
            print("Bail out! %s" % e)
            for line in tail(os.path.join(work, "sluice.log")).splitlines():
                print("# " + line)
            return 99
        cases = list(tests(st)) + list(config_tests(st))
        print("1..%d" % len(cases))
        for n, (name, fn) in enumerate(cases, 1):
            try:
                fn()
                print("ok %d - %s" % (n, name))
            except Exception:
                failed += 1
                print("not ok %d - %s" % (n, name))
                for line in traceback.format_exc().splitlines():
                    print("# " + line)
            sys.stdout.flush()
        if failed:
            print("# sluice.log:")
            for line in tail(os.path.join(work, "sluice.log"), 60).splitlines():
                print("# " + line)
    finally:
        st.procs.stop_all()
        if failed or os.environ.get("KEEP"):
            print("# work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
