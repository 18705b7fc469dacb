# tests/fuzz/fuzz.mk - libFuzzer targets, included by the Makefile
# ("-include tests/fuzz/fuzz.mk"; also usable alone: make -f tests/fuzz/fuzz.mk).
#
#   make fuzz              build every target into build/fuzz/
#   make fuzz-smoke        fuzz each target FUZZ_SECONDS (default 60) on a copy
#                          of its seeds in build/fuzz/corpus/NAME; fails when a
#                          target crashes (input in build/fuzz/artifacts/NAME/,
#                          log in build/fuzz/fuzz_NAME.log) or executed fewer
#                          units than its floor (FUZZ_FLOOR_NAME below); -j2
#                          runs two at once
#   make fuzz-regress      run each target once over every file of
#                          tests/fuzz/seeds/NAME, no fuzzing (part of make check:
#                          a crash once found stays fixed; a few seconds)
#   make -k fuzz-crashers  run the reproducers of open bugs in
#                          tests/fuzz/crashers/NAME: "fixed" or "crashes" each
#   make fuzz-smoke-NAME, fuzz-regress-NAME, fuzz-crashers-NAME: one target
#   make fuzz-long         the long run for a nightly job, not CI's: every
#                          target FUZZ_LONG_SECONDS (default 1200) one after
#                          the other, the same checks as fuzz-smoke (CI's
#                          60 s missed bugs in the header folding that 20
#                          minutes found)
#
# Each target is compiled with clang -fsanitize=fuzzer,address,undefined
# together with the src/*.c files it needs (FUZZ_MODS_* below), compiled for
# fuzzing in build/fuzz/obj (never build/*.o, whose flags differ). Needs
# clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev), and
# python3 (cstrings.py). Without the toolchain fuzz-regress says SKIPPED and
# succeeds, unless FUZZ_REQUIRED=1: the default as root, where make check
# has installed clang first (tests/deps.sh), and CI sets it.

FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC       ?= clang
FUZZ_CFLAGS   ?= -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=undefined
FUZZ_WARN      = -std=c11 -Wall -Wextra -Werror
FUZZ_DIR       = build/fuzz
FUZZ_SECONDS  ?= 60
FUZZ_TIMEOUT  ?= 10
FUZZ_RSS_MB   ?= 2048
FUZZ_REQUIRED ?= $(if $(filter 0,$(shell id -u)),1,0)
FUZZ_PKG_CFLAGS := $(shell pkg-config --cflags libcurl gnutls libidn2 2>/dev/null)
FUZZ_PKG_LIBS   := $(shell pkg-config --libs libcurl gnutls libidn2 2>/dev/null)

FUZZ_TARGETS  := address message config aliases smtpd mime headers params \
                 mime_parts

