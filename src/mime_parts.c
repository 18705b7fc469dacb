/*
 * mime_parts.c - 8-bit text parts of a MIME structure re-encoded as
 * quoted-printable (see mime_parts.h).
 *
 * The message is read as lines (a line longer than the read buffer comes
 * in pieces and is never a boundary line). A stack holds the boundaries
 * of the open multiparts; every whole line is first compared with them.
 * States: the header section of an entity (held, then written as it is
 * or with its Content-Transfer-Encoding replaced), a body copied as it
 * is, a body re-encoded (the line end before a boundary line is held
 * back: it belongs to the boundary), and a preamble or epilogue.
 */
#define _GNU_SOURCE
#include "mime_parts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime_int.h"

#define RD_BUF (64 * 1024)
#define HDR_CAP (1024 * 1024 + 4096)    /* a header section, as mime.c */
#define BND_MAX 200             /* RFC 2046 says 70; be lenient */
#define TYPE_MAX 80

/* A reader of fd by lines, from a given offset (pread: two readers can
 * share fd). */
struct rd {
	int fd;
	off_t off;              /* file offset of buf[end] */
	size_t start, end;      /* unread bytes: buf[start..end) */
	bool midline;           /* the next piece continues a line */
	bool eof;
	unsigned char buf[RD_BUF];
};

struct frame {
	char b[BND_MAX];
	size_t blen;
	bool digest;            /* multipart/digest: parts default to message */
};

enum state { S_HEADER, S_COPY, S_QP, S_OUTSIDE };

struct walk {
	struct rd in, ahead;
	struct outbuf *o;
	struct mime_qp q;
	struct frame stack[MIME_PARTS_DEPTH];
	size_t depth;
	enum state st;
	bool top;               /* the header section is the message's own */
	bool in_digest;         /* the part being read defaults to message */
	char *hdr;
	size_t hlen;
	char pend[2];           /* S_QP: the line end held back */
	size_t npend;
	char kind[TYPE_MAX + 40]; /* S_COPY: the part, for a log line */
	bool broken;            /* the structure cannot be followed */
	bool io_error;
	struct mime_7bit *r;
};

static void rd_init(struct rd *r, int fd, off_t off)
{
	r->fd = fd;
	r->off = off;
	r->start = r->end = 0;
	r->midline = false;
	r->eof = false;
}

/* Offset of the next byte the reader gives. */
static off_t rd_tell(const struct rd *r)
{
	return r->off - (off_t)(r->end - r->start);
}

static int rd_fill(struct rd *r)
{
	size_t avail = r->end - r->start;
	ssize_t got;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, avail);
		r->start = 0;
		r->end = avail;
	}
	do {
		got = pread(r->fd, r->buf + r->end, RD_BUF - r->end, r->off);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return -1;
	if (got == 0)
		r->eof = true;
	r->off += got;
	r->end += (size_t)got;
	return 0;
}

/* The next piece of a line, up to and including its LF; *whole when it
 * is a whole line. A piece cut short never ends with the CR of a CRLF.
 * Returns 1, 0 at the end, -1 when fd cannot be read. */
static int rd_piece(struct rd *r, const unsigned char **p, size_t *n,
                    bool *whole)
{
	for (;;) {
		size_t avail = r->end - r->start, len;
		unsigned char *s = r->buf + r->start;
		unsigned char *lf = memchr(s, '\n', avail);

		if (lf == NULL && !r->eof && avail < RD_BUF) {
			if (rd_fill(r) != 0)
				return -1;
			continue;
		}
		len = lf != NULL ? (size_t)(lf - s) + 1 : avail;
		if (len == 0)
			return 0;
		if (lf == NULL && !r->eof && len > 1 && s[len - 1] == '\r')
			len--;
		*p = s;
		*n = len;
		*whole = !r->midline && (lf != NULL || r->eof);
		r->midline = lf == NULL;
		r->start += len;
		return 1;
	}
}

static bool has_8bit(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] >= 0x80)
			return true;
	}
	return false;
}

/* Length of the line end (CRLF or LF) that ends p[0..n), 0 when none. */
static size_t eol_len(const unsigned char *p, size_t n)
{
	if (n == 0 || p[n - 1] != '\n')
		return 0;
	return n >= 2 && p[n - 2] == '\r' ? 2 : 1;
}

/* The first reason why 8-bit bytes remain (a later one is not kept). */
static void note(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	if (w->r->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->r->why, sizeof(w->r->why), fmt, ap);
	va_end(ap);
}

/* The structure cannot be followed: the message goes as it is. */
static void fail(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	if (w->broken)
		return;
	w->broken = true;
	va_start(ap, fmt);
	vsnprintf(w->r->why, sizeof(w->r->why), fmt, ap);
	va_end(ap);
}

