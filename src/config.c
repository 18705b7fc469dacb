/*
 * config.c - the configuration file (see config.h, outbox.conf(5)).
 *
 * Each line is split into key and value, the key is looked up in a table,
 * and the table entry's parser stores the value. Error messages name the
 * file, the line and the key, never the value: a config may hold a secret,
 * and a file given with -C may be one the caller must not read.
 */
#define _XOPEN_SOURCE 700
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds_preset.h"
#include "util.h"

#define DEFAULT_QUEUE "/var/spool/outbox"
#define DEFAULT_TIMEOUT 60

/*
 * Split a line into key and value, in place. Handles the quoted value
 * form and trailing comments. Returns 1 for a key/value pair, 0 for a
 * blank or comment line, -1 on a syntax error (reason in *why).
 */
static int split_line(char *line, char **key, char **val, const char **why)
{
	char *s = line, *v, *out;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	*key = s;
	while (*s != '\0' && *s != ' ' && *s != '\t')
		s++;
	if (*s != '\0')
		*s++ = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	*val = s;
	if (*s == '"') {
		for (v = s + 1, out = s; *v != '"'; v++) {
			if (*v == '\\' && (v[1] == '"' || v[1] == '\\'))
				v++;
			if (*v == '\0') {
				*why = "unterminated quoted value";
				return -1;
			}
			*out++ = *v;
		}
		*out = '\0';
		for (v++; *v == ' ' || *v == '\t'; v++)
			;
		if (*v != '\0' && *v != '#') {
			*why = "text after the quoted value";
			return -1;
		}
		return 1;
	}
	for (v = s; *v != '\0'; v++) {
		if (*v == '#' && (v == s || v[-1] == ' ' || v[-1] == '\t')) {
			*v = '\0';
			break;
		}
	}
	for (v = s + strlen(s); v > s && (v[-1] == ' ' || v[-1] == '\t'); v--)
		v[-1] = '\0';
	return 1;
}

static int account_begin(struct parse_ctx *p, const char *val);

static int parse_line(struct parse_ctx *p, char *line)
{
	char *key = NULL, *val = NULL;
	const char *why = NULL;
	size_t i;
	int r = split_line(line, &key, &val, &why);

	if (r < 0)
		return config_bad(p, NULL, why);
	if (r == 0)
		return 0;
	if (strcmp(key, "account") == 0)
		return account_begin(p, val);
	if (strcmp(key, "senders") == 0)
		return config_key_senders(p, key, val);
	if (p->cfg->account != NULL && config_key_global(key))
		return config_bad(p, key, "applies to every account: set it "
		           "above the first account section");
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(CONFIG_KEYS[i].name, key) == 0) {
			p->cfg->key_line[i] = p->line;
			return CONFIG_KEYS[i].fn(p, key, val);
		}
	}
	return config_bad(p, NULL, "unknown key");
}

/*
 * "account NAME": a new account's config (the built-in defaults, not
 * the keys above), where the keys that follow go (p->cfg).
 */
static int account_begin(struct parse_ctx *p, const char *val)
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

/* Free the named accounts of the default cfg. */
static void accounts_free(struct config *cfg)
{
	size_t i;

	for (i = 0; cfg->accounts != NULL && i < cfg->naccounts; i++)
		config_free(&cfg->accounts[i]);
	free(cfg->accounts);
	cfg->accounts = NULL;
	cfg->naccounts = 0;
}

/* Set by main before loading: the caller is not the user outbox runs as. */
static bool privileged_load;

void config_set_privileged(bool on)
{
	privileged_load = on;
}

/* With privileges, a file anyone but root may change is not trusted. */
static bool untrusted_owner(const struct stat *st)
{
	return file_untrusted_owner(st, privileged_load);
}

static int read_lines(struct parse_ctx *p, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0) {
		n = getline(&line, &cap, f);
		if (n < 0)
			break;
		p->line++;
		if (n > CONFIG_LINE_MAX) {
			rc = config_bad(p, NULL, "line too long");
			break;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			rc = config_bad(p, NULL, "NUL byte in line");
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		rc = parse_line(p, line);
	}
	if (rc == 0 && ferror(f))
		rc = config_bad(p, NULL, "read error");
	if (line != NULL) {
		secure_zero(line, cap);
		free(line);
	}
	return rc;
}

