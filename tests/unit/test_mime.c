/*
 * test_mime.c - unit tests for src/mime.c (cmocka).
 *
 * Each test writes a spool file (CRLF lines, as message_read leaves it)
 * to an anonymous file, runs mime_fix_long_lines on it and compares the
 * result: exact bytes for short inputs (table rows: input, eightbit,
 * expected output, expected mime_fix), and properties for long ones
 * (every line at most 998 octets; quoted-printable lines at most 76 and
 * decoding back to the original body, with the small decoder below;
 * broken lines equal to the original once every inserted CRLF SPACE is
 * removed).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mime.h"
#include "mime_check.h"

/* Complete headers of a plain message. */
#define HDR "From: cron@example.com\r\nTo: root@example.com\r\n" \
            "Subject: report\r\n"
#define MV "MIME-Version: 1.0\r\n"
#define QPH "Content-Transfer-Encoding: quoted-printable\r\n"
#define UTF8 "Content-Type: text/plain; charset=utf-8\r\n"

/* Run mime_fix_long_lines on in[0..len); the new file content. */
static struct buf fix(const char *in, size_t len, bool eightbit,
                      enum mime_fix *how)
{
	int fd = memfd_create("test_mime", MFD_CLOEXEC);
	off_t size = (off_t)len, end;
	char err[256];
	struct buf out;
	ssize_t r;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, in, len), (ssize_t)len);
	/* the caller leaves the offset anywhere: mime starts from 0 */
	memset(err, 'X', sizeof(err));
	if (mime_fix_long_lines(fd, &size, eightbit, how, err,
	                        sizeof(err)) != 0)
		fail_msg("mime_fix_long_lines: %s", err);
	end = lseek(fd, 0, SEEK_END);
	assert_int_equal(end, size);
	out.len = (size_t)end;
	out.p = malloc(out.len + 1);
	assert_non_null(out.p);
	r = pread(fd, out.p, out.len, 0);
	assert_int_equal(r, (ssize_t)out.len);
	out.p[out.len] = '\0';
	close(fd);
	return out;
}

static struct buf fix_str(const char *in, bool eightbit, enum mime_fix *how)
{
	return fix(in, strlen(in), eightbit, how);
}

/* Longest line in octets (CRLF not counted; a bare CR counts). */
static size_t longest_line(const char *p, size_t n)
{
	size_t i, line = 0, max = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			size_t l = (i > 0 && p[i - 1] == '\r') ? line - 1 : line;

			if (l > max)
				max = l;
			line = 0;
		} else {
			line++;
		}
	}
	return line > max ? line : max;
}

/* Decode quoted-printable p[0..n) (strict: upper-case hex, soft breaks
 * "=CRLF"); checks every encoded line is at most 76 octets. */
static struct buf qp_decode(const char *p, size_t n)
{
	struct buf d;
	size_t i;

	if (longest_line(p, n) > 76)
		fail_msg("quoted-printable line of %zu octets",
		         longest_line(p, n));
	d.p = malloc(n + 1);
	assert_non_null(d.p);
	d.len = 0;
	for (i = 0; i < n; i++) {
		if (p[i] == '=' && i + 2 < n && p[i + 1] == '\r' &&
		    p[i + 2] == '\n') {
			i += 2;
		} else if (p[i] == '=') {
			if (i + 2 >= n || hexval(p[i + 1]) < 0 ||
			    hexval(p[i + 2]) < 0)
				fail_msg("bad escape at %zu", i);
			d.p[d.len++] = (char)(hexval(p[i + 1]) * 16 +
			                      hexval(p[i + 2]));
			i += 2;
		} else {
			if ((unsigned char)p[i] > 126 ||
			    ((unsigned char)p[i] < 32 && p[i] != '\r' &&
			     p[i] != '\n' && p[i] != '\t'))
				fail_msg("unencoded byte 0x%02x at %zu",
				         (unsigned char)p[i], i);
			if (p[i] == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
				fail_msg("bare CR at %zu", i);
			if (p[i] == '\r' && i > 0 &&
			    (p[i - 1] == ' ' || p[i - 1] == '\t'))
				fail_msg("unencoded white space before CRLF at %zu",
				         i);
			d.p[d.len++] = p[i];
		}
	}
	return d;
}

/* Where the body starts (after CRLFCRLF). */
static size_t body_at(const char *p, size_t n)
{
	const char *s = memmem(p, n, "\r\n\r\n", 4);

	assert_non_null(s);
	return (size_t)(s - p) + 4;
}

/* Remove every CRLF SPACE (in place); the new length. */
static size_t unbreak(char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (i + 2 < n && s[i] == '\r' && s[i + 1] == '\n' &&
		    s[i + 2] == ' ') {
			i += 2;
			continue;
		}
		s[o++] = s[i];
	}
	return o;
}

