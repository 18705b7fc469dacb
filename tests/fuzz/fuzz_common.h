/*
 * fuzz_common.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every check that fails calls fuzz_fail(), which prints why and aborts,
 * so libFuzzer records the input as a crash.
 */
#ifndef OUTBOX_FUZZ_COMMON_H
#define OUTBOX_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

static inline void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static inline void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("FUZZ CHECK FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* A memfd, created once per process; emptied and rewound on each call. */
static inline int fuzz_memfd(int *fd, const char *name)
{
	if (*fd < 0) {
		*fd = memfd_create(name, MFD_CLOEXEC);
		if (*fd < 0)
			fuzz_fail("memfd_create: %s", strerror(errno));
	}
	if (ftruncate(*fd, 0) != 0 || lseek(*fd, 0, SEEK_SET) != 0)
		fuzz_fail("ftruncate/lseek memfd: %s", strerror(errno));
	return *fd;
}

static inline void fuzz_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fuzz_fail("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* The whole content of fd (from offset 0) in a malloc'd buffer, NUL
 * appended (not counted in *len). */
static inline char *fuzz_read_fd(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	if (buf == NULL || lseek(fd, 0, SEEK_SET) != 0)
		fuzz_fail("read_fd setup");
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *g = realloc(buf, cap * 2 + 1);

			if (g == NULL)
				fuzz_fail("out of memory");
			buf = g;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fuzz_fail("read: %s", strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* err must hold a NUL within its size. */
static inline void fuzz_check_err(const char *err, size_t errlen,
                                  const char *what)
{
	if (memchr(err, '\0', errlen) == NULL)
		fuzz_fail("%s: error text is not NUL-terminated", what);
}

/*
 * Errors must not echo input text. Fails when err shares a run of min
 * bytes with data[0..size), not counting the parts of err that are fixed
 * text of the program: every occurrence in err of a string of fixed[]
 * (NULL-terminated, pieces shorter than 6 bytes ignored) or of extra
 * (e.g. the file name; may be NULL) is masked first.
 */
static inline void fuzz_mask(const char *err, bool *mask, const char *f)
{
	size_t flen = strlen(f), j;
	const char *at = err;

	if (flen < 6)
		return;
	while ((at = strstr(at, f)) != NULL) {
		for (j = 0; j < flen; j++)
			mask[(size_t)(at - err) + j] = true;
		at++;
	}
}

static inline void fuzz_check_no_echo(const char *err,
                                      const char *const *fixed,
                                      const char *extra, const uint8_t *data,
                                      size_t size, size_t min,
                                      const char *what)
{
	size_t elen = strlen(err), i, run = 0;
	bool *mask = calloc(elen + 1, sizeof(*mask));

	if (mask == NULL)
		fuzz_fail("out of memory");
	for (i = 0; fixed[i] != NULL; i++)
		fuzz_mask(err, mask, fixed[i]);
	if (extra != NULL)
		fuzz_mask(err, mask, extra);
	for (i = 0; i < elen; i++) {
		run = mask[i] ? 0 : run + 1;
		if (run >= min && memmem(data, size, err + i + 1 - min, min)
		    != NULL) {
			fuzz_fail("%s: error [%s] echoes input text [%.*s]", what,
			          err, (int)min, err + i + 1 - min);
		}
	}
	free(mask);
}

/* *s (a buffer of *cap + 1 bytes) with room for need. */
static inline void fuzz_grow(char **s, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	while (*cap < need)
		*cap *= 2;
	*s = realloc(*s, *cap + 1);
	if (*s == NULL)
		fuzz_fail("out of memory");
}

/* The fuzz_mime* targets' message: the input with 0x01 N C expanded to
 * (N + 1) * 8 times C, bare LFs made CRLF, and a final CRLF. */
static inline char *fuzz_mime_spool(const uint8_t *d, size_t size,
                                    size_t *len)
{
	size_t cap = size * 2 + 16, n = 0, i, k;
	char *s = malloc(cap + 1);

	if (s == NULL)
		fuzz_fail("out of memory");
	for (i = 0; i < size; i++) {
		size_t reps = 1;
		uint8_t c = d[i];

		if (c == 0x01 && i + 2 < size) {
			reps = ((size_t)d[i + 1] + 1) * 8;
			c = d[i + 2];
			i += 2;
		}
		for (k = 0; k < reps; k++) {
			fuzz_grow(&s, &cap, n + 3);
			if (c == '\n' && (n == 0 || s[n - 1] != '\r'))
				s[n++] = '\r';
			s[n++] = (char)c;
		}
	}
	fuzz_grow(&s, &cap, n + 3);
	if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n') {
		if (n > 0 && s[n - 1] == '\r') {
			s[n++] = '\n';
		} else {
			s[n++] = '\r';
			s[n++] = '\n';
		}
	}
	*len = n;
	return s;
}

#endif
