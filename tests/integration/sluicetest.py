#!/usr/bin/python3
"""sluicetest - drive the real sluice daemon between real peers on loopback.

Used by the integration test scripts in this directory (run by automake:
exit 0 = pass, 77 = skip, 99 = hard error, anything else = fail).  It
starts processes, never threads that could outlive a test, and stops every
process it started, by PID, also when a test fails.

    from sluicetest import *

    def test_relay(tmp):
        with Capture(tmp / "cap") as cap, \\
             Sluice(basic_config(cap.address), tmp) as s:
            with smtp_client(s.port) as c:
                c.sendmail("a@example.org", ["b@example.net"], b"x\\r\\n")
            assert cap.wait_messages(1)[0].data == b"x\\r\\n"

    run_tests(globals())

The scripts share their conventions through this module rather than
copies: standard_config() (hostname HOSTNAME, workers = 2), relay() (a
Capture and a Sluice in front of it), and hello(), ask(), transaction()
and read_all_replies() for the dialogue.  As root, Sluice runs the daemon
as DAEMON_USER and lets it reach its directories (reachable(),
give_to_daemon() for others).

See README.md in this directory for the whole story.
"""

import atexit
import base64
import collections
import contextlib
import email
import email.policy
import fcntl
import importlib.util
import inspect
import json
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

__all__ = [
    "Skip", "HardError", "ReplyTimeout", "ConnectionClosed", "ProtocolError",
    "skip", "need_program", "scaled", "timeout_factor", "wait_for",
    "free_port", "TempDir", "Capture", "Message", "Connection", "SmtpSink", "DnsServer",
    "Raw", "Titled", "make_config", "submit", "quote", "basic_config", "Sluice",
    "check_config", "sluice_binary", "smtp_client", "RawClient", "Reply",
    "swaks", "raw", "run_tests", "HERE", "PYTHON",
    # the conventions the test scripts share
    "HOSTNAME", "DAEMON_USER", "standard_globals", "standard_config",
    "reachable", "give_to_daemon", "relay", "ask", "hello", "transaction",
    "read_all_replies",
]

PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent
CAPTURE_SERVER = HERE / "capture_server.py"
DNS_SERVER = HERE / "dns_server.py"
SMTP_SINK = "/usr/sbin/smtp-sink"
SWAKS = "/usr/bin/swaks"
DEFAULT_TIMEOUT = 10.0
HOSTNAME = "mx.test"    # standard_globals(): the daemon's name in replies
DAEMON_USER = "nobody"  # what Sluice runs the daemon as when we are root


# ---------------------------------------------------------------- errors

class Skip(Exception):
    """Raise (or call skip()) to skip the current test."""


class HardError(Exception):
    """The harness itself cannot work (missing binary, ...): exit 99."""


class ReplyTimeout(AssertionError):
    """A peer did not answer in time."""


class ConnectionClosed(AssertionError):
    """The peer closed the connection while a reply was expected."""


class ProtocolError(AssertionError):
    """The peer sent something that is not a valid SMTP reply."""


def skip(reason):
    raise Skip(reason)


def need_program(path):
    """Skip the test unless the program exists and is executable."""
    if not os.access(path, os.X_OK):
        raise Skip("%s is not installed" % path)
    return path


# ---------------------------------------------------------------- time

def timeout_factor():
    """SLUICE_TIMEOUT_FACTOR, else 10 under valgrind, else 1."""
    value = os.environ.get("SLUICE_TIMEOUT_FACTOR")
    if value:
        return float(value)
    return 10.0 if _valgrind_enabled() else 1.0


def scaled(seconds):
    """A timeout scaled for slow runs (valgrind)."""
    return seconds * timeout_factor()


def _default(timeout, base=DEFAULT_TIMEOUT):
    """Explicit timeouts are used as given; defaults are scaled."""
    return scaled(base) if timeout is None else timeout


def wait_for(predicate, timeout=None, interval=0.02, what="condition"):
    """Poll predicate() until it returns a true value, which is returned."""
    deadline = time.monotonic() + _default(timeout)
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def raw(s):
    """The exact bytes behind a string from a capture record."""
    return s.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- processes

_services = []  # live Service objects, oldest first


try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _pdeathsig():
    """In the child: die with the test script even if it is SIGKILLed.

    (A setuid program such as smtp-sink loses this; see SmtpSink.)"""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Service:
    """A child process we started and must stop by its PID."""

    name = "service"
    proc = None

    def _spawn(self, cmd, log_path, cwd=None, env=None):
        self.log_path = Path(log_path)
        self._logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(c) for c in cmd], stdin=subprocess.DEVNULL,
                stdout=self._logf, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, preexec_fn=_pdeathsig)
        except OSError as e:
            self._logf.close()
            raise HardError("cannot run %s: %s" % (cmd[0], e))
        _services.append(self)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _terminate(self, timeout, sig=signal.SIGTERM):
        """Signal, wait, SIGKILL if needed; return (exit code, timed out)."""
        timed_out = False
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.proc.kill()
                self.proc.wait()
        self._forget()
        return self.proc.returncode, timed_out

    def _forget(self):
        if self in _services:
            _services.remove(self)
        if not self._logf.closed:
            self._logf.close()

    def log(self):
        """The process's output so far (text)."""
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def diagnostics(self):
        """What to print when a test using this service fails."""
        state = "running" if self.running() else \
            "exited with %s" % (self.proc.returncode if self.proc else "?")
        return "%s pid %s %s; last output (%s):\n%s" % (
            self.name, self.pid, state, self.log_path, self.log_tail())

    def stop(self, timeout=None):
        rc, _ = self._terminate(_default(timeout))
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.running():
            self.stop()
        elif self.proc is not None:
            self._forget()
        return False


def _stop_all_services():
    for s in list(reversed(_services)):
        try:
            s._terminate(5)
        except Exception:
            pass


atexit.register(_stop_all_services)


# ---------------------------------------------------------------- ports, dirs

_port_locks = []  # lock fds held for the life of this process
_port_rng = random.SystemRandom()


