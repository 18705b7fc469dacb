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

#include "aliases.h"
#include "util.h"

static const char *host_name(void)
{
	static char host[256];

	if (host[0] == '\0') {
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			str_copy(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
	}
	return host;
}

/*
 * The dotted name /etc/hosts gives host (the resolver's "files" answer),
 * into out. No DNS query: a resolver that does not answer would stall
 * every send for seconds, beyond outbox's own timeout.
 */
static bool hosts_fqdn(const char *host, char *out, size_t n)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen("/etc/hosts", "re");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *tok = line, *dotted = NULL;
		bool has_host = false, first = true;
		size_t k, hl = strlen(host);

		line[strcspn(line, "#")] = '\0';
		for (;;) {
			tok += strspn(tok, " \t\r\n");
			k = strcspn(tok, " \t\r\n");
			if (k == 0)
				break;
			if (tok[k] != '\0')
				tok[k++] = '\0';
			if (!first && strcasecmp(tok, host) == 0)
				has_host = true;
			else if (!first && dotted == NULL && strncasecmp(tok, host,
			         hl) == 0 && tok[hl] == '.')
				dotted = tok;           /* host.example.com */
			first = false;          /* the first field is the address */
			tok += k;
		}
		if (has_host && dotted != NULL)
			found = str_copy(out, n, dotted);
	}
	fclose(f);
	return found;
}

const char *envelope_fqdn(const struct config *cfg)
{
	static char fqdn[256];
	const char *host = host_name();

	if (fqdn[0] != '\0')
		return fqdn;
	if (strchr(host, '.') != NULL && !str_nieq(host, "localhost", 9))
		str_copy(fqdn, sizeof(fqdn), host);
	else if (!hosts_fqdn(host, fqdn, sizeof(fqdn)))
		str_copy(fqdn, sizeof(fqdn), cfg != NULL && cfg->domain != NULL
		                             ? cfg->domain : host);
	return fqdn;
}

const char *envelope_domain(const struct config *cfg)
{
	if (cfg != NULL && cfg->domain != NULL)
		return cfg->domain;
	return host_name();
}

bool envelope_is_local(const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (addr[0] == '\0')
		return false;
	if (at == NULL)
		return true;
	at++;
	return strcasecmp(at, "localhost") == 0 ||
	       strcasecmp(at, "localhost.localdomain") == 0 ||
	       strcasecmp(at, host_name()) == 0;
}

/* The local part of a local address (malloc'd), or NULL. */
static char *local_part(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return str_ndup(addr, at ? (size_t)(at - addr) : strlen(addr));
}

/* malloc'd addr, with "@domain" appended (or replacing a local domain). */
static char *qualify(const char *addr, const char *domain)
{
	char *local;
	size_t n;
	char *q;

	if (!envelope_is_local(addr))
		return strdup(addr);
	local = local_part(addr);
	if (local == NULL)
		return NULL;
	n = strlen(local) + strlen(domain) + 2;
	q = malloc(n);
	if (q != NULL)
		snprintf(q, n, "%s@%s", local, domain);
	free(local);
	return q;
}

/*
 * The caller's login name: its uid's passwd entry. Without one, "uidN",
 * except that a caller who may set any sender anyway (no allow-from, not
 * the setgid binary) may name itself with LOGNAME.
 */
static const char *login_name(const struct config *cfg)
{
	static char byuid[32];
	struct passwd *pw = getpwuid(getuid());
	const char *env = getenv("LOGNAME");

	if (pw != NULL && pw->pw_name[0] != '\0')
		return pw->pw_name;
	if (cfg->allow_from == NULL && !cfg->privileged && env != NULL &&
	    *env != '\0')
		return env;
	snprintf(byuid, sizeof(byuid), "uid%lu", (unsigned long)getuid());
	return byuid;
}

/* May this caller name parsed (qualified as q) as the sender? */
static bool sender_allowed(const struct config *cfg, const char *parsed,
                           const char *q)
{
	const char *me = login_name(cfg);
	const char *list = cfg->allow_from;
	size_t n = strlen(me);

	if (getuid() == 0 || list == NULL)
		return true;
	if (strcmp(parsed, me) == 0 ||
	    (strncmp(q, me, n) == 0 && q[n] == '@' &&
	     strcasecmp(q + n + 1, envelope_domain(cfg)) == 0))
		return true;            /* one's own address */
	while (*list != '\0') {
		size_t k = strcspn(list, " \t,");

		if (k == n && strncmp(list, me, n) == 0)
			return true;
		list += k;
		list += strspn(list, " \t,");
	}
	return false;
}

static bool rewrite_wanted(const struct config *cfg, const char *addr)
{
	if (cfg->from == NULL || addr[0] == '\0')
		return false;
	if (cfg->from_rewrite == REWRITE_ALWAYS)
		return true;
	return cfg->from_rewrite == REWRITE_LOCAL && envelope_is_local(addr);
}

