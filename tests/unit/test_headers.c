/*
 * test_headers.c - unit tests for src/headers.c (cmocka).
 *
 * Table-driven: each row is a header section ("\n" line ends, turned
 * into CRLF), a policy, and the section expected after the rewriting, or
 * NULL when every field must be left alone (headers_rewrite gives no
 * replacement at all, so the caller writes the original bytes). RFC 5322
 * Appendix A's examples come first: as written (all qualified: nothing
 * changes) and with their addresses made bare (only "@example.com" is
 * inserted; names, comments, groups, routes and folding stay).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"

#define MAXF 16
#define ACCOUNT "cron@example.com"

/* The test host: myhost, and localhost. */
static bool local_host(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at == NULL || strcasecmp(at + 1, "localhost") == 0 ||
	       strcasecmp(at + 1, "myhost") == 0;
}

/*
 * Policies: Q qualification only; L from-header local; A always; K keep
 * (with from set); N from-header local without qualification; O nothing.
 */
static void policy(char which, struct headers_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->domain = which == 'N' || which == 'O' ? NULL : "example.com";
	p->is_local = local_host;
	if (which == 'Q' || which == 'O')
		return;
	p->from = ACCOUNT;
	p->from_mode = which == 'A' ? HEADERS_FROM_ALWAYS
	               : which == 'K' ? HEADERS_FROM_KEEP : HEADERS_FROM_LOCAL;
}

struct row {
	const char *in;
	char pol;
	const char *want;       /* NULL: nothing changes */
	const char *summary;    /* NULL: not checked */
};

/* "\n" -> CRLF (malloc'd). */
static char *crlf(const char *s, size_t *len)
{
	size_t n = strlen(s), i, k = 0;
	char *o = malloc(2 * n + 1);

	assert_non_null(o);
	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			o[k++] = '\r';
		o[k++] = s[i];
	}
	o[k] = '\0';
	*len = k;
	return o;
}

/* Split a CRLF header section into fields (continuations joined). */
static size_t split(const char *s, size_t len, struct headers_field *f)
{
	size_t n = 0, i = 0;

	while (i < len) {
		const char *eol = strstr(s + i, "\r\n");
		size_t end = eol ? (size_t)(eol - s) + 2 : len;

		if ((s[i] == ' ' || s[i] == '\t') && n > 0) {
			f[n - 1].len += end - i;
		} else {
			assert_true(n < MAXF);
			f[n].text = s + i;
			f[n].len = end - i;
			n++;
		}
		i = end;
	}
	return n;
}

/* Run the rewriting; the section as it would be written (malloc'd). */
static char *rewrite(const char *in, char pol, struct headers_out *o,
                     bool *changed)
{
	struct headers_field f[MAXF];
	struct headers_policy p;
	size_t len, n, i, k = 0;
	char *s = crlf(in, &len);
	char *out;

	policy(pol, &p);
	n = split(s, len, f);
	assert_int_equal(headers_rewrite(f, n, &p, o), 0);
	out = malloc(8 * len + 4096);
	assert_non_null(out);
	*changed = o->added != NULL;
	for (i = 0; i < n; i++) {
		const char *t = o->text[i] ? o->text[i] : f[i].text;
		size_t l = o->text[i] ? o->len[i] : f[i].len;

		*changed = *changed || o->text[i] != NULL;
		memcpy(out + k, t, l);
		k += l;
		if (o->added != NULL && o->added_after == i) {
			memcpy(out + k, o->added, o->added_len);
			k += o->added_len;
		}
	}
	out[k] = '\0';
	headers_out_free(o, n);
	free(s);
	return out;
}

static void check_rows(const struct row *rows, size_t nrows)
{
	size_t r;

	for (r = 0; r < nrows; r++) {
		struct headers_out o;
		bool changed;
		char *got = rewrite(rows[r].in, rows[r].pol, &o, &changed);
		size_t wl;
		char *want = crlf(rows[r].want ? rows[r].want : rows[r].in, &wl);

		if (rows[r].want == NULL && changed)
			fail_msg("row %zu: changed a field:\n%s", r, got);
		if (strcmp(got, want) != 0)
			fail_msg("row %zu:\nwant [%s]\ngot  [%s]", r, want, got);
		free(want);
		free(got);
	}
}

