/*
 * fuzz_aliases.c - libFuzzer target for src/aliases.c.
 *
 * The input is an aliases file, passed to aliases_parse as it is (not
 * NUL-terminated, as the contract allows). On success a few names are
 * expanded: "root", "postmaster", a name without an entry, and the first
 * and last names the input defines. Checks:
 *  - parse errors are "line N: reason", NUL-terminated, and never echo the
 *    input (runs of 12 bytes, once the fixed texts of aliases.c and
 *    address.c are masked; see fuzz_check_no_echo);
 *  - aliases_expand terminates (libFuzzer's -timeout catches loops and
 *    exponential fan-out), returns at most ADDR_MAX_COUNT non-empty
 *    addresses, and leaves a NUL-terminated, non-empty reason on error.
 */
#include "fuzz_common.h"

#include "aliases.h"
#include "aliases_strings.h"

#define NAME_MAX_FUZZ 64

/* Copy the name of the entry starting at data[i] (up to ':'), if any. */
static bool entry_name(const uint8_t *data, size_t size, size_t i,
                       char *name)
{
	size_t n = 0;

	if (i >= size || data[i] == ' ' || data[i] == '\t' || data[i] == '#')
		return false;
	while (i + n < size && data[i + n] != ':' && data[i + n] != '\n' &&
	       data[i + n] != '\0' && n < NAME_MAX_FUZZ)
		n++;
	if (i + n >= size || data[i + n] != ':')
		return false;
	while (n > 0 && (data[i + n - 1] == ' ' || data[i + n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	memcpy(name, data + i, n);
	name[n] = '\0';
	return true;
}

static void expand(const struct aliases *a, const char *name)
{
	struct addr_list out = { NULL, 0, 0 };
	char err[256];
	size_t i;

	memset(err, 'x', sizeof(err));
	if (aliases_expand(a, name, &out, err, sizeof(err)) == 0) {
		if (out.count > ADDR_MAX_COUNT)
			fuzz_fail("expand %s: %zu addresses", name, out.count);
		for (i = 0; i < out.count; i++) {
			if (out.addrs[i] == NULL || out.addrs[i][0] == '\0')
				fuzz_fail("expand %s: empty address %zu", name, i);
		}
	} else {
		fuzz_check_err(err, sizeof(err), "aliases_expand");
		if (err[0] == '\0')
			fuzz_fail("expand %s: error without a reason", name);
	}
	addr_list_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aliases *a = NULL;
	char err[512];
	char first[NAME_MAX_FUZZ + 1] = "", last[NAME_MAX_FUZZ + 1] = "";
	const char *why;
	size_t i;

	memset(err, 'x', sizeof(err));
	if (aliases_parse((const char *)data, size, &a, err, sizeof(err)) != 0) {
		fuzz_check_err(err, sizeof(err), "aliases_parse");
		if (a != NULL)
			fuzz_fail("aliases_parse: error but *out set");
		if (strncmp(err, "line ", 5) != 0 || err[5] < '1' || err[5] > '9')
			fuzz_fail("aliases_parse: error [%s] without a line number",
			          err);
		/* the reason after "line N: " */
		why = err + 5;
		while (*why >= '0' && *why <= '9')
			why++;
		if (why[0] != ':' || why[1] != ' ')
			fuzz_fail("aliases_parse: error [%s] is not \"line N: "
			          "reason\"", err);
		fuzz_check_no_echo(why + 2, aliases_strings, NULL, data, size, 12,
		                   "aliases_parse");
		return 0;
	}
	if (a == NULL)
		fuzz_fail("aliases_parse: success without a table");
	for (i = 0; i < size; i++) {
		if (i == 0 || data[i - 1] == '\n') {
			char *slot = first[0] == '\0' ? first : last;

			entry_name(data, size, i, slot);
		}
	}
	expand(a, "root");
	expand(a, "postmaster");
	expand(a, "no-such-user-fuzz");
	if (first[0] != '\0')
		expand(a, first);
	if (last[0] != '\0')
		expand(a, last);
	(void)aliases_skipped(a);
	aliases_free(a);
	return 0;
}
