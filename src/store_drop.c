/*
 * store_drop.c - taking sent messages off the queue (store_drop, see
 * store.h; the crash states are in the table atop store.c).
 *
 * Unlinking a message costs the kernel more than anything else a queue
 * run does per message on a disk file system (freeing the blocks of its
 * two files: about 0.3 ms on ext4, ten times the rest of the store's
 * work), so the unlinks run on a thread of their own, beside the
 * network round trips of the next message. What stays the same:
 *   - the message stays locked until it is gone: store_drop takes a
 *     duplicate of the caller's lock descriptor (the flock lives as long
 *     as one of them is open), and the thread closes it only after both
 *     unlinks, so no other run can lock, load and send it again
 *     meanwhile;
 *   - the envelope goes first (that takes it off the queue), then the
 *     data;
 *   - msg/ is fsynced once per STORE_DROPS_UNSYNCED removals and at
 *     store_close, which waits for every removal to be done.
 * A listing of msg/ (store_ids) first waits for the removals this
 * process queued, so that what it lists is what is queued: a sent
 * message is never counted (metrics, mailq) or looked at again (the
 * runner's next pass) because its removal was still waiting.
 * At most DROPS_PENDING removals wait at a time (store_drop waits for
 * room); a process that cannot start the thread (or a child forked after
 * it started, which does not have it) removes the files itself, in the
 * caller's time, exactly as before.
 * The duplicates are numbered from DROPS_FD_BASE up (see there).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "store_int.h"

#define DROPS_PENDING 64
/* The lowest descriptor number for the duplicates the thread holds. A
 * low number can be closed under us by code that lost track of it: a
 * detached carrier (runner.c) inherits the caller's libcurl handles but
 * closes the descriptors it does not know of, libcurl's internal socket
 * pair among them, and libcurl closes those numbers again when the
 * handles are freed - by then they may be one of these duplicates, and
 * the message would be unlocked before it is removed (and sent twice). */
#define DROPS_FD_BASE 256

struct drop {
	char id[STORE_ID_LEN + 1];
	int lockfd;             /* a duplicate of the caller's lock, or -1 */
};

struct store_drops {
	pthread_mutex_t mu;
	pthread_cond_t more;    /* a removal was queued, or stop was set */
	pthread_cond_t room;    /* a removal was taken, or one was done */
	struct drop ring[DROPS_PENDING];
	size_t head, count;
	bool busy;              /* the thread is removing one */
	bool stop;
	pid_t owner;            /* the process that has the thread */
	pthread_t thread;
};

/* fsync msg/ once for the removals since the last one. The count is
 * shared by the thread and the caller (who removes a message itself when
 * it cannot hand it over): atomic. */
static void sync_drops(struct store *q)
{
	if (__atomic_exchange_n(&q->unsynced, 0, __ATOMIC_ACQ_REL) > 0 &&
	    q->msgfd >= 0)
		fsync(q->msgfd);
}

/* Unlink msg/ID.env then msg/ID.data; then unlock (close lockfd). */
static void remove_now(struct store *q, const char *id, int lockfd)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.env", id);
	unlinkat(q->msgfd, name, 0);
	snprintf(name, sizeof(name), "%s.data", id);
	unlinkat(q->msgfd, name, 0);
	if (lockfd >= 0)
		close(lockfd);
	if (__atomic_add_fetch(&q->unsynced, 1, __ATOMIC_ACQ_REL) >=
	    STORE_DROPS_UNSYNCED)
		sync_drops(q);
}

/* The thread: take the queued removals one by one until told to stop
 * and none is left. q->unsynced is the thread's while it runs. */
static void *drop_thread(void *arg)
{
	struct store *q = arg;
	struct store_drops *d = q->drops;
	struct drop one;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->count == 0 && !d->stop)
			pthread_cond_wait(&d->more, &d->mu);
		if (d->count == 0)
			break;
		one = d->ring[d->head];
		d->head = (d->head + 1) % DROPS_PENDING;
		d->count--;
		d->busy = true;
		pthread_cond_broadcast(&d->room);
		pthread_mutex_unlock(&d->mu);
		remove_now(q, one.id, one.lockfd);
		pthread_mutex_lock(&d->mu);
		d->busy = false;
		pthread_cond_broadcast(&d->room);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* The removal thread of q, started on first use; NULL when it cannot
 * be (or q was inherited through fork from the process that has it). */
static struct store_drops *drops_of(struct store *q)
{
	struct store_drops *d = q->drops;

	if (d != NULL)
		return d->owner == getpid() ? d : NULL;
	if (q->drops_failed)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		goto fail;
	d->owner = getpid();
	if (pthread_mutex_init(&d->mu, NULL) != 0)
		goto fail_free;
	if (pthread_cond_init(&d->more, NULL) != 0)
		goto fail_mu;
	if (pthread_cond_init(&d->room, NULL) != 0)
		goto fail_more;
	q->drops = d;
	if (pthread_create(&d->thread, NULL, drop_thread, q) == 0)
		return d;
	q->drops = NULL;
	pthread_cond_destroy(&d->room);
fail_more:
	pthread_cond_destroy(&d->more);
fail_mu:
	pthread_mutex_destroy(&d->mu);
fail_free:
	free(d);
fail:
	q->drops_failed = true;
	return NULL;
}

/* A duplicate of fd numbered DROPS_FD_BASE or above when the limit on
 * open files allows it (else the lowest free); -1 with errno. */
static int dup_high(int fd)
{
	struct rlimit rl;
	int base = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur >= (rlim_t)(DROPS_FD_BASE + 2 * DROPS_PENDING))
		base = DROPS_FD_BASE;
	return fcntl(fd, F_DUPFD_CLOEXEC, base);
}

void store_drop(struct store *q, const char *id, int lockfd)
{
	struct store_drops *d = drops_of(q);
	struct drop one;

	one.lockfd = lockfd >= 0 ? dup_high(lockfd) : -1;
	if (d == NULL || (lockfd >= 0 && one.lockfd < 0)) {
		/* in the caller's time, while it holds the lock */
		if (one.lockfd >= 0)
			close(one.lockfd);
		remove_now(q, id, -1);
		return;
	}
	snprintf(one.id, sizeof(one.id), "%s", id);
	pthread_mutex_lock(&d->mu);
	while (d->count == DROPS_PENDING)
		pthread_cond_wait(&d->room, &d->mu);
	d->ring[(d->head + d->count) % DROPS_PENDING] = one;
	d->count++;
	pthread_cond_signal(&d->more);
	pthread_mutex_unlock(&d->mu);
}

void store_drops_wait(struct store *q)
{
	struct store_drops *d = q->drops;

	if (d == NULL || d->owner != getpid())
		return;
	pthread_mutex_lock(&d->mu);
	while (d->count > 0 || d->busy)
		pthread_cond_wait(&d->room, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

void store_drops_finish(struct store *q)
{
	struct store_drops *d = q->drops;

	/* in a child forked after the thread started, d is a copy whose
	 * thread, lock and queued removals are the parent's: only freed */
	if (d != NULL && d->owner == getpid()) {
		pthread_mutex_lock(&d->mu);
		d->stop = true;
		pthread_cond_signal(&d->more);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->thread, NULL);
		pthread_cond_destroy(&d->room);
		pthread_cond_destroy(&d->more);
		pthread_mutex_destroy(&d->mu);
	}
	free(d);
	q->drops = NULL;
	sync_drops(q);
}
