/*
 * store_state.c - state every outbox process of the host shares, in
 * files beside the queue's directories: connection slots, send logs and
 * the metrics counters
 * (see store.h; their crash states are in the table atop store.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "util.h"

/* "PREFIX-KEY" (or "PREFIX-KEY-N" when index >= 0) into buf. */
static void state_name(char *buf, size_t n, const char *prefix,
                       const char *key, long index, const char *suffix)
{
	char k[128];
	size_t i;

	for (i = 0; key[i] != '\0' && i + 1 < sizeof(k); i++) {
		unsigned char c = (unsigned char)key[i];

		k[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '-') ? (char)c
		                                                      : '_';
	}
	k[i] = '\0';
	if (index >= 0)
		snprintf(buf, n, "%s-%s-%ld%s", prefix, k, index, suffix);
	else
		snprintf(buf, n, "%s-%s%s", prefix, k, suffix);
}

/* Open (creating when missing, with the queue's file mode) a state file
 * of the queue directory, never through a symbolic link. */
static int open_state(struct store *q, const char *name, int flags)
{
	int fd = openat(q->dfd, name, flags | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	fd = openat(q->dfd, name, flags | O_CREAT | O_EXCL | O_CLOEXEC |
	            O_NOFOLLOW, q->fmode);
	if (fd >= 0 && q->fmode != 0600)
		fchmod(fd, q->fmode);   /* the group bits, past the umask */
	if (fd < 0 && errno == EEXIST)
		fd = openat(q->dfd, name, flags | O_CLOEXEC | O_NOFOLLOW);
	return fd;
}

int store_slot(struct store *q, const char *key, long max)
{
	char name[200];
	long i;
	int fd;

	for (i = 0; i < max; i++) {
		state_name(name, sizeof(name), "slot", key, i, "");
		fd = open_state(q, name, O_RDONLY);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		close(fd);
	}
	errno = EWOULDBLOCK;
	return -1;
}

int store_stamps_lock(struct store *q, const char *key)
{
	char name[200];
	int fd;

	state_name(name, sizeof(name), "rate", key, -1, ".lock");
	fd = open_state(q, name, O_RDONLY);
	if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int store_stamps_read(struct store *q, const char *key, long long *ts,
                      size_t max, size_t *n)
{
	char name[200];
	struct stat st;
	off_t from;
	ssize_t got;
	int fd;

	*n = 0;
	state_name(name, sizeof(name), "rate", key, -1, "");
	fd = openat(q->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	/* whole records only: a partial one at the end is a crash's */
	from = st.st_size - st.st_size % (off_t)sizeof(*ts);
	from = from > (off_t)(max * sizeof(*ts))
	           ? from - (off_t)(max * sizeof(*ts)) : 0;
	got = pread(fd, ts, max * sizeof(*ts), from);
	close(fd);
	if (got < 0)
		return -1;
	*n = (size_t)got / sizeof(*ts);
	return 0;
}

/* Rewrite rate-KEY with only its last keep records (under the lock). */
static int compact_stamps(struct store *q, const char *name, size_t keep,
                          const char *key)
{
	long long *ts = calloc(keep ? keep : 1, sizeof(*ts));
	char tmp[220];
	size_t n = 0;
	int fd, rc = -1;

	if (ts == NULL || store_stamps_read(q, key, ts, keep, &n) != 0) {
		free(ts);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", name);
	unlinkat(q->dfd, tmp, 0);
	fd = openat(q->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	            O_NOFOLLOW, q->fmode);
	if (fd >= 0) {
		if (q->fmode != 0600)
			fchmod(fd, q->fmode);
		if (write_all(fd, ts, n * sizeof(*ts)) == 0 &&
		    renameat(q->dfd, tmp, q->dfd, name) == 0)
			rc = 0;
		close(fd);
	}
	if (rc != 0)
		unlinkat(q->dfd, tmp, 0);
	free(ts);
	return rc;
}

int store_stamps_add(struct store *q, const char *key, long long t,
                     size_t keep)
{
	char name[200];
	struct stat st;
	int fd, rc = 0;

	state_name(name, sizeof(name), "rate", key, -1, "");
	fd = open_state(q, name, O_WRONLY | O_APPEND);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size % (off_t)sizeof(t) != 0 &&
	    ftruncate(fd, st.st_size - st.st_size % (off_t)sizeof(t)) != 0)
		rc = -1;
	if (rc == 0 && write_all(fd, &t, sizeof(t)) != 0)
		rc = -1;
	if (rc == 0 && fstat(fd, &st) == 0 &&
	    (size_t)st.st_size > 2 * (keep + 64) * sizeof(t))
		rc = compact_stamps(q, name, keep, key);
	close(fd);
	return rc;
}

/* ---- the counters file (metrics.c's) ---- */

int store_stats_lock(struct store *q)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int fd, tries, saved;

	fd = openat(q->dfd, "stats.lock", O_RDWR | O_CREAT | O_CLOEXEC |
	            O_NOFOLLOW, q->fmode);
	if (fd < 0)
		return -1;
	if (q->fmode != 0600)
		fchmod(fd, q->fmode);
	for (tries = 0; tries < 1000; tries++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		nanosleep(&pause, NULL);
	}
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int store_stats_read(struct store *q, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n = 1;
	char extra;
	int fd;

	buf[0] = '\0';
	fd = openat(q->dfd, "stats", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	while (len + 1 < cap) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	/* the buffer is full: is there more? */
	if (n > 0 && read(fd, &extra, 1) != 0)
		n = -1;
	close(fd);
	buf[len] = '\0';
	return n < 0 ? -1 : 0;
}

int store_stats_write(struct store *q, const char *text, size_t len)
{
	int fd = openat(q->tmpfd, "stats", O_WRONLY | O_CREAT | O_TRUNC |
	                O_CLOEXEC | O_NOFOLLOW, q->fmode);
	int rc = 0, saved;

	if (fd < 0)
		return -1;
	if (q->fmode != 0600)
		fchmod(fd, q->fmode);
	if (write_all(fd, text, len) != 0 || fsync(fd) != 0)
		rc = -1;
	saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && renameat(q->tmpfd, "stats", q->dfd, "stats") != 0) {
		rc = -1;
		saved = errno;
	}
	if (rc != 0)
		unlinkat(q->tmpfd, "stats", 0);
	errno = saved;
	return rc;
}
