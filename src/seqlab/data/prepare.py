"""Prepare a dataset directory (its files + manifest.json) from its config block, all or nothing.

The files depend on the kind: a unit dataset has the packed token store (seqlab.data.store),
plus WebDataset shards when it is generated or ingested from shards (text ingest writes none);
token bins, neural features and sWUGGY sets have files of their own (seqlab.data.manifest).

The builder writes into a temp directory beside `out_dir`; only when it succeeded are its
entries renamed into `out_dir`, manifest.json last. A failed or killed prepare therefore never
leaves a half-built dataset that a later rule could mistake for a finished one, and files that
are not the builder's (a rule's log inside `out_dir`) survive a rebuild.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqlab.data.ingest import ingest_units_shards, ingest_units_text
from seqlab.data.neural import build_neural_npz, build_neural_pickle
from seqlab.data.sblimp_sets import build_sblimp_synthetic, ingest_sblimp_zerospeech
from seqlab.data.swuggy_sets import build_swuggy_synthetic, ingest_swuggy_zerospeech
from seqlab.data.synthetic_neural import build_neural_synthetic
from seqlab.data.synthetic_units import build_synthetic_units
from seqlab.data.token_bins import build_synthetic_text_bins, ingest_token_bins
from seqlab.errors import SeqlabError

Builder = Callable[[str, dict[str, Any], Path], dict]
BUILDERS: dict[str, Builder] = {
    "synthetic_units": build_synthetic_units,
    "units_text": ingest_units_text,
    "units_shards": ingest_units_shards,
    "synthetic_text_bins": build_synthetic_text_bins,
    "token_bins": ingest_token_bins,
    "neural_synthetic": build_neural_synthetic,
    "neural_pickle": build_neural_pickle,
    "neural_npz": build_neural_npz,
    "swuggy_synthetic": build_swuggy_synthetic,
    "swuggy_zerospeech": ingest_swuggy_zerospeech,
    "sblimp_synthetic": build_sblimp_synthetic,
    "sblimp_zerospeech": ingest_sblimp_zerospeech,
}


def prepare_dataset(name: str, cfg: dict[str, Any], out_dir: str | Path) -> dict:
    """Build dataset `name` from its config block (`kind` + params) into `out_dir`."""
    kind = cfg.get("kind")
    if kind not in BUILDERS:
        raise SeqlabError(
            f"dataset {name!r}: unknown kind {kind!r}; known kinds: {', '.join(BUILDERS)}"
        )
    params = {k: v for k, v in cfg.items() if k != "kind"}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        manifest = BUILDERS[kind](name, params, tmp)
        _commit(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def describe(manifest: dict[str, Any]) -> list[str]:
    """One line per split with the counts its kind records (utterances/units, tokens,
    trials/frames): each manifest kind keeps its own meaningful fields, no placeholders."""
    names = ("n_samples", "n_units", "n_tokens", "n_trials", "n_frames", "n_phonemes")
    return [
        f"{split}: " + ", ".join(f"{info[k]:,} {k[2:]}" for k in names if k in info)
        for split, info in manifest.get("splits", {}).items()
    ]


def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the built entries into `out_dir`, manifest.json last (it marks a finished dataset).

    The old manifest goes first, so an interruption leaves no manifest rather than a stale one;
    other files in `out_dir` (a rule's log, checks.json) are left alone.
    """
    out_dir.mkdir(exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    for entry in sorted(tmp.iterdir(), key=lambda e: e.name == "manifest.json"):
        dst = out_dir / entry.name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif dst.exists() or dst.is_symlink():
            dst.unlink()
        os.replace(entry, dst)
