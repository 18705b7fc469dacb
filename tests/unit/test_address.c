/*
 * test_address.c - unit tests for src/address.c (cmocka).
 *
 * Table-driven: each row is an input and either the exact list of
 * addr-specs expected (in order) or a fragment of the expected error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

#define MAXWANT 8

struct row {
	const char *in;
	size_t len;                 /* 0: strlen(in) */
	const char *want[MAXWANT];  /* NULL-terminated expected addresses */
	const char *err;            /* NULL: must succeed; else error fragment */
};

#define OK(in, ...) { in, 0, { __VA_ARGS__, NULL }, NULL }
#define NONE(in) { in, 0, { NULL }, NULL }
#define ERR(in, msg) { in, 0, { NULL }, msg }
/* For inputs with an embedded NUL: length from the literal. */
#define ERRLIT(lit, msg) { lit, sizeof(lit) - 1, { NULL }, msg }

#define RUN(rows) run_rows(rows, sizeof(rows) / sizeof(rows[0]))

static size_t want_count(const struct row *r)
{
	size_t n = 0;

	while (n < MAXWANT && r->want[n] != NULL)
		n++;
	return n;
}

static void check_row(size_t i, const struct row *r)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[256];
	size_t len = r->len != 0 ? r->len : strlen(r->in);
	size_t n = want_count(r);
	size_t k;
	int rc;

	memset(err, 'X', sizeof(err));
	rc = addr_parse_list(r->in, len, &l, err, sizeof(err));
	if (r->err != NULL) {
		if (rc != -1 || strstr(err, r->err) == NULL)
			fail_msg("row %zu <%s>: want error '%s', got rc=%d err='%s'",
			         i, r->in, r->err, rc, rc == 0 ? "" : err);
		if (l.count != 0)
			fail_msg("row %zu <%s>: %zu entries left after error",
			         i, r->in, l.count);
		addr_list_free(&l);
		return;
	}
	if (rc != 0)
		fail_msg("row %zu <%s>: unexpected error '%s'", i, r->in, err);
	if (err[0] != '\0')
		fail_msg("row %zu <%s>: err not cleared on success", i, r->in);
	if (l.count != n)
		fail_msg("row %zu <%s>: want %zu addresses, got %zu (first '%s')",
		         i, r->in, n, l.count, l.count > 0 ? l.addrs[0] : "");
	for (k = 0; k < n; k++) {
		if (strcmp(l.addrs[k], r->want[k]) != 0)
			fail_msg("row %zu <%s>: address %zu: want '%s' got '%s'",
			         i, r->in, k, r->want[k], l.addrs[k]);
	}
	addr_list_free(&l);
}

static void run_rows(const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check_row(i, &rows[i]);
}

/* ---- RFC 5322 Appendix A ---------------------------------------------- */

