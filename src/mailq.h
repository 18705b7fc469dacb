/*
 * mailq.h - the queue as people and programs read it: mailq's text
 * blocks and `mailq --json`. A front end over the store; it changes
 * nothing.
 */
#ifndef OUTBOX_MAILQ_H
#define OUTBOX_MAILQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "store.h"

/*
 * Print area (the queue, or failed/) to out: mailq's blocks ("Mail queue
 * is empty" when there is nothing at all), or with json one JSON array of
 * objects (id, size, arrival, sender, recipients with their state
 * queued/deferred/failed, attempts, next_attempt, last_error, uid). Only
 * the caller's own messages when the store says so (store_is_mine); the
 * text says how many others it did not show, and how many envelopes
 * could not be read (with json that count goes to stderr, so stdout
 * stays one JSON array). 0, or -1 with err.
 */
int mailq_print(struct store *s, FILE *out, enum store_area area, bool json,
                char *err, size_t errlen);

#endif
