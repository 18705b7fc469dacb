/*
 * relay.h - the transport's connection parameters for one configured
 * smarthost: what the config says (tls, ca-file, user, auth, helo,
 * timeout, proxy, the privileged mode) turned into a struct smtp_params,
 * so that the transport reads no config.
 */
#ifndef OUTBOX_RELAY_H
#define OUTBOX_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "smtp.h"

/*
 * Fill p for cfg->hosts[i] (i < cfg->nhosts), authenticating with secret
 * (from creds_get: a password or a token as creds_kind(cfg) says; NULL
 * for none). The strings in p point into cfg, secret and static storage:
 * they live as long as cfg and secret do. verbose: the dialogue on
 * stderr (the AUTH exchange hidden whole from a user of the set-group-ID
 * binary).
 */
void relay_params(const struct config *cfg, size_t i, const char *secret,
                  bool verbose, struct smtp_params *p);

#endif
