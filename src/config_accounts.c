/*
 * config_accounts.c - named accounts in the configuration (see config.h
 * and outbox.conf(5) ACCOUNTS): the "account" and "senders" keys, which
 * keys an account may set, and the choice of an account by sender.
 *
 * An account section starts from the built-in defaults, not from the
 * keys above it: it names its own smarthost and credentials, so the
 * default account's password never goes to another account's server.
 * The host-wide keys (the queue, the log, the domain...) are set once,
 * outside every section, and copied into each account at the end.
 */
#define _XOPEN_SOURCE 700
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const char *const GLOBAL_KEYS[] = {
	"domain", "aliases", "qualify-headers", "allow-from", "queue",
	"queue-lifetime", "failed-lifetime", "retry-min", "retry-max", "log",
	"metrics-file", NULL
};

bool config_key_global(const char *key)
{
	size_t i;

	for (i = 0; GLOBAL_KEYS[i] != NULL; i++) {
		if (strcmp(GLOBAL_KEYS[i], key) == 0)
			return true;
	}
	return false;
}

bool config_account_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CONFIG_ACCOUNT_NAME_MAX ||
	    strcmp(name, "default") == 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int config_account_begin(struct parse_ctx *p, const char *val)
{
	struct config *root = p->root, *a;
	size_t i;

	if (p->line <= 0)
		return config_bad(p, "account", "accounts are set in the config "
		           "file; OUTBOX_* variables set the default account");
	if (!config_account_name_ok(val))
		return config_bad(p, "account", "expected a name of 1 to 64 "
		           "letters, digits, '.', '_' or '-' (not \"default\")");
	for (i = 0; i < root->naccounts; i++) {
		if (strcmp(root->accounts[i].account, val) == 0)
			return config_bad(p, "account", "an account of that name is "
			           "already defined");
	}
	if (root->naccounts == CONFIG_MAX_ACCOUNTS)
		return config_bad(p, "account", "too many accounts (at most 32)");
	if (root->accounts == NULL)
		root->accounts = calloc(CONFIG_MAX_ACCOUNTS,
		                        sizeof(*root->accounts));
	if (root->accounts == NULL)
		return config_bad(p, "account", "out of memory");
	a = &root->accounts[root->naccounts];
	if (config_set_defaults(a, root->path) != 0 ||
	    (a->account = strdup(val)) == NULL) {
		config_free(a);
		return config_bad(p, "account", "out of memory");
	}
	a->account_line = p->line;
	a->parent = root;
	root->naccounts++;
	p->cfg = a;
	return 0;
}

/* One pattern: local@domain, or *@domain. */
static bool pattern_ok(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '*'))
		return false;
	if (memchr(s, '*', (size_t)(at - s)) != NULL && at - s != 1)
		return false;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '<' ||
		    *s == '>' || *s == ',')
			return false;
	}
	return true;
}

int config_key_senders(struct parse_ctx *p, const char *key, const char *val)
{
	struct config *a = p->cfg;
	char pat[CONFIG_LINE_MAX];

	if (a->account == NULL)
		return config_bad(p, key, "belongs in an account section (the "
		           "default account takes every sender no account "
		           "lists)");
	while (*val != '\0') {
		size_t n = strcspn(val, " \t,");

		if (n > 0) {
			snprintf(pat, sizeof(pat), "%.*s", (int)n, val);
			if (!pattern_ok(pat))
				return config_bad(p, key, "expected addresses "
				           "(user@example.com) or *@example.com");
			if (a->nsenders == CONFIG_MAX_SENDERS)
				return config_bad(p, key, "too many (at most 32 "
				           "an account)");
			a->senders[a->nsenders] = strdup(pat);
			if (a->senders[a->nsenders] == NULL)
				return config_bad(p, key, "out of memory");
			a->nsenders++;
		}
		val += n;
		val += strspn(val, " \t,");
	}
	return 0;
}

static int copy_string(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
	return src != NULL && *dst == NULL ? -1 : 0;
}

/* The default's host-wide keys into account a. */
static int inherit(struct config *a, const struct config *root)
{
	a->qualify_headers = root->qualify_headers;
	a->queue_lifetime = root->queue_lifetime;
	a->failed_lifetime = root->failed_lifetime;
	a->retry_min = root->retry_min;
	a->retry_max = root->retry_max;
	a->privileged = root->privileged;
	return copy_string(&a->domain, root->domain) |
	       copy_string(&a->aliases, root->aliases) |
	       copy_string(&a->allow_from, root->allow_from) |
	       copy_string(&a->queue, root->queue) |
	       copy_string(&a->log, root->log) |
	       copy_string(&a->metrics_file, root->metrics_file);
}

int config_accounts_finish(struct parse_ctx *p)
{
	struct config *root = p->root;
	size_t i;

	for (i = 0; i < root->naccounts; i++) {
		struct config *a = &root->accounts[i];

		p->line = a->account_line;
		if (a->nsenders == 0)
			return config_bad(p, "account", "no senders: add a line "
			           "'senders ADDRESS...' (or *@DOMAIN) to the "
			           "section, or remove it");
		if (inherit(a, root) != 0)
			return config_bad(p, "account", "out of memory");
	}
	return 0;
}

void config_accounts_free(struct config *cfg)
{
	size_t i;

	for (i = 0; cfg->accounts != NULL && i < cfg->naccounts; i++)
		config_free(&cfg->accounts[i]);
	free(cfg->accounts);
	cfg->accounts = NULL;
	cfg->naccounts = 0;
}

const struct config *config_root(const struct config *cfg)
{
	return cfg->parent != NULL ? cfg->parent : cfg;
}

const char *config_account_name(const struct config *cfg)
{
	return cfg->account != NULL ? cfg->account : "default";
}

static bool matches(const char *pat, const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (strncmp(pat, "*@", 2) == 0)
		return at != NULL && strcasecmp(pat + 2, at + 1) == 0;
	return strcasecmp(pat, sender) == 0;
}

const struct config *config_account_for(const struct config *cfg,
                                         const char *sender)
{
	const struct config *root = config_root(cfg);
	size_t i, k;

	for (i = 0; sender != NULL && sender[0] != '\0' &&
	            i < root->naccounts; i++) {
		const struct config *a = &root->accounts[i];

		for (k = 0; k < a->nsenders; k++) {
			if (matches(a->senders[k], sender))
				return a;
		}
	}
	return root;
}

const struct config *config_account_named(const struct config *cfg,
                                          const char *name)
{
	const struct config *root = config_root(cfg);
	size_t i;

	if (name == NULL || name[0] == '\0' || strcmp(name, "default") == 0)
		return root;
	for (i = 0; i < root->naccounts; i++) {
		if (strcmp(root->accounts[i].account, name) == 0)
			return &root->accounts[i];
	}
	return NULL;
}

void config_set_privileged_flag(struct config *cfg, bool on)
{
	size_t i;

	cfg->privileged = on;
	for (i = 0; i < cfg->naccounts; i++)
		cfg->accounts[i].privileged = on;
}
