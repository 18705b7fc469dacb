/*
 * test_config.c - unit tests for src/config.c (cmocka).
 *
 * Each test writes its config files into a private mkdtemp() directory
 * (mode 0600 unless the test is about permissions). Table-driven where it
 * fits: a config text and the values expected from it, or the line the
 * error must name.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "creds.h"

/* Every value in an error row contains this; no error may repeat it. */
#define SECRET "s3cr3tish"

#define MAXFILES 512

static char dir[64];
static char *files[MAXFILES];
static size_t nfiles;

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 30)
		tmp = "/tmp";
	if (snprintf(dir, sizeof(dir), "%s/test_config.XXXXXX", tmp) >=
	    (int)sizeof(dir))
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < nfiles; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	nfiles = 0;
	return rmdir(dir);
}

/* Write len bytes of text to a new file in dir with mode; its path. */
static const char *write_file_len(const char *text, size_t len, mode_t mode)
{
	char path[128];
	int fd;

	assert_true(nfiles < MAXFILES);
	snprintf(path, sizeof(path), "%s/f%zu.conf", dir, nfiles);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	files[nfiles] = strdup(path);
	assert_non_null(files[nfiles]);
	return files[nfiles++];
}

static const char *write_file(const char *text, mode_t mode)
{
	return write_file_len(text, strlen(text), mode);
}

/* Load text (written at 0600); must succeed. */
static void load_ok(const char *text, struct config *cfg)
{
	const char *path = write_file(text, 0600);
	char err[512];
	int rc;

	memset(err, 0, sizeof(err));
	rc = config_load(path, cfg, err, sizeof(err));
	if (rc != 0)
		fail_msg("config <%s>: unexpected error '%s'", text, err);
}

/*
 * Load len bytes of text; must fail. line > 0: the error starts with
 * "PATH:LINE:"; line == 0: it starts with "PATH:". It must contain frag
 * (when not NULL) and never SECRET.
 */
static void load_err_len(const char *text, size_t len, mode_t mode, int line,
                         const char *frag)
{
	const char *path = write_file_len(text, len, mode);
	struct config cfg;
	char err[512], prefix[256];
	int rc;

	memset(err, 0, sizeof(err));
	rc = config_load(path, &cfg, err, sizeof(err));
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d:", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s:", path);
	if (rc != -1)
		fail_msg("config <%.60s>: want -1 got %d", text, rc);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("config <%.60s>: want error starting '%s', got '%s'",
		         text, prefix, err);
	if (line == 0 && isdigit((unsigned char)err[strlen(prefix)]))
		fail_msg("config <%.60s>: want no line number in '%s'", text,
		         err);
	if (frag != NULL && strstr(err, frag) == NULL)
		fail_msg("config <%.60s>: want '%s' in '%s'", text, frag, err);
	if (strstr(err, SECRET) != NULL)
		fail_msg("config <%.60s>: error repeats the value: '%s'", text,
		         err);
	if (strchr(err, '\n') != NULL)
		fail_msg("config <%.60s>: error is not one line: '%s'", text, err);
	config_free(&cfg);
}

static void load_err(const char *text, int line, const char *frag)
{
	load_err_len(text, strlen(text), 0600, line, frag);
}

/* ---- smarthost forms ----------------------------------------------------- */

struct host_row {
	const char *text;
	const char *host;
	int port;
	enum tls_mode tls;
	bool from_scheme;
};

