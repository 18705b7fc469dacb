"""Integration-test fixtures for outbox: a real SMTP smarthost on loopback.

Fixtures
--------
tls_certs          session: test CA + "localhost" server cert, a second
                   unrelated ("untrusted") CA + cert, and a cert for the wrong
                   host name signed by the good CA.  Generated at test time.
smarthost          factory: smarthost(mode=..., auth=..., ...) -> Smarthost,
                   a running aiosmtpd server on a free loopback port; every
                   server is stopped at test end.  mechanisms may include
                   XOAUTH2 / OAUTHBEARER (tokens={user: token(s)}).
token_endpoint     factory: token_endpoint(...) -> oauth_server.TokenEndpoint,
                   a local HTTPS OAuth2 token endpoint (stopped at test end).
silent_server      a TCP listener that accepts and never says anything.
closed_port        a loopback port with nothing listening (connection refused).
outbox             helper (Outbox): .bin, .write_config(), .run().
write_config       the function Outbox.write_config.
run_outbox         the function Outbox.run.

Everything listens on loopback only and every wait is bounded.
"""

import asyncio
import base64
import binascii
import dataclasses
import datetime
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import logging

import pytest
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from oauth_server import TokenEndpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_USERS = {"user": "secret"}
# AUTH mechanisms the test smarthost can offer; the OAuth2 ones check a bearer
# token against Smarthost.tokens instead of a password.
KNOWN_MECHANISMS = ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER")
OAUTH_FAILURE_JSON = json.dumps({"status": "401", "schemes": "bearer",
                                 "scope": "https://mail.example.com/"})
DEFAULT_RCPT_REPLIES = {
    "bad@example.com": "550 5.1.1 no such user",
    "later@example.com": "451 4.3.0 try later",
}
# Large enough for the 100 MB streaming test (plus headers and CRLF growth).
DEFAULT_DATA_SIZE_LIMIT = 256 * 1024 * 1024
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class _DropLoginDataDeprecation(logging.Filter):
    """aiosmtpd 1.4 itself sets the deprecated Session.login_data on every
    successful AUTH and logs a warning about it; that is noise here."""

    def filter(self, record):
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataDeprecation())


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class TLSCerts:
    dir: Path
    ca_file: Path                 # the good test CA (PEM)
    cert_file: Path               # localhost cert signed by ca_file
    key_file: Path
    untrusted_ca_file: Path       # an unrelated CA
    untrusted_cert_file: Path     # localhost cert signed by untrusted_ca_file
    untrusted_key_file: Path
    wronghost_cert_file: Path     # cert for other.invalid signed by ca_file
    wronghost_key_file: Path


def _gen_certs_cryptography(d: Path) -> TLSCerts:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    def write_key(key, path):
        path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        os.chmod(path, 0o600)

    def write_cert(cert, path):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def make_ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    def make_leaf(ca_key, ca_cert, cn, dns_names, ips):
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=True, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                    key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        return key, cert

    p = {n: d / n for n in (
        "ca.pem", "server.pem", "server.key",
        "untrusted-ca.pem", "untrusted-server.pem", "untrusted-server.key",
        "wronghost.pem", "wronghost.key")}

    ca_key, ca_cert = make_ca("outbox test CA")
    write_cert(ca_cert, p["ca.pem"])
    k, c = make_leaf(ca_key, ca_cert, "localhost", ["localhost"],
                     ["127.0.0.1", "::1"])
    write_cert(c, p["server.pem"])
    write_key(k, p["server.key"])
    k, c = make_leaf(ca_key, ca_cert, "other.invalid", ["other.invalid"], [])
    write_cert(c, p["wronghost.pem"])
    write_key(k, p["wronghost.key"])

    u_key, u_cert = make_ca("outbox UNTRUSTED test CA")
    write_cert(u_cert, p["untrusted-ca.pem"])
    k, c = make_leaf(u_key, u_cert, "localhost", ["localhost"],
                     ["127.0.0.1", "::1"])
    write_cert(c, p["untrusted-server.pem"])
    write_key(k, p["untrusted-server.key"])

    return TLSCerts(
        dir=d, ca_file=p["ca.pem"], cert_file=p["server.pem"],
        key_file=p["server.key"], untrusted_ca_file=p["untrusted-ca.pem"],
        untrusted_cert_file=p["untrusted-server.pem"],
        untrusted_key_file=p["untrusted-server.key"],
        wronghost_cert_file=p["wronghost.pem"],
        wronghost_key_file=p["wronghost.key"])


