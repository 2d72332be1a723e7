# RuleLens — the two commands (and the benchmark). Each installs what is missing first, idempotently.
#   make demo   build and run the main job on a built-in default
#   make test   build and run every test (Swift and Python interop)
#   make bench  side-by-side speed comparisons against the reference implementations
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := demo

APT_PACKAGES := libhdf5-dev libopenblas-dev liblapacke-dev libdeflate-dev hdf5-tools pkg-config libopenmpi-dev openmpi-bin chromium netcdf-bin
VENV := .venv
PYTHON := $(VENV)/bin/python
SWIFT_RELEASE := swift build -c release -Xswiftc -enable-testing
BIN := .build/release/rulelens

# OpenBLAS misdetects AVX-512 Zen CPUs as Haswell; SkylakeX kernels are ~1.8x faster there.
# (The rulelens binary does this itself; this covers the test runner and Python references.)
ifeq ($(origin OPENBLAS_CORETYPE),undefined)
ifneq ($(shell grep -m1 -o avx512f /proc/cpuinfo 2>/dev/null),)
export OPENBLAS_CORETYPE := SkylakeX
endif
endif

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench deps apt venv build clean

## Installs the Debian packages that are missing (no prompts; nothing when all are present).
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

## The git-ignored Python environment with pinned versions; rebuilt when requirements.txt changes.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@[ -x $(PYTHON) ] || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q -r requirements.txt
	@touch $@

deps: apt venv

build: apt
	$(SWIFT_RELEASE)

## The main job as a spec (Probes/demo.yaml): cached like make; ends with the report's path and PASS/FAIL lines.
demo: deps build
	@$(BIN) --version
	$(BIN) run Probes/demo.yaml --threads 1

test: deps build
	swift test -c release -Xswiftc -enable-testing --parallel
	RULELENS_BIN=$(BIN) $(PYTHON) -m pytest -q Tests/Python

bench: deps build
	RULELENS_BIN=$(BIN) RULELENS_BENCH_BIN=.build/release/rulelens-bench $(PYTHON) Benchmarks/run.py

clean:
	rm -rf .build runs