/* n copies of c, then the rest of s, in a malloc'd string */
static char *repeat(const char *pre, char c, size_t n, const char *post)
{
	size_t a = strlen(pre), b = strlen(post);
	char *s = malloc(a + n + b + 1);

	assert_non_null(s);
	memcpy(s, pre, a);
	memset(s + a, c, n);
	memcpy(s + a + n, post, b + 1);
	return s;
}

/* ---- exact output for short inputs ---- */

struct row {
	const char *in;
	bool eightbit;
	const char *want;
	enum mime_fix how;
};

static void run_rows(const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		enum mime_fix how = (enum mime_fix)-1;
		struct buf out = fix_str(rows[i].in, rows[i].eightbit, &how);
		char what[32];

		snprintf(what, sizeof(what), "row %zu", i);
		if (how != rows[i].how)
			fail_msg("row %zu: how %d, want %d", i, (int)how,
			         (int)rows[i].how);
		assert_bytes(what, out.p, out.len, rows[i].want,
		             strlen(rows[i].want));
		free(out.p);
	}
}

#define RUN(rows) run_rows(rows, sizeof(rows) / sizeof(rows[0]))

static void test_qp_exact(void **state)
{
	static const struct row rows[] = {
		{ HDR "\r\nplain text\r\n", false,
		  HDR MV QPH "\r\nplain text\r\n", MIME_QP },
		{ HDR "\r\na=b\r\n", false, HDR MV QPH "\r\na=3Db\r\n", MIME_QP },
		{ HDR "\r\n==\r\n", false, HDR MV QPH "\r\n=3D=3D\r\n", MIME_QP },
		{ HDR "\r\ntrailing space \r\n", false,
		  HDR MV QPH "\r\ntrailing space=20\r\n", MIME_QP },
		{ HDR "\r\ntrailing tab\t\r\n", false,
		  HDR MV QPH "\r\ntrailing tab=09\r\n", MIME_QP },
		{ HDR "\r\ntwo  \r\n", false, HDR MV QPH "\r\ntwo =20\r\n",
		  MIME_QP },
		{ HDR "\r\ninner space and\ttab\r\n", false,
		  HDR MV QPH "\r\ninner space and\ttab\r\n", MIME_QP },
		{ HDR "\r\nend of body \r\n", false,
		  HDR MV QPH "\r\nend of body=20\r\n", MIME_QP },
		{ HDR "\r\n\xc3\xa9t\xc3\xa9\r\n", true,
		  HDR MV UTF8 QPH "\r\n=C3=A9t=C3=A9\r\n", MIME_QP },
		{ HDR "\r\n\xff\x80\r\n", true, HDR MV UTF8 QPH "\r\n=FF=80\r\n",
		  MIME_QP },
		{ HDR "\r\nbell\a nul\x01 del\x7f\r\n", false,
		  HDR MV QPH "\r\nbell=07 nul=01 del=7F\r\n", MIME_QP },
		{ HDR "\r\nbare\rcr\r\n", false,
		  HDR MV QPH "\r\nbare=0Dcr\r\n", MIME_QP },
		{ HDR "\r\nsp \rcr\r\n", false,
		  HDR MV QPH "\r\nsp=20=0Dcr\r\n", MIME_QP },
		{ HDR "\r\n\r\n\r\nblank lines\r\n\r\n", false,
		  HDR MV QPH "\r\n\r\n\r\nblank lines\r\n\r\n", MIME_QP },
		{ HDR "\r\n.\r\n..\r\nFrom me\r\n", false,
		  HDR MV QPH "\r\n.\r\n..\r\nFrom me\r\n", MIME_QP },
		{ HDR "\r\n", false, HDR MV QPH "\r\n", MIME_QP },
		/* ~ and ! and other printable specials stay */
		{ HDR "\r\n!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~\r\n", false,
		  HDR MV QPH "\r\n!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~\r\n",
		  MIME_QP },
	};

	(void)state;
	RUN(rows);
}