def _gen_certs_openssl(d: Path) -> TLSCerts:
    """Fallback when python3-cryptography is unavailable: the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, timeout=60,
                       capture_output=True)

    def make_ca(prefix, cn):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
            "-subj", f"/CN={cn}", "-keyout", str(d / f"{prefix}.key"),
            "-out", str(d / f"{prefix}.pem"),
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def make_leaf(prefix, ca, cn, san):
        ext = d / f"{prefix}.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyAgreement\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={san}\n")
        run("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", str(d / f"{prefix}.key"), "-out", str(d / f"{prefix}.csr"))
        run("x509", "-req", "-in", str(d / f"{prefix}.csr"), "-CA",
            str(d / f"{ca}.pem"), "-CAkey", str(d / f"{ca}.key"),
            "-CAcreateserial", "-days", "30", "-extfile", str(ext),
            "-out", str(d / f"{prefix}.pem"))

    local_san = "DNS:localhost,IP:127.0.0.1,IP:::1"
    make_ca("ca", "outbox test CA")
    make_ca("untrusted-ca", "outbox UNTRUSTED test CA")
    make_leaf("server", "ca", "localhost", local_san)
    make_leaf("untrusted-server", "untrusted-ca", "localhost", local_san)
    make_leaf("wronghost", "ca", "other.invalid", "DNS:other.invalid")
    return TLSCerts(
        dir=d, ca_file=d / "ca.pem", cert_file=d / "server.pem",
        key_file=d / "server.key", untrusted_ca_file=d / "untrusted-ca.pem",
        untrusted_cert_file=d / "untrusted-server.pem",
        untrusted_key_file=d / "untrusted-server.key",
        wronghost_cert_file=d / "wronghost.pem",
        wronghost_key_file=d / "wronghost.key")


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory) -> TLSCerts:
    d = tmp_path_factory.mktemp("certs")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return _gen_certs_openssl(d)
    return _gen_certs_cryptography(d)


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------

def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind port 0 and read it back)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def hostport(host: str, port: int) -> str:
    """'127.0.0.1:25' or '[::1]:25' -- the form outbox names a server by."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------
# The smarthost
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Message:
    """One message the smarthost accepted (250 after the final dot)."""
    mail_from: str
    rcpt_tos: List[str]
    data: bytes            # raw DATA bytes after dot-unstuffing, CRLF as sent
    auth_user: Optional[str]
    tls: bool
    helo: Optional[str] = None
    mail_options: List[str] = dataclasses.field(default_factory=list)
    connection: int = 0    # 1-based number of the connection it came on
    reply: str = "250 OK"  # what the server answered (None: dropped)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclasses.dataclass
class Command:
    """One SMTP command line the server received (AUTH arguments included)."""
    connection: int
    verb: str
    arg: Optional[str]
    tls: bool


@dataclasses.dataclass
class OAuthAttempt:
    """One AUTH XOAUTH2 / OAUTHBEARER exchange the smarthost saw."""
    connection: int
    mechanism: str
    user: Optional[str]
    token: Optional[str]
    ok: bool
    raw: bytes            # the decoded client response
    b64: str              # the client response as sent (base64)


def parse_oauth_response(mechanism: str, blob: bytes):
    """(user, token) from an XOAUTH2 or OAUTHBEARER client response, None
    for what is missing or malformed.

    XOAUTH2:     user=U ^A auth=Bearer T ^A ^A
    OAUTHBEARER: n,a=U, ^A host=H ^A port=P ^A auth=Bearer T ^A ^A (RFC 7628)
    """
    text = blob.decode("utf-8", "surrogateescape")
    if not text.endswith("\x01\x01"):
        return None, None
    user = auth = None
    if mechanism == "XOAUTH2":
        pairs = text[:-2].split("\x01")
        for p in pairs:
            if p.startswith("user="):
                user = p[5:]
    else:
        gs2, sep, rest = text.partition("\x01")
        if not sep:
            return None, None
        for part in gs2.split(","):
            if part.startswith("a="):
                user = part[2:]
        pairs = rest[:-2].split("\x01")
    for p in pairs:
        if p.startswith("auth="):
            auth = p[5:]
    token = auth[7:] if auth and auth[:7].lower() == "bearer " else None
    return user, token


