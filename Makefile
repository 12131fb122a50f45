# e500-gdbstub developer entry points. `make run` and `make test` work on a fresh Debian 12 machine
# as root: both run scripts/setup.sh first (idempotent).
VENV   := .venv
PYTHON := $(VENV)/bin/python
GUEST  ?= examples/bin/loop-e500v2.elf
# The core the guest was built for (gcc records none in the ELF): e500mc when GUEST's name says so.
CPU    ?= $(if $(findstring e500mc,$(notdir $(GUEST))),e500mc,e500v2)
PORT   ?= 1234

.PHONY: setup run test lint guests linux bench clean-guests

setup:
	bash scripts/setup.sh

# Start the stub on the loop demo guest (or GUEST=..., CPU=e500v2|e500mc, PORT=...); connect with
#   gdb-multiarch examples/bin/loop-e500v2.elf -ex 'target remote 127.0.0.1:1234'
run: setup
	$(VENV)/bin/e500-gdbstub $(GUEST) --cpu $(CPU) --port $(PORT)

test: setup
	$(PYTHON) -m pytest -q
	$(MAKE) --no-print-directory lint

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
	$(PYTHON) scripts/check_imports.py

# Rebuild the example guests (needs powerpc-linux-gnu-gcc; the ELFs in examples/bin are committed).
guests:
	$(MAKE) -C examples/src

# Rebuild the Linux test kernels examples/bin/linux-e500v2.elf, linux-e500mc.elf and their SMP variants
# linux-smp-e500v2.elf, linux-smp-e500mc.elf from Debian 12's linux-source-6.1 (examples/linux/README.md).
# As root it installs the packages it needs; the build happens in LINUX_BUILD_DIR (default
# /tmp/e500-linux-build), never in the repository.
linux:
	bash examples/linux/build.sh

clean-guests:
	$(MAKE) -C examples/src clean

# Runs every benchmarks/*.py that is a script (has a __main__ block); the others are its helpers.
bench: setup
	@scripts=$$(grep -l '^if __name__ == "__main__":' benchmarks/*.py 2>/dev/null || true); \
	if [ -z "$$scripts" ]; then echo "bench: no benchmark scripts in benchmarks/ yet"; exit 0; fi; \
	for script in $$scripts; do echo "== $$script"; $(PYTHON) $$script || exit 1; done