# Each src/*.c a target needs is compiled once with the fuzzing flags into
# build/fuzz/obj/ and linked into the targets that need it. fuzz_smtpd
# needs the whole submission path, so it takes every module but main.c
# (from an archive, so the linker keeps only what is referenced).
FUZZ_MODS_address := address addr_list
FUZZ_MODS_message := message message_io message_fields headers address addr_list util
FUZZ_MODS_config  := config config_keys config_accounts creds_preset util
FUZZ_MODS_aliases := aliases address addr_list util
FUZZ_MODS_mime    := mime mime_parts util
FUZZ_MODS_mime_parts := mime mime_parts util
FUZZ_MODS_headers := headers address addr_list
FUZZ_MODS_params  := params util
FUZZ_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
FUZZ_OBJS := $(FUZZ_SRCS:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB  := $(FUZZ_DIR)/libsrc.a
FUZZ_LINK_smtpd = $(FUZZ_LIB)
$(foreach t,address message config aliases mime headers params mime_parts,$(eval \
	FUZZ_LINK_$(t) = $(FUZZ_MODS_$(t):%=$(FUZZ_DIR)/obj/%.o)))

FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# fuzz-smoke's floor: a target must execute at least FUZZ_FLOOR_NAME units
# per second of FUZZ_SECONDS (libFuzzer's stat::number_of_executed_units,
# from -print_final_stats=1), or fuzz-smoke fails naming it; so does a log
# without that line. A target that stalls, exits early or became many
# times slower has not been fuzzed, whatever its exit code. Rates seen
# with -j2 on 2 cores shared with other work (load 4-5), units/s over
# 60 s from the seeds (a CI run, and here) and 10 s on a grown corpus:
#   address 8400-25000   config  2900-5000   aliases 1500-1800
#   smtpd   1800-2600    message 1900-3700   mime    13-96
# Each floor is about 1/10 of the slowest rate seen. fuzz_mime is slow by
# design: its 0x01 N C escape stands for (N+1)*8 copies of C, so an input
# of at most 4 KB is a spool of up to ~2.8 MB (a grown corpus averages
# ~50 KB, its largest ~1 MB), and mime_fix_long_lines and the target's
# checks go over every byte several times, each comparison traced by
# -fsanitize=fuzzer (perf: ~70% of its time in __sanitizer_cov_trace_cmp*).
# FUZZ_FLOOR_NAME=0 turns a floor off.
FUZZ_FLOOR_address ?= 1000
FUZZ_FLOOR_config  ?= 300
FUZZ_FLOOR_aliases ?= 150
FUZZ_FLOOR_smtpd   ?= 200
FUZZ_FLOOR_message ?= 200
FUZZ_FLOOR_mime    ?= 2
# headers: about 2,500 units/s alone on this kind of machine (20 min run)
FUZZ_FLOOR_headers ?= 200
# params: small words, fast
FUZZ_FLOOR_params  ?= 500
# mime_parts: 1500/s over 60 s from the seeds, 840-910/s over 300 and
# 600 s (-max_len=4096, grown corpus) with the machine shared; its spools
# can be as large as fuzz_mime's (each read twice by the walker and twice
# more by the target's reference decoder), hence a floor well below 1/10
FUZZ_FLOOR_mime_parts ?= 50

# Can $(FUZZ_CC) link a libFuzzer binary? Only asked when a goal needs the
# answer (fuzz-regress, directly or from check): without the toolchain
# fuzz-regress says SKIPPED and succeeds, or fails with FUZZ_REQUIRED=1.
ifneq ($(filter fuzz-regress% check,$(MAKECMDGOALS)),)
FUZZ_TOOLCHAIN_OK := $(shell echo 'int LLVMFuzzerTestOneInput(const \
	unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' | \
	$(FUZZ_CC) $(FUZZ_CFLAGS) -x c -o /dev/null - >/dev/null 2>&1 && \
	echo yes)
endif

.PHONY: fuzz-long fuzz fuzz-smoke fuzz-regress fuzz-crashers \
	$(FUZZ_TARGETS:%=fuzz-smoke-%) $(FUZZ_TARGETS:%=fuzz-regress-%) \
	$(FUZZ_TARGETS:%=fuzz-crashers-%)

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR) $(FUZZ_DIR)/obj:
	mkdir -p $@

