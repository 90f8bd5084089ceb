"""A tiny real `snakemake` run of a precision study to results/lm/final.json (< 60 s)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml
from conftest import PYTHON, ROOT

MODES = ["fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive"]


def tiny_lm_config() -> dict:
    train = {
        "model": {"arch": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "block_size": 16,
                  "pad_vocab_multiple": 64},
        "optim": {"name": "adamw", "lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.1,
                  "decay_2d_only": True},
        "schedule": {"name": "cosine", "warmup": 1, "min_lr": 3e-4},
        "max_steps": 4, "batch_size": 4, "seq_len": 16, "grad_accum": 2, "grad_clip": 1.0,
        "precision": "fp32", "eval_interval": 2, "eval_batches": 2, "ckpt_interval": 2,
        "log_interval": 1, "milestones": [2], "guard": {"enabled": False},
    }  # fmt: skip
    return {
        "datasets": {"text": {"kind": "synthetic_text_bins", "seed": 2, "lexicon_size": 200,
                              "n_train_sentences": 200, "n_val_sentences": 20}},
        "experiments": {"lm": {"task": "text_lm", "dataset": "text", "seeds": [0],
                               "grid": {"precision": MODES}, "train": train,
                               "plateau": {"milestone": 2}}},
        "compare": {"lm_precision": {"kind": "precision", "experiments": ["lm"]}},
    }  # fmt: skip


def test_snakemake_precision_study(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_lm_config(), sort_keys=False))
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", "all"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = tmp_path / "results"
    final = json.loads((res / "lm" / "final.json").read_text())
    assert final["task"] == "text_lm" and final["n_trials"] == 5
    rows = {r["precision"]: r for r in final["precision"]["rows"]}
    assert set(rows) == set(MODES) and final["precision"]["baseline"] == "fp32"
    assert rows["fp32"]["throughput_ratio"] == 1.0 and rows["fp32"]["loss_delta"] == 0.0
    for r in rows.values():  # every mode ran (a ratio or a divergence flag) or says why not
        assert r["skipped"] == (r["skip_reason"] is not None)
        assert r["skipped"] or r["diverged"] or r["throughput_ratio"] > 0
    assert rows["fp16_naive"]["diverged"] or rows["fp16_naive"]["skipped"]
    table = pd.read_csv(res / "compare" / "lm_precision.csv")
    assert list(table["precision"]) == MODES
    assert (res / "lm" / "precision.csv").exists()
    html = (res / "report.html").read_text()
    assert "precision.svg" in html and 'id="compare-lm_precision"' in html
