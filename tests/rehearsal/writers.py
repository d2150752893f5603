#!/usr/bin/env python3
"""tally - writers.py: the rehearsal's write load over several pods, the
retries of the requests whose outcome was unknown, and the exactness
check.

    writers.py run ENDPOINTS OUT [--clients 8] [--rate 200] [--keyed 0.5]
                   [--duration 120] [--stop-file PATH] [--tag TAG]
                   [--counter NAME]...
    writers.py retry ENDPOINTS OUT RETRIES
    writers.py check OUT RETRIES BEFORE AFTER KEYS
    writers.py figures OUT

run: --clients threads send POST /write (or POST /write/NAME), one new
connection each, until --duration seconds have passed or --stop-file
exists, together at most --rate a second (0: as fast as they can).
ENDPOINTS is a file of "ADDRESS:PORT" lines, the pods that are ready (the
test edits it as the Endpoints controller would); it is read again every
0.2 s, and client i sends its n-th request to pod (i + n) mod count, so
the load is spread over every pod. The counters are the --counter NAMEs
(an empty NAME is the default counter, POST /write; none given: the
default counter alone); client i's n-th request goes to counter
(i + n // 2) mod count, so each client writes to every counter and each
counter's writes alternate between two pods. A share --keyed of the
clients sends an Idempotency-Key (TAG-client-n) with every request. Every
outcome is one JSON line of OUT.

retry: every keyed request whose outcome the client could not know (no
complete answer, or a 5xx) is sent again with its key, to its counter, to
another pod than the first, until it gets a 200 (at most 40 tries, 0.25 s
apart).

check, for every counter (the default one is named ""): every 200's
value is distinct across pods (a key's replays carry its one value); its
growth from BEFORE to AFTER lies in [acknowledged, attempted], each key
counted once, and a counter nobody wrote to did not change; each keyed
request's answers agree with the value and the counter the database holds
for its key, so it counted once, where it was sent, and no key is held
for another counter than the one it was sent to. BEFORE and AFTER are
"NAME|VALUE" lines (every counter of tally_counter; a counter missing
from BEFORE starts at 0), KEYS "KEY|NAME|VALUE" lines (psql -tA).
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


def post_write(endpoint, key, name="", timeout=3.0):
    """One POST /write, or POST /write/NAME for a named counter; returns
    (status, counter, replayed). The timeout
    covers tally's own bound (a 503 within TALLY_DB_TIMEOUT_MS plus the
    connect timeout), as a client or load balancer would set it."""
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    headers = {"Connection": "close", "Content-Length": "0"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        conn.request("POST", "/write/" + name if name else "/write", body=b"", headers=headers)
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
    names = a.counter or [""]

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
            name = names[(i + n // 2) % len(names)]
            n += 1
            due += interval
            t0 = time.time()
            status, counter, replayed = post_write(pod, key, name)
            rec = {"t0": t0, "t1": time.time(), "pod": pod, "name": name, "key": key,
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
            status, counter, replayed = post_write(pod, r["key"], r["name"])
            if status == "200":
                break
            time.sleep(0.25)
        out.write(json.dumps({"key": r["key"], "name": r["name"], "first_pod": r["pod"], "pod": pod,
                              "status": status, "counter": counter, "replayed": replayed}) + "\n")
    out.close()


def longest_gap(recs):
    """Seconds of the longest stretch without a 200 answer, between the
    first and the last 200 of the run."""
    ends = sorted(r["t1"] for r in recs if r["status"] == "200")
    return max((b - a for a, b in zip(ends, ends[1:])), default=0.0)


def values(path):
    """NAME|VALUE lines: {name: value}."""
    with open(path, encoding="ascii") as f:
        return {n: int(v) for n, v in (l.rstrip("\n").rsplit("|", 1) for l in f if l.strip())}


def counter_bounds(recs, retries):
    """For each counter written to: (acknowledged, attempted), each key
    once."""
    bounds = {}
    for name in {r["name"] for r in recs}:
        unkeyed = [r for r in recs if r["name"] == name and not r["key"]]
        keys = {r["key"] for r in recs if r["name"] == name and r["key"]}
        acked_k = {r["key"] for r in recs + retries if r["name"] == name and r["key"] and r["status"] == "200"}
        bounds[name] = (sum(r["status"] == "200" for r in unkeyed) + len(acked_k), len(unkeyed) + len(keys))
    return bounds


def cmd_check(a):
    recs, retries = records(a.out), records(a.retries)
    before, after = values(a.before), values(a.after)
    held = {}
    with open(a.keys, encoding="ascii") as f:
        for line in f:
            if line.strip():
                k, name, v = line.rstrip("\n").split("|")
                held[k] = (name, int(v))
    failures = []
    owner = {}		# (counter, value) -> the key (or request) that got it
    for n, r in enumerate(recs + retries):
        if r["status"] != "200":
            continue
        who = r["key"] or f"#{n}"
        if r["counter"] is None:
            failures.append(f"a 200 without a counter: {r}")
        elif owner.setdefault((r["name"], r["counter"]), who) != who:
            failures.append(f"/write/{r['name']}: value {r['counter']} answered to "
                            f"{owner[(r['name'], r['counter'])]} and {who}")
    bounds = counter_bounds(recs, retries)
    growth = {n: after.get(n, 0) - before.get(n, 0) for n in set(before) | set(after) | set(bounds)}
    for name, grew in sorted(growth.items()):
        low, high = bounds.get(name, (0, 0))
        if not low <= grew <= high:
            failures.append(f"/write/{name}: counter grew by {grew}, outside [{low}, {high}]")
    answers = {}
    for r in recs + retries:
        if r["key"] and r["status"] == "200":
            answers.setdefault(r["key"], set()).add((r["name"], r["counter"]))
    for k, got in answers.items():
        if len(got) != 1 or held.get(k) not in got:
            failures.append(f"key {k}: answered {sorted(got)}, database holds {held.get(k)}")
    sent_to = {r["key"]: r["name"] for r in recs if r["key"]}
    for k, (name, _) in held.items():
        if sent_to.get(k, name) != name:
            failures.append(f"key {k}: sent to /write/{sent_to[k]}, held for /write/{name}")
    retried_ok = sum(r["status"] == "200" for r in retries)
    replayed = sum(r["status"] == "200" and r["replayed"] for r in retries)
    pods = sorted({r["pod"] for r in recs})
    unknown_n = sum(unknown(r["status"]) for r in recs)
    ok = sum(r["status"] == "200" for r in recs)
    total = (sum(growth[n] for n in bounds), sum(b[0] for b in bounds.values()), sum(b[1] for b in bounds.values()))
    each = ", ".join(f"{n or '(default)'} +{growth[n]} [{bounds[n][0]},{bounds[n][1]}]" for n in sorted(bounds))
    print(f"attempts={len(recs)} ok={ok}"
          f" unknown={unknown_n} refused_at_connect={sum(r['status'] == 'ERR:ConnectionRefusedError' for r in recs)}"
          f" pods={len(pods)} counters+{total[0]} bounds=[{total[1]},{total[2]}] ({each})"
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
    r.add_argument("--counter", action="append", help="a counter's name; empty: the default counter")
    t = sub.add_parser("retry")
    t.add_argument("endpoints")
    t.add_argument("out")
    t.add_argument("retries")
    c = sub.add_parser("check")
    for name in ("out", "retries", "before", "after", "keys"):
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
