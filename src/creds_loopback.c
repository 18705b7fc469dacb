/*
 * creds_loopback.c - the login command's browser flow: the
 * authorization-code grant with PKCE (RFC 7636, S256) and a loopback
 * redirect (RFC 8252 section 7.3) to http://127.0.0.1:PORT/. See
 * creds_login.h.
 *
 * The listener binds 127.0.0.1 only. It takes connections until the
 * deadline; a request for another path (a browser's /favicon.ico) gets a
 * 404 and the wait goes on; the first GET of "/" ends it: its state must
 * be the one outbox made, else the login fails (a redirect that did not
 * come from this login). Each connection gets 10 s to send its request
 * (at most 8 KB).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "creds_login_int.h"
#include "util.h"

#define REQUEST_MAX 8192
#define CONN_SECS 10
#define CODE_MAX 4096

struct pkce {
	char verifier[64];      /* 32 random octets, base64url: 43 chars */
	char challenge[64];
	char state[32];         /* 16 random octets: 22 chars */
	char redirect[64];      /* http://127.0.0.1:PORT/ */
};

static int pkce_make(struct pkce *p, int port)
{
	unsigned char rnd[32];

	if (gnutls_rnd(GNUTLS_RND_KEY, rnd, sizeof(rnd)) != 0)
		return -1;
	login_b64url(rnd, 32, p->verifier);
	if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, 16) != 0)
		return -1;
	login_b64url(rnd, 16, p->state);
	secure_zero(rnd, sizeof(rnd));
	snprintf(p->redirect, sizeof(p->redirect), "http://127.0.0.1:%d/",
	         port);
	return login_pkce_challenge(p->verifier, p->challenge,
	                            sizeof(p->challenge));
}

