/*
 * main.c - outbox: a send-only sendmail. Runs the mode the command line
 * asks for and maps the outcome to a sysexits(3) code. The only place
 * that decides the exit status.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "config.h"
#include "creds_login.h"
#include "init.h"
#include "envelope.h"
#include "log.h"
#include "mailq.h"
#include "metrics.h"
#include "runner.h"
#include "smtpd.h"
#include "params.h"
#include "submit.h"
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
	       " [-odi|-odq|-odb]\n"
	       "              [--] [recipient ...]    send a message read from "
	       "stdin\n"
	       "       outbox -bs                      SMTP on stdin/stdout\n"
	       "       outbox -bv recipient ...        show where mail would go\n"
	       "       outbox -bp [--json] | mailq     list the queue\n"
	       "       outbox -q[INTERVAL] [-qf] [-qI ID...] run the queue\n"
	       "       outbox -bp --failed [--json]    list failed/\n"
	       "       outbox --remove ID...           delete queued messages\n"
	       "       outbox --requeue ID...          put failed messages back "
	       "in the queue\n"
	       "       outbox --check [--account NAME] try every smarthost, send "
	       "nothing\n"
	       "       outbox --queue-check [--warn-age D] [--crit-age D] "
	       "[--warn-count N]\n"
	       "              [--crit-count N]         monitoring-plugin check "
	       "of the queue\n"
	       "       outbox --init HOST[:PORT] [--user U] [--force]  write a "
	       "config\n"
	       "       outbox --oauth-login [--account NAME] [--device | "
	       "--browser [--port N]]\n"
	       "              [--login-timeout D]\n"
	       "                                       sign in once; store the "
	       "OAuth2 refresh token\n"
	       "       outbox --version | --help\n"
	       "The config is %s unless -C names another; OUTBOX_* variables\n"
	       "override it. See outbox(8) and outbox.conf(5). The key\n"
	       "metrics-file PATH keeps a Prometheus text file of the queue and "
	       "its\ndeliveries (outbox(8), MONITORING).\n",
	       CONFIG_DEFAULT_PATH);
	return EX_OK;
}

/* Which libcurl outbox runs on: the static one of `make LEAN=1`
 * (conf/build-lean-curl.sh) or the system's shared one, with the
 * protocols it was built with, and GnuTLS's version. */
static int version(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const char *const *p;

	printf("outbox %s\nlibcurl %s (", OUTBOX_VERSION, v->version);
#ifdef OUTBOX_LEAN
	printf("static, lean build");
#else
	printf("shared");
#endif
	printf(", %s; protocols:", v->ssl_version ? v->ssl_version : "no TLS");
	for (p = v->protocols; p != NULL && *p != NULL; p++)
		printf(" %s", *p);
	printf("), GnuTLS %s\n", gnutls_check_version(NULL));
	return EX_OK;
}

/* -bv: the From and the recipients as they will go (submit_verify);
 * with -t the message on stdin says who they are. */
/* A submission as the command line describes it. */
static void submission_from(const struct options *opt, struct submission *s)
{
	memset(s, 0, sizeof(*s));
	s->sender_arg = opt->sender;
	s->rcpt_args = opt->rcpts;
	s->nrcpt_args = opt->nrcpts;
	s->extract_rcpts = opt->extract_rcpts;
	s->ignore_dots = opt->ignore_dots;
	s->fullname = opt->fullname;
	s->delivery = opt->delivery;
	s->verbose = opt->verbose;
	s->errors = stderr;
}

static int verify(const struct config *cfg, const struct options *opt)
{
	struct submission s;

	submission_from(opt, &s);
	s.verbose = false;
	return exit_code(submit_verify(cfg, STDIN_FILENO, &s, stdout));
}

/*
 * --queue-check speaks the monitoring-plugins convention (Nagios,
 * Icinga, Zabbix), the one documented exception to the sysexits codes:
 * one line on stdout, and 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 */
static int plugin_unknown(const char *why)
{
	printf("OUTBOX QUEUE UNKNOWN - %s\n", why);
	return 3;
}

