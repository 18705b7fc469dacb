/*
 * trust.c - the trust-anchor cache (see trust.h).
 */
#define _GNU_SOURCE
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* A cache holds a few certificates; anything bigger is not ours. */
#define CACHE_MAX 65536
/* Anchors kept for one smarthost at most. */
#define ANCHORS_MAX 8

/* The system store: $OUTBOX_CA_BUNDLE for an unprivileged caller (tests),
 * else the build's CA_BUNDLE; "" when not readable. */
static void find_bundle(struct trust *t, bool privileged)
{
	const char *env = privileged ? NULL : getenv("OUTBOX_CA_BUNDLE");
	const char *b = env != NULL && *env != '\0' ? env : ca_bundle();

	t->bundle[0] = '\0';
	if (b != NULL && access(b, R_OK) == 0)
		str_copy(t->bundle, sizeof(t->bundle), b);
}

/* "trust-HOST-PORT" with anything but [A-Za-z0-9.-] as '_'. */
static void cache_path(struct trust *t, const char *dir, const char *host,
                       int port)
{
	char k[256];
	size_t i;

	for (i = 0; host[i] != '\0' && i + 1 < sizeof(k); i++) {
		unsigned char c = (unsigned char)host[i];

		k[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '-') ? (char)c
		                                                      : '_';
	}
	k[i] = '\0';
	snprintf(t->cache, sizeof(t->cache), "%s/trust-%s-%d", dir, k, port);
}

/* Is fd a cache file we may believe? */
static bool owner_ok(int fd, bool privileged)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CACHE_MAX)
		return false;
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return false;
	return st.st_uid == (privileged ? 0 : geteuid());
}

/* Does the cache file exist, belong to the right owner, and start with
 * t->ident followed by at least one certificate? */
