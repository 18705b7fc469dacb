/*
 * smtp.c - the libcurl transport (see smtp.h).
 *
 * libcurl opens the session (CURLOPT_CONNECT_ONLY: connect, greeting,
 * EHLO, STARTTLS, AUTH) and smtp_xact.c runs each mail transaction over
 * it, so that a refused message does not cost the connection (see
 * smtp_xact.h). Every command and reply of both passes one watcher, in
 * order: libcurl's through the debug callback (CURLINFO_HEADER_OUT /
 * CURLINFO_HEADER_IN), smtp_xact's through its hooks. From it we learn
 * which command each reply answers: the reply to the n-th RCPT is the
 * n-th recipient's result. A session stays open between messages, is
 * checked before reuse (the server may have closed it), and is dropped
 * after a timeout, an I/O error or a 421.
 *
 * Two safety rules are enforced here, not left to the server:
 *  - with credentials configured, no message is sent without AUTH
 *    (libcurl silently skips AUTH when the server does not offer it: no
 *    MAIL FROM is sent on a session that did not authenticate);
 *  - tls starttls means CURLUSESSL_ALL: no STARTTLS, no mail.
 */
#define _POSIX_C_SOURCE 200809L
#include "smtp.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"
#include "smtp_int.h"
#include "smtp_wire.h"
#include "log.h"
#include "util.h"

int smtp_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* ---- watching the dialogue ---- */

static enum phase command_phase(const char *l, size_t n)
{
	static const struct { const char *cmd; enum phase ph; } CMDS[] = {
		{ "EHLO", PH_EHLO }, { "HELO", PH_EHLO },
		{ "STARTTLS", PH_STARTTLS }, { "AUTH", PH_AUTH },
		{ "MAIL FROM", PH_MAIL }, { "RCPT TO", PH_RCPT },
		{ "DATA", PH_DATA }, { "QUIT", PH_QUIT }, { "RSET", PH_RSET },
	};
	size_t i;

	for (i = 0; i < sizeof(CMDS) / sizeof(CMDS[0]); i++) {
		size_t k = strlen(CMDS[i].cmd);

		if (n >= k && str_nieq(l, CMDS[i].cmd, k))
			return CMDS[i].ph;
	}
	return PH_OTHER;
}

/* Under -v, one line of the dialogue, control characters escaped. */
static void show(const struct smtp_client *c, const char *dir,
                 const char *l, size_t n)
{
	char esc[REPLY_LINE_MAX];

	if (!c->verbose)
		return;
	str_escape_ctl(esc, sizeof(esc), l, n);
	fprintf(stderr, "%s %s\n", dir, esc);
}

/* Has a MAIL/RCPT line parameters after its path ("> ")? */
static bool has_params(const char *l, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (l[i] == '>' && l[i + 1] == ' ')
			return true;
	}
	return false;
}

static void on_command(struct smtp_client *c, const char *l, size_t n)
{
	struct dialogue *d = &c->d;
	enum phase ph = command_phase(l, n);

	if (d->in_sasl) {
		if (!c->hide_auth)
			show(c, "->", "<redacted>", 10);   /* a SASL response */
		return;
	}
	if (ph == PH_AUTH && c->hide_auth) {
		show(c, "  ", "(authentication exchange hidden)", 32);
	} else if (ph == PH_AUTH) {
		const char *sp = n > 5 ? memchr(l + 5, ' ', n - 5) : NULL;

		show(c, "->", l, sp ? (size_t)(sp - l) : n);
		if (sp != NULL)
			show(c, "  ", "(initial response redacted)", 27);
	} else {
		show(c, "->", l, n);
	}
	if (ph == PH_EHLO) {
		c->authed = false;
		d->caps[0] = '\0';
		d->ehlo_first = true;
	}
	if (ph == PH_AUTH)
		d->in_sasl = true;
	if (ph == PH_RCPT)
		d->nsent_rcpt++;
	if (ph == PH_MAIL || ph == PH_RCPT)
		d->cmd_params = has_params(l, n);
	if (ph != PH_OTHER)
		d->phase = ph;
}

static void append_text(char *dst, size_t size, const char *l, size_t n)
{
	size_t len = strlen(dst);

	if (len > 0 && len + 1 < size)
		dst[len++] = ' ';
	if (n > size - len - 1)
		n = size - len - 1;
	memcpy(dst + len, l, n);
	dst[len + n] = '\0';
}

