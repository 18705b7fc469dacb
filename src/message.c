/*
 * message.c - reading the message a client pipes in (see message.h).
 *
 * Two phases. In the header phase, whole lines are collected (bounded)
 * and classified: a field ("Name:"), a continuation (leading blank), the
 * empty separator line, or the first body line of a message without a
 * separator. Fields are recognised from a table by name. In the body
 * phase, bytes are copied through fixed buffers; only line ends (LF ->
 * CRLF) and the lone-dot terminator are looked at. The reader turns a CR
 * not followed by LF into LF, so a bare CR is a line end everywhere.
 */
#define _GNU_SOURCE
#include "message.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define IN_BUF (64 * 1024)
#define FULLNAME_MAX 256

enum hkind {
	H_OTHER = 0, H_TO, H_CC, H_BCC, H_RTO, H_RCC, H_RBCC,
	H_FROM, H_DATE, H_MSGID
};

static const struct {
	const char *name;
	enum hkind kind;
} HEADERS[] = {
	{ "To", H_TO }, { "Cc", H_CC }, { "Bcc", H_BCC },
	{ "Resent-To", H_RTO }, { "Resent-Cc", H_RCC },
	{ "Resent-Bcc", H_RBCC }, { "From", H_FROM }, { "Date", H_DATE },
	{ "Message-ID", H_MSGID },
};

struct field {
	size_t off;       /* into hdrs.text */
	size_t len;       /* whole field, all lines, CRLF-terminated */
	size_t namelen;
	enum hkind kind;
};

struct reader {
	int fd;
	size_t pos, len;
	bool eof;
	bool held_cr;           /* buf[len] is a CR whose next byte is unread */
	unsigned char buf[IN_BUF];
};

struct writer {
	bool eightbit;
	unsigned char last;     /* last byte written */
	size_t linelen, longest;
	struct outbuf out;      /* last, ending in its buffer: see message_read */
};

struct headers {
	char *text;             /* all fields, CRLF line ends */
	size_t len, cap;
	struct field *f;
	size_t n, fcap;
};

struct state {
	const struct message_opts *o;
	struct message *m;
	struct reader *r;
	struct writer *w;
	struct headers h;
	char *line;             /* the header-phase line being collected */
	size_t linelen, linecap;
	char *err;
	size_t errlen;
};

/* ---- input ---- */

/*
 * A CR not followed by LF is a line ending: turn it into LF in the bytes
 * just read (buf[from..len)), so that everything after the reader sees
 * LF or CRLF only and no byte sequence can end DATA early at a relay
 * that takes a bare CR as a line end. A CR that is the last byte read is
 * held back until the next byte (or EOF) says what it is.
 */
static void bare_cr_to_lf(struct reader *r, size_t from)
{
	unsigned char *p = r->buf + from, *end = r->buf + r->len;

	while ((p = memchr(p, '\r', (size_t)(end - p))) != NULL) {
		if (p + 1 < end) {
			if (p[1] != '\n')
				*p = '\n';
			p++;
		} else if (r->eof) {
			*p = '\n';
			break;
		} else {
			r->len--;
			r->held_cr = true;
			break;
		}
	}
}

/* Make at least `want` bytes available unless at EOF. 0 or -1 (error). */
static int rd_want(struct reader *r, size_t want)
{
	while (r->len - r->pos < want && !r->eof) {
		size_t from, have;
		ssize_t n;

		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos,
			        r->len + r->held_cr - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		from = r->len;          /* the held CR, or the new bytes */
		have = r->len + r->held_cr;
		n = read(r->fd, r->buf + have, sizeof(r->buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = true;
		r->len = have + (size_t)n;
		r->held_cr = false;
		bare_cr_to_lf(r, from);
	}
	return 0;
}

/* ---- output ---- */


/* Any byte >= 0x80 in p[0..n)? A word at a time. */
static bool has_8bit(const unsigned char *p, size_t n)
{
	uint64_t acc = 0, word;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&word, p + i, 8);
		acc |= word;
	}
	for (; i < n; i++)
		acc |= p[i];
	return (acc & 0x8080808080808080ULL) != 0;
}

/* Line lengths (without CRLF) of what is written, a line at a time. */
static void track_lines(struct writer *w, const unsigned char *p, size_t n)
{
	const unsigned char *start = p, *end = p + n;

	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t line;
		unsigned char prev;

		if (nl == NULL) {
			w->linelen += (size_t)(end - p);
			return;
		}
		line = w->linelen + (size_t)(nl - p);
		prev = nl > start ? nl[-1] : w->last;
		if (line > 0 && prev == '\r')
			line--;
		if (line > w->longest)
			w->longest = line;
		w->linelen = 0;
		p = nl + 1;
	}
}

