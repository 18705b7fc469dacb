/*
 * creds.c - the credentials module (see creds.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_oauth.h"
#include "creds_secret.h"
#include "util.h"

struct creds {
	const struct config *cfg;
	bool have_password;     /* the password was read (it may be NULL) */
	char *secret;           /* the password, or the last token */
};

static void wipe(char **s)
{
	if (*s != NULL) {
		secure_zero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

struct creds *creds_new(const struct config *cfg)
{
	struct creds *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->cfg = cfg;
	return c;
}

enum creds_kind creds_kind(const struct config *cfg)
{
	if (cfg->user == NULL)
		return CREDS_NONE;
	if (cfg->auth != NULL && (strcmp(cfg->auth, "XOAUTH2") == 0 ||
	                          strcmp(cfg->auth, "OAUTHBEARER") == 0))
		return CREDS_BEARER;
	return CREDS_PASSWORD;
}

int creds_password(const struct config *cfg, char **out, char *err,
                   size_t errlen)
{
	*out = NULL;
	if (cfg->password != NULL) {
		*out = strdup(cfg->password);
		if (*out == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	if (cfg->password_command != NULL)
		return secret_command("password-command", cfg->password_command,
		                      cfg->timeout, cfg->privileged, out, err,
		                      errlen);
	if (cfg->password_file == NULL)
		return 0;
	return secret_file("password-file", cfg->password_file,
	                   secret_strict(cfg->privileged), out, err, errlen);
}

int creds_prepare(struct creds *c, char *err, size_t errlen)
{
	const char *secret;

	if (creds_kind(c->cfg) != CREDS_PASSWORD)
		return 0;
	return creds_get(c, false, &secret, err, errlen);
}

int creds_get(struct creds *c, bool fresh, const char **secret, char *err,
              size_t errlen)
{
	*secret = NULL;
	switch (creds_kind(c->cfg)) {
	case CREDS_NONE:
		return 0;
	case CREDS_PASSWORD:
		if (!c->have_password &&
		    creds_password(c->cfg, &c->secret, err, errlen) != 0)
			return -1;
		c->have_password = true;
		break;
	case CREDS_BEARER:
		wipe(&c->secret);
		if (oauth_token(c->cfg, fresh, &c->secret, err, errlen) != 0)
			return -1;
		break;
	}
	*secret = c->secret;
	return 0;
}

bool creds_refreshable(const struct creds *c)
{
	return creds_kind(c->cfg) == CREDS_BEARER;
}

void creds_wipe(struct creds *c)
{
	if (c != NULL && c->secret != NULL)
		secure_zero(c->secret, strlen(c->secret));
}

void creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	wipe(&c->secret);
	free(c);
}
