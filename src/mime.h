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

/*
 * For a server without 8BITMIME: write the message in fd (from offset 0)
 * to out with its body re-encoded as quoted-printable, when it is a
 * single text part in 7bit, 8bit or binary (or has no MIME structure;
 * it then gets MIME-Version and a Content-Type of text/plain in utf-8).
 * *how: MIME_QP when done (*size is out's size), MIME_NONE when the
 * message is not of that kind (nothing written). Returns 0, or -1 with
 * err when reading or writing fails.
 */
int mime_encode_7bit(int fd, int out, off_t *size, enum mime_fix *how,
                     char *err, size_t errlen);

/* Has the message in fd (read from offset 0) a byte >= 0x80? -1 when
 * it cannot be read. */
int mime_has_8bit(int fd);

#endif
