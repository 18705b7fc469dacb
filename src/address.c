/*
 * address.c - RFC 5322 address-list parser (sections 3.2, 3.4, 4.4).
 *
 * Contract (see address.h): pure functions, no I/O, no global state.
 * Input is a byte range that need not be NUL-terminated; a NUL byte in it
 * is an error. The parser is a one-token-lookahead recursive descent over
 * a small lexer that skips CFWS (folding white space and comments) between
 * tokens. Comments are skipped with a depth counter, never by recursion,
 * and nesting deeper than ADDR_MAX_NEST is refused. Recursion depth of the
 * parser itself is bounded by the grammar (group -> mailbox, no deeper).
 * Every intermediate buffer is a fixed ADDR_MAX_LEN array; the output list
 * is capped at ADDR_MAX_COUNT entries. Time is linear in the input length.
 *
 * Behaviour beyond the header's contract:
 *  - bytes >= 0x80 count as atext (RFC 6532); no UTF-8 validation is done.
 *  - control characters (0x00-0x1f except TAB, and 0x7f) are refused
 *    everywhere, including comments, quoted strings and quoted-pairs; CR and
 *    LF are only accepted as part of a fold (line break followed by SP/TAB)
 *    or as one trailing line break at the very end of the input.
 *  - a local part built from words and dots is accepted even with leading,
 *    trailing or doubled dots ("john..doe@x", seen in the wild); it is then
 *    returned as a quoted-string, which is the canonical form.
 *  - "" (empty quoted string) as a local part is refused as empty.
 *  - a group without its closing ';' at the end of input is accepted;
 *    nested groups and groups without a name are refused.
 *  - "<>" is refused by addr_parse_list and yields "" in addr_parse_one.
 *  - addr_parse_one refuses ',' and groups anywhere outside an angle-addr.
 *  - error messages end with "at offset N" (byte offset into the input).
 */
#include "address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deepest comment nesting accepted: "((((...))))". */
#define ADDR_MAX_NEST 256

/* Token types: single specials use their own character value. */
enum {
	T_END = 256,
	T_ATOM,   /* run of atext, start/len in input */
	T_QSTR,   /* quoted-string, start/len of the raw inside of the quotes */
	T_DLIT,   /* domain literal, start/len of the raw inside of [] */
};

struct token {
	int type;
	size_t start;
	size_t len;
	size_t end;       /* just past the token as written (quotes included) */
};

/* Bounded text accumulator; overflow is remembered, never written. */
struct sbuf {
	char b[ADDR_MAX_LEN + 1];
	size_t len;
	int over;
};

/* A run of words and dots: a phrase or a local part. */
struct words {
	struct sbuf text;  /* decoded local-part value */
	size_t nwords;
	int adjacent;      /* two words without a '.' between them */
	int dlit;          /* a [domain literal] appeared */
	int prev_word;
};

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	struct token cur;
	int one;           /* addr_parse_one mode */
	int failed;
	char *err;
	size_t errlen;
	struct addr_list *out;
	size_t last_end;           /* end of the token consumed last */
	struct addr_spans *spans;  /* addr_scan_list: where each one is */
	struct addr_span span;     /* the mailbox being parsed */
};

