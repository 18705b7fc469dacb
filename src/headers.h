/*
 * headers.h - rewriting the address header fields of a message (pure: no
 * I/O, no global state; fuzzed by tests/fuzz/fuzz_headers.c).
 *
 * Two jobs, over a header section already split into fields:
 *  - qualification: a bare local name ("root") in an address field gets
 *    "@domain" inserted right after its local part. Display names,
 *    comments, groups, quoting and folding stay byte for byte.
 *  - from-header: the From field (and, by the same rule, Sender) is
 *    replaced by the account's address, keeping the display name:
 *    "root (Cron Daemon)" becomes "Cron Daemon <cron@example.com>".
 * A field that needs no change is left alone (the caller writes its
 * original bytes). In a changed field, lines that would be longer than
 * HEADERS_LINE_MAX octets are folded before a blank, or before a mailbox
 * (CRLF SP inserted), which unfolding undoes exactly. Fields parsed as
 * address lists: see HEADERS_FIELDS in headers.c (Bcc and Resent-Bcc are
 * not among them: message.c removes them).
 */
#ifndef OUTBOX_HEADERS_H
#define OUTBOX_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

#define HEADERS_LINE_MAX 998            /* RFC 5322 2.1.1, without CRLF */
#define HEADERS_FIELD_MAX (4 * 1024 * 1024) /* a field that would grow
                                           past this is left as it is */
#define HEADERS_SUMMARY_MAX 256

enum headers_from {
	HEADERS_FROM_KEEP = 0,  /* From and Sender only qualified */
	HEADERS_FROM_LOCAL,     /* replaced when every mailbox is local */
	HEADERS_FROM_ALWAYS     /* replaced unless already the account */
};

struct headers_policy {
	const char *domain;     /* qualify bare names with it; NULL: don't */
	const char *from;       /* the account's addr-spec (qualified), or
	                           NULL: from-header does nothing */
	enum headers_from from_mode;
	/* Is this addr-spec (with '@') local to the host? NULL: only bare
	 * names are local. */
	bool (*is_local)(const char *addr);
};

struct headers_field {
	const char *text;       /* "Name: value", CRLF line ends, the last
	                           one included */
	size_t len;
};

struct headers_out {
	char **text;            /* n entries: field i's replacement (malloc'd,
	                           CRLF-terminated), or NULL: unchanged */
	size_t *len;
	char *added;            /* a new field (Reply-To) to write right after
	                           field added_after, or NULL */
	size_t added_len, added_after;
	bool from_rewritten;    /* from-header replaced a From field */
	char old_from[ADDR_MAX_LEN + 1]; /* its first address before ("" when
	                           it had none or did not parse) */
	char summary[HEADERS_SUMMARY_MAX]; /* "From rewritten, Reply-To added,
	                           To qualified"; "" when nothing changed */
};

/*
 * Work out the changes p asks for in the n fields f. out is zeroed
 * first. With p->from set and from_mode not KEEP, the first From field
 * whose address is not the account's already (LOCAL: and whose every
 * mailbox is local, or that has none) becomes "From: NAME <from>", NAME
 * being the first mailbox's display name as written (folds undone) or,
 * for "addr (Comment)", the comment as a phrase; a name-addr's trailing
 * comment is kept. ALWAYS: when that From held a non-local address and
 * the message has no Reply-To, a Reply-To with the From's (qualified)
 * mailboxes is added after it, so replies still reach the author. Sender
 * fields follow the same rule. A field that does not parse is qualified
 * not at all, and replaced only by ALWAYS.
 * Returns 0, or -1 when out of memory (out is then empty).
 * Free with headers_out_free(out, n) either way.
 */
int headers_rewrite(const struct headers_field *f, size_t n,
                    const struct headers_policy *p, struct headers_out *out);

void headers_out_free(struct headers_out *out, size_t n);

/*
 * Would from-header put the account's address in a From field that
 * outbox generates for sender addr (a qualified addr-spec; "" for the
 * null sender, whose generated From is outbox's own MAILER-DAEMON and
 * counts as local)? False for p NULL.
 */
bool headers_from_applies(const struct headers_policy *p, const char *addr);

#endif
