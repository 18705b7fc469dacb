/*
 * check.c - outbox --check (see check.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creds.h"
#include "proxy.h"
#include "relay.h"
#include "smtp.h"
#include "util.h"

static const char *const TLS_NAMES[] = { "starttls", "smtps", "off" };

static int probe(const struct smtp_params *params, bool verify,
                 struct smtp_probe *p)
{
	char err[300];
	struct smtp_client *c = smtp_open(params, err, sizeof(err));
	int rc;

	if (c == NULL) {
		memset(p, 0, sizeof(*p));
		str_copy(p->step, sizeof(p->step), "setup");
		str_copy(p->error, sizeof(p->error), err);
		return -1;
	}
	rc = smtp_probe(c, verify, p);
	smtp_close(c);
	return rc;
}

/* The AUTH mechanisms in the EHLO extensions ("PLAIN LOGIN"), or "". */
static void auth_mechs(const char *caps, char *out, size_t n)
{
	const char *a = caps;

	out[0] = '\0';
	while (a != NULL && *a != '\0') {
		if (str_nieq(a, "AUTH ", 5) || str_nieq(a, "AUTH=", 5)) {
			size_t k = strcspn(a + 5, ",");

			snprintf(out, n, "%.*s", (int)k, a + 5);
			return;
		}
		a = strstr(a, ", ");
		if (a != NULL)
			a += 2;
	}
}

static void print_host(FILE *out, const struct config *cfg, size_t i,
                       const struct smtp_probe *p, bool verified,
                       const char *why_unverified)
{
	const struct smarthost *h = &cfg->hosts[i];
	char mechs[256];
	/* the setgid binary run by a user: the relay account is not theirs
	 * to learn */
	const char *user = cfg->privileged && getuid() != 0 ? "(hidden)"
	                                                    : cfg->user;

	auth_mechs(p->caps, mechs, sizeof(mechs));
	fprintf(out, "smarthost %zu: %s port %d (tls %s)\n", i + 1, h->host,
	        h->port, TLS_NAMES[h->tls]);
	fprintf(out, "  reached:      %s port %ld\n",
	        p->address[0] ? p->address : "(no connection)", p->port);
	fprintf(out, "  proxy:        %s\n",
	        proxy_describe(proxy_choose(cfg->proxy, cfg->privileged)));
	if (h->tls != TLS_OFF)
		fprintf(out, "  tls:          %s\n", p->tls[0] ? p->tls : "(none)");
	if (p->trust[0] != '\0')
		fprintf(out, "  trust:        %s\n", p->trust);
	if (p->have_cert) {
		fprintf(out, "  certificate:  subject %s\n", p->subject);
		fprintf(out, "                issuer  %s\n", p->issuer);
		fprintf(out, "                valid   %s .. %s\n", p->start,
		        p->expire);
		fprintf(out, "                verified: %s%s%s\n",
		        verified ? "yes" : "NO", verified ? "" : " - ",
		        verified ? "" : why_unverified);
	}
	if (p->caps[0] != '\0')
		fprintf(out, "  capabilities: %s\n", p->caps);
	fprintf(out, "  auth offered: %s\n", mechs[0] ? mechs : "(none)");
	if (cfg->user == NULL)
		fprintf(out, "  auth:         not configured\n");
	else if (!verified)
		fprintf(out, "  auth:         user %s: not attempted (the "
		        "certificate was not trusted)\n", user);
	else if (p->auth_code != 0)
		fprintf(out, "  auth:         user %s: %s (%s)\n", user,
		        p->authed ? "accepted" : "REFUSED", p->auth_text);
	else
		fprintf(out, "  auth:         user %s: not attempted\n", user);
}

