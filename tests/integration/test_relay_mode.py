#!/usr/bin/python3
"""Relay mode end to end (proxy/deliver.c, the scheduler): a relay-mode
listener queues the message, the scheduler resolves the recipient domain
through dns_server.py (MX/A records pointing at 127.0.0.x), delivers to
Capture servers listening on those addresses at delivery_port, records the
results, retries, bounces with a DSN delivered to the sender domain's MX
(another Capture), and removes the message.  Also restarts (SIGTERM and
kill -9), the `sluice queue` commands against the running daemon, routes
and smart hosts, and the mail loop to ourselves."""

import email
import email.policy
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from sluicetest import *

ID = r"[0-9A-F]{14}[A-Z2-7]{6}"

ZONE = {
    "records": [
        ["mx.example", "MX", "10 mx1.mx.example"],
        ["mx.example", "MX", "20 mx2.mx.example"],
        ["mx1.mx.example", "A", "127.0.0.2"],
        ["mx2.mx.example", "A", "127.0.0.3"],
        ["plain.example", "A", "127.0.0.4"],
        ["sender.example", "MX", "10 mx.sender.example"],
        ["mx.sender.example", "A", "127.0.0.5"],
        ["null.example", "MX", "0 ."],
        ["loop.example", "MX", "10 self.loop.example"],
        ["self.loop.example", "A", "127.0.0.1"],
        ["smart.example", "A", "127.0.0.6"],
    ],
    "servfail": ["broken.example"],
}

BODY = (b"From: <a@sender.example>\r\nTo: <b@mx.example>\r\n"
        b"Subject: relay test\r\nMessage-ID: <t1@sender.example>\r\n\r\n"
        b"hello\r\n..a dot-stuffed line\r\n")


# ---------------------------------------------------------------- helpers

class Net:
    """The DNS server and the remotes: one port for every 127.0.0.x."""

    def __init__(self, tmp, hosts=("127.0.0.2", "127.0.0.3", "127.0.0.4",
                                   "127.0.0.5", "127.0.0.6"), scripts=None):
        self.tmp = tmp
        self.port = free_port()
        self.dns = DnsServer(tmp / "dns", ZONE)
        self.caps = {}
        for h in hosts:
            self.start(h, (scripts or {}).get(h))

    def start(self, host, script=None):
        self.caps[host] = Capture(self.tmp / ("cap-" + host), host=host,
                                  port=self.port, script=script)
        return self.caps[host]

    def stop(self, host):
        self.caps.pop(host).stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in list(self.caps.values()):
            c.stop()
        self.dns.stop()
        return False


def relay_cfg(net, port=None, **globals_):
    g = standard_globals(delivery_port=net.port, min_backoff=Raw("1s"),
                         max_backoff=Raw("2s"), resolver={
                             "forwarders": [net.dns.forwarder],
                             "timeout": Raw("2s"), "local_zones": False})
    g.update(globals_)
    lst = {"listen": ["127.0.0.1:%d" % (port or free_port())], "mode": "relay"}
    return {"listeners": {"in": lst}, "globals": g}


def send(port, body=BODY, sender="a@sender.example", rcpts=("b@mx.example",),
         mail_params="", rcpt_params=""):
    r = submit(port, body, sender=sender, rcpts=rcpts, mail_params=mail_params,
               rcpt_params=rcpt_params)
    assert r.code == 250, r.raw
    m = re.search(r"queued as (%s)" % ID, r.text)
    assert m, r.raw
    return m[1]


def qfiles(s, state):
    d = s.workdir / "spool" / "queue" / state
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def wait_queue_empty(s, timeout=20):
    wait_for(lambda: not qfiles(s, "active") and not qfiles(s, "deferred"),
             timeout=scaled(timeout), what="an empty queue")


