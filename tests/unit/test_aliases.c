/*
 * test_aliases.c - unit tests for src/aliases.c (cmocka).
 *
 * Table-driven: an aliases text, a name to expand and either the exact
 * list of addresses expected (in order) or a fragment of the expected
 * error; parse errors with the line number they must name. Texts are
 * passed as exact-size heap copies (aliases_parse does not need a NUL).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"

#define MAXWANT 8

/* Parse text (as an exact-size copy); fails the test on error. */
static struct aliases *parse_ok(const char *text)
{
	size_t len = strlen(text);
	char *copy = malloc(len > 0 ? len : 1);
	struct aliases *a = NULL;
	char err[256];

	assert_non_null(copy);
	memcpy(copy, text, len);
	if (aliases_parse(copy, len, &a, err, sizeof(err)) != 0)
		fail_msg("parse [%s]: %s", text, err);
	free(copy);
	assert_non_null(a);
	return a;
}

/* ---- expansion ---- */

struct xrow {
	const char *text;
	const char *name;
	const char *want[MAXWANT];  /* NULL-terminated */
	const char *err;            /* NULL: must succeed */
	size_t skipped;             /* aliases_skipped() expected */
};

#define X(text, name, ...) { text, name, { __VA_ARGS__, NULL }, NULL, 0 }
#define XNONE(text, name) { text, name, { NULL }, NULL, 0 }
#define XERR(text, name, err) { text, name, { NULL }, err, 0 }
#define XSKIP(text, name, n, ...) { text, name, { __VA_ARGS__, NULL }, NULL, n }
#define XERRSKIP(text, name, n, err) { text, name, { NULL }, err, n }

static void run_xrows(const struct xrow *rows, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		const struct xrow *r = &rows[i];
		struct aliases *a = parse_ok(r->text);
		struct addr_list out = { NULL, 0, 0 };
		char err[256];
		size_t nwant = 0;
		int rc;

		while (nwant < MAXWANT && r->want[nwant] != NULL)
			nwant++;
		memset(err, 'X', sizeof(err));
		rc = aliases_expand(a, r->name, &out, err, sizeof(err));
		if (r->err != NULL) {
			if (rc != -1 || memchr(err, '\0', sizeof(err)) == NULL ||
			    strstr(err, r->err) == NULL)
				fail_msg("row %zu (%s): want error '%s', got rc %d [%s]",
				         i, r->name, r->err, rc, rc ? err : "");
		} else {
			if (rc != 0)
				fail_msg("row %zu (%s): error %s", i, r->name, err);
			if (out.count != nwant)
				fail_msg("row %zu (%s): %zu addresses, want %zu (first "
				         "[%s])", i, r->name, out.count, nwant,
				         out.count ? out.addrs[0] : "");
			for (k = 0; k < nwant; k++) {
				if (strcmp(out.addrs[k], r->want[k]) != 0)
					fail_msg("row %zu (%s): address %zu [%s], want [%s]",
					         i, r->name, k, out.addrs[k], r->want[k]);
			}
		}
		if (aliases_skipped(a) != r->skipped)
			fail_msg("row %zu: %zu skipped, want %zu", i,
			         aliases_skipped(a), r->skipped);
		addr_list_free(&out);
		aliases_free(a);
	}
}

#define RUN_X(rows) run_xrows(rows, sizeof(rows) / sizeof(rows[0]))

static void test_entries(void **state)
{
	static const struct xrow rows[] = {
		X("root: admin@example.com\n", "root", "admin@example.com"),
		X("root: a@example.com, b@example.com\n", "root",
		  "a@example.com", "b@example.com"),
		X("root:a@example.com,b@example.com", "root",
		  "a@example.com", "b@example.com"),
		X("root : a@example.com\n", "root", "a@example.com"),
		X("postmaster: root\nroot: ops@example.com\n", "postmaster",
		  "ops@example.com"),
		X("root: Admin <admin@example.com>\n", "root",
		  "admin@example.com"),
		X("root: admin@example.com (the admin)\n", "root",
		  "admin@example.com"),
		X("Root: a@example.com\n", "root", "a@example.com"),
		X("root: a@example.com\n", "ROOT", "a@example.com"),
		X("www-data: root\nroot: a@example.com\n", "www-data",
		  "a@example.com"),
		X("", "root", "root"),
		X("root: a@example.com\n", "joe", "joe"),
		X("\"cron users\": cron@example.com\n", "\"cron users\"",
		  "cron@example.com"),
		X("\"cron users\": cron@example.com\n", "cron users",
		  "cron@example.com"),
		X("root: a@example.com, , b@example.com,\n", "root",
		  "a@example.com", "b@example.com"),
	};

	(void)state;
	RUN_X(rows);
}

