#!/usr/bin/env python3
"""tally - xff_check: sends hostile X-Forwarded-For headers to GET /time and
checks every answer against what the header allows.

    xff_check.py HOST PORT --trusted CIDRS [--random N] [--seed S]

Each case is sent as raw bytes (HTTP/1.0, so anything can go in a header).
An answer passes when it is
  - 200 with a JSON object of at most 2048 bytes, a proxy_chain of at most
    32 entries that are addresses or "invalid", and the user_ip that the
    X-Forwarded-For walk allows: the peer, unless it is trusted; then the
    rightmost entry that is not a trusted address, where every entry right
    of it is a trusted address; an entry that is not an address ends the
    walk at the last trusted hop. So user_ip never comes from an untrusted
    hop.
  - or, only for the cases marked so (control bytes, headers over
    lighttpd's 8 KB), lighttpd's refusal: 400 or 431.
Prints one line per failure and a summary; exits 1 if any case failed.
"""

import argparse
import ipaddress
import json
import random
import sys

from raw_http import exchange

BODY_MAX = 2048
CHAIN_MAX = 32
ENTRY_MAX = 64
PEER = "127.0.0.1"


def parse_entry(text):
    """An X-Forwarded-For entry as tally reads it, or None."""
    text = text.strip(" \t")
    if not text or len(text) > ENTRY_MAX:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        rest = text[end + 1:]
        if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not (port.isdigit() and len(port) <= 5 and port.isascii()):
            return None
        text = host
    text = text.split("%", 1)[0]
    if not text or not text.isascii():
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def expected_user_ip(header, trusted):
    """The walk of the header from the right, from a trusted peer."""
    user = ipaddress.ip_address(PEER)
    if not any(user in net for net in trusted):
        return user
    for entry in reversed(header.split(",")):
        if not entry.strip(" \t"):
            continue
        ip = parse_entry(entry)
        if ip is None:
            return user
        user = ip
        if not any(ip in net for net in trusted if net.version == ip.version):
            return user
    return user


