"""One plot style for every figure of the report, deterministic SVG saving, and the seed-dot
(strip) plot that every per-seed figure draws with.

Reruns on the same inputs give byte-identical files (fixed ``svg.hashsalt``, no Date metadata,
no pyplot global state), so Snakemake and git see no spurious changes. Per-seed values are
drawn as dots on an axis fitted to their spread, never as bars from zero: a spread of 0.007
over seeds must be visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from seqlab.files import atomic_write

STYLE = {
    "svg.hashsalt": "seqlab",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7,
    "legend.framealpha": 0.8,
}


def styled() -> AbstractContextManager:
    """The report's style; draw inside it (matplotlib reads rc params when artists are made)."""
    return mpl.rc_context(STYLE)


def save_svg(fig: Figure, out_svg: str | Path) -> Path:
    """Atomically write the figure as deterministic SVG."""
    with mpl.rc_context(STYLE):
        return atomic_write(
            out_svg, lambda tmp: fig.savefig(tmp, format="svg", metadata={"Date": None})
        )


def seed_points(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    color: str = "C0",
    offset: float = 0.0,
    label: str | None = "seed",
    mean_label: bool = True,
) -> None:
    """One row per label: a dot per seed, the mean as a bar-less tick with ±1 std whiskers.

    The x axis is left to autoscale on the dots (with a margin), so their spread shows.
    """
    for i, vals in enumerate(values):
        x = np.asarray([v for v in vals if v is not None and np.isfinite(v)], float)
        y = np.full(len(x), i + offset) + (np.linspace(-0.12, 0.12, len(x)) if len(x) > 1 else 0)
        ax.plot(x, y, "o", color=color, ms=4, alpha=0.8, label=label if i == 0 else None)
        if len(x):
            sd = x.std(ddof=1) if len(x) > 1 else 0.0
            ax.errorbar(
                x.mean(),
                i + offset,
                xerr=sd,
                fmt="|",
                color="k",
                ms=12,
                capsize=3,
                label="mean ± std" if i == 0 and mean_label else None,
            )
        else:
            ax.annotate(
                "no value",
                (0.01, i + offset),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=7,
            )
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.margins(x=0.15)
    ax.grid(axis="y", visible=False)
