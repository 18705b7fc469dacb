/*
 * fuzz_config.c - libFuzzer target for src/config.c (config_load).
 *
 * The input is written to a memfd (mode 0600, so "password" lines are
 * allowed) and loaded through its /proc/self/fd/N path; config_free
 * follows either way. Checks:
 *  - on error: the text is NUL-terminated, starts with the file name, and
 *    never echoes the input: after the "FILE:LINE: " prefix and a
 *    "KEY: " naming a known key, and once the fixed texts of config.c
 *    (its string literals, split at printf conversions, taken from
 *    src/config.c at build time into build/fuzz/config_strings.h) are
 *    masked, no run of VALUE_ECHO_MIN bytes of the reason may appear in
 *    the input. (A value equal to one of config.c's own texts, such as
 *    a key name, cannot be told from the message and is not flagged.)
 *  - on success: 1..CONFIG_MAX_SMARTHOSTS hosts, each with a name and a
 *    port in 1..65535; a positive timeout; retry-min <= retry-max; not
 *    both password and password-file; the same for every account, which
 *    has senders, the default's queue, and is found by its name.
 */
#include "fuzz_common.h"

#include <sys/stat.h>

#include "config.h"
#include "config_strings.h"

#define VALUE_ECHO_MIN 12

static int cfg_fd = -1;

/* Is s[0..n) exactly one of config.c's texts (a key name, say)? */
static bool is_fixed(const char *s, size_t n)
{
	size_t i;

	for (i = 0; config_strings[i] != NULL; i++) {
		if (strlen(config_strings[i]) == n &&
		    memcmp(config_strings[i], s, n) == 0)
			return true;
	}
	return false;
}

static void check_error(const uint8_t *data, size_t size, const char *path,
                        const char *err, size_t errlen)
{
	size_t plen = strlen(path);
	const char *why, *colon;

	fuzz_check_err(err, errlen, "config_load");
	if (strncmp(err, path, plen) != 0 || err[plen] != ':')
		fuzz_fail("error [%s] does not start with the file name", err);
	/* skip "FILE:LINE: " and a "KEY: " naming one of the keys */
	why = err + plen + 1;
	while (*why >= '0' && *why <= '9')
		why++;
	if (*why == ':')
		why++;
	while (*why == ' ')
		why++;
	colon = strstr(why, ": ");
	if (colon != NULL && is_fixed(why, (size_t)(colon - why)))
		why = colon + 2;
	fuzz_check_no_echo(why, config_strings, NULL, data, size,
	                   VALUE_ECHO_MIN, "config_load");
}

static void check_config(const struct config *c);

/* Each account: a config of its own, with senders, the default's queue,
 * and no accounts of its own. */
static void check_accounts(const struct config *c)
{
	size_t i;

	for (i = 0; i < c->naccounts; i++) {
		const struct config *a = &c->accounts[i];

		check_config(a);
		if (a->nsenders == 0)
			fuzz_fail("account %zu without senders", i);
		if (a->naccounts != 0 || config_root(a) != c)
			fuzz_fail("account %zu: nested or orphaned", i);
		if ((a->queue == NULL) != (c->queue == NULL) ||
		    (a->queue != NULL && strcmp(a->queue, c->queue) != 0))
			fuzz_fail("account %zu: not the default's queue", i);
		if (config_account_named(c, a->account) != a)
			fuzz_fail("account %zu: not found by its name", i);
	}
}

static void check_config(const struct config *c)
{
	size_t i;

	if (c->nhosts < 1 || c->nhosts > CONFIG_MAX_SMARTHOSTS)
		fuzz_fail("success with %zu smarthosts", c->nhosts);
	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i].host == NULL || c->hosts[i].host[0] == '\0')
			fuzz_fail("smarthost %zu without a name", i);
		if (c->hosts[i].port < 1 || c->hosts[i].port > 65535)
			fuzz_fail("smarthost %zu port %d", i, c->hosts[i].port);
	}
	if (c->timeout < 1)
		fuzz_fail("timeout %ld", c->timeout);
	if (c->retry_min > c->retry_max)
		fuzz_fail("retry-min %ld > retry-max %ld", c->retry_min,
		          c->retry_max);
	if (c->password != NULL && c->password_file != NULL)
		fuzz_fail("password and password-file both set");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char path[64];
	char err[1024];
	int fd = fuzz_memfd(&cfg_fd, "fuzz-config");

	if (fchmod(fd, 0600) != 0)
		fuzz_fail("fchmod memfd: %s", strerror(errno));
	fuzz_write_all(fd, data, size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(err, 'x', sizeof(err));
	if (config_load(path, &cfg, err, sizeof(err)) == 0) {
		check_config(&cfg);
		check_accounts(&cfg);
	}
	else
		check_error(data, size, path, err, sizeof(err));
	config_free(&cfg);
	return 0;
}