static void test_continuation_and_comments(void **state)
{
	static const struct xrow rows[] = {
		X("root: a@example.com,\n  b@example.com,\n\tc@example.com\n",
		  "root", "a@example.com", "b@example.com", "c@example.com"),
		X("root: a@example.com\n  , b@example.com\nx: y@example.com\n",
		  "root", "a@example.com", "b@example.com"),
		X("# root: wrong@example.com\nroot: right@example.com\n", "root",
		  "right@example.com"),
		X("\n\n# comment\n\nroot: a@example.com\n\n", "root",
		  "a@example.com"),
		X("root: a@example.com\n   \nb: c@example.com\n", "b",
		  "c@example.com"),
		X("root: a@example.com\n\t\nb: c@example.com\n", "root",
		  "a@example.com"),
	};

	(void)state;
	RUN_X(rows);
}

static void test_catch_all(void **state)
{
	static const struct xrow rows[] = {
		X("*: catch@example.com\nroot: r@example.com\n", "joe",
		  "catch@example.com"),
		X("*: catch@example.com\nroot: r@example.com\n", "root",
		  "r@example.com"),
		X("root: r@example.com\n*: root\n", "joe", "r@example.com"),
		X("*: postmaster\n", "joe", "postmaster"),
		/* the catch-all is never applied twice */
		X("*: joe\n", "joe", "joe"),
		X("*: nobody\nnobody: someone\n", "joe", "someone"),
		X("*: a@example.com, b@example.com\n", "joe", "a@example.com",
		  "b@example.com"),
		/* a named entry pointing at an unknown name uses the catch-all */
		X("root: joe\n*: catch@example.com\n", "root",
		  "catch@example.com"),
	};

	(void)state;
	RUN_X(rows);
}

static void test_recursion_and_loops(void **state)
{
	static const struct xrow rows[] = {
		X("a: b\nb: c\nc: c@example.com\n", "a", "c@example.com"),
		X("a: b, c\nb: x@example.com\nc: y@example.com\n", "a",
		  "x@example.com", "y@example.com"),
		/* the same target twice is not a loop */
		X("a: b, b\nb: x@example.com\n", "a", "x@example.com",
		  "x@example.com"),
		/* "root: root" delivers to root itself */
		X("root: root\n", "root", "root"),
		X("root: root, backup@example.com\n", "root", "root",
		  "backup@example.com"),
		X("root: Root\n", "root", "Root"),
		XERR("a: b\nb: a\n", "a", "loop"),
		XERR("a: b\nb: c\nc: a\n", "b", "loop"),
		XERR("a: b\nb: c, a\nc: x@example.com\n", "a", "loop"),
		XERR("n0: n1\nn1: n2\nn2: n3\nn3: n4\nn4: n5\nn5: n6\nn6: n7\n"
		     "n7: n8\nn8: n9\nn9: n10\nn10: n11\nn11: n12\nn12: n13\n"
		     "n13: n14\nn14: n15\nn15: n16\nn16: n17\nn17: n18\n"
		     "n18: n19\nn19: end@example.com\n", "n0", "deep"),
	};

	(void)state;
	RUN_X(rows);
}

