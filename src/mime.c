/*
 * mime.c - long-line repair (see mime.h).
 */
#define _GNU_SOURCE
#include "mime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime_int.h"
#include "mime_parts.h"
#include "util.h"

#define HDR_MAX (1024 * 1024 + 4096)
#define BUF (64 * 1024)
#define QP_LINE 76

/* Line breaking state, carried across the chunks of one text. */
struct brk {
	size_t col;             /* octets on the current line */
	bool cr_held;           /* a CR whose next byte is not known yet */
};

/* One octet c that counts toward the line (a break first if it is full). */
static void put_counted(struct outbuf *o, struct brk *b, unsigned char c)
{
	if (b->col >= MIME_LINE_MAX) {
		outbuf_put(o, "\r\n ", 3);
		b->col = 1;
	}
	b->col++;
	outbuf_put(o, &c, 1);
}

/* Copy text, breaking lines longer than MIME_LINE_MAX with CRLF SPACE.
 * A CR counts unless it starts the line end, so a CR that ends a chunk
 * waits for the next byte (mime_brk_end puts a last one out). */
static void put_broken(struct outbuf *o, const unsigned char *p, size_t n,
                       struct brk *b)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (b->cr_held) {
			b->cr_held = false;
			if (p[i] == '\n')
				outbuf_put(o, "\r", 1);
			else
				put_counted(o, b, '\r');
		}
		if (p[i] == '\n') {
			b->col = 0;
			outbuf_put(o, p + i, 1);
		} else if (p[i] == '\r') {
			b->cr_held = true;
		} else {
			put_counted(o, b, p[i]);
		}
	}
}

static void brk_end(struct outbuf *o, struct brk *b)
{
	if (b->cr_held)
		put_counted(o, b, '\r');
	b->cr_held = false;
}

/* ---- quoted-printable, streamed ---- */

static void qp_token(struct mime_qp *q, const char *t, size_t n)
{
	if (q->col + n > QP_LINE - 1) {
		outbuf_put(q->o, "=\r\n", 3);
		q->col = 0;
		if (n == 1 && t[0] == '-') {
			t = "=2D";      /* "--" starting a line reads as a boundary */
			n = 3;
		}
	}
	outbuf_put(q->o, t, n);
	q->col += n;
}

static void qp_escape(struct mime_qp *q, unsigned char c)
{
	char t[4];

	snprintf(t, sizeof(t), "=%02X", c);
	qp_token(q, t, 3);
}

void mime_qp_byte(struct mime_qp *q, unsigned char c)
{
	if (q->held == '\r') {
		q->held = -1;
		if (c == '\n') {
			outbuf_put(q->o, "\r\n", 2);   /* a hard line break */
			q->col = 0;
			return;
		}
		qp_escape(q, '\r');
	} else if (q->held == ' ' || q->held == '\t') {
		unsigned char w = (unsigned char)q->held;

		q->held = -1;
		if (c == '\r') {
			qp_escape(q, w);        /* whitespace before a line end */
		} else {
			char t = (char)w;

			qp_token(q, &t, 1);
		}
	}
	if (c == '\r' || c == ' ' || c == '\t') {
		q->held = c;
		return;
	}
	if (c == '=' || c < 32 || c > 126) {
		qp_escape(q, c);
	} else {
		char t = (char)c;

		qp_token(q, &t, 1);
	}
}

void mime_qp_end(struct mime_qp *q)
{
	if (q->held == ' ' || q->held == '\t' || q->held == '\r')
		qp_escape(q, (unsigned char)q->held);
	q->held = -1;
}

/* ---- the header section ---- */

const char *mime_field(const char *hdr, size_t n, const char *name,
                       size_t *len)
{
	size_t k = strlen(name), i = 0;

	while (i < n) {
		const char *nl = memchr(hdr + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - hdr) + 1 : n;

		if (end - i > k && hdr[i + k] == ':' && str_nieq(hdr + i, name, k)) {
			size_t v = i + k + 1, e = end;

			while (e < n && (hdr[e] == ' ' || hdr[e] == '\t')) {
				nl = memchr(hdr + e, '\n', n - e);
				e = nl ? (size_t)(nl - hdr) + 1 : n;
			}
			while (v < e && (hdr[v] == ' ' || hdr[v] == '\t' ||
			                 hdr[v] == '\r' || hdr[v] == '\n'))
				v++;    /* folded right after the colon, too */
			*len = e - v;
			return hdr + v;
		}
		i = end;
	}
	return NULL;
}

static bool value_is(const char *v, size_t len, const char *prefix)
{
	size_t k = strlen(prefix);

	return v != NULL && len >= k && str_nieq(v, prefix, k);
}

/* Can the body be re-encoded as quoted-printable? */
static bool qp_possible(const char *hdr, size_t n)
{
	size_t ctl = 0, tel = 0;
	const char *ct = mime_field(hdr, n, "Content-Type", &ctl);
	const char *te = mime_field(hdr, n, "Content-Transfer-Encoding", &tel);

	if (ct != NULL && !value_is(ct, ctl, "text/"))
		return false;
	return te == NULL || value_is(te, tel, "7bit") ||
	       value_is(te, tel, "8bit") || value_is(te, tel, "binary");
}

