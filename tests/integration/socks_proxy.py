"""A real, logging proxy for the tests: SOCKS5 (RFC 1928, no
authentication, CONNECT) and HTTP CONNECT on one loopback port.

Every connection it accepts is recorded (kind, target host, target port),
so a test can prove that traffic went through it, or that none did. It
relays bytes both ways without looking at them. Targets other than
loopback addresses are refused: the tests never reach anything else.
"""

import ipaddress
import select
import socket
import struct
import threading
import time
from typing import List, Optional, Tuple

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def _loopback(host: str) -> Optional[str]:
    """host as an address to connect to, when it is a loopback one."""
    if host in LOOPBACK_NAMES:
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("proxy client closed early")
        data += chunk
    return data


class LoggingProxy:
    def __init__(self, host: str = "127.0.0.1", timeout: float = 30.0):
        self.host = host
        self.timeout = timeout
        self.connections: List[Tuple[str, str, int]] = []
        self.accepted = 0           # TCP connections, even malformed ones
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.hostport}"

    def _serve(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.2)
            if not ready:
                continue
            with self._lock:     # accept and count as one step (wait_idle)
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    continue
                self.accepted += 1
            t = threading.Thread(target=self._handle, args=(conn,),
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _log(self, kind: str, host: str, port: int):
        with self._lock:
            self.connections.append((kind, host, port))

    def _handle(self, conn: socket.socket):
        conn.settimeout(self.timeout)
        upstream = None
        try:
            first = _recv_exact(conn, 1)
            if first == b"\x05":
                upstream = self._socks5(conn)
            else:
                upstream = self._http_connect(conn, first)
            if upstream is not None:
                self._relay(conn, upstream)
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            for s in (conn, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def _open(self, host: str, port: int) -> Optional[socket.socket]:
        addr = _loopback(host)
        if addr is None:
            return None
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect((addr, port))
        except OSError:
            s.close()
            return None
        return s

    def _socks5(self, conn):
        nmethods = _recv_exact(conn, 1)[0]
        methods = _recv_exact(conn, nmethods)
        if 0 not in methods:
            conn.sendall(b"\x05\xff")
            return None
        conn.sendall(b"\x05\x00")
        ver, cmd, _, atyp = _recv_exact(conn, 4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(conn, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(conn, 16))
        elif atyp == 3:
            host = _recv_exact(conn, _recv_exact(conn, 1)[0]).decode()
        else:
            raise ValueError("bad SOCKS5 address type")
        (port,) = struct.unpack("!H", _recv_exact(conn, 2))
        self._log("socks5" if atyp == 3 else "socks5-ip", host, port)
        upstream = self._open(host, port) if cmd == 1 and ver == 5 else None
        if upstream is None:
            conn.sendall(b"\x05\x05\x00\x01" + b"\x00" * 6)
            return None
        conn.sendall(b"\x05\x00\x00\x01" + b"\x00" * 6)
        return upstream

    def _http_connect(self, conn, first):
        data = first
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk or len(data) > 16384:
                raise ConnectionError("no HTTP request")
            data += chunk
        request = data.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(request) != 3 or request[0] != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Only CONNECT\r\n\r\n")
            return None
        host, _, port = request[1].rpartition(":")
        host = host.strip("[]")
        self._log("http", host, int(port))
        upstream = self._open(host, int(port))
        if upstream is None:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return None
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = data.split(b"\r\n\r\n", 1)[1]
        if rest:
            upstream.sendall(rest)
        return upstream

    def _relay(self, a, b):
        peers = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peers), [], [], self.timeout)
            if not ready:
                return
            for s in ready:
                chunk = s.recv(65536)
                if not chunk:
                    return
                peers[s].sendall(chunk)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait (bounded) until no connection waits to be accepted and
        every accepted one has been carried to its end, so that accepted
        and connections are final: a client that has exited cannot be
        counted later.  False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending, _, _ = select.select([self._sock], [], [], 0)
                busy = [t for t in self._threads if t.is_alive()]
            if not pending and not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        for t in self._threads:
            t.join(5)
        self._sock.close()