/* OAuth2 needs exactly one way to get a token, and a user
 * (creds_preset.c knows the grants and presets). */
static int finish_oauth(struct parse_ctx *p)
{
	char why[512];

	if (oauth_config_check(p->cfg, why, sizeof(why)) == 0)
		return 0;
	snprintf(p->err, p->errlen, "%s: %s", p->file, why);
	return -1;
}

/* Defaults and cross-key checks once the whole file is read. */
/* The CONFIG_KEYS index of key (it is in the table). */
static size_t key_index(const char *key)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS - 1; i++) {
		if (strcmp(CONFIG_KEYS[i].name, key) == 0)
			break;
	}
	return i;
}

/*
 * With privileges, a file that steers delivery (which certificates are
 * trusted, where mail for a name goes) must be root's and writable by
 * root alone, and so must the directory that holds it.
 */
static int check_trusted(struct parse_ctx *p, const char *key,
                         const char *path)
{
	char dir[4096];
	const char *slash = path ? strrchr(path, '/') : NULL;
	struct stat st;

	if (!privileged_load || path == NULL)
		return 0;
	p->line = p->cfg->key_line[key_index(key)];
	if (stat(path, &st) != 0)
		return config_bad(p, key, strerror(errno));
	if (untrusted_owner(&st)) {
		char why[4200];

		snprintf(why, sizeof(why), "%s must be owned by root and writable "
		         "only by root when outbox runs set-group-ID (chown root "
		         "%s; chmod go-w %s)", path, path, path);
		return config_bad(p, key, why);
	}
	if (slash != NULL && (size_t)(slash - path) < sizeof(dir)) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir[0] ? dir : "/", &st) == 0 && untrusted_owner(&st) &&
		    !(st.st_mode & S_ISVTX && st.st_uid == 0)) {
			char why[4200];

			snprintf(why, sizeof(why), "%s is in a directory that users "
			         "other than root can change (%s)", path,
			         dir[0] ? dir : "/");
			return config_bad(p, key, why);
		}
	}
	return 0;
}

static int finish_one(struct parse_ctx *p)
{
	struct config *cfg = p->cfg;
	size_t i;

	if (check_trusted(p, "ca-file", cfg->ca_file) != 0 ||
	    check_trusted(p, "aliases", cfg->aliases) != 0)
		return -1;

	if (cfg->nhosts == 0) {
		p->line = 0;
		snprintf(p->err, p->errlen, "%s: no smarthost configured",
		         p->file);
		return -1;
	}
	for (i = 0; i < cfg->nhosts; i++) {
		struct smarthost *h = &cfg->hosts[i];

		if (!h->tls_from_scheme)
			h->tls = cfg->tls;
		else if (h->tls == TLS_STARTTLS && cfg->tls == TLS_OFF)
			h->tls = TLS_OFF;
		else if (h->tls == TLS_STARTTLS && cfg->tls == TLS_SMTPS) {
			p->line = h->line;
			return config_bad(p, "smarthost", "smtp:// conflicts with "
			           "tls smtps (write smtps://)");
		}
		if (h->port == 0)
			h->port = h->tls == TLS_SMTPS ? 465 :
			          h->tls == TLS_OFF ? 25 : 587;
	}
	if (cfg->retry_min > cfg->retry_max) {
		snprintf(p->err, p->errlen, "%s: retry-min is longer than "
		         "retry-max", p->file);
		return -1;
	}
	if ((cfg->password != NULL) + (cfg->password_file != NULL) +
	    (cfg->password_command != NULL) > 1) {
		snprintf(p->err, p->errlen, "%s: set only one of password, "
		         "password-file and password-command", p->file);
		return -1;
	}
	return finish_oauth(p);
}

/* The checks of finish_one for the default and then each account (whose
 * errors name the line of its "account" key: "FILE:LINE: account: ..."). */
