# The two commands of the README. Both install what a fresh machine lacks.
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: install system-deps demo test test-all test-avx2-view bench

install:
	# CPU PyTorch first, from the wheel on disk, so pip never pulls a CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev]"
	# tf_keras (Keras 2) is what converts an LSTM to TFLite's fused int8 op (tests of the
	# TFLite-compatible mode); it asks for the full tensorflow wheel, tensorflow-cpu serves.
	$(PIP) install --quiet --no-deps "tf_keras>=2.16,<2.22"

demo: install
	lstmlite demo

# The tests' system packages (QEMU, cross compilers, ...): scripts/system-deps*.txt.
system-deps:
	sh scripts/install-system-deps.sh

# pytest exits 5 when it collects no tests: say so plainly rather than fail as a test failure.
test: install system-deps
	$(PYTHON) -m pytest -q -n 2 || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest collected no tests"; exit $$rc; }

test-all: install system-deps
	$(PYTHON) -m pytest -q -n 2 -m ""

# The default run as on an AVX2-only x86-64 CPU: cpuid hides AVX-512 and AVX-VNNI from every library
# (benchmarks/avx2_view.py; needs Linux's CPUID faulting, which it checks and names).
test-avx2-view: install system-deps
	$(PYTHON) benchmarks/avx2_view.py $(PYTHON) -m pytest -q -n 2
