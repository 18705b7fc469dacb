/*
 * submit.c - one message from a client to the smarthost or the queue
 * (see submit.h).
 */
#define _GNU_SOURCE
#include "submit.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver.h"
#include "envelope.h"
#include "limits.h"
#include "runner.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "mime.h"
#include "util.h"

struct job {
	const struct config *cfg;
	struct submission *s;
	struct store *q;            /* NULL: the queue is off or unusable */
	char qerr[512];             /* why q is NULL */
	int spool;
	char *sender;
	struct message msg;
	struct addr_list rcpts;
	struct params_set params;       /* DSN and BODY for rcpts */
	struct timespec start;      /* when the message was taken */
	struct deliver_ctx *ctx;    /* the direct send's connections */
	struct limits *lim;         /* its connection slots, rate limits */
	bool held;                  /* queued: no free connection slot */
	struct addr_list seen;      /* msg/ as the direct send began */
	struct headers_policy hp;   /* how address fields are rewritten */
	char *hp_from;              /* the account address hp.from points to */
};

static double elapsed(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Set the one-line outcome, and print it when the caller wants errors. */
static void say(struct job *j, bool print, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct job *j, bool print, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->s->reply, sizeof(j->s->reply), fmt, ap);
	va_end(ap);
	if (print && j->s->errors != NULL)
		fprintf(j->s->errors, "outbox: %s\n", j->s->reply);
}

/* Log each recipient's outcome; print the refusals. */
static void report(struct job *j, const struct deliver_report *rep)
{
	size_t i;
	bool printed = false;

	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *r = &rep->rcpt[i];

		deliver_log(j->s->id, j->cfg->account, r, elapsed(&j->start), 1);
		if (r->state == RCPT_PERM && r->text[0] != '\0' &&
		    strcmp(r->text, rep->reason) != 0) {
			say(j, true, "%s: recipient <%s> refused: %s", r->where,
			    r->addr, r->text);
			printed = true;
		}
	}
	if (rep->status == OB_UNAVAILABLE ||
	    (rep->status == OB_NOUSER && !printed))
		say(j, true, "%s%s%s", rep->where, rep->where[0] ? ": " : "",
		    rep->reason);
	else if (rep->status == OB_OK)
		say(j, false, "delivered via %s: %s", rep->where,
		    rep->nrcpt ? rep->rcpt[0].text : "");
}

/* Commit the message for rcpts; on failure say why (one line). */
static enum ob_status commit(struct job *j, const struct addr_list *rcpts,
                             long attempts, const char *why)
{
	struct store_entry e = { 0 };
	char err[600];

	if (j->q == NULL) {
		say(j, true, "%s; %s", why ? why : "cannot queue", j->qerr);
		return OB_TEMPFAIL;
	}
	str_copy(e.id, sizeof(e.id), j->s->id);
	e.sender = j->sender;
	e.account = j->cfg->account;    /* borrowed too */
	e.rcpts = *rcpts;
	e.params = j->params;       /* borrowed: e is not freed */
	e.uid = getuid();
	e.created = time(NULL);
	e.next = e.created + (attempts ? j->cfg->retry_min : 0);
	e.attempts = attempts;
	str_copy(e.last_error, sizeof(e.last_error), why ? why : "");
	if (store_commit(j->q, j->spool, &e, err, sizeof(err)) != 0) {
		say(j, true, "%s%s%s", why ? why : "", why ? "; " : "", err);
		return OB_TEMPFAIL;
	}
	j->s->queued = true;
	log_event(LOG_INFO, "%s: queued (%s)", j->s->id,
	          why ? why : "on request");
	if (j->s->verbose)
		fprintf(stderr, "outbox: queued as %s\n", j->s->id);
	return OB_OK;
}

/* A DSN to the sender about the recipients refused for good, through the
 * queue when there is one, else sent at once. */
