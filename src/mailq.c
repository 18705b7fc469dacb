/*
 * mailq.c - listing the queue (see mailq.h).
 */
#define _GNU_SOURCE
#include "mailq.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util.h"

static void list_one(FILE *out, const struct store_entry *e, off_t size,
                     bool failed)
{
	char age[32], next[32], when[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	format_age(age, sizeof(age), (long long)(now - e->created));
	localtime_r(&e->next, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (e->next <= now)
		str_copy(next, sizeof(next), "now");
	else
		format_age(next, sizeof(next), (long long)(e->next - now));
	fprintf(out, "%s  %lld bytes  age %s  from <%s>\n", e->id,
	        (long long)size, age, e->sender);
	if (failed)
		fprintf(out, "    failed after %ld attempt%s\n", e->attempts,
		        e->attempts == 1 ? "" : "s");
	else
		fprintf(out, "    attempts %ld, next attempt %s%s (%s)\n",
		        e->attempts, e->next <= now ? "" : "in ", next, when);
	if (e->account != NULL)
		fprintf(out, "    account %s\n", e->account);
	if (e->last_error[0] != '\0')
		fprintf(out, "    %s error: %s\n", failed ? "final" : "last",
		        e->last_error);
	for (i = 0; i < e->rcpts.count; i++)
		fprintf(out, "    to <%s>\n", e->rcpts.addrs[i]);
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_one(FILE *out, const struct store_entry *e, off_t size,
                     bool failed)
{
	size_t i;

	fputs("{\"id\":", out);
	json_string(out, e->id);
	fprintf(out, ",\"size\":%lld,\"arrival\":%lld,\"sender\":",
	        (long long)size, (long long)e->created);
	json_string(out, e->sender);
	fputs(",\"recipients\":[", out);
	for (i = 0; i < e->rcpts.count; i++) {
		fputs(i ? ",{\"address\":" : "{\"address\":", out);
		json_string(out, e->rcpts.addrs[i]);
		fprintf(out, ",\"state\":\"%s\"}", failed ? "failed"
		        : e->attempts > 0 ? "deferred" : "queued");
	}
	fprintf(out, "],\"attempts\":%ld,\"next_attempt\":%lld,"
	        "\"last_error\":", e->attempts, (long long)e->next);
	json_string(out, e->last_error);
	fprintf(out, ",\"uid\":%lu,\"account\":", (unsigned long)e->uid);
	json_string(out, e->account ? e->account : "default");
	fputc('}', out);
}

struct tally {
	size_t shown, hidden, unreadable;
	long long total;
};

/* One entry of area, counted in t. */
static void print_one(struct store *q, FILE *out, enum store_area area,
                      bool json, const char *id, struct tally *t)
{
	struct store_entry e;
	off_t size;

	if (store_load(q, area, id, &e) != 0) {
		/* gone since it was listed (ENOENT), or cannot be read */
		t->unreadable += errno != ENOENT;
		return;
	}
	if (!store_is_mine(q, &e)) {
		t->hidden++;
		store_entry_free(&e);
		return;
	}
	size = store_size(q, area, e.id);
	if (size < 0)
		size = 0;
	if (json)
		fputs(t->shown > 0 ? ",\n" : "[\n", out);
	else if (t->shown > 0)
		fputc('\n', out);
	if (json)
		json_one(out, &e, size, area == STORE_FAILED);
	else
		list_one(out, &e, size, area == STORE_FAILED);
	t->total += size;
	t->shown++;
	store_entry_free(&e);
}

/* The text listing's last lines: totals, others' messages, unreadable
 * envelopes (never "empty" while there are any). */
static void print_footer(FILE *out, enum store_area area,
                         const struct tally *t)
{
	const char *where = area == STORE_FAILED ? "failed/" : "the queue";

	if (t->shown == 0 && t->hidden == 0 && t->unreadable == 0)
		fprintf(out, area == STORE_FAILED ? "No failed messages\n"
		                                  : "Mail queue is empty\n");
	else if (t->shown > 0)
		fprintf(out, "\n-- %zu message%s, %lld bytes in %s\n",
		        t->shown, t->shown == 1 ? "" : "s", t->total, where);
	if (t->hidden > 0)
		fprintf(out, "%s%zu message(s) of other users not shown\n",
		        t->shown > 0 ? "-- " : "No messages of yours in the "
		                               "queue; ", t->hidden);
	if (t->unreadable > 0)
		fprintf(out, "-- %zu message(s) in %s whose envelope cannot be "
		        "read (see the log; root can inspect %s)\n",
		        t->unreadable, where,
		        area == STORE_FAILED ? "failed/" : "msg/");
}

int mailq_print(struct store *q, FILE *out, enum store_area area, bool json,
                char *err, size_t errlen)
{
	struct addr_list ids = { 0 };
	struct tally t = { 0 };
	size_t i;

	if (store_ids(q, area, &ids) != 0) {
		snprintf(err, errlen, "cannot read queue %s: %s",
		         area == STORE_FAILED ? "failed/" : "msg/",
		         strerror(errno));
		return -1;
	}
	for (i = 0; i < ids.count; i++)
		print_one(q, out, area, json, ids.addrs[i], &t);
	addr_list_free(&ids);
	if (!json)
		print_footer(out, area, &t);
	else {
		fputs(t.shown > 0 ? "\n]\n" : "[]\n", out);
		if (t.unreadable > 0)   /* stdout stays one JSON array */
			fprintf(stderr, "outbox: %zu message(s) whose envelope "
			        "cannot be read\n", t.unreadable);
	}
	return 0;
}
