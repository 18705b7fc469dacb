/*
 * config.c - the configuration file (see config.h, outbox.conf(5)).
 *
 * Each line is split into key and value, the key is looked up in a table,
 * and the table entry's parser stores the value. Error messages name the
 * file, the line and the key, never the value: a config may hold a secret,
 * and a file given with -C may be one the caller must not read.
 */
#define _XOPEN_SOURCE 700
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define DEFAULT_QUEUE "/var/spool/outbox"
#define DEFAULT_TIMEOUT 60
#define MAX_TIMEOUT 3600

struct parse_ctx {
	struct config *cfg;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	char env_name[64];      /* the OUTBOX_* variable being read */
};

typedef int (*key_fn)(struct parse_ctx *p, const char *key, const char *val);

static int bad(struct parse_ctx *p, const char *key, const char *why)
{
	char where[32] = "";

	if (p->line > 0)        /* 0: the environment, which has no lines */
		snprintf(where, sizeof(where), ":%d", p->line);
	snprintf(p->err, p->errlen, "%s%s: %s%s%s", p->file, where,
	         key ? key : "", key ? ": " : "", why);
	return -1;
}

/* A value without control characters or spaces (names, addresses). */
static bool is_word(const char *v)
{
	for (; *v != '\0'; v++) {
		if ((unsigned char)*v <= ' ' || *v == 0x7f)
			return false;
	}
	return true;
}

static int set_string(struct parse_ctx *p, char **slot, const char *key,
                      const char *val)
{
	char *copy = strdup(val);

	if (copy == NULL)
		return bad(p, key, "out of memory");
	if (*slot != NULL) {
		secure_zero(*slot, strlen(*slot));
		free(*slot);
	}
	*slot = copy;
	return 0;
}

static char **string_slot(struct config *cfg, const char *key)
{
	if (strcmp(key, "user") == 0) return &cfg->user;
	if (strcmp(key, "password") == 0) return &cfg->password;
	if (strcmp(key, "password-file") == 0) return &cfg->password_file;
	if (strcmp(key, "ca-file") == 0) return &cfg->ca_file;
	if (strcmp(key, "from") == 0) return &cfg->from;
	if (strcmp(key, "domain") == 0) return &cfg->domain;
	if (strcmp(key, "helo") == 0) return &cfg->helo;
	if (strcmp(key, "aliases") == 0) return &cfg->aliases;
	if (strcmp(key, "password-command") == 0)
		return &cfg->password_command;
	if (strcmp(key, "token-command") == 0) return &cfg->token_command;
	if (strcmp(key, "oauth-token-url") == 0) return &cfg->oauth_token_url;
	if (strcmp(key, "oauth-client-id") == 0) return &cfg->oauth_client_id;
	if (strcmp(key, "oauth-client-secret-file") == 0)
		return &cfg->oauth_client_secret_file;
	if (strcmp(key, "oauth-refresh-token-file") == 0)
		return &cfg->oauth_refresh_token_file;
	if (strcmp(key, "metrics-file") == 0) return &cfg->metrics_file;
	return NULL;
}

static int key_string(struct parse_ctx *p, const char *key, const char *val)
{
	char **slot = string_slot(p->cfg, key);

	if (slot == NULL)
		return bad(p, key, "internal error: no slot");
	if (*val == '\0')
		return bad(p, key, "needs a value");
	if (strcmp(key, "password") != 0 && strcmp(key, "user") != 0 &&
	    strstr(key, "command") == NULL && !is_word(val))
		return bad(p, key, "value must not contain spaces or control "
		           "characters");
	if ((strstr(key, "-file") != NULL || strcmp(key, "aliases") == 0) &&
	    val[0] != '/')
		return bad(p, key, "needs an absolute path");
	return set_string(p, slot, key, val);
}

