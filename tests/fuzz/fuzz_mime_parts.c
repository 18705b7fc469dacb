/*
 * fuzz_mime_parts.c - libFuzzer target for src/mime_parts.c (the MIME
 * walker behind mime_encode_7bit).
 *
 * The input becomes a spool as in fuzz_mime.c (bare LF made CRLF, a final
 * CRLF added; 0x01 N C stands for (N + 1) * 8 copies of C, for lines
 * longer than the walker's 64 KB read buffer). mime_parts_encode runs on
 * it, and a reference decoder written here (recursive, in memory, after
 * mime_parts.h's rules) reads both the input and the output. Checks:
 *  - it succeeds; MIME_NONE has a reason and no part; MIME_QP has a part,
 *    and its size is what was written;
 *  - MIME_QP: the reference sees the same structure in both, and every
 *    entity the same: header fields less Content-Transfer-Encoding equal,
 *    and bodies equal once quoted-printable ones are decoded (so nothing
 *    is lost or reordered, and nothing but 8-bit text was re-encoded);
 *    the number of re-encoded parts is the number of 8-bit text leaves
 *    the reference finds; no bare LF appears; no output line is longer
 *    than 998 octets or the longest input line; with no reason given,
 *    nothing after the message's header section is 8-bit;
 *  - MIME_NONE for a structure the reference can follow with 8-bit text
 *    leaves happens only with a reason naming the structure.
 */
#include "fuzz_common.h"

#include <ctype.h>

#include "mime.h"
#include "mime_parts.h"

#define REF_DEPTH 200           /* deeper message/rfc822 chains: no check */

static int fd = -1, ofd = -1;

/* ---- the spool ---- */

/* ---- a serialised view of what a reader decodes ---- */

struct sb {
	char *p;
	size_t len, cap;
};

