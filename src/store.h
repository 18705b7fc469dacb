/*
 * store.h - the queue's storage: spool files, the commit point, envelopes,
 * locks and listings. Bytes and envelopes only: it knows nothing of SMTP,
 * delivery, bounces or what an address means (the runner above it does).
 * Layout, the commit sequence and what a crash leaves in each state are
 * documented at the top of store.c.
 */
#ifndef OUTBOX_STORE_H
#define OUTBOX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "address.h"
#include "params.h"

#define STORE_ID_LEN 16

struct store;

/* Where a message is: waiting in msg/, or kept in failed/. */
enum store_area { STORE_MSG, STORE_FAILED };

/* What one message's envelope file holds. */
struct store_entry {
	char id[STORE_ID_LEN + 1];
	char *sender;           /* "" for the null sender */
	struct addr_list rcpts; /* still to be delivered */
	time_t created;
	time_t next;            /* next attempt due */
	long attempts;
	char last_error[300];
	uid_t uid;              /* who submitted it */
	struct params_set params;   /* DSN and BODY (none in older envelopes) */
	char *account;          /* the config account it goes through; NULL
	                           for the default (and older envelopes) */
};

/*
 * Open the store at dir, creating it and its tmp/, msg/ and failed/
 * subdirectories (mode 0700) when create is set. shared (the setgid
 * install): directories 2770 and files 0660, for the outbox group, and a
 * caller other than root may see and act on (store_find_mine) only the
 * messages it submitted itself. Refused: a path that is a symbolic link
 * or owned by another user (root excepted, when the directory's group is
 * ours). Returns 0 and *out, or -1 with err.
 */
int store_open(const char *dir, bool create, bool shared,
               struct store **out, char *err, size_t errlen);
/* NULL is fine. */
void store_close(struct store *s);

/*
 * A new spool file in tmp/ for a message being read: created with O_EXCL,
 * mode 0600 (0660 shared), locked for as long as the fd stays open. Its
 * ID is written to id. Returns the fd, or -1 with err.
 */
int store_spool(struct store *s, char id[STORE_ID_LEN + 1],
                char *err, size_t errlen);

/* Remove the tmp/ files of a message that was not committed. */
void store_discard(struct store *s, const char *id);

/*
 * The commit point. fd is the spool file of e->id (from store_spool).
 * Writes e as the envelope, fsyncs both files, renames them into msg/
 * (data first, fsync of msg/ after each rename). On success (0) the
 * message is queued. On failure (-1, err) nothing is left in msg/.
 */
int store_commit(struct store *s, int fd, const struct store_entry *e,
                 char *err, size_t errlen);

/*
 * Replace msg/ID.env with e (written to tmp/, fsynced, renamed over the
 * old one, msg/ fsynced): the envelope is never edited in place. 0, or -1
 * with err.
 */
int store_update(struct store *s, const struct store_entry *e,
                 char *err, size_t errlen);

/*
 * Open msg/ID.data and lock it (flock, non-blocking), so that no other
 * process sends or removes it meanwhile. Returns the fd (the lock lives
 * as long as it stays open), or -1 with errno: ENOENT (no data file),
 * EWOULDBLOCK (locked by another process), or another error.
 */
int store_lock(struct store *s, const char *id);

/*
 * Load area/ID.env into e (free with store_entry_free). 0; -1 with errno
 * ENOENT when it is gone, EINVAL when it is damaged.
 */
int store_load(struct store *s, enum store_area area, const char *id,
               struct store_entry *e);
void store_entry_free(struct store_entry *e);

/* Size of area/ID.data in bytes, or -1 when it cannot be read. */
off_t store_size(struct store *s, enum store_area area, const char *id);

/* IDs of the envelopes in area, sorted oldest first (IDs begin with the
 * time); for msg/, after this process's removals (store_drop) are done.
 * 0, or -1 with errno. */
int store_ids(struct store *s, enum store_area area, struct addr_list *ids);

/* Is id a queue ID (16 upper-case hex digits)? */
bool store_valid_id(const char *id);

/* May the caller see and act on e (store_open's rule)? */
bool store_is_mine(const struct store *s, const struct store_entry *e);