def _port_range():
    """Ports to pick from: below the kernel's ephemeral range, so that no
    outgoing connection (ours, sluice's) can be handed the same port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, _ = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    if low < 12000:
        return None
    return 10000, low - 1


def _port_lock(port):
    lockdir = Path(tempfile.gettempdir()) / "sluicetest-ports"
    try:
        lockdir.mkdir(exist_ok=True)
        if lockdir.stat().st_uid == os.geteuid():
            lockdir.chmod(0o1777)  # shared by every user's test runs
    except OSError:
        return None
    try:
        fd = os.open(lockdir / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _bindable(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(host="127.0.0.1"):
    """A TCP port free on host, reserved for this process.

    Parallel test scripts coordinate through lock files in
    $TMPDIR/sluicetest-ports, so two scripts never pick the same port,
    and the port comes from below the ephemeral range, so it cannot be
    taken by an outgoing connection between now and the bind.  Falls back
    to binding port 0 if the ephemeral range is unknown.
    """
    span = _port_range()
    if span is not None:
        for _ in range(500):
            port = _port_rng.randint(*span)
            fd = _port_lock(port)
            if fd is None:
                continue
            if _bindable(host, port):
                _port_locks.append(fd)
                return port
            os.close(fd)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _keep():
    return os.environ.get("SLUICE_TEST_KEEP") == "1"


class TempDir:
    """A fresh directory under $TMPDIR (or /tmp), removed on exit unless
    SLUICE_TEST_KEEP=1.  `with TempDir() as path:` gives a pathlib.Path."""

    def __init__(self, prefix="sluicetest-"):
        base = os.environ.get("TMPDIR") or "/tmp"
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def cleanup(self):
        if not _keep():
            shutil.rmtree(self.path, ignore_errors=True)


def _atomic_write(path, data):
    path = Path(path)
    tmp = path.with_name(".tmp-%d-%s" % (os.getpid(), path.name))
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- capture

def _load_capture_module():
    spec = importlib.util.spec_from_file_location("capture_server",
                                                  CAPTURE_SERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_capture_module = None


def validate_script(script):
    """Raise ValueError if script is not a valid capture_server script."""
    global _capture_module
    if _capture_module is None:
        _capture_module = _load_capture_module()
    _capture_module.validate_script(script)


def _format_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


class Message:
    """One message as capture_server recorded it.

    data is the exact wire bytes between the 354 and the final CRLF "."
    CRLF (still dot-stuffed, including the CRLF before the dot).  Strings
    taken from the wire (mail, rcpt lines...) give their exact bytes back
    through raw().
    """

    def __init__(self, rec):
        self.rec = rec
        self.data = base64.b64decode(rec["data_b64"])
        self.serial = rec["serial"]
        self.connection = rec["connection"]
        self.transaction = rec["transaction"]
        self.lmtp = rec["lmtp"]
        self.helo = rec["helo"]
        self.xclient = rec["xclient"]
        self.xforward = rec["xforward"]
        self.mail = rec["mail"]
        self.mail_from = rec["mail_from"]
        self.mail_params = rec["mail_params"]
        self.rcpt_records = rec["rcpts"]
        self.rcpt_lines = [r["line"] for r in rec["rcpts"]]
        self.rcpts = [r["address"] for r in rec["rcpts"] if r["accepted"]]
        self.reply = rec["reply"]
        self.complete = rec["complete"]
        self.truncated = rec["truncated"]
        self.size = rec["size"]
        self.time = rec["time"]

    @property
    def accepted(self):
        """True if the (every, for LMTP) end-of-data reply was 2xx."""
        replies = self.reply if isinstance(self.reply, list) else [self.reply]
        return bool(replies) and all(r is not None and r.startswith("2")
                                     for r in replies)

    def unstuffed(self):
        """The message with dot-stuffing removed (CRLF kept)."""
        lines = self.data.split(b"\r\n")
        return b"\r\n".join(l[1:] if l.startswith(b".") else l
                            for l in lines)

    def parsed(self):
        """An email.message.EmailMessage of the unstuffed bytes."""
        return email.message_from_bytes(self.unstuffed(),
                                        policy=email.policy.default)

    def header_block(self):
        """The raw header section (up to and including the empty line)."""
        data = self.unstuffed()
        end = data.find(b"\r\n\r\n")
        return data if end < 0 else data[:end + 4]

    def __repr__(self):
        return "<Message %d conn=%d from=%r rcpts=%r size=%d reply=%r>" % (
            self.serial, self.connection, self.mail_from, self.rcpts,
            self.size, self.reply)


class Connection:
    """One connection as capture_server recorded it."""

    def __init__(self, rec):
        self.rec = rec
        self.id = rec["id"]
        self.peer = rec["peer"]
        self.open = rec["open"]
        self.close_reason = rec["close_reason"]
        self.error = rec["error"]
        self.script_error = rec["script_error"]
        self.transcript = base64.b64decode(rec["transcript_b64"])
        self.sent = base64.b64decode(rec["sent_b64"])
        self.commands = rec["commands"]
        self.helo = rec["helo"]
        self.xclient = rec["xclient"]
        self.xforward = rec["xforward"]
        self.messages = rec["messages"]
        self.events = rec["events"]

    def verbs(self):
        """The command verbs received, upper-cased, in order."""
        return [c.split(" ", 1)[0].upper() for c in self.commands]

    def __repr__(self):
        return "<Connection %d peer=%s %s verbs=%s>" % (
            self.id, self.peer,
            "open" if self.open else "closed(%s)" % self.close_reason,
            " ".join(self.verbs()))


class Capture(Service):
    """capture_server.py as a child process: a backend that records all.

    dir holds script.json, ready.json, capture.log and out/ (the records).
    address is what a sluice backend's `servers` wants.
    """

    name = "capture_server"

    def __init__(self, dir, lmtp=False, script=None, unix=False,
                 host="127.0.0.1", port=0, max_bytes=None):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.outdir = self.dir / "out"
        self.script_path = self.dir / "script.json"
        self.ready_path = self.dir / "ready.json"
        self.lmtp = lmtp
        self.set_script(script or {})
        if unix:
            listen = "unix:%s" % (self.dir / "capture.sock")
            if len(listen) - 5 > 100:
                raise HardError("unix socket path too long: %s" % listen)
        else:
            listen = _format_hostport(host, port)
        cmd = [PYTHON, CAPTURE_SERVER, "--listen", listen,
               "--dir", self.outdir, "--script", self.script_path,
               "--ready-file", self.ready_path]
        if lmtp:
            cmd.append("--lmtp")
        if max_bytes is not None:
            cmd += ["--max-bytes", str(max_bytes)]
        if self.ready_path.exists():
            self.ready_path.unlink()
        self._spawn(cmd, self.dir / "capture.log")
        try:
            self._wait_ready()
        except BaseException:
            self._terminate(5)
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + scaled(DEFAULT_TIMEOUT)
        while not self.ready_path.exists():
            if self.proc.poll() is not None:
                raise HardError("capture_server exited with %d:\n%s" % (
                    self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise HardError("capture_server not ready:\n%s" %
                                self.log_tail())
            time.sleep(0.01)
        info = json.loads(self.ready_path.read_text())
        self.address = info["address"]
        self.host = info.get("host")
        self.port = info.get("port")
        self.path = info.get("path")

    def set_script(self, script):
        """Validate and atomically replace the script (see README.md).

        It applies from the next connection or MAIL command on."""
        validate_script(script)
        _atomic_write(self.script_path,
                      json.dumps(script, indent=1).encode("utf-8"))

    def _records(self, pattern):
        out = []
        if not self.outdir.is_dir():
            return out
        for p in self.outdir.glob(pattern):
            try:
                out.append(json.loads(p.read_bytes()))
            except (OSError, ValueError):
                pass  # replaced under us; the next poll sees it
        return out

    def messages(self, include_incomplete=False):
        """Messages in the order their final dot arrived."""
        msgs = [Message(r) for r in self._records("msg-*.json")]
        msgs.sort(key=lambda m: m.serial)
        return [m for m in msgs if include_incomplete or m.complete]

    def connections(self):
        conns = [Connection(r) for r in self._records("conn-*.json")]
        conns.sort(key=lambda c: c.id)
        return conns

    def commands(self):
        """Every command line received, connection after connection.

        A connection's record is rewritten before each batch of replies
        leaves, so a command whose reply the test has seen is here."""
        return [cmd for conn in self.connections() for cmd in conn.commands]

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("capture_server died (%d):\n%s" % (
                self.proc.returncode, self.log_tail()))

    def wait_messages(self, n, timeout=None, include_incomplete=False):
        """Wait until at least n messages are recorded; return them all."""
        deadline = time.monotonic() + _default(timeout)
        while True:
            msgs = self.messages(include_incomplete)
            if len(msgs) >= n:
                return msgs
            self._check_alive()
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "expected %d message(s) at the backend, got %d; "
                    "connections: %s" % (n, len(msgs), self.connections()))
            time.sleep(0.02)

    def wait_connections(self, n, closed=False, timeout=None):
        """Wait for at least n connections (closed ones if closed=True)."""
        def enough():
            conns = self.connections()
            if closed:
                conns = [c for c in conns if not c.open]
            return conns if len(conns) >= n else None
        self._check_alive()
        return wait_for(enough, timeout,
                        what="%d %sconnection(s) at capture_server" % (
                            n, "closed " if closed else ""))

    def diagnostics(self):
        text = super().diagnostics()
        try:
            conns = self.connections()
        except Exception:
            conns = []
        if conns:
            text += "\nconnections:\n" + "\n".join(repr(c) for c in conns)
        return text


# ---------------------------------------------------------------- nobody

def _make_traversable(path):
    """Let 'nobody' reach path: add o+x on our own 0700 parents (mkdtemp).

    Only directories owned by us below the temporary directory are touched.
    """
    top = Path(tempfile.gettempdir()).resolve()
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        if d == top or top not in d.parents:
            break
        st = d.stat()
        if st.st_uid == os.geteuid() and not st.st_mode & stat.S_IXOTH:
            d.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def reachable(path):
    """As root, let DAEMON_USER get to path: o+x on path and on each of
    its parents below $TMPDIR that we own (mkdtemp makes them 0700).
    A part of path that does not exist yet is skipped.  Not root: nothing
    to do (the daemon runs as us).  Returns path.

    Sluice does this for its workdir and spool; call it for any other
    place the daemon must reach, such as a maildir's parent."""
    if os.geteuid() == 0:
        p = Path(path).resolve()
        while not p.exists() and p != p.parent:
            p = p.parent
        _make_traversable(p)
    return path


