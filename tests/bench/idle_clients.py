#!/usr/bin/python3
"""idle_clients - hold many idle SMTP client connections open.

Used by bench.py to measure the memory an idle session costs the daemon.
It opens COUNT TCP connections to HOST:PORT from one process (selectors,
non-blocking), reads each server's greeting line, then sends nothing more.

    idle_clients.py HOST PORT COUNT [--timeout SECONDS] [--hold SECONDS]

Protocol on stdout, one line each, flushed:
    ready GREETED FAILED    every connection has its greeting or failed
    closed                  after "close" (or EOF) on stdin: all closed

At most --timeout seconds (default 120) are spent opening; connections
still without a greeting then count as failed.  The connections are held
until a line arrives on stdin, at most --hold seconds (default 900).
Standard library only.
"""

import argparse
import errno
import resource
import select
import selectors
import socket
import sys
import time

MAX_IN_FLIGHT = 256  # connects without a greeting yet: stay under backlog


def raise_fd_limit(count):
    """Soft RLIMIT_NOFILE up to what COUNT sockets need (within hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_connect(sel, host, port):
    """One non-blocking connect, registered for the greeting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex((host, port))
    if rc not in (0, errno.EINPROGRESS):
        s.close()
        return False
    sel.register(s, selectors.EVENT_READ, bytearray())
    return True


def on_readable(sel, key, held):
    """Read greeting bytes; True once a line is complete, None on failure."""
    s, buf = key.fileobj, key.data
    try:
        chunk = s.recv(1024)
    except OSError:
        chunk = b""
    if not chunk:
        sel.unregister(s)
        s.close()
        return None
    buf += chunk
    if b"\n" not in buf and len(buf) < 4096:
        return False
    sel.unregister(s)
    if not buf.startswith(b"220"):
        s.close()
        return None
    held.append(s)
    return True


def open_all(host, port, count, timeout):
    """Open count connections; return (held sockets, failed count)."""
    sel = selectors.DefaultSelector()
    held, failed, started = [], 0, 0
    deadline = time.monotonic() + timeout
    while len(held) + failed < count and time.monotonic() < deadline:
        while started < count and len(sel.get_map()) < MAX_IN_FLIGHT:
            started += 1
            if not start_connect(sel, host, port):
                failed += 1
        for key, _ in sel.select(timeout=0.5):
            done = on_readable(sel, key, held)
            if done is None:
                failed += 1
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        key.fileobj.close()
        failed += 1
    failed += count - started
    sel.close()
    return held, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--hold", type=float, default=900.0)
    a = ap.parse_args()
    limit = raise_fd_limit(a.count)
    count = min(a.count, max(0, limit - 64))
    held, failed = open_all(a.host, a.port, count, a.timeout)
    failed += a.count - count
    print("ready %d %d" % (len(held), failed), flush=True)
    select.select([sys.stdin], [], [], a.hold)
    for s in held:
        s.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