static int queue_check(const struct config *cfg, const struct options *opt)
{
	static const int CODES[] = {
		[METRICS_OK] = 0, [METRICS_WARNING] = 1,
		[METRICS_CRITICAL] = 2, [METRICS_UNKNOWN] = 3,
	};
	struct metrics_limits lim = { opt->warn_age, opt->crit_age,
	                              opt->warn_count, opt->crit_count };
	char line[1024];
	enum metrics_state st;

	if (opt->nrcpts > 0)
		return plugin_unknown("--queue-check takes no arguments");
	st = metrics_check(cfg, &lim, line, sizeof(line));
	printf("%s\n", line);
	return (size_t)st < sizeof(CODES) / sizeof(CODES[0]) ? CODES[st] : 3;
}

static volatile int stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* The IDs a queue mode acts on: the one after its flag, then the
 * operands. NULL when out of memory; free() the array. */
static const char **queue_ids(const char *first, const struct options *opt,
                              size_t *n)
{
	const char **ids = calloc(opt->nrcpts + 1, sizeof(*ids));
	size_t i;

	*n = 0;
	if (ids == NULL)
		return NULL;
	if (first != NULL)
		ids[(*n)++] = first;
	for (i = 0; i < opt->nrcpts; i++)
		ids[(*n)++] = opt->rcpts[i];
	return ids;
}

/* --remove / --requeue: each ID in turn; every failure on stderr. */
static int each_id(struct store *q, const struct options *opt)
{
	bool remove = opt->mode == MODE_REMOVE;
	const char **ids;
	char err[512];
	size_t i, n;
	int rc = EX_OK;

	ids = queue_ids(remove ? opt->remove_id : opt->requeue_id, opt, &n);
	if (ids == NULL)
		return complain(OB_SOFTWARE, "out of memory");
	for (i = 0; i < n; i++) {
		int r = remove ? store_remove(q, ids[i], err, sizeof(err))
		               : store_requeue(q, ids[i], err, sizeof(err));

		if (r != 0)
			rc = complain(OB_USAGE, err);
	}
	free(ids);
	return rc;
}

/* -q, -qINTERVAL, -qI ID...: until stopped when there is an interval. */
static int run_queue(const struct config *cfg, struct store *q,
                     const struct options *opt, long every)
{
	struct runner_opts ro = { 0 };
	const char **ids = NULL;
	long waited;
	int rc;

	if (opt->queue_id != NULL) {
		ids = queue_ids(opt->queue_id, opt, &ro.nids);
		if (ids == NULL)
			return complain(OB_SOFTWARE, "out of memory");
		ro.ids = ids;
	}
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	ro.force = opt->queue_force;
	ro.stop = &stop_requested;
	do {
		rc = exit_code(runner_run_once(cfg, q, &ro, opt->verbose));
		for (waited = 0; every > 0 && waited < every &&
		                 !stop_requested; waited++)
			sleep(1);
	} while (every > 0 && !stop_requested);
	free(ids);
	return rc;
}

static int queue_mode(const struct config *cfg, const struct options *opt)
{
	struct store *q = NULL;
	char err[512];
	long every = 0;
	int rc = EX_OK;

	if (cfg->queue == NULL) {
		if (opt->mode == MODE_LIST)
			printf(opt->json ? "[]\n"
			                 : "Mail queue is empty (the queue is off)\n");
		return opt->mode == MODE_REMOVE || opt->mode == MODE_REQUEUE
		           ? complain(OB_CONFIG, "the queue is off") : EX_OK;
	}
	if (opt->queue_interval != NULL &&
	    parse_duration(opt->queue_interval, 7L * 86400, &every) != 0)
		return complain(OB_USAGE, "bad queue interval after -q");
	if (store_open(cfg->queue, true, cfg->privileged, &q, err,
	               sizeof(err)) != 0)
		return complain(opt->mode == MODE_LIST ? OB_IOERR : OB_CANTCREAT,
		                err);
	if (opt->mode == MODE_LIST) {
		if (mailq_print(q, stdout, opt->failed ? STORE_FAILED : STORE_MSG,
		                opt->json, err, sizeof(err)) != 0)
			rc = complain(OB_IOERR, err);
	} else if (opt->mode == MODE_REMOVE || opt->mode == MODE_REQUEUE) {
		rc = each_id(q, opt);
	} else {
		rc = run_queue(cfg, q, opt, every);
	}
	store_close(q);
	return rc;
}

