/*
 * metrics.c - the metrics file and the queue check (see metrics.h).
 *
 * The counters file (QUEUE/stats; the store keeps it whole, this module
 * owns its text) is one line per smarthost ever counted:
 *   outbox-stats 1
 *   smarthost NAME sent N deferred N bounced N rate-waits N last-success T
 * Words this version does not know (from a newer one) are skipped, a
 * line it cannot read is dropped. The metrics file is rendered from it
 * and from the queue, in the Prometheus text exposition format (version
 * 0.0.4): # HELP and # TYPE before each family's samples, one sample per
 * line, every family present even when it has no traffic yet.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MAX_HOSTS 64            /* smarthosts kept in the counters file */
#define TEXT_MAX 65536          /* the metrics file */
#define TALLY_MAX (CONFIG_MAX_SMARTHOSTS + 1)

#define DEFAULT_WARN_COUNT 10
#define DEFAULT_CRIT_COUNT 100
#define DEFAULT_WARN_AGE 3600L
#define DEFAULT_CRIT_AGE 86400L

/* A bounded text being built; once something does not fit, full. */
struct text {
	char *buf;
	size_t len, cap;
	bool full;
};

static void put(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->full = true;
		t->buf[t->len] = '\0';
		return;
	}
	t->len += (size_t)n;
}

/* A smarthost name fit for a label value and the counters file. */
static bool good_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(((struct metrics_host *)0)->name))
		return false;
	/* a named account's: "NAME@host:port" (neither has an '@') */
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789.-_:[]@") == n;
}

static struct metrics_host *find_or_add(struct metrics_host *h, size_t *n,
                                        size_t max, const char *name)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(h[i].name, name) == 0)
			return &h[i];
	}
	if (*n >= max || !good_name(name))
		return NULL;
	memset(&h[*n], 0, sizeof(h[*n]));
	str_copy(h[*n].name, sizeof(h[*n].name), name);
	return &h[(*n)++];
}

/* ---- counting ---- */

/* The counters' key of smarthost for account (NULL: the default's):
 * "host:port", or "NAME@host:port". */
static void account_key(const char *account, const char *smarthost,
                        char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s%s%s", account ? account : "",
	                 account ? "@" : "", smarthost);

	if (k < 0 || (size_t)k >= n)
		buf[0] = '\0';         /* too long: not counted (good_name) */
}

void metrics_note(struct metrics_tally *t, const struct deliver_report *rep,
                  bool expired)
{
	long long now = (long long)time(NULL);
	struct metrics_host *h;
	size_t i;

	if (rep->not_tried)
		return;
	for (i = 0; i < rep->nrcpt; i++) {
		const struct deliver_rcpt *r = &rep->rcpt[i];
		const char *where = r->where[0] ? r->where
		                  : rep->where[0] ? rep->where : "none";
		char name[sizeof(h->name)];

		account_key(t->account, where, name, sizeof(name));
		h = find_or_add(t->host, &t->n, TALLY_MAX, name);
		if (h == NULL)
			continue;
		if (r->state == RCPT_OK) {
			h->sent++;
			h->last_success = now;
		} else if (r->state == RCPT_PERM || expired) {
			h->bounced++;
		} else {
			h->deferred++;
		}
	}
}

void metrics_note_rate_wait(struct metrics_tally *t, const char *smarthost)
{
	char name[sizeof(t->host[0].name)];
	struct metrics_host *h;

	account_key(t->account, smarthost, name, sizeof(name));
	h = find_or_add(t->host, &t->n, TALLY_MAX, name);

	if (h != NULL)
		h->rate_waits++;
}

/* ---- the counters file ---- */

/* Everything metrics_update works with (too big for the stack). */
struct state {
	size_t n;
	struct metrics_host host[MAX_HOSTS];
	char stats[STORE_STATS_MAX];
	char out[TEXT_MAX];
};

