/*
 * limits.c - connection slots and rate limits per smarthost (see
 * limits.h).
 */
#define _GNU_SOURCE
#include "limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct limits {
	const struct config *cfg;
	struct store *s;
	int slot[CONFIG_MAX_SMARTHOSTS];        /* -1: none held */
};

struct limits *limits_new(const struct config *cfg, struct store *s)
{
	struct limits *l = calloc(1, sizeof(*l));
	size_t i;

	if (l == NULL)
		return NULL;
	l->cfg = cfg;
	l->s = s;
	for (i = 0; i < CONFIG_MAX_SMARTHOSTS; i++)
		l->slot[i] = -1;
	return l;
}

void limits_set_store(struct limits *l, struct store *s)
{
	if (l != NULL)
		l->s = s;
}

void limits_free(struct limits *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < CONFIG_MAX_SMARTHOSTS; i++) {
		if (l->slot[i] >= 0)
			close(l->slot[i]);
	}
	free(l);
}

size_t limits_fds(const struct limits *l, int *fds, size_t max)
{
	size_t i, n = 0;

	for (i = 0; l != NULL && i < CONFIG_MAX_SMARTHOSTS && n < max; i++) {
		if (l->slot[i] >= 0)
			fds[n++] = l->slot[i];
	}
	return n;
}

static void host_key(const struct limits *l, size_t host, char *key,
                     size_t n)
{
	/* a named account's traffic is counted apart from the others' */
	snprintf(key, n, "%s%s%s:%d", l->cfg->account ? l->cfg->account : "",
	         l->cfg->account ? "@" : "", l->cfg->hosts[host].host,
	         l->cfg->hosts[host].port);
}

/* A connection slot for host, once per process. */
static enum limits_verdict take_slot(struct limits *l, size_t host,
                                     const char *key, char *why,
                                     size_t whylen)
{
	if (l->cfg->max_connections <= 0 || l->slot[host] >= 0)
		return LIMITS_GO;
	l->slot[host] = store_slot(l->s, key, l->cfg->max_connections);
	if (l->slot[host] >= 0)
		return LIMITS_GO;
	if (errno == EWOULDBLOCK) {
		snprintf(why, whylen, "all %ld connections to %s are in use "
		         "(max-connections)", l->cfg->max_connections, key);
		return LIMITS_BUSY;
	}
	log_event(LOG_WARNING, "smarthost %s: cannot take a connection slot "
	          "(%s); sending without one", key, strerror(errno));
	return LIMITS_GO;
}

/* The longest count of any limit: how many send times to keep. */
static size_t longest(const struct config *cfg)
{
	size_t i;
	long most = 0;

	for (i = 0; i < cfg->nrates; i++)
		most = cfg->rates[i].count > most ? cfg->rates[i].count : most;
	return (size_t)most;
}

/* Milliseconds since the epoch. */
static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Milliseconds until every limit allows one more send, given the send
 * times ts[0..n) in milliseconds (oldest first); 0 when one may go now. */
static long long wait_for(const struct config *cfg, const long long *ts,
                          size_t n, long long now, size_t *which)
{
	long long wait = 0;
	size_t i;

	for (i = 0; i < cfg->nrates; i++) {
		const struct rate_limit *r = &cfg->rates[i];
		long long end;

		if ((size_t)r->count > n)
			continue;
		/* the count-th most recent send must be a period ago */
		end = ts[n - (size_t)r->count] + (long long)r->period * 1000;
		if (end > now && end - now > wait) {
			wait = end - now;
			*which = i;
		}
	}
	return wait;
}

static enum limits_verdict take_rate(struct limits *l, const char *key,
                                     char *why, size_t whylen)
{
	size_t keep = longest(l->cfg), n = 0, which = 0;
	long long now = now_ms(), *ts, wait;
	enum limits_verdict v = LIMITS_GO;
	int lock;

	if (l->cfg->nrates == 0)
		return LIMITS_GO;
	ts = calloc(keep, sizeof(*ts));
	lock = store_stamps_lock(l->s, key);
	if (ts == NULL || lock < 0 ||
	    store_stamps_read(l->s, key, ts, keep, &n) != 0) {
		log_event(LOG_WARNING, "smarthost %s: cannot read its send log "
		          "(%s); rate-limit not applied", key, strerror(errno));
	} else if ((wait = wait_for(l->cfg, ts, n, now, &which)) > 0) {
		snprintf(why, whylen, "rate-limit %ld/%lds of %s reached; the "
		         "next message may go in %llds",
		         l->cfg->rates[which].count, l->cfg->rates[which].period,
		         key, (wait + 999) / 1000);
		v = LIMITS_WAIT;
	} else if (store_stamps_add(l->s, key, now, keep) != 0) {
		log_event(LOG_WARNING, "smarthost %s: cannot write its send log: "
		          "%s", key, strerror(errno));
	}
	if (lock >= 0)
		close(lock);
	free(ts);
	return v;
}

enum limits_verdict limits_check(struct limits *l, size_t host, char *why,
                                 size_t whylen)
{
	char key[300];
	enum limits_verdict v;

	if (l == NULL || host >= l->cfg->nhosts)
		return LIMITS_GO;
	host_key(l, host, key, sizeof(key));
	v = take_slot(l, host, key, why, whylen);
	if (v == LIMITS_GO)
		v = take_rate(l, key, why, whylen);
	return v;
}

int limits_gate(void *arg, size_t host, char *why, size_t whylen)
{
	return (int)limits_check(arg, host, why, whylen);
}

bool limits_slot_free(struct limits *l)
{
	char key[300];
	size_t h;
	int fd;

	if (l == NULL || l->cfg->max_connections <= 0)
		return true;
	for (h = 0; h < l->cfg->nhosts; h++) {
		host_key(l, h, key, sizeof(key));
		fd = store_slot(l->s, key, l->cfg->max_connections);
		if (fd >= 0) {
			close(fd);
			return true;
		}
	}
	return false;
}
