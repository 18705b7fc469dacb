/*
 * message.h - reading the message a client pipes in.
 *
 * The message is read from a file descriptor and written, ready to send,
 * to another (the spool file): every line ends in CRLF, a lone "." ends the
 * input unless ignore_dots, Bcc and Resent-Bcc fields are removed,
 * address fields are rewritten as the header policy says (headers.h:
 * bare names qualified, From set to the account), and missing From, Date
 * and Message-ID fields are added. Dots are NOT
 * stuffed: libcurl does that on the wire. The header section is held in
 * memory (bounded by MESSAGE_HEADER_MAX); the body is streamed through a
 * fixed buffer, so a message of any size costs the same memory.
 */
#ifndef OUTBOX_MESSAGE_H
#define OUTBOX_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "address.h"
#include "headers.h"
#include "status.h"

#define MESSAGE_HEADER_MAX (1024 * 1024)

struct message_opts {
	bool ignore_dots;       /* -i: a lone "." is an ordinary line */
	bool extract_rcpts;     /* -t: collect To/Cc/Bcc (or Resent-*) */
	const char *sender;     /* envelope sender for a generated From ("" = <>) */
	const char *fullname;   /* display name for a generated From, or NULL */
	const char *domain;     /* for a generated Message-ID and From of <> */
	const struct headers_policy *headers; /* how address fields are
	                           rewritten, or NULL: never (-t takes the
	                           recipients from the fields as written) */
};

struct message {
	struct addr_list rcpts; /* recipients found by -t, in header order */
	off_t size;             /* bytes written to the spool */
	bool eightbit;          /* a byte >= 0x80 was seen */
	bool added_from;        /* outbox generated the From field */
	bool added_date;
	bool added_msgid;
	size_t longest_line;    /* longest line written, without CRLF */
	char content_type[256]; /* the Content-Type field's value, unfolded
	                           ("" when none; cut at 255 octets) */
	char transfer_encoding[64]; /* Content-Transfer-Encoding's, the same */
	bool from_rewritten;    /* from-header replaced the From field */
	char old_from[ADDR_MAX_LEN + 1]; /* its first address before */
	char changed[HEADERS_SUMMARY_MAX]; /* the fields outbox changed or
	                           added: "From rewritten, To qualified, Date
	                           added"; "" for none */
	char *from_field;       /* the From field as sent, unfolded, without
	                           CRLF (malloc'd; NULL only on failure) */
};

/* Where the parser's output goes (the spool file's writer), n > 0. */
typedef void (*message_sink)(void *arg, const void *p, size_t n);
/* Where message_read_from's input comes from: up to n bytes into buf;
 * the count, 0 at the end, -1 on an error (errno set). */
typedef ssize_t (*message_source)(void *arg, void *buf, size_t n);

/*
 * The push parser: the message is fed in pieces of any size (the same
 * output whatever the cut), the result goes to sink as it is made. No
 * I/O of its own; the header section is held (bounded), the body streams.
 * message_parser_new: m is zeroed; NULL when out of memory.
 * message_parser_feed: OB_OK, or the first error (as message_read's,
 * the reason from message_parser_error); after the lone dot (unless
 * ignore_dots) message_parser_done is true and more input is ignored.
 * message_parser_end: the input is over; finishes the output and fills
 * m's size, eightbit and longest_line. Free with message_parser_free.
 */
struct message_parser;
struct message_parser *message_parser_new(const struct message_opts *o,
                                          struct message *m,
                                          message_sink sink, void *arg);
enum ob_status message_parser_feed(struct message_parser *p,
                                   const void *buf, size_t len);
bool message_parser_done(const struct message_parser *p);
enum ob_status message_parser_end(struct message_parser *p);
const char *message_parser_error(const struct message_parser *p);
void message_parser_free(struct message_parser *p);

/*
 * The parser fed from pull until it returns 0 (or the lone dot), its
 * output written to fd out through a buffer; results as message_read.
 */
enum ob_status message_read_from(message_source pull, void *arg, int out,
                                 const struct message_opts *o,
                                 struct message *m, char *err,
                                 size_t errlen);

/*
 * Read the message from fd `in` (until EOF or a lone dot) and write the
 * result to fd `out`, from its current offset. m is zeroed first.
 * Returns OB_OK; OB_DATAERR for a message that cannot be taken (header
 * section over MESSAGE_HEADER_MAX, unparsable address field with -t, bad
 * -F name); OB_IOERR when reading fails; OB_CANTCREAT when writing fails;
 * OB_SOFTWARE when out of memory. The reason is in err (one line).
 * Free m with message_free in every case.
 */
enum ob_status message_read(int in, int out, const struct message_opts *o,
                            struct message *m, char *err, size_t errlen);

/* Free what m owns. NULL is fine. */
void message_free(struct message *m);

#endif
