#!/usr/bin/env python3
"""tally - writers.py: the rehearsal's write load over several pods, the
retries of the requests whose outcome was unknown, and the exactness
check.

    writers.py run ENDPOINTS OUT [--clients 8] [--rate 200] [--keyed 0.5]
                   [--duration 120] [--stop-file PATH] [--tag TAG]
    writers.py retry ENDPOINTS OUT RETRIES
    writers.py check OUT RETRIES INITIAL FINAL KEYS
    writers.py figures OUT

run: --clients threads send POST /write, one new connection each, until
--duration seconds have passed or --stop-file exists, together at most
--rate a second (0: as fast as they can). ENDPOINTS is a file of
"ADDRESS:PORT" lines, the pods that are ready (the test edits it as the
Endpoints controller would); it is read again every 0.2 s, and client i
sends its n-th request to pod (i + n) mod count, so the load is spread
over every pod. A share --keyed of the clients sends an Idempotency-Key
(TAG-client-n) with every request. Every outcome is one JSON line of OUT.

retry: every keyed request whose outcome the client could not know (no
complete answer, or a 5xx) is sent again with its key to another pod than
the first, until it gets a 200 (at most 40 tries, 0.25 s apart).

check: every 200's value is distinct across pods (a key's replays carry
its one value); FINAL - INITIAL lies in [acknowledged, attempted], each
key counted once; each retried key's answers agree with the value the
database holds for it (KEYS: "key value" lines), so it counted once.
Prints the figures; exits 1 when a check fails.

figures: writes/s, p99, longest time without a 200, for the Scaling
measurements.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time


def post_write(endpoint, key, timeout=3.0):
    """One POST /write; returns (status, counter, replayed). The timeout
    covers tally's own bound (a 503 within TALLY_DB_TIMEOUT_MS plus the
    connect timeout), as a client or load balancer would set it."""
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Connection": "close", "Content-Length": "0"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        conn.request("POST", "/write", body=b"", headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        counter = None
        try:
            obj = json.loads(data)
            if isinstance(obj, dict) and isinstance(obj.get("counter"), int):
                counter = obj["counter"]
        except ValueError:
            pass
        replayed = resp.getheader("Idempotent-Replayed") == "true"
        return str(resp.status), counter, replayed
    except (OSError, http.client.HTTPException) as e:
        return "ERR:" + e.__class__.__name__, None, False
    finally:
        conn.close()


class Endpoints:
    """The ready pods, re-read from the file every 0.2 s."""

    def __init__(self, path):
        self.path, self.when, self.list = path, 0.0, []
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            if time.monotonic() - self.when > 0.2:
                with open(self.path, encoding="ascii") as f:
                    self.list = [l.strip() for l in f if l.strip()]
                self.when = time.monotonic()
            return list(self.list)


def unknown(status):
    """The client cannot know whether the request counted."""
    return status != "ERR:ConnectionRefusedError" and (status.startswith("ERR") or status.startswith("5"))


def cmd_run(a):
    eps = Endpoints(a.endpoints)
    deadline = time.monotonic() + a.duration
    lock = threading.Lock()
    out = open(a.out, "w", encoding="ascii")
    keyed_clients = round(a.clients * a.keyed)

    def client(i):
        interval = a.clients / a.rate if a.rate > 0 else 0
        due, n = time.monotonic(), 0
        while time.monotonic() < deadline and not (a.stop_file and os.path.exists(a.stop_file)):
            pods = eps.get()
            if not pods:
                time.sleep(0.1)
                continue
            pod = pods[(i + n) % len(pods)]
            key = f"{a.tag}-{i}-{n}" if i < keyed_clients else None
            n += 1
            due += interval
            t0 = time.time()
            status, counter, replayed = post_write(pod, key)
            rec = {"t0": t0, "t1": time.time(), "pod": pod, "key": key,
                   "status": status, "counter": counter, "replayed": replayed}
            with lock:
                out.write(json.dumps(rec) + "\n")
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def records(path):
    with open(path, encoding="ascii") as f:
        return [json.loads(l) for l in f if l.strip()]


def cmd_retry(a):
    eps = Endpoints(a.endpoints)
    out = open(a.retries, "w", encoding="ascii")
    for r in records(a.out):
        if not r["key"] or not unknown(r["status"]):
            continue
        for attempt in range(40):
            others = [p for p in eps.get() if p != r["pod"]] or eps.get()
            pod = others[attempt % len(others)]
            status, counter, replayed = post_write(pod, r["key"])
            if status == "200":
                break
            time.sleep(0.25)
        out.write(json.dumps({"key": r["key"], "first_pod": r["pod"], "pod": pod,
                              "status": status, "counter": counter, "replayed": replayed}) + "\n")
    out.close()


def longest_gap(recs):
    """Seconds of the longest stretch without a 200 answer, between the
    first and the last 200 of the run."""
    ends = sorted(r["t1"] for r in recs if r["status"] == "200")
    return max((b - a for a, b in zip(ends, ends[1:])), default=0.0)


def cmd_check(a):
    recs, retries = records(a.out), records(a.retries)
    initial, final = int(a.initial), int(a.final)
    held = {}
    with open(a.keys, encoding="ascii") as f:
        for line in f:
            if line.strip():
                k, v = line.split()
                held[k] = int(v)
    failures = []
    owner = {}		# value -> the key (or request) that got it
    for n, r in enumerate(recs + retries):
        if r["status"] != "200":
            continue
        who = r["key"] or f"#{n}"
        if r["counter"] is None:
            failures.append(f"a 200 without a counter: {r}")
        elif owner.setdefault(r["counter"], who) != who:
            failures.append(f"value {r['counter']} answered to {owner[r['counter']]} and {who}")
    unkeyed = [r for r in recs if not r["key"]]
    keyed = [r for r in recs if r["key"]]
    acked_u = sum(r["status"] == "200" for r in unkeyed)
    keys = {r["key"] for r in keyed}
    acked_k = {r["key"] for r in keyed + retries if r["status"] == "200"}
    low, high = acked_u + len(acked_k), len(unkeyed) + len(keys)
    if not low <= final - initial <= high:
        failures.append(f"counter grew by {final - initial}, outside [{low}, {high}]")
    answers = {}
    for r in keyed + retries:
        if r["status"] == "200":
            answers.setdefault(r["key"], set()).add(r["counter"])
    for k, vals in answers.items():
        if len(vals) != 1 or held.get(k) not in vals:
            failures.append(f"key {k}: answered {sorted(vals)}, database holds {held.get(k)}")
    retried_ok = sum(r["status"] == "200" for r in retries)
    replayed = sum(r["status"] == "200" and r["replayed"] for r in retries)
    pods = sorted({r["pod"] for r in recs})
    unknown_n = sum(unknown(r["status"]) for r in recs)
    print(f"attempts={len(recs)} ok={acked_u + sum(r['status'] == '200' for r in keyed)}"
          f" unknown={unknown_n} refused_at_connect={sum(r['status'] == 'ERR:ConnectionRefusedError' for r in recs)}"
          f" pods={len(pods)} counter+{final - initial} bounds=[{low},{high}]"
          f" keyed_unknown_retried={len(retries)} retried_ok={retried_ok} of_which_replayed={replayed}"
          f" writes_refused_for={longest_gap(recs):.2f}s")
    for f in failures[:20]:
        print("FAIL: " + f)
    return 1 if failures or retried_ok != len(retries) else 0


def cmd_figures(a):
    recs = records(a.out)
    ok = sorted(r["t1"] - r["t0"] for r in recs if r["status"] == "200")
    span = max(r["t1"] for r in recs) - min(r["t0"] for r in recs) if recs else 0
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] if ok else 0
    print(f"{len(ok) / span if span else 0:.0f} {p99 * 1000:.1f} {span:.2f} {len(ok)} {len(recs)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("endpoints")
    r.add_argument("out")
    r.add_argument("--clients", type=int, default=8)
    r.add_argument("--rate", type=float, default=200.0)
    r.add_argument("--keyed", type=float, default=0.5)
    r.add_argument("--duration", type=float, default=120.0)
    r.add_argument("--stop-file")
    r.add_argument("--tag", default="w")
    t = sub.add_parser("retry")
    t.add_argument("endpoints")
    t.add_argument("out")
    t.add_argument("retries")
    c = sub.add_parser("check")
    for name in ("out", "retries", "initial", "final", "keys"):
        c.add_argument(name)
    f = sub.add_parser("figures")
    f.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "run":
        if not 1 <= a.clients <= 256 or a.rate < 0 or not 0 < a.duration <= 600 or not 0 <= a.keyed <= 1:
            ap.error("--clients 1..256, --rate >= 0, --duration 0..600, --keyed 0..1")
        cmd_run(a)
        return 0
    return {"retry": cmd_retry, "check": cmd_check, "figures": cmd_figures}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
