/*
 * smtp_judge.c - what an attempt's replies and libcurl's result mean for
 * the message and each recipient (see smtp_int.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "smtp_int.h"

#include <stdio.h>
#include <string.h>

#include "smtp_wire.h"
#include "util.h"

enum ob_status smtp_fail(struct smtp_result *res, enum ob_status st,
                           const char *what, const char *detail)
{
	snprintf(res->reason, sizeof(res->reason), "%s%s%s", what,
	         detail && *detail ? ": " : "", detail ? detail : "");
	return st;
}

static enum ob_status by_class(int code)
{
	return code / 100 == 5 ? OB_UNAVAILABLE : OB_TEMPFAIL;
}

/* All RCPTs refused: permanent only if every refusal was. */
static enum ob_status all_refused(struct smtp_client *c,
                                  struct smtp_result *res)
{
	size_t i;

	for (i = 0; i < c->nrcpt; i++) {
		if (c->rcpt[i].code / 100 != 5)
			return smtp_fail(res, OB_TEMPFAIL, "no recipient accepted",
			            c->d.last_text);
	}
	return smtp_fail(res, OB_NOUSER, "every recipient refused", c->d.last_text);
}

/* A failed transaction where the server's reply says what happened. */
static enum ob_status by_reply(struct smtp_client *c, struct smtp_result *res)
{
	const struct dialogue *d = &c->d;

	switch (d->last_phase) {
	case PH_MAIL:
		return smtp_fail(res, by_class(d->last_code), "sender refused",
		            d->last_text);
	case PH_RCPT:
		return all_refused(c, res);
	case PH_DATA:
	case PH_BODY:
		return smtp_fail(res, by_class(d->last_code), "message refused",
		            d->last_text);
	case PH_AUTH:
		res->setup_error = true;
		return smtp_fail(res, OB_NOPERM, "authentication refused",
		            d->last_text);
	default:
		return smtp_fail(res, OB_TEMPFAIL, "server refused the session",
		            d->last_text);
	}
}

static enum ob_status by_curl(struct smtp_client *c, CURLcode rc,
                              struct smtp_result *res)
{
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

	res->setup_error = rc == CURLE_LOGIN_DENIED ||
	                   rc == CURLE_USE_SSL_FAILED ||
	                   rc == CURLE_PEER_FAILED_VERIFICATION;
	switch (rc) {
	case CURLE_LOGIN_DENIED:
		return smtp_fail(res, OB_NOPERM, "authentication refused",
		            c->d.last_phase == PH_AUTH ? c->d.last_text : detail);
	case CURLE_USE_SSL_FAILED:
		return smtp_fail(res, OB_TEMPFAIL, "server does not offer STARTTLS, "
		            "which tls starttls requires; nothing sent", NULL);
	case CURLE_PEER_FAILED_VERIFICATION:
		return smtp_fail(res, OB_TEMPFAIL, "server certificate not trusted",
		            detail);
	case CURLE_OUT_OF_MEMORY:
		return smtp_fail(res, OB_SOFTWARE, "out of memory", NULL);
	case CURLE_WEIRD_SERVER_REPLY:
		return smtp_fail(res, OB_PROTOCOL, "protocol error", detail);
	case CURLE_OPERATION_TIMEDOUT:
		return smtp_fail(res, OB_TEMPFAIL, "timed out", detail);
	default:
		return smtp_fail(res, OB_TEMPFAIL, detail, NULL);
	}
}

enum ob_status smtp_judge(struct smtp_client *c, CURLcode rc,
                            struct smtp_result *res)
{
	const struct dialogue *d = &c->d;

	res->setup_error = d->abort_noauth;
	if (d->abort_noauth)
		return smtp_fail(res, OB_NOPERM, "server offers no authentication "
		            "but a user is configured; nothing sent", NULL);
	if (d->read_failed)
		return smtp_fail(res, OB_IOERR, "cannot read the spooled message",
		            strerror(d->read_errno));
	if (rc == CURLE_OK && d->data_code / 100 == 2)
		return OB_OK;
	if (rc != CURLE_OK && d->param_fault != 0)
		return smtp_fail(res, OB_PROTOCOL, "protocol error: the server "
		            "refused parameters it offered", d->fault_text);
	if (rc != CURLE_OK && d->too_many_code != 0)
		return smtp_fail(res, OB_TEMPFAIL, "server limit reached",
		            d->too_many_text);
	if (rc != CURLE_OK && d->last_code >= 400)
		return by_reply(c, res);
	if (rc == CURLE_OK)
		return smtp_fail(res, OB_PROTOCOL, "no reply to the message", NULL);
	return by_curl(c, rc, res);
}

void smtp_settle_rcpts(struct smtp_client *c, struct smtp_result *res)
{
	size_t i;

	for (i = 0; i < c->nrcpt; i++) {
		struct smtp_rcpt *r = &c->rcpt[i];

		if (r->code == 0 && c->d.too_many_code != 0) {
			/* not sent after a "too many" reply: the same answer */
			r->code = c->d.too_many_code;
			str_copy(r->text, sizeof(r->text), c->d.too_many_text);
		}
		if (c->d.param_fault != 0 &&
		    smtp_wire_param_fault(r->code, r->text))
			r->state = RCPT_TEMP;   /* the relay's fault, logged */
		else if (r->code / 100 == 5)
			r->state = RCPT_PERM;
		else if (r->code / 100 == 4)
			r->state = RCPT_TEMP;
		else if (res->status == OB_OK && r->code / 100 == 2)
			r->state = RCPT_OK;
		else
			r->state = res->status == OB_UNAVAILABLE ? RCPT_PERM
			                                          : RCPT_TEMP;
		if (r->state != RCPT_OK && r->code / 100 != 4 &&
		    r->code / 100 != 5)
			str_copy(r->text, sizeof(r->text), res->reason);
	}
}

