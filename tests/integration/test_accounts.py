"""Accounts: each sender routed to its own smarthost and credentials.

Two real STARTTLS + AUTH smarthosts with different users stand for the
company relay (the default account) and a mail provider (account "app").
outbox must send each message through the account its envelope sender
selects, with that account's credentials only; remember the account in
the queue; run each account's queued messages over one connection per
smarthost; and name the account in -bv, --check, mailq and the log.
"""

import json
import os
import re
from pathlib import Path

import pytest

MSG = (b"From: someone@example.com\r\nTo: rcpt@example.net\r\n"
       b"Subject: accounts\r\n\r\nbody\r\n")

RELAY_USERS = {"relayuser": "relay-secret"}
APP_USERS = {"appuser": "app-secret"}


@pytest.fixture
def relays(smarthost):
    """(default account's smarthost, account app's smarthost)."""
    return (smarthost(users=RELAY_USERS), smarthost(users=APP_USERS))


def account_lines(sh, senders="noreply@app.example.com *@shop.example",
                  name="app", hosts=None):
    """An account section for smarthost sh (its first user)."""
    user, password = next(iter(sh.users.items()))
    hosts = hosts if hosts is not None else [sh.hostport]
    lines = [f"account {name}", f"  senders {senders}"]
    lines += [f"  smarthost {h}" for h in hosts]
    lines += ["  tls starttls", f"  ca-file {sh.ca_file}",
              f"  user {user}", f"  password {password}",
              "  helo client.example.com", "  timeout 5s"]
    return lines


def write(outbox, tmp_path, default, extra, **kw):
    return outbox.write_config(tmp_path, default, extra_lines=extra, **kw)


def send(outbox, cfg, sender, *args):
    return outbox.run(["-f", sender, *args, "rcpt@example.net"], MSG,
                      config=cfg)


def test_sender_selects_the_account(outbox, relays, tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, relay, account_lines(app))
    cases = [("noreply@app.example.com", app, "appuser"),
             ("NoReply@APP.example.com", app, "appuser"),    # any case
             ("orders@shop.example", app, "appuser"),        # *@domain
             ("cron@example.com", relay, "relayuser"),
             ("other@app.example.com", relay, "relayuser"),  # not listed
             ("x@sub.shop.example", relay, "relayuser")]     # not a sub
    for sender, server, _ in cases:
        r = send(outbox, cfg, sender)
        assert r.returncode == 0, (sender, r.stderr)
    got = [(m.mail_from, m.auth_user) for m in relay.messages + app.messages]
    assert len(got) == len(cases)
    for sender, server, user in cases:
        m = [m for m in server.messages if m.mail_from == sender]
        assert len(m) == 1, (sender, [x.mail_from for x in server.messages])
        assert m[0].auth_user == user
        assert m[0].tls
    # the relay's password never went to the app's server, nor back
    for sh, foreign in ((app, "relay-secret"), (relay, "app-secret")):
        for c in sh.commands:
            if c.verb == "AUTH":
                assert foreign not in (c.arg or "")


def test_first_match_wins_and_default_takes_the_rest(outbox, smarthost,
                                                     relays, tmp_path):
    relay, app = relays
    third = smarthost(users={"thirduser": "third-secret"})
    extra = (account_lines(app, senders="*@example.org", name="first")
             + account_lines(third, senders="a@example.org", name="second"))
    cfg = write(outbox, tmp_path, relay, extra)
    assert send(outbox, cfg, "a@example.org").returncode == 0
    assert send(outbox, cfg, "b@example.net").returncode == 0
    assert [m.mail_from for m in app.messages] == ["a@example.org"]
    assert third.messages == []
    assert [m.mail_from for m in relay.messages] == ["b@example.net"]


def test_login_name_without_f_uses_the_domain(outbox, relays, tmp_path):
    """Without -f the sender is the login name at the domain, so an
    account for *@DOMAIN takes every local user's mail."""
    relay, app = relays
    cfg = write(outbox, tmp_path, relay,
                account_lines(app, senders="*@local.example"),
                domain="local.example", **{"from": None})
    r = outbox.run(["rcpt@example.net"], MSG, config=cfg)
    assert r.returncode == 0, r.stderr
    assert len(app.messages) == 1 and relay.messages == []
    assert app.messages[0].mail_from.endswith("@local.example")


