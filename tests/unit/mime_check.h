/*
 * mime_check.h - what the unit tests of mime.c and mime_parts.c share: a
 * byte buffer, the comparison that shows where two outputs differ, and
 * a hex digit's value. Included after cmocka.h.
 */
#ifndef OUTBOX_TEST_MIME_CHECK_H
#define OUTBOX_TEST_MIME_CHECK_H

#include <stddef.h>

struct buf {
	char *p;
	size_t len;
};

/* Show where two byte strings first differ (up to 100 octets of each). */
static void assert_bytes(const char *what, const char *got, size_t glen,
                         const char *want, size_t wlen)
{
	size_t i = 0;

	while (i < glen && i < wlen && got[i] == want[i])
		i++;
	if (i == glen && i == wlen)
		return;
	fail_msg("%s: differs at byte %zu (got %zu bytes, want %zu)\n"
	         "got:  [%.*s]\nwant: [%.*s]", what, i, glen, wlen,
	         (int)(glen - i < 100 ? glen - i : 100), got + i,
	         (int)(wlen - i < 100 ? wlen - i : 100), want + i);
}

/* The value of an upper-case hex digit, or -1. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
