"""The precision study's verdict: every mode relative to fp32, from the trials' own metrics.

One row per (setting, precision), settings being every other override of the run (so a grid of
precision x something compares each mode with the fp32 run of the same something). Means over
seeds; a diverged seed has no final loss, so the loss delta averages the finished seeds.

columns: precision, n_seeds, n_diverged, n_skipped, diverged, skipped, skip_reason,
tokens_per_s, ms_per_iter, peak_mem_mb, peak_mem_kind, final_eval_loss, mfu,
throughput_ratio (tok/s / fp32's), memory_ratio (peak / fp32's), loss_delta (loss - fp32's),
optim_state_dtypes, settings.

Read the memory column by its kind: on CUDA it is torch's max allocated (tensors only); on CPU
it is the process's peak RSS, dominated by the Python + torch runtime, so its ratios say
little about the precision itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seqlab.files import atomic_write, jsonable
from seqlab.report.style import save_svg, styled
from seqlab.report.summary import load_trials

MODES = ("fp32", "amp_bf16", "bf16_pure", "amp_fp16", "fp16_naive")
BASELINE = "fp32"
NUMERIC = ("tokens_per_s", "ms_per_iter", "peak_mem_mb", "final_eval_loss", "mfu")


def _mean(values: pd.Series) -> float:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else math.nan


def _first(rows: pd.DataFrame, col: str) -> Any:
    vals = rows[col].dropna().astype(str).unique() if col in rows else []
    return "; ".join(sorted(vals)) if len(vals) else None


def precision_table(df: pd.DataFrame) -> pd.DataFrame:
    """summary.csv rows (one per trial) -> one row per (settings, precision) with ratios."""
    if "cfg.precision" not in df:
        return pd.DataFrame()
    df = df.copy()
    df["_settings"] = (
        df["overrides"]
        .fillna("{}")
        .map(
            lambda o: json.dumps(
                {k: v for k, v in json.loads(o).items() if k != "precision"}, sort_keys=True
            )
        )
    )
    rows = []
    for (exp, settings, mode), g in df.groupby(["experiment", "_settings", "cfg.precision"]):
        stop = g.get("stop_reason", pd.Series(dtype=object)).astype(str)
        row: dict[str, Any] = {
            "experiment": exp,
            "precision": mode,
            "settings": settings,
            "n_seeds": len(g),
            "n_diverged": int((stop == "diverged").sum()),
            "n_skipped": int((stop == "unsupported").sum()),
            "skip_reason": _first(g, "skip_reason"),
            "peak_mem_kind": _first(g, "peak_mem_kind"),
            "optim_state_dtypes": _first(g, "optim_state_dtypes"),
        }
        row["diverged"] = row["n_diverged"] > 0
        row["skipped"] = row["n_skipped"] == len(g)
        ok = g[~stop.isin(["unsupported"])]
        row.update({c: _mean(ok[c]) if c in ok else math.nan for c in NUMERIC})
        rows.append(row)
    table = pd.DataFrame.from_records(rows)
    for col in ("throughput_ratio", "memory_ratio", "loss_delta"):
        table[col] = math.nan
    for (_, _), g in table.groupby(["experiment", "settings"]):
        base = g[g["precision"] == BASELINE]
        if base.empty:
            continue
        b = base.iloc[0]
        table.loc[g.index, "throughput_ratio"] = g["tokens_per_s"] / b["tokens_per_s"]
        table.loc[g.index, "memory_ratio"] = g["peak_mem_mb"] / b["peak_mem_mb"]
        table.loc[g.index, "loss_delta"] = g["final_eval_loss"] - b["final_eval_loss"]
    order = {m: i for i, m in enumerate(MODES)}
    table["_o"] = table["precision"].map(lambda m: order.get(m, len(order)))
    table = table.sort_values(["experiment", "settings", "_o"], ignore_index=True)
    cols = [
        "experiment",
        "precision",
        "n_seeds",
        "throughput_ratio",
        "memory_ratio",
        "loss_delta",
        "diverged",
        "skipped",
        "skip_reason",
        "tokens_per_s",
        "ms_per_iter",
        "peak_mem_mb",
        "peak_mem_kind",
        "final_eval_loss",
        "mfu",
        "n_diverged",
        "n_skipped",
        "optim_state_dtypes",
        "settings",
    ]
    return table[cols]


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN -> None) for final.json's `precision` entry."""
    return jsonable(table.to_dict(orient="records"))


#: the columns printed for a person (lm.py, benchmarks/precision.py): the CSV keeps them all
TEXT_COLUMNS = (
    "precision",
    "n_seeds",
    "tokens_per_s",
    "ms_per_iter",
    "peak_mem_mb",
    "peak_mem_kind",
    "mfu",
    "final_eval_loss",
    "throughput_ratio",
    "memory_ratio",
    "loss_delta",
    "diverged",
    "skipped",
    "skip_reason",
)


def format_precision_table(table: pd.DataFrame) -> str:
    """The precision table as aligned text: the one rendering every command line prints."""
    if table.empty:
        return "no trials"
    cols = [c for c in TEXT_COLUMNS if c in table and table[c].notna().any()]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        return table[cols].to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.4g}")


def plot_precision(table: pd.DataFrame, out_svg: str | Path, title: str = "") -> Path:
    """Three panels per mode: throughput and memory relative to fp32, final eval loss delta.

    A diverged mode is marked 'diverged' (its loss has no bar), a skipped mode 'skipped'.
    """
    with styled():
        return save_svg(_precision_figure(table, title), out_svg)


def _precision_figure(table: pd.DataFrame, title: str) -> Figure:
    fig = Figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 3)
    labels = [
        f"{p}" if s == "{}" else f"{p}\n{s}"
        for p, s in zip(table["precision"], table["settings"], strict=True)
    ]
    x = np.arange(len(table))
    panels = (
        ("throughput_ratio", "tokens/s ÷ fp32", 1.0),
        ("memory_ratio", f"peak memory ÷ fp32 ({_first(table, 'peak_mem_kind')})", 1.0),
        ("loss_delta", "final eval loss − fp32 (nats)", 0.0),
    )
    for ax, (col, name, ref) in zip(axes, panels, strict=True):
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        colors = [
            "#c44" if d else "#888" if s else "#48a"
            for d, s in zip(table["diverged"], table["skipped"], strict=True)
        ]
        ax.bar(x, np.nan_to_num(vals, nan=0.0), color=colors)
        ax.axhline(ref, color="k", lw=0.8)
        for i, (v, d, s) in enumerate(zip(vals, table["diverged"], table["skipped"], strict=True)):
            note = "skipped" if s else "diverged" if d else "" if math.isfinite(v) else "n/a"
            if note:
                ax.text(i, ref, note, rotation=90, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def precision_of_trials(trial_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """The precision table straight from trial directories (for command lines without rules)."""
    return precision_table(load_trials(trial_dirs))


def write_precision(summary_csv: str | Path, out_csv: str | Path, out_svg: str | Path) -> Path:
    """summary.csv -> the precision table (CSV) and its plot (SVG)."""
    table = precision_table(pd.read_csv(summary_csv))
    atomic_write(out_csv, lambda tmp: table.to_csv(tmp, index=False))
    exp = table["experiment"].iloc[0] if len(table) else ""
    return plot_precision(table, out_svg, title=f"{exp}: precision modes relative to fp32")
