"""Self-checks of the smarthost fixture, without the outbox binary.

Uses Python's smtplib and /usr/bin/curl as reference clients, so a failure
here means the fixture (not outbox) is broken.
"""

import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ipv6_available, parse_headers, split_message

CURL = "/usr/bin/curl"
MSG = (b"From: a@example.com\r\n"
       b"To: b@example.com\r\n"
       b"Subject: selfcheck\r\n"
       b"\r\n"
       b"line one\r\n"
       b".starts with a dot\r\n"
       b"..two dots\r\n"
       b"8bit: \xc3\xa4\xff\x80\r\n"
       b"last\r\n")


def client_ctx(ca_file):
    ctx = ssl.create_default_context(cafile=str(ca_file))
    return ctx


def run_curl(args, timeout=30):
    return subprocess.run([CURL, "--silent", "--show-error",
                           "--max-time", "15", *map(str, args)],
                          capture_output=True, timeout=timeout)


def test_starttls_login_plain_exact_bytes(smarthost):
    sh = smarthost()
    assert sh.connections == 0
    with smtplib.SMTP(sh.host, sh.port, local_hostname="client.test",
                      timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), "AUTH must not be offered before TLS"
        s.starttls(context=client_ctx(sh.ca_file))
        s.ehlo()
        assert set(s.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}
        s.login("user", "secret")
        refused = s.sendmail("a@example.com", ["b@example.com"], MSG)
        assert refused == {}
    assert sh.connections == 1
    assert len(sh.messages) == 1
    m = sh.messages[0]
    assert m.mail_from == "a@example.com"
    assert m.rcpt_tos == ["b@example.com"]
    assert m.data == MSG  # dot-stuffed by smtplib, unstuffed by the server
    assert m.auth_user == "user"
    assert m.tls is True
    assert m.helo == "client.test"
    head, body = split_message(m.data)
    assert body.endswith(b"last\r\n")
    assert [n for n, _ in parse_headers(m.data)] == ["From", "To", "Subject"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_each_mechanism_alone(smarthost, mech):
    sh = smarthost(mechanisms=(mech,))
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.ehlo()
        assert s.esmtp_features["auth"].split() == [mech]
        s.user, s.password = "user", "secret"
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()),
                         initial_response_ok=(mech == "PLAIN"))
        assert code == 235
        s.sendmail("a@example.com", ["b@example.com"], MSG)
    assert sh.messages[0].auth_user == "user"


def test_wrong_password_gets_535(smarthost):
    sh = smarthost()
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.login("user", "wrong")
        assert ei.value.smtp_code == 535
        # Still unauthenticated: MAIL is refused.
        code, _ = s.mail("a@example.com")
        assert code == 530
    assert sh.messages == []


def test_auth_required_before_mail(smarthost):
    sh = smarthost()
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.ehlo()
        code, msg = s.mail("a@example.com")
        assert code == 530
    assert [c.verb for c in sh.commands if c.verb == "MAIL"] == ["MAIL"]


def test_auth_refused_without_tls(smarthost):
    sh = smarthost()
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.ehlo()
        code, _ = s.docmd("AUTH", "PLAIN AHVzZXIAc2VjcmV0")
        assert code == 538


def test_starttls_not_offered_when_disabled(smarthost):
    sh = smarthost(offer_starttls=False)
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, _ = s.docmd("STARTTLS")
        assert code == 454  # "TLS not available": no handshake follows
        code, _ = s.mail("a@example.com")
        assert code == 530
    assert sh.messages == []
    assert all(not c.tls for c in sh.commands)


def test_smtps_implicit_tls(smarthost):
    sh = smarthost(mode="smtps")
    with smtplib.SMTP_SSL(sh.host, sh.port, timeout=10,
                          context=client_ctx(sh.ca_file)) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.has_extn("auth")
        s.login("user", "secret")
        s.sendmail("a@example.com", ["b@example.com"], MSG)
    m = sh.messages[0]
    assert (m.tls, m.auth_user, m.data) == (True, "user", MSG)
    assert sh.commands[0].tls is True


def test_plain_mode_without_auth(smarthost):
    sh = smarthost(mode="plain", auth=False)
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert not s.has_extn("auth")
        s.sendmail("a@example.com", ["b@example.com", "c@example.com"], MSG)
    m = sh.messages[0]
    assert (m.tls, m.auth_user) == (False, None)
    assert m.rcpt_tos == ["b@example.com", "c@example.com"]
    assert m.data == MSG


def test_rcpt_replies(smarthost):
    sh = smarthost()
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
        refused = s.sendmail("a@example.com",
                             ["ok@example.com", "bad@example.com",
                              "Later@Example.com"], MSG)
    assert refused == {
        "bad@example.com": (550, b"5.1.1 no such user"),
        "Later@Example.com": (451, b"4.3.0 try later"),
    }
    assert sh.messages[0].rcpt_tos == ["ok@example.com"]


@pytest.mark.parametrize("kw,code", [
    ({"data_reply": "451 4.3.0 busy"}, 451),
    ({"data_reply": "554 5.7.1 rejected"}, 554),
])
def test_data_reply(smarthost, kw, code):
    sh = smarthost(**kw)
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
        with pytest.raises(smtplib.SMTPDataError) as ei:
            s.sendmail("a@example.com", ["b@example.com"], MSG)
        assert ei.value.smtp_code == code
    assert sh.messages == []
    assert len(sh.rejected) == 1 and sh.rejected[0].data == MSG