static const struct host_row host_rows[] = {
	{ "smarthost mail.example.com\n", "mail.example.com", 587,
	  TLS_STARTTLS, false },
	{ "smarthost mail.example.com:2525\n", "mail.example.com", 2525,
	  TLS_STARTTLS, false },
	{ "smarthost mail.example.com:1\n", "mail.example.com", 1,
	  TLS_STARTTLS, false },
	{ "smarthost mail.example.com:65535\n", "mail.example.com", 65535,
	  TLS_STARTTLS, false },
	{ "smarthost 192.0.2.7:25\n", "192.0.2.7", 25, TLS_STARTTLS, false },
	{ "smarthost [::1]:2525\n", "::1", 2525, TLS_STARTTLS, false },
	{ "smarthost [2001:db8::1]\n", "2001:db8::1", 587, TLS_STARTTLS, false },
	{ "smarthost smtp://h.example:25\n", "h.example", 25, TLS_STARTTLS,
	  true },
	{ "smarthost smtp://h.example\n", "h.example", 587, TLS_STARTTLS, true },
	{ "smarthost smtp://h.example/\n", "h.example", 587, TLS_STARTTLS,
	  true },
	{ "smarthost smtps://h.example\n", "h.example", 465, TLS_SMTPS, true },
	{ "smarthost smtps://h.example:4650\n", "h.example", 4650, TLS_SMTPS,
	  true },
	{ "smarthost smtps://[::1]:4465\n", "::1", 4465, TLS_SMTPS, true },
	/* the tls key picks the default port of a plain host */
	{ "smarthost h.example\ntls starttls\n", "h.example", 587,
	  TLS_STARTTLS, false },
	{ "smarthost h.example\ntls smtps\n", "h.example", 465, TLS_SMTPS,
	  false },
	{ "smarthost h.example\ntls off\n", "h.example", 25, TLS_OFF, false },
	{ "tls off\nsmarthost h.example\n", "h.example", 25, TLS_OFF, false },
	{ "tls off\nsmarthost h.example:587\n", "h.example", 587, TLS_OFF,
	  false },
	/* a scheme wins over the tls key; smtp:// follows "tls off" */
	{ "tls smtps\nsmarthost smtps://h.example\n", "h.example", 465,
	  TLS_SMTPS, true },
	{ "tls off\nsmarthost smtps://h.example\n", "h.example", 465,
	  TLS_SMTPS, true },
	{ "tls starttls\nsmarthost smtps://h.example\n", "h.example", 465,
	  TLS_SMTPS, true },
	{ "tls off\nsmarthost smtp://h.example\n", "h.example", 25, TLS_OFF,
	  true },
};

static void test_smarthost_forms(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(host_rows) / sizeof(host_rows[0]); i++) {
		const struct host_row *r = &host_rows[i];
		struct config cfg;

		load_ok(r->text, &cfg);
		if (cfg.nhosts != 1)
			fail_msg("row %zu: want 1 host, got %zu", i, cfg.nhosts);
		if (strcmp(cfg.hosts[0].host, r->host) != 0 ||
		    cfg.hosts[0].port != r->port || cfg.hosts[0].tls != r->tls ||
		    cfg.hosts[0].tls_from_scheme != r->from_scheme)
			fail_msg("row %zu <%s>: want %s %d tls=%d scheme=%d, got "
			         "%s %d tls=%d scheme=%d", i, r->text, r->host,
			         r->port, (int)r->tls, r->from_scheme,
			         cfg.hosts[0].host, cfg.hosts[0].port,
			         (int)cfg.hosts[0].tls,
			         cfg.hosts[0].tls_from_scheme);
		config_free(&cfg);
	}
}

static void test_smarthost_order(void **state)
{
	struct config cfg;

	(void)state;
	load_ok("# relays\n"
	        "smarthost one.example\n"
	        "smarthost smtps://two.example\n"
	        "\n"
	        "smarthost [::1]:2525\n"
	        "tls off\n",
	        &cfg);
	assert_int_equal(cfg.nhosts, 3);
	assert_string_equal(cfg.hosts[0].host, "one.example");
	assert_int_equal(cfg.hosts[0].port, 25);
	assert_int_equal(cfg.hosts[0].tls, TLS_OFF);
	assert_int_equal(cfg.hosts[0].line, 2);
	assert_string_equal(cfg.hosts[1].host, "two.example");
	assert_int_equal(cfg.hosts[1].port, 465);
	assert_int_equal(cfg.hosts[1].tls, TLS_SMTPS);
	assert_int_equal(cfg.hosts[1].line, 3);
	assert_string_equal(cfg.hosts[2].host, "::1");
	assert_int_equal(cfg.hosts[2].port, 2525);
	assert_int_equal(cfg.hosts[2].tls, TLS_OFF);
	assert_int_equal(cfg.hosts[2].line, 5);
	assert_int_equal(cfg.tls, TLS_OFF);
	config_free(&cfg);
}

static void test_eight_smarthosts(void **state)
{
	char text[512];
	size_t o = 0;
	struct config cfg;
	int i;

	(void)state;
	for (i = 0; i < CONFIG_MAX_SMARTHOSTS; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		                      "smarthost h%d.example:%d\n", i, 2500 + i);
	load_ok(text, &cfg);
	assert_int_equal(cfg.nhosts, CONFIG_MAX_SMARTHOSTS);
	for (i = 0; i < CONFIG_MAX_SMARTHOSTS; i++) {
		char want[32];

		snprintf(want, sizeof(want), "h%d.example", i);
		assert_string_equal(cfg.hosts[i].host, want);
		assert_int_equal(cfg.hosts[i].port, 2500 + i);
		assert_int_equal(cfg.hosts[i].line, i + 1);
	}
	config_free(&cfg);
	/* a ninth is an error on its line */
	snprintf(text + o, sizeof(text) - o, "smarthost " SECRET ".example\n");
	load_err(text, CONFIG_MAX_SMARTHOSTS + 1, NULL);
}

