/*
 * util.h - small helpers used by several modules.
 */
#ifndef OUTBOX_UTIL_H
#define OUTBOX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Copy src into dst (size dstsize), always NUL-terminating; truncates.
 * Returns true when the whole string fitted. */
bool str_copy(char *dst, size_t dstsize, const char *src);

/* Copy src[0..n) into dst (size dstsize, always NUL-terminated, cut at
 * a whole escape) with control characters (below 0x20, and 0x7f) written
 * as \r, \n, \t or \xHH: text from a server cannot start a line of its
 * own in stderr, the log or a DSN, nor reach a terminal raw. Returns the
 * length written. */
size_t str_escape_ctl(char *dst, size_t dstsize, const char *src, size_t n);

/* malloc'd copy of s[0..len) with a NUL appended; NULL when out of memory. */
char *str_ndup(const char *s, size_t len);

/* Case-insensitive ASCII comparison of the first n bytes / whole strings. */
bool str_ieq(const char *a, const char *b);
bool str_nieq(const char *a, const char *b, size_t n);

/* write(2) the whole buffer, retrying on EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int write_all(int fd, const void *buf, size_t len);

/* Close every file descriptor from 3 up except the n in keep. */
void close_fds_except(const int *keep, size_t n);

/*
 * The same, but sockets stay open too: for a process that goes on with
 * libcurl handles it inherited, whose internal socket pairs it cannot
 * name (closed under libcurl, their numbers would be closed again when
 * the handles are freed - by then another file's, a message's lock
 * perhaps). Sockets hold no locks, and every socket of the process is
 * outbox's own (close_inherited_fds at start).
 */
void close_fds_but_sockets(const int *keep, size_t n);

/* Close every descriptor above 2 the process was started with: outbox
 * uses none, and a detached queue run must not hold a caller's pipe. */
void close_inherited_fds(void);

/* An age for people: "45s", "12m", "5h", "3d" (the largest unit that
 * keeps two figures); negative counts as 0. */
void format_age(char *buf, size_t n, long long secs);

/* Parse a duration: "30", "30s", "15m", "1h", "5d" (whole numbers).
 * Stores seconds in *secs and returns 0; -1 when malformed or > max. */
int parse_duration(const char *s, long max, long *secs);

/* Parse a decimal integer in [min, max]. Returns 0, or -1 when malformed. */
int parse_long(const char *s, long min, long max, long *out);

/* Overwrite len bytes of p with zeros in a way the compiler keeps. */
void secure_zero(void *p, size_t len);

/* A buffered writer to a file descriptor; failures stick in .failed. */
#define OUTBUF_SIZE (64 * 1024)
struct outbuf {
	int fd;
	size_t len;
	off_t total;            /* bytes put so far */
	bool failed;            /* a write failed */
	int error;              /* its errno */
	unsigned char buf[OUTBUF_SIZE]; /* last: message.c clears all before it */
};

/* Is e an errno that means "no room now" (ENOSPC, EDQUOT)? Such a write
 * failure is temporary, as Postfix's sendmail treats it. */
bool errno_disk_full(int e);

/* Append n bytes (written out whenever the buffer fills). */
void outbuf_put(struct outbuf *o, const void *p, size_t n);
/* Write out what is buffered. */
void outbuf_flush(struct outbuf *o);

/* The system's CA bundle file (CA_BUNDLE, set at build time) when it is
 * readable, else NULL (then libcurl's own default applies). One file is
 * parsed much faster than libcurl's scan of the certificate directory. */
const char *ca_bundle(void);

/* With privileges for another user (strict: the set-group-ID binary run
 * by someone else), may a file that steers delivery or holds a secret be
 * changed by anyone but root? Always false when not strict. */
bool file_untrusted_owner(const struct stat *st, bool strict);

/* Can users other than the owner read st (or write it)? The group of a
 * set-group-ID install (the effective group, not the real one) may. */
bool file_readable_by_others(const struct stat *st);

/* Create an anonymous (already unlinked) read/write file in dir (or in
 * $TMPDIR, or /tmp, when dir is NULL). Returns the fd, or -1 with errno. */
int tmpfile_anon(const char *dir);

#endif
