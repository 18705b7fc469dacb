/*
 * idn.c - non-ASCII addresses for servers without SMTPUTF8 (see idn.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "idn.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool idn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

enum idn_result idn_address_ascii(const char *addr, char **out, char *err,
                                  size_t errlen)
{
	const char *at = strrchr(addr, '@');
	char *local, *ace = NULL;
	size_t n;
	int rc;

	*out = NULL;
	if (idn_is_ascii(addr)) {
		*out = strdup(addr);
		return *out ? IDN_OK : IDN_NOMEM;
	}
	local = str_ndup(addr, at ? (size_t)(at - addr) : strlen(addr));
	if (local == NULL)
		return IDN_NOMEM;
	if (!idn_is_ascii(local) || at == NULL) {
		free(local);
		snprintf(err, errlen, "the local part of <%.300s> is not ASCII, "
		         "which needs a smarthost that offers SMTPUTF8", addr);
		return IDN_LOCAL_UTF8;
	}
	rc = idn2_to_ascii_8z(at + 1, &ace, IDN2_NONTRANSITIONAL |
	                      IDN2_NFC_INPUT);
	if (rc != IDN2_OK) {
		free(local);
		snprintf(err, errlen, "the domain of <%.300s> is no valid "
		         "international domain name: %s", addr,
		         idn2_strerror(rc));
		return IDN_BAD_DOMAIN;
	}
	n = strlen(local) + strlen(ace) + 2;
	*out = malloc(n);
	if (*out != NULL)
		snprintf(*out, n, "%s@%s", local, ace);
	free(local);
	idn2_free(ace);
	return *out ? IDN_OK : IDN_NOMEM;
}
