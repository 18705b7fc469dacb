/*
 * queue_run.c - running the queue (see queue.h, and the crash states at
 * the top of queue.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "envelope.h"
#include "log.h"
#include "queue_int.h"
#include "util.h"

struct run {
	struct queue *q;
	const struct config *cfg;
	struct deliver_ctx *ctx;
	const struct queue_run_opts *o;
	struct queue_run_stats *st;
	struct addr_list bounces;   /* DSNs queued during this run */
};

static long backoff(const struct queue_run_opts *o, long attempts)
{
	long d = o->retry_min > 0 ? o->retry_min : 60;
	long i;

	for (i = 1; i < attempts && d < o->retry_max; i++)
		d *= 2;
	return d > o->retry_max ? o->retry_max : d;
}

/* Queue a DSN to e->sender about rcpts; it is sent at the end of the run. */
static void queue_bounce(struct run *r, const struct queue_entry *e, int datafd,
                         const struct bounce_rcpt *rcpts, size_t n,
                         bool expired)
{
	char id[QUEUE_ID_LEN + 1];

	if (queue_add_bounce(r->q, r->cfg, e->id, e->sender, e->uid, e->created,
	                     datafd, rcpts, n, expired, id) == 0)
		addr_list_add(&r->bounces, id);
}

/* Write the updated envelope and put it in place of the old one. */
static int replace_env(struct run *r, const struct queue_entry *e)
{
	char name[64];

	queue_name(name, sizeof(name), e->id, "env");
	if (queue_write_env(r->q, e) != 0 ||
	    renameat(r->q->tmpfd, name, r->q->msgfd, name) != 0 ||
	    fsync(r->q->msgfd) != 0) {
		log_event(LOG_ERR, "%s: cannot update the queue file: %s", e->id,
		          strerror(errno));
		return -1;
	}
	return 0;
}

/* After an attempt: keep the temporary recipients, bounce the rest. */
static void settle(struct run *r, struct queue_entry *e, int fd,
                   const struct deliver_report *rep)
{
	struct bounce_rcpt *perm = calloc(rep->nrcpt + 1, sizeof(*perm));
	struct addr_list keep = { 0 };
	time_t now = time(NULL);
	size_t i, nperm = 0;
	bool bounced = false;

	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *d = &rep->rcpt[i];

		deliver_log(e->id, d, (double)(now - e->created),
		            e->attempts + 1);
		if (d->state == RCPT_TEMP)
			addr_list_add(&keep, d->addr);
		else if (d->state == RCPT_PERM && perm != NULL)
			perm[nperm++] = (struct bounce_rcpt){ d->addr, d->text };
	}
	r->st->sent += rep->status == OB_OK;
	if (nperm > 0) {
		queue_bounce(r, e, fd, perm, nperm, false);
		bounced = true;
	}
	if (keep.count > 0 && now - e->created >= r->o->lifetime) {
		for (i = 0, nperm = 0; i < rep->nrcpt && perm != NULL; i++) {
			if (rep->rcpt[i].state == RCPT_TEMP)
				perm[nperm++] = (struct bounce_rcpt){
					rep->rcpt[i].addr, rep->rcpt[i].text };
		}
		log_event(LOG_WARNING, "%s: expired after %lld s in the queue",
		          e->id, (long long)(now - e->created));
		queue_bounce(r, e, fd, perm, nperm, true);
		addr_list_free(&keep);
		bounced = true;
	}
	if (keep.count > 0) {
		addr_list_free(&e->rcpts);
		e->rcpts = keep;
		e->attempts++;
		e->next = now + backoff(r->o, e->attempts);
		str_copy(e->last_error, sizeof(e->last_error), rep->reason);
		replace_env(r, e);
		r->st->deferred++;
	} else if (bounced) {
		queue_move_failed(r->q, e->id);
		log_event(LOG_INFO, "%s: moved to failed/", e->id);
		r->st->bounced++;
	} else {
		queue_remove_msg(r->q, e->id);
		log_event(LOG_INFO, "%s: removed", e->id);
	}
	free(perm);
}

static bool due(const struct run *r, const struct queue_entry *e)
{
	if (r->o->force || r->o->only_id != NULL)
		return true;
	return e->next <= time(NULL);
}

/* Lock, load, send and settle one message. */
static void process(struct run *r, const char *id, bool always)
{
	struct deliver_report rep;
	struct queue_entry e;
	struct stat st;
	char name[64];
	int fd;

	queue_name(name, sizeof(name), id, "data");
	fd = openat(r->q->msgfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT && queue_load_env(r->q, id, &e) == 0) {
			log_event(LOG_ERR, "%s: data file missing; moved to "
			          "failed/", id);
			queue_entry_free(&e);
			queue_move_failed(r->q, id);
		}
		return;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		r->st->locked++;
		close(fd);
		return;
	}
	if (queue_load_env(r->q, id, &e) != 0) {
		if (errno == EINVAL) {
			log_event(LOG_ERR, "%s: damaged queue file; moved to "
			          "failed/", id);
			queue_move_failed(r->q, id);
		}
		close(fd);
		return;
	}
	if ((always || due(r, &e)) && fstat(fd, &st) == 0) {
		deliver_send(r->ctx, e.sender, &e.rcpts, fd, st.st_size, &rep);
		if (rep.not_tried) {
			/* its smarthosts failed earlier in this run: it stays
			 * due, its envelope untouched */
			r->st->skipped++;
		} else {
			r->st->tried++;
			settle(r, &e, fd, &rep);
		}
		deliver_report_free(&rep);
	}
	queue_entry_free(&e);
	close(fd);
}

int queue_run(struct queue *q, const struct config *cfg,
              struct deliver_ctx *ctx, const struct queue_run_opts *o,
              struct queue_run_stats *st, char *err, size_t errlen)
{
	struct run r = { q, cfg, ctx, o, st, { 0 } };
	struct addr_list ids = { 0 };
	size_t i;

	memset(st, 0, sizeof(*st));
	queue_clean_abandoned(q);
	if (o->only_id != NULL) {
		if (queue_find_mine(q, o->only_id, err, errlen) != 0)
			return -1;
		process(&r, o->only_id, true);
	} else {
		if (queue_list_ids(q->msgfd, "env", &ids) != 0) {
			snprintf(err, errlen, "cannot read queue msg/: %s",
			         strerror(errno));
			return -1;
		}
		for (i = 0; i < ids.count && !(o->stop && *o->stop); i++)
			process(&r, ids.addrs[i], false);
	}
	/* bounces made by this run go out now, over the same connection */
	for (i = 0; i < r.bounces.count && !(o->stop && *o->stop); i++)
		process(&r, r.bounces.addrs[i], true);
	addr_list_free(&r.bounces);
	addr_list_free(&ids);
	return 0;
}