static int parse_count(const char *s, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* One "smarthost NAME key value ..." line (changed in place). */
static void parse_line(struct state *s, char *line)
{
	char *w[24];
	size_t nw = 0, i;
	struct metrics_host *h;
	unsigned long long v;

	while (*line != '\0' && nw < sizeof(w) / sizeof(w[0])) {
		line += strspn(line, " \t");
		if (*line == '\0')
			break;
		w[nw++] = line;
		line += strcspn(line, " \t");
		if (*line != '\0')
			*line++ = '\0';
	}
	if (nw < 2 || strcmp(w[0], "smarthost") != 0)
		return;
	h = find_or_add(s->host, &s->n, MAX_HOSTS, w[1]);
	for (i = 2; h != NULL && i + 1 < nw; i += 2) {
		if (parse_count(w[i + 1], &v) != 0)
			continue;
		if (strcmp(w[i], "sent") == 0) h->sent = v;
		else if (strcmp(w[i], "deferred") == 0) h->deferred = v;
		else if (strcmp(w[i], "bounced") == 0) h->bounced = v;
		else if (strcmp(w[i], "rate-waits") == 0) h->rate_waits = v;
		else if (strcmp(w[i], "last-success") == 0 && v <= LLONG_MAX)
			h->last_success = (long long)v;
	}
}

static void parse_stats(struct state *s)
{
	char *line = s->stats, *nl;

	while (*line != '\0') {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		parse_line(s, line);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
}

/* "host:port" as smtp.c names a smarthost ("[v6]:port"). */
static void host_name(const struct smarthost *h, char *buf, size_t n)
{
	bool v6 = strchr(h->host, ':') != NULL;

	snprintf(buf, n, "%s%s%s:%d", v6 ? "[" : "", h->host, v6 ? "]" : "",
	         h->port);
}

static bool tally_counts(const struct metrics_tally *t)
{
	size_t i;

	for (i = 0; t != NULL && i < t->n; i++) {
		if (t->host[i].sent || t->host[i].deferred || t->host[i].bounced ||
		    t->host[i].rate_waits)
			return true;
	}
	return false;
}

/* Add t to the counters, and write them back (the lock is held). */
static int add_tally(struct state *s, struct store *q,
                     const struct metrics_tally *t)
{
	struct text out = { s->stats, 0, sizeof(s->stats), false };
	struct metrics_host *h;
	size_t i;

	for (i = 0; i < t->n; i++) {
		h = find_or_add(s->host, &s->n, MAX_HOSTS, t->host[i].name);
		if (h == NULL)
			continue;
		h->sent += t->host[i].sent;
		h->deferred += t->host[i].deferred;
		h->bounced += t->host[i].bounced;
		h->rate_waits += t->host[i].rate_waits;
		if (t->host[i].last_success > h->last_success)
			h->last_success = t->host[i].last_success;
	}
	put(&out, "outbox-stats 1\n");
	for (i = 0; i < s->n; i++) {
		h = &s->host[i];
		put(&out, "smarthost %s sent %llu deferred %llu bounced %llu "
		    "rate-waits %llu last-success %lld\n", h->name, h->sent,
		    h->deferred, h->bounced, h->rate_waits, h->last_success);
	}
	if (out.full) {
		errno = EFBIG;
		return -1;
	}
	return store_stats_write(q, out.buf, out.len);
}

/* ---- the queue ---- */

/* What an area of the queue holds. */
struct summary {
	size_t messages;        /* envelopes (readable or not) */
	long long bytes;        /* their data files */
	time_t oldest;          /* arrival of the oldest; 0 when empty */
};

/* The arrival time in the first eight hex digits of an ID. */
static time_t id_time(const char *id)
{
	char hex[9];

	memcpy(hex, id, 8);
	hex[8] = '\0';
	return (time_t)strtoul(hex, NULL, 16);
}

/* Count area's messages and bytes; the oldest is the first ID's (IDs
 * begin with the arrival time), its envelope's creation time when it
 * can be read. Reads no other envelope. 0, or -1 with errno. */
static int summarise(struct store *q, enum store_area area,
                     struct summary *out)
{
	struct addr_list ids = { 0 };
	struct store_entry e;
	size_t i;
	off_t size;

	memset(out, 0, sizeof(*out));
	if (store_ids(q, area, &ids) != 0)
		return -1;
	for (i = 0; i < ids.count; i++) {
		size = store_size(q, area, ids.addrs[i]);
		out->bytes += size > 0 ? (long long)size : 0;
	}
	out->messages = ids.count;
	if (ids.count > 0) {
		out->oldest = id_time(ids.addrs[0]);
		if (store_load(q, area, ids.addrs[0], &e) == 0) {
			if (e.created > 0)
				out->oldest = e.created;
			store_entry_free(&e);
		}
	}
	addr_list_free(&ids);
	return 0;
}

/* ---- the metrics file ---- */

static void family(struct text *t, const char *name, const char *type,
                   const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const struct {
	const char *name, *type, *help;
} PER_HOST[] = {
	{ "outbox_recipients_sent_total", "counter",
	  "Recipients the smarthost accepted." },
	{ "outbox_recipients_deferred_total", "counter",
	  "Recipients that failed temporarily and wait in the queue." },
	{ "outbox_recipients_bounced_total", "counter",
	  "Recipients refused for good or given up at the queue lifetime." },
	{ "outbox_rate_limit_waits_total", "counter",
	  "Messages held back by a rate limit." },
	{ "outbox_last_success_timestamp_seconds", "gauge",
	  "When the smarthost last accepted a recipient (Unix time; 0: never)." },
};

static unsigned long long per_host(const struct metrics_host *h, size_t k)
{
	switch (k) {
	case 0: return h->sent;
	case 1: return h->deferred;
	case 2: return h->bounced;
	case 3: return h->rate_waits;
	default:
		return h->last_success > 0 ? (unsigned long long)h->last_success
		                           : 0;
	}
}

/* One sample of a per-smarthost family; a named account's key
 * "NAME@host:port" gets the label account="NAME" too. */
static void put_sample(struct text *t, const char *family, const char *key,
                       unsigned long long v)
{
	const char *at = strchr(key, '@');

	if (at == NULL)
		put(t, "%s{smarthost=\"%s\"} %llu\n", family, key, v);
	else
		put(t, "%s{smarthost=\"%s\",account=\"%.*s\"} %llu\n", family,
		    at + 1, (int)(at - key), key, v);
}

static void render(struct text *t, const struct state *s,
                   const struct summary *msg,
                   const struct summary *failed)
{
	long long age = 0;
	size_t k, i;

	if (msg->messages > 0 && msg->oldest > 0)
		age = (long long)(time(NULL) - msg->oldest);
	family(t, "outbox_queue_enabled", "gauge",
	       "1 when outbox has a queue (0: queue off, nothing is counted).");
	put(t, "outbox_queue_enabled 1\n");
	family(t, "outbox_queue_messages", "gauge",
	       "Messages waiting in the queue.");
	put(t, "outbox_queue_messages %zu\n", msg->messages);
	family(t, "outbox_queue_bytes", "gauge",
	       "Size of the messages waiting in the queue.");
	put(t, "outbox_queue_bytes %lld\n", msg->bytes);
	family(t, "outbox_queue_oldest_age_seconds", "gauge",
	       "Age of the oldest message in the queue when the file was "
	       "written (0: empty).");
	put(t, "outbox_queue_oldest_age_seconds %lld\n", age > 0 ? age : 0);
	family(t, "outbox_failed_messages", "gauge",
	       "Messages kept in the queue's failed/ directory.");
	put(t, "outbox_failed_messages %zu\n", failed->messages);
	for (k = 0; k < sizeof(PER_HOST) / sizeof(PER_HOST[0]); k++) {
		family(t, PER_HOST[k].name, PER_HOST[k].type, PER_HOST[k].help);
		for (i = 0; i < s->n; i++)
			put_sample(t, PER_HOST[k].name, s->host[i].name,
			           per_host(&s->host[i], k));
	}
}

/* Set-group-ID for another group, and the caller is not root. */
static bool restricted(const struct config *cfg)
{
	return cfg->privileged && getuid() != 0;
}

/*
 * Every directory from / down to canon (no symbolic links in it) is
 * root's, and only root, or the group outbox runs as, may change it; a
 * directory above (not canon itself) may be open to others when it is
 * sticky, like /tmp: then nobody else can move root's entries in it.
 */
static bool safe_chain(const char *canon)
{
	char part[PATH_MAX];
	size_t i, n, len = strlen(canon);
	struct stat st;
	bool open_to_others;

	if (canon[0] != '/' || len >= sizeof(part))
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && canon[i] != '/')
			continue;
		n = i == 0 ? 1 : i;
		memcpy(part, canon, n);
		part[n] = '\0';
		if (lstat(part, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
			return false;
		open_to_others = (st.st_mode & S_IWOTH) ||
		                 ((st.st_mode & S_IWGRP) && st.st_gid != getegid());
		if (open_to_others && (i == len || !(st.st_mode & S_ISVTX)))
			return false;
	}
	return true;
}

/* The metrics file's directory, as the caller may write into it. */
static int open_dir(const struct config *cfg, const char *dir, char *why,
                    size_t n)
{
	char *canon;
	int fd;

	if (!restricted(cfg)) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			snprintf(why, n, "%s", strerror(errno));
		return fd;
	}
	canon = realpath(dir, NULL);
	if (canon == NULL) {
		snprintf(why, n, "%s", strerror(errno));
		return -1;
	}
	fd = -1;
	if (!safe_chain(canon))
		snprintf(why, n, "%s (or a directory above it) is not root's or "
		         "users other than root may change it; only root's "
		         "outbox writes it there", canon);
	else
		fd = open(canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && why[0] == '\0')
		snprintf(why, n, "%s", strerror(errno));
	free(canon);
	return fd;
}

/* Write text to tmp in dfd and rename it to base. "" in why when not
 * written because a restricted caller may not create files there. */
static int replace(const struct config *cfg, int dfd, const char *base,
                   const char *text, size_t len, char *why, size_t n)
{
	char tmp[300];
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), ".%.200s.%ld.tmp", base, (long)getpid());
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	            O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST) {
		/* a dead process's, with this process ID */
		unlinkat(dfd, tmp, 0);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		            O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		if (!(restricted(cfg) && errno == EACCES))
			snprintf(why, n, "%s", strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0644) != 0 || write_all(fd, text, len) != 0 ||
	    fsync(fd) != 0)
		rc = -1;
	if (close(fd) != 0)
		rc = -1;
	if (rc == 0 && renameat(dfd, tmp, dfd, base) != 0)
		rc = -1;
	if (rc != 0) {
		snprintf(why, n, "%s", strerror(errno));
		unlinkat(dfd, tmp, 0);
	}
	return rc;
}

