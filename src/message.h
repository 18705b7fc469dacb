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
	bool from_rewritten;    /* from-header replaced the From field */
	char old_from[ADDR_MAX_LEN + 1]; /* its first address before */
	char changed[HEADERS_SUMMARY_MAX]; /* the fields outbox changed or
	                           added: "From rewritten, To qualified, Date
	                           added"; "" for none */
	char *from_field;       /* the From field as sent, unfolded, without
	                           CRLF (malloc'd; NULL only on failure) */
};

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
