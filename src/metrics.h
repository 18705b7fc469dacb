/*
 * metrics.h - watching the queue: the Prometheus text file of the
 * metrics-file key, rewritten after each delivery attempt and queue run
 * (counters kept across processes in the store's counters file), and
 * the monitoring-plugin check of `outbox --queue-check`. Above the store
 * and beside the runner: it reads delivery reports, never sends.
 * The metric names and what each means are in outbox(8), MONITORING.
 */
#ifndef OUTBOX_METRICS_H
#define OUTBOX_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "deliver.h"
#include "store.h"

/* One smarthost's counts (the label smarthost="host:port"; "none" for
 * recipients deferred before any smarthost was reached). */
struct metrics_host {
	char name[300];
	unsigned long long sent, deferred, bounced, rate_waits;
	long long last_success;         /* Unix time; 0: never */
};

/* What one process counted since its last metrics_update: zero it
 * ({ 0 }) before use. Bounded: one entry per configured smarthost and
 * "none"; what does not fit is dropped. */
struct metrics_tally {
	size_t n;
	struct metrics_host host[CONFIG_MAX_SMARTHOSTS + 1];
	const char *account;    /* a named account's (label account="NAME"
	                           beside smarthost); NULL: the default's */
};

/*
 * Count rep's recipients into t, each under the smarthost that gave its
 * final answer (else the last one tried, else "none"): sent (accepted;
 * the smarthost's last success is now), bounced (refused for good; with
 * expired, also those still temporary: given up at the end of the queue
 * lifetime) or deferred. A report with not_tried set counts nothing.
 */
void metrics_note(struct metrics_tally *t, const struct deliver_report *rep,
                  bool expired);

/* One message held back by a rate limit of smarthost ("host:port"). */
void metrics_note_rate_wait(struct metrics_tally *t, const char *smarthost);

/*
 * After a delivery attempt or a queue run. Nothing at all unless cfg has
 * a metrics-file. With q (the queue): t (NULL for nothing) is added to
 * the counters file under its lock, and the metrics file is rewritten
 * from the counters and the queue, still under the lock (so files never
 * step back); with the queue off (cfg->queue NULL) the file only says
 * outbox_queue_enabled 0; with a queue this caller could not open (q
 * NULL), nothing is written. The file is replaced atomically (temporary
 * file in its directory, fsync, rename), mode 0644. A set-group-ID
 * caller other than root writes it only in a directory that only root
 * (and the outbox group) can change (see outbox.conf(5)). Failures are
 * logged, never returned: watching must not stop mail.
 */
void metrics_update(const struct config *cfg, struct store *q,
                    const struct metrics_tally *t);

/* --queue-check: the monitoring-plugins states (main.c maps them to the
 * plugin exit codes 0, 1, 2, 3). */
enum metrics_state {
	METRICS_OK = 0,
	METRICS_WARNING,
	METRICS_CRITICAL,
	METRICS_UNKNOWN
};

/* Thresholds as given on the command line; NULL for the default
 * (messages: warning over 10, critical over 100; oldest: over 1h, 1d). */
struct metrics_limits {
	const char *warn_age, *crit_age;        /* durations: 30m, 2h, 1d */
	const char *warn_count, *crit_count;    /* numbers of messages */
};

/*
 * Check the queue against lim: the state, and in line (n bytes) one
 * status line with performance data, such as
 * "OUTBOX QUEUE OK - 3 messages, oldest 5m | messages=3;10;100
 * oldest=300s;3600;86400 failed=0 bytes=2190B". UNKNOWN for a bad
 * threshold, the queue off, or a queue that cannot be read; a queue
 * directory not created yet is an empty queue. Changes nothing.
 */
enum metrics_state metrics_check(const struct config *cfg,
                                 const struct metrics_limits *lim,
                                 char *line, size_t n);

#endif
