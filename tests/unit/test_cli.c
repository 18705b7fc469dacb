/*
 * test_cli.c - unit tests for src/cli.c (cmocka).
 *
 * Table-driven: each row is an argv (NULL-terminated) and the struct
 * options expected from it, or for the error rows a fragment the error
 * text must contain. Every field of struct options is checked on every
 * successful row, so a flag that leaks into another field shows up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAXARGS 16

struct want {
	enum cli_mode mode;
	enum cli_delivery delivery;
	bool t, i, v, force;
	const char *sender, *fullname, *config;
	const char *interval, *qid, *rmid, *rqid;
	bool failed;                   /* --failed */
	const char *progname;          /* NULL: "sendmail" */
	const char *rcpts[MAXARGS];    /* NULL-terminated */
};

struct row {
	const char *argv[MAXARGS];     /* NULL-terminated */
	struct want w;
};

struct err_row {
	const char *argv[MAXARGS];
	const char *frag;              /* the error text contains this */
};

#define RUN(rows) run_rows(rows, sizeof(rows) / sizeof(rows[0]))
#define RUN_ERR(rows) run_err_rows(rows, sizeof(rows) / sizeof(rows[0]))

static int to_argv(const char *const *in, char **av)
{
	int n = 0;

	while (n < MAXARGS - 1 && in[n] != NULL) {
		av[n] = (char *)in[n];
		n++;
	}
	av[n] = NULL;
	return n;
}

static bool same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

#define SHOW(s) ((s) != NULL ? (s) : "(null)")

static void check_str(size_t i, const char *what, const char *got,
                      const char *want)
{
	if (!same(got, want))
		fail_msg("row %zu: %s: want '%s' got '%s'", i, what, SHOW(want),
		         SHOW(got));
}

static void check_row(size_t i, const struct row *r)
{
	char *av[MAXARGS];
	int ac = to_argv(r->argv, av);
	struct options o;
	char err[256];
	size_t n = 0, k;
	int rc;

	memset(&o, 0xA5, sizeof(o));
	memset(err, 'X', sizeof(err));
	rc = cli_parse(ac, av, &o, err, sizeof(err));
	if (rc != 0)
		fail_msg("row %zu (%s %s): unexpected error rc=%d '%.*s'", i,
		         SHOW(r->argv[0]), SHOW(r->argv[1]), rc,
		         (int)sizeof(err) - 1, err);
	if (o.mode != r->w.mode)
		fail_msg("row %zu: mode: want %d got %d", i, (int)r->w.mode,
		         (int)o.mode);
	if (o.delivery != r->w.delivery)
		fail_msg("row %zu: delivery: want %d got %d", i,
		         (int)r->w.delivery, (int)o.delivery);
	if (o.extract_rcpts != r->w.t || o.ignore_dots != r->w.i ||
	    o.verbose != r->w.v || o.queue_force != r->w.force)
		fail_msg("row %zu: flags t/i/v/force: want %d%d%d%d got %d%d%d%d",
		         i, r->w.t, r->w.i, r->w.v, r->w.force, o.extract_rcpts,
		         o.ignore_dots, o.verbose, o.queue_force);
	check_str(i, "sender", o.sender, r->w.sender);
	check_str(i, "fullname", o.fullname, r->w.fullname);
	check_str(i, "config", o.config, r->w.config);
	check_str(i, "queue_interval", o.queue_interval, r->w.interval);
	check_str(i, "queue_id", o.queue_id, r->w.qid);
	check_str(i, "remove_id", o.remove_id, r->w.rmid);
	check_str(i, "requeue_id", o.requeue_id, r->w.rqid);
	if (o.failed != r->w.failed)
		fail_msg("row %zu: failed: want %d got %d", i, r->w.failed,
		         o.failed);
	check_str(i, "progname", o.progname,
	          r->w.progname != NULL ? r->w.progname : "sendmail");
	while (n < MAXARGS && r->w.rcpts[n] != NULL)
		n++;
	if (o.nrcpts != n)
		fail_msg("row %zu: nrcpts: want %zu got %zu", i, n, o.nrcpts);
	for (k = 0; k < n; k++) {
		check_str(i, "rcpt", o.rcpts[k], r->w.rcpts[k]);
		/* recipients point into argv: the tail of it */
		if (o.rcpts[k] != av[ac - (int)n + (int)k])
			fail_msg("row %zu: rcpt %zu does not point into argv", i, k);
	}
}

