"""OAuth2 that a server can set up and run unattended (issue 14).

Contract under test (src/creds_login.c, src/creds_loopback.c,
src/creds_oauth.c, src/creds_http.c, src/creds_preset.c):

  outbox --oauth-login [--device | --browser [--port N]] [--login-timeout D]
      signs in once and stores the refresh token in
      oauth-refresh-token-file (replaced atomically, mode 0600, never
      printed); exit 0, or 75 (code expired, wait timed out), 76 (wrong
      state), 77 (sign-in denied), 78 (client, scope or consent refused).
  Device grant (RFC 8628): prints verification_uri, user_code and
      verification_uri_complete; polls the token endpoint every `interval`
      s, +5 s after slow_down, until expires_in.
  Browser grant (RFC 7636 S256 + RFC 8252 loopback): listens on
      127.0.0.1, prints the authorization URL, takes one GET of "/"
      whose state must match, exchanges the code with the code_verifier.
  oauth-grant client-credentials: client id + secret + scope, no refresh
      token; the token is cached like the refresh grant's.
  Token endpoint errors are one line: "oauth-token-url: ERROR: advice
      (description)"; invalid_grant names the login command.

The OAuth2 server is oauth_server.OAuthServer (HTTPS on 127.0.0.1 with
the test CA); the smarthost accepts XOAUTH2 only with the access token
that server issued last.  Every wait is bounded.
"""

import http.client
import os
import select
import ssl
import stat
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oauth_server import DEVICE_GRANT, OAuthServer, s256
from test_production import (EX_CONFIG, EX_NOPERM, EX_OK, EX_TEMPFAIL, RCPT,
                             SENDER, assert_no_secret, describe, log_lines,
                             message, queued_ids, secret, text, write_private)

EX_PROTOCOL = 76
EX_USAGE = 64
SCOPE = "https://outlook.office.com/SMTP.Send offline_access"


@pytest.fixture
def provider(tls_certs):
    """Factory: provider(**OAuthServer options) -> a running OAuthServer
    (stopped at test end)."""
    servers = []

    def make(**kwargs) -> OAuthServer:
        srv = OAuthServer(tls_certs.cert_file, tls_certs.key_file, **kwargs)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.stop()


class Setup:
    """A provider, a smarthost that accepts only its current access token,
    and a delegated (refresh-token) config using both."""

    def __init__(self, outbox, smarthost, tmp_path, srv, **over):
        self.outbox, self.srv, self.tmp = outbox, srv, tmp_path
        self.sh = smarthost(mechanisms=("XOAUTH2",),
                            tokens={"user": srv.access_tokens})
        self.rt_file = tmp_path / "refresh-token"
        self.qdir = tmp_path / "queue"
        self.log = tmp_path / "outbox.log"
        keys = dict(password=None, user="user", auth="xoauth2",
                    oauth_token_url=srv.token_url,
                    oauth_device_url=srv.device_url,
                    oauth_auth_url=srv.auth_url, oauth_scope=SCOPE,
                    oauth_client_id=srv.client_id,
                    oauth_refresh_token_file=str(self.rt_file),
                    queue=str(self.qdir), log=str(self.log))
        keys.update(over)
        self.cfg = outbox.write_config(tmp_path, self.sh, **keys)
        self.outputs = []

    @property
    def login_cmd(self) -> str:
        return f"outbox -C {self.cfg} --oauth-login"

    def login(self, *args, code=EX_OK, timeout=60):
        r = self.outbox.run(["--oauth-login", *args], config=self.cfg,
                            timeout=timeout)
        self.outputs += [r.stdout, r.stderr]
        assert r.returncode == code, describe(r)
        return r

    def send(self, marker="", code=EX_OK):
        r = self.outbox.run(["-f", SENDER, RCPT], message(marker),
                            config=self.cfg)
        assert self.sh.wait_idle()
        self.outputs += [r.stdout, r.stderr]
        assert r.returncode == code, describe(r)
        return r

    def assert_private_refresh_token(self, expected: str):
        st = os.stat(self.rt_file)
        assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
        assert st.st_uid == os.getuid()
        assert self.rt_file.read_text() == expected + "\n"
        leftovers = [p.name for p in self.tmp.iterdir()
                     if p.name.startswith("refresh-token.")]
        assert leftovers == [], leftovers

    def issued_secrets(self):
        out = []
        for i in self.srv.issued:
            out += [i["access_token"], i.get("refresh_token")]
        return [s for s in out if s]

    def assert_no_leak(self, extra=()):
        assert_no_secret(self.issued_secrets() + list(extra), *self.outputs,
                         paths=[self.log, self.cfg])


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


