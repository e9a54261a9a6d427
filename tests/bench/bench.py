#!/usr/bin/python3
"""bench - what does putting sluice in the path cost?

Runs Postfix's smtp-source against Postfix's smtp-sink directly, the
same through sluice (no filters, received_header = false, backend = the
same smtp-sink), and through a second sluice running the filter chain
relay, ratelimit, spf and dkim (chain.py; DNS from the integration
tests' dns_server.py), interleaved round by round on loopback, and
reports medians as Markdown tables.  See README.md in this directory.

    tests/bench/bench.py [--quick] [--rounds N] [--messages N]
                         [--sluice PATH] [--out FILE] [--pin]
                         [--no-callgrind] [--no-chain | --chain-only]

Every process it starts is stopped by PID at the end, also on failure;
every wait has a time bound.  Standard library only (plus the integration
harness in ../integration/sluicetest.py; its dns_server.py, a process of
its own, needs python3-dnslib, and the signed message needs openssl).
"""

import argparse
import atexit
import datetime
import os
import pwd
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import sluicetest  # noqa: E402
from sluicetest import (DnsServer, Sluice, TempDir, free_port,  # noqa: E402
                        make_config, reachable)
import chain  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
IDLE_CLIENTS = HERE / "idle_clients.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HELO = chain.HELO
SMALL = 4096
LARGE = 1024 * 1024

TARGET_RATIO = 0.85        # proxied / direct msg/s, small messages
TARGET_CHAIN = 0.50        # sluice+chain / direct msg/s, small messages
TARGET_ADDED_MS = 0.2      # added median latency per transaction
TARGET_IDLE_KIB = 16.0     # RSS per idle session
CALLGRIND_WARM = 20        # messages before the ones callgrind counts


class BenchError(Exception):
    """The benchmark could not measure something (the run is invalid)."""


# ---------------------------------------------------------------- processes

_procs = []  # Popen objects we started and have not reaped yet


def spawn(cmd, log_path, stdin=subprocess.DEVNULL, stdout=None):
    """Start a helper process (output into log_path); stopped at exit."""
    with open(log_path, "ab") as log:
        p = subprocess.Popen([str(c) for c in cmd], stdin=stdin,
                             stdout=stdout or log, stderr=log)
    _procs.append(p)
    return p


def stop(p, timeout=10.0):
    """SIGTERM this PID, wait, SIGKILL if needed; return the exit code."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
        except ProcessLookupError:
            pass
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def stop_all():
    for p in list(reversed(_procs)):
        try:
            stop(p, 5.0)
        except Exception:
            pass


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run_bounded(cmd, log_path, timeout):
    """Run cmd to completion within timeout seconds: (rc, seconds)."""
    t0 = time.perf_counter()
    p = spawn(cmd, log_path)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(p, 2.0)
        raise BenchError("%s did not finish in %.0f s (log %s)" % (
            " ".join(map(str, cmd[:6])), timeout, log_path))
    elapsed = time.perf_counter() - t0
    _procs.remove(p)
    return rc, elapsed


# ---------------------------------------------------------------- /proc

def cpu_split(pid):
    """(utime, stime) of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        m = re.search(r"^Max open files\s+(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_until(predicate, timeout, interval=0.05):
    """Poll until predicate() is true or timeout passes; return its value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def wait_greeting(port, timeout, alive):
    """Until 127.0.0.1:port sends a 220 line (alive() must stay true)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError("process on port %d exited" % port)
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as s:
                s.settimeout(max(1.0, deadline - time.monotonic()))
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    while s.recv(512):
                        pass
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError("no greeting on port %d after %.0f s" % (port, timeout))


# ---------------------------------------------------------------- machine

def machine_info(binary):
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    ncpu = len(os.sched_getaffinity(0))
    version = "?"
    try:
        out = subprocess.run([str(binary), "-V"], capture_output=True,
                             timeout=10, text=True)
        version = out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        rev = subprocess.run(["git", "-C", str(HERE), "describe", "--always",
                              "--dirty"], capture_output=True, timeout=10,
                             text=True).stdout.strip()
        if rev:
            version += ", git " + rev
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "cpu": model, "ncpu": ncpu, "kernel": os.uname().release,
            "version": version, "load": os.getloadavg()}


# ---------------------------------------------------------------- setup

