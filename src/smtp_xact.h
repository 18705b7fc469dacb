/*
 * smtp_xact.h - one SMTP mail transaction (MAIL, RCPT, DATA, the message,
 * and RSET after a refusal) over a connection that libcurl opened.
 *
 * libcurl still does everything up to the transaction: TCP (or the
 * proxy), the greeting, EHLO, STARTTLS with certificate checks, and AUTH,
 * through a CURLOPT_CONNECT_ONLY perform. The transaction itself goes over
 * that connection with curl_easy_send/curl_easy_recv. The reason: libcurl
 * 7.88 closes the connection after any failed transfer (lib/smtp.c
 * smtp_done: connclose "SMTP done with bad status"), and a refused MAIL,
 * every RCPT refused or a refused DATA all fail the transfer - so each such
 * message cost the next one a new connection, TLS handshake and AUTH.
 * Here a refusal is answered with RSET and the connection stays usable.
 *
 * Every command as sent and every reply line as read is reported through
 * the hooks, in order, the way libcurl's debug stream reports its own
 * dialogue: the caller learns each recipient's reply from them. With
 * PIPELINING the commands of a batch go out together, and each is
 * reported just before its reply is read, so a command and its reply
 * still come as a pair.
 */
#ifndef OUTBOX_SMTP_XACT_H
#define OUTBOX_SMTP_XACT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest reply line taken whole (RFC 5321 allows 512 octets). */
#define XACT_LINE_MAX 2048

struct xact_hooks {
	/* a command as sent, without its CRLF */
	void (*command)(void *arg, const char *line, size_t n);
	/* a reply line as read, without its CRLF (raw: not yet escaped) */
	void (*reply)(void *arg, const char *line, size_t n);
	void *arg;
};

struct xact {
	CURL *curl;
	curl_socket_t sock;
	long timeout;           /* seconds for each reply, and for each step
	                           of sending without progress */
	bool pipelining;        /* the server offered PIPELINING (RFC 2920):
	                           MAIL, RCPT and DATA go together */
	struct xact_hooks hooks;
	char in[XACT_LINE_MAX]; /* received, not yet taken as a line */
	size_t inlen;
	/* The outcome of the last xact_mail, for the caller: */
	bool usable;            /* the connection can carry the next one */
	int code;               /* the last reply's code (0: none read) */
	size_t nreplies;        /* replies read in the last xact_mail */
	CURLcode rc;            /* XACT_BROKEN: what went wrong ... */
	char err[256];          /* ... in words */
	int read_errno;         /* the message file could not be read */
};

enum xact_end {
	XACT_SENT,     /* the message went out; x->code is the final reply
	                  (250: accepted, anything else: not) */
	XACT_REFUSED,  /* MAIL, every RCPT, or DATA refused (x->code, x->err:
	                  "MAIL failed: 550"); the transaction was reset */
	XACT_BROKEN    /* I/O failure, timeout, nonsense from the server or an
	                  unreadable message: x->rc and x->err say which; the
	                  connection must not be used again */
};

/*
 * Take over the connection of a successful CONNECT_ONLY perform on curl.
 * hooks is copied. Returns 0, or -1 when libcurl has no socket for it.
 */
int xact_attach(struct xact *x, CURL *curl, long timeout,
                const struct xact_hooks *hooks);

/*
 * Is the idle connection still fit to carry a message? false when the
 * server closed it or said something unasked (such as 421 on an idle
 * timeout); then it must not be used.
 */
bool xact_idle_ok(struct xact *x);

/*
 * One transaction: MAIL FROM:<sender> followed by params (" SIZE=123" or
 * ""), RCPT TO:<r> for each of rcpts[0..nrcpt) while the server takes them
 * (after a "too many" reply the rest are not sent: see xact_too_many),
 * DATA when at least one was accepted, then the message read from fd (to
 * its end: CRLF lines, not dot-stuffed; stuffed here) and the final dot.
 * A refusal (also the one after the dot) is followed by RSET. x->usable says afterwards whether the
 * connection can be used again (not after 421, a failed RSET, or any
 * XACT_BROKEN). sender "" is the null sender.
 */
enum xact_end xact_mail(struct xact *x, const char *sender,
                        const char *params, char *const *rcpts, size_t nrcpt,
                        int fd);

/* Is kw (e.g. "SIZE") among the EHLO extensions in caps (the reply's
 * lines after the first, ", "-separated: "SIZE 1000, 8BITMIME")? */
bool xact_has_ext(const char *caps, const char *kw);

/*
 * The MAIL FROM parameters libcurl 7.88 would send, into out (" SIZE=123
 * SMTPUTF8" or ""): SIZE when offered and size > 0, SMTPUTF8 when offered
 * and the sender or a recipient is not ASCII.
 */
void xact_mail_params(const char *caps, const char *sender,
                      char *const *rcpts, size_t n, off_t size, char *out,
                      size_t outlen);

/* Say QUIT, if the connection is usable, and do not wait for the reply:
 * every transaction on it is settled (a message counts as accepted only
 * after its 250 was read), so the 221 tells nothing and would cost one
 * round trip; the caller closes the connection next. It is not usable
 * afterwards. libcurl closes a CONNECT_ONLY connection without a QUIT of
 * its own. */
void xact_quit(struct xact *x);

/*
 * Does this reply mean "too many" - the server limits this client for now,
 * so sending it more soon is useless? 421 with 4.3.2, 450/451 with
 * 4.7.x, 452 with 4.5.3 (the enhanced code right after the reply code).
 * line is one reply line ("451 4.7.1 rate limit ...").
 */
bool xact_too_many(int code, const char *line);

#endif
