/*
 * smtp_xact.c - one SMTP mail transaction over libcurl's connection (see
 * smtp_xact.h).
 *
 * Bytes go through curl_easy_send/curl_easy_recv, so TLS (and a proxy)
 * stay libcurl's business; waiting is poll(2) on libcurl's socket, always
 * after libcurl said CURLE_AGAIN (GnuTLS may hold decrypted bytes that
 * the socket no longer shows). The message is dot-stuffed the way libcurl
 * does it: a "." that starts a line (after CRLF, or first in the message)
 * is doubled, and the end is ".\r\n", preceded by CRLF when the message
 * does not end with one.
 */
#define _POSIX_C_SOURCE 200809L
#include "smtp_xact.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Lines in one reply before it counts as nonsense. */
#define REPLY_LINES_MAX 200
/* Message bytes read at a time (the stuffed copy is at most twice that). */
#define BODY_CHUNK 16384
/* Commands sent at a time under PIPELINING, and their bytes at most. */
#define BATCH_LINES 64
#define BATCH_BYTES 16384

/* The commands of one transaction. */
struct xact_cmds {
	const char *sender;
	const char *mail_tail;  /* ">" and the MAIL parameters */
	char *const *rcpts;
	size_t nrcpt;
};

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The connection is done for: say why (what, and detail when not NULL).
 * Returns -1. */
static int broken(struct xact *x, CURLcode rc, const char *what,
                  const char *detail)
{
	x->usable = false;
	x->rc = rc;
	snprintf(x->err, sizeof(x->err), "%.60s%s%.180s", what,
	         detail ? ": " : "", detail ? detail : "");
	return -1;
}

/* Wait until the socket is readable (events POLLIN) or writable, at
 * most until deadline. 0, or -1 when the time is up. */
static int wait_for(struct xact *x, short events, long deadline)
{
	struct pollfd p = { .fd = x->sock, .events = events };
	char what[64];
	int r;

	do {
		long left = deadline - now_ms();

		if (left <= 0) {
			snprintf(what, sizeof(what), "the server did not "
			         "respond for %ld s", x->timeout);
			return broken(x, CURLE_OPERATION_TIMEDOUT, what, NULL);
		}
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
	} while (r == 0 || (r < 0 && errno == EINTR));
	return r < 0 ? broken(x, CURLE_RECV_ERROR, "poll", strerror(errno))
	             : 0;
}

static int send_all(struct xact *x, const char *buf, size_t len)
{
	long deadline = now_ms() + x->timeout * 1000;

	while (len > 0) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(x->curl, buf, len, &n);

		if (rc == CURLE_AGAIN) {
			if (wait_for(x, POLLOUT, deadline) != 0)
				return -1;
			continue;
		}
		if (rc != CURLE_OK)
			return broken(x, rc, "cannot send to the server",
			              curl_easy_strerror(rc));
		buf += n;
		len -= n;
		deadline = now_ms() + x->timeout * 1000;   /* progress */
	}
	return 0;
}

/* Read more into x->in, waiting at most until deadline. */
static int fill(struct xact *x, long deadline)
{
	for (;;) {
		size_t n = 0;
		CURLcode rc = curl_easy_recv(x->curl, x->in + x->inlen,
		                             sizeof(x->in) - x->inlen, &n);

		if (rc == CURLE_OK && n == 0)
			return broken(x, CURLE_RECV_ERROR,
			              "the server closed the connection", NULL);
		if (rc == CURLE_OK) {
			x->inlen += n;
			return 0;
		}
		if (rc != CURLE_AGAIN)
			return broken(x, rc, "cannot read from the server",
			              curl_easy_strerror(rc));
		if (wait_for(x, POLLIN, deadline) != 0)
			return -1;
	}
}

