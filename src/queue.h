/*
 * queue.h - the local queue: messages wait here while the smarthost is
 * away, and a queue run sends them later. Layout and crash states are
 * documented at the top of queue.c.
 */
#ifndef OUTBOX_QUEUE_H
#define OUTBOX_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "address.h"
#include "bounce.h"
#include "config.h"
#include "deliver.h"
#include "status.h"

#define QUEUE_ID_LEN 16

struct queue;

/* What one queued message's envelope file holds. */
struct queue_entry {
	char id[QUEUE_ID_LEN + 1];
	char *sender;           /* "" for the null sender */
	struct addr_list rcpts; /* still to be delivered */
	time_t created;
	time_t next;            /* next attempt due */
	long attempts;
	char last_error[300];
	off_t size;             /* of the data file */
	uid_t uid;              /* who submitted it (the DSN: whose message) */
};

/*
 * Open the queue at dir, creating it and its tmp/, msg/ and failed/
 * subdirectories (mode 0700) when create is set. shared (the setgid
 * install): directories 2770 and files 0660, for the outbox group, and a
 * caller other than root lists, removes and picks (-qI) only the
 * messages it submitted itself (a queue run still delivers them all).
 * Refused: a path that is a symbolic link or owned by another user (root
 * excepted, when the directory's group is ours). Returns 0 and *out, or
 * -1 with err.
 */
int queue_open(const char *dir, bool create, bool shared,
               struct queue **out, char *err, size_t errlen);
void queue_close(struct queue *q);

/*
 * A new spool file in tmp/ for a message being read: created with O_EXCL,
 * mode 0600, locked for as long as the fd stays open. Its ID is written
 * to id. Returns the fd, or -1 with err.
 */
int queue_spool(struct queue *q, char id[QUEUE_ID_LEN + 1],
                char *err, size_t errlen);

/* Remove the spool file of a message that was not committed. */
void queue_discard(struct queue *q, const char *id);

/*
 * The commit point. fd must be the spool file of id (from queue_spool).
 * Writes the envelope (sender, recipients, the submitting uid, created
 * now, next attempt at now + delay seconds, attempts, last_error), fsyncs
 * both files, renames
 * them into msg/ (data first) and fsyncs the directory. On success the
 * message is queued (0). On failure (-1, err) nothing is left in msg/.
 */
int queue_commit(struct queue *q, const char *id, int fd, const char *sender,
                 const struct addr_list *rcpts, uid_t uid, long attempts,
                 long delay, const char *last_error, char *err,
                 size_t errlen);

struct queue_run_opts {
	bool force;             /* ignore the retry schedule */
	const char *only_id;    /* just this message */
	long retry_min, retry_max, lifetime;  /* seconds */
	const volatile int *stop; /* when non-zero, stop between messages */
};

struct queue_run_stats {
	size_t tried, sent, deferred, bounced, locked;
	size_t skipped;         /* not tried: every smarthost down this run */
};

/*
 * Run the queue once: every due message (or only_id), oldest first, each
 * locked so that concurrent runs never send one twice at the same time,
 * all through ctx (one connection per smarthost; a smarthost whose
 * session failed is not tried again in the run, and the messages it
 * would have carried stay due, untouched). Recipients delivered or
 * refused for good leave the envelope; the rest wait with a backoff.
 * Past the lifetime, and for permanent refusals, the sender gets a DSN
 * (unless the sender is null) and the message moves to failed/.
 * Returns 0, or -1 when the queue cannot be read or only_id is not a
 * message of the caller's in the queue (err).
 */
int queue_run(struct queue *q, const struct config *cfg,
              struct deliver_ctx *ctx, const struct queue_run_opts *o,
              struct queue_run_stats *st, char *err, size_t errlen);

/* True when msg/ holds at least one message due now. */
bool queue_has_due(struct queue *q);

/*
 * Print the queue: mailq's blocks ("Mail queue is empty" when empty), or
 * with json one JSON array of objects (id, size, arrival, sender,
 * recipients with their state, attempts, next_attempt, last_error, uid).
 * Only the caller's own messages when the queue is shared and the caller
 * is not root; the text says how many others it did not show.
 * 0, or -1 with err.
 */
int queue_list(struct queue *q, FILE *out, bool json, char *err,
               size_t errlen);

/*
 * Queue a delivery status notification (RFC 3464) to sender about rcpts
 * of the message in datafd (orig_id, submitted by uid, arrived at
 * arrival; expired: the queue lifetime ran out, else the server refused
 * them), from the null sender; it belongs to uid, as the message did. No
 * notification goes to the null sender. Its ID goes to id.
 * Returns 0, or -1 (logged).
 */
int queue_add_bounce(struct queue *q, const struct config *cfg,
                     const char *orig_id, const char *sender, uid_t uid,
                     time_t arrival,
                     int datafd, const struct bounce_rcpt *rcpts, size_t n,
                     bool expired, char id[QUEUE_ID_LEN + 1]);

/* Delete one message (and its data). 0, or -1 when not found, not the
 * caller's (see queue_open), or locked. */
int queue_remove(struct queue *q, const char *id, char *err, size_t errlen);

#endif