/* ---- every key ------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct config cfg;
	const char *path = write_file("smarthost relay.example\n", 0600);
	char err[256];

	(void)state;
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.nhosts, 1);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_true(cfg.tls_verify);
	assert_int_equal(cfg.from_header, FROM_HEADER_LOCAL);
	assert_true(cfg.qualify_headers);
	assert_null(cfg.user);
	assert_null(cfg.password);
	assert_null(cfg.password_file);
	assert_null(cfg.auth);
	assert_null(cfg.ca_file);
	assert_null(cfg.helo);
	assert_null(cfg.from);
	assert_null(cfg.domain);
	assert_non_null(cfg.queue);
	assert_int_equal(cfg.queue[0], '/');
	assert_non_null(cfg.log);
	assert_true(cfg.timeout > 0);
	config_free(&cfg);
}

static void test_all_keys(void **state)
{
	struct config cfg;

	(void)state;
	load_ok("smarthost mail.example.com:587\n"
	        "tls starttls\n"
	        "tls-verify off\n"
	        "user relay@example.com\n"
	        "password \"pa ss # \\\"q\\\" \\\\ end\"\n"
	        "auth LOGIN\n"
	        "ca-file /etc/ssl/certs/ca-certificates.crt\n"
	        "helo host.example.com\n"
	        "from cron@host.example.com\n"
	        "domain example.com\n"
	        "queue /var/spool/outbox-test\n"
	        "timeout 2m\n"
	        "log stderr\n",
	        &cfg);
	assert_int_equal(cfg.nhosts, 1);
	assert_string_equal(cfg.hosts[0].host, "mail.example.com");
	assert_int_equal(cfg.hosts[0].port, 587);
	assert_int_equal(cfg.tls, TLS_STARTTLS);
	assert_false(cfg.tls_verify);
	assert_string_equal(cfg.user, "relay@example.com");
	assert_string_equal(cfg.password, "pa ss # \"q\" \\ end");
	assert_null(cfg.password_file);
	assert_string_equal(cfg.auth, "LOGIN");
	assert_string_equal(cfg.ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_string_equal(cfg.helo, "host.example.com");
	assert_string_equal(cfg.from, "cron@host.example.com");
	assert_string_equal(cfg.domain, "example.com");
	assert_string_equal(cfg.queue, "/var/spool/outbox-test");
	assert_int_equal(cfg.timeout, 120);
	assert_string_equal(cfg.log, "stderr");
	config_free(&cfg);
	/* config_free zeroes; a second call and NULL are fine */
	assert_null(cfg.user);
	assert_int_equal(cfg.nhosts, 0);
	config_free(&cfg);
	config_free(NULL);
}

/* One key after a smarthost line: the field it sets, as a string. */
struct key_row {
	const char *line;
	const char *field;  /* which field to look at */
	const char *want;   /* NULL: the field is NULL */
};

static const char *field_of(const struct config *c, const char *f)
{
	if (strcmp(f, "user") == 0) return c->user;
	if (strcmp(f, "password") == 0) return c->password;
	if (strcmp(f, "password-file") == 0) return c->password_file;
	if (strcmp(f, "auth") == 0) return c->auth;
	if (strcmp(f, "ca-file") == 0) return c->ca_file;
	if (strcmp(f, "helo") == 0) return c->helo;
	if (strcmp(f, "from") == 0) return c->from;
	if (strcmp(f, "domain") == 0) return c->domain;
	if (strcmp(f, "queue") == 0) return c->queue;
	if (strcmp(f, "log") == 0) return c->log;
	if (strcmp(f, "metrics-file") == 0) return c->metrics_file;
	fail_msg("no field %s", f);
	return NULL;
}

