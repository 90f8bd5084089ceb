"""Real snakemake: a dataset's `checks:` thresholds reach only its checks rule, for every kind.

Tuning a check (even `max_listed`, a reporting knob) used to rebuild the dataset and retrain
every trial downstream. Now prepare gets the dataset block without `checks:`, and training and
summaries take checks.json as a gate (`ancient`): a retuned check that passes reruns itself only.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import PYTHON, ROOT, TINY_DATASET, TINY_TRAIN, markov_utterances
from test_neural import TINY_SYNTH, baseline_pickle

from seqlab.data.ingest import write_units_text
from seqlab.data.prepare import prepare_dataset
from seqlab.data.shards import write_shards
from seqlab.data.token_bins import write_bin


def sources(src: Path) -> dict[str, dict]:
    """One dataset of every kind that has check thresholds (the sWUGGY kinds have none); the
    real-data kinds read small files made here."""
    write_units_text(src / "units.txt", ((u.key, u.units) for u in markov_utterances(80, 1)))
    write_shards(markov_utterances(60, 2, prefix="t"), src / "sh", "train", 32)
    write_shards(markov_utterances(20, 3, prefix="e"), src / "sh", "eval", 32)
    (src / "bins").mkdir()
    write_bin(src / "bins" / "train.bin", np.arange(6000) % 200)
    write_bin(src / "bins" / "val.bin", np.arange(600) % 200)
    prepare_dataset("npz", {"kind": "neural_synthetic", **TINY_SYNTH}, src / "npz")
    baseline_pickle(src / "b.pkl")
    return {
        "syn": dict(TINY_DATASET),  # a copy: the test retunes its checks
        "txt": {"kind": "units_text", "train": str(src / "units.txt"), "vocab_size": 64},
        "shards": {
            "kind": "units_shards",
            "train": str(src / "sh" / "shards" / "train-*.tar"),
            "eval": str(src / "sh" / "shards" / "eval-*.tar"),
            "vocab_size": 64,
        },  # fmt: skip
        "tbins": {
            "kind": "synthetic_text_bins",
            "seed": 1,
            "lexicon_size": 200,
            "n_train_sentences": 300,
            "n_val_sentences": 30,
        },  # fmt: skip
        "bins": {"kind": "token_bins", "path": str(src / "bins"), "vocab_size": 257},
        "neural": {"kind": "neural_synthetic", **TINY_SYNTH, "checks": {"kernel_len": 8}},
        "npz": {"kind": "neural_npz", "path": str(src / "npz"), "checks": {"kernel_len": 8}},
        "pkl": {
            "kind": "neural_pickle",
            "path": str(src / "b.pkl"),
            "trusted": True,
            "checks": {"kernel_len": 8},
        },  # fmt: skip
    }


def snakemake(work: Path, targets: list[str], *args: str) -> str:
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", "2", *args, *targets]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def jobs(out: str) -> dict[str, int]:
    """The dry run's job table: {rule: count}."""
    table = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow  # ~1.5 min of CPU: 9 datasets prepared and checked, one trial
def test_a_check_threshold_reruns_only_that_datasets_checks(tmp_path: Path) -> None:
    datasets = sources(tmp_path / "src")
    cfg = {"datasets": datasets,
           "experiments": {"a": {"dataset": "syn", "train": TINY_TRAIN}}}  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    trial = "results/a/runs/base/seed0/metrics.json"
    targets = [f"results/data/{d}/checks.json" for d in datasets] + [trial]
    snakemake(work, targets)
    tunable = list(datasets)
    for d in tunable:  # a reporting knob of every dataset with thresholds
        datasets[d]["checks"] = {**datasets[d].get("checks", {}), "max_listed": 7}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, targets, "-n")
    assert jobs(out) == {"check_data": len(tunable)}, out
    for d in tunable:
        assert f"dataset={d}" in out
    datasets["syn"]["checks"]["max_listed"] = 8  # one dataset retuned, for real
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    before = (work / trial).stat().st_mtime_ns
    out = snakemake(work, ["results/data/syn/checks.json", trial])
    assert "rule check_data:" in out and "rule train:" not in out
    assert "rule prepare_data:" not in out and (work / trial).stat().st_mtime_ns == before
