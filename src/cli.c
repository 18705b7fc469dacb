/*
 * cli.c - sendmail-compatible command-line parsing (see cli.h).
 *
 * Unknown single-letter flags are a usage error, as with Postfix's
 * sendmail; the flags sendmail defines that make no sense for a relay-only
 * client are accepted and ignored (documented in outbox(8)).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "params.h"
#include "util.h"

/* Flags that take an argument (attached or as the next word). */
static const char ARG_FLAGS[] = "BCFLNORVXfhopqrb";
/* Flags without an argument that outbox accepts and ignores. */
static const char IGNORED_FLAGS[] = "GUmnx";

struct cursor {
	int argc;
	char **argv;
	int i;          /* index of the word being parsed */
	char *err;
	size_t errlen;
};

static int fail(struct cursor *c, const char *msg, const char *what)
{
	snprintf(c->err, c->errlen, "%s%s%s", msg, what ? ": " : "",
	         what ? what : "");
	return -1;
}

static int parse_b(struct cursor *c, struct options *opt, const char *arg)
{
	if (strcmp(arg, "m") == 0)
		opt->mode = MODE_SEND;
	else if (strcmp(arg, "p") == 0)
		opt->mode = MODE_LIST;
	else if (strcmp(arg, "s") == 0)
		opt->mode = MODE_SMTP;
	else if (strcmp(arg, "i") == 0)
		opt->mode = MODE_NEWALIASES;
	else if (strcmp(arg, "v") == 0)
		opt->mode = MODE_VERIFY;
	else if (strcmp(arg, "d") == 0 || strcmp(arg, "D") == 0)
		return fail(c, "outbox never listens on the network; -bd/-bD "
		            "are not supported", NULL);
	else
		return fail(c, "unsupported mode -b", arg);
	return 0;
}

static int parse_o(struct cursor *c, struct options *opt, const char *arg)
{
	if (arg[0] == 'i' && arg[1] == '\0') {
		opt->ignore_dots = true;
	} else if (arg[0] == 'd') {
		/* -odi / -odb / -odq (and sendmail's long spellings) */
		switch (arg[1]) {
		case 'i': case 'i' - 32: opt->delivery = DELIVER_NOW; break;
		case 'b': case 'b' - 32: opt->delivery = DELIVER_BACKGROUND; break;
		case 'q': case 'q' - 32: opt->delivery = DELIVER_QUEUE; break;
		default: return fail(c, "unknown delivery mode -o", arg);
		}
	} else if (arg[0] == '\0') {
		return fail(c, "option -o needs an argument", NULL);
	}
	/* -oem, -oep, -oeq, -oew, -om, -oQ..., -oA...: accepted, ignored */
	return 0;
}

static int parse_q(struct cursor *c, struct options *opt, const char *arg)
{
	opt->mode = MODE_QUEUE_RUN;
	if (arg == NULL || *arg == '\0')
		return 0;
	if (strcmp(arg, "f") == 0) {
		opt->queue_force = true;
		return 0;
	}
	if (arg[0] == 'I') {
		if (arg[1] != '\0') {
			opt->queue_id = arg + 1;
			return 0;
		}
		if (c->i + 1 >= c->argc)
			return fail(c, "option -qI needs a queue ID", NULL);
		opt->queue_id = c->argv[++c->i];
		return 0;
	}
	if (arg[0] >= '0' && arg[0] <= '9') {
		opt->queue_interval = arg;
		return 0;
	}
	return fail(c, "unsupported queue option -q", arg);
}

/* -B, -N, -R, -V: checked now (a bad value is a usage error), kept as
 * given. */
static int envelope_param(struct cursor *c, struct options *opt, char flag,
                          const char *arg)
{
	struct params_set p = { 0 };
	int rc = params_cli(&p, flag, arg, c->err, c->errlen);

	params_free(&p);
	if (rc != 0)
		return -1;
	switch (flag) {
	case 'B': opt->body_type = arg; break;
	case 'N': opt->dsn_notify = arg; break;
	case 'R': opt->dsn_ret = arg; break;
	default: opt->dsn_envid = arg; break;
	}
	return 0;
}

