/*
 * envelope.h - the envelope: who the message is from and who gets it.
 */
#ifndef OUTBOX_ENVELOPE_H
#define OUTBOX_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "config.h"
#include "headers.h"

/*
 * The domain that qualifies bare local names: the "domain" key, else the
 * host's name. Returns a pointer to static storage (valid until exit).
 */
const char *envelope_domain(const struct config *cfg);

/*
 * The name to greet the smarthost with when "helo" is not set: the host's
 * fully qualified name (a dotted host name, or the dotted name /etc/hosts
 * gives it; no DNS query, which could stall), else the "domain" key, else
 * the plain host name; never "localhost", which relays refuse. Static.
 */
const char *envelope_fqdn(const struct config *cfg);

/* Is addr local to this host: a bare name, or @localhost / @this host? */
bool envelope_is_local(const char *addr);

/*
 * The envelope sender: arg (from -f/-r or MAIL FROM, may be "<>" or a
 * bare name), else the "from" key, else the invoking user's login name;
 * rewritten to the "from" key as from-rewrite says; bare names are
 * qualified with envelope_domain(). The null sender yields "".
 * A non-root caller's arg is checked against allow-from.
 * Returns 0 with a malloc'd address in *out (caller frees); -1 for a bad
 * address, -2 when the caller may not use that sender (err says why).
 */
/*
 * The account (config.h) mail from arg goes through: arg (-f, -r or the
 * MAIL FROM, as the caller gave it) or else the login name, qualified
 * with envelope_domain() and matched against the accounts' "senders"
 * before from-rewrite (each account has its own from and from-rewrite,
 * so they can only apply once it is chosen). The default account for
 * the null sender, a sender no account lists, and a bad address (which
 * envelope_sender then refuses).
 */
const struct config *envelope_account(const struct config *cfg,
                                      const char *arg);

int envelope_sender(const struct config *cfg, const char *arg, char **out,
                    char *err, size_t errlen);

/*
 * The recipients: each argument in args (an address list, as sendmail
 * accepts "a@x, b@y" in one argument), then those in hdr (from -t).
 * Local ones (envelope_is_local) go through the aliases file when one is
 * configured; what remains local is qualified. Each is appended to out
 * once (duplicates dropped, comparing case-insensitively).
 * Returns 0; -1 for a bad address; -2 when the aliases file cannot be
 * read or used (a loop, an entry with no usable target); err says why.
 */
int envelope_recipients(const struct config *cfg, char **args, size_t nargs,
                        const struct addr_list *hdr, struct addr_list *out,
                        char *err, size_t errlen);

/*
 * How the message's address header fields are rewritten (headers.h):
 * bare names qualified with envelope_domain() unless qualify-headers is
 * off; From and Sender as from-header says, with the "from" address
 * (qualified; none when "from" is not set or is <>). Local addresses are
 * those of envelope_is_local. *from_buf gets the malloc'd address that
 * p->from points to, or NULL (caller frees). Returns 0, or -1 when "from"
 * does not parse or memory runs out (err says why).
 */
int envelope_header_policy(const struct config *cfg,
                           struct headers_policy *p, char **from_buf,
                           char *err, size_t errlen);

/*
 * The From address of the delivery status notifications outbox writes:
 * the "from" address when from-header is local or always (a DSN's
 * MAILER-DAEMON is outbox's own, so local), else NULL for
 * MAILER-DAEMON@domain. malloc'd (caller frees); NULL also when "from"
 * does not parse or memory runs out.
 */
char *envelope_dsn_from(const struct config *cfg);

#endif
