/*
 * message_fields.c - the header fields outbox adds to a message that has
 * none (From, Date, Message-ID), and the check of a -F full name, for the
 * message reader (message.c; see message_int.h).
 */
#define _GNU_SOURCE
#include "message_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void message_field_date(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (strftime(buf, n, "Date: %a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		buf[0] = '\0';
}

void message_field_msgid(char *buf, size_t n, const char *domain)
{
	unsigned int rnd[2] = { 0, 0 };
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32];

	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd[1] ^= (unsigned int)clock();
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	snprintf(buf, n, "Message-ID: <%s.%ld.%08x%08x@%s>", stamp,
	         (long)getpid(), rnd[0], rnd[1], domain);
}

/* Does the name need quoting as a display name (RFC 5322 phrase)? */
static bool needs_quotes(const char *name)
{
	const char *p;

	if (name[0] == ' ' || name[0] == '\0')
		return true;
	for (p = name; *p != '\0'; p++) {
		if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			return true;
	}
	return p[-1] == ' ';
}

void message_field_from(const struct message_opts *mo, char *buf,
                        size_t n)
{
	const char *name = mo->fullname;
	const char *addr = mo->sender;
	char fallback[300];
	size_t i, o = 0;

	if (headers_from_applies(mo->headers, addr))
		addr = mo->headers->from;     /* from-header */
	if (addr[0] == '\0') {
		snprintf(fallback, sizeof(fallback), "MAILER-DAEMON@%s",
		         mo->domain);
		addr = fallback;
	}
	if (name == NULL || name[0] == '\0') {
		snprintf(buf, n, "From: %s", addr);
		return;
	}
	o = (size_t)snprintf(buf, n, "From: ");
	if (needs_quotes(name))
		buf[o++] = '"';
	for (i = 0; name[i] != '\0' && o + 4 < n; i++) {
		if (needs_quotes(name) && (name[i] == '"' || name[i] == '\\'))
			buf[o++] = '\\';
		buf[o++] = name[i];
	}
	if (needs_quotes(name))
		buf[o++] = '"';
	snprintf(buf + o, n - o, " <%s>", addr);
}

bool message_bad_fullname(const char *name)
{
	const unsigned char *p;

	if (name == NULL)
		return false;
	if (strlen(name) > FULLNAME_MAX)
		return true;
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p < ' ' || *p == 0x7f)
			return true;
	}
	return false;
}
