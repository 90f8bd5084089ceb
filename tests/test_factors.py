"""The factor table (seqlab.report.factors) on planted designs: factorial, confounded,
one-factor-at-a-time, unpaired; and on the real default `lstm_optim` study (slow)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import PYTHON, ROOT

from seqlab.report.factors import factor_table, fmt_level, mean_ci, t975, welch

BASELINE = 5.16


def trials_of(design: dict[str, dict], seeds, outcome) -> list[dict]:
    """Trial records for runs {run: levels}; `outcome(levels, seed) -> loss`."""
    out = []
    for run, levels in design.items():
        for seed in seeds:
            loss = outcome(levels, seed)
            out.append({"run": run, "seed": seed, "levels": levels,
                        "plateau": loss >= BASELINE - 0.5, "loss": loss})  # fmt: skip
    return out


def by_key(table: dict) -> dict[str, dict]:
    return {f["key"]: f for f in table["factors"]}


FACTORIAL = {
    f"{name}-{lr}": {"optim.name": name, "optim.lr": lr}
    for name in ("adam", "adamw")
    for lr in (1e-2, 5e-4)
}


def lstm_like(levels: dict, seed: int) -> float:
    """lr 5e-4 sits on the unigram entropy; 1e-2 converges; the optimizer does nothing."""
    return 5.18 + 0.01 * seed if levels["optim.lr"] == 5e-4 else 3.6 + 0.2 * seed


def test_factorial_lr_decides_optimizer_does_not() -> None:
    table = factor_table(trials_of(FACTORIAL, [0, 1, 2], lstm_like), ["optim.name", "optim.lr"])
    assert table["design"]["factorial"] and table["design"]["n_cells"] == 4
    lr, name = by_key(table)["optim.lr"], by_key(table)["optim.name"]
    assert lr["exact"] and not lr["confounded"] and lr["levels"] == ["5e-4", "1e-2"]
    small, big = lr["rows"]
    assert (small["plateau"]["seeds_all"], small["plateau"]["n_seeds"]) == (3, 3)
    assert (big["plateau"]["seeds_none"], big["plateau"]["trials"]) == (3, 0)
    assert (small["plateau"]["trials"], small["plateau"]["n_trials"]) == (6, 6)
    assert lr["verdict"]["kind"] == "decides_plateau"
    assert lr["verdict"]["text"] == (
        "optim.lr decides the plateau: 5e-4 plateaus on 3/3 seeds, 1e-2 on 0/3 seeds"
    )
    # marginal means are exact: mean over the other key's cells, then over seeds
    assert small["loss"]["mean"] == pytest.approx(5.19)
    d = big["vs_first"]["loss"]
    assert d["paired"] and d["per_seed"][1] == pytest.approx(3.8 - 5.19)
    assert name["verdict"] == {
        "key": "optim.name",
        "kind": "no_difference",
        "text": "optim.name makes no difference: adam = adamw on all 3 seeds",
    }


def test_loss_effect_ci_is_paired_by_seed() -> None:
    """Seed noise is large but shared: pairing by seed finds a small, consistent effect."""
    design = {"a": {"model.dropout": 0.0}, "b": {"model.dropout": 0.1}}
    shift = {0: 0.0, 1: 1.0, 2: -1.0, 3: 0.5}

    def outcome(levels: dict, seed: int) -> float:
        return 3.0 + shift[seed] + (0.05 + 0.001 * seed if levels["model.dropout"] else 0.0)

    f = factor_table(trials_of(design, [0, 1, 2, 3], outcome), ["model.dropout"])["factors"][0]
    d = f["rows"][1]["vs_first"]["loss"]
    diffs = np.array([0.05, 0.051, 0.052, 0.053])
    half = t975(3) * diffs.std(ddof=1) / 2
    assert d["mean"] == pytest.approx(diffs.mean())
    assert d["ci"] == pytest.approx([diffs.mean() - half, diffs.mean() + half])
    assert d["same_sign"] and f["verdict"]["kind"] == "changes_loss"
    assert "0.1 − 0 = +0.051 [+0.049, +0.054] nats (95% CI, paired by seed)" in f["verdict"]["text"]
    # the unpaired (Welch) interval on the same numbers is wide enough to include 0
    w = welch([outcome(design["b"], s) for s in shift], [outcome(design["a"], s) for s in shift])
    assert w["ci"][0] < 0 < w["ci"][1]


def test_confounded_keys_are_flagged_not_judged() -> None:
    """The hand-run LSTM study's AdamW runs: adamw always came with another lr and betas."""
    design = {
        "adam": {"optim.name": "adam", "optim.lr": 1e-2, "optim.betas": [0.9, 0.99]},
        "adamw": {"optim.name": "adamw", "optim.lr": 5e-4, "optim.betas": [0.9, 0.98]},
    }
    table = factor_table(trials_of(design, [0, 1, 2], lstm_like), list(design["adam"]))
    assert table["design"]["factors"] == ["optim.name + optim.lr + optim.betas"]
    (f,) = table["factors"]
    assert f["confounded"] and f["confounded_with"] == ["optim.lr", "optim.betas"]
    assert f["verdict"]["kind"] == "confounded"
    assert f["verdict"]["text"].startswith(
        "optim.name cannot be judged apart from optim.lr, optim.betas: they always change together"
    )
    assert f["levels"] == ["adam + 1e-2 + 0.9/0.99", "adamw + 5e-4 + 0.9/0.98"]


