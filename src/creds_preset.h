/*
 * creds_preset.h - where an OAuth2 configuration gets its tokens: the
 * endpoints and scopes of the provider presets (oauth-provider microsoft
 * | google) under the explicit keys (oauth-token-url, oauth-device-url,
 * oauth-auth-url, oauth-scope), and the check of the OAuth2 keys as a
 * whole that config_load runs. Pure: no I/O. Part of the credentials
 * module; config.c calls oauth_config_check.
 */
#ifndef OUTBOX_CREDS_PRESET_H
#define OUTBOX_CREDS_PRESET_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define OAUTH_URL_MAX 1024
#define OAUTH_SCOPE_MAX 1024

/* The login command, as error messages name it. */
#define OAUTH_LOGIN_COMMAND "outbox --oauth-login"

/* What one configuration talks to (each "" when it has none). */
struct oauth_endpoints {
	char token_url[OAUTH_URL_MAX];
	char device_url[OAUTH_URL_MAX];  /* RFC 8628 device authorization */
	char auth_url[OAUTH_URL_MAX];    /* authorization endpoint */
	char scope[OAUTH_SCOPE_MAX];     /* space-separated */
	bool prefer_device;     /* the login's default flow: device (true)
	                           or browser (false) */
	bool offline_params;    /* the authorization URL asks for a refresh
	                           token the provider's way (Google:
	                           access_type=offline&prompt=consent) */
};

/*
 * The endpoints and scopes of cfg: each explicit key as written, else
 * the preset's value for the provider, tenant and grant (Microsoft:
 * tenant "common" unless oauth-tenant says otherwise). Values too long
 * for the fields are left empty (oauth_config_check refuses them).
 */
void oauth_endpoints(const struct config *cfg, struct oauth_endpoints *ep);

/*
 * The OAuth2 keys of cfg taken together (auth, user, token-command, the
 * oauth-* keys): 0 when they make a usable setup, else -1 with a reason
 * in why naming the key to fix and how (no value is quoted). Every URL
 * must be https:// (the loopback too: see outbox.conf(5)).
 */
int oauth_config_check(const struct config *cfg, char *why, size_t len);

/* The login command for cfg as the admin types it into out:
 * OAUTH_LOGIN_COMMAND, with "-C FILE" when cfg is not the default file
 * and "--account NAME" when cfg is a named account. */
void oauth_login_command(const struct config *cfg, char *out, size_t len);

/* Does cfg authenticate with an OAuth2 token (auth xoauth2/oauthbearer)? */
bool oauth_config_is_oauth(const struct config *cfg);

#endif