def start_sink(tmp):
    """smtp-sink on a free port, fast mode: no dump files, no counters."""
    port = free_port()
    cmd = [SMTP_SINK, "-h", "sink.bench"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    cmd += ["-m", "1000", "127.0.0.1:%d" % port, "1000"]
    p = spawn(cmd, tmp / "smtp-sink.log")
    wait_greeting(port, 10, lambda: p.poll() is None)
    return p, port


def sluice_config(tmp, sink_port, ncpu, idle=0, dns=None, level="warning",
                  port=None, limit=chain.RATE_LIMIT, banner=None):
    """The config: no filters, or with dns (a forwarder, "127.0.0.1@N")
    the chain of chain.py (ratelimit's limit: limit) and a resolver asking
    only that server."""
    port = port or free_port()
    g = {"hostname": "sluice.bench",
         "spool_dir": str(tmp / "spool"),
         "workers": ncpu,
         "max_connections": max(2000, idle + 1000),
         "max_connections_per_ip": 0,
         "log": {"target": "stderr", "level": level},
         "limits": {"idle_timeout": sluicetest.Raw("15m")}}
    if os.geteuid() == 0:
        g["user"] = "nobody"
    listener = {"listen": ["127.0.0.1:%d" % port], "backend": "sink",
                "received_header": False, "banner": banner}
    filters = None
    if dns:
        g["resolver"] = chain.resolver(dns)
        listener["chain"] = list(chain.INSTANCES)
        filters = chain.filters(limit)
    return make_config(
        globals=g, listeners={"in": listener}, filters=filters,
        backends={"sink": {"type": "smtp",
                           "servers": ["127.0.0.1:%d" % sink_port]}})


def start_sluice(workdir, sink_port, cpus, idle=0, dns=None,
                 level="warning"):
    """sluice with one worker per CPU in cpus, all its threads on cpus
    (with dns: the chain; see sluice_config)."""
    workdir.mkdir(parents=True, exist_ok=True)
    reachable(workdir)
    s = Sluice(sluice_config(workdir, sink_port, len(cpus), idle, dns,
                             level), workdir, defaults=False, start=False)
    s.start(ready=None)
    wait_greeting(s.port, 15, s.running)
    for tid in os.listdir("/proc/%d/task" % s.pid):
        os.sched_setaffinity(int(tid), cpus)
    return s


def split_cpus(pin):
    """(CPUs for bench and its load generators, CPUs for sluice)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin:
        return cpus, cpus
    if len(cpus) < 2:
        sys.exit("bench: --pin needs at least 2 CPUs")
    half = len(cpus) // 2
    return cpus[:half], cpus[half:]


class CallgrindSluice(Sluice):
    """sluice under valgrind --tool=callgrind, totals into out_file."""

    def __init__(self, config, workdir, out_file):
        self.out_file = out_file
        super().__init__(config, workdir, defaults=False, start=False)

    def _command(self, args):
        cmd = ["valgrind", "--tool=callgrind", "--quiet", "--vgdb=no",
               "--callgrind-out-file=%s" % self.out_file,
               str(self.binary)] + args
        with open(self.binary, "rb") as f:
            if f.read(2) == b"#!":  # libtool wrapper
                return [str(sluicetest._builddir() / "libtool"),
                        "--mode=execute"] + cmd
        return cmd


# ---------------------------------------------------------------- measurements

def smtp_source(tmp, port, sessions, count, size, persistent, timeout,
                msgfile=None):
    """One smtp-source run: seconds taken; fails unless every reply was
    2xx.  Its own message of size bytes, or with msgfile that file's."""
    cmd = [SMTP_SOURCE, "-s", sessions, "-m", count, "-M", HELO,
           "-f", chain.SENDER, "-t", chain.RECIPIENT]
    cmd += ["-F", msgfile] if msgfile else ["-l", size]
    if persistent:
        cmd.append("-d")
    cmd.append("127.0.0.1:%d" % port)
    rc, elapsed = run_bounded(cmd, tmp / "smtp-source.log", timeout)
    if rc != 0:
        raise BenchError("smtp-source exited %d: %s" % (
            rc, tail(tmp / "smtp-source.log")))
    return elapsed


def tail(path, lines=5):
    try:
        return " | ".join(Path(path).read_text(errors="replace")
                          .splitlines()[-lines:])
    except OSError:
        return ""


def throughput_run(ctx, path, count, size, sessions, persistent,
                   msgfile=None):
    """One timed smtp-source run on path (direct, proxied, chain), with
    CPU of sink, sluice and client."""
    pids = {"sink": ctx.sink.pid}
    if path in ctx.sluices:
        pids["sluice"] = ctx.sluices[path].pid
    before = {k: cpu_split(v) for k, v in pids.items()}
    client = children_cpu()
    timeout = 60 + count * size / 5e6 + count / 50
    elapsed = smtp_source(ctx.tmp, ctx.port(path), sessions, count, size,
                          persistent, timeout, msgfile)
    ctx.sent[path] = ctx.sent.get(path, 0) + count
    r = {"seconds": elapsed, "msgs": count / elapsed,
         "mbs": count * size / elapsed / 1e6,
         "client_cpu": children_cpu() - client}
    for k, v in pids.items():
        u, sy = cpu_split(v)
        r[k + "_ucpu"], r[k + "_scpu"] = u - before[k][0], sy - before[k][1]
        r[k + "_cpu"] = r[k + "_ucpu"] + r[k + "_scpu"]
    return r


def read_reply(sock, buf):
    """Read one SMTP reply (no pipelining): its code.  buf carries over."""
    for _ in range(10000):
        end = buf.find(b"\n")
        while end >= 0:
            line = bytes(buf[:end + 1])
            del buf[:end + 1]
            if len(line) >= 4 and line[3:4] != b"-":
                return int(line[:3])
            end = buf.find(b"\n")
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed while waiting for a reply")
        buf += chunk
    raise BenchError("reply too long")


def expect(sock, buf, want):
    code = read_reply(sock, buf)
    if code != want:
        raise BenchError("got %d, wanted %d" % (code, want))


def smtp_open(port):
    """A connection that has had its greeting and EHLO: (socket, buffer)."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    sock.settimeout(10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    expect(sock, buf, 220)
    sock.sendall(b"EHLO " + HELO.encode() + b"\r\n")
    expect(sock, buf, 250)
    return sock, buf


def latency_pair(ports, warmup, count, body):
    """Transactions on two connections at once (direct, proxied), taking
    turns, so both paths see the same machine: two lists of ns."""
    conns = []
    try:
        for port in ports:
            conns.append(smtp_open(port))
        times = ([], [])
        for i in range(warmup + count):
            for k in ((0, 1) if i % 2 else (1, 0)):
                t0 = time.perf_counter_ns()
                one_transaction(*conns[k], body)
                if i >= warmup:
                    times[k].append(time.perf_counter_ns() - t0)
        for sock, buf in conns:
            sock.sendall(b"QUIT\r\n")
            expect(sock, buf, 221)
    finally:
        for sock, _ in conns:
            sock.close()
    return times


def one_transaction(sock, buf, body):
    sock.sendall(b"MAIL FROM:<%s>\r\n" % chain.SENDER.encode())
    expect(sock, buf, 250)
    sock.sendall(b"RCPT TO:<%s>\r\n" % chain.RECIPIENT.encode())
    expect(sock, buf, 250)
    sock.sendall(b"DATA\r\n")
    expect(sock, buf, 354)
    sock.sendall(body)
    expect(sock, buf, 250)


def message_body(size):
    """A message of about size bytes, 80-byte lines, ending CRLF . CRLF."""
    head = b"From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n" % (
        chain.SENDER.encode(), chain.RECIPIENT.encode())
    line = b"X" * 78 + b"\r\n"
    n = max(1, (size - len(head)) // len(line))
    return head + line * n + b".\r\n"


def percentile(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# ---------------------------------------------------------------- rounds

class Context:
    """What every measurement needs: processes, ports, sizes, results."""

    def __init__(self, args, tmp, info):
        self.args, self.tmp, self.info = args, tmp, info
        self.sink = self.sink_port = self.sluice = None
        self.load_cpus, self.sluice_cpus = split_cpus(args.pin)
        self.results = {}  # metric -> {"direct": [...], "proxied": [...]}
        self.noise = None  # CPU share of others and steal, over the rounds
        # Paths measured in each round: smtp-sink directly, through
        # sluice without filters ("proxied", also self.sluice) and
        # through sluice with the chain of chain.py ("chain").
        self.paths = ["direct", "proxied"]
        if not args.no_chain:
            self.paths.append("chain")
        self.sluices = {}  # path -> Sluice
        self.sent = {}     # path -> messages smtp-source sent through it
        self.dns = None    # DnsServer for the chain
        self.chain = {}    # what chain_setup() made and found

    def port(self, path):
        return self.sink_port if path == "direct" else \
            self.sluices[path].port

    def add(self, metric, path, value):
        self.results.setdefault(metric, {}).setdefault(path, []).append(
            value)


def progress(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def both_paths(ctx, fn):
    """fn(port, proxied) direct, then through sluice."""
    fn(ctx.sink_port, False)
    fn(ctx.sluice.port, True)


def round_throughput(ctx, key, count, size, sessions, persistent,
                     paths=None, msgfile=None):
    """One run per path, in the order of ctx.paths (or paths)."""
    for path in paths or ctx.paths:
        r = throughput_run(ctx, path, count, size, sessions, persistent,
                           msgfile)
        ctx.add(key + ".msgs", path, r["msgs"])
        ctx.add(key + ".mbs", path, r["mbs"])
        ctx.add(key + ".sink_cpu", path, r["sink_cpu"] * 1000 / count)
        ctx.add(key + ".client_cpu", path, r["client_cpu"] * 1000 / count)
        if "sluice_cpu" in r:
            for m in ("sluice_cpu", "sluice_ucpu", "sluice_scpu"):
                ctx.add(key + "." + m, path, r[m] * 1000 / count)


def round_latency(ctx):
    """As the scheduler places the processes, then all on one CPU."""
    latency_measure(ctx, "lat")
    with one_cpu(ctx):
        latency_measure(ctx, "lat1")


def latency_measure(ctx, key):
    a = ctx.args

    def source(port, proxied):
        path = "proxied" if proxied else "direct"
        s = smtp_source(ctx.tmp, port, 1, a.transactions, SMALL, True,
                        60 + a.transactions / 100)
        ctx.add(key + ".source", path, s * 1000 / a.transactions)
    pair = latency_pair((ctx.sink_port, ctx.sluice.port), a.warmup,
                        a.transactions, message_body(SMALL))
    for path, t in zip(("direct", "proxied"), pair):
        ctx.add(key + ".median", path, statistics.median(t) / 1e6)
        ctx.add(key + ".p99", path, percentile(t, 0.99) / 1e6)
    both_paths(ctx, source)


class one_cpu:
    """Pin us, smtp-sink and every sluice thread to one CPU for a while.

    On a VM, waking a thread on another (idle) vCPU costs tens of
    microseconds, so loopback latency depends on where the scheduler puts
    each process; on one CPU only the software path is left."""

    def __init__(self, ctx):
        pids = [0, ctx.sink.pid] + [int(t) for t in os.listdir(
            "/proc/%d/task" % ctx.sluice.pid)]
        self.saved = {p: os.sched_getaffinity(p) for p in pids}
        self.cpu = {ctx.load_cpus[0]}

    def __enter__(self):
        for p in self.saved:
            os.sched_setaffinity(p, self.cpu)
        return self

    def __exit__(self, *exc):
        for p, cpus in self.saved.items():
            try:
                os.sched_setaffinity(p, cpus)
            except OSError:
                pass
        return False


def machine_ticks():
    """From /proc/stat: (busy incl. interrupts, steal, all) in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]  # user nice system irq softirq
    steal = v[7] if len(v) > 7 else 0
    return busy / CLK_TCK, steal / CLK_TCK, sum(v[:8]) / CLK_TCK