def _is_tls(server: SMTP) -> bool:
    transport = server.transport
    return bool(transport is not None
                and transport.get_extra_info("ssl_object") is not None)


class _Handler:
    def __init__(self, sh: "Smarthost"):
        self.sh = sh

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.sh.advertise_auth:
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        if self.sh.ehlo_drop:
            responses = [r for r in responses
                         if r[4:].split(" ")[0].upper() not in
                         self.sh.ehlo_drop]
            responses[-1] = "250 " + responses[-1][4:]
        if self.sh.ehlo_extra:
            last = responses.pop()
            responses += ["250-" + e for e in self.sh.ehlo_extra]
            responses.append(last)
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.sh.mail_reply:
            return self.sh.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = self.sh.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "surrogateescape")
        msg = Message(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content),
            auth_user=login if session.authenticated else None,
            tls=_is_tls(server),
            helo=session.host_name,
            mail_options=list(envelope.mail_options),
            connection=getattr(server, "connection_number", 0),
            reply=self.sh.data_reply or "250 OK",
        )
        if self.sh.drop_after_data:
            msg.reply = None
            self.sh.rejected.append(msg)
            # Close without replying: abort the raw socket (no TLS
            # close_notify either), then unwind aiosmtpd's client task.
            raw = getattr(server, "_original_transport", None) or server.transport
            raw.abort()
            raise asyncio.CancelledError()
        if msg.reply.startswith("2"):
            self.sh.messages.append(msg)
        else:
            self.sh.rejected.append(msg)
        return msg.reply

    # Custom AUTH mechanisms (aiosmtpd registers handler methods named
    # auth_<MECH>; they are excluded unless listed in Smarthost.mechanisms).
    async def auth_XOAUTH2(self, server, args):
        return await self.sh._oauth(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server, args):
        return await self.sh._oauth(server, args, "OAUTHBEARER")


def _tracking_connection_lost(sh: "Smarthost"):
    def connection_lost(self, error):
        sh._live.discard(getattr(self, "connection_number", None))
        return SMTP.connection_lost(self, error)
    return connection_lost


