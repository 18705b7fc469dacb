/*
 * creds_oauth.c - OAuth2 access tokens (see creds_oauth.h).
 */
#define _GNU_SOURCE
#include "creds_oauth.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds_secret.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#define REPLY_MAX (64 * 1024)
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

/* ---- files ---- */

/* Replace path with text atomically (temp file beside it, fsync, rename). */
static int write_atomic(const char *path, const char *text)
{
	char tmp[4200];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	          0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0)
		rc = -1;
	if (close(fd) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

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

/* ---- the refresh flow ---- */

struct reply {
	char *buf;
	size_t len;
	bool overflow;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ptr)
{
	struct reply *r = ptr;
	size_t n = size * nmemb;

	if (r->len + n > REPLY_MAX) {
		r->overflow = true;
		return 0;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

/* "grant_type=refresh_token&refresh_token=...&client_id=...[&client_secret=...]" */
static char *form(CURL *h, const char *refresh, const char *id,
                  const char *secret)
{
	char *er = curl_easy_escape(h, refresh, 0);
	char *ei = curl_easy_escape(h, id, 0);
	char *es = secret ? curl_easy_escape(h, secret, 0) : NULL;
	size_t n = (er ? strlen(er) : 0) + (ei ? strlen(ei) : 0) +
	           (es ? strlen(es) : 0) + 100;
	char *body = (er && ei && (es || !secret)) ? malloc(n) : NULL;

	if (body != NULL)
		snprintf(body, n, "grant_type=refresh_token&refresh_token=%s"
		         "&client_id=%s%s%s", er, ei, es ? "&client_secret=" : "",
		         es ? es : "");
	if (er) { secure_zero(er, strlen(er)); curl_free(er); }
	if (es) { secure_zero(es, strlen(es)); curl_free(es); }
	curl_free(ei);
	return body;
}

/* POST the refresh request; the JSON reply in r. 0, or -1 with err. */
static int post(const struct config *cfg, const char *body, struct reply *r,
                char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	long code = 0;
	CURLcode rc;

	if (h == NULL)
		return snprintf(err, errlen, "oauth: out of memory"), -1;
	curl_easy_setopt(h, CURLOPT_URL, cfg->oauth_token_url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg->timeout);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (proxy_apply(h, proxy_choose(cfg->proxy, cfg->privileged)) !=
	    CURLE_OK) {
		curl_easy_cleanup(h);
		return snprintf(err, errlen, "oauth-token-url: libcurl refused "
		                "the proxy setting"), -1;
	}
	if (cfg->ca_file != NULL || ca_bundle() != NULL) {
		curl_easy_setopt(h, CURLOPT_CAINFO,
		                 cfg->ca_file ? cfg->ca_file : ca_bundle());
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "oauth-token-url: %s", curl_easy_strerror(rc));
		return -1;
	}
	if (code != 200) {
		char what[128] = "", esc[4 * sizeof(what)];

		oauth_json_get(r->buf, r->len, "error", what, sizeof(what));
		str_escape_ctl(esc, sizeof(esc), what, strlen(what));
		snprintf(err, errlen, "oauth-token-url: HTTP %ld%s%s%s", code,
		         esc[0] ? " (" : "", esc, esc[0] ? ")" : "");
		return -1;
	}
	return 0;
}

/* Keep what the endpoint sent: the token in the cache, a rotated
 * refresh token in its file. */
static void store(const struct config *cfg, const struct reply *r,
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
		if (write_atomic(path, text) != 0)
			log_event(LOG_WARNING, "cannot cache the OAuth2 token in "
			          "%s: %s", path, strerror(errno));
	}
	if (text != NULL &&
	    oauth_json_get(r->buf, r->len, "refresh_token", text,
	                   TOKEN_MAX) == 0 &&
	    text[0] != '\0' && strcmp(text, old_refresh) != 0) {
		size_t n = strlen(text);

		if (n + 2 < TOKEN_MAX + 64) {
			text[n] = '\n';
			text[n + 1] = '\0';
			if (write_atomic(cfg->oauth_refresh_token_file, text) != 0)
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

static int refresh(const struct config *cfg, char **out, char *err,
                   size_t errlen)
{
	struct reply r = { NULL, 0, false };
	char *refresh_tok = NULL, *secret = NULL, *body = NULL;
	char *token = malloc(TOKEN_MAX);
	CURL *h = curl_easy_init();
	bool strict = secret_strict(cfg->privileged);
	int rc = -1;

	r.buf = malloc(REPLY_MAX + 1);
	if (token == NULL || h == NULL || r.buf == NULL) {
		snprintf(err, errlen, "oauth: out of memory");
		goto out;
	}
	r.buf[0] = '\0';
	if (secret_file("oauth-refresh-token-file",
	                cfg->oauth_refresh_token_file, strict, &refresh_tok, err,
	                errlen) != 0 ||
	    (cfg->oauth_client_secret_file != NULL &&
	     secret_file("oauth-client-secret-file",
	                 cfg->oauth_client_secret_file, strict, &secret, err,
	                 errlen) != 0))
		goto out;
	body = form(h, refresh_tok, cfg->oauth_client_id, secret);
	if (body == NULL) {
		snprintf(err, errlen, "oauth: out of memory");
		goto out;
	}
	if (post(cfg, body, &r, err, errlen) != 0)
		goto out;
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
	if (body) { secure_zero(body, strlen(body)); free(body); }
	if (refresh_tok) { secure_zero(refresh_tok, strlen(refresh_tok)); free(refresh_tok); }
	if (secret) { secure_zero(secret, strlen(secret)); free(secret); }
	if (token) { secure_zero(token, TOKEN_MAX); free(token); }
	if (r.buf) { secure_zero(r.buf, REPLY_MAX + 1); free(r.buf); }
	curl_easy_cleanup(h);
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