static const struct row rfc_rows[] = {
	/* A.1.1 */
	OK("John Doe <jdoe@machine.example>", "jdoe@machine.example"),
	OK("Michael Jones <mjones@machine.example>", "mjones@machine.example"),
	OK("Mary Smith <mary@example.net>", "mary@example.net"),
	/* A.1.2 */
	OK("\"Joe Q. Public\" <john.q.public@example.com>",
	   "john.q.public@example.com"),
	OK("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	   "mary@x.test", "jdoe@example.org", "one@y.test"),
	OK("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
	   "boss@nil.test", "sysservices@example.net"),
	/* A.1.3 */
	OK("Pete <pete@silly.example>", "pete@silly.example"),
	OK("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	   "c@a.test", "joe@where.test", "jdoe@one.test"),
	NONE("Undisclosed recipients:;"),
	/* A.2 */
	OK("\"Mary Smith: Personal Account\" <smith@home.example>",
	   "smith@home.example"),
	OK("John Doe <jdoe@machine.example>", "jdoe@machine.example"),
	/* A.3 */
	OK("Jane Brown <j-brown@other.example>", "j-brown@other.example"),
	/* A.5 */
	OK("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	   "pete@silly.test"),
	OK("A Group(Some people)\r\n"
	   "     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
	   "         joe@example.org,\r\n"
	   "  John <jdoe@one.test> (my dear friend); (the end of the group)",
	   "c@public.example", "joe@example.org", "jdoe@one.test"),
	NONE("(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;"),
	/* A.6.1 */
	OK("Joe Q. Public <john.q.public@example.com>",
	   "john.q.public@example.com"),
	OK("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
	   "mary@example.net", "jdoe@test.example"),
	/* A.6.2 */
	OK("Mary Smith <mary@example.net>", "mary@example.net"),
	/* A.6.3 */
	OK("John Doe <jdoe@machine(comment).  example>", "jdoe@machine.example"),
	OK(" Mary Smith\r\n  \r\n          <mary@example.net>",
	   "mary@example.net"),
};

static void test_rfc5322_appendix_a(void **state)
{
	(void)state;
	RUN(rfc_rows);
}

/* ---- accepted forms ---------------------------------------------------- */

static const struct row display_rows[] = {
	OK("\"Smith, John\" <js@x.test>", "js@x.test"),
	OK("\"a \\\"q\\\" b, c\" <q@x.test>, r@x.test", "q@x.test", "r@x.test"),
	OK("John Q. Public <jqp@x.test>", "jqp@x.test"),
	OK("J. R. R. Tolkien <jrrt@x.test>", "jrrt@x.test"),
	OK("J\xc3\xbcrgen M\xc3\xbcller <jm@x.de>", "jm@x.de"),
	OK("\"J\xc3\xbcrgen, M.\" <jm@x.de>", "jm@x.de"),
	OK("=?UTF-8?Q?J=C3=BCrgen?= <jm@x.de>", "jm@x.de"),
	OK("\tJohn\t<j@x.test>\t", "j@x.test"),
	OK("<a@x.test>", "a@x.test"),
	OK("a@x.test", "a@x.test"),
	OK("John.Doe@Example.COM", "John.Doe@Example.COM"),
	OK("!#$%&'*+-/=?^_`{|}~@iana.org", "!#$%&'*+-/=?^_`{|}~@iana.org"),
	OK("j\xc3\xbcrgen@b\xc3\xbc" "cher.de", "j\xc3\xbcrgen@b\xc3\xbc" "cher.de"),
	OK("Foo [bar] <a@b.test>", "a@b.test"),
	OK("A <a@x>, B <b@y>, \"C\" <c@z>", "a@x", "b@y", "c@z"),
};

static void test_display_names(void **state)
{
	(void)state;
	RUN(display_rows);
}

static const struct row quoted_rows[] = {
	OK("\"a b\"@x", "\"a b\"@x"),
	OK("\"a,b\"@x", "\"a,b\"@x"),
	OK("\"a\\\"b\"@x", "\"a\\\"b\"@x"),
	OK("\"a\\\\b\"@x", "\"a\\\\b\"@x"),
	OK("\"\\a\\b\"@x", "ab@x"),
	OK("\"ab\"@x", "ab@x"),
	OK("\"a.b\"@x", "a.b@x"),
	OK("\"a\".\"b\"@x", "a.b@x"),
	OK("\"a b\".c@x", "\"a b.c\"@x"),
	OK("\"a.\"@x", "\"a.\"@x"),
	OK("\"(not a comment)\"@x", "\"(not a comment)\"@x"),
	OK("\"a@b\"@x", "\"a@b\"@x"),
	OK("Name <\"a b\"@x>", "\"a b\"@x"),
	OK("\"a\tb\"@x", "\"a\tb\"@x"),
	OK("\"a\\ b\"@x", "\"a b\"@x"),
	OK("john..doe@docomo.ne.jp", "\"john..doe\"@docomo.ne.jp"),
	OK("john.@docomo.ne.jp", "\"john.\"@docomo.ne.jp"),
};

static void test_quoted_local_parts(void **state)
{
	(void)state;
	RUN(quoted_rows);
}

static const struct row literal_rows[] = {
	OK("u@[192.0.2.1]", "u@[192.0.2.1]"),
	OK("u@[IPv6:::1]", "u@[IPv6:::1]"),
	OK("Name <u@[IPv6:2001:db8::1]>", "u@[IPv6:2001:db8::1]"),
	OK("u@[ 192.0.2.1 ]", "u@[192.0.2.1]"),
	OK("u@[192.0.2.1\r\n ]", "u@[192.0.2.1]"),
	OK("u@(c)[192.0.2.1](c)", "u@[192.0.2.1]"),
	OK("u@[a\\]b]", "u@[a\\]b]"),
};

static void test_domain_literals(void **state)
{
	(void)state;
	RUN(literal_rows);
}

static const struct row comment_rows[] = {
	OK("a@x (a (b) \\) c)", "a@x"),
	OK("(a (b) \\) c) a@x", "a@x"),
	OK("(x, \"y, z) a@x, b@y", "a@x", "b@y"),
	OK("a(c)@(d)x(e).(f)y", "a@x.y"),
	OK("a@x(()()(()))", "a@x"),
	OK("(\\(\\() a@x", "a@x"),
	OK("(J\xc3\xbcrgen) a@x", "a@x"),
	NONE("(only a comment)"),
};

static void test_comments(void **state)
{
	(void)state;
	RUN(comment_rows);
}

static const struct row group_rows[] = {
	NONE("undisclosed-recipients:;"),
	NONE("undisclosed-recipients: ;"),
	OK("team: a@x, b@y;", "a@x", "b@y"),
	OK("team: a@x, b@y;, c@z", "a@x", "b@y", "c@z"),
	OK("g1: a@x;, g2: Bee <b@y>;", "a@x", "b@y"),
	OK("\"The Team\": a@x;", "a@x"),
	OK("g:,,a@x,,;", "a@x"),
	OK("g: a@x", "a@x"),
	NONE("undisclosed-recipients:"),
	OK("a@x, empty:;, b@y", "a@x", "b@y"),
};

static void test_groups(void **state)
{
	(void)state;
	RUN(group_rows);
}

static const struct row route_rows[] = {
	OK("<@r1,@r2:u@d>", "u@d"),
	OK("Name <@r1.example,,@r2.example:u@d>", "u@d"),
	OK("<@[192.0.2.1]:u@d>", "u@d"),
	OK("< @ r1 , @ r2 : u @ d >", "u@d"),
	OK("<@r1:root>", "root"),
};

static void test_routes(void **state)
{
	(void)state;
	RUN(route_rows);
}

static const struct row empty_rows[] = {
	OK("a@x,,b@y", "a@x", "b@y"),
	OK(",a@x", "a@x"),
	OK("a@x,", "a@x"),
	OK(", , a@x , , ", "a@x"),
	NONE(",,,"),
	NONE(""),
	NONE("   "),
	NONE("\r\n "),
};

static void test_empty_elements(void **state)
{
	(void)state;
	RUN(empty_rows);
}

static const struct row fold_rows[] = {
	OK("a@x,\r\n b@y", "a@x", "b@y"),
	OK("a@x,\n\tb@y", "a@x", "b@y"),
	OK("\"a\r\n b\"@x", "\"a b\"@x"),
	OK("John\r\n Doe <jd@x>", "jd@x"),
	OK("a\r\n .\r\n b@x", "a.b@x"),
	OK("a@x\r\n", "a@x"),
	OK("a@x\n", "a@x"),
	OK("(a\r\n comment) a@x", "a@x"),
	OK("a@x\r\n \r\n \r\n\t, b@y", "a@x", "b@y"),
};

static void test_folding(void **state)
{
	(void)state;
	RUN(fold_rows);
}

static const struct row obs_local_rows[] = {
	OK("a . b@x", "a.b@x"),
	OK("a(c).b@x", "a.b@x"),
	OK("John . Smith @ example . com", "John.Smith@example.com"),
	OK("a .\"b c\". d@x", "\"a.b c.d\"@x"),
};

static void test_obs_local_part(void **state)
{
	(void)state;
	RUN(obs_local_rows);
}

static const struct row bare_rows[] = {
	OK("root", "root"),
	OK("www-data", "www-data"),
	OK("Root <root>", "root"),
	OK("root, admin@x", "root", "admin@x"),
	OK("first.last", "first.last"),
	OK("\"a b\"", "\"a b\""),
	OK("root (Charlie Root)", "root"),
};

static void test_bare_local(void **state)
{
	(void)state;
	RUN(bare_rows);
}

/* ---- error classes ----------------------------------------------------- */

static const struct row unbalanced_rows[] = {
	ERR("\"abc", "unbalanced '\"'"),
	ERR("\"abc\\\"@x", "unbalanced '\"'"),
	ERR("a@x, \"b", "unbalanced '\"'"),
	ERR("(abc a@x", "unbalanced '('"),
	ERR("a@x (a (b) c", "unbalanced '('"),
	ERR("a@x (a \\)", "unbalanced '('"),
	ERR("a@x)", "unbalanced ')'"),
	ERR("<a@x", "unbalanced '<'"),
	ERR("Name <a@x, b@y", "expected '>'"),
	ERR("Name <", "unbalanced '<'"),
	ERR("a@x>", "unbalanced '>'"),
	ERR("<a@x>>", "unbalanced '>'"),
	ERR("u@[1.2.3.4", "unbalanced '['"),
	ERR("u@1.2.3.4]", "unbalanced ']'"),
};

static void test_err_unbalanced(void **state)
{
	(void)state;
	RUN(unbalanced_rows);
}

static const struct row empty_part_rows[] = {
	ERR("a@", "empty domain"),
	ERR("a@, b@x", "empty domain"),
	ERR("<a@>", "empty domain"),
	ERR("a@ (comment)", "empty domain"),
	ERR("a@x;", "';' outside a group"),
	ERR("@x", "empty local part"),
	ERR("<@x>", "invalid source route"),
	ERR("\"\"@x", "empty local part"),
	ERR("(c)@x", "empty local part"),
	ERR("u@[]", "empty domain literal"),
	ERR("u@[ ]", "empty domain literal"),
	ERR("<>", "empty address '<>'"),
	ERR("a@x, <>", "empty address '<>'"),
};

static void test_err_empty_parts(void **state)
{
	(void)state;
	RUN(empty_part_rows);
}

static const struct row garbage_rows[] = {
	ERR("a@b c@d", "expected ','"),
	ERR("a@b <c@d>", "expected ','"),
	ERR("A <a@b> B <c@d>", "expected ','"),
	ERR("a@x, b@y c", "expected ','"),
	ERR("John Smith", "display name without address"),
	ERR("John Smith@x", "unquoted white space in local part"),
	ERR("\"a\"\"b\"@x", "unquoted white space in local part"),
	ERR("a@b..c", "empty label"),
	ERR("a@b.", "empty label"),
	ERR("a@.b", "invalid domain"),
	ERR("a@@b", "invalid domain"),
	ERR("a@b@c", "unexpected '@'"),
	ERR("a@b:c", "unexpected ':'"),
	ERR("a\\b@x", "backslash outside"),
	ERR("[1.2.3.4]@x", "domain literal in local part"),
	ERR("u@[a[b]", "invalid character in domain literal"),
	ERR("u@[1.2.3.\xc3\xa4]", "invalid character in domain literal"),
	ERR("g: h: a@x;;", "nested group"),
	ERR(": a@x;", "group without a name"),
	ERR("<@r1 u@d>", "invalid source route"),
	ERR("<@r1:>", "empty address"),
	ERR("Name <<a@b>>", "empty address"),
	ERR("g: a@x;;", "';' outside a group"),
	ERR(">", "unbalanced '>'"),
};

static void test_err_garbage(void **state)
{
	(void)state;
	RUN(garbage_rows);
}

static const struct row ctl_rows[] = {
	ERRLIT("a@b\0c@d", "NUL byte"),
	ERRLIT("\"a\0b\"@x", "NUL byte"),
	ERRLIT("(\0) a@x", "NUL byte"),
	ERRLIT("\0", "NUL byte"),
	ERR("a\x01@x", "control character"),
	ERR("\"a\x07\"@x", "control character"),
	ERR("(\x07) a@x", "control character"),
	ERR("\"\\\x01\"@x", "control character"),
	ERR("a@x\x7f", "control character"),
	ERR("a@x\x1b", "control character"),
	ERR("a@x\r b@y", "control character"),
	ERR("a@x\r", "control character"),
	ERR("\"a\rb\"@x", "control character"),
	ERR("u@[1\x0b]", "control character"),
	ERR("a@x,\r\nb@y", "line break not followed by white space"),
	ERR("a@x\n\n", "line break not followed by white space"),
	ERR("\"a\\\r\n b\"@x", "control character"),
	ERR("\"a\\", "backslash at end of input"),
};

static void test_err_control_chars(void **state)
{
	(void)state;
	RUN(ctl_rows);
}

/* ---- addr_parse_one ---------------------------------------------------- */

struct one_row {
	const char *in;
	const char *want;  /* NULL: error expected */
	const char *err;
};

static const struct one_row one_rows[] = {
	{ "u@d", "u@d", NULL },
	{ "<u@d>", "u@d", NULL },
	{ "Name <u@d>", "u@d", NULL },
	{ "\"Name, Jr.\" <u@d>", "u@d", NULL },
	{ "u", "u", NULL },
	{ "<>", "", NULL },
	{ "  <>  ", "", NULL },
	{ "  u@d  ", "u@d", NULL },
	{ "u@d\n", "u@d", NULL },
	{ "<@r:u@d>", "u@d", NULL },
	{ "Root <root>", "root", NULL },
	{ "u@d (comment)", "u@d", NULL },
	{ "\"a b\"@d", "\"a b\"@d", NULL },
	{ "u@[IPv6:::1]", "u@[IPv6:::1]", NULL },
	{ "", NULL, "empty address" },
	{ "   ", NULL, "empty address" },
	{ "a@b, c@d", NULL, "more than one address" },
	{ "a@b,", NULL, "more than one address" },
	{ ",a@b", NULL, "more than one address" },
	{ "a@b c@d", NULL, "expected ','" },
	{ "<> a@b", NULL, "expected ','" },
	{ "g: a@b;", NULL, "group not allowed" },
	{ "<u@d", NULL, "unbalanced '<'" },
	{ "u@", NULL, "empty domain" },
	{ "a\x01@b", NULL, "control character" },
};

static void test_parse_one(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(one_rows) / sizeof(one_rows[0]); i++) {
		const struct one_row *r = &one_rows[i];
		char *out = (char *)"sentinel";
		char err[128];
		int rc = addr_parse_one(r->in, &out, err, sizeof(err));

		if (r->want != NULL) {
			if (rc != 0)
				fail_msg("one %zu <%s>: error '%s'", i, r->in, err);
			assert_non_null(out);
			if (strcmp(out, r->want) != 0)
				fail_msg("one %zu <%s>: want '%s' got '%s'",
				         i, r->in, r->want, out);
			free(out);
		} else {
			if (rc != -1 || strstr(err, r->err) == NULL)
				fail_msg("one %zu <%s>: want error '%s', rc=%d err='%s'",
				         i, r->in, r->err, rc, rc == 0 ? "" : err);
			assert_null(out);
		}
	}
}

static void test_parse_one_bad_args(void **state)
{
	char *out = NULL;
	char err[64];

	(void)state;
	assert_int_equal(addr_parse_one(NULL, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "invalid argument"));
	assert_int_equal(addr_parse_one("u@d", NULL, err, sizeof(err)), -1);
	assert_int_equal(addr_parse_one("u@d", &out, NULL, 0), 0);
	assert_string_equal(out, "u@d");
	free(out);
}

/* ---- list behaviour, limits -------------------------------------------- */

static void test_err_truncation(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[16];

	(void)state;
	memset(err, 'X', sizeof(err));
	assert_int_equal(addr_parse_list("\"abc", 4, &l, err, 1), -1);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], 'X');
	memset(err, 'X', sizeof(err));
	assert_int_equal(addr_parse_list("\"abc", 4, &l, err, 10), -1);
	assert_int_equal(strlen(err), 9);
	assert_int_equal(err[10], 'X');
	assert_int_equal(addr_parse_list("\"abc", 4, &l, NULL, 0), -1);
	memset(err, 'X', sizeof(err));
	assert_int_equal(addr_parse_list("\"abc", 4, &l, err, 0), -1);
	assert_int_equal(err[0], 'X');
	assert_int_equal(l.count, 0);
	assert_int_equal(addr_parse_list("a@b", 3, NULL, err, sizeof(err)), -1);
	assert_int_equal(addr_parse_list(NULL, 3, &l, err, sizeof(err)), -1);
	assert_int_equal(addr_parse_list(NULL, 0, &l, err, sizeof(err)), 0);
	assert_int_equal(l.count, 0);
}