/* One line (without CRLF) into line; *n its length. */
static int read_line(struct xact *x, char *line, size_t *n, long deadline)
{
	for (;;) {
		char *nl = memchr(x->in, '\n', x->inlen);

		if (nl != NULL) {
			size_t len = (size_t)(nl - x->in);
			size_t take = len + 1;

			if (len > 0 && x->in[len - 1] == '\r')
				len--;
			memcpy(line, x->in, len);
			*n = len;
			memmove(x->in, x->in + take, x->inlen - take);
			x->inlen -= take;
			return 0;
		}
		if (x->inlen == sizeof(x->in))
			return broken(x, CURLE_WEIRD_SERVER_REPLY, "protocol "
			              "error: a reply line too long", NULL);
		if (fill(x, deadline) != 0)
			return -1;
	}
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Read one whole reply (its lines go to the hooks when report); x->code
 * is its code and last its final line. After 421 the server closes the
 * connection. */
static int read_reply_as(struct xact *x, char *last, size_t lastsize,
                         bool report)
{
	long deadline = now_ms() + x->timeout * 1000;
	char line[XACT_LINE_MAX];
	size_t n = 0, lines;

	for (lines = 0; lines < REPLY_LINES_MAX; lines++) {
		if (read_line(x, line, &n, deadline) != 0)
			return -1;
		if (report)
			x->hooks.reply(x->hooks.arg, line, n);
		if (n >= 3 && is_digit(line[0]) && is_digit(line[1]) &&
		    is_digit(line[2]) && (n == 3 || line[3] == ' ')) {
			x->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			          (line[2] - '0');
			x->nreplies++;
			if (x->code == 421)
				x->usable = false;
			snprintf(last, lastsize, "%.*s", (int)n, line);
			return 0;
		}
	}
	return broken(x, CURLE_WEIRD_SERVER_REPLY, "protocol error: no end "
	              "to the server's reply", NULL);
}

static int read_reply(struct xact *x, char *last, size_t lastsize)
{
	return read_reply_as(x, last, lastsize, true);
}

/* verb + arg + tail into buf (size XACT_LINE_MAX), without CRLF. A CR or
 * LF inside, or a line too long, is refused before anything is sent:
 * -1. Else its length. */
static int format_command(struct xact *x, char *buf, const char *verb,
                          const char *arg, const char *tail)
{
	int n = snprintf(buf, XACT_LINE_MAX - 2, "%s%s%s", verb, arg, tail);

	if (n < 0 || (size_t)n >= XACT_LINE_MAX - 2 ||
	    strpbrk(buf, "\r\n") != NULL) {
		/* nothing went out, but a transaction may be open */
		x->usable = false;
		x->rc = CURLE_BAD_FUNCTION_ARGUMENT;
		snprintf(x->err, sizeof(x->err), "not sent: an address or "
		         "parameter too long or with a line break");
		return -1;
	}
	return n;
}

/* Send verb + arg + tail + CRLF (reported to the hooks without the
 * CRLF). */
static int command(struct xact *x, const char *verb, const char *arg,
                   const char *tail)
{
	char buf[XACT_LINE_MAX];
	int n = format_command(x, buf, verb, arg, tail);

	if (n < 0)
		return -1;
	x->hooks.command(x->hooks.arg, buf, (size_t)n);
	memcpy(buf + n, "\r\n", 2);
	return send_all(x, buf, (size_t)n + 2);
}

/* The dot-stuffed message and the final dot. */
static int send_body(struct xact *x, int fd)
{
	static const char dot[] = "\r\n.\r\n";
	char in[BODY_CHUNK], out[2 * BODY_CHUNK + sizeof(dot)];
	int crlf = 2;           /* 2: at the start of a line, 1: after CR */
	ssize_t n, i, end;
	size_t k = 0;           /* stuffed bytes in out, not yet sent */
	const char *tail;

	for (;;) {
		do {
			n = read(fd, in, sizeof(in));
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			x->read_errno = errno;
			return broken(x, CURLE_READ_ERROR, "cannot read the "
			              "spooled message", strerror(errno));
		}
		if (n == 0)
			break;
		if (k > 0 && send_all(x, out, k) != 0)
			return -1;
		/* a line at a time: a dot that starts one is doubled */
		for (i = 0, k = 0; i < n; i = end) {
			const char *nl = memchr(in + i, '\n', (size_t)(n - i));

			end = nl != NULL ? nl - in + 1 : n;
			if (in[i] == '.' && crlf == 2)
				out[k++] = '.';
			memcpy(out + k, in + i, (size_t)(end - i));
			k += (size_t)(end - i);
			if (nl == NULL)
				crlf = in[n - 1] == '\r' ? 1 : 0;
			else
				crlf = (end - i >= 2 ? in[end - 2] == '\r'
				                     : crlf == 1) ? 2 : 0;
		}
	}
	/* the final dot goes with the last bytes: one write, one record */
	tail = crlf == 2 ? dot + 2 : dot;
	memcpy(out + k, tail, strlen(tail));
	return send_all(x, out, k + strlen(tail));
}

/* RSET, unless the server is closing (after 421); x->code is kept. */
static void reset(struct xact *x)
{
	int code = x->code;
	char last[XACT_LINE_MAX];

	if (x->usable && (command(x, "RSET", "", "") != 0 ||
	                  read_reply(x, last, sizeof(last)) != 0 ||
	                  x->code / 100 != 2))
		x->usable = false;
	x->code = code;
}

/* A refusal: the transaction is reset. what is "MAIL failed: %d"-like. */
static enum xact_end refused(struct xact *x, const char *what)
{
	reset(x);
	x->rc = CURLE_SEND_ERROR;
	snprintf(x->err, sizeof(x->err), what, x->code);
	return XACT_REFUSED;
}

int xact_attach(struct xact *x, CURL *curl, long timeout,
                const struct xact_hooks *hooks)
{
	curl_socket_t s = CURL_SOCKET_BAD;

	memset(x, 0, sizeof(*x));
	x->sock = CURL_SOCKET_BAD;
	if (curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK ||
	    s == CURL_SOCKET_BAD)
		return -1;
	x->curl = curl;
	x->sock = s;
	x->timeout = timeout > 0 ? timeout : 60;
	x->hooks = *hooks;
	x->usable = true;
	return 0;
}

bool xact_idle_ok(struct xact *x)
{
	struct pollfd p = { .fd = x->sock, .events = POLLIN };
	size_t n = 0;
	CURLcode rc;

	if (!x->usable || x->inlen > 0)
		return false;
	if (poll(&p, 1, 0) == 0)
		return true;
	/* readable: TLS housekeeping (a session ticket) is fine; bytes of
	 * a reply nobody asked for, or the end of the stream, are not */
	rc = curl_easy_recv(x->curl, x->in, sizeof(x->in), &n);
	if (rc == CURLE_AGAIN)
		return true;
	x->usable = false;
	return false;
}

static enum xact_end body_and_end(struct xact *x, int fd);

static enum xact_end rcpt_and_data(struct xact *x, char *const *rcpts,
                                   size_t nrcpt, int fd)
{
	char last[XACT_LINE_MAX];
	size_t i, ok = 0;

	for (i = 0; i < nrcpt && x->usable; i++) {
		if (command(x, "RCPT TO:<", rcpts[i], ">") != 0 ||
		    read_reply(x, last, sizeof(last)) != 0)
			return XACT_BROKEN;
		if (x->code / 100 == 2)
			ok++;
		if (xact_too_many(x->code, last))
			break;  /* the rest would be refused the same way */
	}
	if (ok == 0 || !x->usable)
		return refused(x, "RCPT failed: %d (last error)");
	if (command(x, "DATA", "", "") != 0 ||
	    read_reply(x, last, sizeof(last)) != 0)
		return XACT_BROKEN;
	if (x->code != 354)
		return refused(x, "DATA failed: %d");
	return body_and_end(x, fd);
}

/* After 354: the message, the dot and the reply to it. */
static enum xact_end body_and_end(struct xact *x, int fd)
{
	char last[XACT_LINE_MAX];

	if (send_body(x, fd) != 0 || read_reply(x, last, sizeof(last)) != 0)
		return XACT_BROKEN;
	if (x->code != 250 && x->code / 100 != 4 && x->code / 100 != 5) {
		/* nonsense after the dot: in what state is the server? */
		broken(x, CURLE_WEIRD_SERVER_REPLY, "protocol error: reply "
		       "after the message", last);
		return XACT_BROKEN;
	}
	/* The transaction is over whatever the reply (RFC 5321 4.1.1.4),
	 * but Postfix keeps it open after smtpd_end_of_data_restrictions
	 * refused it ("503 5.5.1 nested MAIL command" follows): RSET. */
	if (x->code != 250)
		reset(x);
	return XACT_SENT;
}

/* Commands sent together (RFC 2920): their text, CRLF after each. */
struct batch {
	char buf[BATCH_BYTES];
	size_t len;
	size_t start[BATCH_LINES], n[BATCH_LINES];
	size_t count;
};

/* Command j of the transaction: MAIL (0), RCPT (1..nrcpt), DATA. */
static int nth_command(struct xact *x, const struct xact_cmds *c, size_t j,
                       char *line)
{
	if (j == 0)
		return format_command(x, line, "MAIL FROM:<", c->sender,
		                      c->mail_tail);
	if (j <= c->nrcpt)
		return format_command(x, line, "RCPT TO:<", c->rcpts[j - 1],
		                      ">");
	return format_command(x, line, "DATA", "", "");
}

/* Fill b with commands *j... while they fit; at least one. -1 when a
 * command cannot be formed (nothing of b has been sent). */
static int batch_fill(struct xact *x, const struct xact_cmds *c, size_t *j,
                      struct batch *b)
{
	char line[XACT_LINE_MAX];

	b->len = b->count = 0;
	while (*j < c->nrcpt + 2 && b->count < BATCH_LINES) {
		int n = nth_command(x, c, *j, line);

		if (n < 0)
			return -1;
		if (b->len + (size_t)n + 2 > sizeof(b->buf))
			break;          /* the next batch takes it */
		memcpy(b->buf + b->len, line, (size_t)n);
		memcpy(b->buf + b->len + n, "\r\n", 2);
		b->start[b->count] = b->len;
		b->n[b->count++] = (size_t)n;
		b->len += (size_t)n + 2;
		(*j)++;
	}
	return 0;
}

/*
 * The transaction with PIPELINING: MAIL, the RCPTs and DATA go in
 * batches of at most BATCH_LINES commands (so the replies waiting to be
 * read stay few whatever the number of recipients), each command is
 * reported to the hooks just before its reply is read - except those
 * whose replies are moot: every one after a refused MAIL, and DATA when
 * no RCPT was accepted (the caller must not take their "503 need MAIL"
 * for the recipients' or the message's fate, nor count them as
 * refusals). What to do next is decided once every reply is in: the
 * message after 354 when MAIL and at least one RCPT were accepted, else
 * RSET.
 */
static enum xact_end pipelined(struct xact *x, const struct xact_cmds *c,
                               int fd)
{
	char last[XACT_LINE_MAX];
	struct batch b;
	size_t j = 0, k, ok = 0;
	int mail = 0, rcpt = 0;

	while (j < c->nrcpt + 2) {
		size_t first = j;

		if (batch_fill(x, c, &j, &b) != 0 ||
		    send_all(x, b.buf, b.len) != 0)
			return XACT_BROKEN;
		for (k = 0; k < b.count; k++) {
			/* after a refused MAIL, or DATA with no recipient,
			 * the replies ("503 need MAIL") only echo that */
			bool moot = (first + k > 0 && mail / 100 != 2) ||
			            (first + k > c->nrcpt && ok == 0);

			if (!moot)
				x->hooks.command(x->hooks.arg,
				                 b.buf + b.start[k], b.n[k]);
			if (read_reply_as(x, last, sizeof(last), !moot) != 0)
				return XACT_BROKEN;
			if (!x->usable)         /* 421: the server is closing */
				return refused(x, first + k == 0 ?
				               "MAIL failed: %d" :
				               first + k <= c->nrcpt ?
				               "RCPT failed: %d (last error)" :
				               "DATA failed: %d");
			if (first + k == 0)
				mail = x->code;
			else if (first + k <= c->nrcpt && x->code / 100 == 2)
				ok++;
			else if (first + k <= c->nrcpt)
				rcpt = x->code;
		}
	}
	if (mail / 100 == 2 && ok > 0)
		return x->code == 354 ? body_and_end(x, fd)
		                      : refused(x, "DATA failed: %d");
	if (x->code == 354 && (send_all(x, ".\r\n", 3) != 0 ||
	                       read_reply(x, last, sizeof(last)) != 0))
		return XACT_BROKEN;     /* DATA taken without a recipient */
	x->code = mail / 100 != 2 ? mail : rcpt;
	return refused(x, mail / 100 != 2 ? "MAIL failed: %d"
	                                  : "RCPT failed: %d (last error)");
}

enum xact_end xact_mail(struct xact *x, const char *sender,
                        const char *params, char *const *rcpts, size_t nrcpt,
                        int fd)
{
	char last[XACT_LINE_MAX], tail[XACT_LINE_MAX];

	x->code = 0;
	x->nreplies = 0;
	x->rc = CURLE_OK;
	x->err[0] = '\0';
	x->read_errno = 0;
	if (!x->usable) {
		broken(x, CURLE_SEND_ERROR, "connection unusable", NULL);
		return XACT_BROKEN;
	}
	snprintf(tail, sizeof(tail), ">%s", params);
	if (x->pipelining) {
		struct xact_cmds c = { sender, tail, rcpts, nrcpt };

		return pipelined(x, &c, fd);
	}
	if (command(x, "MAIL FROM:<", sender, tail) != 0 ||
	    read_reply(x, last, sizeof(last)) != 0)
		return XACT_BROKEN;
	if (x->code / 100 != 2)
		return refused(x, "MAIL failed: %d");
	return rcpt_and_data(x, rcpts, nrcpt, fd);
}

bool xact_has_ext(const char *caps, const char *kw)
{
	size_t k = strlen(kw);
	const char *p = caps;

	while (*p != '\0') {
		if (str_nieq(p, kw, k) && (p[k] == '\0' || p[k] == ' ' ||
		                           p[k] == ','))
			return true;
		p = strstr(p, ", ");
		if (p == NULL)
			break;
		p += 2;
	}
	return false;
}

static bool is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

void xact_mail_params(const char *caps, const char *sender,
                      char *const *rcpts, size_t n, off_t size, char *out,
                      size_t outlen)
{
	bool utf8 = !is_ascii(sender);
	size_t i, len;

	for (i = 0; i < n; i++)
		utf8 = utf8 || !is_ascii(rcpts[i]);
	out[0] = '\0';
	if (size > 0 && xact_has_ext(caps, "SIZE"))
		snprintf(out, outlen, " SIZE=%lld", (long long)size);
	len = strlen(out);
	if (utf8 && xact_has_ext(caps, "SMTPUTF8"))
		snprintf(out + len, outlen - len, " SMTPUTF8");
}

void xact_quit(struct xact *x)
{
	/* not waiting for the 221: every message of the session is settled
	 * by now, the reply could only cost the caller a round trip */
	if (x->usable)
		(void)command(x, "QUIT", "", "");
	x->usable = false;
}

/* The enhanced status code right after the reply code, e.g. "4.7.1". */
static bool has_status(const char *line, const char *prefix)
{
	size_t k = strlen(prefix);

	return strlen(line) > 4 + k && strncmp(line + 4, prefix, k) == 0;
}

bool xact_too_many(int code, const char *line)
{
	switch (code) {
	case 421:
		/* not 421 4.7.0: Postfix says that for "too many errors" in
		 * one session, which a new session does not have */
		return has_status(line, "4.3.2");
	case 450:
	case 451:
		return has_status(line, "4.7.");
	case 452:
		return has_status(line, "4.5.3");
	default:
		return false;
	}
}