# ---------------------------------------------------------------------------
# the device grant
# ---------------------------------------------------------------------------

def test_device_login_stores_refresh_token_then_sends(outbox, smarthost,
                                                      provider, tmp_path):
    srv = provider(pending_polls=2, interval=1)
    s = Setup(outbox, smarthost, tmp_path, srv)
    r = s.login("--device")
    out = text(r.stdout)
    assert (f"open {srv.device_url[:-len('/devicecode')]}/device in a "
            f"browser and enter the code WDJB-MJHT") in out, out
    assert f"(or open {srv.device_url[:-len('/devicecode')]}/device?" \
           f"user_code=WDJB-MJHT)" in out, out
    assert f"the refresh token is stored in {s.rt_file}" in out, out

    # one device request, then three polls one interval apart
    dev = [q for q in srv.requests if q.path == "/devicecode"]
    assert len(dev) == 1
    assert dev[0].field("client_id") == srv.client_id
    assert dev[0].field("scope") == SCOPE
    polls = [q for q in srv.requests if q.path == "/token"]
    assert len(polls) == 3, [q.form for q in polls]
    assert all(q.field("grant_type") == DEVICE_GRANT and
               q.field("device_code", ) for q in polls)
    g = gaps([dev[0].time] + [q.time for q in polls])
    assert all(0.8 <= x <= 3.0 for x in g), g

    first = srv.issued[-1]
    s.assert_private_refresh_token(first["refresh_token"])

    # the stored refresh token works unattended: a send refreshes
    # (rotating the refresh token) and authenticates with the new token
    s.send("after device login")
    assert len(s.sh.messages) == 1
    last = srv.issued[-1]
    assert last["grant"] == "refresh_token"
    assert [(a.token, a.ok) for a in s.sh.oauth_attempts] == \
        [(last["access_token"], True)]
    refresh = [q for q in srv.requests if q.path == "/token"][-1]
    assert refresh.field("refresh_token") == first["refresh_token"]
    s.assert_private_refresh_token(last["refresh_token"])
    cache = s.qdir / "oauth-token"
    assert last["access_token"] in cache.read_text()

    # signing in again drops the cached token of the earlier sign-in: the
    # next send does not present it (no refused AUTH first)
    srv.pending_polls = 0
    s.login("--device")
    assert not cache.exists()
    s.send("after the second login")
    assert len(s.sh.messages) == 2
    assert [a.ok for a in s.sh.oauth_attempts] == [True, True]
    assert s.sh.oauth_attempts[-1].token == srv.issued[-1]["access_token"]
    s.assert_no_leak()


def test_device_login_slow_down_adds_five_seconds(outbox, smarthost, provider,
                                                  tmp_path):
    srv = provider(slow_down_polls={1}, interval=1)
    s = Setup(outbox, smarthost, tmp_path, srv)
    s.login("--device")
    dev = [q.time for q in srv.requests if q.path == "/devicecode"]
    polls = srv.device_polls()
    assert len(polls) == 2
    before, after = gaps(dev + polls)
    assert 0.8 <= before <= 3.0, before
    # interval 1 s + 5 s after slow_down (RFC 8628 3.5)
    assert 5.8 <= after <= 9.0, after
    s.assert_private_refresh_token(srv.issued[-1]["refresh_token"])
    s.assert_no_leak()