def our_cpu(ctx):
    """CPU seconds of everything the rounds run: us, children, daemons."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    pids = [ctx.sink.pid] + [s.pid for s in ctx.sluices.values()]
    if ctx.dns is not None:
        pids.append(ctx.dns.pid)
    return me.ru_utime + me.ru_stime + children_cpu() + \
        sum(cpu_seconds(p) for p in pids)


def run_rounds(ctx):
    """All interleaved rounds; notes how busy the machine was otherwise."""
    m0, ours0 = machine_ticks(), our_cpu(ctx)
    try:
        rounds(ctx)
    finally:
        m1, ours1 = machine_ticks(), our_cpu(ctx)
        total = max(1e-9, m1[2] - m0[2])
        ctx.noise = {"other": (m1[0] - m0[0] - (ours1 - ours0)) / total,
                     "steal": (m1[1] - m0[1]) / total}


def rounds(ctx):
    a = ctx.args
    progress("warm-up")
    for path in ctx.paths:
        n = min(500, a.messages)
        smtp_source(ctx.tmp, ctx.port(path), a.sessions, n, SMALL, False, 60)
        ctx.sent[path] = ctx.sent.get(path, 0) + n
    signed = ctx.chain.get("msgfile") if "chain" in ctx.paths else None
    for r in range(a.rounds):
        progress("round %d/%d" % (r + 1, a.rounds))
        round_throughput(ctx, "small", a.messages, SMALL, a.sessions, False)
        round_throughput(ctx, "smallp", a.messages, SMALL, a.sessions, True)
        if signed:
            round_throughput(ctx, "signedp", a.messages,
                             ctx.chain["msgsize"], a.sessions, True,
                             msgfile=signed)
        if a.chain_only:
            continue
        round_throughput(ctx, "large", a.large_messages, LARGE,
                         a.large_sessions, True,
                         paths=("direct", "proxied"))
        round_latency(ctx)


# ---------------------------------------------------------------- memory

def idle_memory(ctx):
    """RSS of a fresh sluice before, with and after N idle sessions."""
    a = ctx.args
    s = start_sluice(ctx.tmp / "sluice-idle", ctx.sink_port,
                     ctx.sluice_cpus, idle=a.idle)
    try:
        count = min(a.idle, fd_limit(s.pid) - 200)
        time.sleep(0.5)
        base_fd, before = fd_count(s.pid), rss_kib(s.pid)
        helper = spawn([sys.executable, IDLE_CLIENTS, "127.0.0.1", s.port,
                        count, "--timeout", 120], ctx.tmp / "idle.log",
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            greeted, failed = helper_ready(helper)
            wait_until(lambda: fd_count(s.pid) >= base_fd + greeted, 10)
            during = stable_rss(s.pid)
            helper.stdin.write(b"close\n")
            helper.stdin.flush()
            read_line(helper, 60)
            closed = wait_until(lambda: fd_count(s.pid) <= base_fd + 5, 30)
            after = stable_rss(s.pid)
        finally:
            stop(helper)
        if greeted == 0:
            raise BenchError("no idle connection got a greeting")
        return {"count": greeted, "failed": failed, "before": before,
                "during": during, "after": after, "closed": bool(closed),
                "per_session": (during - before) / greeted}
    finally:
        stop_sluice(s)


def read_line(p, timeout):
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise BenchError("idle_clients.py said nothing in %d s" % timeout)
    line = p.stdout.readline().decode(errors="replace").strip()
    if not line:
        raise BenchError("idle_clients.py exited (%s)" % p.poll())
    return line


def helper_ready(p):
    line = read_line(p, 150)
    m = re.match(r"^ready (\d+) (\d+)$", line)
    if not m:
        raise BenchError("idle_clients.py: %r" % line)
    return int(m.group(1)), int(m.group(2))


def stable_rss(pid, timeout=5.0):
    """VmRSS once two readings 0.3 s apart agree (or after timeout)."""
    last = rss_kib(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = rss_kib(pid)
        if now == last:
            break
        last = now
    return last


def stop_sluice(s):
    try:
        s.stop(60)
    except AssertionError as e:
        progress("sluice stop: %s" % str(e).splitlines()[0])


# ---------------------------------------------------------------- chain

def chain_setup(ctx):
    """The DNS server, the signed message, a check run at log level debug
    showing that every filter of the chain ran, then the sluice measured
    (log level warning, like the one without filters)."""
    tmp = ctx.tmp / "chain"
    tmp.mkdir()
    reachable(tmp)
    record = None
    try:
        msgfile, record, size = chain.signed_message(tmp, SMALL)
        ctx.chain.update(msgfile=msgfile, msgsize=size)
    except (OSError, subprocess.SubprocessError) as e:
        ctx.chain["unsigned_only"] = str(e)
        progress("chain: no signed messages: %s" % e)
    ctx.dns = DnsServer(tmp / "dns", chain.zone(record))
    progress("chain: check run (log level debug)")
    check_chain(ctx, tmp / "check")
    ctx.sluices["chain"] = start_sluice(tmp / "sluice", ctx.sink_port,
                                        ctx.sluice_cpus, dns=ctx.dns.forwarder)


def check_chain(ctx, work):
    """Two unsigned messages (two connections) and the signed one through
    a chain sluice at debug level; its log must show every filter at work
    on each, or the benchmark would measure a broken chain."""
    s = start_sluice(work, ctx.sink_port, ctx.sluice_cpus,
                     dns=ctx.dns.forwarder, level="debug")
    signed = 0
    try:
        smtp_source(ctx.tmp, s.port, 1, 2, SMALL, False, 60)
        if ctx.chain.get("msgfile"):
            smtp_source(ctx.tmp, s.port, 1, 1, 0, False, 60,
                        ctx.chain["msgfile"])
            signed = 1
    finally:
        stop_sluice(s)
    problems, summary = chain.check_log(s.log(), 2, signed)
    if problems:
        raise BenchError("the chain did not run as it should (log %s): %s"
                         % (s.log_path, "; ".join(problems)))
    ctx.chain["checked"] = summary


def chain_after(ctx):
    """After the rounds: what the measured chain sluice logged (at level
    warning: nothing, normally), how many DNS questions it asked, and
    whether ratelimit counted every message (chain_count_check)."""
    s = ctx.sluices["chain"]
    ctx.chain["log_lines"] = [l for l in s.log().splitlines() if l.strip()]
    ctx.chain["dns_queries"] = len(ctx.dns.queries())
    chain_count_check(ctx, s)


def chain_count_check(ctx, s):
    """The memory store keeps its counts across a reload (and a reload
    does not change the log level, so the count cannot be read from the
    log): reload with limit = messages sent through the chain so far + 1
    and a new banner (seen in the greeting: the reload is done); then one
    more message must pass and the next be refused at MAIL."""
    n = ctx.sent["chain"]
    banner = "ESMTP sluice bench, counted %d" % n
    s.reload(sluice_config(s.workdir, ctx.sink_port, len(ctx.sluice_cpus),
                           dns=ctx.dns.forwarder, port=s.port,
                           limit=n + 1, banner=banner), defaults=False)
    deadline = time.monotonic() + 20
    while greeting(s.port).find(banner.encode()) < 0:
        if time.monotonic() > deadline or not s.running():
            raise BenchError("the chain sluice did not reload (log %s)" %
                             s.log_path)
        time.sleep(0.1)
    sock, buf = smtp_open(s.port)
    try:
        try:
            one_transaction(sock, buf, message_body(SMALL))
        except BenchError as e:
            raise BenchError("ratelimit: message %d with limit %d: %s (it "
                             "counted more messages than were sent?)" % (
                                 n + 1, n + 1, e))
        ctx.sent["chain"] += 1
        sock.sendall(b"MAIL FROM:<%s>\r\n" % chain.SENDER.encode())
        code = read_reply(sock, buf)
    finally:
        sock.close()
    if code != 451:
        raise BenchError("ratelimit: message %d answered %d at MAIL with "
                         "limit %d, wanted 451: it did not count every "
                         "message" % (n + 2, code, n + 1))
    ctx.chain["counted"] = n + 1


def greeting(port):
    """The greeting line of a new connection (b"" when there is none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), 5) as sock:
            sock.settimeout(5)
            line = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
            return line
    except OSError:
        return b""


