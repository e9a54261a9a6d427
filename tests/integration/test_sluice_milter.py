#!/usr/bin/python3
"""sluice-milter: the chain of a listener behind libmilter.  A private
Postfix instance (its own config and queue under the test's directory)
calls it through smtpd_milters: a relay refusal and an SPF fail from the
chain become Postfix's 5xx to its client, an accepted message reaches
Postfix's relay target (a Capture) with sluice's Authentication-Results
field.  Then sluice's own milter filter calls it (both directions of our
milter code): verdicts with their reply texts, header add/insert/change/
delete, recipient add/remove and a body replacement arrive as milter
modifications; garbage frames close one connection and the others go on;
SIGUSR2 reloads."""
import os
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import time
from pathlib import Path

import sluicetest
from sluicetest import *

POSTFIX = "/usr/sbin/postfix"
LOCAL = "local.test"
ZONE = {"records": [["pass.example", "TXT", "v=spf1 ip4:127.0.0.1 -all"],
                    ["fail.example", "TXT", "v=spf1 ip4:192.0.2.1 -all"]]}
BODY = b"From: a@pass.example\r\nSubject: through postfix\r\n\r\nhello\r\n"


def milter_binary():
    return Path(os.environ.get("SLUICE_MILTER_BIN") or
                sluicetest._builddir() / "proxy" / "sluice-milter")


class SluiceMilter(sluicetest.Service):
    """sluice-milter -f on inet:PORT@127.0.0.1 with config (a dict for
    make_config); ready when the port accepts."""

    name = "sluice-milter"

    def __init__(self, config, workdir, listener=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "sluice.conf"
        self.write_config(config)
        self.port = free_port()
        cmd = [milter_binary(), "-f", "-c", self.config_path,
               "-p", "inet:%d@127.0.0.1" % self.port]
        if listener:
            cmd += ["-l", listener]
        if not milter_binary().exists():
            raise HardError("%s does not exist: build it" % milter_binary())
        self._spawn(cmd, self.workdir / "milter.log")
        wait_for(self._accepting, what="sluice-milter listening")

    def write_config(self, config):
        g = dict(config.get("globals") or {})
        spool = self.workdir / "spool"
        spool.mkdir(exist_ok=True)
        g.setdefault("spool_dir", str(spool))
        g.setdefault("log", {"target": "stderr", "level": "debug"})
        config = dict(config, globals=g)
        self.config_path.write_text(make_config(**config))

    def _accepting(self):
        if not self.running():
            raise HardError("sluice-milter exited:\n" + self.log_tail())
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    @property
    def address(self):
        return "inet:127.0.0.1:%d" % self.port

    def stop(self, timeout=None):
        """SIGTERM (libmilter's stop): a clean exit, no sanitizer report."""
        rc = super().stop(timeout)
        log = self.log()
        assert rc == 0 and "Sanitizer" not in log and "runtime error" not in log, \
            "sluice-milter exit %s:\n%s" % (rc, self.log_tail(60))
        return rc


def chain_config(dns=None, extra_filters=None, chain=None):
    """relay (local.test is ours, no relay networks), spf against the test
    DNS, authres as mx.test; the backend is never used."""
    filters = {"relay": {"module": "relay", "domains": [LOCAL]},
               "ar": {"module": "authres", "authserv_id": HOSTNAME}}
    g = {}
    if dns is not None:
        filters["spf"] = {"module": "spf", "skip_networks": [],
                          "hostname": HOSTNAME, "timeout": "10s"}
        g["resolver"] = {"forwarders": [dns.forwarder], "timeout": "2s"}
    filters.update(extra_filters or {})
    if chain is None:
        chain = ["relay"] + (["spf"] if dns is not None else []) + ["ar"]
    return standard_config("127.0.0.9:9", chain=chain, filters=filters,
                           globals=g)


# ---------------------------------------------------------------- Postfix

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix: main.cf and master.cf in dir/etc, its queue in
    dir/queue, its log in dir/maillog; relays everything for local.test
    to relay_to ("host:port") through milter."""

    def __init__(self, dir, relay_to, milter):
        if os.geteuid() != 0 or not os.access(POSTFIX, os.X_OK):
            skip("a private Postfix needs root and %s" % POSTFIX)
        self.dir = Path(dir)
        self.etc = self.dir / "etc"
        self.etc.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.maillog = self.dir / "maillog"
        host, port = relay_to.rsplit(":", 1)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "pf.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": LOCAL,
            "relayhost": "[%s]:%s" % (host, port),
            "smtp_host_lookup": "native",
            "smtpd_milters": milter,
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
            "alias_maps": "",
            "alias_database": "",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "smtputf8_enable": "no",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
        }
        (self.etc / "main.cf").write_text(
            "".join("%s = %s\n" % (k, v) for k, v in main.items()))
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        # postfix wants the queue there, owned by root, and its data
        # directory owned by mail_owner; it creates the rest at start
        (self.dir / "queue").mkdir(exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        shutil.chown(self.dir / "data", "postfix")
        for d in (self.dir, self.etc, self.dir / "queue"):
            os.chmod(d, 0o755)
        sluicetest.reachable(self.dir)     # the temp dirs above are 0700
        self._postfix("post-install", "create-missing")
        self._postfix("start")
        wait_for(self._accepting, timeout=scaled(30), what="postfix smtpd")

    def _postfix(self, what, *args):
        p = subprocess.run([POSTFIX, "-c", str(self.etc), what] + list(args),
                           capture_output=True, timeout=scaled(60))
        if p.returncode != 0 and what != "stop":
            raise HardError("postfix %s: %s%s%s" % (what, p.stdout.decode(),
                                                    p.stderr.decode(), self.log()))
        return p

    def _accepting(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        self._postfix("stop")
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.time() + scaled(15)
        while pidfile.exists() and time.time() < deadline:
            try:
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, 0)
            except (ValueError, IndexError, OSError):
                break
            time.sleep(0.1)
        else:
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
                except (ValueError, IndexError, OSError):
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _send(port, sender, rcpts, body=BODY):
    """One message through Postfix with smtplib: {rcpt: (code, text)} for
    the refused, or raises SMTPResponseException from MAIL/DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=scaled(60)) as c:
        c.ehlo("client.test")
        return c.sendmail(sender, rcpts, body)