static void wr_put(struct writer *w, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (len == 0)
		return;
	if (!w->eightbit)
		w->eightbit = has_8bit(p, len);
	track_lines(w, p, len);
	outbuf_put(&w->out, p, len);
	w->last = p[len - 1];
}

static void wr_str(struct writer *w, const char *s)
{
	wr_put(w, s, strlen(s));
}

/* End the current line: CRLF, or just LF after a CR already written. */
static void wr_eol(struct writer *w)
{
	if (w->last == '\r')
		wr_put(w, "\n", 1);
	else
		wr_put(w, "\r\n", 2);
}

/* ---- header phase ---- */

static int fail(struct state *s, enum ob_status st, const char *fmt,
                const char *arg)
{
	snprintf(s->err, s->errlen, fmt, arg);
	return (int)st;
}

static int grow(void *pp, size_t *cap, size_t need, size_t elem, size_t max)
{
	void *n;
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if (c > max)
		c = max;
	if (c < need)
		return -1;
	n = realloc(*(void **)pp, c * elem);
	if (n == NULL)
		return -1;
	*(void **)pp = n;
	*cap = c;
	return 0;
}

/* Length of the field name when line starts a field ("Name:"), else 0. */
static size_t field_name_len(const char *l, size_t len)
{
	size_t i = 0, n;

	while (i < len && (unsigned char)l[i] > ' ' &&
	       (unsigned char)l[i] < 0x7f && l[i] != ':')
		i++;
	n = i;
	while (i < len && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (n == 0 || i >= len || l[i] != ':')
		return 0;
	return n;
}

/* Could this cut-off line still turn out to be a field ("Name" so far)? */
static bool maybe_field(const char *l, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)l[i] <= ' ' || (unsigned char)l[i] >= 0x7f)
			return false;
	}
	return true;
}

static enum hkind field_kind(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(HEADERS) / sizeof(HEADERS[0]); i++) {
		if (strlen(HEADERS[i].name) == n &&
		    str_nieq(HEADERS[i].name, name, n))
			return HEADERS[i].kind;
	}
	return H_OTHER;
}

/* Append line (without its end) plus CRLF to the header text. */
static int hdr_append(struct state *s, const char *l, size_t len,
                      bool new_field)
{
	struct headers *h = &s->h;

	if (grow(&h->text, &h->cap, h->len + len + 2, 1,
	         MESSAGE_HEADER_MAX + 2) != 0)
		return -1;
	if (new_field) {
		if (grow(&h->f, &h->fcap, h->n + 1, sizeof(*h->f), 1 << 20) != 0)
			return -1;
		h->f[h->n].off = h->len;
		h->f[h->n].len = 0;
		h->f[h->n].namelen = field_name_len(l, len);
		h->f[h->n].kind = field_kind(l, h->f[h->n].namelen);
		h->n++;
	}
	memcpy(h->text + h->len, l, len);
	memcpy(h->text + h->len + len, "\r\n", 2);
	h->len += len + 2;
	h->f[h->n - 1].len += len + 2;
	return 0;
}

enum line_class { L_FIELD, L_CONT, L_END, L_BODY, L_SKIP };

static enum line_class classify(struct state *s, const char *l, size_t len)
{
	if (len == 0)
		return L_END;
	if (s->h.n == 0 && s->h.len == 0 && len >= 5 &&
	    memcmp(l, "From ", 5) == 0)
		return L_SKIP;          /* an mbox separator line */
	if (l[0] == ' ' || l[0] == '\t')
		return s->h.n > 0 ? L_CONT : L_BODY;
	if (field_name_len(l, len) > 0)
		return L_FIELD;
	return L_BODY;
}

/*
 * Collect the next line into s->line. Returns 1 with a whole line
 * (*nl says whether it ended in LF), 0 at EOF with nothing, 2 when the
 * line hit the size bound before its end, -1 on a read error.
 */
static int next_line(struct state *s, bool *nl)
{
	struct reader *r = s->r;
	size_t room = MESSAGE_HEADER_MAX - s->h.len;

	s->linelen = 0;
	*nl = false;
	for (;;) {
		unsigned char *p, *e;
		size_t take;

		if (rd_want(r, 1) != 0)
			return -1;
		if (r->pos == r->len) {
			*nl = false;
			return s->linelen > 0 ? 1 : 0;
		}
		p = r->buf + r->pos;
		e = memchr(p, '\n', r->len - r->pos);
		take = e ? (size_t)(e - p) : r->len - r->pos;
		if (s->linelen + take > room)
			take = room - s->linelen;
		if (grow(&s->line, &s->linecap, s->linelen + take + 1, 1,
		         MESSAGE_HEADER_MAX + 1) != 0)
			return -1;
		memcpy(s->line + s->linelen, p, take);
		s->linelen += take;
		r->pos += take;
		if (e != NULL && p + take == e) {
			r->pos++;
			*nl = true;
			return 1;
		}
		if (s->linelen >= room)
			return 2;
	}
}

