"""Trial logs as tables: a trial's log.jsonl as a DataFrame, the curves of many trials.

The records are read by seqlab.files.read_jsonl, the one reader of log.jsonl (a torn last
line, from a trial still writing or a job killed, is left out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqlab.files import read_jsonl


def log_frame(trial_dir: str | Path) -> pd.DataFrame:
    """log.jsonl as a DataFrame (kind and step columns always present)."""
    df = pd.DataFrame.from_records(read_jsonl(Path(trial_dir) / "log.jsonl"))
    for col in ("kind", "step"):
        if col not in df:
            df[col] = pd.Series(dtype=object if col == "kind" else float)
    return df


def load_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Train and eval records of every trial in `df`, long format, tagged with run and seed."""
    parts = []
    for _, row in df.iterrows():
        log = log_frame(row["trial_dir"])
        log = log[log["kind"].isin(["train", "eval"])].copy()
        for col in ("experiment", "run", "seed", "trial_dir"):
            log[col] = row[col]
        parts.append(log)
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for col in ("loss", "eval_loss"):
        if col not in curves:
            curves[col] = np.nan
    return curves
