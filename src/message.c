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

#include "message_int.h"
#include "util.h"


enum hkind {
	H_OTHER = 0, H_TO, H_CC, H_BCC, H_RTO, H_RCC, H_RBCC,
	H_FROM, H_DATE, H_MSGID, H_CTYPE, H_CTE
};

static const struct {
	const char *name;
	enum hkind kind;
} HEADERS[] = {
	{ "To", H_TO }, { "Cc", H_CC }, { "Bcc", H_BCC },
	{ "Resent-To", H_RTO }, { "Resent-Cc", H_RCC },
	{ "Resent-Bcc", H_RBCC }, { "From", H_FROM }, { "Date", H_DATE },
	{ "Message-ID", H_MSGID }, { "Content-Type", H_CTYPE },
	{ "Content-Transfer-Encoding", H_CTE },
};

struct field {
	size_t off;       /* into hdrs.text */
	size_t len;       /* whole field, all lines, CRLF-terminated */
	size_t namelen;
	enum hkind kind;
};

struct writer {
	bool eightbit;
	unsigned char last;     /* last byte written */
	size_t linelen, longest;
	message_sink sink;      /* where the bytes go */
	void *sink_arg;
	off_t total;            /* bytes given to the sink */
};

struct headers {
	char *text;             /* all fields, CRLF line ends */
	size_t len, cap;
	struct field *f;
	size_t n, fcap;
};

enum phase { P_HEAD, P_BODY, P_DONE };

struct state {
	const struct message_opts *o;
	struct message *m;
	struct writer *w;
	struct headers h;
	char *line;             /* the header-phase line being collected */
	size_t linelen, linecap;
	char *err;
	size_t errlen;
};

/* The push parser: the state of both phases between two feeds. */
struct message_parser {
	struct state s;
	struct writer w;
	enum phase phase;
	int rc;                 /* sticky: the first error */
	bool held_cr;           /* the last byte fed was a CR: its meaning
	                           (line end or CRLF) comes with the next */
	bool at_start;          /* body: at the start of a line */
	char pend[2];           /* body: "." or ".\r" at a line start, not yet
	                           known to be the lone dot or text */
	size_t npend;
	char err[256];
};

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
	w->sink(w->sink_arg, p, len);
	w->total += (off_t)len;
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

static bool is_lone_dot(const char *l, size_t len)
{
	return (len == 1 && l[0] == '.') ||
	       (len == 2 && l[0] == '.' && l[1] == '\r');
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
/* The value of the first field of kind k, unfolded, without the blanks
 * around it, into buf ("" when there is none; cut at size). */
static void keep_value(const struct headers *h, enum hkind k, char *buf,
                       size_t size)
{
	const struct field *f = NULL;
	const char *v, *e;
	size_t i, n = 0;

	for (i = 0; i < h->n && f == NULL; i++)
		f = h->f[i].kind == k ? &h->f[i] : NULL;
	buf[0] = '\0';
	if (f == NULL)
		return;
	v = memchr(h->text + f->off, ':', f->len);
	e = h->text + f->off + f->len;
	for (v++; v < e && n + 1 < size; v++) {
		if (*v == '\r' || *v == '\n')
			continue;
		if ((*v == ' ' || *v == '\t') && (n == 0 || buf[n - 1] == ' '))
			continue;
		buf[n++] = *v == '\t' ? ' ' : *v;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}

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

	keep_value(h, H_CTYPE, s->m->content_type,
	           sizeof(s->m->content_type));
	keep_value(h, H_CTE, s->m->transfer_encoding,
	           sizeof(s->m->transfer_encoding));
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
		message_field_from(s->o, line, sizeof(line));
		emit_added(s, line, "From");
		keep_from(s, line, strlen(line));
		s->m->added_from = true;
	}
	if (!has_kind(h, H_DATE)) {
		message_field_date(line, sizeof(line));
		emit_added(s, line, "Date");
		s->m->added_date = true;
	}
	if (!has_kind(h, H_MSGID)) {
		message_field_msgid(line, sizeof(line), s->o->domain);
		emit_added(s, line, "Message-ID");
		s->m->added_msgid = true;
	}
	wr_str(s->w, "\r\n");
	return OB_OK;
}

