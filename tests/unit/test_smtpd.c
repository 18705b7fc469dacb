/*
 * test_smtpd.c - unit tests for the pure parsers of src/smtpd.c (cmocka):
 * smtpd_parse_command and smtpd_parse_path.
 *
 * Table-driven: a command line and the verb, result and argument
 * expected; a MAIL/RCPT argument and the address and parameters expected,
 * or a fragment of the error. Every input is copied into a buffer of
 * exactly its length (no NUL after it), since both functions take
 * (pointer, length); under valgrind or SANITIZE=1 a read past the end
 * is an error.
 *
 * Tests for bugs that are reported but not fixed yet call KNOWN_BUG():
 * they are skipped unless OUTBOX_TEST_KNOWN_BUGS=1 is set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd.h"

#define KNOWN_BUG(why)                                                  \
	do {                                                            \
		if (getenv("OUTBOX_TEST_KNOWN_BUGS") == NULL) {         \
			print_message("[  SKIP    ] known bug: %s\n", why); \
			skip();                                         \
		}                                                       \
	} while (0)

/* An exact-size heap copy of s[0..len): no terminator after it. */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* ---- smtpd_parse_command ---- */

struct cmd_row {
	const char *line;
	size_t len;             /* 0: strlen(line) */
	int rc;
	enum smtpd_verb verb;
	const char *arg;        /* expected argument (when rc == 0) */
};

#define CMD(line, rc, verb, arg) { line, 0, rc, verb, arg }
#define CMDLIT(lit, rc, verb, arg) { lit, sizeof(lit) - 1, rc, verb, arg }

static void run_cmd_rows(const struct cmd_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct cmd_row *r = &rows[i];
		size_t len = r->len != 0 ? r->len : strlen(r->line);
		char *buf = exact(r->line, len);
		const char *line = len > 0 ? buf : buf + 1;
		struct smtpd_cmd cmd;
		int rc;

		memset(&cmd, 0x55, sizeof(cmd));
		rc = smtpd_parse_command(line, len, &cmd);
		if (rc != r->rc)
			fail_msg("row %zu [%s]: rc %d, want %d", i, r->line, rc,
			         r->rc);
		if (rc == 0) {
			if (cmd.verb != r->verb)
				fail_msg("row %zu [%s]: verb %d, want %d", i, r->line,
				         (int)cmd.verb, (int)r->verb);
			if (cmd.arg < line || cmd.arg + cmd.arglen > line + len)
				fail_msg("row %zu [%s]: arg outside the line", i,
				         r->line);
			if (cmd.arglen != strlen(r->arg) ||
			    memcmp(cmd.arg, r->arg, cmd.arglen) != 0)
				fail_msg("row %zu [%s]: arg [%.*s], want [%s]", i,
				         r->line, (int)cmd.arglen, cmd.arg, r->arg);
		}
		free(buf);
	}
}

#define RUN_CMD(rows) run_cmd_rows(rows, sizeof(rows) / sizeof(rows[0]))

static void test_verbs(void **state)
{
	static const struct cmd_row rows[] = {
		CMD("HELO client.example", 0, V_HELO, "client.example"),
		CMD("EHLO [192.0.2.1]", 0, V_EHLO, "[192.0.2.1]"),
		CMD("DATA", 0, V_DATA, ""),
		CMD("RSET", 0, V_RSET, ""),
		CMD("NOOP", 0, V_NOOP, ""),
		CMD("NOOP anything at all", 0, V_NOOP, "anything at all"),
		CMD("VRFY root", 0, V_VRFY, "root"),
		CMD("EXPN staff", 0, V_EXPN, "staff"),
		CMD("HELP", 0, V_HELP, ""),
		CMD("QUIT", 0, V_QUIT, ""),
		CMD("STARTTLS", 0, V_STARTTLS, ""),
		CMD("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 0, V_AUTH,
		    "PLAIN AGFsaWNlAHNlY3JldA=="),
		CMD("MAIL FROM:<a@b>", 0, V_MAIL, "<a@b>"),
		CMD("RCPT TO:<a@b>", 0, V_RCPT, "<a@b>"),
	};

	(void)state;
	RUN_CMD(rows);
}

