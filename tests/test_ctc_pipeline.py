"""A real `snakemake` run of task ctc on a tiny config: synthetic neural data and a file in the
baseline's pickle layout, both through the same rules, to results/gru_ctc/final.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from test_ctc import TINY_SYNTH
from test_neural import baseline_pickle
from test_pipeline import snakemake, write_config

TRAIN = {
    "model": {
        "arch": "gru_ctc",
        "hidden": 16,
        "n_layer": 1,
        "bidirectional": False,
        "dropout": 0.0,
        "kernel_len": 8,
        "stride_len": 4,
    },
    "optim": {"name": "adam", "lr": 0.02, "eps": 0.1, "weight_decay": 1.0e-5},
    "schedule": {"name": "constant"},
    "augment": {"white_noise": 0.2, "constant_offset": 0.1},
    "max_steps": 6,
    "batch_size": 4,
    "eval_interval": 3,
    "ckpt_interval": 3,
    "log_interval": 2,
    "milestones": [3],
    "device": "cpu",
    "guard": {"gnorm_threshold": 10.0, "lr_cut": 0.8, "lr_floor": 5.0e-4, "max_cuts": 5},
}


def test_ctc_pipeline_to_final_json(tmp_path: Path) -> None:
    baseline_pickle(tmp_path / "ptDecoder_ctc")
    checks = {"kernel_len": 8, "stride_len": 4}
    cfg = {
        "datasets": {
            "neural_tiny": {**TINY_SYNTH, "checks": checks},
            "willett_tiny": {
                "kind": "neural_pickle",
                "path": str(tmp_path / "ptDecoder_ctc"),
                "trusted": True,
                "checks": checks,
            },
        },
        "experiments": {
            "gru_ctc": {
                "task": "ctc",
                "dataset": "neural_tiny",
                "seeds": [0, 1],
                "plateau": {"milestone": 3},
                "train": TRAIN,
            },
            "gru_ctc_pickle": {
                "task": "ctc",
                "dataset": "willett_tiny",
                "seeds": [0],
                "plateau": {"milestone": 3},
                "train": TRAIN,
            },
        },
    }
    write_config(tmp_path, cfg)
    snakemake(tmp_path, "results/gru_ctc/final.json", "results/gru_ctc_pickle/final.json")
    res = tmp_path / "results"
    final = json.loads((res / "gru_ctc" / "final.json").read_text())
    run = final["runs"]["base"]
    assert final["task"] == "ctc" and run["n_seeds"] == 2
    per = run["metrics"]["per.per"]
    assert per["n"] == 2 and len(per["values"]) == 2 and per["std"] is not None
    assert run["metrics"]["per.baseline.blank_per"]["mean"] == 1.0
    assert "per.per_day.day00" in run["metrics"] and "per.per_day.day01" in run["metrics"]
    for seed in (0, 1):
        trial = res / "gru_ctc" / "runs" / "base" / f"seed{seed}"
        p = json.loads((trial / "per.json").read_text())
        m = json.loads((trial / "metrics.json").read_text())
        assert p["per"] == m["best"] and p["model_step"] == m["best_step"]
    rows = list(csv.DictReader((res / "gru_ctc" / "summary.csv").open()))
    assert len(rows) == 2 and all(r["per.per"] for r in rows)
    pick = json.loads((res / "gru_ctc_pickle" / "final.json").read_text())
    assert pick["runs"]["base"]["metrics"]["per.per"]["n"] == 1
    man = json.loads((res / "data" / "willett_tiny" / "manifest.json").read_text())
    assert man["source"] == "neural_pickle" and man["n_features"] == 16
    assert "Nothing to be done" in snakemake(tmp_path, "-n", "results/gru_ctc/final.json").stdout
