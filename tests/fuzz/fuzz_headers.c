/*
 * fuzz_headers.c - libFuzzer target for src/headers.c (headers_rewrite).
 *
 * The first input byte selects the policy: bits 0-1 from-header (0 keep,
 * 1 local, 2 always, 3 keep with no account), bit 2 qualification off.
 * The rest is a header section: lines end at LF (a CR before it is
 * dropped, CRLF is put back), a line starting with a blank continues the
 * field before it. Checks:
 *  - every replacement (and an added field) is well formed: CRLF line
 *    ends only, a name and a colon, every continuation line starts with
 *    a blank and holds something else too;
 *  - no line of it is over 998 octets when no input line is over 900;
 *  - a qualified field parses to the original's addresses with
 *    "@example.com" after the bare ones; a From or Sender given the
 *    account parses to just the account; an added Reply-To to the From's
 *    (qualified) addresses;
 *  - rewriting the result again changes nothing (idempotent).
 */
#include "fuzz_common.h"

#include "address.h"
#include "headers.h"

#define MAXFIELDS 256
#define ACCOUNT "cron@example.com"

static bool fuzz_local(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at == NULL || strcasecmp(at + 1, "localhost") == 0;
}

static void policy(uint8_t sel, struct headers_policy *p)
{
	static const enum headers_from MODES[] = {
		HEADERS_FROM_KEEP, HEADERS_FROM_LOCAL, HEADERS_FROM_ALWAYS,
		HEADERS_FROM_LOCAL
	};

	memset(p, 0, sizeof(*p));
	p->domain = (sel & 4) ? NULL : "example.com";
	p->from = (sel & 3) == 3 ? NULL : ACCOUNT;
	p->from_mode = MODES[sel & 3];
	p->is_local = fuzz_local;
}

