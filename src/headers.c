/*
 * headers.c - rewriting address header fields (see headers.h).
 *
 * Each field is recognised from a table by name and its value scanned
 * with addr_scan_list, which says where every mailbox, display name and
 * local part is. A changed field is written through one bounded buffer
 * that also folds: it remembers the last place on the current line where
 * a fold is allowed (before a blank that follows text, or before a
 * mailbox not preceded by a blank) and folds there as soon as the line
 * grows past HEADERS_LINE_MAX; so what was short stays byte for byte.
 */
#include "headers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_NONE = 0, K_ADDR, K_FROM, K_SENDER, K_REPLY_TO };

/* The fields whose values are address lists (RFC 5322 3.6.2, 3.6.3,
 * 3.6.6; RFC 3798; the common extensions). */
static const struct {
	const char *name;
	enum kind kind;
} HEADERS_FIELDS[] = {
	{ "From", K_FROM }, { "Sender", K_SENDER },
	{ "Reply-To", K_REPLY_TO }, { "To", K_ADDR }, { "Cc", K_ADDR },
	{ "Resent-From", K_ADDR }, { "Resent-Sender", K_ADDR },
	{ "Resent-To", K_ADDR }, { "Resent-Cc", K_ADDR },
	{ "Resent-Reply-To", K_ADDR }, { "Return-Receipt-To", K_ADDR },
	{ "Disposition-Notification-To", K_ADDR },
	{ "Mail-Followup-To", K_ADDR }, { "Mail-Reply-To", K_ADDR },
	{ "Errors-To", K_ADDR },
};

/* A bounded output buffer that folds lines longer than HEADERS_LINE_MAX. */
struct buf {
	char *p;
	size_t len, cap;
	int nomem;          /* out of memory */
	int over;           /* would pass HEADERS_FIELD_MAX */
	size_t line;        /* where the current line starts */
	size_t cand;        /* the last fold point on this line (0: none) */
	int cand_sp;        /* folding there needs a SP after the CRLF */
	size_t good;        /* the last one with non-blank text after it:
	                       folding there leaves no blank line */
	int good_sp;
	int text;           /* the line has non-blank text so far */
	size_t min;         /* no fold before this offset ("Name:" first) */
};

