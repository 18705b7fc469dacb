"""A local HTTPS OAuth2 server for the OAuth2 tests.

TokenEndpoint is a bare token endpoint with canned replies (the
refresh-flow tests of test_production.py); OAuthServer (below) is a small
authorization server with state: the device grant, the PKCE
authorization-code grant, client credentials and refresh-token rotation.

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

import base64
import dataclasses
import hashlib
import json
import secrets as pysecrets
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

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
        req = self._record(b"")
        status, headers, body = self.server.endpoint.handle_get(req)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


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

    def handle_get(self, req: TokenRequest):
        """(status, headers, body) for a GET: none here."""
        return (405, {"Content-Type": "application/json"},
                b'{"error": "invalid_request"}')

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


# ---------------------------------------------------------------------------
# A stateful authorization server
# ---------------------------------------------------------------------------

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def s256(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def oauth_error(code: str, description: str, status: int = 400):
    return status, {"error": code, "error_description": description}


@dataclasses.dataclass
class Client:
    secret: Optional[str] = None      # None: a public client
    disabled: bool = False


@dataclasses.dataclass
class DeviceCode:
    user_code: str
    scope: str
    client_id: str
    created: float
    polls: List[float] = dataclasses.field(default_factory=list)


class OAuthServer(TokenEndpoint):
    """Token (/token), device authorization (/devicecode) and authorization
    (/authorize) endpoints of one provider on https://127.0.0.1:PORT.

    Device grant: each poll of a device code is numbered from 1; polls
    listed in .slow_down_polls answer slow_down, the first .pending_polls
    polls (after those) authorization_pending, then tokens; once
    .device_lifetime seconds have passed since the code was issued, the
    answer is expired_token (the code advertises .device_expires_in and
    .interval).  .deny makes the user refuse (access_denied).

    Authorization code + PKCE: GET /authorize checks response_type=code,
    the client, a loopback http://127.0.0.1:PORT/ redirect_uri, state and
    code_challenge_method=S256, and redirects (302) to redirect_uri with
    code and state; the code is good once, for that redirect_uri and
    client, and only with a code_verifier whose S256 is the challenge.

    Tokens: each grant issues a new access token that replaces every
    earlier one in .access_tokens (the set the test smarthost accepts, so
    only the current token works); refresh tokens rotate (the old one is
    refused afterwards) unless .rotate is False.  Client credentials need
    the client's secret and a scope.  Wrong secrets answer 401
    invalid_client, a disabled client unauthorized_client.  .replies (a
    one-shot queue of (status, json)) still overrides any POST.
    """

    def __init__(self, cert_file, key_file, host: str = "127.0.0.1",
                 client_id: str = "outbox-test-client",
                 client_secret: Optional[str] = None,
                 interval: int = 1, device_expires_in: int = 600,
                 device_lifetime: float = 600.0, pending_polls: int = 0,
                 slow_down_polls=(), access_ttl: int = 3600,
                 rotate: bool = True):
        super().__init__(cert_file, key_file, host=host)
        self.client_id = client_id
        self.clients: Dict[str, Client] = {client_id: Client(client_secret)}
        self.interval = interval
        self.device_expires_in = device_expires_in
        self.device_lifetime = device_lifetime
        self.pending_polls = pending_polls
        self.slow_down_polls = set(slow_down_polls)
        self.access_ttl = access_ttl
        self.rotate = rotate
        self.deny = False
        self.access_tokens: set = set()
        self.refresh_tokens: Dict[str, str] = {}    # token -> client id
        self.devices: Dict[str, DeviceCode] = {}
        self.codes: Dict[str, dict] = {}
        self.issued: List[dict] = []                 # every token reply

    def _url(self, path: str) -> str:
        return f"https://{self.host}:{self.port}{path}"

    @property
    def token_url(self) -> str:
        return self._url("/token")

    @property
    def device_url(self) -> str:
        return self._url("/devicecode")

    @property
    def auth_url(self) -> str:
        return self._url("/authorize")

    def device_polls(self) -> List[float]:
        """The times of the token requests of the device grant."""
        return [r.time for r in self.requests
                if r.path == "/token" and r.field("grant_type") == DEVICE_GRANT]

    # -- POST ------------------------------------------------------------

    def next_reply(self, req: TokenRequest):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            if req.path == "/devicecode":
                return self._device_authorization(req)
            if req.path == "/token":
                return self._token(req)
            return 404, {"error": "invalid_request"}

    def _client(self, req: TokenRequest, need_secret: bool = False):
        """None when the client may go on, else the error reply."""
        cid = req.field("client_id")
        client = self.clients.get(cid or "")
        if client is None:
            return oauth_error("invalid_client", "AADSTS700016: Application "
                               "not found in the directory.", 401)
        if client.disabled:
            return oauth_error("unauthorized_client", f"AADSTS7000112: "
                               f"Application '{cid}' is disabled.")
        if (client.secret is not None or need_secret) and \
                req.field("client_secret") != client.secret:
            return oauth_error("invalid_client", "AADSTS7000215: Invalid "
                               "client secret provided.", 401)
        return None

    def _device_authorization(self, req: TokenRequest):
        bad = self._client(req)
        if bad:
            return bad
        code = "dc-" + pysecrets.token_urlsafe(24)
        user_code = "WDJB-MJHT"
        self.devices[code] = DeviceCode(user_code, req.field("scope") or "",
                                        req.field("client_id"), time.time())
        return 200, {
            "device_code": code, "user_code": user_code,
            "verification_uri": self._url("/device"),
            "verification_uri_complete": self._url("/device?user_code=" +
                                                   user_code),
            "expires_in": self.device_expires_in, "interval": self.interval}

    def _issue(self, grant: str, client_id: str, refresh: bool):
        access = "at-" + pysecrets.token_urlsafe(18)
        self.access_tokens.clear()
        self.access_tokens.add(access)
        reply = {"access_token": access, "token_type": "Bearer",
                 "expires_in": self.access_ttl}
        if refresh:
            rt = "rt-" + pysecrets.token_urlsafe(24)
            self.refresh_tokens[rt] = client_id
            reply["refresh_token"] = rt
        self.issued.append(dict(reply, grant=grant))
        return 200, reply

    def _token(self, req: TokenRequest):
        grant = req.field("grant_type")
        handlers = {DEVICE_GRANT: self._device_token,
                    "authorization_code": self._code_token,
                    "refresh_token": self._refresh_token,
                    "client_credentials": self._client_token}
        if grant not in handlers:
            return oauth_error("unsupported_grant_type", f"{grant!r}")
        bad = self._client(req, need_secret=(grant == "client_credentials"))
        return bad or handlers[grant](req)

    def _device_token(self, req: TokenRequest):
        dev = self.devices.get(req.field("device_code") or "")
        if dev is None or dev.client_id != req.field("client_id"):
            return oauth_error("invalid_grant", "unknown device_code")
        now = time.time()
        dev.polls.append(now)
        n = len(dev.polls)
        if now - dev.created > self.device_lifetime:
            return oauth_error("expired_token", "AADSTS70020: The provided "
                               "value for the input parameter 'device_code' "
                               "is not valid. This device code has expired.")
        if n in self.slow_down_polls:
            return oauth_error("slow_down", "polling too fast")
        pending = n - len([p for p in self.slow_down_polls if p < n])
        if pending <= self.pending_polls:
            return oauth_error("authorization_pending", "AADSTS70016: "
                               "OAuth 2.0 device flow error. Authorization "
                               "is pending.")
        if self.deny:
            return oauth_error("access_denied", "the user declined")
        del self.devices[req.field("device_code")]
        return self._issue("device", dev.client_id, refresh=True)

    def _code_token(self, req: TokenRequest):
        code = self.codes.pop(req.field("code") or "", None)
        if code is None:
            return oauth_error("invalid_grant", "unknown or used code")
        if code["client_id"] != req.field("client_id") or \
                code["redirect_uri"] != req.field("redirect_uri"):
            return oauth_error("invalid_grant", "redirect_uri or client "
                               "differs from the authorization request")
        verifier = req.field("code_verifier") or ""
        if not (43 <= len(verifier) <= 128) or \
                s256(verifier) != code["challenge"]:
            return oauth_error("invalid_grant", "PKCE verification failed")
        return self._issue("authorization_code", code["client_id"],
                           refresh=True)

    def _refresh_token(self, req: TokenRequest):
        rt = req.field("refresh_token") or ""
        cid = self.refresh_tokens.get(rt)
        if cid is None or cid != req.field("client_id"):
            return oauth_error(
                "invalid_grant", "AADSTS700082: The refresh token has "
                "expired due to inactivity.\r\nTrace ID: 0000\r\n"
                "Correlation ID: 1111")
        if self.rotate:
            del self.refresh_tokens[rt]
        return self._issue("refresh_token", cid, refresh=self.rotate)

    def _client_token(self, req: TokenRequest):
        if not req.field("scope"):
            return oauth_error("invalid_scope", "AADSTS1002012: The provided "
                               "value for scope is not valid.")
        return self._issue("client_credentials", req.field("client_id"),
                           refresh=False)

    # -- GET /authorize ----------------------------------------------------

    def handle_get(self, req: TokenRequest):
        url = urlsplit(req.path)
        if url.path != "/authorize":
            return super().handle_get(req)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        problems = []
        client = self.clients.get(q.get("client_id", ""))
        if client is None or client.disabled:
            problems.append("client_id")
        if q.get("response_type") != "code":
            problems.append("response_type")
        redirect = q.get("redirect_uri", "")
        r = urlsplit(redirect)
        if r.scheme != "http" or r.hostname != "127.0.0.1" or not r.port:
            problems.append("redirect_uri")
        if not q.get("state"):
            problems.append("state")
        if q.get("code_challenge_method") != "S256" or \
                len(q.get("code_challenge", "")) != 43:
            problems.append("code_challenge")
        if problems:
            return (400, {"Content-Type": "text/plain"},
                    ("bad authorization request: " +
                     ", ".join(problems)).encode())
        code = "code-" + pysecrets.token_urlsafe(18)
        with self.lock:
            self.codes[code] = {"client_id": q["client_id"],
                                "redirect_uri": redirect,
                                "challenge": q["code_challenge"],
                                "scope": q.get("scope", "")}
        sep = "&" if "?" in redirect else "?"
        location = redirect + sep + urlencode({"code": code,
                                               "state": q["state"]})
        return 302, {"Location": location}, b""
