/*
 * mime.h - repairing messages that smarthosts refuse: lines longer than
 * the 998 octets SMTP allows (RFC 5321 4.5.3.1.6), common in cron and
 * log output.
 *
 * A message without MIME structure, or a single text part in 7bit, 8bit
 * or binary, is re-encoded as quoted-printable: the reader sees exactly
 * the original text. Anything else (multipart, base64...) has its long
 * lines broken by inserting CRLF SPACE, as Postfix does, which MIME
 * decoders tolerate best.
 *
 * And for a smarthost without 8BITMIME: 8-bit text, in a single part or
 * in the text parts of a multipart structure, re-encoded as
 * quoted-printable (mime_encode_7bit).
 */
#ifndef OUTBOX_MIME_H
#define OUTBOX_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MIME_LINE_MAX 998

enum mime_fix { MIME_NONE = 0, MIME_QP, MIME_BROKEN };

/*
 * Rewrite the spooled message in fd (size bytes of CRLF lines, from
 * offset 0) so that no line exceeds MIME_LINE_MAX octets. fd is rewritten
 * in place and *size updated; *how says what was done. eightbit: the
 * body has 8-bit bytes (a missing Content-Type then says utf-8). Returns
 * 0, or -1 with a reason in err (and errno: ENOSPC when the disk is
 * full) when reading or writing fails.
 */
int mime_fix_long_lines(int fd, off_t *size, bool eightbit,
                        enum mime_fix *how, char *err, size_t errlen);

/* What mime_encode_7bit did. */
struct mime_7bit {
	enum mime_fix how;      /* MIME_QP: out holds the message to send
	                           instead; MIME_NONE: it goes as it is */
	off_t size;             /* out's size (MIME_QP) */
	unsigned parts;         /* text parts re-encoded (0: the body of a
	                           single-part message) */
	char why[256];          /* MIME_NONE: why nothing was re-encoded;
	                           MIME_QP: empty, or why 8-bit bytes remain */
};

/*
 * For a server without 8BITMIME: write the message in fd (from offset 0)
 * to out with its 8-bit text re-encoded as quoted-printable:
 *  - a single text part in 7bit, 8bit or binary (or no MIME structure at
 *    all; it then gets MIME-Version and a Content-Type of text/plain in
 *    utf-8) has its body re-encoded;
 *  - otherwise the MIME structure is walked (RFC 2045/2046, see
 *    mime_parts.h): each text leaf part in 7bit, 8bit, binary or
 *    without Content-Transfer-Encoding that holds 8-bit bytes is
 *    re-encoded and its Content-Transfer-Encoding replaced (added when
 *    absent); every other byte goes as it is. Parts that cannot be
 *    re-encoded (an 8-bit part of another type, 8-bit bytes in a part's
 *    header fields or in a preamble) keep their bytes and r->why says
 *    so; a structure that cannot be followed (a missing closing
 *    boundary, multiparts nested deeper than MIME_PARTS_DEPTH, a
 *    multipart without a boundary) makes the whole message go as it is.
 * Decoding each part of out gives back the original bytes; out is CRLF
 * where the input is, and its re-encoded lines are at most 76 octets.
 * 8-bit bytes in the message's own header fields are left alone (that is
 * SMTPUTF8's matter). Memory is bounded (the message is streamed; one
 * header section of at most about 1 MB is held). On MIME_NONE out's
 * content is meaningless. Returns 0 (r filled), or -1 with err when
 * reading or writing fails.
 */
int mime_encode_7bit(int fd, int out, struct mime_7bit *r, char *err,
                     size_t errlen);

/* Has the message in fd (read from offset 0) a byte >= 0x80? -1 when
 * it cannot be read. */
int mime_has_8bit(int fd);

#endif
