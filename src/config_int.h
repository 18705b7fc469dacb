/*
 * config_int.h - what the configuration reader (config.c) and its key
 * table (config_keys.c) share; nothing else includes it.
 */
#ifndef OUTBOX_CONFIG_INT_H
#define OUTBOX_CONFIG_INT_H

#include "config.h"

struct parse_ctx {
	struct config *cfg;     /* where keys go: the default or an account */
	const char *file;
	int line;
	char *err;
	size_t errlen;
	char env_name[64];      /* the OUTBOX_* variable being read */
	struct config *root;    /* the default account */
};

typedef int (*key_fn)(struct parse_ctx *p, const char *key, const char *val);

struct config_key {
	const char *name;
	key_fn fn;      /* checks the value and stores it in p->cfg */
};

/* Every key, in the order config_show_sources lists them; CONFIG_NKEYS
 * of them (at most CONFIG_MAX_KEYS: cfg->key_line has a slot each). */
extern const struct config_key CONFIG_KEYS[];
extern const size_t CONFIG_NKEYS;

/* Set p->err to "FILE[:LINE]: [KEY: ]why" and return -1. */
int config_bad(struct parse_ctx *p, const char *key, const char *why);

/* The smarthost key's parser: one host appended to p->cfg->hosts (the
 * environment's list is split by config.c first). */
int config_key_smarthost(struct parse_ctx *p, const char *key,
                         const char *val);

/* Defaults for a fresh config (zeroed first): 0, or -1 out of memory. */
int config_set_defaults(struct config *cfg, const char *path);

/* config_accounts.c: "account NAME" starts a section (p->cfg becomes
 * the new account); "senders" lists who uses it. */
int config_account_begin(struct parse_ctx *p, const char *val);
int config_key_senders(struct parse_ctx *p, const char *key,
                       const char *val);

/* Is key host-wide (queue, log, domain...): only outside any account? */
bool config_key_global(const char *key);

/* Once every account is checked: give each the default's host-wide
 * keys, and refuse an account no sender uses. 0, or -1 with p->err. */
int config_accounts_finish(struct parse_ctx *p);

/* Free the named accounts of the default cfg. */
void config_accounts_free(struct config *cfg);

#endif
