/*
 * address.h - RFC 5322 address parsing (pure: no I/O, no global state).
 *
 * Accepts what real mail headers contain: display names (quoted or not,
 * obsolete phrases with dots, 8-bit/UTF-8 bytes), quoted local parts,
 * comments (nested, with quoted-pairs), groups ("undisclosed-recipients:;",
 * "list: a@b, c@d;"), angle addresses, obsolete routes (<@x,@y:u@d>), empty
 * list elements, and folding whitespace (CRLF or LF followed by WSP).
 * A bare local name without '@' ("root") is accepted as a mailbox, as
 * sendmail does; the envelope module qualifies it later.
 */
#ifndef OUTBOX_ADDRESS_H
#define OUTBOX_ADDRESS_H

#include <stddef.h>

/* Longest addr-spec returned (RFC 5321 path limit is 256; be generous). */
#define ADDR_MAX_LEN 998
/* Most mailboxes one list may yield; more is an error, never a crash. */
#define ADDR_MAX_COUNT 10000

struct addr_list {
	char **addrs;   /* addr-specs in input order, each malloc'd, NUL-terminated */
	size_t count;
	size_t cap;
};

/*
 * Parse the body of an address-list header field (To, Cc, Bcc, Resent-*),
 * s[0..len) (need not be NUL-terminated; may contain folding).
 * Every mailbox found is appended to out as a bare addr-spec in canonical
 * form: CFWS removed, local part as a dot-atom when it is one, otherwise as
 * a minimal quoted-string; domain as written (dot-atom or [literal]).
 * Display names, group names, comments and routes are dropped.
 * An empty list (or only empty groups) appends nothing and succeeds.
 * Returns 0 on success; -1 on a syntax error, an over-long address, too
 * many addresses or out of memory, with a one-line reason in err (never
 * more than errlen bytes, always NUL-terminated). On error, entries already
 * appended by this call are removed again; out stays valid either way.
 * out must be zero-initialised before first use; free with addr_list_free.
 */
int addr_parse_list(const char *s, size_t len, struct addr_list *out,
                    char *err, size_t errlen);

/*
 * Where one mailbox of a list is, as byte offsets into the input given to
 * addr_scan_list (display name, comments and quoting exactly as written).
 */
struct addr_span {
	size_t start, end;      /* the mailbox: display name (if any) through
	                           '>', or the bare addr-spec; without the CFWS
	                           around it */
	size_t name_end;        /* [start, name_end): display name and the
	                           comments before '<' (no trailing blanks);
	                           name_end == start when there is none */
	size_t spec_start, spec_end; /* the addr-spec (inside <> if angled;
	                           without a route; CFWS inside kept) */
	size_t local_end;       /* end of the local part's last token: where
	                           "@domain" goes when has_domain is 0 */
	size_t next;            /* the next token (',', ';') or the input's
	                           end: [end, next) is the trailing CFWS */
	int has_domain;
};

struct addr_spans {
	struct addr_span *v;    /* v[i] describes out->addrs[i] */
	size_t count, cap;
};

/*
 * addr_parse_list, and also where each mailbox is: spans->v[i] for
 * out->addrs[i]. out and spans must be empty (zeroed or count 0). Same
 * returns and errors as addr_parse_list; on error both are left empty.
 * Free spans with addr_spans_free (NULL is fine).
 */
int addr_scan_list(const char *s, size_t len, struct addr_list *out,
                   struct addr_spans *spans, char *err, size_t errlen);

void addr_spans_free(struct addr_spans *spans);

/*
 * Parse one address as given on a command line (-f, recipient arguments):
 * "user@example.com", "<user@example.com>", "Name <user@example.com>",
 * a bare "user", or the null path "<>" (which yields "").
 * On success returns 0 and *out holds a malloc'd addr-spec (caller frees).
 * On error returns -1 with a reason in err.
 */
int addr_parse_one(const char *s, char **out, char *err, size_t errlen);

/* Append a copy of addr to l. Returns 0, or -1 when out of memory or full. */
int addr_list_add(struct addr_list *l, const char *addr);

/* Drop the entries past keep (to undo a failed parse). */
void addr_list_truncate(struct addr_list *l, size_t keep);

/* Free every entry and the array; l is zeroed. addr_list_free(NULL) is fine. */
void addr_list_free(struct addr_list *l);

#endif
