/*
 * relay.c - connection parameters from the config (see relay.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "relay.h"

#include <string.h>
#include <unistd.h>

#include "creds.h"
#include "envelope.h"
#include "proxy.h"

static enum smtp_tls tls_of(enum tls_mode m)
{
	switch (m) {
	case TLS_SMTPS:
		return SMTP_TLS_SMTPS;
	case TLS_OFF:
		return SMTP_TLS_OFF;
	default:
		return SMTP_TLS_STARTTLS;
	}
}

static enum smtp_secret secret_of(enum creds_kind k, const char *secret)
{
	if (secret == NULL || k == CREDS_NONE)
		return SMTP_SECRET_NONE;
	return k == CREDS_BEARER ? SMTP_SECRET_BEARER : SMTP_SECRET_PASSWORD;
}

void relay_params(const struct config *cfg, size_t i, const char *secret,
                  bool verbose, struct smtp_params *p)
{
	const struct smarthost *h = &cfg->hosts[i];

	memset(p, 0, sizeof(*p));
	p->host = h->host;
	p->port = h->port;
	p->tls = tls_of(h->tls);
	p->verify = cfg->tls_verify;
	p->ca_file = cfg->ca_file;
	p->trust_dir = cfg->queue;
	p->user = cfg->user;
	p->secret_kind = secret_of(creds_kind(cfg), secret);
	p->secret = p->secret_kind == SMTP_SECRET_NONE ? NULL : secret;
	p->auth = cfg->auth;
	p->helo = cfg->helo ? cfg->helo : envelope_fqdn(cfg);
	p->timeout = cfg->timeout;
	p->proxy = proxy_choose(cfg->proxy, cfg->privileged);
	p->privileged = cfg->privileged;
	p->verbose = verbose;
	p->hide_auth = cfg->privileged && getuid() != 0;
}
