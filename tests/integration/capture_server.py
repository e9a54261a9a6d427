#!/usr/bin/python3
"""capture_server.py - a byte-exact, scriptable SMTP/LMTP backend for tests.

It stands where the real MTA would stand behind sluice and records exactly
what it was sent: the raw transcript of every connection and, for every
message, the bytes between the 354 reply and the final CRLF "." CRLF (wire
form, still dot-stuffed, including the CRLF before the dot) with its
envelope.  A JSON script, re-read at every new connection, makes it
misbehave on purpose: reject, tempfail, delay, hang, drop the connection,
send garbage.  See README.md in this directory for the script format.

Plain sockets and one thread per connection, not aiosmtpd: the point is to
see the exact bytes and to be able to misbehave at any moment.

Usage:
  capture_server.py --listen 127.0.0.1:PORT|[::1]:PORT|unix:/path [--lmtp]
                    --dir OUTDIR [--script FILE.json] [--ready-file F]

PORT 0 picks a free port; the ready file (JSON, written atomically once the
socket listens) says which.  SIGTERM or SIGINT: close everything, write the
records of open connections, exit 0.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import sys
import threading
import time
import traceback

DEFAULT_CAPABILITIES = ["PIPELINING", "SIZE 0", "8BITMIME",
                        "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"]
XCLIENT_ATTRS = "NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT"
XFORWARD_ATTRS = "NAME ADDR PORT PROTO HELO IDENT SOURCE"

PHASES = ("connect", "greeting", "ehlo", "xclient", "xforward", "mail",
          "rcpt", "data", "mid_data", "data_end", "data_end_rcpt", "rset",
          "noop", "quit", "unknown")
ACTIONS = ("reply", "drop", "hang", "garbage")
RULE_KEYS = {"phase", "match", "regex", "on_connection", "on_transaction",
             "times", "delay", "reply", "action", "bytes", "bytes_b64",
             "close", "rst", "after_bytes", "comment"}
SCRIPT_KEYS = {"hostname", "capabilities", "extra_capabilities", "xclient",
               "xforward", "greeting_delay", "idle_timeout", "rules",
               "comment"}

MAX_LINE = 65536  # a command line longer than this is refused
MAX_EVENTS = 10000  # timeline entries kept per connection
MAX_SENT = 1 << 20  # bytes of our own replies kept per connection
LIVE_RECORD_LIMIT = 1 << 20  # rewrite the connection record after every
                # reply only while the transcript is this small
REPLY_RE = re.compile(r"^[0-9]{3}([ -].*)?$", re.S)


class ScriptError(ValueError):
    pass


def _check_number(where, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScriptError("%s: must be a number" % where)
    if value < minimum:
        raise ScriptError("%s: must be >= %s" % (where, minimum))


def _check_int_or_list(where, value):
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ScriptError("%s: must be an integer >= 0 or a "
                              "list of them" % where)


def _check_reply(where, reply):
    lines = reply if isinstance(reply, list) else [reply]
    if not lines:
        raise ScriptError("%s: empty reply" % where)
    for line in lines:
        if not isinstance(line, str):
            raise ScriptError("%s: reply lines must be strings" % where)
        for part in line.replace("\r", "").split("\n"):
            if not REPLY_RE.match(part):
                raise ScriptError("%s: %r is not an SMTP reply line "
                                  "(use action garbage for junk)"
                                  % (where, part))


def validate_rule(i, rule):
    where = "rules[%d]" % i
    if not isinstance(rule, dict):
        raise ScriptError("%s: must be an object" % where)
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise ScriptError("%s: unknown key(s) %s" % (where, sorted(unknown)))
    if rule.get("phase") not in PHASES:
        raise ScriptError("%s: phase must be one of %s" % (where, PHASES))
    action = rule.get("action", "reply")
    if action not in ACTIONS:
        raise ScriptError("%s: action must be one of %s" % (where, ACTIONS))
    for key in ("match", "regex"):
        if key in rule and not isinstance(rule[key], str):
            raise ScriptError("%s: %s must be a string" % (where, key))
    if "regex" in rule:
        try:
            re.compile(rule["regex"])
        except re.error as e:
            raise ScriptError("%s: bad regex: %s" % (where, e))
    for key in ("on_connection", "on_transaction"):
        if key in rule:
            _check_int_or_list(where + "." + key, rule[key])
    if "times" in rule:
        _check_int_or_list(where + ".times", rule["times"])
    for key in ("delay", "after_bytes"):
        if key in rule:
            _check_number(where + "." + key, rule[key])
    for key in ("close", "rst"):
        if key in rule and not isinstance(rule[key], bool):
            raise ScriptError("%s: %s must be true or false" % (where, key))
    if action == "reply" and "reply" in rule:
        _check_reply(where, rule["reply"])
    if action == "reply" and "reply" not in rule and "delay" not in rule \
        and not rule.get("close"):
        raise ScriptError("%s: a reply rule needs reply, delay or close"
                          % where)
    if action == "garbage":
        if ("bytes" in rule) == ("bytes_b64" in rule):
            raise ScriptError("%s: garbage needs exactly one of bytes, "
                              "bytes_b64" % where)
        if "bytes" in rule:
            try:
                rule["bytes"].encode("latin-1")
            except (AttributeError, UnicodeEncodeError):
                raise ScriptError("%s: bytes must be a string of "
                                  "characters U+0000..U+00FF" % where)
        else:
            try:
                base64.b64decode(rule["bytes_b64"], validate=True)
            except (TypeError, ValueError):
                raise ScriptError("%s: bad bytes_b64" % where)
    if rule["phase"] == "mid_data" and "after_bytes" not in rule:
        raise ScriptError("%s: mid_data needs after_bytes" % where)
    if rule["phase"] == "connect" and (action not in ("drop", "reply") or
                                       "reply" in rule):
        raise ScriptError("%s: connect takes drop or a delay (replies "
                          "belong to the greeting phase)" % where)


def validate_script(script):
    """Raise ScriptError (a ValueError) if script is not a valid script."""
    if not isinstance(script, dict):
        raise ScriptError("script must be a JSON object")
    unknown = set(script) - SCRIPT_KEYS
    if unknown:
        raise ScriptError("unknown top-level key(s) %s" % sorted(unknown))
    if "hostname" in script and not isinstance(script["hostname"], str):
        raise ScriptError("hostname must be a string")
    for key in ("capabilities", "extra_capabilities"):
        value = script.get(key, [])
        if not isinstance(value, list) or \
            not all(isinstance(c, str) for c in value):
            raise ScriptError("%s must be a list of strings" % key)
    for key in ("xclient", "xforward"):
        if key in script and not isinstance(script[key], (bool, str)):
            raise ScriptError("%s must be true, false or an attribute "
                              "list string" % key)
    for key in ("greeting_delay", "idle_timeout"):
        if key in script:
            _check_number(key, script[key])
    rules = script.get("rules", [])
    if not isinstance(rules, list):
        raise ScriptError("rules must be a list")
    for i, rule in enumerate(rules):
        validate_rule(i, rule)


def text(raw):
    """Bytes to str; .encode("utf-8", "surrogateescape") gives them back."""
    return bytes(raw).decode("utf-8", "surrogateescape")


def write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), ".tmp-%d-%d-%s" % (
        os.getpid(), threading.get_ident(), os.path.basename(path)))
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def split_path_arg(arg, prefix):
    """'FROM:<a@b> SIZE=1' -> ('<a@b>', 'a@b', 'SIZE=1'), or None."""
    if arg[:len(prefix)].upper() != prefix:
        return None
    rest = arg[len(prefix):].lstrip(" ")
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return None
        path, params = rest[:end + 1], rest[end + 1:]
        address = path[1:-1]
        if ":" in address and address.startswith("@"):
            address = address.split(":", 1)[1]  # source route
    else:
        path, _, params = rest.partition(" ")
        address = path
        if not path:
            return None
    return path, address, params.strip(" ")


class DataScanner:
    """Finds CRLF "." CRLF in a DATA stream fed in arbitrary pieces.

    The window holds the last (at most 4) bytes seen, starting with a
    virtual CRLF (the one ending the DATA command) so that ".\\r\\n" right
    after the 354 ends an empty message.
    """

    def __init__(self):
        self.window = b"\r\n"
        self.nbytes = 0  # real DATA bytes consumed so far

    def feed(self, chunk):
        """Return (consumed, message_length or None)."""
        comb = self.window + chunk
        p = comb.find(b"\r\n.\r\n")
        if p < 0:
            self.window = comb[-4:]
            self.nbytes += len(chunk)
            return len(chunk), None
        base = self.nbytes - len(self.window)
        consumed = p + 5 - len(self.window)
        self.nbytes += consumed
        return consumed, base + p + 2


class Drop(Exception):
    """Unwinds a session: flush what is queued, then close."""

    def __init__(self, reason, rst=False):
        super().__init__(reason)
        self.reason = reason
        self.rst = rst


class Server:
    def __init__(self, args):
        self.args = args
        self.lmtp = args.lmtp
        self.outdir = args.dir
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.conn_counter = 0
        self.msg_serial = 0
        self.sessions = {}
        self.script = {}
        self.rule_uses = {}
        self.max_bytes = args.max_bytes

    def log(self, fmt, *a):
        sys.stderr.write("capture_server[%d]: %s\n" % (os.getpid(),
            fmt % a if a else fmt))
        sys.stderr.flush()

    def load_script(self):
        """Re-read the script file; return (script, error or None).

        A missing file means the empty script; an invalid one keeps the
        last good one, and the error lands in the connection record.
        """
        if not self.args.script:
            return self.script, None
        try:
            with open(self.args.script, "rb") as f:
                script = json.loads(f.read().decode("utf-8"))
            validate_script(script)
        except FileNotFoundError:
            script = {}
        except (OSError, ValueError) as e:
            msg = "script %s: %s (keeping the previous one)" % (
                self.args.script, e)
            self.log("%s", msg)
            with self.lock:
                return self.script, msg
        with self.lock:
            self.script = script
        return script, None

    def next_connection_id(self):
        with self.lock:
            self.conn_counter += 1
            return self.conn_counter

    def next_message_serial(self):
        with self.lock:
            self.msg_serial += 1
            return self.msg_serial

    def use_rule(self, rule):
        """Count a use of a rule with "times"; False once used up."""
        if "times" not in rule:
            return True
        key = json.dumps(rule, sort_keys=True)
        with self.lock:
            n = self.rule_uses.get(key, 0)
            if n >= rule["times"]:
                return False
            self.rule_uses[key] = n + 1
            return True

    def listen(self):
        spec = self.args.listen
        if spec.startswith("unix:"):
            path = spec[5:]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            address = {"address": "unix:" + path, "path": path}
        else:
            m = re.match(r"^\[([0-9a-fA-F:.]+)\]:([0-9]+)$", spec) or \
                re.match(r"^([0-9.]+):([0-9]+)$", spec)
            if not m:
                raise SystemExit("bad --listen %r" % spec)
            host, port = m.group(1), int(m.group(2))
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            shown = "[%s]:%d" % (host, port) if ":" in host else \
                "%s:%d" % (host, port)
            address = {"address": shown, "host": host, "port": port}
        sock.listen(128)
        sock.setblocking(False)
        self.listener = sock
        self.listen_info = address

    def write_ready(self):
        if not self.args.ready_file:
            return
        info = dict(self.listen_info)
        info.update({"pid": os.getpid(), "lmtp": self.lmtp,
            "dir": os.path.abspath(self.outdir)})
        write_atomic(self.args.ready_file,
            json.dumps(info, indent=1).encode())

    def serve(self):
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda s, f: self.stop_event.set())
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        sel.register(rfd, selectors.EVENT_READ)
        self.write_ready()
        while not self.stop_event.is_set():
            for key, _ in sel.select(1.0):
                if key.fileobj == rfd:
                    os.read(rfd, 512)
                else:
                    self.accept()
        self.shutdown()

    def accept(self):
        try:
            conn, peer = self.listener.accept()
        except BlockingIOError:
            return
        except OSError as e:
            self.log("accept: %s", e)
            time.sleep(0.05)
            return
        try:
            conn.setblocking(True)
            session = Session(self, conn, peer)
        except OSError as e:  # reset before we looked at it
            self.log("accept: %s", e)
            conn.close()
            return
        with self.lock:
            self.sessions[session.id] = session
        t = threading.Thread(target=session.run, daemon=True,
            name="conn-%d" % session.id)
        session.thread = t
        t.start()

    def forget(self, session):
        with self.lock:
            self.sessions.pop(session.id, None)

    def shutdown(self):
        self.listener.close()
        if self.args.listen.startswith("unix:"):
            try:
                os.unlink(self.args.listen[5:])
            except OSError:
                pass
        with self.lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            s.stopping = True
            try:
                s.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for s in sessions:
            s.thread.join(max(0.1, deadline - time.monotonic()))
        if self.args.ready_file:
            try:
                os.unlink(self.args.ready_file)
            except OSError:
                pass


class Session:
    """One client connection, run in its own thread."""

    def __init__(self, server, sock, peer):
        self.server = server
        self.sock = sock
        self.id = server.next_connection_id()
        self.lmtp = server.lmtp
        self.max_bytes = server.max_bytes
        self.start = time.time()
        self.peer = self.format_addr(peer)
        self.local = self.format_addr(sock.getsockname())
        self.stopping = False
        self.thread = None
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.transcript = bytearray()
        self.transcript_size = 0
        self.sent = bytearray()
        self.sent_size = 0
        self.events = []
        self.commands = []
        self.helos = []
        self.xclient = []
        self.xforward = []
        self.message_serials = []
        self.close_reason = None
        self.error = None
        self.hanging = False
        self.overlong = False
        self.greeted_ok = True
        self.helo = None
        self.txn_count = 0
        self.last_record = 0.0
        self.reset_transaction()
        self.data = None
        self.current_script = {}
        self.script_error = None
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @staticmethod
    def format_addr(addr):
        if isinstance(addr, tuple):
            host, port = addr[0], addr[1]
            return "[%s]:%d" % (host, port) if ":" in host else \
                "%s:%d" % (host, port)
        return addr or ""

    # ---- bookkeeping

    def event(self, kind, detail=None):
        if len(self.events) >= MAX_EVENTS:
            if len(self.events) == MAX_EVENTS:
                self.events.append({"t": self.now(),
                    "ev": "events_truncated"})
            return
        ev = {"t": self.now(), "ev": kind}
        if detail is not None:
            ev["text"] = detail
        self.events.append(ev)

    def now(self):
        return round(time.time() - self.start, 6)

    def record_in(self, chunk):
        self.transcript_size += len(chunk)
        room = self.max_bytes - len(self.transcript)
        if room > 0:
            self.transcript += chunk[:room]

    def reset_transaction(self):
        self.mail = None
        self.rcpts = []

    def script(self):
        return self.current_script

    def reload_script(self):
        """Snapshot the script: at connect and at every MAIL, so a change
        applies from the next transaction even on a reused connection."""
        self.current_script, err = self.server.load_script()
        if err:
            self.script_error = err
            self.event("script_error", err)

    def capabilities(self):
        script = self.script()
        caps = list(script.get("capabilities", DEFAULT_CAPABILITIES))
        caps += script.get("extra_capabilities", [])
        for key, default in (("xclient", XCLIENT_ATTRS),
            ("xforward", XFORWARD_ATTRS)):
            value = script.get(key, False)
            if value is True:
                caps.append("%s %s" % (key.upper(), default))
            elif isinstance(value, str) and value:
                caps.append("%s %s" % (key.upper(), value))
        return caps

    def advertised_attrs(self, verb):
        for cap in self.capabilities():
            words = cap.split()
            if words and words[0].upper() == verb:
                return {w.upper() for w in words[1:]}
        return None

    def hostname(self):
        return self.script().get("hostname", "capture.test")

    def greeting_text(self):
        return "220 %s %s capture_server" % (self.hostname(),
            "LMTP" if self.lmtp else "ESMTP")

    # ---- rules

    def find_rule(self, phase, arg=""):
        for rule in self.script().get("rules", []):
            if rule["phase"] != phase:
                continue
            if not self.rule_matches(rule, arg):
                continue
            if not self.server.use_rule(rule):
                continue
            return rule
        return None

    def rule_matches(self, rule, arg):
        if "match" in rule and rule["match"].lower() not in arg.lower():
            return False
        if "regex" in rule and not re.search(rule["regex"], arg):
            return False
        for key, value in (("on_connection", self.id),
            ("on_transaction", self.txn_count)):
            if key in rule:
                want = rule[key]
                want = want if isinstance(want, list) else [want]
                if value not in want:
                    return False
        return True

    def wait(self, seconds):
        if seconds <= 0:
            return
        self.flush()
        self.event("delay", seconds)
        if self.server.stop_event.wait(seconds) or self.stopping:
            raise Drop("server_stop")

    def respond(self, phase, default, arg=""):
        """Answer one step; return the reply text sent or None."""
        rule = self.find_rule(phase, arg)
        return self.apply_rule(rule, default)

    def apply_rule(self, rule, default):
        if rule is None:
            self.queue_reply(default)
            return default
        self.wait(rule.get("delay", 0))
        action = rule.get("action", "reply")
        rst = rule.get("rst", False)
        if action == "drop":
            self.event("action", "drop")
            raise Drop("drop", rst)
        if action == "hang":
            self.event("action", "hang")
            self.flush()
            self.hanging = True
            self.write_record(force=True)
            return None
        if action == "garbage":
            junk = rule["bytes"].encode("latin-1") if "bytes" in rule \
                else base64.b64decode(rule["bytes_b64"])
            self.event("action", "garbage")
            self.queue_raw(junk)
            sent = None
        else:
            sent = rule.get("reply", default)
            if sent is not None:
                sent = self.reply_text(sent)
                self.queue_reply(sent)
        if rule.get("close"):
            raise Drop("close_after_reply", rst)
        return sent

    @staticmethod
    def reply_text(reply):
        if isinstance(reply, list):
            reply = "\n".join(reply)
        return "\n".join(reply.replace("\r", "").split("\n"))

    # ---- output

    def queue_reply(self, reply):
        self.event("reply", reply)
        data = ("\r\n".join(reply.split("\n")) + "\r\n").encode(
            "utf-8", "surrogateescape")
        self.queue_raw(data)

    def queue_raw(self, data):
        self.outbuf += data
        self.sent_size += len(data)
        room = MAX_SENT - len(self.sent)
        if room > 0:
            self.sent += data[:room]

    def flush(self):
        """Send the queued replies, rewriting the connection record first:
        a test that has seen a reply must find its command recorded."""
        if not self.outbuf:
            return
        data, self.outbuf = bytes(self.outbuf), bytearray()
        self.write_record()
        self.sock.sendall(data)

    # ---- main loop

    def run(self):
        srv = self.server
        self.reload_script()
        self.sock.settimeout(float(self.script().get("idle_timeout", 600)))
        self.event("connect", self.peer)
        rst = False
        try:
            self.begin()
            while True:
                self.process_input()
                self.flush()
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    raise Drop("idle_timeout")
                if not chunk:
                    raise Drop("server_stop" if self.stopping
                        else "peer_closed")
                self.record_in(chunk)
                self.inbuf += chunk
        except Drop as d:
            self.close_reason = d.reason
            rst = d.rst
        except OSError as e:
            self.close_reason = "server_stop" if self.stopping else \
                "socket_error"
            self.error = "%s" % e
        except Exception as e:  # never let one client end the server
            self.close_reason = "internal_error"
            self.error = "".join(traceback.format_exception(e))
            srv.log("connection %d: %s", self.id, self.error)
        self.finish(rst)

    def finish(self, rst):
        try:
            self.finish_records(rst)
        except Exception as e:
            self.server.log("connection %d: finishing: %s", self.id, e)
        finally:
            self.server.forget(self)

    def finish_records(self, rst):
        try:
            if self.outbuf and not self.stopping:
                self.write_record(force=True)  # as in flush()
                self.sock.sendall(bytes(self.outbuf))
        except OSError:
            pass
        if self.data is not None:
            try:
                self.save_message(complete=False, replies=None)
            finally:
                self.data = None
        try:
            if rst:
                self.sock.setsockopt(socket.SOL_SOCKET,
                    socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            self.sock.close()
        except OSError:
            pass
        self.event("close", self.close_reason)
        self.end = time.time()
        self.write_record(force=True, closed=True)

    def begin(self):
        rule = self.find_rule("connect", self.peer)
        if rule is not None:
            self.wait(rule.get("delay", 0))
            if rule.get("action") == "drop":
                self.event("action", "drop")
                raise Drop("drop", rule.get("rst", False))
        self.wait(self.script().get("greeting_delay", 0))
        sent = self.respond("greeting", self.greeting_text(), self.peer)
        self.greeted_ok = sent is None or sent.startswith("2")

    def process_input(self):
        while self.inbuf:
            if self.hanging:
                self.inbuf.clear()
                return
            if self.data is not None:
                self.process_data()
                continue
            end = self.inbuf.find(b"\n")
            if end < 0:
                if len(self.inbuf) > MAX_LINE:
                    self.overlong = True
                    self.inbuf.clear()
                return
            line = bytes(self.inbuf[:end + 1])
            del self.inbuf[:end + 1]
            if self.overlong:
                self.overlong = False
                self.queue_reply("500 5.5.2 Error: line too long")
                continue
            self.handle_command(line)

    # ---- commands

    def handle_command(self, raw):
        line = text(raw.rstrip(b"\r\n"))
        if len(self.commands) < MAX_EVENTS:
            self.commands.append(line)
        self.event("command", line[:1000])
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        handler = {
            "EHLO": self.cmd_ehlo, "HELO": self.cmd_ehlo,
            "LHLO": self.cmd_ehlo, "MAIL": self.cmd_mail,
            "RCPT": self.cmd_rcpt, "DATA": self.cmd_data,
            "RSET": self.cmd_rset, "NOOP": self.cmd_noop,
            "QUIT": self.cmd_quit, "XCLIENT": self.cmd_xclient,
            "XFORWARD": self.cmd_xforward,
        }.get(verb)
        if not self.greeted_ok and verb != "QUIT":
            self.queue_reply("503 5.5.1 Error: no service here")
            return
        if handler is None:
            self.respond("unknown",
                "500 5.5.2 Error: command not recognized", line)
            return
        handler(verb, arg.strip(" "), line)

    def cmd_ehlo(self, verb, arg, line):
        wanted = ("LHLO",) if self.lmtp else ("EHLO", "HELO")
        if verb not in wanted:
            self.queue_reply("500 5.5.1 Error: %s expected" %
                "/".join(wanted))
            return
        if not arg:
            self.queue_reply("501 5.5.4 Syntax: %s hostname" % verb)
            return
        self.helos.append(line)
        if verb == "HELO":
            default = "250 %s" % self.hostname()
        else:
            lines = [self.hostname()] + self.capabilities()
            default = "\n".join(["250-" + l for l in lines[:-1]] +
                ["250 " + lines[-1]])
        sent = self.respond("ehlo", default, arg)
        if sent is not None and sent.startswith("2"):
            self.helo = line
            self.reset_transaction()

    def check_identity(self, verb, arg):
        """Postfix-like XCLIENT/XFORWARD checks; a reply if refused."""
        attrs = self.advertised_attrs(verb)
        if attrs is None:
            return "500 5.5.2 Error: command not recognized"
        if self.mail is not None:
            return "503 5.5.1 Error: MAIL transaction in progress"
        if not arg:
            return "501 5.5.4 Syntax: %s attribute=value..." % verb
        for item in arg.split():
            name, eq, _ = item.partition("=")
            if not eq or name.upper() not in attrs:
                return "501 5.5.4 Bad %s attribute name: %s" % (
                    verb, name)
        return None

    def take_identity(self, verb, arg, line, lines):
        """Refuse the command, or note it in lines; True if taken."""
        refused = self.check_identity(verb, arg)
        if refused:
            self.queue_reply(refused)
            return False
        lines.append(line)
        return True

    def cmd_xclient(self, verb, arg, line):
        if not self.take_identity(verb, arg, line, self.xclient):
            return
        sent = self.respond("xclient", self.greeting_text(), arg)
        if sent is not None and sent.startswith("220"):
            self.helo = None  # Postfix: start over with EHLO
            self.reset_transaction()

    def cmd_xforward(self, verb, arg, line):
        if self.take_identity(verb, arg, line, self.xforward):
            self.respond("xforward", "250 2.0.0 Ok", arg)

    def cmd_mail(self, verb, arg, line):
        if self.helo is None:
            self.queue_reply("503 5.5.1 Error: send %s first" %
                ("LHLO" if self.lmtp else "HELO/EHLO"))
            return
        if self.mail is not None:
            self.queue_reply("503 5.5.1 Error: nested MAIL command")
            return
        parsed = split_path_arg(arg, "FROM:")
        if parsed is None:
            self.queue_reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            return
        self.txn_count += 1
        self.reload_script()
        sent = self.respond("mail", "250 2.1.0 Ok", arg)
        if sent is not None and sent.startswith("2"):
            self.mail = {"line": line, "address": parsed[1],
                "params": parsed[2], "reply": sent,
                "start": time.time()}

    def cmd_rcpt(self, verb, arg, line):
        if self.mail is None:
            self.queue_reply("503 5.5.1 Error: need MAIL command")
            return
        parsed = split_path_arg(arg, "TO:")
        if parsed is None:
            self.queue_reply("501 5.5.4 Syntax: RCPT TO:<address>")
            return
        sent = self.respond("rcpt", "250 2.1.5 Ok", arg)
        self.rcpts.append({"line": line, "address": parsed[1],
            "params": parsed[2], "arg": arg, "reply": sent,
            "accepted": sent is not None and sent.startswith("2")})

    def cmd_data(self, verb, arg, line):
        if self.mail is None:
            self.queue_reply("503 5.5.1 Error: need MAIL command")
            return
        if not any(r["accepted"] for r in self.rcpts):
            self.queue_reply("554 5.5.1 Error: no valid recipients")
            return
        sent = self.respond("data",
            "354 End data with <CR><LF>.<CR><LF>", arg)
        if sent is None or not sent.startswith("354"):
            return
        self.data = {"scanner": DataScanner(), "buf": bytearray(),
            "reply": sent, "start": time.time(),
            "mid": self.find_rule("mid_data"), "mid_done": False}
        self.event("data_start")

    def cmd_rset(self, verb, arg, line):
        sent = self.respond("rset", "250 2.0.0 Ok", arg)
        if sent is not None and sent.startswith("2"):
            self.reset_transaction()

    def cmd_noop(self, verb, arg, line):
        self.respond("noop", "250 2.0.0 Ok", arg)

    def cmd_quit(self, verb, arg, line):
        self.respond("quit", "221 2.0.0 Bye", arg)
        raise Drop("quit")

    # ---- DATA

    def process_data(self):
        d = self.data
        scanner = d["scanner"]
        chunk = bytes(self.inbuf)
        mid = d["mid"]
        limit = None
        if mid is not None and not d["mid_done"]:
            limit = max(0, int(mid["after_bytes"]) - scanner.nbytes)
            chunk = chunk[:limit]
        consumed, length = scanner.feed(chunk)
        self.store_data(chunk[:consumed])
        del self.inbuf[:consumed]
        if length is not None:
            del d["buf"][length:]
            d["size"] = length
            self.end_of_data()
            return
        if limit is not None and scanner.nbytes >= mid["after_bytes"]:
            d["mid_done"] = True
            self.event("mid_data", scanner.nbytes)
            self.apply_rule(mid, None)

    def store_data(self, chunk):
        buf = self.data["buf"]
        room = self.max_bytes - len(buf)
        if room > 0:
            buf += chunk[:room]

    def end_of_data(self):
        d = self.data
        self.event("data_end", d["size"])
        body = bytes(d["buf"])
        plan = self.plan_data_end(body)
        replies = [p[1] for p in plan]
        self.save_message(complete=True, replies=replies)
        self.data = None
        self.reset_transaction()
        for rule, sent in plan:
            self.apply_rule(rule, sent)
            if self.hanging:
                return

    def plan_data_end(self, body):
        """Decide every end-of-data reply before sending any.

        The message record is written before the first reply leaves, so a
        test that saw the reply always finds the record.  Returns
        [(rule or None, reply text or None)], one entry per reply (LMTP:
        one per accepted recipient).
        """
        qid = "C%dT%d" % (self.id, self.txn_count)
        hay = body.decode("latin-1")
        if not self.lmtp:
            rule = self.find_rule("data_end", hay)
            return [(rule, self.planned_text(rule,
                "250 2.0.0 Ok: queued as %s" % qid))]
        plan, stopped = [], False
        for r in self.rcpts:
            if not r["accepted"]:
                continue
            rule = self.find_rule("data_end_rcpt", r["arg"]) or \
                self.find_rule("data_end", hay)
            default = "250 2.1.5 <%s> Ok: delivered as %s" % (
                r["address"], qid)
            sent = None if stopped else self.planned_text(rule, default)
            if rule is not None and rule.get("action") in ("drop", "hang"):
                stopped = True
            plan.append((rule, sent))
        return plan

    def planned_text(self, rule, default):
        if rule is None:
            return default
        action = rule.get("action", "reply")
        if action != "reply":
            return None
        return self.reply_text(rule.get("reply", default))

    # ---- records

    def save_message(self, complete, replies):
        srv = self.server
        d = self.data
        serial = srv.next_message_serial()
        name = "msg-%06d" % serial
        body = bytes(d["buf"])
        size = d.get("size", d["scanner"].nbytes)
        self.message_serials.append(serial)
        mail = self.mail or {}
        rec = {
            "serial": serial, "id": name, "connection": self.id,
            "transaction": self.txn_count, "lmtp": self.lmtp,
            "start": mail.get("start"), "data_start": d["start"],
            "time": time.time(), "peer": self.peer,
            "helo": self.helo, "xclient": list(self.xclient),
            "xforward": list(self.xforward),
            "mail": mail.get("line"), "mail_from": mail.get("address"),
            "mail_params": mail.get("params"),
            "rcpts": [{k: r[k] for k in ("line", "address", "params",
                "reply", "accepted")} for r in self.rcpts],
            "data_reply": d["reply"], "complete": complete,
            "size": size, "stored_size": len(body),
            "truncated": size > len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "eml": name + ".eml",
            "data_b64": base64.b64encode(body).decode("ascii"),
        }
        if replies is None:
            rec["reply"] = None
        elif self.lmtp:
            rec["reply"] = replies
        else:
            rec["reply"] = replies[0]
        out = srv.outdir
        write_atomic(os.path.join(out, name + ".eml"), body)
        write_atomic(os.path.join(out, name + ".json"),
            json.dumps(rec, indent=1).encode("ascii"))

    def write_record(self, force=False, closed=False):
        """Rewrite conn-N.json: always when forced, else while small."""
        now = time.monotonic()
        if not force and len(self.transcript) > LIVE_RECORD_LIMIT and \
            now - self.last_record < 1.0:
            return
        self.last_record = now
        rec = {
            "id": self.id, "peer": self.peer, "local": self.local,
            "lmtp": self.lmtp, "start": self.start,
            "end": getattr(self, "end", None), "open": not closed,
            "close_reason": self.close_reason, "error": self.error,
            "script_error": self.script_error,
            "helo": list(self.helos), "xclient": list(self.xclient),
            "xforward": list(self.xforward),
            "commands": list(self.commands),
            "messages": list(self.message_serials),
            "transcript_size": self.transcript_size,
            "transcript_truncated":
                self.transcript_size > len(self.transcript),
            "transcript_b64": base64.b64encode(
                bytes(self.transcript)).decode("ascii"),
            "sent_size": self.sent_size,
            "sent_b64": base64.b64encode(bytes(self.sent)).decode(
                "ascii"),
            "events": list(self.events),
        }
        try:
            write_atomic(os.path.join(self.server.outdir,
                "conn-%06d.json" % self.id),
                json.dumps(rec, indent=1).encode("ascii"))
        except OSError as e:
            self.server.log("connection %d: record: %s", self.id, e)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True,
        help="127.0.0.1:PORT, [::1]:PORT or unix:/path (PORT 0 = any)")
    p.add_argument("--lmtp", action="store_true", help="speak LMTP")
    p.add_argument("--dir", required=True, help="output directory")
    p.add_argument("--script", help="JSON script, re-read per connection")
    p.add_argument("--ready-file", help="written once listening")
    p.add_argument("--max-bytes", type=int, default=64 << 20,
        help="bytes kept per message and per transcript (64 MiB)")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    server = Server(args)
    if args.script:
        _, err = server.load_script()
        if err:
            sys.stderr.write("%s\n" % err)
            return 2
    server.listen()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