static bool is_lone_dot(const char *l, size_t len)
{
	return (len == 1 && l[0] == '.') ||
	       (len == 2 && l[0] == '.' && l[1] == '\r');
}

/* ---- generated fields ---- */

static void format_date(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (strftime(buf, n, "Date: %a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		buf[0] = '\0';
}

static void format_msgid(char *buf, size_t n, const char *domain)
{
	unsigned int rnd[2] = { 0, 0 };
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32];

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd[1] ^= (unsigned int)clock();
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	snprintf(buf, n, "Message-ID: <%s.%ld.%08x%08x@%s>", stamp,
	         (long)getpid(), rnd[0], rnd[1], domain);
}

/* Does the name need quoting as a display name (RFC 5322 phrase)? */
static bool needs_quotes(const char *name)
{
	const char *p;

	if (name[0] == ' ' || name[0] == '\0')
		return true;
	for (p = name; *p != '\0'; p++) {
		if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			return true;
	}
	return p[-1] == ' ';
}

static int format_from(struct state *s, char *buf, size_t n)
{
	const char *name = s->o->fullname;
	const char *addr = s->o->sender;
	char fallback[300];
	size_t i, o = 0;

	if (headers_from_applies(s->o->headers, addr))
		addr = s->o->headers->from;     /* from-header */
	if (addr[0] == '\0') {
		snprintf(fallback, sizeof(fallback), "MAILER-DAEMON@%s",
		         s->o->domain);
		addr = fallback;
	}
	if (name == NULL || name[0] == '\0') {
		snprintf(buf, n, "From: %s", addr);
		return 0;
	}
	o = (size_t)snprintf(buf, n, "From: ");
	if (needs_quotes(name))
		buf[o++] = '"';
	for (i = 0; name[i] != '\0' && o + 4 < n; i++) {
		if (needs_quotes(name) && (name[i] == '"' || name[i] == '\\'))
			buf[o++] = '\\';
		buf[o++] = name[i];
	}
	if (needs_quotes(name))
		buf[o++] = '"';
	snprintf(buf + o, n - o, " <%s>", addr);
	return 0;
}

/* ---- the header section, once read ---- */

static int collect_rcpts(struct state *s, bool resent)
{
	size_t i;

	for (i = 0; i < s->h.n; i++) {
		const struct field *f = &s->h.f[i];
		const char *v = s->h.text + f->off;
		size_t colon = (size_t)((const char *)memchr(v, ':', f->len) - v);
		bool want = resent ? (f->kind == H_RTO || f->kind == H_RCC ||
		                      f->kind == H_RBCC)
		                   : (f->kind == H_TO || f->kind == H_CC ||
		                      f->kind == H_BCC);
		char why[200];
		char name[32];

		if (!want)
			continue;
		if (addr_parse_list(v + colon + 1, f->len - colon - 3,
		                    &s->m->rcpts, why, sizeof(why)) != 0) {
			snprintf(name, sizeof(name), "%.*s", (int)f->namelen, v);
			snprintf(s->err, s->errlen, "bad address in %s: field: %s",
			         name, why);
			return (int)OB_DATAERR;
		}
	}
	return OB_OK;
}

static bool has_kind(const struct headers *h, enum hkind k)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (h->f[i].kind == k)
			return true;
	}
	return false;
}

/* Add ", NAME added" to the list of changed fields (bounded). */
static void note_added(struct message *m, const char *name)
{
	size_t n = strlen(m->changed);

	if (n + strlen(name) + 9 < sizeof(m->changed))
		snprintf(m->changed + n, sizeof(m->changed) - n, "%s%s added",
		         n ? ", " : "", name);
}

/* Keep the first From field written, unfolded, for -bv. */
static void keep_from(struct state *s, const char *t, size_t len)
{
	size_t i, k = 0;

	if (s->m->from_field != NULL)
		return;
	s->m->from_field = malloc(len + 1);
	if (s->m->from_field == NULL)
		return;
	for (i = 0; i < len; i++) {
		if (t[i] != '\r' && t[i] != '\n')
			s->m->from_field[k++] = t[i];
	}
	s->m->from_field[k] = '\0';
}

