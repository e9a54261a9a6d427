"""tlstest.py - what the TLS integration scripts share: a test PKI made
with the openssl CLI, listener options, client contexts, STARTTLS on a
RawClient."""
import ssl
import subprocess

from sluicetest import need_program, reachable, scaled

__all__ = ["openssl", "make_pki", "tls_listener", "client_context", "start_tls",
           "subject_cn"]


def openssl(*args, cwd):
    need_program("/usr/bin/openssl")
    subprocess.run(("/usr/bin/openssl",) + args, cwd=str(cwd), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=scaled(30))


def make_pki(tmp):
    """A CA and leaf certificates in tmp/pki; returns that directory.

    mx.pem: CN mx.test (SAN mx.test); other.pem: CN other.test (SAN
    other.test, *.other.test); mx2.pem: a second mx.test with O=second;
    client.pem: a client certificate; rogue.key: a key matching none."""
    d = tmp / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=Sluice Test CA", "-keyout", "ca.key", "-out", "ca.pem",
            cwd=d)
    leaves = {"mx": ("/CN=mx.test", "DNS:mx.test"),
              "mx2": ("/O=second/CN=mx.test", "DNS:mx.test"),
              "other": ("/CN=other.test", "DNS:other.test,DNS:*.other.test"),
              "client": ("/CN=client.test", "DNS:client.test")}
    for name, (subj, san) in leaves.items():
        (d / (name + ".ext")).write_text("subjectAltName=%s\n" % san)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subj,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "rogue.key", cwd=d)
    for p in d.iterdir():
        p.chmod(0o644)
    reachable(d)
    return d


def tls_listener(pki, mode="starttls", certs=("mx",), **extra):
    opts = {"tls": mode,
            "tls_cert_file": [str(pki / (c + ".pem")) for c in certs],
            "tls_key_file": [str(pki / (c + ".key")) for c in certs]}
    opts.update(extra)
    return opts


def client_context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
    return ctx


def start_tls(c, pki, name="mx.test", cert=None):
    """STARTTLS on a RawClient whose buffer is empty; returns the SSL socket."""
    assert not c.buf, bytes(c.buf)
    c.sock = client_context(pki, cert).wrap_socket(c.sock, server_hostname=name)
    return c.sock


def subject_cn(sock):
    return dict(x[0] for x in sock.getpeercert()["subject"])