static void check_summary(const char *in, char pol, const char *summary,
                          bool from_rewritten, const char *old_from)
{
	struct headers_field f[MAXF];
	struct headers_policy p;
	struct headers_out o;
	size_t len, n;
	char *s = crlf(in, &len);

	policy(pol, &p);
	n = split(s, len, f);
	assert_int_equal(headers_rewrite(f, n, &p, &o), 0);
	assert_string_equal(o.summary, summary);
	assert_int_equal(o.from_rewritten, from_rewritten);
	assert_string_equal(o.old_from, old_from);
	headers_out_free(&o, n);
	free(s);
}

#define RUN(rows) check_rows(rows, sizeof(rows) / sizeof(rows[0]))

/* ---- RFC 5322 Appendix A ---------------------------------------------- */

static const struct row rfc_rows[] = {
	/* A.1.1 - A.6.3 as written: every address qualified, nothing moves */
	{ "From: John Doe <jdoe@machine.example>\n"
	  "To: Mary Smith <mary@example.net>\n", 'Q', NULL, NULL },
	{ "From: \"Joe Q. Public\" <john.q.public@example.com>\n"
	  "To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
	  "Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
	  "<sysservices@example.net>\n", 'Q', NULL, NULL },
	{ "From: Pete <pete@silly.example>\n"
	  "To: A Group:Ed Jones <c@a.test>,joe@where.test,John "
	  "<jdoe@one.test>;\nCc: Undisclosed recipients:;\n", 'Q', NULL, NULL },
	{ "From: \"Mary Smith: Personal Account\" <smith@home.example>\n"
	  "Reply-To: \"Mary Smith: Personal Account\" <smith@home.example>\n",
	  'Q', NULL, NULL },
	{ "Resent-From: Mary Smith <mary@example.net>\n"
	  "Resent-To: Jane Brown <j-brown@other.example>\n", 'Q', NULL, NULL },
	{ "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n"
	  "To: A Group(Some people)\n"
	  "     :Chris Jones <c@(Chris's host.)public.example>,\n"
	  "         joe@example.org,\n"
	  "  John <jdoe@one.test> (my dear friend); (the end of the group)\n"
	  "Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\n",
	  'Q', NULL, NULL },
	{ "From: Joe Q. Public <john.q.public@example.com>\n"
	  "To: Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example\n",
	  'Q', NULL, NULL },
	{ "From: John Doe <jdoe@machine(comment).  example>\n"
	  "To: Mary Smith\n  \n          <mary@example.net>\n", 'Q', NULL, NULL },
	/* the same shapes with bare local parts: "@example.com" inserted
	 * right after each, nothing else moves */
	{ "From: John Doe <jdoe>\nTo: Mary Smith <mary>\n", 'Q',
	  "From: John Doe <jdoe@example.com>\n"
	  "To: Mary Smith <mary@example.com>\n", NULL },
	{ "From: \"Joe Q. Public\" <john.q.public>\n"
	  "To: Mary Smith <mary@x.test>, jdoe, Who? <one>\n"
	  "Cc: <boss>, \"Giant; \\\"Big\\\" Box\" <sysservices>\n", 'Q',
	  "From: \"Joe Q. Public\" <john.q.public@example.com>\n"
	  "To: Mary Smith <mary@x.test>, jdoe@example.com, Who? "
	  "<one@example.com>\n"
	  "Cc: <boss@example.com>, \"Giant; \\\"Big\\\" Box\" "
	  "<sysservices@example.com>\n", NULL },
	{ "To: A Group:Ed Jones <c>,joe@where.test,John <jdoe>;\n", 'Q',
	  "To: A Group:Ed Jones <c@example.com>,joe@where.test,John "
	  "<jdoe@example.com>;\n", NULL },
	{ "From: Pete(A nice \\) chap) <pete(his account)>\n"
	  "To: A Group(Some people)\n"
	  "     :Chris Jones <c@(Chris's host.)public.example>,\n"
	  "         joe,\n"
	  "  John <jdoe> (my dear friend); (the end of the group)\n", 'Q',
	  "From: Pete(A nice \\) chap) <pete@example.com(his account)>\n"
	  "To: A Group(Some people)\n"
	  "     :Chris Jones <c@(Chris's host.)public.example>,\n"
	  "         joe@example.com,\n"
	  "  John <jdoe@example.com> (my dear friend); (the end of the group)\n",
	  NULL },
	{ "To: Mary Smith <@node.test:mary>, , jdoe  . x\n", 'Q',
	  "To: Mary Smith <@node.test:mary@example.com>, , "
	  "jdoe  . x@example.com\n", NULL },
	{ "To: Mary Smith\n  \n          <mary>\n", 'Q',
	  "To: Mary Smith\n  \n          <mary@example.com>\n", NULL },
	{ "To: \"john q\"\n", 'Q', "To: \"john q\"@example.com\n", NULL },
	{ "To: \"a@b\", \"c\\\"@\"\n", 'Q',
	  "To: \"a@b\"@example.com, \"c\\\"@\"@example.com\n", NULL },
};

