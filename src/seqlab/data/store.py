"""The packed token store: what training reads, built once per dataset by prepare.

Per split, three files under `store/` of the dataset directory:

- `{split}.bin`: the training token stream, uint16, every utterance as `BOS u1 .. un EOS`
  (nanoGPT's `.bin`: one flat array a trial `np.memmap`s and slices rows from);
- `{split}.idx`: int64 offsets, `n_samples + 1` of them, utterance u is
  `bin[idx[u]:idx[u+1]]` (fairseq's `MMapIndexedDataset` `.idx`, reduced to the offsets);
- `{split}.keys`: the utterance names, one per line (only read to name a failing sample).

Why this layout: nanoGPT's flat `.bin` is what the loader wants (a row is one slice, BOS/EOS
already in place, no per-utterance work at all in a trial), but it forgets where utterances
start, which the checks need to name a failing sample and to hash utterances for duplicates;
fairseq's `.idx` keeps that, but also dtype and size headers we fix by contract (uint16,
offsets = sizes' prefix sums), so ours is the offsets alone, readable with one `np.memmap`.
Sizes and sha256 of each file are in the manifest (`store: {split: entry}`); opening a split
checks sizes and the first/last offsets and edge tokens (cheap, every trial); the checks rule
re-hashes every file (full, once per dataset). Memory at open is two maps, whatever the corpus.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from seqlab.config_datasets import TASK_KINDS
from seqlab.data.vocab import bos_id, eos_id
from seqlab.errors import SeqlabError

UNIT_KINDS = TASK_KINDS["unit_lm"]

STORE_DIR = "store"
FILES = ("bin", "idx", "keys")
CHUNK_TOKENS = 1 << 20  # writer buffer and reader chunk: 2 MB of uint16, ~40 MB of temporaries


class _HashedFile:
    """A binary file written sequentially with its sha256 and size kept as it goes."""

    def __init__(self, path: Path):
        self.f: BinaryIO = open(path, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self) -> None:
        self.f.close()


class StoreWriter:
    """Append utterances (raw units) to one split of the store, in bounded memory.

    `add_block` takes many utterances at once as a flat unit array plus lengths, and wraps
    each in BOS/EOS with array operations: the fast path for text ingest. `add` takes one.
    """

    def __init__(self, root: str | Path, split: str, vocab_size: int):
        self.split, self.bos, self.eos = split, bos_id(vocab_size), eos_id(vocab_size)
        out = Path(root) / STORE_DIR
        out.mkdir(parents=True, exist_ok=True)
        self.files = {k: _HashedFile(out / f"{split}.{k}") for k in FILES}
        self.files["idx"].write(np.zeros(1, np.int64).tobytes())
        self.n_samples = self.n_tokens = 0
        self.sources: list[dict[str, Any]] = []
        self._pending: list[tuple[str, np.ndarray, str]] = []
        self._pending_units = 0

    def add(self, key: str, units: np.ndarray, source: str) -> None:
        self._pending.append((key, units, source))
        self._pending_units += len(units) + 2
        if self._pending_units >= CHUNK_TOKENS:
            self._flush()

    def _flush(self) -> None:
        i = 0
        while i < len(self._pending):  # one block per run of the same source
            src, j = self._pending[i][2], i
            while j < len(self._pending) and self._pending[j][2] == src:
                j += 1
            run = self._pending[i:j]
            units = [np.asarray(u) for _, u, _ in run]
            flat = np.concatenate(units) if units else np.zeros(0, np.uint16)
            lengths = np.array([len(u) for u in units], np.int64)
            self._write_block([k for k, _, _ in run], lengths, flat, src)
            i = j
        self._pending, self._pending_units = [], 0

    def add_block(self, keys: list[str], lengths: np.ndarray, units: np.ndarray, source: str):
        """Append `len(keys)` utterances: units[sum(lengths[:u]):...] is utterance u."""
        self._flush()
        self._write_block(keys, lengths, units, source)

    def _write_block(self, keys: list[str], lengths: np.ndarray, units: np.ndarray, source: str):
        n = len(keys)
        if n == 0:
            return
        size = lengths + 2
        ends = np.cumsum(size)
        starts = ends - size
        tok = np.empty(int(ends[-1]), np.uint16)
        tok[starts] = self.bos
        tok[ends - 1] = self.eos
        inner = np.ones(len(tok), bool)
        inner[starts] = inner[ends - 1] = False
        tok[inner] = units
        self.files["bin"].write(tok.tobytes())
        self.files["idx"].write((ends + self.n_tokens).astype(np.int64).tobytes())
        self.files["keys"].write(("\n".join(keys) + "\n").encode())
        if self.sources and self.sources[-1]["path"] == source:
            self.sources[-1]["n"] += n
        else:
            self.sources.append({"path": source, "first": self.n_samples, "n": n})
        self.n_samples += n
        self.n_tokens += int(ends[-1])

    def close(self) -> dict[str, Any]:
        """Finish the files; return the manifest entry (paths relative to the dataset dir)."""
        self._flush()
        for f in self.files.values():
            f.close()
        return {
            **{k: f"{STORE_DIR}/{self.split}.{k}" for k in FILES},
            "n_samples": self.n_samples,
            "n_units": self.n_tokens - 2 * self.n_samples,
            "n_tokens": self.n_tokens,
            "bytes": {k: f.size for k, f in self.files.items()},
            "sha256": {k: f.sha.hexdigest() for k, f in self.files.items()},
            "sources": self.sources,
        }


def release(tokens: np.ndarray) -> None:
    """Drop a map's pages from this process (they stay in the shared page cache).

    A batch's random rows fault in read-ahead around each row (~230 KB a row measured here,
    MADV_RANDOM did not stop it), so without this a trial's RSS grows with the corpus it has
    touched; nanoGPT re-opens its memmap per batch for the same reason.
    """
    mm = getattr(tokens, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_DONTNEED)


def _broken(path: Path, what: str) -> SeqlabError:
    return SeqlabError(
        f"{path}: packed store is corrupt or truncated ({what}); "
        "rebuild the dataset (delete its directory and rerun its prepare rule)"
    )


class StoreSplit:
    """One split of the store, mapped read-only; cheap integrity checks at open."""

    def __init__(self, root: str | Path, entry: dict[str, Any], vocab_size: int):
        self.root, self.entry = Path(root), entry
        self.bos, self.eos = bos_id(vocab_size), eos_id(vocab_size)
        self.paths = {k: self.root / entry[k] for k in FILES}
        for k, p in self.paths.items():
            size = p.stat().st_size if p.exists() else None
            if size is None:
                raise _broken(p, "the file is missing")
            if size != entry["bytes"][k]:
                raise _broken(p, f"{size} bytes, the manifest says {entry['bytes'][k]}")
        n, n_tok = int(entry["n_samples"]), int(entry["n_tokens"])
        if entry["bytes"]["bin"] != 2 * n_tok or entry["bytes"]["idx"] != 8 * (n + 1):
            raise _broken(self.paths["bin"], "file sizes disagree with the sample counts")
        self.tokens = np.memmap(self.paths["bin"], np.uint16, "r") if n_tok else np.zeros(0, "u2")
        self.offsets = np.memmap(self.paths["idx"], np.int64, "r")
        if self.offsets[0] != 0 or self.offsets[-1] != n_tok:
            raise _broken(self.paths["idx"], "first/last offsets do not span the tokens")
        if n_tok and (self.tokens[0] != self.bos or self.tokens[-1] != self.eos):
            raise _broken(self.paths["bin"], "the stream does not start with BOS and end with EOS")

    def __len__(self) -> int:
        return int(self.entry["n_samples"])

    def verify(self) -> list[str]:
        """Full check: every file's sha256 against the manifest (reads the whole store)."""
        fails = []
        for k, p in self.paths.items():
            sha = hashlib.sha256()
            with open(p, "rb") as f:
                while block := f.read(1 << 24):
                    sha.update(block)
            if sha.hexdigest() != self.entry["sha256"][k]:
                fails.append(str(_broken(p, "sha256 differs from the manifest")))
        return fails

    def source(self, u: int) -> str:
        """The file or shard utterance u came from."""
        for s in self.entry["sources"]:
            if s["first"] <= u < s["first"] + s["n"]:
                return s["path"]
        return str(self.paths["bin"])

    def key(self, u: int) -> str:
        """The name of utterance u (reads the keys file up to it: for error messages only)."""
        with open(self.paths["keys"], encoding="utf-8") as f:
            line = next(itertools.islice(f, u, None), None)
        return line.rstrip("\n") if line is not None else f"#{u}"

    def where(self, u: int) -> tuple[str, str]:
        return self.source(u), self.key(u)

    def utterance_chunks(self, max_tokens: int = CHUNK_TOKENS):
        """Yield (first utterance, offsets of the run, tokens of the run), whole utterances.

        Tokens are read with plain file reads, not through the map: a full pass would
        otherwise leave the whole file resident in this process (RSS grows with the corpus).
        """
        u, n = 0, len(self)
        with open(self.paths["bin"], "rb") as f:
            while u < n:
                start = int(self.offsets[u])
                v = int(np.searchsorted(self.offsets, start + max_tokens, side="right")) - 1
                v = min(max(v, u + 1), n)
                off = np.array(self.offsets[u : v + 1])
                f.seek(2 * start)
                yield u, off, np.fromfile(f, np.uint16, int(off[-1]) - start)
                u = v


def open_split(root: str | Path, manifest: dict[str, Any], split: str) -> StoreSplit:
    """The store split of a dataset (its manifest's dict), or a one-line error."""
    store = manifest.get("store")
    if not store and manifest.get("kind") not in (None, *UNIT_KINDS):
        raise SeqlabError(
            f"{Path(root) / 'manifest.json'}: a {manifest['kind']} dataset has no unit "
            f"store; this needs a unit dataset (kinds {', '.join(UNIT_KINDS)})"
        )
    if not store:
        raise SeqlabError(
            f"{Path(root) / 'manifest.json'}: dataset has no packed token store (made by an "
            "older seqlab); rebuild it (delete its directory and rerun its prepare rule)"
        )
    if split not in store:
        raise SeqlabError(f"{root}: no split {split!r} in the store (has {sorted(store)})")
    return StoreSplit(root, store[split], int(manifest["vocab_size"]))
