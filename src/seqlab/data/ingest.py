"""Ingest real units into a dataset directory (the packed token store + manifest.json), and
export a dataset back out as WebDataset shards.

Two sources:

- the quantized text formats of ZeroSpeech 2021 (`name<TAB>u1,u2,...`) and GSLM
  (`name u1 u2 ...`; also `name|u1 u2 ...` as fairseq's quantizer writes it), detected per line:
  only the store is written, no shards (they cost 10x the parsing; `export_shards`, the
  `seqlab export-shards` command, writes them on demand);
- existing WebDataset unit shards, validated against the contract and copied (or linked) in;
  their units are also packed into the store, which is what training reads.

Errors point at `file:line` (text) or `shard: sample` (shards) and say what to do, because the
files come from the user's own tokenizer and the first run is where mistakes show.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.config import from_dict
from seqlab.config_datasets import UnitsShards, UnitsText, params_of
from seqlab.data.manifest import Manifest, write_unit_manifest
from seqlab.data.progress import Progress
from seqlab.data.shards import Utterance, iter_shard, write_shards
from seqlab.data.store import StoreWriter
from seqlab.data.text_units import (
    detect_units_only,
    iter_text_blocks,
    read_units_text,
    require_units_file,
)
from seqlab.errors import SeqlabError

__all__ = [
    "export_shards",
    "ingest_units_shards",
    "ingest_units_text",
    "read_units_text",
    "write_units_text",
]
FORMATS = ("tab", "space")  # `name<TAB>u1,u2,...` (ZeroSpeech 2021), `name u1 u2 ...` (GSLM)


# -- text formats ----------------------------------------------------------------------------


def write_units_text(
    path: str | Path, items: Iterable[tuple[str, Iterable[int]]], fmt: str = "tab"
) -> Path:
    """Write (name, units) items as `name<TAB>u1,u2,...` (fmt "tab") or `name u1 u2 ...`."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: one of {FORMATS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for name, units in items:
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"name {name!r}: must be non-empty without whitespace")
            us = [str(int(u)) for u in units]
            f.write(f"{name}\t{','.join(us)}\n" if fmt == "tab" else f"{name} {' '.join(us)}\n")
    return path


def _hash01(seed: int, name: str) -> float:
    h = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _eval_threshold(p: UnitsText) -> float:
    """The eval_fraction split: items with the smallest name hashes (stable under reordering)."""
    h = np.concatenate(
        [
            [_hash01(p.split_seed, n) for n in b.names]
            for b in iter_text_blocks(p.train, p.vocab_size)
        ]
        or [[]]
    )
    n_eval = round(len(h) * p.eval_fraction)
    n_eval = max(n_eval, 1) if p.eval_fraction > 0 and len(h) > 1 else n_eval
    return float(np.sort(h)[n_eval - 1]) if n_eval else -1.0


def _duplicates(path: str, hashes: list[np.ndarray], what: str) -> None:
    """One line for the first name given twice in `path` (hashes first, names only then)."""
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.int64)
    if len(np.unique(h)) == len(h):
        return
    first: dict[str, int] = {}
    for b in iter_text_blocks(path, 2**16 - 2):
        for name, line in zip(b.names, b.lines, strict=True):
            if name in first:
                raise SeqlabError(
                    f"{path}:{line}: duplicate name {name!r} (first at line {first[name]}); "
                    f"names must be unique{what}, remove or rename one"
                )
            first[name] = line


