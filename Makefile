# outbox - a send-only sendmail. See README.
VERSION    = 0.1
PREFIX    ?= /usr/local
SBINDIR   ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR    ?= $(PREFIX)/share/man
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
QUEUEDIR  ?= /var/spool/outbox
OUTBOX_GROUP ?= outbox
# seconds before a queue run removes an unlocked leftover file (tests: 2)
QUEUE_STALE_SECS ?= 60
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR    ?= $(PREFIX)/share/doc/outbox
SENDMAIL_LINKS ?= /usr/sbin/sendmail /usr/lib/sendmail /usr/bin/mailq /usr/bin/newaliases
DESTDIR   ?=

CC        ?= cc
CFLAGS    ?= -O2 -g
PKGS       = libcurl gnutls libidn2
PKG_CONFIG ?= pkg-config
# Read when the Makefile is parsed: a target that installs the packages
# first (demo, check) builds in a sub-make, which reads them again.
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
WARN       = -std=c11 -Wall -Wextra -Werror
DEFS       = -DOUTBOX_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' \
             -DQUEUE_STALE_SECS=$(QUEUE_STALE_SECS) \
             -DCA_BUNDLE='"$(CA_BUNDLE)"'
# Each build flavour has its own object directory, so objects compiled
# with other flags are never mixed in; OUT is the binary.
# SANITIZE=1: ASan, LeakSanitizer and UBSan; -fno-sanitize-recover=all
# makes UBSan stop the program at its first error (exit 1), as ASan does,
# instead of printing and going on. Built with clang (SANITIZE_CC): its
# UBSan runs inside the ASan runtime and writes to the same log_path (see
# below); GCC's libubsan is a runtime of its own that prints to stderr
# whatever log_path says, so a background run's UBSan report would be lost.
# (Objects built with other flags or another compiler are not rebuilt by
# themselves: rm -rf build/sanitize after changing these.)
ifeq ($(SANITIZE),1)
SANITIZE_CC ?= clang
CC         = $(SANITIZE_CC)
CFLAGS    += -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer -DOUTBOX_SANITIZE
LDFLAGS   += -fsanitize=address,undefined
BUILDDIR  ?= build/sanitize
OUT       ?= $(BUILDDIR)/outbox
# make unit / make integration send every sanitizer report of every
# process they run (background ones included: -odb's detached queue run
# has its stderr on /dev/null) to a file in SAN_REPORTS/STEP/ through the
# runtimes' log_path option, and fail when one is there afterwards or the
# output names one (SAN_ERRORS). The directory is mode 1777: some tests
# run outbox as nobody.
SAN_REPORTS ?= $(abspath $(BUILDDIR))/reports
SAN_ERRORS  = runtime error|ERROR: [A-Za-z]*Sanitizer
san_env = ASAN_OPTIONS="$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}log_path=$(SAN_REPORTS)/$(1)/report" \
	UBSAN_OPTIONS="$${UBSAN_OPTIONS:+$$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$(SAN_REPORTS)/$(1)/report"
san_begin = rm -rf $(SAN_REPORTS)/$(1) && mkdir -p $(SAN_REPORTS)/$(1) && \
	chmod 1777 $(SAN_REPORTS)/$(1)
# waits (10 s at most) for outbox processes still running in the background
san_wait = for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
		busy=; for p in /proc/[0-9]*; do \
			[ "$$(readlink $$p/exe 2>/dev/null)" = "$(abspath $(OUT))" ] && \
			busy=1 && break; done; \
		[ -z "$$busy" ] && break; sleep 0.5; done
