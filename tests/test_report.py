"""Reports from fake-but-realistic trial directories: summaries, verdicts, ledger, plots, HTML."""

from __future__ import annotations

import copy
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqlab.report import ledger, plots, summary

BASELINE = 5.16  # unigram entropy of the synthetic corpus, nats
BASE_TRAIN = {
    "model": {"arch": "lstm", "n_embd": 256, "hidden": 256, "n_layer": 2, "dropout": 0.0},
    "optim": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.0},
    "schedule": {"name": "constant", "warmup": 0},
    "batch_size": 32,
    "seq_len": 128,
    "grad_accum": 1,
    "grad_clip": 5.0,
    "max_steps": 60,
    "precision": "fp32",
    "eval_interval": 20,
    "milestones": [40, 100, 1000],
}


def converging(step: int, seed: int) -> float:
    return 1.8 + 3.7 * math.exp(-step / 8) + 0.02 * seed


def plateauing(step: int, seed: int) -> float:
    return 5.08 + 0.4 * math.exp(-step / 5) + 0.01 * seed


def set_dotted(cfg: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for p in parents:
        cfg = cfg.setdefault(p, {})
    cfg[last] = value


def make_trial(
    root: Path,
    exp: str,
    run: str,
    seed: int,
    overrides: dict,
    curve,
    steps: int = 60,
    events: tuple[dict, ...] = (),
    base: dict = BASE_TRAIN,
) -> Path:
    """Write config.json, log.jsonl and metrics.json the way the training loop does."""
    d = root / exp / "runs" / run / f"seed{seed}"
    d.mkdir(parents=True)
    train = copy.deepcopy(base)
    for k, v in overrides.items():
        set_dotted(train, k, v)
    data = {"dataset": "synth", "manifest": "results/data/synth/manifest.json", "checks": "x"}
    config = {"experiment": exp, "run": run, "seed": seed, "task": "unit_lm"}
    config |= {"overrides": overrides, "variant": None, "data": data, "train": train}
    (d / "config.json").write_text(json.dumps(config))
    lines, evals = [], {}
    for step in range(1, steps + 1):
        loss = curve(step, seed)
        lines.append({"kind": "train", "step": step, "loss": loss, "lr": 0.01, "gnorm": 1.0})
        if step % 20 == 0:
            evals[step] = loss + 0.05
            lines.append({"kind": "eval", "step": step, "eval_loss": evals[step]})
    lines += [{"kind": "event", **e} for e in events]
    (d / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    best_step = min(evals, key=evals.get) if evals else steps
    metrics = {
        "experiment": exp,
        "run": run,
        "seed": seed,
        "task": "unit_lm",
        "steps": steps,
        "max_steps": 60,
        "stop_reason": "max_steps" if steps == 60 else "early_stop",
        "final_eval_loss": evals[max(evals)] if evals else curve(steps, seed),
        "best_eval_loss": evals.get(best_step, curve(steps, seed)),
        "best_step": best_step,
        "eval_loss_at": {str(s): v for s, v in evals.items() if s in (40, 100)},
        "train_loss_at": {"40": curve(40, seed)} if steps >= 40 else {},
        "final_train_loss": curve(steps, seed),
        "tokens_per_s": 1000.0 + 10 * seed,
        "ms_per_iter": 12.0,
        "peak_mem_mb": 300.0,
        "peak_mem_kind": "cpu_peak_rss",
        "wall_s": 5.0,
        "params": 1_200_000,
        "n_skipped": sum(e["event"] == "skip_update" for e in events),
        "n_lr_cuts": sum(e["event"] == "lr_cut" for e in events),
        "n_rollbacks": 0,
        "device": "cpu",
        "versions": {"seqlab": "0.1.0", "torch": "2.13.0", "python": "3.11", "git": "abc123"},
        "data": {"dataset": "synth", "manifest_sha256": "f00d"},
        "model_path": "model.pt",
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


@pytest.fixture()
def lstm_trials(tmp_path: Path) -> list[Path]:
    """2 runs x 3 seeds: lr 1e-2 converges; lr 5e-4 plateaus (seed 2 stops before step 40)."""
    dirs = []
    for seed in range(3):
        events = ({"step": 12, "event": "skip_update"},) if seed == 1 else ()
        dirs.append(
            make_trial(
                tmp_path,
                "lstm",
                "optim.lr~0.01",
                seed,
                {"optim.lr": 0.01},
                converging,
                events=events,
            )
        )
        dirs.append(
            make_trial(
                tmp_path,
                "lstm",
                "optim.lr~0.0005",
                seed,
                {"optim.lr": 0.0005},
                plateauing,
                steps=30 if seed == 2 else 60,
            )
        )
    return dirs


def test_summary_one_row_per_trial(lstm_trials: list[Path], tmp_path: Path) -> None:
    df = summary.load_trials(lstm_trials)
    assert len(df) == 6
    for col in (
        "experiment",
        "run",
        "seed",
        "optim.lr",
        "eval_loss@40",
        "train_loss@40",
        "best_eval_loss",
        "tokens_per_s",
        "versions.git",
        "cfg.model.arch",
        "trial_dir",
    ):
        assert col in df, col
    assert sorted(df["optim.lr"].unique()) == [0.0005, 0.01]
    out = summary.write_summary_csv(df, tmp_path / "summary.csv")
    back = pd.read_csv(out)
    assert len(back) == 6 and list(back.columns) == list(df.columns)
    assert "optim.lr" not in summary.metric_columns(df)


def lstm_final(trials: list[Path]) -> dict:
    df = summary.load_trials(trials)
    checks = {"unigram_entropy_nats": BASELINE}
    return summary.make_final(df, checks, {"milestone": 40, "margin": 0.5, "metric": "eval"})


def test_final_stats_plateau_ranking(lstm_trials: list[Path], tmp_path: Path) -> None:
    df = summary.load_trials(lstm_trials)
    final = lstm_final(lstm_trials)
    good, flat = final["runs"]["optim.lr~0.01"], final["runs"]["optim.lr~0.0005"]
    for run, info in final["runs"].items():
        rows = df[df["run"] == run].sort_values("seed")
        assert info["seeds"] == [0, 1, 2]
        for m in ("best_eval_loss", "tokens_per_s", "final_train_loss"):
            x = rows[m].to_numpy(float)
            assert info["metrics"][m]["mean"] == pytest.approx(np.mean(x))
            assert info["metrics"][m]["std"] == pytest.approx(np.std(x, ddof=1))
    assert good["plateau"]["rate"] == 0.0
    assert flat["plateau"]["rate"] == 1.0
    # seed 2 of the plateau run stopped at step 30: judged on its last logged eval loss
    fallback = flat["plateau"]["per_seed"][2]
    assert (fallback["source"], fallback["step"]) == ("last_logged", 20)
    assert flat["stop_reasons"] == {"max_steps": 2, "early_stop": 1}
    assert good["events"] == {"skip_update": 1} and good["stability"]["n_skipped"] == 1
    assert [r["run"] for r in final["ranking"]] == ["optim.lr~0.01", "optim.lr~0.0005"]
    assert final["best_run"] == "optim.lr~0.01" and final["best_seed"] == 0
    assert final["best_model_path"].endswith("optim.lr~0.01/seed0/model.pt")
    assert final["data"] == {"dataset": "synth", "manifest_sha256": "f00d"}
    assert final["code"]["git"] == "abc123"
    assert len(final["generated_from"]) == 6
    # higher-is-better ranking flips the order
    flipped = summary.make_final(df, None, rank_by="best_eval_loss", lower_is_better=False)
    assert flipped["best_run"] == "optim.lr~0.0005"
    assert flipped["runs"]["optim.lr~0.01"]["plateau"]["rate"] is None  # no baseline
    # written final.json is strict JSON and stable across reruns
    path = summary.write_final(final, tmp_path / "final.json")
    first = path.read_bytes()
    json.loads(first, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    summary.write_final(lstm_final(lstm_trials), path)
    assert path.read_bytes() == first


def test_missing_and_nan_metrics_do_not_crash(tmp_path: Path) -> None:
    d = make_trial(tmp_path, "lstm", "base", 0, {}, converging)
    make_trial(tmp_path, "lstm", "base", 1, {}, converging)
    metrics = json.loads((d / "metrics.json").read_text())
    for key in ("tokens_per_s", "eval_loss_at", "train_loss_at", "versions", "model_path"):
        del metrics[key]
    metrics |= {"final_eval_loss": float("nan"), "best_eval_loss": None, "stop_reason": "diverged"}
    (d / "metrics.json").write_text(json.dumps(metrics))
    with (d / "log.jsonl").open("a") as f:
        f.write('{"kind": "train", "step": 61, "loss": NaN}\n{"kind": "tra')  # torn last line
    df = summary.load_trials([d, d.parent / "seed1"])
    final = summary.make_final(df, {"unigram_entropy_nats": BASELINE})
    run = final["runs"]["base"]
    assert run["metrics"]["best_eval_loss"]["n"] == 1
    assert run["metrics"]["best_eval_loss"]["std"] is None  # one finite value: std unknown
    assert run["metrics"]["final_eval_loss"]["values"][0] is None
    assert run["stop_reasons"] == {"diverged": 1, "max_steps": 1}
    assert final["best_model_path"].endswith("seed1/model.pt")
    assert "n/a" not in ledger.render_ledger("lstm", final, BASE_TRAIN)
    assert "diverged" in ledger.render_ledger("lstm", final, BASE_TRAIN)
    plots.plot_loss_curves(df, tmp_path / "c.svg", metric="eval_loss", baseline=BASELINE)
    plots.plot_seed_points(final, "tokens_per_s", tmp_path / "b.svg")
    assert (tmp_path / "b.svg").read_text().startswith("<?xml")


def test_ledger_shows_changes_and_results(lstm_trials: list[Path], tmp_path: Path) -> None:
    final = lstm_final(lstm_trials)
    path = ledger.write_ledger("lstm", final, BASE_TRAIN, tmp_path / "ledger.md")
    text = path.read_text()
    assert "optim.lr: 0.01 → 0.0005" in text
    assert "optim.lr: 0.01 → 0.01" in text
    assert "plateaued" in text and "unstable" in text  # the skipped update is reported
    assert "skipped updates 1" in text and "early_stop ×1" in text
    assert "plateau rate: 100% (3/3 seeds)" in text
    # what mattered, computed from the grid (seqlab.report.factors)
    assert "- optim.lr decides the plateau: 5e-4 plateaus on 3/3 seeds, 1e-2 on 0/3 seeds" in text
    assert "| optim.lr | 5e-4 | 3/3 · 3/3 |" in text


def test_plots_are_valid_deterministic_svg(lstm_trials: list[Path], tmp_path: Path) -> None:
    df = summary.load_trials(lstm_trials)
    final = lstm_final(lstm_trials)
    made = []
    for i in range(2):
        curve = plots.plot_loss_curves(df, tmp_path / f"curves{i}.svg", baseline=BASELINE)
        bars = plots.plot_seed_points(final, "eval_loss@40", tmp_path / f"bars{i}.svg")
        made.append((curve.read_bytes(), bars.read_bytes()))
    assert made[0] == made[1]
    for svg in made[0]:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
    # text is drawn as paths; matplotlib keeps it in comments: baseline and band are labelled
    assert b"unigram entropy 5.16 nats" in made[0][0] and "min–max".encode() in made[0][0]
    with pytest.raises(ValueError):
        plots.plot_loss_curves(df, tmp_path / "x.svg", band="iqr")
