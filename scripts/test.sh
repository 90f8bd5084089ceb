#!/usr/bin/env bash
# `make test`: everything the tests need, then pytest. As root on Debian this installs the
# Debian packages the tests use for real (chromium for the report test; slurm-wlm + munge via
# scripts/slurm-local.sh) and runs a local single-node Slurm for tests/test_slurm.py, stopping
# the daemons it started however the tests end. Without root (or with SEQLAB_NO_SLURM=1 /
# SEQLAB_NO_APT=1) those tests skip, and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 && -z ${SEQLAB_NO_APT:-} ]] && command -v apt-get >/dev/null; then
  if ! command -v chromium >/dev/null; then
    echo "test: installing Debian chromium (report rendering test)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null
  fi
  if [[ -z ${SEQLAB_NO_SLURM:-} ]]; then
    if ! scripts/slurm-local.sh status >/dev/null 2>&1; then
      trap 'scripts/slurm-local.sh stop' EXIT # only the Slurm this run started
      scripts/slurm-local.sh start
    fi
    export SEQLAB_REQUIRE_SLURM=1 # a running Slurm: a slurm test that cannot reach it fails
    eval "$(scripts/slurm-local.sh env)" # its own SLURM_CONF, never a system /etc/slurm
  fi
else
  echo "test: not root (or SEQLAB_NO_APT): chromium/Slurm tests skip unless already set up" >&2
fi

# Two workers (pytest-xdist), one test file each at a time (module fixtures built once; all
# of test_slurm.py on one worker): most tests run one-thread torch or a one-core job, so the
# second core would otherwise idle. SEQLAB_TEST_WORKERS=0 runs them in this process.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/pytest -n "${SEQLAB_TEST_WORKERS:-2}" --dist loadfile "$@"
