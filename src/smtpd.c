/*
 * smtpd.c - "-bs": SMTP on stdin/stdout (see smtpd.h).
 *
 * The session is a small state machine: MAIL needs no EHLO (sendmail is
 * lenient here), RCPT needs MAIL, DATA needs a RCPT. The DATA text is
 * dot-unstuffed into an anonymous file and handed to submit() with -i
 * semantics, so headers get the same treatment as on the command line.
 */
#define _GNU_SOURCE
#include "smtpd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "envelope.h"
#include "log.h"
#include "params.h"
#include "submit.h"
#include "util.h"

#define IN_BUF (64 * 1024)

struct session {
	const struct config *cfg;
	int in, out;
	bool verbose;
	char buf[IN_BUF];
	size_t pos, len;
	bool eof;
	bool have_mail;
	char *sender;               /* the envelope sender MAIL FROM gives
	                               (envelope_sender: qualified,
	                               rewritten as its account says) */
	const struct config *account; /* the account it selects */
	struct addr_list rcpts;
	struct params_set params;   /* MAIL's and each RCPT's parameters */
	const char *host;
};

static const struct {
	const char *name;
	enum smtpd_verb verb;
} VERBS[] = {
	{ "HELO", V_HELO }, { "EHLO", V_EHLO }, { "MAIL", V_MAIL },
	{ "RCPT", V_RCPT }, { "DATA", V_DATA }, { "RSET", V_RSET },
	{ "NOOP", V_NOOP }, { "VRFY", V_VRFY }, { "EXPN", V_EXPN },
	{ "HELP", V_HELP }, { "QUIT", V_QUIT }, { "STARTTLS", V_STARTTLS },
	{ "AUTH", V_AUTH },
};

/* ---- parsing (pure) ---- */

