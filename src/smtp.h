/*
 * smtp.h - the libcurl transport: one smarthost, one or more messages.
 *
 * A client is one libcurl easy handle for one smarthost; messages sent
 * through the same client reuse its connection (no new TLS handshake),
 * also after a message was refused (at MAIL, RCPT, DATA or after the
 * data: the transaction is reset with RSET). Each recipient gets the
 * server's own reply code and text.
 *
 * The transport knows nothing of the config: its caller hands it plain
 * connection parameters (struct smtp_params) and the secret to
 * authenticate with.
 */
#ifndef OUTBOX_SMTP_H
#define OUTBOX_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "params.h"
#include "status.h"

enum smtp_tls {
	SMTP_TLS_STARTTLS = 0, /* STARTTLS required: no STARTTLS, no mail */
	SMTP_TLS_SMTPS,        /* implicit TLS from the first byte */
	SMTP_TLS_OFF           /* cleartext: only when configured */
};

enum smtp_secret {
	SMTP_SECRET_NONE = 0,  /* no secret (AUTH EXTERNAL, or no AUTH) */
	SMTP_SECRET_PASSWORD,  /* a password (PLAIN, LOGIN, CRAM-MD5...) */
	SMTP_SECRET_BEARER     /* an OAuth2 access token (XOAUTH2,
	                          OAUTHBEARER) */
};

/*
 * One smarthost's connection, in plain values. The strings are the
 * caller's and must stay valid until smtp_close, except secret, which
 * smtp_open copies (and smtp_close wipes).
 */
struct smtp_params {
	const char *host;       /* name or address, without [] */
	int port;
	enum smtp_tls tls;
	bool verify;            /* check the certificate and its host name */
	const char *ca_file;    /* trust only this file; NULL: the system
	                           store, through the trust-anchor cache */
	const char *trust_dir;  /* where that cache lives; NULL: none */
	const char *user;       /* NULL: no AUTH (and none required) */
	enum smtp_secret secret_kind;
	const char *secret;     /* password or token; NULL with kind NONE */
	const char *auth;       /* SASL mechanism ("PLAIN"...); NULL: auto */
	const char *helo;       /* the EHLO name */
	long timeout;           /* seconds, for each step */
	const char *proxy;      /* as proxy_choose says: NULL environment,
	                           "" none, else the URL */
	bool privileged;        /* the set-group-ID mode (trust cache) */
	bool verbose;           /* the dialogue on stderr */
	bool hide_auth;         /* ... but not the AUTH exchange at all */
};

enum rcpt_state {
	RCPT_OK = 0,   /* accepted, and the message was accepted after DATA */
	RCPT_TEMP,     /* not delivered; trying again later may work */
	RCPT_PERM      /* refused for good (5xx) */
};

struct smtp_rcpt {
	enum rcpt_state state;
	int code;            /* the server's reply to RCPT, 0 if not reached */
	char text[256];      /* that reply, or the transaction's failure */
};

struct smtp_result {
	/* OB_OK: the server accepted the message (250 after DATA) for every
	 * recipient in state RCPT_OK, of which there is at least one.
	 * Otherwise nothing was delivered and this says why: OB_TEMPFAIL,
	 * OB_UNAVAILABLE (5xx to MAIL or DATA), OB_NOUSER (every recipient
	 * refused), OB_NOPERM (authentication), OB_PROTOCOL, OB_IOERR,
	 * OB_SOFTWARE. */
	enum ob_status status;
	char where[300];     /* "host:port" of the smarthost */
	char relay[350];     /* "host[address]:port" once connected, for logs */
	char reason[600];    /* one line; includes the server's reply */
	char reply[300];     /* the final reply to DATA when accepted */
	/* failed before MAIL FROM (connect, greeting, TLS, AUTH, no AUTH
	 * offered): the next message would fail the same way */
	bool session_failed;
	/* the failure is the relay setup's, not the message's nor a passing
	 * one: AUTH refused or not offered, certificate not trusted,
	 * STARTTLS required but not offered; an admin must act */
	bool setup_error;
	/* the server said "too many" (421 4.3.2, 450/451 4.7.x, 452 4.5.3:
	 * it limits this client for now): sending it more soon is
	 * useless. reason then names that reply, whatever the status (some
	 * recipients may have been accepted before it); recipients not tried
	 * after it have its reply as theirs. */
	bool too_many;
	struct smtp_rcpt *rcpt; /* one per recipient, in the order given */
	size_t nrcpt;
};

/* Initialise libcurl once per process, before the first smtp_open.
 * Returns 0 or -1. */
int smtp_global_init(void);

/*
 * A client for the smarthost p describes (see struct smtp_params for
 * what it keeps). Under p->verbose the dialogue goes to stderr with the
 * AUTH exchange redacted (hidden whole under p->hide_auth). With a user,
 * no message goes out on a session that did not authenticate. Returns
 * NULL when out of memory or libcurl refuses an option (err says so).
 */
struct smtp_client *smtp_open(const struct smtp_params *p, char *err,
                              size_t errlen);

/*
 * Send the message read from fd (size bytes from offset 0, CRLF lines,
 * not dot-stuffed) from sender ("" = null sender) to rcpts[0..nrcpt).
 * params (NULL: none): BODY goes when the server offers 8BITMIME, the
 * DSN parameters when it offers DSN; nothing it did not offer is sent.
 * An 8BITMIME body to a server without 8BITMIME is re-encoded as
 * quoted-printable on the way when it is a single text part (else sent
 * as it is, and logged). Without SMTPUTF8, non-ASCII domains go in ACE
 * form and a recipient with a non-ASCII local part is refused here
 * (553 5.6.7, not sent; a sender with one: the message, 550 5.6.7).
 * Fills res (free with smtp_result_free) and returns res->status.
 */
enum ob_status smtp_send(struct smtp_client *c, const char *sender,
                         char *const *rcpts, size_t nrcpt,
                         const struct params_set *params, int fd,
                         off_t size, struct smtp_result *res);

/* What outbox --check learns from one connection. */
struct smtp_probe {
	bool ok;                /* connected, TLS and AUTH (if any) went through */
	char step[32];          /* else: the step that failed ... */
	char error[320];        /* ... and why */
	char address[64];       /* the address reached */
	long port;
	char tls[160];          /* protocol / cipher, "" without TLS */
	bool have_cert;
	char subject[256], issuer[256], start[64], expire[64];
	char caps[1024];        /* EHLO extensions, ", "-separated */
	int auth_code;          /* reply to AUTH, 0 when not tried */
	char auth_text[256];
	bool authed;
	char trust[4400];       /* the trust-anchor cache's part, "" if none */
};

/*
 * Connect, greet, STARTTLS and AUTH as a delivery would, then stop:
 * no MAIL is sent. verify false: do not check the certificate (to show
 * an untrusted one). Fills p; returns 0 when every step went through.
 * A client is good for one probe.
 */
int smtp_probe(struct smtp_client *c, bool verify, struct smtp_probe *p);

/* The socket of the client's open connection, or -1 when there is none
 * (never connected, or closed after a failure). */
int smtp_socket(struct smtp_client *c);

/* Close the connection (QUIT) and free the client. NULL is fine. */
void smtp_close(struct smtp_client *c);

void smtp_result_free(struct smtp_result *res);

#endif
