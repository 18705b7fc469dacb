#!/usr/bin/python3
"""A throwaway local smarthost for `make demo` and bench/: aiosmtpd with
STARTTLS (or implicit TLS, or plain) and AUTH PLAIN/LOGIN, on loopback.

Each accepted message is written to --outdir as N.eml (the DATA bytes) and
N.env (MAIL FROM and RCPT TO lines). Prints "READY <port>" once listening.
Runs until SIGTERM/SIGINT.
"""
import argparse
import os
import signal
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, outdir, pipelining=False):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        if self.pipelining:    # as Postfix, Exim and the big providers do
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        if self.outdir:
            base = os.path.join(self.outdir, str(n))
            with open(base + ".eml", "wb") as f:
                f.write(envelope.original_content)
            with open(base + ".env", "w") as f:
                f.write("MAIL FROM:<%s>\n" % envelope.mail_from)
                for r in envelope.rcpt_tos:
                    f.write("RCPT TO:<%s>\n" % r)
        return "250 2.0.0 Ok: queued as %d" % n


class TLSController(Controller):
    """Implicit TLS or STARTTLS, with a fixed port known in advance."""

    def __init__(self, handler, args, ctx):
        self.args = args
        self.ctx = ctx
        kw = dict(hostname="127.0.0.1", port=args.port)
        if args.mode == "smtps":
            kw["ssl_context"] = ctx
        super().__init__(handler, **kw)

    def factory(self):
        a = self.args
        auth = None
        if a.user:
            def auth(server, session, envelope, mechanism, data):
                return AuthResult(success=(
                    data.login == a.user.encode() and
                    data.password == a.password.encode()))
        return SMTP(self.handler, decode_data=False, data_size_limit=None,
                    tls_context=self.ctx if a.mode == "starttls" else None,
                    require_starttls=a.mode == "starttls",
                    authenticator=auth, auth_required=bool(a.user),
                    auth_require_tls=a.mode != "plain")

    def _trigger_server(self):
        # aiosmtpd pokes its own port to finish start-up; with implicit
        # TLS that poke must speak TLS.
        if self.args.mode != "smtps":
            return super()._trigger_server()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((self.hostname, self.port), 5) as s:
            with ctx.wrap_socket(s) as t:
                t.recv(1024)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=("starttls", "smtps", "plain"),
                   default="starttls")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password", default="")
    p.add_argument("--outdir")
    p.add_argument("--pipelining", action="store_true",
                   help="offer PIPELINING (aiosmtpd takes pipelined "
                        "commands in order, but does not offer it)")
    a = p.parse_args()
    if a.port == 0:
        a.port = free_port()
    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    c = TLSController(Handler(a.outdir, a.pipelining), a, ctx)
    c.start()
    print("READY %d" % a.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
