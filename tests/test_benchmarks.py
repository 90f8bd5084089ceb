"""The GPU benchmark runs on the CPU too (small shapes), from the source tree alone."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import PYTHON, ROOT


@pytest.mark.slow
def test_gpu_step_benchmark_runs_on_cpu_and_says_so() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([PYTHON, str(ROOT / "benchmarks/gpu_step.py"), "--quick", "--steps", "2"],
                          capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "SMALL SHAPES" in out and "error" not in out, out
    rows = re.findall(r"^(lstm|gpt2|gru_ctc)\s+(\S+)\s+\S+\s+(\d+)\s", out, re.M)
    assert {(m, p) for m, p, _ in rows} == {
        (m, p) for m in ("lstm", "gpt2", "gru_ctc") for p in ("fp32", "amp_bf16")
    }, out
    assert all(int(tok_s) > 0 for _, _, tok_s in rows)
    packed = re.findall(r"K=\s*(\d+) trials, aggregate\s+(\d+) tokens/s", out)
    assert [k for k, _ in packed] == ["1", "2"] and all(int(t) > 0 for _, t in packed), out


def test_gpu_step_benchmark_imports_with_torch_and_numpy_alone() -> None:
    """The GPU machine has no webdataset, Snakemake or rapidfuzz: none may be on the path."""
    code = (
        "import runpy, sys\n"
        "for m in ('rapidfuzz', 'webdataset', 'snakemake'): sys.modules[m] = None\n"
        "sys.argv = ['gpu_step.py', '--help']\n"
        f"runpy.run_path({str(ROOT / 'benchmarks/gpu_step.py')!r}, run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                          env=env)  # fmt: skip
    assert proc.returncode == 0 and "usage: gpu_step.py" in proc.stdout, proc.stderr[-2000:]