static void test_unusable_targets(void **state)
{
	static const struct xrow rows[] = {
		XSKIP("root: a@example.com, |/usr/bin/procmail, /var/mail/root, "
		      ":include:/etc/mail/list\n", "root", 3, "a@example.com"),
		XSKIP("root: :INCLUDE:/etc/list, b@example.com\n", "root", 1,
		      "b@example.com"),
		/* quoted, as aliases(5) writes commands with arguments */
		XSKIP("root: \"|/usr/bin/vacation root\", a@example.com\n",
		      "root", 1, "a@example.com"),
		XSKIP("root: \"/var/log/mail archive\", a@example.com\n",
		      "root", 1, "a@example.com"),
		/* nothing usable left: an error, never a silent drop */
		XERRSKIP("root: |/bin/true\nb: /dev/null\n", "b", 2,
		         "no target"),
		XERRSKIP("root: |/bin/true\nb: root\n", "b", 1, "no target"),
		XERRSKIP("root: \"|/usr/bin/vacation root\"\n", "root", 1,
		         "no target"),
	};

	(void)state;
	RUN_X(rows);
}

static void test_quoted_display_names(void **state)
{
	static const struct xrow rows[] = {
		X("root: \"Smith, John\" <john@example.com>, \"Doe, Jane\" "
		  "<jane@example.com>\n", "root", "john@example.com",
		  "jane@example.com"),
		X("root: \"a, b, c\" <x@example.com>\n", "root", "x@example.com"),
		X("root: \"Quote \\\" and, comma\" <q@example.com>, "
		  "r@example.com\n", "root", "q@example.com", "r@example.com"),
		X("root: \"john, smith\"@example.com\n", "root",
		  "\"john, smith\"@example.com"),
	};

	(void)state;
	RUN_X(rows);
}

/* ---- parse errors ---- */

struct erow {
	const char *text;
	size_t len;             /* 0: strlen(text) */
	const char *err;        /* expected prefix, e.g. "line 2: " */
	const char *secret;     /* must not appear in the error */
};

#define E(text, err, secret) { text, 0, err, secret }
#define ELIT(lit, err, secret) { lit, sizeof(lit) - 1, err, secret }

static void test_parse_errors(void **state)
{
	static const struct erow rows[] = {
		E("root secretvalue@example.com\n", "line 1: ", "secretvalue"),
		E("root: a@example.com\nbad line secretvalue\n", "line 2: ",
		  "secretvalue"),
		E("root: <secretvalue@\n", "line 1: ", "secretvalue"),
		E("secretvalue@host: a@example.com\n", "line 1: ", "secretvalue"),
		E("a: b@example.com,\n  c@example.com\n\n# x\nsecretvalue\n",
		  "line 5: ", "secretvalue"),
		E("a: b@example.com,\n  <secretvalue@\n", "line 1: ",
		  "secretvalue"),
		E("a: b@example.com,\n\tc@example.com,\n d@example.com\n"
		  "x: (secretvalue\n", "line 4: ", "secretvalue"),
		E(": secretvalue@example.com\n", "line 1: ", "secretvalue"),
		E("two words: secretvalue@example.com\n", "line 1: ",
		  "secretvalue"),
		E("\"unterminated: secretvalue@example.com\n", "line 1: ",
		  "secretvalue"),
		ELIT("root: a@example.com\nx: secret\0value\n", "line 2: NUL",
		     "secret"),
		E("root: \"secretvalue, <a@example.com>\n", "line 1: ",
		  "secretvalue"),
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct erow *r = &rows[i];
		size_t len = r->len ? r->len : strlen(r->text);
		char *copy = malloc(len);
		struct aliases *a = (struct aliases *)&a;
		char err[256];

		assert_non_null(copy);
		memcpy(copy, r->text, len);
		memset(err, 'X', sizeof(err));
		if (aliases_parse(copy, len, &a, err, sizeof(err)) != -1)
			fail_msg("row %zu: parse succeeded", i);
		if (a != NULL)
			fail_msg("row %zu: *out not NULL on error", i);
		if (memchr(err, '\0', sizeof(err)) == NULL)
			fail_msg("row %zu: error not NUL-terminated", i);
		if (strncmp(err, r->err, strlen(r->err)) != 0)
			fail_msg("row %zu: error [%s], want prefix [%s]", i, err,
			         r->err);
		if (strstr(err, r->secret) != NULL)
			fail_msg("row %zu: error [%s] repeats the line's text", i,
			         err);
		free(copy);
	}
}

