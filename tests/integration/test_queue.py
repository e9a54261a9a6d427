#!/usr/bin/python3
"""Relay-mode acceptance and the durable queue: the 250 names the queue
id, the file in active/ holds the envelope and exactly the bytes the client
sent (after the Received field); kill -9 after the 250 loses nothing; a
damaged file goes to corrupt/ and the daemon runs on; a full disk (a tiny
tmpfs in a mount namespace) and RLIMIT_FSIZE give 452 4.3.1 and leave no
file; every `sluice queue` subcommand; config checks."""

import fcntl
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from sluicetest import *

ID = r"[0-9A-F]{14}[A-Z2-7]{6}"
STATES = ("incoming", "active", "deferred", "hold", "corrupt")


# ---------------------------------------------------------------- helpers

def relay_config(port=None, globals=None, listener=None):
    lst = {"listen": ["127.0.0.1:%d" % (port or free_port())], "mode": "relay"}
    lst.update(listener or {})
    # The queue alone: the scheduler (deliver.c) leaves the files alone.
    g = standard_globals(defer_deliveries=True)
    g.update(globals or {})
    return {"listeners": {"in": lst}, "globals": g}


def qdir(s):
    return s.workdir / "spool" / "queue"


def files(s, state):
    d = qdir(s) / state
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def all_files(s):
    return {st: files(s, st) for st in STATES}


def parse_queue_file(data):
    """The queue file format of proxy/queue_file.c: (head dict, rcpts,
    body bytes, records)."""
    head, rcpts, pos = {}, [], 0
    first, _, rest = data.partition(b"\n")
    assert first == b"sluice-queue 1", first
    pos = len(first) + 1
    while True:
        nl = data.index(b"\n", pos)
        key, _, value = data[pos:nl].decode("utf-8", "surrogateescape").partition(" ")
        pos = nl + 1
        if key == "rcpt":
            rcpts.append({"mailbox": value})
        elif key == "rcpt-params":
            rcpts[-1]["params"] = value
        elif key == "body":
            assert len(value) == 16, value
            length = int(value)
            break
        else:
            head[key] = value
    body = data[pos:pos + length]
    tail = data[pos + length:]
    assert tail.startswith(b"end\n"), tail[:20]
    records = [l for l in tail[4:].decode().split("\n") if l]
    return head, rcpts, body, records


