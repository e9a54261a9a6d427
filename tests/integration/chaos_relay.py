#!/usr/bin/python3
"""Chaos test of relay mode (not in the default make check: `make
check-chaos`, and .ci/run): about 2,000 messages through 20 concurrent
sessions into a relay-mode sluice whose smart host is a Capture, while
sluice is killed with SIGKILL 20 times at random moments and restarted
each time.  Every message the client saw a 250 for must reach the capture
at least once (lost = 0 is asserted); duplicates (delivered more than
once: the window between the remote's 250 and recording it) are counted
and printed, not asserted; at the end the queue is empty.

Environment: CHAOS_MESSAGES (2000), CHAOS_SESSIONS (20), CHAOS_KILLS (20),
CHAOS_SEED (random)."""

import os
import random
import re
import smtplib
import threading
import time

os.environ.setdefault("SLUICE_TEST_TIMEOUT", "600")
from sluicetest import *

MESSAGES = int(os.environ.get("CHAOS_MESSAGES", "2000"))
SESSIONS = int(os.environ.get("CHAOS_SESSIONS", "20"))
KILLS = int(os.environ.get("CHAOS_KILLS", "20"))
SEED = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 30))))
# Kills every 0.2..1.0 s; the sessions pace themselves to last as long.
PACE = KILLS * 0.6 / max(1, MESSAGES / SESSIONS)
TOKEN = re.compile(rb"X-Chaos: (c\d+-\d+-\d+)")


def qcount(s, state):
    d = s.workdir / "spool" / "queue" / state
    return len(list(d.iterdir())) if d.is_dir() else 0


class Clients:
    """SESSIONS threads sending MESSAGES messages in all; each attempt has
    its own token, so a retry after a lost reply is a new message."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.accepted = set()       # tokens that got their 250
        self.attempts = 0
        self.failures = 0
        self.left = MESSAGES
        self.stop = False
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(SESSIONS)]

    def take(self):
        with self.lock:
            if self.left == 0 or self.stop:
                return False
            self.left -= 1
            return True

    def run(self, n):
        seq = 0
        conn = None
        deadline = time.monotonic() + scaled(240)
        while time.monotonic() < deadline:
            if not self.take():
                break
            while time.monotonic() < deadline and not self.stop:
                seq += 1
                token = "c%d-%d-%d" % (n, seq, SEED)
                body = ("From: <s@sender.example>\r\nTo: <r@dest.example>\r\n"
                        "Subject: chaos %s\r\nX-Chaos: %s\r\n\r\n%s\r\n" % (
                            token, token, ("x" * 76 + "\r\n") * 26)).encode()
                with self.lock:
                    self.attempts += 1
                try:
                    if conn is None:
                        conn = smtplib.SMTP("127.0.0.1", self.port, timeout=15)
                        conn.ehlo("chaos.test")
                    conn.sendmail("s@sender.example", ["r@dest.example"], body)
                    with self.lock:
                        self.accepted.add(token)
                    # Spread the load over the kills (PACE seconds per message).
                    time.sleep(random.uniform(0, 2 * PACE))
                    break
                except (OSError, smtplib.SMTPException) as e:
                    with self.lock:
                        self.failures += 1
                        if self.failures <= 3:
                            print("# client error: %r" % (e,), flush=True)
                    try:
                        if conn is not None:
                            conn.close()
                    except OSError:
                        pass
                    conn = None
                    time.sleep(0.05)
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


def test_chaos_kill9_under_load(tmp):
    rnd = random.Random(SEED)
    with Capture(tmp / "cap") as cap:
        port = free_port()
        cfg = {"listeners": {"in": {"listen": ["127.0.0.1:%d" % port],
                                    "mode": "relay"}},
               "globals": standard_globals(
                   smart_host="[127.0.0.1]:%d" % cap.port,
                   min_backoff=Raw("1s"), max_backoff=Raw("2s"),
                   max_connections_per_ip=0,
                   pidfile=str(tmp / "s" / "sluice.pid"),
                   log={"target": "stderr", "level": "info"})}
        s = Sluice(cfg, tmp / "s", start=False)
        s.start()
        clients = Clients(port)
        clients.start()
        t0 = time.monotonic()
        under_load = 0
        for k in range(KILLS):
            time.sleep(rnd.uniform(0.2, 1.0))
            under_load += any(t.is_alive() for t in clients.threads)
            s.kill()
            s.start()
        done = clients.join(scaled(240))
        clients.stop = True
        assert done, "clients did not finish"
        load_s = time.monotonic() - t0
        # Let every deferred message go now, then wait for an empty queue.
        subprocess_flush(s)
        wait_for(lambda: qcount(s, "active") == 0 and qcount(s, "deferred") == 0
                 and qcount(s, "incoming") == 0, timeout=scaled(120),
                 what="an empty queue")
        time.sleep(1)
        seen = {}
        for m in cap.messages():
            hit = TOKEN.search(m.data)
            if hit and m.accepted:
                tok = hit[1].decode()
                seen[tok] = seen.get(tok, 0) + 1
        lost = sorted(t for t in clients.accepted if t not in seen)
        dups = sum(n - 1 for n in seen.values() if n > 1)
        unacked = len([t for t in seen if t not in clients.accepted])
        print("# chaos seed=%d messages=%d sessions=%d kills=%d load_time=%.1fs "
              "attempts=%d client_failures=%d accepted=%d delivered_distinct=%d "
              "lost=%d duplicates=%d delivered_without_250=%d corrupt=%d "
              "kills_under_load=%d" % (
                  SEED, MESSAGES, SESSIONS, KILLS, load_s, clients.attempts,
                  clients.failures, len(clients.accepted), len(seen), len(lost),
                  dups, unacked, qcount(s, "corrupt"), under_load), flush=True)
        assert not lost, "lost %d accepted messages: %s" % (len(lost), lost[:10])
        assert len(clients.accepted) == MESSAGES
        assert qcount(s, "corrupt") == 0
        assert s.stop() == 0


def subprocess_flush(s):
    import subprocess
    subprocess.run([str(s.binary), "-c", str(s.config_path), "queue", "flush"],
                   capture_output=True, timeout=scaled(20))


run_tests(globals())
