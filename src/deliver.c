/*
 * deliver.c - the one send path (see deliver.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "log.h"
#include "relay.h"
#include "util.h"

struct deliver_ctx {
	const struct config *cfg;
	bool verbose;
	bool ready;             /* libcurl and the password loaded */
	struct creds *creds;    /* NULL until ready */
	struct smtp_client *client[CONFIG_MAX_SMARTHOSTS];
	/* why a smarthost is not used again in this run ("" while it is):
	 * its session failed, or it said "too many" (paused) */
	char down[CONFIG_MAX_SMARTHOSTS][600];
	bool paused[CONFIG_MAX_SMARTHOSTS];
	bool down_logged[CONFIG_MAX_SMARTHOSTS];
	deliver_gate_fn gate;   /* may a message go to a smarthost now? */
	void *gate_arg;
	/* why the gate held a smarthost back ("" while it lets through) */
	char held[CONFIG_MAX_SMARTHOSTS][300];
	int held_kind[CONFIG_MAX_SMARTHOSTS];   /* the gate's answer */
	struct deliver_ctx *parked_next;    /* see deliver_park */
};

static bool curl_ready;

struct deliver_ctx *deliver_new(const struct config *cfg, bool verbose)
{
	struct deliver_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx != NULL) {
		ctx->cfg = cfg;
		ctx->verbose = verbose;
	}
	return ctx;
}

static enum ob_status prepare(struct deliver_ctx *ctx,
                              struct deliver_report *rep)
{
	if (ctx->ready)
		return OB_OK;
	if (!curl_ready && smtp_global_init() != 0) {
		str_copy(rep->reason, sizeof(rep->reason),
		         "cannot initialise libcurl");
		return OB_SOFTWARE;
	}
	curl_ready = true;
	if (ctx->creds == NULL)
		ctx->creds = creds_new(ctx->cfg);
	if (ctx->creds == NULL) {
		str_copy(rep->reason, sizeof(rep->reason), "out of memory");
		return OB_SOFTWARE;
	}
	if (creds_prepare(ctx->creds, rep->reason, sizeof(rep->reason)) != 0)
		return OB_CONFIG;
	ctx->ready = true;
	return OB_OK;
}

/* The client for smarthost i; a new connection gets the secret anew
 * (an OAuth2 token; force_refresh: not the cached one). NULL with
 * rep->reason. */
static struct smtp_client *client(struct deliver_ctx *ctx, size_t i,
                                  bool force_refresh,
                                  struct deliver_report *rep)
{
	struct smtp_params p;
	const char *secret = NULL;

	if (ctx->client[i] != NULL)
		return ctx->client[i];
	if (creds_get(ctx->creds, force_refresh, &secret, rep->reason,
	              sizeof(rep->reason)) != 0)
		return NULL;
	relay_params(ctx->cfg, i, secret, ctx->verbose, &p);
	ctx->client[i] = smtp_open(&p, rep->reason, sizeof(rep->reason));
	return ctx->client[i];
}

/* Smarthost h said "too many": it gets no more messages in this run;
 * logged now, once. */
static void pause_host(struct deliver_ctx *ctx, size_t h,
                       const struct smtp_result *res)
{
	str_copy(ctx->down[h], sizeof(ctx->down[h]), res->reason);
	ctx->paused[h] = true;
	if (!ctx->down_logged[h])
		log_event(LOG_WARNING, "smarthost %s: %s; paused: no more "
		          "messages to it in this run", res->where, res->reason);
	ctx->down_logged[h] = true;
}

/* Did the attempt leave the message as it was: a "too many" reply, and
 * no recipient accepted or refused for good? */
static bool untouched(const struct smtp_result *res)
{
	size_t i;

	for (i = 0; res->too_many && i < res->nrcpt; i++) {
		if (res->rcpt[i].state != RCPT_TEMP)
			return false;
	}
	return res->too_many;
}

/*
 * Try one smarthost for the recipients still in RCPT_TEMP. *same: the
 * message is as it was (see untouched).
 */