def give_to_daemon(path):
    """Create the directory path (and its parents), and as root give it to
    DAEMON_USER, for a daemon that writes there (a maildir's parent).
    Returns path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(DAEMON_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


# ---------------------------------------------------------------- smtp-sink

class DnsServer(Service):
    """dns_server.py on a free loopback port (UDP and TCP) serving the
    zone given as a dict (see dns_server.py); set_zone() changes it while
    it runs.  forwarder is what a sluice resolver's forwarders want."""

    name = "dns_server"

    def __init__(self, dir, zone=None):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.zone_path = self.dir / "zone.json"
        self.query_log = self.dir / "queries.log"
        self.set_zone(zone or {"records": []})
        ready = self.dir / "ready"
        for _ in range(5):
            self.port = free_port()
            if ready.exists():
                ready.unlink()
            self._spawn([PYTHON, DNS_SERVER, "--port", self.port,
                         "--zone", self.zone_path, "--log", self.query_log,
                         "--ready-file", ready], self.dir / "dns.log")
            deadline = time.monotonic() + scaled(DEFAULT_TIMEOUT)
            while not ready.exists() and self.proc.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            if ready.exists():
                break
            self._terminate(5)      # port taken for UDP: try another
        else:
            raise HardError("dns_server did not start:\n%s" % self.log_tail())
        self.forwarder = "127.0.0.1@%d" % self.port

    def set_zone(self, zone):
        _atomic_write(self.zone_path, json.dumps(zone).encode())

    def queries(self):
        """[(name, type)] asked so far, in order."""
        try:
            lines = self.query_log.read_text().splitlines()
        except OSError:
            return []
        return [tuple(l.split(" ", 1)) for l in lines if " " in l]


