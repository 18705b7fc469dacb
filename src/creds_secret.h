/*
 * creds_secret.h - the credentials module's sources of a secret that are
 * not OAuth2 grants: a command that prints it (password-command,
 * token-command) and a file that holds it (password-file, the OAuth2
 * refresh token and client secret files). Internal to the credentials
 * module: the rest of outbox asks creds.h.
 */
#ifndef OUTBOX_CREDS_SECRET_H
#define OUTBOX_CREDS_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_MAX 8192

/*
 * Run cmd and return the first line of its standard output (without the
 * line end) in *out (malloc'd; the caller wipes and frees it).
 * cmd runs without a shell when it has no shell syntax (split at blanks),
 * else with /bin/sh -c. Its stdin is /dev/null; its environment is ours
 * minus every OUTBOX_* variable, or, when privileged, a minimal one
 * (PATH, HOME, LOGNAME, USER, LANG, LC_ALL, TZ). It gets `timeout` seconds, then is
 * killed. key names the config key in error messages.
 * Returns 0, or -1 with a one-line reason in err (never the output).
 */
int secret_command(const char *key, const char *cmd, long timeout,
                   bool privileged, char **out, char *err, size_t errlen);

/* Are secret files held to the set-group-ID rules (strict)? True for a
 * privileged process (set-group-ID) run by a user other than root. */
bool secret_strict(bool privileged);

/*
 * The first line of a secret file (key names the config key in errors:
 * password-file, oauth-refresh-token-file...). The file must be a regular
 * file other users cannot read and, when strict (the set-group-ID binary
 * run by another user), owned by root and writable by root alone.
 * Returns 0 and a malloc'd string in *out (caller wipes and frees), or -1
 * with a reason in err that never contains the file's content.
 */
int secret_file(const char *key, const char *path, bool strict, char **out,
                char *err, size_t errlen);

/*
 * Replace the file at path with text atomically: a new file beside it
 * (mode 0600, owned by the caller, O_EXCL, no symbolic link followed),
 * fsync'd, renamed over path. Returns 0, or -1 with errno set (the
 * temporary file removed).
 */
int secret_store(const char *path, const char *text);

#endif