static void test_rfc5322_appendix_a(void **state)
{
	(void)state;
	RUN(rfc_rows);
}

/* ---- what Debian's daemons write -------------------------------------- */

static const struct row daemon_rows[] = {
	/* cron 3.0pl1 (do_command.c) */
	{ "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@myhost> ls\n",
	  'Q', "From: root@example.com (Cron Daemon)\nTo: root@example.com\n"
	  "Subject: Cron <root@myhost> ls\n", NULL },
	{ "From: root (Cron Daemon)\nTo: root\n", 'L',
	  "From: Cron Daemon <cron@example.com>\nTo: root@example.com\n", NULL },
	/* cronie */
	{ "From: \"(Cron Daemon)\" <root>\nTo: root\n", 'L',
	  "From: \"(Cron Daemon)\" <cron@example.com>\nTo: root@example.com\n",
	  NULL },
	/* anacron */
	{ "From: Anacron <root>\nTo: root\n", 'L',
	  "From: Anacron <cron@example.com>\nTo: root@example.com\n", NULL },
	/* fail2ban's sendmail-common.conf */
	{ "From: Fail2Ban <fail2ban>\nTo: root\n", 'Q',
	  "From: Fail2Ban <fail2ban@example.com>\nTo: root@example.com\n",
	  NULL },
	{ "From: Fail2Ban <fail2ban>\nTo: root\n", 'L',
	  "From: Fail2Ban <cron@example.com>\nTo: root@example.com\n", NULL },
	/* logcheck */
	{ "To: logcheck\n", 'L', "To: logcheck@example.com\n", NULL },
	/* without qualification: only From changes */
	{ "From: root (Cron Daemon)\nTo: root\n", 'N',
	  "From: Cron Daemon <cron@example.com>\n"
	  "To: root\n", NULL },
	/* keep: qualified only */
	{ "From: root (Cron Daemon)\nTo: root\n", 'K',
	  "From: root@example.com (Cron Daemon)\nTo: root@example.com\n", NULL },
	/* nothing asked: nothing done */
	{ "From: root (Cron Daemon)\nTo: root\n", 'O', NULL, NULL },
};

static void test_daemons(void **state)
{
	(void)state;
	RUN(daemon_rows);
}

/* ---- from-header -------------------------------------------------------- */

