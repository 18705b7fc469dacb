/*
 * store_int.h - the store's own handle, shared by store.c (messages) and
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
	unsigned unsynced;      /* removals from msg/ not yet fsynced */
};

#endif