def test_device_login_expired_token(outbox, smarthost, provider, tmp_path):
    srv = provider(pending_polls=100, interval=1, device_lifetime=1.5)
    s = Setup(outbox, smarthost, tmp_path, srv)
    r = s.login("--device", code=EX_TEMPFAIL)
    assert text(r.stderr) == (
        "outbox: oauth-token-url: expired_token: the sign-in code expired "
        f"before it was used; run '{s.login_cmd}' again and sign in sooner "
        "(AADSTS70020: The provided value for the input parameter "
        "'device_code' is not valid. This device code has expired.)\n")
    assert len(srv.device_polls()) == 2
    assert not s.rt_file.exists()


def test_device_login_access_denied(outbox, smarthost, provider, tmp_path):
    srv = provider(interval=1)
    srv.deny = True
    s = Setup(outbox, smarthost, tmp_path, srv)
    r = s.login("--device", code=EX_NOPERM)
    assert text(r.stderr) == (
        "outbox: oauth-token-url: access_denied: the sign-in was denied; "
        f"run '{s.login_cmd}' again and approve the access "
        "(the user declined)\n")
    assert not s.rt_file.exists()


# ---------------------------------------------------------------------------
# the browser grant: PKCE and a loopback redirect
# ---------------------------------------------------------------------------

class Login:
    """outbox --oauth-login --browser running; the test is the browser."""

    def __init__(self, s: Setup, *args):
        self.s = s
        self.proc = subprocess.Popen(
            s.outbox.command(["--oauth-login", "--browser", *args],
                             config=s.cfg),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=s.outbox.environment())
        self.lines = []
        self.url = self._read_url(timeout=20)

    def _read_url(self, timeout):
        deadline = time.time() + timeout
        buf = b""
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode().splitlines():
                if line.startswith("https://"):
                    self.lines = buf.decode().splitlines()
                    return line
        self.kill()
        pytest.fail(f"no authorization URL printed: {buf!r}")

    def authorize(self):
        """GET the authorization URL at the provider: its redirect."""
        u = urlsplit(self.url)
        ctx = ssl.create_default_context(cafile=str(self.s.sh.ca_file))
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                           timeout=10)
        conn.request("GET", f"{u.path}?{u.query}")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 302, (resp.status, body)
        return resp.getheader("Location")

    def follow(self, location):
        """GET the redirect at outbox's listener: (status, body)."""
        u = urlsplit(location)
        assert u.scheme == "http" and u.hostname == "127.0.0.1"
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request("GET", f"{u.path}?{u.query}")
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        return resp.status, body

    def finish(self, timeout=30):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("outbox --oauth-login did not exit in time")
        self.s.outputs += ["\n".join(self.lines), out, err]
        return self.proc.returncode, text(err)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def test_browser_login_pkce_stores_refresh_token_then_sends(
        outbox, smarthost, provider, tmp_path):
    srv = provider()
    s = Setup(outbox, smarthost, tmp_path, srv)
    login = Login(s)
    q = {k: v[0] for k, v in parse_qs(urlsplit(login.url).query).items()}
    assert login.url.startswith(srv.auth_url + "?")
    assert q["response_type"] == "code" and q["client_id"] == srv.client_id
    assert q["scope"] == SCOPE and q["code_challenge_method"] == "S256"
    port = urlsplit(q["redirect_uri"]).port
    assert q["redirect_uri"] == f"http://127.0.0.1:{port}/"
    assert any(f"ssh -L {port}:127.0.0.1:{port}" in l for l in login.lines)

    location = login.authorize()
    # a request for another path is answered 404; the wait goes on
    assert login.follow(f"http://127.0.0.1:{port}/favicon.ico")[0] == 404
    status, body = login.follow(location)
    assert status == 200 and "Signed in" in body, body
    rc, err = login.finish()
    assert rc == EX_OK, err

    tok = [r for r in srv.requests if r.path == "/token"]
    assert len(tok) == 1
    assert tok[0].field("grant_type") == "authorization_code"
    assert tok[0].field("redirect_uri") == q["redirect_uri"]
    assert s256(tok[0].field("code_verifier")) == q["code_challenge"]
    s.assert_private_refresh_token(srv.issued[-1]["refresh_token"])

    s.send("after browser login")
    assert len(s.sh.messages) == 1
    assert [(a.token, a.ok) for a in s.sh.oauth_attempts] == \
        [(srv.issued[-1]["access_token"], True)]
    s.assert_no_leak(extra=[tok[0].field("code_verifier"),
                            tok[0].field("code")])