static void reply_done(struct smtp_client *c)
{
	struct dialogue *d = &c->d;

	if (d->phase == PH_QUIT || d->phase == PH_RSET) {
		/* the goodbye or the reset says nothing about the message */
		d->code = 0;
		d->text[0] = '\0';
		return;
	}
	d->last_code = d->code;
	d->last_phase = d->phase;
	str_copy(d->last_text, sizeof(d->last_text), d->text);
	if (d->phase == PH_AUTH && d->code != 334) {
		d->in_sasl = false;
		d->auth_code = d->code;
		str_copy(d->auth_text, sizeof(d->auth_text), d->text);
	}
	if (d->phase == PH_AUTH && d->code / 100 == 2)
		c->authed = true;
	if (d->phase >= PH_MAIL && d->phase <= PH_BODY && d->code >= 400)
		c->refusals++;
	if (d->phase == PH_BODY && d->code / 100 == 2)
		c->refusals = 0;
	if (d->phase >= PH_MAIL && d->phase <= PH_BODY &&
	    d->too_many_code == 0 && xact_too_many(d->code, d->text)) {
		d->too_many_code = d->code;
		str_copy(d->too_many_text, sizeof(d->too_many_text), d->text);
	}
	if ((d->phase == PH_MAIL || d->phase == PH_RCPT) && d->cmd_params &&
	    d->param_fault == 0 && smtp_wire_param_fault(d->code, d->text)) {
		d->param_fault = d->code;
		str_copy(d->fault_text, sizeof(d->fault_text), d->text);
	}
	if (d->phase == PH_RCPT && d->nsent_rcpt > 0 &&
	    d->nsent_rcpt <= c->nmap) {
		struct smtp_rcpt *r = &c->rcpt[c->rcpt_map[d->nsent_rcpt - 1]];

		r->code = d->code;
		str_copy(r->text, sizeof(r->text), d->text);
	}
	if (d->phase == PH_DATA && d->code == 354) {
		d->phase = PH_BODY;
	} else if (d->phase == PH_DATA || d->phase == PH_BODY) {
		d->data_code = d->code;
		str_copy(d->data_text, sizeof(d->data_text), d->text);
	}
	d->code = 0;
	d->text[0] = '\0';
}

/*
 * One reply line from the server. It is escaped first (a CR inside it,
 * terminal sequences), so everything that keeps or shows reply text -
 * errors, the log, DSNs, -v - gets it with control characters escaped.
 */
static void on_reply_line(struct smtp_client *c, const char *raw,
                          size_t rawlen)
{
	struct dialogue *d = &c->d;
	char l[REPLY_LINE_MAX];
	size_t n = str_escape_ctl(l, sizeof(l), raw, rawlen);
	int code = 0;
	size_t i;

	if (!(c->hide_auth && d->phase == PH_AUTH))
		show(c, "<-", l, n);
	for (i = 0; i < 3 && i < n && l[i] >= '0' && l[i] <= '9'; i++)
		code = code * 10 + (l[i] - '0');
	if (i < 3 || (n > 3 && l[3] != ' ' && l[3] != '-'))
		return;                 /* not a reply line: ignore */
	if (d->text[0] == '\0')
		append_text(d->text, sizeof(d->text), l, n);
	else if (n > 4)
		append_text(d->text, sizeof(d->text), l + 4, n - 4);
	d->code = code;
	if (d->phase == PH_EHLO && code == 250 && !d->ehlo_first && n > 4) {
		size_t len = strlen(d->caps);

		snprintf(d->caps + len, sizeof(d->caps) - len, "%s%.*s",
		         len ? ", " : "", (int)(n - 4), l + 4);
	}
	if (d->phase == PH_EHLO)
		d->ehlo_first = false;
	if (n == 3 || l[3] == ' ')
		reply_done(c);
}

/* Call fn for each line of data (without its CRLF). */
static void each_line(struct smtp_client *c, const char *data, size_t size,
                      void (*fn)(struct smtp_client *, const char *, size_t))
{
	while (size > 0) {
		const char *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) : size;
		size_t len = n;

		if (len > 0 && data[len - 1] == '\r')
			len--;
		fn(c, data, len);
		if (nl == NULL)
			break;
		data += n + 1;
		size -= n + 1;
	}
}