static void notify_refused(struct job *j, const struct deliver_report *rep)
{
	struct bounce_rcpt *perm = calloc(rep->nrcpt, sizeof(*perm));
	struct bounce_info b = { 0 };
	struct deliver_report brep;
	struct deliver_ctx *ctx;
	struct addr_list to = { 0 };
	char id[STORE_ID_LEN + 1];
	size_t i, n = 0;
	int fd;

	for (i = 0; perm != NULL && i < rep->nrcpt; i++) {
		if (rep->rcpt[i].state == RCPT_PERM &&
		    params_wants_failure(&j->params, rep->rcpt[i].addr))
			perm[n++] = (struct bounce_rcpt){ rep->rcpt[i].addr,
			                                  rep->rcpt[i].text };
	}
	if (n == 0 || j->sender[0] == '\0') {
		free(perm);
		return;
	}
	if (j->q != NULL) {
		if (runner_add_bounce(j->q, j->cfg, j->s->id, j->sender,
		                      getuid(), time(NULL), j->spool, perm, n,
		                      false, &j->params, id) == 0)
			runner_run_detached(j->cfg, id);
		free(perm);
		return;
	}
	b = (struct bounce_info){ j->sender, envelope_domain(j->cfg),
	                          j->hp.from != NULL &&
	                          headers_from_applies(&j->hp, "")
	                              ? j->hp.from : NULL,
	                          j->cfg->helo ? j->cfg->helo
	                                       : envelope_domain(j->cfg),
	                          j->s->id, time(NULL), false, perm, n,
	                          &j->params };
	fd = tmpfile_anon(NULL);
	ctx = deliver_new(j->cfg, false);
	if (fd >= 0 && ctx != NULL && bounce_write(fd, j->spool, &b) == 0 &&
	    addr_list_add(&to, j->sender) == 0) {
		deliver_send(ctx, "", &to, NULL, fd, lseek(fd, 0, SEEK_END),
		             &brep);
		for (i = 0; i < brep.nrcpt; i++)
			deliver_log(j->s->id, j->cfg->account, &brep.rcpt[i],
			            elapsed(&j->start), 1);
		deliver_report_free(&brep);
	}
	deliver_free(ctx);
	if (fd >= 0)
		close(fd);
	addr_list_free(&to);
	free(perm);
}

/* Count the attempt for the metrics file, and rewrite it. */
static void record_attempt(struct job *j, const struct deliver_report *rep)
{
	struct metrics_tally t = { 0 };

	if (j->cfg->metrics_file == NULL)
		return;
	t.account = j->cfg->account;
	metrics_note(&t, rep, false);
	if (rep->not_tried && rep->held_kind == LIMITS_WAIT)
		metrics_note_rate_wait(&t, rep->where);
	metrics_update(j->cfg, j->q, &t);
}

static enum ob_status deliver_now(struct job *j)
{
	struct deliver_report rep;
	struct addr_list temp = { 0 };
	enum ob_status st;
	char why[1000];
	bool refused = false;
	size_t i;