static int key_helo(struct parse_ctx *p, const char *key, const char *val)
{
	const char *v;

	if (*val == '\0')
		return bad(p, key, "needs a value");
	for (v = val; *v != '\0'; v++) {
		if (!isalnum((unsigned char)*v) && strchr(".-_[]:", *v) == NULL)
			return bad(p, key, "must be a host name or an address "
			           "literal");
	}
	return set_string(p, &p->cfg->helo, key, val);
}

static int key_tls(struct parse_ctx *p, const char *key, const char *val)
{
	if (strcmp(val, "starttls") == 0)
		p->cfg->tls = TLS_STARTTLS;
	else if (strcmp(val, "smtps") == 0)
		p->cfg->tls = TLS_SMTPS;
	else if (strcmp(val, "off") == 0)
		p->cfg->tls = TLS_OFF;
	else
		return bad(p, key, "must be starttls, smtps or off");
	return 0;
}

static int parse_bool(const char *val, bool *out)
{
	if (strcmp(val, "on") == 0 || strcmp(val, "yes") == 0 ||
	    strcmp(val, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(val, "off") == 0 || strcmp(val, "no") == 0 ||
	    strcmp(val, "false") == 0) {
		*out = false;
		return 0;
	}
	return -1;
}

static int key_tls_verify(struct parse_ctx *p, const char *key,
                          const char *val)
{
	if (parse_bool(val, &p->cfg->tls_verify) != 0)
		return bad(p, key, "must be on or off");
	return 0;
}

static int key_auth(struct parse_ctx *p, const char *key, const char *val)
{
	static const char *const mechs[] = {
		"plain", "login", "cram-md5", "digest-md5", "ntlm",
		"external", "xoauth2", "oauthbearer", NULL
	};
	char up[32];
	size_t i;

	if (strcmp(val, "auto") == 0) {
		free(p->cfg->auth);
		p->cfg->auth = NULL;
		return 0;
	}
	for (i = 0; mechs[i] != NULL; i++) {
		if (str_ieq(val, mechs[i]))
			break;
	}
	if (mechs[i] == NULL)
		return bad(p, key, "must be auto, plain, login, cram-md5, "
		           "digest-md5, ntlm, external, xoauth2 or oauthbearer");
	for (i = 0; val[i] != '\0' && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)val[i]);
	up[i] = '\0';
	return set_string(p, &p->cfg->auth, key, up);
}

static int key_timeout(struct parse_ctx *p, const char *key, const char *val)
{
	long secs;

	if (parse_duration(val, MAX_TIMEOUT, &secs) != 0 || secs < 1)
		return bad(p, key, "must be a duration from 1s to 1h "
		           "(e.g. 30s, 2m)");
	p->cfg->timeout = secs;
	return 0;
}

static int key_from_rewrite(struct parse_ctx *p, const char *key,
                            const char *val)
{
	if (strcmp(val, "local") == 0)
		p->cfg->from_rewrite = REWRITE_LOCAL;
	else if (strcmp(val, "never") == 0)
		p->cfg->from_rewrite = REWRITE_NEVER;
	else if (strcmp(val, "always") == 0)
		p->cfg->from_rewrite = REWRITE_ALWAYS;
	else
		return bad(p, key, "must be never, local or always");
	return 0;
}

static int key_from_header(struct parse_ctx *p, const char *key,
                           const char *val)
{
	if (strcmp(val, "local") == 0)
		p->cfg->from_header = FROM_HEADER_LOCAL;
	else if (strcmp(val, "keep") == 0)
		p->cfg->from_header = FROM_HEADER_KEEP;
	else if (strcmp(val, "always") == 0)
		p->cfg->from_header = FROM_HEADER_ALWAYS;
	else
		return bad(p, key, "must be keep, local or always");
	return 0;
}

static int key_qualify_headers(struct parse_ctx *p, const char *key,
                               const char *val)
{
	if (parse_bool(val, &p->cfg->qualify_headers) != 0)
		return bad(p, key, "must be on or off");
	return 0;
}

