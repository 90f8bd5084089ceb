# Two commands do all the set-up on a fresh machine:
#   make run    -> venv + pinned packages, then the main job (results/lstm/final.json) on the
#                  embedded synthetic data; `make report` runs every default experiment and
#                  results/report.html
#   make test   -> venv + pinned packages, then the test suite
# Both are fast when the environment already exists (the venv is rebuilt only when
# pyproject.toml or requirements.lock change).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORES   ?= 2
TARGET  ?= results/lstm/final.json
PYTEST_ARGS ?=

.PHONY: run test test-fast test-slurm lint fmt lock report clean-results slurm-up slurm-down

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -e '.[workflow,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) $(TARGET)

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) report

# As root on Debian, also installs chromium and runs a local Slurm for the cluster tests.
test: $(STAMP)
	scripts/test.sh $(PYTEST_ARGS)

test-fast: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -m "not slow and not slurm" $(PYTEST_ARGS)

# A local single-node Slurm (root; installs the Debian packages the first time) for the
# `slurm` tests and for trying profiles/slurm; stopped by the PIDs it recorded.
slurm-up:
	scripts/slurm-local.sh start

slurm-down:
	scripts/slurm-local.sh stop

# Only the Slurm tests; they fail (not skip) here when no local Slurm answers.
test-slurm: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH SEQLAB_REQUIRE_SLURM=1 $(BIN)/pytest -m slurm $(PYTEST_ARGS)

# lint-imports: the import-linter contracts of pyproject.toml (packages depend one way).
lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	PYTHONPATH=$(CURDIR)/src $(BIN)/lint-imports
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests workflow/scripts
	$(BIN)/ruff format src tests workflow/scripts
	$(BIN)/snakefmt Snakefile workflow/rules

lock: $(STAMP)
	( echo "# Exact pins for every dependency (pip freeze of a working environment)."; \
	  echo "# Regenerate: make lock"; \
	  $(BIN)/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/' ) > requirements.lock

clean-results:
	rm -rf results .snakemake
