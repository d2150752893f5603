#!/usr/bin/env python3
"""tally - heavy_conns: many connections that each make the server hold as
much as a request may carry, and the server's memory meanwhile.

    heavy_conns.py HOST PORT MEMORY [--conns 4000] [--header-bytes 7600]
                   [--body-bytes 16383] [--hold 10] [--after 10]
                   [--until-below KB] [--network CIDR]

Each connection sends a POST /write with --header-bytes of headers and a
Content-Length of 16384, then --body-bytes of its body, and stops there:
the server keeps it all while it waits for the rest. The connections are
opened at once without blocking (the soft open-file limit is raised to
the hard one). HOST is a loopback address, or one within --network (a
test's own container network). While they are held (--hold seconds) and
for --after seconds after they are closed (or until it is below
--until-below kB), the server's memory is read every 0.2 s. MEMORY is
either a process id: its resident memory (VmRSS, and VmHWM, its peak,
from /proc/PID/status); or a container's memory cgroup directory
(/sys/fs/cgroup/memory/... of cgroup v1, or a cgroup v2 directory): the
memory charged to the container, what its limit is enforced against
(v1 memory.usage_in_bytes and memory.max_usage_in_bytes, v2
memory.current and memory.peak). Prints one JSON object: baseline_kb,
peak_kb (the highest usage seen), hwm_kb (the peak the kernel recorded,
read at the end), end_kb (the usage at the end), after_s (the seconds
from the close to that last reading), and how many
connections were opened and how many the server closed while they were
held; for a cgroup also limit_kb (its memory limit) and oom_kills (how
many processes the kernel's OOM killer has killed in it).
"""

import argparse
import errno
import ipaddress
import json
import os
import resource
import selectors
import socket
import sys
import time


class Process:
    """A process's resident memory."""

    def __init__(self, pid):
        self.pid = pid

    def read(self):
        """(VmRSS, VmHWM) in kB."""
        values = {}
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0])
        return values.get("VmRSS", 0), values.get("VmHWM", 0)

    def extra(self):
        return {}


class Cgroup:
    """The memory charged to a cgroup (v1 or v2), and its limit."""

    def __init__(self, path):
        self.path = path
        self.v1 = os.path.exists(os.path.join(path, "memory.usage_in_bytes"))

    def value(self, name):
        with open(os.path.join(self.path, name), encoding="ascii") as f:
            return f.read().strip()

    def field(self, name, key):
        """A "key value" line of file name."""
        with open(os.path.join(self.path, name), encoding="ascii") as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
        return 0

    def read(self):
        """(usage, peak) in kB; peak 0 where the kernel keeps none (v2
        before Linux 5.19)."""
        usage, peak = ("memory.usage_in_bytes", "memory.max_usage_in_bytes") if self.v1 else ("memory.current", "memory.peak")
        has_peak = os.path.exists(os.path.join(self.path, peak))
        return int(self.value(usage)) // 1024, int(self.value(peak)) // 1024 if has_peak else 0

    def extra(self):
        limit = self.value("memory.limit_in_bytes" if self.v1 else "memory.max")
        kills = self.field("memory.oom_control", "oom_kill") if self.v1 else self.field("memory.events", "oom_kill")
        return {"limit_kb": int(limit) // 1024 if limit.isdigit() else None, "oom_kills": kills}


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
    ap.add_argument("memory", help="a process id, or a memory cgroup's directory")
    ap.add_argument("--conns", type=int, default=4000)
    ap.add_argument("--header-bytes", type=int, default=7600)
    ap.add_argument("--body-bytes", type=int, default=16383)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--after", type=float, default=10)
    ap.add_argument("--until-below", type=int, default=0)
    ap.add_argument("--network", type=ipaddress.ip_network,
                    help="a network of the test's own that HOST may be in")
    args = ap.parse_args()
    host = ipaddress.ip_address(args.host)
    if not host.is_loopback and not (args.network and host in args.network):
        ap.error("loopback, or an address of --network, only")
    mem = Process(int(args.memory)) if args.memory.isdigit() else Cgroup(args.memory)
    if not 0 < args.conns <= 10000 or args.hold > 120 or args.after > 120:
        ap.error("at most 10000 connections, 120 s")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data = payload(args.header_bytes, args.body_bytes)
    baseline, _ = mem.read()
    peak = baseline
    sel = selectors.DefaultSelector()
    socks, todo = [], {}
    for _ in range(args.conns):
        s = socket.socket(socket.AF_INET6 if host.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
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
            peak = max(peak, mem.read()[0])
            next_look += 0.2
    for s in socks:
        s.close()
    sel.close()
    closed_at = time.monotonic()
    end = closed_at + args.after
    while time.monotonic() < end:
        now_kb = mem.read()[0]
        peak = max(peak, now_kb)
        if now_kb < args.until_below:
            break
        time.sleep(0.2)
    end_kb, hwm = mem.read()
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "hwm_kb": hwm,
                      "end_kb": end_kb, "after_s": round(time.monotonic() - closed_at, 1),
                      "opened": len(socks),
                      "closed_by_server": closed, **mem.extra()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
