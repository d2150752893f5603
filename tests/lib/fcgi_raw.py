#!/usr/bin/env python3
"""tally - fcgi_raw: writes hostile bytes straight to a responder's FastCGI
unix socket, bypassing lighttpd, and reports what the responder did.

    fcgi_raw.py SOCKET MODE [--count N] [--hold SECONDS]
                [--serial] [--idle SECONDS] [--delay SECONDS]

MODE is one of the shapes below (--list prints them). Each of the N
connections (opened at once, or one after another with --serial, each
after --idle seconds without any connection) sends the shape --delay
seconds after it connected, then waits up to --hold seconds for the
responder to answer or close. One line per connection:
    <mode> closed=<0|1> after=<seconds> received=<bytes> status=<Status|->
"valid" sends a well-formed GET request and prints the answer's status,
so a test can prove the responder still serves after the garbage.
Exit status: 0, or 2 when a connection could not even be opened.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time

FCGI_VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
GET_VALUES = 9
RESPONDER = 1


def record(rtype, content=b"", request_id=1, version=FCGI_VERSION):
    """One FastCGI record: 8-byte header, content, padding to 8 bytes."""
    padding = (8 - len(content) % 8) % 8
    header = struct.pack(">BBHHBx", version, rtype, request_id, len(content), padding)
    return header + content + b"\0" * padding


def name_value(name, value):
    """A FastCGI name-value pair with 1- or 4-byte lengths."""
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def begin(role=RESPONDER, flags=0):
    return record(BEGIN_REQUEST, struct.pack(">HB5x", role, flags))


def params(pairs):
    body = b"".join(name_value(k.encode(), v.encode()) for k, v in pairs)
    return record(PARAMS, body) + record(PARAMS)


GET_TIME = [("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "/time"),
            ("REQUEST_URI", "/time"), ("REMOTE_ADDR", "127.0.0.1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"), ("GATEWAY_INTERFACE", "CGI/1.1")]


def valid_request():
    return begin() + params(GET_TIME) + record(STDIN)


def huge_lengths():
    # Name and value lengths near 2^31: their sum overflows an int
    # (CVE-2025-23016 in libfcgi < 2.4.5); only a few bytes follow.
    pair = struct.pack(">II", 0x7fffffff | 0x80000000, 0x7fffffff | 0x80000000)
    return begin() + struct.pack(">BBHHBx", 1, PARAMS, 1, 65535, 0) + pair + b"A" * 64


# name -> (bytes to send, whether the shape leaves a record half sent)
SHAPES = {
    "garbage": (lambda: os.urandom(4096), False),
    "http": (lambda: b"GET /time HTTP/1.1\r\nHost: x\r\n\r\n", False),
    "bad-version": (lambda: record(BEGIN_REQUEST, b"\0\1\0\0\0\0\0\0", version=9), False),
    "unknown-type": (lambda: record(77, b"x" * 24) + record(GET_VALUES, b"\xff" * 16), False),
    "zero-id": (lambda: record(BEGIN_REQUEST, b"\0\1\0\0\0\0\0\0", request_id=0), False),
    "bad-role": (lambda: begin(role=9) + params(GET_TIME) + record(STDIN), False),
    "params-no-begin": (lambda: params(GET_TIME) + record(STDIN), False),
    "huge-lengths": (huge_lengths, False),
    "abort": (lambda: begin() + record(ABORT_REQUEST), False),
    "truncated-header": (lambda: begin()[:5], True),
    "truncated-begin": (lambda: begin()[:11], True),
    "truncated-params": (lambda: begin() + params(GET_TIME)[:40], True),
    "no-params-end": (lambda: begin() + record(PARAMS, name_value(b"A", b"B")), True),
    "no-stdin": (lambda: begin() + params(GET_TIME), True),
    "valid": (valid_request, False),
}


def answer_status(data):
    """The Status of a responder's STDOUT, or '-' when there is none."""
    out, pos = b"", 0
    while pos + 8 <= len(data):
        _, rtype, _, clen, plen = struct.unpack(">BBHHBx", data[pos:pos + 8])
        if rtype == STDOUT:
            out += data[pos + 8:pos + 8 + clen]
        pos += 8 + clen + plen
    for line in out.split(b"\r\n"):
        if line.lower().startswith(b"status:"):
            return line.split(b":", 1)[1].strip().split(b" ")[0].decode("ascii", "replace")
    return "-"


def one_connection(path, mode, hold, results, index, delay=0.0):
    payload, _ = SHAPES[mode]
    start = time.monotonic()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
    except OSError as e:
        results[index] = f"{mode} connect-failed {e.__class__.__name__}"
        return
    data, closed = b"", 0
    try:
        if delay > 0:
            time.sleep(delay)
        s.sendall(payload())
        deadline = start + hold
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                closed = 1
                break
            data += chunk
    except socket.timeout:
        pass
    except OSError:
        closed = 1	# reset by the responder: closed too
    finally:
        s.close()
    results[index] = (f"{mode} closed={closed} after={time.monotonic() - start:.2f} "
                      f"received={len(data)} status={answer_status(data)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("socket", nargs="?")
    ap.add_argument("mode", nargs="?", choices=sorted(SHAPES))
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--serial", action="store_true",
                    help="one connection after another, not all at once")
    ap.add_argument("--idle", type=float, default=0.0,
                    help="with --serial: seconds without a connection before each")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="seconds between connecting and sending")
    ap.add_argument("--list", action="store_true", help="print the modes")
    args = ap.parse_args()
    if args.list:
        for name, (_, partial) in sorted(SHAPES.items()):
            print(name, "partial" if partial else "complete")
        return 0
    if args.socket is None or args.mode is None:
        ap.error("SOCKET and MODE are required")
    if not 1 <= args.count <= 1000:
        ap.error("--count must be 1..1000")
    if not (0 <= args.idle <= 60 and 0 <= args.delay <= 60):
        ap.error("--idle and --delay must be 0..60 seconds")
    results = [None] * args.count
    if args.serial:
        for i in range(args.count):
            time.sleep(args.idle)
            one_connection(args.socket, args.mode, args.hold, results, i, args.delay)
    else:
        threads = [threading.Thread(target=one_connection,
                                    args=(args.socket, args.mode, args.hold, results, i,
                                          args.delay))
                   for i in range(args.count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for line in results:
        print(line)
    return 2 if any("connect-failed" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
