"""A real `snakemake` run of a tiny config with sBLIMP beside sWUGGY: an LSTM scored on both
(model.pt and a kept step), a GPT-2 on sBLIMP; summary, final.json and plot."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import yaml
from conftest import PYTHON, ROOT

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
GPT2 = {"arch": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "block_size": 256}
SBLIMP = {"set": "sb", "checkpoints": [3]}
CONFIG = {
    "datasets": {
        "w": {
            "kind": "synthetic_units",
            "seed": 1,
            "lexicon_size": 300,
            "n_train_utterances": 1500,
            "n_eval_utterances": 50,
        },
        "sw": {"kind": "swuggy_synthetic", "world": "w", "n_items": 20, "n_seen_voices": 1},
        "sb": {
            "kind": "sblimp_synthetic",
            "world": "w",
            "n_per_type": 10,
            "min_pair_count": 3,
            "max_words": 3,
            "n_seen_voices": 2,
            "n_heldout_voices": 1,
        },
    },
    "experiments": {
        "a": {
            "dataset": "w",
            "train": TRAIN,
            "plateau": {"milestone": 3},
            "eval": {"swuggy": {"set": "sw"}, "sblimp": SBLIMP},
        },
        "g": {
            "dataset": "w",
            "train": {**TRAIN, "model": GPT2, "keep_steps": []},
            "plateau": {"milestone": 3},
            "eval": {"sblimp": {"set": "sb", "length_normalised": True}},
        },
    },
}


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work)]
    cmd += ["--configfile", str(work / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_lstm_and_gpt2_are_scored_beside_swuggy(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    targets = ["results/a/final.json", "results/a/plots/sblimp.svg", "results/g/final.json"]
    proc = snakemake(tmp_path, *targets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trial = tmp_path / "results/a/runs/base/seed0"
    res = json.loads((trial / "sblimp.json").read_text())
    assert res["convention"] == "sum_logprob" and res["n_pairs"] == 20 * 3
    assert res["heldout"]["n_pairs"] == 20 and set(res["by_type"]) == {
        "collocation_swap",
        "follower_replaced",
    }
    assert res["checkpoints"]["3"]["step"] == 3
    assert "syntactic_all" in res["checkpoints"]["3"]["mean_logprob"]
    assert set(res["controls"]) == {"unit_unigram", "word_unigram"}
    gold = pd.read_csv(tmp_path / "results/data/sb/gold.csv")
    for sub in ("sblimp/syntactic/dev.txt", "sblimp/mean_logprob/syntactic/dev.txt"):
        names = [ln.split(" ")[0] for ln in (trial / sub).read_text().splitlines()]
        assert sorted(names) == sorted(gold["filename"])
    swuggy = json.loads((trial / "swuggy.json").read_text())
    assert swuggy["convention"] == "sum_logprob" and "lexical_all" in swuggy["mean_logprob"]
    gpt = json.loads((tmp_path / "results/g/runs/base/seed0/sblimp.json").read_text())
    assert gpt["convention"] == "mean_logprob" and "syntactic_all" in gpt["sum_logprob"]
    final = json.loads((tmp_path / "results/a/final.json").read_text())
    metrics = final["runs"]["base"]["metrics"]
    assert metrics["sblimp.heldout.syntactic_all"]["mean"] == res["heldout"]["syntactic_all"]
    assert "sblimp.controls.word_unigram.heldout.syntactic_all" in metrics
    assert "<svg" in (tmp_path / "results/a/plots/sblimp.svg").read_text()
    checks = json.loads((tmp_path / "results/data/sb/checks.json").read_text())
    assert checks["passed"] and "toolkit_pairing" in checks["checks"]


def test_a_swuggy_set_is_no_sblimp_set(tmp_path: Path) -> None:
    cfg = json.loads(json.dumps(CONFIG))
    cfg["experiments"]["a"]["eval"]["sblimp"]["set"] = "sw"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(tmp_path, "-n", "results/a/final.json")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "experiments.a.eval.sblimp.set: 'sw' is not a dataset of kind" in out
