/*
 * fuzz_message.c - libFuzzer target for src/message.c (message_read, and
 * the push parser through message_read_from).
 *
 * The first input byte selects the options: bit 0 ignore_dots (-i),
 * bit 1 extract_rcpts (-t), bit 2 a full name (-F), bit 3 the null sender,
 * bit 4 the header policy (qualification, from-header local; bit 5:
 * always), bit 6 the message pushed to the parser in pieces of 1 to 7
 * bytes (message_read_from), so that a CR or a dot falls on the cut.
 * The rest is the message, read from a memfd and written to another.
 * Checks when message_read returns OB_OK:
 *  - every LF in the output is preceded by CR and every CR followed by
 *    LF (a bare CR is a line end, so nothing can end DATA early), and the output ends with CRLF and holds the CRLFCRLF separator;
 *  - m->size is the number of bytes written;
 *  - m->longest_line is the longest output line without its CRLF;
 *  - m->eightbit says whether a byte >= 0x80 was written;
 *  - no Bcc field is left in the header section;
 *  - recipients only with -t, and each one re-parses to itself;
 *  - the From field sent is recorded (m->from_field).
 * Otherwise: a status in range and a NUL-terminated error text.
 */
#include "fuzz_common.h"

#include "address.h"
#include "message.h"

static int in_fd = -1, out_fd = -1;

static bool fuzz_local(const char *addr)
{
	return strchr(addr, '@') == NULL || strstr(addr, "@localhost") != NULL;
}

static void check_output(const char *o, size_t n, const struct message *m)
{
	size_t i, line = 0, longest = 0, hdr_end;
	bool eight = false;
	const char *sep;

	if (m->size != (off_t)n)
		fuzz_fail("m->size %lld but %zu bytes written",
		          (long long)m->size, n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)o[i];

		if (c >= 0x80)
			eight = true;
		if (c == '\r' && (i + 1 == n || o[i + 1] != '\n'))
			fuzz_fail("bare CR at output offset %zu", i);
		if (c == '\n') {
			if (i == 0 || o[i - 1] != '\r')
				fuzz_fail("bare LF at output offset %zu", i);
			if (line - 1 > longest)
				longest = line - 1;
			line = 0;
		} else {
			line++;
		}
	}
	if (n < 2 || o[n - 2] != '\r' || o[n - 1] != '\n')
		fuzz_fail("output does not end with CRLF");
	if (m->longest_line != longest)
		fuzz_fail("m->longest_line %zu but the longest line is %zu",
		          m->longest_line, longest);
	if (m->eightbit != eight)
		fuzz_fail("m->eightbit %d but output eight-bit is %d",
		          (int)m->eightbit, (int)eight);
	sep = memmem(o, n, "\r\n\r\n", 4);
	if (sep == NULL && !(n >= 2 && o[0] == '\r' && o[1] == '\n'))
		fuzz_fail("no blank line after the header section");
	hdr_end = sep ? (size_t)(sep - o) + 2 : 0;
	for (i = 0; i < hdr_end; i++) {
		if ((i == 0 || o[i - 1] == '\n') && hdr_end - i >= 4 &&
		    (strncasecmp(o + i, "Bcc:", 4) == 0 ||
		     (hdr_end - i >= 11 && strncasecmp(o + i, "Resent-Bcc:", 11)
		      == 0)))
			fuzz_fail("Bcc field left at output offset %zu", i);
	}
}

/* message_read_from's source: the memfd in pieces of 1..7 bytes. */
static ssize_t pull_pieces(void *arg, void *buf, size_t n)
{
	unsigned *x = arg;
	size_t want;
	ssize_t r;

	*x = *x * 1103515245u + 12345u;
	want = 1 + (*x >> 16) % 7;
	r = read(in_fd, buf, want < n ? want : n);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message_opts o;
	struct headers_policy pol;
	struct message m;
	char err[256];
	enum ob_status st;
	char *out;
	size_t n, i;

	if (size < 1)
		return 0;
	memset(&o, 0, sizeof(o));
	o.ignore_dots = (data[0] & 1) != 0;
	o.extract_rcpts = (data[0] & 2) != 0;
	o.fullname = (data[0] & 4) ? "Cron Daemon (\"fuzz\")" : NULL;
	o.sender = (data[0] & 8) ? "" : "cron@host.example.com";
	o.domain = "example.com";
	pol.domain = "example.com";
	pol.from = "cron@example.com";
	pol.from_mode = (data[0] & 32) ? HEADERS_FROM_ALWAYS : HEADERS_FROM_LOCAL;
	pol.is_local = fuzz_local;
	o.headers = (data[0] & 16) ? &pol : NULL;

	fuzz_memfd(&in_fd, "fuzz-in");
	fuzz_memfd(&out_fd, "fuzz-out");
	fuzz_write_all(in_fd, data + 1, size - 1);
	if (lseek(in_fd, 0, SEEK_SET) != 0)
		fuzz_fail("lseek");

	memset(err, 'x', sizeof(err));
	if (data[0] & 64) {
		unsigned x = data[0];

		st = message_read_from(pull_pieces, &x, out_fd, &o, &m, err,
		                       sizeof(err));
	} else {
		st = message_read(in_fd, out_fd, &o, &m, err, sizeof(err));
	}
	if ((int)st < (int)OB_OK || (int)st > (int)OB_CONFIG)
		fuzz_fail("status %d out of range", (int)st);
	if (st == OB_OK) {
		out = fuzz_read_fd(out_fd, &n);
		check_output(out, n, &m);
		free(out);
		if (m.from_field == NULL ||
		    strncasecmp(m.from_field, "From", 4) != 0)
			fuzz_fail("no From field recorded");
		if (!o.extract_rcpts && m.rcpts.count != 0)
			fuzz_fail("%zu recipients without -t", m.rcpts.count);
		for (i = 0; i < m.rcpts.count; i++) {
			char *one = NULL;

			if (addr_parse_one(m.rcpts.addrs[i], &one, err,
			                   sizeof(err)) != 0 ||
			    strcmp(one, m.rcpts.addrs[i]) != 0)
				fuzz_fail("recipient [%s] does not re-parse to itself",
				          m.rcpts.addrs[i]);
			free(one);
		}
	} else {
		fuzz_check_err(err, sizeof(err), "message_read");
	}
	message_free(&m);
	return 0;
}
