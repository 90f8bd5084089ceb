"""The sWUGGY plot of an experiment: accuracy per run (seed spread) and over training steps.

Left: per run, lexical_all over all voices, seen and held-out voices (a dot per seed, the mean
± std), with the set's controls (phoneme-bigram oracle, unit-unigram model) and chance (0.5)
as vertical lines; a model is only credible right of both. Right, when checkpoints were scored
(`eval.swuggy.checkpoints`): lexical_all against the checkpoint's training step, one line per
run through the seeds' mean.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from seqlab.report.style import save_svg, seed_points, styled

GROUPS = (
    ("all voices", "swuggy.lexical_all"),
    ("seen", "swuggy.seen.lexical_all"),
    ("held-out", "swuggy.heldout.lexical_all"),
)
CONTROLS = (
    ("phoneme-bigram oracle", "phoneme_bigram", "C3"),
    ("unit unigram", "unit_unigram", "C4"),
)


def _control(df: pd.DataFrame, name: str) -> float | None:
    for col in (
        f"swuggy.controls.{name}.heldout.lexical_all",
        f"swuggy.controls.{name}.lexical_all",
    ):
        if col in df and df[col].notna().any():
            return float(df[col].dropna().iloc[0])
    return None


def _steps(df: pd.DataFrame) -> pd.DataFrame:
    """Long table (run, seed, step, score): model.pt and every scored checkpoint."""
    labels = {m.group(1) for c in df if (m := re.fullmatch(r"swuggy\.checkpoints\.(.+)\.step", c))}
    parts = [("swuggy.step", "swuggy.lexical_all")]
    parts += [
        (f"swuggy.checkpoints.{x}.step", f"swuggy.checkpoints.{x}.lexical_all")
        for x in sorted(labels)
    ]
    rows = []
    for step_col, score_col in parts:
        if step_col in df and score_col in df:
            part = df[["run", "seed", step_col, score_col]].dropna()
            rows.append(part.set_axis(["run", "seed", "step", "score"], axis=1))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return out.drop_duplicates(["run", "seed", "step"]) if len(out) else out


def plot_swuggy(df: pd.DataFrame, out_svg: str | Path, title: str | None = None) -> Path:
    """Write the plot from a summary (load_trials) that has swuggy.* columns."""
    steps = _steps(df)
    over_steps = len(steps) and steps["step"].nunique() > 1
    groups = [(g, c) for g, c in GROUPS if c in df and df[c].notna().any()]
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
        for label, name, color in CONTROLS:
            value = _control(df, name)
            if value is not None:
                ax.axvline(value, color=color, ls="--", lw=1, label=f"{label} {value:.3f}")
        ax.axvline(0.5, color="grey", ls=":", lw=1, label="chance")
        ax.set_xlabel("sWUGGY lexical_all (dots: seeds)")
        ax.legend(loc="best")
        if over_steps:
            ax2 = axes[1]
            for run, rows in steps.groupby("run", sort=True):
                mean = rows.groupby("step")["score"].mean()
                ax2.plot(mean.index, mean.to_numpy(), "-o", ms=3, label=str(run))
                ax2.plot(rows["step"], rows["score"], ".", color="k", ms=3)
            ax2.axhline(0.5, color="grey", ls=":", lw=1)
            ax2.set_xlabel("training step of the scored checkpoint")
            ax2.set_ylabel("lexical_all (all voices)")
            ax2.legend()
        fig.suptitle(title or "sWUGGY")
        fig.tight_layout()
        return save_svg(fig, out_svg)
