/*
 * test_message.c - unit tests for src/message.c (cmocka).
 *
 * Each row is the bytes piped in, the options, and the exact bytes
 * expected in the spool file. Two placeholders stand for the fields
 * outbox generates with the time in them: "@DATE@" matches one whole
 * "Date: ..." line (RFC 5322 date-time, CRLF included) and "@MSGID@" one
 * "Message-ID: <...@DOMAIN>" line. Generated fields follow the message's
 * own fields in the order To (undisclosed-recipients), From, Date,
 * Message-ID. Everything else is compared byte for byte.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "message.h"

#define DOMAIN "example.org"
#define SENDER "me@example.org"
#define MAXRCPT 8

/* Complete headers: nothing is generated for a message that has them. */
#define H "From: a@b.example\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n" \
          "Message-ID: <1@b.example>\n"
#define HC "From: a@b.example\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n" \
           "Message-ID: <1@b.example>\r\n"
/* What outbox adds to a message without any of them (default sender). */
#define GEN "From: " SENDER "\r\n@DATE@@MSGID@"

enum { AF = 1, AD = 2, AM = 4, ALL = 7 };
enum { F_I = 1, F_T = 2 };

struct row {
	const char *name;
	const char *in;
	size_t inlen;            /* 0: strlen(in) */
	unsigned flags;          /* F_I (-i), F_T (-t) */
	const char *sender;      /* NULL: SENDER */
	const char *fullname;
	const char *want;        /* expected spool bytes, with placeholders */
	size_t wantlen;          /* 0: strlen(want) */
	enum ob_status st;
	int added;               /* AF|AD|AM: which fields were generated */
	const char *rcpts[MAXRCPT];  /* -t: expected, NULL-terminated */
	int eightbit;            /* m.eightbit expected (0 unless set) */
};

struct result {
	enum ob_status st;
	struct message m;
	char *out;
	size_t outlen;
	char err[512];
};

/* ---- plumbing ---------------------------------------------------------------- */

static int tmp_fd(void)
{
	char path[] = "/tmp/test_message.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	return fd;
}