	j->ctx = deliver_new(j->cfg, j->s->verbose);
	/* slots and rate limits are shared through the queue: none without */
	if (j->q != NULL)
		j->lim = limits_new(j->cfg, j->q);
	if (j->ctx == NULL || (j->q != NULL && j->lim == NULL)) {
		say(j, true, "out of memory");
		return OB_SOFTWARE;
	}
	if (j->lim != NULL) {
		deliver_set_gate(j->ctx, limits_gate, j->lim);
		/* to tell, afterwards, what came while this one was sent */
		if (j->cfg->max_connections > 0)
			store_ids(j->q, STORE_MSG, &j->seen);
	}
	st = deliver_send(j->ctx, j->sender, &j->rcpts, &j->params, j->spool,
	                  j->msg.size, &rep);
	report(j, &rep);
	for (i = 0; i < rep.nrcpt; i++) {
		if (rep.rcpt[i].state == RCPT_TEMP)
			addr_list_add(&temp, rep.rcpt[i].addr);
		refused = refused || rep.rcpt[i].state == RCPT_PERM;
		j->s->nok += rep.rcpt[i].state == RCPT_OK;
		j->s->nrefused += rep.rcpt[i].state == RCPT_PERM;
	}
	if (temp.count > 0) {
		snprintf(why, sizeof(why), "%s%s%s", rep.where,
		         rep.where[0] ? ": " : "", rep.reason);
		/* held back (no free slot, a rate limit): never tried, so
		 * due at once, for whoever holds a connection */
		j->held = rep.not_tried && rep.held_kind == LIMITS_BUSY;
		if (commit(j, &temp, rep.not_tried ? 0 : 1, why) != OB_OK)
			st = rep.status;    /* not queued: say what failed */
		else if (refused) {
			st = OB_NOUSER;     /* the rest is durably queued */
			j->s->nok += temp.count;
		}
		else {
			st = OB_OK;
			say(j, false, "queued as %s: %s", j->s->id, why);
		}
		/* never silent: a setup error waits for an admin, who must
		 * hear of it whatever the log setting */
		if (j->s->queued && rep.setup_error)
			fprintf(stderr, "outbox: queued as %s, not sent: %s (fix "
			        "the configuration; outbox -q sends it then)\n",
			        j->s->id, why);
	}
	/* the client will hear 250 for the others: tell the sender by mail */
	if (refused && j->s->notify_refused && st == OB_NOUSER && j->s->nok > 0)
		notify_refused(j, &rep);
	record_attempt(j, &rep);
	addr_list_free(&temp);
	deliver_report_free(&rep);
	return st;
}

/* Open the queue and a spool file in it, or fall back to $TMPDIR. */
static enum ob_status open_spool(struct job *j)
{
	if (j->cfg->queue == NULL)
		str_copy(j->qerr, sizeof(j->qerr), "the queue is off");
	else if (store_open(j->cfg->queue, true, j->cfg->privileged, &j->q,
	                    j->qerr, sizeof(j->qerr)) == 0) {
		j->spool = store_spool(j->q, j->s->id, j->qerr, sizeof(j->qerr));
		if (j->spool >= 0)
			return OB_OK;
		store_close(j->q);
		j->q = NULL;
	}
	str_copy(j->s->id, sizeof(j->s->id), "NOQUEUE");
	j->spool = tmpfile_anon(NULL);
	if (j->spool < 0) {
		say(j, true, "cannot create a spool file in $TMPDIR or /tmp");
		return OB_CANTCREAT;
	}
	return OB_OK;
}

/* Lines over 998 octets: smarthosts refuse them, so repair the spool. */
static enum ob_status fix_long_lines(struct job *j, char *err, size_t errlen)
{
	enum mime_fix how;

	if (mime_fix_long_lines(j->spool, &j->msg.size, j->msg.eightbit, &how,
	                        err, errlen) != 0)
		return errno_disk_full(errno) ? OB_TEMPFAIL : OB_CANTCREAT;
	log_event(LOG_INFO, "%s: a line of %zu octets (over %d): %s", j->s->id,
	          j->msg.longest_line, MIME_LINE_MAX,
	          how == MIME_QP ? "body re-encoded as quoted-printable"
	                         : "long lines broken with CRLF SPACE");
	return OB_OK;
}

/*
 * Read the message into the spool (address fields rewritten as the
 * config says) and work out its recipients. The reason for a failure is
 * in err.
 */