static void show_text(struct smtp_client *c, const char *l, size_t n)
{
	static const char using[] = "SSL connection using ";

	show(c, "*", l, n);
	if (n > sizeof(using) - 1 && memcmp(l, using, sizeof(using) - 1) == 0)
		snprintf(c->d.tls, sizeof(c->d.tls), "%.*s",
		         (int)(n - sizeof(using) + 1), l + sizeof(using) - 1);
}

static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size,
                    void *ptr)
{
	struct smtp_client *c = ptr;

	(void)h;
	switch (type) {
	case CURLINFO_HEADER_OUT:
		each_line(c, data, size, on_command);
		break;
	case CURLINFO_HEADER_IN:
		each_line(c, data, size, on_reply_line);
		break;
	case CURLINFO_TEXT:
		each_line(c, data, size, show_text);
		break;
	default:
		break;          /* message bytes and TLS records: not shown */
	}
	return 0;
}

/* ---- setting up ---- */

static void build_url(struct smtp_client *c)
{
	const struct smtp_params *p = &c->p;
	bool v6 = strchr(p->host, ':') != NULL;

	snprintf(c->url, sizeof(c->url), "%s://%s%s%s:%d/%s",
	         p->tls == SMTP_TLS_SMTPS ? "smtps" : "smtp", v6 ? "[" : "",
	         p->host, v6 ? "]" : "", p->port, p->helo ? p->helo : "");
	snprintf(c->where, sizeof(c->where), "%s%s%s:%d", v6 ? "[" : "",
	         p->host, v6 ? "]" : "", p->port);
}

static CURLcode set_tls(struct smtp_client *c)
{
	const struct smtp_params *p = &c->p;
	CURLcode rc = CURLE_OK;
	long verify = p->verify ? 1L : 0L;

	if (p->tls == SMTP_TLS_OFF)
		return curl_easy_setopt(c->curl, CURLOPT_USE_SSL,
		                        (long)CURLUSESSL_NONE);
	rc |= curl_easy_setopt(c->curl, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	rc |= curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, verify);
	rc |= curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, verify * 2);
	if (p->ca_file != NULL || trust_cafile(&c->trust) != NULL) {
		/* only this file: libcurl would also scan the system's
		 * certificate directory, hundreds of files per process */
		rc |= curl_easy_setopt(c->curl, CURLOPT_CAINFO, p->ca_file
		                       ? p->ca_file : trust_cafile(&c->trust));
		rc |= curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	}
	/* the chain, to learn the system store's anchor for it */
	if (c->certinfo || trust_wants_chain(&c->trust))
		rc |= curl_easy_setopt(c->curl, CURLOPT_CERTINFO, 1L);
	return rc;
}

static CURLcode set_auth(struct smtp_client *c)
{
	const struct smtp_params *p = &c->p;
	CURLcode rc = CURLE_OK;
	char opts[64];

	if (p->user == NULL)
		return CURLE_OK;
	c->need_auth = true;
	rc |= curl_easy_setopt(c->curl, CURLOPT_USERNAME, p->user);
	if (c->secret != NULL && p->secret_kind == SMTP_SECRET_BEARER)
		rc |= curl_easy_setopt(c->curl, CURLOPT_XOAUTH2_BEARER,
		                       c->secret);
	else if (c->secret != NULL)
		rc |= curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->secret);
	if (p->auth != NULL) {
		snprintf(opts, sizeof(opts), "AUTH=%s", p->auth);
		rc |= curl_easy_setopt(c->curl, CURLOPT_LOGIN_OPTIONS, opts);
	}
	rc |= curl_easy_setopt(c->curl, CURLOPT_SASL_IR, 1L);
	return rc;
}

static CURLcode setup(struct smtp_client *c)
{
	CURL *h = c->curl;
	long t = c->p.timeout;
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(h, CURLOPT_URL, c->url);
	rc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	rc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	rc |= curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
	rc |= curl_easy_setopt(h, CURLOPT_DEBUGDATA, c);
	/* libcurl runs the session up to AUTH; smtp_xact the transaction */
	rc |= curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, t);
	rc |= curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, t);
	rc |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	rc |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, t);
	rc |= proxy_apply(h, c->p.proxy);
	rc |= set_tls(c);
	rc |= set_auth(c);
	return rc;
}