static void test_verbs_case_insensitive(void **state)
{
	static const struct cmd_row rows[] = {
		CMD("helo x", 0, V_HELO, "x"),
		CMD("eHlO x", 0, V_EHLO, "x"),
		CMD("data", 0, V_DATA, ""),
		CMD("quit", 0, V_QUIT, ""),
		CMD("StartTLS", 0, V_STARTTLS, ""),
		CMD("mail from:<>", 0, V_MAIL, "<>"),
		CMD("MaIl FrOm:<a@b>", 0, V_MAIL, "<a@b>"),
		CMD("rcpt to:<a@b>", 0, V_RCPT, "<a@b>"),
		CMD("rCpT tO:<a@b>", 0, V_RCPT, "<a@b>"),
	};

	(void)state;
	RUN_CMD(rows);
}

static void test_mail_rcpt_forms(void **state)
{
	static const struct cmd_row rows[] = {
		CMD("MAIL FROM:<a@b> SIZE=10", 0, V_MAIL, "<a@b> SIZE=10"),
		CMD("MAIL FROM: <a@b>", 0, V_MAIL, "<a@b>"),
		CMD("MAIL FROM:\t<a@b>\t", 0, V_MAIL, "<a@b>"),
		CMD("MAIL  FROM:<a@b>", 0, V_MAIL, "<a@b>"),
		CMD("MAIL\tFROM:<a@b>", 0, V_MAIL, "<a@b>"),
		CMD("MAIL FROM:<a@b>   ", 0, V_MAIL, "<a@b>"),
		CMD("mail from:<>", 0, V_MAIL, "<>"),
		CMD("MAIL FROM:", 0, V_MAIL, ""),
		CMD("MAIL FROM:a@b", 0, V_MAIL, "a@b"),
		CMD("RCPT TO:<a@b>", 0, V_RCPT, "<a@b>"),
		CMD("RCPT TO: <a@b> NOTIFY=NEVER", 0, V_RCPT,
		    "<a@b> NOTIFY=NEVER"),
		CMD("RCPT TO:<\"john smith\"@example.com>", 0, V_RCPT,
		    "<\"john smith\"@example.com>"),
	};

	(void)state;
	RUN_CMD(rows);
}

static void test_missing_colon(void **state)
{
	static const struct cmd_row rows[] = {
		CMD("MAIL FROM <a@b>", -1, V_MAIL, NULL),
		CMD("MAIL <a@b>", -1, V_MAIL, NULL),
		CMD("MAIL", -1, V_MAIL, NULL),
		CMD("MAIL ", -1, V_MAIL, NULL),
		CMD("MAIL FRO", -1, V_MAIL, NULL),
		CMD("MAIL TO:<a@b>", -1, V_MAIL, NULL),
		CMD("RCPT TO <a@b>", -1, V_RCPT, NULL),
		CMD("RCPT FROM:<a@b>", -1, V_RCPT, NULL),
		CMD("RCPT", -1, V_RCPT, NULL),
		CMD("RCPT T", -1, V_RCPT, NULL),
	};

	(void)state;
	RUN_CMD(rows);
}

static void test_unknown_verbs(void **state)
{
	static const struct cmd_row rows[] = {
		CMD("XCLIENT ADDR=192.0.2.1", 0, V_UNKNOWN, "ADDR=192.0.2.1"),
		CMD("MAILFROM:<a@b>", 0, V_UNKNOWN, ""),
		CMD("MAIL:", 0, V_UNKNOWN, ""),
		CMD("HEL", 0, V_UNKNOWN, ""),
		CMD("HELOO x", 0, V_UNKNOWN, "x"),
		CMD("QUITX", 0, V_UNKNOWN, ""),
		CMD(" QUIT", 0, V_UNKNOWN, "QUIT"),
		CMD("", 0, V_UNKNOWN, ""),
		CMD("   ", 0, V_UNKNOWN, ""),
		CMD("GET / HTTP/1.0", 0, V_UNKNOWN, "/ HTTP/1.0"),
	};

	(void)state;
	RUN_CMD(rows);
}

static void test_command_nul_bytes(void **state)
{
	static const struct cmd_row rows[] = {
		CMDLIT("QU\0T", 0, V_UNKNOWN, ""),
		CMDLIT("QUIT\0", 0, V_UNKNOWN, ""),
		CMDLIT("\0QUIT", 0, V_UNKNOWN, ""),
		CMDLIT("MAIL\0FROM:<a@b>", 0, V_UNKNOWN, ""),
		CMDLIT("MAIL FR\0M:<a@b>", -1, V_MAIL, NULL),
	};
	struct smtpd_cmd cmd;
	char *b = exact("HELO a\0b", 8);

	(void)state;
	RUN_CMD(rows);
	/* a NUL inside the argument is kept (the length says where it ends) */
	assert_int_equal(smtpd_parse_command(b, 8, &cmd), 0);
	assert_int_equal(cmd.verb, V_HELO);
	assert_int_equal(cmd.arglen, 3);
	assert_memory_equal(cmd.arg, "a\0b", 3);
	free(b);
}

