"""DDP on CPU (gloo): two torchrun processes train like one with the same global batch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, ROOT, tiny_trial

from seqlab.train.checkpoint import load_checkpoint

SCRIPT = str(ROOT / "workflow" / "scripts" / "train.py")


def _losses(trial_dir: Path) -> tuple[list[float], list[float]]:
    log = [json.loads(x) for x in (trial_dir / "log.jsonl").read_text().splitlines()]
    return (
        [e["loss"] for e in log if e["kind"] == "train"],
        [e["eval_loss"] for e in log if e["kind"] == "eval"],
    )


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_processes_equal_one_with_same_global_batch(unit_manifest: Path, tmp_path: Path):
    model = {"arch": "lstm", "n_embd": 32, "hidden": 32, "n_layer": 1, "dropout": 0.0}
    one = tiny_trial(unit_manifest, model=model, grad_accum=4, max_steps=8)
    two = tiny_trial(unit_manifest, model=model, grad_accum=2, max_steps=8)
    for name, trial in (("one", one), ("two", two)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(trial))
    _run([PYTHON, SCRIPT, str(tmp_path / "one" / "config.json")])
    _run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          SCRIPT, str(tmp_path / "two" / "config.json")])  # fmt: skip

    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    train1, eval1 = _losses(tmp_path / "one")
    train2, eval2 = _losses(tmp_path / "two")
    assert train1 == pytest.approx(train2, rel=1e-5)
    assert eval1 == pytest.approx(eval2, rel=1e-5)
    s1 = load_checkpoint(tmp_path / "one" / "model.pt")["model"]
    s2 = load_checkpoint(tmp_path / "two" / "model.pt")["model"]
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=1e-4, atol=1e-6)
    # rank 1 wrote nothing of its own: one set of outputs (one TensorBoard events file)
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one")


def _outputs(trial_dir: Path) -> list[str]:
    """The trial's file names, the TensorBoard events file (named by time, host, pid) as one."""
    return sorted(
        "events" if p.name.startswith("events.out.tfevents.") else p.name
        for p in trial_dir.iterdir()
    )
