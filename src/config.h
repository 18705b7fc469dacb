/*
 * config.h - the configuration file.
 *
 * Format: one "key value" per line; '#' starts a comment (at the start of
 * a line, or after whitespace outside quotes); a value may be
 * double-quoted, with \" and \\ escapes inside. Keys are listed in
 * outbox.conf(5).
 */
#ifndef OUTBOX_CONFIG_H
#define OUTBOX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/outbox.conf"
#define CONFIG_MAX_SMARTHOSTS 8
#define CONFIG_LINE_MAX 4096

enum tls_mode {
	TLS_STARTTLS = 0, /* STARTTLS required (default) */
	TLS_SMTPS,        /* implicit TLS from the first byte */
	TLS_OFF           /* cleartext: only when configured */
};

enum from_rewrite {
	REWRITE_LOCAL = 0, /* only senders without a domain or at this host */
	REWRITE_NEVER,
	REWRITE_ALWAYS
};

struct smarthost {
	char *host;           /* name or address, without [] */
	int port;             /* 0 until resolved to the mode's default */
	enum tls_mode tls;    /* from the URL scheme, else the tls key */
	bool tls_from_scheme; /* smtp:// or smtps:// was written */
	int line;             /* where it was configured */
};

struct config {
	char *path;                 /* the file read, or NULL */
	struct smarthost hosts[CONFIG_MAX_SMARTHOSTS];
	size_t nhosts;
	enum tls_mode tls;
	bool tls_verify;            /* default true */
	char *user;
	char *password;             /* inline secret (file must be private) */
	char *password_file;
	char *auth;                 /* NULL = auto, else "PLAIN", "LOGIN", ... */
	char *ca_file;
	char *helo;
	char *from;
	char *domain;
	char *queue;                /* directory; NULL when "queue off" */
	char *log;                  /* "syslog", "stderr" or a file path */
	long timeout;               /* seconds */
	char *aliases;              /* aliases file, or NULL */
	enum from_rewrite from_rewrite;
	char *allow_from;           /* NULL = anyone may use -f; "none"; or
	                               a list of login names */
	long queue_lifetime;        /* seconds before a queued message bounces */
	long retry_min, retry_max;  /* backoff between queue attempts */
};

/*
 * Read the config file at path into cfg (which is zeroed first and gets
 * the defaults for what the file does not set). Errors name the file and
 * line ("FILE:LINE: reason") but never repeat the line's content.
 * Refused: unknown keys, bad values, a missing smarthost, unreadable
 * files, NUL bytes and lines over CONFIG_LINE_MAX, and a "password" in a
 * file that users other than its owner can read.
 * Returns 0, or -1 with the reason in err. Free with config_free either way.
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/*
 * The password to authenticate with: the "password" value, or the first
 * line of "password-file" (which must not be readable by other users).
 * Returns 0 and sets *out to a malloc'd string (caller wipes and frees;
 * NULL when no password is configured), or -1 with a reason in err.
 */
int config_password(const struct config *cfg, char **out,
                    char *err, size_t errlen);

/* Free everything cfg owns (wiping the password) and zero it. NULL is fine. */
void config_free(struct config *cfg);

#endif
