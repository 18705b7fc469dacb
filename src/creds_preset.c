/*
 * creds_preset.c - OAuth2 provider presets and the check of the OAuth2
 * keys (see creds_preset.h).
 *
 * The endpoints are the providers' documented ones:
 *  - Microsoft identity platform (v2.0):
 *    https://login.microsoftonline.com/TENANT/oauth2/v2.0/{token,devicecode,
 *    authorize}; SMTP scopes https://outlook.office.com/SMTP.Send (with
 *    offline_access for a refresh token) delegated, and
 *    https://outlook.office365.com/.default app-only (SMTP.SendAsApp).
 *  - Google: https://oauth2.googleapis.com/token,
 *    https://oauth2.googleapis.com/device/code,
 *    https://accounts.google.com/o/oauth2/v2/auth; scope
 *    https://mail.google.com/ (which Google's device flow does not allow,
 *    hence the browser login by default).
 */
#include "creds_preset.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MS_BASE "https://login.microsoftonline.com/"
#define MS_SCOPE_DELEGATED "https://outlook.office.com/SMTP.Send offline_access"
#define MS_SCOPE_APP "https://outlook.office365.com/.default"
#define GOOGLE_TOKEN "https://oauth2.googleapis.com/token"
#define GOOGLE_DEVICE "https://oauth2.googleapis.com/device/code"
#define GOOGLE_AUTH "https://accounts.google.com/o/oauth2/v2/auth"
#define GOOGLE_SCOPE "https://mail.google.com/"

bool oauth_config_is_oauth(const struct config *cfg)
{
	return cfg->auth != NULL && (strcmp(cfg->auth, "XOAUTH2") == 0 ||
	                             strcmp(cfg->auth, "OAUTHBEARER") == 0);
}

void oauth_login_command(const struct config *cfg, char *out, size_t len)
{
	char conf[600] = "", acct[100] = "";

	if (cfg->path != NULL && cfg->path[0] != '(' &&
	    strcmp(cfg->path, CONFIG_DEFAULT_PATH) != 0 &&
	    strlen(cfg->path) < 512)
		snprintf(conf, sizeof(conf), " -C %s", cfg->path);
	if (cfg->account != NULL && strlen(cfg->account) < 80)
		snprintf(acct, sizeof(acct), " --account %s", cfg->account);
	snprintf(out, len, "outbox%s --oauth-login%s", conf, acct);
}

/* out = the explicit value, else the preset's; "" when it does not fit. */
static void pick(char *out, size_t outlen, const char *explicit_val,
                 const char *preset)
{
	const char *v = explicit_val ? explicit_val : preset ? preset : "";

	if (snprintf(out, outlen, "%s", v) >= (int)outlen)
		out[0] = '\0';
}

static void microsoft(const struct config *cfg, struct oauth_endpoints *ep)
{
	const char *tenant = cfg->oauth_tenant ? cfg->oauth_tenant : "common";
	char url[OAUTH_URL_MAX];

	if (strlen(tenant) > 200)
		tenant = "";
	snprintf(url, sizeof(url), MS_BASE "%s/oauth2/v2.0/token", tenant);
	pick(ep->token_url, sizeof(ep->token_url), cfg->oauth_token_url, url);
	snprintf(url, sizeof(url), MS_BASE "%s/oauth2/v2.0/devicecode", tenant);
	pick(ep->device_url, sizeof(ep->device_url), cfg->oauth_device_url,
	     url);
	snprintf(url, sizeof(url), MS_BASE "%s/oauth2/v2.0/authorize", tenant);
	pick(ep->auth_url, sizeof(ep->auth_url), cfg->oauth_auth_url, url);
	pick(ep->scope, sizeof(ep->scope), cfg->oauth_scope,
	     cfg->oauth_grant == OAUTH_GRANT_CLIENT ? MS_SCOPE_APP
	                                           : MS_SCOPE_DELEGATED);
	ep->prefer_device = true;
}

void oauth_endpoints(const struct config *cfg, struct oauth_endpoints *ep)
{
	memset(ep, 0, sizeof(*ep));
	switch (cfg->oauth_provider) {
	case OAUTH_PROVIDER_MICROSOFT:
		microsoft(cfg, ep);
		return;
	case OAUTH_PROVIDER_GOOGLE:
		pick(ep->token_url, sizeof(ep->token_url), cfg->oauth_token_url,
		     GOOGLE_TOKEN);
		pick(ep->device_url, sizeof(ep->device_url),
		     cfg->oauth_device_url, GOOGLE_DEVICE);
		pick(ep->auth_url, sizeof(ep->auth_url), cfg->oauth_auth_url,
		     GOOGLE_AUTH);
		pick(ep->scope, sizeof(ep->scope), cfg->oauth_scope,
		     GOOGLE_SCOPE);
		ep->offline_params = true;
		return;
	case OAUTH_PROVIDER_NONE:
		break;
	}
	pick(ep->token_url, sizeof(ep->token_url), cfg->oauth_token_url, NULL);
	pick(ep->device_url, sizeof(ep->device_url), cfg->oauth_device_url,
	     NULL);
	pick(ep->auth_url, sizeof(ep->auth_url), cfg->oauth_auth_url, NULL);
	pick(ep->scope, sizeof(ep->scope), cfg->oauth_scope, NULL);
	/* no preset: the browser when there is an authorization endpoint */
	ep->prefer_device = cfg->oauth_auth_url == NULL &&
	                    cfg->oauth_device_url != NULL;
}