static enum ob_status attempt(struct deliver_ctx *ctx, size_t host,
                              bool fresh_token, const char *sender,
                              const struct params_set *params, int fd,
                              off_t size, struct deliver_report *rep,
                              bool *refused, bool *same)
{
	struct smtp_client *c = client(ctx, host, fresh_token, rep);
	struct smtp_result res;
	char **todo;
	size_t *map;
	size_t i, n = 0;
	enum ob_status st;

	*same = false;
	if (c == NULL) {
		snprintf(rep->where, sizeof(rep->where), "%s:%d",
		         ctx->cfg->hosts[host].host, ctx->cfg->hosts[host].port);
		return OB_TEMPFAIL;     /* no token (or no memory): try later */
	}
	todo = calloc(rep->nrcpt, sizeof(*todo));
	map = calloc(rep->nrcpt, sizeof(*map));
	if (todo == NULL || map == NULL) {
		free(todo);
		free(map);
		str_copy(rep->reason, sizeof(rep->reason), "out of memory");
		return OB_SOFTWARE;
	}
	for (i = 0; i < rep->nrcpt; i++) {
		if (rep->rcpt[i].state == RCPT_TEMP) {
			todo[n] = (char *)rep->rcpt[i].addr;
			map[n++] = i;
		}
	}
	st = smtp_send(c, sender, todo, n, params, fd, size, &res);
	*same = untouched(&res);
	if (res.too_many)
		pause_host(ctx, host, &res);
	else
		str_copy(ctx->down[host], sizeof(ctx->down[host]),
		         res.session_failed ? res.reason : "");
	str_copy(rep->where, sizeof(rep->where), res.where);
	if (st != OB_OK) {
		str_copy(rep->reason, sizeof(rep->reason), res.reason);
		rep->setup_error = res.setup_error;
	}
	for (i = 0; st == OB_OK && i < res.nrcpt; i++) {
		/* sent, but not to everyone: the reason is a recipient's */
		if (res.rcpt[i].state == RCPT_TEMP) {
			snprintf(rep->reason, sizeof(rep->reason),
			         "recipient <%s> deferred: %s", todo[i],
			         res.rcpt[i].text);
			break;
		}
	}
	if (st == OB_UNAVAILABLE)
		*refused = true;
	for (i = 0; i < res.nrcpt; i++) {
		struct deliver_rcpt *r = &rep->rcpt[map[i]];

		r->state = res.rcpt[i].state;
		str_copy(r->text, sizeof(r->text),
		         st == OB_OK && r->state == RCPT_OK ? res.reply
		                                            : res.rcpt[i].text);
		str_copy(r->where, sizeof(r->where), res.where);
		str_copy(r->relay, sizeof(r->relay), res.relay);
	}
	smtp_result_free(&res);
	free(todo);
	free(map);
	return st;
}

static enum ob_status summarise(struct deliver_report *rep,
                                enum ob_status last, bool refused)
{
	bool temp = false, perm = false;
	size_t i;

	for (i = 0; i < rep->nrcpt; i++) {
		temp = temp || rep->rcpt[i].state == RCPT_TEMP;
		perm = perm || rep->rcpt[i].state == RCPT_PERM;
	}
	if (temp) {
		if (last == OB_OK || last == OB_UNAVAILABLE || last == OB_NOUSER)
			return OB_TEMPFAIL;
		return last;
	}
	if (perm)
		return refused ? OB_UNAVAILABLE : OB_NOUSER;
	return OB_OK;
}

/* Recipients never reached (no connection, no credentials) get the
 * failure's reason as theirs. */
static void give_reason(struct deliver_report *rep)
{
	size_t i;

	for (i = 0; i < rep->nrcpt; i++) {
		if (rep->rcpt[i].text[0] == '\0')
			str_copy(rep->rcpt[i].text, sizeof(rep->rcpt[i].text),
			         rep->reason);
	}
}

/* Is smarthost h down since an earlier message? Then rep says so (and
 * the log, the first time). */
static bool skip_down(struct deliver_ctx *ctx, size_t h,
                      struct deliver_report *rep)
{
	if (ctx->down[h][0] == '\0')
		return false;
	snprintf(rep->where, sizeof(rep->where), "%s:%d",
	         ctx->cfg->hosts[h].host, ctx->cfg->hosts[h].port);
	snprintf(rep->reason, sizeof(rep->reason), "not tried: %s in this "
	         "run: %s", ctx->paused[h] ? "paused" : "failed earlier",
	         ctx->down[h]);
	if (!ctx->down_logged[h])
		log_event(LOG_WARNING, "smarthost %s: %s; skipped for the rest "
		          "of this run", rep->where, ctx->down[h]);
	ctx->down_logged[h] = true;
	return true;
}

void deliver_set_gate(struct deliver_ctx *ctx, deliver_gate_fn gate,
                      void *arg)
{
	ctx->gate = gate;
	ctx->gate_arg = arg;
}

/* Does the gate hold smarthost h back (for the rest of this context)?
 * Then rep says why, and the log, the first time. */
static bool held_back(struct deliver_ctx *ctx, size_t h,
                      struct deliver_report *rep)
{
	if (ctx->held[h][0] == '\0') {
		if (ctx->gate == NULL)
			return false;
		ctx->held_kind[h] = ctx->gate(ctx->gate_arg, h, ctx->held[h],
		                              sizeof(ctx->held[h]));
		if (ctx->held_kind[h] == 0)
			return false;
		if (ctx->held[h][0] == '\0')
			str_copy(ctx->held[h], sizeof(ctx->held[h]), "held back");
		log_event(LOG_INFO, "smarthost %s:%d: %s; not used again by this "
		          "process", ctx->cfg->hosts[h].host,
		          ctx->cfg->hosts[h].port, ctx->held[h]);
	}
	snprintf(rep->where, sizeof(rep->where), "%s:%d",
	         ctx->cfg->hosts[h].host, ctx->cfg->hosts[h].port);
	snprintf(rep->reason, sizeof(rep->reason), "not tried: %s",
	         ctx->held[h]);
	rep->held_kind = ctx->held_kind[h];
	return true;
}