def plant(path, data):
    """A file as the daemon's user would have left it."""
    path.write_bytes(data)
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam(DAEMON_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def queued_id(text):
    m = re.search(r"Ok: queued as (%s)$" % ID, text)
    assert m, "no queue id in %r" % text
    return m[1]


def send(port, body, **kw):
    """One transaction; the reply to the final dot."""
    return submit(port, body, **kw)


def sluice_queue(s, *args, timeout=None):
    """sluice -c CONF queue ARGS: (exit code, stdout, stderr)."""
    p = subprocess.run([str(s.binary), "-c", str(s.config_path), "queue"] +
                       list(args), capture_output=True,
                       timeout=timeout or scaled(20))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# ---------------------------------------------------------------- acceptance

def test_relay_queues_exact_bytes(tmp):
    body = (b"Subject: relay\r\nFrom: <a@example.org>\r\n\r\n"
            b"..leading dot stuffed\r\nplain \xc3\xa9\r\nlast\r\n")
    with Sluice(relay_config(), tmp / "sluice") as s:
        mark = s.log_mark()
        r = send(s.port, body, rcpts=("b@example.net", "c@example.com"),
                 mail_params=" SIZE=200 BODY=8BITMIME",
                 rcpt_params=" NOTIFY=FAILURE,DELAY")
        assert r.code == 250 and r.enhanced == "2.0.0", r.raw
        qid = queued_id(r.text)
        s.wait_log(r"queued queue_id=%s from=<a@example.org> nrcpt=2" % qid,
                   since=mark)
        assert files(s, "active") == [qid]
        assert files(s, "incoming") == []
        head, rcpts, got, records = parse_queue_file(
            (qdir(s) / "active" / qid).read_bytes())
        assert head["id"] == qid
        assert head["sender"] == "a@example.org"
        # SIZE is not kept: the scheduler sends the body's real length.
        assert head["mail-params"] == " BODY=8BITMIME", head
        assert head["client-addr"] == "127.0.0.1"
        assert head["client-helo"] == "client.test"
        assert head["received-by"] == HOSTNAME
        assert [x["mailbox"] for x in rcpts] == ["b@example.net",
                                                  "c@example.com"]
        assert rcpts[0]["params"] == " NOTIFY=FAILURE,DELAY", rcpts
        assert records == []
        # The Received field first, then exactly the client's bytes.
        assert got.startswith(b"Received: from client.test "), got[:200]
        assert b"by mx.test (sluice)" in got.split(b"\r\n\r\n")[0]
        assert got.endswith(body), got
        assert got[:-len(body)].count(b"\r\nReceived:") == 0


def test_large_message_from_spool_file(tmp):
    """Past spool_memory the DATA spool is a file: the queue gets its
    bytes exactly too."""
    line = b"0123456789" * 99 + b"\r\n"
    body = b"Subject: large\r\n\r\n" + b"".join(
        (b"." if i % 7 == 0 else b"") + line for i in range(1200))
    body = body.replace(b"\r\n.", b"\r\n..")  # as a client dot-stuffs
    with Sluice(relay_config(listener={"received_header": False}),
                tmp / "sluice") as s:
        qid = queued_id(send(s.port, body).text)
        _, _, got, _ = parse_queue_file((qdir(s) / "active" / qid).read_bytes())
        assert len(body) > 1024 * 1024
        assert got == body


def test_null_sender_and_no_received(tmp):
    body = b"Subject: bounce\r\n\r\nx\r\n"
    with Sluice(relay_config(listener={"received_header": False}),
                tmp / "sluice") as s:
        r = send(s.port, body, sender="")
        qid = queued_id(r.text)
        head, _, got, _ = parse_queue_file(
            (qdir(s) / "active" / qid).read_bytes())
        assert head["sender"] == ""
        assert got == body, got


def test_concurrent_sessions_unique_ids(tmp):
    """20 sessions at once: every one gets its own id and file."""
    ids, errors = [], []

    def one(i):
        try:
            r = send(s.port, b"Subject: %d\r\n\r\nbody\r\n" % i)
            ids.append(queued_id(r.text))
        except BaseException as e:  # reported below
            errors.append(e)
    with Sluice(relay_config(), tmp / "sluice") as s:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(30))
        assert not errors, errors
        assert len(set(ids)) == 20, ids
        assert files(s, "active") == sorted(ids)
        mark = s.log_mark()
        os.kill(s.pid, signal.SIGUSR1)
        m = s.wait_log(r"queue status incoming=0 active=20 deferred=0 hold=0 "
                       r"corrupt=0 committed=20 groups=(\d+) syncs=(\d+)",
                       since=mark)
        assert 1 <= int(m[1]) <= 20, m[0]


def test_synced_before_250(tmp):
    """The order of system calls: the file's data synced, renamed into
    active/, active/ fsynced, and only then the 250 written (invariant 1;
    kill -9 cannot show this: the page cache survives it)."""
    if shutil.which("strace") is None:
        skip("strace is not installed")
    for sync in ("syncfs", "fdatasync"):
        cfg = relay_config(globals={"queue": {"sync": sync}})
        with Sluice(cfg, tmp / sync) as s:
            trace = tmp / ("trace-%s.txt" % sync)
            errf = open(tmp / ("strace-%s.err" % sync), "wb")
            st = subprocess.Popen(
                ["strace", "-f", "-s", "128", "-p", str(s.pid), "-o", str(trace), "-e",
                 "trace=syncfs,fdatasync,fsync,rename,writev,write"],
                stdout=subprocess.DEVNULL, stderr=errf)
            try:
                wait_for(lambda: b"attached" in (tmp / ("strace-%s.err" % sync)
                                                 ).read_bytes(),
                         timeout=scaled(10))
                qid = queued_id(send(s.port, b"Subject: t\r\n\r\nx\r\n").text)
                wait_for(lambda: "queued as " + qid in trace.read_text(),
                         timeout=scaled(10))
            finally:
                st.send_signal(signal.SIGINT)  # detaches, the daemon goes on
                st.wait(scaled(10))
                errf.close()
            calls = trace.read_text().splitlines()

            def first(pattern, start=0):
                for i in range(start, len(calls)):
                    if re.search(pattern, calls[i]):
                        return i
                raise AssertionError("no %r in the trace" % pattern)

            def returned(i, name):
                """Where call i returned (strace splits calls that other
                threads interrupt into unfinished ... resumed)."""
                if "unfinished" not in calls[i]:
                    assert calls[i].rstrip().endswith("= 0"), calls[i]
                    return i
                tid = calls[i].split()[0]
                j = first(r"^%s +<\.\.\. %s resumed>.*= 0$" % (tid, name), i)
                return j
            ren = first(r'rename\(".*/incoming/%s", ".*/active/%s"\) = 0' %
                        (qid, qid))
            starts = [i for i in range(ren) if re.search(r"\b%s\(\d+" % sync,
                                                         calls[i])]
            assert starts, "no %s before the rename" % sync
            data = returned(starts[-1], sync)
            dirsync = returned(first(r"\bfsync\(\d+", ren), "fsync")
            reply = first(r"250 2\.0\.0 Ok: queued as %s" % qid)
            assert data < ren < dirsync < reply, (sync, data, ren, dirsync,
                                                  reply)
            s.assert_running()