static void write_file(const struct config *cfg, const char *text,
                       size_t len)
{
	const char *path = cfg->metrics_file;
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], why[PATH_MAX + 200] = "";
	struct stat st;
	int dfd;

	if (slash == NULL || slash[1] == '\0' ||
	    (size_t)(slash - path) >= sizeof(dir)) {
		log_event(LOG_WARNING, "metrics-file %s: not a file name", path);
		return;
	}
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	dfd = open_dir(cfg, dir[0] != '\0' ? dir : "/", why, sizeof(why));
	if (dfd >= 0) {
		if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISREG(st.st_mode))
			str_copy(why, sizeof(why), "not a regular file (a symbolic "
			         "link?); refusing it");
		else
			replace(cfg, dfd, slash + 1, text, len, why, sizeof(why));
		close(dfd);
	}
	if (why[0] != '\0')
		log_event(LOG_WARNING, "metrics-file %s: %s; not written", path,
		          why);
}

static const char QUEUE_OFF[] =
	"# HELP outbox_queue_enabled 1 when outbox has a queue (0: queue off, "
	"nothing is counted).\n"
	"# TYPE outbox_queue_enabled gauge\n"
	"outbox_queue_enabled 0\n";

/* Read the counters, add t, write the file (the lock is held). */
static void update_locked(const struct config *cfg, struct store *q,
                          const struct metrics_tally *t, struct state *s)
{
	struct summary msg, failed;
	struct text out = { s->out, 0, sizeof(s->out), false };
	char name[320];
	size_t i;

	if (store_stats_read(q, s->stats, sizeof(s->stats)) != 0) {
		log_event(LOG_ERR, "metrics: cannot read the queue's counters "
		          "file: %s", strerror(errno));
		return;
	}
	parse_stats(s);
	if (tally_counts(t) && add_tally(s, q, t) != 0)
		log_event(LOG_ERR, "metrics: cannot update the queue's counters "
		          "file: %s", strerror(errno));
	for (i = 0; i < cfg->nhosts; i++) {
		char key[sizeof(name) + CONFIG_ACCOUNT_NAME_MAX + 1];

		host_name(&cfg->hosts[i], name, sizeof(name));
		account_key(cfg->account, name, key, sizeof(key));
		find_or_add(s->host, &s->n, MAX_HOSTS, key);
	}
	if (summarise(q, STORE_MSG, &msg) != 0 ||
	    summarise(q, STORE_FAILED, &failed) != 0) {
		log_event(LOG_ERR, "metrics: cannot read the queue: %s",
		          strerror(errno));
		return;
	}
	render(&out, s, &msg, &failed);
	if (out.full)
		log_event(LOG_ERR, "metrics: the metrics file would be over %d "
		          "bytes; not written", TEXT_MAX);
	else
		write_file(cfg, out.buf, out.len);
}