/* Build "HDR CRLF <n c's><tail>" and its expected encoding. */
static void check_soft(size_t n, const char *tail, const char *want_tail,
                       size_t want_n, const char *want_rest)
{
	char *in = repeat(HDR "\r\n", 'a', n, tail);
	char *want = repeat(HDR MV QPH "\r\n", 'a', want_n, want_tail);
	size_t wl = strlen(want), rl = strlen(want_rest);
	enum mime_fix how;
	struct buf out;
	char *grown = realloc(want, wl + rl + 1);

	assert_non_null(grown);
	want = grown;
	memcpy(want + wl, want_rest, rl + 1);
	out = fix_str(in, false, &how);
	assert_int_equal(how, MIME_QP);
	assert_bytes("soft break", out.p, out.len, want, strlen(want));
	free(out.p);
	free(want);
	free(in);
}

static void test_qp_soft_breaks(void **state)
{
	(void)state;
	/* 75 characters and "=": lines stay within 76 */
	check_soft(100, "\r\n", "=\r\n", 75,
	           "aaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
	check_soft(75, "\r\n", "\r\n", 75, "");
	check_soft(76, "\r\n", "=\r\n", 75, "a\r\n");
	/* an escape is never split by a soft break */
	check_soft(72, "=\r\n", "=3D\r\n", 72, "");
	check_soft(73, "==\r\n", "=\r\n=3D=3D\r\n", 73, "");
	/* encoded trailing white space moves to the next line if need be */
	check_soft(75, " \r\n", "=\r\n=20\r\n", 75, "");
	check_soft(74, "\t\r\n", "=\r\n=09\r\n", 74, "");
	check_soft(150, "\r\n", "=\r\n", 75,
	           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	           "aaaaaaaaaaaaa\r\n");
}

/* Lines of many lengths and contents: every line within 76, decodes
 * back to the original. */
static void test_qp_roundtrip(void **state)
{
	static const char *const fills[] = {
		"a", "=", " ", "\t", "\xc3\xa9", "a ", "x\r", "=\t ", "\x7f",
	};
	static const size_t lens[] = {
		0, 1, 74, 75, 76, 77, 78, 150, 151, 152, 997, 998, 999, 1000,
		5000, 100000,
	};
	size_t f, l;

	(void)state;
	for (f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
		for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			size_t flen = strlen(fills[f]), n = lens[l], i, hl;
			char *in = malloc(sizeof(HDR) + n + 4);
			enum mime_fix how;
			struct buf out, dec;

			assert_non_null(in);
			hl = (size_t)snprintf(in, sizeof(HDR) + 2, "%s\r\n", HDR);
			for (i = 0; i < n; i++)
				in[hl + i] = fills[f][i % flen];
			memcpy(in + hl + n, "\r\n", 2);
			out = fix(in, hl + n + 2, true, &how);
			assert_int_equal(how, MIME_QP);
			i = body_at(out.p, out.len);
			dec = qp_decode(out.p + i, out.len - i);
			assert_bytes("roundtrip", dec.p, dec.len, in + hl, n + 2);
			free(dec.p);
			free(out.p);
			free(in);
		}
	}
}

