/*
 * store.c - the queue's storage (see store.h): bytes and envelopes, no
 * delivery (removals of sent messages: store_drop.c; leftovers and old
 * failed/ messages: store_clean.c). The runner (runner.c) decides what is due and what to do
 * with the outcome.
 *
 * Layout under the queue directory (all 0700, files 0600):
 *   tmp/ID.data   a message being read, or delivered directly; locked
 *                 (flock) by the process writing it for its whole life
 *   tmp/ID.env    an envelope being written (commit or state update)
 *   msg/ID.data   a committed message: the exact bytes to send (CRLF,
 *                 not dot-stuffed); never changed once here
 *   msg/ID.env    its envelope: sender, recipients still to do, the
 *                 submitting uid, times, attempts, last error, and the
 *                 envelope parameters when there are any (params.h:
 *                 "ret", "envid", "body", "notify", "dsn-rcpt" lines;
 *                 an envelope without them, as older versions wrote,
 *                 has none); replaced by rename, never edited
 *   slot-KEY-N    connection slot N of smarthost KEY (max-connections):
 *                 empty; held by flock while a process is connected, so
 *                 a crash frees it. Never removed (a handful of files).
 *   rate-KEY      the times of the recent sends to KEY (rate-limit, in ms), 8
 *                 bytes each, appended under rate-KEY.lock (flock), and
 *                 replaced by rename when compacted; not fsynced: a crash
 *                 may forget the last few sends (a partial record at
 *                 the end is ignored), so a limit can be passed by those
 *                 few once after a crash.
 *   rate-KEY.lock the lock of rate-KEY (empty)
 *   trust-HOST-PORT  the trust-anchor cache of smarthost HOST:PORT
 *                 (trust.c, not this file's: read and written by path):
 *                 the system store's identity, then the certificates
 *                 of it that anchored the smarthost's chain; replaced by
 *                 rename from trust-HOST-PORT.PID.tmp (fsynced first), so
 *                 a crash leaves the old file whole and at most that
 *                 small temporary file
 *   failed/ID.*   expired or undeliverable messages, kept for inspection
 *                 (envelope first, then data; a crash between the two
 *                 renames leaves msg/ID.data without msg/ID.env: removed
 *                 as an orphan below, the envelope is in failed/)
 *   stats         delivery counters per smarthost (metrics.c's text,
 *                 kept only while metrics-file is set); replaced by
 *                 rename from tmp/stats, only under the flock of
 *   stats.lock    an empty file, never removed
 *
 * Commit (store_commit): fsync tmp/ID.data; write tmp/ID.env and fsync
 * it; rename tmp/ID.data -> msg/ID.data; rename tmp/ID.env -> msg/ID.env;
 * fsync msg/ (once, for both renames: three fsyncs per commit; earlier
 * builds also fsynced msg/ between the renames). The rename of the
 * envelope is the commit point: only a message with msg/ID.env is
 * queued, and outbox says 0 only after the fsync of msg/.
 *
 * What a crash leaves, and what the next queue run does with it:
 *   - tmp/ID.data, tmp/ID.env: not queued (the sender never got 0).
 *     Removed once no process holds the lock and they are a minute old.
 *   - msg/ID.data without msg/ID.env: a commit cut between its renames;
 *     not queued. Removed by the same rule.
 *   - msg/ID.env with msg/ID.data: queued; sent when due.
 *   - msg/ID.env without msg/ID.data: a crash of outbox cannot leave it
 *     (data is renamed first). A power cut after both renames and before
 *     the fsync of msg/ could, on a file system that does not keep the
 *     order of renames in one directory (journalled ones such as ext4
 *     and xfs do): that message was never acknowledged (its sender never
 *     got 0, it still has its own copy) and its data is still in tmp/
 *     (removed as a leftover above). If found, the envelope is moved to
 *     failed/, where mailq --failed shows it.
 *   - tmp/stats: a counters update cut short; stats is still the one
 *     before it (whole), and the next update overwrites tmp/stats. The
 *     rename is not followed by an fsync of the directory: a power cut
 *     may lose the last updates (the counters then step back), never
 *     leave a partial file. A dead holder's lock goes with its process.
 *   - a crash after the server's 250 and before msg/ID.env is updated or
 *     removed: the message is sent again (at-least-once: a duplicate is
 *     possible, a loss is not). The same holds when the connection drops
 *     after the final dot and before the reply.
 *   - removals of sent messages (store_drop) are done by the store's
 *     removal thread (store_drop.c), up to 64 behind the run, each
 *     message staying locked until both its files are gone; they are
 *     fsynced together: after every STORE_DROPS_UNSYNCED of them and
 *     when the store is closed, so a flush pays one directory fsync per
 *     batch, not one per message. A crash of outbox may leave up to 65
 *     sent messages whose removal was not done (64 waiting, one being
 *     removed), besides the one just sent, and a power cut up to
 *     STORE_DROPS_UNSYNCED more whose removal was not yet fsynced: sent
 *     again - the at-least-once case above, never a loss. A crash
 *     between the two unlinks leaves msg/ID.data without msg/ID.env:
 *     not queued, removed as an orphan (above).
 *
 * A queue run locks msg/ID.data (flock, non-blocking) before it reads the
 * envelope, so two runs never send one message at the same time; a
 * locked message is skipped.
 */
