#!/usr/bin/python3
"""TLS towards clients: STARTTLS (RFC 3207) and implicit TLS (RFC 8314),
SNI, reload of certificates, tls_required, the TLS clause of Received,
and pipelined plaintext after STARTTLS never executed (CVE-2011-0411)."""
import re
import ssl

from sluicetest import *
from tlstest import *

PIPELINED = b"MAIL FROM:<a@example.org>\r\n"
BODY = b"Subject: tls\r\nFrom: a@example.org\r\n\r\nover TLS\r\n..dot\r\n"


def transaction_ok(c):
    r = transaction(c, BODY)
    assert r.code == 250, r


# ---------------------------------------------------------------- STARTTLS

def test_starttls_smtplib_byte_exact(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki)) as (cap, s):
        with smtp_client(s.port) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("starttls")
            smtp._host = "mx.test"     # the name to verify (smtplib uses the connect host)
            smtp.starttls(context=client_context(pki))
            smtp.ehlo()
            assert not smtp.has_extn("starttls")
            # smtplib dot-stuffs: what reaches the backend is BODY again.
            smtp.sendmail("a@example.org", ["b@example.net"], BODY.replace(b"\n..", b"\n."))
        m, = cap.wait_messages(1)
        assert m.data.endswith(BODY), m.data
        received = m.data[:len(m.data) - len(BODY)].decode()
        assert re.search(r"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\)",
                         received), received
        assert "with ESMTPS id" in received, received
        s.wait_log(r"tls established mode=starttls version=TLSv1\.3 cipher=TLS_\w+ "
                   r"bits=\d+/\d+ sni=mx\.test")
        s.wait_log(r"done txn=1 result=\S+ .* tls=TLSv1\.3")


def test_starttls_swaks(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki)) as (cap, s):
        rc, out = swaks("--server", "127.0.0.1", "--port", str(s.port), "--tls",
                        "--from", "a@example.org", "--to", "b@example.net",
                        "--helo", "client.test", "--body", "via swaks")
        assert rc == 0, out
        assert "TLS started" in out, out
        m, = cap.wait_messages(1)
        assert b"via swaks" in m.data
        assert b"with ESMTPS" in m.data


def test_pipelined_plaintext_after_starttls_is_discarded(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki)) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            c.send(b"STARTTLS\r\n" + PIPELINED)
            r = c.read_reply()
            assert r.raw == b"220 2.0.0 Ready to start TLS\r\n", r.raw
            # Nothing else was answered in clear: the MAIL was not read as a command.
            assert not c.buf, bytes(c.buf)
            start_tls(c, pki)
            # No transaction exists and HELO was forgotten (RFC 3207 4.2).
            ask(c, "RCPT TO:<b@example.net>", "503 5.5.1")
            ask(c, "MAIL FROM:<a@example.org>", "503 5.5.1")
            r = ask(c, "EHLO client.test", 250)
            assert "STARTTLS" not in r.lines, r.lines
            transaction_ok(c)
            ask(c, "QUIT", 221)
        s.wait_log(r"starttls discarded=%d reason=pipelined_after_starttls" % len(PIPELINED))
        m, = cap.wait_messages(1)
        # The backend saw one MAIL only: the one sent over TLS.
        assert [v for v in cap.commands() if v.startswith("MAIL")] == [m.mail]


def test_starttls_twice_and_with_argument(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki)) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS now", "501 5.5.4")
            ask(c, "STARTTLS", "220 2.0.0")
            start_tls(c, pki)
            ask(c, "EHLO client.test", 250)
            ask(c, "STARTTLS", "503 5.5.1")
            transaction_ok(c)
            ask(c, "QUIT", 221)


def test_starttls_not_configured(tmp):
    with relay(tmp) as (cap, s):
        with RawClient(s.port) as c:
            r = hello(c)
            assert "STARTTLS" not in r.lines, r.lines
            ask(c, "STARTTLS", "502 5.5.1")
            transaction_ok(c)


def test_handshake_failure_closes(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki)) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            c.send(b"this is not a TLS ClientHello\r\n" * 4)
            c.read_until_closed()
        s.wait_log(r"tls handshake failed mode=starttls error=")
        # The daemon still serves.
        with RawClient(s.port) as c:
            hello(c)