/* A flag with its argument; "arg" may be NULL only for -q. */
static int apply_arg_flag(struct cursor *c, struct options *opt, char flag,
                          const char *arg)
{
	switch (flag) {
	case 'C': opt->config = arg; break;
	case 'F': opt->fullname = arg; break;
	case 'f': case 'r': opt->sender = arg; break;
	case 'b': return parse_b(c, opt, arg);
	case 'o': return parse_o(c, opt, arg);
	case 'q': return parse_q(c, opt, arg);
	case 'B': case 'N': case 'R': case 'V':
		return envelope_param(c, opt, flag, arg);
	default:
		/* -L tag, -O opt, -X file, -h hops, -p proto: accepted,
		 * ignored */
		break;
	}
	return 0;
}

/* --queue-check and its thresholds: 0, -1 (err), or 1 when name is
 * none of them. */
static int parse_check_opt(struct cursor *c, struct options *opt,
                           const char *name)
{
	static const char *const names[] = { "warn-age", "crit-age",
	                                     "warn-count", "crit-count" };
	const char **slots[] = { &opt->warn_age, &opt->crit_age,
	                         &opt->warn_count, &opt->crit_count };
	char dashed[16];
	size_t i;

	if (strcmp(name, "queue-check") == 0) {
		opt->mode = MODE_QUEUE_CHECK;
		return 0;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) != 0)
			continue;
		if (c->i + 1 >= c->argc) {
			snprintf(dashed, sizeof(dashed), "--%s", name);
			return fail(c, "option needs an argument", dashed);
		}
		*slots[i] = c->argv[++c->i];
		return 0;
	}
	return 1;
}

/* --oauth-login and its options: 0, -1 (err), or 1 when name is none
 * of them. */
static int parse_login_opt(struct cursor *c, struct options *opt,
                           const char *name)
{
	if (strcmp(name, "oauth-login") == 0)
		opt->mode = MODE_OAUTH_LOGIN;
	else if (strcmp(name, "device") == 0)
		opt->login_device = true;
	else if (strcmp(name, "browser") == 0)
		opt->login_browser = true;
	else if (strcmp(name, "port") != 0 &&
	         strcmp(name, "login-timeout") != 0 &&
	         strcmp(name, "account") != 0)
		return 1;
	else if (c->i + 1 >= c->argc)
		return fail(c, "option needs an argument", name[0] == 'p'
		            ? "--port" : name[0] == 'a' ? "--account"
		            : "--login-timeout");
	else if (name[0] == 'p')
		opt->login_port = c->argv[++c->i];
	else if (name[0] == 'a')
		opt->account = c->argv[++c->i];
	else
		opt->login_timeout = c->argv[++c->i];
	return 0;
}

static int parse_long_opt(struct cursor *c, struct options *opt,
                          const char *name)
{
	int r = parse_check_opt(c, opt, name);

	if (r > 0)
		r = parse_login_opt(c, opt, name);
	if (r <= 0)
		return r;
	if (strcmp(name, "version") == 0) {
		opt->mode = MODE_VERSION;
	} else if (strcmp(name, "help") == 0) {
		opt->mode = MODE_HELP;
	} else if (strcmp(name, "check") == 0) {
		opt->mode = MODE_CHECK;
	} else if (strcmp(name, "init") == 0 || strcmp(name, "user") == 0) {
		if (c->i + 1 >= c->argc)
			return fail(c, "option needs an argument", name[0] == 'i'
			            ? "--init" : "--user");
		if (name[0] == 'i') {
			opt->mode = MODE_INIT;
			opt->init_host = c->argv[++c->i];
		} else {
			opt->init_user = c->argv[++c->i];
		}
	} else if (strcmp(name, "json") == 0) {
		opt->json = true;
	} else if (strcmp(name, "force") == 0) {
		opt->queue_force = true;
	} else if (strcmp(name, "failed") == 0) {
		opt->failed = true;
	} else if (strcmp(name, "remove") == 0 ||
	           strcmp(name, "requeue") == 0) {
		bool remove = strcmp(name, "remove") == 0;

		if (c->i + 1 >= c->argc)
			return fail(c, remove ? "option --remove needs a queue ID"
			                      : "option --requeue needs a queue ID",
			            NULL);
		if (remove) {
			opt->mode = MODE_REMOVE;
			opt->remove_id = c->argv[++c->i];
		} else {
			opt->mode = MODE_REQUEUE;
			opt->requeue_id = c->argv[++c->i];
		}
	} else {
		return fail(c, "unknown option --", name);
	}
	return 0;
}