void metrics_update(const struct config *cfg, struct store *q,
                    const struct metrics_tally *t)
{
	struct state *s;
	int lock;

	if (cfg->metrics_file == NULL)
		return;
	if (cfg->queue == NULL) {
		write_file(cfg, QUEUE_OFF, sizeof(QUEUE_OFF) - 1);
		return;
	}
	if (q == NULL)
		return;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_event(LOG_ERR, "metrics: out of memory");
		return;
	}
	lock = store_stats_lock(q);
	if (lock < 0)
		log_event(LOG_ERR, "metrics: cannot lock the queue's counters "
		          "file: %s", strerror(errno));
	else {
		update_locked(cfg, q, t, s);
		close(lock);
	}
	free(s);
}

/* ---- the queue check ---- */

/* A threshold in the largest unit that divides it: 1h, 90m, 1d. */
static void format_limit(char *buf, size_t n, long secs)
{
	if (secs > 0 && secs % 86400 == 0)
		snprintf(buf, n, "%ldd", secs / 86400);
	else if (secs > 0 && secs % 3600 == 0)
		snprintf(buf, n, "%ldh", secs / 3600);
	else if (secs > 0 && secs % 60 == 0)
		snprintf(buf, n, "%ldm", secs / 60);
	else
		snprintf(buf, n, "%lds", secs);
}

