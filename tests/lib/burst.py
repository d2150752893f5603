#!/usr/bin/env python3
"""tally - burst: many concurrent POST /write at once, every answer kept.

    burst.py HOST PORT --writers N [--keyed PREFIX] [--keep-alive]
             [--timeout SECONDS]

Starts N writers at once (asyncio): each opens a connection and sends one
POST /write on it, with "Connection: close", or with --keep-alive on a
connection the client then closes itself. With --keyed each request has
its own Idempotency-Key, PREFIX-<i>. Raises its own soft open-file limit
to the hard one first (one descriptor per connection).

Prints one JSON object:
  status       {"200": n, "503": n, ...}; "ERR" for no complete answer
  values       the counters of the 200 answers
  keys_200     {key: counter} of the 200 answers (with --keyed)
  bad_503      how many 503 answers lacked a JSON body or Retry-After
  replayed     how many 200 answers said Idempotent-Replayed
"""

import argparse
import asyncio
import json
import resource
import sys


async def one(host, port, i, args, out):
    key = f"{args.keyed}-{i}" if args.keyed else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), args.timeout)
    except (OSError, asyncio.TimeoutError):
        out.append((i, key, "ERR", None, None))
        return
    try:
        head = (f"POST /write HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Length: 0\r\n"
                f"Connection: {'keep-alive' if args.keep_alive else 'close'}\r\n")
        if key:
            head += f"Idempotency-Key: {key}\r\n"
        writer.write((head + "\r\n").encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), args.timeout)
        lines = raw.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), args.timeout)
        out.append((i, key, status, headers, body))
    except (OSError, ValueError, IndexError, asyncio.TimeoutError,
            asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        out.append((i, key, "ERR", None, None))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def burst(args):
    out = []
    tasks = [asyncio.create_task(one(args.host, args.port, i, args, out))
             for i in range(args.writers)]
    await asyncio.gather(*tasks)
    return out


def summary(out):
    status, values, keys_200, bad_503, replayed = {}, [], {}, 0, 0
    for _i, key, st, headers, body in out:
        status[st] = status.get(st, 0) + 1
        if st == "200":
            try:
                value = json.loads(body)["counter"]
            except (ValueError, KeyError, TypeError):
                status["200-bad"] = status.get("200-bad", 0) + 1
                continue
            values.append(value)
            if key:
                keys_200[key] = value
            if headers.get("idempotent-replayed"):
                replayed += 1
        elif st == "503":
            ok = "retry-after" in headers
            try:
                ok = ok and isinstance(json.loads(body), dict)
            except ValueError:
                ok = False
            if not ok:
                bad_503 += 1
    return {"status": status, "values": values, "keys_200": keys_200,
            "bad_503": bad_503, "replayed": replayed}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--writers", type=int, required=True)
    ap.add_argument("--keyed", default="")
    ap.add_argument("--keep-alive", action="store_true")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    if not 0 < args.writers <= 10000:
        ap.error("--writers must be from 1 to 10000")
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        ap.error("loopback only")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.writers + 64:
        ap.error(f"the open-file limit {hard} is too low for {args.writers}")
    out = asyncio.run(burst(args))
    print(json.dumps(summary(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
