/*
 * test_envelope.c - unit tests for src/envelope.c (cmocka).
 *
 * The config is built by hand (zeroed, then domain/from set): no file.
 * Table-driven: sender rows {config from, argument, expected address or
 * error}, recipient rows {arguments, header list, expected list or error}.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"

#define DOMAIN "example.com"
#define MAXN 8

static void cfg_with(struct config *cfg, const char *domain, const char *from)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->domain = (char *)domain;
	cfg->from = (char *)from;
}

/* ---- envelope_domain ---------------------------------------------------------- */

static void test_domain(void **state)
{
	struct config cfg;
	const char *d1, *d2, *d3;
	char host[256];

	(void)state;
	cfg_with(&cfg, DOMAIN, NULL);
	assert_string_equal(envelope_domain(&cfg), DOMAIN);

	d1 = envelope_domain(NULL);
	assert_non_null(d1);
	assert_true(d1[0] != '\0');
	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0')
		assert_string_equal(d1, host);
	else
		assert_string_equal(d1, "localhost");

	cfg_with(&cfg, NULL, "x@y.example");
	d2 = envelope_domain(&cfg);
	assert_string_equal(d2, d1);
	/* static storage: the same answer every time */
	d3 = envelope_domain(NULL);
	assert_ptr_equal(d3, d1);
	assert_string_equal(d3, d1);
}

/* ---- envelope_sender ------------------------------------------------------------ */

struct sender_row {
	const char *from;       /* the "from" key, or NULL */
	const char *arg;        /* -f/-r, or NULL */
	const char *want;       /* NULL: an error */
	const char *rewrite;    /* from-rewrite: NULL = never, "local", "always" */
};

static const struct sender_row sender_rows[] = {
	{ NULL, "a@b.example", "a@b.example", NULL },
	{ NULL, "<a@b.example>", "a@b.example", NULL },
	{ NULL, "Jane <a@b.example>", "a@b.example", NULL },
	{ NULL, " a@b.example ", "a@b.example", NULL },
	{ NULL, "<>", "", NULL },
	{ NULL, "root", "root@" DOMAIN, NULL },
	{ NULL, "<root>", "root@" DOMAIN, NULL },
	{ NULL, "first.last", "first.last@" DOMAIN, NULL },
	{ NULL, "\"a b\"@x.example", "\"a b\"@x.example", NULL },
	{ "cron@h.example", NULL, "cron@h.example", NULL },
	{ "cron", NULL, "cron@" DOMAIN, NULL },
	{ "<>", NULL, "", NULL },
	/* the argument wins over the from key */
	{ "cron@h.example", "a@b.example", "a@b.example", NULL },
	{ "cron@h.example", "<>", "", NULL },
	{ "cron@h.example", "root", "root@" DOMAIN, NULL },
	/* from-rewrite local: bare names and this host's names take "from" */
	{ "cron@h.example", "root", "cron@h.example", "local" },
	{ "cron@h.example", "root@localhost", "cron@h.example", "local" },
	{ "cron@h.example", "a@b.example", "a@b.example", "local" },
	{ "cron@h.example", "<>", "", "local" },
	{ NULL, "root", "root@" DOMAIN, "local" },
	/* from-rewrite always: every sender but the null one */
	{ "cron@h.example", "a@b.example", "cron@h.example", "always" },
	{ "cron@h.example", "<>", "", "always" },
	/* errors */
	{ NULL, "a@b@c", NULL, NULL },
	{ NULL, "<a@b.example", NULL, NULL },
	{ NULL, "a@b.example>", NULL, NULL },
	{ NULL, "a@x, b@y", NULL, NULL },
	{ NULL, "list: a@x;", NULL, NULL },
	{ NULL, "a@", NULL, NULL },
	{ NULL, "@x.example", NULL, NULL },
	{ NULL, "a\nb@x", NULL, NULL },
	{ NULL, "", NULL, NULL },
	{ "bad@@from", NULL, NULL, NULL },
};

static void test_sender(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sender_rows) / sizeof(sender_rows[0]); i++) {
		const struct sender_row *r = &sender_rows[i];
		struct config cfg;
		char err[256];
		char *out = (char *)"junk";
		int rc;

		cfg_with(&cfg, DOMAIN, r->from);
		cfg.from_rewrite = r->rewrite == NULL ? REWRITE_NEVER :
		                   strcmp(r->rewrite, "always") == 0 ? REWRITE_ALWAYS
		                                                     : REWRITE_LOCAL;
		memset(err, 0, sizeof(err));
		rc = envelope_sender(&cfg, r->arg, &out, err, sizeof(err));
		if (r->want == NULL) {
			if (rc != -1 || err[0] == '\0')
				fail_msg("row %zu <%s>: want an error, got rc=%d '%s'", i,
				         r->arg ? r->arg : r->from, rc,
				         rc == 0 && out ? out : "");
			if (out != NULL)
				fail_msg("row %zu: *out not NULL after an error", i);
			continue;
		}
		if (rc != 0 || out == NULL)
			fail_msg("row %zu <%s>: unexpected error '%s'", i,
			         r->arg ? r->arg : r->from, err);
		if (strcmp(out, r->want) != 0)
			fail_msg("row %zu <%s>: want '%s' got '%s'", i,
			         r->arg ? r->arg : r->from, r->want, out);
		free(out);
	}
}

