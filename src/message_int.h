/*
 * message_int.h - what the message reader (message.c) takes from
 * message_fields.c; nothing else includes it.
 */
#ifndef OUTBOX_MESSAGE_INT_H
#define OUTBOX_MESSAGE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "message.h"

#define FULLNAME_MAX 256

/* "Date: ..." now, in local time (RFC 5322 3.3); "" if it cannot be made. */
void message_field_date(char *buf, size_t n);

/* "Message-ID: <time.pid.random@domain>". */
void message_field_msgid(char *buf, size_t n, const char *domain);

/* "From: [name ]<addr>": o's full name (quoted where a phrase needs it)
 * and its sender, or the from-header address when that applies, or
 * MAILER-DAEMON@domain for the null sender. */
void message_field_from(const struct message_opts *mo, char *buf,
                        size_t n);

/* Is a -F full name too long, or has it control characters? */
bool message_bad_fullname(const char *name);

#endif