def ingest_units_text(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Quantized text file(s) -> packed store + manifest, streamed in blocks (bounded memory).

    Eval comes from its own file or from a stable name-hash split of train. No shards are
    written (they cost 10x the parsing): `export_shards` makes them.
    """
    p = from_dict(UnitsText, params, f"datasets.{name}")
    files = [p.train] + ([p.eval] if p.eval else [])
    for path in files:
        require_units_file(path)
    threshold = None if p.eval else _eval_threshold(p)
    writers = {s: StoreWriter(out_dir, s, p.vocab_size) for s in ("train", "eval")}
    formats, hashes = {}, {f: [] for f in files}
    total = sum(Path(f).stat().st_size for f in files if Path(f).is_file())
    prog, done = Progress("ingest"), 0
    for path in files:
        formats[path] = "units_only" if detect_units_only(Path(path)) else "named"
        if formats[path] == "units_only":
            print(
                f"ingest: {path}: units only (fairseq --hide-fname): utterances named file:line",
                file=sys.stderr,
            )
        nbytes = 0
        for b in iter_text_blocks(path, p.vocab_size):
            hashes[path].append(np.array([hash(n) for n in b.names], np.int64))
            ev = np.full(len(b.names), path == p.eval)
            if threshold is not None:
                ev = np.array([_hash01(p.split_seed, n) <= threshold for n in b.names], bool)
            per_unit = np.repeat(ev, b.lengths)
            for split, sel, units in (("eval", ev, per_unit), ("train", ~ev, ~per_unit)):
                keys = [n for n, e in zip(b.names, sel, strict=True) if e]
                writers[split].add_block(keys, b.lengths[sel], b.units[units], path)
            prog.update(len(b.units), (done + b.n_bytes - nbytes) / max(1, total))
            done, nbytes = done + b.n_bytes - nbytes, b.n_bytes
    for path in files:
        if not sum(len(h) for h in hashes[path]):
            raise SeqlabError(f"{path}: no utterances; is this the quantized units file?")
        _duplicates(path, hashes[path], "")
    if p.eval:
        both = np.intersect1d(np.concatenate(hashes[p.train]), np.concatenate(hashes[p.eval]))
        if len(both):
            shared = sorted(
                {
                    n
                    for b in iter_text_blocks(p.eval, 2**16 - 2)
                    for n in b.names
                    if hash(n) in set(both.tolist())
                }
            )
            raise SeqlabError(
                f"{p.eval}: {len(shared)} names also in {p.train} (e.g. {shared[0]!r}); "
                "train and eval must not share utterances"
            )
    store = {s: w.close() for s, w in writers.items()}
    if store["eval"]["n_samples"] == 0:
        raise SeqlabError(f"dataset {name!r}: the eval split is empty; give eval or eval_fraction")
    prog.done()
    return write_unit_manifest(
        Path(out_dir) / "manifest.json",
        name,
        "units_text",
        p.vocab_size,
        {"train": [], "eval": []},
        params_of(p),
        store=store,
        line_formats=formats,
    )


# -- existing shards -------------------------------------------------------------------------


def _expand(spec: str | list[str], what: str) -> list[Path]:
    paths: list[Path] = []
    for s in [spec] if isinstance(spec, str) else spec:
        hits = sorted(glob.glob(os.path.expanduser(s)))
        if not hits:
            raise SeqlabError(f"{what}: no shard matches {s!r}; check the path or glob")
        if folder := next((h for h in hits if os.path.isdir(h)), None):
            raise SeqlabError(
                f"{what}: {folder!r} is a directory, not a shard; give a glob of its .tar "
                f"files, e.g. '{folder.rstrip('/')}/*.tar'"
            )
        paths += [Path(h) for h in hits]
    if len(set(paths)) != len(paths):
        raise SeqlabError(f"{what}: a shard is listed twice; each shard may appear once")
    return paths


def contract_problem(units: np.ndarray, vocab_size: int) -> str | None:
    """What keeps a sample's units.npy from the contract (one utterance: 1-D uint16 units in
    0..vocab_size-1) and the fix that works for it; None when it holds."""
    what = f"units.npy is {units.dtype} with shape {units.shape}"
    if units.ndim != 1 and not (units.size and max(units.shape) == units.size):
        return f"{what}; the contract is one utterance per sample, its units in a 1-D array"
    flat = units.reshape(-1)  # a (1, T) or (T, 1) array is one utterance in the wrong shape
    if flat.size == 0:
        return "empty utterance; drop it from the shard"
    numeric = np.issubdtype(flat.dtype, np.integer) or np.issubdtype(flat.dtype, np.floating)
    off = np.flatnonzero(flat != np.round(flat)) if numeric else np.arange(1)
    if len(off):
        i = int(off[0])
        return (
            f"{what} and value {flat[i].item()!r} at position {i}; units are integer ids: "
            "write the quantizer's unit ids (not features or scores) as uint16"
        )
    neg = np.flatnonzero(flat < 0)
    if len(neg):
        i, v = int(neg[0]), flat[neg[0]].item()
        return (
            f"units.npy ({flat.dtype}) has unit {v} at position {i}; units are >= 0 ({v} is "
            "often padding or a missing unit): drop such values before writing the shard"
        )
    if flat.max() >= vocab_size:
        return (
            f"unit {flat.max().item()} out of range 0..{vocab_size - 1}; set vocab_size, or "
            "strip BOS/EOS if present"
        )
    fix = (".reshape(-1)" if units.ndim != 1 else "") + (
        ".astype(np.uint16)" if units.dtype != np.uint16 else ""
    )
    if fix:
        return f"{what}; the contract is 1-D uint16 units: rewrite the shard with units{fix}"
    return None


def validate_shard(
    path: Path, vocab_size: int, seen: dict[str, Path], store: StoreWriter, source: str
) -> tuple[int, int]:
    """Check one shard against the contract, adding its utterances to the store;
    return (n_samples, n_units)."""
    n_samples = n_units = 0
    for u in iter_shard(path):
        where = f"{path}: sample {u.key!r}"
        units = np.asarray(u.units)
        problem = contract_problem(units, vocab_size)
        if problem:
            raise SeqlabError(f"{where}: {problem}")
        if u.key in seen:
            raise SeqlabError(f"{where}: key also in {seen[u.key]}; keys must be unique")
        seen[u.key] = path
        store.add(u.key, units, source)
        n_samples += 1
        n_units += len(units)
    if n_samples == 0:
        raise SeqlabError(f"{path}: shard holds no samples")
    return n_samples, n_units


def ingest_units_shards(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Validate existing unit shards and place them (copy/link) under `out_dir/shards/`."""
    p = from_dict(UnitsShards, params, f"datasets.{name}")
    what = f"dataset {name!r} (units_shards)"
    shard_dir = Path(out_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    splits: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, list[str]] = {}
    store = {}
    for split in ("train", "eval"):
        entries = []
        paths = _expand(getattr(p, split), f"{what} {split}")
        writer = StoreWriter(out_dir, split, p.vocab_size)
        for i, src in enumerate(paths):
            dst = shard_dir / f"{split}-{i:06d}.tar"
            rel = f"shards/{dst.name}"
            n_samples, n_units = validate_shard(src, p.vocab_size, seen, writer, rel)
            _place(src, dst, p.mode)
            entries.append(
                {"path": f"shards/{dst.name}", "n_samples": n_samples, "n_units": n_units}
            )
        splits[split] = entries
        sources[split] = [str(s.resolve()) for s in paths]
        store[split] = writer.close()
    return write_unit_manifest(
        Path(out_dir) / "manifest.json",
        name,
        "units_shards",
        p.vocab_size,
        splits,
        {**params_of(p), "resolved": sources},
        store=store,
    )


