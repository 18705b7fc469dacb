/*
 * util.c - small helpers used by several modules (see util.h).
 */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

bool str_copy(char *dst, size_t dstsize, const char *src)
{
	size_t n = strlen(src);

	if (dstsize == 0)
		return false;
	if (n >= dstsize) {
		memcpy(dst, src, dstsize - 1);
		dst[dstsize - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

size_t str_escape_ctl(char *dst, size_t dstsize, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, len = 0;

	if (dstsize == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		char esc[4];
		size_t k = 0;

		if (c >= 0x20 && c != 0x7f) {
			esc[k++] = (char)c;
		} else {
			esc[k++] = '\\';
			if (c == '\r' || c == '\n' || c == '\t') {
				esc[k++] = c == '\r' ? 'r' : c == '\n' ? 'n' : 't';
			} else {
				esc[k++] = 'x';
				esc[k++] = hex[c >> 4];
				esc[k++] = hex[c & 15];
			}
		}
		if (len + k >= dstsize)
			break;
		memcpy(dst + len, esc, k);
		len += k;
	}
	dst[len] = '\0';
	return len;
}

char *str_ndup(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

bool str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool str_nieq(const char *a, const char *b, size_t n)
{
	return strncasecmp(a, b, n) == 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_duration(const char *s, long max, long *secs)
{
	char num[32];
	size_t len = strlen(s);
	long mult = 1;
	long v;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	default:
		if (num[len - 1] < '0' || num[len - 1] > '9')
			return -1;
		len++;
		break;
	}
	num[len - 1] = '\0';
	if (parse_long(num, 0, LONG_MAX / mult, &v) != 0)
		return -1;
	if (v * mult > max)
		return -1;
	*secs = v * mult;
	return 0;
}

bool errno_disk_full(int e)
{
	return e == ENOSPC || e == EDQUOT;
}

void outbuf_flush(struct outbuf *o)
{
	if (o->len > 0 && !o->failed && write_all(o->fd, o->buf, o->len) != 0) {
		o->failed = true;
		o->error = errno;
	}
	o->len = 0;
}

void outbuf_put(struct outbuf *o, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n > 0) {
		size_t k = sizeof(o->buf) - o->len;

		if (k > n)
			k = n;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		o->total += (off_t)k;
		s += k;
		n -= k;
		if (o->len == sizeof(o->buf))
			outbuf_flush(o);
	}
}

void secure_zero(void *p, size_t len)
{
	volatile unsigned char *v = p;

	while (len-- > 0)
		*v++ = 0;
}

#ifndef CA_BUNDLE
#define CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#endif

const char *ca_bundle(void)
{
	return access(CA_BUNDLE, R_OK) == 0 ? CA_BUNDLE : NULL;
}

int tmpfile_anon(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if (dir == NULL) {
		dir = getenv("TMPDIR");
		if (dir == NULL || *dir != '/')
			dir = "/tmp";
	}
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
#endif
	if (snprintf(path, sizeof(path), "%s/outbox.XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	unlink(path);
	return fd;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

void close_fds_except(const int *keep, size_t n)
{
	int sorted[16] = { 0 };
	unsigned int from = 3;
	size_t i, m = 0;

	for (i = 0; i < n && m < sizeof(sorted) / sizeof(sorted[0]); i++) {
		if (keep[i] >= 3)
			sorted[m++] = keep[i];
	}
	qsort(sorted, m, sizeof(sorted[0]), cmp_int);
	for (i = 0; i < m; i++) {
		if ((unsigned int)sorted[i] > from)
			close_range(from, (unsigned int)sorted[i] - 1, 0);
		from = (unsigned int)sorted[i] + 1;
	}
	close_range(from, ~0U, 0);
}

static bool kept(int fd, const int *keep, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (keep[i] == fd)
			return true;
	}
	return false;
}

/* Close fd unless it is kept or a socket. */
static void close_unless_socket(int fd, const int *keep, size_t n)
{
	struct stat st;

	if (fd > 2 && !kept(fd, keep, n) &&
	    (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)))
		close(fd);
}

void close_fds_but_sockets(const int *keep, size_t n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd, self;

	if (d == NULL) {                /* no /proc: every number there is */
		long max = sysconf(_SC_OPEN_MAX);

		for (fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close_unless_socket(fd, keep, n);
		return;
	}
	self = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		char *end;
		long v = strtol(e->d_name, &end, 10);

		fd = (int)v;
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && *end == '\0' &&
		    v <= INT_MAX && fd != self)
			close_unless_socket(fd, keep, n);
	}
	closedir(d);
}

void close_inherited_fds(void)
{
	close_range(3, ~0U, 0);
}

void format_age(char *buf, size_t n, long long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, n, "%llds", secs);
	else if (secs < 7200)
		snprintf(buf, n, "%lldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, n, "%lldh", secs / 3600);
	else
		snprintf(buf, n, "%lldd", secs / 86400);
}

bool file_untrusted_owner(const struct stat *st, bool strict)
{
	return strict &&
	       (st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH)));
}

bool file_readable_by_others(const struct stat *st)
{
	if (st->st_mode & (S_IROTH | S_IWOTH))
		return true;
	if (st->st_mode & (S_IRGRP | S_IWGRP))
		return !(st->st_gid == getegid() && getegid() != getgid());
	return false;
}
