#!/usr/bin/python3
"""Write the benchmark messages into DIR: msg2k.eml (exactly 2048 bytes)
and msg100m.eml (exactly 100 MiB). Both are complete messages with the
headers neither tool needs to add (From, To, Subject, Date, Message-ID),
LF line ends, lines well under 998 octets."""
import os
import sys

HDR = ("From: Bench <bench@example.com>\n"
       "To: rcpt@example.com\n"
       "Subject: outbox benchmark message\n"
       "Date: Mon, 23 Nov 2026 05:00:00 +0000\n"
       "Message-ID: <%s@bench.example.com>\n"
       "MIME-Version: 1.0\n"
       "Content-Type: text/plain; charset=us-ascii\n"
       "\n")
LINE = b"The quick brown fox jumps over the lazy dog. 0123456789 ABCDEFGHIJKLMNOP\n"


def write(path, size, msgid):
    hdr = (HDR % msgid).encode()
    with open(path, "wb") as f:
        f.write(hdr)
        n = len(hdr)
        block = LINE * 8192
        while n + len(block) <= size:
            f.write(block)
            n += len(block)
        while n + len(LINE) <= size:
            f.write(LINE)
            n += len(LINE)
        if size - n > 0:
            f.write(b"x" * (size - n - 1) + b"\n")
    assert os.path.getsize(path) == size


def main():
    d = sys.argv[1]
    write(os.path.join(d, "msg2k.eml"), 2048, "bench.2k")
    write(os.path.join(d, "msg100m.eml"), 100 * 1024 * 1024, "bench.100m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
