/*
 * main.c - outbox: a send-only sendmail. Runs the mode the command line
 * asks for and maps the outcome to a sysexits(3) code. The only place
 * that decides the exit status.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "deliver.h"
#include "envelope.h"
#include "log.h"
#include "message.h"
#include "queue.h"
#include "util.h"

#ifndef OUTBOX_VERSION
#define OUTBOX_VERSION "0.1"
#endif

static int exit_code(enum ob_status st)
{
	static const int CODES[] = {
		[OB_OK] = EX_OK, [OB_USAGE] = EX_USAGE,
		[OB_DATAERR] = EX_DATAERR, [OB_NOUSER] = EX_NOUSER,
		[OB_UNAVAILABLE] = EX_UNAVAILABLE, [OB_SOFTWARE] = EX_SOFTWARE,
		[OB_CANTCREAT] = EX_CANTCREAT, [OB_IOERR] = EX_IOERR,
		[OB_TEMPFAIL] = EX_TEMPFAIL, [OB_PROTOCOL] = EX_PROTOCOL,
		[OB_NOPERM] = EX_NOPERM, [OB_CONFIG] = EX_CONFIG,
	};

	if ((size_t)st >= sizeof(CODES) / sizeof(CODES[0]))
		return EX_SOFTWARE;
	return CODES[st];
}

static int complain(enum ob_status st, const char *msg)
{
	fprintf(stderr, "outbox: %s\n", msg);
	return exit_code(st);
}

static int usage(void)
{
	printf("usage: outbox [-t] [-i] [-f sender] [-F name] [-C config] [-v]"
	       " [--] [recipient ...]\n"
	       "       outbox -bv [-C config] recipient ...\n"
	       "       outbox --version\n"
	       "Reads a message on standard input and hands it to the "
	       "smarthost named\nin %s. See outbox(8) and outbox.conf(5).\n",
	       CONFIG_DEFAULT_PATH);
	return EX_OK;
}

static int version(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	printf("outbox %s\nlibcurl %s (%s), GnuTLS %s\n", OUTBOX_VERSION,
	       v->version, v->ssl_version ? v->ssl_version : "no TLS",
	       gnutls_check_version(NULL));
	return EX_OK;
}

/* Print the outcome for the user (stderr) and the admin (log). */
static void report(const struct deliver_report *rep, const char *id,
                   const char *sender)
{
	size_t i;
	bool printed = false;

	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *r = &rep->rcpt[i];
		const char *status = r->state == RCPT_OK ? "sent" :
		                     r->state == RCPT_PERM ? "bounced" : "deferred";

		log_event(r->state == RCPT_OK ? LOG_INFO : LOG_WARNING,
		          "%s: from=<%s>, to=<%s>, relay=%s, status=%s (%s)", id,
		          sender, r->addr, r->where[0] ? r->where : "none", status,
		          r->text);
		if (r->state == RCPT_PERM && r->text[0] != '\0' &&
		    strcmp(r->text, rep->reason) != 0) {
			fprintf(stderr, "outbox: %s: recipient <%s> refused: %s\n",
			        r->where, r->addr, r->text);
			printed = true;
		}
	}
	if (rep->status == OB_UNAVAILABLE || (rep->status == OB_NOUSER && !printed))
		fprintf(stderr, "outbox: %s%s%s\n", rep->where,
		        rep->where[0] ? ": " : "", rep->reason);
}

static int verify(const struct config *cfg, const struct options *opt)
{
	struct addr_list rcpts = { 0 };
	char err[512];
	size_t i;

	if (envelope_recipients(cfg, opt->rcpts, opt->nrcpts, NULL, &rcpts,
	                        err, sizeof(err)) != 0)
		return complain(OB_DATAERR, err);
	for (i = 0; i < rcpts.count; i++)
		printf("%s... deliverable: via smarthost %s\n", rcpts.addrs[i],
		       cfg->hosts[0].host);
	if (rcpts.count == 0)
		return complain(OB_USAGE, "no recipients given");
	addr_list_free(&rcpts);
	return EX_OK;
}

/* ---- the queue ---- */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void run_opts(const struct config *cfg, struct queue_run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->retry_min = cfg->retry_min;
	o->retry_max = cfg->retry_max;
	o->lifetime = cfg->queue_lifetime;
	o->stop = &stop_requested;
}

/* One queue run with a fresh context. */
static int run_queue_once(const struct config *cfg, struct queue *q,
                          struct queue_run_opts *o, bool verbose)
{
	struct deliver_ctx *ctx = deliver_new(cfg, verbose);
	struct queue_run_stats st;
	char err[512];
	int rc;

	if (ctx == NULL)
		return complain(OB_SOFTWARE, "out of memory");
	rc = queue_run(q, cfg, ctx, o, &st, err, sizeof(err));
	deliver_free(ctx);
	if (rc != 0)
		return complain(OB_IOERR, err);
	if (verbose)
		fprintf(stderr, "outbox: queue run: %zu tried, %zu sent, "
		        "%zu deferred, %zu bounced, %zu locked by another run\n",
		        st.tried, st.sent, st.deferred, st.bounced, st.locked);
	return EX_OK;
}