static void test_not_nul_terminated(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char buf[8];
	char err[64];

	(void)state;
	memcpy(buf, "a@b.cXYZ", 8);
	assert_int_equal(addr_parse_list(buf, 5, &l, err, sizeof(err)), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.addrs[0], "a@b.c");
	addr_list_free(&l);
	memcpy(buf, "\"abcdefg", 8);
	assert_int_equal(addr_parse_list(buf, 8, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unbalanced"));
}

static void test_no_half_append(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	const char *bad = "a@x, b@y, c@";
	const char *good = "d@z, e@w";

	(void)state;
	assert_int_equal(addr_list_add(&l, "keep@x"), 0);
	assert_int_equal(addr_parse_list(bad, strlen(bad), &l, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "empty domain"));
	assert_non_null(strstr(err, "at offset 12"));
	assert_int_equal(l.count, 1);
	assert_string_equal(l.addrs[0], "keep@x");
	assert_int_equal(addr_parse_list(good, strlen(good), &l, err, sizeof(err)),
	                 0);
	assert_string_equal(err, "");
	assert_int_equal(l.count, 3);
	assert_string_equal(l.addrs[1], "d@z");
	assert_string_equal(l.addrs[2], "e@w");
	addr_list_free(&l);
	assert_null(l.addrs);
	assert_int_equal(l.count, 0);
	assert_int_equal(l.cap, 0);
}

static void test_list_add_free(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	size_t i;

	(void)state;
	addr_list_free(NULL);
	assert_int_equal(addr_list_add(NULL, "a"), -1);
	assert_int_equal(addr_list_add(&l, NULL), -1);
	for (i = 0; i < ADDR_MAX_COUNT; i++)
		assert_int_equal(addr_list_add(&l, "a@b"), 0);
	assert_int_equal(l.count, ADDR_MAX_COUNT);
	assert_true(l.cap <= ADDR_MAX_COUNT);
	assert_int_equal(addr_list_add(&l, "a@b"), -1);
	assert_int_equal(l.count, ADDR_MAX_COUNT);
	addr_list_free(&l);
	addr_list_free(&l);
	assert_int_equal(addr_list_add(&l, ""), 0);
	assert_string_equal(l.addrs[0], "");
	addr_list_free(&l);
}

/* n copies of unit, NUL-terminated; caller frees. */
static char *repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);
	size_t i;

	assert_non_null(s);
	for (i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

static int parse_str(const char *s, struct addr_list *l, char *err,
                     size_t errlen)
{
	return addr_parse_list(s, strlen(s), l, err, errlen);
}

static void test_count_cap(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	char *s;

	(void)state;
	s = repeat("a@b,", ADDR_MAX_COUNT);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), 0);
	assert_int_equal(l.count, ADDR_MAX_COUNT);
	assert_string_equal(l.addrs[ADDR_MAX_COUNT - 1], "a@b");
	addr_list_free(&l);
	free(s);

	s = repeat("a@b,", ADDR_MAX_COUNT + 1);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many addresses"));
	assert_int_equal(l.count, 0);
	addr_list_free(&l);
	free(s);

	/* The cap is on the list, not per call. */
	assert_int_equal(addr_list_add(&l, "first@x"), 0);
	s = repeat("a@b,", ADDR_MAX_COUNT);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.addrs[0], "first@x");
	addr_list_free(&l);
	free(s);

	/* 2 MB of "a@b," fails cleanly at the cap. */
	s = repeat("a@b,", 2 * 1024 * 1024 / 4);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many addresses"));
	assert_int_equal(l.count, 0);
	addr_list_free(&l);
	free(s);

	s = repeat("g:root;,", 2 * 1024 * 1024 / 8);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too many addresses"));
	assert_int_equal(l.count, 0);
	addr_list_free(&l);
	free(s);
}