static int key_allow_from(struct parse_ctx *p, const char *key,
                          const char *val)
{
	if (*val == '\0')
		return bad(p, key, "needs any, none or a list of users");
	free(p->cfg->allow_from);
	p->cfg->allow_from = NULL;
	if (strcmp(val, "any") == 0)
		return 0;
	return set_string(p, &p->cfg->allow_from, key, val);
}

static int key_duration(struct parse_ctx *p, const char *key,
                        const char *val)
{
	long secs, *slot;

	if (strcmp(key, "queue-lifetime") == 0)
		slot = &p->cfg->queue_lifetime;
	else if (strcmp(key, "failed-lifetime") == 0)
		slot = &p->cfg->failed_lifetime;
	else if (strcmp(key, "retry-min") == 0)
		slot = &p->cfg->retry_min;
	else
		slot = &p->cfg->retry_max;
	if (parse_duration(val, 365L * 86400, &secs) != 0 || secs < 1)
		return bad(p, key, "must be a duration such as 30s, 15m, 1h "
		           "or 5d");
	*slot = secs;
	return 0;
}

static int key_max_connections(struct parse_ctx *p, const char *key,
                               const char *val)
{
	if (parse_long(val, 0, 100, &p->cfg->max_connections) != 0)
		return bad(p, key, "must be a number from 0 (no limit) to 100");
	return 0;
}

/* "30/min", "10000/day", "100/15m": the period as a word or a duration. */
static int parse_rate(const char *s, struct rate_limit *r)
{
	static const struct { const char *word; long secs; } WORDS[] = {
		{ "s", 1 }, { "sec", 1 }, { "second", 1 }, { "min", 60 },
		{ "minute", 60 }, { "h", 3600 }, { "hour", 3600 },
		{ "d", 86400 }, { "day", 86400 },
	};
	char num[24];
	const char *slash = strchr(s, '/');
	size_t i, n = slash ? (size_t)(slash - s) : 0;

	if (slash == NULL || n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_long(num, 1, 1000000, &r->count) != 0)
		return -1;
	for (i = 0; i < sizeof(WORDS) / sizeof(WORDS[0]); i++) {
		if (strcmp(slash + 1, WORDS[i].word) == 0) {
			r->period = WORDS[i].secs;
			return 0;
		}
	}
	if (parse_duration(slash + 1, 31L * 86400, &r->period) != 0 ||
	    r->period < 1)
		return -1;
	return 0;
}

/* Repeatable; from the environment, a list that replaces the file's. */
static int key_rate_limit(struct parse_ctx *p, const char *key,
                          const char *val)
{
	char one[64];

	if (p->file == p->env_name)
		p->cfg->nrates = 0;
	while (*val != '\0') {
		size_t n = strcspn(val, " \t,");

		if (n >= sizeof(one))
			n = sizeof(one) - 1;
		memcpy(one, val, n);
		one[n] = '\0';
		if (n > 0 && p->cfg->nrates >= CONFIG_MAX_RATES)
			return bad(p, key, "at most 4 limits");
		if (n > 0 && parse_rate(one, &p->cfg->rates[p->cfg->nrates++]) != 0)
			return bad(p, key, "must be COUNT/PERIOD such as 30/min, "
			           "10000/day or 100/15m");
		val += strcspn(val, " \t,");
		val += strspn(val, " \t,");
	}
	return 0;
}

static int key_queue(struct parse_ctx *p, const char *key, const char *val)
{
	free(p->cfg->queue);
	p->cfg->queue = NULL;
	if (strcmp(val, "off") == 0)
		return 0;
	if (val[0] != '/' || !is_word(val))
		return bad(p, key, "must be an absolute path or off");
	return set_string(p, &p->cfg->queue, key, val);
}

static int key_log(struct parse_ctx *p, const char *key, const char *val)
{
	if (strcmp(val, "syslog") != 0 && strcmp(val, "stderr") != 0 &&
	    val[0] != '/')
		return bad(p, key, "must be syslog, stderr or an absolute path");
	return set_string(p, &p->cfg->log, key, val);
}

