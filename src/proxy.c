/*
 * proxy.c - which proxy, if any, a libcurl connection goes through
 * (see proxy.h).
 */
#include "proxy.h"

#include <string.h>

/* The proxy URL to set, "" for none, NULL to leave it to libcurl's
 * reading of the environment. */
static const char *chosen(const struct config *cfg)
{
	if (cfg->proxy != NULL && strcmp(cfg->proxy, "none") != 0)
		return cfg->proxy;
	if (cfg->proxy != NULL || cfg->privileged)
		return "";
	return NULL;
}

CURLcode proxy_apply(CURL *h, const struct config *cfg)
{
	const char *url = chosen(cfg);
	CURLcode rc = CURLE_OK;

	if (url == NULL)
		return CURLE_OK;
	/* "" as CURLOPT_PROXY: no proxy at all, the environment unread;
	 * "" as CURLOPT_NOPROXY: the proxy for every host, NO_PROXY unread */
	rc |= curl_easy_setopt(h, CURLOPT_PROXY, url);
	rc |= curl_easy_setopt(h, CURLOPT_NOPROXY, "");
	if (url[0] != '\0')     /* SMTP through an HTTP proxy: CONNECT */
		rc |= curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	return rc;
}

const char *proxy_describe(const struct config *cfg)
{
	const char *url = chosen(cfg);

	if (url == NULL)
		return "from the environment (ALL_PROXY, https_proxy, ...)";
	return url[0] != '\0' ? url : "none";
}