static void test_length_limit(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	char *local;
	char buf[ADDR_MAX_LEN + 64];

	(void)state;
	/* Exactly ADDR_MAX_LEN: accepted. */
	local = repeat("a", ADDR_MAX_LEN - 2);
	snprintf(buf, sizeof(buf), "%s@x", local);
	assert_int_equal(parse_str(buf, &l, err, sizeof(err)), 0);
	assert_int_equal(strlen(l.addrs[0]), ADDR_MAX_LEN);
	addr_list_free(&l);
	free(local);
	/* One more: refused. */
	local = repeat("a", ADDR_MAX_LEN - 1);
	snprintf(buf, sizeof(buf), "%s@x", local);
	assert_int_equal(parse_str(buf, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(local);
	/* Quoting pushes it over. */
	local = repeat("\\\"", ADDR_MAX_LEN / 2);
	snprintf(buf, sizeof(buf), "\"%s\"@x", local);
	assert_int_equal(parse_str(buf, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(local);
	/* Bare local name too long. */
	local = repeat("r", ADDR_MAX_LEN + 1);
	assert_int_equal(parse_str(local, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(local);
	assert_int_equal(l.count, 0);
}

static void test_huge_inputs(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	char *s;
	size_t mb = 1024 * 1024;

	(void)state;
	/* 1 MB local part. */
	s = repeat("a", mb);
	s[mb - 2] = '@';
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(s);
	/* 1 MB domain. */
	s = repeat("b", mb);
	s[0] = 'a';
	s[1] = '@';
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(s);
	/* 1 MB quoted local part. */
	s = repeat("q", mb);
	s[0] = '"';
	s[mb - 3] = '"';
	s[mb - 2] = '@';
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address too long"));
	free(s);
	assert_int_equal(l.count, 0);
	/* A 1 MB display name is dropped, the address kept. */
	s = repeat("x ", mb / 2);
	memcpy(s + mb - 6, "<a@b>", 5);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.addrs[0], "a@b");
	addr_list_free(&l);
	free(s);
	/* 1 MB of commas and white space: an empty list. */
	s = repeat(", \r\n ()", mb / 7);
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), 0);
	assert_int_equal(l.count, 0);
	free(s);
	/* 4 MB of an unterminated quoted string. */
	s = repeat("x", 4 * mb);
	s[0] = '"';
	assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unbalanced '\"'"));
	free(s);
}

static void test_comment_nesting(void **state)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	char buf[2 * 300 + 16];
	size_t depth;

	(void)state;
	for (depth = 255; depth <= 257; depth++) {
		size_t i;
		size_t n = 0;

		for (i = 0; i < depth; i++)
			buf[n++] = '(';
		for (i = 0; i < depth; i++)
			buf[n++] = ')';
		memcpy(buf + n, "a@x", 4);
		if (depth <= 256) {
			assert_int_equal(parse_str(buf, &l, err, sizeof(err)), 0);
			assert_int_equal(l.count, 1);
			assert_string_equal(l.addrs[0], "a@x");
			addr_list_free(&l);
		} else {
			assert_int_equal(parse_str(buf, &l, err, sizeof(err)), -1);
			assert_non_null(strstr(err, "nested too deeply"));
		}
	}
	/* 2 MB of '(' fails early and cleanly. */
	{
		char *s = repeat("(", 2 * 1024 * 1024);

		assert_int_equal(parse_str(s, &l, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "nested too deeply"));
		free(s);
	}
	/* 2 MB of "()" pairs is linear and fine. */
	{
		char *s = repeat("()", 1024 * 1024);

		assert_int_equal(parse_str(s, &l, err, sizeof(err)), 0);
		assert_int_equal(l.count, 0);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5322_appendix_a),
		cmocka_unit_test(test_display_names),
		cmocka_unit_test(test_quoted_local_parts),
		cmocka_unit_test(test_domain_literals),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_empty_elements),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_obs_local_part),
		cmocka_unit_test(test_bare_local),
		cmocka_unit_test(test_err_unbalanced),
		cmocka_unit_test(test_err_empty_parts),
		cmocka_unit_test(test_err_garbage),
		cmocka_unit_test(test_err_control_chars),
		cmocka_unit_test(test_parse_one),
		cmocka_unit_test(test_parse_one_bad_args),
		cmocka_unit_test(test_err_truncation),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_no_half_append),
		cmocka_unit_test(test_list_add_free),
		cmocka_unit_test(test_count_cap),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_huge_inputs),
		cmocka_unit_test(test_comment_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