static const struct key_row key_rows[] = {
	{ "user relay@example.com", "user", "relay@example.com" },
	{ "user \"John Doe\"", "user", "John Doe" },
	{ "password hunter2", "password", "hunter2" },
	{ "password abc#def", "password", "abc#def" },
	{ "password abc #def", "password", "abc" },
	{ "password \"with space\"", "password", "with space" },
	{ "password \"a#b\"", "password", "a#b" },
	{ "password \"#x\" # comment", "password", "#x" },
	{ "password \"q\\\"uote\"", "password", "q\"uote" },
	{ "password \"back\\\\slash\"", "password", "back\\slash" },
	{ "password-file /etc/outbox.secret", "password-file",
	  "/etc/outbox.secret" },
	{ "auth auto", "auth", NULL },
	{ "auth plain", "auth", "PLAIN" },
	{ "auth PLAIN", "auth", "PLAIN" },
	{ "auth login", "auth", "LOGIN" },
	{ "auth LOGIN", "auth", "LOGIN" },
	{ "auth LoGiN", "auth", "LOGIN" },
	{ "auth cram-md5", "auth", "CRAM-MD5" },
	{ "auth plain\nauth auto", "auth", NULL },
	{ "ca-file /etc/ssl/certs/ca-certificates.crt", "ca-file",
	  "/etc/ssl/certs/ca-certificates.crt" },
	{ "helo host.example.com", "helo", "host.example.com" },
	{ "helo [192.0.2.1]", "helo", "[192.0.2.1]" },
	{ "helo \"quoted.example\" # comment", "helo", "quoted.example" },
	{ "from cron@host.example.com", "from", "cron@host.example.com" },
	{ "domain example.com", "domain", "example.com" },
	{ "queue /var/spool/outbox", "queue", "/var/spool/outbox" },
	{ "queue /tmp/q # trailing", "queue", "/tmp/q" },
	{ "queue off", "queue", NULL },
	{ "queue /a\nqueue off", "queue", NULL },
	{ "log syslog", "log", "syslog" },
	{ "log stderr", "log", "stderr" },
	{ "log /var/log/outbox.log", "log", "/var/log/outbox.log" },
	{ "queue off", "metrics-file", NULL },
	{ "metrics-file /var/lib/node-exporter/outbox.prom", "metrics-file",
	  "/var/lib/node-exporter/outbox.prom" },
};

static void test_keys(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key_rows) / sizeof(key_rows[0]); i++) {
		const struct key_row *r = &key_rows[i];
		char text[512];
		struct config cfg;
		const char *got;

		snprintf(text, sizeof(text), "smarthost h.example\n%s\n", r->line);
		load_ok(text, &cfg);
		got = field_of(&cfg, r->field);
		if (r->want == NULL && got != NULL)
			fail_msg("row %zu <%s>: want NULL got '%s'", i, r->line, got);
		if (r->want != NULL && (got == NULL || strcmp(got, r->want) != 0))
			fail_msg("row %zu <%s>: want '%s' got '%s'", i, r->line,
			         r->want, got != NULL ? got : "(null)");
		config_free(&cfg);
	}
}

struct num_row {
	const char *line;
	long timeout;
	int tls;            /* -1: do not check */
	int tls_verify;     /* -1: do not check */
};

static const struct num_row num_rows[] = {
	{ "timeout 30s", 30, -1, -1 },
	{ "timeout 2m", 120, -1, -1 },
	{ "timeout 90", 90, -1, -1 },
	{ "timeout 1", 1, -1, -1 },
	{ "timeout 1h", 3600, -1, -1 },
	{ "tls starttls", -1, TLS_STARTTLS, -1 },
	{ "tls smtps", -1, TLS_SMTPS, -1 },
	{ "tls off", -1, TLS_OFF, -1 },
	{ "tls off\ntls starttls", -1, TLS_STARTTLS, -1 },
	{ "tls-verify on", -1, -1, 1 },
	{ "tls-verify off", -1, -1, 0 },
	{ "tls-verify off\ntls-verify on", -1, -1, 1 },
};

static void test_numeric_and_enum_keys(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(num_rows) / sizeof(num_rows[0]); i++) {
		const struct num_row *r = &num_rows[i];
		char text[256];
		struct config cfg;

		snprintf(text, sizeof(text), "smarthost h.example\n%s\n", r->line);
		load_ok(text, &cfg);
		if (r->timeout >= 0 && cfg.timeout != r->timeout)
			fail_msg("row %zu <%s>: timeout want %ld got %ld", i, r->line,
			         r->timeout, cfg.timeout);
		if (r->tls >= 0 && (int)cfg.tls != r->tls)
			fail_msg("row %zu <%s>: tls want %d got %d", i, r->line,
			         r->tls, (int)cfg.tls);
		if (r->tls_verify >= 0 && (int)cfg.tls_verify != r->tls_verify)
			fail_msg("row %zu <%s>: tls-verify want %d got %d", i,
			         r->line, r->tls_verify, (int)cfg.tls_verify);

		config_free(&cfg);
	}
}