static void run_rows(const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check_row(i, &rows[i]);
}

static void run_err_rows(const struct err_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *av[MAXARGS];
		int ac = to_argv(rows[i].argv, av);
		struct options o;
		char err[256];
		int rc;

		memset(err, 'X', sizeof(err));
		err[sizeof(err) - 1] = '\0';
		rc = cli_parse(ac, av, &o, err, sizeof(err));
		if (rc != -1)
			fail_msg("err row %zu (%s): want -1 got %d", i,
			         SHOW(rows[i].argv[1]), rc);
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			fail_msg("err row %zu: empty or unterminated error", i);
		if (strchr(err, '\n') != NULL)
			fail_msg("err row %zu: error is not one line: '%s'", i, err);
		if (strstr(err, rows[i].frag) == NULL)
			fail_msg("err row %zu (%s): want '%s' in '%s'", i,
			         SHOW(rows[i].argv[1]), rows[i].frag, err);
	}
}

/* ---- the basic flags ------------------------------------------------- */

static const struct row basic_rows[] = {
	{ { "sendmail", NULL }, { .mode = MODE_SEND } },
	{ { "sendmail", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-t", NULL }, { .t = true } },
	{ { "sendmail", "-i", NULL }, { .i = true } },
	{ { "sendmail", "-oi", NULL }, { .i = true } },
	{ { "sendmail", "-v", NULL }, { .v = true } },
	{ { "sendmail", "-f", "a@b.example", "x@y", NULL },
	  { .sender = "a@b.example", .rcpts = { "x@y" } } },
	{ { "sendmail", "-fa@b.example", "x@y", NULL },
	  { .sender = "a@b.example", .rcpts = { "x@y" } } },
	{ { "sendmail", "-r", "a@b.example", NULL }, { .sender = "a@b.example" } },
	{ { "sendmail", "-ra@b.example", NULL }, { .sender = "a@b.example" } },
	{ { "sendmail", "-f", "<>", "x@y", NULL },
	  { .sender = "<>", .rcpts = { "x@y" } } },
	{ { "sendmail", "-f<>", NULL }, { .sender = "<>" } },
	/* the last -f wins */
	{ { "sendmail", "-f", "one@x", "-r", "two@x", NULL }, { .sender = "two@x" } },
	{ { "sendmail", "-F", "Cron Daemon", "root", NULL },
	  { .fullname = "Cron Daemon", .rcpts = { "root" } } },
	{ { "sendmail", "-FCronDaemon", "root", NULL },
	  { .fullname = "CronDaemon", .rcpts = { "root" } } },
	{ { "sendmail", "-F", "", "root", NULL },
	  { .fullname = "", .rcpts = { "root" } } },
	{ { "sendmail", "-C", "/tmp/o.conf", NULL }, { .config = "/tmp/o.conf" } },
	{ { "sendmail", "-C/tmp/o.conf", NULL }, { .config = "/tmp/o.conf" } },
	/* an argument that looks like a flag is still the argument */
	{ { "sendmail", "-f", "-t", "x@y", NULL },
	  { .sender = "-t", .rcpts = { "x@y" } } },
	{ { "sendmail", "-t", "-i", "-v", "-f", "s@x", "-F", "N", "-C", "/c",
	    "a@x", "b@y", NULL },
	  { .t = true, .i = true, .v = true, .sender = "s@x", .fullname = "N",
	    .config = "/c", .rcpts = { "a@x", "b@y" } } },
};

static void test_basic_flags(void **state)
{
	(void)state;
	RUN(basic_rows);
}

/* ---- bundling ---------------------------------------------------------- */

static const struct row bundle_rows[] = {
	{ { "sendmail", "-ti", NULL }, { .t = true, .i = true } },
	{ { "sendmail", "-it", NULL }, { .t = true, .i = true } },
	{ { "sendmail", "-tiv", NULL }, { .t = true, .i = true, .v = true } },
	{ { "sendmail", "-tif", "sender@x", "a@b", NULL },
	  { .t = true, .i = true, .sender = "sender@x", .rcpts = { "a@b" } } },
	{ { "sendmail", "-tifsender@x", "a@b", NULL },
	  { .t = true, .i = true, .sender = "sender@x", .rcpts = { "a@b" } } },
	/* everything after an argument flag is its argument */
	{ { "sendmail", "-ftiv", NULL }, { .sender = "tiv" } },
	{ { "sendmail", "-tFCron", NULL }, { .t = true, .fullname = "Cron" } },
	{ { "sendmail", "-vC", "/etc/x.conf", NULL },
	  { .v = true, .config = "/etc/x.conf" } },
};

static void test_bundled(void **state)
{
	(void)state;
	RUN(bundle_rows);
}

/* ---- "--" and where the recipients start ----------------------------- */

static const struct row dashdash_rows[] = {
	{ { "sendmail", "--", NULL }, { .mode = MODE_SEND } },
	{ { "sendmail", "--", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "--", "-t", "-x@y", NULL },
	  { .rcpts = { "-t", "-x@y" } } },
	{ { "sendmail", "-i", "--", "--", NULL }, { .i = true, .rcpts = { "--" } } },
	{ { "sendmail", "-t", "--", "a@b", "-i", NULL },
	  { .t = true, .rcpts = { "a@b", "-i" } } },
	/* a lone "-" is an operand */
	{ { "sendmail", "-", NULL }, { .rcpts = { "-" } } },
	{ { "sendmail", "a@b", "c@d", "e@f", NULL },
	  { .rcpts = { "a@b", "c@d", "e@f" } } },
	{ { "sendmail", "a@b, c@d", NULL }, { .rcpts = { "a@b, c@d" } } },
};

static void test_double_dash(void **state)
{
	(void)state;
	RUN(dashdash_rows);
}

/* ---- what real clients run ---------------------------------------------- */

static const struct row client_rows[] = {
	/* Debian cron (cron 3.0pl1) */
	{ { "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root",
	    NULL },
	  { .i = true, .fullname = "CronDaemon", .rcpts = { "root" } } },
	/* mutt */
	{ { "sendmail", "-oem", "-oi", "--", "a@b", NULL },
	  { .i = true, .rcpts = { "a@b" } } },
	/* git send-email */
	{ { "sendmail", "-i", "a@b", NULL }, { .i = true, .rcpts = { "a@b" } } },
	/* PHP mail() (sendmail_path default) */
	{ { "sendmail", "-t", "-i", NULL }, { .t = true, .i = true } },
	/* Python / logwatch style */
	{ { "/usr/sbin/sendmail", "-t", "-oi", "-f", "root@h.example", NULL },
	  { .t = true, .i = true, .sender = "root@h.example" } },
	/* mailx / s-nail */
	{ { "/usr/sbin/sendmail", "-i", "-r", "me@x", "--", "you@y", NULL },
	  { .i = true, .sender = "me@x", .rcpts = { "you@y" } } },
};

static void test_real_clients(void **state)
{
	(void)state;
	RUN(client_rows);
}

/* ---- accepted and ignored ---------------------------------------------- */

static const struct row ignored_rows[] = {
	{ { "sendmail", "-oem", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-oep", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-oeq", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-oew", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-B", "8BITMIME", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-B8BITMIME", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-N", "never", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-Nsuccess,failure", "a@b", NULL },
	  { .rcpts = { "a@b" } } },
	{ { "sendmail", "-R", "hdrs", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-V", "envid", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-h", "5", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-L", "tag", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-O", "Opt=v", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-o", "X", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-U", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-G", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-Am", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-Ac", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-X", "/tmp/trace", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-n", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "sendmail", "-m", "a@b", NULL }, { .rcpts = { "a@b" } } },
	/* an ignored flag does not swallow what follows */
	{ { "sendmail", "-U", "-t", NULL }, { .t = true } },
	{ { "sendmail", "-Ami", NULL }, { .i = true } },
	{ { "sendmail", "-N", "never", "-t", "-oem", "-i", NULL },
	  { .t = true, .i = true } },
};

static void test_ignored_flags(void **state)
{
	(void)state;
	RUN(ignored_rows);
}

/* ---- modes ---------------------------------------------------------------- */

static const struct row mode_rows[] = {
	{ { "sendmail", "-bm", "a@b", NULL },
	  { .mode = MODE_SEND, .rcpts = { "a@b" } } },
	{ { "sendmail", "-bp", NULL }, { .mode = MODE_LIST } },
	{ { "sendmail", "-b", "p", NULL }, { .mode = MODE_LIST } },
	{ { "sendmail", "-bs", NULL }, { .mode = MODE_SMTP } },
	{ { "sendmail", "-bi", NULL }, { .mode = MODE_NEWALIASES } },
	{ { "sendmail", "-bv", "root", NULL },
	  { .mode = MODE_VERIFY, .rcpts = { "root" } } },
	{ { "sendmail", "-q", NULL }, { .mode = MODE_QUEUE_RUN } },
	{ { "sendmail", "-q15m", NULL },
	  { .mode = MODE_QUEUE_RUN, .interval = "15m" } },
	{ { "sendmail", "-q1h", NULL },
	  { .mode = MODE_QUEUE_RUN, .interval = "1h" } },
	{ { "sendmail", "-qf", NULL }, { .mode = MODE_QUEUE_RUN, .force = true } },
	{ { "sendmail", "-qI", "ABC123", NULL },
	  { .mode = MODE_QUEUE_RUN, .qid = "ABC123" } },
	{ { "sendmail", "-qIABC123", NULL },
	  { .mode = MODE_QUEUE_RUN, .qid = "ABC123" } },
	/* several IDs: the first after the flag, the rest as operands */
	{ { "sendmail", "-qI", "A1", "B2", NULL },
	  { .mode = MODE_QUEUE_RUN, .qid = "A1", .rcpts = { "B2" } } },
	{ { "sendmail", "--remove", "A1", "B2", "C3", NULL },
	  { .mode = MODE_REMOVE, .rmid = "A1", .rcpts = { "B2", "C3" } } },
	{ { "sendmail", "--requeue", "A1", NULL },
	  { .mode = MODE_REQUEUE, .rqid = "A1" } },
	{ { "sendmail", "--requeue", "A1", "B2", NULL },
	  { .mode = MODE_REQUEUE, .rqid = "A1", .rcpts = { "B2" } } },
	{ { "sendmail", "-bp", "--failed", NULL },
	  { .mode = MODE_LIST, .failed = true } },
	{ { "mailq", "--failed", NULL },
	  { .mode = MODE_LIST, .failed = true, .progname = "mailq" } },
	{ { "sendmail", "--force", NULL }, { .force = true } },
	{ { "sendmail", "-q", "--force", NULL },
	  { .mode = MODE_QUEUE_RUN, .force = true } },
	{ { "sendmail", "--remove", "ID42", NULL },
	  { .mode = MODE_REMOVE, .rmid = "ID42" } },
	{ { "sendmail", "--version", NULL }, { .mode = MODE_VERSION } },
	{ { "sendmail", "--help", NULL }, { .mode = MODE_HELP } },
	/* the last mode wins */
	{ { "sendmail", "-bp", "-bm", NULL }, { .mode = MODE_SEND } },
	{ { "sendmail", "-bv", "-t", "--", "x@y", NULL },
	  { .mode = MODE_VERIFY, .t = true, .rcpts = { "x@y" } } },
};

static void test_modes(void **state)
{
	(void)state;
	RUN(mode_rows);
}

static const struct row delivery_rows[] = {
	{ { "sendmail", "-odq", NULL }, { .delivery = DELIVER_QUEUE } },
	{ { "sendmail", "-odb", NULL }, { .delivery = DELIVER_BACKGROUND } },
	{ { "sendmail", "-odi", NULL }, { .delivery = DELIVER_NOW } },
	{ { "sendmail", "-o", "dq", NULL }, { .delivery = DELIVER_QUEUE } },
	{ { "sendmail", "-odq", "-odi", NULL }, { .delivery = DELIVER_NOW } },
	{ { "sendmail", "-odb", "-t", "a@b", NULL },
	  { .delivery = DELIVER_BACKGROUND, .t = true, .rcpts = { "a@b" } } },
};

static void test_delivery(void **state)
{
	(void)state;
	RUN(delivery_rows);
}

/* ---- argv[0] --------------------------------------------------------------- */

static const struct row progname_rows[] = {
	{ { "mailq", NULL }, { .mode = MODE_LIST, .progname = "mailq" } },
	{ { "/usr/bin/mailq", NULL }, { .mode = MODE_LIST, .progname = "mailq" } },
	{ { "/usr/bin/newaliases", NULL },
	  { .mode = MODE_NEWALIASES, .progname = "newaliases" } },
	{ { "newaliases", NULL },
	  { .mode = MODE_NEWALIASES, .progname = "newaliases" } },
	{ { "sendmail", NULL }, { .mode = MODE_SEND } },
	{ { "/usr/sbin/sendmail", "a@b", NULL }, { .rcpts = { "a@b" } } },
	{ { "/usr/local/sbin/outbox", NULL },
	  { .mode = MODE_SEND, .progname = "outbox" } },
	/* a flag overrides the name */
	{ { "mailq", "-bm", "a@b", NULL },
	  { .mode = MODE_SEND, .progname = "mailq", .rcpts = { "a@b" } } },
	/* only the basename counts */
	{ { "/opt/mailq/sendmail", NULL }, { .mode = MODE_SEND } },
	{ { "mailq2", NULL }, { .mode = MODE_SEND, .progname = "mailq2" } },
};

static void test_progname(void **state)
{
	(void)state;
	RUN(progname_rows);
}

/*
 * execve() with an empty argv gives argc 0 and argv[0] == NULL (the
 * pkexec CVE-2021-4034 case). There are no recipients then; nrcpts must
 * not wrap around to SIZE_MAX (main.c would read the environment as
 * recipients).
 */
static void test_empty_argv(void **state)
{
	char *av[1] = { NULL };
	struct options o;
	char err[128];

	(void)state;
	assert_int_equal(cli_parse(0, av, &o, err, sizeof(err)), 0);
	assert_int_equal(o.mode, MODE_SEND);
	assert_non_null(o.progname);
	assert_int_equal(o.nrcpts, 0);
}

/* ---- errors -------------------------------------------------------------------- */

static const struct err_row err_rows[] = {
	{ { "sendmail", "-bd", NULL }, "-bd" },
	{ { "sendmail", "-bD", NULL }, "-bD" },
	{ { "sendmail", "-b", "d", NULL }, "-bd" },
	{ { "sendmail", "-bx", NULL }, "-b" },
	{ { "sendmail", "-Z", NULL }, "-Z" },
	{ { "sendmail", "-tZ", "a@b", NULL }, "-Z" },
	{ { "sendmail", "-f", NULL }, "-f" },
	{ { "sendmail", "-t", "-f", NULL }, "-f" },
	{ { "sendmail", "-r", NULL }, "-r" },
	{ { "sendmail", "-F", NULL }, "-F" },
	{ { "sendmail", "-C", NULL }, "-C" },
	{ { "sendmail", "-i", "-C", NULL }, "-C" },
	{ { "sendmail", "--bogus", NULL }, "bogus" },
	{ { "sendmail", "--remove", NULL }, "--remove" },
	{ { "sendmail", "--requeue", NULL }, "--requeue" },
	/* modes that take no operands refuse them */
	{ { "sendmail", "-q", "a@b", NULL }, "no operands; unexpected: a@b" },
	{ { "sendmail", "-q15m", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "-bp", "x", NULL }, "unexpected: x" },
	{ { "mailq", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "-bs", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "-bi", "x", NULL }, "unexpected: x" },
	{ { "newaliases", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "--check", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "--version", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "--init", "h", "x", NULL }, "unexpected: x" },
	{ { "sendmail", "-qI", NULL }, "-qI" },
	{ { "sendmail", "-qx", NULL }, "-q" },
	{ { "sendmail", "-odx", NULL }, "-o" },
	{ { "sendmail", "-A", NULL }, "-A" },
	{ { "mailq", "-Z", NULL }, "-Z" },
};

static void test_errors(void **state)
{
	(void)state;
	RUN_ERR(err_rows);
}

/* The error text is bounded by errlen and always NUL-terminated. */
static void test_error_truncation(void **state)
{
	char *av[] = { (char *)"sendmail", (char *)"-bd", NULL };
	struct options o;
	char buf[16];

	(void)state;
	memset(buf, 'X', sizeof(buf));
	assert_int_equal(cli_parse(2, av, &o, buf, 8), -1);
	assert_int_equal(strlen(buf), 7);
	assert_int_equal(buf[8], 'X');
}

/* Parsing changes nothing in argv and reuses no earlier state. */
static void test_argv_untouched(void **state)
{
	char a0[] = "sendmail", a1[] = "-tif", a2[] = "s@x", a3[] = "r@y";
	char *av[] = { a0, a1, a2, a3, NULL };
	struct options o;
	char err[128];

	(void)state;
	memset(&o, 0xff, sizeof(o));
	assert_int_equal(cli_parse(4, av, &o, err, sizeof(err)), 0);
	assert_string_equal(a1, "-tif");
	assert_ptr_equal(o.sender, a2);
	assert_ptr_equal(o.rcpts, &av[3]);
	assert_int_equal(o.nrcpts, 1);
	assert_null(o.fullname);
	assert_null(o.config);
	assert_null(av[4]);
}

/* --queue-check: the thresholds are kept as given, and belong to it. */
static void test_queue_check(void **state)
{
	static const struct err_row errs[] = {
		{ { "sendmail", "--queue-check", "--warn-age", NULL },
		  "--warn-age" },
		{ { "sendmail", "--crit-count", "5", NULL }, "--queue-check" },
		{ { "sendmail", "-q", "--warn-age", "1h", NULL },
		  "--queue-check" },
	};
	char *av[] = { (char *)"outbox", (char *)"--queue-check",
	               (char *)"--warn-age", (char *)"30m",
	               (char *)"--crit-age", (char *)"2h",
	               (char *)"--warn-count", (char *)"5",
	               (char *)"--crit-count", (char *)"50", NULL };
	struct options o;
	char err[128];

	(void)state;
	assert_int_equal(cli_parse(10, av, &o, err, sizeof(err)), 0);
	assert_int_equal(o.mode, MODE_QUEUE_CHECK);
	assert_string_equal(o.warn_age, "30m");
	assert_string_equal(o.crit_age, "2h");
	assert_string_equal(o.warn_count, "5");
	assert_string_equal(o.crit_count, "50");
	assert_int_equal(o.nrcpts, 0);
	assert_int_equal(cli_parse(2, av, &o, err, sizeof(err)), 0);
	assert_null(o.warn_age);
	assert_null(o.crit_count);
	RUN_ERR(errs);
}

/* --oauth-login and its options, which belong to it. */
static void test_oauth_login(void **state)
{
	static const struct err_row errs[] = {
		{ { "outbox", "--device", NULL }, "go with --oauth-login" },
		{ { "outbox", "-q", "--port", "8765", NULL },
		  "go with --oauth-login" },
		{ { "outbox", "--oauth-login", "--device", "--browser", NULL },
		  "--device and --browser exclude each other" },
		{ { "outbox", "--oauth-login", "--port", NULL },
		  "option needs an argument: --port" },
		{ { "outbox", "--oauth-login", "rcpt@example.com", NULL },
		  "this mode takes no operands" },
		{ { "outbox", "--oauth-login", "--account", NULL },
		  "option needs an argument: --account" },
		{ { "outbox", "-q", "--account", "app", NULL },
		  "--account goes with --oauth-login and --check" },
		{ { "outbox", "--init", NULL },
		  "option needs an argument: --init" },
		{ { "outbox", "--init", "mail.example.com", "--user", NULL },
		  "option needs an argument: --user" },
	};
	char *av[] = { (char *)"outbox", (char *)"-C", (char *)"/x.conf",
	               (char *)"--oauth-login", (char *)"--browser",
	               (char *)"--port", (char *)"8765",
	               (char *)"--login-timeout", (char *)"90s", NULL };
	struct options o;
	char err[128];

	(void)state;
	assert_int_equal(cli_parse(9, av, &o, err, sizeof(err)), 0);
	assert_int_equal(o.mode, MODE_OAUTH_LOGIN);
	assert_string_equal(o.config, "/x.conf");
	assert_true(o.login_browser);
	assert_false(o.login_device);
	assert_string_equal(o.login_port, "8765");
	assert_string_equal(o.login_timeout, "90s");
	assert_null(o.account);
	{
		char *acc[] = { (char *)"outbox", (char *)"--check",
		                (char *)"--account", (char *)"app", NULL };

		assert_int_equal(cli_parse(4, acc, &o, err, sizeof(err)), 0);
		assert_int_equal(o.mode, MODE_CHECK);
		assert_string_equal(o.account, "app");
	}
	assert_int_equal(cli_parse(4, av, &o, err, sizeof(err)), 0);
	assert_false(o.login_browser);
	assert_null(o.login_port);
	RUN_ERR(errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_flags),
		cmocka_unit_test(test_bundled),
		cmocka_unit_test(test_double_dash),
		cmocka_unit_test(test_real_clients),
		cmocka_unit_test(test_ignored_flags),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_delivery),
		cmocka_unit_test(test_progname),
		cmocka_unit_test(test_empty_argv),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_truncation),
		cmocka_unit_test(test_argv_untouched),
		cmocka_unit_test(test_queue_check),
		cmocka_unit_test(test_oauth_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
