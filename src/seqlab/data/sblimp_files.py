"""sBLIMP gold files in the ZeroSpeech 2021 syntactic layout.

gold.csv: id, filename, voice, type, subtype, correct (1 grammatical, 0 not), transcription,
the official column order (columns are read by name). Submission files (`filename score` per
line, `syntactic/{dev,test}.txt` in a submission) are the lexical task's format:
`seqlab.data.swuggy_files.write_submission` / `read_submission`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seqlab.data.swuggy_files import read_gold_csv
from seqlab.files import atomic_write

GOLD_COLUMNS = ("id", "filename", "voice", "type", "subtype", "correct", "transcription")


def read_gold(path: str | Path) -> pd.DataFrame:
    """gold.csv as a DataFrame; a missing column, bad `correct` or duplicate filename fails."""
    text = ("filename", "voice", "type", "subtype", "transcription")
    return read_gold_csv(
        path, GOLD_COLUMNS, "syntactic", ("grammatical", "ungrammatical"), text, False
    )


def write_gold(path: str | Path, gold: pd.DataFrame) -> Path:
    """Write gold.csv with the ZR2021 syntactic column order."""
    return atomic_write(path, lambda tmp: gold[list(GOLD_COLUMNS)].to_csv(tmp, index=False))


def toolkit_pairing_agrees(gold: pd.DataFrame) -> list[str]:
    """Rows where the official scorer's pairing (k-th correct row with k-th incorrect row, in
    file order) differs from the (type, subtype, id, voice) pairing: empty when they agree."""
    key = ["type", "subtype", "id", "voice"]
    s = gold[gold["correct"] == 1][key].reset_index(drop=True)
    ns = gold[gold["correct"] == 0][key].reset_index(drop=True)
    n = min(len(s), len(ns))
    differ = (s[:n].astype(str) != ns[:n].astype(str)).any(axis=1)
    return [
        f"correct row {k + 1} ({', '.join(map(str, s.iloc[k]))}) would be paired with incorrect "
        f"row {k + 1} ({', '.join(map(str, ns.iloc[k]))})"
        for k in differ[differ].index
    ]