#define _GNU_SOURCE
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"
#include "util.h"

#define ENV_LINE_MAX 2048
#define MAX_LISTED 100000


/* ---- opening ---- */

static int check_dir(int fd, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "queue %s: not a directory", what);
		return -1;
	}
	if (st.st_uid != geteuid() &&
	    !(st.st_uid == 0 && st.st_gid == getegid() &&
	      (st.st_mode & S_IWGRP))) {
		snprintf(err, errlen, "queue %s: owned by another user "
		         "(uid %ld); refusing it", what, (long)st.st_uid);
		return -1;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen, "queue %s: writable by everyone; "
		         "refusing it", what);
		return -1;
	}
	return 0;
}

/* Open (and maybe create) a directory without following symlinks. */
static int open_dir(int at, const char *name, bool create, bool shared,
                    const char *show, char *err, size_t errlen)
{
	int fd;

	if (create && mkdirat(at, name, shared ? 02770 : 0700) == 0) {
		fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (fd >= 0 && shared)
			fchmod(fd, 02770);      /* past the umask */
		if (fd >= 0)
			close(fd);
	} else if (create && errno != EEXIST) {
		snprintf(err, errlen, "queue %s: %s", show, strerror(errno));
		return -1;
	}
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "queue %s: %s", show,
		         errno == ELOOP || errno == ENOTDIR
		             ? "a symbolic link or not a directory; refusing it"
		             : strerror(errno));
		return -1;
	}
	if (check_dir(fd, show, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int store_open(const char *dir, bool create, bool shared,
               struct store **out, char *err, size_t errlen)
{
	struct store *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (q == NULL || (q->dir = strdup(dir)) == NULL) {
		free(q);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	q->tmpfd = q->msgfd = q->failfd = -1;
	q->fmode = shared ? 0660 : 0600;
	q->caller = getuid();
	q->own_only = shared && q->caller != 0;
	q->dfd = open_dir(AT_FDCWD, dir, create, shared, dir, err, errlen);
	if (q->dfd >= 0)
		q->tmpfd = open_dir(q->dfd, "tmp", create, shared, "tmp/", err,
		                    errlen);
	if (q->tmpfd >= 0)
		q->msgfd = open_dir(q->dfd, "msg", create, shared, "msg/", err,
		                    errlen);
	if (q->msgfd >= 0)
		q->failfd = open_dir(q->dfd, "failed", create, shared, "failed/",
		                     err, errlen);
	if (q->failfd < 0) {
		store_close(q);
		return -1;
	}
	*out = q;
	return 0;
}

void store_close(struct store *q)
{
	if (q == NULL)
		return;
	store_drops_finish(q);
	if (q->dfd >= 0) close(q->dfd);
	if (q->tmpfd >= 0) close(q->tmpfd);
	if (q->msgfd >= 0) close(q->msgfd);
	if (q->failfd >= 0) close(q->failfd);
	free(q->dir);
	free(q);
}

/* ---- spool and commit ---- */

void store_name_of(char *buf, size_t n, const char *id, const char *ext)
{
	snprintf(buf, n, "%s.%s", id, ext);
}

int store_spool(struct store *q, char id[STORE_ID_LEN + 1],
                char *err, size_t errlen)
{
	char name[64];
	int tries, fd = -1;

	for (tries = 0; tries < 100 && fd < 0; tries++) {
		struct timespec now;
		unsigned int r = 0;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (unsigned int)getpid() * 2654435761u + (unsigned)tries;
		clock_gettime(CLOCK_REALTIME, &now);
		/* seconds, microseconds, 12 random bits: IDs sort in the
		 * order the messages came (queue runs go oldest first) */
		snprintf(id, STORE_ID_LEN + 1, "%08lX%05lX%03X",
		         (unsigned long)now.tv_sec & 0xffffffffUL,
		         (unsigned long)(now.tv_nsec / 1000), r & 0xfffu);
		store_name_of(name, sizeof(name), id, "data");
		fd = openat(q->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
		            O_NOFOLLOW, q->fmode);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a file in queue tmp/: %s",
		         strerror(errno));
		return -1;
	}
	if (q->fmode != 0600)
		fchmod(fd, q->fmode);   /* the group bits, past the umask */
	/* blocking: a queue run checking tmp/ for abandoned files may hold
	 * the lock for a moment; it never removes a file this new */
	if (flock(fd, LOCK_EX) != 0) {
		snprintf(err, errlen, "cannot lock the spool file: %s",
		         strerror(errno));
		close(fd);
		unlinkat(q->tmpfd, name, 0);
		return -1;
	}
	return fd;
}

/* Unlink dirfd/ID.first, then dirfd/ID.second. */
void store_unlink_pair(int dirfd, const char *id, const char *first,
                        const char *second)
{
	char name[64];

	store_name_of(name, sizeof(name), id, first);
	unlinkat(dirfd, name, 0);
	store_name_of(name, sizeof(name), id, second);
	unlinkat(dirfd, name, 0);
}

void store_discard(struct store *q, const char *id)
{
	store_unlink_pair(q->tmpfd, id, "data", "env");
}

/* One line of text for the envelope file: control characters become ' '. */
static void clean_line(char *dst, size_t n, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < n; i++)
		dst[i] = (unsigned char)src[i] < ' ' ? ' ' : src[i];
	dst[i] = '\0';
}

/* The envelope parameters' lines (only when there are any, so that the
 * envelope of a message without them stays as older versions wrote it). */
static int write_params(FILE *f, const struct store_entry *e)
{
	size_t need = params_env_text(&e->params, e->rcpts.addrs,
	                              e->rcpts.count, NULL, 0);
	char *text;

	if (need == 0)
		return 0;
	text = malloc(need + 1);
	if (text == NULL)
		return -1;
	params_env_text(&e->params, e->rcpts.addrs, e->rcpts.count, text,
	                need + 1);
	fputs(text, f);
	free(text);
	return 0;
}

/* Write an envelope to tmp/ID.env and fsync it. 0, or -1 with errno. */
static int write_env(struct store *q, const struct store_entry *e)
{
	char name[64], err[300];
	FILE *f;
	int fd, rc = 0;
	size_t i;

	store_name_of(name, sizeof(name), e->id, "env");
	fd = openat(q->tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	            O_NOFOLLOW, q->fmode);
	if (fd < 0)
		return -1;
	if (q->fmode != 0600)
		fchmod(fd, q->fmode);
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	clean_line(err, sizeof(err), e->last_error);
	fprintf(f, "outbox-queue 1\nsender <%s>\nuid %lu\ncreated %lld\n"
	        "next %lld\nattempts %ld\nlast-error %s\n", e->sender,
	        (unsigned long)e->uid, (long long)e->created,
	        (long long)e->next, e->attempts, err);
	if (e->account != NULL)
		fprintf(f, "account %s\n", e->account);
	for (i = 0; i < e->rcpts.count; i++)
		fprintf(f, "rcpt <%s>\n", e->rcpts.addrs[i]);
	if (write_params(f, e) != 0)
		rc = -1;
	if (fflush(f) != 0 || fsync(fd) != 0)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Put tmp/ID.env in place of dirfd/ID.env and fsync dirfd. */
static int install_env(struct store *q, int dirfd, const char *id)
{
	char env[64];

	store_name_of(env, sizeof(env), id, "env");
	if (renameat(q->tmpfd, env, dirfd, env) != 0 || fsync(dirfd) != 0)
		return -1;
	return 0;
}

int store_commit(struct store *q, int fd, const struct store_entry *e,
                 char *err, size_t errlen)
{
	char data[64], env[64];

	store_name_of(data, sizeof(data), e->id, "data");
	store_name_of(env, sizeof(env), e->id, "env");
	/* both files durable, then both renames, data first; one fsync of
	 * msg/ makes both durable (0 is said only after it) */
	if (fsync(fd) != 0 || write_env(q, e) != 0 ||
	    renameat(q->tmpfd, data, q->msgfd, data) != 0) {
		snprintf(err, errlen, "cannot queue the message: %s",
		         strerror(errno));
		unlinkat(q->msgfd, data, 0);
		store_discard(q, e->id);
		return -1;
	}
	if (install_env(q, q->msgfd, e->id) != 0) {
		int saved = errno;

		/* not sure it is durable: take it back out of msg/ */
		unlinkat(q->msgfd, env, 0);
		unlinkat(q->msgfd, data, 0);
		unlinkat(q->tmpfd, env, 0);
		snprintf(err, errlen, "cannot queue the message: %s",
		         strerror(saved));
		return -1;
	}
	return 0;
}

int store_update(struct store *q, const struct store_entry *e,
                 char *err, size_t errlen)
{
	if (write_env(q, e) != 0 || install_env(q, q->msgfd, e->id) != 0) {
		snprintf(err, errlen, "cannot update the queue file: %s",
		         strerror(errno));
		return -1;
	}
	return 0;
}

int store_lock(struct store *q, const char *id)
{
	char name[64];
	int fd, saved;

	store_name_of(name, sizeof(name), id, "data");
	fd = openat(q->msgfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* ---- reading the queue ---- */

static bool valid_id(const char *s, size_t n)
{
	size_t i;

	if (n != STORE_ID_LEN)
		return false;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

bool store_valid_id(const char *id)
{
	return valid_id(id, strlen(id));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* IDs of the "ID.ext" files in dirfd, sorted (oldest first). */
int store_list_ids(int dirfd, const char *ext, struct addr_list *ids)
{
	DIR *d;
	struct dirent *de;
	int fd = dup(dirfd);
	size_t elen = strlen(ext);

	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL && ids->count < MAX_LISTED) {
		size_t n = strlen(de->d_name);
		char id[STORE_ID_LEN + 1];

		if (n != STORE_ID_LEN + 1 + elen || de->d_name[STORE_ID_LEN] != '.'
		    || strcmp(de->d_name + STORE_ID_LEN + 1, ext) != 0 ||
		    !valid_id(de->d_name, STORE_ID_LEN))
			continue;
		memcpy(id, de->d_name, STORE_ID_LEN);
		id[STORE_ID_LEN] = '\0';
		if (addr_list_add(ids, id) != 0)
			break;
	}
	closedir(d);
	if (ids->count > 1)
		qsort(ids->addrs, ids->count, sizeof(char *), cmp_str);
	return 0;
}

static int parse_env_line(struct store_entry *e, char *line, bool *has_uid)
{
	char *val = strchr(line, ' ');
	size_t n;
	long long v;
	char *end;

	if (val == NULL)
		return strcmp(line, "last-error") == 0 ? 0 : -1;
	*val++ = '\0';
	n = strlen(val);
	if (strcmp(line, "sender") == 0 || strcmp(line, "rcpt") == 0) {
		if (n < 2 || val[0] != '<' || val[n - 1] != '>')
			return -1;
		val[n - 1] = '\0';
		if (strcmp(line, "rcpt") == 0)
			return addr_list_add(&e->rcpts, val + 1);
		free(e->sender);
		e->sender = strdup(val + 1);
		return e->sender ? 0 : -1;
	}
	if (strcmp(line, "last-error") == 0) {
		str_copy(e->last_error, sizeof(e->last_error), val);
		return 0;
	}
	if (strcmp(line, "account") == 0) {
		free(e->account);
		e->account = strdup(val);
		return e->account ? 0 : -1;
	}
	switch (params_env_line(&e->params, line, val)) {
	case 1: return 0;
	case -1: return -1;
	default: break;
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	if (strcmp(line, "created") == 0) e->created = (time_t)v;
	else if (strcmp(line, "next") == 0) e->next = (time_t)v;
	else if (strcmp(line, "attempts") == 0) e->attempts = (long)v;
	else if (strcmp(line, "uid") == 0) {
		if (v < 0 || (long long)(uid_t)v != v)
			return -1;
		e->uid = (uid_t)v;
		*has_uid = true;
	}
	/* "outbox-queue" version and unknown keys from newer versions */
	return 0;
}

void store_entry_free(struct store_entry *e)
{
	free(e->sender);
	addr_list_free(&e->rcpts);
	params_free(&e->params);
	free(e->account);
	memset(e, 0, sizeof(*e));
}

static int area_fd(const struct store *q, enum store_area area)
{
	return area == STORE_FAILED ? q->failfd : q->msgfd;
}

int store_ids(struct store *q, enum store_area area, struct addr_list *ids)
{
	if (area == STORE_MSG)
		store_drops_wait(q);    /* list what is queued, not what was */
	return store_list_ids(area_fd(q, area), "env", ids);
}

off_t store_size(struct store *q, enum store_area area, const char *id)
{
	struct stat st;
	char name[64];

	store_name_of(name, sizeof(name), id, "data");
	if (fstatat(area_fd(q, area), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	return st.st_size;
}

int store_load(struct store *q, enum store_area area, const char *id,
               struct store_entry *e)
{
	int dirfd = area_fd(q, area);
	char name[64], line[ENV_LINE_MAX];
	struct stat st;
	bool has_uid = false;
	FILE *f;
	int fd, rc = 0;

	memset(e, 0, sizeof(*e));
	str_copy(e->id, sizeof(e->id), id);
	store_name_of(name, sizeof(name), id, "env");
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		rc = parse_env_line(e, line, &has_uid);
	}
	fclose(f);
	if (rc != 0 || e->sender == NULL) {
		store_entry_free(e);
		errno = EINVAL;
		return -1;
	}
	/* queued before envelopes recorded the uid: the data file's owner
	 * submitted it (runs replace the envelope, never the data); root's
	 * when that cannot be told */
	store_name_of(name, sizeof(name), id, "data");
	if (!has_uid && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		e->uid = st.st_uid;
	return 0;
}

bool store_exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	       errno != ENOENT;
}

bool store_is_mine(const struct store *q, const struct store_entry *e)
{
	return !q->own_only || e->uid == q->caller;
}

int store_fail(struct store *q, const char *id, const struct store_entry *e)
{
	char name[64];
	int rc = 0;

	/* the envelope first: that takes it off the queue; then, with e,
	 * the final state in place of the old envelope */
	store_name_of(name, sizeof(name), id, "env");
	if (renameat(q->msgfd, name, q->failfd, name) != 0)
		rc = -1;
	if (rc == 0 && e != NULL &&
	    (write_env(q, e) != 0 || install_env(q, q->failfd, id) != 0)) {
		log_event(LOG_ERR, "%s: cannot record the final state in "
		          "failed/: %s", id, strerror(errno));
		unlinkat(q->tmpfd, name, 0);
	}
	store_name_of(name, sizeof(name), id, "data");
	if (renameat(q->msgfd, name, q->failfd, name) != 0)
		rc = -1;
	fsync(q->msgfd);
	fsync(q->failfd);
	if (rc != 0)
		log_event(LOG_ERR, "%s: cannot move it to failed/: %s", id,
		          strerror(errno));
	return rc;
}

/* Is id a message in area that the caller may act on? 0, or -1 (err). */
static int find_mine(struct store *q, enum store_area area, const char *id,
                     char *err, size_t errlen)
{
	const char *where = area == STORE_FAILED ? "failed/" : "the queue";
	struct store_entry e;
	bool mine;

	if (!valid_id(id, strlen(id))) {
		snprintf(err, errlen, "%s: not a queue ID", id);
		return -1;
	}
	if (store_load(q, area, id, &e) != 0) {
		if (errno == ENOENT) {
			snprintf(err, errlen, "%s: no such message in %s", id,
			         where);
			return -1;
		}
		mine = !q->own_only;    /* damaged: whose, nobody can tell */
	} else {
		mine = store_is_mine(q, &e);
		store_entry_free(&e);
	}
	if (!mine) {
		/* as if it were not there: IDs of others' mail say nothing */
		snprintf(err, errlen, "%s: no such message of yours in %s "
		         "(only root may act on other users' mail)", id, where);
		return -1;
	}
	return 0;
}

int store_find_mine(struct store *q, const char *id, char *err,
                    size_t errlen)
{
	return find_mine(q, STORE_MSG, id, err, errlen);
}

int store_requeue(struct store *q, const char *id, char *err, size_t errlen)
{
	struct store_entry e;
	char data[64], env[64];
	int rc = -1;

	if (find_mine(q, STORE_FAILED, id, err, errlen) != 0)
		return -1;
	if (store_load(q, STORE_FAILED, id, &e) != 0) {
		snprintf(err, errlen, "%s: its envelope in failed/ cannot be "
		         "read (%s)", id, errno == EINVAL ? "damaged"
		                                          : strerror(errno));
		return -1;
	}
	if (e.rcpts.count == 0) {
		snprintf(err, errlen, "%s: its envelope in failed/ names no "
		         "recipient", id);
		store_entry_free(&e);
		return -1;
	}
	/* a new life in the queue: due now, attempts and lifetime afresh */
	e.created = e.next = time(NULL);
	e.attempts = 0;
	store_name_of(data, sizeof(data), id, "data");
	store_name_of(env, sizeof(env), id, "env");
	/* as a commit: data into msg/ first, then the envelope (written
	 * afresh through tmp/), fsync after each; then failed/ID.env goes */
	if (renameat(q->failfd, data, q->msgfd, data) != 0 ||
	    fsync(q->msgfd) != 0)
		snprintf(err, errlen, "%s: cannot move it back: %s", id,
		         strerror(errno));
	else if (write_env(q, &e) != 0 || install_env(q, q->msgfd, id) != 0)
		snprintf(err, errlen, "%s: cannot write its envelope: %s", id,
		         strerror(errno));
	else
		rc = 0;
	if (rc == 0) {
		unlinkat(q->failfd, env, 0);
		fsync(q->failfd);
		log_event(LOG_INFO, "%s: requeued from failed/ (by request)", id);
	}
	store_entry_free(&e);
	return rc;
}

int store_remove(struct store *q, const char *id, char *err, size_t errlen)
{
	int fd;

	if (store_find_mine(q, id, err, errlen) != 0)
		return -1;
	fd = store_lock(q, id);
	if (fd < 0) {
		snprintf(err, errlen, errno == EWOULDBLOCK
		         ? "%s: being delivered right now; try again"
		         : "%s: no such message in the queue", id);
		return -1;
	}
	store_drop(q, id, fd);
	close(fd);
	log_event(LOG_INFO, "%s: removed (by request)", id);
	return 0;
}