/* from-header and qualify-headers (issue 19) */
static void test_header_keys(void **state)
{
	static const struct {
		const char *line;
		enum from_header from_header;
		bool qualify;
	} rows[] = {
		{ "", FROM_HEADER_LOCAL, true },
		{ "from-header keep", FROM_HEADER_KEEP, true },
		{ "from-header local", FROM_HEADER_LOCAL, true },
		{ "from-header always", FROM_HEADER_ALWAYS, true },
		{ "from-header always\nfrom-header keep", FROM_HEADER_KEEP, true },
		{ "qualify-headers off", FROM_HEADER_LOCAL, false },
		{ "qualify-headers no\nqualify-headers yes", FROM_HEADER_LOCAL,
		  true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char text[256];
		struct config cfg;

		snprintf(text, sizeof(text), "smarthost h.example\n%s\n",
		         rows[i].line);
		load_ok(text, &cfg);
		if (cfg.from_header != rows[i].from_header ||
		    cfg.qualify_headers != rows[i].qualify)
			fail_msg("row %zu <%s>: from-header %d qualify-headers %d", i,
			         rows[i].line, (int)cfg.from_header,
			         (int)cfg.qualify_headers);
		config_free(&cfg);
	}
}

/* queue-lifetime (DESIGN.md section 4): a duration, like timeout. */
static void test_queue_lifetime(void **state)
{
	struct config cfg;

	(void)state;
	load_ok("smarthost h.example\nqueue-lifetime 5d\n", &cfg);
	assert_int_equal(cfg.queue_lifetime, 5L * 86400);
	config_free(&cfg);
	load_ok("smarthost h.example\nqueue-lifetime 36h\n", &cfg);
	assert_int_equal(cfg.queue_lifetime, 36L * 3600);
	config_free(&cfg);
	load_err("smarthost h.example\nqueue-lifetime 0\n", 2, NULL);
	load_err("smarthost h.example\nqueue-lifetime " SECRET "\n", 2, NULL);
}

/* ---- syntax: comments, blank lines, CRLF, whitespace -------------------- */

static void test_comments_blank_crlf(void **state)
{
	struct config cfg;

	(void)state;
	load_ok("# outbox.conf\r\n"
	        "\r\n"
	        "   \r\n"
	        "\t# indented comment\r\n"
	        "smarthost relay.example:2525   # the relay\r\n"
	        "  helo\t\tme.example\t\r\n"
	        "from root@me.example # who\r\n"
	        "user \"u ser\"   # quoted then comment\r\n"
	        "domain me.example#not-a-comment\r\n"
	        "# last line without newline",
	        &cfg);
	assert_int_equal(cfg.nhosts, 1);
	assert_string_equal(cfg.hosts[0].host, "relay.example");
	assert_int_equal(cfg.hosts[0].port, 2525);
	assert_int_equal(cfg.hosts[0].line, 5);
	assert_string_equal(cfg.helo, "me.example");
	assert_string_equal(cfg.from, "root@me.example");
	assert_string_equal(cfg.user, "u ser");
	assert_string_equal(cfg.domain, "me.example#not-a-comment");
	config_free(&cfg);

	/* the last line needs no newline */
	load_ok("smarthost last.example", &cfg);
	assert_string_equal(cfg.hosts[0].host, "last.example");
	config_free(&cfg);
}

/* A line of 4000 bytes is fine (under CONFIG_LINE_MAX). */
static void test_long_line_ok(void **state)
{
	size_t n = 4000;
	char *text = malloc(n + 64);
	struct config cfg;

	(void)state;
	assert_non_null(text);
	memcpy(text, "smarthost h.example\nuser ", 25);
	memset(text + 25, 'u', n - 5);
	memcpy(text + 25 + n - 5, "\n", 2);
	load_ok(text, &cfg);
	assert_int_equal(strlen(cfg.user), n - 5);
	config_free(&cfg);
	free(text);
}

/* ---- errors ------------------------------------------------------------------ */

struct err_row {
	const char *text;
	int line;           /* 0: a whole-file error ("PATH: ...") */
	const char *frag;   /* NULL: no particular text */
};

static const struct err_row err_rows[] = {
	{ "smarthost h.example\n" SECRET " value\n", 2, "unknown" },
	{ "smarthost h.example\ntls " SECRET "\n", 2, NULL },
	{ "smarthost h.example\ntls\n", 2, NULL },
	{ "smarthost h.example\ntls-verify " SECRET "\n", 2, NULL },
	{ "smarthost h.example\nfrom-header " SECRET "\n", 2,
	  "keep, local or always" },
	{ "smarthost h.example\nqualify-headers " SECRET "\n", 2, "on or off" },
	{ "smarthost " SECRET ".example:0\n", 1, NULL },
	{ "smarthost " SECRET ".example:70000\n", 1, NULL },
	{ "smarthost " SECRET ".example:abc\n", 1, NULL },
	{ "smarthost " SECRET ".example:\n", 1, NULL },
	{ "smarthost " SECRET ".example:-25\n", 1, NULL },
	{ "smarthost " SECRET ".example:25x\n", 1, NULL },
	{ "smarthost [" SECRET "\n", 1, NULL },
	{ "smarthost [::1\n", 1, NULL },
	{ "smarthost " SECRET ".example extra\n", 1, NULL },
	{ "smarthost ftp://" SECRET ".example\n", 1, NULL },
	{ "smarthost\n", 1, NULL },
	{ "# c\n\nsmarthost h.example\ntimeout 0\n", 4, NULL },
	{ "smarthost h.example\ntimeout -1\n", 2, NULL },
	{ "smarthost h.example\ntimeout 5x\n", 2, NULL },
	{ "smarthost h.example\ntimeout " SECRET "\n", 2, NULL },
	{ "smarthost h.example\ntimeout\n", 2, NULL },
	{ "smarthost h.example\ntimeout 2h\n", 2, NULL },
	{ "smarthost h.example\nca-file " SECRET "/ca.pem\n", 2, NULL },
	{ "smarthost h.example\npassword-file " SECRET ".txt\n", 2, NULL },
	{ "smarthost h.example\nqueue " SECRET "/spool\n", 2, NULL },
	{ "smarthost h.example\nlog " SECRET ".log\n", 2, NULL },
	{ "smarthost h.example\nmetrics-file " SECRET ".prom\n", 2, NULL },
	{ "smarthost h.example\nauth " SECRET "\n", 2, NULL },
	{ "smarthost h.example\nhelo bad value!" SECRET "\n", 2, NULL },
	{ "smarthost h.example\nhelo \"" SECRET " x\"\n", 2, NULL },
	{ "smarthost h.example\nfrom a " SECRET "\n", 2, NULL },
	{ "smarthost h.example\ndomain \"\"\n", 2, NULL },
	{ "smarthost h.example\nuser\n", 2, NULL },
	{ "smarthost h.example\npassword \"" SECRET "\n", 2, "unterminated" },
	{ "smarthost h.example\npassword \"" SECRET "\\\"\n", 2, "unterminated" },
	{ "smarthost h.example\npassword \"x\" " SECRET "\n", 2, NULL },
	{ "smarthost h.example\npassword \"x\"" SECRET "\n", 2, NULL },
	/* an error after a secret line does not repeat the secret */
	{ "password " SECRET "\nsmarthost h.example\nhelo bad!x\n", 3, NULL },
	{ "password " SECRET "\nbogus\n", 2, NULL },
	/* smtp:// asks for STARTTLS, which "tls smtps" contradicts */
	{ "tls smtps\nsmarthost smtp://" SECRET ".example\n", 2, NULL },
	{ "smarthost a.example\nsmarthost smtp://" SECRET ".example:25\n"
	  "tls smtps\n", 2, NULL },
	/* whole-file errors */
	{ "", 0, "smarthost" },
	{ "# only a comment\nhelo me.example\n", 0, "smarthost" },
	{ "password " SECRET "\n", 0, "smarthost" },
};

static void test_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
		load_err(err_rows[i].text, err_rows[i].line, err_rows[i].frag);
}