/* One field's value, scanned. */
struct parsed {
	const char *v;      /* the value: after the colon, without the CRLF */
	size_t vlen;
	size_t voff;        /* v - field text */
	size_t namelen;     /* the name as written, without blanks */
	struct addr_list a;
	struct addr_spans sp;
	bool ok;            /* the value parsed */
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int reserve(struct buf *b, size_t more)
{
	size_t c = b->cap ? b->cap : 256;
	char *n;

	if (b->nomem || b->over)
		return -1;
	if (b->len + more > HEADERS_FIELD_MAX) {
		b->over = 1;
		return -1;
	}
	if (b->len + more <= b->cap)
		return 0;
	while (c < b->len + more)
		c *= 2;
	n = realloc(b->p, c);
	if (n == NULL) {
		b->nomem = 1;
		return -1;
	}
	b->p = n;
	b->cap = c;
	return 0;
}

/* Fold at b->good: CRLF (and SP) inserted, the rest moves on. */
static void fold(struct buf *b)
{
	size_t ins = b->good_sp ? 3 : 2, i;

	if (reserve(b, ins) != 0)
		return;
	memmove(b->p + b->good + ins, b->p + b->good, b->len - b->good);
	memcpy(b->p + b->good, "\r\n ", ins);
	b->len += ins;
	b->line = b->good + 2;
	b->cand = b->good = 0;
	b->text = 0;
	/* what moved to the new line: its blanks after text are fold
	 * points again (as put() would have marked them) */
	for (i = b->line; i < b->len; i++) {
		if (is_wsp(b->p[i]) && b->text && i >= b->min &&
		    (i - b->line <= HEADERS_LINE_MAX || b->cand <= b->line)) {
			b->cand = i;
			b->cand_sp = 0;
		} else if (!is_wsp(b->p[i])) {
			b->text = 1;
			if (b->cand > b->line) {
				b->good = b->cand;
				b->good_sp = b->cand_sp;
			}
		}
	}
}

/* May a fold go at the end of the buffer? Only where the line before it
 * stays within HEADERS_LINE_MAX - unless the line has no fold point yet
 * (then a later one is better than none). */
static bool fold_fits(const struct buf *b)
{
	return b->len - b->line <= HEADERS_LINE_MAX || b->cand <= b->line;
}

/* End of a line: fold one still too long (by its trailing blanks). */
static void put_eol(struct buf *b, char c)
{
	if (c == '\r' && b->len - b->line > HEADERS_LINE_MAX &&
	    b->good > b->line)
		fold(b);
	if (reserve(b, 1) != 0)
		return;
	b->p[b->len++] = c;
	if (c == '\n') {
		b->line = b->len;
		b->cand = b->good = 0;
		b->text = 0;
	}
}

/*
 * Append c; mark: a mailbox starts here (a fold may go before it). A
 * line that grows too long is folded at the last fold point with text
 * after it, once non-blank text follows (never leaving a blank line).
 */
static void put(struct buf *b, char c, bool mark)
{
	if (c == '\r' || c == '\n') {
		put_eol(b, c);
		return;
	}
	if (reserve(b, 1) != 0)
		return;
	if (mark && b->len >= b->min && b->len > b->line &&
	    !is_wsp(b->p[b->len - 1]) && fold_fits(b)) {
		b->cand = b->len;
		b->cand_sp = 1;
	}
	if (is_wsp(c) && b->len >= b->min && b->text && fold_fits(b)) {
		b->cand = b->len;
		b->cand_sp = 0;
	}
	b->p[b->len++] = c;
	if (is_wsp(c))
		return;
	b->text = 1;
	if (b->cand > b->line) {
		b->good = b->cand;
		b->good_sp = b->cand_sp;
	}
	if (b->len - b->line > HEADERS_LINE_MAX && b->good > b->line)
		fold(b);
}

static void puts_n(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		put(b, s[i], false);
}

static void put_str(struct buf *b, const char *s)
{
	puts_n(b, s, strlen(s));
}

/* Copy s[0..n) with line breaks removed (a fold becomes its blank). */
static void put_unfolded(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			put(b, s[i], false);
	}
}

static enum kind field_kind(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(HEADERS_FIELDS) / sizeof(HEADERS_FIELDS[0]);
	     i++) {
		if (strlen(HEADERS_FIELDS[i].name) == n &&
		    strncasecmp(HEADERS_FIELDS[i].name, name, n) == 0)
			return HEADERS_FIELDS[i].kind;
	}
	return K_NONE;
}

/* Split field f at its colon and scan the value. -1: not a field. */
static int scan(const struct headers_field *f, struct parsed *x)
{
	const char *colon = memchr(f->text, ':', f->len);
	char err[128];

	memset(x, 0, sizeof(*x));
	if (colon == NULL)
		return -1;
	x->namelen = (size_t)(colon - f->text);
	while (x->namelen > 0 && is_wsp(f->text[x->namelen - 1]))
		x->namelen--;
	x->voff = (size_t)(colon - f->text) + 1;
	x->v = colon + 1;
	x->vlen = f->len - x->voff;
	if (x->vlen >= 2 && x->v[x->vlen - 2] == '\r' &&
	    x->v[x->vlen - 1] == '\n')
		x->vlen -= 2;
	x->ok = addr_scan_list(x->v, x->vlen, &x->a, &x->sp, err,
	                       sizeof(err)) == 0;
	return 0;
}

static void parsed_free(struct parsed *x)
{
	addr_list_free(&x->a);
	addr_spans_free(&x->sp);
}

