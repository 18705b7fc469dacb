/*
 * check.h - outbox --check: try every configured smarthost the way a
 * delivery would (connect, TLS, certificate, EHLO, AUTH) without sending
 * mail, and say what was found and which step failed.
 */
#ifndef OUTBOX_CHECK_H
#define OUTBOX_CHECK_H

#include <stdio.h>

#include "config.h"
#include "status.h"

/*
 * Check every smarthost of every account of cfg in turn, or of the
 * account only alone (when not NULL; --account) (the default account
 * first; with named accounts, each block of hosts under a line "account
 * NAME:"), printing a block per host to out and, for each failure, one
 * line "outbox: check: [account NAME: ]HOST:PORT: STEP failed: WHY" to
 * stderr. Returns OB_OK when every smarthost passed, else the kind of
 * the last failure (OB_NOPERM for AUTH, OB_TEMPFAIL otherwise).
 */
enum ob_status check_run(const struct config *only, const struct config *cfg,
                         FILE *out);

#endif
