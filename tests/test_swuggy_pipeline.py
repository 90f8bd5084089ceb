"""A real `snakemake` run of a tiny config with sWUGGY: set, checks, scoring, summary, plot."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import PYTHON, ROOT
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

TRAIN = {
    "model": {"arch": "lstm", "n_embd": 16, "hidden": 16, "n_layer": 1, "dropout": 0.0},
    "optim": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99]},
    "schedule": {"name": "constant"},
    "max_steps": 6,
    "keep_steps": [3],
    "batch_size": 4,
    "seq_len": 32,
    "eval_interval": 3,
    "eval_batches": 2,
    "ckpt_interval": 3,
    "log_interval": 3,
    "milestones": [3],
}
CONFIG = {
    "datasets": {
        "w": {"kind": "synthetic_units", "seed": 1, "lexicon_size": 300,
              "n_train_utterances": 1500, "n_eval_utterances": 50},
        "sw": {"kind": "swuggy_synthetic", "world": "w", "n_items": 40, "n_seen_voices": 2,
               "n_heldout_voices": 2},
    },
    "experiments": {
        "a": {"dataset": "w", "seeds": [0], "train": TRAIN, "plateau": {"milestone": 3},
              "eval": {"swuggy": {"set": "sw", "checkpoints": ["last", 3]}}},
    },
}  # fmt: skip


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_tiny_run_scores_every_trial(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    proc = snakemake(tmp_path, "results/a/final.json", "results/a/plots/swuggy.svg")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trial = tmp_path / "results/a/runs/base/seed0"
    res = json.loads((trial / "swuggy.json").read_text())
    assert 0.0 <= res["lexical_all"] <= 1.0 and res["n_pairs"] == 40 * 4
    assert {"seen", "heldout"} <= set(res) and res["heldout"]["n_pairs"] == 80
    assert res["checkpoints"]["last"]["step"] == 6
    assert res["checkpoints"]["3"]["step"] == 3  # weights kept by train.keep_steps
    acc = EventAccumulator(str(trial), size_guidance={"scalars": 0})
    acc.Reload()  # sWUGGY over training steps, beside the loss curves in TensorBoard
    tb = {e.step: e.value for e in acc.Scalars("swuggy/lexical_all")}
    assert tb[3] == pytest.approx(res["checkpoints"]["3"]["lexical_all"], rel=1e-6)
    assert tb[res["step"]] == pytest.approx(res["lexical_all"], rel=1e-6)
    assert set(res["controls"]) == {"phoneme_bigram", "unit_unigram"}
    gold = pd.read_csv(tmp_path / "results/data/sw/gold.csv")
    lines = (trial / "swuggy/lexical/dev.txt").read_text().splitlines()
    assert sorted(ln.split(" ")[0] for ln in lines) == sorted(gold["filename"])
    assert (trial / "swuggy/last/lexical/dev.txt").exists()
    final = json.loads((tmp_path / "results/a/final.json").read_text())
    metrics = final["runs"]["base"]["metrics"]
    assert metrics["swuggy.lexical_all"]["mean"] == res["lexical_all"]
    assert "swuggy.controls.unit_unigram.lexical_all" in metrics
    assert "swuggy.heldout.lexical_all" in pd.read_csv(tmp_path / "results/a/summary.csv")
    assert "<svg" in (tmp_path / "results/a/plots/swuggy.svg").read_text()
    checks = json.loads((tmp_path / "results/data/sw/checks.json").read_text())
    assert checks["passed"] and "pairs_complete" in checks["checks"]


def test_bad_set_reference_fails_before_any_job(tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(CONFIG))
    cfg["experiments"]["a"]["eval"]["swuggy"]["set"] = "w"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(tmp_path, "-n", "results/a/final.json")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "experiments.a.eval.swuggy.set: 'w' is not a dataset of kind" in out
