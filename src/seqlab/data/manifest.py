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
Writers: `write_unit_manifest` (the unit kinds), `token_bins._manifest`,
`neural.write_dataset`, `swuggy_sets._write_set`. Reader: `Manifest` (unit datasets: their
vocabulary, splits, shards and store, and their utterances).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import seqlab
from seqlab.data.shards import Utterance, iter_shard, shard_key
from seqlab.data.store import open_split
from seqlab.data.vocab import bos_id, eos_id, n_token_ids
from seqlab.errors import SeqlabError
from seqlab.files import read_json, write_json


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


def write_unit_manifest(
    path: str | Path,
    dataset: str,
    kind: str,
    vocab_size: int,
    splits: dict[str, list[dict[str, Any]]],
    params: dict[str, Any],
    store: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the manifest for shards (entries from `write_shards`) and store already on disk."""

    def store_of(split: str, key: str) -> int:
        return int((store or {}).get(split, {}).get(key, 0))

    counts = {
        name: {
            "n_samples": sum(e["n_samples"] for e in entries) or store_of(name, "n_samples"),
            "n_units": sum(e["n_units"] for e in entries) or store_of(name, "n_units"),
            "shards": entries,
        }
        for name, entries in splits.items()
    }
    return write_dataset_manifest(
        path,
        dataset,
        kind,
        counts,
        params,
        vocab_size=vocab_size,
        bos=bos_id(vocab_size),
        eos=eos_id(vocab_size),
        n_token_ids=n_token_ids(vocab_size),
        store=store or {},
        **extra,
    )


class Manifest:
    """The parsed `manifest.json` of a dataset directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.root = self.path.parent
        self.data: dict[str, Any] = read_json(self.path)

    @property
    def vocab_size(self) -> int:
        return int(self.data["vocab_size"])

    @property
    def bos(self) -> int:
        return int(self.data["bos"])

    @property
    def eos(self) -> int:
        return int(self.data["eos"])

    @property
    def n_token_ids(self) -> int:
        return token_ids(self.data)

    def splits(self) -> list[str]:
        return list(self.data["splits"])

    def shard_entries(self, split: str) -> list[dict[str, Any]]:
        try:
            return self.data["splits"][split].get("shards", [])
        except KeyError:
            raise SeqlabError(
                f"{self.path}: no split {split!r} (has {self.splits()}); check the dataset config"
            ) from None

    def shard_paths(self, split: str) -> list[Path]:
        return [self.root / e["path"] for e in self.shard_entries(split)]

    def iter_split(self, split: str) -> Iterator[Utterance]:
        """The split's utterances: from its shards, or from the store when it has none."""
        if self.shard_entries(split):
            for p in self.shard_paths(split):
                yield from iter_shard(p)
            return
        sp = open_split(self.root, self.data, split)
        params = self.data.get("params", {})
        speaker_re = re.compile(params["speaker_regex"]) if params.get("speaker_regex") else None
        rate = float(params.get("frame_rate", 50.0))
        with open(sp.paths["keys"], encoding="utf-8") as keys:
            for u, key in enumerate(keys):
                units = np.asarray(sp.tokens[sp.offsets[u] + 1 : sp.offsets[u + 1] - 1])
                name = key.rstrip("\n")
                m = speaker_re.search(name) if speaker_re else None
                speaker = (m.group(1) if m.groups() else m.group(0)) if m else "unknown"
                meta = {
                    "name": name,
                    "speaker": speaker,
                    "source": sp.source(u),
                    "duration": round(len(units) / rate, 3),
                }
                yield Utterance(key=shard_key(name), units=units, meta=meta)
