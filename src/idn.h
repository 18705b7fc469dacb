/*
 * idn.h - addresses for a smarthost that does not offer SMTPUTF8 (RFC
 * 6531): a non-ASCII domain goes in its ACE form ("xn--..."), converted
 * with libidn2 (IDNA2008 with the UTS #46 mapping, as Postfix and curl
 * do); a non-ASCII local part cannot be written in ASCII at all.
 */
#ifndef OUTBOX_IDN_H
#define OUTBOX_IDN_H

#include <stdbool.h>
#include <stddef.h>

/* Is s all ASCII? */
bool idn_is_ascii(const char *s);

enum idn_result {
	IDN_OK = 0,        /* *out is the ASCII form (malloc'd) */
	IDN_LOCAL_UTF8,    /* the local part is not ASCII: needs SMTPUTF8 */
	IDN_BAD_DOMAIN,    /* the domain is no valid IDN (err says why) */
	IDN_NOMEM
};

/*
 * addr ("local@domain", or "" for the null sender) with its domain in
 * ACE form. An ASCII address is copied as it is. err gets a one-line
 * reason for anything but IDN_OK.
 */
enum idn_result idn_address_ascii(const char *addr, char **out, char *err,
                                  size_t errlen);

#endif
