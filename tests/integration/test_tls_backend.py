#!/usr/bin/python3
"""TLS towards the backend: tls = may|encrypt|verify, STARTTLS then EHLO
again, implicit TLS, and a server that cannot give the TLS asked for is
marked failed with the client getting 4xx, never 5xx."""
import re
import ssl

from sluicetest import *
from tlstest import *

BODY = b"Subject: up\r\nFrom: a@example.org\r\n\r\nto the backend over TLS\r\n"


class Recorder:
    """aiosmtpd handler: keeps what arrived and whether TLS protected it."""

    def __init__(self):
        self.messages = []
        self.ehlos = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos.append((hostname, session.ssl is not None))
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "rcpts": list(envelope.rcpt_tos),
                              "data": envelope.original_content,
                              "tls": server.transport.get_extra_info("ssl_object")
                              is not None})
        return "250 2.0.0 Ok: queued"


class TlsBackend:
    """An aiosmtpd server in this process on a free loopback port, with
    the test PKI's mx.test certificate: STARTTLS offered (and required)
    or implicit TLS."""

    def __init__(self, pki, implicit=False):
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            skip("python3-aiosmtpd is not installed")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(pki / "mx.pem"), str(pki / "mx.key"))
        self.handler = Recorder()
        self.port = free_port()
        kw = {"ssl_context": ctx} if implicit else {"tls_context": ctx,
                                                    "require_starttls": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=scaled(10), **kw)
        self.address = "127.0.0.1:%d" % self.port

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
        return False


def deliver(s):
    with RawClient(s.port) as c:
        hello(c)
        r = transaction(c, BODY)
        assert r.code == 250, r
        ask(c, "QUIT", 221)


def refused(s):
    """MAIL gets a 4xx (the backend could not be used), never 5xx."""
    with RawClient(s.port) as c:
        hello(c)
        r = c.cmd("MAIL FROM:<a@example.org>")
        assert r.code // 100 == 4, r
        ask(c, "QUIT", 221)


def sluice_for(tmp, backend, **tls):
    # One worker: both sessions of a test share its connection pool.
    return Sluice(standard_config(backend, backend_options=tls, globals={"workers": 1}),
                  tmp / "sluice")


def test_encrypt_starttls_then_ehlo_again(tmp):
    pki = make_pki(tmp)
    with TlsBackend(pki) as b, sluice_for(tmp, b.address, tls="encrypt") as s:
        deliver(s)
        deliver(s)
        wait_for(lambda: len(b.handler.messages) == 2, what="two messages at the backend")
        for m in b.handler.messages:
            assert m["tls"] and m["data"].endswith(BODY), m
        # EHLO in clear, STARTTLS, then EHLO again over TLS (RFC 3207 4.2);
        # the second session took the pooled connection, TLS and all.
        assert [t for _, t in b.handler.ehlos] == [False, True], b.handler.ehlos
        s.wait_log(r"backend=out server=%s tls established version=TLSv1\.[23] "
                   r"cipher=\S+ verified=no" % re.escape(b.address))


def test_verify_with_the_test_ca(tmp):
    pki = make_pki(tmp)
    with TlsBackend(pki) as b, sluice_for(tmp, b.address, tls="verify",
                                          tls_ca_file=str(pki / "ca.pem"),
                                          tls_server_name="mx.test") as s:
        deliver(s)
        wait_for(lambda: b.handler.messages, what="message at the backend")
        assert b.handler.messages[0]["tls"]
        s.wait_log(r"tls established version=\S+ cipher=\S+ verified=yes")


def test_verify_wrong_name_is_4xx_and_server_failed(tmp):
    pki = make_pki(tmp)
    with TlsBackend(pki) as b, sluice_for(tmp, b.address, tls="verify",
                                          tls_ca_file=str(pki / "ca.pem"),
                                          tls_server_name="wrong.test") as s:
        refused(s)
        s.wait_log(r"backend=out server=%s tls failed reason=\"TLS handshake failed: "
                   % re.escape(b.address))
        s.wait_log(r"backend=out server=%s marked down .* reason=\"TLS handshake failed"
                   % re.escape(b.address))
        assert not b.handler.messages


def test_verify_unknown_ca_is_4xx(tmp):
    pki = make_pki(tmp)
    # No tls_ca_file: the system's anchors do not know the test CA.
    with TlsBackend(pki) as b, sluice_for(tmp, b.address, tls="verify",
                                          tls_server_name="mx.test") as s:
        refused(s)
        s.wait_log(r"tls failed reason=\"TLS handshake failed: .*certificate verify failed")
        assert not b.handler.messages