/* Neither -f nor from: the invoking user, qualified. */
static void test_sender_default(void **state)
{
	struct config cfg;
	struct passwd *pw = getpwuid(getuid());
	char err[256], want[512];
	char *out = NULL;

	(void)state;
	cfg_with(&cfg, DOMAIN, NULL);
	assert_int_equal(envelope_sender(&cfg, NULL, &out, err, sizeof(err)), 0);
	assert_non_null(out);
	if (pw != NULL) {
		snprintf(want, sizeof(want), "%s@%s", pw->pw_name, DOMAIN);
		assert_string_equal(out, want);
	} else {
		size_t n = strlen(out);

		assert_true(n > strlen("@" DOMAIN));
		assert_string_equal(out + n - strlen("@" DOMAIN), "@" DOMAIN);
	}
	free(out);
}

/* Without a domain key, bare names take the host's name. */
static void test_sender_hostname(void **state)
{
	struct config cfg;
	char err[256], want[512];
	char *out = NULL;

	(void)state;
	cfg_with(&cfg, NULL, NULL);
	snprintf(want, sizeof(want), "root@%s", envelope_domain(NULL));
	assert_int_equal(envelope_sender(&cfg, "root", &out, err, sizeof(err)), 0);
	assert_string_equal(out, want);
	free(out);
	cfg_with(&cfg, NULL, "daemon");
	snprintf(want, sizeof(want), "daemon@%s", envelope_domain(NULL));
	assert_int_equal(envelope_sender(&cfg, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out, want);
	free(out);
}

/* ---- envelope_recipients ----------------------------------------------------------- */

struct rcpt_row {
	const char *args[MAXN];   /* NULL-terminated */
	const char *hdr[MAXN];    /* NULL-terminated; { NULL }: none */
	bool no_hdr;              /* pass hdr == NULL */
	const char *want[MAXN];   /* NULL-terminated */
	bool err;
};

static const struct rcpt_row rcpt_rows[] = {
	{ .args = { "a@x.example" }, .no_hdr = true, .want = { "a@x.example" } },
	{ .args = { "a@x.example, b@y.example" }, .no_hdr = true,
	  .want = { "a@x.example", "b@y.example" } },
	{ .args = { "a@x.example,b@y.example", "c@z.example" }, .no_hdr = true,
	  .want = { "a@x.example", "b@y.example", "c@z.example" } },
	{ .args = { "Jane <j@x.example>, \"Doe, J\" <d@y.example>" },
	  .no_hdr = true, .want = { "j@x.example", "d@y.example" } },
	{ .args = { "list: m1@x.example, m2@x.example;" }, .no_hdr = true,
	  .want = { "m1@x.example", "m2@x.example" } },
	/* bare names are qualified */
	{ .args = { "root" }, .no_hdr = true, .want = { "root@" DOMAIN } },
	{ .args = { "root, postmaster", "x@y.example" }, .no_hdr = true,
	  .want = { "root@" DOMAIN, "postmaster@" DOMAIN, "x@y.example" } },
	/* duplicates dropped, case-insensitively; the first spelling stays */
	{ .args = { "A@X.example", "a@x.EXAMPLE", "b@y.example", "a@x.example" },
	  .no_hdr = true, .want = { "A@X.example", "b@y.example" } },
	{ .args = { "a@x.example, a@x.example" }, .no_hdr = true,
	  .want = { "a@x.example" } },
	{ .args = { "root", "root@" DOMAIN, "ROOT" }, .no_hdr = true,
	  .want = { "root@" DOMAIN } },
	/* the header list comes after the arguments */
	{ .args = { "a@x.example" }, .hdr = { "c@z.example", "b@y.example" },
	  .want = { "a@x.example", "c@z.example", "b@y.example" } },
	{ .args = { NULL }, .hdr = { "c@z.example", "root" },
	  .want = { "c@z.example", "root@" DOMAIN } },
	{ .args = { "a@x.example" }, .hdr = { "A@x.example", "b@y.example",
	                                      "B@Y.EXAMPLE" },
	  .want = { "a@x.example", "b@y.example" } },
	{ .args = { "root" }, .hdr = { "root" }, .want = { "root@" DOMAIN } },
	/* nothing */
	{ .args = { NULL }, .no_hdr = true, .want = { NULL } },
	{ .args = { NULL }, .hdr = { NULL }, .want = { NULL } },
	{ .args = { "" }, .no_hdr = true, .want = { NULL } },
	{ .args = { "undisclosed-recipients:;" }, .no_hdr = true,
	  .want = { NULL } },
	/* errors */
	{ .args = { "<a@x.example" }, .no_hdr = true, .err = true },
	{ .args = { "a@x.example", "b@@y" }, .no_hdr = true, .err = true },
	{ .args = { "a@x.example b@y.example" }, .no_hdr = true, .err = true },
	{ .args = { "ok@x.example", "(unterminated" }, .hdr = { "c@z.example" },
	  .err = true },
};

static size_t count(const char *const *v)
{
	size_t n = 0;

	while (n < MAXN && v[n] != NULL)
		n++;
	return n;
}

static void test_recipients(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rcpt_rows) / sizeof(rcpt_rows[0]); i++) {
		const struct rcpt_row *r = &rcpt_rows[i];
		struct config cfg;
		struct addr_list hdr = { NULL, 0, 0 }, out = { NULL, 0, 0 };
		char *args[MAXN];
		size_t nargs = count(r->args), nhdr = count(r->hdr);
		size_t nwant = count(r->want), k;
		char err[256];
		int rc;

		cfg_with(&cfg, DOMAIN, NULL);
		for (k = 0; k < nargs; k++)
			args[k] = (char *)r->args[k];
		for (k = 0; k < nhdr; k++)
			assert_int_equal(addr_list_add(&hdr, r->hdr[k]), 0);
		memset(err, 0, sizeof(err));
		rc = envelope_recipients(&cfg, args, nargs,
		                         r->no_hdr ? NULL : &hdr, &out, err,
		                         sizeof(err));
		if (r->err) {
			if (rc != -1 || err[0] == '\0')
				fail_msg("row %zu: want an error, got rc=%d", i, rc);
		} else {
			if (rc != 0)
				fail_msg("row %zu: unexpected error '%s'", i, err);
			if (out.count != nwant)
				fail_msg("row %zu: want %zu recipients got %zu (first "
				         "'%s')", i, nwant, out.count,
				         out.count > 0 ? out.addrs[0] : "");
			for (k = 0; k < nwant; k++) {
				if (strcmp(out.addrs[k], r->want[k]) != 0)
					fail_msg("row %zu: recipient %zu want '%s' got '%s'",
					         i, k, r->want[k], out.addrs[k]);
			}
		}
		/* the header list is the caller's and unchanged */
		assert_int_equal(hdr.count, nhdr);
		for (k = 0; k < nhdr; k++)
			assert_string_equal(hdr.addrs[k], r->hdr[k]);
		addr_list_free(&hdr);
		addr_list_free(&out);
	}
}