def sluice_queue(s, *args):
    p = subprocess.run([str(s.binary), "-c", str(s.config_path), "queue"] +
                       list(args), capture_output=True, timeout=scaled(20))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def dsn_parts(msg):
    """(parsed message, [per-recipient dicts]) of a DSN in a Capture."""
    m = email.message_from_bytes(msg.unstuffed(), policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    ds = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert len(ds) == 1, [p.get_content_type() for p in parts]
    blocks = ds[0].get_payload()
    rcpts = [dict((k.lower(), v) for k, v in b.items()) for b in blocks[1:]]
    return m, rcpts


# ---------------------------------------------------------------- routing

def test_mx_preference_order_and_fallback(tmp):
    with Net(tmp) as net, Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port)
        got, = net.caps["127.0.0.2"].wait_messages(1)
        assert got.rcpts == ["b@mx.example"], got.rcpts
        assert got.mail_from == "a@sender.example"
        assert got.data.endswith(BODY)
        s.wait_log(r"%s to=<b@mx.example> relay=mx1\.mx\.example\[127\.0\.0\.2\]"
                   r":%d delay=\d+ dsn=2\.0\.0 status=sent" % (qid, net.port))
        s.wait_log(r"%s removed delivered=1 failed=0" % qid)
        assert net.caps["127.0.0.3"].messages() == []
        # The primary is down: the secondary takes it, in the same attempt.
        net.stop("127.0.0.2")
        qid = send(s.port)
        got, = net.caps["127.0.0.3"].wait_messages(1)
        assert got.rcpts == ["b@mx.example"]
        s.wait_log(r"%s to=<b@mx.example> relay=mx2\.mx\.example\[127\.0\.0\.3\]"
                   r":\d+ delay=\d+ dsn=2\.0\.0 status=sent" % qid)
        wait_queue_empty(s)


def test_no_mx_uses_a_record(tmp):
    with Net(tmp) as net, Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port, rcpts=("x@plain.example", "y@PLAIN.example"))
        got, = net.caps["127.0.0.4"].wait_messages(1)
        # one delivery for the domain batch
        assert got.rcpts == ["x@plain.example", "y@PLAIN.example"], got.rcpts
        s.wait_log(r"%s removed delivered=2 failed=0" % qid)


def test_smart_host_route_and_global(tmp):
    with Net(tmp) as net:
        cfg = relay_cfg(net, route=Titled({
            "routed.example": {"smart_host": "[127.0.0.6]:%d" % net.port},
            "mx.example": {}}))
        with Sluice(cfg, tmp / "s") as s:
            qid = send(s.port, rcpts=("r@routed.example", "b@mx.example"))
            got, = net.caps["127.0.0.6"].wait_messages(1)
            assert got.rcpts == ["r@routed.example"]
            got, = net.caps["127.0.0.2"].wait_messages(1)
            assert got.rcpts == ["b@mx.example"]
            s.wait_log(r"%s removed delivered=2 failed=0" % qid)
        # The global smart host takes what no route names; a route without
        # smart_host still goes by MX.
        cfg = relay_cfg(net, smart_host="smart.example:%d" % net.port,
                        route=Titled({"mx.example": {}}))
        with Sluice(cfg, tmp / "s2") as s:
            qid = send(s.port, rcpts=("z@elsewhere.example", "b@mx.example"))
            got = net.caps["127.0.0.6"].wait_messages(2)[1]
            assert got.rcpts == ["z@elsewhere.example"]
            assert len(net.caps["127.0.0.2"].wait_messages(2)) == 2
            s.wait_log(r"%s removed delivered=2 failed=0" % qid)


def test_mail_loop_to_ourselves_defers(tmp):
    with Net(tmp) as net:
        port = free_port()
        cfg = relay_cfg(net, port=port)
        cfg["globals"]["delivery_port"] = port
        with Sluice(cfg, tmp / "s") as s:
            qid = send(s.port, rcpts=("u@loop.example",))
            s.wait_log(r"%s to=<u@loop\.example> relay=none delay=\d+ dsn=4\.4\.6 "
                       r"status=deferred reply=.*loops back to myself" % qid)
            wait_for(lambda: qfiles(s, "deferred") == [qid], timeout=scaled(10))


