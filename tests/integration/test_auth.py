#!/usr/bin/python3
"""SMTP AUTH (RFC 4954) on the real daemon: PLAIN and LOGIN against a
passwd file (SHA-512, yescrypt, bcrypt hashes) and against a real Dovecot
auth socket; every error code of the exchange; AUTH not offered on
plaintext without auth_plaintext; auth = required; relay only after AUTH;
the identity at the backend (XCLIENT LOGIN, PROTO ESMTP, Received with
ESMTPA, MAIL AUTH=); the failure delay and the per-session and per-address
limits; and no password or SASL blob ever in the log."""
import base64
import ctypes
import os
import re
import shutil
import smtplib
import subprocess
import warnings
from pathlib import Path

from sluicetest import *
from sluicetest import Service, reachable, wait_for
from tlstest import client_context, make_pki, start_tls, tls_listener

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "Tr0ub4dor&3-horse"
BODY = b"Subject: auth test\r\nFrom: a@example.org\r\n\r\nbody\r\n"


def b64(data):
    return base64.b64encode(data).decode()


def yescrypt(password):
    """A yescrypt hash through libxcrypt (Python's crypt has no method for it)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    salt = lib.crypt_gensalt(b"$y$", 0, None, 0)
    assert salt, "libxcrypt has no yescrypt"
    h = crypt.crypt(password, salt.decode())
    assert h.startswith("$y$")
    return h


def write_users(tmp):
    """alice: SHA-512 by openssl passwd -6, bob: yescrypt, carol: bcrypt."""
    sha512 = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                            input=PASSWORD.encode(), capture_output=True,
                            check=True).stdout.decode().strip()
    assert sha512.startswith("$6$")
    bcrypt = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    path = tmp / "users"
    path.write_text("# test users\nalice:%s\nbob:%s\n\ncarol:%s\n" % (
        sha512, yescrypt(PASSWORD), bcrypt))
    path.chmod(0o644)
    reachable(path)
    return path


def config(tmp, backend, auth="offer", plaintext=True, chain=(), filters=None,
           auth_section=None, **listener):
    lst = {"auth": auth, "auth_backend": "users", "auth_plaintext": plaintext,
           "auth_fail_delay": Raw("0s"), "auth_max_failures": 100}
    if auth == "none":
        lst.pop("auth_backend")
    lst.update(listener)
    section = auth_section or {"type": "passwd_file", "path": str(write_users(tmp))}
    return standard_config(backend, listener=lst, chain=chain, filters=filters,
                           globals={"auth": Titled({"users": section})})


def ehlo_keywords(c):
    r = c.cmd("EHLO client.test")
    assert r.code == 250
    keywords = [(l.decode() if isinstance(l, bytes) else l).strip() for l in r.lines]
    assert keywords[0] == HOSTNAME, keywords
    return keywords


def plain_line(user, password, authzid=""):
    return "AUTH PLAIN " + b64(("%s\0%s\0%s" % (authzid, user, password)).encode())


def send_message(c, rcpt="b@example.net"):
    c.send(b"MAIL FROM:<a@example.org>\r\n")
    c.expect(250)
    c.send(("RCPT TO:<%s>\r\n" % rcpt).encode())
    c.expect(250)
    c.send(b"DATA\r\n")
    c.expect(354)
    c.send(BODY + b".\r\n")
    c.expect(250)


# ---------------------------------------------------------------- passwd file

def test_smtplib_login_each_hash(tmp):
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        for user in ("alice", "bob", "carol"):
            with smtplib.SMTP("127.0.0.1", s.port, timeout=scaled(10)) as smtp:
                smtp.ehlo("client.test")
                assert "PLAIN" in smtp.esmtp_features["auth"]
                assert "LOGIN" in smtp.esmtp_features["auth"]
                code, text = smtp.login(user, PASSWORD)
                assert code == 235 and text.startswith(b"2.7.0"), (code, text)
                smtp.sendmail("a@example.org", ["b@example.net"], BODY)
            s.wait_log(r"auth=ok user=%s mech=PLAIN" % user)
        msgs = cap.wait_messages(3)
        for m, user in zip(msgs, ("alice", "bob", "carol")):
            line = m.xclient[-1]
            assert "LOGIN=%s" % user in line, m.xclient
            # Postfix's XCLIENT takes only SMTP/ESMTP; LOGIN carries the AUTH
            assert re.search(r"\bPROTO=ESMTP\b", line), m.xclient
            assert b"with ESMTPA" in m.header_block(), m.header_block()


def test_login_mechanism_steps(tmp):
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            assert "AUTH PLAIN LOGIN" in ehlo_keywords(c)
            r = c.cmd("AUTH LOGIN")
            assert r.code == 334 and r.first == "334 VXNlcm5hbWU6", r
            r = c.cmd(b64(b"bob"))
            assert r.code == 334 and r.first == "334 UGFzc3dvcmQ6", r
            c.send(b64(PASSWORD.encode()) + "\r\n")
            c.expect("235 2.7.0")
            # EHLO after AUTH: no second AUTH offered, and AUTH again is 503
            assert not any(k.startswith("AUTH") for k in ehlo_keywords(c))
            c.send(plain_line("bob", PASSWORD) + "\r\n")
            c.expect("503 5.5.1")
            send_message(c)
        m, = cap.wait_messages(1)
        assert "LOGIN=bob" in m.xclient[-1], m.xclient


def test_plain_without_initial_response(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            r = c.cmd("AUTH PLAIN")
            assert r.raw in (b"334 \r\n", b"334\r\n"), r.raw
            c.send(b64(("\0alice\0" + PASSWORD).encode()) + "\r\n")
            c.expect("235 2.7.0")


def test_error_replies(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, auth_max_session_failures=20),
                tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            c.send(b"AUTH PLAIN\r\n")             # before EHLO
            c.expect("503 5.5.1")
            ehlo_keywords(c)
            c.send(b"AUTH CRAM-MD5\r\n")
            c.expect("504 5.5.4")
            c.send(b"AUTH\r\n")
            c.expect("501 5.5.4")
            c.send(b"AUTH PLAIN\r\n")
            c.expect(334)
            c.send(b"*\r\n")
            c.expect("501 5.0.0")
            c.send(b"AUTH LOGIN\r\n")
            c.expect(334)
            c.send(b"%%%not-base64\r\n")
            c.expect("501 5.5.2")
            c.send(b"AUTH PLAIN Zm9v=\r\n")
            c.expect("501 5.5.2")
            c.send((plain_line("alice", "wrong") + "\r\n").encode())
            c.expect("535 5.7.8")
            c.send((plain_line("nobody-here", PASSWORD) + "\r\n").encode())
            c.expect("535 5.7.8")
            # authzid other than the authcid
            c.send((plain_line("alice", PASSWORD, authzid="bob") + "\r\n").encode())
            c.expect("535 5.7.8")
            # inside a transaction
            c.send(b"MAIL FROM:<a@example.org>\r\n")
            c.expect(250)
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("503 5.5.1")
            c.send(b"RSET\r\n")
            c.expect(250)
            # a response line longer than 512 but within RFC 4954's 12288
            long = plain_line("alice", "x" * 900)
            assert 1000 < len(long) < 12288
            c.send((long + "\r\n").encode())
            c.expect("535 5.7.8")
            # over 12288: refused as a line, the session goes on
            c.send(("AUTH PLAIN " + "A" * 13000 + "\r\n").encode())
            c.expect("500 5.5.2")
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("235 2.7.0")
        s.wait_log(r"auth=fail mech=PLAIN reason=credentials user=alice ")
        s.wait_log(r"auth=fail mech=PLAIN reason=malformed client=")


def test_session_failure_limit(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            for _ in range(2):
                c.send((plain_line("alice", "wrong") + "\r\n").encode())
                c.expect("535 5.7.8")
            c.send((plain_line("alice", "wrong") + "\r\n").encode())
            c.expect("535 5.7.8")
            c.expect("421 4.7.0")
            assert c.read_closed() if hasattr(c, "read_closed") else True
        s.wait_log(r"disconnect reason=auth_failures session_failures=3")


def test_not_offered_on_plaintext(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, plaintext=False), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            assert not any(k.startswith("AUTH") for k in ehlo_keywords(c))
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("538 5.7.11")
            send_message(c)     # unauthenticated mail still goes (auth = offer)
    with Capture(tmp / "cap2") as cap, \
         Sluice(config(tmp, cap.address, auth="none"), tmp / "sluice2") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            assert not any(k.startswith("AUTH") for k in ehlo_keywords(c))
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("502 5.5.1")


def test_offered_only_after_starttls(tmp):
    """On a STARTTLS listener without auth_plaintext, AUTH is neither
    offered nor accepted (538) before TLS; after STARTTLS it is offered,
    works, and the Received field says ESMTPSA."""
    pki = make_pki(tmp)
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         Sluice(config(tmp, cap.address, plaintext=False, **tls_listener(pki)),
                tmp / "sluice") as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=scaled(10)) as smtp:
            smtp.ehlo("client.test")
            assert smtp.has_extn("starttls")
            assert not smtp.has_extn("auth"), smtp.esmtp_features
            code, _ = smtp.docmd(plain_line("alice", PASSWORD))
            assert code == 538, code
            ctx = client_context(pki)
            ctx.check_hostname = False
            smtp.starttls(context=ctx)
            smtp.ehlo("client.test")
            assert not smtp.has_extn("starttls")
            assert "PLAIN" in smtp.esmtp_features["auth"]
            code, _ = smtp.login("alice", PASSWORD)
            assert code == 235, code
            smtp.sendmail("a@example.org", ["b@example.net"], BODY)
        s.wait_log(r"auth=ok user=alice mech=PLAIN")
        m = cap.wait_messages(1)[0]
        assert b"with ESMTPSA" in m.header_block(), m.header_block()
        assert "LOGIN=alice" in m.xclient[-1], m.xclient
        assert re.search(r"\bPROTO=ESMTP\b", m.xclient[-1]), m.xclient


def test_starttls_forgets_clear_text_auth(tmp):
    """RFC 3207 4.2: an AUTH done in clear (auth_plaintext) is forgotten by
    STARTTLS like everything else the client said before it."""
    pki = make_pki(tmp)
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, auth="required", **tls_listener(pki)),
                tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("235 2.7.0")
            c.send(b"STARTTLS\r\n")
            c.expect(220)
            start_tls(c, pki)
            keywords = ehlo_keywords(c)
            assert "AUTH PLAIN LOGIN" in keywords, keywords
            c.send(b"MAIL FROM:<a@example.org>\r\n")
            c.expect("530 5.7.0")
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("235 2.7.0")
            send_message(c)
        assert len(cap.wait_messages(1)) == 1


def test_required(tmp):
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, auth="required"), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send(b"MAIL FROM:<a@example.org>\r\n")
            c.expect("530 5.7.0")
            c.send((plain_line("carol", PASSWORD) + "\r\n").encode())
            c.expect("235 2.7.0")
            send_message(c)
        assert len(cap.wait_messages(1)) == 1


def test_relay_only_after_auth(tmp):
    filters = {"r": {"module": "relay", "networks": ["192.0.2.0/24"],
                     "domains": ["local.test"]}}
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, chain=["r"], filters=filters),
                tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send(b"MAIL FROM:<a@example.org>\r\n")
            c.expect(250)
            c.send(b"RCPT TO:<x@remote.example>\r\n")
            c.expect(["550", "554"])
            c.send(b"RSET\r\n")
            c.expect(250)
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect("235 2.7.0")
            send_message(c, rcpt="x@remote.example")
        m, = cap.wait_messages(1)
        assert m.rcpts == ["x@remote.example"]


def test_ratelimit_per_user(tmp):
    """The ratelimit filter with key = "user" counts per authenticated user."""
    filters = {"rl": {"module": "ratelimit", "key": "user", "count": "recipients",
                      "limit": 1, "window": Raw("1h")}}
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, chain=["rl"], filters=filters),
                tmp / "sluice") as s:
        for user, second in (("alice", "451"), ("bob", "451")):
            with RawClient(s.port) as c:
                c.expect(220)
                ehlo_keywords(c)
                c.send((plain_line(user, PASSWORD) + "\r\n").encode())
                c.expect(235)
                c.send(b"MAIL FROM:<a@example.org>\r\n")
                c.expect(250)
                c.send(b"RCPT TO:<one@example.net>\r\n")
                c.expect(250)
                c.send(b"RCPT TO:<two@example.net>\r\n")
                c.expect(second)
        s.wait_log(r"ratelimit exceeded key=\S*alice")
        s.wait_log(r"ratelimit exceeded key=\S*bob")


def test_mail_auth_parameter(tmp):
    """AUTH= goes to a backend offering AUTH (<> for an unauthenticated
    client), and is dropped for one that does not."""
    with Capture(tmp / "cap", script={"extra_capabilities": ["AUTH PLAIN"]}) as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send(b"MAIL FROM:<a@example.org> AUTH=<>\r\n")
            c.expect(250)
            c.send(b"RSET\r\n")
            c.expect(250)
            c.send(b"MAIL FROM:<a@example.org> AUTH=spoof@example.org\r\n")
            c.expect(250)
            c.send(b"RSET\r\n")
            c.expect(250)
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect(235)
            c.send(b"MAIL FROM:<a@example.org> AUTH=alice@example.org\r\n")
            c.expect(250)
            c.send(b"RCPT TO:<b@example.net>\r\n")
            c.expect(250)
            c.send(b"DATA\r\n")
            c.expect(354)
            c.send(BODY + b".\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        mails = [l for l in cap.commands() if l.upper().startswith("MAIL")]
        assert len(mails) == 3, mails
        assert m.mail.endswith("AUTH=alice@example.org"), m.mail
        # before AUTH the claimed identity is not passed on: "<>" instead
        assert mails[0].endswith("AUTH=<>") and mails[1].endswith("AUTH=<>"), mails
    with Capture(tmp / "cap2") as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice2") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
            c.expect(235)
            c.send(b"MAIL FROM:<a@example.org> AUTH=alice@example.org\r\n")
            c.expect(250)
            c.send(b"RCPT TO:<b@example.net>\r\n")
            c.expect(250)
            c.send(b"DATA\r\n")
            c.expect(354)
            c.send(BODY + b".\r\n")
            c.expect(250)
        m, = cap.wait_messages(1)
        assert "AUTH=" not in m.mail, m.mail


def test_failure_delay_and_address_limit(tmp):
    """Delays double per failure of the address (logged), and past
    auth_max_failures the address gets 421 at once."""
    cfg = config(tmp, None, auth_fail_delay=Raw("200ms"), auth_max_failures=3)
    with Capture(tmp / "cap") as cap:
        cfg["backends"]["out"]["servers"] = [cap.address]
        with Sluice(cfg, tmp / "sluice") as s:
            for expect_close in (False, False):
                with RawClient(s.port) as c:
                    c.expect(220)
                    ehlo_keywords(c)
                    c.send((plain_line("alice", "wrong") + "\r\n").encode())
                    c.expect("535 5.7.8")
                    c.send(b"QUIT\r\n")
                    c.expect(221)
            with RawClient(s.port) as c:
                c.expect(220)
                ehlo_keywords(c)
                c.send((plain_line("alice", "wrong") + "\r\n").encode())
                c.expect("535 5.7.8")
                c.expect("421 4.7.0")
            with RawClient(s.port) as c:
                c.expect(220)
                ehlo_keywords(c)
                # even the right password: this address is shut out for the window
                c.send((plain_line("alice", PASSWORD) + "\r\n").encode())
                c.expect("421 4.7.0")
            log = s.log()
            assert "client_failures=1 delay=200ms" in log
            assert "client_failures=2 delay=400ms" in log
            assert "client_failures=3 delay=800ms" in log
            assert "auth=refused reason=too_many_failures" in log
            assert "auth=ok" not in log


def test_failures_counted_per_prefix(tmp):
    """Failures count per client prefix (ipv4_prefix), as the per-IP
    connection limit does: another address of the same /24 cannot start
    over, one of another /24 can."""
    cfg = config(tmp, None, auth_max_failures=2)
    cfg["globals"]["ipv4_prefix"] = 24
    with Capture(tmp / "cap") as cap:
        cfg["backends"]["out"]["servers"] = [cap.address]
        with Sluice(cfg, tmp / "sluice") as s:
            for source, reply in (("127.0.0.2", "535 5.7.8"), ("127.0.0.3", "535 5.7.8"),
                                  ("127.0.0.4", "421 4.7.0"), ("127.0.1.5", "235 2.7.0")):
                with RawClient(s.port, source=source) as c:
                    c.expect(220)
                    ehlo_keywords(c)
                    pw = PASSWORD if source == "127.0.1.5" else "wrong"
                    c.send((plain_line("alice", pw) + "\r\n").encode())
                    c.expect(reply)
            s.wait_log(r"auth=refused reason=too_many_failures")


def test_log_never_has_secrets(tmp):
    secret_lines = []
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            for user, pw in (("alice", "WrongPassw0rd!"), (PASSWORD, PASSWORD)):
                line = plain_line(user, pw)
                secret_lines.append(line.split(" ")[2])
                c.send((line + "\r\n").encode())
                c.expect(535)
            c.send(b"AUTH LOGIN\r\n")
            c.expect(334)
            c.send((b64(b"carol") + "\r\n").encode())
            c.expect(334)
            c.send((b64(PASSWORD.encode()) + "\r\n").encode())
            secret_lines.append(b64(PASSWORD.encode()))
            c.expect(235)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=scaled(10)) as smtp:
            smtp.ehlo("client.test")
            smtp.login("bob", PASSWORD)
        s.wait_log(r"auth=ok user=bob")
        s.stop()
        log = s.log()
        for secret in [PASSWORD, "WrongPassw0rd!"] + secret_lines:
            assert secret not in log, secret
        # a password typed as the user name is not logged either
        assert "auth=fail mech=PLAIN reason=credentials client=" in log
        assert "auth=ok user=carol mech=LOGIN" in log


def test_swaks_plain_and_login(tmp):
    need_program("/usr/bin/swaks")
    with Capture(tmp / "cap", script={"xclient": True}) as cap, \
         Sluice(config(tmp, cap.address), tmp / "sluice") as s:
        for mech, user in (("PLAIN", "alice"), ("LOGIN", "bob")):
            out = subprocess.run(
                ["/usr/bin/swaks", "--server", "127.0.0.1", "--port", str(s.port),
                 "--from", "a@example.org", "--to", "b@example.net",
                 "--auth", mech, "--auth-user", user, "--auth-password", PASSWORD,
                 "--timeout", "20"],
                capture_output=True, timeout=scaled(30))
            text = out.stdout.decode(errors="replace")
            assert out.returncode == 0, text
            assert "235 2.7.0" in text, text
        msgs = cap.wait_messages(2)
        # the last XCLIENT before each message (a pooled connection has several)
        assert "LOGIN=alice" in msgs[0].xclient[-1], msgs[0].xclient
        assert "LOGIN=bob" in msgs[1].xclient[-1], msgs[1].xclient


def _plugin(name):
    path = sluice_binary().resolve().parent.parent / "tests" / "plugins" / \
        ".libs" / (name + ".so")
    if not path.exists():
        skip("%s not built (make check builds it)" % path)
    return path


def test_auth_phase_filter(tmp):
    """on_auth sees the verified user and mechanism; its REJECT is a 535,
    its TEMPFAIL a 454, and the identity is not kept; later phases see it."""
    plugin = _plugin("authprobe")
    filters = {"p": {"module": "authprobe", "reject_user": "carol"},
               "t": {"module": "authprobe", "reject_user": "bob", "tempfail": True}}
    cfg = config(tmp, None, chain=["p", "t"], filters=filters)
    cfg["globals"]["load"] = [str(plugin)]
    reachable(plugin)
    with Capture(tmp / "cap", script={"xclient": True}) as cap:
        cfg["backends"]["out"]["servers"] = [cap.address]
        with Sluice(cfg, tmp / "sluice") as s:
            with RawClient(s.port) as c:
                c.expect(220)
                ehlo_keywords(c)
                c.send((plain_line("carol", PASSWORD) + "\r\n").encode())
                c.expect("535 5.7.8")
                c.send((plain_line("bob", PASSWORD) + "\r\n").encode())
                c.expect("454 4.7.0")
                c.send(b"AUTH LOGIN\r\n")
                c.expect(334)
                c.send((b64(b"alice") + "\r\n").encode())
                c.expect(334)
                c.send((b64(PASSWORD.encode()) + "\r\n").encode())
                c.expect("235 2.7.0")
                send_message(c)
            m, = cap.wait_messages(1)
            assert "LOGIN=alice" in m.xclient[-1], m.xclient
            log = s.log()
            assert "authprobe phase=auth user=carol mech=PLAIN" in log
            assert "auth=rejected user=carol mech=PLAIN filter=p" in log
            assert "auth=rejected user=bob mech=PLAIN filter=t" in log
            assert "authprobe phase=mail user=alice mech=LOGIN" in log


# ---------------------------------------------------------------- dovecot

class Dovecot(Service):
    """A private Dovecot (auth service only) with a passwd-file passdb;
    `socket` is its auth client socket."""

    name = "dovecot"

    def __init__(self, dir, users):
        need_program(DOVECOT)
        self.dir = Path(dir)
        (self.dir / "run").mkdir(parents=True)
        (self.dir / "state").mkdir()
        self.socket = self.dir / "auth-client"
        self.logfile = self.dir / "dovecot.log"
        conf = self.dir / "dovecot.conf"
        conf.write_text("""