static const struct row from_rows[] = {
	/* already the account (any case): untouched */
	{ "From: Cron <cron@example.com>\n", 'L', NULL, NULL },
	{ "From: Cron <CRON@Example.COM>\n", 'A', NULL, NULL },
	/* a bare name that qualifies to the account: only qualified */
	{ "From: cron\n", 'L', "From: cron@example.com\n", NULL },
	/* local forms ("a@b" is a bare local part) */
	{ "From: \"a@b\"\n", 'L', "From: <cron@example.com>\n", NULL },
	{ "From: root@localhost\n", 'L', "From: <cron@example.com>\n", NULL },
	{ "From: Root <root@MyHost>\n", 'L', "From: Root <cron@example.com>\n",
	  NULL },
	/* someone else's address: local leaves it */
	{ "From: Alice <alice@gmail.com>\nTo: root\n", 'L',
	  "From: Alice <alice@gmail.com>\nTo: root@example.com\n", NULL },
	/* always: the account, and the author in a Reply-To */
	{ "From: Alice <alice@gmail.com>\nTo: bob@example.org\n", 'A',
	  "From: Alice <cron@example.com>\nReply-To: Alice <alice@gmail.com>\n"
	  "To: bob@example.org\n", NULL },
	{ "Reply-To: list@example.org\nFrom: Alice <alice@gmail.com>\n", 'A',
	  "Reply-To: list@example.org\nFrom: Alice <cron@example.com>\n", NULL },
	{ "From: root (Cron Daemon)\n", 'A',
	  "From: Cron Daemon <cron@example.com>\n", NULL },
	{ "From: a@x.example,\n b\n", 'A',
	  "From: <cron@example.com>\nReply-To: a@x.example,\n b@example.com\n",
	  NULL },
	/* a mix of local and not: local keeps it */
	{ "From: root, alice@gmail.com\n", 'L',
	  "From: root@example.com, alice@gmail.com\n", NULL },
	/* comments and names kept */
	{ "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n",
	  'A', "From: Pete(A nice \\) chap) <cron@example.com>\n"
	  "Reply-To: Pete(A nice \\) chap) <pete(his account)@silly.test(his "
	  "host)>\n", NULL },
	{ "From: John <root> (work)\n", 'L',
	  "From: John <cron@example.com> (work)\n", NULL },
	{ "From: root (Cron Daemon, host.example)\n", 'L',
	  "From: \"Cron Daemon, host.example\" <cron@example.com>\n", NULL },
	{ "From: root (\"quoted\" \\(x\\))\n", 'L',
	  "From: \"\\\"quoted\\\" (x)\" <cron@example.com>\n", NULL },
	{ "From: root ( )\n", 'L', "From: <cron@example.com>\n", NULL },
	{ "From: \"A very\n long name\" <root>\n", 'L',
	  "From: \"A very long name\" <cron@example.com>\n", NULL },
	{ "From: =?UTF-8?Q?J=C3=B6rg?= <root>\n", 'L',
	  "From: =?UTF-8?Q?J=C3=B6rg?= <cron@example.com>\n", NULL },
	{ "FROM : root\n", 'L', "FROM: <cron@example.com>\n", NULL },
	/* not an address: always replaces it, local cannot tell */
	{ "From: <<<\n", 'A', "From: <cron@example.com>\n", NULL },
	{ "From: <<<\nTo: root\n", 'L', "From: <<<\nTo: root@example.com\n",
	  NULL },
	{ "From:\n", 'L', "From: <cron@example.com>\n", NULL },
	/* Sender follows the same rule */
	{ "From: Alice <alice@gmail.com>\nSender: root\n", 'L',
	  "From: Alice <alice@gmail.com>\nSender: <cron@example.com>\n", NULL },
	{ "From: root\nSender: ops@example.org\n", 'L',
	  "From: <cron@example.com>\nSender: ops@example.org\n", NULL },
	{ "From: root\nSender: Ops <ops@example.org>\n", 'A',
	  "From: <cron@example.com>\nSender: Ops <cron@example.com>\n", NULL },
	/* other address fields only qualified, other fields never */
	{ "Subject: root\nReturn-Receipt-To: root\n"
	  "Disposition-Notification-To: root\nResent-From: root\n"
	  "X-Cron-Env: <LOGNAME=root>\n", 'L', "Subject: root\n"
	  "Return-Receipt-To: root@example.com\n"
	  "Disposition-Notification-To: root@example.com\n"
	  "Resent-From: root@example.com\nX-Cron-Env: <LOGNAME=root>\n", NULL },
};

static void test_from_header(void **state)
{
	(void)state;
	RUN(from_rows);
}

static void test_summary(void **state)
{
	(void)state;
	check_summary("From: root (Cron Daemon)\nTo: root\nCc: a, b\n", 'L',
	              "From rewritten, To qualified, Cc qualified", true, "root");
	check_summary("From: Alice <alice@gmail.com>\n", 'A',
	              "From rewritten, Reply-To added", true, "alice@gmail.com");
	check_summary("From: root\nTo: a\nTo: b\n", 'K',
	              "From qualified, To qualified", false, "");
	check_summary("From: <<<\n", 'A', "From rewritten", true, "");
	check_summary("From: a@b.example\n", 'A', "From rewritten, Reply-To added",
	              true, "a@b.example");
	check_summary("To: x@y.example\n", 'A', "", false, "");
}

/* ---- generated From ----------------------------------------------------- */

