#!/usr/bin/python3
"""bench/countinghost.py - tests/smarthost.py that also counts, for the
burst figure (bench/burst.sh): connections, peak concurrent connections,
STARTTLS commands and completed TLS handshakes, AUTH commands and
successful logins, messages, and the time of the first and the last
message (time.time(), the clock bash's $EPOCHREALTIME reads).
SIGUSR2 zeroes the counters (the harness does so before a phase, once
aiosmtpd's own start-up connection is closed).

Same arguments as tests/smarthost.py (which it imports and leaves
unchanged), plus --stats FILE: the counters are written there as JSON
when the server stops (SIGTERM/SIGINT) and whenever it gets SIGUSR1.
Everything is counted on the server's one event loop, so the order of
events is the server's own.
"""
import functools
import json
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import smarthost  # noqa: E402  (tests/smarthost.py)
from aiosmtpd.smtp import SMTP  # noqa: E402


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = dict(connections=0, live=0, peak_connections=0,
                      starttls=0, tls_handshakes=0, auth=0, auth_ok=0,
                      mail=0, messages=0, first_message=None,
                      last_message=None, first_connection=None,
                      last_close=None)

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n
            if key == "live" and self.c["live"] > self.c["peak_connections"]:
                self.c["peak_connections"] = self.c["live"]

    def stamp(self, key, first=False):
        now = time.time()
        with self.lock:
            if not first or self.c[key] is None:
                self.c[key] = now

    def reset(self):
        """Zero the counters (not the open connections): aiosmtpd's own
        start-up poke must not count."""
        with self.lock:
            live = self.c["live"]
            for k in self.c:
                self.c[k] = None if k in self.TIMES else 0
            self.c["live"] = self.c["peak_connections"] = live

    TIMES = ("first_message", "last_message", "first_connection", "last_close")

    def dump(self, path):
        with self.lock:
            data = dict(self.c)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)


STATS = Stats()


class CountingSMTP(SMTP):
    def connection_made(self, transport):
        # called again, on the same object, once a STARTTLS handshake is done
        again = self._original_transport is not None
        super().connection_made(transport)
        if again:
            STATS.add("tls_handshakes")
        else:
            STATS.add("connections")
            STATS.add("live")
            STATS.stamp("first_connection", first=True)

    def connection_lost(self, error):
        STATS.add("live", -1)
        STATS.stamp("last_close")
        super().connection_lost(error)


def counted(smtp, verb, key):
    """Count a command; aiosmtpd dispatches through the bound methods it
    collected in __init__, so the wrapper goes into that table
    (functools.wraps keeps the @syntax attributes EHLO and HELP read)."""
    method = smtp._smtp_methods[verb]

    @functools.wraps(method)
    async def wrapper(arg):
        STATS.add(key)
        r = await method(arg)
        if verb == "AUTH" and smtp.session.authenticated:
            STATS.add("auth_ok")
        return r
    smtp._smtp_methods[verb] = wrapper


class CountingHandler(smarthost.Handler):
    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        STATS.add("messages")
        STATS.stamp("first_message", first=True)
        STATS.stamp("last_message")
        return reply


class CountingController(smarthost.TLSController):
    def factory(self):
        s = super().factory()
        s.__class__ = CountingSMTP
        counted(s, "STARTTLS", "starttls")
        counted(s, "AUTH", "auth")
        counted(s, "MAIL", "mail")
        return s


def main():
    argv = sys.argv[1:]
    stats = None
    if "--stats" in argv:
        i = argv.index("--stats")
        stats = argv[i + 1]
        del argv[i:i + 2]
    if not stats:
        sys.exit("countinghost.py: --stats FILE is required")
    # tests/smarthost.py's main(), with the counting classes in its place
    smarthost.Handler = CountingHandler
    smarthost.TLSController = CountingController
    sys.argv = [sys.argv[0]] + argv
    signal.signal(signal.SIGUSR1, lambda *_: STATS.dump(stats))
    signal.signal(signal.SIGUSR2, lambda *_: STATS.reset())
    try:
        return smarthost.main()
    finally:
        STATS.dump(stats)


if __name__ == "__main__":
    sys.exit(main())