/*
 * '#' after whitespace starts a comment (config.h), also right after the
 * key: "user #x" has no value, the same as "user  #x".
 */
static void test_comment_after_key(void **state)
{
	(void)state;
	load_err("smarthost h.example\nuser  #" SECRET "\n", 2, NULL);
	load_err("smarthost h.example\nuser #" SECRET "\n", 2, NULL);
}

static void test_nul_byte(void **state)
{
	static const char text[] = "smarthost h.example\npassword " SECRET
	                           "\0" SECRET "\n";

	(void)state;
	load_err_len(text, sizeof(text) - 1, 0600, 2, NULL);
}

static void test_line_too_long(void **state)
{
	size_t n = 5000;
	char *text = malloc(n + 64);
	size_t o;

	(void)state;
	assert_non_null(text);
	o = (size_t)snprintf(text, n + 64, "smarthost h.example\npassword ");
	while (o + sizeof(SECRET) < n) {
		memcpy(text + o, SECRET, sizeof(SECRET) - 1);
		o += sizeof(SECRET) - 1;
	}
	memcpy(text + o, "\n", 2);
	load_err(text, 2, NULL);
	/* the same on a line of 5000 'a' after a helo */
	o = (size_t)snprintf(text, n + 64, "smarthost h.example\nhelo ");
	memset(text + o, 'a', n);
	memcpy(text + o + n - 20, "\n", 2);
	load_err(text, 2, NULL);
	free(text);
}

static void test_missing_file(void **state)
{
	char path[128], err[512];
	struct config cfg;

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", dir);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	config_free(&cfg);
	/* a directory is not a config file */
	assert_int_equal(config_load(dir, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, dir));
	config_free(&cfg);
}

/* ---- permissions and secrets --------------------------------------------------- */

struct perm_row {
	const char *text;
	mode_t mode;
	bool ok;
};