def test_per_destination_cap_and_order(tmp):
    # Each delivery takes a while; with one slot per destination they go
    # one after the other on one reused connection, in arrival order.
    script = {"rules": [{"phase": "data_end", "delay": 0.4,
                         "reply": "250 2.0.0 Ok"}]}
    with Net(tmp, hosts=("127.0.0.2",), scripts={"127.0.0.2": script}) as net, \
            Sluice(relay_cfg(net, max_per_destination=1), tmp / "s") as s:
        ids = [send(s.port, body=BODY + b"n=%d\r\n" % i) for i in range(4)]
        got = net.caps["127.0.0.2"].wait_messages(4, timeout=scaled(20))
        assert [m.data[-5:] for m in got] == [b"n=%d\r\n" % i for i in range(4)]
        assert len(net.caps["127.0.0.2"].connections()) == 1
        for q in ids:
            s.wait_log(r"%s removed delivered=1" % q)


def test_busy_destination_does_not_hold_up_others(tmp):
    # mx.example never answers the final dot: its one slot stays taken
    # and the messages behind it wait; plain.example's still goes.
    hang = {"rules": [{"phase": "data_end", "action": "hang"}]}
    with Net(tmp, hosts=("127.0.0.2", "127.0.0.4"),
             scripts={"127.0.0.2": hang}) as net, \
            Sluice(relay_cfg(net, max_per_destination=1, max_deliveries=2,
                             drain_timeout=Raw("1s")), tmp / "s") as s:
        for _ in range(3):
            send(s.port)
        qid = send(s.port, rcpts=("x@plain.example",))
        got, = net.caps["127.0.0.4"].wait_messages(1)
        s.wait_log(r"%s removed delivered=1" % qid)
        assert len(net.caps["127.0.0.2"].connections()) == 1


def test_reload_changes_routes_for_later_deliveries(tmp):
    with Net(tmp) as net:
        cfg = relay_cfg(net, route=Titled({
            "mx.example": {"smart_host": "[127.0.0.6]:%d" % net.port}}))
        with Sluice(cfg, tmp / "s") as s:
            send(s.port)
            net.caps["127.0.0.6"].wait_messages(1)
            mark = s.log_mark()
            s.reload(relay_cfg(net, port=s.port))
            s.wait_log(r"reload done generation=2", since=mark)
            qid = send(s.port)
            got, = net.caps["127.0.0.2"].wait_messages(1)
            s.wait_log(r"%s removed delivered=1" % qid)
            assert len(net.caps["127.0.0.6"].messages()) == 1


# ---------------------------------------------------------------- bounces

def test_nxdomain_and_null_mx_bounce_with_dsn(tmp):
    with Net(tmp) as net, Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port, rcpts=("x@nxdomain.example", "y@null.example"),
                   mail_params=" ENVID=env42")
        dsn, = net.caps["127.0.0.5"].wait_messages(1)
        assert dsn.mail_from == "" and dsn.rcpts == ["a@sender.example"]
        m, rcpts = dsn_parts(dsn)
        byaddr = {r["final-recipient"].split(";")[1].strip(): r for r in rcpts}
        assert byaddr["x@nxdomain.example"]["action"] == "failed"
        assert byaddr["x@nxdomain.example"]["status"] == "5.1.2"
        assert byaddr["y@null.example"]["action"] == "failed"
        assert byaddr["y@null.example"]["status"] == "5.1.10"
        assert "does not accept mail" in byaddr["y@null.example"]["diagnostic-code"]
        s.wait_log(r"%s dsn queued dsn_id=%s action=failed to=<a@sender\.example> "
                   r"rcpts=2" % (qid, ID))
        s.wait_log(r"%s removed delivered=0 failed=2" % qid)
        wait_queue_empty(s)