# ---------------------------------------------------------------- callgrind

def callgrind_totals(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"^(?:totals|summary):\s*(\d+)", line)
            if m:
                return int(m.group(1))
    raise BenchError("no totals in %s" % path)


def callgrind_run(ctx, name, count, persistent, dns=None, msgfile=None):
    """Instructions sluice executes for start + count messages + stop
    (with dns: the chain; with msgfile: that message)."""
    work = ctx.tmp / ("cg-" + name)
    work.mkdir()
    reachable(work)
    out = work / "callgrind.out"
    # valgrind creates the file at start (as root, 0600) but writes it at
    # exit, after sluice dropped privileges: make it writable for nobody.
    out.touch(0o666)
    out.chmod(0o666)
    if os.geteuid() == 0:
        os.chown(out, pwd.getpwnam("nobody").pw_uid, -1)
    s = CallgrindSluice(sluice_config(work, ctx.sink_port, 1, dns=dns),
                        work, out)
    try:
        s.start(ready=None)
        wait_greeting(s.port, 120, s.running)
        if count:
            smtp_source(ctx.tmp, s.port, 1, count, SMALL, persistent,
                        120 + count, msgfile)
        rc = s.stop(120)
    except AssertionError as e:
        raise BenchError("sluice under callgrind: %s" % e)
    finally:
        if s.running():
            stop_sluice(s)
    if rc != 0:
        raise BenchError("sluice under callgrind exited %s: %s" % (
            rc, tail(work / "sluice.log")))
    return callgrind_totals(out)