/* Host part: a name, or an IPv6 literal in brackets. Sets *end past it. */
static int split_host(const char *s, const char **host, size_t *hostlen,
                      const char **end)
{
	size_t n;

	if (*s == '[') {
		n = strspn(s + 1, "0123456789abcdefABCDEF:.");
		if (n == 0 || s[1 + n] != ']')
			return -1;
		*host = s + 1;
		*hostlen = n;
		*end = s + n + 2;
		return 0;
	}
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	           "0123456789.-_");
	if (n == 0)
		return -1;
	*host = s;
	*hostlen = n;
	*end = s + n;
	return 0;
}

static int key_smarthost(struct parse_ctx *p, const char *key,
                         const char *val)
{
	struct smarthost *h;
	const char *s = val, *host, *end;
	size_t hostlen;
	long port = 0;

	if (p->cfg->nhosts >= CONFIG_MAX_SMARTHOSTS)
		return bad(p, key, "too many smarthosts (at most 8)");
	h = &p->cfg->hosts[p->cfg->nhosts];
	memset(h, 0, sizeof(*h));
	if (strncmp(s, "smtps://", 8) == 0) {
		h->tls = TLS_SMTPS;
		h->tls_from_scheme = true;
		s += 8;
	} else if (strncmp(s, "smtp://", 7) == 0) {
		h->tls_from_scheme = true;
		s += 7;
	}
	if (split_host(s, &host, &hostlen, &end) != 0)
		return bad(p, key, "expected host, host:port, [IPv6]:port, "
		           "smtp://host:port or smtps://host:port");
	if (*end == ':') {
		if (parse_long(end + 1, 1, 65535, &port) != 0)
			return bad(p, key, "port must be a number from 1 to 65535");
	} else if (*end != '\0' && strcmp(end, "/") != 0) {
		return bad(p, key, "expected host, host:port, [IPv6]:port, "
		           "smtp://host:port or smtps://host:port");
	}
	h->host = str_ndup(host, hostlen);
	if (h->host == NULL)
		return bad(p, key, "out of memory");
	h->port = (int)port;
	h->line = p->line;
	p->cfg->nhosts++;
	return 0;
}

/*
 * proxy: "none", or scheme://host[:port] with a scheme libcurl tunnels
 * SMTP through. No credentials: the URL would be shown and logged.
 */
static int key_proxy(struct parse_ctx *p, const char *key, const char *val)
{
	static const char *const schemes[] = {
		"socks5h://", "socks5://", "http://", NULL
	};
	const char *rest = NULL, *host, *end;
	size_t i, hostlen;
	long port;

	if (strcmp(val, "none") == 0)
		return set_string(p, &p->cfg->proxy, key, val);
	for (i = 0; schemes[i] != NULL && rest == NULL; i++) {
		if (strncmp(val, schemes[i], strlen(schemes[i])) == 0)
			rest = val + strlen(schemes[i]);
	}
	if (rest == NULL)
		return bad(p, key, "must be none, or a URL socks5h://host:port, "
		           "socks5://host:port or http://host:port");
	if (strchr(rest, '@') != NULL)
		return bad(p, key, "a proxy that needs a user name and password "
		           "is not supported (the URL would be shown and logged)");
	if (split_host(rest, &host, &hostlen, &end) != 0)
		return bad(p, key, "expected scheme://host:port after the scheme");
	(void)host;
	(void)hostlen;
	if (*end == ':' && parse_long(end + 1, 1, 65535, &port) != 0)
		return bad(p, key, "port must be a number from 1 to 65535");
	if (*end != ':' && *end != '\0' && strcmp(end, "/") != 0)
		return bad(p, key, "expected scheme://host:port after the scheme");
	return set_string(p, &p->cfg->proxy, key, val);
}