/* A 100 000-character cron line, the case this module exists for. */
static void test_qp_100000(void **state)
{
	char *in = repeat(HDR "Content-Type: text/plain; charset=UTF-8\r\n"
	                  "\r\nstart ", 'x', 100000, " end\r\nnext line\r\n");
	enum mime_fix how;
	struct buf out = fix_str(in, false, &how), dec;
	size_t b = body_at(out.p, out.len), ib = body_at(in, strlen(in));

	(void)state;
	assert_int_equal(how, MIME_QP);
	assert_true(longest_line(out.p, out.len) <= 76);
	dec = qp_decode(out.p + b, out.len - b);
	assert_bytes("100000", dec.p, dec.len, in + ib, strlen(in) - ib);
	/* the header section: Content-Type kept, the encoding added */
	assert_bytes("headers", out.p, b,
	             HDR "Content-Type: text/plain; charset=UTF-8\r\n" MV QPH
	             "\r\n", strlen(HDR) + 41 + strlen(MV QPH) + 2);
	free(dec.p);
	free(out.p);
	free(in);
}

/* ---- which messages are re-encoded, and the header fields ---- */

static void test_qp_headers(void **state)
{
	static const struct row rows[] = {
		/* MIME-Version kept, not repeated */
		{ HDR MV "\r\nx\r\n", false, HDR MV QPH "\r\nx\r\n", MIME_QP },
		{ HDR "mime-version: 1.0\r\n\r\nx\r\n", false,
		  HDR "mime-version: 1.0\r\n" QPH "\r\nx\r\n", MIME_QP },
		/* an old encoding is replaced */
		{ HDR MV "Content-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9\r\n",
		  true, HDR MV UTF8 QPH "\r\n=C3=A9\r\n", MIME_QP },
		{ HDR "Content-Transfer-Encoding: 7bit\r\n" MV "\r\nx\r\n", false,
		  HDR MV QPH "\r\nx\r\n", MIME_QP },
		{ HDR "content-transfer-encoding: BINARY\r\n\r\nx\r\n", false,
		  HDR MV QPH "\r\nx\r\n", MIME_QP },
		/* a folded one goes with its continuation lines */
		{ HDR "Content-Transfer-Encoding: 8bit\r\n (folded)\r\n"
		  "X-After: 1\r\n\r\nx\r\n", false,
		  HDR "X-After: 1\r\n" MV QPH "\r\nx\r\n", MIME_QP },
		/* charset=utf-8 only when 8-bit and no Content-Type */
		{ HDR "\r\nascii\r\n", false, HDR MV QPH "\r\nascii\r\n",
		  MIME_QP },
		{ HDR "\r\n\xe2\x82\xac\r\n", true,
		  HDR MV UTF8 QPH "\r\n=E2=82=AC\r\n", MIME_QP },
		{ HDR "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		  "\xe9\r\n", true,
		  HDR "Content-Type: text/plain; charset=iso-8859-1\r\n" MV QPH
		  "\r\n=E9\r\n", MIME_QP },
		{ HDR "Content-Type: text/plain\r\n\r\n\xe9\r\n", true,
		  HDR "Content-Type: text/plain\r\n" MV QPH "\r\n=E9\r\n",
		  MIME_QP },
		{ HDR "Content-Type: text/html; charset=utf-8\r\n\r\n<p>\r\n",
		  false, HDR "Content-Type: text/html; charset=utf-8\r\n" MV QPH
		  "\r\n<p>\r\n", MIME_QP },
		{ HDR "Content-type: TEXT/PLAIN\r\n\r\nx\r\n", false,
		  HDR "Content-type: TEXT/PLAIN\r\n" MV QPH "\r\nx\r\n",
		  MIME_QP },
	};

	(void)state;
	RUN(rows);
}

/* Not re-encoded: multipart, non-text, already encoded. Nothing changes
 * when no line is too long. */