def test_5xx_and_partial_failure_one_dsn_for_failed_only(tmp):
    script = {"rules": [{"phase": "rcpt", "match": "bad@",
                         "reply": "550 5.1.1 No such user here"}]}
    with Net(tmp, scripts={"127.0.0.2": script}) as net, \
            Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port, rcpts=("good@mx.example", "bad@mx.example"),
                   rcpt_params=" NOTIFY=FAILURE")
        got, = net.caps["127.0.0.2"].wait_messages(1)
        assert got.rcpts == ["good@mx.example"]
        dsn, = net.caps["127.0.0.5"].wait_messages(1)
        m, rcpts = dsn_parts(dsn)
        assert len(rcpts) == 1, rcpts
        r = rcpts[0]
        assert r["final-recipient"] == "rfc822; bad@mx.example", r
        assert r["action"] == "failed" and r["status"] == "5.1.1", r
        assert r["remote-mta"] == "dns; mx1.mx.example", r
        assert "550 5.1.1 No such user here" in r["diagnostic-code"], r
        # the original headers are attached
        hdrs = [p for p in m.get_payload()
                if p.get_content_type() == "text/rfc822-headers"]
        assert hdrs and b"Message-ID: <t1@sender.example>" in \
            hdrs[0].get_payload().encode(), m.as_string()[:2000]
        s.wait_log(r"%s to=<bad@mx\.example> relay=mx1\.mx\.example\S* delay=\d+ "
                   r"dsn=5\.1\.1 status=bounced" % qid)
        s.wait_log(r"%s removed delivered=1 failed=1" % qid)
        wait_queue_empty(s)


def test_bounce_of_a_bounce_is_not_sent(tmp):
    script = {"rules": [{"phase": "rcpt", "reply": "550 5.1.1 No such user"}]}
    with Net(tmp, scripts={"127.0.0.2": script}) as net, \
            Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port, sender="")
        s.wait_log(r"%s dsn=none action=failed reason=\"null sender\"" % qid)
        s.wait_log(r"%s removed delivered=0 failed=1" % qid)
        wait_queue_empty(s)
        time.sleep(0.5)
        assert net.caps["127.0.0.5"].messages() == []


# ---------------------------------------------------------------- retries

def test_4xx_then_success_after_retry(tmp):
    script = {"rules": [{"phase": "data_end", "times": 1,
                         "reply": "451 4.3.0 Try again later"}]}
    with Net(tmp, scripts={"127.0.0.2": script}) as net, \
            Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port)
        s.wait_log(r"%s to=<b@mx\.example> relay=mx1\S+ delay=\d+ dsn=4\.3\.0 "
                   r"status=deferred reply=.*451 4\.3\.0 Try again later" % qid)
        s.wait_log(r"%s to=<b@mx\.example> relay=mx1\S+ delay=\d+ dsn=2\.0\.0 "
                   r"status=sent" % qid, timeout=scaled(15))
        msgs = net.caps["127.0.0.2"].messages()
        assert [m.accepted for m in msgs] == [False, True], msgs
        s.wait_log(r"%s removed delivered=1 failed=0" % qid)
        assert net.caps["127.0.0.5"].messages() == []


def test_remote_faults_defer_then_one_delivery(tmp):
    # A drop in the middle of DATA, then garbage for the final reply, then
    # a normal remote: deferred twice, delivered once.
    script = {"rules": [
        {"phase": "mid_data", "after_bytes": 20, "action": "drop", "times": 1},
        {"phase": "data_end", "action": "garbage", "bytes": "xx\r\n",
         "close": True, "times": 1}]}
    with Net(tmp, hosts=("127.0.0.2",), scripts={"127.0.0.2": script}) as net, \
            Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port)
        s.wait_log(r"%s removed delivered=1 failed=0" % qid, timeout=scaled(30))
        log = s.log_path.read_text()
        assert len(re.findall(r"%s to=<b@mx\.example> .*status=deferred" % qid,
                              log)) == 2, log
        msgs = net.caps["127.0.0.2"].messages(include_incomplete=True)
        assert [m.accepted for m in msgs].count(True) == 1, msgs