static int fd_with(const char *data, size_t len)
{
	int fd = tmp_fd();
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		assert_true(n > 0);
		done += (size_t)n;
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The whole content of fd from offset `from`, malloc'd. */
static char *slurp(int fd, off_t from, size_t *len)
{
	struct stat st;
	char *buf;
	size_t done = 0, n;

	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size >= from);
	n = (size_t)(st.st_size - from);
	buf = malloc(n + 1);
	assert_non_null(buf);
	assert_int_equal(lseek(fd, from, SEEK_SET), from);
	while (done < n) {
		ssize_t r = read(fd, buf + done, n - done);

		assert_true(r > 0);
		done += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void opts_for(const struct row *r, struct message_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ignore_dots = (r->flags & F_I) != 0;
	o->extract_rcpts = (r->flags & F_T) != 0;
	o->sender = r->sender != NULL ? r->sender : SENDER;
	o->fullname = r->fullname;
	o->domain = DOMAIN;
}

static void run_fd(int in, const struct message_opts *o, struct result *res)
{
	int out = tmp_fd();

	memset(res, 0, sizeof(*res));
	res->st = message_read(in, out, o, &res->m, res->err, sizeof(res->err));
	res->out = slurp(out, 0, &res->outlen);
	close(out);
}

static void run_bytes(const char *in, size_t len, const struct message_opts *o,
                      struct result *res)
{
	int fd = fd_with(in, len);

	run_fd(fd, o, res);
	close(fd);
}

/* ---- the push parser, fed in pieces ---------------------------------------- */

struct membuf {
	char *p;
	size_t len, cap;
};

static void to_mem(void *arg, const void *p, size_t n)
{
	struct membuf *b = arg;

	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Feed in[0..len) to a parser in pieces: of 1 byte (seed 0), or of
 * 1..97 bytes chosen by a generator started at seed. */
static void run_pushed(const char *in, size_t len,
                       const struct message_opts *o, unsigned seed,
                       struct result *res)
{
	struct membuf b = { 0 };
	struct message_parser *p;
	unsigned x = seed;
	size_t i = 0;

	memset(res, 0, sizeof(*res));
	p = message_parser_new(o, &res->m, to_mem, &b);
	assert_non_null(p);
	res->st = OB_OK;
	while (i < len && res->st == OB_OK && !message_parser_done(p)) {
		size_t n = 1;

		if (seed != 0) {
			x = x * 1103515245u + 12345u;
			n = 1 + (x >> 16) % 97;
		}
		if (n > len - i)
			n = len - i;
		res->st = message_parser_feed(p, in + i, n);
		i += n;
	}
	if (res->st == OB_OK)
		res->st = message_parser_end(p);
	snprintf(res->err, sizeof(res->err), "%s", message_parser_error(p));
	message_parser_free(p);
	res->out = b.p != NULL ? b.p : calloc(1, 1);
	res->outlen = b.len;
}

static void result_free(struct result *res)
{
	message_free(&res->m);
	free(res->out);
	res->out = NULL;
}

/* Does the line s[0..len) (no CRLF) match the regular expression re? */
static bool line_matches(const char *re, const char *s, size_t len)
{
	regex_t rx;
	char *line = malloc(len + 1);
	bool ok;

	assert_non_null(line);
	memcpy(line, s, len);
	line[len] = '\0';
	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&rx, line, 0, NULL, 0) == 0;
	regfree(&rx);
	free(line);
	return ok;
}

#define DATE_RE "^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} " \
	"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} " \
	"[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$"
#define MSGID_RE "^Message-ID: <[!-;=?-~]+@" DOMAIN ">$"

/*
 * Compare got[0..gotlen) with want[0..wantlen) and its placeholders.
 * Returns the offset of the first difference in got, or -1 when equal.
 */
static long compare(const char *want, size_t wantlen, const char *got,
                    size_t gotlen)
{
	size_t w = 0, g = 0;

	while (w < wantlen) {
		const char *ph = NULL, *re = NULL;

		if (wantlen - w >= 6 && memcmp(want + w, "@DATE@", 6) == 0) {
			ph = "@DATE@";
			re = DATE_RE;
		} else if (wantlen - w >= 7 && memcmp(want + w, "@MSGID@", 7) == 0) {
			ph = "@MSGID@";
			re = MSGID_RE;
		}
		if (ph != NULL) {
			const char *eol = memchr(got + g, '\r', gotlen - g);
			size_t n;

			if (eol == NULL || (size_t)(eol - got) + 1 >= gotlen ||
			    eol[1] != '\n')
				return (long)g;
			n = (size_t)(eol - (got + g));
			if (!line_matches(re, got + g, n))
				return (long)g;
			g += n + 2;
			w += strlen(ph);
			continue;
		}
		if (g >= gotlen || got[g] != want[w])
			return (long)g;
		g++;
		w++;
	}
	return g == gotlen ? -1 : (long)g;
}

static void check_output(const char *name, const char *want, size_t wantlen,
                         const struct result *res)
{
	long at = compare(want, wantlen, res->out, res->outlen);

	if (at >= 0) {
		size_t from = (size_t)at > 20 ? (size_t)at - 20 : 0;

		fail_msg("%s: output differs at byte %ld (of %zu): ...%.60s...\n"
		         "whole output:\n%.2000s\nwanted:\n%.2000s", name, at,
		         res->outlen, res->out + from, res->out, want);
	}
}

/* How check_row feeds the row: from a file (message_read), or pushed
 * a byte at a time, or in pieces of random sizes (three seeds): the
 * result must be the same whatever the cut. */
enum feed { FEED_FD, FEED_BYTES, FEED_RANDOM1, FEED_RANDOM2, FEED_RANDOM3,
            FEED_MODES };

static void check_row_fed(const struct row *r, enum feed how)
{
	struct message_opts o;
	struct result res;
	size_t inlen = r->inlen != 0 ? r->inlen : strlen(r->in);
	size_t n = 0, k;
	int added;

	opts_for(r, &o);
	if (how == FEED_FD)
		run_bytes(r->in, inlen, &o, &res);
	else
		run_pushed(r->in, inlen, &o, how == FEED_BYTES ? 0 : 7u * how,
		           &res);
	if (res.st != r->st)
		fail_msg("%s: status want %d got %d (%s)", r->name, (int)r->st,
		         (int)res.st, res.err);
	if (r->st != OB_OK) {
		if (res.err[0] == '\0' || strchr(res.err, '\n') != NULL)
			fail_msg("%s: error text empty or not one line", r->name);
		result_free(&res);
		return;
	}
	check_output(r->name, r->want,
	             r->wantlen != 0 ? r->wantlen : strlen(r->want), &res);
	if (res.m.size != (off_t)res.outlen)
		fail_msg("%s: m.size %lld, %zu bytes written", r->name,
		         (long long)res.m.size, res.outlen);
	added = (res.m.added_from ? AF : 0) | (res.m.added_date ? AD : 0) |
	        (res.m.added_msgid ? AM : 0);
	if (added != r->added)
		fail_msg("%s: added fields want %d got %d", r->name, r->added,
		         added);
	if ((int)res.m.eightbit != r->eightbit)
		fail_msg("%s: eightbit want %d got %d", r->name, r->eightbit,
		         (int)res.m.eightbit);
	while (n < MAXRCPT && r->rcpts[n] != NULL)
		n++;
	if (res.m.rcpts.count != n)
		fail_msg("%s: want %zu recipients got %zu (first '%s')", r->name,
		         n, res.m.rcpts.count,
		         res.m.rcpts.count > 0 ? res.m.rcpts.addrs[0] : "");
	for (k = 0; k < n; k++) {
		if (strcmp(res.m.rcpts.addrs[k], r->rcpts[k]) != 0)
			fail_msg("%s: recipient %zu want '%s' got '%s'", r->name, k,
			         r->rcpts[k], res.m.rcpts.addrs[k]);
	}
	result_free(&res);
}

static void check_row(const struct row *r)
{
	int how;

	for (how = FEED_FD; how < FEED_MODES; how++)
		check_row_fed(r, (enum feed)how);
}

static void run_rows(const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check_row(&rows[i]);
}

#define RUN(rows) run_rows(rows, sizeof(rows) / sizeof(rows[0]))

/* ---- line ends ------------------------------------------------------------------- */

static const struct row eol_rows[] = {
	{ .name = "lf", .in = H "Subject: s\n\nline1\nline2\n",
	  .want = HC "Subject: s\r\n\r\nline1\r\nline2\r\n", .eightbit = 0 },
	{ .name = "crlf kept", .in = HC "Subject: s\r\n\r\nline1\r\nline2\r\n",
	  .want = HC "Subject: s\r\n\r\nline1\r\nline2\r\n", .eightbit = 0 },
	{ .name = "mixed", .in = H "Subject: s\r\n\nl1\r\nl2\nl3\r\n\r\n\n",
	  .want = HC "Subject: s\r\n\r\nl1\r\nl2\r\nl3\r\n\r\n\r\n" },
	{ .name = "no final newline", .in = H "\nlast",
	  .want = HC "\r\nlast\r\n" },
	{ .name = "no final newline crlf body", .in = H "\r\na\r\nlast",
	  .want = HC "\r\na\r\nlast\r\n" },
	{ .name = "header only, no newline", .in = H "Subject: s",
	  .want = HC "Subject: s\r\n\r\n" },
	{ .name = "header only", .in = H "Subject: s\n",
	  .want = HC "Subject: s\r\n\r\n" },
	{ .name = "header and separator only", .in = H "Subject: s\n\n",
	  .want = HC "Subject: s\r\n\r\n" },
	{ .name = "empty body lines", .in = H "\n\n\n",
	  .want = HC "\r\n\r\n\r\n" },
	/* a CR not followed by LF is a line end */
	{ .name = "bare cr in body", .in = H "\na\rb\nc\r\r\nend\r",
	  .want = HC "\r\na\r\nb\r\nc\r\n\r\nend\r\n" },
	{ .name = "bare cr alone", .in = H "\n\r\n\r",
	  .want = HC "\r\n\r\n\r\n" },
	{ .name = "cr-only message",
	  .in = "From: a@b.example\rDate: Mon, 1 Jan 2024 00:00:00 +0000\r"
	        "Message-ID: <1@b.example>\rSubject: s\r\rline1\rline2\r",
	  .want = HC "Subject: s\r\n\r\nline1\r\nline2\r\n" },
	{ .name = "bare cr in a header ends the field",
	  .in = H "Subject: hi\rBcc: x@y\r\nTo: a@x\n\nb\n",
	  .want = HC "Subject: hi\r\nTo: a@x\r\n\r\nb\r\n" },
	{ .name = "smuggling: cr dot crlf is a dot line (-i)", .flags = F_I,
	  .in = H "\nabc\r.\r\nMAIL FROM:<x@evil.example>\r\n",
	  .want = HC "\r\nabc\r\n.\r\nMAIL FROM:<x@evil.example>\r\n" },
	{ .name = "smuggling: lf dot cr (-i)", .flags = F_I,
	  .in = H "\nabc\n.\rRCPT TO:<y@evil.example>\r",
	  .want = HC "\r\nabc\r\n.\r\nRCPT TO:<y@evil.example>\r\n" },
	{ .name = "smuggling: cr dot cr ends input",
	  .in = H "\nabc\r.\rDATA\r\n",
	  .want = HC "\r\nabc\r\n" },
};

static void test_line_ends(void **state)
{
	(void)state;
	RUN(eol_rows);
}

/* ---- the lone dot ------------------------------------------------------------------ */

static const struct row dot_rows[] = {
	{ .name = "dot ends", .in = H "\nbody\n.\nafter\n",
	  .want = HC "\r\nbody\r\n" },
	{ .name = "dot crlf ends", .in = H "\r\nbody\r\n.\r\nafter\r\n",
	  .want = HC "\r\nbody\r\n" },
	{ .name = "dot at eof", .in = H "\nbody\n.", .want = HC "\r\nbody\r\n" },
	{ .name = "dot cr at eof", .in = H "\nbody\n.\r",
	  .want = HC "\r\nbody\r\n" },
	{ .name = "dot first body line", .in = H "\n.\nafter\n",
	  .want = HC "\r\n" },
	{ .name = "-i: dot kept", .in = H "\nbody\n.\nafter\n", .flags = F_I,
	  .want = HC "\r\nbody\r\n.\r\nafter\r\n" },
	{ .name = "-i: dot crlf kept", .in = H "\nbody\r\n.\r\nafter\r\n",
	  .flags = F_I, .want = HC "\r\nbody\r\n.\r\nafter\r\n" },
	{ .name = "-i: dot at eof kept", .in = H "\nbody\n.", .flags = F_I,
	  .want = HC "\r\nbody\r\n.\r\n" },
	/* not stuffed: libcurl stuffs on the wire */
	{ .name = "dots verbatim",
	  .in = H "\n..\n.x\n. \n...\n.\t\nx.\n.. \n",
	  .want = HC "\r\n..\r\n.x\r\n. \r\n...\r\n.\t\r\nx.\r\n.. \r\n" },
	{ .name = "dots verbatim -i", .flags = F_I, .in = H "\n..\n.x\n",
	  .want = HC "\r\n..\r\n.x\r\n" },
	{ .name = "dot mid-line", .in = H "\na.\n.b.\n", .want = HC "\r\na.\r\n.b.\r\n" },
	/* a dot in the header phase */
	{ .name = "dot as first line", .in = ".\nSubject: s\n",
	  .want = GEN "\r\n", .added = ALL },
	{ .name = "dot crlf as first line", .in = ".\r\nSubject: s\r\n",
	  .want = GEN "\r\n", .added = ALL },
	{ .name = "dot after a header", .in = "Subject: s\n.\nTo: x@y\n",
	  .want = "Subject: s\r\n" GEN "\r\n", .added = ALL },
	{ .name = "dot as first line -i", .in = ".\nmore\n", .flags = F_I,
	  .want = GEN "\r\n.\r\nmore\r\n", .added = ALL },
	{ .name = "double dot as first line", .in = "..\n",
	  .want = GEN "\r\n..\r\n", .added = ALL },
};

static void test_lone_dot(void **state)
{
	(void)state;
	RUN(dot_rows);
}

/* ---- Bcc and header fields ----------------------------------------------------------- */

static const struct row bcc_rows[] = {
	{ .name = "bcc removed",
	  .in = H "To: a@x\nBcc: secret@x\nSubject: s\n\nbody\n",
	  .want = HC "To: a@x\r\nSubject: s\r\n\r\nbody\r\n" },
	{ .name = "folded bcc removed",
	  .in = H "To: a@x\nBcc: secret@x,\n  other@y,\n\tthird@z\nSubject: s\n\nb\n",
	  .want = HC "To: a@x\r\nSubject: s\r\n\r\nb\r\n" },
	{ .name = "bcc case", .in = H "To: a@x\nBCC: s@x\nbcc : t@x\n\nb\n",
	  .want = HC "To: a@x\r\n\r\nb\r\n" },
	{ .name = "bcc empty", .in = H "To: a@x\nBcc:\nSubject: s\n\nb\n",
	  .want = HC "To: a@x\r\nSubject: s\r\n\r\nb\r\n" },
	{ .name = "resent-bcc removed",
	  .in = H "To: a@x\nResent-To: r@x\nResent-Bcc: rb@x,\n rb2@x\nX: y\n\nb\n",
	  .want = HC "To: a@x\r\nResent-To: r@x\r\nX: y\r\n\r\nb\r\n" },
	{ .name = "only bcc",
	  .in = H "Bcc: b@x\nSubject: s\n\nbody\n",
	  .want = HC "Subject: s\r\nTo: undisclosed-recipients:;\r\n\r\nbody\r\n" },
	{ .name = "bcc with cc", .in = H "Cc: c@x\nBcc: b@x\n\nbody\n",
	  .want = HC "Cc: c@x\r\n\r\nbody\r\n" },
	{ .name = "bcc-like names kept",
	  .in = H "Bccx: 1\nX-Bcc: 2\nBcc-Note: 3\n\nb\n",
	  .want = HC "Bccx: 1\r\nX-Bcc: 2\r\nBcc-Note: 3\r\n\r\nb\r\n" },
	/* a body line saying "Bcc:" is body */
	{ .name = "bcc in body", .in = H "To: a@x\n\nBcc: b@x\n",
	  .want = HC "To: a@x\r\n\r\nBcc: b@x\r\n" },
};

static void test_bcc(void **state)
{
	(void)state;
	RUN(bcc_rows);
}

static const struct row field_rows[] = {
	{ .name = "fields byte for byte",
	  .in = H "Subject:   spaced  \t\nX-Weird :value\nX-Empty:\n"
	          "Received: from a\n\tby b\n  for c\nX-Colons: a:b:c\n"
	          "Content-Type: text/plain;\n charset=utf-8\n\nbody\n",
	  .want = HC "Subject:   spaced  \t\r\nX-Weird :value\r\nX-Empty:\r\n"
	          "Received: from a\r\n\tby b\r\n  for c\r\nX-Colons: a:b:c\r\n"
	          "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nbody\r\n" },
	{ .name = "8-bit header", .in = H "Subject: caf\xc3\xa9\n\nb\n",
	  .want = HC "Subject: caf\xc3\xa9\r\n\r\nb\r\n", .eightbit = 1 },
	{ .name = "nul in header", .in = H "X-Nul: a\0b\n\nb\n",
	  .inlen = sizeof(H "X-Nul: a\0b\n\nb\n") - 1,
	  .want = HC "X-Nul: a\0b\r\n\r\nb\r\n",
	  .wantlen = sizeof(HC "X-Nul: a\0b\r\n\r\nb\r\n") - 1 },
	/* a bare CR ends the field; "b" is then the first body line */
	{ .name = "cr in header", .in = H "X-CR: a\rb\n\nb\n",
	  .want = HC "X-CR: a\r\n\r\nb\r\n\r\nb\r\n" },
	{ .name = "crlf separator", .in = H "Subject: s\r\n\r\nb\r\n",
	  .want = HC "Subject: s\r\n\r\nb\r\n" },
	{ .name = "mbox From line dropped",
	  .in = "From me@x.example Mon Jan  1 00:00:00 2024\n" H "Subject: s\n\nb\n",
	  .want = HC "Subject: s\r\n\r\nb\r\n" },
	{ .name = "From line in body kept",
	  .in = H "\nFrom me, hello\n", .want = HC "\r\nFrom me, hello\r\n" },
	{ .name = "no header section",
	  .in = "hello world\nsecond line\n",
	  .want = GEN "\r\nhello world\r\nsecond line\r\n", .added = ALL },
	{ .name = "no header section, no newline", .in = "hello world",
	  .want = GEN "\r\nhello world\r\n", .added = ALL },
	{ .name = "body starts after fields without separator",
	  .in = H "Subject: s\nthis is text\nmore\n",
	  .want = HC "Subject: s\r\n\r\nthis is text\r\nmore\r\n" },
	{ .name = "empty input", .in = "", .want = GEN "\r\n", .added = ALL,
	  .eightbit = 0 },
	{ .name = "only a separator", .in = "\n", .want = GEN "\r\n",
	  .added = ALL },
	{ .name = "only a separator then body", .in = "\nbody\n",
	  .want = GEN "\r\nbody\r\n", .added = ALL },
};

static void test_fields(void **state)
{
	(void)state;
	RUN(field_rows);
}

/* ---- generated From, Date, Message-ID ------------------------------------------------ */

static const struct row gen_rows[] = {
	{ .name = "all missing", .in = "Subject: s\n\nbody\n",
	  .want = "Subject: s\r\n" GEN "\r\nbody\r\n", .added = ALL },
	{ .name = "all present, other case",
	  .in = "FROM: x@y\ndate: Tue, 2 Jan 2024 00:00:00 +0000\n"
	        "message-id: <a@b>\n\nb\n",
	  .want = "FROM: x@y\r\ndate: Tue, 2 Jan 2024 00:00:00 +0000\r\n"
	          "message-id: <a@b>\r\n\r\nb\r\n" },
	{ .name = "only From present", .in = "From: x@y\n\nb\n",
	  .want = "From: x@y\r\n@DATE@@MSGID@\r\nb\r\n", .added = AD | AM },
	{ .name = "only Date present", .in = "Date: whenever\n\nb\n",
	  .want = "Date: whenever\r\nFrom: " SENDER "\r\n@MSGID@\r\nb\r\n",
	  .added = AF | AM },
	{ .name = "only Message-ID present", .in = "Message-Id: <q@r>\n\nb\n",
	  .want = "Message-Id: <q@r>\r\nFrom: " SENDER "\r\n@DATE@\r\nb\r\n",
	  .added = AF | AD },
	{ .name = "empty From counts", .in = "From:\n\nb\n",
	  .want = "From:\r\n@DATE@@MSGID@\r\nb\r\n", .added = AD | AM },
	{ .name = "From in a continuation does not count",
	  .in = "Subject: s\n From: x@y\n\nb\n",
	  .want = "Subject: s\r\n From: x@y\r\n" GEN "\r\nb\r\n", .added = ALL },
	{ .name = "Resent-From is not From", .in = "Resent-From: x@y\n\nb\n",
	  .want = "Resent-From: x@y\r\n" GEN "\r\nb\r\n", .added = ALL },
	{ .name = "fullname plain", .in = "\nb\n", .fullname = "Cron Daemon",
	  .want = "From: Cron Daemon <" SENDER ">\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "fullname with comma", .in = "\nb\n", .fullname = "Doe, John",
	  .want = "From: \"Doe, John\" <" SENDER ">\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "fullname with dot", .in = "\nb\n", .fullname = "J. Doe",
	  .want = "From: \"J. Doe\" <" SENDER ">\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "fullname with quote", .in = "\nb\n",
	  .fullname = "Joe \"JJ\" Q",
	  .want = "From: \"Joe \\\"JJ\\\" Q\" <" SENDER ">\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "fullname with angle", .in = "\nb\n", .fullname = "<root>",
	  .want = "From: \"<root>\" <" SENDER ">\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "fullname empty", .in = "\nb\n", .fullname = "",
	  .want = GEN "\r\nb\r\n", .added = ALL },
	{ .name = "fullname ignored when From present", .in = "From: x@y\n\nb\n",
	  .fullname = "Cron Daemon",
	  .want = "From: x@y\r\n@DATE@@MSGID@\r\nb\r\n", .added = AD | AM },
	{ .name = "null sender", .in = "\nb\n", .sender = "",
	  .want = "From: MAILER-DAEMON@" DOMAIN "\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	{ .name = "null sender with name", .in = "\nb\n", .sender = "",
	  .fullname = "Mail System",
	  .want = "From: Mail System <MAILER-DAEMON@" DOMAIN ">\r\n@DATE@@MSGID@"
	          "\r\nb\r\n", .added = ALL },
	{ .name = "other sender", .in = "\nb\n", .sender = "root@h.example",
	  .want = "From: root@h.example\r\n@DATE@@MSGID@\r\nb\r\n",
	  .added = ALL },
	/* header injection through -F is refused */
	{ .name = "fullname newline", .in = "\nb\n",
	  .fullname = "Evil\nBcc: victim@x", .st = OB_DATAERR },
	{ .name = "fullname cr", .in = "\nb\n", .fullname = "Evil\rX: y",
	  .st = OB_DATAERR },
	{ .name = "fullname crlf", .in = "\nb\n", .fullname = "Evil\r\n",
	  .st = OB_DATAERR },
};

static void test_generated(void **state)
{
	(void)state;
	RUN(gen_rows);
}

/* Two messages get different Message-IDs. */
static void test_msgid_unique(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	struct result a, b;
	const char *ia, *ib;

	(void)state;
	run_bytes("\nb\n", 3, &o, &a);
	run_bytes("\nb\n", 3, &o, &b);
	assert_int_equal(a.st, OB_OK);
	assert_int_equal(b.st, OB_OK);
	ia = strstr(a.out, "Message-ID: <");
	ib = strstr(b.out, "Message-ID: <");
	assert_non_null(ia);
	assert_non_null(ib);
	assert_int_not_equal(strncmp(ia, ib, (size_t)(strchr(ia, '>') - ia)), 0);
	result_free(&a);
	result_free(&b);
}

/* ---- -t ------------------------------------------------------------------------------- */

static const struct row t_rows[] = {
	{ .name = "to cc bcc", .flags = F_T,
	  .in = H "To: a@x, B <b@y>\nCc: c@z\nBcc: d@w\nSubject: s\n\nb\n",
	  .want = HC "To: a@x, B <b@y>\r\nCc: c@z\r\nSubject: s\r\n\r\nb\r\n",
	  .rcpts = { "a@x", "b@y", "c@z", "d@w" } },
	{ .name = "header order", .flags = F_T,
	  .in = H "Bcc: d@w\nCc: c@z\nTo: a@x\n\nb\n",
	  .want = HC "Cc: c@z\r\nTo: a@x\r\n\r\nb\r\n",
	  .rcpts = { "d@w", "c@z", "a@x" } },
	{ .name = "folded to", .flags = F_T,
	  .in = H "To: a@x,\n b@y,\r\n\tc@z\n\nb\n",
	  .want = HC "To: a@x,\r\n b@y,\r\n\tc@z\r\n\r\nb\r\n",
	  .rcpts = { "a@x", "b@y", "c@z" } },
	{ .name = "group", .flags = F_T,
	  .in = H "To: list: m1@x, \"M 2\" <m2@x>;, solo@y\n\nb\n",
	  .want = HC "To: list: m1@x, \"M 2\" <m2@x>;, solo@y\r\n\r\nb\r\n",
	  .rcpts = { "m1@x", "m2@x", "solo@y" } },
	{ .name = "display names with commas", .flags = F_T,
	  .in = H "To: \"Doe, John\" <j@x>, \"Roe, Jane\" <r@y> (c, d)\n\nb\n",
	  .want = HC "To: \"Doe, John\" <j@x>, \"Roe, Jane\" <r@y> (c, d)\r\n"
	          "\r\nb\r\n",
	  .rcpts = { "j@x", "r@y" } },
	{ .name = "undisclosed group", .flags = F_T,
	  .in = H "To: undisclosed-recipients:;\nBcc: hidden@x\n\nb\n",
	  .want = HC "To: undisclosed-recipients:;\r\n\r\nb\r\n",
	  .rcpts = { "hidden@x" } },
	{ .name = "only bcc with -t", .flags = F_T,
	  .in = H "Bcc: b1@x, b2@y\n\nb\n",
	  .want = HC "To: undisclosed-recipients:;\r\n\r\nb\r\n",
	  .rcpts = { "b1@x", "b2@y" } },
	{ .name = "bare name", .flags = F_T, .in = H "To: root\n\nb\n",
	  .want = HC "To: root\r\n\r\nb\r\n", .rcpts = { "root" } },
	{ .name = "case of field names", .flags = F_T,
	  .in = H "TO: a@x\ncc: b@y\nbCC: c@z\n\nb\n",
	  .want = HC "TO: a@x\r\ncc: b@y\r\n\r\nb\r\n",
	  .rcpts = { "a@x", "b@y", "c@z" } },
	{ .name = "resent takes precedence", .flags = F_T,
	  .in = H "To: a@x\nCc: c@x\nBcc: b@x\nResent-To: r@x\nResent-Cc: rc@x\n"
	          "Resent-Bcc: rb@x\n\nb\n",
	  .want = HC "To: a@x\r\nCc: c@x\r\nResent-To: r@x\r\nResent-Cc: rc@x\r\n"
	          "\r\nb\r\n",
	  .rcpts = { "r@x", "rc@x", "rb@x" } },
	{ .name = "resent-bcc only", .flags = F_T,
	  .in = H "To: a@x\nResent-Bcc: rb@x\n\nb\n",
	  .want = HC "To: a@x\r\n\r\nb\r\n", .rcpts = { "rb@x" } },
	{ .name = "no recipient fields", .flags = F_T, .in = H "Subject: s\n\nb\n",
	  .want = HC "Subject: s\r\n\r\nb\r\n" },
	{ .name = "without -t nothing is collected",
	  .in = H "To: a@x\nCc: c@z\nBcc: d@w\n\nb\n",
	  .want = HC "To: a@x\r\nCc: c@z\r\n\r\nb\r\n" },
	{ .name = "bad address without -t passes", .in = H "To: <a@x\n\nb\n",
	  .want = HC "To: <a@x\r\n\r\nb\r\n" },
	{ .name = "To in body not collected", .flags = F_T,
	  .in = H "To: a@x\n\nTo: b@y\n", .want = HC "To: a@x\r\n\r\nTo: b@y\r\n",
	  .rcpts = { "a@x" } },
	{ .name = "bad to", .flags = F_T, .in = H "To: <a@x\n\nb\n",
	  .st = OB_DATAERR },
	{ .name = "bad cc", .flags = F_T, .in = H "To: a@x\nCc: a@@b\n\nb\n",
	  .st = OB_DATAERR },
	{ .name = "bad bcc", .flags = F_T, .in = H "To: a@x\nBcc: \"x@y\n\nb\n",
	  .st = OB_DATAERR },
	{ .name = "bad resent-to", .flags = F_T,
	  .in = H "Resent-To: (x@y\n\nb\n", .st = OB_DATAERR },
};

static void test_extract(void **state)
{
	(void)state;
	RUN(t_rows);
}

/* ---- bytes that are not text --------------------------------------------------------- */

static const char bin_in[] = H "\nA\0B\x80\xff\xfe\n\0\n\x01\x7f\r\n";
static const char bin_want[] = HC "\r\nA\0B\x80\xff\xfe\r\n\0\r\n\x01\x7f\r\n";

static const struct row bin_rows[] = {
	{ .name = "nul and 8-bit", .in = bin_in, .inlen = sizeof(bin_in) - 1,
	  .want = bin_want, .wantlen = sizeof(bin_want) - 1, .eightbit = 1 },
	{ .name = "ascii is not eightbit", .in = H "\nplain\x7f\x01\n",
	  .want = HC "\r\nplain\x7f\x01\r\n", .eightbit = 0 },
	{ .name = "latin1 body", .in = H "\nna\xefve\n",
	  .want = HC "\r\nna\xefve\r\n", .eightbit = 1 },
};

static void test_binary(void **state)
{
	(void)state;
	RUN(bin_rows);
}

/* ---- sizes ----------------------------------------------------------------------------- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Concatenate the parts (NULL-terminated) into a malloc'd string. */
static char *concat(size_t *len, ...)
{
	va_list ap;
	const char *p;
	size_t n = 0;
	char *s;

	va_start(ap, len);
	for (p = va_arg(ap, const char *); p != NULL; p = va_arg(ap, const char *))
		n += strlen(p);
	va_end(ap);
	s = malloc(n + 1);
	assert_non_null(s);
	n = 0;
	va_start(ap, len);
	for (p = va_arg(ap, const char *); p != NULL; p = va_arg(ap, const char *)) {
		memcpy(s + n, p, strlen(p));
		n += strlen(p);
	}
	va_end(ap);
	s[n] = '\0';
	*len = n;
	return s;
}

static bool memmem_found(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; n <= len && i <= len - n; i++) {
		if (memcmp(hay + i, needle, n) == 0)
			return true;
	}
	return false;
}

/* A 2 MB body line without a newline passes through intact. */
static void test_long_body_line(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	char *x = repeat('x', 2 * 1024 * 1024);
	size_t inlen, wantlen;
	char *in = concat(&inlen, H, "\n", x, (const char *)NULL);
	char *want = concat(&wantlen, HC, "\r\n", x, "\r\n", (const char *)NULL);
	struct result res;

	(void)state;
	run_bytes(in, inlen, &o, &res);
	assert_int_equal(res.st, OB_OK);
	check_output("2 MB body line", want, wantlen, &res);
	assert_int_equal(res.m.size, (off_t)res.outlen);
	result_free(&res);
	free(in);
	free(want);
	/* ... also as the very first line, without any header section */
	want = concat(&wantlen, GEN, "\r\n", x, "\r\n", (const char *)NULL);
	run_bytes(x, strlen(x), &o, &res);
	assert_int_equal(res.st, OB_OK);
	check_output("2 MB first line", want, wantlen, &res);
	assert_int_equal(res.m.size, (off_t)res.outlen);
	result_free(&res);
	free(want);
	free(x);
}

/* A header section over MESSAGE_HEADER_MAX is refused, cleanly. */
static void test_huge_header(void **state)
{
	struct message_opts o = { false, true, SENDER, NULL, DOMAIN, NULL };
	char *v = repeat('v', MESSAGE_HEADER_MAX + 1000);
	size_t inlen;
	char *in = concat(&inlen, "To: a@x\nX-Big: ", v, "\n\nbody\n",
	                  (const char *)NULL);
	struct result res;

	(void)state;
	run_bytes(in, inlen, &o, &res);
	assert_int_equal(res.st, OB_DATAERR);
	assert_true(res.err[0] != '\0');
	result_free(&res);
	free(in);
	/* a huge folded field */
	in = concat(&inlen, "Subject: a\n ", v, "\n\nbody\n", (const char *)NULL);
	run_bytes(in, inlen, &o, &res);
	assert_int_equal(res.st, OB_DATAERR);
	result_free(&res);
	free(in);
	free(v);
}

/*
 * Many ordinary fields adding up to more than MESSAGE_HEADER_MAX: the
 * whole section is what is bounded, so this is refused too, wherever the
 * limit falls in the last line. Here it falls inside a field name, and
 * the fields after it (a Bcc among them) must not end up in the body.
 */
static void test_huge_header_many_lines(void **state)
{
	static const char tail[] =
		"X-Next-Field: v\nBcc: leak@x.example\n\nbody\n";
	/* room left for the last field: 0, or inside its name */
	static const size_t rooms[] = { 0, 3, 10 };
	struct message_opts o = { false, true, SENDER, NULL, DOMAIN, NULL };
	size_t per = 1000, k, off, r;
	char *in = malloc(MESSAGE_HEADER_MAX + 4096);
	size_t inlen;
	struct result res;
	enum ob_status st;
	bool leaked;

	(void)state;
	assert_non_null(in);
	for (r = 0; r < sizeof(rooms) / sizeof(rooms[0]); r++) {
		/* fields filling MESSAGE_HEADER_MAX - room, counted with CRLF */
		size_t left = MESSAGE_HEADER_MAX - rooms[r];

		off = 0;
		for (k = 0; left > 0 && k < 2000; k++) {
			size_t line = left >= per + per ? per : left;  /* with CRLF */

			memcpy(in + off, "X-Pad: ", 7);
			memset(in + off + 7, 'p', line - 2 - 7);
			off += line - 2;
			in[off++] = '\n';
			left -= line;
		}
		assert_int_equal(left, 0);
		inlen = off;
		memcpy(in + inlen, tail, strlen(tail));
		inlen += strlen(tail);
		run_bytes(in, inlen, &o, &res);
		st = res.st;
		leaked = memmem_found(res.out, res.outlen, "leak@x.example");
		result_free(&res);
		if (st != OB_DATAERR) {
			free(in);
			fail_msg("room %zu: header section over the limit: want "
			         "OB_DATAERR got %d; Bcc in output: %s", rooms[r],
			         (int)st, leaked ? "yes" : "no");
		}
	}
	free(in);
}

/* A header section just under the limit goes through byte for byte. */
static void test_big_header_ok(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	char *v = repeat('v', MESSAGE_HEADER_MAX - 64 * 1024);
	size_t inlen, wantlen;
	char *in = concat(&inlen, H, "X-Big: ", v, "\n\nbody\n",
	                  (const char *)NULL);
	char *want = concat(&wantlen, HC, "X-Big: ", v, "\r\n\r\nbody\r\n",
	                    (const char *)NULL);
	struct result res;

	(void)state;
	run_bytes(in, inlen, &o, &res);
	assert_int_equal(res.st, OB_OK);
	check_output("big header", want, wantlen, &res);
	result_free(&res);
	free(in);
	free(want);
	free(v);
}

/* longest_line: the longest line written, without its CRLF. */
static void test_longest_line(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	char *x = repeat('x', 200);
	const char *ends[] = { "\n", "\r\n", "" };
	static const char *const what[] = {
		"200-byte body line, LF", "200-byte body line, CRLF",
		"body line joined to the next (204 bytes)",
		"209-byte header line", "200-byte last line without newline"
	};
	static const size_t want[] = { 200, 200, 204, 209, 200 };
	size_t got[5];
	size_t i;
	int bad;

	(void)state;
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		size_t inlen;
		char *in = concat(&inlen, H, "\nshort\n", x, ends[i], "tail\n",
		                  (const char *)NULL);
		struct result res;

		run_bytes(in, inlen, &o, &res);
		free(in);
		got[i] = res.st == OB_OK ? res.m.longest_line : 0;
		result_free(&res);
	}
	/* a header line */
	{
		size_t inlen;
		char *in = concat(&inlen, H, "Subject: ", x, "\n\nb\n",
		                  (const char *)NULL);
		struct result res;

		run_bytes(in, inlen, &o, &res);
		free(in);
		got[3] = res.st == OB_OK ? res.m.longest_line : 0;
		result_free(&res);
	}
	/* the last line, without a newline */
	{
		size_t inlen;
		char *in = concat(&inlen, H, "\nb\n", x, (const char *)NULL);
		struct result res;

		run_bytes(in, inlen, &o, &res);
		free(in);
		got[4] = res.st == OB_OK ? res.m.longest_line : 0;
		result_free(&res);
	}
	free(x);
	bad = 0;
	for (i = 0; i < 5; i++) {
		if (got[i] != want[i]) {
			print_error("%s: longest_line want %zu got %zu\n", what[i],
			            want[i], got[i]);
			bad++;
		}
	}
	if (bad > 0)
		fail_msg("%d of 5 longest_line values wrong", bad);
}

