"""SVG plots of an experiment: loss curves with a band over seeds, and per-run seed dots.

The style and deterministic saving are seqlab.report.style's (one place for every figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seqlab.report.logs import load_curves
from seqlab.report.style import save_svg, seed_points, styled


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
    entropy) is drawn dashed: a curve that stays on it has plateaued.
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
    the per-seed values, so their spread shows (bars from zero would hide it).

    When the runs lie far apart (a plateaued run next to a converged one), a common axis would
    squash each run's seeds into one dot, so a right panel shows each seed's distance from
    its run's mean on a shared fine scale.
    """
    runs = [r["run"] for r in final.get("ranking", [])] or sorted(final["runs"])
    values = [(final["runs"][r]["metrics"].get(metric) or {}).get("values", []) for r in runs]
    finite = [np.asarray([v for v in vs if v is not None and np.isfinite(v)]) for vs in values]
    means = [x.mean() for x in finite if len(x)]
    spread = max((np.ptp(x) for x in finite if len(x) > 1), default=0.0)
    zoom = len(means) > 1 and spread > 0 and np.ptp(means) > 5 * spread
    with styled():
        fig = Figure(figsize=(9 if zoom else 7, 1.2 + 0.4 * max(len(runs), 1)))
        axes = fig.subplots(
            1, 2 if zoom else 1, sharey=True, squeeze=False, width_ratios=[3, 2] if zoom else [1]
        )[0]
        seed_points(axes[0], runs, values)
        axes[0].set_xlabel(metric)
        if zoom:
            centred = [(x - x.mean()).tolist() for x in finite]
            seed_points(axes[1], runs, centred, label=None, mean_label=False)
            axes[1].axvline(0.0, color="0.5", lw=0.8)
            axes[1].set_xlabel("seed − its run's mean")
        fig.suptitle(title or f"{final.get('experiment', '')}: {metric} per run (best first)")
        if runs:
            axes[0].legend(loc="best")
        fig.tight_layout()
        return save_svg(fig, out_svg)