/* Copy the header fields, minus Content-Transfer-Encoding when qp. */
static void put_headers(struct outbuf *o, const char *hdr, size_t n, bool qp,
                        bool eightbit)
{
	struct brk b = { 0, false };
	size_t i = 0, k;
	bool skipping = false;
	const char *cte = "Content-Transfer-Encoding:";

	while (i < n) {
		const char *nl = memchr(hdr + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - hdr) + 1 : n;

		if (hdr[i] != ' ' && hdr[i] != '\t')
			skipping = qp && end - i > strlen(cte) &&
			           str_nieq(hdr + i, cte, strlen(cte));
		if (!skipping)
			put_broken(o, (const unsigned char *)hdr + i, end - i, &b);
		i = end;
	}
	brk_end(o, &b);
	if (!qp)
		return;
	if (mime_field(hdr, n, "MIME-Version", &k) == NULL)
		outbuf_put(o, "MIME-Version: 1.0\r\n", 19);
	if (mime_field(hdr, n, "Content-Type", &k) == NULL && eightbit)
		outbuf_put(o, "Content-Type: text/plain; charset=utf-8\r\n", 41);
	outbuf_put(o, "Content-Transfer-Encoding: quoted-printable\r\n", 45);
}

/* ---- the whole message ---- */

/* Read the header section (through its blank line) into a buffer. */
static char *read_headers(int fd, size_t *n, size_t *hlen)
{
	char *buf = malloc(HDR_MAX + 1);
	size_t len = 0;
	char *end;
	ssize_t r;

	if (buf == NULL || lseek(fd, 0, SEEK_SET) != 0) {
		free(buf);
		return NULL;
	}
	while (len < HDR_MAX) {
		r = read(fd, buf + len, HDR_MAX - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	end = memmem(buf, len, "\r\n\r\n", 4);
	*n = len;
	*hlen = end ? (size_t)(end - buf) + 2 : len;
	return buf;
}

/* Write the repaired message to out; the body comes from in_fd, after
 * the first `already` bytes held in buf. */
static int transform(int in_fd, struct outbuf *o, const char *buf, size_t n,
                     size_t hlen, bool qp, bool eightbit)
{
	struct mime_qp q = { o, 0, -1 };
	struct brk b = { 0, false };
	unsigned char chunk[BUF];
	size_t i, body = hlen < n ? hlen + 2 : n;
	ssize_t r;

	put_headers(o, buf, hlen, qp, eightbit);
	outbuf_put(o, "\r\n", 2);
	for (;;) {
		const unsigned char *p = (const unsigned char *)buf + body;
		size_t len = n - body;

		if (body >= n) {
			r = read(in_fd, chunk, sizeof(chunk));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -1;
			if (r == 0)
				break;
			p = chunk;
			len = (size_t)r;
		}
		body = n;
		if (!qp) {
			put_broken(o, p, len, &b);
			continue;
		}
		for (i = 0; i < len; i++)
			mime_qp_byte(&q, p[i]);
	}
	if (qp)
		mime_qp_end(&q);
	else
		brk_end(o, &b);
	outbuf_flush(o);
	return o->failed ? -1 : 0;
}

/* Replace fd's content with tmp's. */
static int copy_back(int tmp, int fd, off_t size)
{
	unsigned char chunk[BUF];
	ssize_t r;

	if (lseek(tmp, 0, SEEK_SET) != 0 || ftruncate(fd, 0) != 0 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	while (size > 0) {
		r = read(tmp, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write_all(fd, chunk, (size_t)r) != 0)
			return -1;
		size -= r;
	}
	return 0;
}

int mime_fix_long_lines(int fd, off_t *size, bool eightbit,
                        enum mime_fix *how, char *err, size_t errlen)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	size_t n = 0, hlen = 0;
	char *buf = NULL;
	bool qp;
	int tmp = -1, rc = -1, saved = 0;

	*how = MIME_NONE;
	if (o != NULL)
		buf = read_headers(fd, &n, &hlen);
	if (buf != NULL)
		tmp = tmpfile_anon(NULL);
	if (tmp < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot re-encode long lines: %s",
		         strerror(saved));
		goto out;
	}
	qp = qp_possible(buf, hlen);
	o->fd = tmp;
	if (transform(fd, o, buf, n, hlen, qp, eightbit) != 0 ||
	    copy_back(tmp, fd, o->total) != 0) {
		saved = o->failed ? o->error : errno;
		snprintf(err, errlen, "cannot re-encode long lines: %s",
		         strerror(saved));
		goto out;
	}
	*size = o->total;
	*how = qp ? MIME_QP : MIME_BROKEN;
	rc = 0;
out:
	if (tmp >= 0)
		close(tmp);
	free(buf);
	free(o);
	errno = saved;
	return rc;
}

int mime_encode_7bit(int fd, int out, struct mime_7bit *r, char *err,
                     size_t errlen)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	size_t n = 0, hlen = 0;
	char *buf = o != NULL ? read_headers(fd, &n, &hlen) : NULL;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->how = MIME_NONE;
	if (buf == NULL) {
		snprintf(err, errlen, "cannot re-encode the 8-bit body: %s",
		         strerror(errno));
		goto out;
	}
	o->fd = out;
	if (!qp_possible(buf, hlen)) {
		rc = mime_parts_encode(fd, o, r, err, errlen);
	} else if (transform(fd, o, buf, n, hlen, true, true) == 0) {
		r->size = o->total;
		r->how = MIME_QP;
		rc = 0;
	} else {
		snprintf(err, errlen, "cannot re-encode the 8-bit body: %s",
		         strerror(o->failed ? o->error : errno));
	}
out:
	free(buf);
	free(o);
	return rc;
}

int mime_has_8bit(int fd)
{
	unsigned char chunk[BUF];
	ssize_t r, i;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return -1;
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		for (i = 0; i < r; i++) {
			if (chunk[i] >= 0x80)
				return 1;
		}
	}
}