static void test_error_truncation(void **state)
{
	struct aliases *a = NULL;
	char err[8];

	(void)state;
	memset(err, 'X', sizeof(err));
	assert_int_equal(aliases_parse("bad line\n", 9, &a, err, sizeof(err)),
	                 -1);
	assert_null(a);
	assert_non_null(memchr(err, '\0', sizeof(err)));
	assert_int_equal(strncmp(err, "line 1:", 7), 0);
}

/* ---- big inputs ---- */

/* About 4 MB of entries (the most aliases_load reads). */
static char *big_text(size_t *len, size_t *entries)
{
	size_t cap = ALIASES_MAX_BYTES, n = 0, k = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	for (;;) {
		char line[128];
		int w = snprintf(line, sizeof(line),
		                 "user%06zu: user%06zu@example.com, ops, \"Ops Team\" "
		                 "<ops@example.com>\n", k, k);

		if (n + (size_t)w > cap)
			break;
		memcpy(t + n, line, (size_t)w);
		n += (size_t)w;
		k++;
	}
	/* pad to exactly ALIASES_MAX_BYTES with a comment line */
	if (n < cap) {
		memset(t + n, '#', cap - n);
		t[cap - 1] = '\n';
		n = cap;
	}
	*len = n;
	*entries = k;
	return t;
}