/* ---- the fields of a header section ---- */

static size_t skip_cfws(const char *v, size_t i, size_t n)
{
	int nest = 0;

	for (; i < n; i++) {
		if (v[i] == '(')
			nest++;
		else if (v[i] == ')' && nest > 0)
			nest--;
		else if (nest == 0 && v[i] != ' ' && v[i] != '\t' &&
		         v[i] != '\r' && v[i] != '\n')
			break;
	}
	return i;
}

static bool tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?= \t\r\n", c) != NULL ||
	       (unsigned char)c < 33 || (unsigned char)c > 126;
}

/* A token (or type/subtype when slash) at v[i], lower-cased into out;
 * the index after it. */
static size_t token(const char *v, size_t i, size_t n, bool slash,
                    char *out, size_t outlen)
{
	size_t k = 0;

	for (; i < n && (!tspecial(v[i]) || (slash && v[i] == '/')); i++) {
		if (k + 1 < outlen) {
			char c = v[i];

			out[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
	}
	out[k] = '\0';
	return i;
}

/* A parameter value (token or quoted-string) at v[i] into out
 * (*outlen: its length, or BND_MAX + 1 when too long). */
static size_t param_value(const char *v, size_t i, size_t n, char *out,
                          size_t *outlen)
{
	size_t k = 0;
	bool quoted = i < n && v[i] == '"';

	if (quoted)
		i++;
	for (; i < n; i++) {
		char c = v[i];

		if (quoted && c == '"') {
			i++;
			break;
		}
		if (!quoted && tspecial(c))
			break;
		if (quoted && c == '\\' && i + 1 < n)
			c = v[++i];
		if (quoted && (c == '\r' || c == '\n'))
			continue;       /* folded inside the quotes */
		if (k < BND_MAX)
			out[k] = c;
		k++;
	}
	*outlen = k <= BND_MAX ? k : BND_MAX + 1;
	return i;
}

/* Content-Type's type/subtype (lower case; "" when absent) and its
 * boundary parameter (*blen 0 when none). */
static void content_type(const char *hdr, size_t n, char *type,
                         char *bnd, size_t *blen)
{
	size_t len = 0, i;
	const char *v = mime_field(hdr, n, "Content-Type", &len);

	type[0] = '\0';
	*blen = 0;
	if (v == NULL)
		return;
	i = token(v, skip_cfws(v, 0, len), len, true, type, TYPE_MAX);
	while (i < len) {
		char name[40], val[BND_MAX];
		size_t vlen;

		i = skip_cfws(v, i, len);
		if (i >= len || v[i] != ';') {
			i++;
			continue;
		}
		i = token(v, skip_cfws(v, i + 1, len), len, false, name,
		          sizeof(name));
		i = skip_cfws(v, i, len);
		if (i >= len || v[i] != '=')
			continue;
		i = param_value(v, skip_cfws(v, i + 1, len), len, val, &vlen);
		if (strcmp(name, "boundary") == 0 && *blen == 0) {
			memcpy(bnd, val, vlen <= BND_MAX ? vlen : 0);
			*blen = vlen;
		}
	}
}

/* Content-Transfer-Encoding in lower case ("" when absent). */
static void transfer_encoding(const char *hdr, size_t n, char *cte,
                              size_t ctelen)
{
	size_t len = 0;
	const char *v = mime_field(hdr, n, "Content-Transfer-Encoding", &len);

	cte[0] = '\0';
	if (v != NULL)
		token(v, skip_cfws(v, 0, len), len, false, cte, ctelen);
}

/* Is every line of hdr a field ("name:", no blank before the colon: an
 * obsolete "name :" is not looked up, so it is not a part to rewrite) or
 * the continuation of one? */
static bool fields_only(const char *hdr, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(hdr + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - hdr) + 1 : n, k = i;

		if (hdr[i] == ' ' || hdr[i] == '\t') {
			if (i == 0)
				return false;
		} else {
			while (k < end && hdr[k] > 32 && hdr[k] < 127 &&
			       hdr[k] != ':')
				k++;
			if (k == i || k >= end || hdr[k] != ':')
				return false;
		}
		i = end;
	}
	return true;
}

/* ---- what each entity becomes ---- */

/* Write the header section without its Content-Transfer-Encoding field,
 * adding one for quoted-printable. */
static void put_recoded_header(struct walk *w)
{
	static const char cte[] = "Content-Transfer-Encoding:";
	size_t i = 0;
	bool skipping = false;

	while (i < w->hlen) {
		const char *nl = memchr(w->hdr + i, '\n', w->hlen - i);
		size_t end = nl != NULL ? (size_t)(nl - w->hdr) + 1 : w->hlen;

		if (w->hdr[i] != ' ' && w->hdr[i] != '\t')
			skipping = end - i >= sizeof(cte) - 1 &&
			           str_nieq(w->hdr + i, cte, sizeof(cte) - 1);
		if (!skipping)
			outbuf_put(w->o, w->hdr + i, end - i);
		i = end;
	}
	outbuf_put(w->o, "Content-Transfer-Encoding: quoted-printable\r\n",
	           45);
}

/* Are there 8-bit bytes in the body that starts at in's position (up to
 * the next boundary line of an open multipart, or the end)? 1, 0, or -1
 * when fd cannot be read. */
static int body_has_8bit(struct walk *w);

/* A multipart entity: its boundary on the stack; a preamble follows. */
static void open_multipart(struct walk *w, const char *type,
                           const char *bnd, size_t blen)
{
	struct frame *f;
	size_t i;

	if (blen == 0 || blen > BND_MAX) {
		fail(w, "a part of type %s has %s boundary parameter", type,
		     blen == 0 ? "no" : "an over-long");
		return;
	}
	for (i = 0; i < w->depth; i++) {
		if (w->stack[i].blen == blen &&
		    memcmp(w->stack[i].b, bnd, blen) == 0) {
			fail(w, "a nested multipart has its parent's boundary");
			return;
		}
	}
	if (w->depth == MIME_PARTS_DEPTH) {
		fail(w, "multiparts are nested more than %d deep",
		     MIME_PARTS_DEPTH);
		return;
	}
	f = &w->stack[w->depth++];
	memcpy(f->b, bnd, blen);
	f->blen = blen;
	f->digest = strcmp(type, "multipart/digest") == 0;
	w->st = S_OUTSIDE;
}

/* A text part: re-encoded when its body holds 8-bit bytes. */
static void text_part(struct walk *w, const unsigned char *eol, size_t n)
{
	int eight = body_has_8bit(w);

	if (eight < 0) {
		w->io_error = true;
		return;
	}
	if (eight == 0) {
		outbuf_put(w->o, w->hdr, w->hlen);
		w->st = S_COPY;
	} else {
		put_recoded_header(w);
		w->st = S_QP;
		w->q.o = w->o;
		w->q.col = 0;
		w->q.held = -1;
		w->npend = 0;
		w->r->parts++;
	}
	outbuf_put(w->o, eol, n);
}

/* The header section is complete (eol: the empty line that ends it). */
static void header_done(struct walk *w, const unsigned char *eol, size_t n)
{
	char type[TYPE_MAX], cte[40], bnd[BND_MAX];
	size_t blen = 0;
	bool plain, fields = fields_only(w->hdr, w->hlen);

	content_type(w->hdr, w->hlen, type, bnd, &blen);
	transfer_encoding(w->hdr, w->hlen, cte, sizeof(cte));
	if (type[0] == '\0')
		str_copy(type, TYPE_MAX, w->in_digest ? "message/rfc822" :
		         "text/plain");
	plain = cte[0] == '\0' || strcmp(cte, "7bit") == 0 ||
	        strcmp(cte, "8bit") == 0 || strcmp(cte, "binary") == 0;
	if (!fields)
		note(w, "a part's header section is not header fields");
	else if (!w->top && has_8bit(w->hdr, w->hlen))
		note(w, "a part of type %s has 8-bit bytes in its header "
		     "fields", type);
	w->top = false;
	w->in_digest = false;
	if (fields && plain && strncmp(type, "text/", 5) == 0) {
		text_part(w, eol, n);
		w->hlen = 0;
		return;
	}
	outbuf_put(w->o, w->hdr, w->hlen);
	outbuf_put(w->o, eol, n);
	w->hlen = 0;
	w->st = S_COPY;
	snprintf(w->kind, sizeof(w->kind), "a part of type %s in %s", type,
	         cte[0] != '\0' ? cte : "7bit");
	if (!fields)
		snprintf(w->kind, sizeof(w->kind), "a part whose header section "
		         "is not header fields");
	else if (plain && strncmp(type, "multipart/", 10) == 0)
		open_multipart(w, type, bnd, blen);
	else if (plain && strcmp(type, "message/rfc822") == 0)
		w->st = S_HEADER;       /* its body is a message: walk into it */
}

/* The entity being read ends (at a boundary line or the end). */
static void end_entity(struct walk *w)
{
	if (w->st == S_HEADER) {
		if (!w->top && has_8bit(w->hdr, w->hlen))
			note(w, "a part has 8-bit bytes in its header fields");
		outbuf_put(w->o, w->hdr, w->hlen);
	} else if (w->st == S_QP) {
		mime_qp_end(&w->q);
		outbuf_put(w->o, w->pend, w->npend);
	}
	w->hlen = 0;
	w->npend = 0;
}

static void on_boundary(struct walk *w, size_t k, bool close,
                        const unsigned char *p, size_t n)
{
	if (k + 1 != w->depth) {
		fail(w, "a multipart ends without its closing boundary");
		return;
	}
	end_entity(w);
	outbuf_put(w->o, p, n);
	if (close) {
		w->depth--;
		w->st = S_OUTSIDE;
		return;
	}
	w->st = S_HEADER;
	w->top = false;
	w->in_digest = w->stack[k].digest;
}

/* One piece of a line, in the current state. */
static void piece(struct walk *w, const unsigned char *p, size_t n,
                  bool whole)
{
	size_t e = eol_len(p, n), i;

	switch (w->st) {
	case S_HEADER:
		if (whole && e == n) {
			header_done(w, p, n);
		} else if (w->hlen + n > HDR_CAP) {
			fail(w, "a header section is over %d octets", HDR_CAP);
		} else {
			memcpy(w->hdr + w->hlen, p, n);
			w->hlen += n;
		}
		return;
	case S_QP:
		for (i = 0; i < w->npend; i++)
			mime_qp_byte(&w->q, (unsigned char)w->pend[i]);
		for (i = 0; i < n - e; i++)
			mime_qp_byte(&w->q, p[i]);
		memcpy(w->pend, p + n - e, e);
		w->npend = e;
		return;
	case S_COPY:
		if (has_8bit(p, n))
			note(w, "%s has 8-bit bytes", w->kind);
		break;
	case S_OUTSIDE:
		if (has_8bit(p, n))
			note(w, "a multipart preamble or epilogue has 8-bit "
			     "bytes");
		break;
	}
	outbuf_put(w->o, p, n);
}

static bool boundary_line(const struct walk *w, const unsigned char *p,
                          size_t n, size_t *k, bool *close)
{
	size_t i;

	n -= eol_len(p, n);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n < 3 || p[0] != '-' || p[1] != '-')
		return false;
	for (i = 0; i < w->depth; i++) {     /* the outermost first */
		const struct frame *f = &w->stack[i];

		if (n - 2 < f->blen || memcmp(p + 2, f->b, f->blen) != 0)
			continue;
		if (n - 2 == f->blen || (n - 2 == f->blen + 2 &&
		                         p[n - 1] == '-' && p[n - 2] == '-')) {
			*k = i;
			*close = n - 2 != f->blen;
			return true;
		}
	}
	return false;
}