def test_dns_servfail_defers(tmp):
    with Net(tmp, hosts=()) as net, Sluice(relay_cfg(net), tmp / "s") as s:
        qid = send(s.port, rcpts=("x@broken.example",))
        s.wait_log(r"%s to=<x@broken\.example> relay=none delay=\d+ dsn=4\.4\.3 "
                   r"status=deferred" % qid)
        wait_for(lambda: qfiles(s, "deferred") == [qid], timeout=scaled(10))


def test_expiry_bounces_with_4_4_7(tmp):
    with Net(tmp, hosts=("127.0.0.5",)) as net, \
            Sluice(relay_cfg(net, max_queue_lifetime=Raw("3s")), tmp / "s") as s:
        qid = send(s.port)          # mx1 and mx2 are down: connection refused
        s.wait_log(r"%s to=<b@mx\.example> .*status=deferred" % qid)
        s.wait_log(r"%s to=<b@mx\.example> relay=none delay=\d+ dsn=4\.4\.7 "
                   r"status=expired" % qid, timeout=scaled(15))
        dsn, = net.caps["127.0.0.5"].wait_messages(1)
        m, rcpts = dsn_parts(dsn)
        assert rcpts[0]["action"] == "failed" and rcpts[0]["status"] == "4.4.7"
        wait_queue_empty(s)


def test_delay_warning_sent_once(tmp):
    with Net(tmp, hosts=("127.0.0.5",)) as net, \
            Sluice(relay_cfg(net, delay_warning_time=Raw("2s")), tmp / "s") as s:
        qid = send(s.port)
        s.wait_log(r"%s dsn queued dsn_id=%s action=delayed" % (qid, ID),
                   timeout=scaled(15))
        dsn, = net.caps["127.0.0.5"].wait_messages(1)
        m, rcpts = dsn_parts(dsn)
        assert rcpts[0]["action"] == "delayed", rcpts
        # more attempts, no second warning
        mark = s.log_mark()
        s.wait_log(r"%s to=<b@mx\.example> .*status=deferred" % qid, since=mark,
                   timeout=scaled(10))
        s.wait_log(r"%s to=<b@mx\.example> .*status=deferred" % qid,
                   since=s.log_mark(), timeout=scaled(10))
        assert len(net.caps["127.0.0.5"].messages()) == 1


# ---------------------------------------------------------------- restarts

def test_queue_survives_sigterm_and_kill(tmp):
    with Net(tmp, hosts=("127.0.0.5",)) as net:
        port = free_port()
        cfg = relay_cfg(net, port=port, min_backoff=Raw("1h"), max_backoff=Raw("1h"),
                        pidfile=str(tmp / "s" / "sluice.pid"))
        s = Sluice(cfg, tmp / "s", start=False)
        s.start()
        q1 = send(s.port)
        s.wait_log(r"%s to=<b@mx\.example> .*status=deferred" % q1)
        assert s.stop() == 0
        s.start()
        q2 = send(s.port)
        s.wait_log(r"%s to=<b@mx\.example> .*status=deferred" % q2)
        s.kill()
        net.start("127.0.0.2")
        s.start()
        # At start deferred messages whose time has not come wait: flush.
        rc, out, err = sluice_queue(s, "flush")
        assert rc == 0, (out, err)
        msgs = net.caps["127.0.0.2"].wait_messages(2)
        time.sleep(1)
        msgs = net.caps["127.0.0.2"].messages()
        assert len(msgs) == 2, msgs
        wait_queue_empty(s)
        assert s.stop() == 0