static enum ob_status read_message(struct job *j, int in_fd, char *err,
                                   size_t errlen)
{
	struct message_opts mo = { 0 };
	enum ob_status st;
	int r;

	if (envelope_header_policy(j->cfg, &j->hp, &j->hp_from, err,
	                           errlen) != 0)
		return OB_CONFIG;
	mo.ignore_dots = j->s->ignore_dots;
	mo.extract_rcpts = j->s->extract_rcpts;
	mo.sender = j->sender;
	mo.fullname = j->s->fullname;
	mo.domain = envelope_domain(j->cfg);
	mo.headers = &j->hp;
	st = j->s->source != NULL
	     ? message_read_from(j->s->source, j->s->source_arg, j->spool,
	                         &mo, &j->msg, err, errlen)
	     : message_read(in_fd, j->spool, &mo, &j->msg, err, errlen);
	if (st != OB_OK)
		return st;
	r = envelope_recipients(j->cfg, j->s->rcpt_args, j->s->nrcpt_args,
	                        &j->msg.rcpts, &j->rcpts, err, errlen);
	return r == 0 ? OB_OK : r == -2 ? OB_CONFIG : OB_DATAERR;
}

/* The recipients' own parameters (named as given) go to each address
 * the recipient became; j->params must hold none yet. */
static int map_rcpt_params(struct job *j, const struct params_set *in,
                           char *err, size_t errlen)
{
	size_t i, k;
	int rc = 0;

	for (i = 0; in != NULL && i < in->nrcpt && rc == 0; i++) {
		struct addr_list out = { 0 };
		char *arg = in->rcpt[i].addr;

		rc = envelope_recipients(j->cfg, &arg, 1, NULL, &out, err,
		                         errlen);
		for (k = 0; rc == 0 && k < out.count; k++)
			rc = params_rcpt_set(&j->params, out.addrs[k],
			                     in->rcpt[i].notify,
			                     in->rcpt[i].orcpt);
		addr_list_free(&out);
	}
	return rc;
}

/*
 * The envelope parameters: the client's (s->params), with BODY=8BITMIME
 * for a message with 8-bit bytes whatever it said (a 7BIT one would be
 * a lie the smarthost may act on).
 */
static enum ob_status take_params(struct job *j, char *err, size_t errlen)
{
	const struct params_set *in = j->s->params;

	if (params_copy(&j->params, in) != 0)
		goto nomem;
	while (j->params.nrcpt > 0) {       /* named as given: mapped below */
		j->params.nrcpt--;
		free(j->params.rcpt[j->params.nrcpt].addr);
		free(j->params.rcpt[j->params.nrcpt].orcpt);
	}
	if (map_rcpt_params(j, in, err, errlen) != 0)
		return OB_DATAERR;
	if (j->msg.eightbit && j->params.body == PARAMS_BODY_7BIT)
		log_event(LOG_INFO, "%s: declared 7BIT but has 8-bit bytes: "
		          "sent as 8BITMIME", j->s->id);
	if (j->msg.eightbit)
		j->params.body = PARAMS_BODY_8BITMIME;
	return OB_OK;
nomem:
	str_copy(err, errlen, "out of memory");
	return OB_SOFTWARE;
}

static enum ob_status take_message(struct job *j, int in_fd)
{
	char err[1024];
	enum ob_status st = read_message(j, in_fd, err, sizeof(err));

	if (st == OB_OK && j->rcpts.count == 0) {
		st = OB_DATAERR;
		str_copy(err, sizeof(err), "no recipients: give addresses as "
		         "arguments, or use -t with To/Cc/Bcc fields");
	}
	if (st == OB_OK)
		st = take_params(j, err, sizeof(err));
	if (st == OB_OK && j->msg.longest_line > MIME_LINE_MAX)
		st = fix_long_lines(j, err, sizeof(err));
	if (st != OB_OK) {
		say(j, true, "%s", err);
		return st;
	}
	log_event(LOG_INFO, "%s: from=<%s>, size=%lld, nrcpt=%zu%s%s",
	          j->s->id, j->sender, (long long)j->msg.size, j->rcpts.count,
	          j->cfg->account ? ", account=" : "",
	          j->cfg->account ? j->cfg->account : "");
	if (j->msg.from_rewritten)
		log_event(LOG_INFO, "%s: header From rewritten: %s -> %s",
		          j->s->id, j->msg.old_from[0] ? j->msg.old_from
		                                       : "(no address)",
		          j->hp.from);
	if (j->s->verbose && j->msg.changed[0] != '\0')
		fprintf(stderr, "outbox: header fields changed: %s\n",
		        j->msg.changed);
	return OB_OK;
}