class SmtpSink(Service):
    """Postfix's smtp-sink on a free loopback port, dumping every message
    into dir/dump; count() reads its -c counters."""

    name = "smtp-sink"

    def __init__(self, dir, lmtp=False, port=None, host="127.0.0.1",
                 args=()):
        need_program(SMTP_SINK)
        self.dir = Path(dir)
        self.dump = self.dir / "dump"
        self.dump.mkdir(parents=True, exist_ok=True)
        self.counter_path = self.dir / "smtp-sink.out"
        self.host = host
        self.port = port or free_port(host)
        self.address = _format_hostport(host, self.port)
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            # smtp-sink refuses to run as root; 'nobody' must reach the dump
            self.dump.chmod(0o777)
            _make_traversable(self.dump)
            cmd += ["-u", "nobody"]
        cmd += ["-c", "-d", "%s/%%Y%%m%%d%%H/%%M." % self.dump]
        if lmtp:
            cmd.append("-L")
        cmd += list(args) + [self.address, "1000"]
        self._counter_f = open(self.counter_path, "wb")
        self.log_path = self.dir / "smtp-sink.log"
        self._logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=self._counter_f,
                stderr=self._logf, preexec_fn=_pdeathsig)
        except OSError as e:
            raise HardError("cannot run %s: %s" % (SMTP_SINK, e))
        finally:
            self._counter_f.close()
        _services.append(self)
        try:
            _wait_greeting(self, [(host, self.port)], scaled(DEFAULT_TIMEOUT),
                           HardError)
        except BaseException:
            self._terminate(5)
            raise

    def counters(self):
        """The last -c counter line as a dict: sess, quit, mesg."""
        try:
            text = self.counter_path.read_text(errors="replace")
        except OSError:
            return {}
        lines = [l for l in re.split(r"[\r\n]+", text) if "mesg=" in l]
        if not lines:
            return {"sess": 0, "quit": 0, "mesg": 0}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}

    def count(self):
        """Messages received (final dot seen) so far."""
        return self.counters().get("mesg", 0)

    def wait_count(self, n, timeout=None):
        return wait_for(lambda: self.count() >= n and self.count(), timeout,
                        what="%d message(s) at smtp-sink" % n)

    def messages(self):
        """Contents of the non-empty dump files, oldest first."""
        files = [p for p in self.dump.rglob("*") if p.is_file()]
        files = [p for p in files if p.stat().st_size > 0]
        files.sort(key=lambda p: p.stat().st_mtime_ns)
        return [p.read_bytes() for p in files]


# ---------------------------------------------------------------- config

class Raw(str):
    """A config value written as is, without quotes (e.g. Raw("30s"))."""


class Titled(dict):
    """Titled sections: key = Titled({"a": {...}}) -> key "a" { ... }."""


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def quote(value):
    """A libconfuse double-quoted string for value.

    Backslash, double quote and "$" (which would start a ${VAR}
    substitution) are escaped; control characters become \\xHH.  NUL
    cannot be represented and is refused.
    """
    out = ['"']
    for ch in str(value):
        if ch == "\0":
            raise ValueError("NUL cannot appear in a libconfuse string")
        if ch in '\\"$':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _scalar(value):
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return quote(str(value))
    raise TypeError("cannot render %r in a config" % (value,))


def _render_options(options, indent):
    lines = []
    pad = "\t" * indent
    for key, value in options.items():
        if value is None:
            continue
        if key == "include":
            for f in (value if isinstance(value, (list, tuple)) else [value]):
                lines.append("%sinclude(%s)" % (pad, quote(str(f))))
            continue
        if not _IDENT.match(key):
            raise ValueError("bad option name %r" % key)
        if isinstance(value, Titled):
            for title, body in value.items():
                lines += _render_section(key, title, body, indent)
        elif isinstance(value, dict):
            lines += _render_section(key, None, value, indent)
        elif isinstance(value, (list, tuple)):
            lines.append("%s%s = { %s }" % (
                pad, key, ", ".join(_scalar(v) for v in value)))
        else:
            lines.append("%s%s = %s" % (pad, key, _scalar(value)))
    return lines


def _render_section(keyword, title, body, indent):
    pad = "\t" * indent
    head = keyword if title is None else "%s %s" % (keyword, quote(title))
    return ["%s%s {" % (pad, head)] + _render_options(body, indent + 1) + \
        ["%s}" % pad]


def make_config(listeners=None, backends=None, filters=None, globals=None):
    """Render the libconfuse syntax of config-spec.md from dicts.

    globals:   {"hostname": "mx.test", "log": {...}, "limits": {...},
                "load": [...], "include": ["x.conf"]}
    listeners: {"mx": {"listen": ["127.0.0.1:2525"], "backend": "b", ...}}
    backends:  {"b": {"type": "smtp", "servers": ["127.0.0.1:10025"]}}
    filters:   {"block": {"module": "access", "timeout": "5s", ...}}
               (or a list of (module, instance, {options}) tuples)
    Values: str -> quoted, bool -> true/false, int -> as is, list -> {..},
    dict -> subsection, Raw -> verbatim, None -> left out.
    """
    lines = _render_options(dict(globals or {}), 0)
    for title, body in (listeners or {}).items():
        lines += [""] + _render_section("listener", title, body, 0)
    for title, body in (backends or {}).items():
        lines += [""] + _render_section("backend", title, body, 0)
    if isinstance(filters, dict):
        items = []
        for instance, body in filters.items():
            body = dict(body)
            module = body.pop("module", None)
            if not module:
                raise ValueError("filter %r needs a module" % instance)
            items.append((module, instance, body))
    else:
        items = list(filters or [])
    for module, instance, body in items:
        if not _IDENT.match(module):
            raise ValueError("bad module name %r" % module)
        lines += [""] + _render_section(module, instance, body, 0)
    return "\n".join(lines) + "\n"


def basic_config(backend, port=None, lmtp=False, chain=(), filters=None,
                 listener=None, backend_options=None, globals=None):
    """One listener "in" on 127.0.0.1:port (free if None) in front of one
    backend "out" (an address such as Capture.address, or a list)."""
    servers = backend if isinstance(backend, (list, tuple)) else [backend]
    lst = {"listen": ["127.0.0.1:%d" % (port or free_port())],
           "backend": "out"}
    if chain:
        lst["chain"] = list(chain)
    lst.update(listener or {})
    be = {"type": "lmtp" if lmtp else "smtp", "servers": list(servers)}
    be.update(backend_options or {})
    return {"listeners": {"in": lst}, "backends": {"out": be},
            "filters": filters or {}, "globals": dict(globals or {})}


def standard_globals(**extra):
    """The global options the test scripts agree on: hostname HOSTNAME
    and workers = 2, with extra added or overriding.  No `user`: Sluice
    adds that when we are root."""
    g = {"hostname": HOSTNAME, "workers": 2}
    g.update(extra)
    return g


def standard_config(backend, limits=None, globals=None, listener=None,
                    **kw):
    """basic_config() with standard_globals() (updated by globals), and
    limits, if given, as the listener's `limits` section; the other
    arguments are basic_config()'s."""
    lst = dict(listener or {})
    if limits:
        lst["limits"] = dict(lst.get("limits") or {}, **limits)
    return basic_config(backend, listener=lst,
                        globals=standard_globals(**(globals or {})), **kw)