def test_mail_reply(smarthost):
    sh = smarthost(mail_reply="550 5.7.1 sender refused")
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail("a@example.com", ["b@example.com"], MSG)
        assert ei.value.smtp_code == 550
    assert sh.messages == []


def test_drop_after_data(smarthost):
    sh = smarthost(drop_after_data=True)
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.sendmail("a@example.com", ["b@example.com"], MSG)
    assert sh.messages == []
    assert sh.rejected[0].reply is None and sh.rejected[0].data == MSG


def test_connection_count_increments(smarthost):
    sh = smarthost(mode="plain", auth=False)
    assert sh.connections == 0
    for i in range(1, 4):
        with socket.create_connection((sh.host, sh.port), timeout=10) as c:
            c.settimeout(10)
            assert c.recv(1024).startswith(b"220 ")
        assert sh.connections == i
    assert sh.wait_idle(5), "closed connections must be noticed"


def test_commands_logged_with_tls_state(smarthost):
    sh = smarthost()
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
        s.sendmail("a@example.com", ["b@example.com"], MSG)
    assert sh.wait_idle(5)
    assert [(c.verb, c.tls) for c in sh.commands] == [
        ("EHLO", False), ("STARTTLS", False), ("EHLO", True), ("AUTH", True),
        ("MAIL", True), ("RCPT", True), ("DATA", True), ("QUIT", True)]
    assert {c.connection for c in sh.commands} == {1}


def test_untrusted_cert_fails_verification(smarthost, tls_certs):
    sh = smarthost(untrusted_cert=True)
    assert sh.ca_file == tls_certs.untrusted_ca_file
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            s.starttls(context=client_ctx(tls_certs.ca_file))
    # ...while its own CA does verify it.
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))
        s.login("user", "secret")
    assert sh.messages == []


def test_wrong_host_cert_fails_hostname_check(smarthost, tls_certs):
    sh = smarthost(wrong_host_cert=True)
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            s.starttls(context=client_ctx(tls_certs.ca_file))


def test_curl_starttls_auth_exact_bytes(smarthost, tmp_path):
    sh = smarthost()
    msg = tmp_path / "msg.txt"
    msg.write_bytes(MSG)
    r = run_curl(["--url", f"smtp://{sh.hostport}", "--ssl-reqd",
                  "--cacert", sh.ca_file, "--user", "user:secret",
                  "--mail-from", "a@example.com",
                  "--mail-rcpt", "b@example.com", "-T", msg])
    assert r.returncode == 0, r.stderr
    m = sh.messages[0]
    assert (m.mail_from, m.rcpt_tos, m.auth_user, m.tls) == (
        "a@example.com", ["b@example.com"], "user", True)
    assert m.data == MSG


def test_curl_smtps(smarthost, tmp_path):
    sh = smarthost(mode="smtps")
    msg = tmp_path / "msg.txt"
    msg.write_bytes(MSG)
    r = run_curl(["--url", f"smtps://{sh.hostport}", "--cacert", sh.ca_file,
                  "--user", "user:secret", "--mail-from", "a@example.com",
                  "--mail-rcpt", "b@example.com", "-T", msg])
    assert r.returncode == 0, r.stderr
    assert sh.messages[0].data == MSG and sh.messages[0].tls


def test_curl_localhost_name_and_wrong_password(smarthost, tmp_path):
    sh = smarthost()
    msg = tmp_path / "msg.txt"
    msg.write_bytes(MSG)
    base = ["--url", f"smtp://localhost:{sh.port}", "--ssl-reqd",
            "--cacert", sh.ca_file, "--mail-from", "a@example.com",
            "--mail-rcpt", "b@example.com", "-T", msg]
    r = run_curl(base + ["--user", "user:nope"])
    assert r.returncode == 67, r.stderr  # CURLE_LOGIN_DENIED
    assert sh.messages == []


def test_curl_untrusted_cert(smarthost, tls_certs, tmp_path):
    sh = smarthost(untrusted_cert=True)
    msg = tmp_path / "msg.txt"
    msg.write_bytes(MSG)
    r = run_curl(["--url", f"smtp://{sh.hostport}", "--ssl-reqd",
                  "--cacert", tls_certs.ca_file, "--user", "user:secret",
                  "--mail-from", "a@example.com",
                  "--mail-rcpt", "b@example.com", "-T", msg])
    assert r.returncode == 60, r.stderr  # CURLE_PEER_FAILED_VERIFICATION
    assert sh.messages == []
    assert "MAIL" not in sh.verbs()


def test_silent_server_never_answers(silent_server):
    with socket.create_connection((silent_server.host, silent_server.port),
                                  timeout=5) as c:
        c.settimeout(0.5)
        t0 = time.monotonic()
        with pytest.raises(socket.timeout):
            c.recv(1)
        assert time.monotonic() - t0 < 5


def test_closed_port_refuses(closed_port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((closed_port.host, closed_port.port), timeout=5)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_loopback(smarthost):
    sh = smarthost(host="::1")
    assert sh.hostport == f"[::1]:{sh.port}"
    with smtplib.SMTP(sh.host, sh.port, timeout=10) as s:
        s.starttls(context=client_ctx(sh.ca_file))  # IP:::1 SAN verifies
        s.login("user", "secret")
        s.sendmail("a@example.com", ["b@example.com"], MSG)
    assert sh.messages[0].data == MSG
