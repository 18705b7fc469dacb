/*
 * queue.c - the local queue (see queue.h).
 *
 * Layout under the queue directory (all 0700, files 0600):
 *   tmp/ID.data   a message being read, or delivered directly; locked
 *                 (flock) by the process writing it for its whole life
 *   tmp/ID.env    an envelope being written (commit or state update)
 *   msg/ID.data   a committed message: the exact bytes to send (CRLF,
 *                 not dot-stuffed); never changed once here
 *   msg/ID.env    its envelope: sender, recipients still to do, the
 *                 submitting uid, times, attempts, last error; replaced
 *                 by rename, never edited
 *   failed/ID.*   expired or undeliverable messages, kept for inspection
 *
 * Commit (queue_commit): fsync tmp/ID.data; write tmp/ID.env and fsync
 * it; rename tmp/ID.data -> msg/ID.data; fsync msg/; rename tmp/ID.env ->
 * msg/ID.env; fsync msg/. The rename of the envelope is the commit point:
 * only a message with msg/ID.env is queued, and outbox says 0 only after
 * the last fsync.
 *
 * What a crash leaves, and what the next queue run does with it:
 *   - tmp/ID.data, tmp/ID.env: not queued (the sender never got 0).
 *     Removed once no process holds the lock and they are a minute old.
 *   - msg/ID.data without msg/ID.env: a commit cut between its renames;
 *     not queued. Removed by the same rule.
 *   - msg/ID.env with msg/ID.data: queued; sent when due.
 *   - msg/ID.env without msg/ID.data: cannot happen with the order above
 *     (data is renamed and fsynced first); if found, moved to failed/.
 *   - a crash after the server's 250 and before msg/ID.env is updated or
 *     removed: the message is sent again (at-least-once: a duplicate is
 *     possible, a loss is not). The same holds when the connection drops
 *     after the final dot and before the reply.
 *
 * A queue run locks msg/ID.data (flock, non-blocking) before it reads the
 * envelope, so two runs never send one message at the same time; a
 * locked message is skipped.
 */
#define _GNU_SOURCE
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "envelope.h"
#include "log.h"
#include "queue_int.h"
#include "util.h"

#define ENV_LINE_MAX 2048
/* Age of an unlocked, unchanged tmp/ or orphaned msg/ file before a run
 * removes it (make QUEUE_STALE_SECS=N: the tests use a short one). */
#ifndef QUEUE_STALE_SECS
#define QUEUE_STALE_SECS 60
#endif
#define STALE_SECS QUEUE_STALE_SECS
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

int queue_open(const char *dir, bool create, bool shared,
               struct queue **out, char *err, size_t errlen)
{
	struct queue *q = calloc(1, sizeof(*q));

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
		queue_close(q);
		return -1;
	}
	*out = q;
	return 0;
}

void queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->dfd >= 0) close(q->dfd);
	if (q->tmpfd >= 0) close(q->tmpfd);
	if (q->msgfd >= 0) close(q->msgfd);
	if (q->failfd >= 0) close(q->failfd);
	free(q->dir);
	free(q);
}

/* ---- spool and commit ---- */

void queue_name(char *buf, size_t n, const char *id, const char *ext)
{
	snprintf(buf, n, "%s.%s", id, ext);
}