/* The policy's changes to the address fields (headers.h), into ho. */
static int rewrite_fields(struct state *s, struct headers_out *ho)
{
	struct headers_field *hf;
	size_t i;
	int rc;

	memset(ho, 0, sizeof(*ho));
	if (s->o->headers == NULL)
		return 0;
	hf = calloc(s->h.n ? s->h.n : 1, sizeof(*hf));
	if (hf == NULL)
		return -1;
	for (i = 0; i < s->h.n; i++) {
		hf[i].text = s->h.text + s->h.f[i].off;
		hf[i].len = s->h.f[i].len;
	}
	rc = headers_rewrite(hf, s->h.n, s->o->headers, ho);
	free(hf);
	if (rc != 0)
		return -1;
	s->m->from_rewritten = ho->from_rewritten;
	str_copy(s->m->old_from, sizeof(s->m->old_from), ho->old_from);
	str_copy(s->m->changed, sizeof(s->m->changed), ho->summary);
	return 0;
}

/* The message's own fields: Bcc dropped, rewritten ones replaced. */
static void emit_fields(struct state *s, const struct headers_out *ho)
{
	const struct headers *h = &s->h;
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *t = h->text + h->f[i].off;
		size_t len = h->f[i].len;

		if (h->f[i].kind == H_BCC || h->f[i].kind == H_RBCC) {
			continue;
		}
		if (ho->text != NULL && ho->text[i] != NULL) {
			t = ho->text[i];
			len = ho->len[i];
		}
		wr_put(s->w, t, len);
		if (h->f[i].kind == H_FROM)
			keep_from(s, t, len);
		if (ho->added != NULL && ho->added_after == i)
			wr_put(s->w, ho->added, ho->added_len);
	}
}

/* A field outbox generates, with its CRLF. */
static void emit_added(struct state *s, const char *line, const char *name)
{
	wr_str(s->w, line);
	wr_str(s->w, "\r\n");
	note_added(s->m, name);
}

static int emit_headers(struct state *s)
{
	struct headers *h = &s->h;
	struct headers_out ho;
	char line[700];
	size_t i;
	int rc;

	if (s->o->extract_rcpts) {
		rc = collect_rcpts(s, has_kind(h, H_RTO) || has_kind(h, H_RCC) ||
		                      has_kind(h, H_RBCC));
		if (rc != OB_OK)
			return rc;
	}
	if (rewrite_fields(s, &ho) != 0)
		return fail(s, OB_SOFTWARE, "%s", "out of memory");
	emit_fields(s, &ho);
	headers_out_free(&ho, h->n);
	for (i = 0; i < h->n && h->f[i].kind != H_BCC; i++)
		;
	if (i < h->n && !has_kind(h, H_TO) && !has_kind(h, H_CC))
		emit_added(s, "To: undisclosed-recipients:;", "To");
	if (!has_kind(h, H_FROM)) {
		format_from(s, line, sizeof(line));
		emit_added(s, line, "From");
		keep_from(s, line, strlen(line));
		s->m->added_from = true;
	}
	if (!has_kind(h, H_DATE)) {
		format_date(line, sizeof(line));
		emit_added(s, line, "Date");
		s->m->added_date = true;
	}
	if (!has_kind(h, H_MSGID)) {
		format_msgid(line, sizeof(line), s->o->domain);
		emit_added(s, line, "Message-ID");
		s->m->added_msgid = true;
	}
	wr_str(s->w, "\r\n");
	return OB_OK;
}

/* ---- the two phases ---- */

/*
 * Read header lines until the separator, EOF, a lone dot or the first
 * body line. *body says what is left in s->line for the body phase:
 * 0 nothing, 1 a whole line (*nl: it ended in LF), 2 a partial line.
 * *ended is set when the input ended (EOF or lone dot).
 */
static int header_phase(struct state *s, int *body, bool *nl, bool *ended)
{
	for (;;) {
		int r = next_line(s, nl);
		size_t len = s->linelen;
		enum line_class c;

		if (r < 0)
			return fail(s, OB_IOERR, "cannot read the message: %s",
			            strerror(errno));
		if (r == 0) {
			*ended = true;
			return OB_OK;
		}
		if (r == 1 && len > 0 && s->line[len - 1] == '\r')
			len--;
		if (r == 1 && !s->o->ignore_dots && is_lone_dot(s->line, len)) {
			*ended = true;
			return OB_OK;
		}
		c = classify(s, s->line, len);
		if (r == 2 && (c == L_FIELD || c == L_CONT ||
		               (s->h.n > 0 && maybe_field(s->line, len))))
			return fail(s, OB_DATAERR, "%s", "header section larger "
			            "than 1 MiB");
		if (r == 2 || c == L_BODY) {
			*body = r;
			return OB_OK;
		}
		if (c == L_END)
			return OB_OK;
		if (c != L_SKIP && hdr_append(s, s->line, len, c == L_FIELD) != 0)
			return fail(s, OB_SOFTWARE, "%s", "out of memory");
		if (!*nl) {
			*ended = true;
			return OB_OK;
		}
	}
}

