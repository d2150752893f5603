#!/usr/bin/env python3
"""tally - raw_http: sends a request as the bytes given (HTTP/1.0, so the
server closes the connection) and prints the whole answer, headers and
body, as latin-1 text.

    raw_http.py PORT REQUEST_TEXT

exchange() does the same for other tools (xff_check.py).
"""

import socket
import sys


def exchange(host, port, request):
    """Sends the request bytes, returns every byte of the answer."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def main():
    port, text = int(sys.argv[1]), sys.argv[2]
    answer = exchange("127.0.0.1", port, text.encode("latin-1"))
    sys.stdout.write(answer.decode("latin-1"))


if __name__ == "__main__":
    main()