/* Check smarthost i; prints its block. 0 when it passed. */
static enum ob_status check_one(const struct config *cfg, size_t i,
                                const char *secret, FILE *out)
{
	struct smtp_probe p, unverified;
	const struct smarthost *h = &cfg->hosts[i];
	struct smtp_params params, anonymous; /* never credentials to a
	                                         server whose certificate
	                                         failed */
	char why[320] = "";
	bool verified = true;

	relay_params(cfg, i, secret, false, &params);
	anonymous = params;
	anonymous.user = NULL;
	anonymous.secret_kind = SMTP_SECRET_NONE;
	anonymous.secret = NULL;

	probe(&params, cfg->tls_verify, &p);
	if (!p.ok && strcmp(p.step, "certificate") == 0) {
		/* show what the untrusted server would have offered */
		str_copy(why, sizeof(why), p.error);
		verified = false;
		probe(&anonymous, false, &unverified);
		unverified.ok = false;
		str_copy(unverified.step, sizeof(unverified.step), "certificate");
		str_copy(unverified.error, sizeof(unverified.error), why);
		str_copy(unverified.trust, sizeof(unverified.trust), p.trust);
		p = unverified;
	}
	if (p.ok && cfg->user != NULL && !p.authed) {
		p.ok = false;
		str_copy(p.step, sizeof(p.step), "AUTH");
		str_copy(p.error, sizeof(p.error), "the server offers no "
		         "authentication (nothing would be sent)");
	}
	print_host(out, cfg, i, &p, verified && cfg->tls_verify, why);
	if (p.ok) {
		fprintf(out, "  result:       OK\n\n");
		return OB_OK;
	}
	fprintf(out, "  result:       FAILED at %s: %s\n\n", p.step, p.error);
	fprintf(stderr, "outbox: check: %s%s%s%s:%d: %s failed: %s\n",
	        cfg->account ? "account " : "", cfg->account ? cfg->account : "",
	        cfg->account ? ": " : "", h->host, h->port, p.step, p.error);
	return strcmp(p.step, "AUTH") == 0 ? OB_NOPERM : OB_TEMPFAIL;
}

/* One account's smarthosts (the whole config when it has no others). */
static enum ob_status check_account(const struct config *cfg, FILE *out)
{
	enum ob_status st = OB_OK, one;
	struct creds *creds = creds_new(cfg);
	const char *secret = NULL;
	char err[400];
	size_t i;

	if (creds == NULL) {
		fprintf(stderr, "outbox: check: out of memory\n");
		return OB_SOFTWARE;
	}
	if (creds_get(creds, false, &secret, err, sizeof(err)) != 0) {
		fprintf(out, "credentials: FAILED: %s\n", err);
		fprintf(stderr, "outbox: check: %s%s%scredentials failed: %s\n",
		        cfg->account ? "account " : "",
		        cfg->account ? cfg->account : "",
		        cfg->account ? ": " : "", err);
		creds_free(creds);
		return OB_CONFIG;
	}
	for (i = 0; i < cfg->nhosts; i++) {
		one = check_one(cfg, i, secret, out);
		if (one != OB_OK)
			st = one;
	}
	creds_free(creds);
	return st;
}

enum ob_status check_run(const struct config *only, const struct config *cfg,
                         FILE *out)
{
	enum ob_status st = OB_OK, one;
	size_t i;

	if (smtp_global_init() != 0) {
		fprintf(stderr, "outbox: check: cannot initialise libcurl\n");
		return OB_SOFTWARE;
	}
	cfg = config_root(cfg);
	for (i = 0; i <= cfg->naccounts; i++) {
		const struct config *a = i == 0 ? cfg : &cfg->accounts[i - 1];

		if (only != NULL && a != only)
			continue;
		if (cfg->naccounts > 0)
			fprintf(out, "account %s:\n",
			        config_account_name(a));
		one = check_account(a, out);
		if (one != OB_OK)
			st = one;
	}
	fprintf(out, "%s\n", st == OB_OK ? "all smarthosts passed"
	                                 : "some smarthost failed");
	return st;
}