static void test_from_applies(void **state)
{
	struct headers_policy p;

	(void)state;
	assert_false(headers_from_applies(NULL, "root"));
	policy('Q', &p);
	assert_false(headers_from_applies(&p, "root@example.com"));
	policy('K', &p);
	assert_false(headers_from_applies(&p, "root@myhost"));
	policy('L', &p);
	assert_true(headers_from_applies(&p, "root@myhost"));
	assert_true(headers_from_applies(&p, "root"));
	assert_true(headers_from_applies(&p, ""));      /* MAILER-DAEMON */
	assert_false(headers_from_applies(&p, "alice@gmail.com"));
	assert_false(headers_from_applies(&p, "Cron@example.com"));
	assert_false(headers_from_applies(&p, "cron"));  /* qualifies to it */
	policy('A', &p);
	assert_true(headers_from_applies(&p, "alice@gmail.com"));
	assert_false(headers_from_applies(&p, "cron@example.com"));
}

/* ---- lines stay within 998 octets --------------------------------------- */

/* Unfold: drop every CRLF that a blank follows. */
static char *unfold(const char *s)
{
	size_t n = strlen(s), i, k = 0;
	char *o = malloc(n + 1);

	assert_non_null(o);
	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && s[i + 1] == '\n' &&
		    (s[i + 2] == ' ' || s[i + 2] == '\t')) {
			i++;
			continue;
		}
		o[k++] = s[i];
	}
	o[k] = '\0';
	return o;
}

static size_t longest_line(const char *s)
{
	size_t best = 0, cur = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			cur = 0;
			continue;
		}
		if (++cur > best)
			best = cur;
	}
	return best;
}

/*
 * A one-line To of n bare names joined by sep, qualified: every line
 * within 998 octets, and unfolding gives back exactly the one-line field
 * with "@example.com" after each name.
 */
static void check_long(size_t n, const char *sep)
{
	size_t cap = n * 40 + 64, i;
	char *in = malloc(cap), *want = malloc(cap);
	struct headers_out o;
	bool changed;
	char *got, *flat, *wantcrlf;
	size_t k = 0, w = 0, wl;

	assert_non_null(in);
	assert_non_null(want);
	k += (size_t)snprintf(in + k, cap - k, "To: ");
	w += (size_t)snprintf(want + w, cap - w, "To: ");
	for (i = 0; i < n; i++) {
		k += (size_t)snprintf(in + k, cap - k, "%su%zu", i ? sep : "", i);
		w += (size_t)snprintf(want + w, cap - w, "%su%zu@example.com",
		                      i ? sep : "", i);
	}
	snprintf(in + k, cap - k, "\n");
	snprintf(want + w, cap - w, "\n");
	got = rewrite(in, 'Q', &o, &changed);
	assert_true(changed);
	if (longest_line(got) > HEADERS_LINE_MAX)
		fail_msg("a line of %zu octets", longest_line(got));
	flat = unfold(got);
	wantcrlf = crlf(want, &wl);
	if (strcmp(flat, wantcrlf) != 0) {
		/* a fold before a mailbox not preceded by a blank added one */
		char *f2 = flat, *g = wantcrlf;

		while (*f2 != '\0' && *g != '\0') {
			if (*f2 == *g) {
				f2++;
				g++;
			} else if (*f2 == ' ' && f2[-1] == ',') {
				f2++;
			} else {
				fail_msg("unfolded differs at [%.40s]", f2);
			}
		}
		assert_true(*f2 == '\0' && *g == '\0');
	}
	free(in);
	free(want);
	free(got);
	free(flat);
	free(wantcrlf);
}

static void test_long_lines(void **state)
{
	(void)state;
	check_long(60, ", ");       /* 540 octets, 1320 qualified */
	check_long(400, ", ");
	check_long(60, ",");        /* no blank: folds before a mailbox */
	check_long(1000, ",");
}

/* A field short enough stays one line; a long untouched one stays long. */
static void test_short_stays(void **state)
{
	char xs[1101], line[1200];
	struct headers_out o;
	bool changed;
	char *got;

	(void)state;
	memset(xs, 'x', sizeof(xs) - 1);
	xs[sizeof(xs) - 1] = '\0';
	snprintf(line, sizeof(line), "Subject: %s\nTo: root\n", xs);
	got = rewrite(line, 'Q', &o, &changed);
	assert_true(changed);
	assert_non_null(strstr(got, "\r\nTo: root@example.com\r\n"));
	assert_int_equal(longest_line(got), 1109);  /* the Subject: untouched */
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5322_appendix_a),
		cmocka_unit_test(test_daemons),
		cmocka_unit_test(test_from_header),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_from_applies),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_short_stays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
