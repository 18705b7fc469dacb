/*
 * creds_secret.c - commands that print a secret and files that hold one
 * (see creds_secret.h).
 */
#define _GNU_SOURCE
#include "creds_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define MAX_ARGS 64
#define MAX_ENV 256

extern char **environ;

static bool has_shell_syntax(const char *cmd)
{
	return strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}\n") != NULL;
}

/* Split cmd at blanks into argv (in the copy buf). */
static int split_args(char *buf, char **argv)
{
	int n = 0;
	char *p = buf;

	while (*p != '\0' && n < MAX_ARGS - 1) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		argv[n++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
	argv[n] = NULL;
	return n;
}

/* The child's environment (pointers into environ or the static buffers). */
static void child_env(bool privileged, char **env)
{
	static char home[600], logname[300], user[300];
	static const char *const keep[] = { "LANG=", "LC_ALL=", "TZ=", NULL };
	struct passwd *pw = getpwuid(getuid());
	size_t n = 0, i, k;

	if (!privileged) {
		for (i = 0; environ[i] != NULL && n < MAX_ENV - 1; i++) {
			if (strncmp(environ[i], "OUTBOX_", 7) != 0)
				env[n++] = environ[i];
		}
		env[n] = NULL;
		return;
	}
	env[n++] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin";
	if (pw != NULL) {
		snprintf(home, sizeof(home), "HOME=%s", pw->pw_dir);
		snprintf(logname, sizeof(logname), "LOGNAME=%s", pw->pw_name);
		snprintf(user, sizeof(user), "USER=%s", pw->pw_name);
		env[n++] = home;
		env[n++] = logname;
		env[n++] = user;
	}
	for (i = 0; environ[i] != NULL && n < MAX_ENV - 1; i++) {
		for (k = 0; keep[k] != NULL; k++) {
			if (strncmp(environ[i], keep[k], strlen(keep[k])) == 0)
				env[n++] = environ[i];
		}
	}
	env[n] = NULL;
}

static pid_t spawn(const char *cmd, bool privileged, int *out_fd)
{
	char *argv[MAX_ARGS], *env[MAX_ENV];
	char *copy = strdup(cmd);
	int p[2];
	pid_t pid;

	if (copy == NULL || pipe2(p, O_CLOEXEC) != 0) {
		free(copy);
		return -1;
	}
	if (has_shell_syntax(cmd)) {
		argv[0] = (char *)"/bin/sh";
		argv[1] = (char *)"-c";
		argv[2] = (char *)cmd;
		argv[3] = NULL;
	} else if (split_args(copy, argv) == 0) {
		errno = EINVAL;
		close(p[0]);
		close(p[1]);
		free(copy);
		return -1;
	}
	child_env(privileged, env);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		if (null >= 0)
			dup2(null, 0);
		dup2(p[1], 1);
		environ = env;      /* PATH lookups use the child's own PATH */
		execvp(argv[0], argv);
		_exit(127);
	}
	free(copy);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	*out_fd = p[0];
	return pid;
}

/* Milliseconds left until start + timeout seconds. */
static long ms_left(const struct timespec *start, long timeout)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return timeout * 1000 - ((now.tv_sec - start->tv_sec) * 1000 +
	                         (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* Read the child's output until EOF or the deadline. 0, 1 timeout, -1. */
static int collect(int fd, char *buf, size_t cap, size_t *len,
                   const struct timespec *start, long timeout)
{
	*len = 0;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long left = ms_left(start, timeout);
		ssize_t n;

		if (left <= 0)
			return 1;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (*len >= cap) {
			char sink[512];

			n = read(fd, sink, sizeof(sink));   /* drain beyond the cap */
		} else {
			n = read(fd, buf + *len, cap - *len);
			if (n > 0)
				*len += (size_t)n;
		}
		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int secret_command(const char *key, const char *cmd, long timeout,
                   bool privileged, char **out, char *err, size_t errlen)
{
	char *buf = malloc(SECRET_MAX + 1);
	struct timespec start;
	size_t len = 0;
	int fd = -1, status = 0, rc;
	pid_t pid;

	*out = NULL;
	err[0] = '\0';
	pid = buf ? spawn(cmd, privileged, &fd) : -1;
	if (pid < 0) {
		snprintf(err, errlen, "%s: cannot run the command: %s", key,
		         strerror(errno));
		free(buf);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = collect(fd, buf, SECRET_MAX, &len, &start, timeout);
	close(fd);
	/* the output may end before the command does: it still has only
	 * what is left of the timeout */
	while (rc == 0 && waitpid(pid, &status, WNOHANG) == 0) {
		if (ms_left(&start, timeout) <= 0)
			rc = 1;
		else
			usleep(10000);
	}
	if (rc != 0) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (rc == 1)
		snprintf(err, errlen, "%s: timed out after %lds", key, timeout);
	else if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(err, errlen, "%s: the command failed (%s %d)", key,
		         WIFSIGNALED(status) ? "signal" : "exit status",
		         WIFSIGNALED(status) ? WTERMSIG(status)
		                             : WEXITSTATUS(status));
	else if (buf[0] == '\0')
		snprintf(err, errlen, "%s: the command printed nothing", key);
	else
		*out = strdup(buf);
	secure_zero(buf, SECRET_MAX + 1);
	free(buf);
	if (*out == NULL && rc == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0 && err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", key);
	return *out ? 0 : -1;
}

bool secret_strict(bool privileged)
{
	return privileged && getuid() != 0;
}

int secret_file(const char *key, const char *path, bool strict, char **out,
                char *err, size_t errlen)
{
	char buf[1024];
	struct stat st;
	ssize_t n;
	int fd;
	char *nl;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: %s", key, path,
		         fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (file_readable_by_others(&st) || file_untrusted_owner(&st, strict)) {
		close(fd);
		snprintf(err, errlen, "%s %s: %s", key, path,
		         file_untrusted_owner(&st, strict) ? "must be owned by "
		         "root and writable only by root" : "other users can read "
		         "it (chmod 600)");
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	nl = strpbrk(buf, "\r\n");
	if (nl == NULL && (size_t)n == sizeof(buf) - 1) {
		secure_zero(buf, sizeof(buf));
		snprintf(err, errlen, "%s %s: first line too long", key, path);
		return -1;
	}
	if (nl != NULL)
		*nl = '\0';
	if (buf[0] == '\0') {
		snprintf(err, errlen, "%s %s: empty first line", key, path);
		return -1;
	}
	*out = strdup(buf);
	secure_zero(buf, sizeof(buf));
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int secret_store(const char *path, const char *text)
{
	char tmp[4200];
	int fd, rc = 0, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	          0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0)
		rc = -1;
	saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -1;
		saved = errno;
	}
	if (rc != 0) {
		unlink(tmp);
		errno = saved;
	}
	return rc;
}
