/*
 * smtp_wire.c - a message made fit for one smarthost (see smtp_wire.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "smtp_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idn.h"
#include "log.h"
#include "mime.h"
#include "smtp_xact.h"
#include "util.h"

/* One address as it goes: 0, or the reply code that refuses it (why in
 * text). */
static int address(const char *addr, bool utf8, char **out, bool sender,
                   char *text, size_t textlen)
{
	char why[400];
	enum idn_result r;

	if (utf8) {
		*out = strdup(addr);
		return *out ? 0 : -1;
	}
	r = idn_address_ascii(addr, out, why, sizeof(why));
	if (r == IDN_OK)
		return 0;
	if (r == IDN_NOMEM)
		return -1;
	snprintf(text, textlen, "%s %s %.240s", sender ? "550" : "553",
	         r == IDN_LOCAL_UTF8 ? "5.6.7" : sender ? "5.1.7" : "5.1.3", why);
	return sender ? 550 : 553;
}

static int alloc_rcpts(struct smtp_wire *w, size_t n)
{
	size_t k = n ? n : 1;

	w->rcpts = calloc(k, sizeof(*w->rcpts));
	w->rparams = calloc(k, sizeof(*w->rparams));
	w->map = calloc(k, sizeof(*w->map));
	w->code = calloc(k, sizeof(*w->code));
	w->text = calloc(k, sizeof(*w->text));
	return w->rcpts && w->rparams && w->map && w->code && w->text ? 0 : -1;
}

static int addresses(struct smtp_wire *w, const char *caps,
                     const char *sender, char *const *rcpts, size_t nrcpt,
                     const struct params_set *p)
{
	bool utf8 = xact_has_ext(caps, "SMTPUTF8");
	bool dsn = xact_has_ext(caps, "DSN");
	char rp[SMTP_WIRE_PARAMS_MAX];
	size_t i;
	int r;

	if (alloc_rcpts(w, nrcpt) != 0)
		return -1;
	r = address(sender, utf8, &w->sender, true, w->sender_text,
	            sizeof(w->sender_text));
	if (r < 0)
		return -1;
	w->sender_code = r;
	for (i = 0; i < nrcpt; i++) {
		char *a = NULL;

		r = address(rcpts[i], utf8, &a, false, w->text[i],
		            sizeof(w->text[i]));
		if (r < 0)
			return -1;
		w->code[i] = r;
		if (r != 0)
			continue;
		rp[0] = '\0';
		params_rcpt_suffix(p, rcpts[i], dsn, rp, sizeof(rp));
		w->rparams[w->n] = strdup(rp);
		w->rcpts[w->n] = a;
		w->map[w->n++] = i;
		if (w->rparams[w->n - 1] == NULL)
			return -1;
	}
	return 0;
}

/* The log line of a re-encoding for a server without 8BITMIME. */
static void log_7bit(const struct mime_7bit *r)
{
	if (r->how != MIME_QP)
		log_event(LOG_WARNING, "an 8-bit message goes as it is to a "
		          "smarthost without 8BITMIME: %s", r->why);
	else if (r->parts == 0)
		log_event(LOG_INFO, "the smarthost does not offer 8BITMIME: the "
		          "8-bit body goes re-encoded as quoted-printable");
	else
		log_event(r->why[0] ? LOG_WARNING : LOG_INFO, "the smarthost "
		          "does not offer 8BITMIME: %u 8-bit text part%s re-encoded "
		          "as quoted-printable%s%s", r->parts,
		          r->parts == 1 ? "" : "s", r->why[0] ? "; 8-bit bytes "
		          "remain: " : "", r->why);
}

/* Without 8BITMIME, 8-bit text as quoted-printable in a copy. */
static int body(struct smtp_wire *w, bool eightbitmime, bool *eight,
                char *err, size_t errlen)
{
	struct mime_7bit r;
	int has = mime_has_8bit(w->fd), out;

	if (has < 0) {
		snprintf(err, errlen, "cannot read the spooled message");
		return -1;
	}
	*eight = has == 1;
	if (!*eight || eightbitmime)
		return 0;
	out = tmpfile_anon(NULL);
	if (out < 0 || mime_encode_7bit(w->fd, out, &r, err, errlen) != 0) {
		if (out < 0)
			snprintf(err, errlen, "cannot re-encode the 8-bit body: "
			         "no temporary file");
		else
			close(out);
		return -1;
	}
	log_7bit(&r);
	if (r.how != MIME_QP) {
		close(out);
		return 0;
	}
	w->fd = out;
	w->size = r.size;
	w->own_fd = true;
	return 0;
}

int smtp_wire_prepare(struct smtp_wire *w, const char *caps,
                      const char *sender, char *const *rcpts, size_t nrcpt,
                      const struct params_set *params, int fd, off_t size,
                      char *err, size_t errlen)
{
	struct params_set local = { 0 };
	bool eight = false, eightbitmime = xact_has_ext(caps, "8BITMIME");

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->size = size;
	if (params == NULL)
		params = &local;
	if (addresses(w, caps, sender, rcpts, nrcpt, params) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (w->sender_code != 0)
		return 0;               /* nothing goes: no message to prepare */
	if (body(w, eightbitmime, &eight, err, errlen) != 0 ||
	    lseek(w->fd, 0, SEEK_SET) != 0)
		return -1;
	xact_mail_params(caps, w->sender, w->rcpts, w->n, w->size, w->params,
	                 sizeof(w->params));
	local = *params;
	if (eight)
		local.body = PARAMS_BODY_8BITMIME;
	params_mail_suffix(&local, xact_has_ext(caps, "DSN"), eightbitmime,
	                   w->params, sizeof(w->params));
	return 0;
}

void smtp_wire_free(struct smtp_wire *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->rcpts[i]);
		free(w->rparams[i]);
	}
	free(w->rcpts);
	free(w->rparams);
	free(w->map);
	free(w->code);
	free(w->text);
	free(w->sender);
	if (w->own_fd)
		close(w->fd);
	memset(w, 0, sizeof(*w));
}

bool smtp_wire_param_fault(int code, const char *text)
{
	return code == 555 ||
	       (code == 501 && strlen(text) > 9 && strncmp(text + 4, "5.5.4",
	                                                   5) == 0);
}
