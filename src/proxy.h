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
 * Plain values in: the proxy key's value and the privileged mode.
 */
#ifndef OUTBOX_PROXY_H
#define OUTBOX_PROXY_H

#include <curl/curl.h>
#include <stdbool.h>

/*
 * The proxy a connection takes, from the proxy key's value (NULL when
 * not set, "none", or a URL) and the privileged mode: NULL to leave it to
 * libcurl's reading of the environment, "" for none, else the URL (a
 * pointer into key).
 */
const char *proxy_choose(const char *key, bool privileged);

/* Set CURLOPT_PROXY and friends on h for what proxy_choose chose.
 * CURLE_OK or libcurl's refusal. */
CURLcode proxy_apply(CURL *h, const char *chosen);

/* What proxy_choose chose, for --check and -v: "none", the URL, or
 * "from the environment". */
const char *proxy_describe(const char *chosen);

#endif