/* Copy the body through, from the current input position. */
static int body_phase(struct state *s, bool at_start)
{
	struct reader *r = s->r;

	for (;;) {
		unsigned char *p, *e;
		size_t n;

		if (rd_want(r, at_start && !s->o->ignore_dots ? 3 : 1) != 0)
			return fail(s, OB_IOERR, "cannot read the message: %s",
			            strerror(errno));
		p = r->buf + r->pos;
		n = r->len - r->pos;
		if (n == 0)
			break;
		if (at_start && !s->o->ignore_dots && p[0] == '.' &&
		    (n == 1 || p[1] == '\n' ||
		     (p[1] == '\r' && (n == 2 || p[2] == '\n'))))
			return OB_OK;
		e = memchr(p, '\n', n);
		if (e == NULL) {
			wr_put(s->w, p, n);
			r->pos += n;
			at_start = false;
			continue;
		}
		wr_put(s->w, p, (size_t)(e - p));
		wr_eol(s->w);
		r->pos += (size_t)(e - p) + 1;
		at_start = true;
	}
	if (!at_start)
		wr_eol(s->w);
	return OB_OK;
}

static bool bad_fullname(const char *name)
{
	const unsigned char *p;

	if (name == NULL)
		return false;
	if (strlen(name) > FULLNAME_MAX)
		return true;
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < ' ' || *p == 0x7f)
			return true;
	}
	return false;
}

static int run(struct state *s)
{
	int body = 0;
	bool nl = false, ended = false;
	int rc;

	if (bad_fullname(s->o->fullname))
		return fail(s, OB_DATAERR, "%s", "full name (-F) too long or "
		            "with control characters");
	rc = header_phase(s, &body, &nl, &ended);
	if (rc != OB_OK)
		return rc;
	rc = emit_headers(s);
	if (rc != OB_OK)
		return rc;
	if (body != 0) {
		wr_put(s->w, s->line, s->linelen);
		if (nl)
			wr_eol(s->w);
	}
	if (!ended)
		rc = body_phase(s, body == 0 || nl);
	return rc;
}

enum ob_status message_read(int in, int out, const struct message_opts *o,
                            struct message *m, char *err, size_t errlen)
{
	struct state s;
	int rc;

	memset(m, 0, sizeof(*m));
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.m = m;
	s.err = err;
	s.errlen = errlen;
	/* malloc, and only the fields zeroed: the two 64 KB buffers need
	 * no clearing (calloc's would be a tenth of a plain send's work) */
	s.r = malloc(sizeof(*s.r));
	s.w = malloc(sizeof(*s.w));
	if (s.r != NULL)
		memset(s.r, 0, offsetof(struct reader, buf));
	if (s.w != NULL)
		memset(s.w, 0, offsetof(struct writer, out) +
		       offsetof(struct outbuf, buf));
	if (s.r == NULL || s.w == NULL) {
		rc = fail(&s, OB_SOFTWARE, "%s", "out of memory");
	} else {
		s.r->fd = in;
		s.w->out.fd = out;
		s.w->last = '\n';
		rc = run(&s);
		outbuf_flush(&s.w->out);
		if (rc == OB_OK && s.w->out.failed && errno_disk_full(s.w->out.error))
			rc = fail(&s, OB_TEMPFAIL, "cannot write the spool file: %s "
			          "(nothing was sent or queued; try again when there "
			          "is room)", strerror(s.w->out.error));
		else if (rc == OB_OK && s.w->out.failed)
			rc = fail(&s, OB_CANTCREAT, "cannot write the spool file: "
			          "%s", strerror(s.w->out.error));
		m->size = s.w->out.total;
		m->eightbit = s.w->eightbit;
		m->longest_line = s.w->longest > s.w->linelen ? s.w->longest
		                                              : s.w->linelen;
	}
	free(s.r);
	free(s.w);
	free(s.line);
	free(s.h.text);
	free(s.h.f);
	return (enum ob_status)rc;
}

void message_free(struct message *m)
{
	if (m == NULL)
		return;
	addr_list_free(&m->rcpts);
	free(m->from_field);
	m->from_field = NULL;
}