static int limit(const char *given, bool age, long dflt, long *out)
{
	if (given == NULL) {
		*out = dflt;
		return 0;
	}
	if (age)
		return parse_duration(given, 3650L * 86400, out);
	return parse_long(given, 0, LONG_MAX, out);
}

/* The queue's summaries: 1 (read), 0 (no queue directory yet), or -1
 * with why. */
static int summaries(const struct config *cfg, struct summary *msg,
                     struct summary *failed, char *why, size_t n)
{
	struct store *q = NULL;
	struct stat st;
	int rc = 1;

	memset(msg, 0, sizeof(*msg));
	memset(failed, 0, sizeof(*failed));
	if (lstat(cfg->queue, &st) != 0 && errno == ENOENT)
		return 0;
	if (store_open(cfg->queue, false, cfg->privileged, &q, why, n) != 0)
		return -1;
	if (summarise(q, STORE_MSG, msg) != 0 ||
	    summarise(q, STORE_FAILED, failed) != 0) {
		snprintf(why, n, "cannot read the queue %s: %s", cfg->queue,
		         strerror(errno));
		rc = -1;
	}
	store_close(q);
	return rc;
}

static enum metrics_state judge(long long v, long warn, long crit)
{
	if (v > crit)
		return METRICS_CRITICAL;
	return v > warn ? METRICS_WARNING : METRICS_OK;
}

