/*
 * creds_http.c - form POSTs to an OAuth2 server and its error replies
 * (see creds_http.h).
 */
#define _GNU_SOURCE
#include "creds_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_oauth.h"
#include "proxy.h"
#include "util.h"

#define FORM_MAX (64 * 1024)
#define DESC_MAX 160

/* ---- the form ---- */

static bool form_grow(struct oauth_form *f, size_t more)
{
	size_t cap;
	char *nb;

	if (f->len + more + 1 <= f->cap)
		return true;
	if (f->len + more + 1 > FORM_MAX)
		return false;
	cap = f->cap ? f->cap : 256;
	while (cap < f->len + more + 1)
		cap *= 2;
	nb = malloc(cap);
	if (nb == NULL)
		return false;
	if (f->buf != NULL) {       /* copy, then wipe the old buffer */
		memcpy(nb, f->buf, f->len + 1);
		secure_zero(f->buf, f->cap);
		free(f->buf);
	}
	f->buf = nb;
	f->cap = cap;
	return true;
}

static void form_put(struct oauth_form *f, const char *s, size_t n)
{
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
}

void oauth_form_add(struct oauth_form *f, const char *name,
                    const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	if (value == NULL || f->oom)
		return;
	if (!form_grow(f, strlen(name) + 2 + 3 * strlen(value))) {
		f->oom = true;
		return;
	}
	if (f->len > 0)
		form_put(f, "&", 1);
	form_put(f, name, strlen(name));
	form_put(f, "=", 1);
	for (i = 0; value[i] != '\0'; i++) {
		unsigned char c = (unsigned char)value[i];
		char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
			form_put(f, (const char *)&value[i], 1);
		else
			form_put(f, enc, 3);
	}
}

void oauth_form_free(struct oauth_form *f)
{
	if (f->buf != NULL) {
		secure_zero(f->buf, f->cap);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

/* ---- the POST ---- */

static size_t on_data(char *p, size_t size, size_t nmemb, void *ptr)
{
	struct oauth_reply *r = ptr;
	size_t n = size * nmemb;

	if (r->len + n > OAUTH_REPLY_MAX)
		return 0;
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

static CURL *handle(const struct config *cfg, const char *url,
                    const struct oauth_form *form, struct oauth_reply *r)
{
	CURL *h = curl_easy_init();

	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, form->buf ? form->buf : "");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, cfg->timeout);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (cfg->ca_file != NULL || ca_bundle() != NULL) {
		curl_easy_setopt(h, CURLOPT_CAINFO,
		                 cfg->ca_file ? cfg->ca_file : ca_bundle());
		curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL);
	}
	return h;
}

