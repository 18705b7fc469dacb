/*
 * log.c - event log (see log.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum target { T_NONE, T_SYSLOG, T_STDERR, T_FILE };

static enum target target = T_NONE;
static int log_fd = -1;

int log_open(const char *t)
{
	if (t == NULL || strcmp(t, "syslog") == 0) {
		openlog("outbox", LOG_PID, LOG_MAIL);
		target = T_SYSLOG;
		return 0;
	}
	if (strcmp(t, "stderr") == 0) {
		target = T_STDERR;
		return 0;
	}
	log_fd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	              0600);
	if (log_fd < 0) {
		target = T_STDERR;
		return -1;
	}
	target = T_FILE;
	return 0;
}

void log_event(int prio, const char *fmt, ...)
{
	char line[2048];
	char stamp[64];
	time_t now;
	struct tm tm;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	switch (target) {
	case T_SYSLOG:
		syslog(prio, "%s", line);
		break;
	case T_FILE:
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z", &tm);
		dprintf(log_fd, "%s outbox[%ld]: %s\n", stamp, (long)getpid(),
		        line);
		break;
	case T_STDERR:
		fprintf(stderr, "outbox: %s\n", line);
		break;
	default:
		break;
	}
}

void log_close(void)
{
	if (target == T_SYSLOG)
		closelog();
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	target = T_NONE;
}