/* out keeps what it had; a recipient already in it is not added again. */
static void test_recipients_append(void **state)
{
	struct config cfg;
	struct addr_list out = { NULL, 0, 0 };
	char *args[] = { (char *)"old@x.example, new@y.example", (char *)"root" };
	char err[256];

	(void)state;
	cfg_with(&cfg, DOMAIN, NULL);
	assert_int_equal(addr_list_add(&out, "OLD@x.example"), 0);
	assert_int_equal(envelope_recipients(&cfg, args, 2, NULL, &out, err,
	                                     sizeof(err)), 0);
	assert_int_equal(out.count, 3);
	assert_string_equal(out.addrs[0], "OLD@x.example");
	assert_string_equal(out.addrs[1], "new@y.example");
	assert_string_equal(out.addrs[2], "root@" DOMAIN);
	addr_list_free(&out);
}

/* Without a domain key, bare recipients take the host's name. */
static void test_recipients_hostname(void **state)
{
	struct config cfg;
	struct addr_list out = { NULL, 0, 0 };
	char *args[] = { (char *)"root" };
	char err[256], want[512];

	(void)state;
	cfg_with(&cfg, NULL, NULL);
	snprintf(want, sizeof(want), "root@%s", envelope_domain(NULL));
	assert_int_equal(envelope_recipients(&cfg, args, 1, NULL, &out, err,
	                                     sizeof(err)), 0);
	assert_int_equal(out.count, 1);
	assert_string_equal(out.addrs[0], want);
	addr_list_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_sender),
		cmocka_unit_test(test_sender_default),
		cmocka_unit_test(test_sender_hostname),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_recipients_append),
		cmocka_unit_test(test_recipients_hostname),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