/*
 * After a direct send. The smarthost accepted the message and queued
 * ones are due: the open connection carries them on in a detached
 * process (the caller waits for nothing, not even the reply to QUIT).
 * Otherwise the connection closes, and then a detached queue run starts
 * when (a) the message went and older ones are due (a flush; not when
 * the carrier took them, unless other accounts have some), (b) this
 * process held a connection slot and a message was committed
 * meanwhile, i.e. is not in the listing taken before the send (a sender
 * that found every slot taken relies on the holders to send its
 * message: each looks again once its slot is free), or
 * (c) this message was queued for want of a slot and one is free now
 * (its holder let it go before this message was committed). Whoever
 * comes last, holder or sender, sees the message.
 */
static void finish(struct job *j, enum ob_status st)
{
	bool sent = st == OB_OK && !j->s->queued;
	bool go = false, carried = false;

	/* a committed message's spool file is still locked by this process:
	 * let the queue runs below (and the holders of slots) take it */
	if (j->s->queued && j->spool >= 0) {
		close(j->spool);
		j->spool = -1;
	}

	if (j->q != NULL && sent && runner_has_due(j->q) &&
	    deliver_connected(j->ctx) &&
	    runner_carry_on(j->cfg, j->ctx, j->lim)) {
		deliver_park(j->ctx);
		j->ctx = NULL;
		carried = true;
	}
	deliver_free(j->ctx);
	j->ctx = NULL;
	if (j->q != NULL && j->held)
		go = limits_slot_free(j->lim);                  /* (c) */
	limits_free(j->lim);                    /* our slots are free now */
	j->lim = NULL;
	/* (a) covers (b): any due message, late arrivals included; but the
	 * carrier sends them itself, late ones too (another account's
	 * messages are not its to send: with accounts, (a) still) */
	if (carried && config_root(j->cfg)->naccounts == 0)
		go = false;
	else if (j->q != NULL && !j->held && sent)
		go = runner_has_due(j->q);                      /* (a) */
	else if (j->q != NULL && !j->held && j->cfg->max_connections > 0)
		go = runner_has_due_unseen(j->q, &j->seen, j->s->id); /* (b) */
	if (go)
		runner_run_detached(j->cfg, NULL);
}

static enum ob_status run(struct job *j, int in_fd)
{
	char err[1024];
	enum ob_status st;

	int r = 0;

	if (j->s->sender != NULL)       /* -bs: parsed at MAIL */
		j->sender = strdup(j->s->sender);
	else
		r = envelope_sender(j->cfg, j->s->sender_arg, &j->sender, err,
		                    sizeof(err));
	if (r == 0 && j->sender == NULL) {
		say(j, true, "out of memory");
		return OB_SOFTWARE;
	}
	if (r != 0) {
		say(j, true, "%s", err);
		return r == -2 ? OB_NOPERM : OB_USAGE;
	}
	st = open_spool(j);
	if (st == OB_OK)
		st = take_message(j, in_fd);
	if (st != OB_OK)
		return st;
	if (j->s->delivery != DELIVER_NOW) {
		st = commit(j, &j->rcpts, 0, NULL);
		if (st == OB_OK) {
			say(j, false, "queued as %s", j->s->id);
			if (j->s->delivery == DELIVER_BACKGROUND) {
				close(j->spool);
				j->spool = -1;
				runner_run_detached(j->cfg, j->s->id);
			}
		}
		return st;
	}
	st = deliver_now(j);
	if (!j->s->queued)
		log_event(LOG_INFO, "%s: removed", j->s->id);
	finish(j, st);
	return st;
}