/* A listening socket on 127.0.0.1:port (0: a free one); its port. */
static int listen_loopback(int port, int *bound, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		snprintf(err, errlen, "cannot listen on 127.0.0.1:%d for the "
		         "redirect: %s (choose another --port)", port,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

/* The authorization URL (malloc'd), or NULL when out of memory. */
static char *auth_url(const struct login_ctx *lc, const struct pkce *p)
{
	struct oauth_form f = { 0 };
	size_t n;
	char *url;

	oauth_form_add(&f, "response_type", "code");
	oauth_form_add(&f, "client_id", lc->cfg->oauth_client_id);
	oauth_form_add(&f, "redirect_uri", p->redirect);
	if (lc->ep.scope[0] != '\0')
		oauth_form_add(&f, "scope", lc->ep.scope);
	oauth_form_add(&f, "state", p->state);
	oauth_form_add(&f, "code_challenge", p->challenge);
	oauth_form_add(&f, "code_challenge_method", "S256");
	if (lc->ep.offline_params) {
		oauth_form_add(&f, "access_type", "offline");
		oauth_form_add(&f, "prompt", "consent");
	}
	if (f.oom || f.buf == NULL) {
		oauth_form_free(&f);
		return NULL;
	}
	n = strlen(lc->ep.auth_url) + f.len + 2;
	url = malloc(n);
	if (url != NULL)
		snprintf(url, n, "%s%c%s", lc->ep.auth_url,
		         strchr(lc->ep.auth_url, '?') ? '&' : '?', f.buf);
	oauth_form_free(&f);
	return url;
}

static void reply(int fd, const char *status, const char *text)
{
	char page[1024];
	int n;

	n = snprintf(page, sizeof(page), "HTTP/1.1 %s\r\n"
	             "Content-Type: text/html; charset=utf-8\r\n"
	             "Cache-Control: no-store\r\nConnection: close\r\n"
	             "Content-Length: %zu\r\n\r\n%s", status,
	             strlen(text), text);
	if (n > 0 && (size_t)n < sizeof(page))
		(void)write_all(fd, page, (size_t)n);
}

/* Read a request's head (up to the blank line), bounded in size and time. */
static int read_request(int fd, char *buf, size_t cap)
{
	struct timeval tv = { CONN_SECS, 0 };
	size_t len = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
			return 0;
	}
	return -1;
}

/* The query of "GET /?QUERY HTTP/1.x": 1 with *query set when it is a GET
 * of the redirect path "/", 0 for another request (answered 404), -1
 * when malformed. buf is modified. */
static int redirect_query(char *buf, const char **query)
{
	char *target, *sp;

	if (strncmp(buf, "GET ", 4) != 0)
		return 0;
	target = buf + 4;
	sp = strchr(target, ' ');
	if (sp == NULL || strncmp(sp, " HTTP/1.", 8) != 0)
		return -1;
	*sp = '\0';
	if (target[0] != '/' || (target[1] != '\0' && target[1] != '?'))
		return 0;
	*query = target[1] == '?' ? target + 2 : "";
	return 1;
}

/* What the redirect said: the code into code, or an error in err. */
static enum ob_status redirect_result(const struct login_ctx *lc,
                                      const struct pkce *p, const char *query,
                                      char *code, char *err, size_t errlen)
{
	char state[128], what[64] = "", esc[256];

	if (login_query_get(query, "error", what, sizeof(what)) == 0) {
		str_escape_ctl(esc, sizeof(esc), what, strlen(what));
		snprintf(err, errlen, "oauth-auth-url: the sign-in failed (%s); "
		         "run '%s' again", esc, lc->login);
		return strcmp(what, "access_denied") == 0 ? OB_NOPERM : OB_CONFIG;
	}
	if (login_query_get(query, "state", state, sizeof(state)) != 0 ||
	    strcmp(state, p->state) != 0) {
		snprintf(err, errlen, "the redirect's state does not match this "
		         "login (a stale or forged redirect); nothing was stored; "
		         "run '%s' again", lc->login);
		return OB_PROTOCOL;
	}
	if (login_query_get(query, "code", code, CODE_MAX) != 0 ||
	    code[0] == '\0') {
		snprintf(err, errlen, "the redirect has no code; run '%s' again",
		         lc->login);
		return OB_PROTOCOL;
	}
	return OB_OK;
}

/* Exchange the code for tokens and store the refresh token. */
static enum ob_status exchange(struct login_ctx *lc, const struct pkce *p,
                               const char *code, char *err, size_t errlen)
{
	struct oauth_form f = { 0 };
	struct oauth_reply r = { 0 };
	enum oauth_error kind;
	enum ob_status st;

	oauth_form_add(&f, "grant_type", "authorization_code");
	oauth_form_add(&f, "code", code);
	oauth_form_add(&f, "redirect_uri", p->redirect);
	oauth_form_add(&f, "code_verifier", p->verifier);
	login_client_auth(lc, &f);
	st = login_post(lc, lc->ep.token_url, "oauth-token-url", &f, &r, &kind,
	                err, errlen);
	if (st == OB_OK)
		st = login_finish(lc, &r, err, errlen);
	oauth_form_free(&f);
	oauth_reply_free(&r);
	return st;
}

/* One connection: 1 when it was the redirect (the login is over, st
 * says how), 0 to keep waiting. */
static int one_connection(struct login_ctx *lc, const struct pkce *p, int cfd,
                          enum ob_status *st, char *err, size_t errlen)
{
	char *buf = malloc(REQUEST_MAX), *code = malloc(CODE_MAX);
	const char *query = NULL;
	int kind = -1;

	if (buf != NULL && code != NULL && read_request(cfd, buf,
	                                                REQUEST_MAX) == 0)
		kind = redirect_query(buf, &query);
	if (kind == 1) {
		*st = redirect_result(lc, p, query, code, err, errlen);
		if (*st == OB_OK)
			*st = exchange(lc, p, code, err, errlen);
		reply(cfd, *st == OB_OK ? "200 OK" : "400 Bad Request",
		      *st == OB_OK
		      ? "<!DOCTYPE html><title>outbox</title><p>Signed in: "
		        "outbox has stored its refresh token. You can close "
		        "this page.</p>\n"
		      : "<!DOCTYPE html><title>outbox</title><p>The sign-in "
		        "did not complete: see the terminal where outbox "
		        "runs.</p>\n");
	} else {
		reply(cfd, kind == 0 ? "404 Not Found" : "400 Bad Request",
		      "<!DOCTYPE html><title>outbox</title><p>Not here.</p>\n");
	}
	if (buf != NULL) { secure_zero(buf, REQUEST_MAX); free(buf); }
	if (code != NULL) { secure_zero(code, CODE_MAX); free(code); }
	return kind == 1;
}

static enum ob_status wait_redirect(struct login_ctx *lc, const struct pkce *p,
                                    int lfd, long timeout, char *err,
                                    size_t errlen)
{
	time_t deadline = time(NULL) + timeout;
	enum ob_status st = OB_TEMPFAIL;

	for (;;) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		long left = (long)(deadline - time(NULL));
		int cfd;

		if (left <= 0) {
			snprintf(err, errlen, "no sign-in within %ld s (the "
			         "browser did not come back to %s); run '%s' "
			         "again", timeout, p->redirect, lc->login);
			return OB_TEMPFAIL;
		}
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000000 : left * 1000)) <= 0)
			continue;
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		if (one_connection(lc, p, cfd, &st, err, errlen)) {
			close(cfd);
			return st;
		}
		close(cfd);
	}
}

enum ob_status login_browser(struct login_ctx *lc,
                             const struct login_opts *opts, char *err,
                             size_t errlen)
{
	long timeout = opts->timeout > 0 ? opts->timeout : LOGIN_DEFAULT_TIMEOUT;
	struct pkce p;
	enum ob_status st;
	char *url;
	int port = 0, lfd = listen_loopback(opts->port, &port, err, errlen);

	if (lfd < 0)
		return OB_TEMPFAIL;
	if (pkce_make(&p, port) != 0) {
		close(lfd);
		return snprintf(err, errlen, "no random numbers for PKCE"),
		       OB_SOFTWARE;
	}
	url = auth_url(lc, &p);
	if (url == NULL) {
		close(lfd);
		return snprintf(err, errlen, "out of memory"), OB_SOFTWARE;
	}
	fprintf(lc->out, "Listening on 127.0.0.1:%d for the sign-in's "
	        "redirect (from another machine: ssh -L %d:127.0.0.1:%d "
	        "THIS-HOST, then open the URL there).\nOpen this URL in a "
	        "browser:\n", port, port, port);
	login_show(lc->out, url);
	fprintf(lc->out, "\nWaiting up to %ld s for the sign-in...\n", timeout);
	fflush(lc->out);
	free(url);
	st = wait_redirect(lc, &p, lfd, timeout, err, errlen);
	close(lfd);
	secure_zero(&p, sizeof(p));
	return st;
}