static void sb_put(struct sb *b, const void *p, size_t n)
{
	if (b->cap == 0) {
		b->cap = 4096;
		b->p = malloc(b->cap + 1);
		if (b->p == NULL)
			fuzz_fail("out of memory");
	}
	fuzz_grow(&b->p, &b->cap, b->len + n);
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* A tagged, length-prefixed record. */
static void rec(struct sb *b, char tag, const char *p, size_t n)
{
	char h[32];
	int k = snprintf(h, sizeof(h), "%c%zu:", tag, n);

	sb_put(b, h, (size_t)k);
	sb_put(b, p, n);
}

struct ref {
	struct sb view;
	unsigned eight_text;    /* 8-bit text leaves that can be re-encoded */
	bool bad;               /* a structure the walker must refuse */
	bool skip;              /* too deep for this checker */
};

/* ---- header fields, the reference's own reading ---- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool special(char c)
{
	return (unsigned char)c <= 32 || (unsigned char)c >= 127 ||
	       strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* The value of the first field called name (its folded lines too). */
static bool find_field(const char *h, size_t n, const char *name,
                       const char **v, size_t *vlen)
{
	size_t k = strlen(name), i = 0;

	while (i < n) {
		const char *e = memchr(h + i, '\n', n - i);
		size_t end = e ? (size_t)(e - h) + 1 : n;

		if (end - i > k && h[i + k] == ':' &&
		    strncasecmp(h + i, name, k) == 0) {
			size_t j = end;

			while (j < n && (h[j] == ' ' || h[j] == '\t')) {
				e = memchr(h + j, '\n', n - j);
				j = e ? (size_t)(e - h) + 1 : n;
			}
			*v = h + i + k + 1;
			*vlen = j - (i + k + 1);
			return true;
		}
		i = end;
	}
	return false;
}

/* Skip blanks, line ends and (nested) comments. */
static size_t cfws(const char *v, size_t i, size_t n)
{
	int depth = 0;

	while (i < n) {
		if (v[i] == '(') {
			depth++;
		} else if (depth > 0 && v[i] == ')') {
			depth--;
		} else if (depth == 0 && !is_ws(v[i])) {
			break;
		}
		i++;
	}
	return i;
}

static size_t word(const char *v, size_t i, size_t n, bool slash, char *out,
                   size_t cap)
{
	size_t k = 0;

	while (i < n && (!special(v[i]) || (slash && v[i] == '/'))) {
		if (k + 1 < cap)
			out[k++] = (char)tolower((unsigned char)v[i]);
		i++;
	}
	out[k] = '\0';
	return i;
}

struct fields {
	char type[80], cte[40];
	char bnd[256];
	size_t blen;            /* 0: none; > 200: too long */
	bool ok;                /* every line a field or a continuation */
};

static void read_fields(const char *h, size_t n, bool digest,
                        struct fields *f)
{
	const char *v;
	size_t vl, i = 0;

	memset(f, 0, sizeof(*f));
	f->ok = true;
	while (i < n) {
		const char *e = memchr(h + i, '\n', n - i);
		size_t end = e ? (size_t)(e - h) + 1 : n, k = i;

		if (h[i] == ' ' || h[i] == '\t') {
			f->ok = f->ok && i > 0;
		} else {
			while (k < end && h[k] > 32 && h[k] < 127 && h[k] != ':')
				k++;
			f->ok = f->ok && k > i && k < end && h[k] == ':';
		}
		i = end;
	}
	if (find_field(h, n, "Content-Transfer-Encoding", &v, &vl))
		word(v, cfws(v, 0, vl), vl, false, f->cte, sizeof(f->cte));
	if (!find_field(h, n, "Content-Type", &v, &vl)) {
		snprintf(f->type, sizeof(f->type), "%s",
		         digest ? "message/rfc822" : "text/plain");
		return;
	}
	i = word(v, cfws(v, 0, vl), vl, true, f->type, sizeof(f->type));
	if (f->type[0] == '\0')
		snprintf(f->type, sizeof(f->type), "%s",
		         digest ? "message/rfc822" : "text/plain");
	while (i < vl) {
		char name[40];

		i = cfws(v, i, vl);
		if (i >= vl || v[i] != ';') {
			i++;
			continue;
		}
		i = cfws(v, word(v, cfws(v, i + 1, vl), vl, false, name,
		                 sizeof(name)), vl);
		if (i >= vl || v[i] != '=')
			continue;
		i = cfws(v, i + 1, vl);
		{
			bool q = i < vl && v[i] == '"';
			size_t k = 0;
			char val[sizeof(f->bnd)];

			for (i += q; i < vl; i++) {
				char c = v[i];

				if (q ? c == '"' : special(c)) {
					i += q;
					break;
				}
				if (q && c == '\\' && i + 1 < vl)
					c = v[++i];
				else if (q && (c == '\r' || c == '\n'))
					continue;
				if (k < sizeof(val))
					val[k] = c;
				k++;
			}
			if (strcmp(name, "boundary") == 0 && f->blen == 0) {
				memcpy(f->bnd, val, k < sizeof(val) ? k : sizeof(val));
				f->blen = k;
			}
		}
	}
}

/* The header section less its Content-Transfer-Encoding fields. */
static void rec_header(struct sb *b, const char *h, size_t n)
{
	static const char cte[] = "Content-Transfer-Encoding:";
	size_t i = 0;
	bool drop = false;
	struct sb t = { 0 };

	while (i < n) {
		const char *e = memchr(h + i, '\n', n - i);
		size_t end = e ? (size_t)(e - h) + 1 : n;

		if (h[i] != ' ' && h[i] != '\t')
			drop = end - i >= sizeof(cte) - 1 &&
			       strncasecmp(h + i, cte, sizeof(cte) - 1) == 0;
		if (!drop)
			sb_put(&t, h + i, end - i);
		i = end;
	}
	rec(b, 'H', t.p, t.len);
	free(t.p);
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)toupper((unsigned char)c);
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Lenient quoted-printable decoding (total: a bad escape is kept). */
static void rec_qp(struct sb *b, const char *p, size_t n)
{
	struct sb t = { 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' &&
		    p[i + 2] == '\n') {
			i += 2;
		} else if (p[i] == '=' && i + 2 < n && hexv(p[i + 1]) >= 0 &&
		           hexv(p[i + 2]) >= 0) {
			char c = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));

			sb_put(&t, &c, 1);
			i += 2;
		} else {
			sb_put(&t, p + i, 1);
		}
	}
	rec(b, 'B', t.p, t.len);
	free(t.p);
}

static bool has8(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return true;
	}
	return false;
}

/* ---- entities ---- */

/* An entity is p[0..n); its last trim octets are the line end that
 * belongs to the delimiter after it. As the walker reads lines, that
 * line end can still close the header section (the body is then empty). */
static void entity(struct ref *r, const char *p, size_t n, size_t trim,
                   bool digest, const struct fields *up, size_t nup,
                   int depth);

/* Is line p[0..n) (its line end included) a delimiter of f: 1 open,
 * 2 close, 0 no. */