$(FUZZ_DIR)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_WARN) -DSYSCONFDIR='"/etc"' \
		$(FUZZ_PKG_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $(FUZZ_OBJS)

# Fixed texts of the modules, so fuzz_config/fuzz_aliases can tell them
# from text echoed out of the input.
$(FUZZ_DIR)/config_strings.h: src/config.c src/config_keys.c \
		src/config_accounts.c src/creds_preset.c tests/fuzz/cstrings.py | \
		$(FUZZ_DIR)
	python3 tests/fuzz/cstrings.py config_strings src/config.c \
		src/config_keys.c src/config_accounts.c src/creds_preset.c > $@.tmp
	mv $@.tmp $@

$(FUZZ_DIR)/aliases_strings.h: src/aliases.c src/address.c tests/fuzz/cstrings.py | $(FUZZ_DIR)
	python3 tests/fuzz/cstrings.py aliases_strings src/aliases.c \
		src/address.c > $@.tmp
	mv $@.tmp $@

$(FUZZ_DIR)/fuzz_config: $(FUZZ_DIR)/config_strings.h
$(FUZZ_DIR)/fuzz_aliases: $(FUZZ_DIR)/aliases_strings.h

define FUZZ_RULES
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c tests/fuzz/fuzz_common.h \
		$(FUZZ_LINK_$(1)) $(wildcard src/*.h) | $(FUZZ_DIR)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(FUZZ_WARN) $$(FUZZ_PKG_CFLAGS) \
		-Isrc -I$(FUZZ_DIR) -o $$@ tests/fuzz/fuzz_$(1).c \
		$(FUZZ_LINK_$(1)) $$(FUZZ_PKG_LIBS)

fuzz-smoke-$(1): $(FUZZ_DIR)/fuzz_$(1)
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts/$(1)
	@if [ -d tests/fuzz/seeds/$(1) ]; then \
		cp -p tests/fuzz/seeds/$(1)/* $(FUZZ_DIR)/corpus/$(1)/; fi
	@echo "== fuzz_$(1): $(FUZZ_SECONDS)s, log $(FUZZ_DIR)/fuzz_$(1).log"
	@$(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(FUZZ_SECONDS) \
		-timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) \
		-print_final_stats=1 \
		$$(if $$(wildcard tests/fuzz/$(1).dict),-dict=tests/fuzz/$(1).dict) \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)/ \
		$(FUZZ_DIR)/corpus/$(1) > $(FUZZ_DIR)/fuzz_$(1).log 2>&1; \
	rc=$$$$?; grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
		$(FUZZ_DIR)/fuzz_$(1).log | tail -2; \
	if [ $$$$rc -ne 0 ]; then \
		grep -E -A30 'ERROR: |FUZZ CHECK FAILED|timeout after' \
			$(FUZZ_DIR)/fuzz_$(1).log | grep -v '^0x' | head -40; \
		grep -E 'Test unit written|^Base64' $(FUZZ_DIR)/fuzz_$(1).log; \
		echo "fuzz_$(1): FAILED (exit $$$$rc; input in" \
		     "$(FUZZ_DIR)/artifacts/$(1)/)"; exit 1; fi; \
	units=$$$$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' \
		$(FUZZ_DIR)/fuzz_$(1).log | tail -1); \
	floor=$$$$(($(FUZZ_FLOOR_$(1)) * $(FUZZ_SECONDS))); \
	if [ -z "$$$$units" ]; then \
		echo "fuzz_$(1): FAILED: no stat::number_of_executed_units" \
		     "in $(FUZZ_DIR)/fuzz_$(1).log (floor $$$$floor)"; exit 1; fi; \
	if [ "$$$$units" -lt "$$$$floor" ]; then \
		echo "fuzz_$(1): FAILED: $$$$units units executed, below the" \
		     "floor $$$$floor ($(FUZZ_FLOOR_$(1))/s x $(FUZZ_SECONDS) s)"; \
		exit 1; fi; \
	echo "fuzz_$(1): $$$$units units executed, floor $$$$floor: ok"

fuzz-regress-$(1): $(if $(FUZZ_TOOLCHAIN_OK),$(FUZZ_DIR)/fuzz_$(1))
ifeq ($(FUZZ_TOOLCHAIN_OK),yes)
	@files=$$$$(ls -d tests/fuzz/seeds/$(1)/* 2>/dev/null); \
	if [ -z "$$$$files" ]; then echo "fuzz_$(1): no seeds"; exit 0; fi; \
	if $(FUZZ_DIR)/fuzz_$(1) -timeout=$(FUZZ_TIMEOUT) \
		-rss_limit_mb=$(FUZZ_RSS_MB) $$$$files \
		> $(FUZZ_DIR)/regress_$(1).log 2>&1; then \
		echo "fuzz_$(1): $$$$(echo $$$$files | wc -w) seeds OK"; \
	else grep -E -B2 -A30 'ERROR: |FUZZ CHECK FAILED|timeout after' \
			$(FUZZ_DIR)/regress_$(1).log | head -50; \
		echo "fuzz_$(1): seed regression FAILED"; exit 1; fi
else
	@if [ "$(FUZZ_REQUIRED)" = 1 ]; then \
		echo "fuzz: $(FUZZ_CC) cannot build libFuzzer targets" \
		     "(install clang libclang-rt-14-dev)"; exit 1; fi; \
	echo "fuzz_$(1): SKIPPED: $(FUZZ_CC) cannot build libFuzzer" \
	     "targets (install clang libclang-rt-14-dev)"
endif

fuzz-crashers-$(1): $(FUZZ_DIR)/fuzz_$(1)
	@files=$$$$(ls -d tests/fuzz/crashers/$(1)/* 2>/dev/null); \
	if [ -z "$$$$files" ]; then echo "fuzz_$(1): no crashers"; exit 0; fi; \
	fail=0; for f in $$$$files; do \
		if $(FUZZ_DIR)/fuzz_$(1) -timeout=$(FUZZ_TIMEOUT) \
			-rss_limit_mb=$(FUZZ_RSS_MB) $$$$f >/dev/null 2>&1; \
		then echo "fixed:   $$$$f"; \
		else echo "crashes: $$$$f"; fail=1; fi; \
	done; exit $$$$fail
endef

$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

fuzz-smoke: $(FUZZ_TARGETS:%=fuzz-smoke-%)

FUZZ_LONG_SECONDS ?= 1200
fuzz-long:
	$(MAKE) -f $(firstword $(MAKEFILE_LIST)) fuzz-smoke \
		FUZZ_SECONDS=$(FUZZ_LONG_SECONDS)

fuzz-regress: $(FUZZ_TARGETS:%=fuzz-regress-%)

fuzz-crashers: $(FUZZ_TARGETS:%=fuzz-crashers-%)

.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