# ---------------------------------------------------------------- crashes

def test_second_instance_on_the_same_queue_refused(tmp):
    """Recovery takes every file as its own, so a second daemon on a queue
    directory in use must not start: it exits with a clear reason and the
    first one keeps its message."""
    with Sluice(relay_config(), tmp / "sluice") as s:
        qid = queued_id(send(s.port, b"Subject: mine\r\n\r\nbody\r\n").text)
        other = tmp / "other.conf"
        text = s.config_path.read_text()
        port = re.search(r'"127\.0\.0\.1:(\d+)"', text)[1]
        other.write_text(text.replace(port, str(free_port())))
        reachable(other)
        p = subprocess.run([str(s.binary), "-f", "-c", str(other)], capture_output=True,
                           timeout=scaled(30))
        assert p.returncode != 0, p
        assert b"is in use by another running sluice" in p.stderr, p.stderr
        assert files(s, "active") == [qid]
        s.assert_running()


def test_kill9_after_250_keeps_message(tmp):
    with Sluice(relay_config(), tmp / "sluice") as s:
        r = send(s.port, b"Subject: survive\r\n\r\nbody\r\n")
        qid = queued_id(r.text)
        s.kill()
        assert files(s, "active") == [qid]
        mark = s.log_mark()
        s.start()
        s.wait_log(r"queue ready .* deferred=1 .*requeued=1", since=mark)
        # A crash mid-delivery: back to deferred, recipients untouched.
        assert files(s, "deferred") == [qid]
        assert files(s, "active") == []
        head, _, got, _ = parse_queue_file(
            (qdir(s) / "deferred" / qid).read_bytes())
        assert got.endswith(b"Subject: survive\r\n\r\nbody\r\n")


