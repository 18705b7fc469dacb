/*
 * runner.c - queue runs (see runner.h; the on-disk states and what a
 * crash leaves are at the top of store.c).
 */
#define _GNU_SOURCE
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "limits.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct run {
	struct store *q;
	const struct config *cfg;
	struct deliver_ctx *ctx;
	const struct runner_opts *o;
	struct runner_stats *st;
	struct addr_list bounces;   /* DSNs queued during this run */
	struct addr_list locked;    /* messages another process held */
	struct metrics_tally tally; /* for the metrics file */
};

static int cmp_id(const void *a, const void *b);

static long backoff(const struct config *cfg, long attempts)
{
	long d = cfg->retry_min > 0 ? cfg->retry_min : 60;
	long i;

	for (i = 1; i < attempts && d < cfg->retry_max; i++)
		d *= 2;
	return d > cfg->retry_max ? cfg->retry_max : d;
}

/* Queue a DSN to e->sender about rcpts; it is sent at the end of the run. */
static void queue_bounce(struct run *r, const struct store_entry *e,
                         int datafd, const struct bounce_rcpt *rcpts,
                         size_t n, bool expired)
{
	char id[STORE_ID_LEN + 1];

	if (runner_add_bounce(r->q, r->cfg, e->id, e->sender, e->uid,
	                      e->created, datafd, rcpts, n, expired,
	                      &e->params, id) == 0)
		addr_list_add(&r->bounces, id);
}

/* Write the updated envelope in place of the old one. */
static int replace_env(struct run *r, const struct store_entry *e)
{
	char err[300];

	if (store_update(r->q, e, err, sizeof(err)) != 0) {
		log_event(LOG_ERR, "%s: %s", e->id, err);
		return -1;
	}
	return 0;
}

/* After an attempt: keep the temporary recipients, bounce the rest. */
static void settle(struct run *r, struct store_entry *e, int fd,
                   const struct deliver_report *rep)
{
	struct bounce_rcpt *perm = calloc(rep->nrcpt + 1, sizeof(*perm));
	struct addr_list keep = { 0 }, gone = { 0 };
	time_t now = time(NULL);
	size_t i, nperm = 0;
	bool bounced = false;

	metrics_note(&r->tally, rep,
	             now - e->created >= r->cfg->queue_lifetime);
	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *d = &rep->rcpt[i];

		deliver_log(e->id, r->cfg->account, d,
		            (double)(now - e->created), e->attempts + 1);
		if (d->state == RCPT_TEMP)
			addr_list_add(&keep, d->addr);
		else if (d->state == RCPT_PERM) {
			addr_list_add(&gone, d->addr);
			if (perm != NULL)
				perm[nperm++] = (struct bounce_rcpt){ d->addr,
				                                      d->text };
		}
	}
	r->st->sent += rep->status == OB_OK;
	if (nperm > 0) {
		queue_bounce(r, e, fd, perm, nperm, false);
		bounced = true;
	}
	if (keep.count > 0 && now - e->created >= r->cfg->queue_lifetime) {
		for (i = 0, nperm = 0; i < rep->nrcpt && perm != NULL; i++) {
			if (rep->rcpt[i].state == RCPT_TEMP)
				perm[nperm++] = (struct bounce_rcpt){
					rep->rcpt[i].addr, rep->rcpt[i].text };
		}
		log_event(LOG_WARNING, "%s: expired after %lld s in the queue",
		          e->id, (long long)(now - e->created));
		queue_bounce(r, e, fd, perm, nperm, true);
		for (i = 0; i < keep.count; i++)
			addr_list_add(&gone, keep.addrs[i]);
		addr_list_free(&keep);
		bounced = true;
	}
	if (keep.count > 0) {
		addr_list_free(&e->rcpts);
		e->rcpts = keep;
		e->attempts++;
		e->next = now + backoff(r->cfg, e->attempts);
		str_copy(e->last_error, sizeof(e->last_error), rep->reason);
		replace_env(r, e);
		r->st->deferred++;
	} else if (bounced) {
		/* failed/ID.env: the recipients that failed, the real attempts
		 * and the last error, for mailq --failed and --requeue */
		addr_list_free(&e->rcpts);
		e->rcpts = gone;
		gone = (struct addr_list){ 0 };
		e->attempts++;
		str_copy(e->last_error, sizeof(e->last_error),
		         rep->reason[0] != '\0' || nperm == 0 ? rep->reason
		                                              : perm[0].diag);
		store_fail(r->q, e->id, e);
		log_event(LOG_INFO, "%s: moved to failed/", e->id);
		r->st->bounced++;
	} else {
		store_drop(r->q, e->id, fd);
		log_event(LOG_INFO, "%s: removed", e->id);
	}
	addr_list_free(&gone);
	free(perm);
}