class Smarthost:
    """A real aiosmtpd server on loopback, run in its own thread and loop.

    Attributes read by tests: host, port, hostport ('127.0.0.1:PORT'),
    ca_file, mode, users, messages (accepted), rejected (DATA refused or
    dropped), commands (every command line received), connections.
    """

    def __init__(self, certs: TLSCerts, *, mode="starttls", auth=True,
                 users: Optional[Dict[str, str]] = None,
                 mechanisms: Iterable[str] = ("PLAIN", "LOGIN"),
                 offer_starttls=True, untrusted_cert=False,
                 wrong_host_cert=False,
                 rcpt_replies: Optional[Dict[str, str]] = None,
                 data_reply: Optional[str] = None,
                 mail_reply: Optional[str] = None,
                 drop_after_data=False, host="127.0.0.1",
                 data_size_limit: Optional[int] = DEFAULT_DATA_SIZE_LIMIT,
                 line_length_limit: Optional[int] = None,
                 ehlo_extra: Iterable[str] = (), idle_timeout=30.0,
                 ehlo_drop: Iterable[str] = (),
                 port: int = 0, tokens: Optional[Dict[str, object]] = None):
        if mode not in ("starttls", "smtps", "plain"):
            raise ValueError(f"unknown smarthost mode {mode!r}")
        mechanisms = tuple(m.upper() for m in mechanisms)
        unknown = set(mechanisms) - set(KNOWN_MECHANISMS)
        if unknown:
            raise ValueError(f"unsupported AUTH mechanisms {sorted(unknown)}")
        self.mode = mode
        self.auth = auth
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.mechanisms = mechanisms
        self.offer_starttls = offer_starttls
        self.rcpt_replies = {k.lower(): v for k, v in (
            DEFAULT_RCPT_REPLIES if rcpt_replies is None else rcpt_replies
        ).items()}
        self.data_reply = data_reply
        self.mail_reply = mail_reply
        self.drop_after_data = drop_after_data
        self.host = host
        self.data_size_limit = data_size_limit
        self.ehlo_extra = list(ehlo_extra)
        self.ehlo_drop = [k.upper() for k in ehlo_drop]
        self.idle_timeout = idle_timeout
        self.advertise_auth = auth and bool(mechanisms)
        # {user: token or collection of tokens} accepted by XOAUTH2 and
        # OAUTHBEARER; tests may change it between runs.
        self.tokens: Dict[str, object] = dict(tokens or {})
        self.oauth_attempts: List[OAuthAttempt] = []

        if untrusted_cert:
            self.cert_file = certs.untrusted_cert_file
            self.key_file = certs.untrusted_key_file
            self.ca_file = certs.untrusted_ca_file
        elif wrong_host_cert:
            self.cert_file = certs.wronghost_cert_file
            self.key_file = certs.wronghost_key_file
            self.ca_file = certs.ca_file
        else:
            self.cert_file = certs.cert_file
            self.key_file = certs.key_file
            self.ca_file = certs.ca_file

        self.messages: List[Message] = []
        self.rejected: List[Message] = []
        self.commands: List[Command] = []
        self.connections = 0
        self._live = set()  # connection numbers not yet closed

        attrs = {"connection_lost": _tracking_connection_lost(self)}
        if line_length_limit is not None:
            attrs["line_length_limit"] = line_length_limit
        self._smtp_class = type("TestSMTP", (SMTP,), attrs)
        self._handler = _Handler(self)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._bind_port = int(port)  # 0: any free port
        self.port = 0

    # -- derived ------------------------------------------------------------
    @property
    def hostport(self) -> str:
        return hostport(self.host, self.port)

    @property
    def url(self) -> str:
        scheme = "smtps" if self.mode == "smtps" else "smtp"
        return f"{scheme}://{self.hostport}"

    @property
    def tls(self) -> str:
        """The value outbox's `tls` config key should have for this server."""
        return {"starttls": "starttls", "smtps": "smtps", "plain": "off"}[self.mode]

    def verbs(self) -> List[str]:
        return [c.verb for c in self.commands]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until every accepted connection has been closed,
        so that commands/messages are complete.  False on timeout."""
        deadline = time.monotonic() + timeout
        while self._live:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- lifecycle ----------------------------------------------------------
    def _server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword)
                and mechanism in self.mechanisms):
            login = auth_data.login.decode("utf-8", "surrogateescape")
            password = auth_data.password.decode("utf-8", "surrogateescape")
            if login in self.users and self.users[login] == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def _token_ok(self, user: Optional[str], token: Optional[str]) -> bool:
        if user is None or token is None or user not in self.tokens:
            return False
        good = self.tokens[user]
        return token == good if isinstance(good, str) else token in good

    async def _oauth(self, server: SMTP, args, mechanism: str) -> AuthResult:
        """XOAUTH2 / OAUTHBEARER: the initial response (or one requested
        with an empty 334), checked against self.tokens.  A refusal is a
        334 carrying a base64 JSON error; after the client's (empty or
        ^A) reply, 535."""
        if len(args) == 2:
            b64 = args[1]
            try:
                blob = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
            b64 = base64.b64encode(blob).decode()
        user, token = parse_oauth_response(mechanism, blob)
        ok = self._token_ok(user, token)
        self.oauth_attempts.append(OAuthAttempt(
            getattr(server, "connection_number", 0), mechanism, user, token,
            ok, blob, b64))
        if ok:
            return AuthResult(success=True, auth_data=LoginPassword(
                user.encode("utf-8", "surrogateescape"),
                token.encode("utf-8", "surrogateescape")))
        reply = await server.challenge_auth(OAUTH_FAILURE_JSON)
        if reply is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not "
                                  "accepted")

    def _factory(self) -> SMTP:
        self.connections += 1
        starttls_ctx = None
        if self.mode == "starttls" and self.offer_starttls:
            starttls_ctx = self._server_context()
        exclude = [m for m in KNOWN_MECHANISMS if m not in self.mechanisms]
        smtp = self._smtp_class(
            self._handler,
            data_size_limit=self.data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="smarthost.test",
            ident="outbox-test-smarthost",
            tls_context=starttls_ctx,
            require_starttls=False,
            timeout=self.idle_timeout,
            auth_required=self.auth,
            auth_require_tls=True,
            auth_exclude_mechanism=exclude,
            authenticator=self._authenticate,
            loop=self._loop,
        )
        smtp.connection_number = self.connections
        self._live.add(self.connections)
        if self.mode == "smtps":
            # Implicit TLS: the whole session is encrypted, but aiosmtpd only
            # knows about STARTTLS, so tell it the TLS requirement is met.
            smtp._auth_require_tls = False
        self._wrap_commands(smtp)
        return smtp

    def _wrap_commands(self, smtp: SMTP) -> None:
        """Record every command the server dispatches, with its TLS state."""
        def wrap(verb, method):
            async def logged(arg):
                self.commands.append(Command(smtp.connection_number, verb,
                                             arg, _is_tls(smtp)))
                return await method(arg)
            return logged
        smtp._smtp_methods = {v: wrap(v, m) for v, m in smtp._smtp_methods.items()}

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            ssl_ctx = self._server_context() if self.mode == "smtps" else None
            self._server = loop.run_until_complete(loop.create_server(
                self._factory, host=self.host, port=self._bind_port,
                family=_family(self.host), ssl=ssl_ctx, reuse_address=True))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:  # reported by start()
            self._error = e
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=STOP_TIMEOUT))
            loop.run_until_complete(
                asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT))
            loop.close()

    def start(self) -> "Smarthost":
        """Bind a free port (port 0: no race, no self-connect), or the
        port= given to the constructor, and serve."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name=f"smarthost-{self.mode}",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise TimeoutError("smarthost did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:  # loop closed meanwhile
                pass
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            raise TimeoutError("smarthost thread did not stop in time")
        self._thread = None

    def __repr__(self):
        return (f"<Smarthost {self.mode} {self.hostport} auth={self.auth} "
                f"messages={len(self.messages)} connections={self.connections}>")


