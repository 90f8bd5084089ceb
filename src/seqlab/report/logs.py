"""Trial logs: the one reader of log.jsonl (records, a DataFrame, curves of many trials).

log.jsonl is appended while a trial runs, so a reader may meet a torn last line; it is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """A JSON-lines file's records; a missing file or a torn last line (a job killed, or a
    trial still writing) is tolerated: the one reader of log.jsonl."""
    path = Path(path)
    records = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def read_log(trial_dir: str | Path) -> pd.DataFrame:
    """log.jsonl as a DataFrame (kind and step columns always present)."""
    df = pd.DataFrame.from_records(read_records(Path(trial_dir) / "log.jsonl"))
    for col in ("kind", "step"):
        if col not in df:
            df[col] = pd.Series(dtype=object if col == "kind" else float)
    return df


def load_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Train and eval records of every trial in `df`, long format, tagged with run and seed."""
    parts = []
    for _, row in df.iterrows():
        log = read_log(row["trial_dir"])
        log = log[log["kind"].isin(["train", "eval"])].copy()
        for col in ("experiment", "run", "seed", "trial_dir"):
            log[col] = row[col]
        parts.append(log)
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for col in ("loss", "eval_loss"):
        if col not in curves:
            curves[col] = np.nan
    return curves
