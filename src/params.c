/*
 * params.c - envelope parameters: DSN and BODY (see params.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ---- the values ---- */

/* Append src to dst (size n), truncating. */
static void str_append(char *dst, size_t n, const char *src)
{
	size_t len = strlen(dst);

	if (len < n)
		str_copy(dst + len, n - len, src);
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

bool params_xtext_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			return false;
		}
	}
	return true;
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

void params_xtext_decode(const char *x, char *out, size_t outlen)
{
	size_t k = 0;

	if (outlen == 0)
		return;
	for (; *x != '\0' && k + 1 < outlen; x++) {
		int c = (unsigned char)*x;

		if (c == '+' && is_hex(x[1]) && is_hex(x[2])) {
			int v = hexval(x[1]) * 16 + hexval(x[2]);

			if (v >= ' ' && v <= '~') {
				c = v;
				x += 2;
			}
		}
		out[k++] = (char)c;
	}
	out[k] = '\0';
}

/* Decoded length of valid xtext. */
static size_t xtext_len(const char *s, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++, len++) {
		if (s[i] == '+')
			i += 2;
	}
	return len;
}

/* raw (printable ASCII, blanks allowed) as xtext, malloc'd. */
static char *xtext_encode(const char *raw)
{
	size_t n = strlen(raw), k = 0;
	char *x = malloc(3 * n + 1);

	if (x == NULL)
		return NULL;
	for (; *raw != '\0'; raw++) {
		unsigned char c = (unsigned char)*raw;

		if (c < '!' || c > '~' || c == '+' || c == '=')
			k += (size_t)snprintf(x + k, 4, "+%02X", c);
		else
			x[k++] = (char)c;
	}
	x[k] = '\0';
	return x;
}

/* "never" or a list of success, failure, delay (no blanks), s[0..n). */
static int parse_notify(const char *s, size_t n, unsigned *out)
{
	static const struct { const char *w; unsigned bit; } W[] = {
		{ "NEVER", PARAMS_NOTIFY_NEVER },
		{ "SUCCESS", PARAMS_NOTIFY_SUCCESS },
		{ "FAILURE", PARAMS_NOTIFY_FAILURE },
		{ "DELAY", PARAMS_NOTIFY_DELAY },
	};
	unsigned bits = 0;
	size_t i = 0, j;

	while (i < n) {
		size_t k = i;
		unsigned bit = 0;

		while (k < n && s[k] != ',')
			k++;
		for (j = 0; j < sizeof(W) / sizeof(W[0]); j++) {
			if (strlen(W[j].w) == k - i && str_nieq(s + i, W[j].w, k - i))
				bit = W[j].bit;
		}
		if (bit == 0 || (bits & bit) != 0)
			return -1;
		bits |= bit;
		i = k + 1;
		if (k < n && i == n)
			return -1;      /* a trailing comma */
	}
	if (bits == 0 || ((bits & PARAMS_NOTIFY_NEVER) && bits != PARAMS_NOTIFY_NEVER))
		return -1;
	*out = bits;
	return 0;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && str_nieq(s, w, n);
}

static int parse_ret(const char *s, size_t n, enum params_ret *out)
{
	if (word_is(s, n, "FULL"))
		*out = PARAMS_RET_FULL;
	else if (word_is(s, n, "HDRS"))
		*out = PARAMS_RET_HDRS;
	else
		return -1;
	return 0;
}

static int parse_body(const char *s, size_t n, enum params_body *out)
{
	if (word_is(s, n, "7BIT"))
		*out = PARAMS_BODY_7BIT;
	else if (word_is(s, n, "8BITMIME"))
		*out = PARAMS_BODY_8BITMIME;
	else
		return -1;
	return 0;
}

/* ORCPT's "addr-type;xtext" (addr-type an atom of letters, digits, '-'). */
static bool orcpt_ok(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '-'))
		i++;
	return i > 0 && i < n && s[i] == ';' && n <= PARAMS_ORCPT_MAX &&
	       params_xtext_ok(s + i + 1, n - i - 1);
}

static bool printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < ' ' || (unsigned char)*s > '~')
			return false;
	}
	return true;
}

