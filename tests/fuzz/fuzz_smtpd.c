/*
 * fuzz_smtpd.c - libFuzzer target for the pure parsers of src/smtpd.c.
 *
 * The input is an SMTP client session: it is split into lines at LF (a CR
 * before the LF is dropped, as smtpd_run does), and each line is handed to
 * smtpd_parse_command in a buffer of exactly its length, without a NUL
 * after it: the functions take (pointer, length) and must not read past
 * the length. For MAIL and RCPT the argument goes to smtpd_parse_path.
 * Checks:
 *  - cmd->arg lies inside the line, without blanks at either end;
 *  - MAIL/RCPT without FROM:/TO: are the only -1 results;
 *  - smtpd_parse_path: on success *addr is an addr-spec that re-parses to
 *    itself (or "" for <>), *params points inside the argument; on error
 *    *addr is NULL and the reason NUL-terminated.
 */
#include "fuzz_common.h"

#include "address.h"
#include "smtpd.h"

static void check_path(const char *arg, size_t len)
{
	char err[256];
	char *addr = (char *)1, *one = NULL;
	const char *params = NULL;

	memset(err, 'x', sizeof(err));
	if (smtpd_parse_path(arg, len, &addr, &params, err, sizeof(err)) != 0) {
		fuzz_check_err(err, sizeof(err), "smtpd_parse_path");
		if (addr != NULL) {
			free(addr);
			fuzz_fail("smtpd_parse_path: error but *addr set");
		}
		return;
	}
	if (addr == NULL)
		fuzz_fail("smtpd_parse_path: success without an address");
	if (params == NULL || params < arg || params > arg + len)
		fuzz_fail("smtpd_parse_path: params outside the argument");
	if (addr[0] != '\0') {
		if (addr_parse_one(addr, &one, err, sizeof(err)) != 0 ||
		    strcmp(one, addr) != 0)
			fuzz_fail("smtpd_parse_path: [%s] does not re-parse to "
			          "itself", addr);
		free(one);
	}
	free(addr);
}

static void check_line(const char *line, size_t len)
{
	struct smtpd_cmd cmd;
	int rc = smtpd_parse_command(line, len, &cmd);

	if (rc != 0) {
		if (rc != -1)
			fuzz_fail("smtpd_parse_command returned %d", rc);
		if (cmd.verb != V_MAIL && cmd.verb != V_RCPT)
			fuzz_fail("-1 for verb %d", (int)cmd.verb);
		return;
	}
	if ((int)cmd.verb < (int)V_UNKNOWN || (int)cmd.verb > (int)V_AUTH)
		fuzz_fail("verb %d out of range", (int)cmd.verb);
	if (cmd.arg == NULL || cmd.arg < line || cmd.arg > line + len ||
	    cmd.arglen > (size_t)(line + len - cmd.arg))
		fuzz_fail("argument outside the line");
	if (cmd.arglen > 0 &&
	    (cmd.arg[0] == ' ' || cmd.arg[0] == '\t' ||
	     cmd.arg[cmd.arglen - 1] == ' ' || cmd.arg[cmd.arglen - 1] == '\t'))
		fuzz_fail("argument not trimmed");
	if (cmd.verb == V_MAIL || cmd.verb == V_RCPT)
		check_path(cmd.arg, cmd.arglen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;

	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - data) : size, n = end - i;
		char *line;

		if (n > 0 && data[end - 1] == '\r')
			n--;
		/* exactly n bytes: reading line[n] is a heap overflow */
		line = malloc(n > 0 ? n : 1);
		if (line == NULL)
			return 0;
		memcpy(line, data + i, n);
		check_line(n > 0 ? line : line + 1, n);
		free(line);
		i = nl ? end + 1 : size;
	}
	return 0;
}