static int is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int is_atext(unsigned char c)
{
	if (c >= 0x80)
		return 1;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	if (c >= '0' && c <= '9')
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Record the first error only; always returns -1. */
static int fail(struct parser *p, size_t at, const char *why)
{
	if (!p->failed && p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "%s at offset %zu", why, at);
	p->failed = 1;
	return -1;
}

static int fail_ctl(struct parser *p, size_t at)
{
	if (p->s[at] == '\0')
		return fail(p, at, "NUL byte in address");
	return fail(p, at, "control character in address");
}

static void sb_put(struct sbuf *sb, const char *src, size_t n)
{
	if (sb->over || n > ADDR_MAX_LEN - sb->len) {
		sb->over = 1;
		return;
	}
	memcpy(sb->b + sb->len, src, n);
	sb->len += n;
}

static void sb_putc(struct sbuf *sb, char c)
{
	sb_put(sb, &c, 1);
}

static void sb_reset(struct sbuf *sb)
{
	sb->len = 0;
	sb->over = 0;
}

/*
 * p->s[p->pos] is CR or LF. Accept CRLF or LF followed by WSP (a fold), or
 * a line break that ends the input; advance past the line break.
 */
static int take_fold(struct parser *p)
{
	size_t i = p->pos;
	size_t n = 0;

	if (p->s[i] == '\n')
		n = 1;
	else if (i + 1 < p->len && p->s[i + 1] == '\n')
		n = 2;
	if (n == 0)
		return fail_ctl(p, i);
	if (i + n < p->len && !is_wsp((unsigned char)p->s[i + n]))
		return fail(p, i, "line break not followed by white space");
	p->pos += n;
	return 0;
}

/* p->s[p->pos] is a backslash: take it and the quoted character. */
static int take_quoted_pair(struct parser *p)
{
	size_t i = p->pos;

	if (i + 1 >= p->len)
		return fail(p, i, "backslash at end of input");
	if (is_ctl((unsigned char)p->s[i + 1]))
		return fail_ctl(p, i + 1);
	p->pos += 2;
	return 0;
}

/* Skip one comment, nesting counted (not recursed). */
static int skip_comment(struct parser *p)
{
	size_t open = p->pos;
	unsigned depth = 0;

	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '(') {
			depth++;
			if (depth > ADDR_MAX_NEST)
				return fail(p, p->pos, "comments nested too deeply");
			p->pos++;
		} else if (c == ')') {
			p->pos++;
			depth--;
			if (depth == 0)
				return 0;
		} else if (c == '\\') {
			if (take_quoted_pair(p) < 0)
				return -1;
		} else if (c == '\r' || c == '\n') {
			if (take_fold(p) < 0)
				return -1;
		} else if (is_ctl(c)) {
			return fail_ctl(p, p->pos);
		} else {
			p->pos++;
		}
	}
	return fail(p, open, "unbalanced '(' (unterminated comment)");
}

/* Skip any mix of white space, folds and comments. */
static int skip_cfws(struct parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (is_wsp(c)) {
			p->pos++;
		} else if (c == '\r' || c == '\n') {
			if (take_fold(p) < 0)
				return -1;
		} else if (c == '(') {
			if (skip_comment(p) < 0)
				return -1;
		} else {
			break;
		}
	}
	return 0;
}

/* Lex a quoted-string or domain literal opened at p->pos. */
static int lex_delimited(struct parser *p, char close, int dlit)
{
	size_t open = p->pos++;

	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == (unsigned char)close) {
			p->cur.start = open + 1;
			p->cur.len = p->pos - open - 1;
			p->pos++;
			p->cur.end = p->pos;
			return 0;
		}
		if (c == '\\') {
			if (take_quoted_pair(p) < 0)
				return -1;
		} else if (c == '\r' || c == '\n') {
			if (take_fold(p) < 0)
				return -1;
		} else if (is_ctl(c)) {
			return fail_ctl(p, p->pos);
		} else if (dlit && (c == '[' || c >= 0x80)) {
			return fail(p, p->pos, "invalid character in domain literal");
		} else {
			p->pos++;
		}
	}
	if (dlit)
		return fail(p, open, "unbalanced '[' (unterminated domain literal)");
	return fail(p, open, "unbalanced '\"' (unterminated quoted string)");
}

/* Read the next token into p->cur. */
static int advance(struct parser *p)
{
	unsigned char c;

	p->last_end = p->cur.end;
	if (skip_cfws(p) < 0)
		return -1;
	p->cur.start = p->pos;
	p->cur.len = 0;
	p->cur.end = p->pos;
	if (p->pos >= p->len) {
		p->cur.type = T_END;
		return 0;
	}
	c = (unsigned char)p->s[p->pos];
	if (is_atext(c)) {
		while (p->pos < p->len && is_atext((unsigned char)p->s[p->pos]))
			p->pos++;
		p->cur.type = T_ATOM;
		p->cur.len = p->pos - p->cur.start;
		p->cur.end = p->pos;
		return 0;
	}
	switch (c) {
	case '"':
		p->cur.type = T_QSTR;
		return lex_delimited(p, '"', 0);
	case '[':
		p->cur.type = T_DLIT;
		return lex_delimited(p, ']', 1);
	case '<': case '>': case '@': case ',': case ':': case ';': case '.':
		p->cur.type = c;
		p->pos++;
		p->cur.end = p->pos;
		return 0;
	case ')':
		return fail(p, p->pos, "unbalanced ')'");
	case ']':
		return fail(p, p->pos, "unbalanced ']'");
	case '\\':
		return fail(p, p->pos, "backslash outside quoted string");
	default:
		break;
	}
	if (is_ctl(c))
		return fail_ctl(p, p->pos);
	return fail(p, p->pos, "unexpected character");
}

/* Where the current token starts as written (a quote or '[' included). */
static size_t tok_begin(const struct parser *p)
{
	if (p->cur.type == T_QSTR || p->cur.type == T_DLIT)
		return p->cur.start - 1;
	return p->cur.start;
}

