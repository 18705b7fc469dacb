/*
 * test_mime_parts.c - unit tests for the MIME walker (src/mime_parts.c)
 * through mime_encode_7bit (cmocka).
 *
 * Table rows give a spool (CRLF lines, as message_read leaves it) and
 * the exact bytes expected, with what mime_encode_7bit reports (how, the
 * number of parts re-encoded, a word its reason must hold). Larger
 * inputs are checked by property: lines of at most 76 octets in the
 * re-encoded part, 7-bit output, and decoding back to the original.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mime.h"
#include "mime_parts.h"
#include "mime_check.h"

#define TOP "From: a@example.com\r\nTo: b@example.com\r\nMIME-Version: 1.0\r\n"
#define QPH "Content-Transfer-Encoding: quoted-printable\r\n"
#define TP "Content-Type: text/plain; charset=utf-8\r\n"
#define TH "Content-Type: text/html; charset=utf-8\r\n"
#define E8 "Content-Transfer-Encoding: 8bit\r\n"
/* "Grüße" in UTF-8, and as quoted-printable */
#define GRUSS "Gr\xc3\xbc\xc3\x9f" "e"
#define GRUSS_QP "Gr=C3=BC=C3=9Fe"

/* Run mime_encode_7bit on in[0..len); out's content (meaningful only
 * for MIME_QP). */
static struct buf encode(const char *in, size_t len, struct mime_7bit *r)
{
	int fd = memfd_create("in", MFD_CLOEXEC);
	int out = memfd_create("out", MFD_CLOEXEC);
	char err[256];
	struct buf b;
	off_t end;

	assert_true(fd >= 0 && out >= 0);
	assert_int_equal(write(fd, in, len), (ssize_t)len);
	if (mime_encode_7bit(fd, out, r, err, sizeof(err)) != 0)
		fail_msg("mime_encode_7bit: %s", err);
	end = lseek(out, 0, SEEK_END);
	if (r->how == MIME_QP)
		assert_int_equal(end, r->size);
	b.len = (size_t)end;
	b.p = malloc(b.len + 1);
	assert_non_null(b.p);
	assert_int_equal(pread(out, b.p, b.len, 0), (ssize_t)b.len);
	b.p[b.len] = '\0';
	close(fd);
	close(out);
	return b;
}

struct row {
	const char *name;
	const char *in;
	const char *want;       /* MIME_QP: the output */
	enum mime_fix how;
	unsigned parts;
	const char *why;        /* NULL: no reason; else a word of it */
};

static void run_rows(const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct mime_7bit r;
		struct buf out = encode(rows[i].in, strlen(rows[i].in), &r);

		if (r.how != rows[i].how || r.parts != rows[i].parts)
			fail_msg("%s: how %d parts %u, want %d %u (why: %s)",
			         rows[i].name, (int)r.how, r.parts,
			         (int)rows[i].how, rows[i].parts, r.why);
		if (rows[i].why == NULL && r.why[0] != '\0')
			fail_msg("%s: unexpected reason: %s", rows[i].name, r.why);
		if (rows[i].why != NULL && strstr(r.why, rows[i].why) == NULL)
			fail_msg("%s: reason [%s] lacks [%s]", rows[i].name, r.why,
			         rows[i].why);
		if (rows[i].how == MIME_QP)
			assert_bytes(rows[i].name, out.p, out.len, rows[i].want,
			             strlen(rows[i].want));
		free(out.p);
	}
}

#define RUN(rows) run_rows(rows, sizeof(rows) / sizeof(rows[0]))

/* multipart/alternative, quoted boundary, preamble and epilogue kept */
#define ALT_IN TOP "Content-Type: multipart/alternative; boundary=\"=_b 1\"\r\n" \
	"\r\nThis is a preamble.\r\n--=_b 1\r\n" TP E8 "\r\n" GRUSS "\r\n" \
	"--=_b 1\r\n" TH E8 "\r\n<p>" GRUSS "</p>\r\n\r\n--=_b 1--\r\n" \
	"epilogue\r\n"
#define ALT_OUT TOP "Content-Type: multipart/alternative; boundary=\"=_b 1\"\r\n" \
	"\r\nThis is a preamble.\r\n--=_b 1\r\n" TP QPH "\r\n" GRUSS_QP "\r\n" \
	"--=_b 1\r\n" TH QPH "\r\n<p>" GRUSS_QP "</p>\r\n\r\n--=_b 1--\r\n" \
	"epilogue\r\n"