/* Is id a message in msg/ the caller may act on? 0, or -1 with err ("no
 * such message ..."; others' messages are reported the same way). */
int store_find_mine(struct store *s, const char *id, char *err,
                    size_t errlen);

/*
 * Delete a message of the caller's (store_find_mine) that no process has
 * locked. 0, or -1 with err.
 */
int store_remove(struct store *s, const char *id, char *err, size_t errlen);

/*
 * Move a message of the caller's from failed/ back into the queue, due
 * now, with its attempts and queue lifetime started afresh, for the
 * recipients its failed/ envelope names. The same order as a commit
 * (data, then envelope, fsync after each). 0, or -1 with err.
 */
int store_requeue(struct store *s, const char *id, char *err, size_t errlen);

/* Remove the messages in failed/ that failed max_age seconds ago or
 * earlier (0: keep them all). Returns how many went. */
size_t store_expire_failed(struct store *s, long max_age);

/* Sent messages whose removal may wait for one fsync of msg/ together
 * (see the crash table in store.c). */
#define STORE_DROPS_UNSYNCED 64

/*
 * Take msg/ID off the queue for good. The caller holds its lock through
 * lockfd (from store_lock; -1 if it holds none) and may close lockfd at
 * once: the message stays locked until both its files are unlinked,
 * which may happen on the store's removal thread after store_drop
 * returns (see store_drop.c). The removal is made durable with the next
 * STORE_DROPS_UNSYNCED ones, or at store_close, which waits for all.
 */
void store_drop(struct store *s, const char *id, int lockfd);

/*
 * Move msg/ID to failed/ (the caller holds its lock). With e, failed/ID.env
 * is e (the final attempts and last error); without, the envelope as it
 * was. 0, or -1 (logged).
 */
int store_fail(struct store *s, const char *id, const struct store_entry *e);

/*
 * The counters file, QUEUE/stats: a small text file kept for a module
 * above the store (metrics.c), which owns its content; the store only
 * keeps it whole across processes. store_stats_lock takes the counters'
 * lock (flock on QUEUE/stats.lock, waiting at most about 10 seconds) and
 * returns its fd: close it to unlock; -1 with errno. store_stats_read
 * copies the file into buf (cap bytes, always NUL-terminated; "" when
 * there is none yet): 0, or -1 when it cannot be read or does not fit.
 * store_stats_write replaces it with text[0..len) (tmp/stats written and
 * fsynced, renamed to QUEUE/stats): call it with the lock held; 0, or
 * -1 with errno.
 */
#define STORE_STATS_MAX 32768
int store_stats_lock(struct store *s);
int store_stats_read(struct store *s, char *buf, size_t cap);
int store_stats_write(struct store *s, const char *text, size_t len);

/* Remove tmp/ and orphaned msg/ files that no live process holds and
 * that have not changed for a while (see store.c). */
void store_clean_abandoned(struct store *s);

/*
 * Shared state of every outbox process of the host, in files beside the
 * queue's directories (names derived from key, e.g. a smarthost's
 * "host:port"; bytes other than letters, digits, '.' and '-' become '_').
 *
 * store_slot: one of max connection slots for key ("slot-KEY-N" files),
 * held by flock for as long as the returned fd stays open (a process
 * that dies frees it). Returns the fd, or -1 with errno EWOULDBLOCK when
 * all max are held, or another errno.
 */
int store_slot(struct store *s, const char *key, long max);

/*
 * A send log for key, for rate limits: store_stamps_lock takes the lock
 * ("rate-KEY.lock", flock, blocking) and returns its fd (close it to
 * unlock). Under the lock, store_stamps_read fills ts with the last (at
 * most max) times in "rate-KEY", oldest first (*n of them), and
 * store_stamps_add appends t, keeping at least the last keep times (the
 * file is rewritten and renamed into place when it grows past twice
 * that). 0, or -1 with errno. A file that cannot be read counts as empty.
 */
int store_stamps_lock(struct store *s, const char *key);
int store_stamps_read(struct store *s, const char *key, long long *ts,
                      size_t max, size_t *n);
int store_stamps_add(struct store *s, const char *key, long long t,
                     size_t keep);

#endif
