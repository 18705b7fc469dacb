/*
 * creds_login.c - the login command: the device grant and the shared
 * parts (see creds_login.h). The loopback browser flow is in
 * creds_loopback.c.
 */
#define _GNU_SOURCE
#include "creds_login.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "creds_http.h"
#include "creds_login_int.h"
#include "creds_oauth.h"
#include "creds_preset.h"
#include "creds_secret.h"
#include "util.h"

#define DEVICE_CODE_MAX 2048
#define SHOWN_MAX 2048         /* a user code or URI from the server */
#define SHOW_MAX (16 * 1024)    /* what login_show prints at most */
#define SLOW_DOWN_SECS 5        /* RFC 8628 3.5 */
#define DEFAULT_INTERVAL 5      /* RFC 8628 3.2 */
#define DEFAULT_EXPIRES 900

/* ---- pure helpers ---- */

void login_b64url(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                          "0123456789-_";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 |
		                  (unsigned long)in[i + 1] << 8 | in[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		out[o++] = abc[in[i] >> 2];
		out[o++] = abc[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = abc[in[i] >> 2];
		out[o++] = abc[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = abc[(in[i + 1] & 15) << 2];
	}
	out[o] = '\0';
}

int login_pkce_challenge(const char *verifier, char *out, size_t outlen)
{
	unsigned char digest[32];

	if (outlen < 44 || gnutls_hash_fast(GNUTLS_DIG_SHA256, verifier,
	                                    strlen(verifier), digest) != 0)
		return -1;
	login_b64url(digest, sizeof(digest), out);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into out; -1 on a bad escape, a NUL or no room. */
static int decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 ||
			    hexval(s[i + 2]) < 0)
				return -1;
			c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		}
		if (c == 0 || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int login_query_get(const char *query, const char *key, char *out,
                    size_t outlen)
{
	size_t klen = strlen(key);
	const char *p = query;

	if (outlen == 0)
		return -1;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return decode(p + klen + 1, n - klen - 1, out, outlen);
		if (n == klen && strncmp(p, key, klen) == 0)
			return decode(p, 0, out, outlen);
		p = end ? end + 1 : NULL;
	}
	return -1;
}

/* ---- shared by both flows ---- */

/* What a refused token request means for the exit status. */
static enum ob_status status_of(enum oauth_error e)
{
	switch (e) {
	case OAUTH_E_CLIENT:
	case OAUTH_E_SCOPE:
	case OAUTH_E_CONSENT:
		return OB_CONFIG;
	case OAUTH_E_DENIED:
		return OB_NOPERM;
	case OAUTH_E_GRANT:
		return OB_PROTOCOL;
	default:
		return OB_TEMPFAIL;
	}
}

enum ob_status login_post(struct login_ctx *lc, const char *url,
                          const char *key, const struct oauth_form *f,
                          struct oauth_reply *r, enum oauth_error *kind,
                          char *err, size_t errlen)
{
	*kind = OAUTH_E_OTHER;
	if (oauth_http_post(lc->cfg, url, key, f, r, err, errlen) != 0)
		return OB_TEMPFAIL;
	if (r->status == 200)
		return OB_OK;
	*kind = oauth_error_line(r->buf, r->len, r->status, key,
	                         OAUTH_CTX_LOGIN, lc->login, err, errlen);
	return status_of(*kind);
}

void login_client_auth(const struct login_ctx *lc, struct oauth_form *f)
{
	oauth_form_add(f, "client_id", lc->cfg->oauth_client_id);
	oauth_form_add(f, "client_secret", lc->client_secret);
}

void login_show(FILE *out, const char *text)
{
	size_t n = strnlen(text, SHOW_MAX);
	char *shown = malloc(4 * n + 1);

	if (shown == NULL)
		return;
	str_escape_ctl(shown, 4 * n + 1, text, n);
	fputs(shown, out);
	free(shown);
}

enum ob_status login_finish(struct login_ctx *lc, const struct oauth_reply *r,
                            char *err, size_t errlen)
{
	const char *path = lc->cfg->oauth_refresh_token_file;
	size_t cap = SECRET_MAX + 2, n;
	char *rt = malloc(cap);
	enum ob_status st = OB_OK;

	if (rt == NULL)
		return snprintf(err, errlen, "out of memory"), OB_SOFTWARE;
	if (oauth_json_get(r->buf, r->len, "refresh_token", rt, cap - 1) != 0 ||
	    rt[0] == '\0' || strpbrk(rt, "\r\n") != NULL) {
		snprintf(err, errlen, "oauth-token-url: the reply has no refresh "
		         "token (does oauth-scope ask for one? Microsoft needs "
		         "offline_access)");
		st = OB_PROTOCOL;
	} else {
		n = strlen(rt);
		rt[n] = '\n';
		rt[n + 1] = '\0';
		if (secret_store(path, rt) != 0) {
			snprintf(err, errlen, "oauth-refresh-token-file: cannot "
			         "write %s: %s", path, strerror(errno));
			st = OB_CANTCREAT;
		}
	}
	secure_zero(rt, cap);
	free(rt);
	if (st == OB_OK) {
		oauth_cache_forget(lc->cfg);    /* an earlier sign-in's token */
		fprintf(lc->out, "Signed in: the refresh token is stored in ");
		login_show(lc->out, path);
		fprintf(lc->out, " (mode 0600).\n");
		fflush(lc->out);
	}
	return st;
}

/* ---- the device authorization grant (RFC 8628) ---- */

struct device {
	char code[DEVICE_CODE_MAX];
	char user_code[SHOWN_MAX];
	char uri[SHOWN_MAX];
	char uri_complete[SHOWN_MAX];
	long expires_in, interval;
};

static long json_long(const struct oauth_reply *r, const char *key, long dflt,
                      long max)
{
	char num[32];
	long v;

	if (oauth_json_get(r->buf, r->len, key, num, sizeof(num)) != 0 ||
	    parse_long(num, 1, max, &v) != 0)
		return dflt;
	return v;
}

/* Ask the device endpoint for a code; what it said in d. */
static enum ob_status device_start(struct login_ctx *lc, struct device *d,
                                   char *err, size_t errlen)
{
	struct oauth_form f = { 0 };
	struct oauth_reply r = { 0 };
	enum oauth_error kind;
	enum ob_status st;

	oauth_form_add(&f, "client_id", lc->cfg->oauth_client_id);
	if (lc->ep.scope[0] != '\0')
		oauth_form_add(&f, "scope", lc->ep.scope);
	st = login_post(lc, lc->ep.device_url, "oauth-device-url", &f, &r,
	                &kind, err, errlen);
	if (st == OB_OK &&
	    (oauth_json_get(r.buf, r.len, "device_code", d->code,
	                    sizeof(d->code)) != 0 ||
	     oauth_json_get(r.buf, r.len, "user_code", d->user_code,
	                    sizeof(d->user_code)) != 0 ||
	     (oauth_json_get(r.buf, r.len, "verification_uri", d->uri,
	                     sizeof(d->uri)) != 0 &&
	      oauth_json_get(r.buf, r.len, "verification_url", d->uri,
	                     sizeof(d->uri)) != 0))) {
		snprintf(err, errlen, "oauth-device-url: the reply lacks "
		         "device_code, user_code or verification_uri");
		st = OB_PROTOCOL;
	}
	if (st == OB_OK) {
		if (oauth_json_get(r.buf, r.len, "verification_uri_complete",
		                   d->uri_complete, sizeof(d->uri_complete)) != 0)
			d->uri_complete[0] = '\0';
		d->expires_in = json_long(&r, "expires_in", DEFAULT_EXPIRES,
		                          86400);
		d->interval = json_long(&r, "interval", DEFAULT_INTERVAL, 3600);
	}
	oauth_form_free(&f);
	oauth_reply_free(&r);
	return st;
}

static void device_show(const struct login_ctx *lc, const struct device *d)
{
	fprintf(lc->out, "To sign in, open ");
	login_show(lc->out, d->uri);
	fprintf(lc->out, " in a browser and enter the code ");
	login_show(lc->out, d->user_code);
	fprintf(lc->out, "\n");
	if (d->uri_complete[0] != '\0') {
		fprintf(lc->out, "(or open ");
		login_show(lc->out, d->uri_complete);
		fprintf(lc->out, ")\n");
	}
	fprintf(lc->out, "Waiting up to %ld s for the sign-in...\n",
	        d->expires_in);
	fflush(lc->out);
}

/* One poll of the token endpoint: OB_OK with the tokens in r, or the
 * error kind (pending and slow_down are not failures). */
static enum ob_status device_poll(struct login_ctx *lc, const struct device *d,
                                  struct oauth_reply *r, enum oauth_error *kind,
                                  char *err, size_t errlen)
{
	struct oauth_form f = { 0 };
	enum ob_status st;

	oauth_form_add(&f, "grant_type",
	               "urn:ietf:params:oauth:grant-type:device_code");
	oauth_form_add(&f, "device_code", d->code);
	login_client_auth(lc, &f);
	st = login_post(lc, lc->ep.token_url, "oauth-token-url", &f, r, kind,
	                err, errlen);
	oauth_form_free(&f);
	return st;
}

static enum ob_status device_flow(struct login_ctx *lc, char *err,
                                  size_t errlen)
{
	struct device *d = calloc(1, sizeof(*d));
	enum ob_status st;
	time_t deadline;

	if (d == NULL)
		return snprintf(err, errlen, "out of memory"), OB_SOFTWARE;
	st = device_start(lc, d, err, errlen);
	if (st == OB_OK)
		device_show(lc, d);
	deadline = time(NULL) + d->expires_in;
	while (st == OB_OK) {
		struct oauth_reply r = { 0 };
		enum oauth_error kind;

		if (time(NULL) + d->interval > deadline) {
			snprintf(err, errlen, "oauth-device-url: the code expired "
			         "before the sign-in; run '%s' again", lc->login);
			st = OB_TEMPFAIL;
			break;
		}
		sleep((unsigned)d->interval);
		st = device_poll(lc, d, &r, &kind, err, errlen);
		if (st == OB_OK) {
			st = login_finish(lc, &r, err, errlen);
			oauth_reply_free(&r);
			break;
		}
		oauth_reply_free(&r);
		if (kind == OAUTH_E_PENDING || kind == OAUTH_E_SLOW_DOWN) {
			if (kind == OAUTH_E_SLOW_DOWN)
				d->interval += SLOW_DOWN_SECS;
			st = OB_OK;
		}
	}
	secure_zero(d, sizeof(*d));
	free(d);
	return st;
}

/* ---- the command ---- */

static enum ob_status login_check(const struct config *cfg, char *err,
                                  size_t errlen)
{
	if (!oauth_config_is_oauth(cfg) || cfg->oauth_client_id == NULL)
		snprintf(err, errlen, "--oauth-login needs auth xoauth2 (or "
		         "oauthbearer) with oauth-client-id and oauth-provider or "
		         "oauth-token-url in the config (see OAUTH2 in "
		         "outbox.conf(5))");
	else if (cfg->token_command != NULL)
		snprintf(err, errlen, "--oauth-login is for outbox's own grants: "
		         "with token-command, that program gets the tokens");
	else if (cfg->oauth_grant != OAUTH_GRANT_REFRESH)
		snprintf(err, errlen, "oauth-grant client-credentials needs no "
		         "login: outbox gets its tokens with the client secret");
	else
		return OB_OK;
	return OB_CONFIG;
}

static bool use_device(const struct login_ctx *lc,
                       const struct login_opts *opts)
{
	if (opts->flow != LOGIN_FLOW_DEFAULT)
		return opts->flow == LOGIN_FLOW_DEVICE;
	return lc->ep.prefer_device;
}

enum ob_status login_run(const struct config *cfg,
                         const struct login_opts *opts, char *err,
                         size_t errlen)
{
	struct login_ctx lc;
	enum ob_status st = login_check(cfg, err, errlen);

	if (st != OB_OK)
		return st;
	memset(&lc, 0, sizeof(lc));
	lc.cfg = cfg;
	lc.out = opts->out ? opts->out : stdout;
	oauth_endpoints(cfg, &lc.ep);
	oauth_login_command(cfg, lc.login, sizeof(lc.login));
	if (use_device(&lc, opts) && lc.ep.device_url[0] == '\0')
		return snprintf(err, errlen, "the device login needs "
		                "oauth-device-url (or oauth-provider microsoft; or "
		                "use --browser)"), OB_CONFIG;
	if (!use_device(&lc, opts) && lc.ep.auth_url[0] == '\0')
		return snprintf(err, errlen, "the browser login needs "
		                "oauth-auth-url (or oauth-provider; or use "
		                "--device)"), OB_CONFIG;
	if (cfg->oauth_client_secret_file != NULL &&
	    secret_file("oauth-client-secret-file",
	                cfg->oauth_client_secret_file,
	                secret_strict(cfg->privileged), &lc.client_secret, err,
	                errlen) != 0)
		return OB_CONFIG;
	st = use_device(&lc, opts) ? device_flow(&lc, err, errlen)
	                           : login_browser(&lc, opts, err, errlen);
	if (lc.client_secret != NULL) {
		secure_zero(lc.client_secret, strlen(lc.client_secret));
		free(lc.client_secret);
	}
	return st;
}
