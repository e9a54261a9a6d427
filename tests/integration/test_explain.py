#!/usr/bin/python3
"""sluice --explain: the configured chain run offline on a saved message,
every filter's verdict and reason printed, exit code by outcome, DNS asked
of the configured resolver, nothing delivered anywhere."""
import subprocess

from sluicetest import *

MESSAGE = b"From: a@example.org\nSubject: hi\n\n.leading dot\nbody\n"


def _explain(tmp, cfg, args, message=MESSAGE):
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "sluice.conf"
    path.write_text(make_config(**cfg))
    p = subprocess.run([str(sluice_binary()), "--explain", "-c", str(path)] + args,
                       input=message, capture_output=True, timeout=scaled(60))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def _cfg(backend="127.0.0.1:9", **kw):
    return standard_config(backend, **kw)


ARGS = ["--client", "192.0.2.7", "--helo", "client.example", "--from", "a@example.org",
        "--to", "b@spam.example", "--to", "c@ok.example"]


def test_verdicts_and_final_message(tmp):
    with Capture(tmp / "cap") as cap:
        cfg = _cfg(cap.address, chain=["norcpt", "tag"], filters={
            "norcpt": {"module": "access", "phase": "rcpt", "match": ["*@spam.example"],
                       "verdict": "reject", "reply": "550 5.7.1 no spam here"},
            "tag": {"module": "access", "phase": "eom", "match": ["*"],
                    "verdict": "continue", "add_header": "X-Tag: yes"}})
        rc, out, err = _explain(tmp / "x", cfg, ARGS)
        assert rc == 0, (rc, out, err)
        assert 'filter=norcpt phase=rcpt verdict=reject reply="550 5.7.1 no spam here"' \
            in out, out
        assert "< 550 5.7.1 no spam here" in out, out
        assert "  RCPT TO:<c@ok.example>\n" in out and "RCPT TO:<b@spam.example>\n  " \
            not in out.split("backend would receive:")[1], out
        assert "    X-Tag: yes\n" in out, out
        assert out.rstrip().endswith("< 221 2.0.0 Bye"), out
        assert "result: accepted" in out, out
        # nothing went to the configured backend
        assert cap.connections() == [], cap.connections()


def test_exit_codes(tmp):
    def one(name, verdict, reply):
        cfg = _cfg(chain=["f"], filters={"f": {"module": "access", "phase": "mail",
                                                "verdict": verdict, "reply": reply}})
        return _explain(tmp / name, cfg, ARGS)
    rc, out, _ = one("rej", "reject", "553 5.7.1 bad sender")
    assert rc == 1 and "result: rejected at mail" in out, (rc, out)
    rc, out, _ = one("tmp", "tempfail", "451 4.7.1 later")
    assert rc == 2 and "result: tempfailed at mail" in out, (rc, out)
    # every recipient refused
    cfg = _cfg(chain=["f"], filters={"f": {"module": "access", "phase": "rcpt",
                                            "verdict": "reject"}})
    rc, out, _ = _explain(tmp / "rcpt", cfg, ARGS)
    assert rc == 1 and "result: rejected at rcpt" in out, (rc, out)


def test_observe_mode_shown(tmp):
    cfg = _cfg(chain=["f"], filters={"f": {"module": "access", "phase": "mail",
                                            "verdict": "reject", "mode": "observe"}})
    rc, out, _ = _explain(tmp / "o", cfg, ARGS)
    assert rc == 0, out
    assert "filter=f phase=mail verdict=reject applied=continue" in out, out


def test_filter_error_shown(tmp):
    cfg = _cfg(chain=["f"], filters={"f": {"module": "access", "phase": "mail",
                                            "simulate_error": True,
                                            "on_error": "tempfail"}})
    rc, out, _ = _explain(tmp / "e", cfg, ARGS)
    assert rc == 2, out
    assert 'filter=f phase=mail verdict=tempfail error="simulated error"' in out, out
    assert "< 451 4.7.1" in out, out


def test_dns_asked_of_configured_resolver(tmp):
    probe = sluice_binary().resolve().parent.parent / "tests" / "plugins" / \
        ".libs" / "dnsprobe.so"
    if not probe.exists():
        skip("dnsprobe.so not built")
    with DnsServer(tmp / "dns", {"records": [["client.example", "A", "192.0.2.7"]]}) as dns:
        cfg = _cfg(chain=["p"], filters={"p": {"module": "dnsprobe", "type": "A"}},
                   globals={"load": [str(probe)],
                            "resolver": {"forwarders": [dns.forwarder]}})
        rc, out, _ = _explain(tmp / "d", cfg, ARGS)
        assert rc == 1, out
        assert "dns status=ok rcode=0 n=1 [192.0.2.7]" in out, out
        assert ("client.example", "A") in dns.queries(), dns.queries()


def test_bad_arguments(tmp):
    cfg = _cfg()
    rc, _, err = _explain(tmp / "a", cfg, ["--client", "192.0.2.7"])
    assert rc == 2 and "needs --client, --helo, --from" in err, err
    rc, _, err = _explain(tmp / "b", cfg, ["--client", "not-ip", "--helo", "h", "--from",
                                           "a@b", "--to", "c@d"])
    assert rc == 3 and "not an IP address" in err, err
    rc, _, err = _explain(tmp / "c", cfg, ARGS + ["--listener", "nope"])
    assert rc == 3 and 'no listener "nope"' in err, err


run_tests(globals())
