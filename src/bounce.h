/*
 * bounce.h - delivery status notifications (RFC 3464) for the sender of a
 * message that could not be delivered.
 */
#ifndef OUTBOX_BOUNCE_H
#define OUTBOX_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "params.h"

struct bounce_rcpt {
	const char *addr;       /* the recipient that failed */
	const char *diag;       /* the last error for it (server reply) */
};

struct bounce_info {
	const char *sender;     /* who gets the DSN (original envelope sender) */
	const char *domain;     /* for From: MAILER-DAEMON@domain, Message-ID */
	const char *from;       /* the From address instead, or NULL
	                           (from-header: envelope_dsn_from) */
	const char *host;       /* Reporting-MTA */
	const char *id;         /* queue ID of the original */
	time_t arrival;
	bool expired;           /* queue-lifetime reached (vs. refused) */
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	/* the original's DSN requests, or NULL: ENVID becomes
	 * Original-Envelope-Id, a recipient's ORCPT Original-Recipient, and
	 * RET=FULL returns the whole message (else only its headers) */
	const struct params_set *params;
};

/*
 * Write a complete DSN message (CRLF lines: headers, a text part, a
 * message/delivery-status part, and the original's header section as
 * text/rfc822-headers, read from datafd from offset 0, at most 64 KiB;
 * with RET=FULL the whole original as message/rfc822) to fd out.
 * Returns 0, or -1 when reading or writing fails. Which recipients get
 * a DSN at all (NOTIFY) is the caller's choice: params_wants_failure.
 */
int bounce_write(int out, int datafd, const struct bounce_info *b);

#endif