static bool has_bare(const struct parsed *x)
{
	size_t i;

	for (i = 0; x->ok && i < x->sp.count; i++) {
		if (!x->sp.v[i].has_domain)
			return true;
	}
	return false;
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

static bool addr_local(const struct headers_policy *p, const char *a)
{
	return !has_domain(a) || (p->is_local != NULL && p->is_local(a));
}

/* Every mailbox local (true for none)? */
static bool all_local(const struct parsed *x, const struct headers_policy *p)
{
	size_t i;

	for (i = 0; i < x->a.count; i++) {
		if (!addr_local(p, x->a.addrs[i]))
			return false;
	}
	return true;
}

/* Is a (qualified with p->domain when bare) the account's address? */
static bool is_account(const struct headers_policy *p, const char *a)
{
	size_t n = strlen(a);

	if (has_domain(a))
		return strcasecmp(a, p->from) == 0;
	return p->domain != NULL && strncasecmp(a, p->from, n) == 0 &&
	       p->from[n] == '@' && strcasecmp(p->from + n + 1, p->domain) == 0;
}

/* Does from-header replace this From or Sender field? */
static bool wants_account(const struct parsed *x,
                          const struct headers_policy *p)
{
	if (p->from == NULL || p->from_mode == HEADERS_FROM_KEEP)
		return false;
	if (x->ok && x->a.count == 1 && is_account(p, x->a.addrs[0]))
		return false;
	if (p->from_mode == HEADERS_FROM_ALWAYS)
		return true;
	return x->ok && all_local(x, p);
}

bool headers_from_applies(const struct headers_policy *p, const char *addr)
{
	if (p == NULL || p->from == NULL || p->from_mode == HEADERS_FROM_KEEP)
		return false;
	if (addr[0] == '\0')
		return true;
	if (is_account(p, addr))
		return false;
	return p->from_mode == HEADERS_FROM_ALWAYS || addr_local(p, addr);
}

/* Start a field: the name as written and its colon; folds come after. */
static void put_name(struct buf *b, const char *name, size_t n)
{
	puts_n(b, name, n);
	put(b, ':', false);
	b->min = b->len;
}

/* The field with "@domain" after each bare local part, folded. */
static void put_qualified(struct buf *b, const struct headers_field *f,
                          const struct parsed *x, const char *domain)
{
	const struct addr_span *s = x->sp.v;
	size_t i, k = 0, m = 0, n = x->sp.count;

	b->min = x->voff;
	for (i = 0; i < f->len; i++) {
		while (m < n && x->voff + s[m].start < i)
			m++;
		put(b, f->text[i], i >= x->voff && m < n &&
		                   x->voff + s[m].start == i);
		while (k < n && x->voff + s[k].local_end <= i + 1) {
			if (domain != NULL && !s[k].has_domain &&
			    x->voff + s[k].local_end == i + 1) {
				put(b, '@', false);
				put_str(b, domain);
			}
			k++;
		}
	}
}

/* A display name made from a comment whose quoted form has a longer run
 * without a blank (its backslashes can double it) is left out: the line
 * "Sender: " + run could not be folded below HEADERS_LINE_MAX. */
#define COMMENT_RUN_MAX (HEADERS_LINE_MAX - 16)

static bool is_phrase_char(char c)
{
	return is_wsp(c) || (unsigned char)c >= 0x80 ||
	       strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* The longest run without a blank of s[0..n) quoted: a backslash before
 * each '"' and '\\', the quotes at both ends counted. */
static size_t longest_quoted_run(const char *s, size_t n)
{
	size_t i, run = 1, most = 0;

	for (i = 0; i < n; i++) {
		if (is_wsp(s[i])) {
			run = 0;
			continue;
		}
		run += (s[i] == '"' || s[i] == '\\') ? 2 : 1;
		if (run > most)
			most = run;
	}
	return run + 1 > most ? run + 1 : most;
}

/*
 * The first comment in s[0..n) (the CFWS after "addr"), as a display
 * name: its text, quoted-pairs undone, quoted when it is not a plain
 * phrase. Nothing when there is no comment or it is blank.
 */
static void put_comment_name(struct buf *b, const char *s, size_t n)
{
	char name[ADDR_MAX_LEN];
	size_t i, k = 0, depth = 0, j;
	bool plain = true;

	for (i = 0; i < n && s[i] != '('; i++)
		;
	for (i++; i < n && k < sizeof(name); i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '(')
			depth++;
		else if (s[i] == ')' && depth-- == 0)
			break;
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		name[k++] = s[i];
	}
	while (k > 0 && is_wsp(name[k - 1]))
		k--;
	for (j = 0; j < k && is_wsp(name[j]); j++)
		;
	if (j == k)
		return;
	for (i = j; i < k; i++)
		plain = plain && is_phrase_char(name[i]);
	if (!plain && longest_quoted_run(name + j, k - j) > COMMENT_RUN_MAX)
		return;
	if (!plain)
		put(b, '"', false);
	for (i = j; i < k; i++) {
		if (!plain && (name[i] == '"' || name[i] == '\\'))
			put(b, '\\', false);
		put(b, name[i], false);
	}
	if (!plain)
		put(b, '"', false);
	put(b, ' ', false);
}

/* "Name: DISPLAY <from>[ trailing comment]" CRLF */
static void put_account(struct buf *b, const struct headers_field *f,
                        const struct parsed *x, const char *from)
{
	const struct addr_span *s = x->ok && x->sp.count ? &x->sp.v[0] : NULL;

	put_name(b, f->text, x->namelen);
	put(b, ' ', false);
	if (s != NULL && s->name_end > s->start) {
		put_unfolded(b, x->v + s->start, s->name_end - s->start);
		put(b, ' ', false);
	} else if (s != NULL) {
		put_comment_name(b, x->v + s->end, s->next - s->end);
	}
	put(b, '<', true);
	put_str(b, from);
	put(b, '>', false);
	if (s != NULL && s->name_end > s->start && s->next > s->end) {
		size_t n = s->next - s->end;

		while (n > 0 && (is_wsp(x->v[s->end + n - 1]) ||
		                 x->v[s->end + n - 1] == '\r' ||
		                 x->v[s->end + n - 1] == '\n'))
			n--;
		put_unfolded(b, x->v + s->end, n);
	}
	puts_n(b, "\r\n", 2);
}

/* Add item to the summary once ("From rewritten"); "..." when full. */
static void note(struct headers_out *o, const char *name, const char *what)
{
	char item[64];
	size_t n = strlen(o->summary), k;
	const char *at;

	k = (size_t)snprintf(item, sizeof(item), "%s %s", name, what);
	for (at = o->summary; (at = strstr(at, item)) != NULL; at += k) {
		if ((at == o->summary || at[-1] == ' ') &&
		    (at[k] == ',' || at[k] == '\0'))
			return;
	}
	if (n + k + 6 >= sizeof(o->summary)) {
		if (n + 4 < sizeof(o->summary) && strstr(o->summary, "...") == NULL)
			snprintf(o->summary + n, sizeof(o->summary) - n, ", ...");
		return;
	}
	snprintf(o->summary + n, sizeof(o->summary) - n, "%s%s",
	         n ? ", " : "", item);
}

/* Take b as field i's replacement. 0; -1 out of memory; 1 too big. */
static int take(struct headers_out *o, size_t i, struct buf *b)
{
	if (b->nomem || b->over) {
		free(b->p);
		return b->nomem ? -1 : 1;
	}
	o->text[i] = b->p;
	o->len[i] = b->len;
	return 0;
}

/*
 * ALWAYS replaced a From that named someone else: a Reply-To with its
 * mailboxes (qualified as the From itself would have been), after it.
 */
static int add_reply_to(struct headers_out *o, size_t i,
                        const struct headers_field *f, const struct parsed *x,
                        const struct headers_policy *p)
{
	struct buf b = { 0 };
	struct headers_field rt;
	struct parsed y;
	size_t vlen = f->len - x->voff;
	char *text = malloc(9 + vlen);

	if (text == NULL)
		return -1;
	/* the From's value under the new name, written (qualified and
	 * folded) as any changed field is: the name is 4 octets longer */
	memcpy(text, "Reply-To:", 9);
	memcpy(text + 9, f->text + x->voff, vlen);
	rt.text = text;
	rt.len = 9 + vlen;
	if (scan(&rt, &y) != 0 || !y.ok) {
		parsed_free(&y);
		free(text);
		return 0;
	}
	put_qualified(&b, &rt, &y, p->domain);
	parsed_free(&y);
	free(text);
	if (b.nomem || b.over) {
		free(b.p);
		return b.nomem ? -1 : 0;
	}
	o->added = b.p;
	o->added_len = b.len;
	o->added_after = i;
	note(o, "Reply-To", "added");
	return 0;
}

static int rewrite_account(struct headers_out *o, size_t i,
                           const struct headers_field *f,
                           const struct parsed *x, enum kind kind,
                           const struct headers_policy *p, bool reply_to)
{
	struct buf b = { 0 };
	bool first_from = kind == K_FROM && !o->from_rewritten;
	int rc;

	put_account(&b, f, x, p->from);
	rc = take(o, i, &b);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	note(o, kind == K_FROM ? "From" : "Sender", "rewritten");
	if (!first_from)
		return 0;
	o->from_rewritten = true;
	if (x->ok && x->a.count > 0)
		snprintf(o->old_from, sizeof(o->old_from), "%s", x->a.addrs[0]);
	if (p->from_mode == HEADERS_FROM_ALWAYS && x->ok && !reply_to &&
	    !all_local(x, p))
		return add_reply_to(o, i, f, x, p);
	return 0;
}

static int rewrite_field(struct headers_out *o, size_t i,
                         const struct headers_field *f,
                         const struct headers_policy *p, bool reply_to)
{
	struct parsed x;
	struct buf b = { 0 };
	enum kind kind;
	int rc = 0;

	if (scan(f, &x) != 0)
		return 0;
	kind = field_kind(f->text, x.namelen);
	if ((kind == K_FROM || kind == K_SENDER) && wants_account(&x, p)) {
		rc = rewrite_account(o, i, f, &x, kind, p, reply_to);
	} else if (kind != K_NONE && p->domain != NULL && has_bare(&x)) {
		put_qualified(&b, f, &x, p->domain);
		rc = take(o, i, &b);
		if (rc == 0) {
			char name[40];

			snprintf(name, sizeof(name), "%.*s", (int)x.namelen,
			         f->text);
			note(o, name, "qualified");
		}
		rc = rc < 0 ? -1 : 0;
	}
	parsed_free(&x);
	return rc;
}

/* Is field f one of kind k (by name)? */
static bool is_kind(const struct headers_field *f, enum kind k)
{
	const char *colon = memchr(f->text, ':', f->len);
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - f->text);
	while (n > 0 && is_wsp(f->text[n - 1]))
		n--;
	return field_kind(f->text, n) == k;
}

int headers_rewrite(const struct headers_field *f, size_t n,
                    const struct headers_policy *p, struct headers_out *out)
{
	bool reply_to = false;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->text = calloc(n ? n : 1, sizeof(*out->text));
	out->len = calloc(n ? n : 1, sizeof(*out->len));
	if (out->text == NULL || out->len == NULL) {
		headers_out_free(out, 0);
		return -1;
	}
	for (i = 0; i < n; i++)
		reply_to = reply_to || is_kind(&f[i], K_REPLY_TO);
	for (i = 0; i < n; i++) {
		if (rewrite_field(out, i, &f[i], p, reply_to) != 0) {
			headers_out_free(out, n);
			return -1;
		}
	}
	return 0;
}

void headers_out_free(struct headers_out *out, size_t n)
{
	size_t i;

	if (out == NULL)
		return;
	for (i = 0; out->text != NULL && i < n; i++)
		free(out->text[i]);
	free(out->text);
	free(out->len);
	free(out->added);
	memset(out, 0, sizeof(*out));
}