struct smtp_client *smtp_open(const struct smtp_params *p, char *err,
                              size_t errlen)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		goto nomem;
	c->p = *p;
	c->p.secret = NULL;
	c->verbose = p->verbose;
	c->hide_auth = p->hide_auth;
	if (p->secret != NULL && p->secret_kind != SMTP_SECRET_NONE) {
		c->secret = strdup(p->secret);
		if (c->secret == NULL)
			goto nomem;
		c->p.secret = c->secret;
	}
	build_url(c);
	if (p->tls == SMTP_TLS_OFF || p->ca_file != NULL)
		trust_none(&c->trust);
	else
		trust_choose(&c->trust, p->host, p->port,
		             p->verify ? p->trust_dir : NULL, p->privileged);
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		goto nomem;
	if (setup(c) != CURLE_OK) {
		snprintf(err, errlen, "%s: libcurl refused an option "
		         "(is it built with SMTP and TLS?)", c->where);
		smtp_close(c);
		return NULL;
	}
	return c;
nomem:
	snprintf(err, errlen, "out of memory");
	smtp_close(c);
	return NULL;
}

/* ---- sending ---- */

/* "host[address]:port" as Postfix logs it; the address once known. */
static void relay_name(struct smtp_client *c, struct smtp_result *res)
{
	char *info = NULL;
	const char *ip = c->ip;

	if (!c->open) {
		ip = NULL;      /* the address of a failed attempt, if any */
		if (curl_easy_getinfo(c->curl, CURLINFO_PRIMARY_IP, &info) ==
		    CURLE_OK)
			ip = info;
	}
	if (ip == NULL || *ip == '\0') {
		res->relay[0] = '\0';      /* no connection: logged as none */
		return;
	}
	snprintf(res->relay, sizeof(res->relay), "%s[%s]:%d", c->p.host, ip,
	         c->p.port);
}

/* smtp_xact's dialogue goes to the watcher libcurl's goes to. */
static void xact_command(void *arg, const char *l, size_t n)
{
	on_command(arg, l, n);
}

static void xact_reply(void *arg, const char *l, size_t n)
{
	on_reply_line(arg, l, n);
}

/*
 * Forget the session without a goodbye (it is broken, or the server is
 * closing it): libcurl closes a CONNECT_ONLY connection as a dead one,
 * without QUIT (lib/url.c Curl_disconnect). The next session starts on
 * a fresh handle.
 */
static void drop(struct smtp_client *c)
{
	c->open = false;
	curl_easy_cleanup(c->curl);
	c->curl = curl_easy_init();
	if (c->curl != NULL && setup(c) != CURLE_OK) {
		curl_easy_cleanup(c->curl);
		c->curl = NULL;
	}
}

/* Under -v: what the TLS session trusts (the trust-anchor cache). */
static void show_trust(struct smtp_client *c, const char *prefix)
{
	char what[PATH_MAX + 200];
	char line[sizeof(what) + 64];

	trust_describe(&c->trust, what, sizeof(what));
	if (what[0] == '\0')
		return;
	snprintf(line, sizeof(line), "%s%s", prefix, what);
	show(c, "*", line, strlen(line));
}

/*
 * libcurl's part of a session (connect .. AUTH). A verification failure
 * with the cached trust anchors is tried once more with the whole system
 * store before it counts; a handshake that store verified (re)writes the
 * cache. learn: the handshake was verified (not a --check without it).
 */
CURLcode smtp_perform_trusted(struct smtp_client *c, bool learn)
{
	struct curl_certinfo *ci = NULL;
	CURLcode rc;

	trust_begin(&c->trust);
	show_trust(c, "trusting ");
	rc = curl_easy_perform(c->curl);
	if (trust_verify_failed(rc) && trust_fallback(&c->trust)) {
		show_trust(c, "verification failed; now trusting ");
		drop(c);
		if (c->curl == NULL)
			return CURLE_OUT_OF_MEMORY;
		memset(&c->d, 0, sizeof(c->d));
		c->errbuf[0] = '\0';
		rc = curl_easy_perform(c->curl);
	}
	if (rc == CURLE_OK && learn && trust_wants_chain(&c->trust) &&
	    curl_easy_getinfo(c->curl, CURLINFO_CERTINFO, &ci) == CURLE_OK &&
	    trust_learn(&c->trust, ci) == 0)
		show_trust(c, "learned: ");
	return rc;
}

