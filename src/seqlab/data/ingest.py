"""Ingest real units into the dataset layout (WebDataset shards + manifest.json).

Two sources:

- the quantized text formats of ZeroSpeech 2021 (`name<TAB>u1,u2,...`) and GSLM
  (`name u1 u2 ...`; also `name|u1 u2 ...` as fairseq's quantizer writes it), detected per line;
- existing WebDataset unit shards, validated against the contract and copied (or linked) in.

Errors point at `file:line` (text) or `shard: sample` (shards) and say what to do, because the
files come from the user's own tokenizer and the first run is where mistakes show.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.shards import Utterance, iter_shard, write_manifest, write_shards
from seqlab.data.synthetic_units import parse_params
from seqlab.io import SeqlabError

FORMATS = ("tab", "space")  # `name<TAB>u1,u2,...` (ZeroSpeech 2021), `name u1 u2 ...` (GSLM)


@dataclass
class UnitsTextParams:
    train: str = ""  # path of the train units file (required)
    eval: str | None = None  # path of the eval units file; None: split train by eval_fraction
    eval_fraction: float = 0.05  # share of train items moved to eval when no eval file is given
    split_seed: int = 0  # seeds the (name-hash) choice of eval items
    vocab_size: int = 256  # units must be integers in 0..vocab_size-1
    frame_rate: float = 50.0  # units per second, for each utterance's duration
    speaker_regex: str | None = None  # regex whose group 1 (or match) on the name is the speaker
    shard_size: int = 1000  # utterances per .tar shard

    def problems(self) -> list[str]:
        out = [] if self.train else ["train: the path of the units file is required"]
        if not 0.0 <= self.eval_fraction < 1.0:
            out.append(f"eval_fraction={self.eval_fraction}: must be in [0, 1)")
        if not 1 <= self.vocab_size <= 65534:
            out.append(f"vocab_size={self.vocab_size}: must be in 1..65534 (uint16 tokens)")
        if self.shard_size < 1 or self.frame_rate <= 0:
            out.append("shard_size and frame_rate must be > 0")
        return out


@dataclass
class UnitsShardsParams:
    train: str | list[str] = ""  # glob or list of .tar shards of the train split (required)
    eval: str | list[str] = ""  # glob or list of .tar shards of the eval split (required)
    vocab_size: int = 256  # units must be integers in 0..vocab_size-1
    mode: str = "copy"  # how shards enter the dataset dir: copy | hardlink | symlink

    def problems(self) -> list[str]:
        out = [f"{k}: a glob or list of .tar shards is required" for k in ("train", "eval")
               if not getattr(self, k)]  # fmt: skip
        if self.mode not in ("copy", "hardlink", "symlink"):
            out.append(f"mode={self.mode!r}: must be copy, hardlink or symlink")
        if not 1 <= self.vocab_size <= 65534:
            out.append(f"vocab_size={self.vocab_size}: must be in 1..65534 (uint16 tokens)")
        return out


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


def read_units_text(path: str | Path, vocab_size: int = 256) -> list[tuple[str, np.ndarray]]:
    """Parse a quantized units file (format auto-detected per line, blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"{path}: units file not found; check the dataset's train/eval paths")
    items: list[tuple[str, np.ndarray]] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path}:{lineno}"
            if "\t" in line:  # ZeroSpeech 2021: name<TAB>u1,u2,...
                name, rest = line.split("\t", 1)
            elif "|" in line:  # fairseq GSLM quantizer: name|u1 u2 ...
                name, rest = line.split("|", 1)
            else:  # GSLM: name u1 u2 ...
                name, _, rest = line.partition(" ")
            name, fields_ = name.strip(), [t for t in re.split(r"[,\s]+", rest.strip()) if t]
            if not name:
                raise SeqlabError(f"{where}: line has no name; expected 'name<TAB>u1,u2,...'")
            if not fields_:
                raise SeqlabError(
                    f"{where}: {name!r} has no units; expected 'name<TAB>u1,u2,...' or "
                    "'name u1 u2 ...' (remove the line if the utterance is empty)"
                )
            bad = next((t for t in fields_ if not re.fullmatch(r"\d+", t)), None)
            if bad is not None:
                raise SeqlabError(
                    f"{where}: unit {bad!r} of {name!r} is not a non-negative integer; "
                    "units are integers separated by commas (after a TAB) or spaces"
                )
            units = np.array([int(t) for t in fields_], np.int64)
            if units.max() >= vocab_size:
                raise SeqlabError(
                    f"{where}: unit {units.max()} of {name!r} is out of range 0..{vocab_size - 1}; "
                    "set vocab_size to your tokenizer's number of units"
                )
            if name in first_line:
                raise SeqlabError(
                    f"{where}: duplicate name {name!r} (first at line {first_line[name]}); "
                    "names must be unique, remove or rename one"
                )
            first_line[name] = lineno
            items.append((name, units.astype(np.uint16)))
    if not items:
        raise SeqlabError(f"{path}: no utterances; is this the quantized units file?")
    return items


