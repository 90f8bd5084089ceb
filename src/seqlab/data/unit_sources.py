"""What the unit checks read, chunk by chunk: the packed store, or shards for a shards-only set.

A source yields `Chunk`s of whole utterances (raw units, lengths) in bounded memory and names
utterance u (file or shard, key) only when a check fails. The store is the normal source (what
training reads; its full sha256 check is `store_integrity`); shards are read for datasets
written without a store (hand-made or older), with today's `shard_integrity` checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqlab.data.manifest import Manifest
from seqlab.data.shards import iter_shard
from seqlab.data.store import CHUNK_TOKENS, StoreSplit
from seqlab.errors import SeqlabError


@dataclass
class Chunk:
    u0: int  # split index of the first utterance
    lengths: np.ndarray  # int64 units per utterance
    units: np.ndarray  # raw units, concatenated (uint16; int64 when a sample was not uint16)
    edges_ok: bool | None = None  # store: BOS/EOS exactly at every utterance edge


def _more(n: int, what: str) -> str:
    return f" (+{n - 1} more {what})" if n > 1 else ""


class StoreSource:
    """Utterances of one store split (memmap), with the full checksum as its integrity check."""

    def __init__(self, split: StoreSplit, name: str):
        self.sp, self.name = split, name
        self.n_units = int(split.entry["n_units"])
        self.bad_arrays: list[tuple[int, str, tuple[int, ...]]] = []
        self.integrity = [f"check store_integrity failed: {m}" for m in split.verify()]

    def where(self, u: int) -> tuple[str, str]:
        return self.sp.where(u)

    def chunks(self) -> Iterator[Chunk]:
        for u0, off, tok in self.sp.utterance_chunks():
            rel = off - off[0]
            lengths = np.diff(rel) - 2
            if (lengths < 0).any():
                raise SeqlabError(f"{self.sp.paths['idx']}: offsets decrease; rebuild the dataset")
            inner = np.ones(len(tok), bool)
            inner[rel[:-1]] = inner[rel[1:] - 1] = False
            edges = (tok[rel[:-1]] == self.sp.bos).all() & (tok[rel[1:] - 1] == self.sp.eos).all()
            yield Chunk(u0, lengths, tok[inner], bool(edges))


@dataclass
class ShardSource:
    """Utterances of one split's shards (webdataset), with today's shard_integrity checks.

    Keeps a key and shard path per utterance (to name failures): for shards-only datasets,
    which are small; real corpora are read from the store.
    """

    man: Manifest
    name: str
    keys: list[str] = field(default_factory=list)
    shard: list[str] = field(default_factory=list)
    bad_arrays: list[tuple[int, str, tuple[int, ...]]] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=lambda: {"shards": {}, "duplicate_keys": 0})
    n_units: int | None = None
    _done: bool = False

    def where(self, u: int) -> tuple[str, str]:
        return self.shard[u], self.keys[u]

    def chunks(self) -> Iterator[Chunk]:
        first_pass = not self._done
        if first_pass:
            self.keys, self.shard, self.bad_arrays = [], [], []
        arrays: list[np.ndarray] = []
        u0 = u = pending = 0
        seen: dict[str, str] = {}
        dups: list[tuple[str, str, str]] = []
        for entry in self.man.shard_entries(self.name):
            path = str(self.man.root / entry["path"])
            n0, m = u, 0
            try:
                for utt in iter_shard(path):
                    a = np.asarray(utt.units)
                    if first_pass:
                        if a.dtype != np.uint16 or a.ndim != 1:
                            self.bad_arrays.append((u, str(a.dtype), a.shape))
                        if utt.key in seen:
                            dups.append((path, utt.key, seen[utt.key]))
                        seen.setdefault(utt.key, path)
                        self.keys.append(utt.key)
                        self.shard.append(path)
                    arrays.append(a.ravel())
                    u, m, pending = u + 1, m + a.size, pending + a.size
                    if pending >= CHUNK_TOKENS:
                        yield _chunk(u0, arrays)
                        u0, arrays, pending = u, [], 0
            except SeqlabError as e:  # names shard and last good sample; counts are moot
                if first_pass:
                    self.integrity.append(f"check shard_integrity failed: {e}")
                continue
            if first_pass:
                self._count(path, entry, u - n0, m)
        if arrays:
            yield _chunk(u0, arrays)
        if first_pass:
            self._dups(dups)
            self.n_units, self._done = (
                sum(s["n_units"] for s in self.detail["shards"].values()),
                True,
            )

    def _count(self, path: str, entry: dict[str, Any], n: int, m: int) -> None:
        self.detail["shards"][path] = {"n_samples": n, "n_units": m}
        if (n, m) != (entry["n_samples"], entry["n_units"]):
            last = self.keys[-1] if n else None
            self.integrity.append(
                f"check shard_integrity failed: {path} (last sample {last!r}) holds {n} "
                f"samples / {m} units, manifest says {entry['n_samples']} / "
                f"{entry['n_units']}; rebuild the dataset (rerun its prepare rule)"
            )

    def _dups(self, dups: list[tuple[str, str, str]]) -> None:
        self.detail["duplicate_keys"] = len(dups)
        if dups:
            path, key, first = dups[0]
            self.integrity.append(
                f"check shard_integrity failed: {path} sample {key!r} is a duplicate key in split "
                f"{self.name!r} (first in {first}){_more(len(dups), 'duplicates')}; "
                "give every utterance a unique key"
            )


def _chunk(u0: int, arrays: list[np.ndarray]) -> Chunk:
    wide = any(a.dtype != np.uint16 for a in arrays)
    units = np.concatenate([a.astype(np.int64) if wide else a for a in arrays])
    return Chunk(u0, np.array([len(a) for a in arrays], np.int64), units)


def sources(man: Manifest) -> dict[str, StoreSource | ShardSource]:
    """One source per split: the store when the dataset has one, else its shards."""
    from seqlab.data.store import open_split

    if man.data.get("store"):
        return {s: StoreSource(open_split(man.root, man.data, s), s) for s in man.splits()}
    return {s: ShardSource(man, s) for s in man.splits()}
