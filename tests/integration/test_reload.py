#!/usr/bin/python3
"""SIGHUP reload (listeners come and go, a bad config is refused, sessions
keep their generation, no transaction fails under load), SIGTERM drain,
and the -t / -o command line modes."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from sluicetest import *

BODY = b"Subject: reload\r\nFrom: a@example.org\r\n\r\nhello\r\n"


# ---------------------------------------------------------------- helpers

def listener(port, banner=None, chain=None, backend="out"):
    body = {"listen": ["127.0.0.1:%d" % port], "backend": backend}
    if banner:
        body["banner"] = banner
    if chain:
        body["chain"] = list(chain)
    return body


def conf(listeners, backend, filters=None, backend_options=None, **g):
    be = {"type": "smtp", "servers": [backend]}
    be.update(backend_options or {})
    return {"listeners": listeners, "backends": {"out": be},
            "filters": filters or {}, "globals": standard_globals(**g)}


BLOCK_MAIL = {"block": {"module": "access", "phase": "mail",
                        "verdict": "reject"}}


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            try:
                data = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                return True
            return data == b""
    except ConnectionRefusedError:
        return True


def line_of(text, needle):
    """1-based number of the first line of text containing needle."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError("%r not in config" % needle)


def reload_and_wait(s, cfg, generation):
    mark = s.log_mark()
    s.reload(cfg)
    s.wait_log(r"reload done generation=%d " % generation, since=mark)


# ---------------------------------------------------------------- reload

def test_reload_adds_and_removes_listeners(tmp):
    p1, p2 = free_port(), free_port()
    with Capture(tmp / "cap") as cap:
        with Sluice(conf({"one": listener(p1, "ESMTP one")}, cap.address),
                    tmp / "sluice") as s:
            assert refused(p2)
            reload_and_wait(s, conf({"one": listener(p1, "ESMTP one"),
                                     "two": listener(p2, "ESMTP two")},
                                    cap.address), 2)
            s.wait_log(r"listening on 127\.0\.0\.1:%d" % p2)
            with RawClient(p2) as c:
                hello(c, banner="ESMTP two")
                assert transaction(c, BODY).code == 250
                ask(c, "QUIT", 221)
            with RawClient(p1) as c:
                c.expect("220 %s ESMTP one" % HOSTNAME)
                ask(c, "QUIT", 221)
            reload_and_wait(s, conf({"two": listener(p2, "ESMTP two")},
                                    cap.address), 3)
            s.wait_log(r"listener 127\.0\.0\.1:%d closed" % p1)
            wait_for(lambda: refused(p1), timeout=scaled(5),
                     what="port %d to refuse connections" % p1)
            with RawClient(p2) as c:
                hello(c, banner="ESMTP two")
                assert transaction(c, BODY).code == 250
                ask(c, "QUIT", 221)
            assert s.stop() == 0
        assert len(cap.wait_messages(2)) == 2