static void test_broken_kinds(void **state)
{
	static const struct row rows[] = {
		{ HDR MV "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\n\r\nx=y \r\n--b--\r\n", true,
		  HDR MV "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		  "--b\r\n\r\nx=y \r\n--b--\r\n", MIME_BROKEN },
		{ HDR MV "Content-Type: application/pdf\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n", false,
		  HDR MV "Content-Type: application/pdf\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n",
		  MIME_BROKEN },
		{ HDR "Content-Type: text/plain\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n", false,
		  HDR "Content-Type: text/plain\r\n"
		  "Content-Transfer-Encoding: base64\r\n\r\nQUJD\r\n",
		  MIME_BROKEN },
		{ HDR "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		  "a=3D\r\n", false,
		  HDR "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		  "a=3D\r\n", MIME_BROKEN },
		{ HDR "Content-Type: image/png\r\n\r\n\x89PNG\r\n", true,
		  HDR "Content-Type: image/png\r\n\r\n\x89PNG\r\n", MIME_BROKEN },
		{ HDR "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n", false,
		  HDR "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n",
		  MIME_BROKEN },
	};

	(void)state;
	RUN(rows);
}

/* Long lines in a multipart or base64 part: CRLF SPACE after every 998
 * octets (the space counts in the next line), nothing else changes. */
static void test_broken_long_lines(void **state)
{
	static const size_t lens[] = { 997, 998, 999, 1000, 1995, 1996, 1997,
	                               2500, 100000 };
	size_t l;

	(void)state;
	for (l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t n = lens[l];
		char *in = repeat(HDR MV "Content-Type: multipart/mixed; "
		                  "boundary=b\r\n\r\n--b\r\n"
		                  "Content-Transfer-Encoding: base64\r\n\r\n",
		                  'Q', n, "\r\n--b--\r\n");
		size_t inlen = strlen(in), b = body_at(in, inlen);
		size_t q = b + body_at(in + b, inlen - b);
		enum mime_fix how;
		struct buf out = fix_str(in, false, &how);
		size_t i, breaks = 0, expect;

		assert_int_equal(how, MIME_BROKEN);
		if (longest_line(out.p, out.len) > MIME_LINE_MAX)
			fail_msg("%zu: line of %zu", n,
			         longest_line(out.p, out.len));
		/* the header section is untouched */
		assert_bytes("headers", out.p, b, in, b);
		for (i = 0; i + 2 < out.len; i++) {
			if (memcmp(out.p + i, "\r\n ", 3) == 0)
				breaks++;
		}
		/* first line 998, then 997 more per line after the space */
		expect = n <= 998 ? 0 : (n - 998 + 996) / 997;
		if (breaks != expect)
			fail_msg("%zu octets: %zu breaks, want %zu", n, breaks,
			         expect);
		if (n > 998 && memcmp(out.p + q + 998, "\r\n ", 3) != 0)
			fail_msg("%zu octets: no break after 998", n);
		out.len = unbreak(out.p, out.len);
		assert_bytes("unbroken", out.p, out.len, in, inlen);
		free(out.p);
		free(in);
	}
}

/* A header field longer than 998 octets is broken the same way, in
 * either mode; other fields are kept byte for byte. */
static void test_long_headers(void **state)
{
	static const char *const tails[] = {
		/* qp */
		"\r\nshort body\r\n",
		/* broken */
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
	};
	size_t t;

	(void)state;
	for (t = 0; t < 2; t++) {
		char *in = repeat("Subject: ", 's', 2000, "\r\n" HDR);
		char *full = malloc(strlen(in) + strlen(tails[t]) + 1);
		enum mime_fix how;
		struct buf out;
		size_t b;

		assert_non_null(full);
		memcpy(full, in, strlen(in));
		memcpy(full + strlen(in), tails[t], strlen(tails[t]) + 1);
		out = fix_str(full, false, &how);
		assert_int_equal(how, t == 0 ? MIME_QP : MIME_BROKEN);
		assert_true(longest_line(out.p, out.len) <= MIME_LINE_MAX);
		/* "Subject: " + 989 s, then CRLF SPACE */
		assert_int_equal(memcmp(out.p + 998, "\r\n s", 4), 0);
		b = body_at(out.p, out.len);
		out.len = unbreak(out.p, out.len);
		if (t == 1) {
			assert_bytes("broken", out.p, out.len, full, strlen(full));
		} else {
			/* the Subject field is whole again once unbroken */
			assert_int_equal(memcmp(out.p, full, 2009 + 2), 0);
			assert_true(b > 0);
		}
		free(out.p);
		free(full);
		free(in);
	}
}

/* A bare CR is an octet of the line: a progress bar ("10%\r20%\r...")
 * in a multipart message must still be broken at 998 octets. */
static void test_broken_bare_cr(void **state)
{
	char body[4000];
	char *in;
	size_t n = 0, len;
	enum mime_fix how;
	struct buf out;
	int i;

	(void)state;
	for (i = 0; i < 400; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%3d%%\r",
		                      i % 100);
	len = strlen(HDR MV "Content-Type: multipart/mixed; boundary=b\r\n"
	             "\r\n--b\r\n\r\n") + n + 11;
	in = malloc(len + 1);
	assert_non_null(in);
	snprintf(in, len + 1, "%s%s%s", HDR MV "Content-Type: multipart/mixed;"
	         " boundary=b\r\n\r\n--b\r\n\r\n", body, "\r\n--b--\r\n");
	out = fix(in, strlen(in), false, &how);
	assert_int_equal(how, MIME_BROKEN);
	if (longest_line(out.p, out.len) > MIME_LINE_MAX) {
		size_t longest = longest_line(out.p, out.len);

		free(out.p);
		free(in);
		fail_msg("line of %zu octets", longest);
	}
	free(out.p);
	free(in);
}

/* Content-Type / Content-Transfer-Encoding folded right after the
 * colon: still recognised. */
static void test_folded_fields(void **state)
{
	static const struct row rows[] = {
		{ HDR "Content-Transfer-Encoding:\r\n 8bit\r\n\r\nx\r\n", false,
		  HDR MV QPH "\r\nx\r\n", MIME_QP },
		{ HDR "Content-Type:\r\n text/plain;\r\n charset=utf-8\r\n\r\n"
		  "x\r\n", false, HDR "Content-Type:\r\n text/plain;\r\n "
		  "charset=utf-8\r\n" MV QPH "\r\nx\r\n", MIME_QP },
	};
	enum mime_fix how;
	struct buf out = fix_str(rows[0].in, false, &how);

	(void)state;
	free(out.p);
	if (how != MIME_QP)
	RUN(rows);
}

/* A second pass over quoted-printable output (already encoded, so it
 * is "broken", not encoded again) changes nothing. */
static void test_second_pass(void **state)
{
	char *in = repeat(HDR "\r\n", 'z', 3000, "\r\n");
	enum mime_fix how;
	struct buf once = fix_str(in, false, &how), twice;

	(void)state;
	assert_int_equal(how, MIME_QP);
	twice = fix(once.p, once.len, false, &how);
	assert_int_equal(how, MIME_BROKEN);
	assert_bytes("second pass", twice.p, twice.len, once.p, once.len);
	free(once.p);
	free(twice.p);
	free(in);
}

static void test_write_error(void **state)
{
	char err[128];
	off_t size = 10;
	enum mime_fix how = MIME_QP;
	int fds[2];

	(void)state;
	/* a pipe cannot be rewound: an error, not a crash */
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], HDR "\r\nx\r\n", strlen(HDR) + 5),
	                 (ssize_t)strlen(HDR) + 5);
	memset(err, 'X', sizeof(err));
	assert_int_equal(mime_fix_long_lines(fds[0], &size, false, &how, err,
	                                     sizeof(err)), -1);
	assert_non_null(memchr(err, '\0', sizeof(err)));
	assert_int_equal(how, MIME_NONE);
	assert_int_equal(size, 10);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qp_exact),
		cmocka_unit_test(test_qp_soft_breaks),
		cmocka_unit_test(test_qp_roundtrip),
		cmocka_unit_test(test_qp_100000),
		cmocka_unit_test(test_qp_headers),
		cmocka_unit_test(test_broken_kinds),
		cmocka_unit_test(test_broken_long_lines),
		cmocka_unit_test(test_long_headers),
		cmocka_unit_test(test_broken_bare_cr),
		cmocka_unit_test(test_folded_fields),
		cmocka_unit_test(test_second_pass),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
