"""WebDataset unit shards and the dataset manifest: the contract between prepare, checks and train.

A shard is a `.tar` with one sample per utterance: `__key__`, `units.npy` (1-D uint16 raw
units 0..V-1, no BOS/EOS) and `json` (speaker, duration, source, ...). Tokens are units
0..V-1, BOS = V, EOS = V+1.

`manifest.json` (in the dataset directory) records what the shards hold:

    {"dataset": name, "kind": "synthetic_units" | "units_text" | "units_shards",
     "vocab_size": V, "bos": V, "eos": V+1, "n_tokens": V+2,
     "splits": {"train": {"n_samples": N, "n_units": M,
                          "shards": [{"path": "shards/train-000000.tar",
                                      "n_samples": n, "n_units": m}, ...]},
                "eval": {...}},
     "params": {...how it was made...}, "seqlab_version": "..."}

Shard paths are relative to the manifest's directory.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

import seqlab
from seqlab.io import SeqlabError, atomic_write, read_json, write_json


@dataclass
class Utterance:
    """One sample of a unit shard."""

    key: str
    units: np.ndarray  # 1-D uint16, raw units
    meta: dict[str, Any] = field(default_factory=dict)


def write_shards(
    utts: Iterable[Utterance],
    root: str | Path,
    prefix: str,
    shard_size: int,
    subdir: str = "shards",
) -> list[dict[str, Any]]:
    """Write utterances into `root/subdir/{prefix}-{i:06d}.tar`, at most `shard_size` each.

    Each shard is written to a temp file and renamed, so a crash never leaves a truncated
    tar under its final name. Returns the manifest entries (paths relative to `root`, the
    dataset directory that holds manifest.json).
    """
    out_dir = Path(root) / subdir
    entries: list[dict[str, Any]] = []
    batch: list[Utterance] = []

    def flush() -> None:
        name = f"{prefix}-{len(entries):06d}.tar"
        n_units = sum(len(u.units) for u in batch)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f, wds.TarWriter(f, mtime=0.0) as sink:
                for u in batch:
                    sink.write(
                        {
                            "__key__": u.key,
                            "units.npy": np.asarray(u.units, np.uint16),
                            "json": u.meta,
                        }
                    )

        atomic_write(out_dir / name, write)
        entries.append(
            {"path": f"{subdir}/{name}", "n_samples": len(batch), "n_units": int(n_units)}
        )
        batch.clear()

    for u in utts:
        batch.append(u)
        if len(batch) >= shard_size:
            flush()
    if batch:
        flush()
    return entries


def _whole(urls):
    return urls


def _decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def iter_shard(path: str | Path) -> Iterator[Utterance]:
    """Yield the utterances of one shard in file order (webdataset's own tar reader).

    Raises SeqlabError naming the shard (and sample key) when the tar or a sample is unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise SeqlabError(f"{path}: shard not found; rebuild the dataset (rerun its prepare rule)")
    # Every reader (each DDP rank, each check) reads the whole shard: ranks split batches by
    # index, not shards, so webdataset's node/worker splitting is turned off.
    ds = wds.WebDataset(
        str(path),
        shardshuffle=False,
        empty_check=False,
        nodesplitter=_whole,
        workersplitter=_whole,
    ).decode(wds.handle_extension("npy", _decode_npy))
    key = "<first sample>"
    try:
        for sample in ds:
            key = sample.get("__key__", key)
            if "units.npy" not in sample:
                raise SeqlabError(f"{path}: sample {key!r} has no units.npy member")
            meta = sample.get("json") or {}
            yield Utterance(key=key, units=sample["units.npy"], meta=meta)
    except SeqlabError:
        raise
    except Exception as e:  # tarfile/npy/json errors from a corrupt shard
        raise SeqlabError(
            f"{path}: unreadable after sample {key!r} ({type(e).__name__}: {e}); "
            "rebuild the dataset or replace the shard"
        ) from None


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
    def n_tokens(self) -> int:
        return int(self.data["n_tokens"])

    def splits(self) -> list[str]:
        return list(self.data["splits"])

    def shard_entries(self, split: str) -> list[dict[str, Any]]:
        try:
            return self.data["splits"][split]["shards"]
        except KeyError:
            raise SeqlabError(
                f"{self.path}: no split {split!r} (has {self.splits()}); check the dataset config"
            ) from None

    def shard_paths(self, split: str) -> list[Path]:
        return [self.root / e["path"] for e in self.shard_entries(split)]

    def iter_split(self, split: str) -> Iterator[Utterance]:
        for p in self.shard_paths(split):
            yield from iter_shard(p)


def write_manifest(
    path: str | Path,
    dataset: str,
    kind: str,
    vocab_size: int,
    splits: dict[str, list[dict[str, Any]]],
    params: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """Write the manifest for shards already on disk (entries from `write_shards`)."""
    manifest = {
        "dataset": dataset,
        "kind": kind,
        "vocab_size": vocab_size,
        "bos": vocab_size,
        "eos": vocab_size + 1,
        "n_tokens": vocab_size + 2,
        "splits": {
            name: {
                "n_samples": sum(e["n_samples"] for e in entries),
                "n_units": sum(e["n_units"] for e in entries),
                "shards": entries,
            }
            for name, entries in splits.items()
        },
        "params": params,
        "seqlab_version": seqlab.__version__,
        **extra,
    }
    write_json(path, manifest)
    return manifest
