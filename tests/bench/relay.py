#!/usr/bin/python3
"""relay - relay mode end to end beside Postfix: smtp-source sends 4 KiB
messages over 20 concurrent sessions to (a) a relay-mode sluice whose
smart_host is an smtp-sink and (b) a private Postfix instance with
relayhost = an smtp-sink, both with their queue on the same disk (a
temporary directory under $TMPDIR, or --dir).  Both fsync every message
before its 250.  Measured per run: accept rate (messages / time until
smtp-source has had every 250) and delivered rate (messages / time until
the sink has counted the last one).  Runs alternate for --rounds rounds;
prints a Markdown table (median, min-max).

    tests/bench/relay.py [--rounds N] [--messages N] [--sessions N]
                         [--per-destination N] [--sluice PATH] [--dir DIR]

sluice's max_per_destination is set to Postfix's default destination
concurrency (20) unless --per-destination says otherwise.  Needs root
(the private Postfix), /usr/sbin/postfix, smtp-source and smtp-sink.
Every process started is stopped by PID; every wait is bounded.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from sluicetest import (Sluice, SmtpSink, TempDir, free_port,  # noqa: E402
                        reachable, wait_for)

SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX = "/usr/sbin/postfix"

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
    """A private Postfix relaying everything to relayhost [127.0.0.1]:sink."""

    def __init__(self, dir, sink_port):
        self.dir = Path(dir)
        self.etc = self.dir / "etc"
        self.etc.mkdir(parents=True)
        self.port = free_port()
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "mail_owner": "postfix", "setgid_group": "postdrop",
            "myhostname": "pf.bench.test", "mydestination": "",
            "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "[127.0.0.1]:%d" % sink_port,
            "smtp_host_lookup": "native", "alias_maps": "", "alias_database": "",
            "maillog_file": self.dir / "maillog",
            "maillog_file_prefixes": self.dir,
            "smtputf8_enable": "no", "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "anvil_rate_time_unit": "60s",
        }
        (self.etc / "main.cf").write_text(
            "".join("%s = %s\n" % (k, v) for k, v in main.items()))
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        (self.dir / "queue").mkdir()
        (self.dir / "data").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        for d in (self.dir, self.etc, self.dir / "queue"):
            os.chmod(d, 0o755)
        reachable(self.dir)
        self.run("post-install", "create-missing")
        self.run("start")
        wait_for(self.accepting, timeout=30, what="postfix smtpd")

    def run(self, what, *args):
        p = subprocess.run([POSTFIX, "-c", str(self.etc), what] + list(args),
                           capture_output=True, timeout=60)
        if p.returncode != 0 and what != "stop":
            raise SystemExit("postfix %s: %s%s" % (what, p.stdout.decode(),
                                                   p.stderr.decode()))

    def accepting(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.run("stop")
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.time() + 15
        while pidfile.exists() and time.time() < deadline:
            time.sleep(0.1)


def sluice_config(port, sink_port, qdir, per_destination):
    return {"listeners": {"in": {"listen": ["127.0.0.1:%d" % port],
                                 "mode": "relay", "received_header": False}},
            "globals": {"hostname": "bench.test", "workers": 0,
                        "max_connections_per_ip": 0,
                        "smart_host": "[127.0.0.1]:%d" % sink_port,
                        "max_per_destination": per_destination,
                        "log": {"target": "stderr", "level": "warning"},
                        "queue": {"directory": str(qdir)}}}


def drive(port, sink, args):
    """smtp-source into port; (accept rate, delivered rate)."""
    cmd = [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages),
           "-l", "4096", "-f", "bench@example.org", "-t", "user@example.net",
           "127.0.0.1:%d" % port]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, timeout=600, stdout=subprocess.DEVNULL)
    accepted = time.monotonic() - t0
    wait_for(lambda: sink.count() >= args.messages, timeout=600, interval=0.01,
             what="every message at the sink")
    delivered = time.monotonic() - t0
    return args.messages / accepted, args.messages / delivered


def run_sluice(tmp, args, rnd):
    work = tmp / ("sluice-%d" % rnd)
    qdir = (Path(args.dir) if args.dir else tmp) / ("sluice-queue-%d" % rnd)
    qdir.mkdir(parents=True)
    os.chmod(qdir, 0o777)
    reachable(qdir)
    with SmtpSink(tmp / ("sink-s%d" % rnd)) as sink:
        port = free_port()
        with Sluice(sluice_config(port, sink.port, qdir, args.per_destination),
                    work) as s:
            r = drive(port, sink, args)
            s.stop()
    shutil.rmtree(qdir, ignore_errors=True)
    return r


def run_postfix(tmp, args, rnd):
    base = (Path(args.dir) if args.dir else tmp) / ("postfix-%d" % rnd)
    with SmtpSink(tmp / ("sink-p%d" % rnd)) as sink:
        pf = Postfix(base, sink.port)
        try:
            r = drive(pf.port, sink, args)
        finally:
            pf.stop()
    shutil.rmtree(base, ignore_errors=True)
    return r


def cell(values):
    return "%.0f (%.0f-%.0f)" % (statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--per-destination", type=int, default=20)
    ap.add_argument("--sluice")
    ap.add_argument("--dir")
    args = ap.parse_args()
    if args.sluice:
        os.environ["SLUICE_BIN"] = args.sluice
    for prog in (SMTP_SOURCE, POSTFIX, "/usr/sbin/smtp-sink"):
        if not os.path.exists(prog):
            print("relay bench: %s is missing (Debian package postfix)" % prog)
            return 77
    if os.geteuid() != 0:
        print("relay bench: the private Postfix needs root")
        return 77
    res = {"sluice": [], "postfix": []}
    with TempDir() as tmp:
        tmp = Path(tmp)
        for rnd in range(args.rounds):
            res["sluice"].append(run_sluice(tmp, args, rnd))
            res["postfix"].append(run_postfix(tmp, args, rnd))
    print("Relay via a smart host to smtp-sink: %d messages of 4 KiB, %d sessions, "
          "median of %d rounds (min-max); sluice max_per_destination=%d\n" % (
              args.messages, args.sessions, args.rounds, args.per_destination))
    print("| MTA | accepted msg/s | delivered msg/s (end to end) |")
    print("|---|---|---|")
    for name, rs in res.items():
        print("| %s | %s | %s |" % (name, cell([a for a, _ in rs]),
                                    cell([d for _, d in rs])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
