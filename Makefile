# Set-up and the two entry points of the README. The experiment DAG itself is Snakemake's job.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# In-Place ABN compiles its CUDA kernels even for CPU use: it needs a CUDA toolkit (nvcc).
CUDA_HOME ?= $(shell d=$$(readlink -f $$(command -v nvcc 2>/dev/null) 2>/dev/null); \
	[ -n "$$d" ] && grep -o '/[^ ]*/bin/nvcc' $$d 2>/dev/null | head -1 | xargs -r dirname | xargs -r dirname)
CUDA_HOME := $(or $(CUDA_HOME),$(wildcard /usr/local/cuda))
TORCH_CUDA_ARCH_LIST ?= 8.0;9.0

.PHONY: all tables rehearsal test iabn lint clean-venv

all: tables

# Command 1 of the README: install, then regenerate every table and figure of the default grid.
tables: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) all_tables

# The dress rehearsal of the paper's grid: every table and figure of the paper on generated
# fixtures of VOC, ADE20K and Cityscapes (config/rehearsal.yaml; results/rehearsal/).
# `make rehearsal PROFILE=slurm` submits its jobs to SLURM instead (slurm/config.yaml).
# --keep-going: a rehearsal shows every job that fails in one run, not only the first.
rehearsal: $(VENV)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) --keep-going all_tables \
		--configfile config/paper.yaml config/rehearsal.yaml $(if $(PROFILE),--profile $(PROFILE))

# Command 2 of the README: install, then run the test suite. Every non-zero exit fails,
# 5 (no test collected) included: a suite that runs nothing has not passed.
test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check ucd tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(MAKE) --no-print-directory iabn
	touch $@

# Optional: build In-Place ABN (the paper's normalisation); without it a pure-PyTorch twin is used.
iabn:
	@if [ -z "$(CUDA_HOME)" ]; then \
		echo "no CUDA toolkit found: using the pure-PyTorch activated batch norm"; \
	else \
		$(BIN)/pip install --quiet setuptools_scm ninja 'packaging<26' && \
		CUDA_HOME="$(CUDA_HOME)" TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" MAX_JOBS=2 \
		$(BIN)/pip install --quiet --no-build-isolation inplace-abn==1.1.0 \
		|| echo "inplace-abn did not build: using the pure-PyTorch activated batch norm"; \
	fi

clean-venv:
	rm -rf $(VENV)