# ---------------------------------------------------------------- sluice

def _builddir():
    env = os.environ.get("abs_top_builddir")
    return Path(env) if env else HERE.parent.parent


def sluice_binary():
    """$SLUICE_BIN, else <builddir>/proxy/sluice."""
    return Path(os.environ.get("SLUICE_BIN") or
                _builddir() / "proxy" / "sluice")


def _valgrind_enabled():
    return os.environ.get("SLUICE_VALGRIND") == "1"


def _listen_targets(listen):
    """'127.0.0.1:25' / '[::]:25' / '*:25' -> an address to connect to."""
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", listen) or \
        re.match(r"^([^:]+):(\d+)$", listen)
    if not m:
        return None
    host, port = m.group(1), int(m.group(2))
    if host in ("*", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def _raw_listens(text):
    found = []
    for m in re.finditer(r"\blisten\s*=\s*(\{[^}]*\}|\"[^\"]*\"|'[^']*')",
                         text):
        found += re.findall(r"[\"']([^\"']*)[\"']", m.group(1))
    return found


def _wait_greeting(service, addresses, timeout, error=AssertionError):
    """Until every address sends a greeting line; the process must live."""
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    last_error = None
    while pending:
        if not service.running():
            raise error("%s exited with %s during start-up:\n%s" % (
                service.name, service.proc.returncode, service.log_tail()))
        host, port = pending[0]
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.settimeout(max(2.0, deadline - time.monotonic()))
                line = b""
                while b"\n" not in line and len(line) < 1024:
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    line += chunk
                if re.match(rb"^[0-9]{3}[ -]", line):
                    _quit_politely(s)
                    pending.pop(0)
                    continue
                last_error = "greeting %r" % line
        except OSError as e:
            last_error = str(e)
        if time.monotonic() > deadline:
            raise error("%s: %s:%d not ready after %.0fs (%s):\n%s" % (
                service.name, host, port, timeout, last_error,
                service.log_tail()))
        time.sleep(0.05)


def _quit_politely(sock):
    """QUIT and read until close, so the daemon never writes its 221 into
    a reset connection because of our probe."""
    try:
        sock.sendall(b"QUIT\r\n")
        sock.settimeout(2)
        while sock.recv(4096):
            pass
    except OSError:
        pass


class Sluice(Service):
    """The real daemon, in the foreground, on the config given.

    config: a raw string, or a dict of make_config() arguments (as
    basic_config() returns).  Unless defaults=False, a `log` section
    (stderr, debug) and `spool_dir = workdir/spool` are added when the
    config has none, and when we are root (the daemon refuses to run as
    root without a `user`), also `user = DAEMON_USER` when the config
    has no `user` (a dict can say "user": None to get none), and the
    workdir, the spool directory and the config file are made reachable
    by that user (see reachable()).  stdout and stderr go to
    workdir/sluice.log.

    ready="greeting" waits until every listener sends a greeting (one
    probe connection each, which sends QUIT); ready="log" waits for the
    "started" log line instead (no connection); ready=None does not wait.
    """

    name = "sluice"

    def __init__(self, config, workdir, ready="greeting", defaults=True,
                 args=(), env=None, check_exit=True, start=True,
                 config_name="sluice.conf"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / config_name
        self.check_exit = check_exit
        self.exited_early = None  # exit code if it died on its own
        self.ended_by_test = False  # the test called stop() or kill()
        self.binary = sluice_binary()
        self.extra_args = list(args)
        self.env = env
        self.write_config(config, defaults)
        if start:
            self.start(ready)

    # ---- config

    def write_config(self, config, defaults=True):
        """(Re)write the config file; returns its text."""
        spool = self.workdir / "spool"
        spool.mkdir(exist_ok=True)
        as_root = defaults and os.geteuid() == 0
        if isinstance(config, dict):
            config = {k: v for k, v in config.items()}
            g = dict(config.get("globals") or {})
            if defaults:
                g.setdefault("spool_dir", str(spool))
                g.setdefault("log", {"target": "stderr", "level": "debug"})
            if as_root:
                g.setdefault("user", DAEMON_USER)
            config["globals"] = g
            self.listens = [l for body in (config.get("listeners") or
                                           {}).values()
                            for l in _as_list(body.get("listen"))]
            text = make_config(**config)
            spool_dir = g.get("spool_dir")
        elif isinstance(config, str):
            text = config
            if defaults and not re.search(r"(?m)^\s*log\s*\{", text):
                text += '\nlog {\n\ttarget = "stderr"\n\tlevel = "debug"\n}\n'
            if defaults and not re.search(r"(?m)^\s*spool_dir\s*=", text):
                text = "spool_dir = %s\n%s" % (quote(str(spool)), text)
            if as_root and not re.search(r"(?m)^\s*user\s*=", text):
                text = "user = %s\n%s" % (quote(DAEMON_USER), text)
            self.listens = _raw_listens(text)
            m = re.search(r'(?m)^\s*spool_dir\s*=\s*"([^"]*)"', text)
            spool_dir = m and m.group(1)
        else:
            raise TypeError("config must be a str or a dict")
        self.config_text = text
        self.config_path.write_text(text)
        if as_root:
            self._let_user_in(spool_dir or spool)
        self.addresses = [a for a in map(_listen_targets, self.listens) if a]
        return text

    def _let_user_in(self, spool_dir):
        """The daemon, once it is DAEMON_USER, opens its spool files and
        re-reads its config at each reload: let it get there."""
        reachable(self.workdir)
        reachable(spool_dir)
        mode = stat.S_IMODE(self.config_path.stat().st_mode)
        self.config_path.chmod(mode | stat.S_IROTH)

    @property
    def port(self):
        """The port of the first listen address."""
        return self.addresses[0][1]

    @property
    def ports(self):
        return [p for _, p in self.addresses]

    # ---- process

    def _command(self, args):
        if not self.binary.exists():
            raise HardError("%s does not exist: build it (make) or set "
                            "SLUICE_BIN" % self.binary)
        cmd = [str(self.binary)] + args
        if not _valgrind_enabled():
            return cmd
        vg = ["valgrind", "--quiet", "--leak-check=full",
              "--show-leak-kinds=definite,indirect",
              "--errors-for-leak-kinds=definite,indirect",
              "--error-exitcode=1", "--num-callers=40",
              "--log-file=%s" % (self.workdir / "valgrind.%p.log")]
        for supp in os.environ.get("SLUICE_VALGRIND_SUPP", "").split(":"):
            if supp:
                vg.append("--suppressions=%s" % supp)
        with open(self.binary, "rb") as f:
            if f.read(2) == b"#!":  # a libtool wrapper script
                return [str(_builddir() / "libtool"), "--mode=execute"] + \
                    vg + cmd
        return vg + cmd

    def start(self, ready="greeting"):
        # A restart (after stop() or kill()) is a daemon __exit__ must stop.
        self.ended_by_test = False
        self.exited_early = None
        cmd = self._command(["-f", "-c", str(self.config_path)] +
                            self.extra_args)
        env = dict(os.environ)
        env.update(self.env or {})
        self._spawn(cmd, self.workdir / "sluice.log", cwd=self.workdir,
                    env=env)
        try:
            if ready == "greeting":
                _wait_greeting(self, self.addresses, scaled(DEFAULT_TIMEOUT))
            elif ready == "log":
                self.wait_log(r"\bstarted\b", scaled(DEFAULT_TIMEOUT))
        except BaseException:
            self._terminate(scaled(5), signal.SIGKILL)
            raise
        return self

    def check_config(self):
        """sluice -t -c FILE: (exit code, output); under valgrind too."""
        return _run_check(self._command(["-t", "-c",
                                         str(self.config_path)]),
                          self.workdir)

    def reload(self, config=None, defaults=True):
        """SIGHUP, after rewriting the config file if config is given."""
        if config is not None:
            self.write_config(config, defaults)
        self._check_running()
        os.kill(self.proc.pid, signal.SIGHUP)

    def _check_running(self):
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError("sluice is not running (exit %s):\n%s" % (
                self.proc.returncode if self.proc else None,
                self.log_tail()))

    def assert_running(self):
        self._check_running()

    def stop(self, timeout=None):
        """SIGTERM, wait (default 40 s: more than a default drain), return
        the exit code (negative: killed by that signal).  Raises if it
        had to be SIGKILLed."""
        if self.proc is None:
            return None
        self.ended_by_test = True
        if self.proc.poll() is not None and self.exited_early is None:
            self.exited_early = self.proc.returncode
        rc, timed_out = self._terminate(_default(timeout, 40))
        if timed_out:
            raise AssertionError("sluice did not exit after SIGTERM; "
                                 "killed:\n%s" % self.log_tail())
        return rc

    def kill(self):
        if self.proc is None:
            return None
        self.ended_by_test = True
        rc, _ = self._terminate(5, signal.SIGKILL)
        return rc

    def log_tail(self, lines=60):
        return super().log_tail(lines)

    def valgrind_logs(self):
        out = []
        for p in sorted(self.workdir.glob("valgrind.*.log")):
            text = p.read_text(errors="replace").strip()
            if text:
                out.append("%s:\n%s" % (p, text))
        return "\n".join(out)

    def diagnostics(self):
        text = super().diagnostics()
        vg = self.valgrind_logs()
        return text + ("\n" + vg if vg else "")

    def __exit__(self, etype, evalue, tb):
        """Stop the daemon; unless the test already stopped it or is
        failing anyway, fail if it died on its own or exited non-zero."""
        if self.proc is None or self.ended_by_test:
            self._forget()
            return False
        if self.proc.poll() is not None:
            self.exited_early = self.proc.returncode
        try:
            rc = self.stop()
        except AssertionError:
            if etype is None:
                raise
            return False
        if etype is None and self.check_exit:
            if self.exited_early is not None:
                raise AssertionError("sluice died during the test (exit "
                                     "%s):\n%s" % (self.exited_early,
                                                   self.diagnostics()))
            if rc != 0:
                raise AssertionError("sluice exited with %s after SIGTERM:"
                                     "\n%s" % (rc, self.diagnostics()))
        return False

    # ---- log

    def log_mark(self):
        """A position in the log; pass to wait_log(since=) for new lines."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def wait_log(self, regex, timeout=None, since=0):
        """Wait until the log (from byte offset since) matches regex."""
        pattern = re.compile(regex, re.M)
        deadline = time.monotonic() + _default(timeout)
        while True:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(since)
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = ""
            m = pattern.search(text)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError("sluice exited (%s) before logging "
                                     "%r:\n%s" % (self.proc.returncode,
                                                  regex, self.log_tail()))
            if time.monotonic() >= deadline:
                raise AssertionError("sluice did not log %r:\n%s" % (
                    regex, self.log_tail()))
            time.sleep(0.02)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _run_check(cmd, cwd):
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           cwd=cwd, timeout=scaled(30))
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not finish" % " ".join(cmd))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def check_config(config, workdir, defaults=True):
    """Write config into workdir and run sluice -t on it: (rc, output)."""
    s = Sluice(config, workdir, start=False, defaults=defaults)
    return s.check_config()


@contextlib.contextmanager
def relay(tmp, script=None, lmtp=False, **config):
    """The usual pair: a Capture in tmp/cap (with script, lmtp) and a
    Sluice in tmp/sluice in front of it, on standard_config(cap.address,
    lmtp=lmtp, **config).  Yields (cap, s); both stop at the end."""
    tmp = Path(tmp)
    with Capture(tmp / "cap", lmtp=lmtp, script=script) as cap, \
         Sluice(standard_config(cap.address, lmtp=lmtp, **config),
                tmp / "sluice") as s:
        yield cap, s


# ---------------------------------------------------------------- clients

def smtp_client(port, host="127.0.0.1", timeout=None, lmtp=False,
                local_hostname="client.test"):
    """smtplib.SMTP (or LMTP) connected to host:port, with a timeout.

    local_hostname is fixed so that smtplib does no DNS lookup."""
    cls = smtplib.LMTP if lmtp else smtplib.SMTP
    return cls(host, port, local_hostname=local_hostname,
               timeout=_default(timeout))


class Reply(collections.namedtuple("Reply", "code lines raw")):
    """One SMTP reply: code (int), lines (text after "NNN-"/"NNN "), raw."""

    @property
    def text(self):
        """The reply's lines as received, CRLF removed, joined by \\n."""
        return "\n".join(l.rstrip("\r\n") for l in
                         self.raw.decode("utf-8", "surrogateescape")
                         .split("\n") if l)

    @property
    def first(self):
        return self.text.split("\n", 1)[0]

    @property
    def enhanced(self):
        """The enhanced status code of the first line, or None."""
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(\s|$)", self.lines[0])
        return m.group(1) if m else None


class RawClient:
    """A byte-level SMTP client: nothing is sent that the test did not
    write, every read has a timeout (default 10 s, scaled)."""

    def __init__(self, port, host="127.0.0.1", timeout=None, unix=None,
                 strict=True, source=None):
        """source: the local address to connect from ("127.0.0.2")."""
        self.timeout = _default(timeout)
        self.strict = strict
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(str(unix))
        else:
            self.sock = socket.create_connection(
                (host, port), self.timeout,
                source_address=(source, 0) if source else None)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.received = bytearray()  # everything read, for diagnostics
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, data):
        """Send bytes (or str, encoded UTF-8) exactly as given."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.sock.sendall(data)

    def cmd(self, line, timeout=None):
        """Send one command line (CRLF added) and read its reply."""
        self.send((line.encode("utf-8", "surrogateescape")
                   if isinstance(line, str) else line) + b"\r\n")
        return self.read_reply(timeout)

    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReplyTimeout("no %s within the timeout; have %r" % (
                what, bytes(self.buf)))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise ReplyTimeout("no %s within the timeout; have %r" % (
                what, bytes(self.buf)))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed while waiting for "
                                   "%s; have %r" % (what, bytes(self.buf)))
        self.received += chunk
        self.buf += chunk

    def read_line(self, timeout=None):
        """One line, terminator included."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > 1 << 20:
                raise ProtocolError("line longer than 1 MiB")
            self._fill(deadline, "line")

    def read_reply(self, timeout=None):
        """One complete, possibly multi-line reply: Reply(code, lines, raw)."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        raw_reply = bytearray()
        lines = []
        code = None
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            raw_reply += line
            m = re.match(rb"^([0-9]{3})([ -]|\r?\n$)", line)
            if not m:
                raise ProtocolError("not an SMTP reply line: %r (reply so "
                                    "far %r)" % (line, bytes(raw_reply)))
            if self.strict and not line.endswith(b"\r\n"):
                raise ProtocolError("reply line not ended by CRLF: %r" %
                                    line)
            if code is None:
                code = int(m.group(1))
            elif int(m.group(1)) != code:
                raise ProtocolError("reply code changed inside a reply: %r"
                                    % bytes(raw_reply))
            lines.append(line[4:].rstrip(b"\r\n").decode(
                "utf-8", "surrogateescape"))
            if m.group(2) != b"-":
                return Reply(code, lines, bytes(raw_reply))

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def expect(self, want, timeout=None):
        """Read one reply and check it: want is a code (250), a prefix of
        its first line ("250", "5", "451 4.7.1"), or a list of those."""
        reply = self.read_reply(timeout)
        choices = want if isinstance(want, (list, tuple)) else [want]
        for w in choices:
            if isinstance(w, int) and reply.code == w:
                return reply
            if isinstance(w, str) and reply.first.startswith(w):
                return reply
        raise AssertionError("expected %r, got %r" % (want, reply.text))

    def read_until_closed(self, timeout=None):
        """Everything until the peer closes (raises if it does not)."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while not self.eof:
            try:
                self._fill(deadline, "close")
            except ConnectionClosed:
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def expect_closed(self, timeout=None):
        """Assert that the peer closes without sending anything more."""
        data = self.read_until_closed(timeout)
        if data:
            raise AssertionError("expected close, got %r" % data)


# ---------------------------------------------------------------- dialogue

def ask(client, line, want):
    """Send one command line (CRLF added) on a RawClient, check its reply
    as RawClient.expect(want) does, and return it."""
    client.send(line + ("\r\n" if isinstance(line, str) else b"\r\n"))
    return client.expect(want)



def submit(port, body, sender="a@example.org", rcpts=("b@example.net",),
           mail_params="", rcpt_params=""):
    """One transaction on a RawClient, every step but the final dot
    expected to succeed, then QUIT; the reply to the final dot."""
    with RawClient(port) as c:
        hello(c)
        ask(c, "MAIL FROM:<%s>%s" % (sender, mail_params), 250)
        for r in rcpts:
            ask(c, "RCPT TO:<%s>%s" % (r, rcpt_params), 250)
        ask(c, "DATA", 354)
        c.send(body + b".\r\n")
        r = c.read_reply()
        ask(c, "QUIT", 221)
        return r

def hello(client, helo="client.test", verb="EHLO", hostname=HOSTNAME,
          banner="ESMTP sluice"):
    """The start of a session: expect "220 HOSTNAME BANNER" (the
    daemon's default banner unless told), say EHLO (or verb) helo, expect
    a 250 whose first line is "250-HOSTNAME" for EHLO, "250 HOSTNAME"
    for HELO.  Returns that reply."""
    client.expect("220 %s %s" % (hostname, banner))
    sep = "-" if verb.upper() == "EHLO" else " "
    return ask(client, "%s %s" % (verb, helo), "250%s%s" % (sep, hostname))


def transaction(client, body, sender="a@example.org",
                rcpts=("b@example.net",)):
    """MAIL FROM:<sender>, RCPT TO:<r> for each of rcpts, DATA (expecting
    250, 250..., 354), then body as it is (dot-stuffed already, ending
    with CRLF unless empty) and the final ".\\r\\n".  Returns the reply
    to the final dot, unchecked."""
    ask(client, "MAIL FROM:<%s>" % sender, 250)
    for r in rcpts:
        ask(client, "RCPT TO:<%s>" % r, 250)
    ask(client, "DATA", 354)
    client.send(body + b".\r\n")
    return client.read_reply()


def read_all_replies(client, limit=100):
    """Every reply until the peer closes (at most limit, else fail);
    fails on a partial line at the close."""
    out = []
    for _ in range(limit):
        try:
            out.append(client.read_reply())
        except ConnectionClosed:
            assert not client.buf, \
                "partial reply at close: %r" % bytes(client.buf)
            return out
    raise AssertionError("more than %d replies: %r" % (limit, out))


# ---------------------------------------------------------------- swaks

def swaks(*args, timeout=None):
    """Run swaks with args (and a timeout): (exit code, output text)."""
    need_program(SWAKS)
    cmd = [SWAKS] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=_default(timeout, 60))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("swaks did not finish: %s\n%s" % (
            " ".join(cmd), (e.output or b"").decode("utf-8", "replace")))
    return p.returncode, p.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------- runner