static void test_boundaries(void **state)
{
	static const struct row rows[] = {
		{ "alternative, quoted", ALT_IN, ALT_OUT, MIME_QP, 2, NULL },
		{ "unquoted, BOUNDARY in capitals, folded Content-Type",
		  TOP "Content-Type: multipart/mixed;\r\n\tBOUNDARY=xyz\r\n\r\n"
		  "--xyz\r\n" TP "\r\n" GRUSS "\r\n--xyz--\r\n",
		  TOP "Content-Type: multipart/mixed;\r\n\tBOUNDARY=xyz\r\n\r\n"
		  "--xyz\r\n" TP QPH "\r\n" GRUSS_QP "\r\n--xyz--\r\n",
		  MIME_QP, 1, NULL },
		{ "boundary lines with trailing blanks, no preamble",
		  TOP "Content-Type: Multipart/Mixed; boundary=\"b\"\r\n\r\n"
		  "--b \t\r\n\r\n" GRUSS "\r\n--b--  \r\n",
		  TOP "Content-Type: Multipart/Mixed; boundary=\"b\"\r\n\r\n"
		  "--b \t\r\n" QPH "\r\n" GRUSS_QP "\r\n--b--  \r\n",
		  MIME_QP, 1, NULL },
		{ "a line that only starts like the boundary is text",
		  TOP "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\n\r\n--bx " GRUSS "\r\n--b--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\n" QPH "\r\n--bx " GRUSS_QP "\r\n--b--\r\n",
		  MIME_QP, 1, NULL },
		{ "boundary with a comment and a quoted backslash",
		  TOP "Content-Type: multipart/mixed (c) ; boundary=\"a\\\\b\"\r\n"
		  "\r\n--a\\b\r\n\r\n" GRUSS "\r\n--a\\b--\r\n",
		  TOP "Content-Type: multipart/mixed (c) ; boundary=\"a\\\\b\"\r\n"
		  "\r\n--a\\b\r\n" QPH "\r\n" GRUSS_QP "\r\n--a\\b--\r\n",
		  MIME_QP, 1, NULL },
	};

	(void)state;
	RUN(rows);
}

static void test_nested(void **state)
{
	static const struct row rows[] = {
		{ "mixed > alternative, preambles and epilogues",
		  TOP "Content-Type: multipart/mixed; boundary=out\r\n\r\npre\r\n"
		  "--out\r\nContent-Type: multipart/alternative; boundary=in\r\n"
		  "\r\ninner pre\r\n--in\r\n" TP E8 "\r\n" GRUSS "\r\n--in\r\n"
		  TH "\r\n" GRUSS "\r\n--in--\r\ninner epi\r\n--out\r\n"
		  "Content-Type: text/plain\r\n\r\nascii only\r\n--out--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=out\r\n\r\npre\r\n"
		  "--out\r\nContent-Type: multipart/alternative; boundary=in\r\n"
		  "\r\ninner pre\r\n--in\r\n" TP QPH "\r\n" GRUSS_QP "\r\n--in\r\n"
		  TH QPH "\r\n" GRUSS_QP "\r\n--in--\r\ninner epi\r\n--out\r\n"
		  "Content-Type: text/plain\r\n\r\nascii only\r\n--out--\r\n",
		  MIME_QP, 2, NULL },
		{ "digest: a part without Content-Type is a message",
		  TOP "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n"
		  "\r\nSubject: inner\r\n" TP "\r\n" GRUSS "\r\n--d--\r\n",
		  TOP "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n"
		  "\r\nSubject: inner\r\n" TP QPH "\r\n" GRUSS_QP "\r\n--d--\r\n",
		  MIME_QP, 1, NULL },
		{ "message/rfc822 walked into",
		  TOP "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
		  "Content-Type: message/rfc822\r\n\r\nSubject: fwd\r\n\r\n"
		  GRUSS "\r\n--m--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
		  "Content-Type: message/rfc822\r\n\r\nSubject: fwd\r\n" QPH
		  "\r\n" GRUSS_QP "\r\n--m--\r\n",
		  MIME_QP, 1, NULL },
	};

	(void)state;
	RUN(rows);
}