static bool due(const struct run *r, const struct store_entry *e)
{
	if (r->o->force || r->o->nids > 0)
		return true;
	return e->next <= time(NULL);
}

/*
 * The account e goes through: the one it names, or, when the config no
 * longer has it, the one its sender selects now (said in the log).
 */
static const struct config *account_of(const struct run *r,
                                       const struct store_entry *e)
{
	const struct config *a = config_account_named(r->cfg, e->account);

	return a != NULL ? a : config_account_for(r->cfg, e->sender);
}

/* With several accounts, a run sends one account's messages (those of
 * r->cfg): is id another's? (Read without the lock: an envelope is
 * replaced whole, and the account of a message never changes.) */
static bool not_ours(const struct run *r, const char *id)
{
	struct store_entry e;
	bool other;

	if (config_root(r->cfg)->naccounts == 0 ||
	    store_load(r->q, STORE_MSG, id, &e) != 0)
		return false;
	other = account_of(r, &e) != r->cfg;
	store_entry_free(&e);
	return other;
}

/* Lock, load, send and settle one message. */
static void process(struct run *r, const char *id, bool always)
{
	struct deliver_report rep;
	struct store_entry e;
	struct stat st;
	int fd;

	if (not_ours(r, id))
		return;
	fd = store_lock(r->q, id);

	if (fd < 0) {
		if (errno == EWOULDBLOCK) {
			r->st->locked++;
			addr_list_add(&r->locked, id);
		}
		else if (errno == ENOENT &&
		         store_load(r->q, STORE_MSG, id, &e) == 0) {
			log_event(LOG_ERR, "%s: data file missing; moved to "
			          "failed/", id);
			store_entry_free(&e);
			store_fail(r->q, id, NULL);
		}
		return;
	}
	if (store_load(r->q, STORE_MSG, id, &e) != 0) {
		if (errno == EINVAL) {
			log_event(LOG_ERR, "%s: damaged queue file; moved to "
			          "failed/", id);
			store_fail(r->q, id, NULL);
		}
		close(fd);
		return;
	}
	if (e.account != NULL && config_account_named(r->cfg, e.account) ==
	    NULL)
		log_event(LOG_WARNING, "%s: account %s is not in the config any "
		          "more; sent through account %s (its sender's)", id,
		          e.account, config_account_name(r->cfg));
	if ((always || due(r, &e)) && fstat(fd, &st) == 0) {
		deliver_send(r->ctx, e.sender, &e.rcpts, &e.params, fd,
		             st.st_size, &rep);
		if (rep.not_tried &&
		    time(NULL) - e.created < r->cfg->queue_lifetime) {
			/* its smarthosts failed earlier in this run, limit us
			 * for now or are held back: it stays due, its envelope
			 * untouched (past its lifetime, settle bounces it) */
			r->st->skipped++;
			if (rep.held_kind == LIMITS_WAIT)
				metrics_note_rate_wait(&r->tally, rep.where);
		} else {
			r->st->tried++;
			settle(r, &e, fd, &rep);
		}
		deliver_report_free(&rep);
	}
	store_entry_free(&e);
	close(fd);
}

/* seen := ids but those another process held (it may have committed
 * them just now: they count as not seen). ids stays as it was. */
static void keep_seen(struct addr_list *seen, const struct addr_list *ids,
                      const struct addr_list *locked)
{
	size_t i, k;

	addr_list_free(seen);
	for (i = 0; i < ids->count; i++) {
		for (k = 0; k < locked->count; k++) {
			if (strcmp(ids->addrs[i], locked->addrs[k]) == 0)
				break;
		}
		if (k == locked->count)
			addr_list_add(seen, ids->addrs[i]);
	}
}

int runner_run(struct store *q, const struct config *cfg,
               struct deliver_ctx *ctx, const struct runner_opts *o,
               struct runner_stats *st, char *err, size_t errlen)
{
	struct run r = { q, cfg, ctx, o, st, { 0 }, { 0 }, { 0 } };