class _Interrupted(BaseException):
    pass


class _TestTimeout(AssertionError):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted("signal %d" % signum)


def _raise_timeout(signum, frame):
    raise _TestTimeout("test timed out")


def _comment(text):
    for line in str(text).splitlines():
        print("# " + line)


def _select_tests(namespace, argv):
    tests = []
    for name, fn in namespace.items():
        if name.startswith("test_") and inspect.isfunction(fn):
            tests.append((fn.__code__.co_firstlineno, name, fn))
    tests.sort()
    only = os.environ.get("SLUICE_TEST_ONLY")
    wanted = [a for a in argv if not a.startswith("-")]
    if wanted:
        tests = [t for t in tests if t[1] in wanted]
    if only:
        tests = [t for t in tests if re.search(only, t[1])]
    return [(name, fn) for _, name, fn in tests]


def _call_test(fn, path, limit):
    """Call one test function under a time limit: (status, detail)."""
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        if len(inspect.signature(fn).parameters) == 0:
            fn()
        else:
            fn(path)
    except Skip as e:
        return "skip", str(e)
    except HardError:
        return "hard", traceback.format_exc()
    except Exception:
        return "fail", traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return "ok", ""


_INTERRUPTS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _run_one(name, fn, limit):
    """Run one test in its own directory: (status, detail).

    Whatever happens (even an interrupt), the processes the test started
    are stopped and its directory is removed (unless SLUICE_TEST_KEEP=1).
    """
    before = set(map(id, _services))
    tmp = TempDir(prefix="st-%s-" % name[5:25])
    status, detail = "fail", "interrupted"
    try:
        status, detail = _call_test(fn, tmp.path, limit)
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        leftovers = [s for s in _services if id(s) not in before]
        if status in ("fail", "hard"):
            for s in leftovers:
                detail += "\n" + s.diagnostics()
        for s in reversed(leftovers):
            try:
                s._terminate(scaled(5))
            except Exception:
                pass
        if _keep():
            detail += "\nkept %s" % tmp.path
        tmp.cleanup()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
    return status, detail


