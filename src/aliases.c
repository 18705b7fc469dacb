/*
 * aliases.c - the aliases file (see aliases.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "aliases.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define MAX_ENTRIES 100000
#define NAME_MAX_LEN 256

struct entry {
	char *name;
	struct addr_list targets;
};

struct aliases {
	struct entry *e;
	size_t n, cap;
	size_t skipped;
	struct addr_list catchall;
	bool has_catchall;
};

void aliases_free(struct aliases *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++) {
		free(a->e[i].name);
		addr_list_free(&a->e[i].targets);
	}
	free(a->e);
	addr_list_free(&a->catchall);
	free(a);
}

size_t aliases_skipped(const struct aliases *a)
{
	return a ? a->skipped : 0;
}

/* The entry for name; a quoted local part ("cron users") matches the
 * entry written "cron users": ... */
static struct entry *find(const struct aliases *a, const char *name)
{
	size_t i, n = strlen(name);

	if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
		name++;
		n -= 2;
	}
	for (i = 0; i < a->n; i++) {
		if (strlen(a->e[i].name) == n &&
		    strncasecmp(a->e[i].name, name, n) == 0)
			return &a->e[i];
	}
	return NULL;
}

/* Add the targets of one entry's value (already joined). */
static int add_targets(struct aliases *a, struct addr_list *t,
                       const char *v, size_t len, char *err, size_t errlen)
{
	struct addr_list parsed = { 0 };
	size_t i, start = 0;
	bool quoted = false;

	/* split at commas outside quotes; drop unusable targets */
	for (i = 0; i <= len; i++) {
		if (i < len && v[i] == '\\' && i + 1 < len) {
			i++;
			continue;
		}
		if (i < len && v[i] == '"')
			quoted = !quoted;
		if (i < len && (v[i] != ',' || quoted))
			continue;
		while (start < i && (v[start] == ' ' || v[start] == '\t'))
			start++;
		if (start < i && (v[start] == '|' || v[start] == '/' ||
		                  (i - start >= 9 &&
		                   strncasecmp(v + start, ":include:", 9) == 0)))
			a->skipped++;
		else if (start < i && addr_parse_list(v + start, i - start, &parsed,
		                                       err, errlen) != 0)
			goto fail;
		start = i + 1;
	}
	for (i = 0; i < parsed.count; i++) {
		const char *tgt = parsed.addrs[i] + (parsed.addrs[i][0] == '"');

		if (tgt[0] == '|' || tgt[0] == '/' ||
		    strncasecmp(tgt, ":include:", 9) == 0) {
			a->skipped++;     /* quoted: "|command", "/file"... */
			continue;
		}
		if (addr_list_add(t, parsed.addrs[i]) != 0) {
			snprintf(err, errlen, "too many targets");
			goto fail;
		}
	}
	addr_list_free(&parsed);
	return 0;
fail:
	addr_list_free(&parsed);
	return -1;
}

static int add_entry(struct aliases *a, const char *s, size_t len,
                     char *err, size_t errlen)
{
	const char *name = s, *colon, *q;
	size_t nlen;
	struct entry *e;
	void *grown;

	/* CRLF line ends: the last one's CR is not part of the value */
	while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == ' ' ||
	                   s[len - 1] == '\t'))
		len--;
	/* aliases(5): a name with blanks or specials is double-quoted */
	q = s[0] == '"' ? memchr(s + 1, '"', len - 1) : NULL;
	if (q != NULL) {
		name = s + 1;
		nlen = (size_t)(q - name);
		colon = q + 1;
		while (colon < s + len && (*colon == ' ' || *colon == '\t'))
			colon++;
		if (colon >= s + len || *colon != ':')
			colon = NULL;
	} else {
		colon = memchr(s, ':', len);
		nlen = colon ? (size_t)(colon - s) : 0;
		while (nlen > 0 && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
			nlen--;
		if (memchr(s, ' ', nlen) != NULL || memchr(s, '"', nlen) != NULL)
			nlen = 0;
	}
	if (colon == NULL)
		return snprintf(err, errlen, "expected \"name: address\""), -1;
	if (nlen == 0 || nlen > NAME_MAX_LEN || memchr(name, '@', nlen) != NULL)
		return snprintf(err, errlen, "bad alias name"), -1;
	if (nlen == 1 && name[0] == '*' && q == NULL) {
		a->has_catchall = true;
		return add_targets(a, &a->catchall, colon + 1,
		                   (size_t)(s + len - colon - 1), err, errlen);
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 32;

		if (a->n >= MAX_ENTRIES)
			return snprintf(err, errlen, "too many aliases"), -1;
		if (cap > MAX_ENTRIES)
			cap = MAX_ENTRIES;
		grown = realloc(a->e, cap * sizeof(*a->e));
		if (grown == NULL)
			return snprintf(err, errlen, "out of memory"), -1;
		a->e = grown;
		a->cap = cap;
	}
	e = &a->e[a->n];
	memset(e, 0, sizeof(*e));
	e->name = str_ndup(name, nlen);
	if (e->name == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	a->n++;
	return add_targets(a, &e->targets, colon + 1,
	                   (size_t)(s + len - colon - 1), err, errlen);
}

/* The extent of the entry starting at text[i]: up to a line that does not
 * start with a blank. Sets *next. */
static size_t entry_end(const char *text, size_t len, size_t i, size_t *next,
                        int *lines)
{
	size_t end = i;

	for (;;) {
		const char *nl = memchr(text + end, '\n', len - end);

		end = nl ? (size_t)(nl - text) : len;
		if (nl == NULL || end + 1 >= len ||
		    (text[end + 1] != ' ' && text[end + 1] != '\t')) {
			*next = nl ? end + 1 : len;
			return end;
		}
		(*lines)++;
		end++;
	}
}

/* Only blanks (and a CR) in s[0..n)? */
static bool blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	}
	return true;
}