def callgrind(ctx, errors):
    """{"plain": {...}, "chain": {...}}: instructions per message of the
    config without filters and of the chain, each as far as it got."""
    if not os.access("/usr/bin/valgrind", os.X_OK):
        return None
    configs = []
    if not ctx.args.chain_only:
        configs.append(("plain", None))
    if "chain" in ctx.paths:
        configs.append(("chain", ctx.dns.forwarder))
    res = {}
    for label, dns in configs:
        try:
            res[label] = callgrind_config(ctx, label, dns)
        except (BenchError, OSError) as e:
            errors.append("callgrind %s: %s" % (label, e))
    return res


def callgrind_config(ctx, label, dns):
    """Instructions per message in each mode: a run of W + n messages
    minus a run of the first W alone, divided by n.  The W warm-up
    messages carry what happens once (the first DNS answers through
    dns_server.py and their caching, the pool threads' first jobs,
    libspf2's per-thread server, the first DKIM key), so only the steady
    per-message cost is left; the first W are reported too."""
    n, w = ctx.args.callgrind_messages, CALLGRIND_WARM
    progress("callgrind %s: start/stop only" % label)
    res = {"count": n, "warm": w,
           "zero": callgrind_run(ctx, label + "-zero", 0, True, dns)}
    modes = [("persistent", True, None, "one persistent session")]
    if not ctx.args.quick:
        modes.append(("fresh", False, None, "one connection each"))
    if dns and ctx.chain.get("msgfile"):
        modes.append(("signed", True, ctx.chain["msgfile"],
                      "signed, one persistent session"))
    for key, persistent, msgfile, what in modes:
        progress("callgrind %s: %d + %d messages, %s" % (label, w, n, what))
        warm = callgrind_run(ctx, "%s-%s-warm" % (label, key), w,
                             persistent, dns, msgfile)
        full = callgrind_run(ctx, "%s-%s" % (label, key), w + n,
                             persistent, dns, msgfile)
        res[key] = (full - warm) / n
        res[key + "_first"] = (warm - res["zero"]) / w
    return res


# ---------------------------------------------------------------- report

def med(ctx, metric, path):
    v = ctx.results.get(metric, {}).get(path)
    return statistics.median(v) if v else None


def spread(ctx, metric, path, fmt):
    """'median (min–max)' for a metric over the rounds."""
    v = ctx.results.get(metric, {}).get(path)
    if not v:
        return "–"
    if len(v) == 1:
        return fmt % v[0]
    return (fmt + " (" + fmt + "–" + fmt + ")") % (
        statistics.median(v), min(v), max(v))


