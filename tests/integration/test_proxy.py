"""The proxy key: socks5h://, socks5://, http:// or none, for the SMTP
session and the OAuth2 token endpoint; without the key the environment's
proxy variables apply (for ordinary callers; the set-group-ID install
never lets the environment choose, see test_many_users.py).

The proxy is a real one (socks_proxy.LoggingProxy) that records every
connection it carries.
"""

import pytest

from socks_proxy import LoggingProxy
from test_production import Flow, oauth_server, secret

EX_OK = 0
EX_CONFIG = 78
SENDER = "cron@example.com"
RCPT = "admin@example.com"
ENV_PROXIES = ("ALL_PROXY", "all_proxy", "smtp_proxy", "SMTP_PROXY",
               "https_proxy", "HTTPS_PROXY", "http_proxy", "socks_proxy")


def message(subject):
    return f"Subject: {subject}\n\nbody\n".encode()


@pytest.fixture
def proxy():
    p = LoggingProxy()
    yield p
    p.stop()


@pytest.fixture
def other_proxy():
    p = LoggingProxy()
    yield p
    p.stop()


def env_pointing_at(p, scheme="socks5h"):
    return {name: p.url(scheme) for name in ENV_PROXIES}


def clean_env(monkeypatch):
    """No proxy variable of the machine running the tests leaks in."""
    for name in ENV_PROXIES + ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def carried_to(p, port):
    return [c for c in p.connections if c[2] == port]


@pytest.mark.parametrize("scheme,kinds", [
    ("socks5h", {"socks5", "socks5-ip"}),
    ("socks5", {"socks5-ip"}),
    ("http", {"http"}),
])
def test_proxy_key_carries_the_session(outbox, smarthost, proxy, tmp_path,
                                       monkeypatch, scheme, kinds):
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh, proxy=proxy.url(scheme))
    r = outbox.run(["-f", SENDER, RCPT], message(scheme), config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1 and sh.messages[0].tls
    assert sh.messages[0].auth_user == "user"
    assert len(proxy.connections) == 1, proxy.connections
    kind, host, port = proxy.connections[0]
    assert kind in kinds and port == sh.port and host == "127.0.0.1"


def test_proxy_key_wins_over_the_environment(outbox, smarthost, proxy,
                                             other_proxy, tmp_path,
                                             monkeypatch):
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh, proxy=proxy.url("socks5h"))
    env = env_pointing_at(other_proxy)
    env["NO_PROXY"] = env["no_proxy"] = "*"
    r = outbox.run(["-f", SENDER, RCPT], message("key wins"), config=cfg,
                   env=env)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1
    assert len(carried_to(proxy, sh.port)) == 1
    assert other_proxy.wait_idle()
    assert other_proxy.accepted == 0


def test_without_the_key_the_environment_applies(outbox, smarthost, proxy,
                                                 tmp_path, monkeypatch):
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, RCPT], message("env"), config=cfg,
                   env={"ALL_PROXY": proxy.url("socks5h")})
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1
    assert len(carried_to(proxy, sh.port)) == 1, proxy.connections


def test_proxy_none_ignores_the_environment(outbox, smarthost, proxy,
                                            tmp_path, monkeypatch):
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh, proxy="none")
    r = outbox.run(["-f", SENDER, RCPT], message("none"), config=cfg,
                   env=env_pointing_at(proxy))
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1
    assert proxy.wait_idle()
    assert proxy.accepted == 0, proxy.connections


def test_outbox_proxy_variable(outbox, smarthost, proxy, tmp_path,
                               monkeypatch):
    """OUTBOX_PROXY, like every key, for the environment-only setup."""
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, RCPT], message("OUTBOX_PROXY"),
                   config=cfg, env={"OUTBOX_PROXY": proxy.url("socks5h")})
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(carried_to(proxy, sh.port)) == 1, proxy.connections


def test_check_names_the_proxy(outbox, smarthost, proxy, tmp_path,
                               monkeypatch):
    clean_env(monkeypatch)
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh, proxy=proxy.url("socks5h"))
    r = outbox.run(["--check"], config=cfg)
    assert r.returncode == EX_OK, r.stderr
    out = r.stdout.decode()
    assert f"proxy:        {proxy.url('socks5h')}" in out, out
    assert len(carried_to(proxy, sh.port)) == 1


def test_token_endpoint_goes_through_the_proxy(outbox, smarthost,
                                               token_endpoint, proxy,
                                               tmp_path, monkeypatch):
    clean_env(monkeypatch)
    at = secret("at")
    sh = oauth_server(smarthost, "XOAUTH2", {at})
    ep = token_endpoint(reply={"access_token": at, "expires_in": 3600,
                               "token_type": "Bearer"})
    flow = Flow(outbox, tmp_path, sh, ep.url)
    with open(flow.cfg, "a") as f:
        f.write(f"proxy {proxy.url('http')}\n")
    flow.send(outbox, sh, "oauth via proxy")
    assert len(sh.messages) == 1
    ports = sorted(c[2] for c in proxy.connections)
    assert ports == sorted([sh.port, ep.port]), proxy.connections
    assert all(c[0] == "http" for c in proxy.connections)


@pytest.mark.parametrize("value,why", [
    ("ftp://127.0.0.1:21", "must be none, or a URL"),
    ("127.0.0.1:1080", "must be none, or a URL"),
    ("socks5h://user:pw@127.0.0.1:1080", "user name and password"),
    ("socks5h://127.0.0.1:99999", "port must be"),
    ("socks5h://", "expected scheme://host:port"),
    ("http://127.0.0.1:8080/path", "port must be"),
    ("http://proxy host:8080", "expected scheme://host:port"),
])
def test_bad_proxy_values_are_refused(outbox, smarthost, tmp_path, value,
                                      why):
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh, proxy=value)
    lines = cfg.read_text().splitlines()
    line = [i for i, l in enumerate(lines, 1) if l.startswith("proxy ")][0]
    r = outbox.run(["-f", SENDER, RCPT], message("bad"), config=cfg)
    assert r.returncode == EX_CONFIG, r.stderr
    err = r.stderr.decode()
    assert f"{cfg}:{line}: proxy: " in err and why in err, err
    assert "user:pw" not in err   # the value is not echoed
    assert sh.wait_idle()
    assert sh.connections == 0
