# tests/lint.mk - static checks (included by the Makefile with
# "-include tests/lint.mk"; standalone: make -f tests/lint.mk lint).
#
#   make lint            cppcheck and the clang static analyzer over src/
#   make lint-cppcheck   cppcheck only
#   make lint-analyze    clang --analyze only (one file per job: make -j2)
#
# Both must pass on the tree. Findings that are not bugs are listed, each
# with its reason, in tests/lint-suppressions.txt: cppcheck reads it with
# --suppressions-list (lines "id:file"); analyzer findings are lines
# "#analyzer FILE [CHECKER] MESSAGE" (a comment to cppcheck), matched
# without the line number so they survive edits above them.
# Needs: cppcheck, clang (Debian: cppcheck, clang; clang-tools for
# scan-build, not used here).

LINT_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

LINT_DIR       = build/lint
LINT_SUPPR     = tests/lint-suppressions.txt
LINT_SRCS     := $(wildcard src/*.c)
LINT_CLANG    ?= clang
LINT_CPPCHECK ?= cppcheck
LINT_PKG_INC  := $(shell pkg-config --cflags-only-I libcurl gnutls 2>/dev/null)
LINT_PKG_CFLAGS := $(shell pkg-config --cflags libcurl gnutls 2>/dev/null)
# the project's flags (Makefile WARN and DEFS), minus -Werror: findings are
# collected and compared with the suppressions instead
LINT_CFLAGS    = -std=c11 -Wall -Wextra -DOUTBOX_VERSION='"lint"' \
                 -DSYSCONFDIR='"/etc"' $(LINT_PKG_CFLAGS)

.PHONY: lint lint-cppcheck lint-analyze

lint: lint-cppcheck lint-analyze

$(LINT_DIR):
	mkdir -p $@

lint-cppcheck:
	$(LINT_CPPCHECK) --enable=warning,style,performance,portability \
		--error-exitcode=1 --inline-suppr --std=c11 -q \
		--suppressions-list=$(LINT_SUPPR) -I src $(LINT_PKG_INC) src/

# One stamp per source file: it is analysed again when it, a header or the
# suppressions change. A finding not in the suppressions fails the file
# and the whole analyzer output for it is shown.
lint-analyze: $(LINT_SRCS:src/%.c=$(LINT_DIR)/%.analyze)
	@echo "clang --analyze: $(words $(LINT_SRCS)) files clean"

$(LINT_DIR)/%.analyze: src/%.c $(wildcard src/*.h) $(LINT_SUPPR) | $(LINT_DIR)
	@$(LINT_CLANG) --analyze -Xclang -analyzer-output=text $(LINT_CFLAGS) \
		-o /dev/null $< > $@.raw 2>&1; \
	rc=$$?; \
	grep -E '^src/[^:]+:[0-9]+:[0-9]+: (warning|error):' $@.raw | \
	while IFS= read -r line; do \
		file=$${line%%:*}; \
		msg=$$(printf '%s\n' "$$line" | \
		       sed -E 's/^[^:]+:[0-9]+:[0-9]+: (warning|error): //'); \
		checker=$$(printf '%s\n' "$$msg" | sed -nE 's/.* (\[[^]]*\])$$/\1/p'); \
		text=$$(printf '%s\n' "$$msg" | sed -E 's/ \[[^]]*\]$$//'); \
		grep -qxF "#analyzer $$file $$checker $$text" $(LINT_SUPPR) || \
			printf '%s\n' "$$line"; \
	done > $@.new; \
	if [ $$rc -ne 0 ] || [ -s $@.new ]; then \
		cat $@.raw; echo "lint: clang --analyze $<: findings above" \
		"(not in $(LINT_SUPPR))"; rm -f $@.new; exit 1; fi; \
	mv $@.new $@

.DEFAULT_GOAL := $(LINT_SAVED_DEFAULT_GOAL)
