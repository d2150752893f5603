#!/usr/bin/env python3
"""tally - linearizable: reads and writes at once, each checked against
the moments it was sent and answered.

    linearizable.py URL BEFORE [--writers 24] [--readers 8] [--each 60]
                    [--key-prefix P]

BEFORE is the counter's value before the run (nothing else writes
meanwhile). --writers threads each send --each POST /write, one after
another: every third with a fresh Idempotency-Key (P-thread-n), every
sixth repeating the key it sent before (a replay, which must answer that
key's value and count nothing), the others without a key. --readers
threads each send --each GET /read, and one thread GET /healthz, which
reads through the database thread's waiting path. Every request opens
its own connection, so lighttpd spreads them over the responders'
processes.

Checks, over every outcome:
  - every answer is 200 with {"counter": N};
  - the fresh writes (unkeyed or first use of a key) got distinct values,
    exactly BEFORE+1 .. BEFORE+fresh;
  - every replay got the value of its key's first use;
  - every read is current at some moment during its request: at least
    the value of every fresh write answered before the read was sent,
    and at most BEFORE plus the fresh writes sent before it was answered.
Prints "fresh=N replays=N reads=N" and exits 0, or prints each violation
(at most 20) and exits 1.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def request(host, port, method, path, key=None):
    """(start, end, status, counter) of one request on a new connection."""
    headers = {"Connection": "close"}
    if key is not None:
        headers["Idempotency-Key"] = key
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None,
                     headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        status = resp.status
    except (OSError, http.client.HTTPException) as e:
        return start, time.monotonic(), f"ERR:{e.__class__.__name__}", None
    finally:
        conn.close()
    end = time.monotonic()
    try:
        value = json.loads(body).get("counter")
    except (ValueError, AttributeError):
        value = None
    return start, end, status, value


def writer(host, port, n, prefix, out):
    last_key = None
    for i in range(n):
        if i % 6 == 5 and last_key is not None:
            out.append(("replay", last_key) + request(host, port, "POST", "/write", last_key))
        elif i % 3 == 2:
            last_key = f"{prefix}-{threading.get_ident()}-{i}"
            out.append(("keyed", last_key) + request(host, port, "POST", "/write", last_key))
        else:
            out.append(("write", None) + request(host, port, "POST", "/write"))


def reader(host, port, n, path, out):
    for _ in range(n):
        out.append(("read", None) + request(host, port, "GET", path))


def check(outcomes, before):
    errors = []
    fresh = [o for o in outcomes if o[0] in ("write", "keyed")]
    replays = [o for o in outcomes if o[0] == "replay"]
    reads = [o for o in outcomes if o[0] == "read"]
    for kind, key, start, end, status, value in outcomes:
        if status != 200 or (kind != "health" and not isinstance(value, int)):
            errors.append(f"{kind} answered {status} {value}")
    if errors:
        return errors, fresh, replays, reads
    values = sorted(o[5] for o in fresh)
    if values != list(range(before + 1, before + 1 + len(fresh))):
        errors.append(f"fresh writes got {len(set(values))} distinct values "
                      f"in {values[0]}..{values[-1]}, not {before + 1}.."
                      f"{before + len(fresh)}")
    first = {o[1]: o[5] for o in fresh if o[0] == "keyed"}
    for o in replays:
        if first.get(o[1]) != o[5]:
            errors.append(f"replay of {o[1]} answered {o[5]}, "
                          f"its first use {first.get(o[1])}")
    by_end = sorted(fresh, key=lambda o: o[3])
    starts = sorted(o[2] for o in fresh)
    for _, _, start, end, _, value in reads:
        done = [o[5] for o in by_end if o[3] < start]
        low = max(done) if done else before
        high = before + sum(1 for s in starts if s < end)
        if not low <= value <= high:
            errors.append(f"read {value} outside [{low}, {high}]: not "
                          f"current at any moment of its request")
    return errors, fresh, replays, reads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("before", type=int)
    ap.add_argument("--writers", type=int, default=24)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--each", type=int, default=60)
    ap.add_argument("--key-prefix", default=f"lin-{int(time.time())}")
    args = ap.parse_args()
    if not (1 <= args.writers <= 256 and 0 <= args.readers <= 256
            and 1 <= args.each <= 10000):
        ap.error("--writers 1..256, --readers 0..256, --each 1..10000")
    u = urllib.parse.urlsplit(args.url)
    host, port = u.hostname, u.port or 80
    lists, threads = [], []
    for _ in range(args.writers):
        lists.append([])
        threads.append(threading.Thread(
            target=writer, args=(host, port, args.each, args.key_prefix, lists[-1])))
    for _ in range(args.readers):
        lists.append([])
        threads.append(threading.Thread(
            target=reader, args=(host, port, args.each, "/read", lists[-1])))
    health = []
    threads.append(threading.Thread(
        target=reader, args=(host, port, args.each, "/healthz", health)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = [o for lst in lists for o in lst]
    outcomes += [("health",) + o[1:] for o in health]
    errors, fresh, replays, reads = check(outcomes, args.before)
    print(f"fresh={len(fresh)} replays={len(replays)} reads={len(reads)} "
          f"health={len(health)}")
    for e in errors[:20]:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
