/*
 * runner.h - queue runs: which stored messages are due, sending them
 * through deliver, and what follows from the outcome (retry with a
 * backoff, delivery status notifications via bounce.c, failed/). Below
 * it: the store (store.h), which keeps the bytes, and deliver
 * (deliver.h), which sends them.
 */
#ifndef OUTBOX_RUNNER_H
#define OUTBOX_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "bounce.h"
#include "config.h"
#include "deliver.h"
#include "status.h"
#include "store.h"

struct runner_opts {
	bool force;             /* ignore the retry schedule */
	const char *const *ids; /* just these messages (nids of them) */
	size_t nids;
	const volatile int *stop; /* when non-zero, stop between messages */
};

struct runner_stats {
	size_t tried, sent, deferred, bounced, locked;
	size_t skipped;         /* not tried: every smarthost down this run */
	/* in: NULL, or a list that gets the IDs the run found in msg/
	 * (replacing what it held) */
	struct addr_list *seen;
};

/*
 * Run the queue once: every due message (or the ids), oldest first, each
 * locked so that concurrent runs never send one twice at the same time,
 * all through ctx (one connection per smarthost; a smarthost whose
 * session failed is not tried again in the run, and the messages it
 * would have carried stay due, untouched). Recipients delivered or
 * refused for good leave the envelope; the rest wait with a backoff
 * (cfg's retry-min doubling to retry-max). Past cfg's queue-lifetime,
 * and for permanent refusals, the sender gets a DSN (unless the sender
 * is null) and the message moves to failed/, where it is kept for cfg's
 * failed-lifetime. Returns 0, or -1 when the queue cannot be read or one
 * of the ids is not a message of the caller's in the queue (err names
 * the first such; the others are still run).
 */
int runner_run(struct store *s, const struct config *cfg,
               struct deliver_ctx *ctx, const struct runner_opts *o,
               struct runner_stats *st, char *err, size_t errlen);

/*
 * runner_run with a context of its own, for the command line (-q, -qI):
 * returns OB_OK, or a failure with a line printed to stderr; verbose
 * prints the run's counts. Once its connections are closed and its slots
 * freed, a message committed after its listing (by a sender that found
 * every slot held) gets one more run: a slot's last holder sees it.
 */
enum ob_status runner_run_once(const struct config *cfg, struct store *s,
                               const struct runner_opts *o, bool verbose);

/* Start a detached background queue run (all due, or only_id) and return
 * at once: the caller's output pipes are not held open. */
void runner_run_detached(const struct config *cfg, const char *only_id);

struct limits;

/*
 * Carry on with ctx's open connections (and l's connection slots) in a
 * detached process that sends the due queued messages over them, pass
 * after pass until a pass sends nothing, then closes them; the caller
 * returns at once, its output pipes not held open. True when that
 * process was started: then the caller must deliver_park(ctx) (never
 * close it: the QUIT would end the other process's session) and may
 * limits_free(l) (the slots stay held by the other process). False:
 * nothing changed (no process could be made).
 */
bool runner_carry_on(const struct config *cfg, struct deliver_ctx *ctx,
                     struct limits *l);

/* True when msg/ holds at least one message due now. */
bool runner_has_due(struct store *s);

/* True when msg/ holds a message due now whose ID is not in seen (a
 * sorted list, as runner_stats' seen or store_ids give it) nor except
 * (NULL: none): one that was committed after that listing. */
bool runner_has_due_unseen(struct store *s, const struct addr_list *seen,
                           const char *except);

/*
 * Queue a delivery status notification (RFC 3464) to sender about rcpts
 * of the message in datafd (orig_id, submitted by uid, arrived at
 * arrival; expired: the queue lifetime ran out, else the server refused
 * them), from the null sender; it belongs to uid, as the message did. No
 * notification goes to the null sender, nor about a recipient whose
 * NOTIFY (params, NULL: none) leaves FAILURE out; params' ENVID, ORCPT
 * and RET go into it (bounce.h). Its ID goes to id.
 * Returns 0, or -1 (logged; also when no recipient is left).
 */
int runner_add_bounce(struct store *s, const struct config *cfg,
                      const char *orig_id, const char *sender, uid_t uid,
                      time_t arrival, int datafd,
                      const struct bounce_rcpt *rcpts, size_t n,
                      bool expired, const struct params_set *params,
                      char id[STORE_ID_LEN + 1]);

#endif
