#!/usr/bin/python3
"""bench/delayproxy.py - a TCP proxy on 127.0.0.1 that delays every chunk,
to count the round trips of an SMTP conversation (bench/peers).

    delayproxy.py --upstream PORT [--delay 0.010] [--connect-delay 0.010]
                  [--stats FILE]

Listens on a free port of 127.0.0.1 and prints "READY <port>". Each
accepted connection waits --connect-delay seconds, then connects to
127.0.0.1:PORT; from then on every chunk read from either side is written
to the other --delay seconds after it was read, in the order read (one
FIFO per direction), end of stream included. So every reply a client
waits for costs it 2 x delay more than without the proxy, and the
greeting (connect-delay + delay) one such round trip too.

For every connection one JSON line is appended to --stats when it ends:

    waits     the number of runs of server data written to the client
              before the client ended its stream (a run: server chunks
              with no client data between them). Each is a reply the
              client waited for (the greeting included): a client that
              sends its next command only after the reply starts a new
              run; one that sends without waiting (pipelining) does not.
    unwaited  runs of server data the proxy wrote only after the client
              had ended its stream or gone (e.g. a reply to QUIT that the
              client did not wait for)
    late      seconds by which the proxy's writes (both ways) came after
              their due time, summed (timers and scheduling: what the wall
              time through the proxy has beyond the round trips; on a
              busy machine it grows)
    client_runs, client_bytes, server_bytes, seconds

Loopback only; every wait is bounded (--max-seconds per connection).
"""
import argparse
import asyncio
import json
import signal
import socket
import sys


def nodelay(writer):
    s = writer.get_extra_info("socket")
    if s is not None:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class Conn:
    def __init__(self, args):
        self.args = args
        self.events = []        # (time, kind): "C" client data read,
        # "S" server data written to the client, "E" client end of stream
        self.cbytes = 0
        self.sbytes = 0
        self.late = 0.0         # writes after their due time, summed

    async def pump(self, reader, writer, from_client):
        loop = asyncio.get_running_loop()
        q = asyncio.Queue()
        delay = self.args.delay

        async def rd():
            while True:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    data = b""
                now = loop.time()
                if from_client:
                    self.events.append((now, "C" if data else "E"))
                    self.cbytes += len(data)
                q.put_nowait((now + delay, data))
                if not data:
                    return

        async def wr():
            while True:
                due, data = await q.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if not data:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    # the other side is gone: drop the rest
                    if from_client:
                        return
                    self.events.append((loop.time(), "E"))
                    return
                now = loop.time()
                self.late += max(0.0, now - due)
                if not from_client:
                    self.sbytes += len(data)
                    self.events.append((now, "S"))

        await asyncio.gather(rd(), wr())

    def summary(self, seconds):
        waits = unwaited = client_runs = 0
        last = None
        ended = False
        for _, kind in sorted(self.events, key=lambda e: e[0]):
            if kind == "E":
                ended = True
                last = None
                continue
            if kind != last:
                if kind == "S":
                    if ended:
                        unwaited += 1
                    else:
                        waits += 1
                else:
                    client_runs += 1
            last = kind
        return dict(waits=waits, unwaited=unwaited, late=round(self.late, 6),
                    client_runs=client_runs,
                    client_bytes=self.cbytes, server_bytes=self.sbytes,
                    seconds=round(seconds, 6))


async def handle(args, creader, cwriter):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    c = Conn(args)
    swriter = None
    nodelay(cwriter)
    try:
        await asyncio.sleep(args.connect_delay)
        sreader, swriter = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", args.upstream), 10)
        nodelay(swriter)
        up = asyncio.ensure_future(c.pump(creader, swriter, True))
        down = asyncio.ensure_future(c.pump(sreader, cwriter, False))
        try:
            # until one side has ended; then the other gets 2 s at most
            done, rest = await asyncio.wait(
                (up, down), timeout=args.max_seconds,
                return_when=asyncio.FIRST_COMPLETED)
            if rest and done:
                await asyncio.wait(rest, timeout=2)
        finally:
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
    except (asyncio.TimeoutError, ConnectionError, OSError) as e:
        print("delayproxy: connection: %r" % (e,), file=sys.stderr)
    finally:
        for w in (cwriter, swriter):
            if w is not None:
                w.close()
        if args.stats:
            with open(args.stats, "a") as f:
                f.write(json.dumps(c.summary(loop.time() - t0)) + "\n")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.010)
    p.add_argument("--connect-delay", type=float, default=0.010)
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("--stats")
    args = p.parse_args()
    server = await asyncio.start_server(
        lambda r, w: handle(args, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
