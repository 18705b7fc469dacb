/*
 * log.h - where outbox records what it did: syslog (facility mail), a
 * file, or stderr. Never pass a secret or message content to it.
 */
#ifndef OUTBOX_LOG_H
#define OUTBOX_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* target: "syslog", "stderr" or an absolute file path. Returns 0, or -1
 * when the file cannot be opened (then one line on stderr says so, and
 * logging goes to stderr) or no syslog daemon listens on /dev/log (then
 * logging goes to stderr: never nowhere). shared: the set-group-ID
 * install, where the file is everyone's: it must exist (only root
 * creates it, mode 0660), be root's and not writable by others, and is
 * never reached through a symbolic link; otherwise a one-line warning on
 * stderr and logging goes to syslog (or stderr, as above). */
int log_open(const char *target, bool shared);

/* One event line at priority prio (LOG_INFO, LOG_WARNING, LOG_ERR). */
void log_event(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void log_close(void);

#endif