base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(d)s/dovecot.log
protocols =
ssl = no
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_failure_delay = 0
default_internal_user = %(internal)s
default_login_user = nobody
passdb {
  driver = passwd-file
  args = %(users)s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener auth-client {
    path = %(d)s/auth-client
    mode = 0666
  }
}
""" % {"d": self.dir, "users": users,
       "internal": "dovecot" if os.geteuid() == 0 else os.environ.get("USER", "nobody")})
        reachable(self.dir)
        self._spawn([DOVECOT, "-F", "-c", conf], self.dir / "stdout.log")
        wait_for(lambda: self.socket.exists() or not self.running(),
                 what="dovecot auth socket")
        if not self.running():
            raise HardError("dovecot did not start:\n%s" % self.log_tail())
        reachable(self.socket)

    def log(self):
        try:
            return Service.log(self) + self.logfile.read_text(errors="replace")
        except OSError:
            return Service.log(self)


def dovecot_users(tmp):
    path = tmp / "dovecot-users"
    h = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
    path.write_text("dave:{CRYPT}%s\n" % h)
    path.chmod(0o644)
    return path


def test_dovecot_backend(tmp):
    if os.geteuid() != 0:
        skip("Dovecot's auth service needs to start as root")
    with Dovecot(tmp / "dovecot", dovecot_users(tmp)) as dv, \
         Capture(tmp / "cap", script={"xclient": True}) as cap, \
         Sluice(config(tmp, cap.address, auth_section={
             "type": "dovecot", "socket": str(dv.socket), "timeout": Raw("5s")}),
             tmp / "sluice") as s:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=scaled(10)) as smtp:
            smtp.ehlo("client.test")
            code, _ = smtp.login("dave", PASSWORD)
            assert code == 235
            smtp.sendmail("a@example.org", ["b@example.net"], BODY)
        m, = cap.wait_messages(1)
        assert "LOGIN=dave" in m.xclient[-1], m.xclient
        # the connection is reused: several in one go, LOGIN too, then a wrong one
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            c.send((plain_line("dave", "nope") + "\r\n").encode())
            c.expect("535 5.7.8")
            c.send(b"AUTH LOGIN " + b64(b"dave").encode() + b"\r\n")
            c.expect(334)
            c.send((b64(PASSWORD.encode()) + "\r\n").encode())
            c.expect("235 2.7.0")
        s.wait_log(r"auth=ok user=dave mech=LOGIN")
        assert PASSWORD not in s.log()


def test_dovecot_unreachable(tmp):
    """No socket there: 454 4.7.0, never 535 or 235; the session goes on."""
    with Capture(tmp / "cap") as cap, \
         Sluice(config(tmp, cap.address, auth_section={
             "type": "dovecot", "socket": str(tmp / "no-such.sock")}),
             tmp / "sluice") as s:
        with RawClient(s.port) as c:
            c.expect(220)
            ehlo_keywords(c)
            for _ in range(2):
                c.send((plain_line("dave", PASSWORD) + "\r\n").encode())
                c.expect("454 4.7.0")
            send_message(c)
        s.wait_log(r"auth=tempfail mech=PLAIN backend=users")
        assert PASSWORD not in s.log()


def test_dovecot_not_answering(tmp):
    """A socket that accepts but never answers: 454 after the timeout."""
    import socket as sk
    path = tmp / "silent.sock"
    srv = sk.socket(sk.AF_UNIX)
    srv.bind(str(path))
    srv.listen(8)
    os.chmod(path, 0o666)
    reachable(path)
    try:
        with Capture(tmp / "cap") as cap, \
             Sluice(config(tmp, cap.address, auth_section={
                 "type": "dovecot", "socket": str(path), "timeout": Raw("500ms")}),
                 tmp / "sluice") as s:
            with RawClient(s.port) as c:
                c.expect(220)
                ehlo_keywords(c)
                c.send((plain_line("dave", PASSWORD) + "\r\n").encode())
                c.expect("454 4.7.0")
                c.send(b"NOOP\r\n")
                c.expect(250)
            s.wait_log(r"no answer within 500ms")
    finally:
        srv.close()


def test_config_errors(tmp):
    """Bad auth settings are refused with file:line."""
    users = write_users(tmp)
    bad = tmp / "bad-users"
    bad.write_text("alice:%s\nalice:%s\n" % ("$6$a$b", "$6$a$c"))
    reachable(bad)
    for section, listener, want in (
            ({"type": "passwd_file"}, {}, "needs path"),
            ({"type": "ldap", "path": str(users)}, {}, "type is required"),
            ({"type": "passwd_file", "path": str(bad)}, {}, "duplicate user"),
            ({"type": "passwd_file", "path": str(users)},
             {"auth_backend": "nope"}, "auth_backend \"nope\""),
    ):
        cfg = config(tmp, "127.0.0.1:9", auth_section=section, **listener)
        s = Sluice(cfg, tmp / "s", start=False)
        out = subprocess.run([str(s.binary), "-t", "-c", str(s.config_path)],
                             capture_output=True, timeout=scaled(20))
        text = (out.stdout + out.stderr).decode(errors="replace")
        assert out.returncode != 0, text
        assert want in text, (want, text)
        assert re.search(r"\.conf:\d+: |bad-users:\d+: ", text), text


run_tests(globals())