static int set_envid_raw(struct params_set *p, const char *raw, char *err,
                         size_t errlen)
{
	char *x;

	if (raw[0] == '\0' || strlen(raw) > PARAMS_ENVID_MAX || !printable(raw)) {
		snprintf(err, errlen, "bad -V envelope ID \"%.120s\": use 1 to "
		         "%d printable ASCII characters", raw, PARAMS_ENVID_MAX);
		return -1;
	}
	x = xtext_encode(raw);
	if (x == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(p->envid);
	p->envid = x;
	return 0;
}

int params_cli(struct params_set *p, char flag, const char *arg, char *err,
               size_t errlen)
{
	size_t n = strlen(arg);

	switch (flag) {
	case 'N':
		if (parse_notify(arg, n, &p->notify) == 0)
			return 0;
		snprintf(err, errlen, "bad -N value \"%.100s\": use never, or "
		         "one or more of success, failure and delay separated "
		         "by commas (e.g. -N failure,delay)", arg);
		return -1;
	case 'R':
		if (parse_ret(arg, n, &p->ret) == 0)
			return 0;
		snprintf(err, errlen, "bad -R value \"%.100s\": use hdrs "
		         "(return only the headers) or full", arg);
		return -1;
	case 'V':
		return set_envid_raw(p, arg, err, errlen);
	case 'B':
		if (parse_body(arg, n, &p->body) == 0)
			return 0;
		snprintf(err, errlen, "bad -B value \"%.100s\": use 7bit or "
		         "8bitmime", arg);
		return -1;
	default:
		snprintf(err, errlen, "no such envelope parameter flag -%c", flag);
		return -1;
	}
}

/* word[0..n) is KEY=value: *val, *vn. */
static bool keyed(const char *word, size_t n, const char *key,
                  const char **val, size_t *vn)
{
	size_t k = strlen(key);

	if (n <= k || !str_nieq(word, key, k) || word[k] != '=')
		return false;
	*val = word + k + 1;
	*vn = n - k - 1;
	return true;
}

static int bad_value(const char *word, size_t n, const char *fix, char *err,
                     size_t errlen)
{
	snprintf(err, errlen, "bad parameter %.*s: %s", (int)(n > 120 ? 120 : n),
	         word, fix);
	return -1;
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return n > 0 && n < 19;
}

int params_mail_word(struct params_set *p, const char *word, size_t n,
                     char *err, size_t errlen)
{
	const char *v;
	size_t vn;

	if (keyed(word, n, "RET", &v, &vn))
		return parse_ret(v, vn, &p->ret) == 0 ? 0 :
		       bad_value(word, n, "RET is FULL or HDRS", err, errlen);
	if (keyed(word, n, "BODY", &v, &vn))
		return parse_body(v, vn, &p->body) == 0 ? 0 :
		       bad_value(word, n, "BODY is 7BIT or 8BITMIME", err, errlen);
	if (keyed(word, n, "ENVID", &v, &vn)) {
		if (!params_xtext_ok(v, vn) || xtext_len(v, vn) > PARAMS_ENVID_MAX)
			return bad_value(word, n, "ENVID is xtext of at most 100 "
			                 "characters", err, errlen);
		free(p->envid);
		p->envid = str_ndup(v, vn);
		return p->envid != NULL ? 0 : bad_value(word, n, "out of memory",
		                                        err, errlen);
	}
	if (keyed(word, n, "SIZE", &v, &vn))
		return all_digits(v, vn) ? 0 :
		       bad_value(word, n, "SIZE is a number of octets", err,
		                 errlen);
	if (word_is(word, n, "SMTPUTF8") || keyed(word, n, "AUTH", &v, &vn))
		return 0;
	snprintf(err, errlen, "unsupported MAIL parameter %.*s", (int)(n > 60 ? 60
	         : n), word);
	return -2;
}

int params_rcpt_word(unsigned *notify, char **orcpt, const char *word,
                     size_t n, char *err, size_t errlen)
{
	const char *v;
	size_t vn;

	if (keyed(word, n, "NOTIFY", &v, &vn))
		return parse_notify(v, vn, notify) == 0 ? 0 :
		       bad_value(word, n, "NOTIFY is NEVER, or a comma-separated "
		                 "list of SUCCESS, FAILURE and DELAY", err, errlen);
	if (keyed(word, n, "ORCPT", &v, &vn)) {
		if (!orcpt_ok(v, vn))
			return bad_value(word, n, "ORCPT is addr-type;xtext (e.g. "
			                 "rfc822;user@example.com)", err, errlen);
		free(*orcpt);
		*orcpt = str_ndup(v, vn);
		return *orcpt != NULL ? 0 : bad_value(word, n, "out of memory",
		                                      err, errlen);
	}
	snprintf(err, errlen, "unsupported RCPT parameter %.*s", (int)(n > 60 ? 60
	         : n), word);
	return -2;
}

/* ---- recipients ---- */

static struct params_rcpt *find(const struct params_set *p, const char *addr)
{
	size_t i;

	for (i = 0; p != NULL && i < p->nrcpt; i++) {
		if (strcasecmp(p->rcpt[i].addr, addr) == 0)
			return &p->rcpt[i];
	}
	return NULL;
}

int params_rcpt_set(struct params_set *p, const char *addr, unsigned notify,
                    const char *orcpt)
{
	struct params_rcpt *r = find(p, addr);
	char *o = orcpt != NULL ? strdup(orcpt) : NULL;

	if (orcpt != NULL && o == NULL)
		return -1;
	if (r == NULL && p->nrcpt == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct params_rcpt *v = realloc(p->rcpt, cap * sizeof(*v));

		if (v == NULL) {
			free(o);
			return -1;
		}
		p->rcpt = v;
		p->cap = cap;
	}
	if (r == NULL) {
		r = &p->rcpt[p->nrcpt];
		r->addr = strdup(addr);
		r->orcpt = NULL;
		if (r->addr == NULL) {
			free(o);
			return -1;
		}
		p->nrcpt++;
	}
	r->notify = notify;
	free(r->orcpt);
	r->orcpt = o;
	return 0;
}

const struct params_rcpt *params_rcpt_get(const struct params_set *p,
                                          const char *addr)
{
	return find(p, addr);
}

unsigned params_notify_of(const struct params_set *p, const char *addr)
{
	const struct params_rcpt *r = find(p, addr);

	if (r != NULL && r->notify != 0)
		return r->notify;
	return p != NULL ? p->notify : 0;
}

bool params_wants_failure(const struct params_set *p, const char *addr)
{
	unsigned n = params_notify_of(p, addr);

	return n == 0 || (n & PARAMS_NOTIFY_FAILURE) != 0;
}

bool params_any(const struct params_set *p)
{
	return p != NULL && (p->ret != PARAMS_RET_NONE || p->envid != NULL ||
	                     p->body != PARAMS_BODY_NONE || p->notify != 0 ||
	                     p->nrcpt > 0);
}

int params_copy(struct params_set *dst, const struct params_set *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	if (src == NULL)
		return 0;
	dst->ret = src->ret;
	dst->body = src->body;
	dst->notify = src->notify;
	if (src->envid != NULL) {
		dst->envid = strdup(src->envid);
		if (dst->envid == NULL)
			return -1;
	}
	for (i = 0; i < src->nrcpt; i++) {
		if (params_rcpt_set(dst, src->rcpt[i].addr, src->rcpt[i].notify,
		                    src->rcpt[i].orcpt) != 0) {
			params_free(dst);
			return -1;
		}
	}
	return 0;
}

void params_free(struct params_set *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrcpt; i++) {
		free(p->rcpt[i].addr);
		free(p->rcpt[i].orcpt);
	}
	free(p->rcpt);
	free(p->envid);
	memset(p, 0, sizeof(*p));
}

