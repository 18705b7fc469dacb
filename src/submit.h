/*
 * submit.h - taking one message from a client and seeing it through:
 * spool it (in the queue when there is one), build the envelope, deliver
 * it now or queue it, and say what happened. Used by the command line
 * (sendmail mode) and by -bs (each DATA). Queue runs are the runner's
 * (runner.h).
 */
#ifndef OUTBOX_SUBMIT_H
#define OUTBOX_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "message.h"
#include "params.h"
#include "store.h"
#include "status.h"

struct submission {
	/* in */
	const char *sender_arg;     /* -f as given, or NULL */
	const char *sender;         /* or the envelope sender already worked
	                               out (envelope_sender for account: -bs
	                               parses MAIL FROM once), else NULL */
	const struct config *account; /* with sender: its account */
	char **rcpt_args;           /* recipients as given (address lists) */
	size_t nrcpt_args;
	bool extract_rcpts;         /* -t */
	bool ignore_dots;           /* -i */
	const char *fullname;       /* -F */
	enum cli_delivery delivery;
	bool verbose;               /* -v: the SMTP dialogue on stderr */
	FILE *errors;               /* where refusals are printed, or NULL */
	bool notify_refused;        /* -bs: when the message went to some
	                               recipients and others were refused,
	                               the sender gets a DSN about them */
	message_source source;      /* where the message comes from instead
	                               of in_fd (-bs: the DATA text), or NULL */
	void *source_arg;
	const struct params_set *params; /* DSN and BODY, or NULL: none. Its
	                               recipients' own entries name them as
	                               given (rcpt_args); each address they
	                               become (aliases, qualification) gets
	                               them */
	/* out */
	char id[STORE_ID_LEN + 1];  /* queue ID, or "NOQUEUE" */
	bool queued;                /* the message (or part) is in the queue */
	size_t nok;                 /* recipients delivered or queued */
	size_t nrefused;            /* recipients refused for good */
	char reply[700];            /* one line: the outcome or the error */
};

/*
 * Read a message from in_fd and hand it on as s describes. Returns
 * OB_OK when the smarthost accepted it for every recipient or it is
 * durably queued; OB_NOUSER when some recipient was refused (the others
 * were delivered or queued); otherwise the failure (nothing delivered,
 * nothing queued). s->reply always says what happened in one line;
 * with s->errors set, each failure is also printed there.
 */
enum ob_status submit(const struct config *cfg, int in_fd,
                      struct submission *s);

/*
 * -bv: what submit would do with the message, sending nothing. With
 * s->extract_rcpts (-t) the message is read from in_fd, else none is,
 * with its fields rewritten as for sending, and printed to out: its From
 * field as it will go ("header From: ..."; without -t, the one outbox
 * adds to a message that has none), the envelope sender, then each
 * recipient after aliases and qualification ("ADDR... deliverable: via
 * smarthost HOST"). Returns OB_OK; OB_USAGE for a bad sender or no
 * recipient; OB_NOPERM (allow-from); OB_DATAERR for a bad address;
 * OB_CONFIG when the aliases file fails; with s->errors set, the reason
 * is printed there (and is in s->reply).
 */
enum ob_status submit_verify(const struct config *cfg, int in_fd,
                             struct submission *s, FILE *out);

#endif
