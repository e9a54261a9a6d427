#!/usr/bin/python3
"""deliver_smtp.py - how fast does relay mode's SMTP client deliver?

Delivers 4 KiB messages one after another to Postfix's smtp-sink with
tests/unit/deliver_probe (proxy/deliver_smtp.c on one event loop), over
one reused connection and over a new connection each, and, as the
same-run reference, Postfix's own smtp-source doing the same (one session,
with -d and without).  The four are interleaved for --rounds rounds; the
table shows the median msg/s with the (min-max) range and the client's
CPU time per message.

    make check TESTS=  # builds tests/unit/deliver_probe
    tests/bench/deliver_smtp.py [--rounds 5] [--messages 2000] [--builddir build]

Everything it starts is stopped by PID at the end (the integration
harness's SmtpSink); every run is bounded in time.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from sluicetest import SmtpSink  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
RUN_TIMEOUT = 300


def timed(cmd):
    """Run cmd; (seconds, CPU seconds of the child, stdout)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, timeout=RUN_TIMEOUT)
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit("%s exited %d: %s" % (cmd[0], p.returncode,
                                               p.stderr.decode()[-500:]))
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return elapsed, cpu, p.stdout.decode("utf-8", "replace")


def probe_run(probe, body, address, n, reuse):
    cmd = [str(probe), "-b", str(body), "-r", "b@example.net", "-n", str(n),
           "-t", "30000", "-i", "2000" if reuse else "0", "sink=" + address]
    elapsed, cpu, out = timed(cmd)
    ok = out.count("class=OK")
    if ok != n:
        raise SystemExit("deliver_probe: %d of %d delivered" % (ok, n))
    m = re.search(r"total count=\d+ elapsed_ms=(\d+)", out)
    # the probe's own clock leaves out process start-up
    return int(m.group(1)) / 1000.0, cpu


def source_run(address, n, size, persistent):
    cmd = [SMTP_SOURCE, "-s", "1", "-m", str(n), "-l", str(size),
           "-M", "bench.test", "-f", "a@example.org", "-t", "b@example.net"]
    if persistent:
        cmd.append("-d")
    elapsed, cpu, _ = timed(cmd + [address])
    return elapsed, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--builddir", default=os.environ.get("abs_top_builddir")
                    or str(HERE.parent.parent / "build"))
    args = ap.parse_args()
    probe = Path(args.builddir) / "tests" / "unit" / "deliver_probe"
    if not probe.exists():
        raise SystemExit("%s: not built" % probe)
    n = args.messages
    body_bytes = b"Subject: bench\r\n\r\n" + (b"x" * 62 + b"\r\n") * 64
    rows = {
        "deliver_smtp, one reused connection":
            lambda a, b: probe_run(probe, b, a, n, True),
        "deliver_smtp, a new connection each":
            lambda a, b: probe_run(probe, b, a, n, False),
        "smtp-source -d (one connection)":
            lambda a, b: source_run(a, n, len(body_bytes), True),
        "smtp-source (a new connection each)":
            lambda a, b: source_run(a, n, len(body_bytes), False),
    }
    results = {k: [] for k in rows}
    with tempfile.TemporaryDirectory(prefix="deliver-bench-") as tmp:
        tmp = Path(tmp)
        body = tmp / "body.eml"
        body.write_bytes(body_bytes)
        # deliver_smtp's default of 100 deliveries per connection applies
        with SmtpSink(tmp / "sink") as sink:
            for _ in range(args.rounds):
                for name, fn in rows.items():
                    elapsed, cpu = fn(sink.address, body)
                    results[name].append((n / elapsed, cpu * 1e6 / n))
    print("%d messages of %d bytes per run, %d rounds, loadavg %s" % (
        n, len(body_bytes), args.rounds, os.getloadavg()))
    print()
    print("| client | msg/s median (min-max) | client CPU per message |")
    print("|---|---|---|")
    for name, v in results.items():
        rates = [x[0] for x in v]
        cpus = [x[1] for x in v]
        print("| %s | %.0f (%.0f-%.0f) | %.0f us |" % (
            name, statistics.median(rates), min(rates), max(rates),
            statistics.median(cpus)))


if __name__ == "__main__":
    main()