def test_failover_inside_an_account(outbox, relays, closed_port, tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, relay,
                account_lines(app, hosts=[closed_port.hostport,
                                          app.hostport]))
    r = send(outbox, cfg, "noreply@app.example.com")
    assert r.returncode == 0, r.stderr
    assert len(app.messages) == 1 and relay.messages == []
    err = r.stderr.decode()
    # the failure of the smarthost it passed over is logged
    assert closed_port.hostport.split(":")[-1] in err
    assert "account=app" in err


def test_log_lines_name_the_account(outbox, relays, tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, relay, account_lines(app))
    r = send(outbox, cfg, "noreply@app.example.com")
    assert r.returncode == 0
    err = r.stderr.decode()
    assert re.search(r"from=<noreply@app\.example\.com>, size=\d+, "
                     r"nrcpt=1, account=app", err), err
    assert re.search(r"to=<rcpt@example\.net>, relay=[^,]+, account=app, "
                     r"delay=", err), err
    r = send(outbox, cfg, "cron@example.com")
    assert r.returncode == 0
    assert "account=" not in r.stderr.decode()  # the default: as before


def queue_config(outbox, tmp_path, relay, app, relay_host, app_host):
    q = tmp_path / "queue"
    return write(outbox, tmp_path, relay_host,
                 account_lines(app, hosts=[app_host]), queue=q,
                 user="relayuser", password="relay-secret",
                 ca_file=relay.ca_file, tls="starttls"), q


def test_queue_remembers_the_account_and_one_run_sends_both(
        outbox, relays, tmp_path):
    relay, app = relays
    cfg, q = queue_config(outbox, tmp_path, relay, app, relay.hostport,
                          app.hostport)
    for sender in ("noreply@app.example.com", "orders@shop.example",
                   "cron@example.com", "backup@example.com"):
        r = send(outbox, cfg, sender, "-odq")
        assert r.returncode == 0, r.stderr
    envs = sorted((q / "msg").glob("*.env"))
    assert len(envs) == 4
    accounts = [re.findall(r"^account (\S+)$", p.read_text(), re.M)
                for p in envs]
    assert sorted(map(tuple, accounts)) == [(), (), ("app",), ("app",)]

    listing = outbox.run(["-bp"], config=cfg)
    assert listing.returncode == 0
    assert listing.stdout.decode().count("    account app\n") == 2
    js = json.loads(outbox.run(["-bp", "--json"], config=cfg).stdout)
    assert sorted(m["account"] for m in js) == ["app", "app", "default",
                                                "default"]
    by_sender = {m["sender"]: m["account"] for m in js}
    assert by_sender["orders@shop.example"] == "app"

    before = (relay.connections, app.connections)
    r = outbox.run(["-q", "-v"], config=cfg)
    assert r.returncode == 0, r.stderr
    assert sorted(m.mail_from for m in app.messages) == [
        "noreply@app.example.com", "orders@shop.example"]
    assert sorted(m.mail_from for m in relay.messages) == [
        "backup@example.com", "cron@example.com"]
    assert {m.auth_user for m in app.messages} == {"appuser"}
    assert {m.auth_user for m in relay.messages} == {"relayuser"}
    # one connection per smarthost for the whole run
    assert relay.connections - before[0] == 1
    assert app.connections - before[1] == 1
    assert list((q / "msg").glob("*.env")) == []