def _place(src: Path, dst: Path, mode: str) -> None:
    if mode == "symlink":
        os.symlink(src.resolve(), dst)
        return
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return
        except OSError:  # across file systems: fall back to a copy
            pass
    shutil.copyfile(src, dst)


def export_shards(manifest_path: str | Path, out_dir: str | Path, shard_size: int = 1000) -> dict:
    """Write every split of a dataset as WebDataset shards `out_dir/{split}-{i:06d}.tar`.

    Shards are the interchange format: a store-only dataset (ingested from text) leaves in
    them, keys made tar-safe by `shard_key` (the original name stays in each sample's json).
    """
    man = Manifest(manifest_path)
    out: dict[str, list[dict[str, Any]]] = {}
    for split in man.splits():
        seen: dict[str, str] = {}

        def utts(split: str = split, seen: dict[str, str] = seen) -> Iterator[Utterance]:
            for u in man.iter_split(split):
                name = str(u.meta.get("name", u.key))
                if seen.setdefault(u.key, name) != name:
                    raise SeqlabError(
                        f"{man.path}: names {seen[u.key]!r} and {name!r} map to the same shard "
                        f"key {u.key!r}; rename one (keys keep only letters, digits, '_' and '-')"
                    )
                yield u

        out[split] = write_shards(utts(), out_dir, split, shard_size, subdir=".")
    return out