	r.tally.account = cfg->account;
	struct addr_list ids = { 0 };
	size_t i;
	int rc = 0;

	struct addr_list *seen = st->seen;

	memset(st, 0, sizeof(*st));
	st->seen = seen;
	if (cfg->account == NULL) {
		/* host-wide housekeeping: once a run, in the default account's
		 * pass (a queue run makes it first), not again in each account's */
		store_clean_abandoned(q);
		store_expire_failed(q, cfg->failed_lifetime);
	}
	if (o->nids > 0) {
		for (i = 0; i < o->nids && !(o->stop && *o->stop); i++) {
			char e[300];

			if (store_find_mine(q, o->ids[i], e, sizeof(e)) == 0)
				process(&r, o->ids[i], true);
			else if (rc == 0) {
				str_copy(err, errlen, e);
				rc = -1;
			}
		}
	} else {
		if (store_ids(q, STORE_MSG, &ids) != 0) {
			snprintf(err, errlen, "cannot read queue msg/: %s",
			         strerror(errno));
			return -1;
		}
		for (i = 0; i < ids.count && !(o->stop && *o->stop); i++)
			process(&r, ids.addrs[i], false);
		if (st->seen != NULL)
			keep_seen(st->seen, &ids, &r.locked);
	}
	/* bounces made by this run go out now, over the same connection */
	for (i = 0; i < r.bounces.count && !(o->stop && *o->stop); i++)
		process(&r, r.bounces.addrs[i], true);
	addr_list_free(&r.bounces);
	addr_list_free(&r.locked);
	addr_list_free(&ids);
	metrics_update(cfg, q, &r.tally);
	return rc;
}

/* One run with a context and slots of its own, freed at its end. */
static int run_own(const struct config *cfg, struct store *q,
                   const struct runner_opts *o, bool verbose,
                   struct runner_stats *st, char *err, size_t errlen)
{
	struct deliver_ctx *ctx = deliver_new(cfg, verbose);
	struct limits *l = limits_new(cfg, q);
	int rc = -1;

	if (ctx == NULL || l == NULL)
		snprintf(err, errlen, "out of memory");
	else {
		deliver_set_gate(ctx, limits_gate, l);
		rc = runner_run(q, cfg, ctx, o, st, err, errlen);
	}
	deliver_free(ctx);
	limits_free(l);
	return rc;
}

/* seen := what both seen and other hold (sorted lists, as keep_seen
 * makes them). */
static void keep_common(struct addr_list *seen, const struct addr_list *other)
{
	struct addr_list both = { 0 };
	size_t i;

	for (i = 0; i < seen->count; i++) {
		const char *id = seen->addrs[i];

		if (other->count > 0 &&
		    bsearch(&id, other->addrs, other->count, sizeof(char *),
		            cmp_id) != NULL)
			addr_list_add(&both, id);
	}
	addr_list_free(seen);
	*seen = both;
}

static void add_stats(struct runner_stats *to, const struct runner_stats *st)
{
	to->tried += st->tried;
	to->sent += st->sent;
	to->deferred += st->deferred;
	to->bounced += st->bounced;
	to->locked += st->locked;
	to->skipped += st->skipped;
}

/*
 * run_own for each account in turn, the default first: each sends its
 * own messages over its own connections. seen gets the messages every
 * one of the runs saw (one committed during the runs is unseen).
 */
static int run_accounts(const struct config *root, struct store *q,
                        const struct runner_opts *o, bool verbose,
                        struct runner_stats *total, char *err,
                        size_t errlen)
{
	struct addr_list *seen = total->seen, mine = { 0 };
	struct runner_stats st = { 0 };
	size_t i;
	int rc = 0;

	memset(total, 0, sizeof(*total));
	total->seen = seen;
	for (i = 0; i <= root->naccounts && !(o->stop && *o->stop); i++) {
		const struct config *a = i == 0 ? root : &root->accounts[i - 1];

		st.seen = seen == NULL ? NULL : i == 0 ? seen : &mine;
		if (run_own(a, q, o, verbose, &st, err, errlen) != 0) {
			rc = -1;
			if (o->nids == 0)
				break;  /* the queue cannot be read */
		}
		if (seen != NULL && i > 0)
			keep_common(seen, &mine);
		add_stats(total, &st);
	}
	addr_list_free(&mine);
	return rc;
}