def test_partly_confounded_design_without_common_cells() -> None:
    """name never meets the same lr: no cell holds the lr fixed, so name is not judged."""
    design = {
        "r1": {"optim.name": "adam", "optim.lr": 1e-2, "grad_clip": 5.0},
        "r2": {"optim.name": "adamw", "optim.lr": 5e-4, "grad_clip": 5.0},
        "r3": {"optim.name": "adamw", "optim.lr": 1e-3, "grad_clip": 0.0},
    }
    table = factor_table(trials_of(design, [0, 1], lstm_like), list(design["r1"]))
    assert not table["design"]["factorial"]
    name = by_key(table)["optim.name"]
    assert not name["exact"] and name["confounded"] and "optim.lr" in name["confounded_with"]
    assert name["verdict"]["kind"] == "confounded" and "optim.lr" in name["verdict"]["text"]


def test_one_factor_at_a_time_compares_at_the_base_point() -> None:
    """OAT variants: each key is judged against the base run only (its common cell)."""
    design = {
        "best": {"optim.name": "adam", "optim.lr": 1e-2},
        "adamw": {"optim.name": "adamw", "optim.lr": 1e-2},
        "lr_5e-4": {"optim.name": "adam", "optim.lr": 5e-4},
    }
    table = factor_table(trials_of(design, [0, 1, 2], lstm_like), ["optim.name", "optim.lr"])
    name, lr = by_key(table)["optim.name"], by_key(table)["optim.lr"]
    assert name["exact"] and name["common_cells"] == 1 and not name["confounded"]
    assert name["rows"][0]["n_cells"] == 1  # adam's lr-5e-4 run is not in the comparison
    assert name["verdict"]["kind"] == "no_difference"
    assert lr["verdict"]["kind"] == "decides_plateau"


def test_unpaired_seeds_use_welch() -> None:
    """Levels run on different seeds: no pairing, the interval is Welch's."""
    a = trials_of({"a": {"optim.lr": 1e-2}}, [0, 1, 2], lambda lv, s: 3.0 + 0.1 * s)
    b = trials_of({"b": {"optim.lr": 1e-3}}, [3, 4, 5], lambda lv, s: 3.5 + 0.1 * (s - 3))
    f = factor_table(a + b, ["optim.lr"])["factors"][0]
    d = f["rows"][1]["vs_first"]["loss"]
    assert not d["paired"] and d["per_seed"] == {}
    assert d["mean"] == pytest.approx(-0.5)
    assert d["ci"] == pytest.approx(welch([3.0, 3.1, 3.2], [3.5, 3.6, 3.7])["ci"])
    assert "unpaired" in f["verdict"]["text"]


def test_small_helpers() -> None:
    assert fmt_level(5e-4) == "5e-4" and fmt_level(0.01) == "1e-2" and fmt_level(0.1) == "0.1"
    assert fmt_level([0.9, 0.999]) == "0.9/0.999" and fmt_level("adamw") == "adamw"
    assert mean_ci([1.0]) == {"mean": 1.0, "ci": None, "n": 1}
    assert mean_ci([float("nan"), 2.0, 4.0])["n"] == 2 and t975(2) == pytest.approx(4.303)


@pytest.mark.slow
def test_default_lstm_optim_study_factor_table(tmp_path: Path) -> None:
    """A real snakemake run of the default config's lstm_optim study, in a temp copy."""
    work = tmp_path / "project"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(
        ".venv", ".git", "results", ".snakemake", "test-artifacts", "__pycache__"))  # fmt: skip
    cmd = [PYTHON, "-m", "snakemake", "--cores", "2", "results/lstm_optim/final.json"]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((work / "results/lstm_optim/final.json").read_text())
    factors = {f["key"]: f for f in final["factors"]["factors"]}
    assert final["factors"]["design"]["factorial"]
    lr = factors["optim.lr"]
    assert lr["verdict"]["kind"] == "decides_plateau"
    rows = {r["label"]: r["plateau"] for r in lr["rows"]}
    assert (rows["5e-4"]["seeds_all"], rows["5e-4"]["n_seeds"]) == (3, 3)
    assert (rows["1e-2"]["seeds_all"], rows["1e-2"]["seeds_none"]) == (0, 3)
    assert factors["optim.name"]["verdict"]["kind"] == "no_difference"
    texts = [v["text"] for v in final["factors"]["verdicts"]]
    assert "optim.name makes no difference: adam = adamw on all 3 seeds" in texts
    ledger = (work / "results/lstm_optim/ledger.md").read_text()
    assert "optim.lr decides the plateau: 5e-4 plateaus on 3/3 seeds, 1e-2 on 0/3" in ledger