static const struct perm_row perm_rows[] = {
	{ "smarthost h.example\npassword " SECRET "\n", 0600, true },
	{ "smarthost h.example\npassword " SECRET "\n", 0400, true },
	{ "smarthost h.example\npassword " SECRET "\n", 0644, false },
	{ "smarthost h.example\npassword " SECRET "\n", 0604, false },
	{ "smarthost h.example\npassword " SECRET "\n", 0640, false },
	/* no secret in the file: readable is fine */
	{ "smarthost h.example\n", 0644, true },
	{ "smarthost h.example\npassword-file /etc/outbox.secret\n", 0644, true },
	{ "smarthost h.example\nuser u@x\n", 0644, true },
};

static void test_password_permissions(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(perm_rows) / sizeof(perm_rows[0]); i++) {
		const struct perm_row *r = &perm_rows[i];
		struct config cfg;
		char err[512];
		const char *path;
		int rc;

		if (!r->ok) {
			load_err_len(r->text, strlen(r->text), r->mode, 0, NULL);
			continue;
		}
		path = write_file(r->text, r->mode);
		rc = config_load(path, &cfg, err, sizeof(err));
		if (rc != 0)
			fail_msg("row %zu (mode %o): unexpected error '%s'", i,
			         (unsigned)r->mode, err);
		config_free(&cfg);
	}
}

static void test_password_and_file(void **state)
{
	(void)state;
	load_err("smarthost h.example\npassword " SECRET "\n"
	         "password-file /etc/outbox.secret\n", 0, "password");
	load_err("smarthost h.example\npassword-file /etc/outbox.secret\n"
	         "password \"" SECRET "\"\n", 0, "password");
}

/* ---- creds_password ------------------------------------------------------------- */