def test_browser_login_wrong_state_is_refused(outbox, smarthost, provider,
                                              tmp_path):
    srv = provider()
    s = Setup(outbox, smarthost, tmp_path, srv)
    login = Login(s)
    location = login.authorize()
    u = urlsplit(location)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    forged = u._replace(query=urlencode({"code": q["code"],
                                         "state": "forged-state"})).geturl()
    status, _ = login.follow(forged)
    assert status == 400
    rc, err = login.finish()
    assert rc == EX_PROTOCOL
    assert err == ("outbox: the redirect's state does not match this login "
                   "(a stale or forged redirect); nothing was stored; run "
                   f"'{s.login_cmd}' again\n")
    assert [r for r in srv.requests if r.path == "/token"] == []
    assert not s.rt_file.exists()


def test_browser_login_wait_is_bounded(outbox, smarthost, provider, tmp_path):
    srv = provider()
    s = Setup(outbox, smarthost, tmp_path, srv)
    t0 = time.time()
    login = Login(s, "--login-timeout", "2s")
    rc, err = login.finish(timeout=20)
    assert rc == EX_TEMPFAIL and "no sign-in within 2 s" in err, err
    assert time.time() - t0 < 10
    assert not s.rt_file.exists()


# ---------------------------------------------------------------------------
# client credentials
# ---------------------------------------------------------------------------

APP_SCOPE = "https://outlook.office365.com/.default"


def test_client_credentials_send(outbox, smarthost, provider, tmp_path):
    client_secret = secret("client")
    srv = provider(client_secret=client_secret)
    sf = write_private(tmp_path / "client-secret", client_secret + "\n")
    s = Setup(outbox, smarthost, tmp_path, srv,
              oauth_grant="client-credentials", oauth_scope=APP_SCOPE,
              oauth_client_secret_file=str(sf), oauth_refresh_token_file=None,
              oauth_device_url=None, oauth_auth_url=None)
    s.send("app-only one")
    s.send("app-only two")
    tok = [r for r in srv.requests if r.path == "/token"]
    assert len(tok) == 1, "the cached token is used for the second send"
    assert tok[0].form == {"grant_type": ["client_credentials"],
                           "client_id": [srv.client_id],
                           "client_secret": [client_secret],
                           "scope": [APP_SCOPE]}
    at = srv.issued[-1]["access_token"]
    assert "refresh_token" not in srv.issued[-1]
    assert [(a.token, a.ok) for a in s.sh.oauth_attempts] == \
        [(at, True), (at, True)]
    cache = s.qdir / "oauth-token"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert at in cache.read_text()
    assert not s.rt_file.exists()
    s.assert_no_leak(extra=[client_secret])


def test_login_refused_for_client_credentials(outbox, smarthost, provider,
                                              tmp_path):
    srv = provider(client_secret="x")
    sf = write_private(tmp_path / "client-secret", "x\n")
    s = Setup(outbox, smarthost, tmp_path, srv,
              oauth_grant="client-credentials", oauth_scope=APP_SCOPE,
              oauth_client_secret_file=str(sf), oauth_refresh_token_file=None)
    r = s.login(code=EX_CONFIG)
    assert text(r.stderr) == (
        "outbox: oauth-grant client-credentials needs no login: outbox "
        "gets its tokens with the client secret\n")
    assert srv.requests == []


# ---------------------------------------------------------------------------
# token endpoint errors: one line that says what to do
# ---------------------------------------------------------------------------

