"""A refusal does not cost the connection; a "too many" reply pauses the
smarthost for the run (issue 15).

Contract under test (outbox(8) DELIVERY and THE QUEUE, src/smtp.c,
src/deliver.c):
  * A message refused at MAIL FROM, at every RCPT TO, at DATA (before the
    body) or after the final dot, 4xx or 5xx, leaves the connection in use:
    outbox resets the transaction (RSET) and the next message of the same
    queue run goes over the same connection, with no new TCP connection,
    STARTTLS or AUTH.  The refused message is deferred (4xx) or bounced
    (5xx) exactly as before.  After 8 refusals in a row with no message
    accepted, the next message takes a new session (Postfix slows a
    session down after 10 errors); so does one after a 421, or after the
    server closed the idle connection.
  * A reply that means "too many" (421 4.3.2; 450/451 with 4.7.x; 452
    4.5.3) pauses that smarthost for the rest of the run, logged once: the
    messages not yet sent stay due and untouched (attempts unchanged), and
    the server sees no further MAIL.  A direct send that meets it queues
    the message (exit 0).

The smarthost is the aiosmtpd fixture (conftest.py), counting connections;
its MAIL, DATA and end-of-data answers are chosen per message here.
"""

import time
from collections import Counter

import pytest

from test_queue import (describe, files, is_null_sender, message, qconfig,
                        queued_ids, read_env, subjects)

EX_OK = 0
SENDER = "sender@example.com"
RCPT = "rcpt@example.com"
N = 3           # refused messages per case: at most 6 refusals in a row

# Senders and subjects the fixture refuses, by case.
REFUSED_SENDER = "refused@example.com"
DATA_SENDER = "nodata@example.com"
FINAL_SUBJECT = "refused after the dot"


def refuse_mail_from(sh, sender, reply):
    """MAIL FROM:<sender> gets reply; other senders as usual."""
    orig = sh._handler.handle_MAIL

    async def handle_MAIL(server, session, envelope, address, options):
        if address.lower() == sender:
            return reply
        return await orig(server, session, envelope, address, options)
    sh._handler.handle_MAIL = handle_MAIL


def refuse_data_from(sh, sender, reply):
    """DATA in a transaction from sender gets reply instead of 354."""
    base = sh._smtp_class

    async def smtp_DATA(self, arg):
        if (self.envelope.mail_from or "").lower() == sender:
            await self.push(reply)
            return
        await base.smtp_DATA(self, arg)
    sh._smtp_class = type("RefusingDataSMTP", (base,),
                          {"smtp_DATA": smtp_DATA})


def refuse_final_for(sh, subject, reply):
    """The reply after the final dot is reply for messages with subject."""
    orig = sh._handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        head = bytes(envelope.original_content or b"").split(b"\r\n\r\n")[0]
        sh.data_reply = reply if f"Subject: {subject}".encode() in head \
            else None
        return await orig(server, session, envelope)
    sh._handler.handle_DATA = handle_DATA


# case -> (how the fixture refuses, the -f sender, the recipients, subject)
CASES = {
    "mail-5xx": ("mail", "550 5.7.1 sender refused", REFUSED_SENDER,
                 [RCPT]),
    "mail-4xx": ("mail", "451 4.3.0 sender check failed, try later",
                 REFUSED_SENDER, [RCPT]),
    "rcpt-5xx": ("rcpt", None, SENDER,
                 ["bad@example.com", "bad2@example.com"]),
    "rcpt-4xx": ("rcpt", None, SENDER, ["later@example.com"]),
    "data-5xx": ("data", "554 5.7.1 no DATA from you", DATA_SENDER, [RCPT]),
    "data-4xx": ("data", "451 4.3.0 DATA later", DATA_SENDER, [RCPT]),
    "final-5xx": ("final", "554 5.6.0 content refused", SENDER, [RCPT]),
    "final-4xx": ("final", "451 4.3.0 queue full, later", SENDER, [RCPT]),
}


def make_server(smarthost, case, pipelining=False):
    how, reply, _, _ = CASES[case]
    sh = smarthost(rcpt_replies={
        "bad@example.com": "550 5.1.1 no such user",
        "bad2@example.com": "553 5.1.3 bad address",
        "later@example.com": "451 4.3.0 try later",
    }, ehlo_extra=["PIPELINING"] if pipelining else [])
    if how == "mail":
        refuse_mail_from(sh, REFUSED_SENDER, reply)
    elif how == "data":
        refuse_data_from(sh, DATA_SENDER, reply)
    elif how == "final":
        refuse_final_for(sh, FINAL_SUBJECT, reply)
    return sh


def enqueue(outbox, config, sender, rcpts, subject):
    r = outbox.run(["-odq", "-f", sender, *rcpts], message(subject),
                   config=config, timeout=30)
    assert r.returncode == EX_OK, describe(r)