def test_postfix_refusals_and_accepted(tmp):
    with DnsServer(tmp / "dns", ZONE) as dns, \
            SluiceMilter(chain_config(dns), tmp / "milter") as m, \
            Capture(tmp / "cap") as cap, \
            Postfix(tmp / "pf", cap.address, m.address) as pf:
        try:
            # relay refusal from the chain: Postfix refuses that recipient
            try:
                _send(pf.port, "a@pass.example", ["x@elsewhere.example"])
                raise AssertionError("relay refusal not passed on")
            except smtplib.SMTPRecipientsRefused as e:
                code, text = e.recipients["x@elsewhere.example"]
                assert code == 554 and b"5.7.1 Relay access denied" in text, e
            # SPF fail: refused at MAIL with the spf filter's reply
            try:
                _send(pf.port, "a@fail.example", ["u@" + LOCAL])
                raise AssertionError("spf fail not passed on")
            except smtplib.SMTPSenderRefused as e:
                assert e.smtp_code == 550 and b"5.7.23" in e.smtp_error, e
            # accepted: at the relay target, with our Authentication-Results
            assert _send(pf.port, "a@pass.example", ["u@" + LOCAL]) == {}
            wait_for(lambda: any(x.accepted for x in cap.messages()),
                     timeout=scaled(30), what="message at the relay target")
            msg = [x for x in cap.messages() if x.accepted][0]
            text = msg.header_block().decode()
            assert "Authentication-Results: %s;" % HOSTNAME in text, text
            assert "spf=pass" in text, text
            assert "(sluice)" not in text, text     # no Received field of ours
            assert len(cap.messages()) == 1
        except BaseException:
            print(pf.log()[-3000:])
            print(m.log_tail(60))
            raise


# ------------------------------------------- sluice's milter filter as MTA

def _front(tmp, milter, chain=("m",), extra=None):
    """A sluice daemon whose chain calls sluice-milter, in front of a Capture."""
    filters = {"m": {"module": "milter", "address": milter.address,
                     "timeout": "30s"}}
    filters.update(extra or {})
    return relay(tmp, chain=list(chain), filters=filters)


def _say(c, line):
    c.send(line + "\r\n")
    return c.read_reply()


def _session(port, sender, rcpts, body):
    """One transaction on the front sluice: (step, reply) of the last step."""
    with RawClient(port) as c:
        hello(c)
        r = _say(c, "MAIL FROM:<%s>" % sender)
        if r.code != 250:
            return ("mail", r)
        ok = 0
        for rc in rcpts:
            r = _say(c, "RCPT TO:<%s>" % rc)
            ok += r.code == 250
        if not ok:
            return ("rcpt", r)
        ask(c, "DATA", 354)
        c.send(body + b".\r\n")
        r = c.read_reply()
        _say(c, "QUIT")
        return ("data", r)


def _access(phase, verdict="continue", **kw):
    return dict({"module": "access", "phase": phase, "match": ["*"],
                 "verdict": verdict}, **kw)