/* ---- the two phases, pushed ---- */

/* The header section is over: write it; the body follows. */
static int to_body(struct message_parser *p, bool at_start)
{
	int rc = emit_headers(&p->s);

	p->phase = P_BODY;
	p->at_start = at_start;
	return rc;
}

/*
 * One header-phase line in s->line (without its LF; a CR before it is
 * still there). whole: it ended in LF (else it hit the size bound, or
 * the input ended without a line end: eof).
 */
static int header_line(struct message_parser *p, bool whole, bool eof)
{
	struct state *s = &p->s;
	size_t len = s->linelen;
	enum line_class c;
	int rc;

	if ((whole || eof) && len > 0 && s->line[len - 1] == '\r')
		len--;
	if ((whole || eof) && !s->o->ignore_dots && is_lone_dot(s->line, len)) {
		p->phase = P_DONE;
		return emit_headers(s);
	}
	c = classify(s, s->line, len);
	if (!whole && !eof && (c == L_FIELD || c == L_CONT ||
	                       (s->h.n > 0 && maybe_field(s->line, len))))
		return fail(s, OB_DATAERR, "%s", "header section larger "
		            "than 1 MiB");
	if ((!whole && !eof) || c == L_BODY) {
		/* the first body line: written as it came (a cut-off one
		 * goes on in the body phase) */
		rc = to_body(p, false);
		wr_put(s->w, s->line, s->linelen);
		if (whole) {
			wr_eol(s->w);
			p->at_start = true;
		}
		s->linelen = 0;
		return rc;
	}
	s->linelen = 0;
	if (c == L_END)
		return to_body(p, true);
	if (c != L_SKIP && hdr_append(s, s->line, len, c == L_FIELD) != 0)
		return fail(s, OB_SOFTWARE, "%s", "out of memory");
	return OB_OK;
}

/* Header phase: collect lines from d[0..n) (LF line ends, bare CRs
 * already made LF). Returns the bytes taken: all, or fewer when the
 * phase ended (the rest belongs to the body). */
static size_t head_take(struct message_parser *p, const char *d, size_t n,
                        int *rc)
{
	struct state *s = &p->s;
	size_t used = 0;

	while (used < n && p->phase == P_HEAD && *rc == OB_OK) {
		size_t have = s->h.len + s->linelen;
		size_t room = have < MESSAGE_HEADER_MAX ? MESSAGE_HEADER_MAX - have
		                                        : 0;
		const char *e = memchr(d + used, '\n', n - used);
		size_t take = e ? (size_t)(e - d - used) : n - used;
		bool whole = e != NULL && take <= room;

		if (take > room)
			take = room;
		if (grow(&s->line, &s->linecap, s->linelen + take + 1, 1,
		         MESSAGE_HEADER_MAX + 1) != 0) {
			*rc = fail(s, OB_SOFTWARE, "%s", "out of memory");
			break;
		}
		memcpy(s->line + s->linelen, d + used, take);
		s->linelen += take;
		used += take + (whole ? 1 : 0);
		if (whole || s->linelen + s->h.len >= MESSAGE_HEADER_MAX)
			*rc = header_line(p, whole, false);
	}
	return used;
}

/* Body phase: copy d[0..n) through, line ends made CRLF, watching for
 * the lone dot at each line start. */
static void body_take(struct message_parser *p, const char *d, size_t n)
{
	struct writer *w = p->s.w;
	bool dots = !p->s.o->ignore_dots;
	size_t i = 0;

	while (i < n && p->phase == P_BODY) {
		const char *e;

		if (p->at_start && dots && (p->npend > 0 || d[i] == '.')) {
			char c = d[i];

			if (p->npend == 0 || (p->npend == 1 && c == '\r')) {
				p->pend[p->npend++] = c;    /* "." or ".\r" */
				i++;
				continue;
			}
			if (c == '\n') {                    /* the lone dot */
				p->phase = P_DONE;
				return;
			}
			wr_put(w, p->pend, p->npend);       /* ".x": text */
			p->npend = 0;
			p->at_start = false;
			continue;
		}
		e = memchr(d + i, '\n', n - i);
		if (e == NULL) {
			wr_put(w, d + i, n - i);
			p->at_start = false;
			return;
		}
		wr_put(w, d + i, (size_t)(e - d - i));
		wr_eol(w);
		i = (size_t)(e - d) + 1;
		p->at_start = true;
	}
}