static void test_parts_kept(void **state)
{
	static const struct row rows[] = {
		{ "base64 attachment untouched, text re-encoded",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  TP E8 "\r\n" GRUSS "\r\n--z\r\n"
		  "Content-Type: application/octet-stream\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--z--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  TP QPH "\r\n" GRUSS_QP "\r\n--z\r\n"
		  "Content-Type: application/octet-stream\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--z--\r\n",
		  MIME_QP, 1, NULL },
		{ "no Content-Transfer-Encoding: one is added",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "Content-Disposition: inline\r\n\r\n" GRUSS "\r\n--z--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "Content-Disposition: inline\r\n" QPH "\r\n" GRUSS_QP
		  "\r\n--z--\r\n", MIME_QP, 1, NULL },
		{ "folded fields; the folded encoding field is replaced whole",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "Content-Type: text/plain;\r\n charset=utf-8\r\n"
		  "content-transfer-encoding:\r\n  8bit\r\nX-A: 1\r\n\r\n" GRUSS
		  "\r\n--z--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "Content-Type: text/plain;\r\n charset=utf-8\r\nX-A: 1\r\n" QPH
		  "\r\n" GRUSS_QP "\r\n--z--\r\n", MIME_QP, 1, NULL },
		{ "an 8-bit octet-stream in 8bit stays, and says so",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "\r\n" GRUSS "\r\n--z\r\nContent-Type: application/x-bin\r\n"
		  E8 "\r\n\xff\xfe\r\n--z--\r\n",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  QPH "\r\n" GRUSS_QP "\r\n--z\r\nContent-Type: application/x-bin"
		  "\r\n" E8 "\r\n\xff\xfe\r\n--z--\r\n",
		  MIME_QP, 1, "type application/x-bin in 8bit" },
		{ "8-bit only in a non-text part: goes as it is",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "Content-Type: image/png\r\nContent-Transfer-Encoding: binary"
		  "\r\n\r\n\x89PNG\r\n--z--\r\n", "", MIME_NONE, 0,
		  "type image/png in binary" },
		{ "ASCII text parts are not touched",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "\r\nplain = ascii\r\n--z--\r\nepilogue \xe9\r\n", "",
		  MIME_NONE, 0, "epilogue" },
		{ "a part whose header section is not fields",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "hello " GRUSS "\r\n\r\n" GRUSS "\r\n--z--\r\n", "", MIME_NONE,
		  0, "not header fields" },
	};

	(void)state;
	RUN(rows);
}

static void test_broken(void **state)
{
	static const struct row rows[] = {
		{ "missing closing boundary",
		  TOP "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
		  "\r\n" GRUSS "\r\n--z\r\n\r\nmore\r\n", "", MIME_NONE, 0,
		  "closing boundary" },
		{ "inner multipart not closed before the outer boundary",
		  TOP "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
		  "Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\n"
		  GRUSS "\r\n--o--\r\n", "", MIME_NONE, 0, "closing boundary" },
		{ "multipart without a boundary",
		  TOP "Content-Type: multipart/mixed\r\n\r\n" GRUSS "\r\n", "",
		  MIME_NONE, 0, "no boundary" },
		{ "8-bit in the message's own header only",
		  "Subject: " GRUSS "\r\nContent-Type: multipart/mixed; "
		  "boundary=z\r\n\r\n--z\r\n\r\nx\r\n--z--\r\n", "", MIME_NONE, 0,
		  "header fields" },
	};

	(void)state;
	RUN(rows);
}

/* Multiparts nested n deep, an 8-bit text part in the innermost. */
static char *nest(int n)
{
	size_t cap = 4096 + (size_t)n * 160, len = 0;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	len += (size_t)snprintf(s + len, cap - len, "%s", TOP);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "Content-Type: "
		                        "multipart/mixed; boundary=b%d\r\n\r\n"
		                        "--b%d\r\n", i, i);
	len += (size_t)snprintf(s + len, cap - len, "\r\n%s\r\n", GRUSS);
	for (i = n - 1; i >= 0; i--)
		len += (size_t)snprintf(s + len, cap - len, "--b%d--\r\n", i);
	return s;
}