static void test_four_megabytes(void **state)
{
	size_t len, entries;
	char *text = big_text(&len, &entries);
	struct aliases *a = NULL;
	struct addr_list out = { NULL, 0, 0 };
	char name[32], want[64];
	char err[256];

	(void)state;
	assert_int_equal(len, ALIASES_MAX_BYTES);
	if (aliases_parse(text, len, &a, err, sizeof(err)) != 0)
		fail_msg("4 MB parse: %s", err);
	snprintf(name, sizeof(name), "user%06zu", entries - 1);
	snprintf(want, sizeof(want), "user%06zu@example.com", entries - 1);
	assert_int_equal(aliases_expand(a, name, &out, err, sizeof(err)), 0);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.addrs[0], want);
	assert_string_equal(out.addrs[1], "ops");
	assert_string_equal(out.addrs[2], "ops@example.com");
	addr_list_free(&out);
	aliases_free(a);
	free(text);
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_aliases.XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void test_load(void **state)
{
	char path[128];
	size_t len, entries;
	char *text = big_text(&len, &entries), *grown;
	struct aliases *a = NULL;
	char err[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/aliases", tmpdir);

	/* exactly the limit: read */
	write_file(path, text, len);
	if (aliases_load(path, &a, err, sizeof(err)) != 0)
		fail_msg("load 4 MB: %s", err);
	aliases_free(a);

	/* one byte more: refused, naming the file */
	grown = realloc(text, len + 1);
	assert_non_null(grown);
	text = grown;
	text[len] = '\n';
	write_file(path, text, len + 1);
	a = (struct aliases *)&a;
	assert_int_equal(aliases_load(path, &a, err, sizeof(err)), -1);
	assert_null(a);
	assert_non_null(strstr(err, path));

	/* a missing file */
	unlink(path);
	assert_int_equal(aliases_load(path, &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	free(text);
}

/* Errors from a file name it and the line as "FILE:LINE: reason". */
static void test_load_error_format(void **state)
{
	char path[128], want[160];
	struct aliases *a = NULL;
	char err[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/aliases", tmpdir);
	write_file(path, "root: a@example.com\nbad secretvalue\n", 36);
	assert_int_equal(aliases_load(path, &a, err, sizeof(err)), -1);
	unlink(path);
	assert_null(strstr(err, "secretvalue"));
	snprintf(want, sizeof(want), "%s:2: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error [%s], want prefix [%s]", err, want);
}

/* A file of blanks only, without a final newline (aliases_parse must not
 * read past len; caught by valgrind / SANITIZE=1). */
static void test_blank_only_text(void **state)
{
	static const char *const texts[] = { " ", "\t", " \t\r", "\"x\"  " };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t len = strlen(texts[i]);
		char *copy = malloc(len);
		struct aliases *a = NULL;
		char err[128];

		assert_non_null(copy);
		memcpy(copy, texts[i], len);
		if (aliases_parse(copy, len, &a, err, sizeof(err)) == 0)
			aliases_free(a);
		free(copy);
	}
}

/* Wide and deep aliases expand in bounded time: 15 levels of 8 targets
 * (8^15 paths) end at the output cap or at a leaf with nothing usable,
 * never after walking every path. */
static void test_fanout_terminates(void **state)
{
	static const char *const leaves[] = {
		"a15: |/bin/true\n", "a15: leaf@example.com\n", "a15: a15\n",
	};
	char text[4096];
	size_t n, k;
	int i, j;

	(void)state;
	for (k = 0; k < sizeof(leaves) / sizeof(leaves[0]); k++) {
		struct aliases *a;
		struct addr_list out = { NULL, 0, 0 };
		char err[256];

		n = 0;
		for (i = 0; i < 15; i++) {
			n += (size_t)snprintf(text + n, sizeof(text) - n, "a%d: ", i);
			for (j = 0; j < 8; j++)
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%sa%d",
				                      j ? ", " : "", i + 1);
			n += (size_t)snprintf(text + n, sizeof(text) - n, "\n");
		}
		snprintf(text + n, sizeof(text) - n, "%s", leaves[k]);
		a = parse_ok(text);
		alarm(20);  /* a hang fails the test instead of blocking */
		assert_int_equal(aliases_expand(a, "a0", &out, err, sizeof(err)),
		                 -1);
		alarm(0);
		assert_true(out.count <= ADDR_MAX_COUNT);
		addr_list_free(&out);
		aliases_free(a);
	}
}

/* A file with CRLF line ends (written on Windows, or by a tool). */
static void test_crlf_line_ends(void **state)
{
	static const struct xrow rows[] = {
		X("root: a@example.com\r\npostmaster: root\r\n", "postmaster",
		  "a@example.com"),
		X("root: a@example.com,\r\n b@example.com\r\n", "root",
		  "a@example.com", "b@example.com"),
		X("# comment\r\n\r\nroot: a@example.com, b@example.com\r\n",
		  "root", "a@example.com", "b@example.com"),
	};

	(void)state;
	RUN_X(rows);
}

/* A quoted ":include:" (a path with blanks) is unusable too. */
static void test_quoted_include(void **state)
{
	static const struct xrow rows[] = {
		XSKIP("root: \":include:/etc/mail/staff list\", a@example.com\n",
		      "root", 1, "a@example.com"),
	};


	(void)state;
	RUN_X(rows);
}

/* Up to 100000 entries (the table once stopped growing at 65536). */
static void test_many_entries(void **state)
{
	size_t n = 80000, i, len = 0;
	char *text = malloc(n * 24);
	struct aliases *a = NULL;
	char err[256];

	(void)state;
	assert_non_null(text);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, n * 24 - len, "u%zu: x\n", i);
	if (aliases_parse(text, len, &a, err, sizeof(err)) != 0)
		fail_msg("80000 entries: %s", err);
	aliases_free(a);
	free(text);
}

static void test_free_null(void **state)
{
	(void)state;
	aliases_free(NULL);
	assert_int_equal(aliases_skipped(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_continuation_and_comments),
		cmocka_unit_test(test_catch_all),
		cmocka_unit_test(test_recursion_and_loops),
		cmocka_unit_test(test_unusable_targets),
		cmocka_unit_test(test_quoted_display_names),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_error_truncation),
		cmocka_unit_test(test_four_megabytes),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_error_format),
		cmocka_unit_test(test_blank_only_text),
		cmocka_unit_test(test_fanout_terminates),
		cmocka_unit_test(test_crlf_line_ends),
		cmocka_unit_test(test_quoted_include),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