enum ob_status runner_run_once(const struct config *cfg, struct store *q,
                               const struct runner_opts *o, bool verbose)
{
	const struct config *root = config_root(cfg);
	struct runner_stats st = { 0 }, late = { 0 };
	struct addr_list seen = { 0 };
	char err[512];

	st.seen = &seen;
	if (run_accounts(root, q, o, verbose, &st, err, sizeof(err)) != 0) {
		addr_list_free(&seen);
		fprintf(stderr, "outbox: %s\n", err);
		return strcmp(err, "out of memory") == 0 ? OB_SOFTWARE
		                                         : OB_IOERR;
	}
	/* its slots are free now: what a sender queued meanwhile for want
	 * of one is this process's to send (that sender relies on it) */
	if (o->nids == 0 && !(o->stop && *o->stop) &&
	    runner_has_due_unseen(q, &seen, NULL))
		run_accounts(root, q, o, verbose, &late, err, sizeof(err));
	addr_list_free(&seen);
	if (verbose)
		fprintf(stderr, "outbox: queue run: %zu tried, %zu sent, "
		        "%zu deferred, %zu bounced, %zu locked by another run, "
		        "%zu not tried (smarthost down)\n",
		        st.tried + late.tried, st.sent + late.sent,
		        st.deferred + late.deferred, st.bounced + late.bounced,
		        st.locked, st.skipped);
	return OB_OK;
}

/* In a new process, detached from the caller (session, standard streams
 * on /dev/null, no other descriptor but those in keep, and with
 * curl_handles the sockets of the libcurl handles it goes on with): 0 in the
 * grandchild that goes on, 1 in the caller once it is started, -1 when
 * it could not be. */
static int detach(const int *keep, size_t nkeep, bool curl_handles)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0) {
		waitpid(pid, NULL, 0);
		return 1;
	}
	/* the child: a new session, then the grandchild does the work */
	if (setsid() < 0 || fork() != 0)
		_exit(0);
	/* the log's socket or file goes properly before the numbers are
	 * closed below (glibc's syslog would send to, and then close, what
	 * later takes its number); the caller opens the log again */
	log_close();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (curl_handles)       /* and their socket pairs: see util.h */
		close_fds_but_sockets(keep, nkeep);
	else
		close_fds_except(keep, nkeep);
	return 0;
}

/* Passes over the queue until one sends nothing, so that messages
 * committed meanwhile by senders that found no free slot go too. */
static void run_passes(struct store *q, const struct config *cfg,
                       struct deliver_ctx *ctx, struct addr_list *seen)
{
	struct runner_opts o = { 0 };
	struct runner_stats st = { 0 };
	char err[512];
	int pass;

	st.seen = seen;
	for (pass = 0; pass < 100; pass++) {
		if (runner_run(q, cfg, ctx, &o, &st, err, sizeof(err)) != 0 ||
		    st.tried == 0 || !runner_has_due(q))
			break;
	}
}

void runner_run_detached(const struct config *cfg, const char *only_id)
{
	struct runner_opts o = { 0 };
	struct store *q = NULL;
	char err[512];

	if (detach(NULL, 0, false) != 0)
		return;
	cfg = config_root(cfg);
	log_open(cfg->log, cfg->privileged);
	o.ids = &only_id;
	o.nids = only_id != NULL;
	if (store_open(cfg->queue, false, cfg->privileged, &q, err,
	               sizeof(err)) == 0)
		runner_run_once(cfg, q, &o, false);
	store_close(q);
	_exit(0);
}

bool runner_carry_on(const struct config *cfg, struct deliver_ctx *ctx,
                     struct limits *l)
{
	struct runner_opts o = { 0 };
	struct store *q = NULL;
	struct addr_list seen = { 0 };
	char err[512];
	int keep[CONFIG_MAX_SMARTHOSTS * 2];
	size_t n;
	int r;

