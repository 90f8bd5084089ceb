"""The dataset manifest (`manifest.json`): one layout, one writer per kind.

Every dataset directory has one, written last by prepare (it marks a finished dataset):

    {"dataset": name, "kind": ..., "splits": {split: {...counts of this kind...}},
     "params": {...how it was made...}, "seqlab_version": "...", ...kind fields...}

Counts are those the kind has, never placeholders: unit datasets `n_samples` (utterances)
and `n_units`; token bins `n_tokens` (tokens in the split) and `n_documents`; neural
features `n_trials`, `n_frames`, `n_phonemes`. A top-level `n_tokens` (unit datasets and
token bins) is the number of token ids the model predicts (units + BOS + EOS; the bins'
vocabulary). Kind fields: units `vocab_size`, `bos`, `eos`, `store` (seqlab.data.store);
token bins `vocab_size`, `dtype`, `source`; neural `n_features`, `n_days`, `n_classes`.
Writers: `shards.write_manifest` (units), `token_bins._manifest`, `neural.write_dataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import seqlab
from seqlab.io import write_json


def write_dataset_manifest(
    path: str | Path,
    dataset: str,
    kind: str,
    splits: dict[str, dict[str, Any]],
    params: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """Write the manifest (atomically) with the keys every kind shares plus its own."""
    manifest = {"dataset": dataset, "kind": kind, **fields, "splits": splits,
                "params": params, "seqlab_version": seqlab.__version__}  # fmt: skip
    write_json(path, manifest)
    return manifest