san_check = $(san_wait); \
	if [ -n "$$(ls -A $(SAN_REPORTS)/$(1))" ] || \
		grep -qE '$(SAN_ERRORS)' $(2); then \
		for f in $(SAN_REPORTS)/$(1)/*; do [ -f "$$f" ] || continue; \
			echo "--- $$f"; cat "$$f"; done; \
		grep -E -A20 '$(SAN_ERRORS)' $(2) | head -100; \
		echo "sanitizer reports ($(1)): FAILED: reports in" \
		     "$(SAN_REPORTS)/$(1)/ or errors in $(2)"; rc=1; \
	else echo "sanitizer reports ($(1)): none"; fi
else
san_env =
san_begin = true
san_check = true
endif
# --- LEAN build (make LEAN=1) ---
# outbox linked against a static libcurl with only what it uses (SMTP,
# SMTPS, and HTTPS for the OAuth2 token endpoint), built from Debian's
# source of the installed version by conf/build-lean-curl.sh; GnuTLS stays
# shared. Skips loading the ~29 libraries of Debian's libcurl-gnutls.
# Its own objects and binary: build/lean/outbox (./outbox is the plain
# build's, so neither flavour's binary is ever mistaken for the other's).
ifeq ($(LEAN),1)
LEAN_CURL_DIR = build/lean/curl
LEAN_CURL_LIB = $(LEAN_CURL_DIR)/stamp
LEAN_CURL_PC  = PKG_CONFIG_PATH=$(LEAN_CURL_DIR)/prefix/lib/pkgconfig pkg-config
# '=' not ':=': the library is built after the Makefile is read
PKG_CFLAGS = $(shell $(LEAN_CURL_PC) --cflags libcurl gnutls libidn2) -DOUTBOX_LEAN=1
PKG_LIBS   = $(shell $(LEAN_CURL_PC) --static --libs libcurl) \
	$(shell pkg-config --libs gnutls libidn2)
BUILDDIR  ?= build/lean
OUT       ?= $(BUILDDIR)/outbox
.DEFAULT_GOAL := all
# Runs each time; the script does nothing when its stamp is current.
$(LEAN_CURL_LIB): FORCE-lean-curl
	@sh conf/build-lean-curl.sh $(LEAN_CURL_DIR)
.PHONY: FORCE-lean-curl
endif
# --- end LEAN ---
BUILDDIR  ?= build
OUT       ?= outbox
ALL_CFLAGS = $(WARN) $(DEFS) $(PKG_CFLAGS) $(CFLAGS)

SRCS      := $(wildcard src/*.c)
OBJS      := $(SRCS:src/%.c=$(BUILDDIR)/%.o)
LIBOBJS   := $(filter-out $(BUILDDIR)/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILDDIR)/%)
PYTEST     = /usr/bin/python3 -m pytest
# The units and the cron file name the installed paths.
UNIT_PATHS = sed -e 's|/usr/sbin/outbox|$(SBINDIR)/outbox|g' \
	-e 's|/etc/outbox.conf|$(SYSCONFDIR)/outbox.conf|g' \
	-e 's|/var/spool/outbox|$(QUEUEDIR)|g'

.PHONY: all check unit integration deps banned demo install \
	install-sendmail-links install-setgid deb check-package clean build-deps \
	uninstall

all: $(OUT)

$(OBJS): $(LEAN_CURL_LIB) | build-deps

# One line naming what is missing (and how to install it), not a wall
# of compiler errors.
build-deps:
	@conf/check-build-deps.sh "$(CC)" "$(PKG_CONFIG)" $(PKGS)

$(OUT): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

$(BUILDDIR)/%.o: src/%.c src/*.h | $(BUILDDIR)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILDDIR)/test_%: tests/unit/test_%.c $(LIBOBJS) src/*.h \
		$(wildcard tests/unit/*.h) | $(BUILDDIR)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIBOBJS) $(LDFLAGS) $(PKG_LIBS) -lcmocka

$(BUILDDIR):
	mkdir -p $(BUILDDIR)

# Installs the Debian packages the build and the tests need (when root).
deps:
	@tests/deps.sh

# The whole suite: banned-function check, unit tests, integration tests.
check: deps
	$(MAKE) banned
	$(MAKE) all $(UNIT_BINS)
	$(MAKE) unit
	$(MAKE) fuzz-regress
	$(MAKE) integration

banned:
	@if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|atoi|strtok|gets)[[:space:]]*\(' src/*.c src/*.h; then \
		echo "banned functions in src/: use snprintf, memcpy with lengths, strtol"; exit 1; \
	else echo "banned-function check: clean"; fi

# Which test stage this is (check, lean, sanitize): its skip allowlist is
# tests/skips/$(TEST_STAGE).txt.
TEST_STAGE = $(if $(filter 1,$(SANITIZE)),sanitize,$(if $(filter 1,$(LEAN)),lean,check))
# make integration fails on a skip that SKIP_ALLOWLIST does not allow (each
# allowed skip has its reason there), or when no test ran: see
# tests/integration/skipcheck.py. Enforced as root, the way CI runs (the
# lists are root's skips; another user skips the tests that need root):
# SKIP_ALLOWLIST=tests/skips/STAGE.txt enforces it anyway, SKIP_ALLOWLIST=
# turns it off.
SKIP_ALLOWLIST ?= $(if $(filter 0,$(shell id -u)),tests/skips/$(TEST_STAGE).txt)

unit: $(UNIT_BINS)
	@$(call san_begin,unit)
	@{ fail=0; for t in $(UNIT_BINS); do echo "== $$t"; \
		$(call san_env,unit) $$t || fail=1; done; \
		echo $$fail > $(BUILDDIR)/unit.rc; } 2>&1 | tee $(BUILDDIR)/unit.log; \
	rc=$$(cat $(BUILDDIR)/unit.rc); \
	$(call san_check,unit,$(BUILDDIR)/unit.log); exit $$rc

integration: $(OUT) | $(BUILDDIR)
	@$(call san_begin,integration)
	@echo "pytest tests/integration: OUTBOX_BIN=$(abspath $(OUT))" \
	     "OUTBOX_SANITIZE=$(SANITIZE) OUTBOX_SKIP_ALLOWLIST=$(SKIP_ALLOWLIST)"
	@$(if $(SKIP_ALLOWLIST),,echo "skip check: not enforced (no SKIP_ALLOWLIST:" \
		"the default when not root; SKIP_ALLOWLIST=tests/skips/$(TEST_STAGE).txt" \
		"enforces it)";) \
	{ OUTBOX_BIN=$(abspath $(OUT)) OUTBOX_SANITIZE=$(SANITIZE) \
		OUTBOX_SKIP_ALLOWLIST=$(SKIP_ALLOWLIST) $(call san_env,integration) \
		$(PYTEST) -q -rs -p no:cacheprovider tests/integration; \
		echo $$? > $(BUILDDIR)/integration.rc; } 2>&1 | \
		tee $(BUILDDIR)/integration.log; \
	rc=$$(cat $(BUILDDIR)/integration.rc); \
	$(call san_check,integration,$(BUILDDIR)/integration.log); exit $$rc

demo: deps
	@$(MAKE) --no-print-directory $(OUT)
	@tests/demo.sh

install: $(OUT)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 $(OUT) $(DESTDIR)$(SBINDIR)/outbox
	install -m 0644 man/outbox.8 $(DESTDIR)$(MANDIR)/man8/outbox.8
	install -m 0644 man/outbox.conf.5 $(DESTDIR)$(MANDIR)/man5/outbox.conf.5
	install -m 0644 conf/outbox.conf.example \
		$(DESTDIR)$(SYSCONFDIR)/outbox.conf.example
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(DOCDIR)
	for f in outbox-queue.service outbox-queue.timer; do \
		$(UNIT_PATHS) conf/$$f > $(DESTDIR)$(SYSTEMDUNITDIR)/$$f && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$f || exit 1; done
	$(UNIT_PATHS) conf/outbox.cron > $(DESTDIR)$(DOCDIR)/outbox.cron
	chmod 0644 $(DESTDIR)$(DOCDIR)/outbox.cron
	install -m 0644 conf/outbox.bash-completion $(DESTDIR)$(BASHCOMPDIR)/outbox

# What make install put in place, and the sendmail links with what they
# replaced put back. The configuration and the queue (mail!) stay.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/outbox $(DESTDIR)$(MANDIR)/man8/outbox.8 \
		$(DESTDIR)$(MANDIR)/man5/outbox.conf.5 \
		$(DESTDIR)$(SYSCONFDIR)/outbox.conf.example \
		$(DESTDIR)$(SYSTEMDUNITDIR)/outbox-queue.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/outbox-queue.timer \
		$(DESTDIR)$(DOCDIR)/outbox.cron $(DESTDIR)$(BASHCOMPDIR)/outbox
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	DESTDIR="$(DESTDIR)" conf/uninstall-links.sh $(SBINDIR)/outbox $(SENDMAIL_LINKS)
	@echo "kept: $(SYSCONFDIR)/outbox.conf and the queue $(QUEUEDIR) (remove them yourself)"

# sendmail, mailq and newaliases as links to outbox (FORCE=1 to replace
# an existing MTA's; it is kept as NAME.pre-outbox).
install-sendmail-links:
	conf/install-links.sh $(SBINDIR)/outbox $(SENDMAIL_LINKS)

# Any local user may send and queue, but only root and the outbox group
# read the secrets: binary setgid outbox, config and password file
# root:outbox 0640, queue root:outbox 2770 (OUTBOX_GROUP=name for another
# group). See outbox(8), SETGID INSTALL.
install-setgid: install
	DESTDIR="$(DESTDIR)" OUTBOX_GROUP="$(OUTBOX_GROUP)" conf/install-setgid.sh $(SBINDIR)/outbox \
		$(SYSCONFDIR)/outbox.conf $(QUEUEDIR)

# The Debian packages outbox and outbox-mta (debian/), built with
# dpkg-buildpackage in a copy of the tree: build/deb/*.deb. See README,
# "Installing from the Debian package".
deb:
	@conf/build-deb.sh build/deb

# make deb, then check the packages: contents, links, control fields,
# maintainer scripts, lintian (tests/integration/test_package.py; with
# OUTBOX_PACKAGE_CHROOT=DIR also an install/remove/purge cycle in that
# prepared Debian chroot, tests/package-cycle.sh).
check-package: deb
	OUTBOX_PACKAGE_TEST=1 $(PYTEST) -q -p no:cacheprovider \
		tests/integration/test_package.py

clean:
	rm -rf build outbox

# Fuzzing (make fuzz, fuzz-smoke, fuzz-regress) and static checks (lint).
-include tests/fuzz/fuzz.mk
-include tests/lint.mk
-include tests/mutate/mutate.mk
