/*
 * creds_http.h - talking to an OAuth2 server: a form POST over verified
 * HTTPS (RFC 6749 section 4, RFC 8628 section 3.1), the form it sends, and
 * the one-line error its refusals become (RFC 6749 section 5.2). Internal
 * to the credentials module (creds_oauth.c, creds_login.c).
 */
#ifndef OUTBOX_CREDS_HTTP_H
#define OUTBOX_CREDS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define OAUTH_REPLY_MAX (64 * 1024)

/* An application/x-www-form-urlencoded body, grown by oauth_form_add. */
struct oauth_form {
	char *buf;              /* NUL-terminated; NULL until the first add */
	size_t len, cap;
	bool oom;               /* an add ran out of memory (or over 64 KB) */
};

/* Append "&name=value" (the first without '&'), value percent-encoded
 * (every octet but A-Z a-z 0-9 - . _ ~). value NULL: nothing added. */
void oauth_form_add(struct oauth_form *f, const char *name,
                    const char *value);

/* Wipe (it holds secrets) and free what f holds; f is zeroed. */
void oauth_form_free(struct oauth_form *f);

/* A server's reply. */
struct oauth_reply {
	char *buf;              /* the body, NUL-terminated (malloc'd) */
	size_t len;
	long status;            /* HTTP status */
};

/*
 * POST form to url (https only, verified with cfg's ca-file or the
 * system bundle, through cfg's proxy, within cfg's timeout). key names
 * the URL's config key in errors ("oauth-token-url"). Returns 0 when the
 * server answered (any status: see r->status), -1 with a one-line reason
 * in err otherwise. r is filled either way; oauth_reply_free it.
 */
int oauth_http_post(const struct config *cfg, const char *url,
                    const char *key, const struct oauth_form *form,
                    struct oauth_reply *r, char *err, size_t errlen);

/* Wipe and free r's body. */
void oauth_reply_free(struct oauth_reply *r);

/* What an error reply (RFC 6749 5.2, RFC 8628 3.5) asks of outbox. */
enum oauth_error {
	OAUTH_E_OTHER = 0,      /* anything else (HTTP status, no JSON) */
	OAUTH_E_GRANT,          /* invalid_grant: refresh token or code
	                           expired, revoked or used */
	OAUTH_E_CLIENT,         /* invalid_client, unauthorized_client */
	OAUTH_E_SCOPE,          /* invalid_scope */
	OAUTH_E_CONSENT,        /* consent_required, interaction_required
	                           (or Microsoft's AADSTS65001) */
	OAUTH_E_PENDING,        /* authorization_pending (device grant) */
	OAUTH_E_SLOW_DOWN,      /* slow_down (device grant) */
	OAUTH_E_EXPIRED,        /* expired_token (device grant) */
	OAUTH_E_DENIED          /* access_denied */
};

/* What the request was, for the advice in the error line. */
enum oauth_context {
	OAUTH_CTX_REFRESH = 0,  /* refresh-token grant */
	OAUTH_CTX_CLIENT,       /* client-credentials grant */
	OAUTH_CTX_LOGIN         /* the login command's requests */
};

/*
 * The one line an error reply becomes, into out: "KEY: ERROR: what
 * happened (DESCRIPTION); what to do", naming the login command (login,
 * e.g. "outbox -C /etc/outbox.conf --oauth-login") or the config keys to
 * fix. Only the provider's error code (letters, digits, '_', '-', '.')
 * and its description (up to the first line end, control and non-ASCII
 * octets as '?', at most 160 octets) are quoted from the reply; nothing
 * else of it. Returns the kind of error. Pure.
 */
enum oauth_error oauth_error_line(const char *json, size_t len, long status,
                                  const char *key, enum oauth_context ctx,
                                  const char *login, char *out,
                                  size_t outlen);

#endif