/* Is any oauth-* key set? */
static bool any_oauth_key(const struct config *cfg)
{
	return cfg->oauth_token_url || cfg->oauth_client_id ||
	       cfg->oauth_refresh_token_file || cfg->oauth_client_secret_file ||
	       cfg->oauth_provider != OAUTH_PROVIDER_NONE || cfg->oauth_tenant ||
	       cfg->oauth_scope || cfg->oauth_device_url || cfg->oauth_auth_url ||
	       cfg->oauth_grant != OAUTH_GRANT_REFRESH;
}

/* A URL key: https://, and short enough. NULL when fine. */
static const char *bad_url(const char *val, const char *https_msg,
                           const char *long_msg)
{
	if (val == NULL)
		return NULL;
	if (strncmp(val, "https://", 8) != 0 || val[8] == '\0' ||
	    val[8] == '/')
		return https_msg;
	return strlen(val) >= OAUTH_URL_MAX ? long_msg : NULL;
}

static const char *check_urls(const struct config *cfg)
{
	const char *why;

	why = bad_url(cfg->oauth_token_url, "oauth-token-url must be an "
	              "https:// URL", "oauth-token-url is too long");
	if (why == NULL)
		why = bad_url(cfg->oauth_device_url, "oauth-device-url must be "
		              "an https:// URL", "oauth-device-url is too long");
	if (why == NULL)
		why = bad_url(cfg->oauth_auth_url, "oauth-auth-url must be an "
		              "https:// URL", "oauth-auth-url is too long");
	if (why == NULL && cfg->oauth_scope != NULL &&
	    strlen(cfg->oauth_scope) >= OAUTH_SCOPE_MAX)
		why = "oauth-scope is too long";
	return why;
}

static const char *check_tenant(const struct config *cfg)
{
	const char *t = cfg->oauth_tenant;

	if (t == NULL) {
		if (cfg->oauth_provider == OAUTH_PROVIDER_MICROSOFT &&
		    cfg->oauth_grant == OAUTH_GRANT_CLIENT &&
		    cfg->oauth_token_url == NULL)
			return "oauth-grant client-credentials with oauth-provider "
			       "microsoft needs oauth-tenant (the directory "
			       "(tenant) ID or domain of the app registration)";
		return NULL;
	}
	if (cfg->oauth_provider != OAUTH_PROVIDER_MICROSOFT)
		return "oauth-tenant goes with oauth-provider microsoft "
		       "(remove it, or set oauth-provider microsoft)";
	if (strlen(t) > 200)
		return "oauth-tenant is too long";
	for (; *t != '\0'; t++) {
		if (!isalnum((unsigned char)*t) && *t != '.' && *t != '-')
			return "oauth-tenant must be a tenant ID or domain "
			       "(letters, digits, '.' and '-')";
	}
	if (cfg->oauth_grant == OAUTH_GRANT_CLIENT &&
	    (strcmp(cfg->oauth_tenant, "common") == 0 ||
	     strcmp(cfg->oauth_tenant, "organizations") == 0 ||
	     strcmp(cfg->oauth_tenant, "consumers") == 0))
		return "oauth-grant client-credentials needs the directory "
		       "(tenant) ID or domain in oauth-tenant, not common, "
		       "organizations or consumers";
	return NULL;
}

/* The grant's own needs. */
static const char *check_grant(const struct config *cfg,
                               const struct oauth_endpoints *ep)
{
	if (cfg->oauth_client_id == NULL)
		return "the OAuth2 token endpoint needs oauth-client-id (the "
		       "application (client) ID of the app registration)";
	if (ep->token_url[0] == '\0')
		return "oauth-token-url is missing (or set oauth-provider "
		       "microsoft or google)";
	if (cfg->oauth_grant == OAUTH_GRANT_REFRESH) {
		if (cfg->oauth_refresh_token_file == NULL)
			return "oauth-grant refresh-token needs "
			       "oauth-refresh-token-file (where " OAUTH_LOGIN_COMMAND
			       " stores the refresh token)";
		return NULL;
	}
	if (cfg->oauth_provider == OAUTH_PROVIDER_GOOGLE)
		return "oauth-provider google has no client-credentials grant "
		       "for mail (use oauth-grant refresh-token, or a "
		       "token-command for a service account)";
	if (cfg->oauth_client_secret_file == NULL)
		return "oauth-grant client-credentials needs "
		       "oauth-client-secret-file (the app's client secret)";
	if (cfg->oauth_refresh_token_file != NULL)
		return "oauth-refresh-token-file is not used with oauth-grant "
		       "client-credentials (remove it)";
	if (ep->scope[0] == '\0')
		return "oauth-grant client-credentials needs oauth-scope (for "
		       "Microsoft 365: " MS_SCOPE_APP ")";
	return NULL;
}

int oauth_config_check(const struct config *cfg, char *why, size_t len)
{
	bool is_oauth = oauth_config_is_oauth(cfg);
	bool flow = any_oauth_key(cfg);
	struct oauth_endpoints ep;
	const char *w = NULL;

	if (!is_oauth && (flow || cfg->token_command))
		w = "token-command and oauth-* need auth xoauth2 or oauthbearer";
	else if (is_oauth && cfg->user == NULL)
		w = "auth xoauth2/oauthbearer needs user";
	else if (is_oauth && !cfg->token_command && !flow)
		w = "auth xoauth2/oauthbearer needs token-command, or "
		    "oauth-token-url (or oauth-provider), oauth-client-id and "
		    "oauth-refresh-token-file";
	else if (cfg->token_command && flow)
		w = "set token-command or the oauth-* keys, not both";
	if (w == NULL && is_oauth && flow) {
		w = check_urls(cfg);
		if (w == NULL)
			w = check_tenant(cfg);
		if (w == NULL) {
			oauth_endpoints(cfg, &ep);
			w = check_grant(cfg, &ep);
		}
	}
	if (w == NULL)
		return 0;
	snprintf(why, len, "%s", w);
	return -1;
}
