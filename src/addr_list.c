/*
 * addr_list.c - the growable lists of addresses (and of spans) that the
 * address parser (address.c) fills and the rest of outbox passes around
 * (see address.h).
 */
#include "address.h"

#include <stdlib.h>
#include <string.h>

void addr_list_truncate(struct addr_list *l, size_t keep)
{
	while (l->count > keep) {
		l->count--;
		free(l->addrs[l->count]);
		l->addrs[l->count] = NULL;
	}
}

void addr_spans_free(struct addr_spans *sp)
{
	if (sp == NULL)
		return;
	free(sp->v);
	sp->v = NULL;
	sp->count = 0;
	sp->cap = 0;
}

int addr_list_add(struct addr_list *l, const char *addr)
{
	size_t n;
	char *copy;

	if (l == NULL || addr == NULL || l->count >= ADDR_MAX_COUNT)
		return -1;
	if (l->count >= l->cap) {
		size_t ncap = l->cap < 8 ? 8 : l->cap * 2;
		char **na;

		if (ncap > ADDR_MAX_COUNT)
			ncap = ADDR_MAX_COUNT;
		na = realloc(l->addrs, ncap * sizeof(*na));
		if (na == NULL)
			return -1;
		l->addrs = na;
		l->cap = ncap;
	}
	n = strlen(addr);
	copy = malloc(n + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, addr, n + 1);
	l->addrs[l->count++] = copy;
	return 0;
}

void addr_list_free(struct addr_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->count; i++)
		free(l->addrs[i]);
	free(l->addrs);
	l->addrs = NULL;
	l->count = 0;
	l->cap = 0;
}
