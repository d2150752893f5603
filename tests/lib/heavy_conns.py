#!/usr/bin/env python3
"""tally - heavy_conns: many connections that each make the server hold as
much as a request may carry, and the server's memory meanwhile.

    heavy_conns.py HOST PORT PID [--conns 4000] [--header-bytes 7600]
                   [--body-bytes 16383] [--hold 10] [--after 10]
                   [--until-below KB]

Each connection sends a POST /write with --header-bytes of headers and a
Content-Length of 16384, then --body-bytes of its body, and stops there:
the server keeps it all while it waits for the rest. The connections are
opened at once without blocking (the soft open-file limit is raised to
the hard one). While they are held (--hold seconds) and for --after
seconds after they are closed (or until it is below --until-below kB),
the resident memory of process PID (and its peak, from /proc/PID/status)
is read every 0.2 s. Prints one JSON
object: baseline_kb, peak_kb (the highest VmRSS seen), hwm_kb (VmHWM at
the end), end_kb (VmRSS at the end), and how many connections were
opened and how many the server closed while they were held.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import time


def rss(pid):
    """(VmRSS, VmHWM) of a process, in kB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def payload(header_bytes, body_bytes):
    head = b"POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 16384\r\n"
    # headers of 100 bytes each (names must differ, or lighttpd merges them)
    i = 0
    while len(head) < header_bytes:
        name = b"X-Pad-%04d: " % i
        head += name + b"a" * (98 - len(name)) + b"\r\n"
        i += 1
    return head + b"\r\n" + b"b" * body_bytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--conns", type=int, default=4000)
    ap.add_argument("--header-bytes", type=int, default=7600)
    ap.add_argument("--body-bytes", type=int, default=16383)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--after", type=float, default=10)
    ap.add_argument("--until-below", type=int, default=0)
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1"):
        ap.error("loopback only")
    if not 0 < args.conns <= 10000 or args.hold > 120 or args.after > 120:
        ap.error("at most 10000 connections, 120 s")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data = payload(args.header_bytes, args.body_bytes)
    baseline, _ = rss(args.pid)
    peak = baseline
    sel = selectors.DefaultSelector()
    socks, todo = [], {}
    for _ in range(args.conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if s.connect_ex((args.host, args.port)) not in (0, errno.EINPROGRESS):
            s.close()
            continue
        socks.append(s)
        todo[s] = memoryview(data)
        sel.register(s, selectors.EVENT_WRITE)
    closed = 0
    start = time.monotonic()
    next_look = start
    # send what each connection carries, then hold them all
    while time.monotonic() - start < args.hold:
        for key, events in sel.select(timeout=0.05):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                try:
                    n = s.send(todo[s])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    n = None
                if n is None:
                    sel.unregister(s)
                    closed += 1
                    continue
                todo[s] = todo[s][n:]
                if not todo[s]:
                    sel.modify(s, selectors.EVENT_READ)
            else:
                try:
                    got = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    got = b""
                if not got:
                    sel.unregister(s)
                    closed += 1
        if time.monotonic() >= next_look:
            peak = max(peak, rss(args.pid)[0])
            next_look += 0.2
    for s in socks:
        s.close()
    sel.close()
    end = time.monotonic() + args.after
    while time.monotonic() < end:
        now_kb = rss(args.pid)[0]
        peak = max(peak, now_kb)
        if now_kb < args.until_below:
            break
        time.sleep(0.2)
    end_kb, hwm = rss(args.pid)
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "hwm_kb": hwm,
                      "end_kb": end_kb, "opened": len(socks),
                      "closed_by_server": closed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
