/*
 * mime_parts.h - the MIME structure of a message walked (RFC 2045, 2046)
 * and its 8-bit text parts re-encoded as quoted-printable, for a
 * smarthost without 8BITMIME. Used by mime.c (mime_encode_7bit); not for
 * other modules.
 *
 * What the walker understands:
 *  - Boundaries come from the Content-Type's boundary parameter (quoted
 *    or not; parameter names in any case; the value as it is). A
 *    boundary line is exactly "--B" or "--B--" followed by optional
 *    spaces or tabs; the CRLF before it belongs to it. Preamble and
 *    epilogue go as they are.
 *  - Multiparts nest up to MIME_PARTS_DEPTH deep, each with a boundary
 *    of its own (a nested one that reuses an enclosing boundary, or an
 *    enclosing boundary line before the nested one's closing line, is a
 *    broken structure). A part without Content-Type is text/plain, or
 *    message/rfc822 in multipart/digest.
 *  - message/rfc822 (7bit, 8bit, binary or none) is walked into: its
 *    body is a message, whose text parts are re-encoded too; the
 *    enclosing part's fields stay as they are (a Content-Transfer-
 *    Encoding of 8bit on a multipart or message part is left: it
 *    declares what may be inside, and 7-bit text is allowed there).
 *  - A text leaf in 7bit, 8bit, binary or without Content-Transfer-
 *    Encoding whose body holds a byte >= 0x80 is re-encoded: its
 *    Content-Transfer-Encoding field (folded lines included) is dropped
 *    and "Content-Transfer-Encoding: quoted-printable" ends its header
 *    section. Other leaves, and text parts without 8-bit bytes, go as
 *    they are.
 *  - A part whose header section holds a line that is neither a field
 *    ("Name:", no blank before the colon) nor a continuation is not a
 *    part to interpret: it goes as it is.
 *  - The empty line that ends a header section may be the line end that
 *    belongs to the next boundary line: the part then has an empty body.
 * A part's body is read twice (once to learn whether it holds 8-bit
 * bytes); memory is two 64 KB buffers and one header section.
 */
#ifndef OUTBOX_MIME_PARTS_H
#define OUTBOX_MIME_PARTS_H

#include "mime.h"
#include "util.h"

#define MIME_PARTS_DEPTH 16     /* multiparts inside multiparts */

/*
 * Walk the message in fd (from offset 0, its header section included)
 * and write it to o (flushed), re-encoded as described above. r: how is
 * MIME_QP when at least one part was re-encoded (size is o's total),
 * MIME_NONE otherwise (what was written to o is then meaningless); why
 * as mime.h says. Returns 0, or -1 with err when fd cannot be read or o
 * written.
 */
int mime_parts_encode(int fd, struct outbuf *o, struct mime_7bit *r,
                      char *err, size_t errlen);

#endif