static bool cache_valid(const struct trust *t, bool privileged)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	char buf[CACHE_MAX + 1];
	size_t len = 0, k = strlen(t->ident);
	ssize_t r;
	int fd = open(t->cache, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (!owner_ok(fd, privileged)) {
		close(fd);
		return false;
	}
	while (len < sizeof(buf) - 1 &&
	       (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = '\0';
	return len > k && memcmp(buf, t->ident, k) == 0 && buf[k] == '\n' &&
	       strstr(buf + k, begin) != NULL;
}

/* Back to "nothing applies". Not memset: the three path buffers are
 * 13 KB, most sends use none of them. */
static void reset(struct trust *t)
{
	t->active = t->cached = t->privileged = false;
	t->may_write = t->learned = t->fell_back = false;
	t->bundle[0] = t->cache[0] = t->ident[0] = '\0';
}

void trust_none(struct trust *t)
{
	reset(t);
}

void trust_choose(struct trust *t, const char *host, int port,
                  const char *dir, bool privileged)
{
	struct stat st;

	reset(t);
	find_bundle(t, privileged);
	if (dir == NULL || t->bundle[0] == '\0' || stat(t->bundle, &st) != 0)
		return;
	cache_path(t, dir, host, port);
	snprintf(t->ident, sizeof(t->ident),
	         "outbox-trust 1 %ju %ju %jd %jd.%09ld %s:%d %s",
	         (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
	         (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
	         st.st_mtim.tv_nsec, host, port, t->bundle);
	if (strchr(t->ident, '\n') != NULL)
		return;                 /* a name we cannot key a line by */
	t->active = true;
	t->privileged = privileged;
	t->may_write = !privileged || (getuid() == 0 && geteuid() == 0);
	t->cached = cache_valid(t, privileged);
}

const char *trust_cafile(const struct trust *t)
{
	if (t->active && t->cached)
		return t->cache;
	return t->bundle[0] != '\0' ? t->bundle : NULL;
}

bool trust_wants_chain(const struct trust *t)
{
	return t->active && !t->cached && t->may_write;
}

bool trust_fallback(struct trust *t)
{
	if (!t->active || !t->cached)
		return false;
	t->cached = false;
	t->fell_back = true;
	return true;
}

bool trust_verify_failed(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
}

/* ---- learning the anchors ---- */

/* Certificates of the sent chain looked at, at most. */
#define CHAIN_MAX 16

/* The chain the server sent, and each certificate's issuer name (DER). */
struct chain {
	gnutls_x509_crt_t crt[CHAIN_MAX];
	gnutls_datum_t issuer[CHAIN_MAX];
	size_t n;
};

/* A PEM block of the store that anchors the chain. */
struct pick {
	const char *pem;
	size_t len;
};

/* The chain's i-th certificate from libcurl's "Cert:" (PEM) field. */
static int chain_cert(const struct curl_certinfo *ci, int i,
                      gnutls_x509_crt_t *out)
{
	const struct curl_slist *l;

	for (l = ci->certinfo[i]; l != NULL; l = l->next) {
		gnutls_datum_t d;

		if (strncmp(l->data, "Cert:", 5) != 0)
			continue;
		d.data = (unsigned char *)l->data + 5;
		d.size = (unsigned)strlen(l->data + 5);
		if (gnutls_x509_crt_init(out) < 0)
			return -1;
		if (gnutls_x509_crt_import(*out, &d, GNUTLS_X509_FMT_PEM) == 0)
			return 0;
		gnutls_x509_crt_deinit(*out);
		return -1;
	}
	return -1;
}

static void chain_load(struct chain *ch, const struct curl_certinfo *ci)
{
	int i;

	memset(ch, 0, sizeof(*ch));
	for (i = 0; i < ci->num_of_certs && ch->n < CHAIN_MAX; i++) {
		gnutls_x509_crt_t c;

		if (chain_cert(ci, i, &c) != 0)
			continue;
		if (gnutls_x509_crt_get_raw_issuer_dn(c, &ch->issuer[ch->n]) <
		    0) {
			gnutls_x509_crt_deinit(c);
			continue;
		}
		ch->crt[ch->n++] = c;
	}
}

static void chain_free(struct chain *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		gnutls_x509_crt_deinit(ch->crt[i]);
		gnutls_free(ch->issuer[i].data);
	}
	ch->n = 0;
}

/* Is ca (a store certificate) the chain certificate c itself, or did it
 * sign it? */
static bool anchors(gnutls_x509_crt_t c, gnutls_x509_crt_t ca)
{
	unsigned status = 0;

	if (gnutls_x509_crt_equals(c, ca))
		return true;
	return gnutls_x509_crt_check_issuer(c, ca) == 1 &&
	       gnutls_x509_crt_verify(c, &ca, 1, 0, &status) == 0 &&
	       status == 0;
}

/*
 * Does the store certificate der anchor a certificate of the chain? Only
 * a certificate whose DER holds a chain certificate's issuer name (as
 * its subject) can; only those are parsed - the store's other ~140 are
 * not, which is what makes learning cheap.
 */
static bool anchors_chain(const struct chain *ch, const gnutls_datum_t *der)
{
	gnutls_x509_crt_t ca;
	bool yes = false;
	size_t i;

	for (i = 0; i < ch->n; i++) {
		if (memmem(der->data, der->size, ch->issuer[i].data,
		           ch->issuer[i].size) != NULL)
			break;
	}
	if (i == ch->n || gnutls_x509_crt_init(&ca) < 0)
		return false;
	if (gnutls_x509_crt_import(ca, der, GNUTLS_X509_FMT_DER) == 0) {
		for (i = 0; i < ch->n && !yes; i++)
			yes = anchors(ch->crt[i], ca);
	}
	gnutls_x509_crt_deinit(ca);
	return yes;
}

/* The PEM blocks of the store (data, len) that anchor the chain, into
 * picks[]; returns how many. */
static size_t scan_store(const char *data, size_t len,
                         const struct chain *ch, struct pick *picks)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *p = data, *stop = data + len;
	size_t n = 0;

	while (n < ANCHORS_MAX) {
		const char *b = memmem(p, (size_t)(stop - p), begin,
		                       sizeof(begin) - 1);
		const char *e = b ? memmem(b, (size_t)(stop - b), end,
		                           sizeof(end) - 1) : NULL;
		gnutls_datum_t pem, der = { NULL, 0 };

		if (e == NULL)
			break;
		e += sizeof(end) - 1;
		pem.data = (unsigned char *)b;
		pem.size = (unsigned)(e - b);
		if (gnutls_pem_base64_decode2("CERTIFICATE", &pem, &der) == 0 &&
		    anchors_chain(ch, &der)) {
			picks[n].pem = b;
			picks[n++].len = (size_t)(e - b);
		}
		gnutls_free(der.data);
		p = e;
	}
	return n;
}

/* The identity line and the picked certificates, into fd. */
static int write_cache(const struct trust *t, int fd,
                       const struct pick *picks, size_t n)
{
	size_t i;

	if (write_all(fd, t->ident, strlen(t->ident)) != 0 ||
	    write_all(fd, "\n", 1) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (write_all(fd, picks[i].pem, picks[i].len) != 0 ||
		    write_all(fd, "\n", 1) != 0)
			return -1;
	}
	return fsync(fd);
}

/* Replace the cache atomically (a new file renamed over it). */
static int replace_cache(const struct trust *t, const struct pick *picks,
                         size_t n)
{
	char tmp[PATH_MAX + 32];
	/* privileged: root's file, read by set-group-ID callers */
	mode_t mode = t->privileged ? 0640 : 0600;
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", t->cache, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          mode);
	if (fd < 0)
		return -1;
	r = write_cache(t, fd, picks, n);
	if (r == 0)
		r = fchmod(fd, mode);
	if (close(fd) != 0)
		r = -1;
	if (r == 0)
		r = rename(tmp, t->cache);
	if (r != 0)
		unlink(tmp);
	return r;
}

int trust_learn(struct trust *t, const struct curl_certinfo *ci)
{
	gnutls_datum_t data = { NULL, 0 };
	struct pick picks[ANCHORS_MAX];
	struct chain ch;
	size_t n;
	int rc = -1;

	if (!trust_wants_chain(t) || ci == NULL || ci->num_of_certs < 1)
		return -1;
	chain_load(&ch, ci);
	if (ch.n > 0 && gnutls_load_file(t->bundle, &data) == 0) {
		n = scan_store((const char *)data.data, data.size, &ch, picks);
		if (n > 0)
			rc = replace_cache(t, picks, n);
		gnutls_free(data.data);
	}
	chain_free(&ch);
	t->learned = rc == 0;
	if (rc == 0)
		t->cached = true;       /* the client's next sessions load it */
	return rc;
}

void trust_describe(const struct trust *t, char *out, size_t n)
{
	if (!t->active)
		snprintf(out, n, "%s", "");
	else if (t->cached && !t->learned)
		snprintf(out, n, "cached anchors (%s)", t->cache);
	else
		snprintf(out, n, "system store %s%s%s", t->bundle,
		         t->fell_back ? " (the cached anchors failed)" : "",
		         t->learned ? "; anchors cached" :
		         t->may_write ? "" : "; no cache (not root)");
}

void trust_begin(struct trust *t)
{
	t->learned = false;
	t->fell_back = false;
}
