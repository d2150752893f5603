#!/usr/bin/env python3
"""tally - load: concurrent HTTP requests for a while, every outcome kept.

    load.py URL [--method POST] [--clients 8] [--rate 400] [--duration 10]
            [--stop-file PATH] [--timeout 10] --out FILE

Each of --clients threads sends requests one after another (a new
connection each, so no answer depends on a kept-alive connection) until
--duration seconds have passed or --stop-file exists. Together they send
at most --rate requests a second (0: as fast as they can), so the load
leaves the machine's cores to the server and the test that drives it. Every outcome is
one line of FILE, in the order they finished:

    <start> <end> <status> <counter> <json>

start and end are Unix times (seconds, microseconds); status is the
HTTP status, or "ERR:<reason>" when no complete answer came (the outcome
is unknown to the client); counter is the "counter" of a JSON answer or
"-"; json is 1 when the body was a JSON object, else 0. A POST sends an
empty body with Content-Length: 0. A summary goes to stdout at the end.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter


def one_request(host, port, path, method, timeout):
    """Returns (status, counter, json_ok) for one request on a new connection."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        body = b"" if method == "POST" else None
        if body is not None:
            headers["Content-Length"] = "0"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        counter, json_ok = "-", 0
        try:
            obj = json.loads(data)
            if isinstance(obj, dict):
                json_ok = 1
                if isinstance(obj.get("counter"), int):
                    counter = str(obj["counter"])
        except ValueError:
            pass
        return str(resp.status), counter, json_ok
    except (OSError, http.client.HTTPException) as e:
        return "ERR:" + e.__class__.__name__, "-", 0
    finally:
        conn.close()


class Run:
    def __init__(self, args):
        url = urllib.parse.urlsplit(args.url)
        self.host, self.port = url.hostname, url.port or 80
        self.path = (url.path or "/") + ("?" + url.query if url.query else "")
        self.args = args
        self.deadline = time.monotonic() + args.duration
        self.lock = threading.Lock()
        self.out = open(args.out, "w", encoding="ascii")
        self.tally = Counter()

    def finished(self):
        if time.monotonic() >= self.deadline:
            return True
        return self.args.stop_file is not None and os.path.exists(self.args.stop_file)

    def client(self):
        interval = self.args.clients / self.args.rate if self.args.rate > 0 else 0
        due = time.monotonic()
        while not self.finished():
            due += interval
            start = time.time()
            status, counter, json_ok = one_request(
                self.host, self.port, self.path, self.args.method, self.args.timeout)
            line = f"{start:.6f} {time.time():.6f} {status} {counter} {json_ok}\n"
            with self.lock:
                self.out.write(line)
                self.tally[status] += 1
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()	# late: no burst to catch up

    def run(self):
        threads = [threading.Thread(target=self.client, daemon=True)
                   for _ in range(self.args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.out.close()
        total = sum(self.tally.values())
        parts = " ".join(f"{k}={v}" for k, v in sorted(self.tally.items()))
        print(f"attempts={total} {parts}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--method", default="GET", choices=["GET", "HEAD", "POST"])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=400.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--stop-file")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not 1 <= args.clients <= 256:
        ap.error("--clients must be 1..256")
    if args.rate < 0:
        ap.error("--rate must not be negative")
    if not 0 < args.duration <= 600:
        ap.error("--duration must be at most 600 seconds")
    Run(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