static size_t skip_blanks(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

int smtpd_parse_command(const char *line, size_t len, struct smtpd_cmd *cmd)
{
	size_t i, n = 0, end = len;

	memset(cmd, 0, sizeof(*cmd));
	while (n < len && line[n] != ' ' && line[n] != '\t')
		n++;
	for (i = 0; i < sizeof(VERBS) / sizeof(VERBS[0]); i++) {
		if (strlen(VERBS[i].name) == n && str_nieq(line, VERBS[i].name, n))
			cmd->verb = VERBS[i].verb;
	}
	i = skip_blanks(line, n, len);
	if (cmd->verb == V_MAIL || cmd->verb == V_RCPT) {
		const char *kw = cmd->verb == V_MAIL ? "FROM:" : "TO:";
		size_t k = strlen(kw);

		if (len - i < k || !str_nieq(line + i, kw, k))
			return -1;
		i = skip_blanks(line, i + k, len);
	}
	while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	cmd->arg = line + i;
	cmd->arglen = end - i;
	return 0;
}

int smtpd_parse_path(const char *arg, size_t len, char **addr,
                     const char **params, char *err, size_t errlen)
{
	const char *close;
	char *path;
	size_t plen;
	int rc;

	*addr = NULL;
	if (len == 0 || arg[0] != '<') {
		/* lenient: a bare address up to the first blank */
		plen = 0;
		while (plen < len && arg[plen] != ' ' && arg[plen] != '\t')
			plen++;
	} else {
		close = memchr(arg, '>', len);
		if (close == NULL) {
			snprintf(err, errlen, "missing '>' in the path");
			return -1;
		}
		plen = (size_t)(close - arg) + 1;
	}
	if (plen == 0 || (len > 0 && memchr(arg, '\0', len) != NULL)) {
		snprintf(err, errlen, "empty or malformed path");
		return -1;
	}
	path = str_ndup(arg, plen);
	if (path == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = addr_parse_one(path, addr, err, errlen);
	free(path);
	*params = arg + skip_blanks(arg, plen, len);
	return rc;
}

/* ---- I/O ---- */

static void reply(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	if (s->verbose)
		fprintf(stderr, "<- %.*s\n", n, line);
	write_all(s->out, line, (size_t)n + 2);
}

static int fill(struct session *s)
{
	ssize_t n;

	if (s->pos > 0) {
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->pos = 0;
	}
	do {
		n = read(s->in, s->buf + s->len, sizeof(s->buf) - s->len);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		s->eof = true;
		return -1;
	}
	s->len += (size_t)n;
	return 0;
}

/*
 * Read one command line into line (without its end). Returns its length,
 * -1 at EOF, -2 when it was longer than SMTPD_LINE_MAX (then skipped).
 */
static ssize_t read_command(struct session *s, char *line)
{
	bool toolong = false;

	for (;;) {
		char *p = s->buf + s->pos;
		char *nl = memchr(p, '\n', s->len - s->pos);
		size_t n;

		if (nl == NULL) {
			if (s->len - s->pos >= SMTPD_LINE_MAX) {
				toolong = true;
				s->pos = s->len;
			}
			if (fill(s) != 0)
				return -1;
			continue;
		}
		n = (size_t)(nl - p);
		s->pos += n + 1;
		if (toolong || n >= SMTPD_LINE_MAX)
			return -2;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		memcpy(line, p, n);
		line[n] = '\0';
		return (ssize_t)n;
	}
}

/* The DATA text as a message source (message.h): dot-unstuffed, until
 * the lone dot. */
struct data_in {
	struct session *s;
	bool at_start;          /* at the start of a line */
	int end;                /* 0 not yet; 1 the lone dot; -1 EOF first */
};

/*
 * Up to n bytes of the DATA text into buf; 0 after the lone dot; -1
 * (errno ECONNRESET) when the input ends before it, so that nothing of a
 * message cut short is sent or queued.
 */
static ssize_t data_pull(void *arg, void *buf, size_t n)
{
	struct data_in *d = arg;
	struct session *s = d->s;
	size_t out = 0;

	while (out < n && d->end == 0) {
		char *p, *nl;
		size_t avail, k;

		if (s->len - s->pos < 3 && !s->eof)
			fill(s);
		p = s->buf + s->pos;
		avail = s->len - s->pos;
		if (avail == 0) {
			d->end = -1;
			break;
		}
		if (d->at_start && p[0] == '.' && !s->eof &&
		    (avail < 2 || (avail < 3 && p[1] == '\r'))) {
			fill(s);            /* the line end decides what it is */
			continue;
		}
		if (d->at_start && p[0] == '.') {
			if ((avail >= 2 && p[1] == '\n') ||
			    (avail >= 3 && p[1] == '\r' && p[2] == '\n')) {
				s->pos += p[1] == '\n' ? 2 : 3;
				d->end = 1;
				break;
			}
			s->pos++;           /* a stuffed dot */
			d->at_start = false;
			continue;
		}
		nl = memchr(p, '\n', avail);
		k = nl != NULL ? (size_t)(nl - p) + 1 : avail;
		if (k > n - out)
			k = n - out;
		memcpy((char *)buf + out, p, k);
		out += k;
		s->pos += k;
		d->at_start = nl != NULL && k == (size_t)(nl - p) + 1;
	}
	if (out > 0 || d->end >= 0)
		return (ssize_t)out;
	errno = ECONNRESET;
	return -1;
}

/* ---- the session ---- */

static void reset(struct session *s)
{
	free(s->sender);
	s->sender = NULL;
	s->account = NULL;
	addr_list_free(&s->rcpts);
	params_free(&s->params);
	s->have_mail = false;
}

/*
 * The parameters of MAIL (into s->params) or of RCPT (into *notify and
 * *orcpt). 0; or a refusal already sent: -1 (501, a bad value), -2 (555,
 * a parameter outbox does not know).
 */
static int take_params(struct session *s, const char *p, bool mail,
                       unsigned *notify, char **orcpt)
{
	char err[300];
	int rc = 0;

	while (*p != '\0' && rc == 0) {
		size_t n = strcspn(p, " \t");

		rc = mail ? params_mail_word(&s->params, p, n, err, sizeof(err))
		          : params_rcpt_word(notify, orcpt, p, n, err,
		                             sizeof(err));
		p += n;
		p += strspn(p, " \t");
	}
	if (rc == -1)
		reply(s, "501 5.5.4 %s", err);
	else if (rc == -2)
		reply(s, "555 5.5.4 %s", err);
	return rc;
}

/*
 * The envelope sender of MAIL FROM:<addr>, parsed once here: its account
 * (by the address as given) and the sender as that account makes it,
 * kept in the session for the submission. The sender rules of the
 * command line (allow-from) apply to MAIL too.
 */
static int check_sender(struct session *s, const char *addr)
{
	char err[300], *q = NULL;
	char path[1100];
	int rc;

	snprintf(path, sizeof(path), "<%s>", addr);
	s->account = envelope_account(s->cfg, path);
	rc = envelope_sender(s->account, path, &q, err, sizeof(err));
	if (rc == 0)
		s->sender = q;
	else
		free(q);
	if (rc == -2)
		reply(s, "550 5.7.1 %s", err);
	else if (rc != 0)
		reply(s, "501 5.1.7 Bad sender address syntax");
	return rc;
}

static void do_mail(struct session *s, const struct smtpd_cmd *c)
{
	char err[256];
	char *addr = NULL;
	const char *params;
	int rc;

	if (s->have_mail) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtpd_parse_path(c->arg, c->arglen, &addr, &params, err,
	                     sizeof(err)) != 0) {
		reply(s, "501 5.1.7 Bad sender address syntax (%s)", err);
		return;
	}
	params_free(&s->params);
	if (take_params(s, params, true, NULL, NULL) != 0) {
		free(addr);
		params_free(&s->params);
		return;
	}
	rc = check_sender(s, addr);
	free(addr);
	if (rc != 0)
		return;
	s->have_mail = true;
	reply(s, "250 2.1.0 Ok");
}

static void do_rcpt(struct session *s, const struct smtpd_cmd *c)
{
	char err[256];
	char *addr = NULL, *orcpt = NULL;
	const char *params;
	unsigned notify = 0;

	if (!s->have_mail) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->rcpts.count >= SMTPD_RCPT_MAX) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtpd_parse_path(c->arg, c->arglen, &addr, &params, err,
	                     sizeof(err)) != 0 || addr[0] == '\0') {
		free(addr);
		reply(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (take_params(s, params, false, &notify, &orcpt) != 0) {
		free(addr);
		free(orcpt);
		return;
	}
	if (addr_list_add(&s->rcpts, addr) != 0 ||
	    ((notify != 0 || orcpt != NULL) &&
	     params_rcpt_set(&s->params, addr, notify, orcpt) != 0))
		reply(s, "452 4.3.0 Out of memory");
	else
		reply(s, "250 2.1.5 Ok");
	free(addr);
	free(orcpt);
}

/* One line, printable: what a reply may quote from an error text. */
static void tidy(char *t)
{
	for (; *t != '\0'; t++) {
		if ((unsigned char)*t < ' ')
			*t = ' ';
	}
}

static void answer(struct session *s, enum ob_status st,
                   struct submission *sub)
{
	tidy(sub->reply);
	switch (st) {
	case OB_OK:
		reply(s, "250 2.0.0 Ok: %s", sub->reply);
		break;
	case OB_NOUSER:
		if (sub->nok > 0)
			reply(s, "250 2.0.0 Ok, but %zu recipient(s) refused: %s",
			      sub->nrefused, sub->reply);
		else
			reply(s, "550 5.1.1 %s", sub->reply);
		break;
	case OB_UNAVAILABLE:
		reply(s, "554 5.0.0 %s", sub->reply);
		break;
	case OB_DATAERR:
	case OB_USAGE:
		reply(s, "554 5.6.0 %s", sub->reply);
		break;
	default:
		reply(s, "451 4.3.0 %s", sub->reply);
		break;
	}
}

static void do_data(struct session *s)
{
	struct submission sub;
	struct data_in d = { s, true, 0 };
	char rest[4096];
	enum ob_status st;

	if (!s->have_mail || s->rcpts.count == 0) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	memset(&sub, 0, sizeof(sub));
	sub.sender = s->sender;         /* parsed at MAIL */
	sub.account = s->account;
	sub.rcpt_args = s->rcpts.addrs;
	sub.nrcpt_args = s->rcpts.count;
	sub.ignore_dots = true;
	sub.verbose = s->verbose;
	sub.notify_refused = true;
	sub.params = &s->params;
	/* the text goes straight into the spool, written once */
	sub.source = data_pull;
	sub.source_arg = &d;
	st = submit(s->cfg, -1, &sub);
	/* what submit did not read (it failed first): up to the dot */
	while (d.end == 0 && data_pull(&d, rest, sizeof(rest)) >= 0)
		;
	if (d.end < 0)
		return;                 /* EOF: the session ends */
	answer(s, st, &sub);
	reset(s);
}

static void do_ehlo(struct session *s, bool extended)
{
	reset(s);
	if (!extended) {
		reply(s, "250 %s", s->host);
		return;
	}
	reply(s, "250-%s", s->host);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE");
	reply(s, "250-8BITMIME");
	reply(s, "250-DSN");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

/* One command; returns false after QUIT. */
static bool dispatch(struct session *s, const struct smtpd_cmd *c)
{
	switch (c->verb) {
	case V_HELO: do_ehlo(s, false); break;
	case V_EHLO: do_ehlo(s, true); break;
	case V_MAIL: do_mail(s, c); break;
	case V_RCPT: do_rcpt(s, c); break;
	case V_DATA: do_data(s); break;
	case V_RSET: reset(s); reply(s, "250 2.0.0 Ok"); break;
	case V_NOOP: reply(s, "250 2.0.0 Ok"); break;
	case V_VRFY:
		reply(s, "252 2.5.2 Cannot VRFY user, but will accept message");
		break;
	case V_HELP: reply(s, "214 2.0.0 See outbox(8)"); break;
	case V_QUIT: reply(s, "221 2.0.0 Bye"); return false;
	case V_EXPN:
	case V_STARTTLS:
	case V_AUTH:
		reply(s, "502 5.5.1 Error: command not implemented");
		break;
	default:
		reply(s, "500 5.5.2 Error: command not recognized");
		break;
	}
	return true;
}

enum ob_status smtpd_run(const struct config *cfg, int in, int out,
                         bool verbose)
{
	struct session *s = calloc(1, sizeof(*s));
	char line[SMTPD_LINE_MAX + 1];
	struct smtpd_cmd cmd;
	bool more = true;

	if (s == NULL)
		return OB_SOFTWARE;
	s->cfg = cfg;
	s->in = in;
	s->out = out;
	s->verbose = verbose;
	s->host = cfg->helo ? cfg->helo : envelope_domain(cfg);
	reply(s, "220 %s ESMTP outbox", s->host);
	while (more) {
		ssize_t n = read_command(s, line);

		if (n == -1)
			break;
		if (n == -2) {
			reply(s, "500 5.5.2 Error: line too long");
			continue;
		}
		if (verbose)
			fprintf(stderr, "-> %s\n", line);
		if (smtpd_parse_command(line, (size_t)n, &cmd) != 0)
			reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> / "
			      "RCPT TO:<address>");
		else
			more = dispatch(s, &cmd);
	}
	reset(s);
	free(s);
	return OB_OK;
}
