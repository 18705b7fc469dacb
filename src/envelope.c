/*
 * envelope.c - sender and recipients (see envelope.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "envelope.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

const char *envelope_domain(const struct config *cfg)
{
	static char host[256];

	if (cfg != NULL && cfg->domain != NULL)
		return cfg->domain;
	if (host[0] == '\0') {
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			str_copy(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	}
	return host;
}

/* malloc'd addr, with "@domain" appended when it has no '@'. */
static char *qualify(const char *addr, const char *domain)
{
	size_t n;
	char *q;

	if (addr[0] == '\0' || strchr(addr, '@') != NULL)
		return strdup(addr);
	n = strlen(addr) + strlen(domain) + 2;
	q = malloc(n);
	if (q != NULL)
		snprintf(q, n, "%s@%s", addr, domain);
	return q;
}

int envelope_sender(const struct config *cfg, const char *arg, char **out,
                    char *err, size_t errlen)
{
	const char *src = arg;
	char *parsed = NULL;
	char why[200];

	*out = NULL;
	if (src == NULL)
		src = cfg->from;
	if (src == NULL) {
		struct passwd *pw = getpwuid(getuid());

		src = pw != NULL ? pw->pw_name : getenv("LOGNAME");
		if (src == NULL || *src == '\0')
			src = "nobody";
	}
	if (addr_parse_one(src, &parsed, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "bad sender address: %s", why);
		return -1;
	}
	*out = qualify(parsed, envelope_domain(cfg));
	free(parsed);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static bool listed(const struct addr_list *l, const char *a)
{
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (strcasecmp(l->addrs[i], a) == 0)
			return true;
	}
	return false;
}

static int add_all(const struct config *cfg, const struct addr_list *src,
                   struct addr_list *out, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < src->count; i++) {
		char *q;
		int rc = 0;

		if (src->addrs[i][0] == '\0')
			continue;
		q = qualify(src->addrs[i], envelope_domain(cfg));
		if (q == NULL || (!listed(out, q) && addr_list_add(out, q) != 0))
			rc = -1;
		free(q);
		if (rc != 0) {
			snprintf(err, errlen, "too many recipients or out of "
			         "memory");
			return -1;
		}
	}
	return 0;
}

int envelope_recipients(const struct config *cfg, char **args, size_t nargs,
                        const struct addr_list *hdr, struct addr_list *out,
                        char *err, size_t errlen)
{
	struct addr_list tmp = { 0 };
	char why[200];
	size_t i;
	int rc = 0;

	for (i = 0; i < nargs && rc == 0; i++) {
		if (addr_parse_list(args[i], strlen(args[i]), &tmp, why,
		                    sizeof(why)) != 0) {
			snprintf(err, errlen, "bad recipient address: %s", why);
			rc = -1;
		}
	}
	if (rc == 0)
		rc = add_all(cfg, &tmp, out, err, errlen);
	if (rc == 0 && hdr != NULL)
		rc = add_all(cfg, hdr, out, err, errlen);
	addr_list_free(&tmp);
	return rc;
}
