"""SVG plots of an experiment: loss curves with a band over seeds, and per-run metric bars.

Reruns on the same inputs give byte-identical files (fixed ``svg.hashsalt``, no Date metadata,
no pyplot global state), so Snakemake and git see no spurious changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seqlab.io import atomic_write
from seqlab.report.summary import load_curves

RC = {"svg.hashsalt": "seqlab", "svg.fonttype": "path", "font.size": 9}


def _save(fig: Figure, out_svg: str | Path) -> Path:
    """Atomically write the figure as deterministic SVG."""
    with mpl.rc_context(RC):
        return atomic_write(
            out_svg, lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None})
        )


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
    with mpl.rc_context(RC):
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
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
    return _save(fig, out_svg)


def plot_metric_bars(
    final: Mapping[str, Any], metric: str, out_svg: str | Path, title: str | None = None
) -> Path:
    """Mean of `metric` per run (ranking order) as bars, ±1 std error bars, one dot per seed."""
    runs = [r["run"] for r in final.get("ranking", [])] or sorted(final["runs"])
    stats = [final["runs"][r]["metrics"].get(metric) or {} for r in runs]
    with mpl.rc_context(RC):
        fig = Figure(figsize=(7, 1.2 + 0.45 * max(len(runs), 1)))
        ax = fig.add_subplot()
        y = np.arange(len(runs))
        means = np.array([np.nan if s.get("mean") is None else s["mean"] for s in stats], float)
        stds = np.array([0.0 if s.get("std") is None else s["std"] for s in stats], float)
        ax.barh(
            y, np.nan_to_num(means), xerr=stds, color="C0", alpha=0.5, capsize=3, label="mean ± std"
        )
        for i, s in enumerate(stats):
            values = [v for v in s.get("values", []) if v is not None]
            if values:
                offsets = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else [0.0]
                ax.plot(
                    values,
                    i + np.asarray(offsets),
                    "o",
                    color="C1",
                    ms=3,
                    label="seeds" if i == 0 else None,
                )
            if np.isnan(means[i]):
                ax.text(0, i, " no value", va="center", fontsize=7)
        ax.set_yticks(y, runs, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(metric)
        ax.set_title(title or f"{final.get('experiment', '')}: {metric} per run (best first)")
        ax.grid(axis="x", alpha=0.3)
        if runs:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)
        fig.tight_layout()
    return _save(fig, out_svg)
