"""SVG plots of an experiment: loss curves with a band over seeds, and per-run seed dots.

The style and deterministic saving are seqlab.report.style's (one place for every figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from seqlab.report.style import save_svg, seed_points, styled
from seqlab.report.summary import load_curves


def plot_loss_curves(
    df: pd.DataFrame,
    out_svg: str | Path,
    metric: str = "loss",
    baseline: float | None = None,
    band: str = "minmax",
    log_y: bool = False,
    title: str | None = None,
) -> Path:
    """One line per run: mean over seeds vs step, with a min–max (or ±std) band over seeds.

    `df` is a summary (load_trials); the curves are read from each trial's log.jsonl. `metric`
    is ``loss`` (train records) or ``eval_loss`` (eval records). `baseline` (the unigram
    entropy) is drawn dashed: a curve that stays on it is the seeds' plateau.
    """
    if band not in ("minmax", "std"):
        raise ValueError(f"band must be 'minmax' or 'std', not {band!r}")
    kind = "train" if metric == "loss" else "eval"
    curves = load_curves(df)
    with styled():
        fig = Figure(figsize=(7, 4.2))
        ax = fig.add_subplot()
        part = curves[curves["kind"] == kind] if len(curves) else curves
        for run, rows in part.groupby("run", sort=True):
            wide = rows.pivot_table(index="step", columns="seed", values=metric, aggfunc="last")
            wide = wide.sort_index()
            mean = wide.mean(axis=1)
            if band == "minmax":
                lo, hi = wide.min(axis=1), wide.max(axis=1)
            else:
                std = wide.std(axis=1, ddof=1).fillna(0.0)
                lo, hi = mean - std, mean + std
            (line,) = ax.plot(
                mean.index, mean.to_numpy(), lw=1.4, label=f"{run} (n={wide.shape[1]})"
            )
            ax.fill_between(
                mean.index, lo.to_numpy(), hi.to_numpy(), color=line.get_color(), alpha=0.2, lw=0
            )
        if baseline is not None:
            ax.axhline(
                baseline, color="0.3", ls="--", lw=1, label=f"unigram entropy {baseline:.2f} nats"
            )
        if log_y:
            ax.set_yscale("log")
        what = "min–max" if band == "minmax" else "±1 std"
        exp = ", ".join(sorted(map(str, df["experiment"].dropna().unique())))
        ax.set_title(title or f"{exp}: {metric}, mean over seeds (band: {what} over seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{metric} (nats)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
        fig.tight_layout()
        return save_svg(fig, out_svg)


def plot_seed_points(
    final: Mapping[str, Any], metric: str, out_svg: str | Path, title: str | None = None
) -> Path:
    """`metric` per run (ranking order, best first): a dot per seed, mean ± std; the axis fits
    the seeds' values, so their spread shows (bars from zero would hide it)."""
    runs = [r["run"] for r in final.get("ranking", [])] or sorted(final["runs"])
    values = [(final["runs"][r]["metrics"].get(metric) or {}).get("values", []) for r in runs]
    with styled():
        fig = Figure(figsize=(7, 1.2 + 0.4 * max(len(runs), 1)))
        ax = fig.add_subplot()
        seed_points(ax, runs, values)
        ax.set_xlabel(metric)
        ax.set_title(title or f"{final.get('experiment', '')}: {metric} per run (best first)")
        if runs:
            ax.legend(loc="best")
        fig.tight_layout()
        return save_svg(fig, out_svg)