/*
 * Run the queue (all due messages, or only id) in a detached grandchild,
 * so the caller returns at once: own session, stdio on /dev/null, no
 * inherited descriptors (a caller reading our output must not wait).
 */
static void spawn_queue_run(const struct config *cfg, const char *id)
{
	struct queue_run_opts o;
	struct queue *q = NULL;
	char err[512];
	pid_t pid = fork();
	int fd;

	if (pid != 0) {
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return;
	}
	if (setsid() < 0 || fork() != 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	closefrom(3);
	log_open(cfg->log);
	run_opts(cfg, &o);
	o.only_id = id;
	if (queue_open(cfg->queue, false, &q, err, sizeof(err)) == 0)
		run_queue_once(cfg, q, &o, false);
	queue_close(q);
	_exit(0);
}

static int queue_mode(const struct config *cfg, const struct options *opt)
{
	struct queue_run_opts o;
	struct queue *q = NULL;
	char err[512];
	long every = 0;
	int rc = EX_OK;

	if (cfg->queue == NULL) {
		if (opt->mode == MODE_LIST)
			printf("Mail queue is empty (the queue is off)\n");
		return opt->remove_id ? complain(OB_CONFIG, "the queue is off")
		                      : EX_OK;
	}
	if (opt->queue_interval != NULL &&
	    parse_duration(opt->queue_interval, 7L * 86400, &every) != 0)
		return complain(OB_USAGE, "bad queue interval after -q");
	if (queue_open(cfg->queue, true, &q, err, sizeof(err)) != 0)
		return complain(opt->mode == MODE_LIST ? OB_IOERR : OB_CANTCREAT,
		                err);
	if (opt->mode == MODE_LIST) {
		if (queue_list(q, stdout, err, sizeof(err)) != 0)
			rc = complain(OB_IOERR, err);
	} else if (opt->remove_id != NULL) {
		if (queue_remove(q, opt->remove_id, err, sizeof(err)) != 0)
			rc = complain(OB_USAGE, err);
	} else {
		run_opts(cfg, &o);
		o.force = opt->queue_force;
		o.only_id = opt->queue_id;
		signal(SIGTERM, on_stop);
		signal(SIGINT, on_stop);
		do {
			long waited;

			rc = run_queue_once(cfg, q, &o, opt->verbose);
			for (waited = 0; every > 0 && waited < every &&
			                 !stop_requested; waited++)
				sleep(1);
		} while (every > 0 && !stop_requested);
	}
	queue_close(q);
	return rc;
}

/* ---- sending ---- */

struct job {
	const struct config *cfg;
	const struct options *opt;
	struct queue *q;            /* NULL: the queue is off or unusable */
	char qerr[512];             /* why q is NULL */
	char id[QUEUE_ID_LEN + 1];
	int spool;
	char *sender;
	struct message msg;
	struct addr_list rcpts;
};

/* Commit the message for rcpts; on failure say why (one line). */
static enum ob_status commit(struct job *j, const struct addr_list *rcpts,
                             long attempts, const char *why)
{
	char err[600];

	if (j->q == NULL) {
		fprintf(stderr, "outbox: %s; %s\n", why ? why : "cannot queue",
		        j->qerr);
		return OB_TEMPFAIL;
	}
	if (queue_commit(j->q, j->id, j->spool, j->sender, rcpts, attempts,
	                 attempts ? j->cfg->retry_min : 0, why, err,
	                 sizeof(err)) != 0) {
		fprintf(stderr, "outbox: %s%s%s\n", why ? why : "",
		        why ? "; " : "", err);
		return OB_TEMPFAIL;
	}
	log_event(LOG_INFO, "%s: queued (%s)", j->id, why ? why : "on request");
	if (j->opt->verbose)
		fprintf(stderr, "outbox: queued as %s\n", j->id);
	return OB_OK;
}

static enum ob_status deliver_now(struct job *j)
{
	struct deliver_report rep;
	struct deliver_ctx *ctx = deliver_new(j->cfg, j->opt->verbose);
	struct addr_list temp = { 0 };
	enum ob_status st;
	char why[1000];
	bool refused = false;
	size_t i;

	if (ctx == NULL)
		return OB_SOFTWARE;
	st = deliver_send(ctx, j->sender, &j->rcpts, j->spool, j->msg.size, &rep);
	deliver_free(ctx);
	report(&rep, j->id, j->sender);
	for (i = 0; i < rep.nrcpt; i++) {
		if (rep.rcpt[i].state == RCPT_TEMP)
			addr_list_add(&temp, rep.rcpt[i].addr);
		refused = refused || rep.rcpt[i].state == RCPT_PERM;
	}
	if (temp.count > 0) {
		snprintf(why, sizeof(why), "%s%s%s", rep.where,
		         rep.where[0] ? ": " : "", rep.reason);
		if (commit(j, &temp, 1, why) != OB_OK)
			st = rep.status;    /* not queued: say what failed */
		else    /* durably queued; refused recipients still count */
			st = refused ? OB_NOUSER : OB_OK;
	}
	addr_list_free(&temp);
	deliver_report_free(&rep);
	return st;
}

/* Open the queue and a spool file in it, or fall back to $TMPDIR. */
static enum ob_status open_spool(struct job *j)
{
	if (j->cfg->queue == NULL)
		str_copy(j->qerr, sizeof(j->qerr), "the queue is off");
	else if (queue_open(j->cfg->queue, true, &j->q, j->qerr,
	                    sizeof(j->qerr)) == 0) {
		j->spool = queue_spool(j->q, j->id, j->qerr, sizeof(j->qerr));
		if (j->spool >= 0)
			return OB_OK;
		queue_close(j->q);
		j->q = NULL;
	}
	str_copy(j->id, sizeof(j->id), "NOQUEUE");
	j->spool = tmpfile_anon(NULL);
	if (j->spool < 0) {
		complain(OB_CANTCREAT, "cannot create a spool file in $TMPDIR "
		         "or /tmp");
		return OB_CANTCREAT;
	}
	return OB_OK;
}

static enum ob_status take_message(struct job *j)
{
	struct message_opts mo = { 0 };
	char err[1024];
	enum ob_status st;

	mo.ignore_dots = j->opt->ignore_dots;
	mo.extract_rcpts = j->opt->extract_rcpts;
	mo.sender = j->sender;
	mo.fullname = j->opt->fullname;
	mo.domain = envelope_domain(j->cfg);
	st = message_read(STDIN_FILENO, j->spool, &mo, &j->msg, err,
	                  sizeof(err));
	if (st == OB_OK &&
	    envelope_recipients(j->cfg, j->opt->rcpts, j->opt->nrcpts,
	                        &j->msg.rcpts, &j->rcpts, err, sizeof(err)) != 0)
		st = OB_DATAERR;
	if (st == OB_OK && j->rcpts.count == 0) {
		st = OB_DATAERR;
		str_copy(err, sizeof(err), "no recipients: give addresses as "
		         "arguments, or use -t with To/Cc/Bcc fields");
	}
	if (st != OB_OK)
		complain(st, err);
	else
		log_event(LOG_INFO, "%s: from=<%s>, size=%lld, nrcpt=%zu", j->id,
		          j->sender, (long long)j->msg.size, j->rcpts.count);
	return st;
}

static enum ob_status send_job(struct job *j)
{
	char err[1024];
	enum ob_status st;

	if (envelope_sender(j->cfg, j->opt->sender, &j->sender, err,
	                    sizeof(err)) != 0) {
		complain(OB_USAGE, err);
		return OB_USAGE;
	}
	st = open_spool(j);
	if (st == OB_OK)
		st = take_message(j);
	if (st != OB_OK)
		return st;
	if (j->opt->delivery != DELIVER_NOW) {
		st = commit(j, &j->rcpts, 0, NULL);
		if (st == OB_OK && j->opt->delivery == DELIVER_BACKGROUND) {
			close(j->spool);
			j->spool = -1;
			spawn_queue_run(j->cfg, j->id);
		}
		return st;
	}
	st = deliver_now(j);
	if (st == OB_OK && j->q != NULL && queue_has_due(j->q))
		spawn_queue_run(j->cfg, NULL);  /* opportunistic flush */
	return st;
}

static int send_mode(const struct config *cfg, const struct options *opt)
{
	struct job j;
	enum ob_status st;

	memset(&j, 0, sizeof(j));
	j.cfg = cfg;
	j.opt = opt;
	j.spool = -1;
	st = send_job(&j);
	if (j.spool >= 0) {
		/* a committed message was renamed away: this only removes an
		 * uncommitted spool file */
		if (j.q != NULL)
			queue_discard(j.q, j.id);
		close(j.spool);
	}
	queue_close(j.q);
	message_free(&j.msg);
	addr_list_free(&j.rcpts);
	free(j.sender);
	return exit_code(st);
}

int main(int argc, char **argv)
{
	struct options opt;
	struct config cfg;
	char err[1024];
	int rc;

	if (cli_parse(argc, argv, &opt, err, sizeof(err)) != 0) {
		fprintf(stderr, "outbox: %s (see outbox --help)\n", err);
		return EX_USAGE;
	}
	switch (opt.mode) {
	case MODE_VERSION:
		return version();
	case MODE_HELP:
		return usage();
	case MODE_NEWALIASES:
		return EX_OK;       /* no alias database to rebuild */
	case MODE_SMTP:
		return complain(OB_USAGE, "-bs is not supported yet");
	default:
		break;
	}
	if (config_load(opt.config ? opt.config : CONFIG_DEFAULT_PATH, &cfg,
	                err, sizeof(err)) != 0) {
		config_free(&cfg);
		return complain(OB_CONFIG, err);
	}
	log_open(cfg.log);
	if (opt.mode == MODE_VERIFY)
		rc = verify(&cfg, &opt);
	else if (opt.mode == MODE_LIST || opt.mode == MODE_QUEUE_RUN ||
	         opt.remove_id != NULL)
		rc = queue_mode(&cfg, &opt);
	else
		rc = send_mode(&cfg, &opt);
	log_close();
	config_free(&cfg);
	curl_global_cleanup();
	return rc;
}
