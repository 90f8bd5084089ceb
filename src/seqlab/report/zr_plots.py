"""The sWUGGY and sBLIMP plots of an experiment: accuracy per run (seed spread) and over
training steps.

Left: per run, the headline (lexical_all, syntactic_all) over all voices, seen and held-out
voices (a dot per seed, the mean ± std), with the set's controls (sWUGGY: phoneme-bigram
oracle, unit-unigram model; sBLIMP: unit-unigram and word-unigram models) and chance (0.5) as
vertical lines; a model is only credible right of them all. Right, when checkpoints were
scored (`eval.<benchmark>.checkpoints`): the headline against the checkpoint's training step,
all voices (solid) and held-out voices (dashed), one colour per run through the mean over seeds,
with the controls' held-out scores as dashed lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from seqlab.report.style import save_svg, seed_points, styled

#: benchmark -> (title, headline key, controls as (label, name, colour))
BENCHMARKS = {
    "swuggy": (
        "sWUGGY",
        "lexical_all",
        (("phoneme-bigram oracle", "phoneme_bigram", "C3"), ("unit unigram", "unit_unigram", "C4")),
    ),
    "sblimp": (
        "sBLIMP",
        "syntactic_all",
        (("unit unigram", "unit_unigram", "C4"), ("word unigram", "word_unigram", "C5")),
    ),
}


def _control(df: pd.DataFrame, bench: str, head: str, name: str) -> float | None:
    for col in (
        f"{bench}.controls.{name}.heldout.{head}",
        f"{bench}.controls.{name}.{head}",
    ):
        if col in df and df[col].notna().any():
            return float(df[col].dropna().iloc[0])
    return None


def _steps(df: pd.DataFrame, bench: str, head: str, group: str = "") -> pd.DataFrame:
    """Long table (run, seed, step, score): model.pt and every scored checkpoint; `group`
    "heldout." for the held-out voices' score."""
    pattern = rf"{bench}\.checkpoints\.(.+)\.step"
    labels = {m.group(1) for c in df if (m := re.fullmatch(pattern, c))}
    parts = [(f"{bench}.step", f"{bench}.{group}{head}")]
    parts += [
        (f"{bench}.checkpoints.{x}.step", f"{bench}.checkpoints.{x}.{group}{head}")
        for x in sorted(labels)
    ]
    rows = []
    for step_col, score_col in parts:
        if step_col in df and score_col in df:
            part = df[["run", "seed", step_col, score_col]].dropna()
            rows.append(part.set_axis(["run", "seed", "step", "score"], axis=1))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return out.drop_duplicates(["run", "seed", "step"]) if len(out) else out


def plot_zr(df: pd.DataFrame, bench: str, out_svg: str | Path, title: str | None = None) -> Path:
    """Write the plot of `bench` (swuggy or sblimp) from a summary (load_trials) that has its
    columns."""
    name, head, controls = BENCHMARKS[bench]
    steps = _steps(df, bench, head)
    held_steps = _steps(df, bench, head, "heldout.")
    over_steps = len(steps) and steps["step"].nunique() > 1
    groups = [
        (g, c)
        for g, c in (
            ("all voices", f"{bench}.{head}"),
            ("seen", f"{bench}.seen.{head}"),
            ("held-out", f"{bench}.heldout.{head}"),
        )
        if c in df and df[c].notna().any()
    ]
    runs = sorted(df["run"].unique())
    with styled():
        fig = Figure(
            figsize=(10 if over_steps else 7, 1.6 + 0.5 * len(runs) if not over_steps else 4.2)
        )
        axes = fig.subplots(1, 2 if over_steps else 1, squeeze=False)[0]
        ax = axes[0]
        step = 0.8 / max(1, len(groups))
        for j, (group, col) in enumerate(groups):  # dots per seed, one colour per voice group
            vals = [df.loc[df["run"] == run, col].dropna().tolist() for run in runs]
            seed_points(
                ax,
                runs,
                vals,
                color=f"C{j}",
                offset=(j - (len(groups) - 1) / 2) * step,
                label=group,
                mean_label=j == 0,
            )
        lines = [(label, _control(df, bench, head, c), color) for label, c, color in controls]
        lines = [(label, v, color) for label, v, color in lines if v is not None]
        for label, value, color in lines:
            ax.axvline(value, color=color, ls="--", lw=1, label=f"{label} {value:.3f}")
        ax.axvline(0.5, color="grey", ls=":", lw=1, label="chance")
        ax.set_xlabel(f"{name} {head} (dots: seeds)")
        ax.legend(loc="best")
        if over_steps:
            ax2 = axes[1]
            for j, (run, rows) in enumerate(steps.groupby("run", sort=True)):
                mean = rows.groupby("step")["score"].mean()
                ax2.plot(mean.index, mean.to_numpy(), "-o", ms=3, color=f"C{j}", label=str(run))
                ax2.plot(rows["step"], rows["score"], ".", color="k", ms=3)
                held = held_steps[held_steps["run"] == run] if len(held_steps) else held_steps
                if len(held):
                    hm = held.groupby("step")["score"].mean()
                    ax2.plot(hm.index, hm.to_numpy(), "--", color=f"C{j}", label=f"{run} held-out")
            for _, value, color in lines:
                ax2.axhline(value, color=color, ls="--", lw=1)
            ax2.axhline(0.5, color="grey", ls=":", lw=1)
            ax2.set_xlabel("training step of the scored checkpoint")
            ax2.set_ylabel(f"{head} (solid: all voices)")
            ax2.legend()
        fig.suptitle(title or name)
        fig.tight_layout()
        return save_svg(fig, out_svg)
