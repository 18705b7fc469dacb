/*
 * smtp_wire.h - a message made fit for one smarthost, from the EHLO
 * keywords it offered: the addresses as they go (non-ASCII domains in
 * ACE form without SMTPUTF8), the MAIL and RCPT parameters (SIZE,
 * SMTPUTF8, BODY, DSN: only what it offered), and the message itself (its
 * 8-bit text re-encoded as quoted-printable without 8BITMIME, see
 * mime_encode_7bit). What
 * cannot go to it (a non-ASCII local part without SMTPUTF8) is refused
 * here with a reply of outbox's own, never sent.
 */
#ifndef OUTBOX_SMTP_WIRE_H
#define OUTBOX_SMTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "params.h"

#define SMTP_WIRE_PARAMS_MAX 1024

struct smtp_wire {
	char *sender;           /* as sent ("" null sender); NULL, and
	                           nothing else prepared, when refused: */
	int sender_code;        /* non-zero: the sender cannot go (550) ... */
	char sender_text[400];  /* ... and why, as a reply line */
	char **rcpts;           /* the recipients that go, as sent ... */
	char **rparams;         /* ... with their parameters (" NOTIFY=x") */
	size_t *map;            /* rcpts[k] is the caller's rcpts[map[k]] */
	size_t n;
	int *code;              /* per caller's recipient: non-zero when */
	char (*text)[256];      /* refused here, with this reply line */
	char params[SMTP_WIRE_PARAMS_MAX]; /* MAIL's (" SIZE=12 BODY=8BITMIME") */
	int fd;                 /* the message as it goes ... */
	off_t size;
	bool own_fd;            /* ... a re-encoded copy (closed by free) */
};

/*
 * Prepare sender, rcpts[0..nrcpt), params (NULL: none) and the message
 * in fd (size bytes) for a server that offered caps (EHLO keywords,
 * ", "-separated). A re-encoding, or an 8-bit message that cannot be
 * re-encoded (with why), is logged. Returns 0, or -1 when out of memory
 * or the message cannot be read or copied (err); free w with
 * smtp_wire_free in both cases.
 */
int smtp_wire_prepare(struct smtp_wire *w, const char *caps,
                      const char *sender, char *const *rcpts, size_t nrcpt,
                      const struct params_set *params, int fd, off_t size,
                      char *err, size_t errlen);

/* Free what w owns (closes a re-encoded copy). */
void smtp_wire_free(struct smtp_wire *w);

/* Is this reply to a MAIL or RCPT that carried parameters a refusal of
 * the parameters (555, or 501 5.5.4)? */
bool smtp_wire_param_fault(int code, const char *text);

#endif
