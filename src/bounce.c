/*
 * bounce.c - RFC 3464 delivery status notifications (see bounce.h).
 */
#define _GNU_SOURCE
#include "bounce.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util.h"

#define ORIG_HEADERS_MAX (64 * 1024)

static void rfc5322_date(char *buf, size_t n, time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(buf, n, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		buf[0] = '\0';
}

/* The enhanced status code in a reply ("550 5.1.1 ..."), else a default. */
static void status_code(const char *diag, bool expired, char *out, size_t n)
{
	const char *p;

	for (p = diag; p != NULL && *p != '\0'; p++) {
		if ((p[0] == '4' || p[0] == '5') && p[1] == '.' &&
		    isdigit((unsigned char)p[2]) && (p == diag || p[-1] == ' ')) {
			size_t k = strspn(p, "0123456789.");

			if (k >= 5 && k < n) {
				memcpy(out, p, k);
				out[k] = '\0';
				return;
			}
		}
	}
	str_copy(out, n, expired ? "4.4.7" : "5.0.0");
}

/* Copy the original's header section (up to the blank line). */
static int copy_headers(FILE *o, int datafd)
{
	char *buf = malloc(ORIG_HEADERS_MAX + 1);
	ssize_t n;
	size_t len = 0;
	char *end;

	if (buf == NULL || lseek(datafd, 0, SEEK_SET) != 0) {
		free(buf);
		return -1;
	}
	while (len < ORIG_HEADERS_MAX) {
		n = read(datafd, buf + len, ORIG_HEADERS_MAX - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	end = memmem(buf, len, "\r\n\r\n", 4);
	if (end != NULL)
		len = (size_t)(end - buf) + 2;
	fwrite(buf, 1, len, o);
	if (len > 0 && buf[len - 1] != '\n')
		fputs("\r\n", o);
	free(buf);
	return 0;
}

/* Copy the whole original (RET=FULL), ending in CRLF. */
static int copy_all(FILE *o, int datafd)
{
	char buf[16384];
	ssize_t n;
	char last = '\n';

	if (lseek(datafd, 0, SEEK_SET) != 0)
		return -1;
	for (;;) {
		n = read(datafd, buf, sizeof(buf));
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, o);
		last = buf[n - 1];
	}
	if (last != '\n')
		fputs("\r\n", o);
	return n < 0 ? -1 : 0;
}

static void write_text_part(FILE *o, const struct bounce_info *b)
{
	size_t i;

	fprintf(o, "Content-Type: text/plain; charset=us-ascii\r\n"
	        "Content-Description: Notification\r\n\r\n"
	        "This is outbox on %s.\r\n\r\n"
	        "Your message (queue ID %s) could not be delivered to the "
	        "recipients\r\nbelow, %s.\r\n\r\n", b->host, b->id,
	        b->expired ? "because they could not be reached before the "
	                     "queue lifetime ran out"
	                   : "because the mail server refused them");
	for (i = 0; i < b->nrcpts; i++)
		fprintf(o, "<%s>: %s\r\n", b->rcpts[i].addr, b->rcpts[i].diag);
	fputs("\r\n", o);
}

static void write_status_part(FILE *o, const struct bounce_info *b)
{
	char date[64], status[32], text[PARAMS_ORCPT_MAX + 1];
	size_t i;

	rfc5322_date(date, sizeof(date), b->arrival);
	fprintf(o, "Content-Type: message/delivery-status\r\n"
	        "Content-Description: Delivery report\r\n\r\n");
	if (b->params != NULL && b->params->envid != NULL) {
		params_xtext_decode(b->params->envid, text, sizeof(text));
		fprintf(o, "Original-Envelope-Id: %s\r\n", text);
	}
	fprintf(o, "Reporting-MTA: dns; %s\r\nX-Outbox-Queue-ID: %s\r\n"
	        "Arrival-Date: %s\r\n", b->host, b->id, date);
	rfc5322_date(date, sizeof(date), time(NULL));
	for (i = 0; i < b->nrcpts; i++) {
		const struct params_rcpt *r = params_rcpt_get(b->params,
		                                              b->rcpts[i].addr);

		status_code(b->rcpts[i].diag, b->expired, status, sizeof(status));
		fputs("\r\n", o);
		if (r != NULL && r->orcpt != NULL) {
			/* addr-type;xtext: the type as it is, the address
			 * decoded */
			size_t k = strcspn(r->orcpt, ";");

			params_xtext_decode(r->orcpt + k + (r->orcpt[k] != '\0'),
			                    text, sizeof(text));
			fprintf(o, "Original-Recipient: %.*s;%s\r\n", (int)k,
			        r->orcpt, text);
		}
		fprintf(o, "Final-Recipient: rfc822; %s\r\nAction: failed\r\n"
		        "Status: %s\r\nDiagnostic-Code: smtp; %s\r\n"
		        "Last-Attempt-Date: %s\r\n", b->rcpts[i].addr, status,
		        b->rcpts[i].diag, date);
	}
	fputs("\r\n", o);
}

int bounce_write(int out, int datafd, const struct bounce_info *b)
{
	unsigned int rnd[2] = { 0, 0 };
	char date[64], boundary[64];
	FILE *o;
	int fd = dup(out);
	int rc;

	if (fd < 0)
		return -1;
	o = fdopen(fd, "w");
	if (o == NULL) {
		close(fd);
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd[0] = (unsigned int)time(NULL);
	snprintf(boundary, sizeof(boundary), "outbox-%08x%08x", rnd[0], rnd[1]);
	rfc5322_date(date, sizeof(date), time(NULL));
	if (b->from != NULL)
		fprintf(o, "From: Mail Delivery System <%s>\r\n", b->from);
	else
		fprintf(o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
		        b->domain);
	fprintf(o, "To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
	        "Date: %s\r\nMessage-ID: <%s.%s@%s>\r\n"
	        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	        "Content-Type: multipart/report; report-type=delivery-status;"
	        "\r\n\tboundary=\"%s\"\r\n\r\n"
	        "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n",
	        b->sender, date, b->id, boundary + 7, b->domain,
	        boundary, boundary);
	write_text_part(o, b);
	fprintf(o, "--%s\r\n", boundary);
	write_status_part(o, b);
	if (b->params != NULL && b->params->ret == PARAMS_RET_FULL) {
		fprintf(o, "--%s\r\nContent-Type: message/rfc822\r\n"
		        "Content-Description: Undelivered message\r\n\r\n",
		        boundary);
		rc = copy_all(o, datafd);
	} else {
		fprintf(o, "--%s\r\nContent-Type: text/rfc822-headers\r\n"
		        "Content-Description: Undelivered message headers"
		        "\r\n\r\n", boundary);
		rc = copy_headers(o, datafd);
	}
	fprintf(o, "\r\n--%s--\r\n", boundary);
	if (fflush(o) != 0 || ferror(o))
		rc = -1;
	if (fclose(o) != 0)
		rc = -1;
	return rc;
}