@pytest.fixture
def smarthost(tls_certs):
    """Factory: smarthost(mode='starttls', auth=True, ...) -> running Smarthost.

    Parameters (all keyword):
      mode             'starttls' | 'smtps' (implicit TLS) | 'plain'
      auth             require AUTH before MAIL (530 otherwise); AUTH is only
                       offered/accepted under TLS
      users            {login: password}, default {'user': 'secret'}
      mechanisms       AUTH mechanisms offered, subset of ('PLAIN', 'LOGIN',
                       'XOAUTH2', 'OAUTHBEARER')
      tokens           {login: token or collection of tokens} that XOAUTH2 and
                       OAUTHBEARER accept; attempts land in .oauth_attempts
      offer_starttls   (starttls mode) advertise STARTTLS at all
      untrusted_cert   serve a localhost cert from an unrelated CA
      wrong_host_cert  serve a cert for other.invalid from the good CA
      rcpt_replies     {address: reply}; default bad@example.com -> 550,
                       later@example.com -> 451
      data_reply       reply after the final dot, e.g. '451 4.3.0 busy'
      mail_reply       reply to MAIL FROM, e.g. '550 5.7.1 sender refused'
      drop_after_data  close the connection after the final dot, no reply
      host             '127.0.0.1' (default) or '::1'
      data_size_limit  bytes (advertised as SIZE), None = unlimited
      line_length_limit  override aiosmtpd's 1001-octet line limit
      ehlo_extra       extra EHLO keywords to advertise
      ehlo_drop        EHLO keywords not to advertise (e.g. '8BITMIME',
                       'SMTPUTF8': aiosmtpd offers both by default)
      port             listen on this port instead of a free one (e.g. the
                       port of a ClosedPort after its .close(), to bring a
                       smarthost "back up" where outbox was refused)
    """
    servers: List[Smarthost] = []

    def make(**kwargs) -> Smarthost:
        sh = Smarthost(tls_certs, **kwargs)
        servers.append(sh)
        return sh.start()

    yield make
    for sh in servers:
        sh.stop()


