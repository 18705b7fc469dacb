/*
 * log.h - where outbox records what it did: syslog (facility mail), a
 * file, or stderr. Never pass a secret or message content to it.
 */
#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <syslog.h>

/* target: "syslog", "stderr" or an absolute file path. Returns 0, or -1
 * when the file cannot be opened (then logging goes to stderr). */
int log_open(const char *target);

/* One event line at priority prio (LOG_INFO, LOG_WARNING, LOG_ERR). */
void log_event(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void log_close(void);

#endif
