# make mutate: single-line bugs put into outbox's guards one at a time
# (tests/mutate/mutants.txt), each built in a copy of the tree
# (build/mutate/tree) and run against the tests that must catch it; fails
# naming every mutant that survives or no longer applies. MUTANTS=M01,M07
# runs only those. See tests/mutate/mutate.py.
# Included from the Makefile: -include tests/mutate/mutate.mk
MUTATE_PYTHON ?= /usr/bin/python3

.PHONY: mutate
mutate:
	$(MUTATE_PYTHON) tests/mutate/mutate.py $(if $(MUTANTS),--only $(MUTANTS))
