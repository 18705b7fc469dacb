/*
 * fuzz_params.c - libFuzzer target for src/params.c: the MAIL and RCPT
 * parameters of -bs and the queue envelope's lines.
 *
 * The input is split at LF into words; the first byte of each says what
 * it is (0: a MAIL word, 1: a RCPT word for the recipient "r@x", 2: an
 * envelope line "key value"). Checks:
 *  - what is taken never puts a control character, a blank or a byte
 *    over 0x7e into the parameters formed for a server (no CR, LF or NUL
 *    can reach a command line), and NOTIFY=NEVER never goes with others;
 *  - the envelope text of what was taken reads back to the same text.
 */
#include "fuzz_common.h"

#include "params.h"

static void check_wire(const char *s, const char *what)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < ' ' || c > '~' || (c == ' ' && (p[1] == ' ' ||
		                                        p[1] == '\0')))
			fuzz_fail("%s: byte 0x%02x in [%s]", what, c, s);
	}
	p = strstr(s, " NOTIFY=");
	if (p != NULL) {
		size_t k = strcspn(p + 8, " ");

		if (memmem(p + 8, k, "NEVER", 5) != NULL && k != 5)
			fuzz_fail("%s: NEVER with others: [%s]", what, s);
	}
}

static void round_trip(const struct params_set *p)
{
	char *rcpts[] = { "r@x" };
	char a[4096], b[4096];
	struct params_set q = { 0 };
	char *line = a, *nl;

	params_env_text(p, rcpts, 1, a, sizeof(a));
	while (*line != '\0') {
		char *sp = strchr(line, ' ');

		nl = strchr(line, '\n');
		if (nl == NULL || sp == NULL || sp > nl)
			fuzz_fail("bad envelope line in [%s]", a);
		*nl = '\0';
		*sp = '\0';
		if (params_env_line(&q, line, sp + 1) != 1)
			fuzz_fail("envelope line %s %s not read back", line, sp + 1);
		*sp = ' ';
		*nl = '\n';
		line = nl + 1;
	}
	params_env_text(&q, rcpts, 1, b, sizeof(b));
	if (strcmp(a, b) != 0)
		fuzz_fail("envelope text changed: [%s] -> [%s]", a, b);
	params_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct params_set p = { 0 };
	char out[4096], err[300];
	size_t i = 0;

	while (i < n) {
		const uint8_t *nl = memchr(d + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - d) : n;
		char *w = strndup((const char *)d + i + 1, end > i ? end - i - 1
		                                                   : 0);
		unsigned notify = 0;
		char *orcpt = NULL;

		if (w == NULL)
			fuzz_fail("out of memory");
		if (end > i && d[i] % 3 == 0) {
			params_mail_word(&p, w, strlen(w), err, sizeof(err));
		} else if (end > i && d[i] % 3 == 1) {
			if (params_rcpt_word(&notify, &orcpt, w, strlen(w), err,
			                     sizeof(err)) == 0 &&
			    (notify != 0 || orcpt != NULL))
				params_rcpt_set(&p, "r@x", notify, orcpt);
		} else if (end > i) {
			char *sp = strchr(w, ' ');

			if (sp != NULL) {
				*sp = '\0';
				params_env_line(&p, w, sp + 1);
			}
		}
		free(orcpt);
		free(w);
		i = end + 1;
	}
	out[0] = '\0';
	params_mail_suffix(&p, true, true, out, sizeof(out));
	check_wire(out, "MAIL");
	out[0] = '\0';
	params_rcpt_suffix(&p, "r@x", true, out, sizeof(out));
	check_wire(out, "RCPT");
	round_trip(&p);
	params_free(&p);
	return 0;
}
