#!/usr/bin/python3
"""queue_bench - relay-mode accept rate: smtp-source sends 4 KiB messages
over 20 concurrent sessions to a relay-mode listener; every message is
written, fsynced and renamed into active/ (folder fsynced) before its 250.
Runs both group-commit modes (fdatasync per file, one syncfs per group)
interleaved for N rounds and prints a Markdown table: msg/s, and the
committer's syncs per message from the daemon's SIGUSR1 status line.

    tests/bench/queue_bench.py [--rounds N] [--messages N] [--sessions N]
                               [--persistent] [--sluice PATH] [--dir DIR]

--dir is where the queue lives (default: a temporary directory under
$TMPDIR, i.e. the disk the tests use).  Every process started is stopped
by PID; every wait is bounded.  Needs /usr/sbin/smtp-source (postfix).
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from sluicetest import Sluice, TempDir, free_port, reachable  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"


def relay_config(port, qdir, sync):
    return {"listeners": {"in": {"listen": ["127.0.0.1:%d" % port],
                                 "mode": "relay", "received_header": False}},
            "globals": {"hostname": "bench.test", "workers": 0,
                        "max_connections_per_ip": 0,
                        "log": {"target": "stderr", "level": "info"},
                        "queue": {"directory": str(qdir), "sync": sync}}}


def status(s):
    """committed, groups, syncs from a SIGUSR1 status line."""
    mark = s.log_mark()
    os.kill(s.pid, signal.SIGUSR1)
    m = s.wait_log(r"queue status .* committed=(\d+) groups=(\d+) "
                   r"syncs=(\d+)", since=mark, timeout=20)
    return int(m[1]), int(m[2]), int(m[3])


def one_run(tmp, args, sync, rnd):
    port = free_port()
    work = tmp / ("%s-%d" % (sync, rnd))
    qdir = (Path(args.dir) if args.dir else tmp) / ("queue-%s-%d" % (sync, rnd))
    qdir.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chmod(qdir, 0o777)
        reachable(qdir)
    with Sluice(relay_config(port, qdir, sync), work, ready="greeting") as s:
        c0, g0, y0 = status(s)
        cmd = [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages),
               "-l", "4096", "-f", "bench@example.org", "-t", "user@example.net"]
        if args.persistent:
            cmd.append("-d")
        t0 = time.monotonic()
        subprocess.run(cmd + ["127.0.0.1:%d" % port], check=True,
                       timeout=600, stdout=subprocess.DEVNULL)
        elapsed = time.monotonic() - t0
        c1, g1, y1 = status(s)
        s.stop()
    committed = c1 - c0
    if committed != args.messages:
        raise SystemExit("%s: %d messages committed, %d sent" %
                         (sync, committed, args.messages))
    subprocess.run(["rm", "-rf", str(qdir)], timeout=120)
    return {"rate": committed / elapsed, "syncs": (y1 - y0) / committed,
            "group": committed / max(1, g1 - g0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--persistent", action="store_true")
    ap.add_argument("--sluice")
    ap.add_argument("--dir")
    args = ap.parse_args()
    if args.sluice:
        os.environ["SLUICE_BIN"] = args.sluice
    if not os.path.exists(SMTP_SOURCE):
        print("queue_bench: %s is missing (Debian package postfix)" % SMTP_SOURCE)
        return 77
    results = {"fdatasync": [], "syncfs": []}
    with TempDir() as tmp:
        tmp = Path(tmp)
        for rnd in range(args.rounds):
            for sync in results:
                results[sync].append(one_run(tmp, args, sync, rnd))
    print("Relay-mode accept, %d B messages, %d sessions%s, %d messages per run, "
          "median of %d rounds (min-max)\n" % (4096, args.sessions,
          " persistent" if args.persistent else ", 1 msg/connection",
          args.messages, args.rounds))
    print("| sync | msg/s | syncs per message | messages per group |")
    print("|---|---|---|---|")
    for sync, rs in results.items():
        cells = []
        for key, fmt in (("rate", "%.0f"), ("syncs", "%.3f"), ("group", "%.1f")):
            v = [r[key] for r in rs]
            cells.append((fmt + " (" + fmt + "-" + fmt + ")") %
                         (statistics.median(v), min(v), max(v)))
        print("| %s | %s |" % (sync, " | ".join(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
