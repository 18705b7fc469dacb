/*
 * secret.h - running the commands that hand outbox a secret
 * (password-command, token-command).
 */
#ifndef OUTBOX_SECRET_H
#define OUTBOX_SECRET_H

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

#endif