def _key(name: str) -> str:
    """A WebDataset key for a name: webdataset splits on the first dot, tar paths on '/'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _hash01(seed: int, name: str) -> float:
    h = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def ingest_units_text(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Quantized text file(s) -> shards + manifest; eval from its own file or a stable split."""
    p = parse_params(UnitsTextParams, params, f"dataset {name!r} (units_text)")
    train = read_units_text(p.train, p.vocab_size)
    if p.eval:
        evals = read_units_text(p.eval, p.vocab_size)
        both = {n for n, _ in train} & {n for n, _ in evals}
        if both:
            raise SeqlabError(
                f"{p.eval}: {len(both)} names also in {p.train} (e.g. {sorted(both)[0]!r}); "
                "train and eval must not share utterances"
            )
    else:  # the items with the smallest name hashes: stable under reordering of the file
        n_eval = round(len(train) * p.eval_fraction)
        n_eval = max(n_eval, 1) if p.eval_fraction > 0 and len(train) > 1 else n_eval
        chosen = set(
            sorted(range(len(train)), key=lambda i: _hash01(p.split_seed, train[i][0]))[:n_eval]
        )
        evals = [it for i, it in enumerate(train) if i in chosen]
        train = [it for i, it in enumerate(train) if i not in chosen]
    if not evals:
        raise SeqlabError(f"dataset {name!r}: the eval split is empty; give eval or eval_fraction")

    keys: dict[str, str] = {}
    for n, _ in train + evals:
        k = _key(n)
        if k in keys:
            raise SeqlabError(
                f"dataset {name!r}: names {keys[k]!r} and {n!r} map to the same shard key {k!r}; "
                "rename one (keys keep only letters, digits, '_' and '-')"
            )
        keys[k] = n
    try:
        speaker_re = re.compile(p.speaker_regex) if p.speaker_regex else None
    except re.error as e:
        raise SeqlabError(f"dataset {name!r}: speaker_regex is not a valid regex ({e})") from None

    def utts(items: list[tuple[str, np.ndarray]], source: str):
        for n, units in items:
            m = speaker_re.search(n) if speaker_re else None
            speaker = (m.group(1) if m.groups() else m.group(0)) if m else "unknown"
            meta = {"name": n, "speaker": speaker, "source": source,
                    "duration": round(len(units) / p.frame_rate, 3)}  # fmt: skip
            yield Utterance(key=_key(n), units=units, meta=meta)

    eval_src = p.eval or p.train
    splits = {
        "train": write_shards(utts(train, p.train), out_dir, "train", p.shard_size),
        "eval": write_shards(utts(evals, eval_src), out_dir, "eval", p.shard_size),
    }
    return write_manifest(
        Path(out_dir) / "manifest.json", name, "units_text", p.vocab_size, splits, asdict(p)
    )


# -- existing shards -------------------------------------------------------------------------


def _expand(spec: str | list[str], what: str) -> list[Path]:
    paths: list[Path] = []
    for s in [spec] if isinstance(spec, str) else spec:
        hits = sorted(glob.glob(os.path.expanduser(s)))
        if not hits:
            raise SeqlabError(f"{what}: no shard matches {s!r}; check the path or glob")
        paths += [Path(h) for h in hits]
    if len(set(paths)) != len(paths):
        raise SeqlabError(f"{what}: a shard is listed twice; each shard may appear once")
    return paths


def validate_shard(path: Path, vocab_size: int, seen: dict[str, Path]) -> tuple[int, int]:
    """Check one shard against the contract; return (n_samples, n_units)."""
    n_samples = n_units = 0
    for u in iter_shard(path):
        where = f"{path}: sample {u.key!r}"
        units = np.asarray(u.units)
        if units.ndim != 1 or not np.issubdtype(units.dtype, np.integer):
            raise SeqlabError(
                f"{where}: units.npy is {units.dtype} with shape {units.shape}; "
                "expected 1-D integer units"
            )
        if len(units) == 0:
            raise SeqlabError(f"{where}: empty utterance; drop it from the shard")
        if units.min() < 0 or units.max() >= vocab_size:
            raise SeqlabError(
                f"{where}: unit {units.max() if units.max() >= vocab_size else units.min()} "
                f"out of range 0..{vocab_size - 1}; set vocab_size, or strip BOS/EOS if present"
            )
        if u.key in seen:
            raise SeqlabError(f"{where}: key also in {seen[u.key]}; keys must be unique")
        seen[u.key] = path
        n_samples += 1
        n_units += len(units)
    if n_samples == 0:
        raise SeqlabError(f"{path}: shard holds no samples")
    return n_samples, n_units


def ingest_units_shards(name: str, params: dict[str, Any], out_dir: str | Path) -> dict:
    """Validate existing unit shards and place them (copy/link) under `out_dir/shards/`."""
    p = parse_params(UnitsShardsParams, params, f"dataset {name!r} (units_shards)")
    what = f"dataset {name!r} (units_shards)"
    shard_dir = Path(out_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    splits: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, list[str]] = {}
    for split in ("train", "eval"):
        entries = []
        paths = _expand(getattr(p, split), f"{what} {split}")
        for i, src in enumerate(paths):
            n_samples, n_units = validate_shard(src, p.vocab_size, seen)
            dst = shard_dir / f"{split}-{i:06d}.tar"
            _place(src, dst, p.mode)
            entries.append({"path": f"shards/{dst.name}", "n_samples": n_samples,
                            "n_units": n_units})  # fmt: skip
        splits[split] = entries
        sources[split] = [str(s.resolve()) for s in paths]
    return write_manifest(
        Path(out_dir) / "manifest.json", name, "units_shards", p.vocab_size, splits,
        {**asdict(p), "resolved": sources},
    )  # fmt: skip


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