/* Append the value of a quoted-string token: quotes, pairs, folds undone. */
static void put_qstr(const struct parser *p, struct sbuf *sb)
{
	const char *q = p->s + p->cur.start;
	size_t i;

	for (i = 0; i < p->cur.len && !sb->over; i++) {
		if (q[i] == '\\')
			i++;
		else if (q[i] == '\r' || q[i] == '\n')
			continue;
		sb_putc(sb, q[i]);
	}
}

/* Consume a run of atoms, quoted strings, literals and dots. */
static int collect_words(struct parser *p, struct words *w)
{
	sb_reset(&w->text);
	w->nwords = 0;
	w->adjacent = 0;
	w->dlit = 0;
	w->prev_word = 0;
	for (;;) {
		int t = p->cur.type;

		if (t == '.') {
			sb_putc(&w->text, '.');
			w->prev_word = 0;
		} else if (t == T_ATOM || t == T_QSTR || t == T_DLIT) {
			if (w->prev_word)
				w->adjacent = 1;
			w->prev_word = 1;
			w->nwords++;
			if (t == T_ATOM)
				sb_put(&w->text, p->s + p->cur.start, p->cur.len);
			else if (t == T_QSTR)
				put_qstr(p, &w->text);
			else
				w->dlit = 1;
		} else {
			return 0;
		}
		if (advance(p) < 0)
			return -1;
	}
}

/* Is the run of words usable as a local part? */
static int check_local(struct parser *p, const struct words *w, size_t at,
                       int has_at)
{
	if (w->dlit)
		return fail(p, at, "domain literal in local part");
	if (w->adjacent && has_at)
		return fail(p, at, "unquoted white space in local part");
	if (w->adjacent)
		return fail(p, at, "display name without address");
	if (w->text.over)
		return fail(p, at, "address too long");
	if (w->nwords == 0 || w->text.len == 0)
		return fail(p, at, has_at ? "empty local part before '@'"
		                          : "empty address");
	return 0;
}

/* Domain literal: keep as written minus white space and folds. */
static int put_dlit(struct parser *p, struct sbuf *d)
{
	const char *q = p->s + p->cur.start;
	size_t i;
	size_t kept = 0;

	sb_putc(d, '[');
	for (i = 0; i < p->cur.len; i++) {
		if (q[i] == '\\') {
			sb_put(d, q + i, 2);
			i++;
			kept++;
		} else if (!is_wsp((unsigned char)q[i]) && q[i] != '\r' &&
		           q[i] != '\n') {
			sb_putc(d, q[i]);
			kept++;
		}
	}
	sb_putc(d, ']');
	if (kept == 0)
		return fail(p, p->cur.start, "empty domain literal");
	return advance(p);
}

/* domain = dot-atom / domain-literal, with obs-domain CFWS around dots. */
static int parse_domain(struct parser *p, struct sbuf *d)
{
	int t = p->cur.type;

	if (t == T_DLIT)
		return put_dlit(p, d);
	if (t != T_ATOM) {
		if (t == T_END || t == ',' || t == '>' || t == ';')
			return fail(p, p->cur.start, "empty domain after '@'");
		return fail(p, p->cur.start, "invalid domain");
	}
	for (;;) {
		sb_put(d, p->s + p->cur.start, p->cur.len);
		if (advance(p) < 0)
			return -1;
		if (p->cur.type != '.')
			return 0;
		if (advance(p) < 0)
			return -1;
		if (p->cur.type != T_ATOM)
			return fail(p, p->cur.start, "empty label in domain");
		sb_putc(d, '.');
	}
}