/* The input as CRLF lines (malloc'd); *longest: its longest line. */
static char *to_crlf(const uint8_t *d, size_t n, size_t *len, size_t *longest)
{
	char *o = malloc(2 * n + 3);
	size_t i, k = 0, line = 0;

	if (o == NULL)
		fuzz_fail("out of memory");
	*longest = 0;
	for (i = 0; i < n; i++) {
		if (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n')
			continue;
		if (d[i] == '\n' || d[i] == '\r') {
			memcpy(o + k, "\r\n", 2);
			k += 2;
			line = 0;
			continue;
		}
		o[k++] = (char)d[i];
		if (++line > *longest)
			*longest = line;
	}
	if (k == 0 || o[k - 1] != '\n') {
		memcpy(o + k, "\r\n", 2);
		k += 2;
	}
	*len = k;
	return o;
}

static size_t split(const char *s, size_t len, struct headers_field *f)
{
	size_t n = 0, i = 0;

	while (i < len && n < MAXFIELDS) {
		const char *eol = memmem(s + i, len - i, "\r\n", 2);
		size_t end = (size_t)(eol - s) + 2;

		if ((s[i] == ' ' || s[i] == '\t') && n > 0) {
			f[n - 1].len += end - i;
		} else {
			f[n].text = s + i;
			f[n].len = end - i;
			n++;
		}
		i = end;
	}
	return n;
}

/* Does a line of only blanks follow a line break in t (obsolete syntax,
 * kept from the input)? */
static bool blank_line(const char *t, size_t len)
{
	size_t i, k;

	for (i = 0; i + 1 < len; i++) {
		if (t[i] != '\n')
			continue;
		for (k = i + 1; k < len && (t[k] == ' ' || t[k] == '\t'); k++)
			;
		if (k > i + 1 && k < len && t[k] == '\r')
			return true;
	}
	return false;
}

static void check_form(const char *t, size_t len, bool short_input,
                       bool blank_ok)
{
	size_t i, line = 0;
	bool cont = false, text = false;

	if (len < 3 || t[len - 2] != '\r' || t[len - 1] != '\n')
		fuzz_fail("replacement does not end with CRLF");
	if (memchr(t, ':', len) == NULL || t[0] == ' ' || t[0] == '\t')
		fuzz_fail("replacement is not a field: [%.*s]", (int)len, t);
	for (i = 0; i < len; i++) {
		if (t[i] == '\r' && (i + 1 >= len || t[i + 1] != '\n'))
			fuzz_fail("bare CR in a replacement");
		if (t[i] == '\n' && (i == 0 || t[i - 1] != '\r'))
			fuzz_fail("bare LF in a replacement");
		if (t[i] == '\r')
			continue;
		if (t[i] == '\n') {
			if (cont && !text && !blank_ok)
				fuzz_fail("a blank continuation line");
			if (i + 1 < len && t[i + 1] != ' ' && t[i + 1] != '\t')
				fuzz_fail("a line break not followed by a blank");
			cont = true;
			text = false;
			line = 0;
			continue;
		}
		if (t[i] != ' ' && t[i] != '\t')
			text = true;
		if (++line > HEADERS_LINE_MAX && short_input)
			fuzz_fail("a line of %zu octets from short input", line);
	}
}

/* The value's addresses (after the first colon). -1 when it does not
 * parse. */
static int addrs_of(const char *t, size_t len, struct addr_list *l)
{
	const char *colon = memchr(t, ':', len);
	char err[128];

	memset(l, 0, sizeof(*l));
	return addr_parse_list(colon + 1, len - (size_t)(colon + 1 - t), l,
	                       err, sizeof(err));
}

/* Has the canonical addr-spec a domain? ("\"a@b\"" has none.) */
static bool has_domain(const char *a)
{
	size_t i;

	if (a[0] != '"')
		return strchr(a, '@') != NULL;
	for (i = 1; a[i] != '\0' && a[i] != '"'; i++) {
		if (a[i] == '\\' && a[i + 1] != '\0')
			i++;
	}
	return a[i] == '"' && a[i + 1] == '@';
}

/* want: orig's addresses, bare ones with "@example.com" (dom set). */
static void check_same(const struct addr_list *orig, const char *t,
                       size_t len, const char *dom)
{
	struct addr_list got;
	char want[ADDR_MAX_LEN + 64];
	size_t i;

	if (addrs_of(t, len, &got) != 0)
		fuzz_fail("a rewritten field does not parse: [%.*s]", (int)len, t);
	if (got.count != orig->count)
		fuzz_fail("%zu addresses became %zu", orig->count, got.count);
	for (i = 0; i < got.count; i++) {
		const char *a = orig->addrs[i];

		snprintf(want, sizeof(want), "%s%s%s", a,
		         has_domain(a) || dom == NULL ? "" : "@",
		         has_domain(a) || dom == NULL ? "" : dom);
		if (strcmp(got.addrs[i], want) != 0)
			fuzz_fail("[%s] became [%s]", want, got.addrs[i]);
	}
	addr_list_free(&got);
}

static bool is_name(const struct headers_field *f, const char *name)
{
	size_t n = strlen(name), k = n;

	if (f->len <= n || strncasecmp(f->text, name, n) != 0)
		return false;
	while (k < f->len && (f->text[k] == ' ' || f->text[k] == '\t'))
		k++;
	return k < f->len && f->text[k] == ':';
}

/*
 * A From or Sender that from-header may change: the account alone, or
 * qualified. Any other field: qualified.
 */
static void check_field(const struct headers_field *f, const char *t,
                        size_t len, const struct headers_policy *p)
{
	struct addr_list orig, got;
	bool account = p->from != NULL && p->from_mode != HEADERS_FROM_KEEP &&
	               (is_name(f, "From") || is_name(f, "Sender"));

	if (account && addrs_of(t, len, &got) == 0 && got.count == 1 &&
	    strcmp(got.addrs[0], ACCOUNT) == 0) {
		addr_list_free(&got);
		return;
	}
	if (account)
		addr_list_free(&got);
	if (addrs_of(f->text, f->len, &orig) != 0)
		fuzz_fail("changed a field that does not parse: [%.*s] -> [%.*s]",
		          (int)f->len, f->text, (int)len, t);
	check_same(&orig, t, len, p->domain);
	addr_list_free(&orig);
}

/* Rewriting what was written changes nothing more. */
static void check_again(const char *out, size_t len,
                        const struct headers_policy *p)
{
	struct headers_field *f = calloc(MAXFIELDS + 2, sizeof(*f));
	struct headers_out o;
	size_t n, i;

	if (f == NULL)
		fuzz_fail("out of memory");
	n = split(out, len, f);
	if (headers_rewrite(f, n, p, &o) != 0)
		fuzz_fail("headers_rewrite failed");
	for (i = 0; i < n; i++) {
		if (o.text[i] != NULL)
			fuzz_fail("not idempotent: [%.*s] -> [%.*s]", (int)f[i].len,
			          f[i].text, (int)o.len[i], o.text[i]);
	}
	if (o.added != NULL)
		fuzz_fail("not idempotent: a second field added");
	headers_out_free(&o, n);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct headers_field *f;
	struct headers_policy p;
	struct headers_out o;
	size_t len, longest, n, i, k = 0;
	char *in, *out;

	if (size < 1)
		return 0;
	policy(data[0], &p);
	in = to_crlf(data + 1, size - 1, &len, &longest);
	f = calloc(MAXFIELDS, sizeof(*f));
	if (f == NULL)
		fuzz_fail("out of memory");
	n = split(in, len, f);
	if (headers_rewrite(f, n, &p, &o) != 0)
		fuzz_fail("headers_rewrite failed (out of memory?)");
	for (i = 0; i < n; i++)
		k += o.text[i] ? o.len[i] : f[i].len;
	out = malloc(k + o.added_len + 1);
	if (out == NULL)
		fuzz_fail("out of memory");
	k = 0;
	for (i = 0; i < n; i++) {
		const char *t = o.text[i] ? o.text[i] : f[i].text;
		size_t l = o.text[i] ? o.len[i] : f[i].len;

		if (o.text[i] != NULL) {
			check_form(t, l, longest <= 900,
			           blank_line(f[i].text, f[i].len));
			check_field(&f[i], t, l, &p);
		}
		memcpy(out + k, t, l);
		k += l;
		if (o.added != NULL && o.added_after == i) {
			struct addr_list l;

			check_form(o.added, o.added_len, longest <= 900, true);
			if (addrs_of(o.added, o.added_len, &l) != 0 || l.count == 0)
				fuzz_fail("an added Reply-To without addresses");
			addr_list_free(&l);
			memcpy(out + k, o.added, o.added_len);
			k += o.added_len;
		}
	}
	if (memchr(o.summary, '\0', sizeof(o.summary)) == NULL)
		fuzz_fail("summary not NUL-terminated");
	headers_out_free(&o, n);
	check_again(out, k, &p);
	free(out);
	free(f);
	free(in);
	return 0;
}