static const struct {
	const char *name;
	key_fn fn;
} KEYS[] = {
	{ "smarthost", key_smarthost },
	{ "tls", key_tls },
	{ "tls-verify", key_tls_verify },
	{ "user", key_string },
	{ "password", key_string },
	{ "password-file", key_string },
	{ "auth", key_auth },
	{ "ca-file", key_string },
	{ "helo", key_helo },
	{ "from", key_string },
	{ "domain", key_string },
	{ "aliases", key_string },
	{ "password-command", key_string },
	{ "token-command", key_string },
	{ "oauth-token-url", key_string },
	{ "oauth-client-id", key_string },
	{ "oauth-client-secret-file", key_string },
	{ "oauth-refresh-token-file", key_string },
	{ "from-rewrite", key_from_rewrite },
	{ "from-header", key_from_header },
	{ "qualify-headers", key_qualify_headers },
	{ "allow-from", key_allow_from },
	{ "queue", key_queue },
	{ "queue-lifetime", key_duration },
	{ "failed-lifetime", key_duration },
	{ "retry-min", key_duration },
	{ "retry-max", key_duration },
	{ "max-connections", key_max_connections },
	{ "rate-limit", key_rate_limit },
	{ "timeout", key_timeout },
	{ "log", key_log },
	{ "proxy", key_proxy },
	{ "metrics-file", key_string },
};

/*
 * Split a line into key and value, in place. Handles the quoted value
 * form and trailing comments. Returns 1 for a key/value pair, 0 for a
 * blank or comment line, -1 on a syntax error (reason in *why).
 */
_Static_assert(sizeof(KEYS) / sizeof(KEYS[0]) <= CONFIG_MAX_KEYS,
               "raise CONFIG_MAX_KEYS");

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

static int parse_line(struct parse_ctx *p, char *line)
{
	char *key = NULL, *val = NULL;
	const char *why = NULL;
	size_t i;
	int r = split_line(line, &key, &val, &why);

	if (r < 0)
		return bad(p, NULL, why);
	if (r == 0)
		return 0;
	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		if (strcmp(KEYS[i].name, key) == 0) {
			p->cfg->key_line[i] = p->line;
			return KEYS[i].fn(p, key, val);
		}
	}
	return bad(p, NULL, "unknown key");
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
			rc = bad(p, NULL, "line too long");
			break;
		}
		if (memchr(line, '\0', (size_t)n) != NULL) {
			rc = bad(p, NULL, "NUL byte in line");
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		rc = parse_line(p, line);
	}
	if (rc == 0 && ferror(f))
		rc = bad(p, NULL, "read error");
	if (line != NULL) {
		secure_zero(line, cap);
		free(line);
	}
	return rc;
}

static bool is_oauth(const struct config *cfg)
{
	return cfg->auth != NULL && (strcmp(cfg->auth, "XOAUTH2") == 0 ||
	                             strcmp(cfg->auth, "OAUTHBEARER") == 0);
}

/* OAuth2 needs exactly one way to get a token, and a user. */
static int finish_oauth(struct parse_ctx *p)
{
	const struct config *cfg = p->cfg;
	bool flow = cfg->oauth_token_url || cfg->oauth_client_id ||
	            cfg->oauth_refresh_token_file ||
	            cfg->oauth_client_secret_file;
	bool complete = cfg->oauth_token_url && cfg->oauth_client_id &&
	                cfg->oauth_refresh_token_file;
	const char *why = NULL;

	if (!is_oauth(cfg) && (flow || cfg->token_command))
		why = "token-command and oauth-* need auth xoauth2 or oauthbearer";
	else if (is_oauth(cfg) && cfg->user == NULL)
		why = "auth xoauth2/oauthbearer needs user";
	else if (is_oauth(cfg) && !cfg->token_command && !complete)
		why = "auth xoauth2/oauthbearer needs token-command, or "
		      "oauth-token-url, oauth-client-id and "
		      "oauth-refresh-token-file";
	else if (cfg->token_command && flow)
		why = "set token-command or the oauth-* keys, not both";
	else if (cfg->oauth_token_url &&
	         strncmp(cfg->oauth_token_url, "https://", 8) != 0)
		why = "oauth-token-url must be an https:// URL";
	if (why == NULL)
		return 0;
	snprintf(p->err, p->errlen, "%s: %s", p->file, why);
	return -1;
}

