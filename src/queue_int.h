/*
 * queue_int.h - the queue's storage primitives, shared by queue.c (the
 * spool, commit and listing) and queue_run.c (queue runs). Not for other
 * modules: they use queue.h.
 */
#ifndef OUTBOX_QUEUE_INT_H
#define OUTBOX_QUEUE_INT_H

#include <sys/types.h>

#include "queue.h"

struct queue {
	char *dir;
	int dfd;                /* the queue directory */
	int tmpfd, msgfd, failfd;
	mode_t fmode;           /* of new files: 0600, or 0660 when shared */
	bool own_only;          /* the caller sees only its own messages */
	uid_t caller;           /* its real uid */
};

/* Is id a queue ID (16 upper-case hex digits)? */
bool queue_valid_id(const char *id);
/* "ID.ext" into buf. */
void queue_name(char *buf, size_t n, const char *id, const char *ext);
/* IDs of the ID.ext files in dirfd, sorted oldest first. 0 or -1. */
int queue_list_ids(int dirfd, const char *ext, struct addr_list *ids);
/* Does dirfd/name exist? Asked with the effective ids (not access(2)'s
 * real ones), and true when it cannot be told: nothing is removed on a
 * doubt. */
bool queue_exists(int dirfd, const char *name);
/* Is id a message in msg/ that the caller may act on (queue_open's
 * rule)? 0, or -1 with err ("no such message ..."). */
int queue_find_mine(struct queue *q, const char *id, char *err,
                    size_t errlen);
/* May the caller see and act on e (queue_open's rule)? */
bool queue_is_mine(const struct queue *q, const struct queue_entry *e);
/* Load msg/ID.env; -1 with errno ENOENT (gone) or EINVAL (damaged). */
int queue_load_env(struct queue *q, const char *id, struct queue_entry *e);
void queue_entry_free(struct queue_entry *e);
/* Write e to tmp/ID.env and fsync it. 0, or -1 with errno. */
int queue_write_env(struct queue *q, const struct queue_entry *e);
/* Remove tmp/ and orphaned msg/ files no live process holds. */
void queue_clean_abandoned(struct queue *q);
void queue_move_failed(struct queue *q, const char *id);
void queue_remove_msg(struct queue *q, const char *id);

#endif