int queue_spool(struct queue *q, char id[QUEUE_ID_LEN + 1],
                char *err, size_t errlen)
{
	char name[64];
	int tries, fd = -1;

	for (tries = 0; tries < 100 && fd < 0; tries++) {
		unsigned int r = 0;

		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (unsigned int)getpid() * 2654435761u + (unsigned)tries;
		snprintf(id, QUEUE_ID_LEN + 1, "%08lX%08X",
		         (unsigned long)time(NULL) & 0xffffffffUL, r);
		queue_name(name, sizeof(name), id, "data");
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
static void unlink_pair(int dirfd, const char *id, const char *first,
                        const char *second)
{
	char name[64];

	queue_name(name, sizeof(name), id, first);
	unlinkat(dirfd, name, 0);
	queue_name(name, sizeof(name), id, second);
	unlinkat(dirfd, name, 0);
}

void queue_discard(struct queue *q, const char *id)
{
	unlink_pair(q->tmpfd, id, "data", "env");
}

/* One line of text for the envelope file: control characters become ' '. */
static void clean_line(char *dst, size_t n, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < n; i++)
		dst[i] = (unsigned char)src[i] < ' ' ? ' ' : src[i];
	dst[i] = '\0';
}

/* Write an envelope to tmp/ID.env and fsync it. 0, or -1 with errno. */
int queue_write_env(struct queue *q, const struct queue_entry *e)
{
	char name[64], err[300];
	FILE *f;
	int fd, rc = 0;
	size_t i;

	queue_name(name, sizeof(name), e->id, "env");
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
	for (i = 0; i < e->rcpts.count; i++)
		fprintf(f, "rcpt <%s>\n", e->rcpts.addrs[i]);
	if (fflush(f) != 0 || fsync(fd) != 0)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int queue_commit(struct queue *q, const char *id, int fd, const char *sender,
                 const struct addr_list *rcpts, uid_t uid, long attempts,
                 long delay, const char *last_error, char *err,
                 size_t errlen)
{
	struct queue_entry e;
	char data[64], env[64];

	memset(&e, 0, sizeof(e));
	str_copy(e.id, sizeof(e.id), id);
	e.sender = (char *)sender;
	e.rcpts = *rcpts;
	e.uid = uid;
	e.created = time(NULL);
	e.next = e.created + delay;
	e.attempts = attempts;
	str_copy(e.last_error, sizeof(e.last_error), last_error ? last_error : "");
	queue_name(data, sizeof(data), id, "data");
	queue_name(env, sizeof(env), id, "env");
	if (fsync(fd) != 0 || queue_write_env(q, &e) != 0 ||
	    renameat(q->tmpfd, data, q->msgfd, data) != 0 ||
	    fsync(q->msgfd) != 0) {
		snprintf(err, errlen, "cannot queue the message: %s",
		         strerror(errno));
		unlinkat(q->msgfd, data, 0);
		queue_discard(q, id);
		return -1;
	}
	if (renameat(q->tmpfd, env, q->msgfd, env) != 0 ||
	    fsync(q->msgfd) != 0) {
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

/* ---- reading the queue ---- */

static bool valid_id(const char *s, size_t n)
{
	size_t i;

	if (n != QUEUE_ID_LEN)
		return false;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

bool queue_valid_id(const char *id)
{
	return valid_id(id, strlen(id));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* IDs of the "ID.ext" files in dirfd, sorted (oldest first). */
int queue_list_ids(int dirfd, const char *ext, struct addr_list *ids)
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
		char id[QUEUE_ID_LEN + 1];

		if (n != QUEUE_ID_LEN + 1 + elen || de->d_name[QUEUE_ID_LEN] != '.'
		    || strcmp(de->d_name + QUEUE_ID_LEN + 1, ext) != 0 ||
		    !valid_id(de->d_name, QUEUE_ID_LEN))
			continue;
		memcpy(id, de->d_name, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = '\0';
		if (addr_list_add(ids, id) != 0)
			break;
	}
	closedir(d);
	if (ids->count > 1)
		qsort(ids->addrs, ids->count, sizeof(char *), cmp_str);
	return 0;
}

static int parse_env_line(struct queue_entry *e, char *line, bool *has_uid)
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

void queue_entry_free(struct queue_entry *e)
{
	free(e->sender);
	addr_list_free(&e->rcpts);
	memset(e, 0, sizeof(*e));
}

/* Load msg/ID.env. 0; -1 with errno ENOENT when gone; -1 EINVAL when bad. */
int queue_load_env(struct queue *q, const char *id, struct queue_entry *e)
{
	char name[64], line[ENV_LINE_MAX];
	struct stat st;
	bool has_uid = false;
	FILE *f;
	int fd, rc = 0;

	memset(e, 0, sizeof(*e));
	str_copy(e->id, sizeof(e->id), id);
	queue_name(name, sizeof(name), id, "env");
	fd = openat(q->msgfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
		queue_entry_free(e);
		errno = EINVAL;
		return -1;
	}
	/* queued before envelopes recorded the uid: the data file's owner
	 * submitted it (runs replace the envelope, never the data); root's
	 * when that cannot be told */
	queue_name(name, sizeof(name), id, "data");
	if (!has_uid && fstatat(q->msgfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		e->uid = st.st_uid;
	return 0;
}

bool queue_exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	       errno != ENOENT;
}

bool queue_is_mine(const struct queue *q, const struct queue_entry *e)
{
	return !q->own_only || e->uid == q->caller;
}

/* ---- housekeeping ---- */

/*
 * Is dirfd/name left over by a dead process: it exists, nobody holds its
 * lock, and it has not changed for STALE_SECS? When true, *lockfd keeps
 * the lock (close it after removing the file); else *lockfd is -1.
 */
static bool abandoned(int dirfd, const char *name, int *lockfd)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	*lockfd = -1;
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
	    time(NULL) - st.st_mtime >= STALE_SECS) {
		*lockfd = fd;
		return true;
	}
	close(fd);
	return false;
}

static void unlink_logged(int dirfd, const char *name, const char *where)
{
	if (unlinkat(dirfd, name, 0) == 0)
		log_event(LOG_INFO, "%.16s: removed abandoned %s%s", name, where,
		          name);
}

/* tmp/ID.data of a dead writer, with its tmp/ID.env if any. */
static void clean_tmp_data(struct queue *q, const char *id)
{
	char data[64], env[64];
	int lock;

	queue_name(data, sizeof(data), id, "data");
	queue_name(env, sizeof(env), id, "env");
	if (!abandoned(q->tmpfd, data, &lock))
		return;
	unlink_logged(q->tmpfd, env, "tmp/");
	unlink_logged(q->tmpfd, data, "tmp/");
	close(lock);
}

/* tmp/ID.env without tmp/ID.data: a commit cut between its renames (or an
 * envelope update) whose process is gone: nobody holds msg/ID.data. */
static void clean_tmp_env(struct queue *q, const char *id)
{
	char data[64], env[64];
	struct stat st;
	int lock = -1;

	queue_name(data, sizeof(data), id, "data");
	queue_name(env, sizeof(env), id, "env");
	if (queue_exists(q->tmpfd, data))
		return;                 /* clean_tmp_data's business */
	if (queue_exists(q->msgfd, data) && !abandoned(q->msgfd, data, &lock))
		return;
	if (fstatat(q->tmpfd, env, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    time(NULL) - st.st_mtime >= STALE_SECS)
		unlink_logged(q->tmpfd, env, "tmp/");
	if (lock >= 0)
		close(lock);
}

void queue_clean_abandoned(struct queue *q)
{
	struct addr_list ids = { 0 };
	char name[64];
	size_t i;
	int lock;

	if (queue_list_ids(q->tmpfd, "data", &ids) == 0) {
		for (i = 0; i < ids.count; i++)
			clean_tmp_data(q, ids.addrs[i]);
	}
	addr_list_free(&ids);
	if (queue_list_ids(q->tmpfd, "env", &ids) == 0) {
		for (i = 0; i < ids.count; i++)
			clean_tmp_env(q, ids.addrs[i]);
	}
	addr_list_free(&ids);
	if (queue_list_ids(q->msgfd, "data", &ids) == 0) {
		for (i = 0; i < ids.count; i++) {
			queue_name(name, sizeof(name), ids.addrs[i], "env");
			if (queue_exists(q->msgfd, name))
				continue;
			queue_name(name, sizeof(name), ids.addrs[i], "data");
			if (abandoned(q->msgfd, name, &lock)) {
				unlink_logged(q->msgfd, name, "msg/");
				close(lock);
			}
		}
	}
	addr_list_free(&ids);
}

/* Move msg/ID.* to failed/ (envelope first: that takes it off the queue). */
void queue_move_failed(struct queue *q, const char *id)
{
	char name[64];

	queue_name(name, sizeof(name), id, "env");
	renameat(q->msgfd, name, q->failfd, name);
	queue_name(name, sizeof(name), id, "data");
	renameat(q->msgfd, name, q->failfd, name);
	fsync(q->msgfd);
	fsync(q->failfd);
}

void queue_remove_msg(struct queue *q, const char *id)
{
	/* the envelope first: that takes it off the queue */
	unlink_pair(q->msgfd, id, "env", "data");
	fsync(q->msgfd);
}

int queue_add_bounce(struct queue *q, const struct config *cfg,
                     const char *orig_id, const char *sender, uid_t uid,
                     time_t arrival, int datafd,
                     const struct bounce_rcpt *rcpts, size_t n,
                     bool expired, char id[QUEUE_ID_LEN + 1])
{
	struct bounce_info b = { 0 };
	struct addr_list to = { 0 };
	char err[300];
	int fd, rc = -1;

	if (sender[0] == '\0') {
		log_event(LOG_WARNING, "%s: undeliverable; no bounce for the "
		          "null sender", orig_id);
		return -1;
	}
	b.sender = sender;
	b.domain = envelope_domain(cfg);
	b.host = cfg->helo ? cfg->helo : envelope_domain(cfg);
	b.id = orig_id;
	b.arrival = arrival;
	b.expired = expired;
	b.rcpts = rcpts;
	b.nrcpts = n;
	fd = queue_spool(q, id, err, sizeof(err));
	if (fd >= 0 && bounce_write(fd, datafd, &b) == 0 &&
	    addr_list_add(&to, sender) == 0 &&
	    queue_commit(q, id, fd, "", &to, uid, 0, 0, "", err,
	                 sizeof(err)) == 0) {
		log_event(LOG_INFO, "%s: sender non-delivery notification: %s",
		          orig_id, id);
		rc = 0;
	} else {
		log_event(LOG_ERR, "%s: cannot queue the bounce: %s", orig_id,
		          fd < 0 ? err : strerror(errno));
		if (fd >= 0)
			queue_discard(q, id);
	}
	if (fd >= 0)
		close(fd);
	addr_list_free(&to);
	return rc;
}

/* Is id a message in msg/ that the caller may act on? 0, or -1 (err). */
int queue_find_mine(struct queue *q, const char *id, char *err,
                    size_t errlen)
{
	struct queue_entry e;
	bool mine;

	if (!valid_id(id, strlen(id))) {
		snprintf(err, errlen, "%s: not a queue ID", id);
		return -1;
	}
	if (queue_load_env(q, id, &e) != 0) {
		if (errno == ENOENT) {
			snprintf(err, errlen, "%s: no such message in the queue",
			         id);
			return -1;
		}
		mine = !q->own_only;    /* damaged: whose, nobody can tell */
	} else {
		mine = queue_is_mine(q, &e);
		queue_entry_free(&e);
	}
	if (!mine) {
		/* as if it were not there: IDs of others' mail say nothing */
		snprintf(err, errlen, "%s: no such message of yours in the "
		         "queue (only root may act on other users' mail)", id);
		return -1;
	}
	return 0;
}

int queue_remove(struct queue *q, const char *id, char *err, size_t errlen)
{
	char name[64];
	int fd;

	if (queue_find_mine(q, id, err, errlen) != 0)
		return -1;
	queue_name(name, sizeof(name), id, "data");
	fd = openat(q->msgfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: no such message in the queue", id);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		snprintf(err, errlen, "%s: being delivered right now; try again",
		         id);
		return -1;
	}
	queue_remove_msg(q, id);
	close(fd);
	log_event(LOG_INFO, "%s: removed (by request)", id);
	return 0;
}

static void format_age(char *buf, size_t n, long secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, n, "%lds", secs);
	else if (secs < 7200)
		snprintf(buf, n, "%ldm", secs / 60);
	else if (secs < 172800)
		snprintf(buf, n, "%ldh", secs / 3600);
	else
		snprintf(buf, n, "%ldd", secs / 86400);
}

static void list_one(struct queue *q, FILE *out, const struct queue_entry *e,
                     off_t size)
{
	char age[32], next[32], when[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	(void)q;
	format_age(age, sizeof(age), (long)(now - e->created));
	localtime_r(&e->next, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	if (e->next <= now)
		str_copy(next, sizeof(next), "now");
	else
		format_age(next, sizeof(next), (long)(e->next - now));
	fprintf(out, "%s  %lld bytes  age %s  from <%s>\n", e->id,
	        (long long)size, age, e->sender);
	fprintf(out, "    attempts %ld, next attempt %s%s (%s)\n", e->attempts,
	        e->next <= now ? "" : "in ", next, when);
	if (e->last_error[0] != '\0')
		fprintf(out, "    last error: %s\n", e->last_error);
	for (i = 0; i < e->rcpts.count; i++)
		fprintf(out, "    to <%s>\n", e->rcpts.addrs[i]);
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_one(FILE *out, const struct queue_entry *e, off_t size)
{
	size_t i;

	fputs("{\"id\":", out);
	json_string(out, e->id);
	fprintf(out, ",\"size\":%lld,\"arrival\":%lld,\"sender\":",
	        (long long)size, (long long)e->created);
	json_string(out, e->sender);
	fputs(",\"recipients\":[", out);
	for (i = 0; i < e->rcpts.count; i++) {
		fputs(i ? ",{\"address\":" : "{\"address\":", out);
		json_string(out, e->rcpts.addrs[i]);
		fprintf(out, ",\"state\":\"%s\"}",
		        e->attempts > 0 ? "deferred" : "queued");
	}
	fprintf(out, "],\"attempts\":%ld,\"next_attempt\":%lld,"
	        "\"last_error\":", e->attempts, (long long)e->next);
	json_string(out, e->last_error);
	fprintf(out, ",\"uid\":%lu}", (unsigned long)e->uid);
}

int queue_list(struct queue *q, FILE *out, bool json, char *err,
               size_t errlen)
{
	struct addr_list ids = { 0 };
	long long total = 0;
	size_t i, shown = 0, hidden = 0;

	if (queue_list_ids(q->msgfd, "env", &ids) != 0) {
		snprintf(err, errlen, "cannot read queue msg/: %s",
		         strerror(errno));
		return -1;
	}
	for (i = 0; i < ids.count; i++) {
		struct queue_entry e;
		struct stat st;
		char name[64];

		if (queue_load_env(q, ids.addrs[i], &e) != 0)
			continue;
		if (!queue_is_mine(q, &e)) {
			hidden++;
			queue_entry_free(&e);
			continue;
		}
		queue_name(name, sizeof(name), e.id, "data");
		if (fstatat(q->msgfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			st.st_size = 0;
		if (json)
			fputs(shown > 0 ? ",\n" : "[\n", out);
		else if (shown > 0)
			fputc('\n', out);
		if (json)
			json_one(out, &e, st.st_size);
		else
			list_one(q, out, &e, st.st_size);
		total += st.st_size;
		shown++;
		queue_entry_free(&e);
	}
	addr_list_free(&ids);
	if (json)
		fputs(shown > 0 ? "\n]\n" : "[]\n", out);
	else if (shown == 0 && hidden == 0)
		fprintf(out, "Mail queue is empty\n");
	else if (shown > 0)
		fprintf(out, "\n-- %zu message%s, %lld bytes in the queue\n",
		        shown, shown == 1 ? "" : "s", total);
	if (!json && hidden > 0)
		fprintf(out, "%s%zu message(s) of other users not shown\n",
		        shown > 0 ? "-- " : "No messages of yours in the queue; ",
		        hidden);
	return 0;
}

bool queue_has_due(struct queue *q)
{
	struct addr_list ids = { 0 };
	time_t now = time(NULL);
	bool due = false;
	size_t i;

	if (queue_list_ids(q->msgfd, "env", &ids) != 0)
		return false;
	for (i = 0; i < ids.count && i < 1000 && !due; i++) {
		struct queue_entry e;

		if (queue_load_env(q, ids.addrs[i], &e) == 0) {
			due = e.next <= now;
			queue_entry_free(&e);
		}
	}
	addr_list_free(&ids);
	return due;
}
