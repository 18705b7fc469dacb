/*
 * cli.h - sendmail-compatible command-line parsing.
 *
 * Pure: parses argv into struct options, prints nothing, exits never.
 */
#ifndef OUTBOX_CLI_H
#define OUTBOX_CLI_H

#include <stdbool.h>
#include <stddef.h>

enum cli_mode {
	MODE_SEND = 0,    /* -bm (default): read a message and deliver it */
	MODE_LIST,        /* -bp, mailq: list the queue */
	MODE_SMTP,        /* -bs: SMTP dialogue on stdin/stdout */
	MODE_NEWALIASES,  /* -bi, newaliases: nothing to do */
	MODE_VERIFY,      /* -bv: print the recipients, send nothing */
	MODE_QUEUE_RUN,   /* -q, -qINTERVAL */
	MODE_CHECK,       /* --check: try the smarthosts, send nothing */
	MODE_INIT,        /* --init HOST: write a config */
	MODE_VERSION,     /* --version */
	MODE_HELP,        /* --help */
	MODE_REMOVE,      /* --remove ID...: delete queued messages */
	MODE_REQUEUE,     /* --requeue ID...: failed/ back into the queue */
	MODE_QUEUE_CHECK, /* --queue-check: a monitoring-plugin check */
	MODE_OAUTH_LOGIN  /* --oauth-login: store the first refresh token */
};

enum cli_delivery {
	DELIVER_NOW = 0,  /* -odi (default) */
	DELIVER_QUEUE,    /* -odq */
	DELIVER_BACKGROUND /* -odb */
};

struct options {
	enum cli_mode mode;
	enum cli_delivery delivery;
	bool extract_rcpts;     /* -t */
	bool ignore_dots;       /* -i, -oi */
	bool verbose;           /* -v */
	bool queue_force;       /* -qf, --force */
	bool json;              /* --json: -bp as JSON */
	bool failed;            /* --failed: -bp lists failed/ */
	const char *sender;     /* -f/-r as given (may be "<>"), or NULL */
	const char *fullname;   /* -F, or NULL */
	/* envelope parameters as given (validated: params_cli), or NULL */
	const char *dsn_notify; /* -N never | success,failure,delay */
	const char *dsn_ret;    /* -R hdrs | full */
	const char *dsn_envid;  /* -V envid */
	const char *body_type;  /* -B 7bit | 8bitmime */
	const char *config;     /* -C, or NULL for the default */
	const char *queue_interval; /* the INTERVAL of -qINTERVAL, or NULL */
	const char *queue_id;   /* -qI ID (more IDs follow as operands) */
	const char *remove_id;  /* --remove ID (more IDs follow as operands) */
	const char *requeue_id; /* --requeue ID (more IDs follow as operands) */
	const char *init_host;  /* --init HOST[:PORT] */
	const char *init_user;  /* --user U (with --init) */
	const char *warn_age, *crit_age;     /* --warn-age D, --crit-age D */
	const char *warn_count, *crit_count; /* --warn-count N, --crit-count N
	                                        (only with --queue-check) */
	bool login_device;      /* --device (with --oauth-login) */
	bool login_browser;     /* --browser (with --oauth-login) */
	const char *login_port; /* --port N (with --oauth-login --browser) */
	const char *login_timeout; /* --login-timeout D (browser wait) */
	const char *account;    /* --account NAME (with --oauth-login or
	                           --check): that account of the config */
	char **rcpts;           /* operands: recipients, or the further IDs
	                           of -qI, --remove, --requeue (points into
	                           argv) */
	size_t nrcpts;
	const char *progname;   /* basename of argv[0] */
};

/*
 * Parse argv (argc entries) into opt. Recognises the flags of sendmail as
 * outbox documents them (see outbox(8)): bundled single-letter flags
 * ("-ti"), flags with an attached or separate argument ("-fuser@x",
 * "-f user@x", "-FCron", "-F 'Cron Daemon'"), "-o" and "-b" families,
 * "--" and the long options --version, --help, --check, --json,
 * --failed, --force, --init HOST, --user U, --remove ID, --requeue ID,
 * --queue-check with --warn-age D, --crit-age D, --warn-count N and
 * --crit-count N (kept as given, refused without --queue-check),
 * --oauth-login with --device or --browser, --port N and
 * --login-timeout D (kept as given, refused without --oauth-login).
 * The mode also follows argv[0]: "mailq" lists, "newaliases" rebuilds.
 * Operands are taken only by the modes that use them (sending, -bv, and
 * the ID lists of -qI, --remove and --requeue); any other mode given one
 * is a usage error, so a mistyped command never passes silently.
 * Returns 0 on success; -1 on a usage error with a one-line reason in err.
 * opt's pointers point into argv; nothing is allocated.
 */
int cli_parse(int argc, char **argv, struct options *opt,
              char *err, size_t errlen);

#endif