def ask(host, port, xff_values):
    """GET /time with these X-Forwarded-For headers; (status, body)."""
    head = b"GET /time HTTP/1.0\r\nHost: 127.0.0.1\r\n"
    for value in xff_values:
        head += b"X-Forwarded-For: " + value + b"\r\n"
    data = exchange(host, port, head + b"\r\n")
    headers, _, body = data.partition(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    return status, body


def check_answer(body, header, trusted):
    """Returns what is wrong with a 200's body, or None."""
    if len(body) > BODY_MAX:
        return f"body of {len(body)} bytes"
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return f"not JSON: {e}"
    if not isinstance(obj, dict) or set(obj) - {"timestamp", "user_ip", "proxy_chain",
                                                 "proxy_chain_truncated"}:
        return f"unexpected object: {obj}"
    chain = obj.get("proxy_chain")
    if not isinstance(chain, list) or len(chain) > CHAIN_MAX:
        return f"proxy_chain: {chain}"
    for entry in chain:
        if entry != "invalid" and parse_entry(entry) is None:
            return f"proxy_chain entry {entry!r}"
    want = expected_user_ip(header, trusted)
    got = obj.get("user_ip")
    if got is None or parse_entry(got) != want:
        return f"user_ip {got!r}, the walk allows only {str(want)!r}"
    return None


def fixed_cases():
    """(name, [header values], may be refused)."""
    v6_1000 = ",".join(f"::{i:x}" for i in range(1, 1001)).encode()
    v4_1000 = ",".join(f"10.0.{i // 250}.{i % 250}" for i in range(1000)).encode()
    return [
        ("1000 short entries", [v6_1000], False),
        ("1000 IPv4 entries (over 8 KB)", [v4_1000], True),
        ("64 KB", [b"A" * 65536], True),
        ("64 KB of entries", [b"1.2.3.4," * 8192], True),
        ("words", [b"unknown, _hidden, obfuscated, localhost"], False),
        ("markup", [b'<script>alert(1)</script>, "quoted", \\escaped\\'], False),
        ("spoof behind trusted", [b"203.0.113.9, 10.0.0.1"], False),
        ("spoof prepended", [b"10.0.0.5, 198.51.100.4, 10.0.0.1"], False),
        ("word before trusted", [b"evil, 10.0.0.1"], False),
        ("all trusted", [b"10.1.1.1, 10.0.0.1"], False),
        ("IPv6 zone", [b"fe80::1%eth0"], False),
        ("IPv6 zone, port", [b"[fe80::1%eth0]:443, 10.0.0.1"], False),
        ("IPv6 port", [b"[2001:db8::7]:8080"], False),
        ("IPv4 port", [b"198.51.100.7:65535, 10.0.0.1"], False),
        ("v4-mapped trusted", [b"203.0.113.1, ::ffff:10.0.0.1"], False),
        ("bad port", [b"1.2.3.4:port, [::1]:99999999"], False),
        ("unclosed bracket", [b"[2001:db8::1, 10.0.0.1"], False),
        ("long entry", [b"1" * 200 + b", 10.0.0.1"], False),
        ("empty", [b""], False),
        ("commas", [b",,, ,\t,"], False),
        ("tabs", [b"\t203.0.113.8\t,\t10.0.0.2\t"], False),
        ("non-UTF-8", [b"\xff\xfe\xc3\x28, 10.0.0.1"], False),
        ("non-UTF-8 in entry", [b"203.0.113.\xb9, 10.0.0.1"], False),
        ("control byte", [b"1.2.3.4\x01"], True),
        ("DEL", [b"1.2.3.4\x7f"], True),
        ("NUL", [b"1.2.3.4\x00, 10.0.0.1"], True),
        ("escape sequence", [b"\x1b[31m1.2.3.4"], True),
        ("50 headers", [f"10.0.0.{i}".encode() for i in range(50)], False),
        ("two headers", [b"198.51.100.9", b"10.0.0.1"], False),
    ]


def random_cases(n, seed):
    rnd = random.Random(seed)
    pool = [
        lambda: f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
        lambda: f"203.0.113.{rnd.randrange(256)}",
        lambda: f"127.0.0.{rnd.randrange(256)}",
        lambda: f"2001:db8::{rnd.randrange(65536):x}",
        lambda: f"[2001:db8::{rnd.randrange(65536):x}]:{rnd.randrange(65536)}",
        lambda: f"fe80::{rnd.randrange(65536):x}%eth{rnd.randrange(9)}",
        lambda: f"198.51.100.{rnd.randrange(256)}:{rnd.randrange(65536)}",
        lambda: f"::ffff:10.0.0.{rnd.randrange(256)}",
        lambda: rnd.choice(["unknown", "", " ", "-", "_x", "999.1.1.1", "1.2.3",
                            "::g", "[::1", "1.2.3.4:", "1.2.3.4:99999999"]),
        lambda: bytes(rnd.randrange(0x80, 0x100) for _ in range(rnd.randrange(1, 8))),
    ]
    cases = []
    for i in range(n):
        parts = []
        for _ in range(rnd.randrange(0, 60)):
            p = rnd.choice(pool)()
            parts.append(p if isinstance(p, bytes) else p.encode())
        cases.append((f"random {i}", [b", ".join(parts)], False))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--trusted", required=True)
    ap.add_argument("--random", type=int, default=200)
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    trusted = [ipaddress.ip_network(c.strip()) for c in args.trusted.split(",") if c.strip()]
    failures = refused = 0
    cases = fixed_cases() + random_cases(args.random, args.seed)
    for name, values, may_refuse in cases:
        # lighttpd hands several headers on as one, joined by ", "
        header = ", ".join(v.decode("latin-1") for v in values)
        status, body = ask(args.host, args.port, values)
        if status == 200:
            problem = check_answer(body, header, trusted)
        elif status in (400, 431) and may_refuse:
            refused += 1
            problem = None
        else:
            problem = f"status {status}"
        if problem is not None:
            failures += 1
            print(f"FAIL {name}: {problem}")
    print(f"cases={len(cases)} answered={len(cases) - refused - failures} "
          f"refused={refused} failures={failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