int envelope_sender(const struct config *cfg, const char *arg, char **out,
                    char *err, size_t errlen)
{
	const char *src = arg ? arg : cfg->from ? cfg->from : login_name(cfg);
	char *parsed = NULL, *q;
	char why[200];
	bool allowed = true;

	*out = NULL;
	if (addr_parse_one(src, &parsed, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "bad sender address: %s", why);
		return -1;
	}
	if (arg != NULL) {
		/* judged as given, before any rewriting */
		q = parsed[0] ? qualify(parsed, envelope_domain(cfg)) : NULL;
		allowed = sender_allowed(cfg, parsed, q ? q : "");
		free(q);
	}
	if (!allowed) {
		snprintf(err, errlen, "user %s may not set the sender "
		         "(allow-from)", login_name(cfg));
		free(parsed);
		return -2;
	}
	if (rewrite_wanted(cfg, parsed) && strcmp(src, cfg->from) != 0) {
		free(parsed);
		if (addr_parse_one(cfg->from, &parsed, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "bad from address: %s", why);
			return -1;
		}
	}
	*out = parsed[0] ? qualify(parsed, envelope_domain(cfg)) : strdup("");
	free(parsed);
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

const struct config *envelope_account(const struct config *cfg,
                                      const char *arg)
{
	const struct config *root = config_root(cfg);
	char *parsed = NULL, *q = NULL;
	char why[200];
	const struct config *a = root;

	if (root->naccounts == 0)
		return root;
	if (addr_parse_one(arg ? arg : login_name(root), &parsed, why,
	                   sizeof(why)) != 0)
		return root;    /* envelope_sender says what is wrong */
	if (parsed[0] != '\0')
		q = qualify(parsed, envelope_domain(root));
	if (q != NULL)
		a = config_account_for(root, q);
	free(q);
	free(parsed);
	return a;
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

static int add_one(const struct config *cfg, const char *addr,
                   struct addr_list *out)
{
	char *q = qualify(addr, envelope_domain(cfg));
	int rc = 0;

	if (q == NULL || (!listed(out, q) && addr_list_add(out, q) != 0))
		rc = -1;
	free(q);
	return rc;
}

/* Append src's addresses to out: aliases for local ones, then qualified. */
static int add_all(const struct config *cfg, const struct aliases *al,
                   const struct addr_list *src, struct addr_list *out,
                   char *err, size_t errlen)
{
	size_t i, k;

	for (i = 0; i < src->count; i++) {
		struct addr_list exp = { 0 };
		char *local;
		int rc = 0;

		if (src->addrs[i][0] == '\0')
			continue;
		if (al == NULL || !envelope_is_local(src->addrs[i])) {
			if (add_one(cfg, src->addrs[i], out) != 0)
				goto nomem;
			continue;
		}
		local = local_part(src->addrs[i]);
		if (local == NULL ||
		    aliases_expand(al, local, &exp, err, errlen) != 0) {
			free(local);
			addr_list_free(&exp);
			return -2;
		}
		for (k = 0; k < exp.count && rc == 0; k++)
			rc = add_one(cfg, exp.addrs[k], out);
		free(local);
		addr_list_free(&exp);
		if (rc != 0)
			goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "too many recipients or out of memory");
	return -1;
}

int envelope_recipients(const struct config *cfg, char **args, size_t nargs,
                        const struct addr_list *hdr, struct addr_list *out,
                        char *err, size_t errlen)
{
	struct addr_list tmp = { 0 };
	struct aliases *al = NULL;
	char why[300];
	size_t i;
	int rc = 0;

	if (cfg->aliases != NULL &&
	    aliases_load(cfg->aliases, &al, err, errlen) != 0)
		return -2;
	for (i = 0; i < nargs && rc == 0; i++) {
		if (addr_parse_list(args[i], strlen(args[i]), &tmp, why,
		                    sizeof(why)) != 0) {
			snprintf(err, errlen, "bad recipient address: %s", why);
			rc = -1;
		}
	}
	if (rc == 0)
		rc = add_all(cfg, al, &tmp, out, err, errlen);
	if (rc == 0 && hdr != NULL)
		rc = add_all(cfg, al, hdr, out, err, errlen);
	addr_list_free(&tmp);
	aliases_free(al);
	return rc;
}

int envelope_header_policy(const struct config *cfg,
                           struct headers_policy *p, char **from_buf,
                           char *err, size_t errlen)
{
	char *parsed = NULL;
	char why[200];

	memset(p, 0, sizeof(*p));
	*from_buf = NULL;
	p->domain = cfg->qualify_headers ? envelope_domain(cfg) : NULL;
	p->is_local = envelope_is_local;
	p->from_mode = cfg->from_header == FROM_HEADER_ALWAYS
	                   ? HEADERS_FROM_ALWAYS
	               : cfg->from_header == FROM_HEADER_LOCAL
	                   ? HEADERS_FROM_LOCAL : HEADERS_FROM_KEEP;
	if (cfg->from == NULL || p->from_mode == HEADERS_FROM_KEEP)
		return 0;
	if (addr_parse_one(cfg->from, &parsed, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "bad from address: %s", why);
		return -1;
	}
	if (parsed[0] != '\0') {
		*from_buf = qualify(parsed, envelope_domain(cfg));
		if (*from_buf == NULL) {
			free(parsed);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	free(parsed);
	p->from = *from_buf;
	return 0;
}

char *envelope_dsn_from(const struct config *cfg)
{
	struct headers_policy p;
	char *from = NULL;
	char err[300];

	if (envelope_header_policy(cfg, &p, &from, err, sizeof(err)) != 0)
		return NULL;
	if (!headers_from_applies(&p, "")) {
		free(from);
		return NULL;
	}
	return from;
}
