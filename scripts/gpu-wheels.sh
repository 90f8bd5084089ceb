#!/usr/bin/env bash
# Wheels for the GPU machine (Python 3.12, torch, numpy, pandas, pytest... but not these), at
# the versions of requirements.lock, into .whl/ (git-ignored): carried to the device with the
# working tree, installed there by scripts/gpu-check.sh. Run here, where PyPI is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES=(pydantic pydantic_core annotated-types typing-inspection typing_extensions webdataset braceexpand RapidFuzz)
mkdir -p .whl
for name in "${NAMES[@]}"; do
  pin=$(grep -i "^${name}==" requirements.lock) || { echo "gpu-wheels: $name is not in requirements.lock" >&2; exit 1; }
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$pin"
done
du -sh .whl