def run_tests(namespace, argv=None):
    """Run every test_* function of namespace (in file order) and exit.

    A test function takes no argument or one (a fresh pathlib.Path temp
    directory).  Output is TAP; exit 0 if all passed, 77 if all skipped,
    99 on a harness error, 1 if any failed.  SLUICE_TEST_ONLY=regex or
    test names as arguments select tests; SLUICE_TEST_TIMEOUT (seconds,
    default 120, scaled) bounds each test; SLUICE_TAP=1 makes an all-skip
    exit 0 (for automake's TAP driver, which treats 77 as an error).
    """
    argv = sys.argv[1:] if argv is None else argv
    sys.stdout.reconfigure(line_buffering=True)
    if not _select_tests(namespace, []):
        print("1..0 # no test_* functions")
        sys.exit(99)
    tests = _select_tests(namespace, argv)
    if not tests:
        print("1..0 # SKIP no test selected")
        sys.exit(0 if os.environ.get("SLUICE_TAP") == "1" else 77)
    for sig in _INTERRUPTS:
        signal.signal(sig, _raise_interrupted)
    limit = scaled(float(os.environ.get("SLUICE_TEST_TIMEOUT", "120")))
    print("1..%d" % len(tests))
    counts = collections.Counter()
    for n, (name, fn) in enumerate(tests, 1):
        try:
            status, detail = _run_one(name, fn, limit)
        except _Interrupted as e:
            print("not ok %d - %s # interrupted" % (n, name))
            _stop_all_services()
            _comment("interrupted by %s" % e)
            sys.exit(99)
        counts[status] += 1
        if status == "ok":
            print("ok %d - %s" % (n, name))
        elif status == "skip":
            print("ok %d - %s # SKIP %s" % (n, name, detail))
            detail = ""
        else:
            print("not ok %d - %s%s" % (n, name,
                                        " # hard error" if status == "hard"
                                        else ""))
        if detail:
            _comment(detail.strip())
    _stop_all_services()
    if counts["hard"]:
        code = 99
    elif counts["fail"]:
        code = 1
    elif counts["skip"] == len(tests):
        code = 0 if os.environ.get("SLUICE_TAP") == "1" else 77
    else:
        code = 0
    sys.exit(code)