static int finish(struct parse_ctx *p)
{
	struct config *root = p->root;
	const char *file = p->file;
	char where[4200];
	size_t i;
	int rc;

	p->cfg = root;
	rc = finish_one(p);
	for (i = 0; rc == 0 && i < root->naccounts; i++) {
		snprintf(where, sizeof(where), "%s:%d: account", file,
		         root->accounts[i].account_line);
		p->file = where;
		p->cfg = &root->accounts[i];
		rc = finish_one(p);
	}
	p->file = file;
	p->cfg = root;
	if (rc == 0)
		rc = config_accounts_finish(p);
	return rc;
}

/* Does any account of cfg hold an inline password? */
static bool inline_password(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->naccounts; i++) {
		if (cfg->accounts[i].password != NULL)
			return true;
	}
	return cfg->password != NULL;
}

int config_set_defaults(struct config *cfg, const char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tls = TLS_STARTTLS;
	cfg->tls_verify = true;
	cfg->qualify_headers = true;
	cfg->timeout = DEFAULT_TIMEOUT;
	cfg->queue_lifetime = 5 * 86400;
	cfg->failed_lifetime = 30 * 86400;
	cfg->max_connections = 2;
	cfg->retry_min = 60;
	cfg->retry_max = 3600;
	cfg->path = strdup(path);
	cfg->queue = strdup(DEFAULT_QUEUE);
	cfg->log = strdup("syslog");
	if (cfg->path == NULL || cfg->queue == NULL || cfg->log == NULL)
		return -1;
	return 0;
}

/* Read the file at path into cfg (defaults already set); no checks. */
static int load_file(struct parse_ctx *p, const char *path)
{
	struct config *cfg = p->cfg;
	struct stat st;
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(p->err, p->errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(p->err, p->errlen, "%s: not a regular file", path);
		fclose(f);
		return -1;
	}
	if (untrusted_owner(&st)) {
		snprintf(p->err, p->errlen, "%s: must be owned by root and "
		         "writable only by root", path);
		fclose(f);
		return -1;
	}
	rc = read_lines(p, f);
	fclose(f);
	if (rc == 0 && inline_password(cfg) && file_readable_by_others(&st)) {
		snprintf(p->err, p->errlen, "%s: holds a password but other "
		         "users can read it (chmod 600, or use password-file)",
		         path);
		rc = -1;
	}
	return rc;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct parse_ctx p = { cfg, path, 0, err, errlen, "", cfg };
	int rc;

	if (config_set_defaults(cfg, path) != 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	rc = load_file(&p, path);
	if (rc == 0)
		rc = finish(&p);
	return rc;
}

/* OUTBOX_PASSWORD_FILE for "password-file". */
static void env_name(char *buf, size_t n, const char *key)
{
	size_t i, o = (size_t)snprintf(buf, n, "OUTBOX_");

	for (i = 0; key[i] != '\0' && o + 1 < n; i++)
		buf[o++] = key[i] == '-' ? '_' : (char)toupper((unsigned char)key[i]);
	buf[o] = '\0';
}

bool config_env_present(void)
{
	char name[64];
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		env_name(name, sizeof(name), CONFIG_KEYS[i].name);
		if (getenv(name) != NULL)
			return true;
	}
	return false;
}

/* OUTBOX_SMARTHOST: one or more hosts, replacing the file's. */
static int env_smarthosts(struct parse_ctx *p, const char *val)
{
	char host[CONFIG_LINE_MAX];
	size_t i;

	for (i = 0; i < p->cfg->nhosts; i++)
		free(p->cfg->hosts[i].host);
	p->cfg->nhosts = 0;
	while (*val != '\0') {
		size_t n = strcspn(val, " \t,");

		if (n > 0 && n < sizeof(host)) {
			memcpy(host, val, n);
			host[n] = '\0';
			if (config_key_smarthost(p, "smarthost", host) != 0)
				return -1;
		}
		val += n;
		val += strspn(val, " \t,");
	}
	return 0;
}

/* Is any OUTBOX_* variable set? (Most processes have none: then the
 * lookup of every key's variable is skipped.) */