static int delimiter(const struct fields *f, const char *p, size_t n)
{
	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n < 2 + f->blen || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, f->bnd, f->blen) != 0)
		return 0;
	if (n == 2 + f->blen)
		return 1;
	return n == 4 + f->blen && p[n - 1] == '-' && p[n - 2] == '-' ? 2 : 0;
}

/* Length of the line end that ends p[0..n), 0 when none. */
static size_t eol_at_end(const char *p, size_t n)
{
	if (n == 0 || p[n - 1] != '\n')
		return 0;
	return n >= 2 && p[n - 2] == '\r' ? 2 : 1;
}

static void multipart(struct ref *r, const char *p, size_t n, size_t trim,
                      const struct fields *up, size_t nup, int depth)
{
	const struct fields *f = &up[nup - 1];
	size_t i = 0, start = 0;
	bool open = false;
	int kind = 0;

	while (i < n && kind != 2) {
		const char *e = memchr(p + i, '\n', n - i);
		size_t end = e ? (size_t)(e - p) + 1 : n;

		kind = delimiter(f, p + i, end - i);
		if (kind != 0) {
			size_t t = eol_at_end(p + start, i - start);

			if (open)
				entity(r, p + start, i - start, t, strcmp(f->type,
				       "multipart/digest") == 0, up, nup,
				       depth + 1);
			else
				rec(&r->view, 'P', p, i - t);
			rec(&r->view, 'D', p + i, end - i);
			open = true;
			start = end;
		}
		i = end;
	}
	if (kind != 2) {
		r->bad = true;
		return;
	}
	rec(&r->view, 'E', p + i, n - trim > i ? n - trim - i : 0);
}

static void leaf(struct ref *r, const struct fields *f, const char *b,
                 size_t bn)
{
	bool plain = f->cte[0] == '\0' || !strcmp(f->cte, "7bit") ||
	             !strcmp(f->cte, "8bit") || !strcmp(f->cte, "binary");

	if (f->ok && plain && strncmp(f->type, "text/", 5) == 0 &&
	    has8(b, bn))
		r->eight_text++;
	if (strcmp(f->cte, "quoted-printable") == 0)
		rec_qp(&r->view, b, bn);
	else
		rec(&r->view, 'B', b, bn);
}

static void entity(struct ref *r, const char *p, size_t n, size_t trim,
                   bool digest, const struct fields *up, size_t nup,
                   int depth)
{
	struct fields fs[MIME_PARTS_DEPTH + 1];
	struct fields f;
	size_t h = 0, k;
	bool blank = false, plain;

	if (depth > REF_DEPTH || r->bad || r->skip) {
		r->skip = r->skip || depth > REF_DEPTH;
		return;
	}
	while (h < n) {
		const char *e = memchr(p + h, '\n', n - h);
		size_t end = e ? (size_t)(e - p) + 1 : n;

		if (end - h <= 2 && p[h] != ' ' && p[h] != '\t' &&
		    (end - h == 1 ? p[h] == '\n' : p[h] == '\r' &&
		     p[h + 1] == '\n')) {
			blank = true;
			break;
		}
		h = end;
	}
	if (h > 1024 * 1024 + 4096) {
		r->bad = true;
		return;
	}
	read_fields(p, h, digest, &f);
	rec_header(&r->view, p, blank ? h : n - trim);
	if (!blank)
		return;
	h += p[h] == '\r' ? 2 : 1;
	if (n - trim < h)       /* the blank line was the delimiter's */
		trim = n - h;
	plain = f.cte[0] == '\0' || !strcmp(f.cte, "7bit") ||
	        !strcmp(f.cte, "8bit") || !strcmp(f.cte, "binary");
	if (f.ok && plain && strncmp(f.type, "multipart/", 10) == 0) {
		if (f.blen == 0 || f.blen > 200 || nup == MIME_PARTS_DEPTH) {
			r->bad = true;
			return;
		}
		for (k = 0; k < nup; k++) {
			if (up[k].blen == f.blen &&
			    memcmp(up[k].bnd, f.bnd, f.blen) == 0) {
				r->bad = true;
				return;
			}
		}
		if (nup > 0)
			memcpy(fs, up, nup * sizeof(*up));
		fs[nup] = f;
		multipart(r, p + h, n - h, trim, fs, nup + 1, depth);
	} else if (f.ok && plain && strcmp(f.type, "message/rfc822") == 0) {
		entity(r, p + h, n - h, trim, false, up, nup, depth + 1);
	} else {
		leaf(r, &f, p + h, n - h - trim);
	}
}