def verdict(ok):
    """pass/FAIL; None = nothing was measured."""
    if ok is None:
        return "n/a"
    return "**pass**" if ok else "**FAIL**"


def ratio_row(ctx, label, key, fmt, target):
    d, p = med(ctx, key, "direct"), med(ctx, key, "proxied")
    ok = d is not None and p is not None and d > 0
    ratio = "%.1f %%" % (100 * p / d) if ok else "–"
    if target is None:
        goal, res = "", ""
    else:
        goal = "≥ %d %%" % round(100 * target)
        res = verdict(p / d >= target if ok else None)
    return [label, spread(ctx, key, "direct", fmt),
            spread(ctx, key, "proxied", fmt), ratio, goal, res]


def diff_row(ctx, label, key, target=None):
    d, p = med(ctx, key, "direct"), med(ctx, key, "proxied")
    diff = "%+.3f ms" % (p - d) if d is not None and p is not None else "–"
    goal = res = ""
    if target is not None:
        goal = "≤ %.1f ms" % target
        res = verdict(p - d <= target if d is not None and p is not None
                      else None)
    return [label, spread(ctx, key, "direct", "%.3f"),
            spread(ctx, key, "proxied", "%.3f"), diff, goal, res]


def cpu_rows(ctx, key, what):
    rows = [["%s: sluice CPU s / 1000 msg" % what, "–",
             spread(ctx, key + ".sluice_cpu", "proxied", "%.3f"),
             user_sys(ctx, key), "", ""]]
    for who, name in (("sink", "smtp-sink"), ("client", "smtp-source")):
        rows.append(ratio_row(ctx, "%s: %s CPU s / 1000 msg" % (what, name),
                              "%s.%s_cpu" % (key, who), "%.3f", None))
    return rows


def user_sys(ctx, key):
    u = med(ctx, key + ".sluice_ucpu", "proxied")
    sy = med(ctx, key + ".sluice_scpu", "proxied")
    return "" if u is None else "user %.3f + sys %.3f" % (u, sy)


def metric_rows(ctx):
    a = ctx.args
    small = "4 KiB × %d, %d sessions" % (a.messages, a.sessions)
    rows = [
        ratio_row(ctx, "%s, 1 msg/connection: msg/s" % small, "small.msgs",
                  "%.0f", TARGET_RATIO),
        ratio_row(ctx, "%s, persistent (-d): msg/s" % small, "smallp.msgs",
                  "%.0f", TARGET_RATIO)]
    rows += cpu_rows(ctx, "small", "1 msg/connection")
    rows += cpu_rows(ctx, "smallp", "persistent")
    rows.append(ratio_row(ctx, "1 MiB × %d, %d sessions: MB/s" % (
        a.large_messages, a.large_sessions), "large.mbs", "%.1f", None))
    rows.append(["1 MiB: sluice CPU s / 1000 msg", "–",
                 spread(ctx, "large.sluice_cpu", "proxied", "%.2f"),
                 user_sys(ctx, "large"), "", ""])
    # The target is judged on one CPU: as scheduled, the figure is mostly
    # the cost of waking threads on other (virtual) CPUs; see README.md.
    for key, where, target in (("lat", "as scheduled", None),
                               ("lat1", "all on 1 CPU", TARGET_ADDED_MS)):
        lat = "1 session, %d transactions, %s" % (a.transactions, where)
        rows.append(diff_row(ctx, "%s: median ms" % lat, key + ".median",
                             target))
        rows.append(diff_row(ctx, "%s: p99 ms" % lat, key + ".p99"))
        rows.append(diff_row(ctx, "smtp-source -s 1 -d, %s: ms / msg "
                             "(cross-check)" % where, key + ".source"))
    return rows


def memory_rows(mem):
    if mem is None:
        return []
    note = "" if mem["closed"] else " (sessions still open!)"
    return [
        ["idle sessions: RSS KiB / session (%d greeted, %d failed)" % (
            mem["count"], mem["failed"]), "–", "%.2f" % mem["per_session"],
         "", "≤ %d KiB" % TARGET_IDLE_KIB,
         verdict(mem["per_session"] <= TARGET_IDLE_KIB and
                 mem["failed"] == 0)],
        ["idle sessions: VmRSS KiB before / with / after close" + note, "–",
         "%d / %d / %d" % (mem["before"], mem["during"], mem["after"]),
         "", "", ""]]


CALLGRIND_ROWS = (
    ("persistent", "instructions / msg, %(n)d msgs after %(w)d, "
     "1 persistent session"),
    ("fresh", "instructions / msg, 1 connection each"),
    ("signed", "instructions / msg, DKIM-signed, 1 persistent session"),
    ("persistent_first", "instructions / msg of the first %(w)d "
     "(subtracted), 1 persistent session"),
    ("zero", "start-up + stop"))


def callgrind_rows(cg, skipped):
    if not cg:
        why = "skipped" if skipped else "failed or no valgrind"
        return [["callgrind instructions / message", "–", why, "", "", ""]]
    names = {"n": cg["count"], "w": cg["warm"]}
    return [["callgrind: " + what % names, "–", "{:,.0f}".format(cg[k]), "",
             "", ""] for k, what in CALLGRIND_ROWS if k in cg]