def test_queue_when_the_account_smarthost_is_down(outbox, relays,
                                                  closed_port, tmp_path):
    """The app's smarthost down: its message waits in the queue (exit 0,
    said on stderr), the default account's goes; once it is back, -q
    sends it through the app's account."""
    relay, app = relays
    cfg, q = queue_config(outbox, tmp_path, relay, app, relay.hostport,
                          closed_port.hostport)
    r = send(outbox, cfg, "noreply@app.example.com")
    assert r.returncode == 0, r.stderr
    assert "queued" in r.stderr.decode()
    assert relay.messages == [] and app.messages == []
    assert send(outbox, cfg, "cron@example.com").returncode == 0
    assert len(relay.messages) == 1
    cfg, q = queue_config(outbox, tmp_path, relay, app, relay.hostport,
                          app.hostport)
    r = outbox.run(["-qf"], config=cfg)    # not due yet (backoff): force
    assert r.returncode == 0, r.stderr
    assert [m.mail_from for m in app.messages] == ["noreply@app.example.com"]
    assert app.messages[0].auth_user == "appuser"
    assert len(relay.messages) == 1


def test_renamed_account_is_logged_not_lost(outbox, relays, tmp_path):
    relay, app = relays
    q = tmp_path / "queue"
    cfg = write(outbox, tmp_path, relay, account_lines(app), queue=q)
    assert send(outbox, cfg, "noreply@app.example.com", "-odq").returncode == 0
    # the admin renames the account: the message goes through the
    # account its sender selects now
    cfg = write(outbox, tmp_path, relay, account_lines(app, name="webapp"),
                queue=q)
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "account app is not in the config any more; sent through " \
           "account webapp" in err, err
    assert [m.auth_user for m in app.messages] == ["appuser"]
    assert list((q / "msg").glob("*.env")) == []


def test_removed_account_falls_back_to_the_default(outbox, relays,
                                                   tmp_path):
    relay, app = relays
    q = tmp_path / "queue"
    cfg = write(outbox, tmp_path, relay, account_lines(app), queue=q)
    assert send(outbox, cfg, "noreply@app.example.com", "-odq").returncode == 0
    cfg = write(outbox, tmp_path, relay, [], queue=q)
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == 0, r.stderr
    assert "account app is not in the config any more; sent through " \
           "account default" in r.stderr.decode()
    assert [m.auth_user for m in relay.messages] == ["relayuser"]


def test_bv_names_account_and_smarthost(outbox, relays, tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, relay, account_lines(app))
    r = outbox.run(["-f", "x@shop.example", "-bv", "rcpt@example.net"],
                   config=cfg)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert f"account: app (smarthost 127.0.0.1 port {app.port})" in out
    assert "rcpt@example.net... deliverable: via smarthost 127.0.0.1 " \
           "(account app)" in out
    r = outbox.run(["-f", "cron@example.com", "-bv", "rcpt@example.net"],
                   config=cfg)
    assert f"account: default (smarthost 127.0.0.1 port {relay.port})" \
        in r.stdout.decode()
    assert relay.messages == [] and app.messages == []   # -bv sends nothing


def test_check_checks_every_account(outbox, relays, tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, relay, account_lines(app))
    r = outbox.run(["--check"], config=cfg)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    assert "account default:" in out and "account app:" in out
    assert out.index("account default:") < out.index("account app:")
    assert out.count("result:       OK") == 2
    assert out.rstrip().endswith("all smarthosts passed")
    # a wrong password in one account: that account's AUTH fails
    bad = account_lines(app)
    bad[bad.index("  password app-secret")] = "  password wrong"
    cfg = write(outbox, tmp_path, relay, bad)
    r = outbox.run(["--check"], config=cfg)
    assert r.returncode == 77, r.stderr
    assert "outbox: check: account app: 127.0.0.1:%d: AUTH failed" % app.port \
        in r.stderr.decode()
    assert "wrong" not in r.stderr.decode() + r.stdout.decode()


def test_environment_sets_the_default_account(outbox, relays, smarthost,
                                              tmp_path):
    relay, app = relays
    other = smarthost(users=RELAY_USERS)
    cfg = write(outbox, tmp_path, relay, account_lines(app))
    env = {"OUTBOX_SMARTHOST": other.hostport}
    for sender in ("cron@example.com", "noreply@app.example.com"):
        r = outbox.run(["-f", sender, "rcpt@example.net"], MSG, config=cfg,
                       env=env)
        assert r.returncode == 0, r.stderr
    assert [m.mail_from for m in other.messages] == ["cron@example.com"]
    assert [m.mail_from for m in app.messages] == ["noreply@app.example.com"]
    assert relay.messages == []