@pytest.fixture
def token_endpoint(tls_certs):
    """Factory: token_endpoint(untrusted_cert=False, reply=None, status=200)
    -> a running oauth_server.TokenEndpoint on https://127.0.0.1:PORT/token
    with the test CA's localhost certificate (or the untrusted one).
    Every endpoint is stopped at test end."""
    endpoints: List[TokenEndpoint] = []

    def make(untrusted_cert=False, **kwargs) -> TokenEndpoint:
        cert, key = ((tls_certs.untrusted_cert_file, tls_certs.untrusted_key_file)
                     if untrusted_cert else
                     (tls_certs.cert_file, tls_certs.key_file))
        ep = TokenEndpoint(cert, key, **kwargs)
        endpoints.append(ep)
        return ep.start()

    yield make
    for ep in endpoints:
        ep.stop()


# ---------------------------------------------------------------------------
# Silent server and closed port
# ---------------------------------------------------------------------------

class SilentServer:
    """Accepts TCP connections and never sends a byte."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self._sock = socket.socket(_family(host), socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="silent-server")
        self._thread.start()

    @property
    def hostport(self) -> str:
        return hostport(self.host, self.port)

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                pass
            except OSError:
                return
            else:
                conn.setblocking(False)
                self._conns.append(conn)
                self.connections += 1
            for c in self._conns:  # drain without ever answering
                try:
                    self.received += c.recv(65536)
                except (BlockingIOError, OSError):
                    pass

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self._sock.close()


@pytest.fixture
def silent_server():
    srv = SilentServer()
    yield srv
    srv.stop()


class ClosedPort:
    """A loopback port that refuses connections.

    The port stays bound (but not listening) for the test's lifetime, so no
    other process can grab it and connecting gets ECONNREFUSED.
    """

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self._sock = socket.socket(_family(host), socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]

    @property
    def hostport(self) -> str:
        return hostport(self.host, self.port)

    def close(self):
        self._sock.close()


@pytest.fixture
def closed_port():
    cp = ClosedPort()
    yield cp
    cp.close()


# ---------------------------------------------------------------------------
# Running outbox
# ---------------------------------------------------------------------------

def _quote(value: str) -> str:
    if value == "" or any(ch in value for ch in ' \t#"'):
        if '"' in value or "\\" in value:
            raise ValueError(f"cannot quote config value {value!r}")
        return f'"{value}"'
    return value


class Outbox:
    """Writes outbox config files and runs the binary with bounded time."""

    def __init__(self, binary: Path):
        self.bin = Path(binary)

    @staticmethod
    def config_lines(smarthost, **overrides) -> List[str]:
        """The config as a list of lines (no newline), without writing it.

        smarthost: a Smarthost, SilentServer or ClosedPort (anything with
        .host/.port), a 'host:port' string, or None (no smarthost line).
        overrides: config keys (underscores become dashes: ca_file ->
        ca-file); a value of None drops that line.  Special keywords:
        extra_lines=[...] appends raw lines, prepend_lines=[...] puts raw
        lines first.
        """
        extra = list(overrides.pop("extra_lines", ()))
        prepend = list(overrides.pop("prepend_lines", ()))
        cfg: Dict[str, Optional[str]] = {}
        if isinstance(smarthost, Smarthost):
            cfg["smarthost"] = (smarthost.url if smarthost.mode == "smtps"
                                else smarthost.hostport)
            cfg["tls"] = smarthost.tls
            if smarthost.auth and smarthost.users:
                user, password = next(iter(smarthost.users.items()))
                cfg["user"] = user
                cfg["password"] = password
            if smarthost.mode != "plain":
                cfg["ca-file"] = str(smarthost.ca_file)
        elif smarthost is None:
            cfg["smarthost"] = None
        elif isinstance(smarthost, str):
            cfg["smarthost"] = smarthost
        else:  # silent server, closed port
            cfg["smarthost"] = hostport(smarthost.host, smarthost.port)
            cfg["tls"] = "starttls"
        cfg.setdefault("tls", "starttls")
        cfg.update({
            "helo": "client.example.com",
            "from": "sender@example.com",
            "domain": "example.com",
            "timeout": "5s",
            "log": "stderr",
            "queue": "off",
        })
        for key, value in overrides.items():
            cfg[key.replace("_", "-")] = None if value is None else str(value)
        lines = ["# outbox integration-test config"] + prepend
        lines += [f"{k} {_quote(v)}" for k, v in cfg.items() if v is not None]
        return lines + extra

    def write_config(self, tmp_path: Path, smarthost, *, mode=0o600,
                     name="outbox.conf", **overrides) -> Path:
        """Write a config file (mode 0600 unless mode= says otherwise)."""
        path = Path(tmp_path) / name
        text = "\n".join(self.config_lines(smarthost, **overrides)) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def command(self, args, config=None) -> List[str]:
        cmd = [str(self.bin)]
        if config is not None:
            cmd += ["-C", str(config)]
        return cmd + [str(a) for a in args]

    @staticmethod
    def environment(env=None) -> Dict[str, str]:
        """os.environ (sanitizer options included) + C locale, UTC + env."""
        e = dict(os.environ)
        e.update({"LC_ALL": "C", "TZ": "UTC"})
        if env:
            e.update(env)
        return e

    def run(self, args=(), input_bytes=b"", config=None, timeout=60,
            env=None) -> subprocess.CompletedProcess:
        """Run outbox [-C config] args with input on stdin.

        input_bytes: bytes, or an open binary file (passed as stdin directly,
        never read into memory).  env: variables added to the environment.
        Returns CompletedProcess with bytes stdout/stderr; fails the test if
        outbox does not exit within timeout seconds.
        """
        cmd = self.command(args, config)
        kwargs = dict(capture_output=True, timeout=timeout,
                      env=self.environment(env))
        if hasattr(input_bytes, "fileno"):
            kwargs["stdin"] = input_bytes
        else:
            kwargs["input"] = bytes(input_bytes)
        try:
            return subprocess.run(cmd, **kwargs)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"outbox did not exit within {timeout}s: {cmd}\n"
                        f"stderr: {e.stderr!r}")

    run_outbox = run


@pytest.fixture(scope="session")
def outbox_bin() -> Path:
    env_bin = os.environ.get("OUTBOX_BIN")
    path = Path(env_bin) if env_bin else REPO_ROOT / "outbox"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"outbox binary not found or not executable at {path} "
            "(build it with `make` in the repository root, or set OUTBOX_BIN)",
            pytrace=False)
    return path


@pytest.fixture
def outbox(outbox_bin) -> Outbox:
    return Outbox(outbox_bin)


@pytest.fixture
def write_config(outbox):
    return outbox.write_config


@pytest.fixture
def run_outbox(outbox):
    return outbox.run


# ---------------------------------------------------------------------------
# Helpers for assertions on received messages
# ---------------------------------------------------------------------------

def split_message(data: bytes):
    """(header block, body) split at the first empty line (CRLF CRLF)."""
    if data.startswith(b"\r\n"):
        return b"", data[2:]
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return data, b""
    return head + b"\r\n", body


def parse_headers(data: bytes):
    """[(name, unfolded value)] of the header block, in order."""
    head, _ = split_message(data)
    fields = []
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + line.strip())
        else:
            name, _, value = line.partition(b":")
            fields.append((name.decode("ascii", "replace"), value.strip()))
    return fields


def header_values(data: bytes, name: str) -> List[bytes]:
    return [v for n, v in parse_headers(data) if n.lower() == name.lower()]


# Sanitizer runtime options (make integration SANITIZE=1 sets them): where
# every report goes (log_path=build/sanitize/reports/...), so the stage
# sees reports of runs whose stderr nobody reads (-odb's detached queue
# run, clients that swallow their sendmail's stderr).
SANITIZER_ENV_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def sanitizer_env(env=None) -> Dict[str, str]:
    """The sanitizer variables of this run's environment, plus env.

    A test that gives a subprocess an environment of its own instead of
    Outbox.environment() (which copies os.environ) must add these, or a
    sanitizer build's outbox reports to a stderr that may be lost:
    subprocess.run(..., env=sanitizer_env({"PATH": ..., "LC_ALL": "C"})).
    """
    e = {k: os.environ[k] for k in SANITIZER_ENV_VARS if k in os.environ}
    if env:
        e.update(env)
    return e


def pytest_configure(config):
    # OUTBOX_SKIP_ALLOWLIST=FILE (make integration sets it as root): fail
    # on a skip FILE does not allow, or when no test ran (skipcheck.py)
    if os.environ.get("OUTBOX_SKIP_ALLOWLIST"):
        import skipcheck
        skipcheck.register(config)
    config.addinivalue_line(
        "markers", "slow: long-running test (e.g. the 100 MB stream); runs "
        "by default, deselect with -m 'not slow' for a quick loop")