enum ob_status submit(const struct config *cfg, int in_fd,
                      struct submission *s)
{
	struct job j;
	enum ob_status st;

	memset(&j, 0, sizeof(j));
	j.cfg = s->account ? s->account : envelope_account(cfg, s->sender_arg);
	j.s = s;
	j.spool = -1;
	clock_gettime(CLOCK_MONOTONIC, &j.start);
	s->queued = false;
	s->nok = s->nrefused = 0;
	s->reply[0] = '\0';
	str_copy(s->id, sizeof(s->id), "NOQUEUE");
	st = run(&j, in_fd);
	deliver_free(j.ctx);        /* when finish() was not reached */
	limits_free(j.lim);
	addr_list_free(&j.seen);
	if (j.spool >= 0) {
		/* a committed message was renamed away: this only removes an
		 * uncommitted spool file */
		if (j.q != NULL)
			store_discard(j.q, s->id);
		close(j.spool);
	}
	store_close(j.q);
	message_free(&j.msg);
	addr_list_free(&j.rcpts);
	params_free(&j.params);
	free(j.sender);
	free(j.hp_from);
	return st;
}

/* -bv's lines for the recipients: the smarthost (the first; failover
 * may take the next ones), and the account when there are several. */
static void verify_account(const struct config *cfg,
                           const struct addr_list *rcpts, FILE *out)
{
	bool named = config_root(cfg)->naccounts > 0;
	char acct[CONFIG_ACCOUNT_NAME_MAX + 16] = "";
	size_t i;

	if (named) {
		fprintf(out, "account: %s (smarthost %s port %d)\n",
		        config_account_name(cfg), cfg->hosts[0].host,
		        cfg->hosts[0].port);
		snprintf(acct, sizeof(acct), " (account %s)",
		         config_account_name(cfg));
	}
	for (i = 0; i < rcpts->count; i++)
		fprintf(out, "%s... deliverable: via smarthost %s%s\n",
		        rcpts->addrs[i], cfg->hosts[0].host, acct);
}

enum ob_status submit_verify(const struct config *cfg, int in_fd,
                             struct submission *s, FILE *out)
{
	struct job j;
	char err[1024];
	enum ob_status st = OB_OK;
	int r, in;

	memset(&j, 0, sizeof(j));
	j.cfg = cfg = envelope_account(cfg, s->sender_arg);
	j.s = s;
	j.spool = -1;
	s->reply[0] = '\0';
	r = envelope_sender(cfg, s->sender_arg, &j.sender, err, sizeof(err));
	if (r != 0)
		st = r == -2 ? OB_NOPERM : OB_USAGE;
	if (st == OB_OK) {
		/* without -t the message is not read: an empty one */
		in = s->extract_rcpts ? in_fd : open("/dev/null", O_RDONLY |
		                                     O_CLOEXEC);
		j.spool = open("/dev/null", O_WRONLY | O_CLOEXEC);
		st = j.spool < 0 || in < 0 ? OB_IOERR
		     : read_message(&j, in, err, sizeof(err));
		if (j.spool < 0 || in < 0)
			str_copy(err, sizeof(err), "cannot open /dev/null");
		if (in >= 0 && in != in_fd)
			close(in);
	}
	if (st == OB_OK && j.rcpts.count == 0) {
		st = OB_USAGE;
		str_copy(err, sizeof(err), "no recipients given");
	}
	if (st != OB_OK) {
		say(&j, true, "%s", err);
	} else {
		fprintf(out, "header %s\n", j.msg.from_field ? j.msg.from_field
		                                             : "From:");
		fprintf(out, "envelope sender: <%s>\n", j.sender);
		verify_account(cfg, &j.rcpts, out);
	}
	if (j.spool >= 0)
		close(j.spool);
	message_free(&j.msg);
	addr_list_free(&j.rcpts);
	free(j.sender);
	free(j.hp_from);
	return st;
}
