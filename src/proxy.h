/*
 * proxy.h - which proxy, if any, a libcurl connection goes through.
 *
 * Every easy handle outbox makes (the SMTP session, the OAuth2 token
 * request) gets its proxy here, so the rule is in one place:
 *  - "proxy none": no proxy, whatever the environment says;
 *  - "proxy URL": that proxy for every host (NO_PROXY not consulted);
 *  - no proxy key: libcurl's environment variables (ALL_PROXY,
 *    https_proxy, NO_PROXY, ...) apply, except when outbox runs
 *    set-group-ID (privileged): then the environment never chooses a
 *    proxy and the connection is direct.
 */
#ifndef OUTBOX_PROXY_H
#define OUTBOX_PROXY_H

#include <curl/curl.h>

#include "config.h"

/* Set CURLOPT_PROXY and friends on h for cfg. CURLE_OK or libcurl's
 * refusal. */
CURLcode proxy_apply(CURL *h, const struct config *cfg);

/* What proxy_apply chooses, for --check and -v: "none", the URL, or
 * "from the environment". */
const char *proxy_describe(const struct config *cfg);

#endif