def test_kill9_under_load(tmp):
    """kill -9 while 8 clients send: every message that got its 250 is in
    the queue after the restart, complete; nothing half-written is left
    anywhere; nothing goes to corrupt/."""
    acked, stop = [], threading.Event()

    def client(port):
        while not stop.is_set():
            try:
                r = send(port, b"Subject: load\r\n\r\n" + b"z" * 60 + b"\r\n" * 50)
                if r.code == 250:
                    acked.append(queued_id(r.text))
            except (AssertionError, OSError):
                pass  # the daemon died under us: expected
    with Sluice(relay_config(), tmp / "sluice") as s:
        threads = [threading.Thread(target=client, args=(s.port,))
                   for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for kill in range(5):
                before = len(acked)
                wait_for(lambda: len(acked) >= before + 20, timeout=scaled(30))
                s.kill()
                s.start()
        finally:
            stop.set()
            for t in threads:
                t.join(scaled(30))
        s.stop()
        on_disk = {st: set(files(s, st)) for st in STATES}
        assert on_disk["corrupt"] == set(), on_disk["corrupt"]
        lost = set(acked) - on_disk["active"] - on_disk["deferred"]
        assert not lost, "acknowledged but not queued: %s" % sorted(lost)
        assert len(acked) >= 100, len(acked)
        # Queued without the client hearing 250 (killed in between): the
        # client sends it again, a duplicate, never a loss.
        unacked = (on_disk["active"] | on_disk["deferred"]) - set(acked)
        print("# kill -9 x5 under load: acknowledged=%d lost=0 "
              "queued_unacknowledged=%d" % (len(acked), len(unacked)))
        for st in ("active", "deferred"):
            for name in on_disk[st]:
                _, _, body, _ = parse_queue_file(
                    (qdir(s) / st / name).read_bytes())
                assert body.endswith(b"z" * 60 + b"\r\n" * 50), name


def test_uncommitted_and_corrupt_files(tmp):
    with Sluice(relay_config(), tmp / "sluice") as s:
        good = queued_id(send(s.port, b"Subject: good\r\n\r\nx\r\n").text)
        s.stop()
        data = (qdir(s) / "active" / good).read_bytes()
        # A write cut short (no end line) in incoming/: never acknowledged.
        plant(qdir(s) / "incoming" / "0000000000000AAAAAAA", data[:50])
        # Damage in deferred/ and hold/, junk with a foreign name.
        plant(qdir(s) / "deferred" / "0000000000000BAAAAAA", b"\0garbage")
        cut = data.replace(good.encode(), b"0000000000000CAAAAAA")
        plant(qdir(s) / "hold" / "0000000000000CAAAAAA", cut[:-8])
        plant(qdir(s) / "deferred" / "notes.txt", b"hello")
        mark = s.log_mark()
        s.start()
        s.wait_log(r"queue ready .*removed_uncommitted=1 requeued=1 "
                   r"moved_corrupt=3", since=mark)
        s.wait_log(r"0000000000000BAAAAAA queue corrupt from=deferred "
                   r"reason=\"not a sluice queue file", since=mark)
        s.wait_log(r"0000000000000CAAAAAA queue corrupt from=hold", since=mark)
        assert files(s, "corrupt") == ["0000000000000BAAAAAA",
                                       "0000000000000CAAAAAA", "notes.txt"]
        assert files(s, "incoming") == []
        assert files(s, "deferred") == [good]
        # Still accepting.
        queued_id(send(s.port, b"Subject: after\r\n\r\nx\r\n").text)


# ---------------------------------------------------------------- disk full

class NamespacedSluice(Sluice):
    """The daemon in its own mount namespace with a tiny tmpfs on the
    queue directory (a private mount: the host never sees it)."""

    tmpfs_size = "64k"

    def _command(self, args):
        cmd = super()._command(args)
        q = self.workdir / "spool" / "queue"
        q.mkdir(parents=True, exist_ok=True)
        opts = "size=%s,mode=0700" % self.tmpfs_size
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam(DAEMON_USER)
            opts += ",uid=%d,gid=%d" % (pw.pw_uid, pw.pw_gid)
        script = 'mount -t tmpfs -o "$1" sluicetest "$2" && shift 2 && exec "$@"'
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                script, "sh", opts, str(q)] + cmd


def namespaces_allowed(tmp):
    d = tmp / "probe"
    d.mkdir()
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "mount",
                        "-t", "tmpfs", "-o", "size=16k", "probe", str(d)],
                       capture_output=True, timeout=scaled(10))
    return p.returncode == 0, p.stderr.decode().strip()


def test_disk_full_tmpfs(tmp):
    if shutil.which("unshare") is None:
        skip("unshare(1) is not installed")
    ok, why = namespaces_allowed(tmp)
    if not ok:
        skip("cannot mount a tmpfs in a mount namespace here: %s" % why)
    with NamespacedSluice(relay_config(), tmp / "sluice") as s:
        small = queued_id(send(s.port, b"Subject: small\r\n\r\nx\r\n").text)
        big = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n"
        mark = s.log_mark()
        r = send(s.port, big * 200)  # 200 KB into 64 KB
        assert r.code == 452 and r.enhanced == "4.3.1", r.raw
        assert r.raw == b"452 4.3.1 Insufficient system storage\r\n", r.raw
        s.wait_log(r"queue write failed queue_id=%s" % ID, since=mark)
        # What the daemon sees (inside its namespace): only the first one.
        listing = subprocess.run(
            ["nsenter", "-t", str(s.pid), "-m", "ls", "-1",
             str(qdir(s) / "incoming"), str(qdir(s) / "active")],
            capture_output=True, timeout=scaled(10)).stdout.decode()
        assert small in listing, listing
        assert len(re.findall(ID, listing)) == 1, listing
        # And it goes on.
        queued_id(send(s.port, b"Subject: small again\r\n\r\nx\r\n").text)