static int body_has_8bit(struct walk *w)
{
	struct rd *a = &w->ahead;
	const unsigned char *p;
	size_t n, k;
	bool whole, close;
	int rc;

	rd_init(a, w->in.fd, rd_tell(&w->in));
	while ((rc = rd_piece(a, &p, &n, &whole)) == 1) {
		if (whole && boundary_line(w, p, n, &k, &close))
			return 0;
		if (has_8bit(p, n))
			return 1;
	}
	return rc;
}

static int walk_all(struct walk *w)
{
	const unsigned char *p;
	size_t n, k;
	bool whole, close;
	int rc;

	while (!w->broken && !w->io_error &&
	       (rc = rd_piece(&w->in, &p, &n, &whole)) == 1) {
		if (whole && boundary_line(w, p, n, &k, &close))
			on_boundary(w, k, close, p, n);
		else
			piece(w, p, n, whole);
	}
	if (w->io_error || (!w->broken && rc < 0))
		return -1;
	if (!w->broken && w->depth > 0)
		fail(w, "a multipart has no closing boundary");
	if (!w->broken)
		end_entity(w);
	return 0;
}

int mime_parts_encode(int fd, struct outbuf *o, struct mime_7bit *r,
                      char *err, size_t errlen)
{
	struct walk *w = calloc(1, sizeof(*w));
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->how = MIME_NONE;
	if (w != NULL)
		w->hdr = malloc(HDR_CAP);
	if (w == NULL || w->hdr == NULL) {
		snprintf(err, errlen, "cannot re-encode the 8-bit parts: out "
		         "of memory");
		goto out;
	}
	rd_init(&w->in, fd, 0);
	w->o = o;
	w->r = r;
	w->top = true;
	if (walk_all(w) != 0) {
		snprintf(err, errlen, "cannot re-encode the 8-bit parts: %s",
		         strerror(errno));
		goto out;
	}
	outbuf_flush(o);
	if (o->failed) {
		snprintf(err, errlen, "cannot re-encode the 8-bit parts: %s",
		         strerror(o->error));
		goto out;
	}
	rc = 0;
	if (w->broken || r->parts == 0) {
		r->parts = 0;
		if (r->why[0] == '\0')
			str_copy(r->why, sizeof(r->why), "its 8-bit bytes are "
			         "in its header fields");
	} else {
		r->how = MIME_QP;
		r->size = o->total;
	}
out:
	if (w != NULL)
		free(w->hdr);
	free(w);
	return rc;
}
