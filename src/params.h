/*
 * params.h - a message's envelope parameters: the DSN requests of RFC 3461
 * (RET and ENVID for the message, NOTIFY and ORCPT for each recipient) and
 * the body type of RFC 6152 (BODY=7BIT / 8BITMIME).
 *
 * They come from the command line (-N, -R, -V, -B) or from -bs (MAIL and
 * RCPT parameters), are validated here, kept in the queue envelope, and
 * formed into the MAIL/RCPT parameters sent to a smarthost that offers
 * the extension. Pure: no I/O, no global state. Every value kept is
 * printable ASCII without blanks (xtext is kept encoded), so no CR, LF or
 * NUL can reach a command line through it.
 */
#ifndef OUTBOX_PARAMS_H
#define OUTBOX_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#define PARAMS_ENVID_MAX 100    /* decoded ENVID (RFC 3461 4.4) */
#define PARAMS_ORCPT_MAX 500    /* ORCPT value (RFC 3461 4.2) */

enum params_ret { PARAMS_RET_NONE = 0, PARAMS_RET_FULL, PARAMS_RET_HDRS };
enum params_body {
	PARAMS_BODY_NONE = 0,   /* not said, and no 8-bit byte seen */
	PARAMS_BODY_7BIT,
	PARAMS_BODY_8BITMIME
};

/* NOTIFY bits; 0 means "not given" (the server's default applies). */
#define PARAMS_NOTIFY_NEVER   1u
#define PARAMS_NOTIFY_SUCCESS 2u
#define PARAMS_NOTIFY_FAILURE 4u
#define PARAMS_NOTIFY_DELAY   8u

struct params_rcpt {
	char *addr;             /* the recipient, as the envelope has it */
	unsigned notify;        /* PARAMS_NOTIFY_*, 0: not given */
	char *orcpt;            /* "addr-type;xtext" as sent, or NULL */
};

struct params_set {
	enum params_ret ret;
	char *envid;            /* xtext as sent, or NULL */
	enum params_body body;
	unsigned notify;        /* -N: for recipients without their own */
	struct params_rcpt *rcpt;       /* recipients with their own */
	size_t nrcpt, cap;
};

/*
 * A command-line flag: 'N' (never | success,failure,delay), 'R' (hdrs |
 * full), 'V' (the envelope ID: printable ASCII, at most 100 characters;
 * xtext-encoded here) or 'B' (7bit | 8bitmime), case-insensitive. Returns
 * 0, or -1 with a one-line error in err naming the value and the fix.
 */
int params_cli(struct params_set *p, char flag, const char *arg, char *err,
               size_t errlen);

/*
 * One MAIL FROM parameter from -bs, word[0..n) ("RET=HDRS"). RET, ENVID
 * and BODY are kept; SIZE, SMTPUTF8 and AUTH are accepted (SIZE checked
 * for digits). Returns 0; -1 for a bad value (reply 501), -2 for an
 * unknown parameter (reply 555); err says which and why.
 */
int params_mail_word(struct params_set *p, const char *word, size_t n,
                     char *err, size_t errlen);

/*
 * One RCPT TO parameter from -bs ("NOTIFY=SUCCESS", "ORCPT=rfc822;a@b"),
 * into *notify and *orcpt (malloc'd; the caller frees). Same returns as
 * params_mail_word.
 */
int params_rcpt_word(unsigned *notify, char **orcpt, const char *word,
                     size_t n, char *err, size_t errlen);

/*
 * Give addr its own NOTIFY (0: none) and ORCPT (NULL: none, copied).
 * A second call for the same address (case-insensitive) replaces the
 * first. 0, or -1 when out of memory.
 */
int params_rcpt_set(struct params_set *p, const char *addr, unsigned notify,
                    const char *orcpt);

/* addr's own entry, or NULL. */
const struct params_rcpt *params_rcpt_get(const struct params_set *p,
                                          const char *addr);

/* The NOTIFY that applies to addr: its own, else p->notify (0: none). */
unsigned params_notify_of(const struct params_set *p, const char *addr);

/* Does addr's sender want to hear about its failure (NOTIFY absent, or
 * with FAILURE)? p may be NULL. */
bool params_wants_failure(const struct params_set *p, const char *addr);

/* Does p hold anything to keep? */
bool params_any(const struct params_set *p);

/* A deep copy of src into dst (dst is overwritten). 0, or -1. */
int params_copy(struct params_set *dst, const struct params_set *src);

/* Free what p owns; p is zeroed. NULL is fine. */
void params_free(struct params_set *p);

/*
 * The queue envelope's lines. params_env_line takes one line's key and
 * value ("ret" "HDRS"): 1 when it is one of ours and good, 0 when the key
 * is not ours, -1 when the value is bad. params_env_text writes p's lines
 * ("key value\n" each, for the recipients of rcpts only) into out; it
 * returns the length the whole text needs (as snprintf does).
 */
int params_env_line(struct params_set *p, const char *key, const char *val);
size_t params_env_text(const struct params_set *p, char *const *rcpts,
                       size_t nrcpt, char *out, size_t outlen);

/*
 * The parameters for a smarthost, appended to out (" BODY=8BITMIME
 * RET=HDRS ENVID=x"): BODY only when eightbitmime (the server offers
 * 8BITMIME), RET/ENVID (and for a recipient NOTIFY/ORCPT) only when dsn
 * (it offers DSN).
 */
void params_mail_suffix(const struct params_set *p, bool dsn, bool eightbitmime,
                        char *out, size_t outlen);
void params_rcpt_suffix(const struct params_set *p, const char *addr, bool dsn,
                        char *out, size_t outlen);

/*
 * xtext (RFC 3461 4) decoded into out (NUL-terminated, truncated to
 * outlen); a byte that is not printable ASCII stays encoded.
 */
void params_xtext_decode(const char *x, char *out, size_t outlen);

/* Is s[0..n) valid xtext? */
bool params_xtext_ok(const char *s, size_t n);

#endif
