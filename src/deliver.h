/*
 * deliver.h - the one send path: a message to its recipients through the
 * configured smarthosts, in order (failover), reusing connections.
 */
#ifndef OUTBOX_DELIVER_H
#define OUTBOX_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "address.h"
#include "config.h"
#include "smtp.h"
#include "status.h"

struct deliver_rcpt {
	const char *addr;       /* points into the caller's list */
	enum rcpt_state state;
	char text[256];         /* server reply or failure reason */
	char where[300];        /* smarthost that gave the final answer */
	char relay[350];        /* the same as host[address]:port */
};

struct deliver_report {
	/* OB_OK when every recipient is RCPT_OK. Otherwise: OB_TEMPFAIL (or
	 * OB_NOPERM / OB_PROTOCOL / OB_IOERR / OB_SOFTWARE / OB_CONFIG, the
	 * kind of the last failure) while any recipient is RCPT_TEMP;
	 * else OB_UNAVAILABLE when the message itself was refused, OB_NOUSER
	 * when only recipients were. */
	enum ob_status status;
	char where[300];        /* last smarthost tried */
	char reason[600];       /* last failure, one line */
	/* the message is as it was: every smarthost was skipped (its
	 * session failed earlier with this context, or it said "too many")
	 * or answered this message "too many" with no recipient accepted or
	 * refused for good (then rcpt[] and reason hold that reply) */
	bool not_tried;
	/* the last failure was the setup's (smtp_result's setup_error, or
	 * the secret could not be read): an admin must act */
	bool setup_error;
	/* the gate's non-zero answer for the last smarthost it held back
	 * (see deliver_set_gate), 0 when none was */
	int held_kind;
	struct deliver_rcpt *rcpt;
	size_t nrcpt;
};

struct deliver_ctx;

/* A context for one or more deliveries (a queue run). Nothing is
 * initialised (libcurl, the password) until the first message needs it.
 * A smarthost whose session fails before MAIL FROM (connect, greeting,
 * TLS, AUTH) is skipped for the context's remaining messages, so a hung
 * server costs one timeout per run; logged once. So is (paused) one that
 * answers "too many" (smtp_result's too_many: a rate or connection limit),
 * logged when it happens. A refused message does not cost the connection
 * (see smtp.h). NULL when out of memory. */
struct deliver_ctx *deliver_new(const struct config *cfg, bool verbose);

/*
 * The gate asks, before each message goes to smarthost host, whether it
 * may go now (return 0), or not (non-zero, with why set to one line;
 * the value comes back in deliver_report's held_kind):
 * then that smarthost is not used again by this context (the message is
 * tried on the next smarthost, or stays as it was: not_tried). Used for
 * connection slots and rate limits (limits.h). No gate: always 0.
 */
typedef int (*deliver_gate_fn)(void *arg, size_t host, char *why,
                               size_t whylen);
void deliver_set_gate(struct deliver_ctx *ctx, deliver_gate_fn gate,
                      void *arg);

/*
 * Deliver the spooled message (fd, size bytes) from sender to rcpts, with
 * the envelope parameters params (DSN, BODY; NULL: none) as far as each
 * smarthost offers them (see smtp_send).
 * Smarthosts are tried in order while recipients remain with a temporary
 * or relay-side failure; a permanent refusal is final. Fills rep (free
 * with deliver_report_free) and returns rep->status.
 */
enum ob_status deliver_send(struct deliver_ctx *ctx, const char *sender,
                            const struct addr_list *rcpts,
                            const struct params_set *params, int fd,
                            off_t size, struct deliver_report *rep);

void deliver_report_free(struct deliver_report *rep);

/*
 * Log one recipient's outcome in the shape Postfix admins grep for:
 * "ID: to=<x>, relay=host[addr]:port, delay=S, tries=N, status=sent (...)"
 * (status sent, deferred or bounced); with account (a named account,
 * NULL for the default) "account=NAME, " before the delay.
 */
void deliver_log(const char *id, const char *account,
                 const struct deliver_rcpt *r, double delay, long tries);

/* The sockets of ctx's open connections (at most max); how many. */
size_t deliver_fds(struct deliver_ctx *ctx, int *fds, size_t max);

/* Has ctx a connection open (to carry more messages on)? */
bool deliver_connected(struct deliver_ctx *ctx);

/*
 * ctx's connections now belong to another process (a child that carries
 * on with them, see runner_carry_on): this one must never use, close or
 * free ctx again. The password is wiped; the memory stays reachable and
 * is reclaimed when the process exits.
 */
void deliver_park(struct deliver_ctx *ctx);

/* Close every connection and wipe the password. NULL is fine. */
void deliver_free(struct deliver_ctx *ctx);

#endif