/* --oauth-login: sign in and store the refresh token (creds_login.h). */
static int oauth_login(const struct config *cfg, const struct options *opt)
{
	struct login_opts lo = { LOGIN_FLOW_DEFAULT, 0, 0, stdout };
	enum ob_status st;
	char err[1024];
	long v;

	if (opt->login_device)
		lo.flow = LOGIN_FLOW_DEVICE;
	else if (opt->login_browser)
		lo.flow = LOGIN_FLOW_BROWSER;
	if (opt->login_port != NULL) {
		if (parse_long(opt->login_port, 1, 65535, &v) != 0)
			return complain(OB_USAGE, "--port needs a port number from "
			                "1 to 65535");
		lo.port = (int)v;
	}
	if (opt->login_timeout != NULL) {
		if (parse_duration(opt->login_timeout, 86400, &v) != 0 || v < 1)
			return complain(OB_USAGE, "--login-timeout needs a duration "
			                "from 1s to 1d (e.g. 90s, 10m)");
		lo.timeout = v;
	}
	st = login_run(cfg, &lo, err, sizeof(err));
	return st == OB_OK ? EX_OK : complain(st, err);
}

/* --oauth-login and --check, for the account --account names (--check
 * without it: every account). */
static int account_mode(const struct config *cfg, const struct options *opt)
{
	const struct config *a = config_account_named(cfg, opt->account);
	char names[1024];
	size_t i, o;

	if (a == NULL) {
		o = (size_t)snprintf(names, sizeof(names), "default");
		for (i = 0; i < cfg->naccounts && o < sizeof(names); i++)
			o += (size_t)snprintf(names + o, sizeof(names) - o, ", %s",
			                      cfg->accounts[i].account);
		fprintf(stderr, "outbox: --account: the configuration has no "
		        "account of that name (it has: %s)\n", names);
		return EX_USAGE;
	}
	if (opt->mode == MODE_OAUTH_LOGIN)
		return oauth_login(a, opt);
	return exit_code(check_run(opt->account ? a : NULL, cfg, stdout));
}

/* The envelope parameters of -N, -R, -V and -B (checked by cli_parse). */
static int params_from(const struct options *opt, struct params_set *p)
{
	const char *args[] = { opt->dsn_notify, opt->dsn_ret, opt->dsn_envid,
	                       opt->body_type };
	const char flags[] = "NRVB";
	char err[300];
	size_t i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		if (args[i] != NULL &&
		    params_cli(p, flags[i], args[i], err, sizeof(err)) != 0)
			return complain(OB_USAGE, err);
	}
	return 0;
}

static int send_mode(const struct config *cfg, const struct options *opt)
{
	struct submission s;
	struct params_set p;
	int rc = params_from(opt, &p);

	if (rc != 0)
		return rc;
	submission_from(opt, &s);
	s.params = &p;
	rc = exit_code(submit(cfg, STDIN_FILENO, &s));
	params_free(&p);
	return rc;
}

/*
 * The config: -C FILE or the default file, overridden key by key from
 * OUTBOX_* variables; the environment alone when there is no default file.
 * With privileges for another user (the setgid install), -C is refused to
 * ordinary callers and the environment is ignored.
 */
/* Set-user/group-ID for someone else, and the caller is not root? */
static bool privileged_caller(void)
{
	return (getuid() != geteuid() || getgid() != getegid()) && getuid() != 0;
}

