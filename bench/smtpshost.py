#!/usr/bin/python3
"""bench/smtpshost.py - tests/smarthost.py (imported, unchanged) for
--mode smtps with AUTH offered: aiosmtpd does not see that an implicit-TLS
session is encrypted, so tests/smarthost.py's smtps mode offers no AUTH
(auth_require_tls). Here AUTH is allowed without aiosmtpd's own STARTTLS;
use it with --mode smtps only, where the whole session is TLS. Same
arguments as tests/smarthost.py; loopback only.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import smarthost  # noqa: E402  (tests/smarthost.py)
from aiosmtpd.smtp import SMTP  # noqa: E402

if "--mode" not in sys.argv or \
        sys.argv[sys.argv.index("--mode") + 1:][:1] != ["smtps"]:
    sys.exit("smtpshost.py: --mode smtps only")


def smtp_tls_session(*a, **kw):
    kw["auth_require_tls"] = False      # the session is TLS from its start
    return SMTP(*a, **kw)


smarthost.SMTP = smtp_tls_session

if __name__ == "__main__":
    sys.exit(smarthost.main())
