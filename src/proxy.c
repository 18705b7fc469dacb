/*
 * proxy.c - which proxy, if any, a libcurl connection goes through
 * (see proxy.h).
 */
#include "proxy.h"

#include <string.h>

const char *proxy_choose(const char *key, bool privileged)
{
	if (key != NULL && strcmp(key, "none") != 0)
		return key;
	if (key != NULL || privileged)
		return "";
	return NULL;
}

CURLcode proxy_apply(CURL *h, const char *url)
{
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

const char *proxy_describe(const char *url)
{
	if (url == NULL)
		return "from the environment (ALL_PROXY, https_proxy, ...)";
	return url[0] != '\0' ? url : "none";
}