def test_reload_refuses_broken_config(tmp):
    port = free_port()
    with Capture(tmp / "cap") as cap:
        good = conf({"in": listener(port, "ESMTP good")}, cap.address)
        with Sluice(good, tmp / "sluice") as s:
            path = str(s.config_path)
            good_text = s.config_text

            # 1. a syntax error: a section that is never closed
            broken = good_text + '\nlistener "broken" {\n\tbanner = "x"\n'
            n = line_of(broken, 'listener "broken"')
            mark = s.log_mark()
            s.reload(broken, defaults=False)
            s.wait_log(r"reload failed: keeping the running configuration",
                       since=mark)
            m = s.wait_log(r"reload failed: (%s):(\d+): " % re.escape(path),
                           since=mark)
            assert int(m.group(2)) == n, (m.group(0), n)

            # 2. a listener naming a backend that does not exist
            bad = conf({"in": dict(listener(port, "ESMTP bad"),
                                   backend="nosuch")}, cap.address)
            mark = s.log_mark()
            s.reload(bad)
            n = line_of(s.config_text, 'listener "in"')
            s.wait_log(r"reload failed: %s:%d: listener \"in\": backend "
                       r"\"nosuch\" is not defined" % (re.escape(path), n),
                       since=mark)
            s.wait_log(r"reload failed: keeping the running configuration",
                       since=mark)
            assert "reload done" not in s.log()

            # the old configuration still serves
            with RawClient(port) as c:
                hello(c, banner="ESMTP good")
                assert transaction(c, BODY).code == 250
                ask(c, "QUIT", 221)
            # and a good config is taken again afterwards
            reload_and_wait(s, conf({"in": listener(port, "ESMTP fixed")},
                                    cap.address), 2)
            with RawClient(port) as c:
                c.expect("220 %s ESMTP fixed" % HOSTNAME)
                ask(c, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1


def test_session_keeps_its_generation(tmp):
    port = free_port()
    with Capture(tmp / "cap") as cap:
        with Sluice(conf({"in": listener(port, "ESMTP gen-one")},
                         cap.address), tmp / "sluice") as s:
            with RawClient(port) as old:
                hello(old, banner="ESMTP gen-one")
                reload_and_wait(s, conf(
                    {"in": listener(port, "ESMTP gen-two", ["block"])},
                    cap.address, filters=BLOCK_MAIL), 2)
                with RawClient(port) as new:
                    hello(new, banner="ESMTP gen-two")
                    ask(new, "MAIL FROM:<a@example.org>", "550 5.7.1 ")
                    ask(new, "QUIT", 221)
                # the old session still runs the old (empty) chain
                r = transaction(old, BODY)
                assert r.code == 250, r.text
                ask(old, "QUIT", 221)
        m, = cap.wait_messages(1)
        assert m.data.endswith(BODY)


def test_old_generation_released_with_its_last_session(tmp):
    """DESIGN.md: an old generation is freed when its last session ends
    (not at some later, unrelated event)."""
    port = free_port()
    with Capture(tmp / "cap") as cap:
        with Sluice(conf({"in": listener(port, "ESMTP gen-one")},
                         cap.address), tmp / "sluice") as s:
            with RawClient(port) as old:
                hello(old, banner="ESMTP gen-one")
                reload_and_wait(s, conf({"in": listener(port, "ESMTP two")},
                                        cap.address), 2)
                time.sleep(0.3)
                assert "generation=1 released" not in s.log()
                assert transaction(old, BODY).code == 250
                ask(old, "QUIT", 221)
            s.wait_log(r"close client=127\.0\.0\.1 transactions=1 ")
            # no other event (signal, connection) may be needed for this
            s.wait_log(r"generation=1 released", timeout=scaled(5))


def test_reload_under_load(tmp):
    port = free_port()
    filters = {"tag": {"module": "access", "phase": "mail",
                       "verdict": "continue", "add_header": "X-Gen: beta"}}
    max_messages, max_seconds = 300, 15.0
    with Capture(tmp / "cap") as cap:
        configs = [
            conf({"in": listener(port, "ESMTP alpha")}, cap.address),
            conf({"in": listener(port, "ESMTP beta", ["tag"])}, cap.address,
                 filters=filters),
        ]
        with Sluice(configs[0], tmp / "sluice") as s:
            lock = threading.Lock()
            state = {"sent": 0, "ok": 0, "failures": []}
            stop = threading.Event()
            deadline = time.monotonic() + max_seconds

            def done():
                return stop.is_set() or time.monotonic() > deadline or \
                    state["sent"] >= max_messages

            def more():
                with lock:
                    if done():
                        return False
                    state["sent"] += 1
                    return True

            def client(n):
                i = 0
                try:
                    while not done():
                        with RawClient(port, timeout=scaled(10)) as c:
                            c.expect(220)
                            ask(c, "EHLO client%d.test" % n, 250)
                            for _ in range(4):
                                if not more():
                                    break
                                i += 1
                                r = transaction(c, b"Subject: %d-%d\r\n\r\n"
                                                b"x\r\n" % (n, i))
                                with lock:
                                    if r.code == 250:
                                        state["ok"] += 1
                                    else:
                                        state["failures"].append(r.text)
                                time.sleep(0.02)
                            ask(c, "QUIT", 221)
                except Exception as e:
                    with lock:
                        state["failures"].append("client %d: %r" % (n, e))

            threads = [threading.Thread(target=client, args=(n,), daemon=True)
                       for n in range(4)]
            for t in threads:
                t.start()
            try:
                for i in range(5):
                    time.sleep(0.25)
                    reload_and_wait(s, configs[(i + 1) % 2], i + 2)
            finally:
                time.sleep(0.25)
                stop.set()
                for t in threads:
                    t.join(scaled(30))
            assert not any(t.is_alive() for t in threads), "clients hung"
            assert state["failures"] == [], state["failures"][:5]
            ok = state["ok"]
            assert ok > 20, "too little load to mean anything: %d" % ok
            cap.wait_messages(ok)
            time.sleep(0.3)
            msgs = cap.messages()
            assert len(msgs) == ok, (len(msgs), ok)
            assert all(m.accepted for m in msgs)
            tagged = sum(1 for m in msgs if b"\r\nX-Gen: beta\r\n" in m.data)
            assert 0 < tagged < ok, (tagged, ok)  # both generations served
            assert s.stop() == 0


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_idle_session(tmp):
    port = free_port()
    with Capture(tmp / "cap") as cap:
        with Sluice(conf({"in": listener(port)}, cap.address,
                         drain_timeout="30s"), tmp / "sluice") as s:
            with RawClient(port) as c:
                c.expect(220)
                ask(c, "EHLO client.test", 250)
                t0 = time.monotonic()
                os.kill(s.pid, signal.SIGTERM)
                c.expect("421 4.3.2 ")
                c.expect_closed()
                rc = s.proc.wait(scaled(10))
                took = time.monotonic() - t0
            assert rc == 0, rc
            assert took < 10.0, took  # an idle session does not wait 30 s
            assert s.stop() == 0
            assert re.search(r"shutdown: all sessions finished", s.log())


def test_sigterm_during_transaction(tmp):
    port = free_port()
    script = {"rules": [{"phase": "data_end", "delay": 1.0}]}
    with Capture(tmp / "cap", script=script) as cap:
        with Sluice(conf({"in": listener(port)}, cap.address,
                         drain_timeout="10s"), tmp / "sluice") as s:
            with RawClient(port) as c:
                c.expect(220)
                ask(c, "EHLO client.test", 250)
                ask(c, "MAIL FROM:<a@example.org>", 250)
                ask(c, "RCPT TO:<b@example.net>", 250)
                ask(c, "DATA", 354)
                c.send(BODY + b".\r\n")
                cap.wait_messages(1)  # the backend holds its reply 1 s
                os.kill(s.pid, signal.SIGTERM)
                s.wait_log(r"shutdown requested")
                wait_for(lambda: refused(port), timeout=scaled(5),
                         what="the listener to close")
                c.expect("250 2.0.0 Ok: queued as ")
                c.expect("421 4.3.2 ")
                c.expect_closed()
                rc = s.proc.wait(scaled(10))
            assert rc == 0, rc
            assert s.stop() == 0
        m, = cap.wait_messages(1)
        assert m.accepted


# ---------------------------------------------------------------- -t, -o

def test_check_config(tmp):
    port = free_port()
    good = conf({"in": listener(port)}, "127.0.0.1:25")
    rc, out = check_config(good, tmp / "good")
    path = str(tmp / "good" / "sluice.conf")
    assert rc == 0, out
    assert out.strip() == "sluice: %s: configuration is valid" % path, out

    bad = conf({"in": dict(listener(port), backend="nosuch")}, "127.0.0.1:25")
    rc, out = check_config(bad, tmp / "bad")
    path = str(tmp / "bad" / "sluice.conf")
    text = (tmp / "bad" / "sluice.conf").read_text()
    n = line_of(text, 'listener "in"')
    assert rc == 1, (rc, out)
    assert "%s:%d: listener \"in\": backend \"nosuch\" is not defined" % (
        path, n) in out, out
    assert out.rstrip().endswith("sluice: %s: configuration is not valid" %
                                 path), out

    (tmp / "syntax").mkdir()
    syntax = (tmp / "syntax" / "sluice.conf")
    syntax.write_text('hostname = "mx.test"\nlistener "in" {\n'
                      '\tlisten = { "127.0.0.1:%d" }\n\tbackend = "out"\n'
                      '\nbackend "out" {\n\tservers = { "127.0.0.1:25" }\n}\n'
                      % port)
    rc, out = check_config(syntax.read_text(), tmp / "syntax", defaults=False)
    assert rc == 1, (rc, out)
    assert re.search(r"^%s:2: " % re.escape(str(syntax)), out, re.M), out

    rc, out = check_config(good, tmp / "unknown-option")
    assert rc == 0
    text = (tmp / "unknown-option" / "sluice.conf").read_text()
    text += "no_such_option = 1\n"
    n = len(text.splitlines())
    rc, out = check_config(text, tmp / "unknown-option", defaults=False)
    assert rc == 1, (rc, out)
    assert re.search(r"^%s:%d: .*no_such_option" % (re.escape(str(
        tmp / "unknown-option" / "sluice.conf")), n), out, re.M), out


def test_print_chains(tmp):
    p1, p2 = free_port(), free_port()
    filters = {
        "tag": {"module": "access", "phase": "mail", "verdict": "continue"},
        "block": {"module": "access", "phase": "rcpt", "mode": "observe",
                  "on_error": "accept", "timeout": "2s"},
    }
    cfg = conf({"in": listener(p1, chain=["tag", "block"]),
                "plain": listener(p2)}, "127.0.0.1:2525", filters=filters)
    s = Sluice(cfg, tmp / "o", start=False)
    cmd = s._command(["-o", "-c", str(s.config_path)])
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=scaled(30))
    out = p.stdout.decode()
    assert p.returncode == 0, (p.returncode, out, p.stderr)
    hooks = "hooks=connect,helo,mail,rcpt,data,header,eom,reset"
    assert out.splitlines() == [
        'listener "in" on 127.0.0.1:%d' % p1,
        '  backend "out" (smtp 127.0.0.1:2525)',
        '  1. tag (access) mode=enforce on_error=tempfail timeout=30000ms '
        + hooks,
        '  2. block (access) mode=observe on_error=accept timeout=2000ms '
        + hooks,
        'listener "plain" on 127.0.0.1:%d' % p2,
        '  backend "out" (smtp 127.0.0.1:2525)',
        '  chain: empty',
    ], out


run_tests(globals())