static int load_config(const struct options *opt, struct config *cfg)
{
	bool privileged = getuid() != geteuid() || getgid() != getegid();
	const char *path = opt->config ? opt->config : CONFIG_DEFAULT_PATH;
	char err[1024];
	int rc;

	if (opt->config != NULL && privileged_caller())
		return complain(OB_USAGE, "-C is refused when outbox runs with "
		                "privileges for another user");
	config_set_privileged(privileged_caller());
	if (privileged)
		rc = config_load(path, cfg, err, sizeof(err));
	else if (opt->config == NULL && access(path, F_OK) != 0 &&
	         config_env_present())
		rc = config_load_env(NULL, cfg, err, sizeof(err));
	else
		rc = config_load_env(path, cfg, err, sizeof(err));
	if (rc != 0) {
		config_free(cfg);
		return complain(OB_CONFIG, err);
	}
	config_set_privileged_flag(cfg, privileged);
	if (opt->verbose)
		config_show_sources(cfg, stderr);
	return EX_OK;
}

/*
 * Exit with rc without running the libraries' exit handlers: GnuTLS's
 * destructor alone takes its ASN.1 trees apart, about 150,000
 * instructions (4% of a plain send with the LEAN build) to free memory
 * the kernel takes back anyway. stdio is flushed first, as exit() would.
 * Sanitizer builds exit normally, so that LeakSanitizer still looks.
 */
static _Noreturn void leave(int rc)
{
#ifdef OUTBOX_SANITIZE
	exit(rc);
#else
	fflush(NULL);
	_exit(rc);
#endif
}

int main(int argc, char **argv)
{
	struct options opt;
	struct config cfg;
	char err[1024];
	int rc;

	close_inherited_fds();  /* a detached run must not hold the caller's */
#ifndef OUTBOX_SANITIZE   /* LeakSanitizer needs a dumpable process */
	/* outbox holds secrets: no core dumps, no ptrace by the same user */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	if (cli_parse(argc, argv, &opt, err, sizeof(err)) != 0) {
		if (opt.mode == MODE_QUEUE_CHECK)
			return plugin_unknown(err);
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
	case MODE_OAUTH_LOGIN:
		/* it writes a secret file as the caller: never with the
		 * set-group-ID binary's rights */
		if (privileged_caller())
			return complain(OB_USAGE, "--oauth-login is refused when "
			                "outbox runs with privileges for another user "
			                "(run it as the owner of the config)");
		break;
	case MODE_INIT:
		/* before anything is opened: with the setgid group's rights a
		 * user could write into the queue or over its files */
		if (privileged_caller())
			return complain(OB_USAGE, "--init is refused when outbox "
			                "runs with privileges for another user (run "
			                "it as root)");
		rc = exit_code(init_write(opt.config ? opt.config
		                                     : CONFIG_DEFAULT_PATH,
		                          opt.init_host, opt.init_user,
		                          opt.queue_force));
		if (rc != EX_OK)
			return rc;
		opt.mode = MODE_CHECK;  /* then check what was written */
		break;
	default:
		break;
	}
	rc = load_config(&opt, &cfg);
	if (rc != EX_OK)
		return opt.mode == MODE_QUEUE_CHECK
		       ? plugin_unknown("configuration error (see standard error)")
		       : rc;
	log_open(cfg.log, cfg.privileged);
	if (opt.mode == MODE_VERIFY)
		rc = verify(&cfg, &opt);
	else if (opt.mode == MODE_OAUTH_LOGIN || opt.mode == MODE_CHECK)
		rc = account_mode(&cfg, &opt);
	else if (opt.mode == MODE_QUEUE_CHECK)
		rc = queue_check(&cfg, &opt);
	else if (opt.mode == MODE_SMTP)
		rc = exit_code(smtpd_run(&cfg, STDIN_FILENO, STDOUT_FILENO,
		                         opt.verbose));
	else if (opt.mode == MODE_LIST || opt.mode == MODE_QUEUE_RUN ||
	         opt.mode == MODE_REMOVE || opt.mode == MODE_REQUEUE)
		rc = queue_mode(&cfg, &opt);
	else
		rc = send_mode(&cfg, &opt);
	log_close();
	config_free(&cfg);
	curl_global_cleanup();
	leave(rc);
}
