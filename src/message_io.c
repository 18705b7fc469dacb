/*
 * message_io.c - the message parser fed from a file or a callback, its
 * output written to the spool file (see message.h).
 */
#define _GNU_SOURCE
#include "message.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct spool_sink {
	struct outbuf out;      /* last: its buffer needs no clearing */
};

static void to_spool(void *arg, const void *p, size_t n)
{
	outbuf_put(&((struct spool_sink *)arg)->out, p, n);
}

static enum ob_status spool_result(struct spool_sink *k, enum ob_status rc,
                                   char *err, size_t errlen)
{
	outbuf_flush(&k->out);
	if (rc == OB_OK && k->out.failed && errno_disk_full(k->out.error)) {
		snprintf(err, errlen, "cannot write the spool file: %s "
		         "(nothing was sent or queued; try again when there "
		         "is room)", strerror(k->out.error));
		return OB_TEMPFAIL;
	}
	if (rc == OB_OK && k->out.failed) {
		snprintf(err, errlen, "cannot write the spool file: %s",
		         strerror(k->out.error));
		return OB_CANTCREAT;
	}
	return rc;
}

enum ob_status message_read_from(message_source pull, void *arg, int out,
                                 const struct message_opts *o,
                                 struct message *m, char *err,
                                 size_t errlen)
{
	struct spool_sink *k = malloc(sizeof(*k));
	struct message_parser *p;
	char buf[16384];
	enum ob_status rc;
	bool read_failed = false;
	ssize_t n;

	memset(m, 0, sizeof(*m));
	if (k != NULL)
		memset(k, 0, offsetof(struct outbuf, buf));
	p = k != NULL ? message_parser_new(o, m, to_spool, k) : NULL;
	if (p == NULL) {
		free(k);
		snprintf(err, errlen, "out of memory");
		return OB_SOFTWARE;
	}
	k->out.fd = out;
	rc = message_parser_feed(p, "", 0);     /* a bad -F name */
	while (rc == OB_OK && !message_parser_done(p)) {
		n = pull(arg, buf, sizeof(buf));
		if (n < 0) {
			int e = errno;

			message_parser_end(p);
			snprintf(err, errlen, "cannot read the message: %s",
			         strerror(e));
			rc = OB_IOERR;
			read_failed = true;
			break;
		}
		if (n == 0)
			break;
		rc = message_parser_feed(p, buf, (size_t)n);
	}
	if (rc == OB_OK)
		rc = message_parser_end(p);
	if (rc != OB_OK && !read_failed)
		snprintf(err, errlen, "%s", message_parser_error(p));
	rc = spool_result(k, rc, err, errlen);
	message_parser_free(p);
	free(k);
	return rc;
}

static ssize_t pull_fd(void *arg, void *buf, size_t n)
{
	ssize_t r;

	do {
		r = read(*(int *)arg, buf, n);
	} while (r < 0 && errno == EINTR);
	return r;
}

enum ob_status message_read(int in, int out, const struct message_opts *o,
                            struct message *m, char *err, size_t errlen)
{
	return message_read_from(pull_fd, &in, out, o, m, err, errlen);
}