/* Defaults and cross-key checks once the whole file is read. */
/* The KEYS index of key (it is in the table). */
static size_t key_index(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]) - 1; i++) {
		if (strcmp(KEYS[i].name, key) == 0)
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
		return bad(p, key, strerror(errno));
	if (untrusted_owner(&st)) {
		char why[4200];

		snprintf(why, sizeof(why), "%s must be owned by root and writable "
		         "only by root when outbox runs set-group-ID (chown root "
		         "%s; chmod go-w %s)", path, path, path);
		return bad(p, key, why);
	}
	if (slash != NULL && (size_t)(slash - path) < sizeof(dir)) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir[0] ? dir : "/", &st) == 0 && untrusted_owner(&st) &&
		    !(st.st_mode & S_ISVTX && st.st_uid == 0)) {
			char why[4200];

			snprintf(why, sizeof(why), "%s is in a directory that users "
			         "other than root can change (%s)", path,
			         dir[0] ? dir : "/");
			return bad(p, key, why);
		}
	}
	return 0;
}

static int finish(struct parse_ctx *p)
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
			return bad(p, "smarthost", "smtp:// conflicts with "
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

static int set_defaults(struct config *cfg, const char *path)
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
	if (rc == 0 && cfg->password != NULL && file_readable_by_others(&st)) {
		snprintf(p->err, p->errlen, "%s: holds a password but other "
		         "users can read it (chmod 600, or use password-file)",
		         path);
		rc = -1;
	}
	return rc;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct parse_ctx p = { cfg, path, 0, err, errlen, "" };
	int rc;

	if (set_defaults(cfg, path) != 0) {
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

	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		env_name(name, sizeof(name), KEYS[i].name);
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
			if (key_smarthost(p, "smarthost", host) != 0)
				return -1;
		}
		val += n;
		val += strspn(val, " \t,");
	}
	return 0;
}

static int apply_env(struct parse_ctx *p)
{
	char name[64], line[CONFIG_LINE_MAX];
	size_t i;

	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		const char *val;
		int rc;

		env_name(name, sizeof(name), KEYS[i].name);
		val = getenv(name);
		if (val == NULL)
			continue;
		str_copy(p->env_name, sizeof(p->env_name), name);
		p->file = p->env_name;  /* errors name the variable */
		if (strlen(val) >= sizeof(line))
			return bad(p, NULL, "value too long");
		snprintf(line, sizeof(line), "%s", val);
		rc = KEYS[i].fn == key_smarthost ? env_smarthosts(p, line)
		                                  : KEYS[i].fn(p, KEYS[i].name, line);
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
	                       errlen, "" };
	int rc = 0;

	if (set_defaults(cfg, path ? path : "(environment)") != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (path != NULL)
		rc = load_file(&p, path);
	p.line = 0;
	if (rc == 0)
		rc = apply_env(&p);
	p.file = path ? path : "environment (no config file)";
	if (rc == 0)
		rc = finish(&p);
	return rc;
}

void config_show_sources(const struct config *cfg, FILE *out)
{
	char name[64];
	size_t i;

	for (i = 0; i < sizeof(KEYS) / sizeof(KEYS[0]); i++) {
		if (cfg->key_line[i] == 0)
			continue;
		env_name(name, sizeof(name), KEYS[i].name);
		if (cfg->key_line[i] < 0)
			fprintf(out, "outbox: config: %s from the environment (%s)\n",
			        KEYS[i].name, name);
		else
			fprintf(out, "outbox: config: %s from %s line %d\n",
			        KEYS[i].name, cfg->path, cfg->key_line[i]);
	}
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
	free(cfg->metrics_file);
	memset(cfg, 0, sizeof(*cfg));
}
