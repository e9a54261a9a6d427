#!/usr/bin/python3
"""A small authoritative DNS server for the tests (python3-dnslib), run as
its own process on a loopback UDP+TCP port.

The zone is a JSON file, re-read whenever it changes, so a test can edit
records while the server runs:

    {"records": [["example.org", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"],
                 ["example.org", "MX", "10 mx.example.org"],
                 ["mx.example.org", "A", "127.0.0.1"],
                 ["alias.example.org", "CNAME", "example.org"]],
     "servfail": ["broken.example.org"],
     "timeout": ["slow.example.org"],
     "refused": ["refused.example.org"],
     "ttl": 60}

A TXT value is either a string (split into 255-byte character strings) or a
list of strings (each one character string, sent as given, so a test can
send long or odd TXT records).  A name that has records of another type
answers NODATA; a name with no record at all answers NXDOMAIN; a name in
"servfail" answers SERVFAIL, in "refused" REFUSED, in "timeout" never
answers.  Names match case-insensitively, without the final dot.
Every query is appended to DIR/queries.log as "NAME TYPE".

Usage: dns_server.py --port N --zone FILE --log FILE [--ready-file F]
"""
import argparse
import json
import os
import socket
import socketserver
import struct
import sys
import threading

from dnslib import (AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A,
                    DNSRecord)


class Zone:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.data = {}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                key = (st.st_mtime_ns, st.st_size)
                if key != self.mtime:
                    with open(self.path) as f:
                        self.data = json.load(f)
                    self.mtime = key
            except (OSError, ValueError) as e:
                print("zone: %s" % e, file=sys.stderr, flush=True)
            return self.data


def norm(name):
    return str(name).rstrip(".").lower()


def make_rdata(rtype, value):
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        pref, host = value.split(None, 1)
        return MX(host, int(pref))
    if rtype == "TXT":
        if isinstance(value, list):
            parts = [v.encode() if isinstance(v, str) else bytes(v)
                     for v in value]
        else:
            raw = value.encode()
            parts = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        return TXT(parts)
    if rtype == "PTR":
        return PTR(value)
    if rtype == "CNAME":
        return CNAME(value)
    raise ValueError("unsupported type %s" % rtype)


def answer(zone, data):
    """The reply packet for query bytes, or None for no answer."""
    try:
        q = DNSRecord.parse(data)
    except Exception:
        return None
    z = zone.get()
    qname = norm(q.q.qname)
    qtype = QTYPE[q.q.qtype]
    log_query(qname, qtype)
    reply = q.reply()
    reply.header.aa = 1
    if qname in [norm(n) for n in z.get("timeout", [])]:
        return None
    if qname in [norm(n) for n in z.get("servfail", [])]:
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()
    if qname in [norm(n) for n in z.get("refused", [])]:
        reply.header.rcode = RCODE.REFUSED
        return reply.pack()
    ttl = int(z.get("ttl", 60))
    records = z.get("records", [])
    name = qname
    for _ in range(8):      # follow CNAMEs inside the zone
        here = [r for r in records if norm(r[0]) == name]
        cname = [r for r in here if r[1] == "CNAME"]
        if cname and qtype != "CNAME":
            reply.add_answer(RR(name, QTYPE.CNAME, ttl=ttl,
                                rdata=make_rdata("CNAME", cname[0][2])))
            name = norm(cname[0][2])
            continue
        break
    here = [r for r in records if norm(r[0]) == name]
    exists = bool(here) or any(norm(r[0]).endswith("." + name)
                               for r in records)
    for r in here:
        if r[1] == qtype:
            reply.add_answer(RR(name, getattr(QTYPE, qtype), ttl=ttl,
                                rdata=make_rdata(qtype, r[2])))
    if not exists and not reply.rr:
        reply.header.rcode = RCODE.NXDOMAIN
    packed = reply.pack()
    if len(packed) > 512 and getattr(threading.current_thread(), "udp", False):
        # Too big for plain UDP: truncate, the client retries over TCP.
        t = q.reply()
        t.header.tc = 1
        return t.pack()
    return packed


QUERY_LOG = None
_log_lock = threading.Lock()


def log_query(name, qtype):
    if QUERY_LOG is None:
        return
    with _log_lock, open(QUERY_LOG, "a") as f:
        f.write("%s %s\n" % (name, qtype))


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        threading.current_thread().udp = True
        data, sock = self.request
        out = answer(self.server.zone, data)
        if out is not None:
            sock.sendto(out, self.client_address)


class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        threading.current_thread().udp = False
        self.request.settimeout(10)
        try:
            while True:
                hdr = self._read(2)
                if hdr is None:
                    return
                data = self._read(struct.unpack("!H", hdr)[0])
                if data is None:
                    return
                out = answer(self.server.zone, data)
                if out is None:
                    return
                self.request.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = True


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global QUERY_LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--log")
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    QUERY_LOG = a.log
    zone = Zone(a.zone)
    udp = UDPServer((a.host, a.port), UDPHandler)
    tcp = TCPServer((a.host, a.port), TCPHandler)
    udp.zone = tcp.zone = zone
    for srv in (udp, tcp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    if a.ready_file:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % a.port)
        os.rename(a.ready_file + ".tmp", a.ready_file)
    threading.Event().wait()


if __name__ == "__main__":
    main()