/* The length bounds the line: bytes after it are not part of it. */
static void test_command_length_bounds(void **state)
{
	const char *s = "QUIT now please";
	struct smtpd_cmd cmd;

	(void)state;
	assert_int_equal(smtpd_parse_command(s, 4, &cmd), 0);
	assert_int_equal(cmd.verb, V_QUIT);
	assert_int_equal(cmd.arglen, 0);
	assert_int_equal(smtpd_parse_command("MAIL FROM:<a@b>", 9, &cmd), -1);
	assert_int_equal(smtpd_parse_command("MAIL FROM:<a@b>", 10, &cmd), 0);
	assert_int_equal(cmd.arglen, 0);
	assert_int_equal(smtpd_parse_command("RCPT TO:<a@b> X", 13, &cmd), 0);
	assert_int_equal(cmd.arglen, 5);
	assert_memory_equal(cmd.arg, "<a@b>", 5);
}

/* ---- smtpd_parse_path ---- */

struct path_row {
	const char *arg;
	size_t len;             /* 0: strlen(arg) */
	const char *addr;       /* expected address, or NULL for an error */
	const char *params;     /* expected parameters (success) */
	const char *err;        /* error fragment (failure) */
};

#define PATH(arg, addr, params) { arg, 0, addr, params, NULL }
#define PATHERR(arg, err) { arg, 0, NULL, NULL, err }
#define PATHERRLIT(lit, err) { lit, sizeof(lit) - 1, NULL, NULL, err }

static void run_path_rows(const struct path_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct path_row *r = &rows[i];
		size_t len = r->len != 0 ? r->len : strlen(r->arg);
		/* one spare byte, so params may point just past the end */
		char *buf = malloc(len + 1);
		char err[256];
		char *addr = (char *)"unset";
		const char *params = NULL;
		int rc;

		assert_non_null(buf);
		memcpy(buf, r->arg, len);
		buf[len] = '\0';
		memset(err, 'X', sizeof(err));
		rc = smtpd_parse_path(buf, len, &addr, &params, err, sizeof(err));
		if (r->addr == NULL) {
			if (rc != -1)
				fail_msg("row %zu [%s]: rc %d, want an error '%s'", i,
				         r->arg, rc, r->err);
			if (memchr(err, '\0', sizeof(err)) == NULL ||
			    strstr(err, r->err) == NULL)
				fail_msg("row %zu [%s]: error [%.*s], want '%s'", i,
				         r->arg, (int)sizeof(err), err, r->err);
			if (addr != NULL)
				fail_msg("row %zu [%s]: *addr set on error", i, r->arg);
		} else {
			if (rc != 0)
				fail_msg("row %zu [%s]: error [%s], want [%s]", i,
				         r->arg, err, r->addr);
			if (addr == NULL || strcmp(addr, r->addr) != 0)
				fail_msg("row %zu [%s]: addr [%s], want [%s]", i,
				         r->arg, addr ? addr : "(null)", r->addr);
			if (params == NULL || params < buf || params > buf + len ||
			    strcmp(params, r->params) != 0)
				fail_msg("row %zu [%s]: params [%s], want [%s]", i,
				         r->arg, params ? params : "(null)", r->params);
			free(addr);
		}
		free(buf);
	}
}

#define RUN_PATH(rows) run_path_rows(rows, sizeof(rows) / sizeof(rows[0]))

static void test_paths(void **state)
{
	static const struct path_row rows[] = {
		PATH("<a@b>", "a@b", ""),
		PATH("<a@b> SIZE=10", "a@b", "SIZE=10"),
		PATH("<a@b>  SIZE=10 BODY=8BITMIME", "a@b",
		     "SIZE=10 BODY=8BITMIME"),
		PATH("<a@b>\tSMTPUTF8", "a@b", "SMTPUTF8"),
		PATH("<>", "", ""),
		PATH("<> SIZE=0", "", "SIZE=0"),
		PATH("<user+tag@example.com>", "user+tag@example.com", ""),
		PATH("<\"john smith\"@example.com>", "\"john smith\"@example.com",
		     ""),
		PATH("<@relay1.example,@relay2.example:u@final.example>",
		     "u@final.example", ""),
		PATH("<postmaster>", "postmaster", ""),
		PATH("<root>", "root", ""),
		PATH("<jürgen@例子.广告>", "jürgen@例子.广告", ""),
		PATH("<a@[192.0.2.1]>", "a@[192.0.2.1]", ""),
	};

	(void)state;
	RUN_PATH(rows);
}

