/*
 * creds_oauth.c - OAuth2 access tokens (see creds_oauth.h).
 */
#define _GNU_SOURCE
#include "creds_oauth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds_http.h"
#include "creds_preset.h"
#include "creds_secret.h"
#include "log.h"
#include "util.h"

#define TOKEN_MAX SECRET_MAX

/* ---- a small JSON reader: top-level members of one object ---- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
	                 s[i] == '\n'))
		i++;
	return i;
}

/* Read a string at s[i] == '"'; unescape into out (if not NULL). Returns
 * the index after it, or 0 on a syntax error. */
static size_t read_string(const char *s, size_t i, size_t n, char *out,
                          size_t outlen, size_t *used)
{
	size_t o = 0;

	for (i++; i < n && s[i] != '"'; i++) {
		char c = s[i];

		if (c == '\\') {
			if (++i >= n)
				return 0;
			c = s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' :
			    s[i] == 'r' ? '\r' :
			    s[i] == 'u' ? '?' : s[i];
			if (s[i] == 'u')
				i += 4;         /* non-ASCII escapes: not in tokens */
		}
		if (out != NULL && o + 1 < outlen)
			out[o] = c;
		o++;
	}
	if (i >= n)
		return 0;
	if (out != NULL) {
		out[o < outlen ? o : outlen - 1] = '\0';
		*used = o;
	}
	return i + 1;
}

/* Skip any value (string, number, literal, nested object/array); returns
 * the index of the ',' or '}' after it, or 0 on a syntax error. */
static size_t skip_value(const char *s, size_t i, size_t n)
{
	int depth = 0;
	size_t used;

	while (i < n) {
		if (s[i] == '"') {
			i = read_string(s, i, n, NULL, 0, &used);
			if (i == 0)
				return 0;
			if (depth == 0)
				return skip_ws(s, i, n);
			continue;
		}
		if (s[i] == '{' || s[i] == '[') {
			depth++;
		} else if (s[i] == '}' || s[i] == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return skip_ws(s, i + 1, n);
		} else if (depth == 0 && s[i] == ',') {
			return i;
		}
		i++;
	}
	return 0;
}

int oauth_json_get(const char *s, size_t n, const char *key, char *out,
                   size_t outlen)
{
	char name[64];
	size_t i = skip_ws(s, 0, n), used = 0;

	if (i >= n || s[i] != '{' || outlen == 0)
		return -1;
	for (i = skip_ws(s, i + 1, n); i < n && s[i] == '"';) {
		i = read_string(s, i, n, name, sizeof(name), &used);
		i = i ? skip_ws(s, i, n) : n;
		if (i >= n || s[i] != ':')
			return -1;
		i = skip_ws(s, i + 1, n);
		if (i < n && strcmp(name, key) == 0) {
			if (s[i] == '"')
				return read_string(s, i, n, out, outlen, &used) &&
				       used < outlen ? 0 : -1;
			used = strcspn(s + i, ",} \t\r\n");
			if (used == 0 || used >= outlen || i + used > n)
				return -1;
			memcpy(out, s + i, used);
			out[used] = '\0';
			return 0;
		}
		i = skip_value(s, i, n);
		if (i == 0 || i >= n || s[i] != ',')
			return -1;
		i = skip_ws(s, i + 1, n);
	}
	return -1;
}

/* ---- the token cache ---- */

static char *cache_path(const struct config *cfg)
{
	size_t n;
	char *p;

	if (cfg->queue == NULL)
		return NULL;
	/* each account caches its own token: oauth-token-NAME */
	n = strlen(cfg->queue) + sizeof(OAUTH_CACHE_NAME) + 3 +
	    (cfg->account ? strlen(cfg->account) : 0);
	p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s%s%s", cfg->queue, OAUTH_CACHE_NAME,
		         cfg->account ? "-" : "",
		         cfg->account ? cfg->account : "");
	return p;
}

void oauth_cache_forget(const struct config *cfg)
{
	char *path = cache_path(cfg);

	if (path != NULL)
		unlink(path);
	free(path);
}

/* The cached token when it is still good for a while. */
static char *cached_token(const char *path)
{
	char buf[TOKEN_MAX + 64];
	long long expires = 0;
	char *tok = NULL, *nl;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (sscanf(buf, "expires %lld", &expires) == 1 &&
	    expires - OAUTH_EARLY_SECS > (long long)time(NULL)) {
		tok = strstr(buf, "\ntoken ");
		if (tok != NULL) {
			tok += 7;
			nl = strchr(tok, '\n');
			if (nl != NULL)
				*nl = '\0';
			tok = *tok ? strdup(tok) : NULL;
		}
	}
	secure_zero(buf, sizeof(buf));
	return tok;
}

/* ---- the grants: refresh-token and client-credentials ---- */

/* Keep what the endpoint sent: the token in the cache, a rotated
 * refresh token in its file. */
