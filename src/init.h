/*
 * init.h - outbox --init HOST[:PORT] [--user U]: write a working config
 * (mode 0600) and a password file, then run --check.
 */
#ifndef OUTBOX_INIT_H
#define OUTBOX_INIT_H

#include <stdbool.h>

#include "status.h"

/*
 * Write config_path for smarthost host (and user, when not NULL, with the
 * password read from stdin, or asked for on the terminal without echo;
 * never from argv) and its password file: the config path with ".conf"
 * replaced by ".secret" (or ".secret" appended). Existing files are
 * refused unless force. Returns OB_OK, or a failure (printed to stderr).
 */
enum ob_status init_write(const char *config_path, const char *host,
                          const char *user, bool force);

#endif
