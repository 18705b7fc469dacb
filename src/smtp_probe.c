/*
 * smtp_probe.c - outbox --check's look at a smarthost: the session
 * without a message, and what it showed (see smtp.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "smtp_int.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static void cert_field(struct curl_slist *l, const char *name, char *out,
                       size_t n)
{
	size_t k = strlen(name);

	for (; l != NULL; l = l->next) {
		if (strncmp(l->data, name, k) == 0 && l->data[k] == ':') {
			str_copy(out, n, l->data + k + 1);
			return;
		}
	}
}

static void probe_cert(struct smtp_client *c, struct smtp_probe *p)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(c->curl, CURLINFO_CERTINFO, &ci) != CURLE_OK ||
	    ci == NULL || ci->num_of_certs < 1)
		return;
	p->have_cert = true;
	cert_field(ci->certinfo[0], "Subject", p->subject, sizeof(p->subject));
	cert_field(ci->certinfo[0], "Issuer", p->issuer, sizeof(p->issuer));
	cert_field(ci->certinfo[0], "Start Date", p->start, sizeof(p->start));
	cert_field(ci->certinfo[0], "Expire Date", p->expire,
	           sizeof(p->expire));
}

/* Which step failed, from libcurl's result and where the dialogue was. */
static const char *failed_step(const struct dialogue *d, CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST: return "DNS lookup";
	case CURLE_COULDNT_CONNECT: return "connect";
	case CURLE_USE_SSL_FAILED: return "STARTTLS";
	case CURLE_PEER_FAILED_VERIFICATION: return "certificate";
	case CURLE_SSL_CONNECT_ERROR: return "TLS handshake";
	case CURLE_LOGIN_DENIED: return "AUTH";
	default: break;
	}
	switch (d->phase) {
	case PH_CONNECT: return "greeting";
	case PH_EHLO: return "EHLO";
	case PH_STARTTLS: return "STARTTLS";
	case PH_AUTH: return "AUTH";
	default: return "session";
	}
}

int smtp_probe(struct smtp_client *c, bool verify, struct smtp_probe *p)
{
	long v = verify ? 1L : 0L;
	char *ip = NULL;
	long port = 0;
	CURLcode rc;

	memset(p, 0, sizeof(*p));
	memset(&c->d, 0, sizeof(c->d));
	c->errbuf[0] = '\0';
	c->certinfo = true;
	curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CERTINFO, 1L);
	if (c->p.tls != SMTP_TLS_OFF) {
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, v);
		curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, v * 2);
	}
	if (!verify)
		c->trust.active = false;        /* nothing to learn, or fail */
	rc = smtp_perform_trusted(c, verify);
	trust_describe(&c->trust, p->trust, sizeof(p->trust));
	if (curl_easy_getinfo(c->curl, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
	    ip != NULL)
		str_copy(p->address, sizeof(p->address), ip);
	curl_easy_getinfo(c->curl, CURLINFO_PRIMARY_PORT, &port);
	p->port = port;
	probe_cert(c, p);
	str_copy(p->tls, sizeof(p->tls), c->d.tls);
	str_copy(p->caps, sizeof(p->caps), c->d.caps);
	p->auth_code = c->d.auth_code;
	str_copy(p->auth_text, sizeof(p->auth_text), c->d.auth_text);
	p->authed = c->authed;
	p->ok = rc == CURLE_OK;
	if (!p->ok) {
		str_copy(p->step, sizeof(p->step), failed_step(&c->d, rc));
		str_copy(p->error, sizeof(p->error),
		         c->d.last_code >= 400 ? c->d.last_text :
		         c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	}
	return p->ok ? 0 : -1;
}

