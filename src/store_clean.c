/*
 * store_clean.c - the queue's housekeeping (see store.h): files left by
 * dead processes, and old messages in failed/. What each leftover is
 * and when it goes is in the crash table atop store.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_int.h"

/* Age of an unlocked, unchanged tmp/ or orphaned msg/ file before a run
 * removes it (make QUEUE_STALE_SECS=N: the tests use a short one). */
#ifndef QUEUE_STALE_SECS
#define QUEUE_STALE_SECS 60
#endif
#define STALE_SECS QUEUE_STALE_SECS

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
static void clean_tmp_data(struct store *q, const char *id)
{
	char data[64], env[64];
	int lock;

	store_name_of(data, sizeof(data), id, "data");
	store_name_of(env, sizeof(env), id, "env");
	if (!abandoned(q->tmpfd, data, &lock))
		return;
	unlink_logged(q->tmpfd, env, "tmp/");
	unlink_logged(q->tmpfd, data, "tmp/");
	close(lock);
}

/* tmp/ID.env without tmp/ID.data: a commit cut between its renames (or an
 * envelope update) whose process is gone: nobody holds msg/ID.data. */
static void clean_tmp_env(struct store *q, const char *id)
{
	char data[64], env[64];
	struct stat st;
	int lock = -1;

	store_name_of(data, sizeof(data), id, "data");
	store_name_of(env, sizeof(env), id, "env");
	if (store_exists(q->tmpfd, data))
		return;                 /* clean_tmp_data's business */
	if (store_exists(q->msgfd, data) && !abandoned(q->msgfd, data, &lock))
		return;
	if (fstatat(q->tmpfd, env, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    time(NULL) - st.st_mtime >= STALE_SECS)
		unlink_logged(q->tmpfd, env, "tmp/");
	if (lock >= 0)
		close(lock);
}

void store_clean_abandoned(struct store *q)
{
	struct addr_list ids = { 0 };
	char name[64];
	size_t i;
	int lock;

	if (store_list_ids(q->tmpfd, "data", &ids) == 0) {
		for (i = 0; i < ids.count; i++)
			clean_tmp_data(q, ids.addrs[i]);
	}
	addr_list_free(&ids);
	if (store_list_ids(q->tmpfd, "env", &ids) == 0) {
		for (i = 0; i < ids.count; i++)
			clean_tmp_env(q, ids.addrs[i]);
	}
	addr_list_free(&ids);
	if (store_list_ids(q->msgfd, "data", &ids) == 0) {
		for (i = 0; i < ids.count; i++) {
			store_name_of(name, sizeof(name), ids.addrs[i], "env");
			if (store_exists(q->msgfd, name))
				continue;
			store_name_of(name, sizeof(name), ids.addrs[i], "data");
			if (abandoned(q->msgfd, name, &lock)) {
				unlink_logged(q->msgfd, name, "msg/");
				close(lock);
			}
		}
	}
	addr_list_free(&ids);
}

size_t store_expire_failed(struct store *q, long max_age)
{
	struct addr_list ids = { 0 };
	time_t now = time(NULL);
	struct stat st;
	char name[64];
	size_t i, n = 0;

	if (max_age <= 0 || store_list_ids(q->failfd, "env", &ids) != 0)
		return 0;
	for (i = 0; i < ids.count; i++) {
		store_name_of(name, sizeof(name), ids.addrs[i], "env");
		if (fstatat(q->failfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    now - st.st_mtime < max_age)
			continue;
		store_unlink_pair(q->failfd, ids.addrs[i], "env", "data");
		log_event(LOG_INFO, "%s: removed from failed/ after %lld s",
		          ids.addrs[i], (long long)(now - st.st_mtime));
		n++;
	}
	if (n > 0)
		fsync(q->failfd);
	addr_list_free(&ids);
	return n;
}
