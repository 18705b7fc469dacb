/*
 * creds_oauth.h - OAuth2 access tokens for AUTH XOAUTH2 / OAUTHBEARER:
 * from a token-command, or from outbox's own grants against the token
 * endpoint (creds_preset.h: oauth-token-url or the provider's): the
 * refresh-token grant (RFC 6749 section 6) with the token
 * "outbox --oauth-login" stored (creds_login.h), or the
 * client-credentials grant (section 4.4); cached with its expiry beside
 * the queue. Internal to the credentials module: the rest of outbox asks
 * creds.h.
 */
#ifndef OUTBOX_CREDS_OAUTH_H
#define OUTBOX_CREDS_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Refresh this long before the cached token expires. */
#define OAUTH_EARLY_SECS 60
#define OAUTH_CACHE_NAME "oauth-token"

/*
 * An access token for one connection: token-command's first line; or the
 * cached token while it has more than OAUTH_EARLY_SECS left (unless
 * force_refresh); or a new one from the token endpoint, exchanging the
 * refresh token (a rotated refresh token replaces the file atomically)
 * or the client's credentials; the new access token and its expiry go
 * to the 0600 cache file. Returns 0 and a malloc'd token in *out (caller
 * wipes and frees), or -1 with a one-line reason in err that never
 * contains a secret (a refusal says what to do: creds_http.h).
 */
int oauth_token(const struct config *cfg, bool force_refresh, char **out,
                char *err, size_t errlen);

/* Remove the cached access token of cfg, if any (after a new sign-in,
 * so that the next connection does not use an earlier account's). */
void oauth_cache_forget(const struct config *cfg);

/*
 * The value of a top-level member of a JSON object (a string, unescaped,
 * or a number as written) into out. Returns 0, or -1 when absent or out
 * is too small. Pure; exported for the tests.
 */
int oauth_json_get(const char *json, size_t len, const char *key, char *out,
                   size_t outlen);

#endif