enum metrics_state metrics_check(const struct config *cfg,
                                 const struct metrics_limits *lim,
                                 char *line, size_t n)
{
	static const char *const NAMES[] = { "OK", "WARNING", "CRITICAL",
	                                     "UNKNOWN" };
	struct summary msg, failed;
	long wa, ca, wc, cc;
	long long age = 0;
	enum metrics_state sc, sa, st;
	char why[600], shown[32], limit_shown[32];
	char over_c[48] = "", over_a[48] = "";
	char rest[96] = "";

	if (limit(lim->warn_age, true, DEFAULT_WARN_AGE, &wa) != 0 ||
	    limit(lim->crit_age, true, DEFAULT_CRIT_AGE, &ca) != 0 ||
	    limit(lim->warn_count, false, DEFAULT_WARN_COUNT, &wc) != 0 ||
	    limit(lim->crit_count, false, DEFAULT_CRIT_COUNT, &cc) != 0) {
		snprintf(line, n, "OUTBOX QUEUE UNKNOWN - bad threshold: ages are "
		         "durations (30m, 2h, 1d), counts whole numbers");
		return METRICS_UNKNOWN;
	}
	if (cfg->queue == NULL) {
		snprintf(line, n, "OUTBOX QUEUE UNKNOWN - the queue is off");
		return METRICS_UNKNOWN;
	}
	if (summaries(cfg, &msg, &failed, why, sizeof(why)) < 0) {
		snprintf(line, n, "OUTBOX QUEUE UNKNOWN - %s", why);
		return METRICS_UNKNOWN;
	}
	if (msg.messages > 0 && msg.oldest > 0)
		age = (long long)(time(NULL) - msg.oldest);
	age = age > 0 ? age : 0;
	sc = judge((long long)msg.messages, wc, cc);
	sa = judge(age, wa, ca);
	st = sc > sa ? sc : sa;
	if (sc != METRICS_OK)
		snprintf(over_c, sizeof(over_c), " (over %ld)",
		         sc == METRICS_CRITICAL ? cc : wc);
	format_age(shown, sizeof(shown), age);
	if (sa != METRICS_OK) {
		format_limit(limit_shown, sizeof(limit_shown),
		             sa == METRICS_CRITICAL ? ca : wa);
		snprintf(over_a, sizeof(over_a), " (over %s)", limit_shown);
	}
	if (msg.messages > 0)
		snprintf(rest, sizeof(rest), ", oldest %s%s", shown, over_a);
	if (failed.messages > 0)
		snprintf(rest + strlen(rest), sizeof(rest) - strlen(rest),
		         ", %zu in failed/", failed.messages);
	snprintf(line, n, "OUTBOX QUEUE %s - %zu message%s%s%s | messages=%zu;"
	         "%ld;%ld oldest=%llds;%ld;%ld failed=%zu bytes=%lldB",
	         NAMES[st], msg.messages, msg.messages == 1 ? "" : "s", over_c,
	         rest, msg.messages, wc, cc, age, wa, ca, failed.messages,
	         msg.bytes);
	return st;
}
