"""Cross-experiment tables (results/compare/*.csv): LSTM vs GPT-2, Adam vs AdamW.

The hand-run LSTM study claimed that AdamW with weight_decay=0 trains differently from Adam.
With wd=0 the two updates are the same formula, so `compare_optimizers` pairs trials that
differ only in the optimizer name (same seed, same every other setting) and reports what the
logged curves show.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqlab.files import atomic_write
from seqlab.report.logs import load_curves


def fmt_mean_std(stats: Mapping[str, Any] | None, digits: int = 3) -> str:
    """'1.900 ± 0.070' (just the mean for one seed, '' when there is nothing)."""
    if not stats or stats.get("mean") is None:
        return ""
    if stats.get("std") is None:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def compare_experiments(
    finals: Mapping[str, Mapping[str, Any]],
    config_keys: Sequence[str] = ("model.arch", "optim.name", "optim.lr"),
    metrics: Sequence[str] = ("params", "eval_loss@40", "tokens_per_s"),
) -> pd.DataFrame:
    """One row per (experiment, run): settings, metric mean and std, `metric` as 'mean ± std'.

    Defaults give the hand-run study's table: params, lr, loss@40 mean ± std, plateau rate,
    tokens/s.
    """
    rows = []
    for exp, final in finals.items():
        for run, info in final["runs"].items():
            row: dict[str, Any] = {"experiment": exp, "run": run, "n_seeds": info["n_seeds"]}
            for key in config_keys:
                row[key] = info.get("config", {}).get(key, info.get("overrides", {}).get(key))
            for m in metrics:
                stats = info["metrics"].get(m) or {}
                row[f"{m} mean"] = stats.get("mean")
                row[f"{m} std"] = stats.get("std")
                row[m] = fmt_mean_std(stats)
            plateau = info.get("plateau", {})
            row["plateau_rate"] = plateau.get("rate")
            row["plateau_milestone"] = plateau.get("milestone")
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def _curve_diff(a: pd.DataFrame, b: pd.DataFrame, col: str) -> tuple[float, int]:
    """Max |a - b| of `col` over the steps both logged; inf when only one side is finite."""
    merged = pd.merge(
        a[["step", col]].dropna(subset=["step"]),
        b[["step", col]].dropna(subset=["step"]),
        on="step",
        suffixes=("_a", "_b"),
    )
    if merged.empty:
        return math.nan, 0
    x, y = merged[f"{col}_a"].to_numpy(float), merged[f"{col}_b"].to_numpy(float)
    both_nan = np.isnan(x) & np.isnan(y)
    diff = np.where(both_nan, 0.0, np.abs(x - y))
    return float(np.nan_to_num(diff, nan=np.inf).max()), len(merged)


def verdict(max_diff: float, tol: float) -> str:
    """'identical', 'within <tol>' or 'differs': what the data shows, in words."""
    if math.isnan(max_diff):
        return "no common steps"
    if max_diff == 0.0:
        return "identical"
    return f"within {tol:g}" if max_diff <= tol else "differs"


def compare_optimizers(
    df: pd.DataFrame,
    a: str = "adam",
    b: str = "adamw",
    key: str = "cfg.optim.name",
    tol: float = 1e-4,
) -> pd.DataFrame:
    """Pair trials of optimizer `a` and `b` with the same seed and every other setting.

    `df` is a summary (load_trials, possibly several experiments concatenated). Per pair: max
    absolute difference of the train and eval loss curves over common steps, of the final and
    best eval loss, and a verdict. Unpaired trials are left out.
    """
    cfg_cols = [c for c in df if c.startswith("cfg.") and c != key]
    norm = df.copy()
    norm["_settings"] = norm[cfg_cols].apply(
        lambda r: json.dumps({c: r[c] for c in cfg_cols}, sort_keys=True, default=str), axis=1
    )
    side_a, side_b = norm[norm[key] == a], norm[norm[key] == b]
    pairs = pd.merge(side_a, side_b, on=["_settings", "seed"], suffixes=("_a", "_b"))
    curves = load_curves(df) if len(pairs) else pd.DataFrame()
    rows = []
    for _, p in pairs.iterrows():
        ca = curves[curves["trial_dir"] == p["trial_dir_a"]]
        cb = curves[curves["trial_dir"] == p["trial_dir_b"]]
        d_train, n_train = _curve_diff(ca[ca["kind"] == "train"], cb[cb["kind"] == "train"], "loss")
        d_eval, _ = _curve_diff(ca[ca["kind"] == "eval"], cb[cb["kind"] == "eval"], "eval_loss")
        finals = {}
        for m in ("final_eval_loss", "best_eval_loss"):
            va, vb = (float(p.get(f"{m}_{s}", math.nan)) for s in "ab")
            finals[f"{m}_{a}"], finals[f"{m}_{b}"] = va, vb
            finals[f"{m} |diff|"] = abs(va - vb)
        worst = max(d for d in (d_train, d_eval) if not math.isnan(d)) if n_train else math.nan
        rows.append(
            {
                "experiment": p["experiment_a"],
                f"run_{a}": p["run_a"],
                f"run_{b}": p["run_b"],
                "seed": p["seed"],
                "lr": p.get("cfg.optim.lr_a"),
                "weight_decay": p.get("cfg.optim.weight_decay_a"),
                "steps_compared": n_train,
                "max |diff| train loss": d_train,
                "max |diff| eval loss": d_eval,
                **finals,
                "verdict": verdict(worst, tol),
            }
        )
    out = pd.DataFrame.from_records(rows)
    return out.sort_values(["experiment", f"run_{a}", "seed"], ignore_index=True) if rows else out


def write_compare_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Atomically write one comparison table."""
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