static void test_depth(void **state)
{
	struct mime_7bit r;
	char *in = nest(MIME_PARTS_DEPTH);
	struct buf out = encode(in, strlen(in), &r);

	(void)state;
	assert_int_equal(r.how, MIME_QP);
	assert_int_equal(r.parts, 1);
	assert_non_null(strstr(out.p, "\r\n\r\n" GRUSS_QP "\r\n--b15--\r\n"));
	free(out.p);
	free(in);
	in = nest(MIME_PARTS_DEPTH + 1);
	out = encode(in, strlen(in), &r);
	assert_int_equal(r.how, MIME_NONE);
	assert_non_null(strstr(r.why, "nested more than 16"));
	free(out.p);
	free(in);
}

/* Decode quoted-printable p[0..n), failing on a line over 76 octets or
 * a byte that is not 7-bit. */
static struct buf qp_decode(const char *p, size_t n)
{
	struct buf d = { malloc(n + 1), 0 };
	size_t i, col = 0;

	assert_non_null(d.p);
	for (i = 0; i < n; i++) {
		col = p[i] == '\n' ? 0 : col + 1;
		if (col > 77)
			fail_msg("line over 76 octets at %zu", i);
		if ((unsigned char)p[i] > 126)
			fail_msg("8-bit byte at %zu", i);
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' &&
		    p[i + 2] == '\n') {
			i += 2;
			col = 0;
		} else if (p[i] == '=') {
			if (i + 2 >= n || hexval(p[i + 1]) < 0 ||
			    hexval(p[i + 2]) < 0)
				fail_msg("bad escape at %zu", i);
			d.p[d.len++] = (char)(hexval(p[i + 1]) * 16 +
			                      hexval(p[i + 2]));
			i += 2;
			col += 2;
		} else {
			d.p[d.len++] = p[i];
		}
	}
	return d;
}

/* A text part longer than the read buffers, with a 100,000-octet line
 * (in pieces) and "--z" in the middle of lines: decodes to the original,
 * and no encoded line starts with "--" (it would read as a boundary). */
static void test_long_part(void **state)
{
	static const char head[] = TOP "Content-Type: multipart/mixed; "
	                           "boundary=z\r\n\r\n--z\r\n" TP E8 "\r\n";
	static const char tail[] = "\r\n--z--\r\n";
	size_t blen = 300000, i, hl = strlen(head);
	char *in = malloc(hl + blen + sizeof(tail)), *body = in + hl;
	struct mime_7bit r;
	struct buf out, dec;
	const char *b, *e;

	(void)state;
	assert_non_null(in);
	memcpy(in, head, hl);
	for (i = 0; i < blen; i++)
		body[i] = "ab--z \xc3\xa9"[i % 8];
	memcpy(body + 998, "\r\n", 2);        /* lines start with 'a' */
	memcpy(body + 100998, "\r\n", 2);
	memcpy(body + 199998, "\r\n", 2);
	memcpy(body + 150001, "\r", 1);        /* a bare CR */
	memcpy(in + hl + blen, tail, sizeof(tail));
	out = encode(in, hl + blen + sizeof(tail) - 1, &r);
	assert_int_equal(r.how, MIME_QP);
	assert_int_equal(r.parts, 1);
	b = strstr(out.p, QPH "\r\n");
	assert_non_null(b);
	b += strlen(QPH) + 2;
	e = out.p + out.len - strlen(tail);
	assert_string_equal(e, tail);
	assert_null(memmem(b, (size_t)(e - b), "\n--", 3));
	dec = qp_decode(b, (size_t)(e - b));
	assert_int_equal(dec.len, blen);
	assert_memory_equal(dec.p, body, blen);
	free(dec.p);
	free(out.p);
	free(in);
}

/* A soft break that would start a line with "--z", the boundary itself:
 * the '-' is escaped, so the encoded part still ends where it did. */
static void test_soft_break_dash(void **state)
{
	static const char in[] = TOP "Content-Type: multipart/mixed; "
		"boundary=z\r\n\r\n--z\r\n\r\n\xc3\xa9"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"--z\r\n--z--\r\n";
	static const char want[] = TOP "Content-Type: multipart/mixed; "
		"boundary=z\r\n\r\n--z\r\n" QPH "\r\n=C3=A9"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"=\r\n=2D-z\r\n--z--\r\n";
	struct mime_7bit r;
	struct buf out = encode(in, sizeof(in) - 1, &r);

	(void)state;
	assert_int_equal(r.how, MIME_QP);
	assert_bytes("soft break before '-'", out.p, out.len, want,
	             sizeof(want) - 1);
	free(out.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_parts_kept),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_long_part),
		cmocka_unit_test(test_soft_break_dash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