static void store(const struct config *cfg, const struct oauth_reply *r,
                  const char *token, const char *old_refresh)
{
	char *text = malloc(TOKEN_MAX + 64);
	char *path = cache_path(cfg);
	char num[32];
	long long expires_in = 3600;

	if (oauth_json_get(r->buf, r->len, "expires_in", num, sizeof(num)) == 0)
		expires_in = strtoll(num, NULL, 10);
	if (text != NULL && path != NULL) {
		snprintf(text, TOKEN_MAX + 64, "expires %lld\ntoken %s\n",
		         (long long)time(NULL) + expires_in, token);
		if (secret_store(path, text) != 0)
			log_event(LOG_WARNING, "cannot cache the OAuth2 token in "
			          "%s: %s", path, strerror(errno));
	}
	if (text != NULL && old_refresh != NULL &&
	    oauth_json_get(r->buf, r->len, "refresh_token", text,
	                   TOKEN_MAX) == 0 &&
	    text[0] != '\0' && strcmp(text, old_refresh) != 0) {
		size_t n = strlen(text);

		if (n + 2 < TOKEN_MAX + 64) {
			text[n] = '\n';
			text[n + 1] = '\0';
			if (secret_store(cfg->oauth_refresh_token_file, text) != 0)
				log_event(LOG_ERR, "oauth-refresh-token-file: cannot "
				          "store the rotated refresh token: %s",
				          strerror(errno));
		}
	}
	if (text != NULL) {
		secure_zero(text, TOKEN_MAX + 64);
		free(text);
	}
	free(path);
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		secure_zero(s, strlen(s));
		free(s);
	}
}

/* The grant's form: the secrets it needs read from their files. */
static int grant_form(const struct config *cfg,
                      const struct oauth_endpoints *ep,
                      struct oauth_form *f, char **refresh_tok, char *err,
                      size_t errlen)
{
	bool strict = secret_strict(cfg->privileged);
	bool client = cfg->oauth_grant == OAUTH_GRANT_CLIENT;
	char *secret = NULL;

	if ((!client && secret_file("oauth-refresh-token-file",
	                            cfg->oauth_refresh_token_file, strict,
	                            refresh_tok, err, errlen) != 0) ||
	    (cfg->oauth_client_secret_file != NULL &&
	     secret_file("oauth-client-secret-file",
	                 cfg->oauth_client_secret_file, strict, &secret, err,
	                 errlen) != 0))
		return -1;
	oauth_form_add(f, "grant_type", client ? "client_credentials"
	                                       : "refresh_token");
	if (!client)
		oauth_form_add(f, "refresh_token", *refresh_tok);
	oauth_form_add(f, "client_id", cfg->oauth_client_id);
	oauth_form_add(f, "client_secret", secret);
	if (ep->scope[0] != '\0')
		oauth_form_add(f, "scope", ep->scope);
	wipe_free(secret);
	return 0;
}

static int refresh(const struct config *cfg, char **out, char *err,
                   size_t errlen)
{
	struct oauth_form f = { 0 };
	struct oauth_reply r = { 0 };
	struct oauth_endpoints ep;
	char *refresh_tok = NULL;
	char *token = malloc(TOKEN_MAX);
	int rc = -1;

	oauth_endpoints(cfg, &ep);
	if (token == NULL) {
		snprintf(err, errlen, "oauth: out of memory");
		goto out;
	}
	if (grant_form(cfg, &ep, &f, &refresh_tok, err, errlen) != 0 ||
	    oauth_http_post(cfg, ep.token_url, "oauth-token-url", &f, &r, err,
	                    errlen) != 0)
		goto out;
	if (r.status != 200) {
		char login[600];

		oauth_login_command(cfg, login, sizeof(login));
		oauth_error_line(r.buf, r.len, r.status, "oauth-token-url",
		                 cfg->oauth_grant == OAUTH_GRANT_CLIENT
		                 ? OAUTH_CTX_CLIENT : OAUTH_CTX_REFRESH, login,
		                 err, errlen);
		goto out;
	}
	if (oauth_json_get(r.buf, r.len, "access_token", token, TOKEN_MAX) != 0 ||
	    token[0] == '\0') {
		snprintf(err, errlen, "oauth-token-url: no access_token in the "
		         "reply");
		goto out;
	}
	store(cfg, &r, token, refresh_tok);
	*out = strdup(token);
	rc = *out ? 0 : -1;
out:
	oauth_form_free(&f);
	oauth_reply_free(&r);
	wipe_free(refresh_tok);
	if (token) { secure_zero(token, TOKEN_MAX); free(token); }
	return rc;
}

int oauth_token(const struct config *cfg, bool force_refresh, char **out,
                char *err, size_t errlen)
{
	char *path;

	*out = NULL;
	if (cfg->token_command != NULL)
		return secret_command("token-command", cfg->token_command,
		                      cfg->timeout, cfg->privileged, out, err,
		                      errlen);
	path = cache_path(cfg);
	if (path != NULL && !force_refresh)
		*out = cached_token(path);
	free(path);
	if (*out != NULL)
		return 0;
	return refresh(cfg, out, err, errlen);
}