int aliases_parse(const char *text, size_t len, struct aliases **out,
                  char *err, size_t errlen)
{
	struct aliases *a = calloc(1, sizeof(*a));
	char why[256];
	size_t i = 0;
	int line = 0;

	*out = NULL;
	if (a == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	while (i < len) {
		size_t next, end;
		int first;

		line++;
		first = line;
		end = entry_end(text, len, i, &next, &line);
		if (memchr(text + i, '\0', end - i) != NULL) {
			snprintf(err, errlen, "line %d: NUL byte", first);
			aliases_free(a);
			return -1;
		}
		if (end > i && text[i] != '#' && !blank(text + i, end - i) &&
		    add_entry(a, text + i, end - i, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "line %d: %s", first, why);
			aliases_free(a);
			return -1;
		}
		i = next;
	}
	*out = a;
	return 0;
}

int aliases_load(const char *path, struct aliases **out, char *err,
                 size_t errlen)
{
	char why[300];
	struct stat st;
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc;

	*out = NULL;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > ALIASES_MAX_BYTES) {
		snprintf(err, errlen, "aliases %s: %s", path,
		         fd < 0 ? strerror(errno) : "not a regular file or "
		         "too large");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf != NULL && len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL) {
		snprintf(err, errlen, "aliases %s: out of memory", path);
		return -1;
	}
	rc = aliases_parse(buf, len, out, why, sizeof(why));
	free(buf);
	if (rc != 0)    /* "line N: reason" -> "PATH:N: reason" */
		snprintf(err, errlen, "%s:%s", path, why + 5);
	return rc;
}

struct walk {
	const struct aliases *a;
	struct addr_list seen;      /* names on the current path */
	struct addr_list *out;
	char *err;
	size_t errlen;
};

/* A local name without an entry: to the catch-all, whose local names
 * are expanded through entries only (never through the catch-all again). */
static int expand(struct walk *w, const char *name, int depth, bool via_all);

static int no_entry(struct walk *w, const char *name, int depth, bool via_all)
{
	const struct addr_list *t = &w->a->catchall;
	size_t i;

	if (!w->a->has_catchall || via_all || t->count == 0)
		return addr_list_add(w->out, name);
	for (i = 0; i < t->count; i++) {
		int rc = strchr(t->addrs[i], '@') != NULL
		         ? addr_list_add(w->out, t->addrs[i])
		         : expand(w, t->addrs[i], depth + 1, true);

		if (rc != 0)
			return -1;
	}
	return 0;
}

static int expand(struct walk *w, const char *name, int depth, bool via_all)
{
	const struct entry *e = find(w->a, name);
	size_t i;

	if (depth > ALIASES_MAX_DEPTH)
		return snprintf(w->err, w->errlen, "aliases nested too deep at "
		                "%s", name), -1;
	if (e == NULL)
		return no_entry(w, name, depth, via_all);
	for (i = 0; i < w->seen.count; i++) {
		if (strcasecmp(w->seen.addrs[i], name) == 0)
			return snprintf(w->err, w->errlen, "alias loop at %s",
			                name), -1;
	}
	if (addr_list_add(&w->seen, name) != 0)
		return -1;
	if (e->targets.count == 0)
		return snprintf(w->err, w->errlen, "alias %s has no target a "
		                "relay can deliver to (pipes, files and includes "
		                "are skipped)", name), -1;
	for (i = 0; i < e->targets.count; i++) {
		const char *t = e->targets.addrs[i];
		int rc;

		if (strchr(t, '@') != NULL || strcasecmp(t, name) == 0)
			rc = addr_list_add(w->out, t);  /* "root: root" ends here */
		else
			rc = expand(w, t, depth + 1, via_all);
		if (rc != 0)
			return -1;
	}
	free(w->seen.addrs[--w->seen.count]);
	return 0;
}

int aliases_expand(const struct aliases *a, const char *name,
                   struct addr_list *out, char *err, size_t errlen)
{
	struct walk w = { a, { 0 }, out, err, errlen };
	int rc;

	err[0] = '\0';
	rc = expand(&w, name, 0, false);
	addr_list_free(&w.seen);
	if (rc != 0 && err[0] == '\0')
		snprintf(err, errlen, "too many recipients or out of memory");
	return rc;
}