/* ---- file descriptors ------------------------------------------------------------------ */

/* Output goes to fd `out` from its current offset. */
static void test_out_offset(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	struct message m;
	char err[256];
	int in = fd_with(H "\nb\n", strlen(H) + 3);
	int out = tmp_fd();
	char *got;
	size_t len;

	(void)state;
	assert_int_equal(write(out, "PREFIX", 6), 6);
	assert_int_equal(message_read(in, out, &o, &m, err, sizeof(err)), OB_OK);
	got = slurp(out, 0, &len);
	assert_int_equal(len, 6 + strlen(HC) + 5);
	assert_memory_equal(got, "PREFIX" HC "\r\nb\r\n", len);
	assert_int_equal(m.size, (off_t)(len - 6));
	message_free(&m);
	free(got);
	close(in);
	close(out);
}

/* A writer that sends one byte at a time through a pipe. */
static pid_t trickle(const char *data, size_t len, int *rfd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t i;

		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		for (i = 0; i < len; i++) {
			if (write(p[1], data + i, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static void test_pipe_trickle(void **state)
{
	static const struct row rows[] = {
		{ .name = "pipe: dot", .in = H "Subject: s\r\n\nbody\n.\nafter\n",
		  .want = HC "Subject: s\r\n\r\nbody\r\n" },
		{ .name = "pipe: dot crlf", .in = H "\r\nbody\r\n.\r\nafter\r\n",
		  .want = HC "\r\nbody\r\n" },
		{ .name = "pipe: dots", .in = H "\n..\n.x\n.\r\r\n.\r",
		  .want = HC "\r\n..\r\n.x\r\n" },
		{ .name = "pipe: bare cr split", .flags = F_I,
		  .in = H "\ra\rb\r\nc\r.\r\nd\r",
		  .want = HC "\r\na\r\nb\r\nc\r\n.\r\nd\r\n" },
		{ .name = "pipe: -i", .flags = F_I, .in = H "\nbody\n.\nafter",
		  .want = HC "\r\nbody\r\n.\r\nafter\r\n" },
		{ .name = "pipe: cr lf split", .in = H "Bcc: x@y\r\n\r\nab\r\ncd\r",
		  .want = HC "To: undisclosed-recipients:;\r\n\r\nab\r\ncd\r\n" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct message_opts o;
		struct result res;
		int rfd, status;
		pid_t pid;

		opts_for(&rows[i], &o);
		pid = trickle(rows[i].in, strlen(rows[i].in), &rfd);
		run_fd(rfd, &o, &res);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(rfd);
		assert_int_equal(res.st, OB_OK);
		check_output(rows[i].name, rows[i].want, strlen(rows[i].want), &res);
		assert_int_equal(res.m.size, (off_t)res.outlen);
		result_free(&res);
	}
}

static void test_io_errors(void **state)
{
	struct message_opts o = { false, false, SENDER, NULL, DOMAIN, NULL };
	struct message m;
	char err[256];
	int in, out, full;

	(void)state;
	/* unreadable input */
	out = tmp_fd();
	memset(err, 0, sizeof(err));
	assert_int_equal(message_read(-1, out, &o, &m, err, sizeof(err)),
	                 OB_IOERR);
	assert_true(err[0] != '\0');
	message_free(&m);
	/* a write-only input */
	in = open("/dev/null", O_WRONLY);
	assert_true(in >= 0);
	memset(err, 0, sizeof(err));
	assert_int_equal(message_read(in, out, &o, &m, err, sizeof(err)),
	                 OB_IOERR);
	assert_true(err[0] != '\0');
	message_free(&m);
	close(in);
	close(out);
	/* unwritable output */
	in = fd_with(H "\nb\n", strlen(H) + 3);
	out = open("/dev/null", O_RDONLY);
	assert_true(out >= 0);
	memset(err, 0, sizeof(err));
	assert_int_equal(message_read(in, out, &o, &m, err, sizeof(err)),
	                 OB_CANTCREAT);
	assert_true(err[0] != '\0');
	message_free(&m);
	close(in);
	close(out);
	/* a full disk (ENOSPC) is temporary: try again later */
	full = open("/dev/full", O_WRONLY);
	if (full >= 0) {
		in = fd_with(H "\nb\n", strlen(H) + 3);
		memset(err, 0, sizeof(err));
		assert_int_equal(message_read(in, full, &o, &m, err, sizeof(err)),
		                 OB_TEMPFAIL);
		assert_non_null(strstr(err, "No space left on device"));
		message_free(&m);
		close(in);
		close(full);
	}
	message_free(NULL);
}

/* ---- the header policy (headers.h) --------------------------------------------- */

static bool host_local(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at == NULL || strcmp(at + 1, "localhost") == 0;
}

/* domain example.org, from-header local with cron@example.org */
static const struct headers_policy POLICY = {
	DOMAIN, "cron@" DOMAIN, HEADERS_FROM_LOCAL, host_local
};

struct hrow {
	const char *name;
	const char *in;
	bool t;                 /* -t */
	const char *sender;     /* NULL: SENDER */
	const char *want;
	bool from_rewritten;
	const char *changed;
	const char *from_field;
	const char *rcpts[MAXRCPT];
};

static const struct hrow policy_rows[] = {
	{ "needs no change: byte for byte",
	  "From: Ann <ann@b.example>\nTo: x@y.example, \"Q, R\" <q@r.example>\n"
	  "Cc: (c) list: a@b.example;\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
	  "Message-ID: <1@b.example>\n\nbody\n", false, NULL,
	  "From: Ann <ann@b.example>\r\nTo: x@y.example, \"Q, R\" <q@r.example>"
	  "\r\nCc: (c) list: a@b.example;\r\nDate: Mon, 1 Jan 2024 00:00:00 "
	  "+0000\r\nMessage-ID: <1@b.example>\r\n\r\nbody\r\n", false, "",
	  "From: Ann <ann@b.example>", { NULL } },
	{ "cron: -t recipients as written, fields qualified",
	  "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> ls\n"
	  "Bcc: ops\n\nout\n", true, NULL,
	  "From: Cron Daemon <cron@" DOMAIN ">\r\nTo: root@" DOMAIN "\r\n"
	  "Subject: Cron <root@h> ls\r\n@DATE@@MSGID@\r\nout\r\n", true,
	  "From rewritten, To qualified, Date added, Message-ID added",
	  "From: Cron Daemon <cron@" DOMAIN ">", { "root", "ops", NULL } },
	{ "generated From gets the account for a local sender",
	  "To: a@b.example\n\nx\n", false, "root@localhost",
	  "To: a@b.example\r\nFrom: cron@" DOMAIN "\r\n@DATE@@MSGID@\r\nx\r\n",
	  false, "From added, Date added, Message-ID added",
	  "From: cron@" DOMAIN, { NULL } },
	{ "generated From keeps a sender that is not local",
	  "To: a@b.example\n\nx\n", false, "me@b.example",
	  "To: a@b.example\r\nFrom: me@b.example\r\n@DATE@@MSGID@\r\nx\r\n",
	  false, "From added, Date added, Message-ID added",
	  "From: me@b.example", { NULL } },
};

/* The parser keeps the MIME fields later steps need, unfolded. */
static void test_mime_fields_kept(void **state)
{
	static const char in[] = H "Content-Type: text/plain;\n"
	    "\tcharset=utf-8\nContent-Transfer-Encoding:  8bit \n"
	    "Content-Type: text/html\n\nbody\n";
	struct message_opts o;
	struct row r = { .name = "mime" };
	struct result res;
	int how;

	(void)state;
	opts_for(&r, &o);
	for (how = FEED_FD; how < FEED_MODES; how++) {
		if (how == FEED_FD)
			run_bytes(in, strlen(in), &o, &res);
		else
			run_pushed(in, strlen(in), &o, 7u * (unsigned)how, &res);
		assert_int_equal(res.st, OB_OK);
		assert_string_equal(res.m.content_type,
		                    "text/plain; charset=utf-8");
		assert_string_equal(res.m.transfer_encoding, "8bit");
		result_free(&res);
	}
	run_bytes(H "\nbody\n", strlen(H "\nbody\n"), &o, &res);
	assert_string_equal(res.m.content_type, "");
	assert_string_equal(res.m.transfer_encoding, "");
	result_free(&res);
}

static void test_policy(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(policy_rows) / sizeof(policy_rows[0]); i++) {
		const struct hrow *r = &policy_rows[i];
		struct message_opts o = { false, r->t, r->sender ? r->sender
		                                                 : SENDER,
		                          NULL, DOMAIN, &POLICY };
		struct result res;

		run_bytes(r->in, strlen(r->in), &o, &res);
		if (res.st != OB_OK)
			fail_msg("%s: %s", r->name, res.err);
		check_output(r->name, r->want, strlen(r->want), &res);
		if (res.m.from_rewritten != r->from_rewritten)
			fail_msg("%s: from_rewritten %d", r->name,
			         (int)res.m.from_rewritten);
		if (strcmp(res.m.changed, r->changed) != 0)
			fail_msg("%s: changed [%s]", r->name, res.m.changed);
		if (res.m.from_field == NULL ||
		    strcmp(res.m.from_field, r->from_field) != 0)
			fail_msg("%s: from_field [%s]", r->name,
			         res.m.from_field ? res.m.from_field : "(null)");
		for (k = 0; r->rcpts[k] != NULL; k++) {
			if (k >= res.m.rcpts.count ||
			    strcmp(res.m.rcpts.addrs[k], r->rcpts[k]) != 0)
				fail_msg("%s: recipient %zu", r->name, k);
		}
		if (k != res.m.rcpts.count)
			fail_msg("%s: %zu recipients", r->name, res.m.rcpts.count);
		result_free(&res);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_lone_dot),
		cmocka_unit_test(test_bcc),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_generated),
		cmocka_unit_test(test_msgid_unique),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_long_body_line),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_huge_header_many_lines),
		cmocka_unit_test(test_big_header_ok),
		cmocka_unit_test(test_longest_line),
		cmocka_unit_test(test_out_offset),
		cmocka_unit_test(test_pipe_trickle),
		cmocka_unit_test(test_io_errors),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_mime_fields_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
