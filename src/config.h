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
#include <stdio.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/outbox.conf"
#define CONFIG_MAX_SMARTHOSTS 8
#define CONFIG_LINE_MAX 4096
#define CONFIG_MAX_KEYS 64
#define CONFIG_MAX_ACCOUNTS 32
#define CONFIG_MAX_SENDERS 32
#define CONFIG_ACCOUNT_NAME_MAX 64

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

/* from-header: which From (and Sender) fields get the "from" address */
enum from_header {
	FROM_HEADER_LOCAL = 0, /* only local ones: bare names, @localhost,
	                          @this host (default) */
	FROM_HEADER_KEEP,
	FROM_HEADER_ALWAYS
};

/* oauth-grant: how outbox gets an access token from the token endpoint */
enum oauth_grant {
	OAUTH_GRANT_REFRESH = 0,    /* refresh-token (default): the token
	                               "outbox --oauth-login" stored */
	OAUTH_GRANT_CLIENT          /* client-credentials: app-only, no user */
};

/* oauth-provider: a preset of endpoints and scopes (creds_preset.h) */
enum oauth_provider {
	OAUTH_PROVIDER_NONE = 0,
	OAUTH_PROVIDER_MICROSOFT,
	OAUTH_PROVIDER_GOOGLE
};

struct smarthost {
	char *host;           /* name or address, without [] */
	int port;             /* 0 until resolved to the mode's default */
	enum tls_mode tls;    /* from the URL scheme, else the tls key */
	bool tls_from_scheme; /* smtp:// or smtps:// was written */
	int line;             /* where it was configured */
};

#define CONFIG_MAX_RATES 4

/* rate-limit COUNT/PERIOD: at most count messages in any period seconds */
struct rate_limit {
	long count;
	long period;
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
	char *proxy;                /* NULL: the environment's (unless
	                               privileged); "none"; or a URL */
	enum from_rewrite from_rewrite;
	enum from_header from_header;
	bool qualify_headers;       /* bare names in address fields get
	                               @domain (default true) */
	char *allow_from;           /* NULL = anyone may use -f; "none"; or
	                               a list of login names */
	char *password_command;
	char *token_command;        /* OAuth2 access token per connection */
	char *oauth_token_url;      /* OAuth2 refresh flow (RFC 6749 6) */
	char *oauth_client_id;
	char *oauth_client_secret_file;
	char *oauth_refresh_token_file;
	enum oauth_grant oauth_grant; /* default OAUTH_GRANT_REFRESH */
	enum oauth_provider oauth_provider; /* a preset, or OAUTH_PROVIDER_NONE */
	char *oauth_tenant;         /* Microsoft's tenant (preset URLs) */
	char *oauth_scope;          /* space-separated scopes */
	char *oauth_device_url;     /* RFC 8628 device authorization endpoint */
	char *oauth_auth_url;       /* authorization endpoint (code + PKCE) */
	bool privileged;            /* set by main: setgid/setuid caller */
	int key_line[CONFIG_MAX_KEYS]; /* where each key was set: line, 0 =
	                                  default, -1 = environment */
	long queue_lifetime;        /* seconds before a queued message bounces */
	long failed_lifetime;       /* seconds a failed/ message is kept */
	long retry_min, retry_max;  /* backoff between queue attempts */
	long max_connections;       /* per smarthost, across every outbox
	                               process of the host; 0 = no limit */
	struct rate_limit rates[CONFIG_MAX_RATES]; /* per smarthost */
	size_t nrates;
	char *metrics_file;         /* Prometheus text file, or NULL */

	/* Accounts (outbox.conf(5) ACCOUNTS). The keys outside any
	 * "account NAME" section form the default account: the struct
	 * config_load fills. Each named account is a struct config of its
	 * own (in the default's accounts[], file order) with its per-relay
	 * keys, and copies of the default's host-wide keys (queue, log,
	 * domain, aliases, lifetimes...), so whatever takes a config works
	 * on an account unchanged. */
	char *account;              /* its name; NULL for the default */
	char *senders[CONFIG_MAX_SENDERS]; /* "senders": who uses it */
	size_t nsenders;
	int account_line;           /* where its section begins */
	struct config *accounts;    /* the default's: the named ones */
	size_t naccounts;
	const struct config *parent; /* an account's default; NULL for it */
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
 * Like config_load, then every key may be overridden from the environment
 * as OUTBOX_ + the key in upper case with '-' as '_' (OUTBOX_SMARTHOST,
 * OUTBOX_PASSWORD_FILE...); the environment wins key by key, and
 * OUTBOX_SMARTHOST may list several hosts separated by blanks or commas.
 * path NULL: the environment alone is the config.
 */
int config_load_env(const char *path, struct config *cfg, char *err,
                    size_t errlen);

/* With privileges for another user (setgid install): the config and the
 * password file must be owned by root and writable by root alone. */
void config_set_privileged(bool on);

/* True when some OUTBOX_* configuration variable is set. */
bool config_env_present(void);

/* Print, one line each, where every key that is set came from. */
void config_show_sources(const struct config *cfg, FILE *out);

/*
 * The account that mail from sender (an envelope sender as the caller
 * gave it, qualified: -f, the -bs MAIL FROM, or the login name at the
 * domain) goes through: the first named account with a "senders"
 * pattern that matches it (the exact address, or *@domain; letters'
 * case does not matter), else the default account, cfg itself. cfg may
 * be any account of the configuration.
 */
const struct config *config_account_for(const struct config *cfg,
                                         const char *sender);

/* The account called name (NULL or "": the default), or NULL when the
 * configuration has none of that name. cfg may be any account of it. */
const struct config *config_account_named(const struct config *cfg,
                                          const char *name);

/* The default account of the configuration cfg belongs to. */
const struct config *config_root(const struct config *cfg);

/* The account's name for log lines and listings ("default" for it). */
const char *config_account_name(const struct config *cfg);

/* Is name a valid account name (1-64 of letters, digits, '.', '_', '-',
 * not "default")? */
bool config_account_name_ok(const char *name);

/* Set cfg->privileged in the default and every account. */
void config_set_privileged_flag(struct config *cfg, bool on);

/* Free everything cfg owns (wiping the password) and zero it. NULL is fine. */
void config_free(struct config *cfg);

#endif