/* d[0..n), bare CRs already LF: to the phase that takes it. */
static int to_phases(struct message_parser *p, const char *d, size_t n)
{
	int rc = OB_OK;
	size_t used = 0;

	if (p->phase == P_HEAD)
		used = head_take(p, d, n, &rc);
	if (rc == OB_OK && p->phase == P_BODY && used < n)
		body_take(p, d + used, n - used);
	return rc;
}

struct message_parser *message_parser_new(const struct message_opts *o,
                                          struct message *m,
                                          message_sink sink, void *arg)
{
	struct message_parser *p = calloc(1, sizeof(*p));

	memset(m, 0, sizeof(*m));
	if (p == NULL)
		return NULL;
	p->s.o = o;
	p->s.m = m;
	p->s.w = &p->w;
	p->s.err = p->err;
	p->s.errlen = sizeof(p->err);
	p->w.sink = sink;
	p->w.sink_arg = arg;
	p->w.last = '\n';
	if (message_bad_fullname(o->fullname))
		p->rc = fail(&p->s, OB_DATAERR, "%s", "full name (-F) too long "
		             "or with control characters");
	return p;
}

/*
 * A CR not followed by LF is a line ending: it becomes LF before the
 * phases see the bytes, so that no byte sequence can end DATA early at a
 * relay that takes a bare CR as a line end. A CR that is the last byte
 * fed waits for the next byte (or the end) to say what it is.
 */
enum ob_status message_parser_feed(struct message_parser *p,
                                   const void *buf, size_t len)
{
	const char *d = buf;
	size_t i = 0;

	while (i < len && p->rc == OB_OK && p->phase != P_DONE) {
		const char *cr;
		size_t span;

		if (p->held_cr) {
			p->held_cr = false;
			if (d[i] == '\n') {
				p->rc = to_phases(p, "\r\n", 2);
				i++;
			} else {
				p->rc = to_phases(p, "\n", 1);
			}
			continue;
		}
		cr = memchr(d + i, '\r', len - i);
		span = cr != NULL ? (size_t)(cr - d - i) : len - i;
		if (span > 0)
			p->rc = to_phases(p, d + i, span);
		i += span;
		if (cr != NULL) {
			p->held_cr = true;
			i++;
		}
	}
	return (enum ob_status)p->rc;
}

bool message_parser_done(const struct message_parser *p)
{
	return p->phase == P_DONE;
}

enum ob_status message_parser_end(struct message_parser *p)
{
	if (p->rc == OB_OK && p->held_cr && p->phase != P_DONE) {
		p->held_cr = false;
		p->rc = to_phases(p, "\n", 1);       /* a CR at the end: a line end */
	}
	if (p->rc == OB_OK && p->phase == P_HEAD)
		p->rc = p->s.linelen > 0 ? header_line(p, false, true)
		                         : (p->phase = P_DONE,
		                            emit_headers(&p->s));
	if (p->rc == OB_OK && p->phase == P_HEAD)
		p->rc = to_body(p, true);       /* a last field without LF */
	if (p->rc == OB_OK && p->phase == P_BODY && p->npend > 0)
		p->phase = P_DONE;              /* "." at the end: the lone dot */
	if (p->rc == OB_OK && p->phase == P_BODY && !p->at_start)
		wr_eol(p->s.w);
	p->phase = P_DONE;
	p->s.m->size = p->w.total;
	p->s.m->eightbit = p->w.eightbit;
	p->s.m->longest_line = p->w.longest > p->w.linelen ? p->w.longest
	                                                   : p->w.linelen;
	return (enum ob_status)p->rc;
}

const char *message_parser_error(const struct message_parser *p)
{
	return p->err;
}

void message_parser_free(struct message_parser *p)
{
	if (p == NULL)
		return;
	free(p->s.line);
	free(p->s.h.text);
	free(p->s.h.f);
	free(p);
}

void message_free(struct message *m)
{
	if (m == NULL)
		return;
	addr_list_free(&m->rcpts);
	free(m->from_field);
	m->from_field = NULL;
}
