/*
 * init.c - outbox --init (see init.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "util.h"

#define PW_MAX 1024

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "outbox: --init: %s%s%s\n", what, why ? ": " : "",
	        why ? why : "");
	return -1;
}

/* The password: first line of stdin, or asked on the terminal. */
static int read_password(char *buf, size_t n)
{
	struct termios old, quiet;
	FILE *tty = NULL;
	bool ask = isatty(STDIN_FILENO);
	int rc = 0;

	if (ask) {
		tty = fopen("/dev/tty", "r+e");
		if (tty == NULL || tcgetattr(fileno(tty), &old) != 0)
			return fail("cannot ask for the password", strerror(errno));
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		fputs("Password: ", tty);
		fflush(tty);
	}
	if (fgets(buf, (int)n, tty ? tty : stdin) == NULL)
		rc = fail("no password given on standard input", NULL);
	if (tty != NULL) {
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
		fclose(tty);
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (rc == 0 && buf[0] == '\0')
		rc = fail("empty password", NULL);
	return rc;
}

static int write_new(const char *path, const char *text, bool force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	              (force ? O_TRUNC : O_EXCL), 0600);

	if (fd < 0)
		return fail(path, errno == EEXIST ? "exists (use --force to "
		            "overwrite it)" : strerror(errno));
	if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 ||
	    fsync(fd) != 0) {
		close(fd);
		return fail(path, strerror(errno));
	}
	return close(fd) == 0 ? 0 : fail(path, strerror(errno));
}

/* The password file's absolute path (the config keys want one). */
static char *secret_path(const char *config)
{
	char cwd[4096] = "";
	size_t n = strlen(config), size;
	char *p;

	if (config[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	size = strlen(cwd) + n + 10;
	p = malloc(size);
	if (p == NULL)
		return NULL;
	if (n > 5 && strcmp(config + n - 5, ".conf") == 0)
		n -= 5;
	snprintf(p, size, "%s%s%.*s.secret", cwd, cwd[0] ? "/" : "", (int)n,
	         config);
	return p;
}

enum ob_status init_write(const char *config_path, const char *host,
                          const char *user, bool force)
{
	char pw[PW_MAX + 2], text[8192];
	char *secret = secret_path(config_path);
	const char *colon = strrchr(host, ':');
	bool smtps = colon != NULL && strcmp(colon, ":465") == 0;
	enum ob_status st = OB_CANTCREAT;

	if (secret == NULL)
		return OB_SOFTWARE;
	if (!force && access(config_path, F_OK) == 0) {
		fail(config_path, "exists (use --force to overwrite it)");
		free(secret);
		return OB_CANTCREAT;
	}
	if (user != NULL && read_password(pw, sizeof(pw) - 1) != 0) {
		free(secret);
		return OB_USAGE;
	}
	if (user != NULL) {
		size_t k = strlen(pw);      /* < sizeof(pw) - 1: room for LF */

		pw[k] = '\n';
		pw[k + 1] = '\0';
	}
	snprintf(text, sizeof(text), "# written by outbox --init; see "
	         "outbox.conf(5)\nsmarthost %s\ntls %s\n%s%s%s%s%s%s",
	         host, smtps ? "smtps" : "starttls",
	         user ? "user \"" : "", user ? user : "", user ? "\"\n" : "",
	         user ? "password-file " : "", user ? secret : "",
	         user ? "\n" : "");
	if ((user == NULL || write_new(secret, pw, force) == 0) &&
	    write_new(config_path, text, force) == 0) {
		printf("wrote %s%s%s\n", config_path, user ? " and " : "",
		       user ? secret : "");
		st = OB_OK;
	}
	secure_zero(pw, sizeof(pw));
	free(secret);
	return st;
}
