/*
 * main.c - outbox: a send-only sendmail. Runs the mode the command line
 * asks for and maps the outcome to a sysexits(3) code. The only place
 * that decides the exit status.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
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
static void report(const struct deliver_report *rep, const char *sender,
                   bool queue_on)
{
	size_t i;
	bool printed = false;

	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *r = &rep->rcpt[i];
		const char *status = r->state == RCPT_OK ? "sent" :
		                     r->state == RCPT_PERM ? "bounced" : "deferred";

		log_event(r->state == RCPT_OK ? LOG_INFO : LOG_WARNING,
		          "from=<%s>, to=<%s>, relay=%s, status=%s (%s)", sender,
		          r->addr, r->where[0] ? r->where : "none", status,
		          r->text);
		if (r->state == RCPT_PERM && r->text[0] != '\0' &&
		    strcmp(r->text, rep->reason) != 0) {
			fprintf(stderr, "outbox: %s: recipient <%s> refused: %s\n",
			        r->where, r->addr, r->text);
			printed = true;
		}
	}
	if (rep->status != OB_OK && (!printed || rep->status != OB_NOUSER))
		fprintf(stderr, "outbox: %s%s%s%s\n", rep->where,
		        rep->where[0] ? ": " : "", rep->reason,
		        rep->status == OB_TEMPFAIL && !queue_on
		            ? "; message not sent (queue off)" : "");
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

static enum ob_status send_spooled(const struct config *cfg,
                                   const struct options *opt,
                                   const char *sender,
                                   const struct addr_list *rcpts, int spool,
                                   off_t size)
{
	struct deliver_report rep;
	struct deliver_ctx *ctx = deliver_new(cfg, opt->verbose);
	enum ob_status st;

	if (ctx == NULL) {
		complain(OB_SOFTWARE, "out of memory");
		return OB_SOFTWARE;
	}
	st = deliver_send(ctx, sender, rcpts, spool, size, &rep);
	report(&rep, sender, false);
	deliver_report_free(&rep);
	deliver_free(ctx);
	return st;
}

static int send_mode(const struct config *cfg, const struct options *opt)
{
	struct message_opts mo = { 0 };
	struct message msg;
	struct addr_list rcpts = { 0 };
	char *sender = NULL;
	char err[1024];
	enum ob_status st;
	int spool;

	if (envelope_sender(cfg, opt->sender, &sender, err, sizeof(err)) != 0)
		return complain(OB_USAGE, err);
	spool = tmpfile_anon(NULL);
	if (spool < 0) {
		free(sender);
		return complain(OB_CANTCREAT, "cannot create a spool file in "
		                "$TMPDIR or /tmp");
	}
	mo.ignore_dots = opt->ignore_dots;
	mo.extract_rcpts = opt->extract_rcpts;
	mo.sender = sender;
	mo.fullname = opt->fullname;
	mo.domain = envelope_domain(cfg);
	st = message_read(STDIN_FILENO, spool, &mo, &msg, err, sizeof(err));
	if (st == OB_OK &&
	    envelope_recipients(cfg, opt->rcpts, opt->nrcpts, &msg.rcpts,
	                        &rcpts, err, sizeof(err)) != 0)
		st = OB_DATAERR;
	if (st == OB_OK && rcpts.count == 0) {
		st = OB_DATAERR;
		str_copy(err, sizeof(err), "no recipients: give addresses as "
		         "arguments, or use -t with To/Cc/Bcc fields");
	}
	if (st != OB_OK)
		complain(st, err);
	else
		st = send_spooled(cfg, opt, sender, &rcpts, spool, msg.size);
	close(spool);
	message_free(&msg);
	addr_list_free(&rcpts);
	free(sender);
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
	case MODE_LIST:
	case MODE_SMTP:
	case MODE_QUEUE_RUN:
		return complain(OB_USAGE, "this mode is not supported yet");
	default:
		break;
	}
	if (opt.delivery != DELIVER_NOW || opt.remove_id != NULL)
		return complain(OB_USAGE, "queueing (-odq, -odb, --remove) is "
		                "not supported yet");
	if (config_load(opt.config ? opt.config : CONFIG_DEFAULT_PATH, &cfg,
	                err, sizeof(err)) != 0) {
		config_free(&cfg);
		return complain(OB_CONFIG, err);
	}
	log_open(cfg.log);
	if (opt.mode == MODE_VERIFY)
		rc = verify(&cfg, &opt);
	else
		rc = send_mode(&cfg, &opt);
	log_close();
	config_free(&cfg);
	curl_global_cleanup();
	return rc;
}
