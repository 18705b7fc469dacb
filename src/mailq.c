/*
 * mailq.c - listing the queue (see mailq.h).
 */
#define _GNU_SOURCE
#include "mailq.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util.h"

static void format_age(char *buf, size_t n, long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, n, "%lds", secs);
	else if (secs < 7200)
		snprintf(buf, n, "%ldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, n, "%ldh", secs / 3600);
	else
		snprintf(buf, n, "%ldd", secs / 86400);
}

static void list_one(FILE *out, const struct store_entry *e, off_t size)
{
	char age[32], next[32], when[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	format_age(age, sizeof(age), (long)(now - e->created));
	localtime_r(&e->next, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (e->next <= now)
		str_copy(next, sizeof(next), "now");
	else
		format_age(next, sizeof(next), (long)(e->next - now));
	fprintf(out, "%s  %lld bytes  age %s  from <%s>\n", e->id,
	        (long long)size, age, e->sender);
	fprintf(out, "    attempts %ld, next attempt %s%s (%s)\n", e->attempts,
	        e->next <= now ? "" : "in ", next, when);
	if (e->last_error[0] != '\0')
		fprintf(out, "    last error: %s\n", e->last_error);
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

static void json_one(FILE *out, const struct store_entry *e, off_t size)
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
		fprintf(out, ",\"state\":\"%s\"}",
		        e->attempts > 0 ? "deferred" : "queued");
	}
	fprintf(out, "],\"attempts\":%ld,\"next_attempt\":%lld,"
	        "\"last_error\":", e->attempts, (long long)e->next);
	json_string(out, e->last_error);
	fprintf(out, ",\"uid\":%lu}", (unsigned long)e->uid);
}

int mailq_print(struct store *q, FILE *out, bool json, char *err,
                size_t errlen)
{
	struct addr_list ids = { 0 };
	long long total = 0;
	size_t i, shown = 0, hidden = 0;

	if (store_ids(q, STORE_MSG, &ids) != 0) {
		snprintf(err, errlen, "cannot read queue msg/: %s",
		         strerror(errno));
		return -1;
	}
	for (i = 0; i < ids.count; i++) {
		struct store_entry e;
		off_t size;

		if (store_load(q, STORE_MSG, ids.addrs[i], &e) != 0)
			continue;
		if (!store_is_mine(q, &e)) {
			hidden++;
			store_entry_free(&e);
			continue;
		}
		size = store_size(q, STORE_MSG, e.id);
		if (size < 0)
			size = 0;
		if (json)
			fputs(shown > 0 ? ",\n" : "[\n", out);
		else if (shown > 0)
			fputc('\n', out);
		if (json)
			json_one(out, &e, size);
		else
			list_one(out, &e, size);
		total += size;
		shown++;
		store_entry_free(&e);
	}
	addr_list_free(&ids);
	if (json)
		fputs(shown > 0 ? "\n]\n" : "[]\n", out);
	else if (shown == 0 && hidden == 0)
		fprintf(out, "Mail queue is empty\n");
	else if (shown > 0)
		fprintf(out, "\n-- %zu message%s, %lld bytes in the queue\n",
		        shown, shown == 1 ? "" : "s", total);
	if (!json && hidden > 0)
		fprintf(out, "%s%zu message(s) of other users not shown\n",
		        shown > 0 ? "-- " : "No messages of yours in the queue; ",
		        hidden);
	return 0;
}