@pytest.mark.parametrize("pipelining", [False, True],
                         ids=["one-by-one", "pipelined"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_messages_share_one_connection(outbox, smarthost, tmp_path,
                                               case, pipelining):
    how, reply, sender, rcpts = CASES[case]
    sh = make_server(smarthost, case, pipelining)
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    subject = FINAL_SUBJECT if how == "final" else "refused {}"
    for i in range(N):
        enqueue(outbox, config, sender, rcpts, subject.format(i))
    for i in range(2):
        enqueue(outbox, config, SENDER, [RCPT], f"good {i}")
    assert len(queued_ids(qdir)) == N + 2

    r = outbox.run(["-q", "-v"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    log = (tmp_path / "o.log").read_text()
    permanent = (reply or {"rcpt-5xx": "5", "rcpt-4xx": "4"}[case])[0] == "5"

    # the good messages went through, over the connection the refusals used
    got = subjects(sh)
    assert got["good 0"] == 1 and got["good 1"] == 1, (got, log)
    conns = Counter(c.connection for c in sh.commands)
    assert sh.connections == 1, (
        f"{case}: {sh.connections} connections for one queue run: "
        f"{dict(conns)}\n{log}")
    verbs = sh.verbs()
    assert verbs.count("STARTTLS") == 1 and verbs.count("AUTH") == 1, verbs
    if how != "final":
        # the transaction was reset (after the final reply it is over)
        assert "RSET" in verbs, verbs
    if permanent:
        # bounced: each refused message moved to failed/ with its DSN sent
        assert queued_ids(qdir) == [], files(qdir / "msg")
        assert len([f for f in files(qdir / "failed")
                    if f.endswith(".env")]) == N
        dsn = [m for m in sh.messages if is_null_sender(m)]
        assert len(dsn) == N, (len(dsn), log)
    else:
        left = queued_ids(qdir)
        assert len(left) == N, (left, log)
        for qid in left:
            env = read_env(qdir / "msg" / f"{qid}.env")
            assert env["attempts"] == "1", env
            assert env["last-error"].strip(), env
        assert not [m for m in sh.messages if is_null_sender(m)]
    assert len(sh.messages) == 2 + (N if permanent else 0), sh.messages


@pytest.mark.parametrize("pipelining", [False, True],
                         ids=["one-by-one", "pipelined"])
def test_refusal_then_acceptance_in_one_message_run(outbox, smarthost,
                                                    tmp_path, pipelining):
    """Refusals of every kind, 7 of them (fewer than the 8 in a row that
    make outbox open a new session), interleaved with good messages and
    messages refused only for some recipients, in one run: one connection;
    each good message arrives once."""
    sh = smarthost(rcpt_replies={"bad@example.com": "550 5.1.1 no such user"},
                   ehlo_extra=["PIPELINING"] if pipelining else [])
    refuse_mail_from(sh, REFUSED_SENDER, "553 5.7.1 not yours")
    refuse_data_from(sh, DATA_SENDER, "554 5.7.1 no DATA from you")
    refuse_final_for(sh, FINAL_SUBJECT, "550 5.7.1 spam")
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    for i in range(2):
        enqueue(outbox, config, REFUSED_SENDER, [RCPT], f"from {i}")
        enqueue(outbox, config, SENDER, ["bad@example.com"], f"to {i}")
        enqueue(outbox, config, DATA_SENDER, [RCPT], f"data {i}")
        if i == 0:
            enqueue(outbox, config, SENDER, [RCPT], FINAL_SUBJECT)
        enqueue(outbox, config, SENDER, [RCPT, "bad@example.com"],
                f"partly {i}")
        enqueue(outbox, config, SENDER, [RCPT], f"good {i}")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    assert sh.connections == 1, (tmp_path / "o.log").read_text()
    got = subjects(sh)
    for i in range(2):
        assert got[f"good {i}"] == 1 and got[f"partly {i}"] == 1, got
    partly = [m for m in sh.messages
              if m.mail_from == SENDER and b"Subject: partly" in m.data]
    assert all(m.rcpt_tos == [RCPT] for m in partly), partly
    # 7 refused messages, each bounced, and the partly ones for bad@
    assert len([m for m in sh.messages if is_null_sender(m)]) == 9
    assert queued_ids(qdir) == []


def test_eight_refusals_in_a_row_take_a_new_session(outbox, smarthost,
                                                   tmp_path):
    """17 messages refused one after the other: sessions of 8 refusals
    (Postfix would slow down every reply after 10 errors without a message
    accepted), each ended with QUIT; the third carries the last refusal
    and the DSNs."""
    sh = smarthost(rcpt_replies={"bad@example.com": "550 5.1.1 no"})
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    for i in range(17):
        enqueue(outbox, config, SENDER, ["bad@example.com"], f"bad {i}")
    r = outbox.run(["-v", "-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    per_conn = Counter(c.connection for c in sh.commands if c.verb == "RCPT")
    assert sh.connections == 3, per_conn
    assert [per_conn[1], per_conn[2]] == [8, 8], per_conn
    # QUIT goes out without waiting for the 221; aiosmtpd, which drops
    # what it has not read when TLS closes, may not see it: count it sent
    assert r.stderr.count(b"-> QUIT\n") == 3, describe(r)
    assert len([m for m in sh.messages if is_null_sender(m)]) == 17


def test_server_closing_between_messages_costs_nothing(outbox, smarthost,
                                                       tmp_path):
    """The server closes the connection right after each accepted message
    (as after an idle timeout): the next message notices, before or at
    its MAIL, and goes over a new connection; nothing is deferred."""
    sh = smarthost()
    orig = sh._handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        reply = await orig(server, session, envelope)
        server.loop.call_soon(server.transport.close)
        return reply
    sh._handler.handle_DATA = handle_DATA
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    for i in range(5):
        enqueue(outbox, config, SENDER, [RCPT], f"closing {i}")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    assert sorted(subjects(sh)) == [f"closing {i}" for i in range(5)]
    assert queued_ids(qdir) == [], (tmp_path / "o.log").read_text()
    assert sh.connections == 5


def test_multiline_refusal_keeps_the_connection(outbox, smarthost, tmp_path):
    multi = "550-5.1.1 no such user here\r\n550 5.1.1 nor anywhere else"
    sh = smarthost(rcpt_replies={"multi@example.com": multi})
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    enqueue(outbox, config, SENDER, ["multi@example.com"], "multi")
    enqueue(outbox, config, SENDER, [RCPT], "after multi")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    assert sh.connections == 1
    (failed,) = [f for f in files(qdir / "failed") if f.endswith(".env")]
    err = read_env(qdir / "failed" / failed)["last-error"]
    assert "no such user here" in err and "nor anywhere else" in err, err
    assert subjects(sh)["after multi"] == 1

# ---------------------------------------------------------------------------
# "too many": the smarthost is paused for the rest of the run
# ---------------------------------------------------------------------------

def throttle_mail_after(sh, k, reply):
    """The first k MAIL commands are taken; every later one gets reply."""
    orig = sh._handler.handle_MAIL
    seen = {"mail": 0}

    async def handle_MAIL(server, session, envelope, address, options):
        seen["mail"] += 1
        if seen["mail"] > k:
            return reply
        return await orig(server, session, envelope, address, options)
    sh._handler.handle_MAIL = handle_MAIL


def envelopes(qdir):
    return {qid: (qdir / "msg" / f"{qid}.env").read_text()
            for qid in queued_ids(qdir)}


LIMIT_REPLIES = [
    ("421 4.3.2 Too many messages for this session", True),
    # Postfix's smtpd_hard_error_limit: only this session is done for
    ("421 4.7.0 Error: too many errors", False),
    ("450 4.7.1 Rate limit exceeded, slow down", True),
    ("451 4.7.1 Too many messages per hour", True),
    ("451 4.3.0 Temporary lookup failure", False),   # not a limit
]


@pytest.mark.parametrize("reply,limit", LIMIT_REPLIES,
                         ids=[r.split()[0] + "-" + r.split()[1]
                              for r, _ in LIMIT_REPLIES])
def test_too_many_pauses_the_smarthost_for_the_run(outbox, smarthost,
                                                   tmp_path, reply, limit):
    k, n = 3, 10
    sh = smarthost()
    throttle_mail_after(sh, k, reply)
    log = tmp_path / "o.log"
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(log))
    for i in range(n):
        enqueue(outbox, config, SENDER, [RCPT], f"limited {i}")
    before = envelopes(qdir)
    assert len(before) == n

    r = outbox.run(["-q", "-v"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    text = log.read_text()
    assert len(sh.messages) == k, text
    after = envelopes(qdir)
    assert set(after) <= set(before) and len(after) == n - k
    mails = sh.verbs().count("MAIL")
    if limit:
        # one MAIL met the limit, then no more; nothing else was touched
        assert mails == k + 1, (mails, text)
        assert after == {q: before[q] for q in after}, text
        paused = [ln for ln in text.splitlines() if "paused" in ln]
        assert len(paused) == 1, text
        assert reply.split(" ", 2)[2] in paused[0], paused
        assert f"{n - k} not tried (smarthost down)" in r.stderr.decode()
    else:
        # an ordinary temporary refusal: every message is tried and
        # deferred, over the one connection (after 421, a new one each)
        assert mails == n, (mails, text)
        assert sh.connections == (n - k if reply[:3] == "421" else 1)
        for qid in after:
            assert read_env(qdir / "msg" / f"{qid}.env")["attempts"] == "1"
        assert "paused" not in text


@pytest.mark.parametrize("pipelining", [False, True],
                         ids=["one-by-one", "pipelined"])
def test_too_many_recipients_pauses_after_the_accepted_ones(outbox,
                                                            smarthost,
                                                            tmp_path,
                                                            pipelining):
    """452 4.5.3 at the third RCPT: the first two get the message, the
    rest of its recipients are not even tried (under pipelining: sent
    with the others and refused alike) and stay queued; the next messages
    wait for the next run."""
    rcpts = [f"r{i}@example.com" for i in range(5)]
    sh = smarthost(rcpt_replies={
        "r2@example.com": "452 4.5.3 Too many recipients",
        "r3@example.com": "452 4.5.3 Too many recipients",
        "r4@example.com": "452 4.5.3 Too many recipients"},
        ehlo_extra=["PIPELINING"] if pipelining else [])
    log = tmp_path / "o.log"
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(log))
    enqueue(outbox, config, SENDER, rcpts, "many rcpts")
    (first,) = queued_ids(qdir)
    for i in range(3):
        enqueue(outbox, config, SENDER, [RCPT], f"after {i}")
    before = envelopes(qdir)

    # -qI: the many-recipient message first, then the others, in one run
    others = sorted(q for q in before if q != first)
    r = outbox.run(["-qI", first, *others], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    text = log.read_text()
    assert [m.rcpt_tos for m in sh.messages] == [rcpts[:2]], text
    rcpt_args = [c.arg for c in sh.commands if c.verb == "RCPT"]
    # one by one, r3 and r4 are never sent
    assert len(rcpt_args) == (5 if pipelining else 3), rcpt_args
    env = read_env(qdir / "msg" / f"{first}.env")
    assert env["rcpt"] == [f"<{a}>" for a in rcpts[2:]], env
    assert "452 4.5.3" in env["last-error"], env
    after = envelopes(qdir)
    assert {q: after[q] for q in others} == {q: before[q] for q in others}
    assert sh.verbs().count("MAIL") == 1
    assert len([ln for ln in text.splitlines() if "paused" in ln]) == 1


def test_direct_send_meeting_a_limit_is_queued(outbox, smarthost, tmp_path):
    sh = smarthost()
    throttle_mail_after(sh, 0, "421 4.3.2 Too many connections from you")
    config, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-f", SENDER, RCPT], message("direct"), config=config)
    assert r.returncode == EX_OK, describe(r)
    assert b"queued" in r.stderr and b"421 4.3.2" in r.stderr, r.stderr
    assert len(queued_ids(qdir)) == 1 and sh.messages == []


def test_limited_smarthost_fails_over_to_the_next(outbox, smarthost,
                                                  tmp_path):
    """The first smarthost pauses after 2 messages; the second carries the
    rest in the same run, each over one connection."""
    a, b = smarthost(), smarthost()
    throttle_mail_after(a, 2, "451 4.7.1 Sending rate exceeded")
    log = tmp_path / "o.log"
    config, qdir = qconfig(outbox, tmp_path, a, log=str(log),
                           extra_lines=[f"smarthost {b.hostport}"])
    for i in range(8):
        enqueue(outbox, config, SENDER, [RCPT], f"over {i}")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert a.wait_idle(10) and b.wait_idle(10)
    text = log.read_text()
    assert len(a.messages) == 2 and len(b.messages) == 6, text
    assert a.verbs().count("MAIL") == 3, text
    assert a.connections == 1 and b.connections == 1
    assert queued_ids(qdir) == []


def test_limited_forever_still_expires(outbox, smarthost, tmp_path):
    """A message past queue-lifetime whose smarthost only ever answers
    "too many" is given up (moved to failed/, its DSN queued), not kept
    untouched for ever."""
    sh = smarthost()
    throttle_mail_after(sh, 0, "451 4.7.1 Too many messages, slow down")
    # 3 s, not 1: the DSN made in the run must not itself expire in it
    # (ages are whole seconds: with 1 s, a DSN made at x.99 and tried at
    # y.01 was 1 s old; a sanitizer build on a busy disk got there)
    config, qdir = qconfig(outbox, tmp_path, sh, queue_lifetime="3s",
                           log=str(tmp_path / "o.log"))
    enqueue(outbox, config, SENDER, [RCPT], "never sent")
    (qid,) = queued_ids(qdir)
    time.sleep(3.2)
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    text = (tmp_path / "o.log").read_text()
    assert files(qdir / "failed") == sorted([f"{qid}.data", f"{qid}.env"])
    assert "expired" in text, text
    (dsn,) = queued_ids(qdir)          # the DSN waits: the host is paused
    assert dsn != qid and sh.messages == []