def chain_ratio_row(ctx, label, key, fmt, target):
    """direct, sluice, sluice+chain; chain ÷ direct (against target) and
    chain ÷ sluice."""
    d, p, c = (med(ctx, key, path) for path in ("direct", "proxied",
                                                 "chain"))
    of_direct = "%.1f %%" % (100 * c / d) if c and d else "–"
    of_plain = "%.1f %%" % (100 * c / p) if c and p else "–"
    goal = res = ""
    if target is not None:
        goal = "≥ %d %%" % round(100 * target)
        res = verdict(c / d >= target if c and d else None)
    return [label] + [spread(ctx, key, path, fmt) for path in (
        "direct", "proxied", "chain")] + [of_direct, of_plain, goal, res]


def chain_cpu_rows(ctx, key, what):
    """Sluice CPU (and what the chain adds), then sink and client CPU."""
    p = med(ctx, key + ".sluice_cpu", "proxied")
    c = med(ctx, key + ".sluice_cpu", "chain")
    u = med(ctx, key + ".sluice_ucpu", "chain")
    sy = med(ctx, key + ".sluice_scpu", "chain")
    added = ""
    if p and c:
        added = "+%.3f s (× %.2f)" % (c - p, c / p)
    split = "" if u is None else "chain: user %.3f + sys %.3f" % (u, sy)
    rows = [["%s: sluice CPU s / 1000 msg" % what, "–",
             spread(ctx, key + ".sluice_cpu", "proxied", "%.3f"),
             spread(ctx, key + ".sluice_cpu", "chain", "%.3f"), split, added,
             "", ""]]
    for who, name in (("sink", "smtp-sink"), ("client", "smtp-source")):
        rows.append(chain_ratio_row(ctx, "%s: %s CPU s / 1000 msg" % (
            what, name), "%s.%s_cpu" % (key, who), "%.3f", None))
    return rows


def chain_callgrind_rows(cg, skipped):
    plain, ch = (cg or {}).get("plain") or {}, (cg or {}).get("chain")
    if not ch:
        why = "skipped" if skipped else "failed or no valgrind"
        return [["callgrind instructions / message", "–", "–", why, "", "",
                 "", ""]]
    names = {"n": ch["count"], "w": ch["warm"]}
    rows = []
    for k, what in CALLGRIND_ROWS:
        if k not in ch:
            continue
        # The signed message costs sluice without filters what any other
        # 4 KiB message does.
        p = plain.get("persistent" if k == "signed" else k)
        added = "+{:,.0f} (× {:.2f})".format(ch[k] - p, ch[k] / p) if p \
            else ""
        rows.append(["callgrind: " + what % names, "–",
                     "{:,.0f}".format(p) if p else "–",
                     "{:,.0f}".format(ch[k]), "", added, "", ""])
    return rows


def chain_rows(ctx):
    a = ctx.args
    small = "4 KiB × %d, %d sessions" % (a.messages, a.sessions)
    rows = [
        chain_ratio_row(ctx, "%s, 1 msg/connection: msg/s" % small,
                        "small.msgs", "%.0f", TARGET_CHAIN),
        chain_ratio_row(ctx, "%s, persistent (-d): msg/s" % small,
                        "smallp.msgs", "%.0f", TARGET_CHAIN)]
    signed = "4 KiB DKIM-signed (rsa-sha256, 2048 bits) × %d, %d " \
        "sessions, persistent (-d)" % (a.messages, a.sessions)
    if ctx.chain.get("msgfile"):
        rows.append(chain_ratio_row(ctx, "%s: msg/s" % signed,
                                    "signedp.msgs", "%.0f", None))
    rows += chain_cpu_rows(ctx, "small", "1 msg/connection")
    rows += chain_cpu_rows(ctx, "smallp", "persistent")
    if ctx.chain.get("msgfile"):
        rows += chain_cpu_rows(ctx, "signedp", "signed, persistent")
    return rows


def chain_head(ctx):
    c = ctx.chain
    head = [["chain", "relay (local domain %s), ratelimit (messages per "
             "IP, memory store, limit 10^12 per %s), spf (skip_networks = "
             "{}; MAIL FROM %s and HELO %s: %s), dkim (verify)" % (
                 chain.RECIPIENT.split("@")[1], chain.RATE_WINDOW,
                 chain.SENDER, chain.HELO, chain.SPF_RECORD)],
            ["check run (log level debug)", c.get("checked", "–")]]
    if "unsigned_only" in c:
        head.append(["signed messages", "left out: %s" % c["unsigned_only"]])
    if "counted" in c:
        head.append(["ratelimit after the rounds", "reloaded with limit = "
                     "%d (the messages sent through the chain + 1): "
                     "message %d passed, %d got 451 at MAIL, so every "
                     "message was counted" % (c["counted"], c["counted"],
                                              c["counted"] + 1)])
    if "dns_queries" in c:
        head.append(["DNS", "dns_server.py, TTL %d s: %d questions during "
                     "the whole run (answers are cached per worker)" % (
                         chain.DNS_TTL, c["dns_queries"])])
    if c.get("log_lines"):
        head.append(["chain sluice log (level warning)",
                     "%d lines, first: %s" % (len(c["log_lines"]),
                                              c["log_lines"][0][:200])])
    return head


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def noise_note(n):
    if n is None:
        return "?"
    return "%.1f %% of the machine (other processes, interrupts), " \
        "steal %.1f %%" % (max(0.0, 100 * n["other"]), 100 * n["steal"])


def cpu_note(ctx):
    w = "sluice workers = %d" % len(ctx.sluice_cpus)
    if not ctx.args.pin:
        return "not pinned: everything shares all CPUs; " + w
    return "pinned: smtp-source, smtp-sink, Python client on CPUs %s, " \
        "sluice on CPUs %s; %s" % (ctx.load_cpus, ctx.sluice_cpus, w)