/* A session to carry the next message: the open one while it is fit
 * (*reused), else a new one. */
static CURLcode session(struct smtp_client *c, bool *reused)
{
	struct xact_hooks hooks = { xact_command, xact_reply, c };
	char *ip = NULL;
	CURLcode rc;

	if (c->open && c->refusals >= SESSION_REFUSALS_MAX) {
		xact_quit(&c->x);
		memset(&c->d, 0, sizeof(c->d));  /* not this message's */
	}
	*reused = c->open && xact_idle_ok(&c->x);
	if (*reused)
		return CURLE_OK;
	if (c->open)
		drop(c);
	if (c->curl == NULL)
		return CURLE_OUT_OF_MEMORY;
	c->authed = false;
	curl_easy_setopt(c->curl, CURLOPT_VERBOSE, 1L);
	rc = smtp_perform_trusted(c, c->p.verify);
	if (rc != CURLE_OK)
		return rc;
	if (xact_attach(&c->x, c->curl, c->p.timeout, &hooks) != 0) {
		str_copy(c->errbuf, sizeof(c->errbuf), "no connection");
		return CURLE_COULDNT_CONNECT;
	}
	c->open = true;
	c->refusals = 0;
	str_copy(c->caps, sizeof(c->caps), c->d.caps);
	c->x.pipelining = xact_has_ext(c->caps, "PIPELINING");
	if (curl_easy_getinfo(c->curl, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK &&
	    ip != NULL)
		str_copy(c->ip, sizeof(c->ip), ip);
	/* libcurl's part of the dialogue is over (and 7.88's
	 * curl_easy_recv logs a line of its own for each read) */
	curl_easy_setopt(c->curl, CURLOPT_VERBOSE, 0L);
	return CURLE_OK;
}

/* The outcome of xact_mail as libcurl would have said it. */
static CURLcode outcome(struct smtp_client *c, enum xact_end end)
{
	if (end == XACT_SENT)
		return c->x.code == 250 ? CURLE_OK : CURLE_WEIRD_SERVER_REPLY;
	if (c->x.read_errno != 0) {
		c->d.read_failed = true;
		c->d.read_errno = c->x.read_errno;
	}
	str_copy(c->errbuf, sizeof(c->errbuf), c->x.err);
	return c->x.rc;
}

/* Nothing can go to this server (smtp_wire refused the sender or every
 * recipient): that refusal stands as the last reply, nothing is sent. */
static CURLcode refused_here(struct smtp_client *c, enum phase ph, int code,
                             const char *text)
{
	c->d.local_refusal = true;
	c->d.phase = c->d.last_phase = ph;
	c->d.last_code = code;
	str_copy(c->d.last_text, sizeof(c->d.last_text), text);
	return CURLE_SEND_ERROR;
}

/* The transaction over the open session, for what w made of it. */
static CURLcode transact_wire(struct smtp_client *c, struct smtp_wire *w)
{
	CURLcode rc;
	size_t i, last = 0;

	for (i = 0; i < c->nrcpt; i++) {
		if (w->code[i] != 0) {
			c->rcpt[i].code = w->code[i];
			str_copy(c->rcpt[i].text, sizeof(c->rcpt[i].text),
			         w->text[i]);
			last = i;
		}
	}
	if (w->sender_code != 0)
		return refused_here(c, PH_MAIL, w->sender_code, w->sender_text);
	if (w->n == 0)
		return refused_here(c, PH_RCPT, w->code[last], w->text[last]);
	c->rcpt_map = w->map;
	c->nmap = w->n;
	rc = outcome(c, xact_mail(&c->x, w->sender, w->params, w->rcpts,
	                          w->rparams, w->n, w->fd));
	c->rcpt_map = NULL;
	c->nmap = 0;
	if (c->d.param_fault != 0)
		log_event(LOG_ERR, "protocol error: smarthost %s refused "
		          "parameters it offered (%s); the message was not "
		          "sent to whom it concerns and stays queued when the "
		          "queue is on", c->where, c->d.fault_text);
	return rc;
}

/* The transaction over the open session. */
static CURLcode transact(struct smtp_client *c, const char *sender,
                         char *const *rcpts, size_t nrcpt,
                         const struct params_set *params, int fd, off_t size)
{
	struct smtp_wire w;
	char err[300];
	CURLcode rc;

	if (c->need_auth && !c->authed) {
		c->d.abort_noauth = true;       /* no MAIL without AUTH */
		return CURLE_LOGIN_DENIED;
	}
	if (smtp_wire_prepare(&w, c->caps, sender, rcpts, nrcpt, params, fd,
	                      size, err, sizeof(err)) != 0) {
		smtp_wire_free(&w);
		c->d.read_failed = true;
		c->d.read_errno = errno != 0 ? errno : ENOMEM;
		str_copy(c->errbuf, sizeof(c->errbuf), err);
		return CURLE_READ_ERROR;
	}
	rc = transact_wire(c, &w);
	smtp_wire_free(&w);
	return rc;
}

/*
 * Session and transaction. A reused session that turns out closed before
 * the server answered anything (nothing can have been accepted) is
 * replaced by a new one, once.
 */
static CURLcode transfer(struct smtp_client *c, const char *sender,
                         char *const *rcpts, size_t nrcpt,
                         const struct params_set *params, int fd, off_t size)
{
	bool reused = false;
	CURLcode rc = CURLE_OK;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		memset(&c->d, 0, sizeof(c->d));
		memset(c->rcpt, 0, c->nrcpt * sizeof(*c->rcpt));
		c->errbuf[0] = '\0';
		rc = session(c, &reused);
		if (rc == CURLE_OK)
			rc = transact(c, sender, rcpts, nrcpt, params, fd,
			              size);
		if (rc == CURLE_OK || !reused || c->d.abort_noauth ||
		    c->d.local_refusal || c->d.read_failed ||
		    c->x.nreplies > 0 ||
		    (c->x.rc != CURLE_SEND_ERROR && c->x.rc != CURLE_RECV_ERROR))
			break;
	}
	return rc;
}