/* Parse one word starting with '-' (not "--"). */
static int parse_word(struct cursor *c, struct options *opt)
{
	const char *w = c->argv[c->i] + 1;
	char bad[3] = { '-', '\0', '\0' };

	while (*w != '\0') {
		char flag = *w++;

		if (strchr(ARG_FLAGS, flag) != NULL) {
			const char *arg = w;

			if (*arg == '\0' && flag != 'q') {
				if (c->i + 1 >= c->argc) {
					bad[1] = flag;
					return fail(c, "option needs an argument", bad);
				}
				arg = c->argv[++c->i];
			}
			return apply_arg_flag(c, opt, flag, arg);
		}
		switch (flag) {
		case 't': opt->extract_rcpts = true; break;
		case 'i': opt->ignore_dots = true; break;
		case 'v': opt->verbose = true; break;
		case 'A':
			/* -Am / -Ac: the argument is one letter, attached */
			if (*w == 'm' || *w == 'c') {
				w++;
				break;
			}
			return fail(c, "option -A needs m or c", NULL);
		default:
			if (flag != '\0' && strchr(IGNORED_FLAGS, flag) != NULL)
				break;
			bad[1] = flag;
			return fail(c, "unknown option", bad);
		}
	}
	return 0;
}

static void mode_from_progname(struct options *opt, const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	opt->progname = slash ? slash + 1 : argv0;
	if (strcmp(opt->progname, "mailq") == 0)
		opt->mode = MODE_LIST;
	else if (strcmp(opt->progname, "newaliases") == 0)
		opt->mode = MODE_NEWALIASES;
}

/* Operands only where the mode uses them. */
static int check_operands(struct cursor *c, const struct options *opt)
{
	bool takes = opt->mode == MODE_SEND || opt->mode == MODE_VERIFY ||
	             opt->mode == MODE_REMOVE || opt->mode == MODE_REQUEUE ||
	             (opt->mode == MODE_QUEUE_RUN && opt->queue_id != NULL);

	if (takes || opt->nrcpts == 0)
		return 0;
	return fail(c, "this mode takes no operands; unexpected",
	            opt->rcpts[0]);
}

int cli_parse(int argc, char **argv, struct options *opt,
              char *err, size_t errlen)
{
	struct cursor c = { argc, argv, argc > 0 ? 1 : 0, err, errlen };

	memset(opt, 0, sizeof(*opt));
	err[0] = '\0';
	mode_from_progname(opt, argc > 0 && argv[0] ? argv[0] : "outbox");
	for (; c.i < argc; c.i++) {
		const char *w = argv[c.i];

		if (w[0] != '-' || w[1] == '\0')
			break;
		if (w[1] == '-') {
			if (w[2] == '\0') {
				c.i++;
				break;
			}
			if (parse_long_opt(&c, opt, w + 2) != 0)
				return -1;
			continue;
		}
		if (parse_word(&c, opt) != 0)
			return -1;
	}
	opt->rcpts = argv + c.i;
	opt->nrcpts = c.i < argc ? (size_t)(argc - c.i) : 0;
	if (opt->mode != MODE_QUEUE_CHECK && (opt->warn_age || opt->crit_age ||
	    opt->warn_count || opt->crit_count))
		return fail(&c, "--warn-age, --crit-age, --warn-count and "
		            "--crit-count go with --queue-check", NULL);
	if (opt->mode != MODE_OAUTH_LOGIN && (opt->login_device ||
	    opt->login_browser || opt->login_port || opt->login_timeout))
		return fail(&c, "--device, --browser, --port and --login-timeout "
		            "go with --oauth-login", NULL);
	if (opt->account != NULL && opt->mode != MODE_OAUTH_LOGIN &&
	    opt->mode != MODE_CHECK)
		return fail(&c, "--account goes with --oauth-login and --check",
		            NULL);
	if (opt->login_device && opt->login_browser)
		return fail(&c, "--device and --browser exclude each other",
		            NULL);
	return check_operands(&c, opt);
}