/* ---- the checks ---- */

static size_t longest(const char *p, size_t n)
{
	size_t i, line = 0, max = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			size_t l = i > 0 && p[i - 1] == '\r' ? line - 1 : line;

			max = l > max ? l : max;
			line = 0;
		} else {
			line++;
		}
	}
	return line > max ? line : max;
}

static void check_output(const char *in, size_t len, const char *out,
                         size_t n, const struct mime_7bit *r)
{
	struct ref a = { 0 }, b = { 0 };
	size_t i, lim = longest(in, len) > 998 ? longest(in, len) : 998;
	const char *sep;

	for (i = 0; i < n; i++) {
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			fuzz_fail("bare LF at output offset %zu", i);
	}
	if (longest(out, n) > lim)
		fuzz_fail("output line of %zu octets (input's longest %zu)",
		          longest(out, n), longest(in, len));
	sep = memmem(out, n, "\r\n\r\n", 4);
	if (r->why[0] == '\0' && sep != NULL &&
	    has8(sep, n - (size_t)(sep - out)))
		fuzz_fail("8-bit bytes left in the body, and no reason given");
	entity(&a, in, len, 0, false, NULL, 0, 0);
	if (a.skip)
		goto out;
	if (a.bad)
		fuzz_fail("re-encoded a structure the reference cannot follow");
	if (a.eight_text != r->parts)
		fuzz_fail("%u parts re-encoded, the reference sees %u",
		          r->parts, a.eight_text);
	entity(&b, out, n, 0, false, NULL, 0, 0);
	if (b.bad || b.eight_text != 0)
		fuzz_fail("the output's structure: bad %d, %u 8-bit text parts",
		          (int)b.bad, b.eight_text);
	if (a.view.len != b.view.len ||
	    memcmp(a.view.p, b.view.p, a.view.len) != 0) {
		for (i = 0; i < a.view.len && i < b.view.len &&
		     a.view.p[i] == b.view.p[i]; i++)
			;
		fprintf(stderr, "input's view:  [%.*s]\noutput's view: [%.*s]\n",
		        (int)(a.view.len - i < 60 ? a.view.len - i : 60),
		        a.view.p + i,
		        (int)(b.view.len - i < 60 ? b.view.len - i : 60),
		        b.view.p + i);
		fuzz_fail("decoded output differs from the input at view offset "
		          "%zu (%zu vs %zu)", i, a.view.len, b.view.len);
	}
out:
	free(a.view.p);
	free(b.view.p);
}

/* Not re-encoded: fine when the reference finds no 8-bit text leaf, or
 * the structure is one the walker refuses. */
static void check_none(const char *in, size_t len, const struct mime_7bit *r)
{
	struct ref a = { 0 };

	if (r->why[0] == '\0' || r->parts != 0)
		fuzz_fail("MIME_NONE: parts %u, reason [%s]", r->parts, r->why);
	entity(&a, in, len, 0, false, NULL, 0, 0);
	if (!a.skip && !a.bad && a.eight_text > 0 &&
	    strstr(r->why, "header section is over") == NULL)
		fuzz_fail("not re-encoded (%s), but the reference sees %u 8-bit "
		          "text parts", r->why, a.eight_text);
	free(a.view.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outbuf o;
	struct mime_7bit r;
	char err[256];
	size_t len, n;
	char *in = fuzz_mime_spool(data, size, &len), *out;

	fuzz_memfd(&fd, "fuzz-spool");
	fuzz_memfd(&ofd, "fuzz-out");
	fuzz_write_all(fd, in, len);
	memset(&o, 0, sizeof(o));
	o.fd = ofd;
	memset(err, 'x', sizeof(err));
	if (mime_parts_encode(fd, &o, &r, err, sizeof(err)) != 0) {
		fuzz_check_err(err, sizeof(err), "mime_parts_encode");
		fuzz_fail("mime_parts_encode failed on a memfd: %s", err);
	}
	out = fuzz_read_fd(ofd, &n);
	if (r.how == MIME_QP) {
		if (r.parts == 0 || r.size != (off_t)n)
			fuzz_fail("MIME_QP: parts %u, size %lld, file %zu",
			          r.parts, (long long)r.size, n);
		check_output(in, len, out, n, &r);
	} else if (r.how == MIME_NONE) {
		check_none(in, len, &r);
	} else {
		fuzz_fail("how = %d", (int)r.how);
	}
	free(out);
	free(in);
	return 0;
}