int oauth_http_post(const struct config *cfg, const char *url,
                    const char *key, const struct oauth_form *form,
                    struct oauth_reply *r, char *err, size_t errlen)
{
	CURL *h;
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	r->buf = malloc(OAUTH_REPLY_MAX + 1);
	if (r->buf == NULL || form->oom)
		return snprintf(err, errlen, "%s: out of memory", key), -1;
	r->buf[0] = '\0';
	h = handle(cfg, url, form, r);
	if (h == NULL)
		return snprintf(err, errlen, "%s: out of memory", key), -1;
	if (proxy_apply(h, proxy_choose(cfg->proxy, cfg->privileged)) !=
	    CURLE_OK) {
		curl_easy_cleanup(h);
		return snprintf(err, errlen, "%s: libcurl refused the proxy "
		                "setting", key), -1;
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", key, rc == CURLE_WRITE_ERROR ?
		         "the reply is too long" : curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

void oauth_reply_free(struct oauth_reply *r)
{
	if (r->buf != NULL) {
		secure_zero(r->buf, OAUTH_REPLY_MAX + 1);
		free(r->buf);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- error replies ---- */

/* The error code as a word: letters, digits, '_', '-', '.' only. */
static void error_code(const char *json, size_t len, char *out, size_t n)
{
	char raw[64];
	size_t i;

	out[0] = '\0';
	if (oauth_json_get(json, len, "error", raw, sizeof(raw)) != 0)
		return;
	for (i = 0; raw[i] != '\0'; i++) {
		char c = raw[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("_-.", c) != NULL))
			return;
	}
	snprintf(out, n, "%s", raw);
}

/* The description's first line, printable ASCII, at most DESC_MAX. */
static void description(const char *json, size_t len, char *out, size_t n)
{
	char raw[1024];
	size_t i, o = 0;

	out[0] = '\0';
	if (oauth_json_get(json, len, "error_description", raw,
	                   sizeof(raw)) != 0)
		return;
	for (i = 0; raw[i] != '\0' && raw[i] != '\r' && raw[i] != '\n' &&
	            o + 4 < n && o < DESC_MAX; i++) {
		unsigned char c = (unsigned char)raw[i];

		out[o++] = c < ' ' || c >= 0x7f ? '?' : (char)c;
	}
	if (raw[i] != '\0' && raw[i] != '\r' && raw[i] != '\n' && o + 4 <= n)
		memcpy(out + o, "...", 3), o += 3;
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static enum oauth_error classify(const char *code, const char *desc)
{
	static const struct { const char *code; enum oauth_error e; } T[] = {
		{ "invalid_grant", OAUTH_E_GRANT },
		{ "invalid_client", OAUTH_E_CLIENT },
		{ "unauthorized_client", OAUTH_E_CLIENT },
		{ "invalid_scope", OAUTH_E_SCOPE },
		{ "consent_required", OAUTH_E_CONSENT },
		{ "interaction_required", OAUTH_E_CONSENT },
		{ "authorization_pending", OAUTH_E_PENDING },
		{ "slow_down", OAUTH_E_SLOW_DOWN },
		{ "expired_token", OAUTH_E_EXPIRED },
		{ "access_denied", OAUTH_E_DENIED },
	};
	size_t i;

	/* Microsoft: "AADSTS65001: The user or administrator has not
	 * consented..." comes as invalid_grant */
	if (strncmp(desc, "AADSTS65001", 11) == 0)
		return OAUTH_E_CONSENT;
	for (i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
		if (strcmp(code, T[i].code) == 0)
			return T[i].e;
	}
	return OAUTH_E_OTHER;
}

/* The advice for an error kind in a context. */
static const char *advice(enum oauth_error e, enum oauth_context ctx)
{
	switch (e) {
	case OAUTH_E_GRANT:
		return ctx == OAUTH_CTX_REFRESH
		       ? "the refresh token expired or was revoked; run '%s' to "
		         "sign in again"
		       : ctx == OAUTH_CTX_LOGIN
		       ? "the sign-in was not accepted; run '%s' again"
		       : "the grant was refused; check oauth-client-id and "
		         "oauth-client-secret-file";
	case OAUTH_E_CLIENT:
		return "the client was refused (wrong, disabled or expired "
		       "credentials); check oauth-client-id and "
		       "oauth-client-secret-file";
	case OAUTH_E_SCOPE:
		return "the scope was refused; check oauth-scope";
	case OAUTH_E_CONSENT:
		return "an administrator must grant consent to the application "
		       "(oauth-client-id) for its scopes (oauth-scope)";
	case OAUTH_E_EXPIRED:
		return "the sign-in code expired before it was used; run '%s' "
		       "again and sign in sooner";
	case OAUTH_E_DENIED:
		return "the sign-in was denied; run '%s' again and approve "
		       "the access";
	default:
		return NULL;
	}
}

enum oauth_error oauth_error_line(const char *json, size_t len, long status,
                                  const char *key, enum oauth_context ctx,
                                  const char *login, char *out,
                                  size_t outlen)
{
	char code[64], desc[DESC_MAX + 8], what[512] = "";
	const char *fmt;
	enum oauth_error e;

	error_code(json, len, code, sizeof(code));
	description(json, len, desc, sizeof(desc));
	e = classify(code, desc);
	fmt = advice(e, ctx);
	if (fmt != NULL) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(what, sizeof(what), fmt, login ? login : "");
#pragma GCC diagnostic pop
		snprintf(out, outlen, "%s: %s: %s%s%s%s", key, code, what,
		         desc[0] ? " (" : "", desc, desc[0] ? ")" : "");
	} else if (code[0] != '\0') {
		snprintf(out, outlen, "%s: HTTP %ld: %s%s%s%s", key, status, code,
		         desc[0] ? " (" : "", desc, desc[0] ? ")" : "");
	} else {
		snprintf(out, outlen, "%s: HTTP %ld", key, status);
	}
	return e;
}