static void test_paths_without_brackets(void **state)
{
	static const struct path_row rows[] = {
		PATH("a@b", "a@b", ""),
		PATH("a@b SIZE=10", "a@b", "SIZE=10"),
		PATH("a@b\tSIZE=10", "a@b", "SIZE=10"),
		PATH("root", "root", ""),
	};

	(void)state;
	RUN_PATH(rows);
}

static void test_path_errors(void **state)
{
	static const struct path_row rows[] = {
		PATHERR("<a@b", "missing '>'"),
		PATHERR("<", "missing '>'"),
		PATHERR("<a@b SIZE=10", "missing '>'"),
		PATHERR("", "empty"),
		PATHERR("<a b@c>", "white space"),
		PATHERR("<a@>", "domain"),
		PATHERR("<@a:>", "empty"),
		PATHERR("<a@b,c@d>", "expected '>'"),
		PATHERRLIT("<a\0b@c>", "malformed"),
		PATHERRLIT("<a@b>\0", "malformed"),
		PATHERRLIT("a\0@b", "malformed"),
	};

	(void)state;
	RUN_PATH(rows);
}

/* The argument is (pointer, length): bytes after len are not read. */
static void test_path_length_bounds(void **state)
{
	const char *s = "<a@b>XYZ";
	char err[128];
	char *addr = NULL;
	const char *params = NULL;

	(void)state;
	assert_int_equal(smtpd_parse_path("a@b c@d", 3, &addr, &params, err,
	                                  sizeof(err)), 0);
	assert_string_equal(addr, "a@b");
	free(addr);
	assert_int_equal(smtpd_parse_path(s, 4, &addr, &params, err,
	                                  sizeof(err)), -1);
	assert_null(addr);
	assert_int_equal(smtpd_parse_path(s, 5, &addr, &params, err,
	                                  sizeof(err)), 0);
	assert_string_equal(addr, "a@b");
	assert_ptr_equal(params, s + 5);
	free(addr);
}

/* Exact-size buffers: the lenient (no '<') branch and an empty argument
 * must not read arg[len]. Caught by valgrind / SANITIZE=1. */
static void test_path_not_nul_terminated(void **state)
{
	static const char *const args[] = { "a@b", "root", "SIZE=10", "" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		size_t len = strlen(args[i]);
		char *buf = exact(args[i], len);
		char err[128];
		char *addr = NULL;
		const char *params = NULL;

		(void)smtpd_parse_path(len > 0 ? buf : buf + 1, len, &addr,
		                       &params, err, sizeof(err));
		free(addr);
		free(buf);
	}
}

/* MAIL/RCPT lines through both parsers, as smtpd_run does. */
static void test_command_then_path(void **state)
{
	static const struct {
		const char *line;
		enum smtpd_verb verb;
		const char *addr;
		const char *params;
	} rows[] = {
		{ "MAIL FROM:<a@b> SIZE=10", V_MAIL, "a@b", "SIZE=10" },
		{ "MAIL FROM: <a@b>", V_MAIL, "a@b", "" },
		{ "mail from:<>", V_MAIL, "", "" },
		{ "RCPT TO:<a@b>", V_RCPT, "a@b", "" },
		{ "RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE", V_RCPT, "c@d",
		  "NOTIFY=SUCCESS,FAILURE" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtpd_cmd cmd;
		char line[256];
		char err[128];
		char *addr = NULL;
		const char *params = NULL;

		snprintf(line, sizeof(line), "%s", rows[i].line);
		assert_int_equal(smtpd_parse_command(line, strlen(line), &cmd), 0);
		assert_int_equal(cmd.verb, rows[i].verb);
		assert_int_equal(smtpd_parse_path(cmd.arg, cmd.arglen, &addr,
		                                  &params, err, sizeof(err)), 0);
		assert_string_equal(addr, rows[i].addr);
		assert_string_equal(params, rows[i].params);
		free(addr);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_verbs_case_insensitive),
		cmocka_unit_test(test_mail_rcpt_forms),
		cmocka_unit_test(test_missing_colon),
		cmocka_unit_test(test_unknown_verbs),
		cmocka_unit_test(test_command_nul_bytes),
		cmocka_unit_test(test_command_length_bounds),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_paths_without_brackets),
		cmocka_unit_test(test_path_errors),
		cmocka_unit_test(test_path_length_bounds),
		cmocka_unit_test(test_path_not_nul_terminated),
		cmocka_unit_test(test_command_then_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