def report(ctx, mem, cg, errors):
    i, a = ctx.info, ctx.args
    head = [
        ["date", i["date"]],
        ["machine", "%s, %d CPUs, Linux %s" % (i["cpu"], i["ncpu"],
                                               i["kernel"])],
        ["load average at start", "%.2f" % i["load"][0]],
        ["CPU not ours during the rounds", noise_note(ctx.noise)],
        ["sluice", i["version"]],
        ["run", "%d rounds, %s interleaved; medians, (min–max) over "
         "rounds%s%s" % (a.rounds, ", ".join(ctx.paths),
                         ", --quick" if a.quick else "",
                         ", --chain-only" if a.chain_only else "")],
        ["CPUs", cpu_note(ctx)]]
    text = ["# sluice benchmark", "", table(["", ""], head)]
    if not a.chain_only:
        text += ["", table(["metric", "direct", "through sluice",
                            "ratio / difference", "target", "result"],
                           metric_rows(ctx) + memory_rows(mem) +
                           callgrind_rows((cg or {}).get("plain"),
                                          a.no_callgrind))]
    if "chain" in ctx.paths:
        text += ["", "## sluice+chain", "", table(["", ""], chain_head(ctx)),
                 "", table(["metric", "direct", "sluice", "sluice+chain",
                            "chain ÷ direct", "chain ÷ sluice", "target",
                            "result"],
                           chain_rows(ctx) +
                           chain_callgrind_rows(cg, a.no_callgrind))]
    n = ctx.noise
    if n and (n["other"] > 0.1 or n["steal"] > 0.05):
        text += ["", "Note: other work used the machine during the rounds; "
                 "throughput and latency rows are suspect (instruction "
                 "counts and memory are not)."]
    if errors:
        text += ["", "Errors (the run is incomplete):", ""]
        text += ["- " + e for e in errors]
    return "\n".join(text) + "\n"


# ---------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Benchmark sluice against a direct smtp-source -> "
        "smtp-sink path; print a Markdown table.")
    ap.add_argument("--quick", action="store_true",
                    help="small run for smoke testing (< 1 minute)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (5)")
    ap.add_argument("--messages", type=int,
                    help="4 KiB messages per throughput run (20000)")
    ap.add_argument("--sluice", type=Path, help="the daemon binary")
    ap.add_argument("--out", type=Path, help="also write the table here")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="skip the callgrind instruction counts")
    ap.add_argument("--pin", action="store_true",
                    help="sluice on the second half of the CPUs, clients and "
                    "smtp-sink on the first half")
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--no-chain", action="store_true",
                      help="leave out sluice+chain (relay, ratelimit, spf, "
                      "dkim)")
    only.add_argument("--chain-only", action="store_true",
                      help="only the small-message rounds (direct, sluice, "
                      "sluice+chain) and the chain's callgrind counts")
    a = ap.parse_args(argv)
    full = {"rounds": 5, "messages": 20000, "sessions": 20,
            "large_messages": 200, "large_sessions": 4, "warmup": 200,
            "transactions": 2000, "idle": 10000, "callgrind_messages": 500}
    quick = {"rounds": 2, "messages": 2000, "large_messages": 20,
             "transactions": 300, "warmup": 50, "idle": 2000,
             "callgrind_messages": 100}
    for k, v in full.items():
        if getattr(a, k, None) is None:
            setattr(a, k, quick.get(k, v) if a.quick else v)
    if a.rounds < 1 or a.messages < 1:
        ap.error("--rounds and --messages must be positive")
    if a.sluice:
        os.environ["SLUICE_BIN"] = str(a.sluice.resolve())
    return a


def check_programs(binary):
    for prog in (SMTP_SOURCE, SMTP_SINK, binary):
        if not os.access(prog, os.X_OK):
            sys.exit("bench: %s is missing (build sluice, or install "
                     "postfix for smtp-source/smtp-sink)" % prog)


def run(ctx):
    """All measurements; returns (memory, callgrind, errors)."""
    try:
        return run_all(ctx)
    finally:
        for s in ctx.sluices.values():
            if s.running():
                stop_sluice(s)
        if ctx.dns is not None and ctx.dns.running():
            ctx.dns.stop(10)


def run_all(ctx):
    errors, mem, cg = [], None, None
    ctx.sink, ctx.sink_port = start_sink(ctx.tmp)
    ctx.sluice = start_sluice(ctx.tmp / "sluice", ctx.sink_port,
                              ctx.sluice_cpus)
    ctx.sluices["proxied"] = ctx.sluice
    if "chain" in ctx.paths:
        try:
            chain_setup(ctx)
        except (BenchError, OSError, AssertionError,
                sluicetest.HardError) as e:
            errors.append("chain set-up: %s" % e)
            ctx.paths.remove("chain")
    try:
        run_rounds(ctx)
    except (BenchError, OSError, AssertionError) as e:
        errors.append("rounds: %s" % e)
    else:
        if "chain" in ctx.paths:
            try:
                chain_after(ctx)
            except (BenchError, OSError, AssertionError) as e:
                errors.append("chain after the rounds: %s" % e)
    finally:
        for s in ctx.sluices.values():
            stop_sluice(s)
    if not ctx.args.chain_only:
        progress("memory")
        try:
            mem = idle_memory(ctx)
        except (BenchError, OSError) as e:
            errors.append("memory: %s" % e)
    if not ctx.args.no_callgrind:
        progress("callgrind")
        cg = callgrind(ctx, errors)
    return mem, cg, errors


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    binary = sluicetest.sluice_binary()
    check_programs(binary)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(stop_all)
    info = machine_info(binary)
    with TempDir(prefix="sluice-bench-") as tmp:
        reachable(tmp)
        ctx = Context(args, tmp, info)
        os.sched_setaffinity(0, ctx.load_cpus)  # inherited by children
        try:
            mem, cg, errors = run(ctx)
        finally:
            stop_all()
        text = report(ctx, mem, cg, errors)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
