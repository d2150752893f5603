#!/usr/bin/env python3
"""tally - idle_conns: holds many idle or slow connections to a web server
and reports which ones the server cut off, and when.

    idle_conns.py HOST PORT [--idle N] [--partial N] [--slow N]
                  [--slow-every SECONDS] [--hold SECONDS]

idle     connects and sends nothing
partial  sends the start of a request (no blank line), then nothing
slow     sends the start of a request, then one more header byte every
         --slow-every seconds (slowloris)

Opens them all at once (at most 10,000; the soft open-file limit is
raised to the hard one), waiting at most --open-timeout seconds for the
server to take them: those it has not taken by then (they wait in its
kernel's queue) count as "pending", and are held like the others. Prints
{"opened": N, "pending": N} once they are open, keeps them for --hold
seconds, then prints one JSON object: for each kind, how many were
opened, how many the server closed, and the first and last time (seconds
after opening) it closed one.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import time

REQUEST_START = b"GET /time HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class Conn:
    def __init__(self, kind, sock):
        self.kind = kind
        self.sock = sock
        self.closed_after = None


def open_all(host, port, counts, open_timeout):
    """Connects all at once, without blocking; returns the connections,
    the failures by kind and how many were still pending at the end."""
    conns, failed, waiting = [], {kind: 0 for kind in counts}, {}
    sel = selectors.DefaultSelector()
    for kind, n in counts.items():
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                failed[kind] += 1
                s.close()
                continue
            c = Conn(kind, s)
            conns.append(c)
            waiting[s.fileno()] = c
            sel.register(s, selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + open_timeout
    while waiting and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(deadline - time.monotonic(), 0.01)):
            c = key.data
            sel.unregister(c.sock)
            del waiting[c.sock.fileno()]
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                failed[c.kind] += 1
                conns.remove(c)
                c.sock.close()
            elif c.kind != "idle":
                try:
                    c.sock.send(REQUEST_START)
                except OSError:
                    pass	# seen as closed later
    sel.close()
    return conns, failed, len(waiting)


def hold(conns, seconds, slow_every):
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    start = time.monotonic()
    next_drip = start + slow_every
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now >= next_drip:
            for c in conns:
                if c.kind == "slow" and c.closed_after is None:
                    try:
                        c.sock.send(b"X")
                    except OSError:
                        pass	# seen as closed by the read below
            next_drip += slow_every
        timeout = min(next_drip, start + seconds) - now
        for key, _ in sel.select(timeout=max(timeout, 0.01)):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                c.closed_after = time.monotonic() - start
                sel.unregister(c.sock)
    sel.close()


def report(conns, failed):
    out = {}
    for kind in failed:
        mine = [c for c in conns if c.kind == kind]
        times = sorted(c.closed_after for c in mine if c.closed_after is not None)
        out[kind] = {
            "opened": len(mine),
            "failed_to_open": failed[kind],
            "closed_by_server": len(times),
            "first_close_s": round(times[0], 2) if times else None,
            "last_close_s": round(times[-1], 2) if times else None,
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("--partial", type=int, default=0)
    ap.add_argument("--slow", type=int, default=0)
    ap.add_argument("--slow-every", type=float, default=2.0)
    ap.add_argument("--hold", type=float, default=20.0)
    ap.add_argument("--open-timeout", type=float, default=10.0)
    args = ap.parse_args()
    counts = {"idle": args.idle, "partial": args.partial, "slow": args.slow}
    if sum(counts.values()) > 10000 or min(counts.values()) < 0:
        ap.error("at most 10000 connections in all")
    if not 0 < args.hold <= 300 or not 0 < args.open_timeout <= 60:
        ap.error("--hold must be at most 300 seconds, --open-timeout 60")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < sum(counts.values()) + 64:
        ap.error(f"the open-file limit {hard} is too low")
    conns, failed, pending = open_all(args.host, args.port, counts,
                                      args.open_timeout)
    print(json.dumps({"opened": len(conns), "pending": pending}), flush=True)
    hold(conns, args.hold, args.slow_every)
    print(json.dumps(report(conns, failed)), flush=True)
    for c in conns:
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
