/*
 * smtp_int.h - what the transport's files share (smtp.c: sessions and
 * sending; smtp_judge.c: what an attempt's replies mean; smtp_probe.c:
 * outbox --check). Not for the rest of outbox: see smtp.h.
 */
#ifndef OUTBOX_SMTP_INT_H
#define OUTBOX_SMTP_INT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "smtp.h"
#include "smtp_xact.h"
#include "trust.h"

/* Room for one line of the dialogue with its control characters escaped. */
#define REPLY_LINE_MAX 2048

/*
 * Refusals a session may collect, with no message accepted since, before
 * the next message takes a new session. Postfix delays every reply by
 * smtpd_error_sleep_time (1 s) once a session has made more than
 * smtpd_soft_error_limit (10) errors without delivering mail, and closes
 * it at smtpd_hard_error_limit (20): a queue of refused messages would
 * otherwise crawl.
 */
#define SESSION_REFUSALS_MAX 8

enum phase {
	PH_CONNECT = 0, PH_EHLO, PH_STARTTLS, PH_AUTH, PH_MAIL, PH_RCPT,
	PH_DATA, PH_BODY, PH_QUIT, PH_RSET, PH_OTHER
};

/* What the debug stream told us about the current transfer. */
struct dialogue {
	enum phase phase;
	size_t nsent_rcpt;      /* RCPT commands sent so far */
	int code;               /* reply being read: its code ... */
	char text[512];         /* ... and its lines, joined */
	int last_code;          /* the last complete reply */
	char last_text[512];
	enum phase last_phase;
	int data_code;          /* reply to DATA (non-354) or after the dot */
	char data_text[300];
	bool in_sasl;           /* between AUTH and its final reply */
	bool ehlo_first;        /* the next EHLO reply line is the greeting */
	char caps[1024];        /* the last EHLO reply's extensions */
	char tls[160];          /* "TLS1.3 / ECDHE_RSA_AES_256_GCM_SHA384" */
	int auth_code;          /* the final reply to AUTH */
	char auth_text[256];
	bool abort_noauth;      /* MAIL would have gone out without AUTH */
	int too_many_code;      /* a "too many" reply (xact_too_many) ... */
	char too_many_text[300]; /* ... and its text */
	bool read_failed;
	int read_errno;
	bool cmd_params;        /* the MAIL/RCPT being answered had params */
	int param_fault;        /* a 555/501 5.5.4 to them (smtp_wire) ... */
	char fault_text[300];   /* ... and its text */
	bool local_refusal;     /* refused by outbox: nothing was sent */
};

struct smtp_client {
	CURL *curl;
	struct smtp_params p;   /* p.secret points to secret */
	char *secret;
	bool verbose;
	bool hide_auth;         /* -v for a caller without the secret */
	bool need_auth;         /* credentials are configured */
	bool authed;            /* AUTH done on the current connection */
	bool open;              /* a session is open: x carries messages */
	bool certinfo;          /* keep the chain (--check shows it) */
	struct trust trust;     /* what TLS trusts without ca-file */
	unsigned refusals;      /* 4xx/5xx to MAIL, RCPT, DATA or the data
	                           in it since a message was last accepted */
	struct xact x;
	char caps[1024];        /* the open session's EHLO extensions */
	char ip[64];            /* and the address it reached */
	struct dialogue d;
	struct smtp_rcpt *rcpt; /* of the current transfer */
	size_t nrcpt;
	const size_t *rcpt_map; /* the n-th RCPT sent is rcpt[rcpt_map[n]] */
	size_t nmap;
	char url[600];
	char where[300];
	char errbuf[CURL_ERROR_SIZE];
};

/* Record a failure in res (what, and detail when not NULL). Returns st. */
enum ob_status smtp_fail(struct smtp_result *res, enum ob_status st,
                         const char *what, const char *detail);

/* The status of the attempt that ended with rc, its reason in res. */
enum ob_status smtp_judge(struct smtp_client *c, CURLcode rc,
                          struct smtp_result *res);

/* Each recipient's state and text in res after the attempt. */
void smtp_settle_rcpts(struct smtp_client *c, struct smtp_result *res);

/* The CONNECT_ONLY perform with the trust the client chose (learning the
 * cache's anchors when learn). */
CURLcode smtp_perform_trusted(struct smtp_client *c, bool learn);

#endif
