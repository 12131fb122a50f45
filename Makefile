# e500-gdbstub developer entry points. `make run` and `make test` work on a fresh Debian 12 machine
# as root: both run scripts/setup.sh first (idempotent).
VENV   := .venv
PYTHON := $(VENV)/bin/python
GUEST  ?= examples/bin/loop-e500v2.elf
PORT   ?= 1234

.PHONY: setup run test lint guests bench clean-guests

setup:
	bash scripts/setup.sh

# Start the stub on the loop demo guest; connect with
#   gdb-multiarch examples/bin/loop-e500v2.elf -ex 'target remote 127.0.0.1:1234'
run: setup
	$(VENV)/bin/e500-gdbstub $(GUEST) --port $(PORT)

test: setup
	$(PYTHON) -m pytest -q
	$(MAKE) --no-print-directory lint

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

# Rebuild the example guests (needs powerpc-linux-gnu-gcc; the ELFs in examples/bin are committed).
guests:
	$(MAKE) -C examples/src

clean-guests:
	$(MAKE) -C examples/src clean

# Runs every benchmarks/*.py that is a script (has a __main__ block); the others are its helpers.
bench: setup
	@scripts=$$(grep -l '^if __name__ == "__main__":' benchmarks/*.py 2>/dev/null || true); \
	if [ -z "$$scripts" ]; then echo "bench: no benchmark scripts in benchmarks/ yet"; exit 0; fi; \
	for script in $$scripts; do echo "== $$script"; $(PYTHON) $$script || exit 1; done