/* Relay-side and temporary failures: another smarthost may do better. */
static bool worth_another_host(enum ob_status st)
{
	return st == OB_TEMPFAIL || st == OB_NOPERM || st == OB_PROTOCOL;
}

enum ob_status deliver_send(struct deliver_ctx *ctx, const char *sender,
                            const struct addr_list *rcpts,
                            const struct params_set *params, int fd,
                            off_t size, struct deliver_report *rep)
{
	enum ob_status st = OB_OK;
	bool refused = false, same = false;
	size_t i, h;

	memset(rep, 0, sizeof(*rep));
	rep->rcpt = calloc(rcpts->count ? rcpts->count : 1, sizeof(*rep->rcpt));
	if (rep->rcpt == NULL) {
		str_copy(rep->reason, sizeof(rep->reason), "out of memory");
		return rep->status = OB_SOFTWARE;
	}
	rep->nrcpt = rcpts->count;
	for (i = 0; i < rcpts->count; i++) {
		rep->rcpt[i].addr = rcpts->addrs[i];
		rep->rcpt[i].state = RCPT_TEMP;
	}
	st = prepare(ctx, rep);
	if (st != OB_OK) {
		rep->setup_error = st == OB_CONFIG;
		give_reason(rep);
		return rep->status = st;
	}
	rep->not_tried = true;
	for (h = 0; h < ctx->cfg->nhosts; h++) {
		if (skip_down(ctx, h, rep) || held_back(ctx, h, rep)) {
			st = OB_TEMPFAIL;
			continue;
		}
		st = attempt(ctx, h, false, sender, params, fd, size, rep,
		             &refused, &same);
		if (st == OB_NOPERM && creds_refreshable(ctx->creds)) {
			/* the token may have been revoked or expired early */
			smtp_close(ctx->client[h]);
			ctx->client[h] = NULL;
			st = attempt(ctx, h, true, sender, params, fd, size,
			             rep, &refused, &same);
		}
		/* after "too many" alone the message is as it was */
		rep->not_tried = rep->not_tried && same;
		if (st == OB_SOFTWARE || st == OB_IOERR)
			return rep->status = st;
		/* the next smarthost gets what is still temporary here */
		if (!worth_another_host(summarise(rep, st, refused)))
			break;
		if (h + 1 < ctx->cfg->nhosts)
			log_event(LOG_WARNING, "smarthost %s failed: %s; trying the "
			          "next one", rep->where, rep->reason);
	}
	give_reason(rep);
	return rep->status = summarise(rep, st, refused);
}

void deliver_log(const char *id, const char *account,
                 const struct deliver_rcpt *r, double delay, long tries)
{
	const char *status = r->state == RCPT_OK ? "sent" :
	                     r->state == RCPT_PERM ? "bounced" : "deferred";

	log_event(r->state == RCPT_OK ? LOG_INFO : LOG_WARNING,
	          "%s: to=<%s>, relay=%s, %s%s%sdelay=%.2f, tries=%ld, "
	          "status=%s (%s)", id, r->addr,
	          r->relay[0] ? r->relay : "none", account ? "account=" : "",
	          account ? account : "", account ? ", " : "", delay, tries,
	          status, r->text);
}

void deliver_report_free(struct deliver_report *rep)
{
	if (rep == NULL)
		return;
	free(rep->rcpt);
	rep->rcpt = NULL;
	rep->nrcpt = 0;
}

size_t deliver_fds(struct deliver_ctx *ctx, int *fds, size_t max)
{
	size_t i, n = 0;

	for (i = 0; ctx != NULL && i < CONFIG_MAX_SMARTHOSTS && n < max; i++) {
		int fd = smtp_socket(ctx->client[i]);

		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

bool deliver_connected(struct deliver_ctx *ctx)
{
	int fd;

	return deliver_fds(ctx, &fd, 1) > 0;
}

/* Contexts whose connections another process carries on: kept, never
 * closed here (a QUIT would end that process's session). */
static struct deliver_ctx *parked;

void deliver_park(struct deliver_ctx *ctx)
{
	if (ctx == NULL)
		return;
	creds_wipe(ctx->creds);
	ctx->parked_next = parked;
	parked = ctx;
}

void deliver_free(struct deliver_ctx *ctx)
{
	size_t i;

	if (ctx == NULL)
		return;
	for (i = 0; i < CONFIG_MAX_SMARTHOSTS; i++)
		smtp_close(ctx->client[i]);
	creds_free(ctx->creds);
	free(ctx);
}
