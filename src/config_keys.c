/*
 * config_keys.c - the configuration keys: the table of every key and the
 * parser that checks and stores each one's value (see config_int.h).
 * Error messages name the key, never the value (it may be a secret).
 */
#define _XOPEN_SOURCE 700
#include "config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_TIMEOUT 3600

int config_bad(struct parse_ctx *p, const char *key, const char *why)
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
		return config_bad(p, key, "out of memory");
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
	if (strcmp(key, "oauth-tenant") == 0) return &cfg->oauth_tenant;
	if (strcmp(key, "oauth-device-url") == 0) return &cfg->oauth_device_url;
	if (strcmp(key, "oauth-auth-url") == 0) return &cfg->oauth_auth_url;
	return NULL;
}

static int key_string(struct parse_ctx *p, const char *key, const char *val)
{
	char **slot = string_slot(p->cfg, key);

	if (slot == NULL)
		return config_bad(p, key, "internal error: no slot");
	if (*val == '\0')
		return config_bad(p, key, "needs a value");
	if (strcmp(key, "password") != 0 && strcmp(key, "user") != 0 &&
	    strstr(key, "command") == NULL && !is_word(val))
		return config_bad(p, key, "value must not contain spaces or control "
		           "characters");
	if ((strstr(key, "-file") != NULL || strcmp(key, "aliases") == 0) &&
	    val[0] != '/')
		return config_bad(p, key, "needs an absolute path");
	return set_string(p, slot, key, val);
}

