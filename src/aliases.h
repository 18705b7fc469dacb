/*
 * aliases.h - the aliases file: where local recipients (root, www-data,
 * cron users...) really get their mail.
 *
 * Format: "name: address, address" per entry; '#' comment lines; a line
 * starting with a blank continues the previous entry; "*: address" is the
 * catch-all for local names without an entry. Targets may be local names
 * themselves (expanded again) or full addresses. Targets outbox cannot
 * honour on a relay-only host ("|command", "/file", ":include:") are
 * skipped and counted.
 */
#ifndef OUTBOX_ALIASES_H
#define OUTBOX_ALIASES_H

#include <stddef.h>

#include "address.h"

#define ALIASES_MAX_BYTES (4 * 1024 * 1024)
#define ALIASES_MAX_DEPTH 16

struct aliases;

/*
 * Parse aliases text (text[0..len), need not be NUL-terminated). Pure.
 * Returns 0 and *out (free with aliases_free), or -1 with "line N: reason"
 * in err (never repeating the line's text).
 */
int aliases_parse(const char *text, size_t len, struct aliases **out,
                  char *err, size_t errlen);

/* Read and parse the file at path (at most ALIASES_MAX_BYTES). 0 or -1. */
int aliases_load(const char *path, struct aliases **out,
                 char *err, size_t errlen);

/*
 * Expand a local name (no '@') through the aliases, recursively, with
 * loop detection: the final addresses are appended to out (full addresses
 * as they are, local names that map to nothing further as local names).
 * A name without an entry goes to the catch-all when there is one, else
 * stays as it is. Returns 0, or -1 (a loop, too deep, an entry with no
 * usable target, or out of memory) with a reason in err.
 */
int aliases_expand(const struct aliases *a, const char *name,
                   struct addr_list *out, char *err, size_t errlen);

/* How many targets were skipped as unusable (pipes, files, includes). */
size_t aliases_skipped(const struct aliases *a);

void aliases_free(struct aliases *a);

#endif
