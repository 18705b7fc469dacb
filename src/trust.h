/*
 * trust.h - the trust-anchor cache: what a TLS session to a smarthost
 * trusts when no ca-file is configured.
 *
 * Without ca-file the whole system store (the CA bundle: CA_BUNDLE, or
 * $OUTBOX_CA_BUNDLE when not privileged) would be parsed for every
 * connection, ~144 certificates to use one. Instead, after a handshake
 * verified against the whole store, the store's certificate(s) that
 * issued the chain the smarthost sent are written to "trust-HOST-PORT"
 * beside the queue, with the store's identity (device, inode, size,
 * mtime and path of the bundle) and the smarthost's name in its first
 * line. Later sessions load only that file while the identity matches.
 * Every anchor in it is a certificate of the system store, so nothing the
 * store does not trust is ever trusted; hostname checks are libcurl's
 * either way. A session that fails verification with the cached anchors
 * is retried with the whole store (trust_fallback), which rewrites the
 * cache on success.
 *
 * Ownership: the file must be a regular file (no symbolic link) not
 * writable by group or others, owned by the effective user - and by root
 * in the privileged (set-group-ID) mode, where a non-root caller never
 * writes one. Anything else is ignored (and replaced when allowed).
 */
#ifndef OUTBOX_TRUST_H
#define OUTBOX_TRUST_H

#include <curl/curl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct trust {
	bool active;            /* the cache applies to this smarthost */
	bool cached;            /* a valid cache: load only it */
	bool privileged;        /* the set-group-ID mode */
	bool may_write;         /* this process may (re)write the cache */
	bool learned;           /* the cache was (re)written this session */
	bool fell_back;         /* the cached anchors failed: whole store */
	char bundle[PATH_MAX];  /* the system store, "" when there is none */
	char cache[PATH_MAX];   /* the cache file */
	char ident[PATH_MAX + 400]; /* the first line the cache must have */
};

/*
 * Decide what the TLS session to host:port trusts when no ca-file is
 * configured (with a ca-file, or without TLS, call trust_none instead).
 * dir: where the cache lives (the queue directory), NULL for no cache
 * (tls-verify off, no queue). privileged: the set-group-ID mode. Active
 * only with a dir and a readable system store; then t->cached says
 * whether a valid cache was found.
 */
void trust_choose(struct trust *t, const char *host, int port,
                  const char *dir, bool privileged);

/* Nothing of the cache or the system store applies (no TLS, or a
 * ca-file): trust_cafile is NULL. */
void trust_none(struct trust *t);

/* The file for CURLOPT_CAINFO: the cache when t->cached, else the
 * system store; NULL when the system store is not readable (and inactive:
 * libcurl's default). */
const char *trust_cafile(const struct trust *t);

/* Should CURLOPT_CERTINFO be on, to learn the anchor after the
 * handshake? (active, not cached, and the cache may be written) */
bool trust_wants_chain(const struct trust *t);

/* A new session begins: what trust_describe says is about it alone. */
void trust_begin(struct trust *t);

/* The cached anchors failed: use the whole store from now on (and learn
 * again). Returns true when this changed anything (a retry is worth it). */
bool trust_fallback(struct trust *t);

/*
 * After a handshake verified against the whole store (never call it
 * otherwise): find the store's certificate(s) that issued the chain in
 * ci and write the cache. Returns 0 when written (the client's later
 * sessions then load it: t->cached), -1 when not (no anchor found, not
 * allowed, or an I/O error: the next session tries again).
 */
int trust_learn(struct trust *t, const struct curl_certinfo *ci);

/* What the session trusted, into out ("cached anchors (FILE)", "system
 * store FILE; cache written", ...), for --check and -v; "" when the cache
 * is not active. */
void trust_describe(const struct trust *t, char *out, size_t n);

/* Is this libcurl result a certificate verification failure (or a cache
 * file libcurl could not use)? */
bool trust_verify_failed(CURLcode rc);

#endif