	n = deliver_fds(ctx, keep, CONFIG_MAX_SMARTHOSTS);
	n += limits_fds(l, keep + n, CONFIG_MAX_SMARTHOSTS);
	r = detach(keep, n, true);
	if (r != 0)
		return r > 0;
	/* the grandchild: the caller's connections and slots are ours */
	log_open(cfg->log, cfg->privileged);
	if (store_open(cfg->queue, false, cfg->privileged, &q, err,
	               sizeof(err)) == 0) {
		limits_set_store(l, q);
		run_passes(q, cfg, ctx, &seen);
	}
	deliver_free(ctx);      /* QUIT, now that nobody else uses them */
	limits_free(l);
	/* the slots are free: what a sender queued meanwhile for want of
	 * one is ours to send (that sender relies on it) */
	if (q != NULL && runner_has_due_unseen(q, &seen, NULL))
		runner_run_once(cfg, q, &o, false);
	addr_list_free(&seen);
	store_close(q);
	_exit(0);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool runner_has_due_unseen(struct store *q, const struct addr_list *seen,
                           const char *except)
{
	struct addr_list ids = { 0 };
	time_t now = time(NULL);
	bool found = false;
	size_t i;

	if (store_ids(q, STORE_MSG, &ids) != 0)
		return false;
	/* at most 1000 envelopes read: a long queue is due somewhere */
	for (i = 0; i < ids.count && i < 1000 && !found; i++) {
		struct store_entry e;
		const char *id = ids.addrs[i];

		if ((except != NULL && strcmp(id, except) == 0) ||
		    (seen->count > 0 &&
		     bsearch(&id, seen->addrs, seen->count, sizeof(char *),
		             cmp_id) != NULL))
			continue;
		if (store_load(q, STORE_MSG, id, &e) == 0) {
			found = e.next <= now;
			store_entry_free(&e);
		}
	}
	addr_list_free(&ids);
	return found;
}

bool runner_has_due(struct store *q)
{
	const struct addr_list none = { 0 };

	return runner_has_due_unseen(q, &none, NULL);
}

int runner_add_bounce(struct store *q, const struct config *cfg,
                      const char *orig_id, const char *sender, uid_t uid,
                      time_t arrival, int datafd,
                      const struct bounce_rcpt *rcpts, size_t n,
                      bool expired, const struct params_set *params,
                      char id[STORE_ID_LEN + 1])
{
	struct bounce_info b = { 0 };
	struct store_entry e = { 0 };
	struct bounce_rcpt *want;
	char err[300];
	char *dsn_from;
	size_t i, nwant = 0;
	int fd, rc = -1;

	if (sender[0] == '\0') {
		log_event(LOG_WARNING, "%s: undeliverable; no bounce for the "
		          "null sender", orig_id);
		return -1;
	}
	want = calloc(n ? n : 1, sizeof(*want));
	for (i = 0; want != NULL && i < n; i++) {
		if (params_wants_failure(params, rcpts[i].addr))
			want[nwant++] = rcpts[i];
		else
			log_event(LOG_INFO, "%s: no bounce about <%s>: NOTIFY "
			          "excludes FAILURE", orig_id, rcpts[i].addr);
	}
	if (want == NULL || nwant == 0) {
		free(want);
		return -1;
	}
	b.sender = sender;
	b.domain = envelope_domain(cfg);
	dsn_from = envelope_dsn_from(cfg);  /* from-header */
	b.from = dsn_from;
	b.host = cfg->helo ? cfg->helo : envelope_domain(cfg);
	b.id = orig_id;
	b.arrival = arrival;
	b.expired = expired;
	b.rcpts = want;
	b.nrcpts = nwant;
	b.params = params;
	fd = store_spool(q, id, err, sizeof(err));
	str_copy(e.id, sizeof(e.id), id);
	e.sender = (char *)"";
	e.account = cfg->account;       /* the message's account carries it */
	e.uid = uid;
	e.created = e.next = time(NULL);
	if (fd >= 0 && bounce_write(fd, datafd, &b) == 0 &&
	    addr_list_add(&e.rcpts, sender) == 0 &&
	    store_commit(q, fd, &e, err, sizeof(err)) == 0) {
		log_event(LOG_INFO, "%s: sender non-delivery notification: %s",
		          orig_id, id);
		rc = 0;
	} else {
		log_event(LOG_ERR, "%s: cannot queue the bounce: %s", orig_id,
		          fd < 0 ? err : strerror(errno));
		if (fd >= 0)
			store_discard(q, id);
	}
	if (fd >= 0)
		close(fd);
	addr_list_free(&e.rcpts);
	free(dsn_from);
	free(want);
	return rc;
}
