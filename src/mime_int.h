/*
 * mime_int.h - what mime.c shares with mime_parts.c: the streamed
 * quoted-printable encoder and header field look-up. Not for other
 * modules.
 */
#ifndef OUTBOX_MIME_INT_H
#define OUTBOX_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Quoted-printable encoder state: { o, 0, -1 } to start. Lines of at
 * most 76 octets; a line that a soft break starts with '-' has it
 * escaped (=2D), so no encoded line can look like a MIME boundary. */
struct mime_qp {
	struct outbuf *o;
	size_t col;             /* octets on the current output line */
	int held;               /* a space/tab or CR waiting for the next byte */
};

/* Encode one octet (CRLF in the input is a hard line break). */
void mime_qp_byte(struct mime_qp *q, unsigned char c);

/* Put out what is held (escaped) at the end of the text. */
void mime_qp_end(struct mime_qp *q);

/* Value of field name in hdr[0..n) (first occurrence, folded lines
 * included, leading blanks skipped), or NULL; *len is its length up to
 * the end of the field (its CRLF included). */
const char *mime_field(const char *hdr, size_t n, const char *name,
                       size_t *len);

#endif