@pytest.mark.parametrize("lines,where,why", [
    (["account app", "  senders a@b.example", "  smarthost 127.0.0.1:1",
      "  queue /tmp/x"], 4, "queue: applies to every account"),
    (["account app", "  smarthost 127.0.0.1:1"], 1,
     "account: no senders"),
    (["senders a@b.example"], 1, "senders: belongs in an account section"),
    (["account app", "  senders a@b.example", "  smarthost 127.0.0.1:1",
      "account app"], 4, "an account of that name is already defined"),
    (["account default"], 1, "account: expected a name"),
    (["account a/b"], 1, "account: expected a name"),
    (["account app", "  senders nobody"], 2, "senders: expected addresses"),
    (["account app", "  senders *x@b.example"], 2,
     "senders: expected addresses"),
    (["account app", "  senders a@b.example"], 1,
     "account: no smarthost configured"),
])
def test_config_errors_name_the_line(outbox, tmp_path, lines, where, why):
    cfg = outbox.write_config(tmp_path, "127.0.0.1:2", tls="off",
                              extra_lines=lines)
    base = len(outbox.config_lines("127.0.0.1:2", tls="off"))
    r = outbox.run(["-bv", "x@example.com"], config=cfg)
    assert r.returncode == 78, r.stderr
    err = r.stderr.decode()
    assert why in err, err
    if where is not None:
        assert f"{cfg}:{base + where}:" in err, err
    assert len(err.strip().splitlines()) == 1


def test_inline_password_in_an_account_needs_a_private_file(outbox, relays,
                                                            tmp_path):
    relay, app = relays
    cfg = write(outbox, tmp_path, "127.0.0.1:2", account_lines(app),
                mode=0o644, tls="off")
    r = outbox.run(["-bv", "x@example.com"], config=cfg)
    assert r.returncode == 78
    assert "holds a password but other users can read it" in \
        r.stderr.decode()


def test_bounce_goes_through_the_account(outbox, smarthost, tmp_path):
    """A recipient refused for good: the DSN to the sender is queued with
    the message's account and sent through it."""
    relay = smarthost(users=RELAY_USERS)
    app = smarthost(users=APP_USERS,
                    rcpt_replies={"gone@example.net": "550 5.1.1 no such"})
    q = tmp_path / "queue"
    cfg = write(outbox, tmp_path, relay, account_lines(app), queue=q)
    r = outbox.run(["-f", "noreply@app.example.com", "-odq",
                    "gone@example.net"], MSG, config=cfg)
    assert r.returncode == 0, r.stderr
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == 0, r.stderr
    dsn = [m for m in app.messages if m.mail_from in ("", "<>")]
    assert len(dsn) == 1, [m.mail_from for m in app.messages]
    assert dsn[0].rcpt_tos == ["noreply@app.example.com"]
    assert dsn[0].auth_user == "appuser"
    assert relay.messages == []


def test_metrics_count_each_account_apart(outbox, relays, tmp_path):
    """Both accounts through one smarthost: the metrics file has a series
    per account (the named one labelled account="app"), parsed by
    prometheus_client, with the counts of each."""
    from prometheus_client.parser import text_string_to_metric_families
    relay, app = relays
    q = tmp_path / "queue"
    metrics = tmp_path / "outbox.prom"
    lines = account_lines(app)
    # account app sends through the default's smarthost with its user
    relay.users.update(app.users)
    lines[lines.index(f"  smarthost {app.hostport}")] = \
        f"  smarthost {relay.hostport}"
    cfg = write(outbox, tmp_path, relay, lines, queue=q,
                metrics_file=metrics)
    for sender in ("noreply@app.example.com", "orders@shop.example",
                   "cron@example.com"):
        assert send(outbox, cfg, sender).returncode == 0
    assert {m.auth_user for m in relay.messages} == {
        "appuser", "relayuser"}
    sent = {}
    for fam in text_string_to_metric_families(metrics.read_text()):
        for s in fam.samples:
            if s.name == "outbox_recipients_sent_total":
                key = (s.labels["smarthost"], s.labels.get("account"))
                sent[key] = s.value
    assert sent == {(relay.hostport, None): 1.0,
                    (relay.hostport, "app"): 2.0}, sent