enum ob_status smtp_send(struct smtp_client *c, const char *sender,
                         char *const *rcpts, size_t nrcpt,
                         const struct params_set *params, int fd,
                         off_t size, struct smtp_result *res)
{
	CURLcode rc;

	memset(res, 0, sizeof(*res));
	str_copy(res->where, sizeof(res->where), c->where);
	res->rcpt = calloc(nrcpt ? nrcpt : 1, sizeof(*res->rcpt));
	if (res->rcpt == NULL || nrcpt == 0 || lseek(fd, 0, SEEK_SET) != 0) {
		res->status = smtp_fail(res, nrcpt ? OB_SOFTWARE : OB_DATAERR,
		                   nrcpt ? "cannot prepare the transfer"
		                         : "no recipients", NULL);
		return res->status;
	}
	res->nrcpt = nrcpt;
	c->rcpt = res->rcpt;
	c->nrcpt = nrcpt;
	rc = transfer(c, sender, rcpts, nrcpt, params, fd, size);
	relay_name(c, res);
	res->status = smtp_judge(c, rc, res);
	res->session_failed = res->status != OB_OK &&
	                      res->status != OB_IOERR &&
	                      res->status != OB_SOFTWARE &&
	                      (c->d.phase < PH_MAIL || c->d.abort_noauth);
	res->too_many = c->d.too_many_code != 0;
	if (res->too_many && res->status == OB_OK)
		smtp_fail(res, OB_OK, "server limit reached", c->d.too_many_text);
	if (res->status == OB_OK)
		str_copy(res->reply, sizeof(res->reply), c->d.data_text);
	smtp_settle_rcpts(c, res);
	if (c->open && !c->x.usable)
		drop(c);
	c->rcpt = NULL;
	c->nrcpt = 0;
	return res->status;
}

int smtp_socket(struct smtp_client *c)
{
	curl_socket_t sock = CURL_SOCKET_BAD;

	if (c == NULL || c->curl == NULL ||
	    curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &sock) !=
	        CURLE_OK || sock == CURL_SOCKET_BAD)
		return -1;
	return (int)sock;
}

void smtp_close(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->open)
		xact_quit(&c->x);
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	if (c->secret != NULL) {
		secure_zero(c->secret, strlen(c->secret));
		free(c->secret);
	}
	free(c);
}

void smtp_result_free(struct smtp_result *res)
{
	if (res == NULL)
		return;
	free(res->rcpt);
	res->rcpt = NULL;
	res->nrcpt = 0;
}