# ---------------------------------------------------------------- redis

REDIS_SERVER = "/usr/bin/redis-server"


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _resp_read(f):
    """One RESP2 reply from a binary file object: str for +, int for :,
    bytes (or None) for $, list for *; an error reply raises."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionClosed("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError("redis error: %s" % rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ProtocolError("not a RESP reply: %r" % line)


class RedisServer(Service):
    """redis-server on a free loopback port (or the port given, to restart
    one where it was), without persistence, its files in dir; stopped by
    PID.  address is "127.0.0.1:PORT", url "redis://127.0.0.1:PORT".
    command("GET", "k") sends one command over a fresh connection and
    returns the reply (no redis-cli needed)."""

    name = "redis-server"

    def __init__(self, dir, port=None):
        need_program(REDIS_SERVER)
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        for _ in range(5 if port is None else 1):
            self.port = port or free_port()
            self._spawn([REDIS_SERVER, "--port", self.port, "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no",
                         "--dir", self.dir, "--daemonize", "no",
                         "--protected-mode", "no", "--loglevel", "warning"],
                        self.dir / "redis.log")
            if self._wait_ready():
                break
            self._terminate(5)
        else:
            raise HardError("redis-server did not start:\n%s" % self.log_tail())
        self.address = "127.0.0.1:%d" % self.port
        self.url = "redis://" + self.address

    def _wait_ready(self):
        deadline = time.monotonic() + scaled(DEFAULT_TIMEOUT)
        while time.monotonic() < deadline and self.running():
            try:
                if self.command("PING", timeout=1) == "PONG":
                    return True
            except (OSError, AssertionError):
                pass
            time.sleep(0.02)
        return False

    def command(self, *args, timeout=None):
        with socket.create_connection(("127.0.0.1", self.port),
                                      _default(timeout)) as s:
            s.sendall(_resp_encode(args))
            with s.makefile("rb") as f:
                return _resp_read(f)


__all__.append("RedisServer")
