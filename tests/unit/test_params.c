/*
 * test_params.c - unit tests for src/params.c (cmocka): the validation of
 * envelope parameters (-N, -R, -V, -B; MAIL and RCPT parameters of -bs),
 * the queue envelope's lines, and the parameters formed for a server.
 *
 * Table-driven: an input and whether it is taken (with what it yields),
 * or a fragment of the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idn.h"
#include "params.h"
#include "smtp_wire.h"

struct cli_case {
	char flag;
	const char *arg;
	int rc;
	const char *err;        /* a fragment of the error when rc != 0 */
};

static void test_cli(void **state)
{
	static const struct cli_case C[] = {
		{ 'N', "never", 0, NULL },
		{ 'N', "NEVER", 0, NULL },
		{ 'N', "success,failure,delay", 0, NULL },
		{ 'N', "Failure", 0, NULL },
		{ 'N', "never,success", -1, "use never, or" },
		{ 'N', "success,success", -1, "bad -N value \"success,success\"" },
		{ 'N', "success,", -1, "bad -N" },
		{ 'N', ",success", -1, "bad -N" },
		{ 'N', "", -1, "bad -N" },
		{ 'N', "sometimes", -1, "\"sometimes\"" },
		{ 'R', "hdrs", 0, NULL },
		{ 'R', "FULL", 0, NULL },
		{ 'R', "headers", -1, "use hdrs" },
		{ 'V', "id with blanks and = and +", 0, NULL },
		{ 'V', "", -1, "bad -V" },
		{ 'V', "a\rb", -1, "printable ASCII" },
		{ 'V', "a\nb", -1, "printable ASCII" },
		{ 'V', "caf\xc3\xa9", -1, "printable ASCII" },
		{ 'B', "7bit", 0, NULL },
		{ 'B', "8BITMIME", 0, NULL },
		{ 'B', "binarymime", -1, "use 7bit or 8bitmime" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(C) / sizeof(C[0]); i++) {
		struct params_set p = { 0 };
		char err[300] = "";
		int rc = params_cli(&p, C[i].flag, C[i].arg, err, sizeof(err));

		if (rc != C[i].rc || (C[i].err && !strstr(err, C[i].err)))
			fail_msg("-%c %s: rc %d, err \"%s\"", C[i].flag, C[i].arg,
			         rc, err);
		params_free(&p);
	}
}

static void test_cli_values(void **state)
{
	struct params_set p = { 0 };
	char err[300], id[120];

	(void)state;
	assert_int_equal(params_cli(&p, 'N', "delay,success", err,
	                            sizeof(err)), 0);
	assert_int_equal(p.notify, PARAMS_NOTIFY_DELAY | PARAMS_NOTIFY_SUCCESS);
	assert_int_equal(params_cli(&p, 'R', "hdrs", err, sizeof(err)), 0);
	assert_int_equal(p.ret, PARAMS_RET_HDRS);
	assert_int_equal(params_cli(&p, 'B', "8bitmime", err, sizeof(err)), 0);
	assert_int_equal(p.body, PARAMS_BODY_8BITMIME);
	/* -V is plain text: xtext-encoded for the wire, decoded back */
	assert_int_equal(params_cli(&p, 'V', "a b+c=d", err, sizeof(err)), 0);
	assert_string_equal(p.envid, "a+20b+2Bc+3Dd");
	params_xtext_decode(p.envid, id, sizeof(id));
	assert_string_equal(id, "a b+c=d");
	params_free(&p);
	/* 100 characters are fine, 101 are not */
	memset(id, 'x', 101);
	id[101] = '\0';
	assert_int_equal(params_cli(&p, 'V', id, err, sizeof(err)), -1);
	id[100] = '\0';
	assert_int_equal(params_cli(&p, 'V', id, err, sizeof(err)), 0);
	params_free(&p);
}

struct word_case {
	bool mail;
	const char *word;
	int rc;
};

static void test_words(void **state)
{
	static const struct word_case C[] = {
		{ true, "RET=HDRS", 0 }, { true, "ret=full", 0 },
		{ true, "RET=", -1 }, { true, "RET=ALL", -1 },
		{ true, "ENVID=abc+2Bdef", 0 }, { true, "ENVID=a+2b", -1 },
		{ true, "ENVID=a=b", -1 }, { true, "ENVID=", -1 },
		{ true, "ENVID=a+2", -1 }, { true, "ENVID=\x01", -1 },
		{ true, "BODY=8BITMIME", 0 }, { true, "BODY=7bit", 0 },
		{ true, "BODY=BINARYMIME", -1 }, { true, "SIZE=100", 0 },
		{ true, "SIZE=x", -1 }, { true, "SMTPUTF8", 0 },
		{ true, "AUTH=<>", 0 }, { true, "NOTIFY=NEVER", -2 },
		{ true, "FOO=1", -2 }, { true, "RET", -2 },
		{ false, "NOTIFY=NEVER", 0 },
		{ false, "NOTIFY=SUCCESS,FAILURE,DELAY", 0 },
		{ false, "NOTIFY=NEVER,DELAY", -1 }, { false, "NOTIFY=", -1 },
		{ false, "ORCPT=rfc822;a@b", 0 },
		{ false, "ORCPT=rfc822;a+40b", 0 },
		{ false, "ORCPT=rfc822;", -1 }, { false, "ORCPT=;a@b", -1 },
		{ false, "ORCPT=rfc 822;a@b", -1 }, { false, "ORCPT=a@b", -1 },
		{ false, "ORCPT=rfc822;a=b", -1 }, { false, "RET=HDRS", -2 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(C) / sizeof(C[0]); i++) {
		struct params_set p = { 0 };
		unsigned notify = 0;
		char *orcpt = NULL, err[300] = "";
		int rc = C[i].mail
		         ? params_mail_word(&p, C[i].word, strlen(C[i].word), err,
		                            sizeof(err))
		         : params_rcpt_word(&notify, &orcpt, C[i].word,
		                            strlen(C[i].word), err, sizeof(err));

		if (rc != C[i].rc)
			fail_msg("%s %s: rc %d (want %d), err \"%s\"",
			         C[i].mail ? "MAIL" : "RCPT", C[i].word, rc,
			         C[i].rc, err);
		if (rc != 0 && strstr(err, C[i].word) == NULL &&
		    strncmp(C[i].word, "ENVID=\x01", 7) != 0)
			fail_msg("%s: the error does not name it: %s", C[i].word,
			         err);
		free(orcpt);
		params_free(&p);
	}
}

/* The value of a long ORCPT: 500 octets are the limit. */
static void test_orcpt_length(void **state)
{
	char word[600], err[300];
	char *orcpt = NULL;
	unsigned notify = 0;

	(void)state;
	memset(word, 'a', sizeof(word));
	memcpy(word, "ORCPT=rfc822;", 13);
	assert_int_equal(params_rcpt_word(&notify, &orcpt, word, 6 + 500, err,
	                                  sizeof(err)), 0);
	free(orcpt);
	orcpt = NULL;
	assert_int_equal(params_rcpt_word(&notify, &orcpt, word, 6 + 501, err,
	                                  sizeof(err)), -1);
	assert_null(orcpt);
}

static void test_env_round_trip(void **state)
{
	struct params_set p = { 0 }, q = { 0 };
	char *rcpts[] = { "a@x", "b@x", "c@x" };
	char text[1024], again[1024], err[300];
	char *line, *nl;

	(void)state;
	assert_int_equal(params_cli(&p, 'R', "full", err, sizeof(err)), 0);
	assert_int_equal(params_cli(&p, 'V', "id 1", err, sizeof(err)), 0);
	assert_int_equal(params_cli(&p, 'B', "8bitmime", err, sizeof(err)), 0);
	assert_int_equal(params_cli(&p, 'N', "failure", err, sizeof(err)), 0);
	assert_int_equal(params_rcpt_set(&p, "a@x", PARAMS_NOTIFY_NEVER,
	                                 "rfc822;orig+2Ba@x"), 0);
	assert_int_equal(params_rcpt_set(&p, "B@X", 0, "rfc822;b@x"), 0);
	assert_int_equal(params_rcpt_set(&p, "gone@x", PARAMS_NOTIFY_DELAY,
	                                 NULL), 0);
	/* xtext may hold '<' and '>': the address is what follows the
	 * parameters, not the first '<' (found by fuzz_params) */
	assert_int_equal(params_rcpt_set(&p, "c@x", 0, "rfc822;<c>@x"), 0);
	params_env_text(&p, rcpts, 3, text, sizeof(text));
	assert_string_equal(text, "ret FULL\nbody 8BITMIME\nenvid id+201\n"
	                    "notify FAILURE\n"
	                    "dsn-rcpt NOTIFY=NEVER ORCPT=rfc822;orig+2Ba@x <a@x>\n"
	                    "dsn-rcpt ORCPT=rfc822;b@x <B@X>\n"
	                    "dsn-rcpt ORCPT=rfc822;<c>@x <c@x>\n");
	for (line = text; *line != '\0'; line = nl + 1) {
		char *sp = strchr(line, ' ');

		nl = strchr(line, '\n');
		*nl = '\0';
		*sp = '\0';
		assert_int_equal(params_env_line(&q, line, sp + 1), 1);
	}
	assert_int_equal(params_env_line(&q, "rcpt", "<a@x>"), 0);
	assert_int_equal(params_env_line(&q, "ret", "SOME"), -1);
	assert_int_equal(params_env_line(&q, "envid", "a=b"), -1);
	assert_int_equal(params_env_line(&q, "dsn-rcpt", "NOTIFY=X <a@x>"), -1);
	assert_int_equal(params_env_line(&q, "dsn-rcpt", "NOTIFY=NEVER a@x"),
	                 -1);
	params_env_text(&q, rcpts, 3, again, sizeof(again));
	params_env_text(&p, rcpts, 3, text, sizeof(text));
	assert_string_equal(again, text);
	assert_int_equal(params_notify_of(&q, "a@x"), PARAMS_NOTIFY_NEVER);
	assert_int_equal(params_notify_of(&q, "b@x"), PARAMS_NOTIFY_FAILURE);
	assert_false(params_wants_failure(&q, "a@x"));
	assert_true(params_wants_failure(&q, "b@x"));
	assert_true(params_wants_failure(NULL, "b@x"));
	params_free(&p);
	params_free(&q);
	/* nothing to keep: no lines, as older envelopes have none */
	assert_int_equal(params_env_text(&p, rcpts, 3, text, sizeof(text)), 0);
	assert_false(params_any(&p));
}

static void test_suffixes(void **state)
{
	struct params_set p = { 0 };
	char out[300], err[300];

	(void)state;
	assert_int_equal(params_cli(&p, 'R', "hdrs", err, sizeof(err)), 0);
	assert_int_equal(params_cli(&p, 'V', "e", err, sizeof(err)), 0);
	assert_int_equal(params_cli(&p, 'N', "success,failure", err,
	                            sizeof(err)), 0);
	p.body = PARAMS_BODY_8BITMIME;
	assert_int_equal(params_rcpt_set(&p, "a@x", 0, "rfc822;a@x"), 0);
	snprintf(out, sizeof(out), " SIZE=10");
	params_mail_suffix(&p, true, true, out, sizeof(out));
	assert_string_equal(out, " SIZE=10 BODY=8BITMIME RET=HDRS ENVID=e");
	/* only what the server offered */
	out[0] = '\0';
	params_mail_suffix(&p, false, false, out, sizeof(out));
	assert_string_equal(out, "");
	params_mail_suffix(&p, false, true, out, sizeof(out));
	assert_string_equal(out, " BODY=8BITMIME");
	out[0] = '\0';
	params_rcpt_suffix(&p, "A@X", true, out, sizeof(out));
	assert_string_equal(out, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@x");
	out[0] = '\0';
	params_rcpt_suffix(&p, "a@x", false, out, sizeof(out));
	assert_string_equal(out, "");
	params_free(&p);
}

static void test_param_fault(void **state)
{
	(void)state;
	assert_true(smtp_wire_param_fault(555, "555 5.5.4 Unsupported option"));
	assert_true(smtp_wire_param_fault(501, "501 5.5.4 Bad NOTIFY syntax"));
	assert_false(smtp_wire_param_fault(501, "501 5.1.3 Bad address"));
	assert_false(smtp_wire_param_fault(550, "550 5.1.1 no such user"));
}

static void test_idn(void **state)
{
	char *out = NULL, err[300] = "";

	(void)state;
	assert_int_equal(idn_address_ascii("user@b\xc3\xbc" "cher.example", &out,
	                                   err, sizeof(err)), IDN_OK);
	assert_string_equal(out, "user@xn--bcher-kva.example");
	free(out);
	assert_int_equal(idn_address_ascii("plain@example.com", &out, err,
	                                   sizeof(err)), IDN_OK);
	assert_string_equal(out, "plain@example.com");
	free(out);
	assert_int_equal(idn_address_ascii("", &out, err, sizeof(err)), IDN_OK);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(idn_address_ascii("j\xc3\xbcrgen@example.com", &out,
	                                   err, sizeof(err)), IDN_LOCAL_UTF8);
	assert_null(out);
	assert_non_null(strstr(err, "SMTPUTF8"));
	assert_int_equal(idn_address_ascii("a@\xff\xfe" ".example", &out, err,
	                                   sizeof(err)), IDN_BAD_DOMAIN);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_cli_values),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_orcpt_length),
		cmocka_unit_test(test_env_round_trip),
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_param_fault),
		cmocka_unit_test(test_idn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
