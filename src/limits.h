/*
 * limits.h - what a smarthost may take from this host right now, across
 * every outbox process: at most max-connections connections at a time
 * (slots held by flock, freed when the process ends) and at most COUNT
 * messages in any PERIOD for each rate-limit (a send log), both kept by
 * the store (a named account's are its own: "NAME@host:port"). Above
 * the store, beside the runner; deliver asks through
 * its gate (deliver_set_gate).
 */
#ifndef OUTBOX_LIMITS_H
#define OUTBOX_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "store.h"

enum limits_verdict {
	LIMITS_GO = 0,   /* send: a slot is held, the send is counted */
	LIMITS_BUSY,     /* every connection slot is held by other processes */
	LIMITS_WAIT      /* a rate limit is reached until a later time */
};

struct limits;

/* Limits for cfg's smarthosts over the store s (which must outlive it).
 * NULL when out of memory. */
struct limits *limits_new(const struct config *cfg, struct store *s);

/*
 * May one more message go to smarthost host now? The first GO for a
 * host also takes one of its connection slots, kept until limits_free
 * (or until the process ends). GO counts the message in the host's send
 * log. Otherwise why says, in one line, what holds it back and for how
 * long. Errors reading or writing the shared files count as GO (logged):
 * a broken lock file must not stop the mail.
 */
enum limits_verdict limits_check(struct limits *l, size_t host, char *why,
                                 size_t whylen);

/* The slot fds held (for a process that carries the connections on);
 * returns how many were written to fds (at most max). */
size_t limits_fds(const struct limits *l, int *fds, size_t max);

/* Is a connection slot free now for some smarthost (one this process
 * could take)? Takes none. True when max-connections is 0. */
bool limits_slot_free(struct limits *l);

/* Use the store s from now on (another process's handle on the same
 * queue, e.g. after a fork closed the old one's descriptors). */
void limits_set_store(struct limits *l, struct store *s);

/* Free the slots. NULL is fine. */
void limits_free(struct limits *l);

/* deliver's gate (deliver_set_gate) over a struct limits *: arg is it. */
int limits_gate(void *arg, size_t host, char *why, size_t whylen);

#endif
