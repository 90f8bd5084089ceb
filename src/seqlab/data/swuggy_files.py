"""sWUGGY set files in the ZeroSpeech 2021 lexical layout: gold.csv and submission files.

gold.csv: id, filename, voice, frequency, word, phones, length, correct (1 word, 0 nonword).
A submission file: `filename score` per line, the official format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from seqlab.errors import SeqlabError
from seqlab.files import atomic_write

GOLD_COLUMNS = ("id", "filename", "voice", "frequency", "word", "phones", "length", "correct")


def read_gold(path: str | Path) -> pd.DataFrame:
    """gold.csv as a DataFrame; a missing column, bad `correct` or duplicate filename fails."""
    gold = read_gold_csv(path, GOLD_COLUMNS, "lexical", ("word", "nonword"), ("filename", "voice"))
    return gold.astype({"frequency": pd.Int64Dtype()})


def read_gold_csv(
    path: str | Path,
    columns: tuple[str, ...],
    task: str,
    meaning: tuple[str, str],
    text: tuple[str, ...],
    empty_is_na: bool = True,
) -> pd.DataFrame:
    """A ZR2021 gold.csv (lexical or syntactic: `task`) read by column name, the `text` columns
    as strings (`empty_is_na`: an empty or "NA" cell is missing, as pandas reads it). A missing
    column, a `correct` other than 1 or 0 (`meaning`: what each says) or a duplicate filename
    is one line."""
    path = Path(path)
    if path.is_dir():
        path = path / "gold.csv"
    if not path.is_file():
        raise SeqlabError(f"{path}: gold file not found; point `gold` at the {task} dev/test dir")
    gold = pd.read_csv(path, header=0, dtype=dict.fromkeys(text, str), keep_default_na=empty_is_na)
    missing = [c for c in columns if c not in gold]
    if missing:
        raise SeqlabError(
            f"{path}: missing columns {missing}; a ZR2021 {task} gold.csv has {columns}"
        )
    bad = gold.index[~gold["correct"].isin([0, 1])]
    if len(bad):
        raise SeqlabError(
            f"{path}: row {bad[0] + 2} has correct={gold['correct'][bad[0]]!r}; "
            f"must be 1 ({meaning[0]}) or 0 ({meaning[1]})"
        )
    dup = gold["filename"][gold["filename"].duplicated()]
    if len(dup):
        raise SeqlabError(f"{path}: filename {dup.iloc[0]!r} appears twice; filenames are unique")
    return gold


def write_gold(path: str | Path, gold: pd.DataFrame) -> Path:
    """Write gold.csv with the ZR2021 column order."""
    return atomic_write(path, lambda tmp: gold[list(GOLD_COLUMNS)].to_csv(tmp, index=False))


def write_submission(path: str | Path, scores: Mapping[str, float]) -> Path:
    """The official submission file: `filename score` per line (repr: exact round trip)."""
    text = "".join(f"{name} {float(s)!r}\n" for name, s in scores.items())
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_submission(path: str | Path) -> dict[str, float]:
    """Parse a submission file; a malformed line or duplicate filename fails naming the line."""
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"{path}: submission file not found")
    out: dict[str, float] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.strip().split(" ")
        if len(fields) != 2:
            raise SeqlabError(f"{path}:{lineno}: must be '<filename> <score>', is {line!r}")
        try:
            score = float(fields[1])
        except ValueError:
            raise SeqlabError(f"{path}:{lineno}: score {fields[1]!r} is not a number") from None
        if fields[0] in out:
            raise SeqlabError(f"{path}:{lineno}: duplicate filename {fields[0]!r}")
        out[fields[0]] = score
    return out
