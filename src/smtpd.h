/*
 * smtpd.h - "-bs": an SMTP dialogue on stdin/stdout (what PHP mailers
 * such as Symfony Mailer speak to sendmail). Each message goes through
 * submit(), the same path as the command line; 250 is answered only once
 * the smarthost accepted the message or it is queued.
 */
#ifndef OUTBOX_SMTPD_H
#define OUTBOX_SMTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "status.h"

#define SMTPD_LINE_MAX 2048     /* a command line, CRLF included */
#define SMTPD_RCPT_MAX 1000

enum smtpd_verb {
	V_UNKNOWN = 0, V_HELO, V_EHLO, V_MAIL, V_RCPT, V_DATA, V_RSET,
	V_NOOP, V_VRFY, V_EXPN, V_HELP, V_QUIT, V_STARTTLS, V_AUTH
};

struct smtpd_cmd {
	enum smtpd_verb verb;
	const char *arg;        /* after the verb (and "FROM:"/"TO:"), trimmed */
	size_t arglen;
};

/*
 * Parse one command line (without its line end). Pure. Returns 0 and
 * fills cmd, or -1 for a syntax error in MAIL/RCPT (missing FROM:/TO:).
 * An unknown verb yields V_UNKNOWN and 0.
 */
int smtpd_parse_command(const char *line, size_t len, struct smtpd_cmd *cmd);

/*
 * Split a MAIL/RCPT argument into the path and its parameters: on success
 * *addr is a malloc'd addr-spec ("" for "<>"), *params points into arg
 * (may be empty). Returns 0, or -1 with a reason in err.
 */
int smtpd_parse_path(const char *arg, size_t len, char **addr,
                     const char **params, char *err, size_t errlen);

/* Run the dialogue on fds in/out until QUIT or EOF. OB_OK, or OB_SOFTWARE
 * when the session could not run (main maps it to an exit code; each
 * message's outcome went to the client as a reply). */
enum ob_status smtpd_run(const struct config *cfg, int in, int out,
                         bool verbose);

#endif
