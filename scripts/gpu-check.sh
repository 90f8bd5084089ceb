#!/usr/bin/env bash
# The GPU checks as one prepared command for a GPU machine: the step benchmark
# at full shapes, then the CUDA tests, each under its own time limit, output to $OUT.
#   here:   scripts/gpu-wheels.sh                       (once: .whl/, the packages it lacks)
#   device: run(command="scripts/gpu-check.sh", carry=[".whl"], timeout_s=600)
# The benchmark needs torch and numpy alone; the tests also the wheels of .whl/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' | tee -a "$OUT/device.txt"
timeout 360 python3 benchmarks/gpu_step.py 2>&1 | tee "$OUT/gpu_step.txt"
echo "gpu_step exit: ${PIPESTATUS[0]}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
timeout 180 python3 -m pytest -p no:cacheprovider -q -rA tests/test_gpu.py 2>&1 | tee "$OUT/test_gpu.txt"
echo "test_gpu exit: ${PIPESTATUS[0]}"