def test_verdicts_through_our_milter_client(tmp):
    extra = {"badfrom": _access("mail", "reject", match=["*@bad.example"],
                                reply="553 5.7.1 100% bad sender"),
             "later": _access("rcpt", "tempfail", match=["later@" + LOCAL],
                              reply="451 4.7.1 try later"),
             "nobody": _access("eom", "reject", match=["*@drop.example"],
                               reply="550 5.7.0 content refused")}
    cfg = chain_config(extra_filters=extra,
                       chain=["relay", "badfrom", "later", "nobody"])
    with SluiceMilter(cfg, tmp / "milter") as m, _front(tmp / "f", m) as (cap, s):
        step, r = _session(s.port, "a@bad.example", ["u@" + LOCAL], BODY)
        assert step == "mail" and r.code == 553 and "100% bad sender" in r.text, r
        step, r = _session(s.port, "a@ok.example", ["x@else.example"], BODY)
        assert step == "rcpt" and r.code == 554 and "Relay access denied" in r.text, r
        step, r = _session(s.port, "a@ok.example", ["later@" + LOCAL], BODY)
        assert step == "rcpt" and r.code == 451 and "try later" in r.text, r
        step, r = _session(s.port, "a@drop.example", ["u@" + LOCAL], BODY)
        assert step == "data" and r.code == 550 and "content refused" in r.text, r
        step, r = _session(s.port, "a@ok.example", ["x@else.example", "u@" + LOCAL],
                           BODY)
        assert step == "data" and r.code == 250, r
        msgs = [x for x in cap.messages() if x.accepted]
        assert len(msgs) == 1 and msgs[0].rcpts == ["u@" + LOCAL], msgs
        assert m.running()


def test_modifications(tmp):
    """Each kind of change made by the chain behind sluice-milter arrives
    at the backend of the sluice that called it: a field appended
    (smfi_addheader), a forged Authentication-Results field removed
    (smfi_chgheader with no value) and ours put on top (smfi_insheader)."""
    extra = {"add": _access("eom", add_header="X-Added: yes")}
    cfg = chain_config(extra_filters=extra, chain=["ar", "add"])
    body = (b"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"From: a@ok.example\r\n"
            b"Authentication-Results: mx.test; spf=pass (forged)\r\n"
            b"Subject: mods\r\n\r\n..dot line\r\nbody\r\n")
    with SluiceMilter(cfg, tmp / "milter") as m, _front(tmp / "f", m) as (cap, s):
        step, r = _session(s.port, "a@ok.example", ["u@" + LOCAL], body)
        assert step == "data" and r.code == 250, r
        msg = [x for x in cap.messages() if x.accepted][0]
        head = msg.header_block()
        # the front sluice's own Received, then what sluice-milter changed
        fields = head.split(b"\r\n", 4)[4]
        assert fields.startswith(b"Authentication-Results: mx.test;"), head
        assert b"forged" not in head, head
        assert head.endswith(b"Subject: mods\r\nX-Added: yes\r\n\r\n"), head
        assert head.count(b"Received: from x by y") == 1, head
        assert msg.unstuffed().endswith(b"\r\n\r\n.dot line\r\nbody\r\n"), msg.data


def test_garbage_closes_one_connection(tmp):
    cfg = chain_config()
    with SluiceMilter(cfg, tmp / "milter") as m, _front(tmp / "f", m) as (cap, s):
        # a connect, then a frame of an unknown command, then a huge length
        for junk in (struct.pack(">IB", 10, ord("C")) + b"h\x004\x00\x19127",
                     struct.pack(">IB", 2, ord("Z")) + b"?",
                     struct.pack(">I", 0x7fffffff) + b"C" * 64):
            with socket.create_connection(("127.0.0.1", m.port), 5) as g:
                g.sendall(struct.pack(">IBIII", 13, ord("O"), 6, 0x1ff, 0x1fffff))
                g.settimeout(5)
                g.recv(4096)
                g.sendall(junk)
                g.settimeout(scaled(10))
                try:
                    while g.recv(4096):
                        pass
                except (socket.timeout, ConnectionError):
                    pass
        assert m.running()
        step, r = _session(s.port, "a@ok.example", ["u@" + LOCAL], BODY)
        assert step == "data" and r.code == 250, r


def test_reload_on_sigusr2(tmp):
    cfg = chain_config()
    with SluiceMilter(cfg, tmp / "milter") as m, _front(tmp / "f", m) as (cap, s):
        step, r = _session(s.port, "a@bad.example", ["u@" + LOCAL], BODY)
        assert r.code == 250, r
        m.write_config(chain_config(
            extra_filters={"badfrom": _access("mail", "reject",
                                              match=["*@bad.example"],
                                              reply="553 5.7.1 now refused")},
            chain=["relay", "badfrom"]))
        os.kill(m.pid, signal.SIGUSR2)
        wait_for(lambda: "reload done" in m.log(), what="reload logged")
        step, r = _session(s.port, "a@bad.example", ["u@" + LOCAL], BODY)
        assert step == "mail" and r.code == 553 and "now refused" in r.text, r
        # a bad config changes nothing
        m.config_path.write_text("this is not { a config")
        os.kill(m.pid, signal.SIGUSR2)
        wait_for(lambda: "keeping the running configuration" in m.log(),
                 what="failed reload logged")
        step, r = _session(s.port, "a@bad.example", ["u@" + LOCAL], BODY)
        assert step == "mail" and r.code == 553, r
        assert m.running()


run_tests(globals())