def test_bs_session_routes_each_message_by_its_mail_from(outbox, relays,
                                                         tmp_path):
    """One -bs session (Symfony Mailer's way), three messages: each MAIL
    FROM selects its account, and the account's from-rewrite applies to
    the sender it gives (parsed once, at MAIL)."""
    relay, app = relays
    lines = account_lines(app) + ["  from shop-bounces@shop.example",
                                  "  from-rewrite always"]
    cfg = write(outbox, tmp_path, relay, lines)
    script = b"EHLO client.example\r\n"
    for sender in ("orders@shop.example", "cron@example.com",
                   "noreply@app.example.com"):
        script += (f"MAIL FROM:<{sender}>\r\nRCPT TO:<rcpt@example.net>\r\n"
                   f"DATA\r\nSubject: from {sender}\r\n\r\nbody\r\n.\r\n"
                   ).encode()
    script += b"QUIT\r\n"
    r = outbox.run(["-bs"], script, config=cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"250 2.0.0 Ok:") == 3, r.stdout
    assert relay.wait_idle() and app.wait_idle()
    assert [m.mail_from for m in relay.messages] == ["cron@example.com"]
    assert [m.mail_from for m in app.messages] == [
        "shop-bounces@shop.example"] * 2
    assert sorted(m.data.split(b"Subject: ")[1].split(b"\r\n")[0]
                  for m in app.messages) == [
        b"from noreply@app.example.com", b"from orders@shop.example"]
    assert {m.auth_user for m in app.messages} == {"appuser"}


def test_rate_limits_count_each_account_apart(outbox, relays, tmp_path):
    """Two accounts on one smarthost, each with rate-limit 1/min: each
    sends its first message at once (a shared count would queue the
    second account's), and each one's second waits in the queue."""
    relay, app = relays
    relay.users.update(app.users)
    q = tmp_path / "queue"
    lines = account_lines(app, hosts=[relay.hostport]) + \
        ["  rate-limit 1/min"]
    cfg = write(outbox, tmp_path, relay, lines, queue=q, rate_limit="1/min")
    for sender in ("cron@example.com", "noreply@app.example.com"):
        r = send(outbox, cfg, sender)
        assert r.returncode == 0, r.stderr
        assert "queued" not in r.stderr.decode(), r.stderr
    assert sorted(m.auth_user for m in relay.messages) == ["appuser",
                                                           "relayuser"]
    for sender in ("cron@example.com", "noreply@app.example.com"):
        r = send(outbox, cfg, sender)
        assert r.returncode == 0, r.stderr
        assert "rate-limit" in r.stderr.decode(), r.stderr
    assert len(relay.messages) == 2
    assert len(list((q / "msg").glob("*.env"))) == 2


def test_a_hung_account_does_not_stall_the_others(outbox, relays,
                                                  silent_server, tmp_path):
    """The app's smarthost accepts and never speaks: one -q costs about
    one timeout for it, the default account's queued messages go, and
    the app's stay queued and due."""
    import time
    relay, app = relays
    q = tmp_path / "queue"
    lines = account_lines(app, hosts=[silent_server.hostport])
    lines[lines.index("  timeout 5s")] = "  timeout 2s"
    cfg = write(outbox, tmp_path, relay, lines, queue=q)
    for i in range(5):
        for sender in ("noreply@app.example.com", "cron@example.com"):
            assert send(outbox, cfg, sender, "-odq").returncode == 0
    t0 = time.monotonic()
    r = outbox.run(["-q"], config=cfg, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert len(relay.messages) == 5
    envs = list((q / "msg").glob("*.env"))
    assert len(envs) == 5
    assert all("account app" in p.read_text() for p in envs)
    assert took < 2 * 2 + 3, took       # one timeout, not five