static void test_password_inline(void **state)
{
	struct config cfg;
	char err[256];
	char *pw = NULL;

	(void)state;
	load_ok("smarthost h.example\npassword \"p w#1\"\n", &cfg);
	assert_int_equal(creds_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_non_null(pw);
	assert_string_equal(pw, "p w#1");
	assert_ptr_not_equal(pw, cfg.password);
	free(pw);
	config_free(&cfg);
}

static void test_password_none(void **state)
{
	struct config cfg;
	char err[256];
	char *pw = (char *)"junk";

	(void)state;
	load_ok("smarthost h.example\nuser u@x\n", &cfg);
	assert_int_equal(creds_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_null(pw);
	config_free(&cfg);
	/* a zeroed config, by hand */
	memset(&cfg, 0, sizeof(cfg));
	pw = (char *)"junk";
	assert_int_equal(creds_password(&cfg, &pw, err, sizeof(err)), 0);
	assert_null(pw);
}

struct pwfile_row {
	const char *content;
	size_t len;         /* 0: strlen */
	mode_t mode;
	const char *want;   /* NULL: an error */
};

static const struct pwfile_row pwfile_rows[] = {
	{ "hunter2\n", 0, 0600, "hunter2" },
	{ "hunter2", 0, 0600, "hunter2" },
	{ "hunter2\r\n", 0, 0600, "hunter2" },
	{ "first\nsecond\n", 0, 0600, "first" },
	{ "with space # and hash\n", 0, 0600, "with space # and hash" },
	{ "\"quoted\"\n", 0, 0600, "\"quoted\"" },
	{ "ro\n", 0, 0400, "ro" },
	{ "", 0, 0600, NULL },
	{ "\n", 0, 0600, NULL },
	{ "\r\n", 0, 0600, NULL },
	{ "hunter2\n", 0, 0644, NULL },
	{ "hunter2\n", 0, 0640, NULL },
	{ "hunter2\n", 0, 0604, NULL },
};

static void test_password_file(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(pwfile_rows) / sizeof(pwfile_rows[0]); i++) {
		const struct pwfile_row *r = &pwfile_rows[i];
		size_t len = r->len != 0 ? r->len : strlen(r->content);
		const char *pwpath = write_file_len(r->content, len, r->mode);
		struct config cfg;
		char text[256], err[256];
		char *pw = (char *)"junk";
		int rc;

		snprintf(text, sizeof(text),
		         "smarthost h.example\npassword-file %s\n", pwpath);
		load_ok(text, &cfg);
		assert_string_equal(cfg.password_file, pwpath);
		memset(err, 0, sizeof(err));
		rc = creds_password(&cfg, &pw, err, sizeof(err));
		if (r->want != NULL) {
			if (rc != 0 || pw == NULL || strcmp(pw, r->want) != 0)
				fail_msg("row %zu: want '%s' got rc=%d '%s' err '%s'", i,
				         r->want, rc, rc == 0 && pw ? pw : "", err);
			free(pw);
		} else {
			if (rc != -1 || err[0] == '\0')
				fail_msg("row %zu: want an error, got rc=%d", i, rc);
			if (strstr(err, "hunter2") != NULL)
				fail_msg("row %zu: error repeats the password: %s", i,
				         err);
			assert_null(pw);
		}
		config_free(&cfg);
	}
}

static void test_password_file_missing(void **state)
{
	struct config cfg;
	char path[128], err[256];
	char *pw = (char *)"junk";

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such-secret", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.password_file = path;
	memset(err, 0, sizeof(err));
	assert_int_equal(creds_password(&cfg, &pw, err, sizeof(err)), -1);
	assert_null(pw);
	assert_non_null(strstr(err, path));
	/* a directory is no password file either */
	cfg.password_file = dir;
	pw = (char *)"junk";
	assert_int_equal(creds_password(&cfg, &pw, err, sizeof(err)), -1);
	assert_null(pw);
}

/* Account selection by sender: exact addresses and *@domain, letters'
 * case ignored, first match wins, the default takes the rest. */
static void test_account_selection(void **state)
{
	static const char text[] =
		"smarthost relay.example\n"
		"queue /var/spool/q\n"
		"domain host.example\n"
		"retry-min 2m\n"
		"account app\n"
		"  senders noreply@app.example, *@shop.example\n"
		"  smarthost smtp.provider.example:465\n"
		"  tls smtps\n"
		"account mon\n"
		"  senders alerts@shop.example *@mon.example\n"
		"  senders *@host.example\n"
		"  smarthost mon.example\n";
	static const struct { const char *sender, *account; } rows[] = {
		{ "noreply@app.example", "app" },
		{ "NoReply@App.Example", "app" },
		{ "x@shop.example", "app" },
		{ "alerts@shop.example", "app" },      /* first match wins */
		{ "a@mon.example", "mon" },
		{ "root@host.example", "mon" },        /* second senders line */
		{ "other@app.example", "default" },
		{ "x@sub.shop.example", "default" },   /* not a subdomain */
		{ "x@shop.example.org", "default" },
		{ "shop.example", "default" },
		{ "", "default" },                     /* the null sender */
	};
	struct config cfg;
	const struct config *a;
	size_t i;

	(void)state;
	load_ok(text, &cfg);
	assert_int_equal(cfg.naccounts, 2);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		a = config_account_for(&cfg, rows[i].sender);
		if (strcmp(config_account_name(a), rows[i].account) != 0)
			fail_msg("sender <%s>: account %s, expected %s",
			         rows[i].sender, config_account_name(a),
			         rows[i].account);
	}
	a = config_account_named(&cfg, "app");
	assert_non_null(a);
	assert_ptr_equal(config_root(a), &cfg);
	/* its own relay keys, from the built-in defaults, not the default's */
	assert_string_equal(a->hosts[0].host, "smtp.provider.example");
	assert_int_equal(a->hosts[0].port, 465);
	assert_int_equal(a->hosts[0].tls, TLS_SMTPS);
	/* the host-wide keys copied from the default */
	assert_string_equal(a->queue, "/var/spool/q");
	assert_string_equal(a->domain, "host.example");
	assert_int_equal(a->retry_min, 120);
	assert_ptr_equal(config_account_named(&cfg, "default"), &cfg);
	assert_ptr_equal(config_account_named(&cfg, NULL), &cfg);
	assert_null(config_account_named(&cfg, "gone"));
	a = config_account_named(&cfg, "mon");
	assert_non_null(a);
	assert_int_equal(a->nsenders, 3);
	assert_int_equal(a->hosts[0].port, 587);
	config_free(&cfg);
}

/* Without accounts every sender gets the default, the config itself. */
static void test_account_none(void **state)
{
	struct config cfg;

	(void)state;
	load_ok("smarthost relay.example\n", &cfg);
	assert_int_equal(cfg.naccounts, 0);
	assert_ptr_equal(config_account_for(&cfg, "a@b.example"), &cfg);
	assert_string_equal(config_account_name(&cfg), "default");
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smarthost_forms),
		cmocka_unit_test(test_smarthost_order),
		cmocka_unit_test(test_eight_smarthosts),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_numeric_and_enum_keys),
		cmocka_unit_test(test_header_keys),
		cmocka_unit_test(test_queue_lifetime),
		cmocka_unit_test(test_comments_blank_crlf),
		cmocka_unit_test(test_long_line_ok),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_comment_after_key),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_password_permissions),
		cmocka_unit_test(test_password_and_file),
		cmocka_unit_test(test_password_inline),
		cmocka_unit_test(test_password_none),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_password_file_missing),
		cmocka_unit_test(test_account_selection),
		cmocka_unit_test(test_account_none),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
