/*
 * log.c - event log (see log.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum target { T_NONE, T_SYSLOG, T_STDERR, T_FILE };

static enum target target = T_NONE;
static int log_fd = -1;

/*
 * The log file of the set-group-ID install is shared by every user: a
 * user's process must not create it (it would be that user's file, to
 * read and rewrite) nor follow a link planted in its place. So it is
 * only opened when it exists, is a regular file owned by root and is
 * not writable by others; root creates it, mode 0660.
 */
static int open_shared(const char *t)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
	struct stat st;
	int fd;

	fd = open(t, flags);
	if (fd < 0 && errno == ENOENT && getuid() == 0) {
		fd = open(t, flags | O_CREAT | O_EXCL, 0660);
		if (fd >= 0 && fchmod(fd, 0660) != 0) {     /* past the umask */
			close(fd);
			return -1;
		}
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & S_IWOTH) != 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * Is there a syslog daemon to hear us? glibc's syslog() drops lines
 * silently when /dev/log cannot be reached (a container without one, a
 * chroot): then the lines go to stderr instead of nowhere.
 */
static bool syslog_reachable(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, type, ok = 0;

	memcpy(sa.sun_path, _PATH_LOG, sizeof(_PATH_LOG));
	for (type = SOCK_DGRAM; !ok && type != -1;
	     type = type == SOCK_DGRAM ? SOCK_STREAM : -1) {
		fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
	}
	return ok;
}

/* syslog, or stderr when no syslog daemon can be reached. */
static int open_syslog(void)
{
	if (!syslog_reachable()) {
		target = T_STDERR;
		return -1;
	}
	openlog("outbox", LOG_PID, LOG_MAIL);
	target = T_SYSLOG;
	return 0;
}

int log_open(const char *t, bool shared)
{
	if (t == NULL || strcmp(t, "syslog") == 0)
		return open_syslog();
	if (strcmp(t, "stderr") == 0) {
		target = T_STDERR;
		return 0;
	}
	if (shared) {
		log_fd = open_shared(t);
		if (log_fd < 0) {
			fprintf(stderr, "outbox: log %s: not usable here (%s; in "
			        "the set-group-ID install it must exist, owned by "
			        "root, not writable by others: make install-setgid "
			        "creates it); logging to syslog\n", t,
			        strerror(errno));
			open_syslog();
			return -1;
		}
		target = T_FILE;
		return 0;
	}
	log_fd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	              0600);
	if (log_fd < 0) {
		fprintf(stderr, "outbox: log %s: cannot open it (%s); logging "
		        "to stderr\n", t, strerror(errno));
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