def test_may_without_starttls_delivers_in_clear(tmp):
    with Capture(tmp / "cap") as cap, sluice_for(tmp, cap.address, tls="may") as s:
        deliver(s)
        m, = cap.wait_messages(1)
        assert m.data.endswith(BODY)
        assert not any(v.upper().startswith("STARTTLS") for v in cap.commands())


def test_may_with_starttls_uses_it(tmp):
    pki = make_pki(tmp)
    with TlsBackend(pki) as b, sluice_for(tmp, b.address, tls="may") as s:
        deliver(s)
        wait_for(lambda: b.handler.messages, what="message at the backend")
        assert b.handler.messages[0]["tls"]


def test_encrypt_without_starttls_is_4xx(tmp):
    with Capture(tmp / "cap") as cap, sluice_for(tmp, cap.address, tls="encrypt") as s:
        refused(s)
        s.wait_log(r"backend=out server=%s tls=encrypt reason=\"STARTTLS not offered\""
                   % re.escape(cap.address))
        s.wait_log(r"marked down .* reason=\"STARTTLS not offered\"")
        assert not cap.messages()


def test_implicit_tls_backend(tmp):
    pki = make_pki(tmp)
    with TlsBackend(pki, implicit=True) as b, \
         sluice_for(tmp, b.address, tls="verify", tls_implicit=True,
                    tls_ca_file=str(pki / "ca.pem"), tls_server_name="mx.test") as s:
        deliver(s)
        deliver(s)
        wait_for(lambda: len(b.handler.messages) == 2, what="two messages at the backend")
        assert all(m["tls"] and m["data"].endswith(BODY) for m in b.handler.messages)


def relay_sluice(tmp, remote_port, relay_tls):
    """A relay-mode sluice whose smart host is the TLS remote."""
    g = standard_globals(smart_host="[127.0.0.1]:%d" % remote_port, relay_tls=relay_tls,
                         min_backoff=Raw("1s"), max_backoff=Raw("1s"))
    lst = {"listen": ["127.0.0.1:%d" % free_port()], "mode": "relay"}
    return Sluice({"listeners": {"in": lst}, "globals": g}, tmp / "sluice")


def test_relay_delivery_uses_starttls(tmp):
    """relay_tls = may (the default): relay deliveries use STARTTLS when the
    remote offers it (this one requires it: without TLS it refuses MAIL),
    with EHLO again after the handshake; relay_tls = none stays in clear,
    so that remote refuses the message (530: bounced)."""
    pki = make_pki(tmp)
    with TlsBackend(pki) as b:
        with relay_sluice(tmp / "may", b.port, "may") as s:
            deliver(s)
            wait_for(lambda: b.handler.messages, what="message at the remote")
            m = b.handler.messages[0]
            assert m["tls"] and m["data"].endswith(BODY), m
            assert [t for _, t in b.handler.ehlos] == [False, True], b.handler.ehlos
            s.wait_log(r"tls established relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d "
                       r"version=TLSv1\.[23] cipher=\S+" % b.port)
            s.wait_log(r"status=sent")
        with relay_sluice(tmp / "none", b.port, "none") as s:
            deliver(s)
            s.wait_log(r"status=bounced code=530 .*Must issue a STARTTLS command first")
            assert "tls established" not in s.log()
            assert len(b.handler.messages) == 1


def test_backend_config_errors(tmp):
    pki = make_pki(tmp)
    cases = [
        ({"tls": "always"}, r"tls \"always\" is not one of none, may, encrypt, verify"),
        ({"tls": "none", "tls_implicit": True}, r"tls_implicit = yes needs tls = encrypt"),
        ({"tls": "may", "tls_implicit": True}, r"tls_implicit = yes cannot fall back"),
        ({"tls": "verify", "tls_ca_file": str(pki / "missing.pem")},
         r"tls_ca_file \"%s\": cannot load" % re.escape(str(pki / "missing.pem"))),
        ({"tls": "encrypt", "tls_cert_file": str(pki / "client.pem")},
         r"tls_cert_file and tls_key_file go together"),
        ({"tls": "encrypt", "tls_cert_file": str(pki / "client.pem"),
          "tls_key_file": str(pki / "mx.key")}, r"tls_cert_file .* the key does not match"),
    ]
    for i, (opts, want) in enumerate(cases):
        d = tmp / ("c%d" % i)
        d.mkdir()
        reachable(d)
        rc, out = check_config(standard_config("127.0.0.1:2525", backend_options=opts), d)
        assert rc != 0, (opts, out)
        assert re.search(r"sluice\.conf:\d+: backend \"out\": " + want, out), (want, out)


run_tests(globals())