static int is_dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int span_add(struct addr_spans *sp, const struct addr_span *s)
{
	if (sp->count >= sp->cap) {
		size_t ncap = sp->cap < 8 ? 8 : sp->cap * 2;
		struct addr_span *nv = realloc(sp->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		sp->v = nv;
		sp->cap = ncap;
	}
	sp->v[sp->count++] = *s;
	return 0;
}

/*
 * The mailbox that parse_element just added (when it added one) starts
 * at start; its display name and comments before '<' end at name_end.
 * Trailing white space is not part of the name; the mailbox ends with
 * the last token consumed, and its trailing CFWS runs to the next token.
 */
static void span_finish(struct parser *p, size_t before, size_t start,
                        size_t name_end)
{
	struct addr_span *s;

	if (p->spans == NULL || p->out->count == before || p->spans->count == 0)
		return;
	s = &p->spans->v[p->spans->count - 1];
	while (name_end > start && (is_wsp((unsigned char)p->s[name_end - 1]) ||
	                            p->s[name_end - 1] == '\r' ||
	                            p->s[name_end - 1] == '\n'))
		name_end--;
	s->start = start;
	s->name_end = name_end;
	s->end = p->last_end;
	s->next = p->cur.start;
}

/* Append a finished address string to the output list. */
static int add_addr(struct parser *p, const char *addr, size_t at)
{
	if (p->out->count >= ADDR_MAX_COUNT)
		return fail(p, at, "too many addresses");
	if (p->spans != NULL && span_add(p->spans, &p->span) < 0)
		return fail(p, at, "out of memory");
	if (addr_list_add(p->out, addr) < 0)
		return fail(p, at, "out of memory");
	return 0;
}

/* Build the canonical addr-spec from a local part and optional domain. */
static int emit(struct parser *p, const struct words *lp,
                const struct sbuf *dom, size_t at)
{
	struct sbuf o;

	sb_reset(&o);
	if (is_dot_atom(lp->text.b, lp->text.len)) {
		sb_put(&o, lp->text.b, lp->text.len);
	} else {
		sb_putc(&o, '"');
		for (size_t i = 0; i < lp->text.len; i++) {
			if (lp->text.b[i] == '"' || lp->text.b[i] == '\\')
				sb_putc(&o, '\\');
			sb_putc(&o, lp->text.b[i]);
		}
		sb_putc(&o, '"');
	}
	if (dom != NULL) {
		sb_putc(&o, '@');
		sb_put(&o, dom->b, dom->len);
		if (dom->over)
			o.over = 1;
	}
	if (o.over)
		return fail(p, at, "address too long");
	o.b[o.len] = '\0';
	return add_addr(p, o.b, at);
}

/* local-part "@" domain, or a bare local part when no '@' follows. */
static int finish_mailbox(struct parser *p, const struct words *w, size_t at)
{
	struct sbuf d;

	p->span.local_end = p->span.spec_end = p->last_end;
	p->span.has_domain = p->cur.type == '@';
	if (p->cur.type != '@') {
		if (check_local(p, w, at, 0) < 0)
			return -1;
		return emit(p, w, NULL, at);
	}
	if (check_local(p, w, at, 1) < 0)
		return -1;
	if (advance(p) < 0)
		return -1;
	sb_reset(&d);
	if (parse_domain(p, &d) < 0)
		return -1;
	p->span.spec_end = p->last_end;
	return emit(p, w, &d, at);
}

/* obs-route = obs-domain-list ":" ; the route is parsed and dropped. */
static int skip_route(struct parser *p)
{
	struct sbuf junk;

	for (;;) {
		if (p->cur.type != '@')
			return fail(p, p->cur.start, "invalid source route");
		if (advance(p) < 0)
			return -1;
		sb_reset(&junk);
		if (parse_domain(p, &junk) < 0)
			return -1;
		while (p->cur.type == ',') {
			if (advance(p) < 0)
				return -1;
		}
		if (p->cur.type == ':')
			return advance(p);
	}
}

/* angle-addr = "<" [obs-route] addr-spec ">" ; also "<local>" and "<>". */
static int parse_angle(struct parser *p)
{
	struct words w;
	size_t at = p->cur.start;

	if (advance(p) < 0)
		return -1;
	if (p->cur.type == '>') {
		if (!p->one)
			return fail(p, at, "empty address '<>'");
		if (add_addr(p, "", at) < 0)
			return -1;
		return advance(p);
	}
	if (p->cur.type == '@' && skip_route(p) < 0)
		return -1;
	p->span.spec_start = tok_begin(p);
	if (collect_words(p, &w) < 0)
		return -1;
	if (p->cur.type == T_END)
		return fail(p, at, "unbalanced '<'");
	if (finish_mailbox(p, &w, at) < 0)
		return -1;
	if (p->cur.type == T_END)
		return fail(p, at, "unbalanced '<'");
	if (p->cur.type != '>')
		return fail(p, p->cur.start, "expected '>'");
	return advance(p);
}

/* Error for a token that cannot follow a complete list element. */
static int fail_after(struct parser *p)
{
	switch (p->cur.type) {
	case '>':
		return fail(p, p->cur.start, "unbalanced '>'");
	case ';':
		return fail(p, p->cur.start, "';' outside a group");
	case ':':
		return fail(p, p->cur.start, "unexpected ':'");
	case '@':
		return fail(p, p->cur.start, "unexpected '@'");
	default:
		return fail(p, p->cur.start, "expected ',' between addresses");
	}
}

static int parse_element(struct parser *p, int in_group);

/* group = display-name ":" [group-list] ";" ; ':' is the current token. */
static int parse_group(struct parser *p, const struct words *name,
                       int in_group)
{
	if (in_group)
		return fail(p, p->cur.start, "nested group");
	if (p->one)
		return fail(p, p->cur.start, "group not allowed here");
	if (name->nwords == 0)
		return fail(p, p->cur.start, "group without a name");
	if (advance(p) < 0)
		return -1;
	for (;;) {
		int t = p->cur.type;

		if (t == ';')
			return advance(p);
		if (t == T_END)
			return 0;       /* tolerated: missing ';' at the end */
		if (t == ',') {
			if (advance(p) < 0)
				return -1;
			continue;
		}
		if (parse_element(p, 1) < 0)
			return -1;
		t = p->cur.type;
		if (t != ',' && t != ';' && t != T_END)
			return fail_after(p);
	}
}

/* One mailbox or group (groups only at top level). */
static int parse_element(struct parser *p, int in_group)
{
	struct words w;
	size_t at = p->cur.start, name_end, before = p->out->count;
	size_t begin = tok_begin(p);

	p->span.spec_start = begin;
	if (collect_words(p, &w) < 0)
		return -1;
	name_end = p->cur.start;
	switch (p->cur.type) {
	case '<':
		if (parse_angle(p) < 0)
			return -1;
		span_finish(p, before, begin, name_end);
		return 0;
	case ':':
		return parse_group(p, &w, in_group);
	case '@':
		break;
	default:
		if (w.nwords == 0 && w.text.len == 0)
			return fail_after(p);
		break;
	}
	if (finish_mailbox(p, &w, at) < 0)
		return -1;
	span_finish(p, before, begin, begin);
	return 0;
}

/* address-list with empty elements allowed. */
static int parse_all(struct parser *p)
{
	if (advance(p) < 0)
		return -1;
	for (;;) {
		int t = p->cur.type;

		if (t == T_END)
			return 0;
		if (t == ',') {
			if (p->one)
				return fail(p, p->cur.start, "more than one address");
			if (advance(p) < 0)
				return -1;
			continue;
		}
		if (parse_element(p, 0) < 0)
			return -1;
		t = p->cur.type;
		if (t != ',' && t != T_END)
			return fail_after(p);
	}
}

static void parser_init(struct parser *p, const char *s, size_t len,
                        struct addr_list *out, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->s = s;
	p->len = len;
	p->out = out;
	p->err = err;
	p->errlen = err != NULL ? errlen : 0;
	if (p->errlen > 0)
		err[0] = '\0';
}

int addr_parse_list(const char *s, size_t len, struct addr_list *out,
                    char *err, size_t errlen)
{
	struct parser p;
	size_t keep;

	parser_init(&p, s, len, out, err, errlen);
	if (out == NULL || (s == NULL && len > 0))
		return fail(&p, 0, "invalid argument");
	keep = out->count;
	if (parse_all(&p) == 0)
		return 0;
	addr_list_truncate(out, keep);
	return -1;
}

int addr_scan_list(const char *s, size_t len, struct addr_list *out,
                   struct addr_spans *spans, char *err, size_t errlen)
{
	struct parser p;

	parser_init(&p, s, len, out, err, errlen);
	if (out == NULL || spans == NULL || out->count != 0 ||
	    spans->count != 0 || (s == NULL && len > 0))
		return fail(&p, 0, "invalid argument");
	p.spans = spans;
	if (parse_all(&p) == 0)
		return 0;
	addr_list_truncate(out, 0);
	spans->count = 0;
	return -1;
}

int addr_parse_one(const char *s, char **out, char *err, size_t errlen)
{
	struct addr_list tmp = { NULL, 0, 0 };
	struct parser p;
	int rc;

	parser_init(&p, s, s != NULL ? strlen(s) : 0, &tmp, err, errlen);
	if (out != NULL)
		*out = NULL;
	if (out == NULL || s == NULL)
		return fail(&p, 0, "invalid argument");
	p.one = 1;
	rc = parse_all(&p);
	if (rc == 0 && tmp.count == 0)
		rc = fail(&p, p.pos, "empty address");
	if (rc == 0 && tmp.count > 1)
		rc = fail(&p, 0, "more than one address");
	if (rc == 0) {
		*out = tmp.addrs[0];
		tmp.addrs[0] = NULL;
	}
	addr_list_free(&tmp);
	return rc;
}
