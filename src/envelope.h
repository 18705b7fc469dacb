/*
 * envelope.h - the envelope: who the message is from and who gets it.
 */
#ifndef OUTBOX_ENVELOPE_H
#define OUTBOX_ENVELOPE_H

#include <stddef.h>

#include "address.h"
#include "config.h"

/*
 * The domain that qualifies bare local names: the "domain" key, else the
 * host's name. Returns a pointer to static storage (valid until exit).
 */
const char *envelope_domain(const struct config *cfg);

/*
 * The envelope sender: arg (from -f/-r, may be "<>" or a bare name), else
 * the "from" key, else the invoking user's login name; bare names are
 * qualified with envelope_domain(). The null sender yields "".
 * Returns 0 with a malloc'd address in *out (caller frees), or -1 with a
 * reason in err.
 */
int envelope_sender(const struct config *cfg, const char *arg, char **out,
                    char *err, size_t errlen);

/*
 * The recipients: each argument in args (an address list, as sendmail
 * accepts "a@x, b@y" in one argument), then those in hdr (from -t), each
 * qualified and appended to out once (duplicates dropped, comparing
 * case-insensitively). Returns 0, or -1 with a reason in err.
 */
int envelope_recipients(const struct config *cfg, char **args, size_t nargs,
                        const struct addr_list *hdr, struct addr_list *out,
                        char *err, size_t errlen);

#endif