/* ---- the queue envelope ---- */

static const char *notify_text(unsigned bits, char *buf, size_t n)
{
	buf[0] = '\0';
	if (bits & PARAMS_NOTIFY_NEVER)
		str_copy(buf, n, "NEVER");
	if (bits & PARAMS_NOTIFY_SUCCESS)
		str_append(buf, n, buf[0] ? ",SUCCESS" : "SUCCESS");
	if (bits & PARAMS_NOTIFY_FAILURE)
		str_append(buf, n, buf[0] ? ",FAILURE" : "FAILURE");
	if (bits & PARAMS_NOTIFY_DELAY)
		str_append(buf, n, buf[0] ? ",DELAY" : "DELAY");
	return buf;
}

/* "dsn-rcpt NOTIFY=x ORCPT=y <addr>": the parameters (no blanks in
 * them), then the address. */
static int rcpt_line(struct params_set *p, const char *val)
{
	unsigned notify = 0;
	char *orcpt = NULL, *addr = NULL, err[200];
	size_t n;
	int rc = -1;

	while (*val != '<' && *val != '\0') {
		size_t k = strcspn(val, " ");

		if (params_rcpt_word(&notify, &orcpt, val, k, err,
		                     sizeof(err)) != 0)
			goto out;
		val += k;
		val += strspn(val, " ");
	}
	n = strlen(val);
	if (n < 3 || val[n - 1] != '>')
		goto out;
	addr = str_ndup(val + 1, n - 2);
	rc = addr != NULL ? params_rcpt_set(p, addr, notify, orcpt) : -1;
out:
	free(addr);
	free(orcpt);
	return rc;
}

