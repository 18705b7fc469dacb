/*
 * test_creds.c - unit tests for the credentials module (src/creds.c) and
 * the transport parameters built from a config (src/relay.c) (cmocka).
 *
 * Each test writes its config, and the commands' counter files, into a
 * private mkdtemp() directory.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"
#include "relay.h"

static char dir[64];

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 30)
		tmp = "/tmp";
	if (snprintf(dir, sizeof(dir), "%s/test_creds.XXXXXX", tmp) >=
	    (int)sizeof(dir))
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Load text (a whole config) from a 0600 file in dir. */
static void load(const char *text, struct config *cfg)
{
	char path[128], err[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/outbox.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	if (config_load(path, cfg, err, sizeof(err)) != 0)
		fail_msg("config_load: %s", err);
}

/* How many lines the file name in dir has (0 when it does not exist). */
static int lines_of(const char *name)
{
	char path[128];
	int c, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static const struct {
	const char *text;
	enum creds_kind kind;
} KIND_ROWS[] = {
	{ "smarthost h\n", CREDS_NONE },
	{ "smarthost h\npassword secret\n", CREDS_NONE },
	{ "smarthost h\nuser u\n", CREDS_PASSWORD },
	{ "smarthost h\nuser u\npassword p\n", CREDS_PASSWORD },
	{ "smarthost h\nuser u\nauth plain\npassword p\n", CREDS_PASSWORD },
	{ "smarthost h\nuser u\nauth xoauth2\ntoken-command echo t\n",
	  CREDS_BEARER },
	{ "smarthost h\nuser u\nauth oauthbearer\ntoken-command echo t\n",
	  CREDS_BEARER },
};

static void test_kind(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(KIND_ROWS) / sizeof(KIND_ROWS[0]); i++) {
		struct config cfg;

		load(KIND_ROWS[i].text, &cfg);
		if (creds_kind(&cfg) != KIND_ROWS[i].kind)
			fail_msg("row %zu: kind %d, want %d", i, creds_kind(&cfg),
			         KIND_ROWS[i].kind);
		config_free(&cfg);
	}
}

/* No user: nothing is read, not even a password file that is not there. */
static void test_none_reads_nothing(void **state)
{
	struct config cfg;
	struct creds *c;
	const char *secret = "junk";
	char text[256], err[256] = "";

	(void)state;
	snprintf(text, sizeof(text), "smarthost h\npassword-file %s/missing\n",
	         dir);
	load(text, &cfg);
	c = creds_new(&cfg);
	assert_non_null(c);
	assert_int_equal(creds_prepare(c, err, sizeof(err)), 0);
	assert_int_equal(creds_get(c, false, &secret, err, sizeof(err)), 0);
	assert_null(secret);
	assert_false(creds_refreshable(c));
	creds_free(c);
	config_free(&cfg);
}

/* A password is read once per run, however many connections ask. */
static void test_password_read_once(void **state)
{
	struct config cfg;
	struct creds *c;
	const char *secret = NULL;
	char text[512], err[256] = "";

	(void)state;
	snprintf(text, sizeof(text), "smarthost h\nuser u\npassword-command "
	         "\"echo x >> %s/pw-runs; echo hunter2\"\n", dir);
	load(text, &cfg);
	c = creds_new(&cfg);
	assert_non_null(c);
	assert_int_equal(creds_prepare(c, err, sizeof(err)), 0);
	assert_int_equal(creds_get(c, false, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "hunter2");
	assert_int_equal(creds_get(c, true, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "hunter2");
	assert_int_equal(lines_of("pw-runs"), 1);
	assert_false(creds_refreshable(c));
	creds_free(c);
	config_free(&cfg);
}

/* A token is asked for at each new connection; prepare asks for none. */
static void test_token_per_connection(void **state)
{
	struct config cfg;
	struct creds *c;
	const char *secret = NULL;
	char text[512], err[256] = "";

	(void)state;
	snprintf(text, sizeof(text), "smarthost h\nuser u\nauth xoauth2\n"
	         "token-command \"echo x >> %s/tok-runs; echo tok\"\n", dir);
	load(text, &cfg);
	c = creds_new(&cfg);
	assert_non_null(c);
	assert_int_equal(creds_prepare(c, err, sizeof(err)), 0);
	assert_int_equal(lines_of("tok-runs"), 0);
	assert_int_equal(creds_get(c, false, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "tok");
	assert_int_equal(creds_get(c, true, &secret, err, sizeof(err)), 0);
	assert_string_equal(secret, "tok");
	assert_int_equal(lines_of("tok-runs"), 2);
	assert_true(creds_refreshable(c));
	creds_free(c);
	config_free(&cfg);
}

/* A failing command: an error naming the key, never the output. */
static void test_command_fails(void **state)
{
	struct config cfg;
	struct creds *c;
	const char *secret = "junk";
	char err[256] = "";

	(void)state;
	load("smarthost h\nuser u\npassword-command \"echo hunter2; exit 3\"\n",
	     &cfg);
	c = creds_new(&cfg);
	assert_non_null(c);
	assert_int_equal(creds_prepare(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "password-command"));
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(creds_get(c, false, &secret, err, sizeof(err)), -1);
	assert_null(secret);
	creds_free(c);
	config_free(&cfg);
}

/* The transport's parameters: plain values from the config. */
static void test_relay_params(void **state)
{
	struct config cfg;
	struct smtp_params p;

	(void)state;
	load("smarthost smtps://a.example\nsmarthost b.example:2525\n"
	     "tls-verify off\nca-file /etc/ca.pem\nuser u\nauth plain\n"
	     "helo me.example\ntimeout 7s\nproxy none\nqueue /var/q\n", &cfg);
	relay_params(&cfg, 0, "pw", true, &p);
	assert_string_equal(p.host, "a.example");
	assert_int_equal(p.port, 465);
	assert_int_equal(p.tls, SMTP_TLS_SMTPS);
	assert_false(p.verify);
	assert_string_equal(p.ca_file, "/etc/ca.pem");
	assert_string_equal(p.trust_dir, "/var/q");
	assert_string_equal(p.user, "u");
	assert_int_equal(p.secret_kind, SMTP_SECRET_PASSWORD);
	assert_string_equal(p.secret, "pw");
	assert_string_equal(p.auth, "PLAIN");
	assert_string_equal(p.helo, "me.example");
	assert_int_equal(p.timeout, 7);
	assert_string_equal(p.proxy, "");
	assert_true(p.verbose);
	assert_false(p.hide_auth);
	relay_params(&cfg, 1, NULL, false, &p);
	assert_string_equal(p.host, "b.example");
	assert_int_equal(p.port, 2525);
	assert_int_equal(p.tls, SMTP_TLS_STARTTLS);
	assert_int_equal(p.secret_kind, SMTP_SECRET_NONE);
	assert_null(p.secret);
	config_free(&cfg);
	/* a token is a bearer secret; no user, no secret at all */
	load("smarthost h\nuser u\nauth xoauth2\ntoken-command x\n", &cfg);
	relay_params(&cfg, 0, "tok", false, &p);
	assert_int_equal(p.secret_kind, SMTP_SECRET_BEARER);
	assert_null(p.proxy);
	config_free(&cfg);
	load("smarthost h\ntls off\n", &cfg);
	relay_params(&cfg, 0, "pw", false, &p);
	assert_int_equal(p.tls, SMTP_TLS_OFF);
	assert_int_equal(p.port, 25);
	assert_null(p.user);
	assert_int_equal(p.secret_kind, SMTP_SECRET_NONE);
	assert_null(p.secret);
	assert_non_null(p.helo);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind),
		cmocka_unit_test(test_none_reads_nothing),
		cmocka_unit_test(test_password_read_once),
		cmocka_unit_test(test_token_per_connection),
		cmocka_unit_test(test_command_fails),
		cmocka_unit_test(test_relay_params),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
