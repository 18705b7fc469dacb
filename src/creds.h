/*
 * creds.h - the credentials module: every way outbox gets the secret it
 * authenticates to a smarthost with.
 *
 *  - a password: inline ("password", in a file only its owner reads),
 *    from a file ("password-file", first line) or from a command
 *    ("password-command", first line of its output);
 *  - an OAuth2 access token (auth xoauth2 / oauthbearer): from a command
 *    ("token-command", asked once per connection), or from outbox's own
 *    grants (refresh-token, client-credentials) against the token
 *    endpoint, with its token cache beside the queue (creds_oauth.c).
 *
 * Secrets never appear in an error message. The module's own parts
 * (creds_secret.h: commands and files; creds_oauth.h: the grants and
 * their cache; creds_http.h: requests to the OAuth2 server and its error
 * lines; creds_preset.h: provider presets and the check of the OAuth2
 * keys, which config.c runs) are used by no one else, except the login
 * command (creds_login.h), which main.c runs.
 */
#ifndef OUTBOX_CREDS_H
#define OUTBOX_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum creds_kind {
	CREDS_NONE = 0,     /* no user: no AUTH */
	CREDS_PASSWORD,     /* a password (which may be absent: AUTH with
	                       the user alone, e.g. EXTERNAL) */
	CREDS_BEARER        /* an OAuth2 access token */
};

/* The secrets one configuration authenticates with, over a run. */
struct creds;

/* Credentials for cfg (kept by pointer: it must outlive them). Nothing
 * is read until creds_get. NULL when out of memory. */
struct creds *creds_new(const struct config *cfg);

/* What kind of secret cfg authenticates with. */
enum creds_kind creds_kind(const struct config *cfg);

/*
 * Read what is read once per run (a password), so that a secret the
 * configuration cannot yield is found before any connection: 0, or -1
 * with a one-line reason in err naming the key to fix (an admin must
 * act). Tokens are not asked for here.
 */
int creds_prepare(struct creds *c, char *err, size_t errlen);

/*
 * The secret for a new connection, into *secret (owned by c; valid
 * until the next creds_get or creds_free; NULL when there is none). A
 * password is read once and kept for the run; a token is asked for each
 * time (token-command run again, or the cached token while it is good)
 * and, when fresh, never taken from the cache (the server refused the
 * last one). Returns 0, or -1 with a one-line reason in err naming the
 * key to fix.
 */
int creds_get(struct creds *c, bool fresh, const char **secret, char *err,
              size_t errlen);

/* Might a fresh secret succeed where the last one was refused? (A token
 * may have been revoked or expired early; a password would be the same.) */
bool creds_refreshable(const struct creds *c);

/*
 * The password of cfg: the "password" value, the first line of
 * "password-file" (which other users must not be able to read) or the
 * first line printed by "password-command". 0 and a malloc'd string in
 * *out (caller wipes and frees; NULL when none is configured), or -1 with
 * a reason in err.
 */
int creds_password(const struct config *cfg, char **out, char *err,
                   size_t errlen);

/* Wipe the secrets c holds (c stays allocated, see deliver_park). */
void creds_wipe(struct creds *c);

/* Wipe and free. NULL is fine. */
void creds_free(struct creds *c);

#endif
