/*
 * creds_login_int.h - what the login command's two flows share
 * (creds_login.c: the device grant and the command; creds_loopback.c:
 * the browser flow). Internal to the credentials module.
 */
#ifndef OUTBOX_CREDS_LOGIN_INT_H
#define OUTBOX_CREDS_LOGIN_INT_H

#include <stdio.h>

#include "creds_http.h"
#include "creds_login.h"
#include "creds_preset.h"

struct login_ctx {
	const struct config *cfg;
	struct oauth_endpoints ep;
	char login[600];        /* the login command, for error messages */
	FILE *out;
	char *client_secret;    /* oauth-client-secret-file's, or NULL */
};

/* POST f to url (key names it in errors): OB_OK on HTTP 200 with the
 * reply in r (oauth_reply_free it either way); else the one-line error
 * in err, its kind in *kind and the status it means. */
enum ob_status login_post(struct login_ctx *lc, const char *url,
                          const char *key, const struct oauth_form *f,
                          struct oauth_reply *r, enum oauth_error *kind,
                          char *err, size_t errlen);

/* client_id (and client_secret when configured) into f. */
void login_client_auth(const struct login_ctx *lc, struct oauth_form *f);

/* Print text from a server, control characters escaped, bounded. */
void login_show(FILE *out, const char *text);

/* Store the refresh token of a token reply and say where. */
enum ob_status login_finish(struct login_ctx *lc, const struct oauth_reply *r,
                            char *err, size_t errlen);

/* The browser flow (creds_loopback.c). */
enum ob_status login_browser(struct login_ctx *lc,
                             const struct login_opts *opts, char *err,
                             size_t errlen);

#endif