def queued_error(s: Setup, r):
    """The deferred message's reason, from stderr and the log."""
    assert len(queued_ids(s.qdir)) == 1, describe(r)
    assert s.sh.messages == [] and not s.sh.oauth_attempts
    return text(r.stderr) + "\n".join(log_lines(s.log))


def test_invalid_grant_says_run_the_login(outbox, smarthost, provider,
                                          tmp_path):
    srv = provider()
    s = Setup(outbox, smarthost, tmp_path, srv)
    stale = secret("stale-refresh")
    write_private(s.rt_file, stale + "\n")
    r = s.send("stale", code=EX_OK)          # queued: no mail is lost
    line = ("oauth-token-url: invalid_grant: the refresh token expired or "
            f"was revoked; run '{s.login_cmd}' to sign in again "
            "(AADSTS700082: The refresh token has expired due to "
            "inactivity.)")
    out = queued_error(s, r)
    assert line in out, out
    assert "Trace ID" not in out and "\r" not in out
    s.assert_no_leak(extra=[stale])


@pytest.mark.parametrize("case", ["disabled", "wrong-secret"])
def test_refused_client_names_the_keys(outbox, smarthost, provider, tmp_path,
                                       case):
    good = secret("client")
    srv = provider(client_secret=good)
    wrong = secret("wrong")
    sf = write_private(tmp_path / "client-secret",
                       (wrong if case == "wrong-secret" else good) + "\n")
    if case == "disabled":
        srv.clients[srv.client_id].disabled = True
    s = Setup(outbox, smarthost, tmp_path, srv,
              oauth_grant="client-credentials", oauth_scope=APP_SCOPE,
              oauth_client_secret_file=str(sf), oauth_refresh_token_file=None)
    r = s.send("refused", code=EX_OK)
    advice = ("the client was refused (wrong, disabled or expired "
              "credentials); check oauth-client-id and "
              "oauth-client-secret-file")
    line = {"disabled": "oauth-token-url: unauthorized_client: " + advice +
                        f" (AADSTS7000112: Application '{srv.client_id}' is "
                        "disabled.)",
            "wrong-secret": "oauth-token-url: invalid_client: " + advice +
                            " (AADSTS7000215: Invalid client secret "
                            "provided.)"}[case]
    out = queued_error(s, r)
    assert line in out, out
    s.assert_no_leak(extra=[good, wrong])


# ---------------------------------------------------------------------------
# accounts: each account has its own grant, token cache and login command
# ---------------------------------------------------------------------------

def test_accounts_each_get_their_own_tokens(outbox, smarthost, provider,
                                            tmp_path):
    """The default account refreshes with its stored refresh token; the
    account "app" signs in with client credentials at another provider.
    Each caches its own token (oauth-token, oauth-token-app); a refusal
    at the app's provider is the app's one-line error."""
    client_secret = secret("client")
    delegated = provider()
    app_idp = provider(client_secret=client_secret)
    s = Setup(outbox, smarthost, tmp_path, delegated)
    app_sh = smarthost(mechanisms=("XOAUTH2",),
                       tokens={"appuser": app_idp.access_tokens})
    sf = write_private(tmp_path / "app-secret", client_secret + "\n")
    lines = ["account app", "  senders noreply@app.example.com",
             f"  smarthost {app_sh.hostport}", "  tls starttls",
             f"  ca-file {app_sh.ca_file}", "  user appuser",
             "  auth xoauth2", "  helo client.example.com", "  timeout 5s",
             "  oauth-grant client-credentials",
             f"  oauth-token-url {app_idp.token_url}",
             f"  oauth-client-id {app_idp.client_id}",
             f"  oauth-client-secret-file {sf}",
             f"  oauth-scope {APP_SCOPE}"]
    with open(s.cfg, "a") as f:
        f.write("\n".join(lines) + "\n")
    s.login("--device")
    s.send("default account")
    r = outbox.run(["-f", "noreply@app.example.com", RCPT], message("app"),
                   config=s.cfg)
    assert app_sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(s.sh.messages) == 1 and len(app_sh.messages) == 1
    assert [(a.user, a.ok) for a in app_sh.oauth_attempts] == \
        [("appuser", True)]
    assert app_sh.oauth_attempts[0].token == app_idp.issued[-1]["access_token"]
    app_req = [q for q in app_idp.requests if q.path == "/token"]
    assert [q.field("grant_type") for q in app_req] == ["client_credentials"]
    assert delegated.issued[-1]["access_token"] in \
        (s.qdir / "oauth-token").read_text()
    assert app_idp.issued[-1]["access_token"] in \
        (s.qdir / "oauth-token-app").read_text()

    # the app's secret is revoked: its line names the account's keys
    app_idp.clients[app_idp.client_id].secret = secret("rotated")
    (s.qdir / "oauth-token-app").unlink()
    r = outbox.run(["-f", "noreply@app.example.com", RCPT], message("app2"),
                   config=s.cfg)
    assert r.returncode == EX_OK, describe(r)           # queued
    log = "\n".join(log_lines(s.log))
    assert "oauth-token-url: invalid_client: the client was refused" in \
        log, log
    assert len(app_sh.messages) == 1 and len(s.sh.messages) == 1
    s.outputs += [r.stdout, r.stderr]
    s.assert_no_leak(extra=[client_secret])