def test_min_version(tmp):
    """tls_min_version = TLSv1.3 refuses a TLS 1.2 client; TLS 1.3 is served."""
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki, tls_min_version="TLSv1.3")) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            ctx = client_context(pki)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.wrap_socket(c.sock, server_hostname="mx.test")
                assert False, "a TLS 1.2 handshake succeeded"
            except (ssl.SSLError, ConnectionError):
                pass
        s.wait_log(r"tls handshake failed mode=starttls error=\".*(unsupported protocol|version)")
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            assert start_tls(c, pki).version() == "TLSv1.3"


def test_tls_required(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki, tls_required=True)) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "MAIL FROM:<a@example.org>", "530 5.7.0 Must issue a STARTTLS command first")
            ask(c, "STARTTLS", 220)
            start_tls(c, pki)
            ask(c, "EHLO client.test", 250)
            transaction_ok(c)
        assert len(cap.wait_messages(1)) == 1


def test_identity_proto_after_starttls(tmp):
    """XFORWARD says ESMTPS; XCLIENT says ESMTP, the only names Postfix takes."""
    pki = make_pki(tmp)
    for script, attr, want in (({"xforward": True}, "xforward", "PROTO=ESMTPS"),
                               ({"xclient": True}, "xclient", "PROTO=ESMTP")):
        d = tmp / attr
        d.mkdir()
        with relay(d, script=script, listener=tls_listener(pki)) as (cap, s):
            with RawClient(s.port) as c:
                hello(c)
                ask(c, "STARTTLS", 220)
                start_tls(c, pki)
                ask(c, "EHLO client.test", 250)
                transaction_ok(c)
            m, = cap.wait_messages(1)
            words = " ".join(getattr(m, attr)).split()
            assert want in words, (attr, words)


# ---------------------------------------------------------------- SNI, implicit, client certs

def test_sni_picks_the_matching_certificate(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki, certs=("mx", "other"))) as (cap, s):
        for name, want in (("mx.test", "mx.test"), ("other.test", "other.test"),
                           ("smtp.other.test", "other.test"), ("nothing.test", "mx.test")):
            with RawClient(s.port) as c:
                hello(c)
                ask(c, "STARTTLS", 220)
                ctx = client_context(pki)
                ctx.check_hostname = False
                c.sock = ctx.wrap_socket(c.sock, server_hostname=name)
                assert subject_cn(c.sock)["commonName"] == want, (name, c.sock.getpeercert())
                ask(c, "EHLO client.test", 250)
                ask(c, "QUIT", 221)


def test_greeting_delay_after_implicit_tls_handshake(tmp):
    """On an implicit TLS listener the client speaks first (the handshake);
    greeting_delay starts after it, and talking over TLS before the 220 is
    early talk: 554, nothing executed."""
    pki = make_pki(tmp)
    port = free_port()
    with Capture(tmp / "cap") as cap:
        cfg = standard_config(cap.address, port=port, listener=tls_listener(
            pki, "implicit", greeting_delay=Raw("1s"), reverse_lookup=False))
        with Sluice(cfg, tmp / "sluice", ready="log") as s:
            with RawClient(port) as c:
                start_tls(c, pki)
                c.send(b"EHLO client.test\r\n")
                c.expect("554 5.5.1")
                c.read_until_closed()
            s.wait_log(r"disconnect reason=early_talker early_talker=yes bytes=18")
            with RawClient(port) as c:
                start_tls(c, pki)
                hello(c)
                transaction_ok(c)
            assert len(cap.wait_messages(1)) == 1


def test_implicit_tls(tmp):
    pki = make_pki(tmp)
    port = free_port()
    with Capture(tmp / "cap") as cap:
        cfg = standard_config(cap.address, port=port, listener=tls_listener(pki, "implicit"))
        with Sluice(cfg, tmp / "sluice", ready="log") as s:
            with RawClient(port) as c:
                start_tls(c, pki)
                r = hello(c)
                assert "STARTTLS" not in r.lines
                ask(c, "STARTTLS", "503 5.5.1")
                transaction_ok(c)
                ask(c, "QUIT", 221)
            m, = cap.wait_messages(1)
            assert b"with ESMTPS" in m.data
            s.wait_log(r"tls established mode=implicit version=TLSv1\.3")
            # A plaintext client gets no greeting, and the daemon goes on.
            with RawClient(port) as c:
                c.send(b"EHLO client.test\r\n")
                c.read_until_closed()
            s.wait_log(r"tls handshake failed mode=implicit")


