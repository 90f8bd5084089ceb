"""WebDataset unit shards: the interchange format of unit datasets.

A shard is a `.tar` with one sample per utterance: `__key__`, `units.npy` (1-D uint16 raw
units 0..V-1, no BOS/EOS; seqlab.data.vocab) and `json` (speaker, duration, source, ...).
The dataset's manifest (seqlab.data.manifest) lists its shards per split, paths relative to
the manifest's directory; training reads the packed token store (seqlab.data.store) instead.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from seqlab.data.store import StoreWriter
from seqlab.errors import SeqlabError
from seqlab.files import atomic_write


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
    store: StoreWriter | None = None,
) -> list[dict[str, Any]]:
    """Write utterances into `root/subdir/{prefix}-{i:06d}.tar`, at most `shard_size` each.

    Each shard is written to a temp file and renamed, so a crash never leaves a truncated
    tar under its final name. Returns the manifest entries (paths relative to `root`, the
    dataset directory that holds manifest.json). With `store`, each utterance also goes into
    the packed token store (one pass over a generated corpus for both).
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
        if store is not None:
            store.add(u.key, u.units, f"{subdir}/{prefix}-{len(entries):06d}.tar")
        if len(batch) >= shard_size:
            flush()
    if batch:
        flush()
    return entries


def _whole(urls):
    return urls


def _decode(sample: dict[str, Any]) -> dict[str, Any]:
    """Decode the two members seqlab reads, and nothing else: webdataset's default decoders
    would unpickle `.pyd`/`.pkl` members and `torch.load` `.pth` ones, code from the shard."""
    out = dict(sample)
    if isinstance(out.get("units.npy"), bytes):
        out["units.npy"] = np.load(io.BytesIO(out["units.npy"]), allow_pickle=False)
    if isinstance(out.get("json"), bytes):
        out["json"] = json.loads(out["json"])
    return out


_BLOCK = tarfile.BLOCKSIZE
_PAX_SIZE = re.compile(rb"\d+ size=(\d+)\n")


def _member_size(header: bytes) -> int:
    """The size field of a tar header: octal, or GNU base-256 for sizes of 8 GiB and more."""
    field = header[124:136]
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _incomplete(path: Path) -> str | None:
    """Why the tar is cut short, or None. A tar cut between two members reads as a shorter
    tar (tarfile stops at end of file without complaint), so the end-of-archive marker (a
    zero block where the next header would be) is required. Headers are walked raw, one
    512-byte read each (the sizes stored, so pax and sparse members count right)."""
    size, pos, n, pax_size = path.stat().st_size, 0, 0, None
    with open(path, "rb") as f:
        while True:
            f.seek(pos)
            header = f.read(_BLOCK)
            if len(header) < _BLOCK:
                return f"no end-of-archive block after its {n} tar entries"
            if header.count(0) == _BLOCK:
                return None
            try:
                stored = _member_size(header) if pax_size is None else pax_size
            except ValueError:
                return None  # not a tar header: the reader says what the file is
            pax_size = None
            if header[156:157] in (b"x", b"g"):  # pax extended header: may override the size
                found = _PAX_SIZE.search(f.read(stored))
                pax_size = int(found[1]) if found and header[156:157] == b"x" else None
            pos += _BLOCK + -(-stored // _BLOCK) * _BLOCK
            n += 1
            if pos > size:
                return f"it ends inside the data of tar entry {n}, at byte {size} of {pos}"


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
    ).map(_decode)
    key = "<first sample>"
    try:
        cut = _incomplete(path)
        if cut:
            raise SeqlabError(
                f"{path}: truncated tar ({cut}); copy the shard again or rebuild the dataset"
            )
        for sample in ds:
            key = sample.get("__key__", key)
            if "units.npy" not in sample:
                dotted = next((k for k in sample if k.endswith(".units.npy")), None)
                if dotted:  # webdataset cuts the key at its first dot
                    raise SeqlabError(
                        f"{path}: sample key {key + '.' + dotted[: -len('.units.npy')]!r} has a "
                        "dot, which WebDataset reads as the start of the member name; rename "
                        "the keys without dots (seqlab's writer uses shard_key)"
                    )
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


def shard_key(name: str) -> str:
    """A WebDataset key for a name: webdataset splits on the first dot, tar paths on '/'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)