def test_login_with_account_signs_in_that_account(outbox, smarthost,
                                                  provider, tmp_path):
    """--oauth-login --account NAME signs in the named account with its
    own provider and stores its own refresh token file; the default
    account's file is not touched; its sends then use that account's
    tokens. An unknown name is refused before anything is asked."""
    delegated = provider()
    app_idp = provider(pending_polls=1, interval=1)
    s = Setup(outbox, smarthost, tmp_path, delegated)
    app_sh = smarthost(mechanisms=("XOAUTH2",),
                       tokens={"appuser": app_idp.access_tokens})
    app_rt = tmp_path / "app-refresh-token"
    lines = ["account app", "  senders noreply@app.example.com",
             f"  smarthost {app_sh.hostport}", "  tls starttls",
             f"  ca-file {app_sh.ca_file}", "  user appuser",
             "  auth xoauth2", "  helo client.example.com", "  timeout 5s",
             f"  oauth-token-url {app_idp.token_url}",
             f"  oauth-device-url {app_idp.device_url}",
             f"  oauth-scope {SCOPE}",
             f"  oauth-client-id {app_idp.client_id}",
             f"  oauth-refresh-token-file {app_rt}"]
    with open(s.cfg, "a") as f:
        f.write("\n".join(lines) + "\n")

    r = s.login("--account", "nosuch", code=EX_USAGE)
    assert "no account of that name (it has: default, app)" in \
        text(r.stderr), describe(r)
    assert delegated.requests == [] and app_idp.requests == []

    r = s.login("--device", "--account", "app")
    assert f"the refresh token is stored in {app_rt}" in text(r.stdout)
    assert delegated.requests == []               # the default's provider
    assert not s.rt_file.exists()                 # and file: untouched
    assert app_rt.read_text() == app_idp.issued[-1]["refresh_token"] + "\n"
    assert stat.S_IMODE(app_rt.stat().st_mode) == 0o600

    r = outbox.run(["-f", "noreply@app.example.com", RCPT], message("app"),
                   config=s.cfg)
    assert app_sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert [(a.user, a.ok) for a in app_sh.oauth_attempts] == \
        [("appuser", True)]
    assert (s.qdir / "oauth-token-app").exists()

    # --check --account app checks that account alone
    r = outbox.run(["--check", "--account", "app"], config=s.cfg)
    out = text(r.stdout)
    assert r.returncode == EX_OK, describe(r)
    assert "account app:" in out and "account default:" not in out, out
    assert out.count("result:       OK") == 1, out
    s.outputs += [r.stdout, r.stderr]
    s.assert_no_leak(extra=[i["refresh_token"] for i in app_idp.issued
                            if i.get("refresh_token")])
