/*
 * creds_login.h - "outbox --oauth-login": the admin signs in once and
 * outbox stores the refresh token that its refresh-token grant
 * (creds_oauth.h) then uses unattended.
 *
 * Two flows, both against the endpoints of one configuration
 * (creds_preset.h):
 *  - the device authorization grant (RFC 8628): outbox prints a URL and a
 *    code to enter there from any browser, and polls the token endpoint
 *    (authorization_pending, slow_down: interval + 5 s, expired_token,
 *    access_denied), for at most the code's expires_in;
 *  - the authorization-code grant with PKCE (RFC 7636, S256) and a
 *    loopback redirect (RFC 8252): outbox listens on 127.0.0.1 (a given
 *    port, usable through "ssh -L PORT:127.0.0.1:PORT", or a free one),
 *    prints the authorization URL, takes exactly one GET of the redirect
 *    path (its state must match), answers a small page and exchanges the
 *    code with the code_verifier.
 * The refresh token replaces oauth-refresh-token-file atomically (0600,
 * owned by the caller) and is never printed.
 */
#ifndef OUTBOX_CREDS_LOGIN_H
#define OUTBOX_CREDS_LOGIN_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "status.h"

#define LOGIN_DEFAULT_TIMEOUT 300   /* seconds for the browser flow */

enum login_flow {
	LOGIN_FLOW_DEFAULT = 0, /* the preset's: Microsoft device, Google
	                           browser; without a preset, the browser
	                           when oauth-auth-url is set */
	LOGIN_FLOW_DEVICE,      /* --device */
	LOGIN_FLOW_BROWSER      /* --browser */
};

struct login_opts {
	enum login_flow flow;
	int port;               /* browser: loopback port; 0 = a free one */
	long timeout;           /* browser: seconds to wait for the redirect
	                           (0 = LOGIN_DEFAULT_TIMEOUT) */
	FILE *out;              /* the instructions for the admin (stdout) */
};

/*
 * Sign in as cfg says (auth xoauth2/oauthbearer, oauth-grant
 * refresh-token) and store the refresh token in cfg's
 * oauth-refresh-token-file. Returns OB_OK; or with a one-line reason in
 * err: OB_CONFIG (the config cannot log in, or the provider refused the
 * client, scope or consent), OB_NOPERM (the sign-in was denied),
 * OB_TEMPFAIL (the code expired, the wait timed out, the server could not
 * be reached), OB_PROTOCOL (a redirect with the wrong state, a reply
 * without a refresh token), OB_CANTCREAT (the file cannot be written).
 */
enum ob_status login_run(const struct config *cfg,
                         const struct login_opts *opts, char *err,
                         size_t errlen);

/*
 * The value of key in a URL query string ("a=1&b=x%20y"; '+' is a
 * space), percent-decoded into out. Returns 0, or -1 when key is absent,
 * malformed (a bad escape, a decoded NUL) or does not fit. Pure.
 */
int login_query_get(const char *query, const char *key, char *out,
                    size_t outlen);

/* base64url without padding (RFC 4648 section 5) of in[0..n) into out,
 * which holds at least 4 * ((n + 2) / 3) + 1 octets. Pure. */
void login_b64url(const unsigned char *in, size_t n, char *out);

/* The S256 code_challenge of a code_verifier (RFC 7636 4.2) into out
 * (at least 44 octets). Returns 0, or -1 when hashing failed. */
int login_pkce_challenge(const char *verifier, char *out, size_t outlen);

#endif
