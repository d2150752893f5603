#!/usr/bin/env python3
"""tally - /stream's fan-out and memory, measured against a running stack.

Opens N streams of /stream (one asyncio loop, raw HTTP/1.1 on loopback),
waits until each has its first event, notes the resident memory of
lighttpd and tally-stream (their pids given), then makes W writes, one
at a time, a little apart, and measures for each how long after the
write's answer every stream had an event with its value: the fan-out
latency, reported as percentiles over all (write, stream) pairs, with
the memory per stream.

  tests/bench/stream.py URL N W LIGHTTPD_PIDS STREAM_PID

(PIDs comma-separated). The stack must allow N streams per client
(TALLY_STREAM_PER_CLIENT, TALLY_STREAM_MAX) and TALLY_MAX_CONNECTIONS.
Prints one JSON object.
"""
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def stream(host, port, path, seen, ready):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    first = True
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                value = int(line[4:].strip())
                seen.setdefault(value, []).append(time.monotonic())
                if first:
                    first = False
                    ready.release()
    finally:
        writer.close()


def post(url):
    req = urllib.request.Request(url + "/write", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["counter"]


async def main():
    url, n, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    web_pids = [int(p) for p in sys.argv[4].split(",") if p]
    stream_pid = int(sys.argv[5])
    u = urllib.parse.urlsplit(url)
    before = (sum(rss_kb(p) for p in web_pids), rss_kb(stream_pid))
    seen, ready = {}, asyncio.Semaphore(0)
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(
            stream(u.hostname, u.port, "/stream", seen, ready)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    for _ in range(n):
        await asyncio.wait_for(ready.acquire(), 60)
    await asyncio.sleep(1)
    after = (sum(rss_kb(p) for p in web_pids), rss_kb(stream_pid))
    lat = []
    loop = asyncio.get_running_loop()
    for _ in range(writes):
        value = await loop.run_in_executor(None, post, url)
        answered = time.monotonic()
        deadline = answered + 10
        while len(seen.get(value, [])) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        got = seen.get(value, [])
        lat += [max(0.0, t - answered) * 1000 for t in got]
        lat += [float("inf")] * (n - len(got))
        await asyncio.sleep(0.2)	# 5 writes a second, below the rate
    for t in tasks:
        t.cancel()
    lat.sort()

    def pct(p):
        return round(lat[min(len(lat) - 1, int(len(lat) * p / 100))], 1)
    print(json.dumps({
        "streams": n, "writes": writes,
        "fanout_ms": {"p50": pct(50), "p99": pct(99), "max": pct(100)},
        "lighttpd_kb_per_stream": round((after[0] - before[0]) / n, 2),
        "responder_kb_per_stream": round((after[1] - before[1]) / n, 3),
        "lighttpd_rss_kb": after[0], "responder_rss_kb": after[1],
    }))


asyncio.run(main())