static bool any_outbox_env(void)
{
	extern char **environ;
	char **e;

	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "OUTBOX_", 7) == 0)
			return true;
	}
	return false;
}

static int apply_env(struct parse_ctx *p)
{
	char name[64], line[CONFIG_LINE_MAX];
	size_t i;

	if (!any_outbox_env())
		return 0;
	for (i = 0; i < CONFIG_NKEYS; i++) {
		const char *val;
		int rc;

		env_name(name, sizeof(name), CONFIG_KEYS[i].name);
		val = getenv(name);
		if (val == NULL)
			continue;
		str_copy(p->env_name, sizeof(p->env_name), name);
		p->file = p->env_name;  /* errors name the variable */
		if (strlen(val) >= sizeof(line))
			return config_bad(p, NULL, "value too long");
		snprintf(line, sizeof(line), "%s", val);
		if (CONFIG_KEYS[i].fn == config_key_smarthost)
			rc = env_smarthosts(p, line);
		else
			rc = CONFIG_KEYS[i].fn(p, CONFIG_KEYS[i].name, line);
		if (rc != 0)
			return -1;
		p->cfg->key_line[i] = -1;
	}
	return 0;
}

int config_load_env(const char *path, struct config *cfg, char *err,
                    size_t errlen)
{
	struct parse_ctx p = { cfg, path ? path : "environment", 0, err,
	                       errlen, "", cfg };
	int rc = 0;

	if (config_set_defaults(cfg, path ? path : "(environment)") != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (path != NULL)
		rc = load_file(&p, path);
	p.line = 0;
	p.cfg = cfg;            /* the variables set the default account */
	if (rc == 0)
		rc = apply_env(&p);
	p.file = path ? path : "environment (no config file)";
	if (rc == 0)
		rc = finish(&p);
	return rc;
}

static void show_sources(const struct config *cfg, const char *acct,
                         FILE *out)
{
	char name[64];
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (cfg->key_line[i] == 0)
			continue;
		env_name(name, sizeof(name), CONFIG_KEYS[i].name);
		if (cfg->key_line[i] < 0)
			fprintf(out, "outbox: config: %s from the environment (%s)\n",
			        CONFIG_KEYS[i].name, name);
		else
			fprintf(out, "outbox: config: %s%s%s%s from %s line %d\n",
			        acct ? "account " : "", acct ? acct : "",
			        acct ? ": " : "", CONFIG_KEYS[i].name, cfg->path,
			        cfg->key_line[i]);
	}
}

void config_show_sources(const struct config *cfg, FILE *out)
{
	size_t i;

	show_sources(cfg, NULL, out);
	for (i = 0; i < cfg->naccounts; i++)
		show_sources(&cfg->accounts[i], cfg->accounts[i].account, out);
}

static void free_secret(char *s)
{
	if (s != NULL) {
		secure_zero(s, strlen(s));
		free(s);
	}
}

void config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nhosts; i++)
		free(cfg->hosts[i].host);
	free(cfg->path);
	free(cfg->user);
	free_secret(cfg->password);
	free(cfg->password_file);
	free(cfg->auth);
	free(cfg->ca_file);
	free(cfg->helo);
	free(cfg->from);
	free(cfg->domain);
	free(cfg->queue);
	free(cfg->log);
	free(cfg->aliases);
	free(cfg->proxy);
	free(cfg->allow_from);
	free(cfg->password_command);
	free(cfg->token_command);
	free(cfg->oauth_token_url);
	free(cfg->oauth_client_id);
	free(cfg->oauth_client_secret_file);
	free(cfg->oauth_refresh_token_file);
	free(cfg->oauth_tenant);
	free(cfg->oauth_scope);
	free(cfg->oauth_device_url);
	free(cfg->oauth_auth_url);
	free(cfg->metrics_file);
	free(cfg->account);
	for (i = 0; i < cfg->nsenders; i++)
		free(cfg->senders[i]);
	accounts_free(cfg);
	memset(cfg, 0, sizeof(*cfg));
}