int params_env_line(struct params_set *p, const char *key, const char *val)
{
	size_t n = strlen(val);
	char err[200];

	if (strcmp(key, "ret") == 0)
		return parse_ret(val, n, &p->ret) == 0 ? 1 : -1;
	if (strcmp(key, "body") == 0)
		return parse_body(val, n, &p->body) == 0 ? 1 : -1;
	if (strcmp(key, "notify") == 0)
		return parse_notify(val, n, &p->notify) == 0 ? 1 : -1;
	if (strcmp(key, "envid") == 0) {
		char word[3 * PARAMS_ENVID_MAX + 8];

		snprintf(word, sizeof(word), "ENVID=%s", val);
		return params_mail_word(p, word, strlen(word), err,
		                        sizeof(err)) == 0 ? 1 : -1;
	}
	if (strcmp(key, "dsn-rcpt") == 0)
		return rcpt_line(p, val) == 0 ? 1 : -1;
	return 0;
}

/* Append to out at *len (as snprintf: *len counts what did not fit). */
static void put(char *out, size_t outlen, size_t *len, const char *fmt,
                const char *a, const char *b)
{
	int k = snprintf(*len < outlen ? out + *len : NULL,
	                 *len < outlen ? outlen - *len : 0, fmt, a, b);

	if (k > 0)
		*len += (size_t)k;
}

size_t params_env_text(const struct params_set *p, char *const *rcpts,
                       size_t nrcpt, char *out, size_t outlen)
{
	static const char *const RET[] = { "", "FULL", "HDRS" };
	static const char *const BODY[] = { "", "7BIT", "8BITMIME" };
	char nb[40];
	size_t i, len = 0;

	if (outlen > 0)
		out[0] = '\0';
	if (p == NULL)
		return 0;
	if (p->ret != PARAMS_RET_NONE)
		put(out, outlen, &len, "ret %s%s\n", RET[p->ret], "");
	if (p->body != PARAMS_BODY_NONE)
		put(out, outlen, &len, "body %s%s\n", BODY[p->body], "");
	if (p->envid != NULL)
		put(out, outlen, &len, "envid %s%s\n", p->envid, "");
	if (p->notify != 0)
		put(out, outlen, &len, "notify %s%s\n",
		    notify_text(p->notify, nb, sizeof(nb)), "");
	for (i = 0; i < nrcpt; i++) {
		const struct params_rcpt *r = find(p, rcpts[i]);
		char words[PARAMS_ORCPT_MAX + 64];

		if (r == NULL || (r->notify == 0 && r->orcpt == NULL))
			continue;
		words[0] = '\0';
		if (r->notify != 0) {
			str_append(words, sizeof(words), "NOTIFY=");
			str_append(words, sizeof(words),
			           notify_text(r->notify, nb, sizeof(nb)));
			str_append(words, sizeof(words), " ");
		}
		if (r->orcpt != NULL) {
			str_append(words, sizeof(words), "ORCPT=");
			str_append(words, sizeof(words), r->orcpt);
			str_append(words, sizeof(words), " ");
		}
		put(out, outlen, &len, "dsn-rcpt %s<%s>\n", words, r->addr);
	}
	return len;
}

/* ---- on the wire ---- */

void params_mail_suffix(const struct params_set *p, bool dsn, bool eightbitmime,
                        char *out, size_t outlen)
{
	size_t len = strlen(out);

	if (p == NULL)
		return;
	if (eightbitmime && p->body != PARAMS_BODY_NONE)
		put(out, outlen, &len, " BODY=%s%s", p->body == PARAMS_BODY_7BIT
		    ? "7BIT" : "8BITMIME", "");
	if (dsn && p->ret != PARAMS_RET_NONE)
		put(out, outlen, &len, " RET=%s%s", p->ret == PARAMS_RET_FULL
		    ? "FULL" : "HDRS", "");
	if (dsn && p->envid != NULL)
		put(out, outlen, &len, " ENVID=%s%s", p->envid, "");
}

void params_rcpt_suffix(const struct params_set *p, const char *addr, bool dsn,
                        char *out, size_t outlen)
{
	const struct params_rcpt *r = find(p, addr);
	unsigned notify = params_notify_of(p, addr);
	size_t len = strlen(out);
	char nb[40];

	if (!dsn)
		return;
	if (notify != 0)
		put(out, outlen, &len, " NOTIFY=%s%s",
		    notify_text(notify, nb, sizeof(nb)), "");
	if (r != NULL && r->orcpt != NULL)
		put(out, outlen, &len, " ORCPT=%s%s", r->orcpt, "");
}