static int key_helo(struct parse_ctx *p, const char *key, const char *val)
{
	const char *v;

	if (*val == '\0')
		return config_bad(p, key, "needs a value");
	for (v = val; *v != '\0'; v++) {
		if (!isalnum((unsigned char)*v) && strchr(".-_[]:", *v) == NULL)
			return config_bad(p, key, "must be a host name or an address "
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
		return config_bad(p, key, "must be starttls, smtps or off");
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
		return config_bad(p, key, "must be on or off");
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
		return config_bad(p, key, "must be auto, plain, login, cram-md5, "
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
		return config_bad(p, key, "must be a duration from 1s to 1h "
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
		return config_bad(p, key, "must be never, local or always");
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
		return config_bad(p, key, "must be keep, local or always");
	return 0;
}

static int key_qualify_headers(struct parse_ctx *p, const char *key,
                               const char *val)
{
	if (parse_bool(val, &p->cfg->qualify_headers) != 0)
		return config_bad(p, key, "must be on or off");
	return 0;
}

static int key_allow_from(struct parse_ctx *p, const char *key,
                          const char *val)
{
	if (*val == '\0')
		return config_bad(p, key, "needs any, none or a list of users");
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
		return config_bad(p, key, "must be a duration such as 30s, 15m, 1h "
		           "or 5d");
	*slot = secs;
	return 0;
}

static int key_max_connections(struct parse_ctx *p, const char *key,
                               const char *val)
{
	if (parse_long(val, 0, 100, &p->cfg->max_connections) != 0)
		return config_bad(p, key, "must be a number from 0 (no limit) to 100");
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
			return config_bad(p, key, "at most 4 limits");
		if (n > 0 && parse_rate(one, &p->cfg->rates[p->cfg->nrates++]) != 0)
			return config_bad(p, key, "must be COUNT/PERIOD such as 30/min, "
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
		return config_bad(p, key, "must be an absolute path or off");
	return set_string(p, &p->cfg->queue, key, val);
}

static int key_log(struct parse_ctx *p, const char *key, const char *val)
{
	if (strcmp(val, "syslog") != 0 && strcmp(val, "stderr") != 0 &&
	    val[0] != '/')
		return config_bad(p, key, "must be syslog, stderr or an absolute path");
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

int config_key_smarthost(struct parse_ctx *p, const char *key,
                         const char *val)
{
	struct smarthost *h;
	const char *s = val, *host, *end;
	size_t hostlen;
	long port = 0;

	if (p->cfg->nhosts >= CONFIG_MAX_SMARTHOSTS)
		return config_bad(p, key, "too many smarthosts (at most 8)");
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
		return config_bad(p, key, "expected host, host:port, [IPv6]:port, "
		           "smtp://host:port or smtps://host:port");
	if (*end == ':') {
		if (parse_long(end + 1, 1, 65535, &port) != 0)
			return config_bad(p, key, "port must be a number from 1 to 65535");
	} else if (*end != '\0' && strcmp(end, "/") != 0) {
		return config_bad(p, key, "expected host, host:port, [IPv6]:port, "
		           "smtp://host:port or smtps://host:port");
	}
	h->host = str_ndup(host, hostlen);
	if (h->host == NULL)
		return config_bad(p, key, "out of memory");
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
		return config_bad(p, key, "must be none, or a URL socks5h://host:port, "
		           "socks5://host:port or http://host:port");
	if (strchr(rest, '@') != NULL)
		return config_bad(p, key, "a proxy that needs a user name and password "
		           "is not supported (the URL would be shown and logged)");
	if (split_host(rest, &host, &hostlen, &end) != 0)
		return config_bad(p, key, "expected scheme://host:port after the scheme");
	(void)host;
	(void)hostlen;
	if (*end == ':' && parse_long(end + 1, 1, 65535, &port) != 0)
		return config_bad(p, key, "port must be a number from 1 to 65535");
	if (*end != ':' && *end != '\0' && strcmp(end, "/") != 0)
		return config_bad(p, key, "expected scheme://host:port after the scheme");
	return set_string(p, &p->cfg->proxy, key, val);
}

/* oauth-grant refresh-token | client-credentials */
static int key_oauth_grant(struct parse_ctx *p, const char *key,
                           const char *val)
{
	if (strcmp(val, "refresh-token") == 0)
		p->cfg->oauth_grant = OAUTH_GRANT_REFRESH;
	else if (strcmp(val, "client-credentials") == 0)
		p->cfg->oauth_grant = OAUTH_GRANT_CLIENT;
	else
		return config_bad(p, key, "must be refresh-token or "
		           "client-credentials");
	return 0;
}

/* oauth-provider microsoft | google | none */
static int key_oauth_provider(struct parse_ctx *p, const char *key,
                              const char *val)
{
	if (strcmp(val, "microsoft") == 0)
		p->cfg->oauth_provider = OAUTH_PROVIDER_MICROSOFT;
	else if (strcmp(val, "google") == 0)
		p->cfg->oauth_provider = OAUTH_PROVIDER_GOOGLE;
	else if (strcmp(val, "none") == 0)
		p->cfg->oauth_provider = OAUTH_PROVIDER_NONE;
	else
		return config_bad(p, key, "must be microsoft, google or none "
		           "(none: set oauth-token-url and the other URLs)");
	return 0;
}

/* oauth-scope: scopes separated by single spaces, printable ASCII */
static int key_oauth_scope(struct parse_ctx *p, const char *key,
                           const char *val)
{
	const char *v;

	if (*val == '\0' || *val == ' ')
		return config_bad(p, key, "needs a value (scopes separated by "
		           "spaces)");
	for (v = val; *v != '\0'; v++) {
		if ((unsigned char)*v < ' ' || (unsigned char)*v >= 0x7f ||
		    *v == '"' || *v == '\\' || (*v == ' ' && (v[1] == ' ' ||
		                                              v[1] == '\0')))
			return config_bad(p, key, "scopes are printable ASCII "
			           "separated by single spaces");
	}
	return set_string(p, &p->cfg->oauth_scope, key, val);
}

const struct config_key CONFIG_KEYS[] = {
	{ "smarthost", config_key_smarthost },
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
	{ "oauth-grant", key_oauth_grant },
	{ "oauth-provider", key_oauth_provider },
	{ "oauth-tenant", key_string },
	{ "oauth-scope", key_oauth_scope },
	{ "oauth-device-url", key_string },
	{ "oauth-auth-url", key_string },
};

const size_t CONFIG_NKEYS = sizeof(CONFIG_KEYS) / sizeof(CONFIG_KEYS[0]);

_Static_assert(sizeof(CONFIG_KEYS) / sizeof(CONFIG_KEYS[0]) <=
               CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");
