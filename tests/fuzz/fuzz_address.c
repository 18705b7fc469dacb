/*
 * fuzz_address.c - libFuzzer target for src/address.c.
 *
 * The input is an address-list header body (not NUL-terminated, as
 * addr_parse_list allows). Checks:
 *  - addr_parse_list: on success every address is at most ADDR_MAX_LEN
 *    bytes, non-empty, and re-parses (alone, with addr_parse_one and with
 *    addr_parse_list) to exactly itself; on error nothing is left in the
 *    list and the error text is NUL-terminated.
 *  - addr_parse_one on a NUL-terminated copy: the same re-parse rule
 *    ("" only for an input holding "<>").
 *  - addr_scan_list gives what addr_parse_list gives, and spans in order
 *    within the input: the mailbox s[start..end) and its addr-spec
 *    s[spec_start..spec_end) each parse alone to that address.
 */
#include "fuzz_common.h"

#include "address.h"

static void check_reparse(const char *a, const char *what)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[256];
	char *one = NULL;
	size_t n = strlen(a);

	if (n == 0)
		fuzz_fail("%s: empty address returned", what);
	if (n > ADDR_MAX_LEN)
		fuzz_fail("%s: address of %zu bytes (max %d)", what, n,
		          ADDR_MAX_LEN);
	if (addr_parse_one(a, &one, err, sizeof(err)) != 0)
		fuzz_fail("%s: [%s] does not re-parse with addr_parse_one: %s",
		          what, a, err);
	if (strcmp(one, a) != 0)
		fuzz_fail("%s: [%s] re-parses to [%s]", what, a, one);
	free(one);
	if (addr_parse_list(a, n, &l, err, sizeof(err)) != 0)
		fuzz_fail("%s: [%s] does not re-parse with addr_parse_list: %s",
		          what, a, err);
	if (l.count != 1 || strcmp(l.addrs[0], a) != 0)
		fuzz_fail("%s: [%s] re-parses as a list of %zu", what, a,
		          l.count);
	addr_list_free(&l);
}

/* s[from..to) alone, with addr_parse_one, must give want. */
static void check_piece(const uint8_t *d, size_t from, size_t to,
                        const char *want, const char *what)
{
	char *piece = malloc(to - from + 1), *one = NULL;
	char err[128];

	if (piece == NULL)
		fuzz_fail("out of memory");
	memcpy(piece, d + from, to - from);
	piece[to - from] = '\0';
	if (addr_parse_one(piece, &one, err, sizeof(err)) != 0 ||
	    strcmp(one, want) != 0)
		fuzz_fail("%s [%s] does not parse to [%s]: %s", what, piece, want,
		          one ? one : err);
	free(one);
	free(piece);
}

static void check_spans(const uint8_t *d, size_t size,
                        const struct addr_list *l)
{
	struct addr_list sl = { NULL, 0, 0 };
	struct addr_spans sp = { NULL, 0, 0 };
	char err[128];
	size_t i, prev = 0;
	int rc = addr_scan_list((const char *)d, size, &sl, &sp, err,
	                        sizeof(err));

	if ((rc == 0) != (l != NULL) || sl.count != sp.count ||
	    (l != NULL && sl.count != l->count))
		fuzz_fail("addr_scan_list and addr_parse_list disagree");
	for (i = 0; i < sp.count; i++) {
		const struct addr_span *s = &sp.v[i];

		if (strcmp(sl.addrs[i], l->addrs[i]) != 0)
			fuzz_fail("scan [%s] parse [%s]", sl.addrs[i], l->addrs[i]);
		if (!(prev <= s->start && s->start <= s->name_end &&
		      s->name_end <= s->spec_start &&
		      s->spec_start < s->local_end &&
		      s->local_end <= s->spec_end && s->spec_end <= s->end &&
		      s->end <= s->next && s->next <= size))
			fuzz_fail("span %zu out of order", i);
		if (s->has_domain != (s->local_end < s->spec_end))
			fuzz_fail("span %zu: has_domain %d", i, s->has_domain);
		check_piece(d, s->start, s->end, sl.addrs[i], "mailbox");
		check_piece(d, s->spec_start, s->spec_end, sl.addrs[i],
		            "addr-spec");
		prev = s->next;
	}
	addr_list_free(&sl);
	addr_spans_free(&sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr_list l = { NULL, 0, 0 };
	char err[128];
	char *copy, *one = NULL;
	size_t i;

	memset(err, 'x', sizeof(err));
	if (addr_parse_list((const char *)data, size, &l, err,
	                    sizeof(err)) == 0) {
		if (l.count > ADDR_MAX_COUNT)
			fuzz_fail("list: %zu addresses", l.count);
		for (i = 0; i < l.count; i++)
			check_reparse(l.addrs[i], "list");
		if (memchr(data, '\0', size) == NULL)
			check_spans(data, size, &l);
	} else {
		if (memchr(data, '\0', size) == NULL)
			check_spans(data, size, NULL);
		fuzz_check_err(err, sizeof(err), "addr_parse_list");
		if (l.count != 0)
			fuzz_fail("list: %zu entries left after an error", l.count);
	}
	addr_list_free(&l);

	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	memset(err, 'x', sizeof(err));
	if (addr_parse_one(copy, &one, err, sizeof(err)) == 0) {
		if (one == NULL)
			fuzz_fail("one: success without an address");
		if (one[0] == '\0') {
			if (strchr(copy, '<') == NULL || strchr(copy, '>') == NULL)
				fuzz_fail("one: \"\" from an input without <>");
		} else {
			check_reparse(one, "one");
		}
		free(one);
	} else {
		fuzz_check_err(err, sizeof(err), "addr_parse_one");
		if (one != NULL)
			fuzz_fail("one: error but *out set");
	}
	free(copy);
	return 0;
}
