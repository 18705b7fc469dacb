/*
 * fuzz_mime.c - libFuzzer target for src/mime.c (mime_fix_long_lines).
 *
 * The input becomes a spool file as message_read writes them: every bare
 * LF is turned into CRLF and a final CRLF is added when missing (bare CR
 * stays). So that short inputs can hold long lines, the byte 0x01
 * followed by N and C stands for (N + 1) * 8 copies of C. eightbit is
 * passed as the spool's having a byte >= 0x80. Checks:
 *  - mime_fix_long_lines succeeds and *size is the file's new size;
 *  - no output line is longer than MIME_LINE_MAX octets (CRLF not
 *    counted; a bare CR is an octet of the line);
 *  - MIME_BROKEN: with every CRLF SPACE removed, output == input (lines
 *    were only broken, nothing else changed);
 *  - MIME_QP: the header section says quoted-printable, every body line
 *    is at most 76 octets, and the decoded body is the original body.
 * The last two only for spools shaped like message_read's (a header
 * section, not starting with CRLF, ended by CRLFCRLF).
 */
#include "fuzz_common.h"

#include "mime.h"

static int fd = -1;

static void check_lines(const char *o, size_t n)
{
	size_t i, line = 0;

	for (i = 0; i < n; i++) {
		if (o[i] == '\n') {
			size_t l = (i > 0 && o[i - 1] == '\r') ? line - 1 : line;

			if (l > MIME_LINE_MAX)
				fuzz_fail("output line of %zu octets ending at %zu", l,
				          i);
			line = 0;
		} else {
			line++;
		}
	}
	if (line > MIME_LINE_MAX)
		fuzz_fail("last output line of %zu octets", line);
}

/* s without its CRLF SPACE sequences (in place); the new length. */
static size_t unbreak(char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (i + 2 < n && s[i] == '\r' && s[i + 1] == '\n' &&
		    s[i + 2] == ' ') {
			i += 2;
			continue;
		}
		s[o++] = s[i];
	}
	return o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void check_qp(const char *o, size_t n, const char *in, size_t inlen,
                     size_t in_body)
{
	static const char cte[] = "Content-Transfer-Encoding: quoted-printable"
	                          "\r\n";
	const char *sep = memmem(o, n, "\r\n\r\n", 4);
	size_t hdr, i, col = 0, d = 0;
	char *dec;

	if (sep == NULL)
		fuzz_fail("qp: no header separator in the output");
	hdr = (size_t)(sep - o) + 2;
	if (strncmp(o, cte, sizeof(cte) - 1) != 0 &&
	    memmem(o, hdr, "\r\nContent-Transfer-Encoding: quoted-printable"
	           "\r\n", sizeof(cte) + 1) == NULL)
		fuzz_fail("qp: no Content-Transfer-Encoding: quoted-printable");
	for (i = hdr + 2; i < n; i++) {
		if (o[i] != '\n') {
			col++;
			continue;
		}
		if (col - 1 > 76)
			fuzz_fail("qp: body line of %zu octets", col - 1);
		col = 0;
	}
	dec = malloc(n + 1);
	if (dec == NULL)
		fuzz_fail("out of memory");
	for (i = hdr + 2; i < n; i++) {
		if (o[i] == '=' && i + 2 < n && o[i + 1] == '\r' &&
		    o[i + 2] == '\n') {
			i += 2;
		} else if (o[i] == '=') {
			int hi = i + 2 < n ? hexval(o[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(o[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				fuzz_fail("qp: bad escape at output offset %zu", i);
			dec[d++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			dec[d++] = o[i];
		}
	}
	if (d != inlen - in_body || memcmp(dec, in + in_body, d) != 0)
		fuzz_fail("qp: decoded body differs from the original (%zu vs "
		          "%zu bytes)", d, inlen - in_body);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	size_t len, n, i;
	char *in = fuzz_mime_spool(data, size, &len), *out;
	const char *sep = memmem(in, len, "\r\n\r\n", 4);
	bool shaped = sep != NULL && !(in[0] == '\r' && in[1] == '\n');
	bool eightbit = false;
	enum mime_fix how = (enum mime_fix)-1;
	off_t osize = (off_t)len;

	for (i = 0; i < len; i++) {
		if ((unsigned char)in[i] >= 0x80)
			eightbit = true;
	}
	fuzz_memfd(&fd, "fuzz-spool");
	fuzz_write_all(fd, in, len);
	memset(err, 'x', sizeof(err));
	if (mime_fix_long_lines(fd, &osize, eightbit, &how, err,
	                        sizeof(err)) != 0) {
		fuzz_check_err(err, sizeof(err), "mime_fix_long_lines");
		fuzz_fail("mime_fix_long_lines failed on a memfd: %s", err);
	}
	out = fuzz_read_fd(fd, &n);
	if (osize != (off_t)n)
		fuzz_fail("*size %lld but the file has %zu bytes",
		          (long long)osize, n);
	check_lines(out, n);
	if (how == MIME_BROKEN && shaped) {
		size_t a = unbreak(out, n), b = unbreak(in, len);

		if (a != b || memcmp(out, in, a) != 0)
			fuzz_fail("broken: output differs from the input beyond "
			          "CRLF SPACE");
	} else if (how == MIME_QP && shaped) {
		check_qp(out, n, in, len, (size_t)(sep - in) + 4);
	} else if (how != MIME_BROKEN && how != MIME_QP) {
		fuzz_fail("success with how = %d", (int)how);
	}
	free(out);
	free(in);
	return 0;
}
