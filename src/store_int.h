/*
 * store_int.h - the store's own handle, shared by store.c (messages),
 * store_drop.c (removing sent ones), store_clean.c (leftovers) and
 * store_state.c (slots and send logs). Not for other modules: they use
 * store.h.
 */
#ifndef OUTBOX_STORE_INT_H
#define OUTBOX_STORE_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "store.h"

struct store {
	char *dir;
	int dfd;                /* the queue directory */
	int tmpfd, msgfd, failfd;
	mode_t fmode;           /* of new files: 0600, or 0660 when shared */
	bool own_only;          /* the caller sees only its own messages */
	uid_t caller;           /* its real uid */
	unsigned unsynced;      /* removals from msg/ not yet fsynced
	                         * (atomic: see store_drop.c) */
	struct store_drops *drops;  /* the removal thread, once started */
	bool drops_failed;      /* it could not be started: no thread */
};

/* Helpers of store.c for the other store_*.c files. store_name_of:
 * "ID.ext" into buf. store_unlink_pair: unlink dirfd/ID.first, then
 * dirfd/ID.second. store_list_ids: the IDs of the "ID.ext" files in
 * dirfd, sorted (oldest first); 0, or -1 with errno. store_exists: is
 * dirfd/name there (or not known to be absent)? */
void store_name_of(char *buf, size_t n, const char *id, const char *ext);
void store_unlink_pair(int dirfd, const char *id, const char *first,
                       const char *second);
int store_list_ids(int dirfd, const char *ext, struct addr_list *ids);
bool store_exists(int dirfd, const char *name);

/* Wait for every removal store_drop queued, then fsync msg/ for them
 * (store_close, store_drop.c). */
void store_drops_finish(struct store *q);
/* Wait for every removal store_drop queued (store_ids, before listing
 * msg/); no fsync. */
void store_drops_wait(struct store *q);

#endif