class LimitedSluice(Sluice):
    """The daemon under RLIMIT_FSIZE (it ignores SIGXFSZ: writes fail
    with EFBIG instead of killing it)."""

    def _command(self, args):
        return ["prlimit", "--fsize=1048576", "--"] + super()._command(args)


def test_file_size_limit_efbig(tmp):
    if shutil.which("prlimit") is None:
        skip("prlimit(1) is not installed")
    # DATA stays in memory: only the queue file meets the limit.
    cfg = relay_config(globals={"limits": {"spool_memory": "4M"}})
    with LimitedSluice(cfg, tmp / "sluice") as s:
        big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1500
        mark = s.log_mark()
        r = send(s.port, big)
        assert r.raw == b"452 4.3.1 Insufficient system storage\r\n", r.raw
        s.wait_log(r"queue write failed queue_id=%s: File too large" % ID,
                   since=mark)
        assert files(s, "incoming") == [] and files(s, "active") == []
        s.assert_running()
        queued_id(send(s.port, b"Subject: small\r\n\r\nx\r\n").text)


# ---------------------------------------------------------------- sluice queue

def test_queue_commands(tmp):
    g = {"pidfile": str(tmp / "sluice" / "sluice.pid")}
    with Sluice(relay_config(globals=g), tmp / "sluice") as s:
        a = queued_id(send(s.port, b"Subject: a\r\n\r\nx\r\n").text)
        b = queued_id(send(s.port, b"Subject: b\r\n\r\nx\r\n",
                           rcpts=("b@example.net", "c@example.net")).text)
        rc, out, err = sluice_queue(s, "list")
        assert rc == 0, err
        lines = out.splitlines()
        assert [l.split()[0] for l in lines] == [a, b], out
        assert re.match(r"%s active \S+Z size=\d+ from=<a@example.org> rcpts=2 "
                        r"pending=2 attempts=0$" % b, lines[1]), lines[1]
        rc, out, err = sluice_queue(s, "show", b)
        assert rc == 0, err
        assert "state: active" in out and "sender: <a@example.org>" in out, out
        assert "rcpt: <c@example.net> state=pending" in out, out
        # hold, then release (to deferred, due now)
        rc, out, err = sluice_queue(s, "hold", a)
        assert rc == 0, err
        assert files(s, "hold") == [a] and files(s, "active") == [b]
        rc, out, err = sluice_queue(s, "list", "hold")
        assert out.split()[0:2] == [a, "hold"], out
        rc, out, err = sluice_queue(s, "release", b)
        assert rc == 1 and "not on hold" in err, (rc, err)
        rc, out, err = sluice_queue(s, "release", a)
        assert rc == 0, err
        assert files(s, "deferred") == [a] and files(s, "hold") == []
        _, _, _, records = parse_queue_file((qdir(s) / "deferred" / a).read_bytes())
        assert len(records) == 1 and records[0].startswith("schedule "), records
        # A message someone holds the lock on (a delivery) is not changed.
        with open(qdir(s) / "active" / b, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            rc, out, err = sluice_queue(s, "delete", b)
            assert rc == 75 and "being delivered" in err, (rc, err)
            rc, out, err = sluice_queue(s, "hold", b)
            assert rc == 75, (rc, err)
        assert files(s, "active") == [b]
        rc, out, err = sluice_queue(s, "delete", b)
        assert rc == 0, err
        assert files(s, "active") == []
        rc, out, err = sluice_queue(s, "delete", b)
        assert rc == 1 and "no such message" in err, (rc, err)
        rc, out, err = sluice_queue(s, "show", "../../etc/passwd")
        assert rc == 2 and "not a queue id" in err, (rc, err)
        rc, out, err = sluice_queue(s, "frobnicate")
        assert rc == 2 and "usage" in err, (rc, err)
        # No queue there: said so, nothing created (root-owned folders
        # would lock the daemon out).
        other = s.config_path.parent / "other.conf"
        other.write_text(s.config_text + '\nqueue { directory = "%s" }\n'
                         % (tmp / "noqueue"))
        p = subprocess.run([str(s.binary), "-c", str(other), "queue", "list"],
                           capture_output=True, timeout=scaled(20))
        assert p.returncode == 1 and b"no queue at" in p.stderr, p
        assert not (tmp / "noqueue").exists()
        # flush: the daemon hears it (SIGUSR2 via the pidfile).
        mark = s.log_mark()
        rc, out, err = sluice_queue(s, "flush")
        assert rc == 0, err
        s.wait_log(r"queue flush requested deferred=1", since=mark)
        # delete works on corrupt/ too
        plant(qdir(s) / "corrupt" / "0000000000000DAAAAAA", b"x")
        rc, out, err = sluice_queue(s, "delete", "0000000000000DAAAAAA")
        assert rc == 0, err
        assert files(s, "corrupt") == []


# ---------------------------------------------------------------- config

def test_config_checks(tmp):
    port = free_port()
    bad = {"listeners": {"in": {"listen": ["127.0.0.1:%d" % port],
                                "mode": "relay", "backend": "out"}},
           "backends": {"out": {"servers": ["127.0.0.1:9"]}},
           "globals": standard_globals()}
    rc, out = check_config(bad, tmp / "a")
    assert rc != 0 and "a relay-mode listener takes no backend" in out, out
    bad["listeners"]["in"]["mode"] = "teleport"
    rc, out = check_config(bad, tmp / "b")
    assert rc != 0 and 'mode "teleport" is not valid' in out, out
    cfg = relay_config(globals={"queue": {"directory": str(tmp / "q"),
                                          "sync": "syncfs"}})
    rc, out = check_config(cfg, tmp / "c")
    assert rc == 0, out
    assert "warning" not in out, out  # loopback only
    public = relay_config(listener={"listen": ["0.0.0.0:%d" % port]})
    rc, out = check_config(public, tmp / "e")
    assert rc == 0, out
    assert ('warning: listener "in" relays mail for anyone who reaches it'
            in out), out
    public["filters"] = {"r": {"module": "relay",
                               "networks": ["127.0.0.0/8"]}}
    public["listeners"]["in"]["chain"] = ["r"]
    rc, out = check_config(public, tmp / "f")
    assert rc == 0 and "warning" not in out, out
    cfg["globals"]["queue"]["sync"] = "never"
    rc, out = check_config(cfg, tmp / "d")
    assert rc != 0 and 'sync "never" is not valid' in out, out


def test_no_queue_without_relay_listener_then_reload(tmp):
    """A forward-only configuration has no queue; a reload that adds a
    relay-mode listener makes it ready."""
    with Capture(tmp / "cap") as cap:
        fwd = standard_config(cap.address)
        with Sluice(fwd, tmp / "sluice") as s:
            assert not qdir(s).exists()
            port = free_port()
            both = dict(fwd)
            both["listeners"] = dict(fwd["listeners"])
            both["listeners"]["r"] = {"listen": ["127.0.0.1:%d" % port],
                                      "mode": "relay"}
            mark = s.log_mark()
            s.reload(both)
            s.wait_log(r"queue ready dir=\S+/spool/queue", since=mark)
            s.wait_log(r"reload done", since=mark)
            qid = queued_id(send(port, b"Subject: r\r\n\r\nx\r\n").text)
            assert files(s, "active") == [qid]


def test_queue_directory_and_fdatasync(tmp):
    q = give_to_daemon(tmp / "elsewhere") if os.geteuid() == 0 else tmp / "elsewhere"
    if os.geteuid() != 0:
        q.mkdir()
    cfg = relay_config(globals={"queue": {"directory": str(q / "queue"),
                                          "sync": "fdatasync"}})
    with Sluice(cfg, tmp / "sluice") as s:
        qid = queued_id(send(s.port, b"Subject: s\r\n\r\nx\r\n").text)
        assert (q / "queue" / "active" / qid).is_file()


run_tests(globals())