def test_client_certificate_recorded(tmp):
    pki = make_pki(tmp)
    lst = tls_listener(pki, tls_ca_file=str(pki / "ca.pem"))
    with relay(tmp, listener=lst) as (cap, s):
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            start_tls(c, pki, cert="client")
            ask(c, "EHLO client.test", 250)
            ask(c, "QUIT", 221)
        s.wait_log(r"peer_subject=\"?CN=client\.test\"? peer_issuer=\"?CN=Sluice Test CA\"? "
                   r"peer_verified=yes")
        # Without a certificate the session still works (never required for SMTP).
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            start_tls(c, pki)
            ask(c, "EHLO client.test", 250)
            transaction_ok(c)


# ---------------------------------------------------------------- reload, config errors

def test_reload_swaps_certificate_old_session_keeps_working(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki, certs=("mx",))) as (cap, s):
        with RawClient(s.port) as old:
            hello(old)
            ask(old, "STARTTLS", 220)
            assert "organizationName" not in subject_cn(start_tls(old, pki))
            ask(old, "EHLO client.test", 250)
            mark = s.log_mark()
            s.reload(standard_config(cap.address, port=s.port,
                                     listener=tls_listener(pki, certs=("mx2",))))
            s.wait_log(r"reload done generation=2 ", since=mark)
            with RawClient(s.port) as new:
                hello(new)
                ask(new, "STARTTLS", 220)
                assert subject_cn(start_tls(new, pki)).get("organizationName") == "second"
                ask(new, "QUIT", 221)
            # The session opened before the reload goes on under its generation.
            transaction_ok(old)
            ask(old, "QUIT", 221)
        assert len(cap.wait_messages(1)) == 1


def test_reload_with_bad_key_keeps_old_certificate(tmp):
    pki = make_pki(tmp)
    with relay(tmp, listener=tls_listener(pki, certs=("mx2",))) as (cap, s):
        bad = tls_listener(pki, certs=("mx",))
        bad["tls_key_file"] = [str(pki / "rogue.key")]
        mark = s.log_mark()
        s.reload(standard_config(cap.address, port=s.port, listener=bad))
        s.wait_log(r"reload failed: %s:\d+: listener \"in\": tls_key_file \"%s\" does not "
                   r"match the certificate" % (re.escape(str(s.config_path)),
                                               re.escape(str(pki / "rogue.key"))), since=mark)
        s.wait_log(r"reload failed: keeping the running configuration", since=mark)
        with RawClient(s.port) as c:
            hello(c)
            ask(c, "STARTTLS", 220)
            assert subject_cn(start_tls(c, pki)).get("organizationName") == "second"
            ask(c, "EHLO client.test", 250)
            transaction_ok(c)


def test_config_errors(tmp):
    pki = make_pki(tmp)
    cases = [
        ({"tls": "starttls"}, r"tls needs a certificate"),
        (tls_listener(pki, tls_cert_file=[str(pki / "missing.pem")]),
         r"tls_cert_file \"%s\": cannot load the certificate" % re.escape(str(pki / "missing.pem"))),
        (tls_listener(pki, tls_key_file=[str(pki / "missing.key")]),
         r"tls_key_file \"%s\": cannot load the private key" % re.escape(str(pki / "missing.key"))),
        (tls_listener(pki, tls_key_file=[str(pki / "other.key")]),
         r"tls_key_file \"%s\" does not match the certificate" % re.escape(str(pki / "other.key"))),
        (tls_listener(pki, tls_min_version="SSLv3"), r"tls_min_version \"SSLv3\" is not one of"),
        (tls_listener(pki, "sometimes"), r"tls \"sometimes\" is not one of none, starttls"),
        (tls_listener(pki, tls_ciphersuites="NOPE"), r"tls_ciphersuites \"NOPE\""),
        (tls_listener(pki, "implicit", tls_required=True), r"tls_required = yes needs tls = starttls"),
    ]
    for i, (lst, want) in enumerate(cases):
        d = tmp / ("c%d" % i)
        d.mkdir()
        reachable(d)
        rc, out = check_config(standard_config("127.0.0.1:2525", listener=lst), d)
        assert rc != 0, (lst, out)
        assert re.search(r"sluice\.conf:\d+: listener \"in\": " + want, out), (want, out)


run_tests(globals())
