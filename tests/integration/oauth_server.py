"""A local HTTPS OAuth2 token endpoint for the refresh-flow tests.

TokenEndpoint serves POST requests on https://127.0.0.1:PORT/token (any path
is accepted and recorded) from a thread, with a certificate from the
tls_certs fixture.  Every request is recorded (method, path, headers, the
raw body and the parsed form); the reply is configurable:

  ep.reply = {"access_token": "...", "expires_in": 3600}   JSON, status 200
  ep.status = 500                                          fail (JSON error)
  ep.replies = [(200, {...}), (500, {...})]                one-shot queue,
                                                           used before .reply
  ep.stop()                                                down (refused)

TLS handshakes that fail (e.g. a client that does not trust the
certificate) are counted in .tls_errors, never printed.  Everything is
bounded: each connection has a 10 s socket timeout and stop() joins the
thread with a timeout.
"""

import dataclasses
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs

CONNECTION_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@dataclasses.dataclass
class TokenRequest:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    form: Dict[str, List[str]]
    time: float

    def field(self, name: str) -> Optional[str]:
        """The single value of a form field (None when absent)."""
        vals = self.form.get(name)
        return vals[0] if vals else None


class _Handler(BaseHTTPRequestHandler):
    server_version = "outbox-test-oauth/1"

    def log_message(self, fmt, *args):  # quiet: tests read .requests
        pass

    def _record(self, body: bytes) -> TokenRequest:
        ctype = self.headers.get("Content-Type", "")
        form = {}
        if "json" not in ctype:
            form = parse_qs(body.decode("utf-8", "replace"),
                            keep_blank_values=True)
        req = TokenRequest(self.command, self.path,
                           {k: v for k, v in self.headers.items()}, body,
                           form, time.time())
        ep = self.server.endpoint
        with ep.lock:
            ep.requests.append(req)
        return req

    def _send_json(self, status: int, obj) -> None:
        if isinstance(obj, bytes):
            data = obj
        elif isinstance(obj, str):
            data = obj.encode()
        else:
            data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        req = self._record(body)
        status, obj = self.server.endpoint.next_reply(req)
        self._send_json(status, obj)

    def do_GET(self):
        self._record(b"")
        self._send_json(405, {"error": "invalid_request"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        request.settimeout(CONNECTION_TIMEOUT)
        try:
            tls = self.endpoint.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.endpoint.lock:
                self.endpoint.tls_errors.append(repr(e))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # quiet


class TokenEndpoint:
    def __init__(self, cert_file, key_file, host: str = "127.0.0.1",
                 reply: Optional[dict] = None, status: int = 200):
        self.host = host
        self.reply = dict(reply) if reply is not None else {
            "access_token": "test-access-token", "expires_in": 3600,
            "token_type": "Bearer"}
        self.status = status
        self.replies: List[Tuple[int, object]] = []
        self.requests: List[TokenRequest] = []
        self.tls_errors: List[str] = []
        self.lock = threading.Lock()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(str(cert_file), str(key_file))
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/token"

    def next_reply(self, req: TokenRequest):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        if self.status != 200:
            return self.status, {"error": "server_error",
                                 "error_description": "test failure"}
        return 200, self.reply

    def start(self) -> "TokenEndpoint":
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        _Server.address_family = fam
        self._httpd = _Server((self.host, 0), _Handler)
        self._httpd.endpoint = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="oauth-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        self._httpd = None
        self._thread = None

    def __repr__(self):
        return f"<TokenEndpoint {self.url} requests={len(self.requests)}>"