def test_sigterm_cancels_a_hung_delivery_and_keeps_the_message(tmp):
    script = {"rules": [{"phase": "data_end", "action": "hang"}]}
    with Net(tmp, hosts=("127.0.0.2",), scripts={"127.0.0.2": script}) as net:
        cfg = relay_cfg(net, drain_timeout=Raw("1s"))
        s = Sluice(cfg, tmp / "s", start=False)
        s.start()
        qid = send(s.port)
        net.caps["127.0.0.2"].wait_connections(1)
        time.sleep(0.5)
        assert s.stop() == 0
        assert qfiles(s, "active") == [qid]
        s.start(ready="log")
        s.wait_log(r"queue ready .* requeued=1")
        assert qfiles(s, "deferred") == [qid] or qfiles(s, "active") == [qid]
        s.stop()


# ---------------------------------------------------------------- operator

def test_queue_commands_against_running_daemon(tmp):
    with Net(tmp, hosts=("127.0.0.5",)) as net:
        cfg = relay_cfg(net, min_backoff=Raw("1h"), max_backoff=Raw("1h"),
                        pidfile=str(tmp / "s" / "sluice.pid"))
        with Sluice(cfg, tmp / "s") as s:
            q1 = send(s.port)
            q2 = send(s.port, rcpts=("c@mx.example",))
            for q in (q1, q2):
                s.wait_log(r"%s to=<\S+> .*status=deferred" % q)
            rc, out, _ = sluice_queue(s, "list")
            assert rc == 0 and re.search(r"^%s deferred .* pending=1 attempts=1" % q1,
                                         out, re.M), out
            rc, out, _ = sluice_queue(s, "show", q1)
            assert rc == 0 and "rcpt: <b@mx.example> state=deferred" in out, out
            assert sluice_queue(s, "hold", q1)[0] == 0
            assert qfiles(s, "hold") == [q1]
            assert sluice_queue(s, "delete", q2)[0] == 0
            assert qfiles(s, "deferred") == []
            assert sluice_queue(s, "release", q1)[0] == 0
            assert qfiles(s, "deferred") == [q1]
            net.start("127.0.0.2")
            mark = s.log_mark()
            rc, out, err = sluice_queue(s, "flush")
            assert rc == 0, (out, err)
            s.wait_log(r"relay flush", since=mark)
            got, = net.caps["127.0.0.2"].wait_messages(1)
            assert got.rcpts == ["b@mx.example"]
            s.wait_log(r"%s removed delivered=1 failed=0" % q1)
            mark = s.log_mark()
            os.kill(s.proc.pid, signal.SIGUSR1)
            s.wait_log(r"relay status messages_open=0 deliveries=0 .* sent=1 ",
                       since=mark)


def test_config_errors(tmp):
    class FakeNet:
        port = 2525
        dns = type("D", (), {"forwarder": "127.0.0.1@53"})()
    cases = [
        ({"min_backoff": Raw("2h"), "max_backoff": Raw("1h")},
         r"min_backoff is longer than max_backoff"),
        ({"max_deliveries": 0}, r"max_deliveries = 0 is out of range"),
        ({"max_queue_lifetime": Raw("soon")},
         r"max_queue_lifetime: \"soon\" is not a duration"),
        ({"route": Titled({"a.example": {"smart_host": "[bad host]:x"}})},
         r"sluice\.conf:\d+: .*smart_host"),
    ]
    for i, (extra, want) in enumerate(cases):
        rc, out = check_config(relay_cfg(FakeNet(), **extra), tmp / ("c%d" % i))
        assert rc != 0 and re.search(want, out), (extra, out)


def test_example_relay_conf_checks():
    conf = Path(__file__).resolve().parent.parent.parent / "conf" / "relay.conf"
    p = subprocess.run([str(sluice_binary()), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=scaled(20))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "configuration is valid" in p.stdout + p.stderr


run_tests(globals())
