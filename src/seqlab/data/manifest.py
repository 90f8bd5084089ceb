"""The dataset manifest (`manifest.json`): one layout, one writer per kind.

Every dataset directory has one, written last by prepare (it marks a finished dataset):

    {"dataset": name, "kind": ..., "splits": {split: {...counts of this kind...}},
     "params": {...how it was made...}, "seqlab_version": "...", ...kind fields...}

Counts are those the kind has, never placeholders: unit datasets `n_samples` (utterances)
and `n_units`; token bins `n_tokens` (tokens in the split) and `n_documents`; neural
features `n_trials`, `n_frames`, `n_phonemes`. `n_tokens` is always a count of tokens;
the number of token ids a model predicts (units + BOS + EOS; the bins' vocabulary) is the
top-level `n_token_ids` (read it with `token_ids`). Kind fields: units `vocab_size`, `bos`,
`eos`, `store` (seqlab.data.store); token bins `vocab_size`, `dtype`, `source`; neural
`n_features`, `n_days`, `n_classes`; sWUGGY sets `files`, `voices`, `controls`.
Writers: `shards.write_manifest` (units), `token_bins._manifest`, `neural.write_dataset`,
`swuggy_sets._write_set`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import seqlab
from seqlab.files import write_json


def write_dataset_manifest(
    path: str | Path,
    dataset: str,
    kind: str,
    splits: dict[str, dict[str, Any]],
    params: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """Write the manifest (atomically) with the keys every kind shares plus its own."""
    manifest = {
        "dataset": dataset,
        "kind": kind,
        **fields,
        "splits": splits,
        "params": params,
        "seqlab_version": seqlab.__version__,
    }
    write_json(path, manifest)
    return manifest


def token_ids(manifest: Mapping[str, Any]) -> int:
    """The number of token ids a model over this dataset predicts. Manifests written before
    the key existed call it a top-level `n_tokens`; they are read as they are, not rebuilt."""
    return int(manifest["n_token_ids"] if "n_token_ids" in manifest else manifest["n_tokens"])


def bos_eos(manifest: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The ids that start and end a sequence: a unit dataset's BOS and EOS; token bins' end of
    text for both (GPT-2's convention) when its tokenizer has one; else None."""
    if "bos" in manifest:
        return int(manifest["bos"]), int(manifest["eos"])
    eot = manifest.get("eot_token")
    return (None, None) if eot is None else (int(eot), int(eot))
